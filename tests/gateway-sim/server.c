/*
 * server: libmicrohttpd glue. See server.h.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/log.h"

/* Idle keep-alive connections are closed after this many seconds. Requests
 * being handled (an injected hang) are not subject to it. */
#define SERVER_IDLE_TIMEOUT_S 120

struct server {
    struct MHD_Daemon *daemon;
    struct sim *sim; /* borrowed */
    uint16_t port;
};

/* Per-request state, kept in MHD's con_cls between handler calls. */
struct request_ctx {
    char *body; /* owned, NUL-terminated */
    size_t len;
    size_t cap;
    bool too_large;
    struct sim_query_arg *query; /* owned array; the strings are MHD's */
    size_t nquery, cap_query;
    bool query_oom;
};

static void request_ctx_free(struct request_ctx *ctx)
{
    if (ctx == NULL)
        return;
    free(ctx->body);
    free(ctx->query);
    free(ctx);
}

/* MHD_KeyValueIterator: append one query argument to the request's list. */
static enum MHD_Result collect_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    struct request_ctx *ctx = cls;

    (void)kind;
    if (ctx->nquery == ctx->cap_query) {
        size_t ncap = ctx->cap_query ? ctx->cap_query * 2 : 8;
        struct sim_query_arg *p = realloc(ctx->query, ncap * sizeof(*p));
        if (p == NULL) {
            ctx->query_oom = true;
            return MHD_NO;
        }
        ctx->query = p;
        ctx->cap_query = ncap;
    }
    ctx->query[ctx->nquery].name = key;
    ctx->query[ctx->nquery].value = value ? value : "";
    ctx->nquery++;
    return MHD_YES;
}

/* Append data to the body, or mark the request too large past SIM_MAX_BODY
 * (the rest is read and thrown away, and 413 answered at the end: MHD does
 * not allow queueing a response while it hands us upload data). */
static void append_body(struct request_ctx *ctx, const char *data, size_t len)
{
    if (ctx->too_large)
        return;
    if (ctx->len + len > SIM_MAX_BODY) {
        ctx->too_large = true;
        return;
    }
    if (ctx->len + len + 1 > ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap : 1024;
        while (ncap < ctx->len + len + 1)
            ncap *= 2;
        char *p = realloc(ctx->body, ncap);
        if (p == NULL) {
            ctx->too_large = true; /* out of memory: refuse rather than truncate */
            return;
        }
        ctx->body = p;
        ctx->cap = ncap;
    }
    memcpy(ctx->body + ctx->len, data, len);
    ctx->len += len;
    ctx->body[ctx->len] = '\0';
}

static enum MHD_Result send_response(struct MHD_Connection *conn, const struct sim_response *r)
{
    const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    const char *body = r->body ? r->body : "";
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (mr == NULL)
        return MHD_NO;
    if (r->body != NULL)
        MHD_add_response_header(mr, "Content-Type", "application/json; charset=utf-8");
    if (r->replayed)
        MHD_add_response_header(mr, "Idempotent-Replayed", "true");
    if (r->echo_idempotency_key && idem != NULL)
        MHD_add_response_header(mr, "Idempotency-Key", idem);
    if (r->retry_after >= 0) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", r->retry_after);
        MHD_add_response_header(mr, "Retry-After",
                                r->retry_after_text[0] != '\0' ? r->retry_after_text : buf);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result send_too_large(struct MHD_Connection *conn)
{
    struct sim_response r = SIM_RESPONSE_INIT;
    char msg[64];

    snprintf(msg, sizeof(msg), "request body larger than %d bytes", SIM_MAX_BODY);
    sim_respond_json(&r, 413, json_pack("{s:s, s:s}", "code", "PAYLOAD_TOO_LARGE", "message", msg));
    enum MHD_Result ret = send_response(conn, &r);
    sim_response_clear(&r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct server *server = cls;
    struct request_ctx *ctx = *con_cls;

    (void)version;
    if (ctx == NULL) {
        /* First call: headers only. Refuse an announced oversized body now,
         * before the client sends it. */
        ctx = calloc(1, sizeof(*ctx));
        if (ctx == NULL)
            return MHD_NO;
        *con_cls = ctx;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > SIM_MAX_BODY)
            return send_too_large(conn);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        append_body(ctx, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ctx->too_large)
        return send_too_large(conn);

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query_arg, ctx);
    if (ctx->query_oom) {
        struct sim_response oom = SIM_RESPONSE_INIT;
        sim_respond_json(&oom, 500, json_pack("{s:s}", "error", "out of memory"));
        enum MHD_Result ret = send_response(conn, &oom);
        sim_response_clear(&oom);
        return ret;
    }
    struct sim_request req = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .idempotency_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key"),
        .api_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key"),
        .query = ctx->query,
        .nquery = ctx->nquery,
        .body = ctx->body ? ctx->body : "",
        .body_len = ctx->len,
    };
    struct sim_response resp = SIM_RESPONSE_INIT;
    sim_handle(server->sim, &req, &resp);
    if (resp.drop) {
        /* apply_then_drop: returning MHD_NO without queueing a response makes
         * libmicrohttpd close the socket, so the client sees the connection
         * end with no answer at all ("empty reply from server"). */
        sim_response_clear(&resp);
        return MHD_NO;
    }
    if (resp.status == 0)
        sim_respond_json(&resp, 500, json_pack("{s:s}", "error", "no answer was produced"));
    enum MHD_Result ret = send_response(conn, &resp);
    sim_response_clear(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_ctx_free(*con_cls);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* MHD messages end in a newline; the log line must not. */
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn("libmicrohttpd: %s", msg);
}

struct server *server_start(struct sim *sim, const char *host, uint16_t port, char *err,
                            size_t errlen)
{
    struct sockaddr_in addr;
    struct server *server = calloc(1, sizeof(*server));

    if (server == NULL) {
        snprintf(err, errlen, "could not start server: out of memory");
        return NULL;
    }
    server->sim = sim;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "cannot listen on \"%s\": not an IPv4 address", host);
        free(server);
        return NULL;
    }
    errno = 0;
    server->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port,
        NULL, NULL, on_request, server,
        /* The logger first: MHD warns when options before it could log. */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVER_IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (server->daemon == NULL) {
        snprintf(err, errlen, "could not listen on %s:%u: %s", host, (unsigned)port,
                 errno ? strerror(errno) : "libmicrohttpd refused to start");
        free(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : port;
    return server;
}

uint16_t server_port(const struct server *server)
{
    return server->port;
}

void server_stop(struct server *server)
{
    if (server == NULL)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
