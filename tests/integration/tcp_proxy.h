/*
 * tcp_proxy: a TCP proxy, on a thread of the test process, between a
 * program under test and a server (PostgreSQL), that can stop forwarding
 * while keeping every connection open: to the program the server looks
 * alive but never answers, as after a network cut that no FIN or RST
 * crossed. Up to 16 connections at a time.
 */
#ifndef CR_TEST_TCP_PROXY_H
#define CR_TEST_TCP_PROXY_H

#include <pthread.h>
#include <stdbool.h>

struct tcp_proxy {
    int listen_fd; /* 0 when not running */
    int port;      /* where it listens, on 127.0.0.1 */
    char host[64]; /* the server */
    int target_port;
    pthread_t thread;
    volatile int blackhole;
    volatile int stop;
};

/* Listen on an ephemeral port of 127.0.0.1 and forward to the host and
 * port of a libpq conninfo (host='...' port='...', as the harness writes
 * them; 127.0.0.1 and 5432 when missing). */
void tcp_proxy_start(struct tcp_proxy *px, const char *dsn);

/* Stop (true) or resume (false) forwarding, leaving the connections open. */
void tcp_proxy_blackhole(struct tcp_proxy *px, bool on);

/* Close every connection and stop the thread. A zeroed or stopped px is a
 * no-op. */
void tcp_proxy_stop(struct tcp_proxy *px);

#endif
