/*
 * The comparison of reconciliation (src/reconcile/reconcile.c): every final status we
 * record against every finding an inquiry can bring back.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <string.h>

#include "reconcile/reconcile.h"

struct rcase {
    char ours[24];
    enum refund_finding theirs;
    enum reconcile_verdict verdict;
    enum reconcile_kind kind;
    char fix[24]; /* "" = no automatic fix */
};

#define AGREE(o, t)                                                                                \
    {                                                                                              \
        o, t, RECONCILE_AGREE, RECONCILE_KIND_NONE, ""                                             \
    }
#define SETTLING(o, t)                                                                             \
    {                                                                                              \
        o, t, RECONCILE_SETTLING, RECONCILE_KIND_NONE, ""                                          \
    }
#define UNCHECK(o, t)                                                                              \
    {                                                                                              \
        o, t, RECONCILE_UNCHECKED, RECONCILE_KIND_NONE, ""                                         \
    }
#define MIS(o, t, k, f)                                                                            \
    {                                                                                              \
        o, t, RECONCILE_MISMATCH, k, f                                                             \
    }

ParameterizedTestParameters(reconcile, compare)
{
    static struct rcase cases[] = {
        /* We recorded the refund as done. */
        AGREE("SUCCEEDED", FINDING_REFUNDED),
        AGREE("SUCCEEDED", FINDING_ALREADY_REFUNDED),
        AGREE("ALREADY_REFUNDED", FINDING_REFUNDED),
        AGREE("ALREADY_REFUNDED", FINDING_ALREADY_REFUNDED),
        SETTLING("SUCCEEDED", FINDING_PENDING),
        MIS("SUCCEEDED", FINDING_NOT_REFUNDED, RECONCILE_OURS_REFUNDED_THEIRS_NOT, "FAILED"),
        MIS("SUCCEEDED", FINDING_REFUND_FAILED, RECONCILE_OURS_REFUNDED_THEIRS_NOT, "FAILED"),
        MIS("ALREADY_REFUNDED", FINDING_NOT_REFUNDED, RECONCILE_OURS_REFUNDED_THEIRS_NOT, "FAILED"),
        MIS("ALREADY_REFUNDED", FINDING_REFUND_FAILED, RECONCILE_OURS_REFUNDED_THEIRS_NOT,
            "FAILED"),
        MIS("SUCCEEDED", FINDING_MISMATCH, RECONCILE_AMOUNT_DIFFERS, ""),
        UNCHECK("SUCCEEDED", FINDING_UNKNOWN),
        UNCHECK("SUCCEEDED", FINDING_NONE),
        /* We gave up. */
        AGREE("FAILED", FINDING_NOT_REFUNDED),
        AGREE("FAILED", FINDING_REFUND_FAILED),
        AGREE("EXHAUSTED", FINDING_NOT_REFUNDED),
        AGREE("EXHAUSTED", FINDING_REFUND_FAILED),
        SETTLING("FAILED", FINDING_PENDING),
        SETTLING("EXHAUSTED", FINDING_PENDING),
        MIS("FAILED", FINDING_REFUNDED, RECONCILE_OURS_FAILED_THEIRS_REFUNDED, "SUCCEEDED"),
        MIS("EXHAUSTED", FINDING_REFUNDED, RECONCILE_OURS_FAILED_THEIRS_REFUNDED, "SUCCEEDED"),
        MIS("FAILED", FINDING_ALREADY_REFUNDED, RECONCILE_OURS_FAILED_THEIRS_REFUNDED,
            "ALREADY_REFUNDED"),
        MIS("EXHAUSTED", FINDING_ALREADY_REFUNDED, RECONCILE_OURS_FAILED_THEIRS_REFUNDED,
            "ALREADY_REFUNDED"),
        MIS("EXHAUSTED", FINDING_MISMATCH, RECONCILE_AMOUNT_DIFFERS, ""),
        UNCHECK("FAILED", FINDING_UNKNOWN),
        UNCHECK("EXHAUSTED", FINDING_UNKNOWN),
        /* A person decided, or the request is not over: not ours to judge. */
        UNCHECK("MANUALLY_RESOLVED", FINDING_NOT_REFUNDED),
        UNCHECK("SCHEDULED", FINDING_REFUNDED),
        UNCHECK("PENDING", FINDING_NOT_REFUNDED),
    };
    return cr_make_param_array(struct rcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct rcase *c, reconcile, compare)
{
    struct reconcile_result r;
    reconcile_compare(c->ours, c->theirs, &r);
    const char *theirs = gateway_finding_name(c->theirs);
    cr_expect_eq(r.verdict, c->verdict, "ours %s, theirs %s: %s, want %s", c->ours, theirs,
                 reconcile_verdict_name(r.verdict), reconcile_verdict_name(c->verdict));
    cr_expect_eq(r.kind, c->kind, "ours %s, theirs %s: %s, want %s", c->ours, theirs,
                 reconcile_kind_name(r.kind), reconcile_kind_name(c->kind));
    if (c->fix[0] == '\0')
        cr_expect_null(r.fix_status, "ours %s, theirs %s: fix %s", c->ours, theirs, r.fix_status);
    else
        cr_expect_str_eq(r.fix_status != NULL ? r.fix_status : "(none)", c->fix,
                         "ours %s, theirs %s", c->ours, theirs);
    cr_expect_not_null(r.why);
}

/* Correcting "we say refunded" must leave a replay that asks first: the key
 * still holds the success answer that the gateway no longer backs. */
Test(reconcile, fix_of_a_missing_refund_marks_the_key)
{
    struct reconcile_result r;
    reconcile_compare("SUCCEEDED", FINDING_NOT_REFUNDED, &r);
    cr_expect_str_eq(r.fix_error_code, RECONCILE_NOT_REFUNDED_CODE);
    cr_expect(r.fix_key_holds_error);

    reconcile_compare("EXHAUSTED", FINDING_REFUNDED, &r);
    cr_expect_null(r.fix_error_code);
    cr_expect_not(r.fix_key_holds_error);
}

Test(reconcile, amount_mismatch_says_it_is_not_fixed)
{
    struct reconcile_result r;
    reconcile_compare("SUCCEEDED", FINDING_MISMATCH, &r);
    cr_expect_not_null(strstr(r.why, "not corrected automatically"), "%s", r.why);
}

Test(reconcile, statuses_checked)
{
    cr_expect(reconcile_status_checked("SUCCEEDED"));
    cr_expect(reconcile_status_checked("ALREADY_REFUNDED"));
    cr_expect(reconcile_status_checked("FAILED"));
    cr_expect(reconcile_status_checked("EXHAUSTED"));
    cr_expect_not(reconcile_status_checked("MANUALLY_RESOLVED"));
    cr_expect_not(reconcile_status_checked("IN_FLIGHT"));
    cr_expect_not(reconcile_status_checked(NULL));
}

Test(reconcile, describe)
{
    char buf[256];
    reconcile_describe("SUCCEEDED", FINDING_NOT_REFUNDED, RECONCILE_OURS_REFUNDED_THEIRS_NOT,
                       "no refund of ours; 0 of 5000 refunded", buf, sizeof(buf));
    cr_expect_str_eq(buf, "OURS_REFUNDED_THEIRS_NOT: we recorded SUCCEEDED, the gateway reports "
                          "NOT_REFUNDED (no refund of ours; 0 of 5000 refunded)");
    reconcile_describe("EXHAUSTED", FINDING_REFUNDED, RECONCILE_OURS_FAILED_THEIRS_REFUNDED, NULL,
                       buf, sizeof(buf));
    cr_expect_str_eq(buf, "OURS_FAILED_THEIRS_REFUNDED: we recorded EXHAUSTED, the gateway "
                          "reports REFUNDED");
}
