/*
 * breaker: a per-gateway circuit breaker, so that a gateway that is down is
 * left alone for a while instead of burning every request's attempt budget.
 *
 * closed -> open when, over the sliding window, at least min_requests distinct
 * requests were counted and the share of them whose counted result failed
 * reached failure_ratio; open for open_ms, then half-open: up to
 * half_open_probes calls at once are let through and judged by the same
 * failure_ratio: enough failures among them open it again (at least one,
 * e.g. 2 of 3 at 0.5), enough successes close it (2 of 3). A caller refused
 * while every probe slot is taken is told to come back after
 * max(1s, open_for/10), when the probes have likely decided.
 *
 * What counts, in the closed state:
 * - a request counts once in the window, by its latest counted result
 *   (failed, then succeeded: one success);
 * - a success always counts, and clears the request's failed mark;
 * - a failure counts only as the request's first one (as far as the table
 *   below remembers): it sets the request's failed mark;
 * - a known-bad repeat, a failure of a request already marked failed, is
 *   left out of the window: it counts neither as a failure nor as a success
 *   nor towards min_requests, whichever window it lands in.
 * The breaker exists for gateway-wide outages. In an outage, requests that
 * were healthy, or new, start failing, and that still counts; one bad payment
 * retried for an hour must not. Counting every call let a few bad payments
 * fill the window with their own retries; counting a request once per window
 * still counted it again in each window its retries landed in (30 s doubling
 * spreads 6 attempts over 15 minutes), and with a quarter of the payments
 * failing for good about 62 % of a window's requests were failing on a
 * healthy gateway. The price: when a failing request later fails again
 * because the gateway went down, the outage has to show in other requests.
 * Half-open probes are judged per call: each probe is a different call. When
 * the probes close it, the window starts afresh and the failed marks are
 * forgotten (failures during an outage say nothing about a request itself).
 *
 * Memory is fixed at breaker_new(): the requests counted in the window and
 * the failed marks are kept in one table of BREAKER_TRACKED_REQUESTS entries
 * (96 KiB per breaker), whatever the rate. A failed mark outlives the
 * window; it goes when the request succeeds or when the table needs its slot
 * for a newer request: the least recently seen entry of a small
 * neighbourhood is forgotten. A forgotten counted result stays counted; a
 * forgotten request is new again: its next result counts (a next failure as
 * a first failure), and a forgotten request still in the window counts once
 * more. Nothing tells the breaker that a request is over, so the marks of
 * exhausted requests stay until pushed out. Counting is exact up to about
 * 2,500 requests in use (counted in the window or marked failed). Measured
 * with 10 healthy and 3.3 persistently failing new payments a second, each
 * bad one retried after 30, 60, 120, 240 and 480 s: the table forgets about
 * one mark per bad payment before its last attempt, which then counts, and
 * up to 43 % of a window's requests are failing instead of 25 % (with full
 * jitter, shorter waits: 26 %). With 8 attempts (waits up to 1920 s) the
 * marks must last an hour: it stays closed up to about 0.8 bad payments a
 * second (1.7 with full jitter); at 2.5 a second it opens again.
 *
 * What a failure is belongs to the caller (gateway_answer_counts_as_failure():
 * timeouts, connection errors, 5xx, 429; never business 4xx answers).
 * Time is passed in (milliseconds, monotonic), so tests use a fake clock.
 * Not thread-safe: one owner.
 */
#ifndef CR_BREAKER_H
#define CR_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 };

struct breaker;

/* A closed breaker with a copy of cfg. Returns NULL only when out of memory.
 * A disabled breaker (cfg->enabled false) always allows. */
struct breaker *breaker_new(const struct config_breaker *cfg);

void breaker_free(struct breaker *br);

/* May a call start at now_ms? True: go ahead, and report its result with
 * breaker_record(). False (open, or half-open with every probe slot taken):
 * *retry_at_ms (if not NULL) gets the time to try again; the caller
 * re-schedules the request for then without spending an attempt. */
bool breaker_allow(struct breaker *br, int64_t now_ms, int64_t *retry_at_ms);

/* How many requests the closed-state window tells apart; see above. */
#define BREAKER_TRACKED_REQUESTS 4096

/* Record the result of a call that breaker_allow() let through, for the
 * request whose breaker_request_hash() is request_hash. In the closed state
 * a success, or the request's first failure, replaces its earlier result in
 * the window; a failure of a request marked failed is left out (see above). */
void breaker_record(struct breaker *br, int64_t now_ms, bool success, uint64_t request_hash);

/* The request_hash of breaker_record() for a requestId: 64-bit FNV-1a of its
 * bytes (NULL hashes as ""). */
uint64_t breaker_request_hash(const char *request_id);

/* Give back a permission breaker_allow() granted for a call that was then not
 * made (the request turned out to be stale or already claimed), so that a
 * half-open probe slot is not held forever. */
void breaker_release(struct breaker *br, int64_t now_ms);

/* The state at now_ms (open turns half-open once open_ms has passed). */
enum breaker_state breaker_state(const struct breaker *br, int64_t now_ms);

/* "closed", "open", "half_open". */
const char *breaker_state_name(enum breaker_state st);

#endif
