/*
 * Connection reuse that cannot send a refund twice (src/base/http.h), against a
 * real TCP server on 127.0.0.1: a keep-alive server that, in "dying" mode,
 * answers the first request on each connection and, on the second one, reads
 * it whole and closes the connection without a byte of answer. That is the
 * race a gateway closing an idle connection can hit: the request went out,
 * the server may have acted on it, and libcurl sees a reused connection die
 * before any answer.
 *
 * Needs no database and no Kafka.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/http.h"

#define MAX_CONNS 64
#define MAX_SEEN  64

struct lab {
    int listen_fd;
    uint16_t port;
    char url[64];
    bool dying; /* close on the second request of a connection, unanswered */
    pthread_t accept_th;
    pthread_mutex_t mu;
    bool stop;
    int conn_fds[MAX_CONNS];
    pthread_t conn_th[MAX_CONNS];
    int connections;
    int requests;
    char seen[MAX_SEEN][64]; /* each request's body, or its path when it has none */
};

struct conn_arg {
    struct lab *lab;
    int fd;
};

/* Append what fd has to buf (NUL-terminated, *len bytes so far). False on
 * EOF, error or a full buffer. */
static bool read_more(int fd, char *buf, size_t size, size_t *len)
{
    if (*len + 1 >= size)
        return false;
    ssize_t n = read(fd, buf + *len, size - 1 - *len);
    if (n <= 0)
        return false;
    *len += (size_t)n;
    buf[*len] = '\0';
    return true;
}

/* Read one request (headers and Content-Length bytes of body) from fd into
 * what (its body, or its path when empty). False on EOF or error. */
static bool read_request(int fd, char *what, size_t whatlen)
{
    char buf[8192] = "";
    size_t len = 0;
    char *end;
    while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
        if (!read_more(fd, buf, sizeof(buf), &len))
            return false;
    }
    size_t head = (size_t)(end - buf) + 4;
    size_t body_len = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            body_len = strtoul(p + 15, NULL, 10);
    }
    while (len < head + body_len) {
        if (!read_more(fd, buf, sizeof(buf), &len))
            return false;
    }
    if (body_len > 0) {
        snprintf(what, whatlen, "%.*s", (int)body_len, buf + head);
    } else {
        char *sp = strchr(buf, ' ');
        snprintf(what, whatlen, "%.*s", sp ? (int)strcspn(sp + 1, " ") : 0, sp ? sp + 1 : "");
    }
    return true;
}

static void *serve_conn(void *arg)
{
    struct conn_arg *ca = arg;
    struct lab *lab = ca->lab;
    int fd = ca->fd;
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 2\r\n\r\n{}";
    free(ca);
    for (int n = 1;; n++) {
        char what[64];
        if (!read_request(fd, what, sizeof(what)))
            break;
        pthread_mutex_lock(&lab->mu);
        if (lab->requests < MAX_SEEN)
            snprintf(lab->seen[lab->requests], sizeof(lab->seen[0]), "%s", what);
        lab->requests++;
        bool die = lab->dying && n >= 2;
        pthread_mutex_unlock(&lab->mu);
        if (die)
            break; /* read whole, never answered */
        if (write(fd, answer, sizeof(answer) - 1) != (ssize_t)(sizeof(answer) - 1))
            break;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct lab *lab = arg;
    for (;;) {
        struct pollfd p = {lab->listen_fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        pthread_mutex_lock(&lab->mu);
        bool stop = lab->stop;
        pthread_mutex_unlock(&lab->mu);
        if (stop)
            return NULL;
        if (r <= 0)
            continue;
        int fd = accept(lab->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn_arg *ca = malloc(sizeof(*ca));
        pthread_mutex_lock(&lab->mu);
        int i = lab->connections;
        if (ca == NULL || i >= MAX_CONNS) {
            pthread_mutex_unlock(&lab->mu);
            free(ca);
            close(fd);
            continue;
        }
        lab->conn_fds[i] = fd;
        lab->connections++;
        ca->lab = lab;
        ca->fd = fd;
        if (pthread_create(&lab->conn_th[i], NULL, serve_conn, ca) != 0)
            abort();
        pthread_mutex_unlock(&lab->mu);
    }
}

static void lab_start(struct lab *lab, bool dying)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    memset(lab, 0, sizeof(*lab));
    pthread_mutex_init(&lab->mu, NULL);
    lab->dying = dying;
    lab->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(lab->listen_fd, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(lab->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(lab->listen_fd, 16), 0);
    cr_assert_eq(getsockname(lab->listen_fd, (struct sockaddr *)&addr, &alen), 0);
    lab->port = ntohs(addr.sin_port);
    snprintf(lab->url, sizeof(lab->url), "http://127.0.0.1:%u", (unsigned)lab->port);
    cr_assert_eq(pthread_create(&lab->accept_th, NULL, accept_loop, lab), 0);
}

static void lab_stop(struct lab *lab)
{
    pthread_mutex_lock(&lab->mu);
    lab->stop = true;
    pthread_mutex_unlock(&lab->mu);
    pthread_join(lab->accept_th, NULL);
    for (int i = 0; i < lab->connections; i++) {
        shutdown(lab->conn_fds[i], SHUT_RDWR);
        pthread_join(lab->conn_th[i], NULL);
        close(lab->conn_fds[i]);
    }
    close(lab->listen_fd);
    pthread_mutex_destroy(&lab->mu);
}

/* How many requests the server read with this body (or path). */
static int lab_seen(struct lab *l, const char *what)
{
    int n = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->requests && i < MAX_SEEN; i++)
        n += strcmp(l->seen[i], what) == 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static int lab_count(struct lab *l, const int *field)
{
    pthread_mutex_lock(&l->mu);
    int n = *field;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* --- one call through the http client --- */

struct outcome {
    bool done;
    long status;
    CURLcode code;
    bool resend_blocked;
    long connects;
    char error[CURL_ERROR_SIZE];
};

static void on_done(const struct http_response *resp, void *arg)
{
    struct outcome *o = arg;
    o->done = true;
    o->status = resp->status;
    o->code = resp->curl_code;
    o->resend_blocked = resp->resend_blocked;
    o->connects = resp->connects;
    snprintf(o->error, sizeof(o->error), "%s", resp->curl_error);
}

static struct outcome call(struct http_client *c, const char *method, const char *url,
                           const char *body, bool keep_alive, int64_t max_idle_ms)
{
    char err[256];
    struct outcome o = {0};
    struct http_request req = HTTP_REQUEST_INIT;
    req.method = method;
    req.url = url;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    req.connect_timeout_ms = 2000;
    req.timeout_ms = 5000;
    req.keep_alive = keep_alive;
    req.max_idle_ms = max_idle_ms;
    cr_assert(http_client_submit(c, &req, on_done, &o, err, sizeof(err)), "%s", err);
    for (int i = 0; i < 100 && !o.done; i++)
        cr_assert_geq(http_client_run(c, 100, err, sizeof(err)), 0, "%s", err);
    cr_assert(o.done, "%s %s: no callback within 10 s", method, url);
    return o;
}

/* Each test's server and client (Criterion runs each test in its own
 * process). */
static struct lab srv;
static struct http_client *c;

static void start(bool dying)
{
    char err[256];
    lab_start(&srv, dying);
    c = http_client_new(err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
}

static void start_dying(void)
{
    start(true);
}

static void start_keep_alive(void)
{
    start(false);
}

static void stop(void)
{
    http_client_free(c);
    lab_stop(&srv);
}

/* The danger, shown on the libcurl in use (Debian bookworm: 7.88.1) without
 * our guard: a plain easy handle POSTs twice over one kept-alive connection.
 * The second POST is read whole by the server, which then closes; libcurl
 * says "Connection died, retrying a fresh connect" (lib/transfer.c
 * Curl_retry_request: no byte received on a reused connection) and sends the
 * POST again on a new connection. Observed: the server read "second" twice
 * (3 requests on 2 connections) and the caller got a plain 200. A gateway
 * would have had two calls for one attempt. If a later libcurl stops
 * re-sending, this test fails: the guard is then harmless but revisit
 * http.h. */
Test(http_reuse, libcurl_alone_resends_a_post_when_a_reused_connection_dies, .init = start_dying,
     .fini = stop)
{
    CURL *e = curl_easy_init();
    cr_assert_not_null(e);
    curl_easy_setopt(e, CURLOPT_URL, srv.url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(e, CURLOPT_WRITEDATA, devnull);

    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "first");
    cr_assert_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "second");
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);

    cr_expect_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    cr_expect_eq(status, 200, "the re-sent POST's answer looks like an ordinary one");
    cr_expect_eq(lab_seen(&srv, "second"), 2, "libcurl re-sent the POST");
    cr_expect_eq(lab_count(&srv, &srv.requests), 3);
    cr_expect_eq(lab_count(&srv, &srv.connections), 2);
    curl_easy_cleanup(e);
    fclose(devnull);
}

/* The same race through http_client with keep_alive: the POST is sent once,
 * the server reads it once, and the caller learns that it went out and got
 * no answer (resend_blocked), which gateway.c classifies like a timeout after
 * sending: same key next time. */
Test(http_reuse, a_post_is_sent_once_when_its_reused_connection_dies, .init = start_dying,
     .fini = stop)
{
    struct outcome o = call(c, "POST", srv.url, "first", true, 2000);
    cr_expect_eq(o.status, 200);
    cr_expect_eq(o.connects, 1);
    cr_expect_not(o.resend_blocked);

    o = call(c, "POST", srv.url, "second", true, 2000);
    cr_expect_eq(o.status, 0);
    cr_expect_eq(o.code, CURLE_ABORTED_BY_CALLBACK);
    cr_expect(o.resend_blocked);
    cr_expect_neq(strstr(o.error, "not sent again"), NULL, "%s", o.error);
    cr_expect_eq(lab_seen(&srv, "second"), 1, "the POST went out exactly once");
    cr_expect_eq(lab_count(&srv, &srv.requests), 2);

    /* The client carries on: the next call is answered. */
    o = call(c, "POST", srv.url, "third", true, 2000);
    cr_expect_eq(o.status, 200, "%s", o.error);
    cr_expect_not(o.resend_blocked);
    cr_expect_eq(lab_seen(&srv, "third"), 1);
}

/* Inquiries change nothing at the gateway: libcurl may re-send them, and the
 * caller gets the answer of the re-send. */
Test(http_reuse, a_get_is_resent_when_its_reused_connection_dies, .init = start_dying, .fini = stop)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/inquiry-1", srv.url);
    struct outcome o = call(c, "GET", url, NULL, false, 2000);
    cr_expect_eq(o.status, 200);
    snprintf(url, sizeof(url), "%s/inquiry-2", srv.url);
    o = call(c, "GET", url, NULL, false, 2000);
    cr_expect_eq(o.status, 200, "%s", o.error);
    cr_expect_not(o.resend_blocked);
    cr_expect_eq(lab_seen(&srv, "/inquiry-2"), 2, "sent, connection died, sent again");
}

/* The point of it all: sequential refunds share one connection (one
 * handshake, one ephemeral port) with keep_alive; without it, each opens
 * its own. */
Test(http_reuse, sequential_posts_share_one_connection_with_keep_alive, .init = start_keep_alive,
     .fini = stop)
{
    long connects = 0;
    for (int i = 0; i < 20; i++) {
        struct outcome o = call(c, "POST", srv.url, "refund", true, 2000);
        cr_expect_eq(o.status, 200, "%s", o.error);
        connects += o.connects;
    }
    cr_expect_eq(connects, 1);
    cr_expect_eq(lab_count(&srv, &srv.connections), 1);
    cr_expect_eq(lab_count(&srv, &srv.requests), 20);

    for (int i = 0; i < 5; i++) {
        struct outcome o = call(c, "POST", srv.url, "fresh", false, 0);
        cr_expect_eq(o.status, 200, "%s", o.error);
        cr_expect_eq(o.connects, 1, "keep_alive off: a fresh connection per call");
    }
    cr_expect_eq(lab_count(&srv, &srv.connections), 6);
}

/* A connection idle for max_idle_ms or longer is not reused: a new one is
 * opened rather than risk the server's idle timeout. */
Test(http_reuse, a_connection_idle_past_max_idle_is_not_reused, .init = start_keep_alive,
     .fini = stop)
{
    struct outcome o = call(c, "POST", srv.url, "a", true, 1000);
    cr_expect_eq(o.status, 200);
    usleep(1300 * 1000);
    o = call(c, "POST", srv.url, "b", true, 1000);
    cr_expect_eq(o.status, 200, "%s", o.error);
    cr_expect_eq(o.connects, 1, "idle 1.3 s with max_idle 1 s: a new connection");
    cr_expect_eq(lab_count(&srv, &srv.connections), 2);
}

/* At most the cap of connections to one host, however many calls run at
 * once: the others wait for a free connection and are answered on it. */
Test(http_reuse, connections_per_host_are_capped, .init = start_keep_alive, .fini = stop)
{
    char err[256];
    struct outcome o[6];
    memset(o, 0, sizeof(o));
    cr_assert(http_client_limit_host_connections(c, 2, err, sizeof(err)), "%s", err);
    for (size_t i = 0; i < 6; i++) {
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = srv.url;
        req.body = "refund";
        req.body_len = 6;
        req.timeout_ms = 5000;
        req.keep_alive = true;
        cr_assert(http_client_submit(c, &req, on_done, &o[i], err, sizeof(err)), "%s", err);
    }
    for (int t = 0; t < 100 && http_client_in_flight(c) > 0; t++)
        cr_assert_geq(http_client_run(c, 100, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < 6; i++)
        cr_expect_eq(o[i].status, 200, "call %zu: %s", i, o[i].error);
    cr_expect_leq(lab_count(&srv, &srv.connections), 2);
    cr_expect_eq(lab_count(&srv, &srv.requests), 6);
}
