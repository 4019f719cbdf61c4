/*
 * child_process: the programs an integration test starts beside itself
 * (the pipeline's services, gateway-sim, slack-sink, a relay with a config
 * of its own), each with its stdout and stderr appended to a log file.
 *
 * A child gets PR_SET_PDEATHSIG (SIGTERM): a test process that dies on an
 * assertion without running its .fini does not leave it running. It runs in
 * CR_SOURCE_ROOT (when set), with stdin from /dev/null.
 *
 * Every function fails the current Criterion test (with a message) when it
 * cannot do its job; none returns an error.
 */
#ifndef CR_TEST_CHILD_PROCESS_H
#define CR_TEST_CHILD_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

/* How long child_stop waits after SIGTERM before it sends SIGKILL. */
#define CHILD_STOP_WAIT_MS 15000

struct child {
    pid_t pid;    /* 0 when nothing runs */
    bool stopped; /* sent SIGSTOP or SIGTSTP, not continued since */
};

/* Start argv[0] (a path) with argv, its stdout and stderr appended to
 * log_path (created if missing). Returns its pid. */
pid_t child_spawn(const char *const *argv, const char *log_path);

/* Wait up to timeout_ms for c to exit, SIGKILL it after that; c is free
 * again afterwards. Returns its wait status. */
int child_reap(struct child *c, int timeout_ms);

/* True while c runs; reaps it (and frees c) if it exited on its own. */
bool child_running(struct child *c);

/* Send c one SIGTERM (continuing it first if it was stopped): a second
 * SIGTERM makes our services exit at once, skipping their clean shutdown.
 * Nothing when c is free. */
void child_request_stop(struct child *c);

/* After child_request_stop: wait for c (SIGKILL after CHILD_STOP_WAIT_MS)
 * and say on stderr, naming it `what`, when it did not exit 0 or by the
 * SIGTERM. */
void child_await_stop(struct child *c, const char *what);

/* child_request_stop + child_await_stop. */
void child_stop(struct child *c, const char *what);

/* The port a program wrote to port_file (its --port-file) once it listens,
 * waiting up to timeout_ms; fails the test naming `what` and log_path if it
 * did not. */
int child_wait_port_file(const char *port_file, int timeout_ms, const char *what,
                         const char *log_path);

#endif
