/*
 * ratelimit: a token bucket, used to pace calls to one gateway (and Slack).
 *
 * Time is passed in (milliseconds on any monotonic clock), so the bucket is
 * pure and tests drive it with a fake clock. Not thread-safe: one owner.
 */
#ifndef CR_RATELIMIT_H
#define CR_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* A bucket that refills per_second tokens a second up to burst (burst < 1 is
 * taken as 1) and starts full. per_second <= 0 means unlimited: every take
 * succeeds. Returns NULL only when out of memory; free with ratelimit_free. */
struct ratelimit *ratelimit_new(double per_second, int burst);

void ratelimit_free(struct ratelimit *rl);

/* Take one token at now_ms. Returns 0 if a token was taken, otherwise the
 * milliseconds (>= 1) until one will be available; nothing is taken then, the
 * caller asks again later. A clock that goes backwards refills nothing. */
int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms);

#endif
