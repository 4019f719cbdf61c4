/*
 * child_process: programs started beside a test. See child_process.h.
 */
#include "child_process.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#include "base/clock.h"

pid_t child_spawn(const char *const *argv, const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "could not open %s: %s", log_path, strerror(errno));
    const char *cwd = getenv("CR_SOURCE_ROOT");
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* The parent died before prctl: nobody would stop this child. */
        if (getppid() != parent)
            _exit(125);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (cwd != NULL && chdir(cwd) != 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "could not run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    return pid;
}

int child_reap(struct child *c, int timeout_ms)
{
    int status = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno != EINTR))
            break;
        if (mono_ms() >= deadline) {
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        itest_sleep_ms(20);
    }
    c->pid = 0;
    c->stopped = false;
    return status;
}

bool child_running(struct child *c)
{
    if (c->pid <= 0)
        return false;
    int status;
    if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->pid = 0;
        c->stopped = false;
        return false;
    }
    return true;
}

void child_request_stop(struct child *c)
{
    if (c->pid <= 0)
        return;
    if (c->stopped)
        kill(c->pid, SIGCONT);
    kill(c->pid, SIGTERM);
}

void child_await_stop(struct child *c, const char *what)
{
    if (c->pid <= 0)
        return;
    int status = child_reap(c, CHILD_STOP_WAIT_MS);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
        !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
        fprintf(stderr, "%s did not stop cleanly (wait status %d)\n", what, status);
}

void child_stop(struct child *c, const char *what)
{
    child_request_stop(c);
    child_await_stop(c, what);
}

int child_wait_port_file(const char *port_file, int timeout_ms, const char *what,
                         const char *log_path)
{
    int port = 0;
    for (int64_t deadline = mono_ms() + timeout_ms; port == 0 && mono_ms() < deadline;) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port == 0)
            itest_sleep_ms(20);
    }
    cr_assert(port > 0, "%s did not write its port within %d s (log: %s)", what, timeout_ms / 1000,
              log_path);
    return port;
}
