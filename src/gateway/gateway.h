/*
 * gateway: refund calls to a payment gateway, one interface for every kind
 * (Toss Payments, Stripe), the inquiries that find out what the gateway did,
 * and the classification of their answers.
 *
 * Calls are asynchronous through an http_client (http.h): start one, keep
 * driving http_client_run(), and the callback gets a struct gateway_answer
 * (refund) or a struct gateway_inquiry (inquiry).
 *
 * What an answer means is data: gateway_table.h, one row per documented
 * answer (docs/gateways.md cites the gateways' pages). On top of the table:
 * - a 2xx is SUCCEEDED only when its body shows our refund (Toss: the
 *   payment object with a cancel of our amount; Stripe: a refund object of
 *   our amount whose status is succeeded); pending refunds are PENDING, a
 *   2xx that is not the expected object is UNVERIFIED;
 * - Toss ALREADY_CANCELED_PAYMENT is confirmed by a payment inquiry made
 *   before the callback (full cancel: balance 0; partial: the cancels' total
 *   covers this request's amount; unconfirmed -> PERMANENT
 *   ALREADY_REFUNDED_UNCONFIRMED; inquiry not answered -> RETRYABLE);
 * - a code listed in the gateway's retry.non_retryable_codes turns a
 *   RETRYABLE answer into PERMANENT.
 *
 * Secrets: the secret key goes only into the Authorization header; it is
 * never written into an answer, an error or a log line.
 */
#ifndef CR_GATEWAY_H
#define CR_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/http.h"
#include "config/config.h"
#include "gateway/gateway_table.h"

/* One refund to make. All strings are borrowed for the duration of the
 * start call only. */
struct refund_request {
    const char *request_id;      /* ours; Stripe metadata[requestId], to find it by inquiry */
    const char *payment_key;     /* Toss paymentKey, Stripe payment_intent */
    int64_t amount;              /* minor units; always sent, never more than this moves */
    const char *currency;        /* ISO 4217; checked against the answer and the payment */
    bool partial;                /* informational: the amount is sent either way */
    const char *reason;          /* Toss cancelReason; Stripe metadata[cancel_reason] */
    const char *idempotency_key; /* the key of the current generation; NULL = request_id */
    /* Toss names no request on a cancel: how many other requests of this
     * payment with the same amount ended SUCCEEDED, and how many may still
     * make a cancel; an inquiry counts our cancel only beyond theirs. */
    int same_amount_done;
    int same_amount_open;
    /* Balance-guard gateways (PortOne currentCancellableAmount): the
     * payment's cancellable balance before this cancel, as the inquiry just
     * before the send read it; the gateway refuses the cancel when its
     * balance differs. has_guard false: none is sent. */
    bool has_guard;
    int64_t guard_amount;
};

struct gateway_answer {
    enum gateway_verdict verdict;
    long http_status;       /* 0 if no answer */
    char code[64];          /* gateway error code, or ours (TIMEOUT, ...); "" on success */
    char message[256];      /* from the gateway's body or libcurl; never a secret */
    const char *rule;       /* id of the gateway_table row that decided (static) */
    bool stored;            /* the gateway keeps this answer under the key (or may) */
    bool no_refund;         /* the answer proves that nothing was refunded */
    bool gateway_wide;      /* a gateway-wide failure signal (breaker) */
    int64_t retry_after_ms; /* Retry-After, -1 if none */
    int64_t latency_ms;     /* all HTTP calls made for this answer */
    long connects;          /* connections those calls opened (0: all reused one) */
    bool replayed;          /* the gateway replayed a stored answer (Idempotent-Replayed) */
    bool answered;          /* false for timeouts and connection errors */
};

/* What an inquiry found about this request's refund. */
enum refund_finding {
    FINDING_NONE = 0,         /* no inquiry was made */
    FINDING_REFUNDED,         /* our refund exists and is settled */
    FINDING_ALREADY_REFUNDED, /* nothing left to refund, not provably by us */
    FINDING_PENDING,          /* our refund exists, its result is not known yet */
    FINDING_NOT_REFUNDED,     /* proven: no refund of ours exists */
    FINDING_REFUND_FAILED,    /* ours exists but failed or was canceled: no money moved */
    FINDING_MISMATCH,         /* the payment's currency or the refund's amount is not ours */
    FINDING_UNKNOWN,          /* no usable answer: nothing can be concluded */
};

struct gateway_inquiry {
    struct gateway_answer answer; /* of the inquiry's HTTP call(s) */
    enum refund_finding finding;
    int64_t payment_amount;  /* what the payment was for, -1 unknown */
    int64_t refunded_amount; /* refunded on the payment in total, -1 unknown */
    /* What may still be cancelled on the payment, -1 unknown: a balance
     * guard's value (struct refund_request.guard_amount). */
    int64_t cancellable_amount;
    char currency[8];
    char detail[256]; /* one line on how the finding was reached */
};

/* A payment as a status inquiry reports it (Toss GET /v1/payments/{key}). */
struct gateway_payment {
    struct gateway_answer answer; /* SUCCEEDED when the payment below was read */
    char status[32];              /* e.g. DONE, CANCELED, PARTIAL_CANCELED */
    int64_t total_amount;
    int64_t balance_amount;
    int64_t canceled_amount; /* sum of cancels[].cancelAmount, -1 when past int64 */
    char currency[8];
    char refund_status[24]; /* virtualAccount.refundStatus, "" when absent */
    /* The first GATEWAY_MAX_CANCELS cancels: amount, and whether Toss reports
     * it done (cancelStatus DONE, or no cancelStatus at all). */
    struct {
        int64_t amount;
        bool done;
    } cancels[32];
    size_t ncancels;
    bool cancels_truncated;
};

/* Called once per started call, on the thread running http_client_run();
 * answer lives only during the call. */
typedef void (*gateway_done_cb)(const struct gateway_answer *answer, void *arg);
typedef void (*gateway_inquiry_cb)(const struct gateway_payment *payment, void *arg);
typedef void (*gateway_refund_inquiry_cb)(const struct gateway_inquiry *inquiry, void *arg);

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

/* Find out what the gateway did about req, by its driver's inquiry: Toss
 * GET /v1/payments/{key}; Stripe GET /v1/payment_intents/{id} and
 * GET /v1/refunds?payment_intent= (our refunds carry metadata[requestId]);
 * ... Never sends a new refund: a gateway without a read API (Adyen) is
 * asked by the refund replayed under req->idempotency_key, which must then
 * be the current generation's key (false without one). Same callback rules
 * as refunds. */
bool gateway_inquire_refund_start(struct gateway_client *gc, const struct refund_request *req,
                                  gateway_refund_inquiry_cb cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Can a call be made for payment_key at all? It becomes one segment of the
 * URL path (bounds_path_segment_ok: not "", "." or "..", no control
 * characters). The intake refuses other keys; this catches rows written
 * before it did. On false, why says so: no call was sent, so nothing was
 * refunded, and none ever can be for that key. */
bool gateway_payment_key_usable(const char *payment_key, char *why, size_t whylen);

/* "NONE", "REFUNDED", ... */
const char *gateway_finding_name(enum refund_finding f);

/* The name from the config (gateways: key). */
const char *gateway_client_name(const struct gateway_client *gc);

/* The gateway's safety mechanism (gateway_driver.h): must every attempt
 * start with an inquiry, and a cancel go out only when it proves that none
 * of ours applied? */
bool gateway_client_inquires_first(const struct gateway_client *gc);
bool gateway_kind_inquires_first(enum gateway_kind kind);

/* Does the gateway send a refund's result later by notification (Adyen),
 * so that an inquiry is first our own store of notifications? */
bool gateway_client_completes_by_webhook(const struct gateway_client *gc);

/* Is the gateway's inquiry the refund replayed under the same key (Adyen,
 * which has no read API)? */
bool gateway_client_inquiry_replays_refund(const struct gateway_client *gc);

/* Does the gateway take an Idempotency-Key at all? */
bool gateway_client_has_key(const struct gateway_client *gc);

/* The Idempotency-Key of generation gen (1-based) of request_id, within
 * the gateway's key rules, into buf: the requestId itself, then
 * "requestId.2", ...; prefixed where the gateway wants longer keys
 * (PortOne: 16), hashed where it wants shorter ones (Adyen: 64). */
const char *gateway_client_key(const struct gateway_client *gc, const char *request_id, int gen,
                               char *buf, size_t buflen);

/* The same, for key lengths min_len..max_len (the rules of a driver). */
const char *gateway_key_format(const char *request_id, int gen, size_t min_len, size_t max_len,
                               char *buf, size_t buflen);

/* The mark of request_id in the gateway's own record of a cancel (PortOne
 * reason, KakaoPay payload): "cr:<requestId>", or "cr:#<hash>" when the
 * id is longer than 64 characters, so it fits any field. An inquiry that
 * finds it knows the cancel is ours. */
const char *gateway_marker(const char *request_id, char *buf, size_t buflen);

/* Does this answer count against the gateway's circuit breaker? True for
 * the table's gateway-wide signals (timeouts, connection errors, 5xx, 429)
 * that are not a success; false for business answers. */
bool gateway_answer_counts_as_failure(const struct gateway_answer *a);

/* Pure classification of one refund answer, without HTTP: status (0 = no
 * answer), body (may be NULL), curl_code (CURLE_OK when answered),
 * curl_error (libcurl's text, may be NULL), policy (its non_retryable_codes
 * apply; may be NULL) and req (the refund asked for: a 2xx body must show
 * its amount and currency; NULL only for inquiries, whose 2xx is
 * SUCCEEDED). Fills every field but latency_ms, connects (0) and replayed (false).
 * For Toss ALREADY_CANCELED_PAYMENT it returns ALREADY_REFUNDED before any
 * inquiry: gateway_toss_resolve_already_refunded() does the confirmation. */
void gateway_classify(enum gateway_kind kind, long status, const char *body, int curl_code,
                      const char *curl_error, const struct retry_policy *policy,
                      const struct refund_request *req, struct gateway_answer *out);

/* Judge a Toss payment object (inquiry answer) against req. */
enum refund_finding gateway_toss_judge(const struct gateway_payment *p,
                                       const struct refund_request *req, char *detail,
                                       size_t detaillen);

/* Judge Stripe's PaymentIntent and refund list bodies against req, filling
 * out's finding, amounts, currency and detail. */
void gateway_stripe_judge(const char *payment_intent_body, const char *refunds_body,
                          const struct refund_request *req, struct gateway_inquiry *out);

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
