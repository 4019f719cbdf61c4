/*
 * adyen_signature: notification signatures. See adyen_signature.h.
 */
#include "adyen_signature.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base64.h"

bool adyen_signature_key_parse(const char *hex, unsigned char key[ADYEN_SIGNATURE_KEY_LEN])
{
    if (hex == NULL || strlen(hex) != 2 * ADYEN_SIGNATURE_KEY_LEN)
        return false;
    for (size_t i = 0; i < ADYEN_SIGNATURE_KEY_LEN; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (unsigned char)(hi * 16 + lo);
    }
    return true;
}

/* The string value of member name of obj, "" when absent or not a string. */
static const char *field(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s != NULL ? s : "";
}

char *adyen_signature_string(const json_t *item)
{
    const json_t *amount = json_object_get(item, "amount");
    const json_t *value = json_object_get(amount, "value");
    char value_text[32] = "";
    char *out = NULL;

    if (json_is_integer(value))
        snprintf(value_text, sizeof(value_text), "%" PRId64, (int64_t)json_integer_value(value));
    if (asprintf(&out, "%s:%s:%s:%s:%s:%s:%s:%s", field(item, "pspReference"),
                 field(item, "originalReference"), field(item, "merchantAccountCode"),
                 field(item, "merchantReference"), value_text, field(amount, "currency"),
                 field(item, "eventCode"), field(item, "success")) < 0)
        return NULL;
    return out;
}

bool adyen_signature_sign(const unsigned char key[ADYEN_SIGNATURE_KEY_LEN], const char *data,
                          char sig[ADYEN_SIGNATURE_SIZE])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (HMAC(EVP_sha256(), key, ADYEN_SIGNATURE_KEY_LEN, (const unsigned char *)data, strlen(data),
             mac, &maclen) == NULL ||
        BASE64_ENCODED_SIZE(maclen) > ADYEN_SIGNATURE_SIZE)
        return false;
    base64_encode(mac, maclen, sig);
    return true;
}

bool adyen_signature_of_item(const json_t *item, const unsigned char key[ADYEN_SIGNATURE_KEY_LEN],
                             char sig[ADYEN_SIGNATURE_SIZE])
{
    char *data = adyen_signature_string(item);
    bool ok = data != NULL && adyen_signature_sign(key, data, sig);
    free(data);
    return ok;
}
