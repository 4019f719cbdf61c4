/*
 * slack-sink: a local stand-in for a Slack incoming webhook, for the tests
 * and the demo. NEVER DEPLOYED; loopback only.
 *
 * Usage: slack-sink [--listen 127.0.0.1:PORT] [--port-file F] [--print]
 *
 * Any POST outside /_sink/ is a webhook post: it is recorded (path, time,
 * payload, the answer given) and answered like Slack: 200 "ok", or the fault
 * set with /_sink/fault. Control API (JSON):
 *   GET  /_sink/posts   {"posts": [{"path", "atMs", "status", "payload"|"raw"}]}
 *                       every post in arrival order, refused ones included
 *   POST /_sink/fault   {"status": 503, "body": "...", "retryAfter": 2,
 *                        "count": N, "forMs": MS, "path": "/p"}: answer the
 *                       next N posts (count absent or 0: every post) for forMs
 *                       (absent: until changed) with that status, body and
 *                       Retry-After header (seconds, omitted when absent);
 *                       with path, only posts to that path (one webhook of
 *                       several: a dead route), the others are answered 200
 *   DELETE /_sink/fault lift the fault, keep the posts
 *   POST /_sink/reset   forget every post and the fault
 * --print writes the "text" of every accepted post to stdout: the demo shows
 * the Slack messages that were posted.
 * PORT 0 picks an ephemeral port, written to --port-file once listening.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "base/clock.h"
#include "base/signals.h"

#define SINK_DEFAULT_PORT 58081
#define SINK_MAX_BODY     (1024 * 1024)

struct fault {
    bool active;
    int status;
    char body[256];
    int retry_after;  /* seconds, -1 = no header */
    int remaining;    /* posts left, 0 = unlimited */
    int64_t until_ms; /* 0 = no end */
    char path[256];   /* "" = every path */
};

struct sink {
    pthread_mutex_t mu;
    json_t *posts; /* array */
    struct fault fault;
    bool print;
};

struct upload {
    char *body;
    size_t len;
    bool too_large;
};

static enum MHD_Result answer(struct MHD_Connection *conn, int status, const char *ctype,
                              const char *body, int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after >= 0) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", buf);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_json(struct MHD_Connection *conn, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enum MHD_Result ret = answer(conn, status, "application/json", s != NULL ? s : "{}", -1);
    free(s);
    return ret;
}

static enum MHD_Result set_fault(struct sink *s, struct MHD_Connection *conn, const char *body)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    struct fault f = {.active = true, .status = 500, .retry_after = -1};
    const char *b = NULL, *path = NULL;
    json_int_t count = 0, for_ms = 0, ra = -1, status = 500;

    if (j == NULL || json_unpack_ex(j, &je, JSON_STRICT, "{s?I, s?s, s?I, s?I, s?I, s?s}", "status",
                                    &status, "body", &b, "retryAfter", &ra, "count", &count,
                                    "forMs", &for_ms, "path", &path) != 0) {
        json_decref(j);
        return answer_json(conn, 400, json_pack("{s:s}", "error", je.text));
    }
    f.status = (int)status;
    snprintf(f.body, sizeof(f.body), "%s", b != NULL ? b : "");
    f.retry_after = (int)ra;
    f.remaining = (int)count;
    f.until_ms = for_ms > 0 ? wall_ms() + for_ms : 0;
    snprintf(f.path, sizeof(f.path), "%s", path != NULL ? path : "");
    json_decref(j);
    pthread_mutex_lock(&s->mu);
    s->fault = f;
    pthread_mutex_unlock(&s->mu);
    return answer_json(conn, 200, json_pack("{s:b}", "ok", 1));
}

/* The answer to a webhook post to path under the current fault (taken
 * under mu). */
static struct fault current_answer(struct sink *s, const char *path)
{
    struct fault ok = {.status = 200, .body = "ok", .retry_after = -1};
    struct fault *f = &s->fault;

    if (!f->active || (f->path[0] != '\0' && strcmp(f->path, path) != 0))
        return ok;
    if (f->until_ms != 0 && wall_ms() >= f->until_ms) {
        f->active = false;
        return ok;
    }
    struct fault now = *f;
    if (f->remaining > 0 && --f->remaining == 0)
        f->active = false;
    return now;
}

static enum MHD_Result webhook_post(struct sink *s, struct MHD_Connection *conn, const char *path,
                                    const struct upload *u)
{
    json_t *rec = json_object();
    json_t *payload = json_loadb(u->body != NULL ? u->body : "", u->len, 0, NULL);

    pthread_mutex_lock(&s->mu);
    struct fault f = current_answer(s, path);
    json_object_set_new(rec, "path", json_string(path));
    json_object_set_new(rec, "atMs", json_integer(wall_ms()));
    json_object_set_new(rec, "status", json_integer(f.status));
    if (payload != NULL)
        json_object_set(rec, "payload", payload);
    else
        json_object_set_new(rec, "raw", json_stringn_nocheck(u->body ? u->body : "", u->len));
    json_array_append_new(s->posts, rec);
    if (s->print && f.status == 200) {
        const char *text = json_string_value(json_object_get(payload, "text"));
        printf("---- slack post to %s ----\n%s\n", path, text != NULL ? text : "(no text)");
        fflush(stdout);
    }
    pthread_mutex_unlock(&s->mu);
    json_decref(payload);
    return answer(conn, f.status, "text/plain", f.body, f.retry_after);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    struct sink *s = cls;
    struct upload *u = *con_cls;

    (void)version;
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size > 0) {
        if (u->len + *data_size > SINK_MAX_BODY) {
            u->too_large = true;
        } else if (!u->too_large) {
            char *p = realloc(u->body, u->len + *data_size + 1);
            if (p == NULL) {
                u->too_large = true;
            } else {
                u->body = p;
                memcpy(u->body + u->len, data, *data_size);
                u->len += *data_size;
                u->body[u->len] = '\0';
            }
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (u->too_large)
        return answer(conn, 413, "text/plain", "too_large", -1);
    if (strcmp(url, "/_sink/posts") == 0 && strcmp(method, "GET") == 0) {
        pthread_mutex_lock(&s->mu);
        json_t *j = json_pack("{s:O}", "posts", s->posts);
        pthread_mutex_unlock(&s->mu);
        return answer_json(conn, 200, j);
    }
    if (strcmp(url, "/_sink/fault") == 0 && strcmp(method, "POST") == 0)
        return set_fault(s, conn, u->body != NULL ? u->body : "");
    if (strcmp(url, "/_sink/fault") == 0 && strcmp(method, "DELETE") == 0) {
        pthread_mutex_lock(&s->mu);
        memset(&s->fault, 0, sizeof(s->fault));
        pthread_mutex_unlock(&s->mu);
        return answer_json(conn, 200, json_pack("{s:b}", "ok", 1));
    }
    if (strcmp(url, "/_sink/reset") == 0 && strcmp(method, "POST") == 0) {
        pthread_mutex_lock(&s->mu);
        json_array_clear(s->posts);
        memset(&s->fault, 0, sizeof(s->fault));
        pthread_mutex_unlock(&s->mu);
        return answer_json(conn, 200, json_pack("{s:b}", "ok", 1));
    }
    if (strncmp(url, "/_sink/", 7) == 0)
        return answer_json(conn, 404, json_pack("{s:s}", "error", "no such sink endpoint"));
    if (strcmp(method, "POST") != 0)
        return answer(conn, 405, "text/plain", "method_not_allowed", -1);
    return webhook_post(s, conn, url, u);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (u != NULL) {
        free(u->body);
        free(u);
    }
    *con_cls = NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: slack-sink [--listen 127.0.0.1:PORT] [--port-file FILE] [--print]\n"
            "A local Slack incoming-webhook stand-in for tests and the demo; never deployed.\n"
            "Default listen address 127.0.0.1:%d; PORT 0 = ephemeral.\n",
            SINK_DEFAULT_PORT);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"print", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char host[64] = "127.0.0.1";
    unsigned long port = SINK_DEFAULT_PORT;
    const char *port_file = NULL;
    struct sink s = {.print = false};
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            const char *colon = strrchr(optarg, ':');
            char *end;
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof(host)) {
                fprintf(stderr, "slack-sink: --listen: expected 127.0.0.1:PORT\n");
                return 2;
            }
            snprintf(host, sizeof(host), "%.*s", (int)(colon - optarg), optarg);
            errno = 0;
            port = strtoul(colon + 1, &end, 10);
            if (errno != 0 || *end != '\0' || port > 65535 || strncmp(host, "127.", 4) != 0) {
                fprintf(stderr, "slack-sink: --listen: loopback 127.x.x.x:PORT only\n");
                return 2;
            }
            break;
        }
        case 'p':
            port_file = optarg;
            break;
        case 'P':
            s.print = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "slack-sink: cannot listen on \"%s\": not an IPv4 address\n", host);
        return 2;
    }
    pthread_mutex_init(&s.mu, NULL);
    s.posts = json_array();
    signals_install();
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
        on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "slack-sink: could not listen on %s:%lu: %s\n", host, port,
                errno ? strerror(errno) : "libmicrohttpd refused to start");
        json_decref(s.posts);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info != NULL ? info->port : (unsigned)port;
    if (port_file != NULL) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%u\n", bound) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "slack-sink: could not write %s: %s\n", port_file, strerror(errno));
            MHD_stop_daemon(d);
            json_decref(s.posts);
            return 1;
        }
    }
    fprintf(stderr, "slack-sink listening on %s:%u\n", host, bound);
    while (!signals_stop_requested()) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    json_decref(s.posts);
    pthread_mutex_destroy(&s.mu);
    return 0;
}
