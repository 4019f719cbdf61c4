/*
 * http: libcurl multi engine. See http.h.
 */
#include "base/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/redact.h"

struct http_transfer {
    struct http_client *client;
    CURL *easy;
    struct curl_slist *headers;
    http_done_cb cb;
    void *arg;
    char *body; /* received, NUL-terminated */
    size_t body_len;
    size_t body_cap;
    bool body_truncated;
    int64_t retry_after_ms;
    bool retry_after_clamped;
    bool replayed;
    int64_t started_ms;
    int sends;           /* times libcurl was about to send the request */
    bool send_once;      /* a non-GET: a second send is refused */
    bool resend_blocked; /* ... and one was */
    char errbuf[CURL_ERROR_SIZE];
    struct http_transfer *prev, *next; /* the client's in-flight list */
};

struct http_client {
    CURLM *multi;
    struct http_transfer *transfers; /* in flight, doubly linked */
    size_t in_flight;
    bool closing;              /* http_client_free() is aborting transfers */
    long max_host_connections; /* 0 = no limit */
};

struct http_client *http_client_new(char *err, size_t errlen)
{
    /* Reference-counted inside libcurl and thread-safe since 7.84; each
     * client holds one reference. */
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "could not initialise libcurl: %s", curl_easy_strerror(rc));
        return NULL;
    }
    struct http_client *client = calloc(1, sizeof(*client));
    if (client == NULL) {
        snprintf(err, errlen, "could not allocate http client: out of memory");
        curl_global_cleanup();
        return NULL;
    }
    client->multi = curl_multi_init();
    if (client->multi == NULL) {
        snprintf(err, errlen, "could not create libcurl multi handle");
        free(client);
        curl_global_cleanup();
        return NULL;
    }
    return client;
}

static void transfer_unlink(struct http_transfer *t)
{
    struct http_client *c = t->client;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        c->transfers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    c->in_flight--;
}

static void transfer_free(struct http_transfer *t)
{
    if (t == NULL)
        return;
    if (t->easy != NULL)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t);
}

/* Remove a finished (or aborted) transfer, call its callback, free it. */
static void transfer_finish(struct http_transfer *t, CURLcode code)
{
    struct http_client *c = t->client;
    struct http_response resp;
    long status = 0;

    curl_multi_remove_handle(c->multi, t->easy);
    transfer_unlink(t);

    /* A transfer that failed after the status line (a body cut short, a
     * timeout while reading it) is no answer we can act on: status 0. */
    if (code == CURLE_OK)
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->resend_blocked)
        snprintf(t->errbuf, sizeof(t->errbuf),
                 "the reused connection closed while or after the request was sent, before "
                 "any answer; not sent again (the server may have acted on it)");

    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.body = t->body != NULL ? t->body : "";
    resp.body_len = t->body_len;
    resp.body_truncated = t->body_truncated;
    resp.retry_after_ms = status != 0 ? t->retry_after_ms : -1;
    resp.retry_after_clamped = status != 0 && t->retry_after_clamped;
    resp.idempotent_replayed = status != 0 && t->replayed;
    resp.curl_code = code;
    if (code == CURLE_OK)
        resp.curl_error = "";
    else if (t->errbuf[0] != '\0')
        resp.curl_error = t->errbuf;
    else
        resp.curl_error = curl_easy_strerror(code);
    resp.latency_ms = mono_ms() - t->started_ms;
    resp.resend_blocked = t->resend_blocked;
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &resp.connects);

    t->cb(&resp, t->arg);
    transfer_free(t);
}

void http_client_free(struct http_client *client)
{
    if (client == NULL)
        return;
    client->closing = true;
    while (client->transfers != NULL) {
        struct http_transfer *t = client->transfers;
        snprintf(t->errbuf, sizeof(t->errbuf), "http client closed before the answer came");
        transfer_finish(t, CURLE_ABORTED_BY_CALLBACK);
    }
    curl_multi_cleanup(client->multi);
    free(client);
    curl_global_cleanup();
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_transfer *t = userdata;
    size_t n = size * nmemb;
    size_t room = HTTP_BODY_MAX - t->body_len;
    size_t take = n < room ? n : room;

    if (take < n)
        t->body_truncated = true; /* keep reading: returning less aborts */
    if (take == 0)
        return n;
    if (t->body_len + take + 1 > t->body_cap) {
        size_t cap = t->body_cap == 0 ? 4096 : t->body_cap;
        while (cap < t->body_len + take + 1)
            cap *= 2;
        if (cap > HTTP_BODY_MAX + 1)
            cap = HTTP_BODY_MAX + 1;
        char *nb = realloc(t->body, cap);
        if (nb == NULL)
            return 0; /* libcurl fails the transfer with CURLE_WRITE_ERROR */
        t->body = nb;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, data, take);
    t->body_len += take;
    t->body[t->body_len] = '\0';
    return n;
}

/* CURLOPT_PREREQFUNCTION: libcurl is about to send the request, on a new or
 * a reused connection. It passes here again before every re-send
 * (multi.c goes back to MSTATE_CONNECT, then MSTATE_DO calls this), so the
 * second call of a non-GET is the re-send behind the caller's back that
 * http.h rules out. Refusing it ends the transfer with
 * CURLE_ABORTED_BY_CALLBACK before a byte of the second send is written. */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct http_transfer *t = clientp;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    t->sends++;
    if (t->send_once && t->sends > 1) {
        t->resend_blocked = true;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Trim spaces and CR/LF at both ends of [s, s+len) in place; returns start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == '\r' || s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_transfer *t = userdata;
    size_t n = size * nmemb;
    char line[512];

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new status line (after a 100 Continue, say): forget earlier headers. */
        t->retry_after_ms = -1;
        t->retry_after_clamped = false;
        t->replayed = false;
        return n;
    }
    if (n >= sizeof(line))
        return n; /* not a header we care about */
    memcpy(line, data, n);
    line[n] = '\0';
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return n;
    *colon = '\0';
    char *name = trim(line);
    char *value = trim(colon + 1);
    if (strcasecmp(name, "Retry-After") == 0) {
        int64_t ms;
        bool clamped = false;
        if (http_parse_retry_after(value, time(NULL), &ms, &clamped)) {
            t->retry_after_ms = ms;
            t->retry_after_clamped = clamped;
        }
    } else if (strcasecmp(name, "Idempotent-Replayed") == 0) {
        t->replayed = strcasecmp(value, "true") == 0;
    }
    return n;
}

bool http_parse_retry_after(const char *value, time_t now, int64_t *out_ms, bool *clamped)
{
    const int64_t max_s = HTTP_RETRY_AFTER_MAX_MS / 1000;
    int64_t secs = 0;

    if (value == NULL || *value == '\0')
        return false;
    const char *p = value;
    while (isdigit((unsigned char)*p))
        p++;
    if (p != value && *p == '\0') {
        /* Digit by digit, stopping past the cap: no length of digits can
         * overflow. */
        for (p = value; *p != '\0' && secs <= max_s; p++)
            secs = secs * 10 + (*p - '0');
    } else {
        time_t when = curl_getdate(value, NULL);
        if (when == (time_t)-1)
            return false;
        if (when > now)
            secs = (int64_t)when - (int64_t)now > max_s ? max_s + 1 : (int64_t)(when - now);
    }
    if (clamped != NULL)
        *clamped = secs > max_s;
    *out_ms = secs > max_s ? HTTP_RETRY_AFTER_MAX_MS : secs * 1000;
    return true;
}

/* Debug trace of what is sent: method, URL and header lines, redacted here
 * (the log redacts again; this keeps the trace safe on its own). Never the
 * body (it may carry personal data) and never libcurl's verbose mode, which
 * would print the Authorization header. */
static void log_request(const struct http_request *req, const char *method)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    json_t *fields = json_object();
    json_t *hdrs = json_array();
    for (size_t i = 0; i < req->nheaders; i++) {
        char *line = redact_process_text(req->headers[i]);
        json_array_append_new(hdrs, json_string(line != NULL ? line : REDACT_MASK));
        free(line);
    }
    char *url = redact_process_text(req->url);
    json_object_set_new(fields, "method", json_string(method));
    json_object_set_new(fields, "url", json_string(url != NULL ? url : REDACT_MASK));
    json_object_set_new(fields, "headers", hdrs);
    free(url);
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.fields = fields;
    log_emit(LOG_DEBUG, &ctx, "http request");
    json_decref(fields);
}

bool http_client_submit(struct http_client *client, const struct http_request *req, http_done_cb cb,
                        void *arg, char *err, size_t errlen)
{
    const char *method = req->method != NULL ? req->method : "GET";
    struct http_transfer *t = NULL;
    CURLcode rc = CURLE_OK;

    if (client->closing) {
        snprintf(err, errlen, "cannot submit http request: client is closing");
        return false;
    }
    if (req->url == NULL || cb == NULL) {
        snprintf(err, errlen, "cannot submit http request: url and callback are required");
        return false;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    t->client = client;
    t->cb = cb;
    t->arg = arg;
    t->retry_after_ms = -1;
    t->easy = curl_easy_init();
    if (t->easy == NULL)
        goto oom;

    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(t->headers, req->headers[i]);
        if (l == NULL)
            goto oom;
        t->headers = l;
    }
    /* Never wait for "100 Continue": our bodies are small and a 1 s stall
     * per call would dominate the latency. */
    struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
    if (l == NULL)
        goto oom;
    t->headers = l;

    CURL *e = t->easy;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                      \
            goto setopt_failed;                                                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    /* Threads and SIGALRM do not mix: never let libcurl use signals. */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_PRIVATE, t);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, t);
    if (req->max_idle_ms > 0) {
        /* libcurl drops a connection when its idle whole seconds exceed the
         * option (url.c conn_maxage): N - 1 keeps the idle time below N s. */
        long idle_s = (long)(req->max_idle_ms / 1000);
        SET(CURLOPT_MAXAGE_CONN, idle_s > 1 ? idle_s - 1 : 0L);
    }
    SET(CURLOPT_SSL_VERIFYPEER, req->tls_verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, req->tls_verify ? 2L : 0L);
    if (req->ca_file != NULL && req->ca_file[0] != '\0')
        SET(CURLOPT_CAINFO, req->ca_file);
    if (req->connect_timeout_ms > 0)
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);

    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        /* See http.h: no silent re-send of a call that changes something. */
        t->send_once = true;
        if (!req->keep_alive) {
            SET(CURLOPT_FRESH_CONNECT, 1L);
            SET(CURLOPT_FORBID_REUSE, 1L);
        }
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
        if (req->body != NULL || strcmp(method, "POST") == 0) {
            /* Size first: COPYPOSTFIELDS copies POSTFIELDSIZE bytes. */
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body != NULL ? req->body_len : 0));
            SET(CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : "");
        }
    }
#undef SET

    log_request(req, method);
    t->started_ms = mono_ms();
    CURLMcode mrc = curl_multi_add_handle(client->multi, e);
    if (mrc != CURLM_OK) {
        snprintf(err, errlen, "could not start http request: %s", curl_multi_strerror(mrc));
        transfer_free(t);
        return false;
    }
    t->next = client->transfers;
    if (client->transfers != NULL)
        client->transfers->prev = t;
    client->transfers = t;
    client->in_flight++;
    return true;

setopt_failed:
    snprintf(err, errlen, "could not set up http request: %s", curl_easy_strerror(rc));
    transfer_free(t);
    return false;
oom:
    snprintf(err, errlen, "could not set up http request: out of memory");
    transfer_free(t);
    return false;
}

/* Call back every transfer libcurl reports as done. */
static int dispatch_done(struct http_client *client)
{
    int done = 0;
    int queued;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(client->multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode code = msg->data.result;
        /* msg is invalid once the handle is removed: copy first. */
        transfer_finish(t, code);
        done++;
    }
    return done;
}

int http_client_run(struct http_client *client, int timeout_ms, char *err, size_t errlen)
{
    int running = 0;
    CURLMcode mrc = curl_multi_perform(client->multi, &running);
    if (mrc != CURLM_OK)
        goto failed;
    int done = dispatch_done(client);
    if (done > 0)
        timeout_ms = 0; /* let the caller react to the answers first */
    if (timeout_ms > 0) {
        int numfds = 0;
        mrc = curl_multi_poll(client->multi, NULL, 0, timeout_ms, &numfds);
        if (mrc != CURLM_OK)
            goto failed;
        mrc = curl_multi_perform(client->multi, &running);
        if (mrc != CURLM_OK)
            goto failed;
        done += dispatch_done(client);
    }
    return done;
failed:
    snprintf(err, errlen, "could not drive http transfers: %s", curl_multi_strerror(mrc));
    return -1;
}

bool http_client_limit_host_connections(struct http_client *client, long n, char *err,
                                        size_t errlen)
{
    if (n <= client->max_host_connections)
        return true;
    CURLMcode mrc = curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
    if (mrc != CURLM_OK) {
        snprintf(err, errlen, "could not limit connections per host: %s", curl_multi_strerror(mrc));
        return false;
    }
    client->max_host_connections = n;
    return true;
}

size_t http_client_in_flight(const struct http_client *client)
{
    return client->in_flight;
}

void http_client_wakeup(struct http_client *client)
{
    curl_multi_wakeup(client->multi);
}
