/*
 * cancelctl status: what the pipeline is doing, on one screen.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cancelctl.h"
#include "base/duration.h"
#include "base/redact.h"
#include "ops/ops_dlq.h"
#include "ops/ops_lag.h"
#include "ops/ops_report.h"
#include "ops/ops_request.h"

static const char help[] =
    "usage: cancelctl status [--timeout DURATION]\n"
    "\n"
    "Show, from the database: requests by status, the oldest request whose attempt is\n"
    "due (and how overdue), attempts in flight (and expired leases the reconciler has\n"
    "not taken over yet), the outbox backlog (rows not yet published, due ones, delayed\n"
    "ones, failing ones, age of the oldest due one; parked rows, which the relay set aside\n"
    "because the broker can never accept them, and the oldest of them), which outbox-relay\n"
    "is active (its lease), replays done, and Slack delivery\n"
    "faults (alerts the alert-consumer gave up on: FAILED_PERMANENT), and reconciliation\n"
    "against the gateways: open mismatches by kind (the newest ten) and the last pass\n"
    "(when, how many checked, mismatches, could not be checked). From Kafka: the\n"
    "dead-letter topic's depth by reason (read with a consumer that commits nothing),\n"
    "and the lag of the pipeline's consumer groups (committed offsets against the end\n"
    "of each topic).\n"
    "\n"
    "What to look at: an oldest-due request overdue by more than a minute, or a growing\n"
    "due outbox backlog, means the relay or the retry-consumers are not keeping up (or\n"
    "are down); see docs/operations.md.\n"
    "\n"
    "Options:\n"
    "  --timeout DURATION  longest wait for the broker (default 10s)\n"
    "\n"
    "Exit codes: 0 shown; 1 the database or the broker could not be read (what could be\n"
    "read is still shown).\n"
    "\n"
    "Examples:\n"
    "  cancelctl status\n"
    "  cancelctl status --json | jq .outbox\n"
    "  watch -n 5 cancelctl status";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_status = {
    "status", run, "requests by status, backlog, dead letters, consumer lag", help};

struct depth_ctx {
    json_t *by_reason;
};

static bool count_visit(struct ops_dlq_letter *l, void *opaque)
{
    struct depth_ctx *d = opaque;
    const char *reason = l->reason[0] != '\0' ? l->reason : "UNKNOWN";
    json_int_t n = json_integer_value(json_object_get(d->by_reason, reason));
    json_object_set_new(d->by_reason, reason, json_integer(n + 1));
    return true;
}

static json_t *dlq_depth(const struct config *cfg, int timeout_ms, char *err, size_t errlen)
{
    struct depth_ctx d = {json_object()};
    struct ops_dlq_scan_stats st;
    if (!ops_dlq_scan(cfg, 0, timeout_ms, count_visit, &d, &st, err, errlen)) {
        json_decref(d.by_reason);
        return NULL;
    }
    return json_pack("{s:s, s:I, s:o}", "topic", cfg->topics.dlq.name, "total", (json_int_t)st.read,
                     "byReason", d.by_reason);
}

static json_t *lag_json(const struct ops_group_lag *lag)
{
    json_t *arr = json_array();
    for (int i = 0; i < OPS_LAG_PAIRS; i++) {
        const struct ops_group_lag *g = &lag[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:I}", "role", g->role, "group",
                              g->group, "topic", g->topic, "partitions", g->partitions,
                              "committedPartitions", g->committed_partitions, "endOffsets",
                              (json_int_t)g->end_offsets, "lag", (json_int_t)g->lag);
        json_object_set_new(o, "error", g->error[0] ? json_string(g->error) : json_null());
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

/* Open mismatches by kind, the newest ones, and the last pass. */
static void print_reconciliation(const json_t *rec)
{
    if (rec == NULL)
        return;
    const json_t *open = json_object_get(rec, "openMismatches");
    printf("\nReconciliation against the gateways\n");
    printf("  open mismatches: %" JSON_INTEGER_FORMAT, num(open, "total"));
    const char *kind;
    json_t *v;
    const char *sep = " (";
    json_object_foreach((json_t *)json_object_get(open, "byKind"), kind, v)
    {
        printf("%s%s %" JSON_INTEGER_FORMAT, sep, kind, json_integer_value(v));
        sep = ", ";
    }
    printf("%s\n", num(open, "total") > 0 ? ")" : "");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rec, "recentOpen"), i, m)
        printf("    %s %-27s %-28s %s\n", str(m, "foundAt", "?"), str(m, "kind", "?"),
               str(m, "requestId", "?"), str(m, "detail", ""));
    const json_t *last = json_object_get(rec, "lastRun");
    if (!json_is_object(last)) {
        printf("  last run: none yet\n");
        return;
    }
    const char *finished = str(last, "finishedAt", NULL);
    printf("  last run: %s (%s, by %s)%s, checked %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
           " mismatch(es) (%" JSON_INTEGER_FORMAT " new), %" JSON_INTEGER_FORMAT
           " could not be checked, %" JSON_INTEGER_FORMAT " still settling\n",
           str(last, "startedAt", "?"), str(last, "trigger", "?"), str(last, "runBy", "?"),
           finished != NULL ? "" : " still running or interrupted", num(last, "checked"),
           num(last, "mismatches"), num(last, "newMismatches"), num(last, "couldNotCheck"),
           num(last, "settling"));
    if (json_is_string(json_object_get(last, "error")))
        printf("    stopped early: %s\n", str(last, "error", ""));
}

/* Which relay is active, from its lease. */
static void print_relay(const json_t *relay)
{
    char span[32];

    if (!json_is_object(relay))
        return;
    if (!json_is_true(json_object_get(relay, "active"))) {
        printf("  active relay: none (last: %s, lease epoch %" JSON_INTEGER_FORMAT
               "): a standby takes over within a second, if one runs\n",
               str(relay, "holder", "never"), num(relay, "epoch"));
        return;
    }
    ops_format_span(num(relay, "expiresInMs"), span, sizeof(span));
    printf("  active relay: %s (lease epoch %" JSON_INTEGER_FORMAT ", since %s, expires in %s)\n",
           str(relay, "holder", "?"), num(relay, "epoch"), str(relay, "since", "?"), span);
}

static void print_human(const json_t *doc)
{
    static const char *const statuses[] = {"SCHEDULED", "IN_FLIGHT",        "PENDING",
                                           "SUCCEEDED", "ALREADY_REFUNDED", "FAILED",
                                           "EXHAUSTED", "MANUALLY_RESOLVED"};
    const json_t *req = json_object_get(doc, "requests");
    const json_t *by = json_object_get(req, "byStatus");
    char span[32];

    if (req != NULL) {
        printf("Requests (%" JSON_INTEGER_FORMAT " in all)\n", num(req, "total"));
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
            printf("  %-18s %" JSON_INTEGER_FORMAT "\n", statuses[i], num(by, statuses[i]));
        const json_t *due = json_object_get(doc, "oldestDue");
        if (json_is_object(due)) {
            ops_format_span(num(due, "overdueMs"), span, sizeof(span));
            printf("  due now: %" JSON_INTEGER_FORMAT "; oldest: %s (attempt %" JSON_INTEGER_FORMAT
                   ", %s) due since %s, %s ago\n",
                   num(doc, "dueNow"), str(due, "requestId", "?"), num(due, "nextAttempt"),
                   str(due, "gateway", "?"), str(due, "dueAt", "?"), span);
        } else {
            printf("  due now: none\n");
        }
        const json_t *fl = json_object_get(doc, "inFlight");
        printf("  attempts in flight: %" JSON_INTEGER_FORMAT
               " (expired leases: %" JSON_INTEGER_FORMAT ")\n",
               num(fl, "count"), num(fl, "expiredLeases"));

        const json_t *ob = json_object_get(doc, "outbox");
        printf("\nOutbox (not yet published)\n");
        printf("  pending %" JSON_INTEGER_FORMAT ": due %" JSON_INTEGER_FORMAT
               ", delayed %" JSON_INTEGER_FORMAT ", failing %" JSON_INTEGER_FORMAT "\n",
               num(ob, "pending"), num(ob, "due"), num(ob, "delayed"), num(ob, "failing"));
        if (json_is_integer(json_object_get(ob, "oldestDueAgeMs"))) {
            ops_format_span(num(ob, "oldestDueAgeMs"), span, sizeof(span));
            printf("  oldest due row waiting for: %s\n", span);
        }
        printf("  parked (the broker can never accept them; see cancelctl outbox): "
               "%" JSON_INTEGER_FORMAT "\n",
               num(ob, "parked"));
        const json_t *pk = json_object_get(ob, "oldestParked");
        if (json_is_object(pk)) {
            ops_format_span(num(pk, "parkedForMs"), span, sizeof(span));
            printf("    oldest: row %" JSON_INTEGER_FORMAT " (%s) parked %s ago: %s\n",
                   num(pk, "id"), str(pk, "topic", "?"), span, str(pk, "parkReason", "?"));
        }
        print_relay(json_object_get(doc, "relay"));
    }

    const json_t *dlq = json_object_get(doc, "deadLetters");
    printf("\nDead letters");
    if (json_is_object(dlq)) {
        printf(" in %s: %" JSON_INTEGER_FORMAT "\n", str(dlq, "topic", "?"), num(dlq, "total"));
        const char *reason;
        json_t *v;
        json_object_foreach((json_t *)json_object_get(dlq, "byReason"), reason, v)
            printf("  %-20s %" JSON_INTEGER_FORMAT "\n", reason, json_integer_value(v));
    } else {
        printf(": could not be read (%s)\n", str(doc, "deadLettersError", "?"));
    }
    const json_t *replays = json_object_get(doc, "replays");
    if (json_array_size(replays) > 0) {
        printf("  replayed so far:\n");
        size_t i;
        json_t *r;
        json_array_foreach(replays, i, r)
            printf("    %-18s %-12s %" JSON_INTEGER_FORMAT "\n", str(r, "reason", "?"),
                   str(r, "action", "?"), num(r, "count"));
    }

    const json_t *lag = json_object_get(doc, "consumerLag");
    printf("\nConsumer lag\n");
    if (json_is_array(lag)) {
        printf("  %-8s %-36s %-36s %10s\n", "ROLE", "GROUP", "TOPIC", "LAG");
        size_t i;
        json_t *g;
        json_array_foreach(lag, i, g)
        {
            if (json_is_string(json_object_get(g, "error")))
                printf("  %-8s %-36s %-36s %10s  (%s)\n", str(g, "role", "?"), str(g, "group", "?"),
                       str(g, "topic", "?"), "?", str(g, "error", ""));
            else
                printf("  %-8s %-36s %-36s %10" JSON_INTEGER_FORMAT "%s\n", str(g, "role", "?"),
                       str(g, "group", "?"), str(g, "topic", "?"), num(g, "lag"),
                       num(g, "committedPartitions") == 0 ? "  (no commits yet)" : "");
        }
    } else {
        printf("  could not be read (%s)\n", str(doc, "consumerLagError", "?"));
    }

    print_reconciliation(json_object_get(doc, "reconciliation"));

    const json_t *slack = json_object_get(doc, "slack");
    if (slack != NULL) {
        printf("\nSlack alerts: %" JSON_INTEGER_FORMAT " pending, %" JSON_INTEGER_FORMAT
               " undeliverable (FAILED_PERMANENT)\n",
               num(slack, "pending"), num(slack, "failedPermanent"));
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(slack, "recentFaults"), i, a)
            printf("  %s %s %s %s: %s\n", str(a, "firstSeenAt", "?"), str(a, "kind", "?"),
                   str(a, "requestId", "-"), str(a, "reason", "-"), str(a, "lastError", "-"));
    }
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"timeout", required_argument, NULL, 't'},
                                             {NULL, 0, NULL, 0}};
    int64_t timeout_ms = 10000;
    char err[1024], kerr[1024];
    int c;
    bool failed = false;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c != 't')
            return cancelctl_bad_option(&cancelctl_cmd_status, c, argc, argv);
        if (!duration_parse(optarg, &timeout_ms, err, sizeof(err)) || timeout_ms <= 0 ||
            timeout_ms > 3600 * 1000)
            return cancelctl_usage_error(&cancelctl_cmd_status,
                                         "--timeout: \"%s\" is not a duration between 1ms and 1h",
                                         optarg);
    }
    if (optind < argc)
        return cancelctl_usage_error(&cancelctl_cmd_status, "unexpected argument \"%s\"",
                                     argv[optind]);

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    json_t *doc = NULL;
    struct db *db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL) {
        failed = true;
        doc = json_object();
        json_object_set_new(doc, "databaseError", json_string("could not connect"));
    } else if (!ops_report_status(db, cfg, &doc, err, sizeof(err))) {
        failed = true;
        redact_process_buf(err, sizeof(err));
        fprintf(stderr, "cancelctl: %s\n", err);
        doc = json_object();
        json_object_set_new(doc, "databaseError", json_string(err));
    }
    db_free(db);

    json_t *depth = dlq_depth(cfg, (int)timeout_ms, kerr, sizeof(kerr));
    if (depth != NULL) {
        json_object_set_new(doc, "deadLetters", depth);
    } else {
        failed = true;
        redact_process_buf(kerr, sizeof(kerr));
        fprintf(stderr, "cancelctl: %s\n", kerr);
        json_object_set_new(doc, "deadLettersError", json_string(kerr));
    }
    struct ops_group_lag lag[OPS_LAG_PAIRS];
    if (ops_lag_read(cfg, (int)timeout_ms, lag, kerr, sizeof(kerr))) {
        json_object_set_new(doc, "consumerLag", lag_json(lag));
    } else {
        failed = true;
        redact_process_buf(kerr, sizeof(kerr));
        fprintf(stderr, "cancelctl: %s\n", kerr);
        json_object_set_new(doc, "consumerLagError", json_string(kerr));
    }

    /* Slack alert reasons and errors quote what others said. */
    redact_process_json(doc);
    if (ctx->json) {
        json_t *out = json_pack("{s:b}", "ok", !failed);
        json_object_update(out, doc);
        json_decref(doc);
        cancelctl_print_json(out);
    } else {
        print_human(doc);
        json_decref(doc);
    }
    config_free(cfg);
    return failed ? CANCELCTL_EXIT_FAILURE : CANCELCTL_EXIT_OK;
}
