/*
 * signals: see signals.h.
 */
#include "base/signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requests;

static void on_stop(int signo)
{
    (void)signo;
    /* The first signal asks for a clean stop; a second one means the operator
     * does not want to wait: leave now. Work in flight is safe to abandon
     * (leases expire, offsets were not committed). */
    if (stop_requests >= 1)
        _exit(1);
    stop_requests = 1;
}

void signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
}

bool signals_stop_requested(void)
{
    return stop_requests != 0;
}

void signals_request_stop(void)
{
    stop_requests = 1;
}
