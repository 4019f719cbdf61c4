/*
 * listen_addr: a "host:port" listen address of the config (metrics.listen,
 * webhooks.listen) as the IPv4 socket address a server binds.
 */
#ifndef CR_LISTEN_ADDR_H
#define CR_LISTEN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include <netinet/in.h>

/* Parse listen ("127.0.0.1:9100", "0.0.0.0:0", "localhost:8080"; port 0:
 * any free port) into addr, and its host part into host. False when it is
 * not an IPv4 host:port. */
bool listen_addr_parse(const char *listen, struct sockaddr_in *addr, char *host, size_t hostlen)
    __attribute__((warn_unused_result));

#endif
