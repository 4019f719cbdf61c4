/*
 * adyen_hmac: the HMAC signature of an Adyen standard webhook's
 * NotificationRequestItem (docs/design/issue9-gateways-research.md §3.7):
 *
 *   signing string = pspReference:originalReference:merchantAccountCode:
 *                    merchantReference:value:currency:eventCode:success
 *
 * each absent field as "", joined by ':' with no escaping of any character
 * (the escaping people quote belongs to the retired Hosted Payment Pages
 * signature); key = the configured 64 hex characters decoded to 32 bytes;
 * HMAC-SHA256 of the signing string, Base64 (standard alphabet, padded).
 * The receiver compares it with additionalData.hmacSignature in constant
 * time. Pure functions: OpenSSL's libcrypto computes the MAC, nothing else
 * is touched; a simulator signs with the same code.
 */
#ifndef CR_ADYEN_HMAC_H
#define CR_ADYEN_HMAC_H

#include <stdbool.h>
#include <stddef.h>

/* A key is 32 bytes, configured as 64 hex characters. */
#define ADYEN_HMAC_KEY_LEN     32
#define ADYEN_HMAC_KEY_HEX_LEN 64
/* A signature: Base64 of 32 bytes (44 characters) and its NUL. */
#define ADYEN_HMAC_SIG_SIZE 45

/* The eight signed fields of one item, borrowed; NULL is an absent field
 * (signed as ""). value is amount.value as decimal text. */
struct adyen_hmac_fields {
    const char *psp_reference;
    const char *original_reference;
    const char *merchant_account_code;
    const char *merchant_reference;
    const char *value;
    const char *currency;
    const char *event_code;
    const char *success;
};

/* True if hex is exactly 64 hexadecimal characters (either case): the form
 * a key is configured in. Says nothing of whether it is the right key. */
bool adyen_hmac_key_valid(const char *hex);

/* Decode a key of 64 hex characters into key. False if hex is not one. */
bool adyen_hmac_key_decode(const char *hex, unsigned char key[ADYEN_HMAC_KEY_LEN])
    __attribute__((warn_unused_result));

/* The signing string of f, malloc'd (caller frees); NULL when out of
 * memory. */
char *adyen_hmac_signing_string(const struct adyen_hmac_fields *f);

/* The Base64 signature of f under key into sig. False when out of memory or
 * when libcrypto fails. */
bool adyen_hmac_sign(const unsigned char key[ADYEN_HMAC_KEY_LEN], const struct adyen_hmac_fields *f,
                     char sig[ADYEN_HMAC_SIG_SIZE]) __attribute__((warn_unused_result));

/* True if signature (the item's additionalData.hmacSignature; NULL when
 * absent) is f's signature under key. The comparison takes the same time
 * wherever the first difference is (CRYPTO_memcmp), so that a forger learns
 * nothing from how long a rejection took. */
bool adyen_hmac_verify(const unsigned char key[ADYEN_HMAC_KEY_LEN],
                       const struct adyen_hmac_fields *f, const char *signature);

#endif
