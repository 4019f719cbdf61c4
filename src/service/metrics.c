/*
 * metrics: see metrics.h.
 *
 * A process has a few dozen series at most: a linear array under one mutex is
 * simpler than anything else and never on a hot path that matters (a gateway
 * call costs milliseconds; an increment costs nanoseconds).
 */
#include "service/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/listen_addr.h"
#include "base/log.h"
#include "base/redact.h"

#define METRICS_MAX_SERIES 256

struct series {
    char *name;
    char *labels; /* may be NULL */
    int64_t value;
};

struct description {
    const char *name;
    const char *type;
    const char *help;
};

struct check {
    const char *name;
    bool ok;
    char reason[256];
};

struct metrics {
    pthread_mutex_t lock;
    char *service;
    struct series series[METRICS_MAX_SERIES];
    size_t nseries;
    struct description desc[64];
    size_t ndesc;
    struct check checks[METRICS_MAX_CHECKS];
    size_t nchecks;
    struct MHD_Daemon *daemon;
    unsigned port;
};

struct metrics *metrics_new(const char *service)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->service = strdup(service);
    if (m->service == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    if (m->daemon != NULL)
        MHD_stop_daemon(m->daemon);
    for (size_t i = 0; i < m->nseries; i++) {
        free(m->series[i].name);
        free(m->series[i].labels);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->service);
    free(m);
}

void metrics_describe(struct metrics *m, const char *name, const char *type, const char *help)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    bool known = false;
    for (size_t i = 0; i < m->ndesc && !known; i++)
        known = strcmp(m->desc[i].name, name) == 0;
    /* Once per name: a second HELP line would break the exposition. */
    if (!known && m->ndesc < sizeof(m->desc) / sizeof(m->desc[0]))
        m->desc[m->ndesc++] = (struct description){name, type, help};
    pthread_mutex_unlock(&m->lock);
}

/* The series name{labels}, created if new; NULL when full. Lock held. */
static struct series *find(struct metrics *m, const char *name, const char *labels)
{
    for (size_t i = 0; i < m->nseries; i++) {
        struct series *s = &m->series[i];
        if (strcmp(s->name, name) == 0 &&
            ((s->labels == NULL && labels == NULL) ||
             (s->labels != NULL && labels != NULL && strcmp(s->labels, labels) == 0)))
            return s;
    }
    if (m->nseries == METRICS_MAX_SERIES)
        return NULL;
    struct series *s = &m->series[m->nseries];
    s->name = strdup(name);
    s->labels = labels != NULL ? strdup(labels) : NULL;
    if (s->name == NULL || (labels != NULL && s->labels == NULL)) {
        free(s->name);
        free(s->labels);
        return NULL;
    }
    s->value = 0;
    m->nseries++;
    return s;
}

void metrics_add(struct metrics *m, const char *name, const char *labels, int64_t delta)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    struct series *s = find(m, name, labels);
    if (s != NULL)
        s->value += delta;
    pthread_mutex_unlock(&m->lock);
}

void metrics_set(struct metrics *m, const char *name, const char *labels, int64_t value)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    struct series *s = find(m, name, labels);
    if (s != NULL)
        s->value = value;
    pthread_mutex_unlock(&m->lock);
}

void metrics_check_set(struct metrics *m, const char *check, bool ok, const char *reason)
{
    char labels[96];

    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    struct check *c = NULL;
    for (size_t i = 0; i < m->nchecks && c == NULL; i++)
        c = strcmp(m->checks[i].name, check) == 0 ? &m->checks[i] : NULL;
    if (c == NULL && m->nchecks < METRICS_MAX_CHECKS)
        c = &m->checks[m->nchecks++];
    if (c != NULL) {
        c->name = check;
        c->ok = ok;
        snprintf(c->reason, sizeof(c->reason), "%s", ok || reason == NULL ? "" : reason);
        /* One line per check in the body: a reason never breaks it. */
        for (char *p = c->reason; *p != '\0'; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    pthread_mutex_unlock(&m->lock);
    snprintf(labels, sizeof(labels), "check=\"%s\"", check);
    metrics_set(m, "cancel_retry_ready", labels, ok ? 1 : 0);
}

bool metrics_readiness(struct metrics *m, char *buf, size_t len)
{
    bool ready = true;
    size_t used;

    if (len == 0)
        return false;
    buf[0] = '\0';
    if (m == NULL) {
        snprintf(buf, len, "ready\n");
        return true;
    }
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nchecks; i++)
        ready = ready && m->checks[i].ok;
    snprintf(buf, len, "%s\n", ready ? "ready" : "not ready");
    for (size_t i = 0; i < m->nchecks && (used = strlen(buf)) < len; i++) {
        const struct check *c = &m->checks[i];
        if (!c->ok)
            snprintf(buf + used, len - used, "%s: %s\n", c->name,
                     c->reason[0] != '\0' ? c->reason : "failing");
    }
    pthread_mutex_unlock(&m->lock);
    return ready;
}

/* Append to a growing buffer; false on out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return false;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return true;
        }
        size_t ncap = *cap * 2 + (size_t)n;
        char *nbuf = realloc(*buf, ncap);
        if (nbuf == NULL)
            return false;
        *buf = nbuf;
        *cap = ncap;
    }
}

char *metrics_render(struct metrics *m)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    bool ok = buf != NULL;

    if (!ok || m == NULL) {
        if (buf != NULL)
            buf[0] = '\0';
        return buf;
    }
    buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    /* Series of one name together, its TYPE/HELP first, as the format asks. */
    for (size_t i = 0; ok && i < m->nseries; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++)
            first = first && strcmp(m->series[k].name, m->series[i].name) != 0;
        if (!first)
            continue;
        const char *name = m->series[i].name;
        for (size_t d = 0; ok && d < m->ndesc; d++) {
            if (strcmp(m->desc[d].name, name) == 0)
                ok = append(&buf, &len, &cap, "# HELP %s %s\n# TYPE %s %s\n", name, m->desc[d].help,
                            name, m->desc[d].type);
        }
        for (size_t k = i; ok && k < m->nseries; k++) {
            const struct series *s = &m->series[k];
            if (strcmp(s->name, name) != 0)
                continue;
            /* Label values come from config and events (gateway names,
             * codes): masked like any other text that leaves the process. */
            char *labels = s->labels != NULL ? redact_process_text(s->labels) : NULL;
            ok = (s->labels == NULL || labels != NULL) &&
                 append(&buf, &len, &cap, "%s{service=\"%s\"%s%s} %lld\n", name, m->service,
                        labels != NULL ? "," : "", labels != NULL ? labels : "",
                        (long long)s->value);
            free(labels);
        }
    }
    /* Described metrics with no series yet (nothing counted so far) are
     * announced all the same: a scrape names every metric the process can
     * serve, and the rules and dashboard checks compare against that. */
    for (size_t d = 0; ok && d < m->ndesc; d++) {
        bool seen = false;
        for (size_t i = 0; i < m->nseries && !seen; i++)
            seen = strcmp(m->series[i].name, m->desc[d].name) == 0;
        if (!seen)
            ok = append(&buf, &len, &cap, "# HELP %s %s\n# TYPE %s %s\n", m->desc[d].name,
                        m->desc[d].help, m->desc[d].name, m->desc[d].type);
    }
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct metrics *m = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    enum MHD_Result ret;

    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0) {
        static const char msg[] = "only GET\n";
        resp =
            MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0) {
        char *text = metrics_render(m);
        if (text == NULL)
            return MHD_NO;
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    } else if (strcmp(url, "/readyz") == 0) {
        /* Reasons may quote the database's or broker's words: masked like
         * every other text that leaves the process. */
        char body[1024];
        bool ready = metrics_readiness(m, body, sizeof(body));
        char *text = redact_process_text(body);
        if (text == NULL)
            return MHD_NO;
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        status = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    } else if (strcmp(url, "/healthz") == 0) {
        static const char msg[] = "ok\n";
        resp =
            MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    } else {
        static const char msg[] = "not found: try /metrics, /healthz or /readyz\n";
        resp =
            MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    }
    if (resp == NULL)
        return MHD_NO;
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

bool metrics_serve(struct metrics *m, const char *listen, char *err, size_t errlen)
{
    char host[128];
    struct sockaddr_in addr;

    if (!listen_addr_parse(listen, &addr, host, sizeof(host))) {
        snprintf(err, errlen, "metrics.listen \"%s\" is not an IPv4 host:port", listen);
        return false;
    }
    uint16_t port = ntohs(addr.sin_port);
    /* MHD_USE_AUTO: epoll on Linux, so neither the limit nor an fd number
     * above FD_SETSIZE (select's 1024) stops accepting. See metrics.h. */
    m->daemon = MHD_start_daemon(
        MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, on_request, m,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)METRICS_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)METRICS_MAX_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)METRICS_IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (m->daemon == NULL) {
        snprintf(err, errlen, "could not listen on %s for metrics (in use?)", listen);
        return false;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info != NULL ? info->port : (unsigned)port;
    log_info("metrics at http://%s:%u/metrics", host, m->port);
    return true;
}

unsigned metrics_port(const struct metrics *m)
{
    return m != NULL ? m->port : 0;
}
