/*
 * cancelctl reconcile: one reconciliation pass against the gateways, run by
 * an operator (reconcile_run.h), optionally correcting our records.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/cancel_event.h"
#include "cancelctl.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "ops/ops_dlq.h"
#include "ops/ops_request.h"
#include "reconcile/reconcile_run.h"

static const char help[] =
    "usage: cancelctl reconcile [--since TIME] [--gateway NAME] [--request-id ID]\n"
    "                           [--fix [--note TEXT]] [--rate N] [--operator NAME]\n"
    "\n"
    "Ask the gateway what it did about every request that finished since TIME (status\n"
    "SUCCEEDED, ALREADY_REFUNDED, FAILED or EXHAUSTED) and compare with our record. Only\n"
    "inquiries are sent, at most --rate a second per gateway: never a refund.\n"
    "\n"
    "What it reports:\n"
    "  OURS_REFUNDED_THEIRS_NOT     we recorded SUCCEEDED or ALREADY_REFUNDED; the gateway\n"
    "                               shows no refund of ours (none, or it failed)\n"
    "  OURS_FAILED_THEIRS_REFUNDED  we recorded FAILED or EXHAUSTED; the gateway shows the\n"
    "                               money back (our refund, or the payment fully refunded)\n"
    "  AMOUNT_DIFFERS               the gateway's refund or payment is in another amount or\n"
    "                               currency than the request\n"
    "  still settling               the gateway's refund is pending: not a mismatch (yet)\n"
    "  could not check              the inquiry got no usable answer (timeout, 5xx, ...)\n"
    "Each mismatch is recorded (reconcile_mismatch) and alerted once: when it is first found,\n"
    "a RECONCILE_MISMATCH dead letter goes to Slack. Running again finds the same open\n"
    "mismatch and alerts nobody. The outbox-relay runs the same pass on its own every\n"
    "reconcile.interval (without --fix).\n"
    "\n"
    "--fix corrects OUR record, never the gateway's, each request in one transaction with\n"
    "an Outcome event and an operator_action audit row:\n"
    "  OURS_FAILED_THEIRS_REFUNDED  -> SUCCEEDED (ALREADY_REFUNDED when the payment is\n"
    "                                  refunded but not provably by us)\n"
    "  OURS_REFUNDED_THEIRS_NOT     -> FAILED, last error RECONCILE_NOT_REFUNDED. Then\n"
    "                                  \"cancelctl dlq replay --request-id ID\" retries it: its\n"
    "                                  first attempt inquires, and only when that shows no\n"
    "                                  refund does it send one, under a new idempotency key\n"
    "  AMOUNT_DIFFERS               never corrected automatically: a person decides\n"
    "A request that changed since it was read is left alone (the status seen is the fence).\n"
    "A second --fix finds nothing left to correct.\n"
    "\n"
    "Options:\n"
    "  --since TIME       requests finished at or after TIME: a duration ago (\"24h\", \"7d\")\n"
    "                     or RFC 3339 (default: reconcile.window of the config)\n"
    "  --gateway NAME     only this gateway's requests\n"
    "  --request-id ID    only this request, whenever it finished\n"
    "  --fix              correct our records as above\n"
    "  --note TEXT        with --fix: added to each audit note (a ticket, say)\n"
    "  --rate N           inquiries a second per gateway (default: reconcile.rate_per_second)\n"
    "  --operator NAME    who, for the run and the audit rows (default: $CANCELCTL_OPERATOR,\n"
    "                     else $USER@hostname)\n"
    "\n"
    "Exit codes: 0 the pass ran to the end (mismatches are reported, not a failure); 1 the\n"
    "database could not be read or written, or the config is bad; 2 usage.\n"
    "\n"
    "Examples:\n"
    "  cancelctl reconcile --since 24h\n"
    "  cancelctl reconcile --since 7d --gateway stripe --rate 2 --json\n"
    "  cancelctl reconcile --request-id order-123-cancel --fix --note \"OPS-981\"";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_reconcile = {
    "reconcile", run, "compare finished requests with the gateway's record (--fix corrects ours)",
    help};

struct reconcile_args {
    int64_t window_ms; /* from --since; 0 = the config's window */
    const char *gateway;
    const char *request_id;
    bool fix;
    const char *note;
    double rate; /* 0 = the config's */
    const char *operator_flag;
};

static int parse(int argc, char **argv, struct reconcile_args *a)
{
    enum { OPT_SINCE = 1000, OPT_GATEWAY, OPT_REQUEST_ID, OPT_FIX, OPT_NOTE, OPT_RATE, OPT_OP };
    static const struct option longopts[] = {
        {"since", required_argument, NULL, OPT_SINCE},
        {"gateway", required_argument, NULL, OPT_GATEWAY},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {"fix", no_argument, NULL, OPT_FIX},
        {"note", required_argument, NULL, OPT_NOTE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"operator", required_argument, NULL, OPT_OP},
        {NULL, 0, NULL, 0}};
    const struct cancelctl_cmd *cmd = &cancelctl_cmd_reconcile;
    int64_t now = wall_ms(), since_ms = 0;
    char *end;
    int c;

    memset(a, 0, sizeof(*a));
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SINCE:
            if (!ops_parse_time(optarg, now, &since_ms) || since_ms >= now)
                return cancelctl_usage_error(cmd,
                                             "--since: \"%s\" is neither a past RFC 3339 time nor "
                                             "a duration like 24h",
                                             optarg);
            a->window_ms = now - since_ms;
            break;
        case OPT_GATEWAY:
            a->gateway = optarg;
            break;
        case OPT_REQUEST_ID:
            if (!cancel_request_id_valid(optarg))
                return cancelctl_usage_error(
                    cmd, "--request-id: \"%s\" is not a requestId (1-255 of [A-Za-z0-9._:-])",
                    optarg);
            a->request_id = optarg;
            break;
        case OPT_FIX:
            a->fix = true;
            break;
        case OPT_NOTE:
            a->note = optarg;
            break;
        case OPT_RATE:
            errno = 0;
            a->rate = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !(a->rate > 0) || a->rate > 1000)
                return cancelctl_usage_error(cmd,
                                             "--rate: \"%s\" is not a number of inquiries a "
                                             "second (more than 0, at most 1000)",
                                             optarg);
            break;
        case OPT_OP:
            a->operator_flag = optarg;
            break;
        default:
            return cancelctl_bad_option(cmd, c, argc, argv);
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (a->note != NULL && !a->fix)
        return cancelctl_usage_error(cmd, "--note goes with --fix: it is the audit note");
    return -1;
}

static json_t *amount_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *item_json(const struct reconcile_item *it)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:s?, s:s}", "requestId", it->request_id,
        "gateway", it->gateway, "ourStatus", it->our_status, "amount", (json_int_t)it->amount,
        "currency", it->currency, "theirFinding", gateway_finding_name(it->finding),
        "theirPaymentAmount", amount_or_null(it->their_payment_amount), "theirRefundedAmount",
        amount_or_null(it->their_refunded_amount), "theirCurrency",
        it->their_currency[0] != '\0' ? it->their_currency : NULL, "detail", it->detail);
    if (o == NULL)
        return NULL;
    if (it->result.verdict == RECONCILE_MISMATCH && !it->changed) {
        json_object_set_new(o, "kind", json_string(reconcile_kind_name(it->result.kind)));
        json_object_set_new(o, "new", json_boolean(it->new_mismatch));
        const char *fix = it->fix == RECONCILE_FIX_DONE   ? "FIXED"
                          : it->fix == RECONCILE_FIX_NONE ? "NOT_FIXED"
                                                          : NULL;
        json_object_set_new(o, "fix", fix != NULL ? json_string(fix) : json_null());
        json_object_set_new(
            o, "statusNow",
            json_string(it->fix == RECONCILE_FIX_DONE ? it->fixed_status : it->our_status));
        json_object_set_new(o, "fixWould",
                            it->result.fix_status != NULL ? json_string(it->result.fix_status)
                                                          : json_null());
        json_object_set_new(o, "why", json_string(it->result.why));
    }
    if (it->changed)
        json_object_set_new(o, "changed", json_true());
    return o;
}

/* What became of a mismatch, in a few words for the table. */
static void action_words(const struct reconcile_item *it, bool fix, char *buf, size_t len)
{
    const char *seen = it->new_mismatch ? "new, alerted" : "still open, alerted before";
    if (it->fix == RECONCILE_FIX_DONE)
        snprintf(buf, len, "%s; corrected to %s", seen, it->fixed_status);
    else if (it->fix == RECONCILE_FIX_NONE)
        snprintf(buf, len, "%s; not corrected: a person decides", seen);
    else if (!fix && it->result.fix_status != NULL)
        snprintf(buf, len, "%s; --fix would make it %s", seen, it->result.fix_status);
    else if (!fix)
        snprintf(buf, len, "%s; --fix leaves it to a person", seen);
    else
        snprintf(buf, len, "%s", seen);
}

static void print_human(const struct reconcile_pass *p, const struct reconcile_args *a, double rate)
{
    const struct reconcile_counts *c = reconcile_pass_counts(p);
    char since[RFC3339_MS_LEN], action[160];
    size_t n = 0;
    const struct reconcile_item *items = reconcile_pass_items(p, &n);

    if (!rfc3339_format(reconcile_pass_window_start_ms(p), since, sizeof(since)))
        snprintf(since, sizeof(since), "?");
    if (a->request_id != NULL)
        printf("Reconciliation run %" PRId64 ": request %s, %s\n", reconcile_pass_run_id(p),
               a->request_id, a->gateway != NULL ? a->gateway : "any gateway");
    else
        printf("Reconciliation run %" PRId64 ": requests finished since %s, %s, %g inquiries/s "
               "per gateway\n",
               reconcile_pass_run_id(p), since, a->gateway != NULL ? a->gateway : "every gateway",
               rate);

    size_t mism = 0;
    for (size_t i = 0; i < n; i++)
        mism += items[i].result.verdict == RECONCILE_MISMATCH && !items[i].changed;
    if (mism > 0) {
        printf("\n%-28s %-28s %-8s %-17s %-14s %s\n", "MISMATCH", "REQUEST", "GATEWAY", "OURS",
               "THEIRS", "WHAT BECAME OF IT");
        for (size_t i = 0; i < n; i++) {
            const struct reconcile_item *it = &items[i];
            if (it->result.verdict != RECONCILE_MISMATCH || it->changed)
                continue;
            action_words(it, a->fix, action, sizeof(action));
            printf("%-28s %-28s %-8s %-17s %-14s %s\n", reconcile_kind_name(it->result.kind),
                   it->request_id, it->gateway, it->our_status, gateway_finding_name(it->finding),
                   action);
            printf("    %s\n", it->inquiry_detail);
        }
    }
    const struct {
        const char *title;
        enum reconcile_verdict v;
    } groups[] = {{"Still settling (a pending refund: not a mismatch yet; a later pass looks "
                   "again)",
                   RECONCILE_SETTLING},
                  {"Could not check", RECONCILE_UNCHECKED}};
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        bool title = false;
        for (size_t i = 0; i < n; i++) {
            const struct reconcile_item *it = &items[i];
            bool in = it->changed ? groups[g].v == RECONCILE_UNCHECKED
                                  : it->result.verdict == groups[g].v;
            if (!in)
                continue;
            if (!title)
                printf("\n%s:\n", groups[g].title);
            title = true;
            printf("  %s (%s, %s): %s\n", it->request_id, it->gateway, it->our_status, it->detail);
        }
    }
    printf("\nChecked %d: %d agree, %d still settling, %d could not be checked, %d mismatch(es) "
           "(%d new, alerted once each)",
           c->checked, c->agree, c->settling, c->unchecked, c->mismatches, c->new_mismatches);
    if (a->fix)
        printf(", %d corrected", c->fixed);
    printf(".\n");
    if (!a->fix && c->mismatches > 0)
        printf("Nothing was corrected: \"cancelctl reconcile --fix\" corrects our records (see "
               "--help).\n");
}

static json_t *report_json(const struct reconcile_pass *p, const struct reconcile_args *a,
                           double rate, const char *op, const char *error)
{
    const struct reconcile_counts *c = reconcile_pass_counts(p);
    char since[RFC3339_MS_LEN];
    size_t n = 0;
    const struct reconcile_item *items = reconcile_pass_items(p, &n);
    json_t *mism = json_array(), *settling = json_array(), *unchecked = json_array();

    if (!rfc3339_format(reconcile_pass_window_start_ms(p), since, sizeof(since)))
        since[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct reconcile_item *it = &items[i];
        json_t *arr = it->changed                                ? unchecked
                      : it->result.verdict == RECONCILE_MISMATCH ? mism
                      : it->result.verdict == RECONCILE_SETTLING ? settling
                                                                 : unchecked;
        json_array_append_new(arr, item_json(it));
    }
    json_t *doc = json_pack(
        "{s:b, s:I, s:s, s:s?, s:s?, s:b, s:f, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:o, "
        "s:o, s:o}",
        "ok", error == NULL, "runId", (json_int_t)reconcile_pass_run_id(p), "windowStart", since,
        "gateway", a->gateway, "requestId", a->request_id, "fix", a->fix, "ratePerSecond", rate,
        "operator", op, "counts", "checked", c->checked, "agree", c->agree, "settling", c->settling,
        "couldNotCheck", c->unchecked, "mismatches", c->mismatches, "newMismatches",
        c->new_mismatches, "fixed", c->fixed, "mismatches", mism, "settling", settling,
        "couldNotCheck", unchecked);
    if (doc != NULL && error != NULL)
        json_object_set_new(doc, "error", json_string(error));
    return doc;
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    struct reconcile_args a;
    char op[OPS_OPERATOR_MAX + 1], err[1024], err2[1024];
    int rc = parse(argc, argv, &a);

    if (rc >= 0)
        return rc;
    ops_operator_current(a.operator_flag, op, sizeof(op));
    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    if (a.gateway != NULL && config_gateway_find(cfg, a.gateway) == NULL) {
        config_free(cfg);
        return cancelctl_usage_error(&cancelctl_cmd_reconcile,
                                     "--gateway: \"%s\" is not a gateway of %s", a.gateway,
                                     ctx->config_path);
    }
    double rate = a.rate > 0 ? a.rate : cfg->reconcile.rate_per_second;
    struct reconcile_options opt = {
        .trigger = RECONCILE_TRIGGER_CLI,
        .run_by = op,
        .consumer = "cancelctl",
        .window_ms = a.window_ms > 0 ? a.window_ms : cfg->reconcile.window_ms,
        .gateway = a.gateway,
        .request_id = a.request_id,
        .rate_per_second = rate,
        .fix = a.fix,
        .note = a.note,
        .keep_items = true,
    };
    struct db *db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL) {
        config_free(cfg);
        return CANCELCTL_EXIT_FAILURE;
    }
    struct reconcile_pass *p = reconcile_pass_new(cfg, &opt, err, sizeof(err));
    if (p == NULL) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    if (!reconcile_pass_begin(p, db, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    int step;
    while ((step = reconcile_pass_step(p, db, 100, err, sizeof(err))) > 0)
        ;
    const char *error = step < 0 ? err : NULL;
    if (!reconcile_pass_end(p, db, error, err2, sizeof(err2)))
        log_warn("%s", err2);
    if (ctx->json)
        cancelctl_print_json(report_json(p, &a, rate, op, error));
    else
        print_human(p, &a, rate);
    if (error != NULL) {
        fprintf(stderr,
                "cancelctl: reconciliation stopped early: %s (what is shown was recorded; run it "
                "again to go on)\n",
                error);
        rc = CANCELCTL_EXIT_FAILURE;
    } else {
        rc = CANCELCTL_EXIT_OK;
    }
out:
    reconcile_pass_free(p);
    db_free(db);
    config_free(cfg);
    return rc;
}
