/*
 * alert_digest: see alert_digest.h.
 */
#include "alert/alert_digest.h"

#include <stdlib.h>
#include <string.h>

#include "alert/slack.h"
#include "base/timeutil.h"

#define DIGEST_FIRST_IDS 5

static void count(struct slack_count *c, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(c[i].name, name) == 0) {
            c[i].count++;
            return;
        }
    c[*n].name = name;
    c[*n].count = 1;
    (*n)++;
}

static int by_count_desc(const void *a, const void *b)
{
    const struct slack_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->name, y->name);
}

void alert_digest_free(struct alert_digest *d)
{
    if (d == NULL)
        return;
    json_decref(d->payload);
    for (size_t i = 0; d->keys != NULL && i < d->n; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d);
}

struct alert_digest *alert_digest_build(const struct config_slack *slack,
                                        const struct alert_digest_row *rows, const size_t *idx,
                                        size_t n)
{
    struct slack_count *reasons = calloc(n, sizeof(*reasons));
    struct slack_count *gateways = calloc(n, sizeof(*gateways));
    struct alert_digest *d = calloc(1, sizeof(*d));
    const char *first[DIGEST_FIRST_IDS];
    size_t nr = 0, ng = 0, nfirst = 0;
    int64_t lo = 0, hi = 0;
    char since[40], until[40];
    bool ok = false;

    if (reasons == NULL || gateways == NULL || d == NULL ||
        (d->keys = calloc(n, sizeof(*d->keys))) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct alert_digest_row *r = &rows[idx[i]];
        d->keys[i] = strdup(r->key);
        if (d->keys[i] == NULL)
            goto out;
        d->n = i + 1;
        count(reasons, &nr, r->reason != NULL ? r->reason : "UNKNOWN");
        count(gateways, &ng, r->gateway != NULL ? r->gateway : "unknown");
        if (r->request_id != NULL && nfirst < DIGEST_FIRST_IDS)
            first[nfirst++] = r->request_id;
        if (r->event_at_ms > 0 && (lo == 0 || r->event_at_ms < lo))
            lo = r->event_at_ms;
        if (r->event_at_ms > hi)
            hi = r->event_at_ms;
    }
    qsort(reasons, nr, sizeof(*reasons), by_count_desc);
    qsort(gateways, ng, sizeof(*gateways), by_count_desc);
    /* --until is exclusive to the second: add one so the last one is listed. */
    struct slack_digest sd = {
        .total = (int)n,
        .threshold = slack->digest_threshold,
        .window_ms = slack->digest_window_ms,
        .reasons = reasons,
        .nreasons = nr,
        .gateways = gateways,
        .ngateways = ng,
        .first_ids = first,
        .nfirst = nfirst,
        .since = lo > 0 && rfc3339_format(lo, since, sizeof(since)) ? since : NULL,
        .until = hi > 0 && rfc3339_format(hi + 1000, until, sizeof(until)) ? until : NULL,
    };
    d->payload = slack_digest_message(&sd);
    ok = d->payload != NULL;
out:
    free(reasons);
    free(gateways);
    if (!ok) {
        alert_digest_free(d);
        return NULL;
    }
    return d;
}
