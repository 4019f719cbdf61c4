/*
 * breaker: circuit breaker with a bucketed sliding window. See breaker.h.
 */
#include "core/breaker.h"

#include <stdlib.h>
#include <string.h>

/* The window is kept as BREAKER_BUCKETS counters of window_ms/BUCKETS each:
 * constant memory whatever the call rate, at the price of forgetting old
 * requests one bucket at a time instead of one at a time. */
#define BREAKER_BUCKETS 10

/* A request lives in one of the BREAKER_NEIGHBOURHOOD slots from its home
 * slot on: a lookup costs at most that many comparisons and needs no
 * deletion protocol, and a full neighbourhood gives up its least recently
 * seen entry. With 32 of the 4096 slots, the first eviction came at about
 * 2,600 distinct requests in one window (measured with random requestIds). */
#define BREAKER_NEIGHBOURHOOD 32

struct breaker_bucket {
    int64_t epoch; /* now_ms / bucket_ms of the results counted here */
    int requests;  /* distinct requests whose latest result is in this bucket */
    int failures;  /* of those, the ones whose latest result failed */
};

/* What the breaker remembers of one request. An entry is in use while its
 * result is counted in the window or while it marks the request as failed;
 * otherwise (a success that has left the window) its slot is free. */
struct breaker_seen {
    uint64_t hash;
    /* counted: the bucket epoch of the result counted for it. Not counted:
     * when it was last seen (its age for eviction); -1: never used. */
    int64_t epoch;
    bool counted; /* its latest counted result is in the bucket of epoch */
    bool failed;  /* failed mark: it failed and has not succeeded since */
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
    struct breaker_seen seen[BREAKER_TRACKED_REQUESTS];
};

/* The home slot needs the table size to be a power of two. */
_Static_assert((BREAKER_TRACKED_REQUESTS & (BREAKER_TRACKED_REQUESTS - 1)) == 0,
               "BREAKER_TRACKED_REQUESTS must be a power of two");

static void reset_window(struct breaker *br)
{
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        br->buckets[i].epoch = -1;
        br->buckets[i].requests = 0;
        br->buckets[i].failures = 0;
    }
    for (int i = 0; i < BREAKER_TRACKED_REQUESTS; i++) {
        br->seen[i].epoch = -1;
        br->seen[i].counted = false;
        br->seen[i].failed = false;
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

static bool in_window(int64_t e, int64_t epoch)
{
    return e >= 0 && e > epoch - BREAKER_BUCKETS && e <= epoch;
}

/* Is entry s's result counted in the window of epoch? */
static bool counted_in_window(const struct breaker_seen *s, int64_t epoch)
{
    return s->counted && in_window(s->epoch, epoch);
}

/* The slot for request hash at epoch: its own entry if it has one (counted
 * in the window or marked failed), else a free slot of its neighbourhood,
 * else the least recently seen entry there, which is forgotten. A forgotten
 * entry's result stays counted in its bucket (it was a distinct request of
 * the window all the same), and a forgotten failed mark lets the request's
 * next failure count again. A slot returned for a new entry is cleared. */
static struct breaker_seen *seen_slot(struct breaker *br, uint64_t hash, int64_t epoch)
{
    /* Callers' hashes may be weak in the low bits (tests pass small
     * numbers): mix them (splitmix64's finaliser) before picking a slot. */
    uint64_t h = hash;
    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    size_t home = (size_t)(h & (BREAKER_TRACKED_REQUESTS - 1));

    struct breaker_seen *unused = NULL, *oldest = NULL;
    for (size_t i = 0; i < BREAKER_NEIGHBOURHOOD; i++) {
        struct breaker_seen *s = &br->seen[(home + i) & (BREAKER_TRACKED_REQUESTS - 1)];
        bool in_use = s->failed || counted_in_window(s, epoch);
        if (in_use && s->hash == hash)
            return s;
        if (!in_use) {
            if (unused == NULL)
                unused = s;
        } else if (oldest == NULL || s->epoch < oldest->epoch) {
            oldest = s;
        }
    }
    struct breaker_seen *s = unused != NULL ? unused : oldest;
    s->hash = hash;
    s->epoch = -1;
    s->counted = false;
    s->failed = false;
    return s;
}

/* Record request hash's result in the closed-state window and trip if the
 * ratio is reached. A failure of a request marked failed is a known-bad
 * repeat and changes no count (it only refreshes the entry's age once its
 * first failure has left the window). Otherwise (a success, or a first
 * failure) the result replaces the request's earlier one in the window and
 * sets or clears its failed mark. */
static void record_closed(struct breaker *br, int64_t now_ms, bool success, uint64_t hash)
{
    int64_t epoch = now_ms / br->bucket_ms;
    struct breaker_seen *s = seen_slot(br, hash, epoch);
    if (!success && s->failed) {
        if (!counted_in_window(s, epoch)) {
            s->epoch = epoch;
            s->counted = false;
        }
    } else {
        if (counted_in_window(s, epoch)) {
            /* Counted earlier in the window: take that result out. Its bucket
             * is still the one of s->epoch, as s->epoch is in the window. */
            struct breaker_bucket *old = &br->buckets[s->epoch % BREAKER_BUCKETS];
            if (old->epoch == s->epoch) {
                old->requests--;
                if (s->failed)
                    old->failures--;
            }
        }
        struct breaker_bucket *b = &br->buckets[epoch % BREAKER_BUCKETS];
        if (b->epoch != epoch) {
            b->epoch = epoch;
            b->requests = 0;
            b->failures = 0;
        }
        b->requests++;
        if (!success)
            b->failures++;
        s->epoch = epoch;
        s->counted = true;
        s->failed = !success;
    }

    /* Judged at every record, a known-bad repeat included: the window may
     * have slid since the last one. */
    int requests = 0, failures = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        const struct breaker_bucket *w = &br->buckets[i];
        if (in_window(w->epoch, epoch)) {
            requests += w->requests;
            failures += w->failures;
        }
    }
    if (requests >= br->cfg.min_requests && requests > 0 &&
        (double)failures >= br->cfg.failure_ratio * (double)requests)
        trip(br, now_ms);
}

uint64_t breaker_request_hash(const char *request_id)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    if (request_id == NULL)
        return h;
    for (const unsigned char *p = (const unsigned char *)request_id; *p != '\0'; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

void breaker_record(struct breaker *br, int64_t now_ms, bool success, uint64_t request_hash)
{
    if (!br->cfg.enabled)
        return;
    advance(br, now_ms);
    switch (br->state) {
    case BREAKER_CLOSED:
        record_closed(br, now_ms, success, request_hash);
        break;
    case BREAKER_HALF_OPEN:
        /* Per call: each probe is a different call by construction. */
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
