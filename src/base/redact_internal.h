/*
 * redact_internal: what redact.c (the set of secrets, matching by value) and
 * redact_rules.c (the pattern rules, the DSN and URL parsers) share. Not for
 * other modules: use redact.h.
 */
#ifndef CR_REDACT_INTERNAL_H
#define CR_REDACT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/redact.h"

/* A growing output string; oom set once an allocation failed (then the
 * content is incomplete and must not be used). */
struct redact_sb {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

void redact_sb_add(struct redact_sb *sb, const char *s, size_t n);

/* If a pattern rule (redact.h, net 2) matches at text + i, append the
 * redacted form of what it matched to out and return how many bytes of text
 * it covers; 0 when no rule matches there. */
size_t redact_rule_at(const char *text, size_t i, struct redact_sb *out);

/* Called with each password a DSN holds (decoded); false stops the walk
 * (out of memory). */
typedef bool (*redact_found_fn)(const char *secret, void *arg);

/* Walk the password and sslpassword values of dsn (see redact_add_dsn).
 * False only if found returned false. */
bool redact_dsn_passwords(const char *dsn, redact_found_fn found, void *arg);

/* If t starts an escaped byte (%XX, \u00XX, or a backslash before any
 * other character), store the byte in *c and return the escape's length;
 * else 0. */
size_t redact_escape_at(const char *t, unsigned char *c);

#endif
