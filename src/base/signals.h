/*
 * signals: SIGTERM/SIGINT become a stop request the main loop polls; a second
 * one while stopping exits at once. SIGHUP and SIGPIPE are ignored: there is
 * no live reload (a config change means a restart, which is safe at any time).
 * The only mutable globals of the program live here, as the house rules allow:
 * volatile sig_atomic_t flags that the handlers set and nothing else.
 */
#ifndef CR_SIGNALS_H
#define CR_SIGNALS_H

#include <stdbool.h>

/* Install the handlers (SIGTERM, SIGINT; SIGHUP and SIGPIPE ignored). */
void signals_install(void);

/* True once SIGTERM or SIGINT arrived. */
bool signals_stop_requested(void);

/* Ask the loop to stop from inside the program (e.g. a fatal error); the
 * same effect as one SIGTERM. */
void signals_request_stop(void);

#endif
