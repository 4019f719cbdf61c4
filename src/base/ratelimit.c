/*
 * ratelimit: token bucket. See ratelimit.h.
 */
#include "base/ratelimit.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

struct ratelimit {
    double per_second; /* <= 0: unlimited */
    double burst;
    double tokens;
    int64_t last_ms; /* when tokens was last refilled */
    bool started;    /* last_ms is meaningful */
};

struct ratelimit *ratelimit_new(double per_second, int burst)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->per_second = per_second;
    rl->burst = burst < 1 ? 1.0 : (double)burst;
    rl->tokens = rl->burst;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    free(rl);
}

int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
    if (rl->per_second <= 0)
        return 0;
    if (!rl->started) {
        /* The creator does not know "now"; the first take anchors the clock. */
        rl->started = true;
        rl->last_ms = now_ms;
    }
    if (now_ms > rl->last_ms) {
        rl->tokens += (double)(now_ms - rl->last_ms) * rl->per_second / 1000.0;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
        rl->last_ms = now_ms;
    }
    if (rl->tokens >= 1.0) {
        rl->tokens -= 1.0;
        return 0;
    }
    double wait = ceil((1.0 - rl->tokens) * 1000.0 / rl->per_second);
    return wait < 1.0 ? 1 : (int64_t)wait;
}
