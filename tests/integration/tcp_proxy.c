/*
 * tcp_proxy: a proxy that can stop forwarding. See tcp_proxy.h.
 */
#include "tcp_proxy.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_target(const struct tcp_proxy *px)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)px->target_port)};
    inet_pton(AF_INET, px->host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Copy what is readable on from to to; false on EOF or error. */
static bool pump(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    struct tcp_proxy *px = arg;
    enum { MAXP = 16 };
    int a[MAXP], b[MAXP], np = 0;

    while (!px->stop) {
        struct pollfd fds[1 + 2 * MAXP];
        int nf = 0;
        fds[nf++] = (struct pollfd){.fd = px->listen_fd, .events = POLLIN};
        bool flowing = !px->blackhole;
        for (int i = 0; flowing && i < np; i++) {
            fds[nf++] = (struct pollfd){.fd = a[i], .events = POLLIN};
            fds[nf++] = (struct pollfd){.fd = b[i], .events = POLLIN};
        }
        if (poll(fds, (nfds_t)nf, 50) <= 0)
            continue;
        if ((fds[0].revents & POLLIN) && np < MAXP) {
            int c = accept4(px->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            int t = c >= 0 ? connect_target(px) : -1;
            if (c >= 0 && t >= 0) {
                a[np] = c;
                b[np] = t;
                np++;
            } else if (c >= 0) {
                close(c);
            }
        }
        for (int i = 0; flowing && i < np; i++) {
            bool ok = true;
            if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
                ok = pump(a[i], b[i]);
            if (ok && (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)))
                ok = pump(b[i], a[i]);
            if (!ok) {
                close(a[i]);
                close(b[i]);
                a[i] = a[np - 1];
                b[i] = b[np - 1];
                np--;
                break; /* the fds array no longer matches: poll again */
            }
        }
    }
    for (int i = 0; i < np; i++) {
        close(a[i]);
        close(b[i]);
    }
    return NULL;
}

void tcp_proxy_start(struct tcp_proxy *px, const char *dsn)
{
    /* The harness writes host='...' port='...'. */
    const char *h = strstr(dsn, "host="), *p = strstr(dsn, "port=");
    snprintf(px->host, sizeof(px->host), "127.0.0.1");
    if (h != NULL)
        sscanf(h + 5 + (h[5] == '\''), "%63[^' ]", px->host);
    px->target_port = p != NULL ? atoi(p + 5 + (p[5] == '\'')) : 5432;
    px->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof(a);
    cr_assert(px->listen_fd >= 0 && bind(px->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                  listen(px->listen_fd, 16) == 0 &&
                  getsockname(px->listen_fd, (struct sockaddr *)&a, &len) == 0,
              "proxy: %s", strerror(errno));
    px->port = ntohs(a.sin_port);
    px->stop = 0;
    px->blackhole = 0;
    cr_assert_eq(pthread_create(&px->thread, NULL, proxy_main, px), 0);
}

void tcp_proxy_blackhole(struct tcp_proxy *px, bool on)
{
    px->blackhole = on ? 1 : 0;
}

void tcp_proxy_stop(struct tcp_proxy *px)
{
    if (px->listen_fd <= 0)
        return;
    px->stop = 1;
    pthread_join(px->thread, NULL);
    close(px->listen_fd);
    px->listen_fd = 0;
}
