/*
 * reconcile: see reconcile.h.
 */
#include "reconcile/reconcile.h"

#include <stdio.h>
#include <string.h>

#include "event/cancel_event.h"

static bool is_refunded(const char *status)
{
    return strcmp(status, CANCEL_STATUS_SUCCEEDED) == 0 ||
           strcmp(status, CANCEL_STATUS_ALREADY_REFUNDED) == 0;
}

static bool is_failed(const char *status)
{
    return strcmp(status, CANCEL_STATUS_FAILED) == 0 ||
           strcmp(status, CANCEL_STATUS_EXHAUSTED) == 0;
}

bool reconcile_status_checked(const char *status)
{
    return status != NULL && (is_refunded(status) || is_failed(status));
}

static void set(struct reconcile_result *out, enum reconcile_verdict v, enum reconcile_kind k,
                const char *why)
{
    memset(out, 0, sizeof(*out));
    out->verdict = v;
    out->kind = k;
    out->why = why;
}

void reconcile_compare(const char *our_status, enum refund_finding finding,
                       struct reconcile_result *out)
{
    if (!reconcile_status_checked(our_status)) {
        set(out, RECONCILE_UNCHECKED, RECONCILE_KIND_NONE,
            "not a final status that reconciliation checks");
        return;
    }
    bool ours_refunded = is_refunded(our_status);

    switch (finding) {
    case FINDING_PENDING:
        /* The refund exists and has not settled: whichever way it goes, the
         * pipeline or a later pass will see it. */
        set(out, RECONCILE_SETTLING, RECONCILE_KIND_NONE,
            "the gateway's refund is still pending: checked again by a later pass");
        return;
    case FINDING_UNKNOWN:
    case FINDING_NONE:
        set(out, RECONCILE_UNCHECKED, RECONCILE_KIND_NONE,
            "the inquiry got no usable answer: could not check");
        return;
    case FINDING_MISMATCH:
        /* Whatever our status: a refund or payment in another amount or
         * currency is not something a machine may settle. */
        set(out, RECONCILE_MISMATCH, RECONCILE_AMOUNT_DIFFERS,
            "not corrected automatically: the gateway's refund or payment differs from this "
            "request in amount or currency; a person must find out which is right");
        return;
    case FINDING_REFUNDED:
    case FINDING_ALREADY_REFUNDED:
        if (ours_refunded) {
            set(out, RECONCILE_AGREE, RECONCILE_KIND_NONE, "refunded on both sides");
            return;
        }
        set(out, RECONCILE_MISMATCH, RECONCILE_OURS_FAILED_THEIRS_REFUNDED,
            "the gateway shows the money back: our record becomes a success");
        /* ALREADY_REFUNDED: the payment is refunded, not provably by us, which
         * is exactly what that status says. */
        out->fix_status = finding == FINDING_ALREADY_REFUNDED ? CANCEL_STATUS_ALREADY_REFUNDED
                                                              : CANCEL_STATUS_SUCCEEDED;
        return;
    case FINDING_NOT_REFUNDED:
    case FINDING_REFUND_FAILED:
        if (!ours_refunded) {
            set(out, RECONCILE_AGREE, RECONCILE_KIND_NONE, "not refunded on either side");
            return;
        }
        set(out, RECONCILE_MISMATCH, RECONCILE_OURS_REFUNDED_THEIRS_NOT,
            "the gateway shows no refund: our record becomes FAILED, and a replay inquires "
            "before it sends anything");
        out->fix_status = CANCEL_STATUS_FAILED;
        out->fix_error_code = RECONCILE_NOT_REFUNDED_CODE;
        /* The key still holds the success the gateway answered then: a
         * same-key resend would only replay it. */
        out->fix_key_holds_error = true;
        return;
    }
    set(out, RECONCILE_UNCHECKED, RECONCILE_KIND_NONE, "unknown finding: could not check");
}

const char *reconcile_kind_name(enum reconcile_kind kind)
{
    switch (kind) {
    case RECONCILE_KIND_NONE:
        return "NONE";
    case RECONCILE_OURS_REFUNDED_THEIRS_NOT:
        return "OURS_REFUNDED_THEIRS_NOT";
    case RECONCILE_OURS_FAILED_THEIRS_REFUNDED:
        return "OURS_FAILED_THEIRS_REFUNDED";
    case RECONCILE_AMOUNT_DIFFERS:
        return "AMOUNT_DIFFERS";
    }
    return "?";
}

const char *reconcile_verdict_name(enum reconcile_verdict verdict)
{
    switch (verdict) {
    case RECONCILE_AGREE:
        return "AGREE";
    case RECONCILE_SETTLING:
        return "SETTLING";
    case RECONCILE_UNCHECKED:
        return "UNCHECKED";
    case RECONCILE_MISMATCH:
        return "MISMATCH";
    }
    return "?";
}

void reconcile_describe(const char *our_status, enum refund_finding finding,
                        enum reconcile_kind kind, const char *inquiry_detail, char *buf, size_t len)
{
    bool detail = inquiry_detail != NULL && inquiry_detail[0] != '\0';
    snprintf(buf, len, "%s: we recorded %s, the gateway reports %s%s%s%s",
             reconcile_kind_name(kind), our_status, gateway_finding_name(finding),
             detail ? " (" : "", detail ? inquiry_detail : "", detail ? ")" : "");
}
