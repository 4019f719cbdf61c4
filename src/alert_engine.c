/*
 * alert_engine: consume, record, post, commit. See alert_engine.h.
 */
#include "alert_engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "alert_store.h"
#include "consumer.h"
#include "dlq.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "ratelimit.h"
#include "signals.h"
#include "slack.h"
#include "timeutil.h"

#define ENGINE_BACKOFF_MIN_MS   1000
#define ENGINE_BACKOFF_MAX_MS   10000
#define ENGINE_DIGEST_LIMIT     5000 /* rows per digest; the rest go into the next one */
#define ENGINE_DIGEST_FIRST_IDS 5
#define ENGINE_CONNECT_MAX_MS   5000

struct webhook {
    const char *url; /* borrowed from the config; secret */
    char label[32];  /* what logs call it */
    struct ratelimit *rl;
};

struct alert_engine {
    const struct config *cfg;
    const struct config_slack *slack;
    struct db *db;
    struct http_client *http;
    struct webhook *hooks; /* [0] default, [i + 1] routes[i] */
    size_t nhooks;
    struct alert_window window;
    int64_t digest_due_ms; /* wall clock; 0 = nothing queued */
    int64_t retry_wait_ms; /* set by a handler that asks for a retry */
    int failures;          /* consecutive transient post failures */
    uint64_t n_posted, n_digested, n_permanent;
    struct metrics *metrics; /* borrowed, may be NULL */
};

void alert_engine_set_metrics(struct alert_engine *e, struct metrics *m)
{
    e->metrics = m;
    metrics_describe(m, "cancel_retry_slack_posts_total", "counter",
                     "Slack messages accepted (single alerts and digests)");
    metrics_describe(m, "cancel_retry_slack_permanent_failures_total", "counter",
                     "alerts Slack refused for good (configuration faults; see cancelctl status)");
    metrics_describe(m, "cancel_retry_alerts_digested_total", "counter",
                     "alerts folded into a digest instead of a message of their own");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms, in short steps so a stop request is seen. False if stopped. */
static bool nap(int64_t ms)
{
    int64_t until = mono_ms() + ms;
    while (!signals_stop_requested()) {
        int64_t left = until - mono_ms();
        if (left <= 0)
            return true;
        if (left > 100)
            left = 100;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int64_t backoff_ms(int failures)
{
    int64_t ms = ENGINE_BACKOFF_MIN_MS;
    for (int i = 1; i < failures && ms < ENGINE_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms > ENGINE_BACKOFF_MAX_MS ? ENGINE_BACKOFF_MAX_MS : ms;
}

struct alert_engine *alert_engine_new(const struct config *cfg, struct db *db, char *err,
                                      size_t errlen)
{
    const struct config_slack *s = &cfg->alerts.slack;

    if (!s->enabled || s->webhook_url == NULL) {
        snprintf(err, errlen, "cannot start alerts: alerts.slack.enabled is false");
        return NULL;
    }
    struct alert_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "could not start alerts: out of memory");
        return NULL;
    }
    e->cfg = cfg;
    e->slack = s;
    e->db = db;
    e->nhooks = 1 + s->nroutes;
    e->hooks = calloc(e->nhooks, sizeof(*e->hooks));
    if (e->hooks == NULL ||
        !alert_window_init(&e->window, s->digest_threshold, s->digest_window_ms))
        goto oom;
    for (size_t i = 0; i < e->nhooks; i++) {
        struct webhook *h = &e->hooks[i];
        h->url = i == 0 ? s->webhook_url : s->routes[i - 1].webhook_url;
        if (i == 0)
            snprintf(h->label, sizeof(h->label), "default");
        else
            snprintf(h->label, sizeof(h->label), "route[%zu]", i - 1);
        /* Slack's limit is per webhook: two routes to one URL share the
         * first one's bucket (see bucket()); each still gets its own. */
        h->rl = ratelimit_new(s->rate_per_second, s->burst);
        if (h->rl == NULL)
            goto oom;
    }
    e->http = http_client_new(err, errlen);
    if (e->http == NULL) {
        alert_engine_free(e);
        return NULL;
    }
    return e;
oom:
    alert_engine_free(e);
    snprintf(err, errlen, "could not start alerts: out of memory");
    return NULL;
}

void alert_engine_free(struct alert_engine *e)
{
    if (e == NULL)
        return;
    http_client_free(e->http);
    for (size_t i = 0; e->hooks != NULL && i < e->nhooks; i++)
        ratelimit_free(e->hooks[i].rl);
    free(e->hooks);
    alert_window_free(&e->window);
    free(e);
}

/* The bucket that paces h: the first webhook with the same URL owns it. */
static struct ratelimit *bucket(struct alert_engine *e, const struct webhook *h)
{
    for (size_t i = 0; i < e->nhooks; i++)
        if (strcmp(e->hooks[i].url, h->url) == 0)
            return e->hooks[i].rl;
    return h->rl;
}

static struct webhook *hook_for(struct alert_engine *e, const char *gateway, const char *reason)
{
    return &e->hooks[alert_route(e->slack, gateway, reason) + 1];
}

/* ---- posting ---- */

struct post_answer {
    bool done;
    long status;
    int64_t retry_after_ms;
    char body[256];
    char curl_error[256];
};

static void on_posted(const struct http_response *resp, void *arg)
{
    struct post_answer *a = arg;

    a->done = true;
    a->status = resp->status;
    a->retry_after_ms = resp->retry_after_ms;
    snprintf(a->body, sizeof(a->body), "%s", resp->body);
    snprintf(a->curl_error, sizeof(a->curl_error), "%s", resp->curl_error);
}

/* Wait for a token of h's bucket. False if a stop was requested. */
static bool take_token(struct alert_engine *e, const struct webhook *h)
{
    struct ratelimit *rl = bucket(e, h);
    for (;;) {
        int64_t wait = ratelimit_take(rl, mono_ms());
        if (wait == 0)
            return true;
        if (!nap(wait))
            return false;
    }
}

/* Post payload to h, paced by its bucket, and classify the answer. why gets
 * the reason of a failure, never the URL. *retry_after_ms is Retry-After or
 * -1. */
static enum slack_result post(struct alert_engine *e, const struct webhook *h,
                              const json_t *payload, int64_t *retry_after_ms, char *why,
                              size_t whylen)
{
    static const char *const headers[] = {"Content-Type: application/json; charset=utf-8"};
    struct post_answer ans = {0};
    char err[512];

    *retry_after_ms = -1;
    char *body = json_dumps(payload, JSON_COMPACT);
    if (body == NULL) {
        snprintf(why, whylen, "could not serialize the message: out of memory");
        return SLACK_TRANSIENT;
    }
    struct http_request req = HTTP_REQUEST_INIT;
    req.method = "POST";
    req.url = h->url;
    req.headers = headers;
    req.nheaders = 1;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = e->slack->timeout_ms;
    req.connect_timeout_ms =
        e->slack->timeout_ms < ENGINE_CONNECT_MAX_MS ? e->slack->timeout_ms : ENGINE_CONNECT_MAX_MS;
    bool submitted = http_client_submit(e->http, &req, on_posted, &ans, err, sizeof(err));
    free(body);
    if (!submitted) {
        /* libcurl's setup errors may quote the URL: say only what failed. */
        snprintf(why, whylen, "could not start the post to webhook %s", h->label);
        return SLACK_TRANSIENT;
    }
    while (!ans.done) {
        if (http_client_run(e->http, 200, err, sizeof(err)) < 0) {
            log_warn("http client: %s", err);
            nap(100);
        }
    }
    enum slack_result r = slack_classify(ans.status, ans.body, ans.curl_error, why, whylen);
    /* Belt and braces: never keep a text that quotes the webhook. */
    if (r != SLACK_SENT && strstr(why, h->url) != NULL)
        snprintf(why, whylen, "HTTP %ld (detail withheld: it quoted the webhook URL)", ans.status);
    *retry_after_ms = ans.retry_after_ms;
    return r;
}

/* ---- one alert ---- */

enum handled { HANDLED_DONE, HANDLED_RETRY };

static void fill_ctx(struct log_ctx *lc, const struct alert *a)
{
    lc->request_id = a->view.request_id;
    lc->correlation_id = a->view.correlation_id;
    lc->topic = a->view.topic;
    lc->partition = a->view.partition;
    lc->offset = a->view.offset;
}

static enum handled retry_after(struct alert_engine *e, int64_t ms)
{
    e->retry_wait_ms = ms;
    return HANDLED_RETRY;
}

/* A failed db step. db.h's rule, as in every consumer: an outage, a server
 * fault or a bug of ours waits and reads the message again; the database
 * refusing this message's data would refuse it for ever, so the alert is
 * skipped, loudly (a dead letter of it would come back here). Its request
 * and dead letter are still in the database and the DLQ. */
static enum handled db_failed(struct alert_engine *e, const struct log_ctx *lc, const char *err)
{
    if (db_failure_blames_message(e->db)) {
        log_emit(LOG_ERROR, lc, "%s; the database refuses this alert's data, alert skipped", err);
        return HANDLED_DONE;
    }
    log_emit(LOG_WARN, lc, "%s", err);
    return retry_after(e, ENGINE_BACKOFF_MIN_MS);
}

static enum handled post_alert(struct alert_engine *e, struct alert *a, const struct log_ctx *lc)
{
    char why[512], err[1024];
    int64_t ra;
    struct webhook *h = hook_for(e, a->view.gateway, a->view.reason);
    json_t *payload = slack_alert_message(&a->view);

    if (payload == NULL)
        return retry_after(e, ENGINE_BACKOFF_MIN_MS);
    if (!take_token(e, h)) {
        json_decref(payload);
        return retry_after(e, 0);
    }
    enum slack_result r = post(e, h, payload, &ra, why, sizeof(why));
    json_decref(payload);
    json_t *f = json_pack("{s:s, s:s, s:s}", "dedupKey", a->dedup_key, "webhook", h->label,
                          "reason", a->view.reason);
    struct log_ctx flc = *lc;
    flc.fields = f;
    bool ok = true;
    switch (r) {
    case SLACK_SENT:
        e->failures = 0;
        e->n_posted++;
        metrics_add(e->metrics, "cancel_retry_slack_posts_total", NULL, 1);
        log_emit(LOG_INFO, &flc, "alert posted");
        ok = alert_store_sent(e->db, a->dedup_key, err, sizeof(err));
        break;
    case SLACK_PERMANENT:
        e->n_permanent++;
        metrics_add(e->metrics, "cancel_retry_slack_permanent_failures_total", NULL, 1);
        log_emit(LOG_ERROR, &flc,
                 "slack refused the alert for good: %s; this is a configuration fault of "
                 "webhook %s (alerts.slack), the alert is kept in alert_sent as FAILED_PERMANENT "
                 "(%" PRIu64 " so far)",
                 why, h->label, e->n_permanent);
        ok = alert_store_failed(e->db, a->dedup_key, true, why, err, sizeof(err));
        break;
    case SLACK_RATE_LIMITED:
    case SLACK_TRANSIENT: {
        e->failures++;
        int64_t wait = r == SLACK_RATE_LIMITED && ra >= 0 ? ra : backoff_ms(e->failures);
        log_emit(LOG_WARN, &flc, "could not post the alert: %s; trying again in %" PRId64 "ms", why,
                 wait);
        if (!alert_store_failed(e->db, a->dedup_key, false, why, err, sizeof(err)))
            log_emit(LOG_WARN, &flc, "%s", err);
        json_decref(f);
        return retry_after(e, wait);
    }
    }
    json_decref(f);
    if (!ok)
        /* Posted but not marked: the next read posts it once more, the one
         * repeat the design allows. */
        return db_failed(e, lc, err);
    return HANDLED_DONE;
}

static enum handled handle(struct alert_engine *e, const rd_kafka_message_t *m)
{
    struct kafka_record rec;
    struct alert a;
    char why[256], err[1024];
    json_t *headers = NULL;
    rd_kafka_headers_t *hdrs = NULL;

    consumer_record(m, &rec);
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        headers = dlq_headers_from_kafka(hdrs);
    enum alert_verdict v = alert_from_record(e->cfg, &rec, headers, &a, why, sizeof(why));
    json_decref(headers);
    struct log_ctx lc = LOG_CTX_INIT;
    if (v == ALERT_SKIP) {
        lc.topic = rec.topic;
        lc.partition = rec.partition;
        lc.offset = rec.offset;
        log_emit(LOG_DEBUG, &lc, "no alert: %s", why);
        return HANDLED_DONE;
    }
    fill_ctx(&lc, &a);
    enum handled result = HANDLED_DONE;
    int64_t now = timeutil_now_ms();
    bool digest = alert_window_full(&e->window, now);
    enum alert_row row;
    if (!alert_store_record(e->db, &a, digest, &row, err, sizeof(err))) {
        result = db_failed(e, &lc, err);
        goto out;
    }
    if (row == ALERT_ROW_NEW)
        alert_window_add(&e->window, now);
    if (row == ALERT_ROW_DONE) {
        log_emit(LOG_DEBUG, &lc, "alert %s was already handled", a.dedup_key);
    } else if (row == ALERT_ROW_NEW && digest) {
        e->n_digested++;
        metrics_add(e->metrics, "cancel_retry_alerts_digested_total", NULL, 1);
        if (e->digest_due_ms == 0)
            e->digest_due_ms = now + e->slack->digest_window_ms;
        log_emit(LOG_INFO, &lc, "alert %s goes into the next digest", a.dedup_key);
    } else {
        result = post_alert(e, &a, &lc);
    }
out:
    alert_clear(&a);
    return result;
}

/* ---- digests ---- */

static void count(struct slack_count *c, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(c[i].name, name) == 0) {
            c[i].count++;
            return;
        }
    c[*n].name = name;
    c[*n].count = 1;
    (*n)++;
}

static int by_count_desc(const void *a, const void *b)
{
    const struct slack_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->name, y->name);
}

/* Post one digest of rows[idx[0..n)] to h and record the answer. False if
 * the post should be tried again later (*retry_ms says when). */
static bool post_digest(struct alert_engine *e, struct webhook *h,
                        const struct alert_digest_row *rows, const size_t *idx, size_t n,
                        int64_t *retry_ms)
{
    struct slack_count *reasons = calloc(n, sizeof(*reasons));
    struct slack_count *gateways = calloc(n, sizeof(*gateways));
    char **keys = calloc(n, sizeof(*keys));
    const char *first[ENGINE_DIGEST_FIRST_IDS];
    size_t nr = 0, ng = 0, nfirst = 0;
    int64_t lo = 0, hi = 0;
    char since[40], until[40], why[512], err[1024];
    bool done = false;

    *retry_ms = ENGINE_BACKOFF_MIN_MS;
    if (reasons == NULL || gateways == NULL || keys == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct alert_digest_row *r = &rows[idx[i]];
        keys[i] = r->key;
        count(reasons, &nr, r->reason != NULL ? r->reason : "UNKNOWN");
        count(gateways, &ng, r->gateway != NULL ? r->gateway : "unknown");
        if (r->request_id != NULL && nfirst < ENGINE_DIGEST_FIRST_IDS)
            first[nfirst++] = r->request_id;
        if (r->event_at_ms > 0 && (lo == 0 || r->event_at_ms < lo))
            lo = r->event_at_ms;
        if (r->event_at_ms > hi)
            hi = r->event_at_ms;
    }
    qsort(reasons, nr, sizeof(*reasons), by_count_desc);
    qsort(gateways, ng, sizeof(*gateways), by_count_desc);
    /* --until is exclusive to the second: add one so the last one is listed. */
    struct slack_digest d = {
        .total = (int)n,
        .threshold = e->slack->digest_threshold,
        .window_ms = e->slack->digest_window_ms,
        .reasons = reasons,
        .nreasons = nr,
        .gateways = gateways,
        .ngateways = ng,
        .first_ids = first,
        .nfirst = nfirst,
        .since = lo > 0 && rfc3339_format(lo, since, sizeof(since)) ? since : NULL,
        .until = hi > 0 && rfc3339_format(hi + 1000, until, sizeof(until)) ? until : NULL,
    };
    json_t *payload = slack_digest_message(&d);
    if (payload == NULL || !take_token(e, h)) {
        json_decref(payload);
        goto out;
    }
    int64_t ra;
    enum slack_result r = post(e, h, payload, &ra, why, sizeof(why));
    json_decref(payload);
    json_t *f = json_pack("{s:s, s:i}", "webhook", h->label, "alerts", (int)n);
    struct log_ctx lc = LOG_CTX_INIT;
    lc.fields = f;
    bool ok = true;
    if (r == SLACK_SENT) {
        e->failures = 0;
        e->n_posted++;
        metrics_add(e->metrics, "cancel_retry_slack_posts_total", NULL, 1);
        log_emit(LOG_INFO, &lc, "digest posted: %zu alerts", n);
        ok = alert_store_digest_done(e->db, keys, n, true, false, NULL, err, sizeof(err));
        done = true;
    } else if (r == SLACK_PERMANENT) {
        e->n_permanent++;
        metrics_add(e->metrics, "cancel_retry_slack_permanent_failures_total", NULL, 1);
        log_emit(LOG_ERROR, &lc,
                 "slack refused the digest for good: %s; this is a configuration fault of "
                 "webhook %s (alerts.slack), its %zu alerts are kept in alert_sent as "
                 "FAILED_PERMANENT",
                 why, h->label, n);
        ok = alert_store_digest_done(e->db, keys, n, false, true, why, err, sizeof(err));
        done = true;
    } else {
        e->failures++;
        *retry_ms = r == SLACK_RATE_LIMITED && ra >= 0 ? ra : backoff_ms(e->failures);
        log_emit(LOG_WARN, &lc, "could not post the digest: %s; trying again in %" PRId64 "ms", why,
                 *retry_ms);
        ok = alert_store_digest_done(e->db, keys, n, false, false, why, err, sizeof(err));
    }
    json_decref(f);
    if (!ok) {
        /* A sent digest not marked is posted again: a repeat, not a loss. */
        log_warn("%s", err);
        done = false;
    }
out:
    free(reasons);
    free(gateways);
    free(keys);
    return done;
}

/* Post every digest that is waiting (one per webhook), if its time came. */
static void flush_digests(struct alert_engine *e)
{
    char err[1024];
    bool got = false;
    struct alert_digest_row *rows = NULL;
    size_t n = 0, *idx = NULL;
    int64_t retry = 0;

    if (!db_is_connected(e->db) && !db_connect_once(e->db, err, sizeof(err))) {
        e->digest_due_ms = timeutil_now_ms() + ENGINE_BACKOFF_MAX_MS;
        return;
    }
    if (!alert_store_digest_try_lock(e->db, &got, err, sizeof(err)) || !got) {
        if (!got)
            log_debug("another alert-consumer is posting digests");
        e->digest_due_ms = timeutil_now_ms() + e->slack->digest_window_ms;
        return;
    }
    if (!alert_store_digest_pending(e->db, ENGINE_DIGEST_LIMIT, &rows, &n, err, sizeof(err))) {
        log_warn("%s", err);
        retry = ENGINE_BACKOFF_MAX_MS;
        goto out;
    }
    idx = calloc(n > 0 ? n : 1, sizeof(*idx));
    if (idx == NULL) {
        retry = ENGINE_BACKOFF_MAX_MS;
        goto out;
    }
    for (size_t h = 0; h < e->nhooks && retry == 0; h++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (hook_for(e, rows[i].gateway, rows[i].reason) == &e->hooks[h])
                idx[k++] = i;
        int64_t r;
        if (k > 0 && !post_digest(e, &e->hooks[h], rows, idx, k, &r))
            retry = r > 0 ? r : 1;
    }
    if (retry == 0 && n == ENGINE_DIGEST_LIMIT)
        retry = 1; /* more are waiting */
out:
    alert_store_digest_unlock(e->db);
    alert_store_rows_free(rows, n);
    free(idx);
    e->digest_due_ms = retry > 0 ? timeutil_now_ms() + retry : 0;
}

/* ---- the loop ---- */

static void seed_window(struct alert_engine *e)
{
    int64_t *times = NULL;
    size_t n = 0;
    char err[512];

    if (!alert_store_recent(e->db, e->slack->digest_window_ms, &times, &n, err, sizeof(err))) {
        log_warn("%s; the digest window starts empty", err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        alert_window_add(&e->window, times[i]);
    free(times);
}

/* consumer_handler callbacks: the shared consume loop (consumer.h) commits
 * after HANDLED_DONE and pauses, waits and rewinds after HANDLED_RETRY. */
static enum consumer_verdict on_message(void *arg, const struct kafka_record *rec)
{
    return handle(arg, rec->msg) == HANDLED_DONE ? CONSUMER_DONE : CONSUMER_RETRY;
}

static int64_t on_retry_wait(void *arg)
{
    struct alert_engine *e = arg;
    return e->retry_wait_ms;
}

static bool on_ready(void *arg)
{
    struct alert_engine *e = arg;
    char err[512];

    if (db_is_connected(e->db) || db_connect_once(e->db, err, sizeof(err)))
        return true;
    log_warn("database unavailable, alerts paused: %s", err);
    return false;
}

static void on_idle(void *arg)
{
    struct alert_engine *e = arg;
    if (e->digest_due_ms != 0 && timeutil_now_ms() >= e->digest_due_ms)
        flush_digests(e);
}

int alert_engine_run(struct alert_engine *e, rd_kafka_t *rk)
{
    seed_window(e);
    /* Digest rows a previous run recorded but did not post go first. */
    e->digest_due_ms = timeutil_now_ms();
    const char *topics[] = {e->cfg->topics.outcome.name, e->cfg->topics.dlq.name, NULL};
    struct consumer_handler h = {on_message, on_retry_wait, on_ready, on_idle, e, 250};
    int rc = consumer_run(rk, topics, &h);
    log_info("alerts: %" PRIu64 " posts, %" PRIu64 " alerts digested, %" PRIu64
             " refused for good by slack",
             e->n_posted, e->n_digested, e->n_permanent);
    return rc;
}
