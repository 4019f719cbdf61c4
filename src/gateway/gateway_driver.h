/*
 * gateway_driver: what makes one gateway API different from another, as one
 * struct per kind. gateway.c does every call the same way (build, check the
 * URL, send, classify by gateway_table.c, inquire) and asks the kind's driver
 * only for its wire format and its safety mechanism.
 *
 * Adding a gateway: a driver file src/gateway/gateway_<kind>.c defining its
 * struct gateway_driver, its row in gateway_driver.c's table, its rows in
 * gateway_table.c (what each of its answers means, cited in
 * docs/gateways.md) and its row in src/config/config_kinds.c (documented
 * defaults and limits). Not for use outside src/gateway/.
 */
#ifndef CR_GATEWAY_DRIVER_H
#define CR_GATEWAY_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gateway_internal.h"

/* How a gateway keeps a retried cancel from refunding twice (bit mask;
 * docs/gateways.md, "Safety mechanisms and drivers"). */
enum gateway_safety {
    /* The same Idempotency-Key on every attempt of a key generation: the
     * gateway answers a repeat with the first answer (Toss, Stripe, PortOne,
     * Adyen). */
    GATEWAY_SAFETY_IDEMPOTENCY_KEY = 1u << 0,
    /* The cancel carries the cancellable balance we expect (read by the
     * inquiry just before it): after an applied cancel the balance differs,
     * and the gateway refuses a second one (PortOne currentCancellableAmount). */
    GATEWAY_SAFETY_BALANCE_GUARD = 1u << 1,
    /* Every attempt starts with an inquiry, and a cancel is sent only when
     * it proves that no cancel of ours applied; an unanswered inquiry is
     * never "not applied" (KakaoPay, and PortOne for its guard). */
    GATEWAY_SAFETY_INQUIRE_FIRST = 1u << 2,
};

/* How the result of an accepted refund becomes known. */
enum gateway_completion {
    GATEWAY_COMPLETION_ANSWER,  /* the answer, or an inquiry (may be pending a while) */
    GATEWAY_COMPLETION_WEBHOOK, /* the answer is only "received"; a notification tells (Adyen) */
};

struct gateway_driver {
    enum gateway_kind kind;
    unsigned safety; /* enum gateway_safety bits */
    enum gateway_completion completion;
    /* Idempotency-Key rules (with GATEWAY_SAFETY_IDEMPOTENCY_KEY):
     * length in characters, and whether the header value is an RFC 8941
     * quoted string (PortOne). */
    size_t key_min_len, key_max_len;
    bool key_quoted;
    const char *inquiry_rule; /* the rule id a readable inquiry answer gets: "toss.inquiry" */
    /* An inquiry answered 404 with this code of the gateway's own proves
     * that it has no such payment (not a proxy's 404); NULL: none. */
    const char *missing_payment_code;
    /* Toss: an "already canceled" answer is confirmed by a payment inquiry
     * before it counts (gateway_toss_resolve_already_refunded()). */
    bool confirm_already_refunded;
    /* The gateway has no read API, and the inquiry is the refund sent again
     * under the same key (Adyen): the gateway answers its first answer, or
     * makes the refund if the first never arrived. Only with the key of the
     * current generation, within its lifetime: never by a caller that does
     * not know the key (reconciliation). */
    bool inquiry_replays_refund;

    /* The authentication header line ("Authorization: ...", "X-API-Key: ...")
     * for cfg, malloc'd, or NULL when out of memory. Holds the secret. */
    char *(*auth_header)(const struct config_gateway *cfg);
    /* Build the refund call for req into spec (cleared on failure). */
    bool (*build_refund)(const struct gateway_build_ctx *ctx, const struct refund_request *req,
                         struct gateway_call_spec *spec, char *err, size_t errlen);
    /* The body shape of a 2xx refund answer as a gateway_table code, or ""
     * when the body does not show our refund (why says what is wrong). */
    const char *(*refund_shape)(const char *body, const struct refund_request *req, char *why,
                                size_t whylen);
    /* The error code and message of a non-2xx body ("" when absent). */
    void (*parse_error)(const char *body, char *code, size_t codelen, char *message, size_t msglen);
    /* The inquiry: inquiry_calls HTTP calls made in order (0: the gateway
     * has none), each built by build_inquiry(step); judge() reads their
     * bodies (all 2xx) into out's finding, amounts, currency and detail. */
    size_t inquiry_calls;
    bool (*build_inquiry)(const struct gateway_build_ctx *ctx, const struct refund_request *req,
                          size_t step, struct gateway_call_spec *spec, char *err, size_t errlen);
    void (*judge)(const char *const *bodies, size_t n, const struct refund_request *req,
                  struct gateway_inquiry *out);
};

/* The driver of kind; NULL for a kind without one. */
const struct gateway_driver *gateway_driver_of(enum gateway_kind kind);

extern const struct gateway_driver gateway_toss_driver;
extern const struct gateway_driver gateway_stripe_driver;
extern const struct gateway_driver gateway_kakaopay_driver;
extern const struct gateway_driver gateway_portone_driver;
extern const struct gateway_driver gateway_adyen_driver;

#endif
