/*
 * ops_outbox: operators' view of parked outbox rows (`cancelctl outbox`).
 *
 * The relay parks a row the broker can never accept as it is (too large for
 * the broker, a topic that does not exist, headers that cannot be built:
 * relay.h); it then waits for a person. Listing changes nothing; a requeue
 * puts rows back in line, due now, and records who did it and why in
 * outbox_requeue, in the same transaction. If the cause is still there the
 * relay parks the row again, with a new parked_at.
 */
#ifndef CR_OPS_OUTBOX_H
#define CR_OPS_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/db.h"

/* Parked rows, oldest first, at most limit: a JSON array of objects with
 * id, topic, eventType, requestId, key, bytes (the value's size),
 * publishAttempts, parkedAt, parkReason, createdAt. New reference in *out. */
bool ops_outbox_list_parked(struct db *db, int limit, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Put parked rows back in line: the row id (id > 0) or every parked row
 * (id == 0). operator and note (may be NULL) go into the audit rows. With
 * dry_run nothing changes. *out: the rows (as in the list) that were, or
 * would be, requeued; empty when none is parked (for an id: also when it
 * does not exist or is not parked: *state_out then says "published",
 * "pending" or "missing"; "parked" otherwise). */
bool ops_outbox_requeue(struct db *db, int64_t id, const char *operator_name, const char *note,
                        bool dry_run, json_t **out, const char **state_out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

#endif
