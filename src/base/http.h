/*
 * http: many concurrent HTTP calls on one thread, over libcurl's multi
 * interface. Used by the gateway clients and the Slack alert consumer; knows
 * nothing about either.
 *
 * The owner submits requests and calls http_client_run() in its loop; every
 * finished transfer calls its callback from inside http_client_run(), on the
 * owner's thread. Only http_client_wakeup() may be called from another thread.
 *
 * One call, one request on the wire. libcurl re-sends a request by itself
 * when a connection it reused dies before any answer byte arrives
 * (lib/transfer.c Curl_retry_request, "Connection died, retrying a fresh
 * connect"), POSTs included; the server may have read and applied the first
 * send, and the attempt log, the breaker and the rate limit would see one
 * call where two were made. So every request passes a pre-request hook
 * (CURLOPT_PREREQFUNCTION, called each time libcurl is about to send it, on
 * a new or a reused connection): a non-GET is sent at most once per call; a
 * second send is aborted and the call ends with resend_blocked set, an
 * indeterminate outcome like a timeout after sending. GETs (inquiries) may be
 * re-sent freely. A non-GET goes over a kept-alive connection only when the
 * request asks for it (keep_alive); otherwise over a fresh one, closed after.
 *
 * Redaction: the debug trace of a request passes its URL (a Slack webhook
 * URL is a secret) and header lines (Authorization carries gateway
 * secrets) through redact.h; no header value or body is logged at info
 * level, and no body at all.
 */
#ifndef CR_HTTP_H
#define CR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

/* Response bodies beyond this are cut (and body_truncated set): gateway and
 * Slack answers are small, a huge one is a bug or an attack. */
#define HTTP_BODY_MAX (1024 * 1024)

struct http_request {
    const char *method;         /* "GET", "POST", ...; NULL = GET */
    const char *url;            /* absolute http(s) URL */
    const char *const *headers; /* "Name: value" lines, nheaders of them */
    size_t nheaders;
    const char *body; /* may be NULL; body_len bytes are sent */
    size_t body_len;
    int64_t connect_timeout_ms; /* 0 = libcurl's default */
    int64_t timeout_ms;         /* whole transfer; 0 = none (avoid) */
    bool tls_verify;            /* peer and host verification; on in HTTP_REQUEST_INIT */
    const char *ca_file;        /* optional CA bundle, NULL = system default */
    /* A non-GET may reuse a kept-alive connection and leave its own behind
     * (GETs always may); false: a fresh connection, closed afterwards. */
    bool keep_alive;
    /* Reuse only a connection idle for less than this (rounded down to whole
     * seconds, at least 1 s); 0 = libcurl's default (118 s). Keep it below
     * the server's idle timeout, so the server never closes a connection
     * just as we reuse it. */
    int64_t max_idle_ms;
};

/* Start every request from this: TLS verification on, everything else empty. */
#define HTTP_REQUEST_INIT                                                                          \
    {                                                                                              \
        NULL, NULL, NULL, 0, NULL, 0, 0, 0, true, NULL, false, 0                                   \
    }

struct http_response {
    long status;              /* HTTP status, 0 if no answer came */
    const char *body;         /* NUL-terminated, "" if none; valid during the callback only */
    size_t body_len;          /* bytes in body (at most HTTP_BODY_MAX) */
    bool body_truncated;      /* the answer was longer than HTTP_BODY_MAX */
    int64_t retry_after_ms;   /* from Retry-After (seconds or HTTP date), -1 if absent;
                               * at most HTTP_RETRY_AFTER_MAX_MS */
    bool retry_after_clamped; /* Retry-After said more than HTTP_RETRY_AFTER_MAX_MS */
    bool idempotent_replayed; /* "Idempotent-Replayed: true" was in the answer */
    CURLcode curl_code;       /* CURLE_OK when the transfer completed */
    const char *curl_error;   /* human-readable transfer error, "" if none */
    int64_t latency_ms;       /* from submit to completion */
    /* The request was sent on a reused connection that then died before any
     * answer byte, and libcurl was stopped from sending it again on a new
     * one (curl_code CURLE_ABORTED_BY_CALLBACK): the server may have acted
     * on the one send. Only for non-GETs. */
    bool resend_blocked;
    long connects; /* connections this call opened: 0 when it reused one */
};

/* Called once per submitted request, with a response that lives only during
 * the call. The callback may submit new requests. */
typedef void (*http_done_cb)(const struct http_response *resp, void *arg);

struct http_client;

/* A client with no transfers. Returns NULL and writes err on failure. */
struct http_client *http_client_new(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Abort every transfer still in flight, calling its callback with status 0 and
 * curl_code CURLE_ABORTED_BY_CALLBACK so owners can release their arg (no new
 * submit is accepted from those callbacks), then free everything.
 * http_client_free(NULL) is a no-op. */
void http_client_free(struct http_client *client);

/* Queue req; the client copies everything it needs (url, headers, body), so
 * req may be released on return. cb(resp, arg) runs later from
 * http_client_run(). Returns false and writes err if the transfer could not
 * be set up (cb will then never be called). */
bool http_client_submit(struct http_client *client, const struct http_request *req, http_done_cb cb,
                        void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Drive the transfers: do whatever I/O is ready, wait up to timeout_ms for
 * more (less if a transfer times out sooner, or if http_client_wakeup() is
 * called), and call the callback of every transfer that finished. Waits even
 * with nothing in flight, so it can be a loop's only sleep. Returns the number
 * of callbacks called, or -1 (err written) if libcurl failed. */
int http_client_run(struct http_client *client, int timeout_ms, char *err, size_t errlen);

/* Open at most n connections to any one host (CURLMOPT_MAX_HOST_CONNECTIONS);
 * calls beyond wait for a free one, and the wait counts toward their
 * timeout. Keeps the largest n asked for (one client serves several
 * gateways); n <= 0 changes nothing. False (err written) if libcurl refused. */
bool http_client_limit_host_connections(struct http_client *client, long n, char *err,
                                        size_t errlen) __attribute__((warn_unused_result));

/* Transfers submitted whose callback has not run yet. */
size_t http_client_in_flight(const struct http_client *client);

/* Make a concurrent or later http_client_run() return early. Safe from any
 * thread (curl_multi_wakeup). */
void http_client_wakeup(struct http_client *client);

/* The longest wait a Retry-After may ask for: one day. A server that asks
 * for longer (9223372036854775 seconds, a date in the year 9999) is not
 * planning a maintenance window, it is broken; believing it would overflow
 * "now + delay" and park the work for ever. */
#define HTTP_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* Parse a Retry-After value: delta-seconds ("120", any number of digits) or
 * an HTTP date, relative to now (seconds since the epoch). Stores
 * milliseconds (0 for a date in the past) in *out_ms, at most
 * HTTP_RETRY_AFTER_MAX_MS, and returns true; *clamped (may be NULL) tells
 * whether the value asked for more. False if the value is neither. */
bool http_parse_retry_after(const char *value, time_t now, int64_t *out_ms, bool *clamped);

#endif
