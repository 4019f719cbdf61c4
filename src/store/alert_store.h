/*
 * alert_store: the alert_sent table (schemas/db/0001_init.sql, 0002_alerts.sql),
 * the alert-consumer's memory of what it posted.
 *
 * Row life: an alert is recorded PENDING before it is posted (or DIGESTED with
 * sent_at NULL when it goes into a digest), then becomes SENT, or
 * FAILED_PERMANENT when Slack refuses it for good (a configuration fault that
 * `cancelctl status` reports). A digest row gets its sent_at when the digest
 * carrying it was posted. Every statement runs on its own (autocommit): each is
 * one row's single step, and no transaction is ever held across a post.
 */
#ifndef CR_ALERT_STORE_H
#define CR_ALERT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert/alert.h"
#include "store/db.h"

/* What alert_store_record found. */
enum alert_row {
    ALERT_ROW_NEW,     /* inserted just now, in the state asked for */
    ALERT_ROW_PENDING, /* already there, PENDING: recorded earlier and not posted
                          (a crash or an outage between record and post) */
    ALERT_ROW_DONE,    /* already there and SENT, DIGESTED or FAILED_PERMANENT */
};

/* Record a (state DIGESTED when digest, else PENDING) unless its dedup key
 * is already there, and say which case it was. False with err on a db error
 * (db_last_error_class tells whether it was an outage). */
bool alert_store_record(struct db *db, const struct alert *a, bool digest, enum alert_row *row,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/* The post of key succeeded: SENT, sent_at now, one more attempt. */
bool alert_store_sent(struct db *db, const char *key, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The post of key failed with why (no secrets): one more attempt and
 * last_error; state FAILED_PERMANENT when permanent, else left PENDING. */
bool alert_store_failed(struct db *db, const char *key, bool permanent, const char *why, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* first_seen_at (epoch ms) of the rows first seen within the last window_ms,
 * oldest first, to seed the digest window after a restart. *times is
 * malloc'd (caller frees), *n its length. */
bool alert_store_recent(struct db *db, int64_t window_ms, int64_t **times, size_t *n, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* A row waiting for a digest. Strings owned (NULL when SQL NULL). */
struct alert_digest_row {
    char *key;
    char *request_id;
    char *gateway;
    char *reason;
    int64_t event_at_ms; /* 0 when unknown */
};

/* Up to limit rows in state DIGESTED with no sent_at, oldest first. *rows is
 * malloc'd; free with alert_store_rows_free. */
bool alert_store_digest_pending(struct db *db, size_t limit, struct alert_digest_row **rows,
                                size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void alert_store_rows_free(struct alert_digest_row *rows, size_t n);

/* The digest carrying keys[0..n) was answered: sent (sent_at now), or failed
 * with why (permanent: FAILED_PERMANENT; else only attempts and last_error). */
bool alert_store_digest_done(struct db *db, char *const *keys, size_t n, bool sent, bool permanent,
                             const char *why, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Session advisory lock that makes one alert-consumer at a time post
 * digests (several may run in one group). try_lock sets *got. */
bool alert_store_digest_try_lock(struct db *db, bool *got, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void alert_store_digest_unlock(struct db *db);

#endif
