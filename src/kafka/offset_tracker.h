/*
 * offset_tracker: which Kafka offsets are safe to commit when messages of a
 * partition finish out of order (many gateway calls in flight at once).
 *
 * A partition's committed offset may only move past a message once it and
 * every earlier message of that partition are done; otherwise a crash would
 * skip the unfinished one. The tracker keeps, per partition, the messages
 * taken but not yet committed, in arrival (= offset) order.
 */
#ifndef CR_OFFSET_TRACKER_H
#define CR_OFFSET_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct offset_tracker;

struct offset_tracker *offset_tracker_new(void);
void offset_tracker_free(struct offset_tracker *ot);

/* Record that the message at offset of topic/partition was taken. Offsets of
 * one partition must be added in increasing order. False on out of memory. */
bool offset_tracker_add(struct offset_tracker *ot, const char *topic, int32_t partition,
                        int64_t offset) __attribute__((warn_unused_result));

/* Mark a taken message done. Returns the offset to commit for its partition
 * (the next offset to consume: last contiguous done offset + 1), or -1 when
 * the commit point did not move (an earlier message is still pending, or the
 * offset is unknown, e.g. after a revoke). */
int64_t offset_tracker_done(struct offset_tracker *ot, const char *topic, int32_t partition,
                            int64_t offset);

/* Forget a partition (revoked in a rebalance): its pending messages will be
 * redelivered to the new owner. */
void offset_tracker_forget(struct offset_tracker *ot, const char *topic, int32_t partition);

/* Messages taken and not yet done, over all partitions. */
size_t offset_tracker_pending(const struct offset_tracker *ot);

#endif
