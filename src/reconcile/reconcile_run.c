/*
 * reconcile_run: see reconcile_run.h.
 */
#include "reconcile/reconcile_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/http.h"
#include "base/log.h"
#include "base/ratelimit.h"
#include "event/cancel_event.h"
#include "event/dlq.h"
#include "gateway/gateway.h"
#include "store/request_events.h"
#include "store/request_store.h"

/* Requests read per query (keyset paging keeps each query cheap). */
#define PAGE_SIZE 100
/* Inquiries in flight at once, all gateways together: the rate limit paces
 * them; this bounds what a slow gateway can pile up. */
#define MAX_IN_FLIGHT 8
/* Answers recorded per step: bounds the database work of one relay turn. */
#define RECORD_PER_STEP 8
/* Longest nap of a step that waits for a token with nothing in flight. */
#define TOKEN_NAP_MS 20

struct rgw {
    const struct config_gateway *cfg;
    struct gateway_client *client;
    struct ratelimit *rl;
};

/* One request between the start of its inquiry and its record. */
struct slot {
    struct slot *next;
    struct reconcile_pass *pass;
    struct reconcile_candidate c;
    bool done;
    struct gateway_inquiry q;
};

struct reconcile_pass {
    const struct config *cfg;
    struct reconcile_options opt; /* strings point at the copies below */
    char *trigger, *run_by, *consumer, *gateway, *request_id, *note;
    struct http_client *http;
    struct rgw *gws;
    size_t ngws;
    int64_t run_id;
    int64_t window_start_ms;
    bool begun;
    /* The current page of candidates; taken[i]: its inquiry was started. */
    struct reconcile_candidate *page;
    bool *taken;
    size_t npage, next;
    bool exhausted; /* no page after this one */
    char after[256];
    struct slot *slots;
    size_t in_flight;
    struct reconcile_counts counts;
    struct reconcile_item *items;
    size_t nitems, cap;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

struct reconcile_pass *reconcile_pass_new(const struct config *cfg,
                                          const struct reconcile_options *opt, char *err,
                                          size_t errlen)
{
    struct reconcile_pass *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "could not start a reconciliation pass: out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->opt = *opt;
    p->trigger = strdup(opt->trigger);
    p->run_by = strdup(opt->run_by);
    p->consumer = strdup(opt->consumer);
    p->gateway = dup_or_null(opt->gateway);
    p->request_id = dup_or_null(opt->request_id);
    p->note = dup_or_null(opt->note);
    p->opt.trigger = p->trigger;
    p->opt.run_by = p->run_by;
    p->opt.consumer = p->consumer;
    p->opt.gateway = p->gateway;
    p->opt.request_id = p->request_id;
    p->opt.note = p->note;
    err[0] = '\0';
    p->http = http_client_new(err, errlen);
    p->gws = calloc(cfg->ngateways > 0 ? cfg->ngateways : 1, sizeof(*p->gws));
    if (p->trigger == NULL || p->run_by == NULL || p->consumer == NULL ||
        (opt->gateway != NULL && p->gateway == NULL) ||
        (opt->request_id != NULL && p->request_id == NULL) ||
        (opt->note != NULL && p->note == NULL) || p->http == NULL || p->gws == NULL) {
        if (err[0] == '\0')
            snprintf(err, errlen, "could not start a reconciliation pass: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->ngateways; i++) {
        struct rgw *g = &p->gws[p->ngws];
        g->cfg = &cfg->gateways[i];
        g->client = gateway_client_new(g->cfg, p->http, err, errlen);
        /* Burst 1: the rate is a promise to the gateway, not an average. */
        g->rl = ratelimit_new(opt->rate_per_second, 1);
        p->ngws++;
        if (g->client == NULL || g->rl == NULL) {
            if (g->client != NULL)
                snprintf(err, errlen, "could not start a reconciliation pass: out of memory");
            goto fail;
        }
    }
    return p;
fail:
    reconcile_pass_free(p);
    return NULL;
}

void reconcile_pass_free(struct reconcile_pass *p)
{
    if (p == NULL)
        return;
    /* The http client first: it finishes (aborts) the inquiries still in
     * flight, whose callbacks point at slots and gateway clients. */
    http_client_free(p->http);
    for (size_t i = 0; i < p->ngws; i++) {
        gateway_client_free(p->gws[i].client);
        ratelimit_free(p->gws[i].rl);
    }
    free(p->gws);
    while (p->slots != NULL) {
        struct slot *s = p->slots;
        p->slots = s->next;
        free(s);
    }
    free(p->page);
    free(p->taken);
    free(p->items);
    free(p->trigger);
    free(p->run_by);
    free(p->consumer);
    free(p->gateway);
    free(p->request_id);
    free(p->note);
    free(p);
}

const struct reconcile_counts *reconcile_pass_counts(const struct reconcile_pass *p)
{
    return &p->counts;
}

int64_t reconcile_pass_run_id(const struct reconcile_pass *p)
{
    return p->run_id;
}

int64_t reconcile_pass_window_start_ms(const struct reconcile_pass *p)
{
    return p->window_start_ms;
}

const struct reconcile_item *reconcile_pass_items(const struct reconcile_pass *p, size_t *n)
{
    *n = p->nitems;
    return p->items;
}

bool reconcile_pass_begin(struct reconcile_pass *p, struct db *db, char *err, size_t errlen)
{
    int closed = 0;
    if (!reconcile_store_run_begin(db, p->opt.trigger, p->opt.run_by, p->opt.window_ms,
                                   p->opt.gateway, p->opt.request_id, p->opt.fix, &p->run_id,
                                   &p->window_start_ms, err, errlen) ||
        !reconcile_store_close_resolved(db, &closed, err, errlen))
        return false;
    if (closed > 0)
        log_info("reconciliation: %d open mismatch(es) closed: their requests were resolved by "
                 "hand",
                 closed);
    p->begun = true;
    return true;
}

bool reconcile_pass_end(struct reconcile_pass *p, struct db *db, const char *error, char *err,
                        size_t errlen)
{
    if (!p->begun)
        return true;
    return reconcile_store_run_finish(db, p->run_id, &p->counts, error, err, errlen);
}

static struct rgw *find_gateway(struct reconcile_pass *p, const char *name)
{
    for (size_t i = 0; i < p->ngws; i++)
        if (strcmp(p->gws[i].cfg->name, name) == 0)
            return &p->gws[i];
    return NULL;
}

/* An inquiry that could not be made: the same as one without an answer. */
static void unanswered(struct slot *s, const char *why)
{
    memset(&s->q, 0, sizeof(s->q));
    s->q.finding = FINDING_UNKNOWN;
    s->q.payment_amount = s->q.refunded_amount = -1;
    snprintf(s->q.detail, sizeof(s->q.detail), "%.*s", (int)sizeof(s->q.detail) - 1, why);
    s->done = true;
}

static void on_inquiry(const struct gateway_inquiry *q, void *arg)
{
    struct slot *s = arg;
    s->q = *q;
    s->done = true;
    s->pass->in_flight--;
}

/* Start the inquiry of candidate c on gateway g (NULL: not configured). */
static bool start_one(struct reconcile_pass *p, struct db *db, const struct reconcile_candidate *c,
                      struct rgw *g, char *err, size_t errlen)
{
    char why[512];
    struct slot *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "could not start an inquiry: out of memory");
        return false;
    }
    s->pass = p;
    s->c = *c;
    s->next = p->slots;
    p->slots = s;
    if (g == NULL) {
        snprintf(why, sizeof(why), "gateway \"%s\" is not configured", c->gateway);
        unanswered(s, why);
        return true;
    }

    /* Toss names no request on a cancel: the inquiry counts ours only beyond
     * the other requests of the payment with the same amount. */
    struct request_row same;
    memset(&same, 0, sizeof(same));
    same.request_id = s->c.request_id;
    same.gateway = s->c.gateway;
    same.payment_key = s->c.payment_key;
    same.amount = s->c.amount;
    if (!request_store_same_amount(db, &same, err, errlen))
        return false;

    struct refund_request req;
    memset(&req, 0, sizeof(req));
    req.request_id = s->c.request_id;
    req.payment_key = s->c.payment_key;
    req.amount = s->c.amount;
    req.currency = s->c.currency;
    req.partial = s->c.partial;
    req.reason = "reconciliation";
    req.same_amount_done = same.same_amount_done;
    req.same_amount_open = same.same_amount_open;
    if (!gateway_inquire_refund_start(g->client, &req, on_inquiry, s, why, sizeof(why)))
        unanswered(s, why);
    else
        p->in_flight++;
    return true;
}

/* Start the inquiries that the rate limits allow, skipping over candidates
 * whose gateway has no token yet so that one slow gateway does not hold up
 * the others. */
static bool start_some(struct reconcile_pass *p, struct db *db, char *err, size_t errlen)
{
    int64_t now = wall_ms();

    for (size_t i = p->next; i < p->npage && p->in_flight < MAX_IN_FLIGHT; i++) {
        if (p->taken[i])
            continue;
        struct rgw *g = find_gateway(p, p->page[i].gateway);
        if (g != NULL && ratelimit_take(g->rl, now) > 0)
            continue;
        p->taken[i] = true;
        if (!start_one(p, db, &p->page[i], g, err, errlen))
            return false;
    }
    while (p->next < p->npage && p->taken[p->next])
        p->next++;
    return true;
}

static bool load_page(struct reconcile_pass *p, struct db *db, char *err, size_t errlen)
{
    struct reconcile_candidate *page = NULL;
    size_t n = 0;

    if (!reconcile_store_candidates(db, p->window_start_ms, p->opt.gateway, p->opt.request_id,
                                    p->after, PAGE_SIZE, &page, &n, err, errlen))
        return false;
    bool *taken = n > 0 ? calloc(n, sizeof(*taken)) : NULL;
    if (n > 0 && taken == NULL) {
        free(page);
        snprintf(err, errlen, "could not read the finished requests: out of memory");
        return false;
    }
    free(p->page);
    free(p->taken);
    p->page = page;
    p->taken = taken;
    p->npage = n;
    p->next = 0;
    p->exhausted = n < PAGE_SIZE;
    if (n > 0)
        snprintf(p->after, sizeof(p->after), "%s", page[n - 1].request_id);
    return true;
}

static void keep(struct reconcile_pass *p, const struct reconcile_item *it)
{
    if (!p->opt.keep_items)
        return;
    if (p->nitems == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct reconcile_item *v = realloc(p->items, cap * sizeof(*v));
        if (v == NULL) {
            log_warn("reconciliation: out of memory keeping the report of %s", it->request_id);
            return;
        }
        p->items = v;
        p->cap = cap;
    }
    p->items[p->nitems++] = *it;
}

static void log_item(const struct reconcile_item *it, enum log_level level, const char *what)
{
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.request_id = it->request_id;
    log_emit(level, &ctx, "reconciliation: %s: %s", what, it->detail);
}

/* The request changed between the read and the record: a later pass looks
 * again; nothing is recorded now. */
static void mark_changed(struct reconcile_pass *p, struct reconcile_item *it, const char *now)
{
    it->changed = true;
    p->counts.unchecked++;
    snprintf(it->detail, sizeof(it->detail),
             "the request changed while it was checked (it was %s, it is %s now): a later pass "
             "looks again",
             it->our_status, now != NULL ? now : "gone");
}

/* Record a mismatch (and correct it with --fix) in one transaction, with the
 * request row locked and its status what the comparison saw. */
static bool record_mismatch(struct reconcile_pass *p, struct db *db, struct reconcile_item *it,
                            char *err, size_t errlen)
{
    const struct reconcile_result *res = &it->result;
    struct request_row row;
    bool found = false, inserted = false, applied = false;
    int64_t id = 0;
    char note[1024];

    if (!db_begin(db, err, errlen))
        return false;
    if (!request_store_get(db, it->request_id, true, &row, &found, err, errlen))
        goto fail;
    if (!found || strcmp(row.status, it->our_status) != 0) {
        mark_changed(p, it, found ? row.status : NULL);
        goto rollback;
    }
    struct reconcile_mismatch_rec rec = {
        .request_id = it->request_id,
        .gateway = it->gateway,
        .kind = reconcile_kind_name(res->kind),
        .our_status = it->our_status,
        .their_finding = gateway_finding_name(it->finding),
        .amount = it->amount,
        .currency = it->currency,
        .their_payment_amount = it->their_payment_amount,
        .their_refunded_amount = it->their_refunded_amount,
        .their_currency = it->their_currency,
        .detail = it->detail,
        .run_id = p->run_id,
    };
    if (!reconcile_store_open_mismatch(db, &rec, &inserted, &id, err, errlen))
        goto fail;
    /* Only the first record of a mismatch alerts: the dead letter is the
     * alert, and it commits with the row that remembers it was sent. */
    if (inserted &&
        !request_events_request_dead_letter(db, p->cfg, &row, DLQ_REASON_RECONCILE_MISMATCH,
                                            it->detail, p->opt.consumer, row.attempts, err, errlen))
        goto fail;
    if (p->opt.fix && res->fix_status == NULL)
        it->fix = RECONCILE_FIX_NONE;
    if (p->opt.fix && res->fix_status != NULL) {
        bool success = strcmp(res->fix_status, CANCEL_STATUS_FAILED) != 0;
        if (!reconcile_store_fix_request(db, it->request_id, it->our_status, res->fix_status,
                                         res->fix_error_code, it->detail, res->fix_key_holds_error,
                                         success, &applied, err, errlen))
            goto fail;
        if (!applied) {
            /* Unreachable under the row lock unless the row was changed by
             * hand; the whole record waits for a later pass. */
            mark_changed(p, it, "changed under the lock");
            goto rollback;
        }
        struct cancel_last_error last = {res->fix_error_code, it->detail, 0};
        snprintf(note, sizeof(note), "reconcile --fix: %s -> %s: %s%s%s", it->our_status,
                 res->fix_status, it->detail, p->opt.note != NULL ? "; " : "",
                 p->opt.note != NULL ? p->opt.note : "");
        if (!request_events_final(db, p->cfg, &row, res->fix_status, row.attempts,
                                  res->fix_error_code != NULL ? &last : NULL, NULL, NULL,
                                  p->opt.consumer, err, errlen) ||
            !reconcile_store_action(db, it->request_id, p->opt.run_by, note, err, errlen) ||
            !reconcile_store_close_mismatch(db, id, p->opt.run_by, note, err, errlen))
            goto fail;
        it->fix = RECONCILE_FIX_DONE;
        snprintf(it->fixed_status, sizeof(it->fixed_status), "%s", res->fix_status);
    }
    request_row_clear(&row);
    if (!db_commit(db, err, errlen)) {
        db_rollback(db);
        return false;
    }
    it->new_mismatch = inserted;
    p->counts.mismatches++;
    p->counts.new_mismatches += inserted ? 1 : 0;
    p->counts.fixed += it->fix == RECONCILE_FIX_DONE ? 1 : 0;
    if (inserted)
        log_item(it, LOG_WARN, "the gateway disagrees with our record (alerted)");
    if (it->fix == RECONCILE_FIX_DONE) {
        char what[128];
        snprintf(what, sizeof(what), "our record corrected to %s by %.60s", it->fixed_status,
                 p->opt.run_by);
        log_item(it, LOG_WARN, what);
    }
    return true;
rollback:
    if (found)
        request_row_clear(&row);
    db_rollback(db);
    return true;
fail:
    if (found)
        request_row_clear(&row);
    db_rollback(db);
    return false;
}

static bool record_one(struct reconcile_pass *p, struct db *db, const struct slot *s, char *err,
                       size_t errlen)
{
    struct reconcile_item it;
    memset(&it, 0, sizeof(it));
    snprintf(it.request_id, sizeof(it.request_id), "%s", s->c.request_id);
    snprintf(it.gateway, sizeof(it.gateway), "%s", s->c.gateway);
    snprintf(it.our_status, sizeof(it.our_status), "%s", s->c.status);
    snprintf(it.currency, sizeof(it.currency), "%s", s->c.currency);
    it.amount = s->c.amount;
    it.finding = s->q.finding;
    it.their_payment_amount = s->q.payment_amount;
    it.their_refunded_amount = s->q.refunded_amount;
    snprintf(it.their_currency, sizeof(it.their_currency), "%s", s->q.currency);
    snprintf(it.inquiry_detail, sizeof(it.inquiry_detail), "%s", s->q.detail);
    reconcile_compare(it.our_status, it.finding, &it.result);
    p->counts.checked++;

    switch (it.result.verdict) {
    case RECONCILE_AGREE: {
        char note[512];
        int closed = 0;
        snprintf(note, sizeof(note), "the gateway and our record agree again: %s (%s)",
                 gateway_finding_name(it.finding), it.inquiry_detail);
        if (!reconcile_store_close_agreed(db, it.request_id, it.our_status, p->opt.run_by, note,
                                          &closed, err, errlen))
            return false;
        p->counts.agree++;
        if (closed > 0) {
            snprintf(it.detail, sizeof(it.detail), "%s", note);
            log_item(&it, LOG_INFO, "open mismatch closed");
        }
        return true;
    }
    case RECONCILE_SETTLING:
    case RECONCILE_UNCHECKED:
        p->counts.settling += it.result.verdict == RECONCILE_SETTLING ? 1 : 0;
        p->counts.unchecked += it.result.verdict == RECONCILE_UNCHECKED ? 1 : 0;
        snprintf(it.detail, sizeof(it.detail), "%s (%s)", it.result.why, it.inquiry_detail);
        keep(p, &it);
        return true;
    case RECONCILE_MISMATCH:
        reconcile_describe(it.our_status, it.finding, it.result.kind, it.inquiry_detail, it.detail,
                           sizeof(it.detail));
        if (!record_mismatch(p, db, &it, err, errlen))
            return false;
        keep(p, &it);
        return true;
    }
    return true;
}

/* Record up to RECORD_PER_STEP answered inquiries. */
static bool record_done(struct reconcile_pass *p, struct db *db, char *err, size_t errlen)
{
    struct slot **link = &p->slots;
    int n = 0;

    while (*link != NULL && n < RECORD_PER_STEP) {
        struct slot *s = *link;
        if (!s->done) {
            link = &s->next;
            continue;
        }
        if (!record_one(p, db, s, err, errlen))
            return false;
        *link = s->next;
        free(s);
        n++;
    }
    return true;
}

static bool any_done(const struct reconcile_pass *p)
{
    for (const struct slot *s = p->slots; s != NULL; s = s->next)
        if (s->done)
            return true;
    return false;
}

int reconcile_pass_step(struct reconcile_pass *p, struct db *db, int wait_ms, char *err,
                        size_t errlen)
{
    char herr[512];

    if (!record_done(p, db, err, errlen))
        return -1;
    if (p->next >= p->npage && !p->exhausted && !load_page(p, db, err, errlen))
        return -1;
    if (!start_some(p, db, err, errlen))
        return -1;
    if (p->slots == NULL && p->next >= p->npage && p->exhausted)
        return 0;
    if (p->in_flight > 0) {
        if (http_client_run(p->http, wait_ms, herr, sizeof(herr)) < 0)
            log_warn("reconciliation: http engine: %s", herr);
    } else if (wait_ms > 0 && !any_done(p)) {
        /* Nothing in flight, nothing to record: waiting for a token. */
        int nap = wait_ms < TOKEN_NAP_MS ? wait_ms : TOKEN_NAP_MS;
        struct timespec ts = {0, (long)nap * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 1;
}
