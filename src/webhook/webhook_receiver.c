/*
 * webhook_receiver: see webhook_receiver.h.
 */
#include "webhook/webhook_receiver.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "base/base64.h"
#include "base/listen_addr.h"
#include "base/log.h"
#include "webhook/adyen_notification.h"
#include "webhook/webhook_delivery.h"

/* The gateways a receiver can tell apart: far more than anyone configures. */
#define WEBHOOK_MAX_GATEWAYS 16
/* A deadlock or serialization failure between two deliveries (or with a
 * worker) is run again at once a few times before the sender is told to
 * come back later. */
#define WEBHOOK_TX_TRIES 3

struct webhook_receiver {
    const struct config *cfg;
    struct db *db;
    struct metrics *metrics;
    struct webhook_keys gws[WEBHOOK_MAX_GATEWAYS];
    size_t ngws;
    /* "Basic base64(user:password)" per gateway with webhook_basic_auth. */
    char *authorization[WEBHOOK_MAX_GATEWAYS];
    struct MHD_Daemon *daemon;
    unsigned port;
};

/* A request being received: its body so far. */
struct upload {
    char *body;
    size_t len, cap;
    bool too_big;
};

static void describe(struct metrics *m)
{
    metrics_describe(m, "cancel_retry_webhook_deliveries_total", "counter",
                     "webhook deliveries answered, by HTTP status");
    metrics_describe(m, "cancel_retry_webhook_items_total", "counter",
                     "new webhook notification items stored, by gateway and event");
    metrics_describe(m, "cancel_retry_webhook_duplicates_total", "counter",
                     "webhook items delivered again after they were stored (acknowledged, "
                     "not stored twice)");
    metrics_describe(m, "cancel_retry_webhook_rejected_total", "counter",
                     "webhook deliveries refused, by reason (hmac, basic_auth, malformed, "
                     "too_large, database)");
    metrics_describe(m, "cancel_retry_webhook_unmatched_total", "counter",
                     "refund notifications that matched no request (dead-lettered)");
    metrics_describe(m, "cancel_retry_webhook_woken_total", "counter",
                     "requests made due at once by a refund notification");
}

struct webhook_receiver *webhook_receiver_new(const struct config *cfg, struct db *db,
                                              struct metrics *m, char *err, size_t errlen)
{
    if (cfg->webhooks.listen == NULL) {
        snprintf(err, errlen, "webhooks.listen is not set: the receiver has nowhere to listen");
        return NULL;
    }
    struct webhook_receiver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    r->db = db;
    r->metrics = m;
    r->ngws = webhook_keys_from_config(cfg, r->gws, WEBHOOK_MAX_GATEWAYS);
    size_t signed_gateways = 0;
    for (size_t g = 0; g < cfg->ngateways; g++)
        signed_gateways += cfg->gateways[g].n_webhook_hmac_keys > 0;
    if (signed_gateways > r->ngws)
        log_warn("%zu gateways have webhook_hmac_keys; the receiver serves the first %zu",
                 signed_gateways, r->ngws);
    if (r->ngws == 0) {
        snprintf(err, errlen,
                 "no gateway has webhook_hmac_keys: the receiver could verify nothing");
        webhook_receiver_free(r);
        return NULL;
    }
    for (size_t g = 0; g < r->ngws; g++) {
        const char *auth = r->gws[g].basic_auth;
        if (auth == NULL)
            continue;
        size_t len = strlen(auth);
        r->authorization[g] = malloc(sizeof("Basic ") - 1 + BASE64_ENCODED_SIZE(len));
        if (r->authorization[g] == NULL) {
            snprintf(err, errlen, "out of memory");
            webhook_receiver_free(r);
            return NULL;
        }
        memcpy(r->authorization[g], "Basic ", 6);
        base64_encode((const unsigned char *)auth, len, r->authorization[g] + 6);
    }
    describe(m);
    return r;
}

void webhook_receiver_free(struct webhook_receiver *r)
{
    if (r == NULL)
        return;
    if (r->daemon != NULL)
        MHD_stop_daemon(r->daemon);
    webhook_keys_wipe(r->gws, r->ngws);
    for (size_t g = 0; g < WEBHOOK_MAX_GATEWAYS; g++) {
        if (r->authorization[g] != NULL)
            OPENSSL_cleanse(r->authorization[g], strlen(r->authorization[g]));
        free(r->authorization[g]);
    }
    free(r);
}

/* The gateway's Basic credentials, when it has any, were presented. */
static bool basic_auth_ok(const struct webhook_receiver *r, size_t g, const char *authorization)
{
    const char *want = r->authorization[g];
    if (want == NULL)
        return true;
    if (authorization == NULL || strlen(authorization) != strlen(want) ||
        strncasecmp(authorization, "Basic ", 6) != 0)
        return false;
    return CRYPTO_memcmp(authorization + 6, want + 6, strlen(want) - 6) == 0;
}

static void reject(struct webhook_answer *a, unsigned status, const char *body, const char *reason)
{
    a->status = status;
    a->body = body;
    a->reason = reason;
}

/* Store d for gateway, running the transaction again after a deadlock. */
static bool store(struct webhook_receiver *r, const char *gateway, const struct adyen_delivery *d,
                  struct webhook_store_stats *stats, char *err, size_t errlen)
{
    for (int i = 0; i < WEBHOOK_TX_TRIES; i++) {
        if (webhook_delivery_store(r->db, r->cfg, gateway, d, "webhook-receiver", stats, err,
                                   errlen))
            return true;
        if (db_last_error_class(r->db) != DB_ERR_RETRY_TX)
            return false;
    }
    return false;
}

static void count_stored(struct webhook_receiver *r, const char *gateway,
                         const struct adyen_delivery *d, const struct webhook_store_stats *s)
{
    char labels[160];
    snprintf(labels, sizeof(labels), "gateway=\"%s\"", gateway);
    if (s->items > 0)
        metrics_add(r->metrics, "cancel_retry_webhook_items_total", labels, s->items);
    metrics_add(r->metrics, "cancel_retry_webhook_duplicates_total", labels, s->duplicates);
    metrics_add(r->metrics, "cancel_retry_webhook_unmatched_total", labels, s->unmatched);
    metrics_add(r->metrics, "cancel_retry_webhook_woken_total", labels, s->woken);
    log_info("webhook delivery of %s accepted: %zu item(s), %d new, %d duplicate(s), %d "
             "matched, %d unmatched, %d request(s) woken, %d dead letter(s)",
             gateway, d->nitems, s->items, s->duplicates, s->matched, s->unmatched, s->woken,
             s->dead_letters);
}

void webhook_receiver_handle(struct webhook_receiver *r, const char *authorization,
                             const char *body, size_t len, struct webhook_answer *a)
{
    struct adyen_delivery d;
    struct webhook_store_stats stats;
    char err[1024];
    size_t bad = 0;

    if (!adyen_delivery_parse(body, len, &d, err, sizeof(err))) {
        log_warn("webhook delivery refused (400): %s", err);
        reject(a, MHD_HTTP_BAD_REQUEST, "[rejected] not a notification delivery\n", "malformed");
        return;
    }
    int g = webhook_keys_verify(r->gws, r->ngws, &d, &bad);
    if (g < 0) {
        /* Names what failed, never a key or a signature. */
        const struct adyen_item *it = &d.items[bad < d.nitems ? bad : 0];
        log_warn("webhook delivery refused (401): item %zu of %zu (%.40s %.64s) %s; nothing "
                 "stored",
                 bad + 1, d.nitems, it->event_code, it->psp_reference,
                 it->hmac_signature == NULL ? "carries no HMAC signature"
                                            : "has an HMAC signature no configured key verifies");
        reject(a, MHD_HTTP_UNAUTHORIZED, "[rejected] signature\n", "hmac");
        goto out;
    }
    const char *gateway = r->gws[g].gateway;
    if (!basic_auth_ok(r, (size_t)g, authorization)) {
        log_warn("webhook delivery of %s refused (401): %s Basic credentials; nothing stored",
                 gateway, authorization == NULL ? "no" : "wrong");
        reject(a, MHD_HTTP_UNAUTHORIZED, "[rejected] credentials\n", "basic_auth");
        goto out;
    }
    if (!db_tend(r->db)) {
        log_warn("webhook delivery of %s not accepted (503): the database is not reachable; "
                 "the gateway will deliver it again",
                 gateway);
        reject(a, MHD_HTTP_SERVICE_UNAVAILABLE, "[not accepted] try again later\n", "database");
        goto out;
    }
    if (!store(r, gateway, &d, &stats, err, sizeof(err))) {
        log_error("webhook delivery of %s not accepted (503): %s; the gateway will deliver it "
                  "again",
                  gateway, err);
        reject(a, MHD_HTTP_SERVICE_UNAVAILABLE, "[not accepted] try again later\n", "database");
        goto out;
    }
    count_stored(r, gateway, &d, &stats);
    /* 202 and "[accepted]": what Adyen's newer rule (any 2xx) and its older
     * one (the body [accepted]) both take as acknowledged. */
    a->status = MHD_HTTP_ACCEPTED;
    a->body = "[accepted]";
    a->reason = NULL;
out:
    adyen_delivery_clear(&d);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, "Allow", "POST");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result counted(struct webhook_receiver *r, struct MHD_Connection *conn,
                               const struct webhook_answer *a)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "status=\"%u\"", a->status);
    metrics_add(r->metrics, "cancel_retry_webhook_deliveries_total", labels, 1);
    if (a->reason != NULL) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", a->reason);
        metrics_add(r->metrics, "cancel_retry_webhook_rejected_total", labels, 1);
    }
    return answer(conn, a->status, a->body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct webhook_receiver *r = cls;
    struct upload *up = *con_cls;
    struct webhook_answer a;

    (void)version;
    if (up == NULL) {
        if (strcmp(url, r->cfg->webhooks.path) != 0)
            return answer(conn, MHD_HTTP_NOT_FOUND, "not found\n");
        if (strcmp(method, "POST") != 0)
            return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only POST\n");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > WEBHOOK_MAX_BODY) {
            reject(&a, MHD_HTTP_CONTENT_TOO_LARGE, "[rejected] body too large\n", "too_large");
            return counted(r, conn, &a);
        }
        up = calloc(1, sizeof(*up));
        if (up == NULL)
            return MHD_NO;
        *con_cls = up;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (up->too_big || up->len + n > WEBHOOK_MAX_BODY) {
            up->too_big = true;
            return MHD_YES;
        }
        if (up->len + n + 1 > up->cap) {
            size_t cap = up->cap ? up->cap : 8192;
            while (cap < up->len + n + 1)
                cap *= 2;
            char *body = realloc(up->body, cap);
            if (body == NULL)
                return MHD_NO;
            up->body = body;
            up->cap = cap;
        }
        memcpy(up->body + up->len, upload_data, n);
        up->len += n;
        return MHD_YES;
    }
    if (up->too_big) {
        log_warn("webhook delivery refused (413): body over %d bytes", WEBHOOK_MAX_BODY);
        reject(&a, MHD_HTTP_CONTENT_TOO_LARGE, "[rejected] body too large\n", "too_large");
    } else {
        webhook_receiver_handle(
            r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            up->body != NULL ? up->body : "", up->len, &a);
    }
    return counted(r, conn, &a);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (up != NULL) {
        free(up->body);
        free(up);
        *con_cls = NULL;
    }
}

bool webhook_receiver_listen(struct webhook_receiver *r, char *err, size_t errlen)
{
    char host[128];
    struct sockaddr_in addr;
    const char *listen = r->cfg->webhooks.listen;

    if (!listen_addr_parse(listen, &addr, host, sizeof(host))) {
        snprintf(err, errlen, "webhooks.listen \"%s\" is not an IPv4 host:port", listen);
        return false;
    }
    /* No internal thread: run_once serves in the caller's thread, the only
     * one that uses the database connection. No per-address limit: the
     * gateway's deliveries may all come through one proxy. */
    r->daemon = MHD_start_daemon(MHD_USE_AUTO, ntohs(addr.sin_port), NULL, NULL, on_request, r,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEBHOOK_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEBHOOK_IDLE_TIMEOUT_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_END);
    if (r->daemon == NULL) {
        snprintf(err, errlen, "could not listen on %s for webhooks (in use?)", listen);
        return false;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info != NULL ? info->port : ntohs(addr.sin_port);
    log_info("webhook receiver at http://%s:%u%s", host, r->port, r->cfg->webhooks.path);
    return true;
}

unsigned webhook_receiver_port(const struct webhook_receiver *r)
{
    return r != NULL ? r->port : 0;
}

bool webhook_receiver_run_once(struct webhook_receiver *r, int wait_ms)
{
    return MHD_run_wait(r->daemon, wait_ms) == MHD_YES;
}
