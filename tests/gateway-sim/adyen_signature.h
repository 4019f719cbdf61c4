/*
 * adyen_signature: the hmacSignature of an Adyen standard notification item, as
 * docs/design/issue9-gateways-research.md §3.7 reads it from Adyen's own
 * library and checks it against Adyen's test vectors: the values of
 * pspReference, originalReference, merchantAccountCode, merchantReference,
 * amount.value, amount.currency, eventCode and success, an absent one as "",
 * joined by ':' with no escaping of any character; HMAC-SHA256 over that
 * with the hex-decoded key; base64 (standard alphabet, padded).
 *
 * The simulator signs on its own, with no code shared with cancel-retry's
 * receiver (src/webhook/): a test oracle that shared the receiver's reading
 * of the algorithm would agree with any mistake in it. Its own names, too
 * (adyen_signature_*), so that it links beside the receiver's library.
 */
#ifndef GATEWAY_SIM_ADYEN_SIGNATURE_H
#define GATEWAY_SIM_ADYEN_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* An HMAC key: 64 hex digits, 32 bytes. */
#define ADYEN_SIGNATURE_KEY_LEN 32

/* A signature's base64 text, NUL included (32 bytes -> 44 characters). */
#define ADYEN_SIGNATURE_SIZE 45

/* Decode hex (exactly 64 hex digits, either case) into key. */
bool adyen_signature_key_parse(const char *hex, unsigned char key[ADYEN_SIGNATURE_KEY_LEN])
    __attribute__((warn_unused_result));

/* The signing string of a NotificationRequestItem (new string, caller frees;
 * NULL when out of memory). amount.value is written in decimal. */
char *adyen_signature_string(const json_t *item);

/* base64(HMAC-SHA256(key, data)) into sig. False when libcrypto fails. */
bool adyen_signature_sign(const unsigned char key[ADYEN_SIGNATURE_KEY_LEN], const char *data,
                          char sig[ADYEN_SIGNATURE_SIZE]) __attribute__((warn_unused_result));

/* The hmacSignature of item with key into sig. */
bool adyen_signature_of_item(const json_t *item, const unsigned char key[ADYEN_SIGNATURE_KEY_LEN],
                             char sig[ADYEN_SIGNATURE_SIZE]) __attribute__((warn_unused_result));

#endif
