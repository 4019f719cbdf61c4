/*
 * alert_engine_internal: what alert_engine.c (the loop: consume, record,
 * commit) and alert_post.c (the posts: one in flight per webhook, back-off,
 * answers, digests) share. Internal to the alert engine; everyone else uses
 * alert_engine.h.
 */
#ifndef CR_ALERT_ENGINE_INTERNAL_H
#define CR_ALERT_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "alert/alert.h"
#include "alert/alert_digest.h"
#include "alert/alert_engine.h"
#include "base/http.h"
#include "base/log.h"
#include "base/ratelimit.h"
#include "kafka/offset_tracker.h"

#define ALERT_ENGINE_BACKOFF_MIN_MS 1000
#define ALERT_ENGINE_BACKOFF_MAX_MS 10000
#define ALERT_ENGINE_DIGEST_LIMIT   5000 /* rows per digest; the rest go into the next one */
#define ALERT_ENGINE_CONNECT_MAX_MS 5000
/* Alerts one webhook may hold in memory; past that, its new alerts go into
 * its next digest (kept in the db), so a dead webhook costs bounded memory
 * and never makes the consumer stop reading for the others. */
#define ALERT_ENGINE_QUEUE_MAX 100

enum alert_item_state {
    ALERT_ITEM_RECORD, /* stalled: not yet recorded (the db was away) */
    ALERT_ITEM_QUEUED, /* recorded PENDING, in its webhook's queue */
    ALERT_ITEM_MARK,   /* stalled: answered by Slack, the row not yet updated */
};

struct alert_item {
    struct alert *a; /* owned; a->view has its topic, partition and offset */
    enum alert_item_state state;
    bool sent;      /* ALERT_ITEM_MARK: posted (else refused for good, see why) */
    bool abandoned; /* its partition was revoked while it was being posted */
    char why[512];  /* ALERT_ITEM_MARK, refused: Slack's answer, never the URL */
    struct alert_item *next;
};

enum alert_posting { ALERT_POSTING_NONE, ALERT_POSTING_ALERT, ALERT_POSTING_DIGEST };

struct alert_post_answer {
    bool done;
    long status;
    int64_t retry_after_ms;
    char body[256];
    char curl_error[256];
};

/* One webhook (the default or a route's) and everything that waits for it.
 * Webhooks never wait for each other: each has its own queue, back-off and
 * post in flight. */
struct alert_webhook {
    const char *url; /* borrowed from the config; secret */
    char label[32];  /* what logs call it */
    struct ratelimit *rl;
    struct alert_item *head, *tail; /* FIFO; the head is posted first */
    size_t queued;
    struct alert_digest *digest; /* waiting or in flight, or NULL */
    enum alert_posting posting;
    struct alert_post_answer ans; /* of the post in flight */
    int failures;                 /* consecutive transient failures */
    int64_t next_try_ms;          /* monotonic: no post before */
};

struct alert_engine {
    const struct config *cfg;
    const struct config_slack *slack;
    struct db *db;
    struct http_client *http;
    rd_kafka_t *rk;              /* borrowed during alert_engine_run */
    struct alert_webhook *hooks; /* [0] default, [i + 1] routes[i] */
    size_t nhooks;
    struct offset_tracker *tracker;
    struct alert_item *stalled, *stalled_tail;
    bool db_down;
    int64_t db_retry_ms, db_backoff_ms; /* monotonic */
    int64_t db_checked_ms;              /* last idle db_check, monotonic */
    bool paused, draining, digest_locked;
    bool fatal; /* the consumer failed for good: stop with exit code 1 */
    struct alert_window window;
    int64_t digest_due_ms; /* wall clock; 0 = nothing queued */
    uint64_t n_posted, n_digested, n_permanent;
    struct metrics *metrics; /* borrowed, may be NULL */
};

/* ---- alert_engine.c ---- */

/* The webhook an alert about gateway and reason goes to. */
struct alert_webhook *alert_engine_hook_for(struct alert_engine *e, const char *gateway,
                                            const char *reason);

/* Request, correlation, topic, partition and offset of a, for a log line. */
void alert_engine_fill_ctx(struct log_ctx *lc, const struct alert *a);

/* alert_item_free(NULL) is a no-op. */
void alert_item_free(struct alert_item *it);

/* it needs nothing more: its offset is done (and committed when no earlier
 * one of its partition waits); frees it. */
void alert_item_finish(struct alert_engine *e, struct alert_item *it);

/* Park it in state until the database answers; reading pauses meanwhile. */
void alert_item_stall(struct alert_engine *e, struct alert_item *it, enum alert_item_state state);

/* Write Slack's final answer for it (it->sent, it->why) into its row and
 * finish it. False, it untouched, if the db failed. */
bool alert_item_mark(struct alert_engine *e, struct alert_item *it);

/* ---- alert_post.c ---- */

/* Start the next post of every webhook that is free, due and has a token:
 * its oldest alert first, then its digest. */
void alert_post_start(struct alert_engine *e);

/* Handle every answer that came in (call after http_client_run). */
void alert_post_finish(struct alert_engine *e);

/* Build the digest of every webhook that has rows waiting. */
void alert_post_flush_digests(struct alert_engine *e);

/* Release the digest lock once no webhook has a digest left. */
void alert_post_release_digest_lock(struct alert_engine *e);

#endif
