/*
 * config_internal: the declarative key tables shared by config.c (the tables
 * and the sections that need code), config_table.c (the engine that applies a
 * table to a YAML map) and config_validate.c (cross-field checks). Internal to
 * the config module; everyone else uses config.h.
 *
 * Rules the engine applies to every table:
 * - A key written as null ("key:", "~", "null") counts as not set: the
 *   default applies, and a required key is missing.
 * - An optional string without default that expands to "" is NULL, so
 *   "${CA_FILE:-}" means "none"; a required string or one with a default must
 *   not be empty.
 * - Values of secret keys never appear in messages; other values do, quoted.
 * - Every error is "FILE:LINE: KEY.PATH: reason"; the first one wins.
 */
#ifndef CR_CONFIG_INTERNAL_H
#define CR_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/config_yaml.h"

enum config_key_type {
    CK_STRING,
    CK_INT,
    CK_DOUBLE,
    CK_BOOL,
    CK_DURATION, /* int64_t milliseconds */
    CK_ENUM,     /* an enum member, value from ->enums */
    CK_STRLIST,  /* char ** at offset, size_t count right after it */
    CK_SECTION,  /* a nested map described by ->section, same base + offset */
    CK_CUSTOM,   /* parsed by ->custom */
};

#define CK_REQUIRED   0x1u
#define CK_SECRET     0x2u
#define CK_GT_MIN     0x4u /* min itself is out of range */
#define CK_NODEFAULTS 0x8u /* section whose defaults come from elsewhere */

/* No upper bound worth naming. */
#define CK_NOMAX 9.0e15

struct config_enum {
    const char *name;
    int value;
};

struct config_ctx;
struct config_key;

typedef bool (*config_custom_fn)(struct config_ctx *c, const struct config_key *e,
                                 const struct cy_pair *p, int line, const char *path, void *base);

struct config_key {
    const char *key;
    enum config_key_type type;
    size_t offset;
    const char *def; /* default as written in YAML; NULL: none (NULL, 0, empty) */
    double min, max;
    unsigned flags;
    const struct config_key *section; /* CK_SECTION */
    const struct config_enum *enums;  /* CK_ENUM; CK_STRLIST: allowed items, or NULL */
    config_custom_fn custom;          /* CK_CUSTOM; called with p NULL when absent */
};

/* One load in progress: where messages go and what they refer to. */
struct config_ctx {
    const char *file;           /* name used in messages (the path) */
    const struct cy_node *root; /* the whole tree, for line look-ups in validation */
    struct config *cfg;         /* being filled; freed by the caller on failure */
    char *err;
    size_t errlen;
};

/* Write "FILE:LINE: path: reason" (or "FILE: path: reason" when line <= 0)
 * into c->err. Always returns false, so that "return config_fail(...)" reads
 * naturally. */
bool config_fail(struct config_ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "prefix.key", or "key" when prefix is empty, into out. */
void config_join_path(char *out, size_t outlen, const char *prefix, const char *key);

/* Store every default of table (sections recursively, except CK_NODEFAULTS
 * ones) into the struct at base. */
bool config_table_defaults(struct config_ctx *c, const struct config_key *table, void *base)
    __attribute__((warn_unused_result));

/* Apply map (NULL: the section is absent) to the struct at base as table
 * describes. line is where a missing key is reported: the line of the key that
 * opens this map, or of the nearest present ancestor. path is the key path of
 * map ("" at the top). */
bool config_table_walk(struct config_ctx *c, const struct config_key *table,
                       const struct cy_node *map, int line, const char *path, void *base)
    __attribute__((warn_unused_result));

/* Free every string and list table describes under base (sections
 * recursively); custom sections are the caller's. */
void config_table_free(const struct config_key *table, void *base);

/* Cross-field checks on the complete c->cfg, with lines from c->root. */
bool config_validate(struct config_ctx *c) __attribute__((warn_unused_result));

#endif
