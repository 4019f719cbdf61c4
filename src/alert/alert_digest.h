/*
 * alert_digest: one webhook's digest, built from the alert_sent rows that
 * wait for it: the Slack message (counts by reason and gateway, the first
 * requestIds, the `cancelctl dlq list --since .. --until ..` range) and the
 * keys of the rows it carries, to mark them when Slack answered. No I/O.
 */
#ifndef CR_ALERT_DIGEST_H
#define CR_ALERT_DIGEST_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "store/alert_store.h"

struct alert_digest {
    json_t *payload; /* the Slack message */
    char **keys;     /* dedup keys of the rows carried, owned */
    size_t n;
};

/* The digest of rows[idx[0..n)] (n >= 1) under slack's digest settings, or
 * NULL when out of memory. Free with alert_digest_free. */
struct alert_digest *alert_digest_build(const struct config_slack *slack,
                                        const struct alert_digest_row *rows, const size_t *idx,
                                        size_t n);

/* alert_digest_free(NULL) is a no-op. */
void alert_digest_free(struct alert_digest *d);

#endif
