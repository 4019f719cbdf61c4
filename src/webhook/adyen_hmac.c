/*
 * adyen_hmac: see adyen_hmac.h.
 */
#include "webhook/adyen_hmac.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base64.h"
#include "base/hex.h"

bool adyen_hmac_key_valid(const char *hex)
{
    if (hex == NULL || strlen(hex) != ADYEN_HMAC_KEY_HEX_LEN)
        return false;
    for (size_t i = 0; i < ADYEN_HMAC_KEY_HEX_LEN; i++)
        if (hex_value(hex[i]) < 0)
            return false;
    return true;
}

bool adyen_hmac_key_decode(const char *hex, unsigned char key[ADYEN_HMAC_KEY_LEN])
{
    if (!adyen_hmac_key_valid(hex))
        return false;
    for (size_t i = 0; i < ADYEN_HMAC_KEY_LEN; i++)
        key[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return true;
}

char *adyen_hmac_signing_string(const struct adyen_hmac_fields *f)
{
    const char *parts[] = {f->psp_reference,
                           f->original_reference,
                           f->merchant_account_code,
                           f->merchant_reference,
                           f->value,
                           f->currency,
                           f->event_code,
                           f->success};
    const size_t n = sizeof(parts) / sizeof(parts[0]);
    size_t len = n; /* n - 1 separators and the NUL */

    for (size_t i = 0; i < n; i++)
        len += parts[i] != NULL ? strlen(parts[i]) : 0;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = parts[i] != NULL ? strlen(parts[i]) : 0;
        if (i > 0)
            s[o++] = ':';
        memcpy(s + o, parts[i] != NULL ? parts[i] : "", l);
        o += l;
    }
    s[o] = '\0';
    return s;
}

bool adyen_hmac_sign(const unsigned char key[ADYEN_HMAC_KEY_LEN], const struct adyen_hmac_fields *f,
                     char sig[ADYEN_HMAC_SIG_SIZE])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *data = adyen_hmac_signing_string(f);

    sig[0] = '\0';
    if (data == NULL)
        return false;
    bool ok = HMAC(EVP_sha256(), key, ADYEN_HMAC_KEY_LEN, (const unsigned char *)data, strlen(data),
                   mac, &maclen) != NULL &&
              maclen == 32;
    free(data);
    if (ok)
        base64_encode(mac, maclen, sig);
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

bool adyen_hmac_verify(const unsigned char key[ADYEN_HMAC_KEY_LEN],
                       const struct adyen_hmac_fields *f, const char *signature)
{
    char expected[ADYEN_HMAC_SIG_SIZE];

    if (signature == NULL || !adyen_hmac_sign(key, f, expected))
        return false;
    /* The length is no secret (always 44); the bytes are compared in
     * constant time. */
    size_t len = strlen(expected);
    bool ok = strlen(signature) == len && CRYPTO_memcmp(expected, signature, len) == 0;
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
}
