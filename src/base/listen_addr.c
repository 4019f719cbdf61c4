/*
 * listen_addr: see listen_addr.h.
 */
#include "base/listen_addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

bool listen_addr_parse(const char *listen, struct sockaddr_in *addr, char *host, size_t hostlen)
{
    const char *colon = strrchr(listen, ':');

    if (colon == NULL || (size_t)(colon - listen) >= hostlen)
        return false;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return end != colon + 1 && *end == '\0' && port >= 0 && port <= 65535 &&
           inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                     &addr->sin_addr) == 1;
}
