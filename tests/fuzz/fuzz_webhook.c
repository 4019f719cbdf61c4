/*
 * fuzz_webhook: what the webhook-receiver reads from the network before it
 * trusts anything (src/webhook/adyen_notification.c, adyen_hmac.c): a
 * delivery's body, from anyone who can reach the port.
 *
 * Input: the HTTP body, as received. Properties:
 * - adyen_delivery_parse() either refuses with a reason and leaves no item,
 *   or returns 1 to ADYEN_MAX_ITEMS items, each with a pspReference and an
 *   eventCode, no field longer than ADYEN_FIELD_MAX, and its raw JSON;
 * - an item's raw JSON, as the only item of a delivery, parses to the same
 *   fields (what is stored is what was verified);
 * - an item signed with a key verifies under that key, and not under a key
 *   one bit away, nor with a field changed;
 * - no crash, leak or undefined behaviour.
 */
#include "fuzz.h"

#include <stdbool.h>

#include "webhook/adyen_hmac.h"
#include "webhook/adyen_notification.h"

#define KEY_HEX "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

static unsigned char key[ADYEN_HMAC_KEY_LEN], other[ADYEN_HMAC_KEY_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(adyen_hmac_key_decode(KEY_HEX, key), "set-up");
    memcpy(other, key, sizeof(key));
    other[17] ^= 0x20;
    return 0;
}

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_short(const char *what, const char *s)
{
    FUZZ_CHECK(s == NULL || strlen(s) <= ADYEN_FIELD_MAX, "%s longer than the limit", what);
}

/* The raw item alone in a delivery parses to the same item. */
static void check_round_trip(const struct adyen_item *it)
{
    char *body = malloc(strlen(it->raw) + 64);
    FUZZ_CHECK(body != NULL, "out of memory");
    sprintf(body, "{\"notificationItems\":[{\"NotificationRequestItem\":%s}]}", it->raw);
    struct adyen_delivery again;
    char err[256];
    FUZZ_CHECK(adyen_delivery_parse(body, strlen(body), &again, err, sizeof(err)),
               "the raw item does not parse again: %s", err);
    const struct adyen_item *b = &again.items[0];
    FUZZ_CHECK(again.nitems == 1 && same(it->psp_reference, b->psp_reference) &&
                   same(it->original_reference, b->original_reference) &&
                   same(it->merchant_account_code, b->merchant_account_code) &&
                   same(it->merchant_reference, b->merchant_reference) &&
                   same(it->currency, b->currency) && same(it->event_code, b->event_code) &&
                   same(it->reason, b->reason) && same(it->hmac_signature, b->hmac_signature) &&
                   it->has_amount == b->has_amount && it->value == b->value &&
                   it->success == b->success,
               "the raw item parses to another item: %s", it->raw);
    adyen_delivery_clear(&again);
    free(body);
}

static void check_signature(const struct adyen_item *it)
{
    struct adyen_hmac_fields f;
    char sig[ADYEN_HMAC_SIG_SIZE];

    adyen_item_hmac_fields(it, &f);
    FUZZ_CHECK(adyen_hmac_sign(key, &f, sig), "could not sign");
    FUZZ_CHECK(strlen(sig) == ADYEN_HMAC_SIG_SIZE - 1, "signature of %zu characters", strlen(sig));
    FUZZ_CHECK(adyen_hmac_verify(key, &f, sig), "a signature does not verify under its key");
    FUZZ_CHECK(!adyen_hmac_verify(other, &f, sig), "a signature verifies under another key");
    f.success = it->success ? "false" : "true";
    FUZZ_CHECK(!adyen_hmac_verify(key, &f, sig), "a signature survives a changed success");
    /* The item's own signature is whatever was sent: verify must not crash. */
    adyen_item_hmac_fields(it, &f);
    (void)adyen_hmac_verify(key, &f, it->hmac_signature);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct adyen_delivery d;
    char err[512] = "";

    if (!adyen_delivery_parse((const char *)data, size, &d, err, sizeof(err))) {
        FUZZ_CHECK(err[0] != '\0' && d.items == NULL && d.nitems == 0,
                   "a refusal without a reason, or with items left");
        return 0;
    }
    FUZZ_CHECK(d.nitems >= 1 && d.nitems <= ADYEN_MAX_ITEMS, "%zu items", d.nitems);
    for (size_t i = 0; i < d.nitems; i++) {
        const struct adyen_item *it = &d.items[i];
        FUZZ_CHECK(it->psp_reference != NULL && it->psp_reference[0] != '\0' &&
                       it->event_code != NULL && it->event_code[0] != '\0' && it->raw != NULL,
                   "item %zu lacks what identifies it", i);
        check_short("pspReference", it->psp_reference);
        check_short("merchantReference", it->merchant_reference);
        check_short("reason", it->reason);
        FUZZ_CHECK(it->has_amount || it->value_text[0] == '\0', "a value without an amount");
        check_round_trip(it);
        check_signature(it);
    }
    adyen_delivery_clear(&d);
    return 0;
}
