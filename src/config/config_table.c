/*
 * config_table: the engine behind config.c's declarative tables: parse a
 * scalar by the key's type, check its range, apply defaults, walk a map and
 * free what a table owns. See config_internal.h.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/duration.h"
#include "base/i64.h"

/* CK_STRLIST stores the count right after the array pointer. */
_Static_assert(offsetof(struct retry_policy, n_non_retryable_codes) ==
                   offsetof(struct retry_policy, non_retryable_codes) + sizeof(char **),
               "list layout");
_Static_assert(offsetof(struct config_gateway, n_webhook_hmac_keys) ==
                   offsetof(struct config_gateway, webhook_hmac_keys) + sizeof(char **),
               "list layout");
_Static_assert(offsetof(struct config_slack, n_statuses) ==
                   offsetof(struct config_slack, statuses) + sizeof(char **),
               "list layout");

bool config_fail(struct config_ctx *c, int line, const char *path, const char *fmt, ...)
{
    char reason[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, line, path, reason);
    else
        snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, reason);
    return false;
}

void config_join_path(char *out, size_t outlen, const char *prefix, const char *key)
{
    if (prefix[0] != '\0')
        snprintf(out, outlen, "%s.%s", prefix, key);
    else
        snprintf(out, outlen, "%s", key);
}

static void strlist_free(char **list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

static const char *type_name(const struct config_key *e)
{
    switch (e->type) {
    case CK_INT:
        return "an integer";
    case CK_DOUBLE:
        return "a number";
    case CK_BOOL:
        return "a boolean";
    case CK_DURATION:
        return "a duration";
    case CK_STRLIST:
        return "a list of strings";
    case CK_SECTION:
    case CK_CUSTOM:
        return "a map";
    default:
        return "a string";
    }
}

static void format_value(const struct config_key *e, double v, char *buf, size_t len)
{
    if (e->type == CK_DURATION)
        duration_format((int64_t)v, buf, len);
    else if (e->type == CK_INT)
        i64_text(buf, len, (int64_t)v);
    else
        snprintf(buf, len, "%g", v);
}

static bool check_range(struct config_ctx *c, const struct config_key *e, double v, int line,
                        const char *path)
{
    char vs[32], lo[32], hi[32];
    bool below = (e->flags & CK_GT_MIN) ? v <= e->min : v < e->min;

    if (!below && v <= e->max)
        return true;
    format_value(e, v, vs, sizeof(vs));
    format_value(e, e->min, lo, sizeof(lo));
    format_value(e, e->max, hi, sizeof(hi));
    if (e->max >= CK_NOMAX)
        return config_fail(c, line, path, "%s is out of range: must be %s %s", vs,
                           (e->flags & CK_GT_MIN) ? "greater than" : "at least", lo);
    return config_fail(c, line, path, "%s is out of range: must be %s %s and at most %s", vs,
                       (e->flags & CK_GT_MIN) ? "greater than" : "at least", lo, hi);
}

static bool enum_lookup(const struct config_enum *en, const char *text, int *out)
{
    for (; en->name != NULL; en++) {
        if (strcmp(en->name, text) == 0) {
            *out = en->value;
            return true;
        }
    }
    return false;
}

static bool enum_fail(struct config_ctx *c, const struct config_enum *en, const char *text,
                      int line, const char *path)
{
    char names[256] = "";
    size_t o = 0;

    for (; en->name != NULL && o < sizeof(names); en++) {
        int n = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", en->name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return config_fail(c, line, path, "invalid value \"%s\": must be one of %s", text, names);
}

/* Store one scalar text into the member e describes. Used for file values
 * and for defaults alike, so that a default is parsed exactly like a value. */
static bool set_text(struct config_ctx *c, const struct config_key *e, const char *text, int line,
                     const char *path, void *base)
{
    char *field = (char *)base + e->offset;
    char *end = NULL;
    char why[160];

    switch (e->type) {
    case CK_STRING: {
        char **dst = (char **)(void *)field;
        if (text[0] == '\0') {
            if ((e->flags & CK_REQUIRED) || e->def != NULL)
                return config_fail(c, line, path, "%s must not be empty",
                                   (e->flags & CK_SECRET) ? "secret" : "value");
            free(*dst);
            *dst = NULL;
            return true;
        }
        char *copy = strdup(text);
        if (copy == NULL)
            return config_fail(c, line, path, "out of memory");
        free(*dst);
        *dst = copy;
        return true;
    }
    case CK_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
            return config_fail(c, line, path, "invalid integer \"%s\"", text);
        if (!check_range(c, e, (double)v, line, path))
            return false;
        *(int *)(void *)field = (int)v;
        return true;
    }
    case CK_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v))
            return config_fail(c, line, path, "invalid number \"%s\"", text);
        if (!check_range(c, e, v, line, path))
            return false;
        *(double *)(void *)field = v;
        return true;
    }
    case CK_BOOL: {
        bool v;
        if (strcasecmp(text, "true") == 0 || strcasecmp(text, "yes") == 0 ||
            strcasecmp(text, "on") == 0)
            v = true;
        else if (strcasecmp(text, "false") == 0 || strcasecmp(text, "no") == 0 ||
                 strcasecmp(text, "off") == 0)
            v = false;
        else
            return config_fail(c, line, path, "invalid boolean \"%s\": must be true or false",
                               text);
        *(bool *)(void *)field = v;
        return true;
    }
    case CK_DURATION: {
        int64_t ms;
        if (!duration_parse(text, &ms, why, sizeof(why)))
            return config_fail(c, line, path, "%s", why);
        if (!check_range(c, e, (double)ms, line, path))
            return false;
        *(int64_t *)(void *)field = ms;
        return true;
    }
    case CK_ENUM: {
        int v;
        if (!enum_lookup(e->enums, text, &v))
            return enum_fail(c, e->enums, text, line, path);
        /* Every enum of config.h is int-sized; memcpy keeps the store typed. */
        _Static_assert(sizeof(enum gateway_kind) == sizeof(int), "enum size");
        _Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
        memcpy(field, &v, sizeof(v));
        return true;
    }
    default:
        return config_fail(c, line, path, "internal error: key type has no scalar form");
    }
}

/* Replace the list at e with the items of a sequence node, or (node NULL)
 * with the comma-separated default text. */
static bool set_list(struct config_ctx *c, const struct config_key *e, const struct cy_node *node,
                     const char *text, const char *path, void *base)
{
    char ***dst = (char ***)(void *)((char *)base + e->offset);
    size_t *count = (size_t *)(void *)((char *)base + e->offset + sizeof(char **));
    size_t n = 0, cap = node ? node->n : 1;
    char **list;

    if (node == NULL)
        for (const char *p = text; *p; p++)
            cap += (*p == ',');
    list = calloc(cap ? cap : 1, sizeof(*list));
    if (list == NULL)
        return config_fail(c, node ? node->line : 0, path, "out of memory");
    for (size_t i = 0; i < cap; i++) {
        char item_path[300];
        const char *item;
        size_t len;
        int line = 0;
        if (node != NULL) {
            const struct cy_node *it = &node->items[i];
            snprintf(item_path, sizeof(item_path), "%s[%zu]", path, i);
            line = it->line;
            if (it->kind != CY_SCALAR || it->null) {
                config_fail(c, line, item_path, "expected a string, got %s", cy_kind_name(it));
                goto bad;
            }
            if (it->value[0] == '\0') {
                config_fail(c, line, item_path, "value must not be empty");
                goto bad;
            }
            item = it->value;
            len = strlen(item);
        } else {
            snprintf(item_path, sizeof(item_path), "%s", path);
            item = text;
            len = strcspn(text, ",");
            text += len + (text[len] == ',');
        }
        list[n] = strndup(item, len);
        if (list[n] == NULL) {
            config_fail(c, line, item_path, "out of memory");
            goto bad;
        }
        n++;
        int ignored;
        if (e->enums != NULL && !enum_lookup(e->enums, list[n - 1], &ignored)) {
            enum_fail(c, e->enums, list[n - 1], line, item_path);
            goto bad;
        }
    }
    strlist_free(*dst, *count);
    *dst = list;
    *count = n;
    return true;
bad:
    strlist_free(list, n);
    return false;
}

bool config_table_defaults(struct config_ctx *c, const struct config_key *table, void *base)
{
    for (const struct config_key *e = table; e->key != NULL; e++) {
        if (e->type == CK_SECTION) {
            if (!(e->flags & CK_NODEFAULTS) &&
                !config_table_defaults(c, e->section, (char *)base + e->offset))
                return false;
        } else if (e->type == CK_STRLIST) {
            if (e->def != NULL && !set_list(c, e, NULL, e->def, e->key, base))
                return false;
        } else if (e->def != NULL && e->type != CK_CUSTOM) {
            if (!set_text(c, e, e->def, 0, e->key, base))
                return false;
        }
    }
    return true;
}

static bool walk_entry(struct config_ctx *c, const struct config_key *e, const struct cy_pair *p,
                       int line, const char *path, void *base)
{
    const struct cy_node *v = p ? &p->value : NULL;
    bool absent = (v == NULL || (v->kind == CY_SCALAR && v->null));

    if (e->type == CK_CUSTOM)
        return e->custom(c, e, absent ? NULL : p, p ? p->line : line, path, base);
    if (e->type == CK_SECTION) {
        if (!absent && v->kind != CY_MAP)
            return config_fail(c, p->line, path, "expected a map, got %s", cy_kind_name(v));
        return config_table_walk(c, e->section, absent ? NULL : v, p ? p->line : line, path,
                                 (char *)base + e->offset);
    }
    if (absent) {
        if (e->flags & CK_REQUIRED)
            return config_fail(c, p ? p->line : line, path, "missing required key");
        return true;
    }
    if (e->type == CK_STRLIST) {
        if (v->kind != CY_SEQ)
            return config_fail(c, p->line, path, "expected a list of strings, got %s",
                               cy_kind_name(v));
        return set_list(c, e, v, NULL, path, base);
    }
    if (v->kind != CY_SCALAR)
        return config_fail(c, p->line, path, "expected %s, got %s", type_name(e), cy_kind_name(v));
    return set_text(c, e, v->value, v->line, path, base);
}

/*
 * Apply map (NULL: the section is absent) to base as table describes. line is
 * where a missing key is reported: the line of the key that opens this map,
 * or of the nearest present ancestor. Keys are checked in file order for
 * unknown names (config_yaml already refused duplicates), then applied in
 * table order, so that a section another depends on (retry before gateways)
 * is complete first.
 */
bool config_table_walk(struct config_ctx *c, const struct config_key *table,
                       const struct cy_node *map, int line, const char *path, void *base)
{
    char child[300];

    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const struct cy_pair *p = &map->pairs[i];
        const struct config_key *e = table;
        config_join_path(child, sizeof(child), path, p->key);
        while (e->key != NULL && strcmp(e->key, p->key) != 0)
            e++;
        if (e->key == NULL)
            return config_fail(c, p->line, child, "unknown key");
    }
    for (const struct config_key *e = table; e->key != NULL; e++) {
        config_join_path(child, sizeof(child), path, e->key);
        if (!walk_entry(c, e, cy_map_find(map, e->key), line, child, base))
            return false;
    }
    return true;
}

/* Free every string and list a table describes (sections recursively). */
void config_table_free(const struct config_key *table, void *base)
{
    for (const struct config_key *e = table; e->key != NULL; e++) {
        char *field = (char *)base + e->offset;
        if (e->type == CK_STRING) {
            free(*(char **)(void *)field);
            *(char **)(void *)field = NULL;
        } else if (e->type == CK_STRLIST) {
            strlist_free(*(char ***)(void *)field, *(size_t *)(void *)(field + sizeof(char **)));
            *(char ***)(void *)field = NULL;
        } else if (e->type == CK_SECTION) {
            config_table_free(e->section, field);
        }
    }
}
