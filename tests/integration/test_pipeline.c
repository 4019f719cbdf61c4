/*
 * The retry pipeline end to end: each scenario a user would notice, against
 * the real stack (pipeline_fixture.h).
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "pipeline_fixture.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

Test(pipeline, success_at_once, .fini = stop, .timeout = 120)
{
    P = pipeline_start("success_at_once", NULL);
    pipeline_payment(P, "toss", "pk_ok", 15000, "KRW", 0);
    pipeline_publish(P, "r-ok", "toss", "pk_ok", 15000, "KRW", false);
    const char *st = pipeline_wait_final(P, "r-ok", 60000);
    cr_assert_not_null(st, "r-ok did not end within 60 s (logs: %s)", pipeline_log_dir(P));
    cr_assert_str_eq(st, "SUCCEEDED");
    cr_assert_eq(pipeline_refunds(P, "pk_ok"), 1);
}
