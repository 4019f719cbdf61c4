/*
 * offset_tracker: see offset_tracker.h.
 *
 * A partition holds a small array of the messages not yet done, in offset
 * order. A message done while an earlier one is still pending is dropped at
 * once, its offset folded into the entry before it (tail), so memory follows
 * the messages in flight, not the messages read since the oldest of them: an
 * alert waiting for a dead Slack webhook may hold its partition's commit
 * point for hours while thousands of later messages finish. The number of
 * entries is small, so linear search and memmove are cheaper than anything
 * cleverer.
 */
#include "kafka/offset_tracker.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    int64_t offset; /* a message not yet done */
    int64_t tail;   /* the last offset done after it and before the next entry; -1: none */
};

struct partition {
    char *topic;
    int32_t partition;
    struct entry *entries;
    size_t n, cap;
};

struct offset_tracker {
    struct partition *parts;
    size_t nparts, cap;
    size_t pending;
};

struct offset_tracker *offset_tracker_new(void)
{
    return calloc(1, sizeof(struct offset_tracker));
}

void offset_tracker_free(struct offset_tracker *ot)
{
    if (ot == NULL)
        return;
    for (size_t i = 0; i < ot->nparts; i++) {
        free(ot->parts[i].topic);
        free(ot->parts[i].entries);
    }
    free(ot->parts);
    free(ot);
}

static struct partition *find(const struct offset_tracker *ot, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < ot->nparts; i++) {
        if (ot->parts[i].partition == partition && strcmp(ot->parts[i].topic, topic) == 0)
            return &ot->parts[i];
    }
    return NULL;
}

bool offset_tracker_add(struct offset_tracker *ot, const char *topic, int32_t partition,
                        int64_t offset)
{
    struct partition *p = find(ot, topic, partition);

    if (p == NULL) {
        if (ot->nparts == ot->cap) {
            size_t cap = ot->cap ? ot->cap * 2 : 8;
            struct partition *parts = realloc(ot->parts, cap * sizeof(*parts));
            if (parts == NULL)
                return false;
            ot->parts = parts;
            ot->cap = cap;
        }
        p = &ot->parts[ot->nparts];
        memset(p, 0, sizeof(*p));
        p->topic = strdup(topic);
        if (p->topic == NULL)
            return false;
        p->partition = partition;
        ot->nparts++;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct entry *entries = realloc(p->entries, cap * sizeof(*entries));
        if (entries == NULL)
            return false;
        p->entries = entries;
        p->cap = cap;
    }
    p->entries[p->n].offset = offset;
    p->entries[p->n].tail = -1;
    p->n++;
    ot->pending++;
    return true;
}

int64_t offset_tracker_done(struct offset_tracker *ot, const char *topic, int32_t partition,
                            int64_t offset)
{
    struct partition *p = find(ot, topic, partition);
    size_t i;

    if (p == NULL)
        return -1;
    for (i = 0; i < p->n && p->entries[i].offset != offset; i++)
        ;
    if (i == p->n)
        return -1;
    /* Everything done up to the next pending entry: this offset, or the
     * later ones already folded into it. */
    int64_t last = p->entries[i].tail >= 0 ? p->entries[i].tail : offset;
    memmove(p->entries + i, p->entries + i + 1, (p->n - i - 1) * sizeof(*p->entries));
    p->n--;
    ot->pending--;
    if (i > 0) {
        p->entries[i - 1].tail = last; /* an earlier message still holds the commit */
        return -1;
    }
    return last + 1;
}

void offset_tracker_forget(struct offset_tracker *ot, const char *topic, int32_t partition)
{
    struct partition *p = find(ot, topic, partition);

    if (p == NULL)
        return;
    ot->pending -= p->n;
    p->n = 0;
}

size_t offset_tracker_pending(const struct offset_tracker *ot)
{
    return ot->pending;
}
