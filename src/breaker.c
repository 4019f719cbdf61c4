/*
 * breaker: circuit breaker with a bucketed sliding window. See breaker.h.
 */
#include "breaker.h"

#include <stdlib.h>
#include <string.h>

/* The window is kept as BREAKER_BUCKETS counters of window_ms/BUCKETS each:
 * constant memory whatever the call rate, at the price of forgetting old
 * calls one bucket at a time instead of one call at a time. */
#define BREAKER_BUCKETS 10

struct breaker_bucket {
    int64_t epoch; /* now_ms / bucket_ms of the calls counted here */
    int calls;
    int failures;
};

struct breaker {
    struct config_breaker cfg;
    int64_t bucket_ms;
    enum breaker_state state; /* CLOSED, OPEN or HALF_OPEN (OPEN may have expired) */
    int64_t opened_at_ms;
    int probes_in_flight; /* half-open: calls allowed and not yet recorded */
    int probe_successes;
    int probe_failures;
    struct breaker_bucket buckets[BREAKER_BUCKETS];
};

static void reset_window(struct breaker *br)
{
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        br->buckets[i].epoch = -1;
        br->buckets[i].calls = 0;
        br->buckets[i].failures = 0;
    }
}

struct breaker *breaker_new(const struct config_breaker *cfg)
{
    struct breaker *br = calloc(1, sizeof(*br));
    if (br == NULL)
        return NULL;
    br->cfg = *cfg;
    if (br->cfg.half_open_probes < 1)
        br->cfg.half_open_probes = 1;
    br->bucket_ms = (br->cfg.window_ms + BREAKER_BUCKETS - 1) / BREAKER_BUCKETS;
    if (br->bucket_ms < 1)
        br->bucket_ms = 1;
    br->state = BREAKER_CLOSED;
    reset_window(br);
    return br;
}

void breaker_free(struct breaker *br)
{
    free(br);
}

/* Open -> half-open once open_ms has passed; done lazily at each call. */
static void advance(struct breaker *br, int64_t now_ms)
{
    if (br->state == BREAKER_OPEN && now_ms >= br->opened_at_ms + br->cfg.open_ms) {
        br->state = BREAKER_HALF_OPEN;
        br->probes_in_flight = 0;
        br->probe_successes = 0;
        br->probe_failures = 0;
    }
}

static void trip(struct breaker *br, int64_t now_ms)
{
    br->state = BREAKER_OPEN;
    br->opened_at_ms = now_ms;
    br->probes_in_flight = 0;
    br->probe_successes = 0;
    br->probe_failures = 0;
}

/* How many of the half_open_probes probes must fail to open it again: the
 * same failure_ratio as in the closed state, at least one. Judging the probes
 * by one ratio (as resilience4j does) keeps a gateway with an ordinary rate
 * of transient errors from flapping open on the first unlucky probe. */
static int probe_failures_to_reopen(const struct breaker *br)
{
    int n = (int)(br->cfg.failure_ratio * br->cfg.half_open_probes + 0.999999);
    if (n < 1)
        n = 1;
    return n > br->cfg.half_open_probes ? br->cfg.half_open_probes : n;
}

/* Half-open with every probe slot taken: come back when the probes have
 * likely decided, not a whole open period later (which would turn a backlog
 * into a few calls per open period). */
static int64_t probe_wait_ms(const struct breaker *br)
{
    int64_t wait = br->cfg.open_ms / 10;
    if (wait < 1000)
        wait = 1000;
    return wait > br->cfg.open_ms && br->cfg.open_ms > 0 ? br->cfg.open_ms : wait;
}

bool breaker_allow(struct breaker *br, int64_t now_ms, int64_t *retry_at_ms)
{
    if (!br->cfg.enabled)
        return true;
    advance(br, now_ms);
    switch (br->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_HALF_OPEN:
        if (br->probes_in_flight < br->cfg.half_open_probes) {
            br->probes_in_flight++;
            return true;
        }
        /* Every probe slot is taken; their results decide soon. */
        if (retry_at_ms != NULL)
            *retry_at_ms = now_ms + probe_wait_ms(br);
        return false;
    case BREAKER_OPEN:
        break;
    }
    if (retry_at_ms != NULL)
        *retry_at_ms = br->opened_at_ms + br->cfg.open_ms;
    return false;
}

/* Count a call in the closed-state window and trip if the ratio is reached. */
static void record_closed(struct breaker *br, int64_t now_ms, bool success)
{
    int64_t epoch = now_ms / br->bucket_ms;
    struct breaker_bucket *b = &br->buckets[epoch % BREAKER_BUCKETS];
    if (b->epoch != epoch) {
        b->epoch = epoch;
        b->calls = 0;
        b->failures = 0;
    }
    b->calls++;
    if (!success)
        b->failures++;

    int calls = 0, failures = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        const struct breaker_bucket *w = &br->buckets[i];
        if (w->epoch >= 0 && w->epoch > epoch - BREAKER_BUCKETS && w->epoch <= epoch) {
            calls += w->calls;
            failures += w->failures;
        }
    }
    if (calls >= br->cfg.min_requests && calls > 0 &&
        (double)failures >= br->cfg.failure_ratio * (double)calls)
        trip(br, now_ms);
}

void breaker_record(struct breaker *br, int64_t now_ms, bool success)
{
    if (!br->cfg.enabled)
        return;
    advance(br, now_ms);
    switch (br->state) {
    case BREAKER_CLOSED:
        record_closed(br, now_ms, success);
        break;
    case BREAKER_HALF_OPEN:
        if (br->probes_in_flight > 0)
            br->probes_in_flight--;
        if (!success) {
            if (++br->probe_failures >= probe_failures_to_reopen(br))
                trip(br, now_ms);
        } else if (++br->probe_successes >=
                   br->cfg.half_open_probes - probe_failures_to_reopen(br) + 1) {
            /* Recovered: start from a clean window so the failures that
             * opened it do not trip it again at once. */
            br->state = BREAKER_CLOSED;
            reset_window(br);
        }
        break;
    case BREAKER_OPEN:
        /* A late answer of a call started before the breaker opened: the
         * open period already reflects the outage. */
        break;
    }
}

enum breaker_state breaker_state(const struct breaker *br, int64_t now_ms)
{
    if (!br->cfg.enabled)
        return BREAKER_CLOSED;
    if (br->state == BREAKER_OPEN && now_ms >= br->opened_at_ms + br->cfg.open_ms)
        return BREAKER_HALF_OPEN;
    return br->state;
}

const char *breaker_state_name(enum breaker_state st)
{
    switch (st) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

void breaker_release(struct breaker *br, int64_t now_ms)
{
    if (!br->cfg.enabled)
        return;
    advance(br, now_ms);
    if (br->state == BREAKER_HALF_OPEN && br->probes_in_flight > 0)
        br->probes_in_flight--;
}
