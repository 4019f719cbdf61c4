/*
 * cancelctl resolve: close one request by hand (MANUALLY_RESOLVED), announce
 * it with an Outcome event and audit it; refused while an attempt is in
 * flight.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "event/cancel_event.h"
#include "cancelctl.h"
#include "ops/ops_request.h"

static const char help[] =
    "usage: cancelctl resolve REQUEST_ID --note TEXT [--operator NAME] [--dry-run]\n"
    "\n"
    "Close a request by hand: status MANUALLY_RESOLVED, no further attempts, an Outcome\n"
    "event (status MANUALLY_RESOLVED, no dead letter) through the outbox, and an\n"
    "operator_action audit row with the note, all in one transaction. Use it when the\n"
    "refund was made another way (the gateway's console, a bank transfer) or will never\n"
    "be made (the customer was refunded otherwise); the note says which.\n"
    "\n"
    "Works on a SCHEDULED, FAILED or EXHAUSTED request. Refused (exit 1) when it is\n"
    "IN_FLIGHT (the gateway may be refunding it right now: wait for the answer), or it\n"
    "already SUCCEEDED, ALREADY_REFUNDED or was resolved.\n"
    "\n"
    "Options:\n"
    "  --note TEXT      required: what was done, and where (ticket, transfer id)\n"
    "  --operator NAME  who, for the audit row (default: $CANCELCTL_OPERATOR, else\n"
    "                   $USER@hostname)\n"
    "  --dry-run        say what would happen; change nothing\n"
    "\n"
    "Examples:\n"
    "  cancelctl resolve order-123-cancel --note \"refunded in the Toss console, OPS-981\"\n"
    "  cancelctl resolve order-123-cancel --note \"key expired; refunded by transfer\" --dry-run";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_resolve = {
    "resolve", run, "close one request by hand (MANUALLY_RESOLVED, with a note)", help};

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    struct cancelctl_action a;
    char op[OPS_OPERATOR_MAX + 1], err[1024];
    int rc = cancelctl_parse_action(&cancelctl_cmd_resolve, argc, argv, &a);

    if (rc >= 0)
        return rc;
    const char *request_id = a.request_id, *note = a.note;
    bool dry_run = a.dry_run;
    if (note == NULL || note[strspn(note, " \t")] == '\0')
        return cancelctl_usage_error(&cancelctl_cmd_resolve,
                                     "--note is required: say what was done and where");
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
    if (!ops_resolve(db, cfg, request_id, op, note, dry_run, &rep, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
    } else if (ctx->json) {
        cancelctl_print_json(json_pack("{s:b, s:s, s:b, s:s, s:s, s:s, s:s, s:s}", "ok",
                                       rep.result == OPS_APPLIED, "requestId", request_id, "dryRun",
                                       dry_run, "result", ops_result_name(rep.result),
                                       "statusBefore", rep.status_before, "statusAfter",
                                       rep.status_after, "operator", op, "message", rep.message));
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
