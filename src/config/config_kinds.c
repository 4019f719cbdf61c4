/*
 * config_kinds: the documented defaults and limits of each gateway kind
 * (config.h, struct config_kind). The sources are cited in docs/gateways.md,
 * "Gateway kinds in the config".
 */
#include "config/config.h"

#include <stddef.h>

#define HOUR (3600LL * 1000)
#define DAY  (24 * HOUR)

static const struct config_kind kinds[GATEWAY_KIND_COUNT] = {
    /* Toss: keys live 15 days. */
    {GATEWAY_TOSS, "toss", "https://api.tosspayments.com", CONFIG_TOSS_KEY_TTL_MS,
     CONFIG_TOSS_KEY_TTL_MS, true, 10 * 1000, NULL, false},
    /* Stripe: keys live 24 hours. */
    {GATEWAY_STRIPE, "stripe", "https://api.stripe.com", CONFIG_STRIPE_KEY_TTL_MS,
     CONFIG_STRIPE_KEY_TTL_MS, true, 10 * 1000, NULL, false},
    /* PortOne V2: keys live 3 hours ("may change later"): default half an
     * hour less. Its balance guard (currentCancellableAmount) and the
     * inquiry before every send carry a request past the key's life. It
     * asks clients for a read timeout of at least 60 s: a disconnect does
     * not cancel the request at its side. */
    {GATEWAY_PORTONE, "portone", "https://api.portone.io", 3 * HOUR, 5 * HOUR / 2, false, 65 * 1000,
     "store_id", false},
    /* KakaoPay: no idempotency key at all: inquire-first. */
    {GATEWAY_KAKAOPAY, "kakaopay", "https://open-api.kakaopay.com", 0, 0, false, 10 * 1000, "cid",
     true},
    /* Adyen: keys live "a minimum period of 31 days"; 7 days by default
     * (shorter is safer). The live URL is per company: always configured. */
    {GATEWAY_ADYEN, "adyen", NULL, 31 * DAY, 7 * DAY, true, 30 * 1000, "merchant_account", true},
};

const struct config_kind *config_kind_of(enum gateway_kind kind)
{
    if ((int)kind < 0 || (int)kind >= GATEWAY_KIND_COUNT)
        return NULL;
    return &kinds[kind];
}

int64_t config_gateway_key_binding_ms(const struct config_gateway *gw)
{
    const struct config_kind *k = config_kind_of(gw->kind);
    return k != NULL && k->key_binds_retries ? gw->idempotency_key_ttl_ms : 0;
}
