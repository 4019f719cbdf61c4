/*
 * signals: SIGTERM/SIGINT ask for a clean stop; SIGHUP and SIGPIPE must not
 * kill a daemon that is holding leases and uncommitted work.
 */
#include <criterion/criterion.h>
#include <signal.h>

#include "base/signals.h"

Test(signals, sighup_and_sigpipe_neither_kill_nor_stop)
{
    signals_install();
    raise(SIGHUP);
    raise(SIGPIPE);
    cr_expect_not(signals_stop_requested());
}

Test(signals, sigterm_requests_a_clean_stop)
{
    signals_install();
    cr_expect_not(signals_stop_requested());
    raise(SIGTERM);
    cr_expect(signals_stop_requested());
}

Test(signals, sigint_requests_a_clean_stop)
{
    signals_install();
    raise(SIGINT);
    cr_expect(signals_stop_requested());
}

Test(signals, a_fatal_error_can_request_the_same_stop)
{
    signals_request_stop();
    cr_expect(signals_stop_requested());
}
