/*
 * hex: one hexadecimal digit's value (percent-escapes, HMAC keys).
 */
#ifndef CR_HEX_H
#define CR_HEX_H

/* The value of c as a hex digit (0-9, a-f, A-F), or -1 when it is none. */
int hex_value(char c);

#endif
