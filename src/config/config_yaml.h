/*
 * config_yaml: a YAML file loaded into a small tree that remembers where each
 * node came from (line, column), with ${VAR} expansion already applied to
 * scalar values. Internal to config.c; nothing else should need it.
 *
 * Expansion rules, applied to every scalar value (never to map keys):
 *   ${VAR}            the value of the environment variable VAR; unset is an
 *                     error naming VAR (an empty value is kept as "")
 *   ${VAR:-default}   VAR if set and non-empty, else default (which may be
 *                     empty: ${VAR:-}); default runs to the first '}'
 *   $$                a literal '$'
 *   any other '$'     kept as is, so "pa$word" needs no escaping
 * VAR is [A-Za-z_][A-Za-z0-9_]*. Error messages name the variable, never the
 * expanded value nor the default (either may be a secret).
 *
 * The loader refuses YAML aliases (*ref): the config format has no use for
 * them and they could make a small file expand into a huge tree.
 *
 * Keys of one map are unique: a duplicate is an error naming both lines.
 *
 * Limits: a config is a few hundred lines written by people, so anything far
 * bigger is a mistake (a wrong path, a generated file) or hostile. Each limit
 * is checked while reading, before the rest of the input is parsed, and the
 * error names the file, the line and key where there is one, and the limit.
 * Duplicate keys are found with a hash set per map, so loading stays linear.
 */

/* Bytes of the file (or string). The shipped example is about 10 KiB. */
#define CY_MAX_FILE_SIZE (1024 * 1024)
/* Levels of maps and lists below the top-level map. */
#define CY_MAX_DEPTH 32
/* Keys, values and list items in the whole file (a key: value pair counts
 * two). The shipped example has about 250. */
#define CY_MAX_NODES 10000
/* Bytes of one key or value, before and after ${VAR} expansion. The longest
 * real values (a DSN, a webhook URL) are well under 1 KiB. */
#define CY_MAX_SCALAR (16 * 1024)
#ifndef CR_CONFIG_YAML_H
#define CR_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

enum cy_kind { CY_SCALAR, CY_MAP, CY_SEQ };

struct cy_pair;

struct cy_node {
    enum cy_kind kind;
    int line;   /* 1-based */
    int column; /* 1-based */
    /* CY_SCALAR: the expanded value (never NULL; "" for an empty scalar).
     * null is true for a plain empty scalar, "~" and "null": YAML's null. */
    char *value;
    bool null;
    /* CY_MAP: n pairs in file order. CY_SEQ: n items. */
    size_t n;
    struct cy_pair *pairs;
    struct cy_node *items;
};

struct cy_pair {
    char *key;
    int line; /* of the key */
    int column;
    struct cy_node value;
};

/* Load path (or, for cy_load_string, the NUL-terminated text, called name in
 * messages). Returns the root node, a CY_MAP (an empty document gives an empty
 * map at line 1), owned by the caller and released with cy_free(). On failure
 * returns NULL and writes "name:line: key.path: reason" or "name: reason" to
 * err. */
struct cy_node *cy_load_file(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
struct cy_node *cy_load_string(const char *name, const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Free a tree returned by cy_load_*(). NULL is a no-op. */
void cy_free(struct cy_node *root);

/* The pair with key in map, or NULL (also when map is NULL or not a map). */
const struct cy_pair *cy_map_find(const struct cy_node *map, const char *key);

/* "a string", "a map", "a sequence" or "null", for "expected X, got Y". */
const char *cy_kind_name(const struct cy_node *node);

#endif
