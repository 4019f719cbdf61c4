/*
 * ops_replay: replaying one dead letter (cancelctl dlq replay).
 *
 * What a replay does depends on the dead letter's dlq.reason:
 * - FAILED, EXHAUSTED, CONFIG_FAULT (a request the pipeline gave up on) and
 *   RECONCILE_MISMATCH (the gateway disagrees with our final status; a
 *   request that `cancelctl reconcile --fix` turned FAILED is replayed
 *   through it, and its first attempt inquires before any new key): the
 *   request is re-armed in the db (ops_request.h: fresh budget, same
 *   requestId and so the same idempotency key, refused when the key's
 *   lifetime at the gateway has passed) and RetryScheduled goes through the
 *   outbox. Refused unless the request is still FAILED or EXHAUSTED (it may
 *   have been requeued, resolved or have succeeded since).
 * - any other reason (poison: PARSE_ERROR, SCHEMA_VIOLATION, UNKNOWN_GATEWAY,
 *   IDEMPOTENCY_CONFLICT, ...): the original bytes are re-published unchanged,
 *   with the original key, to dlq.original.topic through the outbox, so the
 *   relay publishes them. Only to the config's cancel-failed or retry topic.
 *
 * Either way the action and its dlq_replay audit row (who, when, filter,
 * what) are one transaction: a crash cannot half-do a replay, and since
 * dlq_replay is unique per dead letter (topic, partition, offset), replaying
 * the same dead letter twice does it once.
 */
#ifndef CR_OPS_REPLAY_H
#define CR_OPS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "ops/ops_dlq.h"
#include "ops/ops_request.h"
#include "store/db.h"

/* The header a re-published message carries: which dead letter it came from
 * ("topic/partition/offset"). */
#define OPS_REPLAY_HEADER_OF "cancelctl.replay.of"

enum ops_replay_action {
    OPS_REPLAY_REPUBLISH, /* poison: original bytes back to their topic */
    OPS_REPLAY_REARM,     /* a failed request re-armed */
    OPS_REPLAY_ALREADY,   /* this dead letter was replayed before: nothing to do */
    OPS_REPLAY_REFUSED,   /* not allowed (why says why) */
};

const char *ops_replay_action_name(enum ops_replay_action a);

struct ops_replay_result {
    enum ops_replay_action action;
    bool done;                  /* false in a dry run and when refused/already */
    char target_topic[256];     /* REPUBLISH */
    struct ops_rearm_plan plan; /* REARM */
    char why[768];              /* what is (would be) done, or why not */
};

/* True for the reasons that re-arm a request (FAILED, EXHAUSTED,
 * CONFIG_FAULT, RECONCILE_MISMATCH); every other reason is re-published. */
bool ops_replay_reason_rearms(const char *reason);

/* For a poison dead letter: may its bytes go back to its original topic under
 * cfg? True with target set, or false with why. Pure. */
bool ops_replay_target_check(const struct config *cfg, const struct ops_dlq_letter *l, char *target,
                             size_t targetlen, char *why, size_t whylen);

/* Replay one dead letter as operator_name, recording filter (may be NULL) in
 * the audit row. dry_run: decide exactly as a real run would, from the same
 * rows, and change nothing. Returns false only on a database error (err
 * set, nothing changed). */
bool ops_replay_one(struct db *db, const struct config *cfg, const struct ops_dlq_letter *l,
                    const char *operator_name, const json_t *filter, bool dry_run,
                    struct ops_replay_result *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
