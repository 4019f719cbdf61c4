/*
 * breaker: a per-gateway circuit breaker, so that a gateway that is down is
 * left alone for a while instead of burning every request's attempt budget.
 *
 * closed -> open when, over the sliding window, at least min_requests distinct
 * requests were recorded and the share of them whose latest result failed
 * reached failure_ratio; open for open_ms, then half-open: up to
 * half_open_probes calls at once are let through and judged by the same
 * failure_ratio: enough failures among them open it again (at least one,
 * e.g. 2 of 3 at 0.5), enough successes close it (2 of 3). A caller refused
 * while every probe slot is taken is told to come back after
 * max(1s, open_for/10), when the probes have likely decided.
 *
 * Distinct requests, not calls: within the window a request counts once, by
 * its latest result (failed six times: one failing request; failed, then
 * succeeded: one success). Counting calls let a few bad payments, each
 * answering 5xx on every one of its retries, fill the window with their own
 * attempts and keep a healthy gateway open; the breaker is meant to react to
 * gateway-wide trouble, which shows up as failures across many requests.
 * It works as far as a request's retries fall in one window: retries spaced
 * wider than window_ms count once in each window they land in, so a bad
 * payment still weighs more than a healthy one there.
 * Half-open probes are judged per call: each probe is a different call, and
 * the window starts afresh when the probes close it.
 *
 * Memory is fixed at breaker_new(): the requests seen in the window are kept
 * in a table of BREAKER_TRACKED_REQUESTS entries (96 KiB per breaker),
 * whatever the rate. Counting is exact up to about 2,500 distinct requests
 * in one window (80 a second with a 30 s window); past that the least
 * recently seen entries start being evicted: their results still count, but
 * an evicted request seen again in the same window counts again, as every
 * call did before.
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

#include "config.h"

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
 * request whose breaker_request_hash() is request_hash: in the closed state
 * it replaces that request's earlier result in the window. */
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
