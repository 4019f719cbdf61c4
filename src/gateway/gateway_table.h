/*
 * gateway_table: what each gateway's answers mean, as data. One row per
 * documented answer (HTTP status, error code or body shape), with the verdict
 * the retry layer acts on and the two facts that decide whether a retry is
 * safe: does the gateway store this answer under the Idempotency-Key (so a
 * retry with the same key gets it again), and does the answer prove that no
 * refund happened.
 *
 * The rows and their ids are those of docs/gateways.md, where each cites the
 * gateway's documentation; a unit test keeps the two in agreement, and the
 * simulator's tests exercise every row. Nothing else in the code decides
 * what a status or code means.
 */
#ifndef CR_GATEWAY_TABLE_H
#define CR_GATEWAY_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

enum gateway_verdict {
    GATEWAY_SUCCEEDED = 0,    /* the answer shows our refund made */
    GATEWAY_ALREADY_REFUNDED, /* nothing left to refund (confirmed by inquiry where possible) */
    GATEWAY_RETRYABLE,        /* nothing proven; a later attempt may succeed */
    GATEWAY_PERMANENT,        /* a business refusal: retrying cannot change it */
    GATEWAY_CONFIG_FAULT,     /* our credentials, URL or permissions: alert a human */
    GATEWAY_PENDING,          /* accepted, the result comes later: confirm by inquiry */
    GATEWAY_IN_PROGRESS,      /* the same key is still being processed: postpone */
    GATEWAY_UNVERIFIED,       /* a 2xx that is not the expected object: inquire */
};

/* Whether the gateway keeps an answer under the Idempotency-Key. */
enum gateway_stored {
    GATEWAY_STORED_NO = 0,
    GATEWAY_STORED_YES,
    /* The documents do not say: treated as stored (a new key only after an
     * inquiry proves no refund), which costs an inquiry and never a refund. */
    GATEWAY_STORED_UNKNOWN,
};

/* Pseudo-codes for answers that carry no error code of the gateway's. */
#define GATEWAY_CODE_TIMEOUT          "TIMEOUT"
#define GATEWAY_CODE_CONNECTION_ERROR "CONNECTION_ERROR"
#define GATEWAY_CODE_INVALID_URL      "INVALID_URL"
#define GATEWAY_CODE_TLS_ERROR        "TLS_ERROR"

struct gateway_rule {
    const char *id; /* the row id in docs/gateways.md */
    enum gateway_kind kind;
    int status_lo, status_hi; /* HTTP status range; 0..0 = no HTTP answer */
    const char *code;         /* error code, body shape ("refund.pending") or NULL = any */
    enum gateway_verdict verdict;
    enum gateway_stored stored;
    bool no_refund;    /* the answer proves that nothing was refunded */
    bool gateway_wide; /* a signal about the gateway, not the payment: feeds the breaker */
};

/* The first row of kind matching status and code (code "" matches only rows
 * with code NULL). Never NULL: every kind ends with catch-all rows. */
const struct gateway_rule *gateway_table_lookup(enum gateway_kind kind, long status,
                                                const char *code);

/* Every row, for the tests that check docs/gateways.md and the simulator. */
const struct gateway_rule *gateway_table_rows(size_t *n);

/* "SUCCEEDED", "ALREADY_REFUNDED", ... */
const char *gateway_verdict_name(enum gateway_verdict v);

#endif
