/*
 * base64: standard (RFC 4648) base64 encoding, for HTTP Basic credentials.
 */
#ifndef CR_BASE64_H
#define CR_BASE64_H

#include <stddef.h>

/* Bytes needed to encode len bytes, NUL included. */
#define BASE64_ENCODED_SIZE(len) (4 * (((len) + 2) / 3) + 1)

/* Encode len bytes of in into out, which must hold BASE64_ENCODED_SIZE(len)
 * bytes; NUL-terminates. */
void base64_encode(const unsigned char *in, size_t len, char *out);

#endif
