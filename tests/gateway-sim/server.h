/*
 * server: the libmicrohttpd glue of the gateway simulator.
 *
 * One thread per connection (MHD_USE_THREAD_PER_CONNECTION with an internal
 * polling thread), so a request held by an injected hang never blocks any
 * other. Request bodies are gathered across the access handler's calls (up to
 * SIM_MAX_BODY bytes; 413 beyond) and handed to sim_handle() whole.
 */
#ifndef GATEWAY_SIM_SERVER_H
#define GATEWAY_SIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

struct server;

/* Listen on the IPv4 address host (dotted quad) and port (0 = ephemeral) and
 * serve sim, which must outlive the server. Returns NULL with the reason in
 * err on failure. Stop with server_stop(). */
struct server *server_start(struct sim *sim, const char *host, uint16_t port, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* The port actually bound (the ephemeral one when 0 was asked). */
uint16_t server_port(const struct server *server);

/* Stop accepting, wait for connection threads to finish and free the server.
 * Set sim->stopping first so that injected sleeps end at once.
 * server_stop(NULL) is a no-op. */
void server_stop(struct server *server);

#endif
