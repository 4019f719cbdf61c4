/*
 * cancelctl requeue: re-arm one request now (fresh attempt budget, same
 * requestId and idempotency key), refused while an attempt is in flight or
 * when the key's lifetime at the gateway is (nearly) over.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "event/cancel_event.h"
#include "cancelctl.h"
#include "ops/ops_request.h"

static const char help[] =
    "usage: cancelctl requeue REQUEST_ID [--note TEXT] [--operator NAME] [--dry-run]\n"
    "\n"
    "Re-arm one request now: a fresh attempt budget (max_attempts and deadline of the\n"
    "gateway's current retry policy), the same requestId and so the same idempotency key\n"
    "at the gateway, attempt scheduled at once through the outbox. Works on a FAILED or\n"
    "EXHAUSTED request, and on a SCHEDULED one (it then runs now instead of later).\n"
    "\n"
    "Refused (exit 1, with the reason) when:\n"
    "  - the request is IN_FLIGHT: an attempt is running; wait for its answer;\n"
    "  - it already SUCCEEDED, ALREADY_REFUNDED or was MANUALLY_RESOLVED;\n"
    "  - its idempotency key's lifetime at the gateway has passed or would pass before\n"
    "    a new attempt can finish: a retry then could refund twice. Check the payment at\n"
    "    the gateway and close the request with \"cancelctl resolve\".\n"
    "The state change, its RetryScheduled event and an operator_action audit row are\n"
    "written in one transaction.\n"
    "\n"
    "Options:\n"
    "  --note TEXT      why, kept in the audit row\n"
    "  --operator NAME  who, for the audit row (default: $CANCELCTL_OPERATOR, else\n"
    "                   $USER@hostname)\n"
    "  --dry-run        say what would happen; change nothing\n"
    "\n"
    "Examples:\n"
    "  cancelctl requeue order-123-cancel --note \"gateway back after INC-42\"\n"
    "  cancelctl requeue order-123-cancel --dry-run\n"
    "  cancelctl --json requeue order-123-cancel --operator alice";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_requeue = {
    "requeue", run, "re-arm one request now (fresh budget, same idempotency key)", help};

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    struct cancelctl_action a;
    char op[OPS_OPERATOR_MAX + 1], err[1024];
    int rc = cancelctl_parse_action(&cancelctl_cmd_requeue, argc, argv, &a);

    if (rc >= 0)
        return rc;
    const char *request_id = a.request_id, *note = a.note;
    bool dry_run = a.dry_run;
    ops_operator_current(a.operator_flag, op, sizeof(op));

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    struct db *db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL) {
        config_free(cfg);
        return CANCELCTL_EXIT_FAILURE;
    }
    struct ops_report rep;
    if (!ops_requeue(db, cfg, request_id, op, note, dry_run, &rep, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
    } else if (ctx->json) {
        json_t *doc =
            json_pack("{s:b, s:s, s:b, s:s, s:s, s:s, s:s, s:s}", "ok", rep.result == OPS_APPLIED,
                      "requestId", request_id, "dryRun", dry_run, "result",
                      ops_result_name(rep.result), "statusBefore", rep.status_before, "statusAfter",
                      rep.status_after, "operator", op, "message", rep.message);
        if (rep.result == OPS_APPLIED) {
            json_object_set_new(doc, "attempt", json_integer(rep.plan.attempt));
            json_object_set_new(doc, "maxAttempts", json_integer(rep.plan.max_attempts));
        }
        cancelctl_print_json(doc);
        if (rep.result != OPS_APPLIED)
            fprintf(stderr, "cancelctl: %s\n", rep.message);
        rc = rep.result == OPS_APPLIED ? CANCELCTL_EXIT_OK : CANCELCTL_EXIT_FAILURE;
    } else if (rep.result == OPS_APPLIED) {
        printf("%s%s\n", rep.message, dry_run ? " (dry run: nothing changed)" : "");
        rc = CANCELCTL_EXIT_OK;
    } else {
        fprintf(stderr, "cancelctl: %s\n", rep.message);
        rc = CANCELCTL_EXIT_FAILURE;
    }
    db_free(db);
    config_free(cfg);
    return rc;
}
