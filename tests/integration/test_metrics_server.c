/*
 * The metrics endpoint under a flood of idle and half-sent connections: the
 * server every process runs (metrics_serve) is started in a child process,
 * and the test opens far more connections to it than METRICS_MAX_CONNECTIONS
 * from one address, some sending nothing and some half a request. A fresh
 * client from another loopback address must still get /healthz within two
 * seconds, and the flood's connections must be closed: those over the
 * per-address limit at once, the rest after METRICS_IDLE_TIMEOUT_S.
 *
 * Self-contained: no database, broker or other program; loopback only
 * (127.0.0.1 and 127.0.0.2, both local on Linux); every wait is bounded.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "service/metrics.h"

#define FLOOD 1100

static double now_s(void)
{
    return (double)mono_ms() / 1000.0;
}

/* Fork a process that serves metrics on 127.0.0.1 at a free port and lives
 * at most 60 s (alarm), in case the test dies before killing it. */
static pid_t start_server(unsigned *port)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char err[256];
        struct metrics *m = metrics_new("flood-test");
        close(fds[0]);
        alarm(60);
        if (m == NULL || !metrics_serve(m, "127.0.0.1:0", err, sizeof(err)))
            _exit(1);
        unsigned p = metrics_port(m);
        if (write(fds[1], &p, sizeof(p)) != (ssize_t)sizeof(p))
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    cr_assert_eq(poll(&pfd, 1, 5000), 1, "the metrics server did not start within 5 s");
    cr_assert_eq(read(fds[0], port, sizeof(*port)), (ssize_t)sizeof(*port),
                 "the metrics server could not listen");
    close(fds[0]);
    return pid;
}

static void stop_server(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A non-blocking TCP socket from source address from to 127.0.0.1:port,
 * connect started (on loopback it completes at once or is refused). */
static int dial(const char *from, unsigned port)
{
    struct sockaddr_in src = {0}, dst = {0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0, "bind %s: %s", from,
                 strerror(errno));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True when the server has closed fd (EOF or reset); false while open. */
static bool closed_by_server(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* GET /healthz on a fresh connection from from; the whole response within
 * timeout_ms, or "" when none came. */
static void healthz(const char *from, unsigned port, int timeout_ms, char *out, size_t outlen)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int fd = dial(from, port);
    double deadline = now_s() + timeout_ms / 1000.0;
    size_t len = 0, sent = 0;

    out[0] = '\0';
    cr_assert_geq(fd, 0);
    while (now_s() < deadline && len + 1 < outlen) {
        struct pollfd pfd = {fd, (short)(sent < sizeof(req) - 1 ? POLLOUT : POLLIN), 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        if (sent < sizeof(req) - 1) {
            ssize_t n = send(fd, req + sent, sizeof(req) - 1 - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN)
                break;
            sent += n > 0 ? (size_t)n : 0;
            continue;
        }
        ssize_t n = recv(fd, out + len, outlen - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
    }
    close(fd);
}

Test(metrics_server, healthz_answers_through_a_flood_and_idle_connections_time_out, .timeout = 60)
{
    struct rlimit rl;
    static int flood[FLOOD];
    unsigned port = 0;
    char resp[1024];
    int opened = 0;

    /* The flood's sockets are this process's: make room for them. */
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < FLOOD + 64) {
        rl.rlim_cur = rl.rlim_max < FLOOD + 64 ? rl.rlim_max : FLOOD + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    pid_t pid = start_server(&port);

    /* Every other flood connection sends half a request and stops. */
    for (int i = 0; i < FLOOD; i++) {
        flood[i] = dial("127.0.0.1", port);
        if (flood[i] < 0)
            continue;
        opened++;
        if (i % 2 == 1) {
            struct pollfd pfd = {flood[i], POLLOUT, 0};
            if (poll(&pfd, 1, 1000) == 1)
                (void)send(flood[i], "GET /metrics HTTP/1.1\r\nHost: t\r\n", 32, MSG_NOSIGNAL);
        }
    }
    cr_assert_geq(opened, METRICS_MAX_CONNECTIONS + 100, "opened only %d connections", opened);

    double start = now_s();
    healthz("127.0.0.2", port, 2000, resp, sizeof(resp));
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "no /healthz answer within 2 s: \"%s\"",
              resp);
    cr_expect(strstr(resp, "\r\n\r\nok\n") != NULL, "%s", resp);

    /* Those over the per-address limit are closed at once; the rest stay
     * until they have been idle for the timeout. */
    usleep(500 * 1000);
    int open_now = 0;
    for (int i = 0; i < FLOOD; i++)
        open_now += flood[i] >= 0 && !closed_by_server(flood[i]);
    cr_expect_leq(open_now, METRICS_MAX_CONNECTIONS_PER_IP);
    cr_expect_gt(open_now, 0, "no idle connection was kept: the timeout was not what closed them");

    /* Bounded wait: the idle timeout plus 3 s of slack. */
    int still_open = open_now;
    while (still_open > 0 && now_s() - start < METRICS_IDLE_TIMEOUT_S + 3) {
        usleep(100 * 1000);
        still_open = 0;
        for (int i = 0; i < FLOOD; i++)
            still_open += flood[i] >= 0 && !closed_by_server(flood[i]);
    }
    double took = now_s() - start;
    cr_expect_eq(still_open, 0, "%d idle connections still open after %.1f s", still_open, took);
    cr_expect_geq(took, METRICS_IDLE_TIMEOUT_S - 1.5, "idle connections closed after only %.1f s",
                  took);

    /* And the flood's own address is served again once its slots are free. */
    healthz("127.0.0.1", port, 2000, resp, sizeof(resp));
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "after the flood: \"%s\"", resp);

    for (int i = 0; i < FLOOD; i++)
        if (flood[i] >= 0)
            close(flood[i]);
    stop_server(pid);
}
