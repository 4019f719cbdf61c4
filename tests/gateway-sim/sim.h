/*
 * sim: the shared context of the gateway simulator and the plain structs that
 * the HTTP glue (server.c) and the request handlers (toss.c, stripe.c,
 * admin.c) pass between them.
 *
 * The simulator is a test and demo tool, never deployed. Its state (ledger,
 * faults) lives in the struct sim below, which every connection thread shares;
 * each module guards its own part with a mutex.
 */
#ifndef GATEWAY_SIM_SIM_H
#define GATEWAY_SIM_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Which gateway API a payment, a call or an idempotency key belongs to. */
enum sim_gateway {
    SIM_GATEWAY_TOSS = 0,
    SIM_GATEWAY_STRIPE = 1,
    SIM_GATEWAY_KAKAOPAY = 2,
    SIM_GATEWAY_PORTONE = 3,
    SIM_GATEWAY_ADYEN = 4,
};

/* Default secrets when none are given on the command line. */
#define SIM_DEFAULT_TOSS_SECRET    "test_sk_toss_local"
#define SIM_DEFAULT_STRIPE_SECRET  "sk_test_stripe_local"
#define SIM_DEFAULT_PORTONE_SECRET "portone_secret_local"

/* PortOne keeps an Idempotency-Key for 3 hours ("멱등성 보장 기간: 3시간"). */
#define SIM_DEFAULT_PORTONE_KEY_TTL_S 10800
#define SIM_DEFAULT_ADYEN_API_KEY     "adyen_api_key_local"
#define SIM_DEFAULT_ADYEN_MERCHANT    "CancelRetryTest"

/* Largest request body accepted; larger ones get 413. */
#define SIM_MAX_BODY (64 * 1024)

struct ledger;
struct faults;
struct kakaopay_settings;
struct adyen;

struct sim {
    struct ledger *ledger; /* owned */
    struct faults *faults; /* owned */
    char *toss_secret;     /* owned; secret: never logged */
    char *stripe_secret;   /* owned; secret: never logged */
    char *portone_secret;  /* owned; secret: never logged */
    struct adyen *adyen;   /* owned; NULL until main sets it (adyen.h) */
    atomic_bool stopping;  /* set on shutdown: cuts injected sleeps short */
    /* owned: the KakaoPay secret, cid, guard and error format (kakaopay.h) */
    struct kakaopay_settings *kakaopay;
    /* PortOne's idempotency, changed by main (--portone-*) or the admin API
     * while calls run, hence atomic: how long a key is kept after its first
     * use, and whether error answers are stored under it. */
    atomic_llong portone_key_ttl_ms;
    atomic_bool portone_store_errors;
    /* What the command line set them to: POST /_sim/reset goes back to it. */
    int64_t portone_initial_key_ttl_ms;
    bool portone_initial_store_errors;
};

/* One query-string argument, decoded. value is "" for "?name". */
struct sim_query_arg {
    const char *name;
    const char *value;
};

/* One HTTP request as the handlers see it. Every pointer is borrowed from the
 * HTTP layer for the duration of the call; absent headers are NULL. body is
 * NUL-terminated (body[body_len] == '\0') but may contain other NULs. */
struct sim_request {
    const char *method;
    const char *path; /* without the query string */
    const char *authorization;
    const char *idempotency_key;
    const char *api_key;               /* X-API-Key (Adyen) */
    const struct sim_query_arg *query; /* in the order given; nquery of them */
    size_t nquery;
    const char *body;
    size_t body_len;
};

/* What to answer. body is owned (malloc) and may be NULL for an empty body.
 * retry_after >= 0 adds a Retry-After header (retry_after_text, when not
 * empty, is sent as its value instead: any text a test wants); replayed adds
 * "Idempotent-Replayed: true"; drop closes the connection without answering;
 * echo_idempotency_key sends the request's Idempotency-Key back (Adyen). */
struct sim_response {
    int status;
    char *body;
    int retry_after;
    bool replayed;
    bool drop;
    char retry_after_text[48];
    bool echo_idempotency_key;
};

#define SIM_RESPONSE_INIT                                                                          \
    {                                                                                              \
        0, NULL, -1, false, false, "", false                                                       \
    }

/* Create the context with copies of the two secrets. Returns NULL when out
 * of memory. Free with sim_free(); sim_free(NULL) is a no-op. */
struct sim *sim_new(const char *toss_secret, const char *stripe_secret);
void sim_free(struct sim *sim);

/* Route one request to the Toss, Stripe, KakaoPay, PortOne or admin handlers and fill resp
 * (which must start as SIM_RESPONSE_INIT; the caller frees resp->body). May
 * sleep when a latency or hang fault says so. */
void sim_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

/* Which of the two endpoints Toss and PortOne both have a request is for:
 * GET PREFIX{id} (the payment inquiry) or POST PREFIX{id}/cancel. */
enum sim_payment_route {
    SIM_ROUTE_ANSWERED = 0, /* neither: resp holds the 404, 405 or 500 */
    SIM_ROUTE_INQUIRY,
    SIM_ROUTE_CANCEL,
};

/* Route req, whose path starts with prefix, for gateway (whose words an
 * error answer is in). On INQUIRY and CANCEL *id is the payment's id of the
 * path (malloc'd, the caller frees it); on ANSWERED it is NULL. */
enum sim_payment_route sim_payment_route(const struct sim_request *req, const char *prefix,
                                         enum sim_gateway gateway, char **id,
                                         struct sim_response *resp);

/* The value of the first query argument called name, or NULL. */
const char *sim_request_query(const struct sim_request *req, const char *name);

/* Set resp to status with the JSON of obj as body. Steals the reference to
 * obj (NULL gives an empty object). */
void sim_respond_json(struct sim_response *resp, int status, json_t *obj);

/* Set resp to an error in the given gateway's format: Toss
 * {"code","message"}, Stripe {"error":{"type","code","message"}} (code left
 * out when NULL; type ignored for Toss), PortOne {"type": code, "message"},
 * Adyen's ServiceError {"status","errorCode","message","errorType"}
 * (stripe_type is errorType). */
void sim_respond_error(struct sim_response *resp, enum sim_gateway gateway, int status,
                       const char *stripe_type, const char *code, const char *message);

/* Release resp->body and reset resp to SIM_RESPONSE_INIT. */
void sim_response_clear(struct sim_response *resp);

/* Sleep ms milliseconds in short slices, returning early (false) once the
 * simulator is stopping so that shutdown never waits for an injected hang. */
bool sim_sleep_ms(struct sim *sim, int64_t ms);

/* Format ms since the epoch as RFC 3339 UTC ("2026-11-20T09:15:02.123Z"). */
void sim_format_time(int64_t ms, char *buf, size_t buflen);

/* "toss", "stripe", "kakaopay", "portone" or "adyen"; sim_gateway_parse() is the reverse (false
 * if unknown). */
const char *sim_gateway_name(enum sim_gateway gateway);
bool sim_gateway_parse(const char *s, enum sim_gateway *out);

#endif
