/*
 * cancelctl show: one request, its attempt timeline, its events and dead
 * letters, and what happens next.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "event/cancel_event.h"
#include "cancelctl.h"
#include "base/redact.h"
#include "ops/ops_report.h"

static const char help[] =
    "usage: cancelctl show REQUEST_ID\n"
    "\n"
    "Show one request: its fields and status, its attempt budget, deadline and the\n"
    "idempotency key's lifetime at the gateway; the attempt timeline from the append-only\n"
    "attempt log (who ran each attempt, when, the gateway's verdict and HTTP status, error,\n"
    "latency, what was decided); the events it produced through the outbox (RetryScheduled,\n"
    "Outcome) and whether they were published; its dead letters, replays and operator\n"
    "actions; and, in words, what will happen next.\n"
    "\n"
    "Published outbox rows are purged after relay.retention; the attempt log is kept.\n"
    "\n"
    "Exit codes: 0 shown; 1 no such request, or the database could not be read.\n"
    "\n"
    "Examples:\n"
    "  cancelctl show order-123-cancel\n"
    "  cancelctl show order-123-cancel --json | jq '.attempts[] | {attempt, verdict}'";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_show = {
    "show", run, "one request: attempt timeline, events, what happens next", help};

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

/* A member as text whatever its JSON type ("-" for null/absent). */
static const char *text(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    return "-";
}

static void print_human(const json_t *doc)
{
    const json_t *r = json_object_get(doc, "request");
    char b1[32], b2[32], b3[32], b4[32];
    size_t i;
    json_t *row;

    printf("Request %s: %s\n", str(r, "requestId"), str(r, "status"));
    printf("  gateway %s, payment %s, amount %s %s%s\n", str(r, "gateway"), str(r, "paymentKey"),
           text(r, "amount", b1, sizeof(b1)), str(r, "currency"),
           json_is_true(json_object_get(r, "partial")) ? " (partial)" : "");
    printf("  reason: %s\n", str(r, "reason"));
    printf("  attempts %s (budget: %s after attempt %s), deadline %s\n",
           text(r, "attempts", b1, sizeof(b1)), text(r, "maxAttempts", b2, sizeof(b2)),
           text(r, "budgetBase", b3, sizeof(b3)), str(r, "deadlineAt"));
    printf("  next attempt at %s; idempotency key used since %s, expires %s\n",
           str(r, "nextAttemptAt"), str(r, "keyFirstUsedAt"), str(r, "keyExpiresAt"));
    printf("  key generation %s%s%s%s%s\n", text(r, "keyGeneration", b1, sizeof(b1)),
           json_is_true(json_object_get(r, "keyHoldsError"))
               ? " (holds the gateway's error: a new generation after a negative inquiry)"
               : "",
           json_is_true(json_object_get(r, "inquireFirst")) ? "; next attempt inquires first" : "",
           json_is_string(json_object_get(r, "finalCheck")) ? "; final check, ends " : "",
           json_is_string(json_object_get(r, "finalCheck")) ? str(r, "finalCheck") : "");
    if (json_is_true(json_object_get(r, "foundByInquiry")))
        printf("  the refund was proven by an inquiry at the gateway, not by a refund answer\n");
    if (json_is_string(json_object_get(r, "leaseOwner")))
        printf("  lease: %s until %s\n", str(r, "leaseOwner"), str(r, "leaseExpiresAt"));
    if (json_is_string(json_object_get(r, "lastErrorCode")) ||
        json_is_integer(json_object_get(r, "lastHttpStatus")))
        printf("  last error: %s (HTTP %s) %s\n", str(r, "lastErrorCode"),
               text(r, "lastHttpStatus", b1, sizeof(b1)), str(r, "lastErrorMessage"));
    if (json_is_string(json_object_get(r, "resolvedBy")))
        printf("  resolved by %s: %s\n", str(r, "resolvedBy"), str(r, "resolvedNote"));
    printf("  created %s, updated %s, finished %s\n", str(r, "createdAt"), str(r, "updatedAt"),
           str(r, "finishedAt"));

    printf("\nAttempt timeline\n");
    printf("  %-3s %-9s %-24s %-30s %-16s %-5s %-8s %s\n", "#", "EVENT", "AT", "WORKER", "VERDICT",
           "HTTP", "LATENCY", "DECISION / ERROR");
    json_array_foreach(json_object_get(doc, "attempts"), i, row)
    {
        char lat[32] = "-";
        if (json_is_integer(json_object_get(row, "latencyMs")))
            snprintf(lat, sizeof(lat), "%" JSON_INTEGER_FORMAT "ms",
                     json_integer_value(json_object_get(row, "latencyMs")));
        printf("  %-3s %-9s %-24s %-30.30s %-16s %-5s %-8s %s%s%s%s%s\n",
               text(row, "attempt", b1, sizeof(b1)), str(row, "event"), str(row, "at"),
               str(row, "worker"), str(row, "verdict"), text(row, "httpStatus", b2, sizeof(b2)),
               lat, str(row, "decision"),
               json_is_string(json_object_get(row, "errorCode")) ? " " : "",
               json_is_string(json_object_get(row, "errorCode")) ? str(row, "errorCode") : "",
               json_is_string(json_object_get(row, "detail")) ? ": " : "",
               json_is_string(json_object_get(row, "detail")) ? str(row, "detail") : "");
        if (json_is_string(json_object_get(row, "idempotencyKey")) ||
            json_is_string(json_object_get(row, "inquiry")))
            printf("      key %s%s%s%s%s\n", str(row, "idempotencyKey"),
                   json_is_string(json_object_get(row, "inquiry")) ? "; inquiry found " : "",
                   json_is_string(json_object_get(row, "inquiry")) ? str(row, "inquiry") : "",
                   json_is_string(json_object_get(row, "inquiryDetail")) ? ": " : "",
                   json_is_string(json_object_get(row, "inquiryDetail")) ? str(row, "inquiryDetail")
                                                                         : "");
    }
    if (json_array_size(json_object_get(doc, "attempts")) == 0)
        printf("  (no attempt yet)\n");

    printf("\nEvents (outbox)\n");
    json_array_foreach(json_object_get(doc, "events"), i, row)
    {
        const json_t *data = json_object_get(row, "data");
        char what[128] = "";
        if (json_is_integer(json_object_get(data, "attempt")))
            snprintf(what, sizeof(what), "attempt %s due %s", text(data, "attempt", b3, sizeof(b3)),
                     str(data, "dueAt"));
        else if (json_is_string(json_object_get(data, "status")))
            snprintf(what, sizeof(what), "status %s after %s attempt(s)", str(data, "status"),
                     text(data, "attempts", b3, sizeof(b3)));
        printf("  #%-6s %-36s %-30s available %s, %s%s\n", text(row, "id", b4, sizeof(b4)),
               str(row, "type"), what, str(row, "availableAt"),
               json_is_string(json_object_get(row, "publishedAt")) ? "published " : "NOT published",
               json_is_string(json_object_get(row, "publishedAt")) ? str(row, "publishedAt") : "");
        /* A parked event waits for an operator: say so where it shows. */
        if (json_is_string(json_object_get(row, "parkedAt")))
            printf("          PARKED since %s: %s (cancelctl outbox requeue --id %s)\n",
                   str(row, "parkedAt"), str(row, "parkReason"), text(row, "id", b4, sizeof(b4)));
    }
    if (json_array_size(json_object_get(doc, "events")) == 0)
        printf("  (none in the outbox: published rows are purged after relay.retention)\n");

    if (json_array_size(json_object_get(doc, "deadLetters")) > 0) {
        printf("\nDead letters\n");
        json_array_foreach(json_object_get(doc, "deadLetters"), i, row)
        {
            const char *reason = "?", *error = "";
            size_t k;
            json_t *h;
            json_array_foreach(json_object_get(row, "headers"), k, h)
            {
                const char *name = json_string_value(json_array_get(h, 0));
                const char *value = json_string_value(json_array_get(h, 1));
                if (name != NULL && value != NULL && strcmp(name, "dlq.reason") == 0)
                    reason = value;
                if (name != NULL && value != NULL && strcmp(name, "dlq.error") == 0)
                    error = value;
            }
            printf("  %s %s: %s (%s)\n", str(row, "createdAt"), reason, error,
                   json_is_string(json_object_get(row, "publishedAt")) ? "published"
                                                                       : "not published yet");
        }
    }
    if (json_array_size(json_object_get(doc, "replays")) > 0) {
        printf("\nReplays\n");
        json_array_foreach(json_object_get(doc, "replays"), i, row) printf(
            "  %s %s by %s of %s/%s/%s (%s)\n", str(row, "replayedAt"), str(row, "action"),
            str(row, "operator"), str(row, "dlqTopic"), text(row, "dlqPartition", b1, sizeof(b1)),
            text(row, "dlqOffset", b2, sizeof(b2)), str(row, "reason"));
    }
    if (json_array_size(json_object_get(doc, "operatorActions")) > 0) {
        printf("\nOperator actions\n");
        json_array_foreach(json_object_get(doc, "operatorActions"), i, row)
            printf("  %s %s by %s%s%s\n", str(row, "at"), str(row, "action"), str(row, "operator"),
                   json_is_string(json_object_get(row, "note")) ? ": " : "",
                   json_is_string(json_object_get(row, "note")) ? str(row, "note") : "");
    }
    if (json_array_size(json_object_get(doc, "mismatches")) > 0) {
        printf("\nReconciliation against the gateway\n");
        json_array_foreach(json_object_get(doc, "mismatches"), i, row) printf(
            "  %s %s: ours %s, the gateway's %s: %s%s%s%s\n", str(row, "foundAt"), str(row, "kind"),
            str(row, "ourStatus"), str(row, "theirFinding"), str(row, "detail"),
            json_is_string(json_object_get(row, "fixedAt")) ? "; fixed " : "",
            json_is_string(json_object_get(row, "fixedAt")) ? str(row, "fixedAt") : "",
            json_is_string(json_object_get(row, "fixedAt")) ? "" : " (open)");
    }
    printf("\nNext: %s\n", str(doc, "next"));
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{NULL, 0, NULL, 0}};
    char err[1024];
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
        return cancelctl_bad_option(&cancelctl_cmd_show, c, argc, argv);
    const char *request_id = NULL;
    int rc = cancelctl_take_request_id(&cancelctl_cmd_show, argc, argv, &request_id);
    if (rc >= 0)
        return rc;

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    struct db *db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL) {
        config_free(cfg);
        return CANCELCTL_EXIT_FAILURE;
    }
    json_t *doc = NULL;
    if (!ops_report_show(db, cfg, request_id, &doc, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
    } else if (doc == NULL) {
        rc = cancelctl_fail(ctx,
                            "no request with requestId %s (try \"cancelctl dlq list "
                            "--request-id %s\": it may have been dead-lettered at intake)",
                            request_id, request_id);
    } else {
        /* Attempt errors and dead-letter errors are what gateways said. */
        redact_process_json(doc);
        if (ctx->json) {
            json_t *out = json_pack("{s:b}", "ok", 1);
            json_object_update(out, doc);
            cancelctl_print_json(out);
        } else {
            print_human(doc);
        }
        json_decref(doc);
        rc = CANCELCTL_EXIT_OK;
    }
    db_free(db);
    config_free(cfg);
    return rc;
}
