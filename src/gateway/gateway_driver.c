/*
 * gateway_driver: the table of drivers (gateway_driver.h), and the parts of
 * a gateway's safety mechanism every driver shares: the key of a
 * generation within the driver's length rules, and our mark in the
 * gateway's record of a cancel.
 */
#include "gateway/gateway_driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct gateway_driver *const drivers[GATEWAY_KIND_COUNT] = {
    [GATEWAY_TOSS] = &gateway_toss_driver,         [GATEWAY_STRIPE] = &gateway_stripe_driver,
    [GATEWAY_KAKAOPAY] = &gateway_kakaopay_driver, [GATEWAY_PORTONE] = &gateway_portone_driver,
    [GATEWAY_ADYEN] = &gateway_adyen_driver,
};

const struct gateway_driver *gateway_driver_of(enum gateway_kind kind)
{
    if ((int)kind < 0 || (int)kind >= GATEWAY_KIND_COUNT)
        return NULL;
    return drivers[kind];
}

/* FNV-1a of s: keeps the shortened keys of different requests apart. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The prefix of keys shorter than a gateway accepts (PortOne: 16). */
#define KEY_PAD "cancel-retry-request-"

const char *gateway_key_format(const char *request_id, int gen, size_t min_len, size_t max_len,
                               char *buf, size_t buflen)
{
    size_t len = strlen(request_id);
    char plain[320];

    if (max_len == 0 || max_len > 255)
        max_len = 255;
    if (gen <= 1)
        snprintf(plain, sizeof(plain), "%s", request_id);
    else
        snprintf(plain, sizeof(plain), "%.255s.%d", request_id, gen);
    if (strlen(plain) > max_len || (gen > 1 && len + 12 > max_len)) {
        /* Too long (for a suffix): a prefix of the id and a hash of the
         * whole id. The 200 of a 255 limit are the keys earlier releases
         * sent. */
        int keep = max_len >= 229 ? 200 : (int)max_len - 29;
        snprintf(plain, sizeof(plain), "%.*s.%016" PRIx64 ".%d", keep > 0 ? keep : 0, request_id,
                 fnv1a(request_id), gen);
    }
    if (strlen(plain) < min_len)
        snprintf(buf, buflen, KEY_PAD "%s", plain);
    else
        snprintf(buf, buflen, "%s", plain);
    return buf;
}

const char *gateway_marker(const char *request_id, char *buf, size_t buflen)
{
    if (strlen(request_id) <= 64)
        snprintf(buf, buflen, "cr:%s", request_id);
    else
        snprintf(buf, buflen, "cr:#%016" PRIx64, fnv1a(request_id));
    return buf;
}
