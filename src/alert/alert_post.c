/*
 * alert_post: the posts of the alert engine: every webhook has its own post
 * in flight, back-off and bucket, so one that is down delays nobody else.
 * See alert_engine.h and alert_engine_internal.h.
 */
#include "alert/alert_engine_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/slack.h"
#include "base/clock.h"
#include "service/metrics.h"
#include "store/alert_store.h"

static int64_t backoff_ms(int failures)
{
    int64_t ms = ALERT_ENGINE_BACKOFF_MIN_MS;
    for (int i = 1; i < failures && ms < ALERT_ENGINE_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms > ALERT_ENGINE_BACKOFF_MAX_MS ? ALERT_ENGINE_BACKOFF_MAX_MS : ms;
}

/* The bucket that paces h: the first webhook with the same URL owns it. */
static struct ratelimit *bucket(struct alert_engine *e, const struct alert_webhook *h)
{
    for (size_t i = 0; i < e->nhooks; i++)
        if (strcmp(e->hooks[i].url, h->url) == 0)
            return e->hooks[i].rl;
    return h->rl;
}

static void on_posted(const struct http_response *resp, void *arg)
{
    struct alert_post_answer *a = arg;

    a->done = true;
    a->status = resp->status;
    a->retry_after_ms = resp->retry_after_ms;
    snprintf(a->body, sizeof(a->body), "%s", resp->body);
    snprintf(a->curl_error, sizeof(a->curl_error), "%s", resp->curl_error);
}

/* Start posting payload (taken over) to h. False if the post could not
 * start; why says so, never quoting the URL. */
static bool submit(struct alert_engine *e, struct alert_webhook *h, json_t *payload, char *why,
                   size_t whylen)
{
    static const char *const headers[] = {"Content-Type: application/json; charset=utf-8"};
    char err[512];
    char *body = payload != NULL ? json_dumps(payload, JSON_COMPACT) : NULL;

    json_decref(payload);
    if (body == NULL) {
        snprintf(why, whylen, "could not serialize the message: out of memory");
        return false;
    }
    struct http_request req = HTTP_REQUEST_INIT;
    req.method = "POST";
    req.url = h->url;
    req.headers = headers;
    req.nheaders = 1;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = e->slack->timeout_ms;
    req.connect_timeout_ms = e->slack->timeout_ms < ALERT_ENGINE_CONNECT_MAX_MS
                                 ? e->slack->timeout_ms
                                 : ALERT_ENGINE_CONNECT_MAX_MS;
    memset(&h->ans, 0, sizeof(h->ans));
    bool ok = http_client_submit(e->http, &req, on_posted, &h->ans, err, sizeof(err));
    free(body);
    if (!ok) /* libcurl's setup errors may quote the URL: say only what failed */
        snprintf(why, whylen, "could not start the post to webhook %s", h->label);
    return ok;
}

/* A post Slack did not take this time (it is tried again). */
static void count_failed_post(struct alert_engine *e, enum slack_result r)
{
    metrics_add(e->metrics, "cancel_retry_slack_failed_posts_total",
                r == SLACK_RATE_LIMITED ? "kind=\"rate_limited\"" : "kind=\"transient\"", 1);
}

/* A failed post of h: wait before the next (Retry-After, else the back-off). */
static int64_t delay_next(struct alert_webhook *h, enum slack_result r, int64_t retry_after_ms)
{
    h->failures++;
    int64_t wait =
        r == SLACK_RATE_LIMITED && retry_after_ms >= 0 ? retry_after_ms : backoff_ms(h->failures);
    h->next_try_ms = mono_ms() + wait;
    return wait;
}

/* Start the next post of every webhook that is free, due and has a token:
 * its oldest alert first, then its digest. */
void alert_post_start(struct alert_engine *e)
{
    int64_t now = mono_ms();
    char why[512];

    for (size_t i = 0; i < e->nhooks; i++) {
        struct alert_webhook *h = &e->hooks[i];
        if (h->posting != ALERT_POSTING_NONE || now < h->next_try_ms ||
            (h->head == NULL && h->digest == NULL))
            continue;
        int64_t wait = ratelimit_take(bucket(e, h), now);
        if (wait > 0) {
            h->next_try_ms = now + wait;
            continue;
        }
        bool alert = h->head != NULL;
        json_t *payload =
            alert ? slack_alert_message(&h->head->a->view) : json_incref(h->digest->payload);
        if (submit(e, h, payload, why, sizeof(why))) {
            h->posting = alert ? ALERT_POSTING_ALERT : ALERT_POSTING_DIGEST;
        } else {
            int64_t w = delay_next(h, SLACK_TRANSIENT, -1);
            count_failed_post(e, SLACK_TRANSIENT);
            log_warn("%s; trying again in %" PRId64 "ms", why, w);
        }
    }
}

static void alert_answered(struct alert_engine *e, struct alert_webhook *h, enum slack_result r,
                           const char *why)
{
    struct alert_item *it = h->head;
    char err[1024];
    struct log_ctx lc = LOG_CTX_INIT;
    alert_engine_fill_ctx(&lc, it->a);
    lc.fields = json_pack("{s:s, s:s, s:s}", "dedupKey", it->a->dedup_key, "webhook", h->label,
                          "reason", it->a->view.reason);

    if (r == SLACK_RATE_LIMITED || r == SLACK_TRANSIENT) {
        int64_t wait = delay_next(h, r, h->ans.retry_after_ms);
        count_failed_post(e, r);
        log_emit(LOG_WARN, &lc, "could not post the alert: %s; trying again in %" PRId64 "ms", why,
                 wait);
        if (!alert_store_failed(e->db, it->a->dedup_key, false, why, err, sizeof(err)))
            log_emit(LOG_WARN, &lc, "%s", err);
        json_decref(lc.fields);
        if (!it->abandoned)
            return;
        /* Its partition has a new owner, which posts it: let it go. */
        h->head = it->next;
        if (h->head == NULL)
            h->tail = NULL;
        h->queued--;
        alert_item_free(it);
        return;
    }
    h->head = it->next;
    if (h->head == NULL)
        h->tail = NULL;
    h->queued--;
    it->sent = r == SLACK_SENT;
    if (it->sent) {
        h->failures = 0;
        e->n_posted++;
        metrics_add(e->metrics, "cancel_retry_slack_posts_total", NULL, 1);
        log_emit(LOG_INFO, &lc, "alert posted");
    } else {
        snprintf(it->why, sizeof(it->why), "%s", why);
        e->n_permanent++;
        metrics_add(e->metrics, "cancel_retry_slack_permanent_failures_total", NULL, 1);
        log_emit(LOG_ERROR, &lc,
                 "slack refused the alert for good: %s; this is a configuration fault of "
                 "webhook %s (alerts.slack), the alert is kept in alert_sent as FAILED_PERMANENT "
                 "(%" PRIu64 " so far)",
                 why, h->label, e->n_permanent);
    }
    json_decref(lc.fields);
    /* Posted but not marked: parked until the db answers. A crash before
     * that posts it once more on the next read, the one repeat the design
     * allows per webhook. */
    if (e->db_down || !alert_item_mark(e, it))
        alert_item_stall(e, it, ALERT_ITEM_MARK);
}

void alert_post_release_digest_lock(struct alert_engine *e)
{
    for (size_t i = 0; i < e->nhooks; i++)
        if (e->hooks[i].digest != NULL)
            return;
    if (e->digest_locked)
        alert_store_digest_unlock(e->db);
    e->digest_locked = false;
}

static void digest_answered(struct alert_engine *e, struct alert_webhook *h, enum slack_result r,
                            const char *why)
{
    struct alert_digest *d = h->digest;
    char err[1024];
    bool ok;
    struct log_ctx lc = LOG_CTX_INIT;
    lc.fields = json_pack("{s:s, s:i}", "webhook", h->label, "alerts", (int)d->n);

    if (r == SLACK_SENT) {
        h->failures = 0;
        e->n_posted++;
        metrics_add(e->metrics, "cancel_retry_slack_posts_total", NULL, 1);
        log_emit(LOG_INFO, &lc, "digest posted: %zu alerts", d->n);
        ok = alert_store_digest_done(e->db, d->keys, d->n, true, false, NULL, err, sizeof(err));
    } else if (r == SLACK_PERMANENT) {
        e->n_permanent++;
        metrics_add(e->metrics, "cancel_retry_slack_permanent_failures_total", NULL, 1);
        log_emit(LOG_ERROR, &lc,
                 "slack refused the digest for good: %s; this is a configuration fault of "
                 "webhook %s (alerts.slack), its %zu alerts are kept in alert_sent as "
                 "FAILED_PERMANENT",
                 why, h->label, d->n);
        ok = alert_store_digest_done(e->db, d->keys, d->n, false, true, why, err, sizeof(err));
    } else {
        int64_t wait = delay_next(h, r, h->ans.retry_after_ms);
        count_failed_post(e, r);
        log_emit(LOG_WARN, &lc, "could not post the digest: %s; trying again in %" PRId64 "ms", why,
                 wait);
        ok = alert_store_digest_done(e->db, d->keys, d->n, false, false, why, err, sizeof(err));
    }
    json_decref(lc.fields);
    if (!ok)
        /* A sent digest not marked is posted again: a repeat, not a loss. */
        log_warn("%s", err);
    if (r == SLACK_SENT || r == SLACK_PERMANENT) {
        alert_digest_free(d);
        h->digest = NULL;
        /* Rows that came while this one was in flight wait for the next. */
        e->digest_due_ms = wall_ms();
        alert_post_release_digest_lock(e);
    }
}

/* Handle every answer that came in. */
void alert_post_finish(struct alert_engine *e)
{
    char why[512];

    for (size_t i = 0; i < e->nhooks; i++) {
        struct alert_webhook *h = &e->hooks[i];
        if (h->posting == ALERT_POSTING_NONE || !h->ans.done)
            continue;
        enum slack_result r =
            slack_classify(h->ans.status, h->ans.body, h->ans.curl_error, why, sizeof(why));
        /* why is masked by slack_classify: the webhook URLs are in the
         * process's set of secrets (redact.h). */
        enum alert_posting p = h->posting;
        h->posting = ALERT_POSTING_NONE;
        if (p == ALERT_POSTING_ALERT)
            alert_answered(e, h, r, why);
        else
            digest_answered(e, h, r, why);
    }
}

/* ---- digests ---- */

/* Build the digest of every webhook that has rows waiting and no digest in
 * flight; a digest that failed and waits is rebuilt with what came since. */
void alert_post_flush_digests(struct alert_engine *e)
{
    char err[1024];
    struct alert_digest_row *rows = NULL;
    size_t n = 0, *idx = NULL;

    e->digest_due_ms = 0;
    if (e->db_down) {
        e->digest_due_ms = wall_ms() + ALERT_ENGINE_BACKOFF_MAX_MS;
        return;
    }
    if (!e->digest_locked) {
        bool got = false;
        if (!alert_store_digest_try_lock(e->db, &got, err, sizeof(err)) || !got) {
            if (!got)
                log_debug("another alert-consumer is posting digests");
            e->digest_due_ms = wall_ms() + e->slack->digest_window_ms;
            return;
        }
        e->digest_locked = true;
    }
    if (!alert_store_digest_pending(e->db, ALERT_ENGINE_DIGEST_LIMIT, &rows, &n, err,
                                    sizeof(err))) {
        log_warn("%s", err);
        e->digest_due_ms = wall_ms() + ALERT_ENGINE_BACKOFF_MAX_MS;
        goto out;
    }
    idx = calloc(n > 0 ? n : 1, sizeof(*idx));
    if (idx == NULL) {
        log_warn("could not build digests: out of memory");
        e->digest_due_ms = wall_ms() + ALERT_ENGINE_BACKOFF_MAX_MS;
        goto out;
    }
    for (size_t i = 0; i < e->nhooks; i++) {
        struct alert_webhook *h = &e->hooks[i];
        size_t k = 0;
        if (h->posting == ALERT_POSTING_DIGEST)
            continue; /* its answer sets digest_due_ms again */
        for (size_t r = 0; r < n; r++)
            if (alert_engine_hook_for(e, rows[r].gateway, rows[r].reason) == h)
                idx[k++] = r;
        if (k == 0)
            continue;
        struct alert_digest *d = alert_digest_build(e->slack, rows, idx, k);
        if (d == NULL) {
            log_warn("could not build the digest of webhook %s: out of memory", h->label);
            e->digest_due_ms = wall_ms() + ALERT_ENGINE_BACKOFF_MAX_MS;
            continue;
        }
        alert_digest_free(h->digest);
        h->digest = d;
    }
    if (n == ALERT_ENGINE_DIGEST_LIMIT && e->digest_due_ms == 0)
        e->digest_due_ms = wall_ms() + 1; /* more are waiting */
out:
    alert_store_rows_free(rows, n);
    free(idx);
    alert_post_release_digest_lock(e);
}
