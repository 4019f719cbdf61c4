/*
 * ops_lag: how far behind the pipeline's consumer groups are (cancelctl
 * status). For each group and the topic it reads: the committed offsets
 * (Admin API ListConsumerGroupOffsets, read-only: nothing joins or commits)
 * against the partitions' end offsets. A partition without a committed
 * offset counts from its beginning, since the pipeline's consumers start
 * there (auto.offset.reset=earliest).
 */
#ifndef CR_OPS_LAG_H
#define CR_OPS_LAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* The group/topic pairs of the pipeline: intake/cancel-failed, retry/retry,
 * alert/outcome and alert/dlq. */
#define OPS_LAG_PAIRS 4

struct ops_group_lag {
    char role[16];   /* "intake", "retry", "alert" */
    char group[256]; /* consumer group id */
    char topic[256];
    int partitions;
    int committed_partitions; /* partitions with a committed offset */
    int64_t end_offsets;      /* sum of high watermarks */
    int64_t lag;              /* messages not yet committed by the group */
    char error[256];          /* "" when the figures above are good */
};

/* Lag of one partition: high - committed, or high - low without a commit
 * (committed < 0); never negative. Pure. */
int64_t ops_lag_partition(int64_t committed, int64_t low, int64_t high);

/* Fill out[0..OPS_LAG_PAIRS). Returns false (err) only when the broker cannot
 * be reached at all; a failure for one pair is in its error. */
bool ops_lag_read(const struct config *cfg, int timeout_ms, struct ops_group_lag *out, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

#endif
