/*
 * i64: an int64_t as decimal text, the form libpq's text parameters, Kafka
 * header values and form fields take it in.
 */
#ifndef CR_I64_H
#define CR_I64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the longest int64_t text, "-9223372036854775808", NUL included. */
#define I64_LEN 21

/* Write v as decimal text into buf (buflen bytes, at least I64_LEN for every
 * value) and return buf, so that a parameter list can hold the call. */
const char *i64_text(char *buf, size_t buflen, int64_t v);

/* i64_text into an array whose size the compiler knows:
 * const char *values[] = {I64(id, row->id), I64(at, due_ms)}; */
#define I64(buf, v) i64_text((buf), sizeof(buf), (int64_t)(v))

#endif
