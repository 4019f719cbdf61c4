/*
 * ledger_index: open addressing with linear probing over (hash, position).
 * See ledger_index.h.
 */
#include "ledger_index.h"

#include <stdlib.h>
#include <string.h>

uint64_t ledger_index_hash(int tag, const char *key)
{
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)(unsigned)tag;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void put(struct ledger_index_slot *slots, size_t cap, uint64_t hash, size_t pos1)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].pos1 != 0)
        i = (i + 1) & (cap - 1);
    slots[i].hash = hash;
    slots[i].pos1 = pos1;
}

bool ledger_index_add(struct ledger_index *ix, uint64_t hash, size_t pos)
{
    /* At most half full, so that probes stay short. */
    if ((ix->n + 1) * 2 > ix->cap) {
        size_t ncap = ix->cap ? ix->cap * 2 : 64;
        struct ledger_index_slot *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return false;
        for (size_t i = 0; i < ix->cap; i++) {
            if (ix->slots[i].pos1 != 0)
                put(ns, ncap, ix->slots[i].hash, ix->slots[i].pos1);
        }
        free(ix->slots);
        ix->slots = ns;
        ix->cap = ncap;
    }
    put(ix->slots, ix->cap, hash, pos + 1);
    ix->n++;
    return true;
}

size_t ledger_index_next(const struct ledger_index *ix, uint64_t hash, size_t *probe)
{
    if (ix->cap == 0)
        return 0;
    for (; *probe < ix->cap; (*probe)++) {
        const struct ledger_index_slot *s = &ix->slots[((size_t)hash + *probe) & (ix->cap - 1)];
        if (s->pos1 == 0)
            return 0;
        if (s->hash == hash) {
            (*probe)++;
            return s->pos1;
        }
    }
    return 0;
}

void ledger_index_clear(struct ledger_index *ix)
{
    if (ix->slots != NULL)
        memset(ix->slots, 0, ix->cap * sizeof(*ix->slots));
    ix->n = 0;
}

void ledger_index_free(struct ledger_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->n = 0;
}
