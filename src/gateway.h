/*
 * gateway: refund calls to a payment gateway, one interface for every kind
 * (Toss Payments, Stripe), and the one place where a gateway's answer is
 * classified into what the retry layer does next.
 *
 * Calls are asynchronous through an http_client (http.h): start one, keep
 * driving http_client_run(), and the callback gets a struct gateway_answer.
 *
 * Classification (architecture.md, "Retry policy"):
 * - SUCCEEDED: 2xx, including an idempotent replay of an earlier success.
 * - ALREADY_REFUNDED: Toss ALREADY_CANCELED_PAYMENT confirmed by a payment
 *   inquiry made before the callback (full cancel: balanceAmount 0; partial:
 *   the cancels' total covers this request's amount; unconfirmed -> PERMANENT
 *   ALREADY_REFUNDED_UNCONFIRMED; inquiry not answered -> RETRYABLE);
 *   Stripe charge_already_refunded.
 * - RETRYABLE: timeout, connection error, 5xx, 429 (retry_after_ms set),
 *   Toss PROVIDER_ERROR, the 409 "same key still in progress" conflicts.
 * - PERMANENT: other 4xx business errors, idempotency-key mismatches.
 * - CONFIG_FAULT: 401/403, a malformed base_url or a TLS setup failure:
 *   nothing a retry fixes; alert a human.
 * A code listed in the gateway's retry.non_retryable_codes turns a RETRYABLE
 * answer into PERMANENT.
 *
 * Secrets: the secret key goes only into the Authorization header; it is
 * never written into an answer, an error or a log line.
 */
#ifndef CR_GATEWAY_H
#define CR_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"

/* One refund to make. All strings are borrowed for the duration of the
 * start call only. */
struct refund_request {
    const char *request_id;  /* sent as Idempotency-Key on every attempt */
    const char *payment_key; /* Toss paymentKey, Stripe payment_intent */
    int64_t amount;          /* minor units; sent only when partial */
    const char *currency;    /* ISO 4217; informational (neither API takes it) */
    bool partial;            /* false: refund whatever remains */
    const char *reason;      /* Toss cancelReason; Stripe metadata[cancel_reason] */
};

enum gateway_verdict {
    GATEWAY_SUCCEEDED = 0,
    GATEWAY_ALREADY_REFUNDED,
    GATEWAY_RETRYABLE,
    GATEWAY_PERMANENT,
    GATEWAY_CONFIG_FAULT,
};

struct gateway_answer {
    enum gateway_verdict verdict;
    long http_status;       /* 0 if no answer */
    char code[64];          /* gateway error code, or ours (TIMEOUT, ...); "" on success */
    char message[256];      /* from the gateway's body or libcurl; never a secret */
    int64_t retry_after_ms; /* Retry-After, -1 if none */
    int64_t latency_ms;     /* all HTTP calls made for this answer */
    bool replayed;          /* the gateway replayed a stored answer (Idempotent-Replayed) */
    bool answered;          /* false for timeouts and connection errors */
};

/* A payment as a status inquiry reports it (Toss GET /v1/payments/{key}). */
struct gateway_payment {
    struct gateway_answer answer; /* SUCCEEDED when the payment below was read */
    char status[32];              /* e.g. DONE, CANCELED, PARTIAL_CANCELED */
    int64_t total_amount;
    int64_t balance_amount;
    int64_t canceled_amount; /* sum of cancels[].cancelAmount */
    char currency[8];
};

/* Called once per started call, on the thread running http_client_run();
 * answer lives only during the call. */
typedef void (*gateway_done_cb)(const struct gateway_answer *answer, void *arg);
typedef void (*gateway_inquiry_cb)(const struct gateway_payment *payment, void *arg);

struct gateway_client;

/* A client for the gateway cfg describes, making its calls through http.
 * Both are borrowed and must outlive the client. Returns NULL and writes err
 * (never containing the secret) on failure. */
struct gateway_client *gateway_client_new(const struct config_gateway *cfg,
                                          struct http_client *http, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Free the client. Calls still in flight keep a pointer to it: free the
 * http_client first (which finishes them) or wait until none is in flight.
 * gateway_client_free(NULL) is a no-op. */
void gateway_client_free(struct gateway_client *gc);

/* Start a refund. cb(answer, arg) is called exactly once from
 * http_client_run() if this returns true; on false (err written) never. */
bool gateway_refund_start(struct gateway_client *gc, const struct refund_request *req,
                          gateway_done_cb cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Start a payment status inquiry. Only Toss has one; for other kinds returns
 * false with "cannot inquire ...". Same callback rules as refunds. */
bool gateway_inquire_start(struct gateway_client *gc, const char *payment_key,
                           gateway_inquiry_cb cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The name from the config (gateways: key). */
const char *gateway_client_name(const struct gateway_client *gc);

/* "SUCCEEDED", "ALREADY_REFUNDED", "RETRYABLE", "PERMANENT", "CONFIG_FAULT". */
const char *gateway_verdict_name(enum gateway_verdict v);

/* Does this answer count against the gateway's circuit breaker? True for
 * RETRYABLE answers that are timeouts, connection errors, 5xx or 429; false
 * for business answers (4xx, success, the 409 in-progress conflict). */
bool gateway_answer_counts_as_failure(const struct gateway_answer *a);

/* Pure classification of one refund answer, without HTTP: status (0 = no
 * answer), body (may be NULL), curl_code (CURLE_OK when answered),
 * curl_error (libcurl's text, may be NULL) and policy (its
 * non_retryable_codes apply; may be NULL). Fills verdict, http_status, code,
 * message and answered; sets retry_after_ms -1, latency_ms 0, replayed false.
 * For Toss ALREADY_CANCELED_PAYMENT it returns ALREADY_REFUNDED before any
 * inquiry: gateway_toss_resolve_already_refunded() does the confirmation. */
void gateway_classify(enum gateway_kind kind, long status, const char *body, int curl_code,
                      const char *curl_error, const struct retry_policy *policy,
                      struct gateway_answer *out);

/* Parse a Toss payment object (inquiry or cancel answer) into out (answer
 * untouched). Returns false if body is not one. */
bool gateway_toss_parse_payment(const char *body, struct gateway_payment *out);

/* Decide an ALREADY_CANCELED_PAYMENT answer from the inquiry that followed
 * it: a full cancel (partial false) is confirmed when the balance is 0, a
 * partial one when canceled_amount >= amount; then answer stays
 * ALREADY_REFUNDED. Unconfirmed -> PERMANENT, code
 * ALREADY_REFUNDED_UNCONFIRMED. An inquiry that got no answer, a 5xx or a 429
 * -> RETRYABLE (INQUIRY_FAILED); a 401/403 -> CONFIG_FAULT. */
void gateway_toss_resolve_already_refunded(const struct gateway_payment *inquiry, bool partial,
                                           int64_t amount, struct gateway_answer *answer);

#endif
