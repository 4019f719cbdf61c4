/*
 * webhook_listener: see webhook_listener.h. One thread per connection, so a
 * delayed answer holds only its own post.
 */
#include "webhook_listener.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#define LISTENER_MAX_POSTS 64

struct post {
    char *body;
    char authorization[256];
    char content_type[128];
    int status;
};

struct upload {
    char *body;
    size_t len;
};

static struct MHD_Daemon *daemon_;
static char url[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct post posts[LISTENER_MAX_POSTS];
static size_t nposts;
static int fail_left, fail_status;
static int delay_left;
static long delay_ms;

static void sleep_for(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void copy_header(struct MHD_Connection *conn, const char *name, char *buf, size_t buflen)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(buf, buflen, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *path,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    struct upload *u = *con_cls;
    int status = 202;
    long hold = 0;

    (void)cls;
    (void)path;
    (void)method;
    (void)version;
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        *con_cls = u;
        return u != NULL ? MHD_YES : MHD_NO;
    }
    if (*data_size > 0) {
        char *p = realloc(u->body, u->len + *data_size + 1);
        if (p == NULL)
            return MHD_NO;
        memcpy(p + u->len, data, *data_size);
        u->body = p;
        u->len += *data_size;
        u->body[u->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&mu);
    if (fail_left > 0) {
        fail_left--;
        status = fail_status;
    }
    if (delay_left > 0) {
        delay_left--;
        hold = delay_ms;
    }
    if (nposts < LISTENER_MAX_POSTS) {
        struct post *p = &posts[nposts++];
        p->body = strdup(u->body ? u->body : "");
        copy_header(conn, "Authorization", p->authorization, sizeof(p->authorization));
        copy_header(conn, "Content-Type", p->content_type, sizeof(p->content_type));
        p->status = status;
    }
    pthread_mutex_unlock(&mu);
    if (hold > 0)
        sleep_for(hold);
    static const char accepted[] = "[accepted]";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(accepted) - 1, (void *)accepted,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (u != NULL)
        free(u->body);
    free(u);
    *con_cls = NULL;
}

void listener_start(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    cr_assert(daemon_ != NULL, "cannot start the webhook listener");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info != NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/adyen/webhook", (unsigned)info->port);
}

void listener_stop(void)
{
    if (daemon_ != NULL)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    for (size_t i = 0; i < nposts; i++)
        free(posts[i].body);
    nposts = 0;
}

const char *listener_url(void)
{
    return url;
}

void listener_fail_next(int n, int status)
{
    pthread_mutex_lock(&mu);
    fail_left = n;
    fail_status = status;
    pthread_mutex_unlock(&mu);
}

void listener_delay_next(int n, long ms)
{
    pthread_mutex_lock(&mu);
    delay_left = n;
    delay_ms = ms;
    pthread_mutex_unlock(&mu);
}

size_t listener_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = nposts;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t listener_wait(size_t n, long timeout_ms)
{
    for (long waited = 0; listener_count() < n && waited < timeout_ms; waited += 10)
        sleep_for(10);
    return listener_count();
}

/* Post i, which must exist. Its fields do not change once recorded. */
static const struct post *post_at(size_t i)
{
    size_t n = listener_count();
    cr_assert_lt(i, n, "no post %zu: %zu arrived", i, n);
    return &posts[i];
}

json_t *listener_body(size_t i)
{
    json_error_t jerr;
    const struct post *p = post_at(i);
    json_t *j = json_loads(p->body, 0, &jerr);
    cr_assert(j != NULL, "post %zu is not JSON (%s): %s", i, jerr.text, p->body);
    return j;
}

const char *listener_raw(size_t i, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s", post_at(i)->body);
    return buf;
}

const char *listener_header(size_t i, const char *name, char *buf, size_t buflen)
{
    const struct post *p = post_at(i);
    if (strcasecmp(name, "Authorization") == 0)
        snprintf(buf, buflen, "%s", p->authorization);
    else if (strcasecmp(name, "Content-Type") == 0)
        snprintf(buf, buflen, "%s", p->content_type);
    else
        buf[0] = '\0';
    return buf;
}

int listener_status(size_t i)
{
    return post_at(i)->status;
}
