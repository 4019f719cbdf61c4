/*
 * pipeline_config: a test's config as merged YAML layers. See
 * pipeline_config.h.
 */
#include "pipeline_config.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_yaml.h"

/* ---- growing text buffer ---- */

struct buf {
    char *s;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        cr_assert_not_null(b->s, "out of memory");
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_indent(struct buf *b, int indent)
{
    for (int i = 0; i < indent; i++)
        buf_add(b, " ", 1);
}

/* A YAML double-quoted scalar: the config loader does not care about the
 * style, only about the value (and null). */
static void buf_quoted(struct buf *b, const char *s)
{
    buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            buf_add(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            buf_str(b, esc);
        } else {
            buf_add(b, (const char *)p, 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* ---- config merge ---- */

/* A map key: plain when it is a simple word (every key of the config
 * format), quoted otherwise. */
static void buf_key(struct buf *b, const char *k)
{
    bool plain = k[0] != '\0';
    for (const char *c = k; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            plain = false;
    }
    if (plain)
        buf_str(b, k);
    else
        buf_quoted(b, k);
}

static void emit_flow(struct buf *b, const struct cy_node *n)
{
    if (n->kind == CY_SCALAR) {
        if (n->null)
            buf_str(b, "~");
        else
            buf_quoted(b, n->value);
    } else if (n->kind == CY_SEQ) {
        buf_str(b, "[");
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                buf_str(b, ", ");
            emit_flow(b, &n->items[i]);
        }
        buf_str(b, "]");
    } else {
        buf_str(b, "{");
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                buf_str(b, ", ");
            buf_key(b, n->pairs[i].key);
            buf_str(b, ": ");
            emit_flow(b, &n->pairs[i].value);
        }
        buf_str(b, "}");
    }
}

static void emit_pairs(struct buf *b, const struct cy_node *base, const struct cy_node *over,
                       int indent);

/* "key: value" at indent, where value is base merged with over (either may
 * be NULL, not both). */
static void emit_pair(struct buf *b, const char *key, const struct cy_node *base,
                      const struct cy_node *over, int indent)
{
    buf_indent(b, indent);
    buf_key(b, key);
    buf_str(b, ":");
    const struct cy_node *v = over != NULL ? over : base;
    bool merge = base != NULL && over != NULL && base->kind == CY_MAP && over->kind == CY_MAP;
    if (v->kind == CY_MAP && (merge ? base->n + over->n : v->n) > 0) {
        buf_str(b, "\n");
        emit_pairs(b, merge ? base : v, merge ? over : NULL, indent + 2);
    } else {
        buf_str(b, " ");
        emit_flow(b, v);
        buf_str(b, "\n");
    }
}

/* The pairs of map base with those of map over (may be NULL) merged in:
 * base's order first, over's new keys after. */
static void emit_pairs(struct buf *b, const struct cy_node *base, const struct cy_node *over,
                       int indent)
{
    for (size_t i = 0; i < base->n; i++) {
        const struct cy_pair *o = cy_map_find(over, base->pairs[i].key);
        emit_pair(b, base->pairs[i].key, &base->pairs[i].value, o ? &o->value : NULL, indent);
    }
    for (size_t i = 0; over != NULL && i < over->n; i++) {
        if (cy_map_find(base, over->pairs[i].key) == NULL)
            emit_pair(b, over->pairs[i].key, NULL, &over->pairs[i].value, indent);
    }
}

/* yaml_text with the harness's @PLACEHOLDER@ substitution applied, via the
 * harness's own writer (it writes t->config_path). Caller frees. */
static char *substituted(struct itest *t, const char *yaml_text)
{
    itest_write_config(t, yaml_text);
    FILE *f = fopen(t->config_path, "rb");
    cr_assert_not_null(f, "could not read %s: %s", t->config_path, strerror(errno));
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    if (b.s == NULL)
        buf_str(&b, "");
    return b.s;
}

static struct cy_node *load_yaml(const char *name, const char *text)
{
    char err[512];
    struct cy_node *n = cy_load_string(name, text, err, sizeof(err));
    cr_assert_not_null(n, "pipeline config: %s", err);
    return n;
}

void pipeline_config_write(struct itest *t, const char *overrides, const char *extra)
{
    char *base_text = substituted(t, itest_default_config);
    char *over_text = substituted(t, overrides != NULL ? overrides : "");
    char *extra_text = substituted(t, extra != NULL ? extra : "");
    struct cy_node *base = load_yaml("harness template", base_text);
    struct cy_node *over = load_yaml("the fixture's overrides", over_text);
    struct cy_node *ext = load_yaml("the test's config_yaml_extra", extra_text);

    struct buf first = {0};
    buf_str(&first, "");
    emit_pairs(&first, base, over, 0);
    struct cy_node *mid = load_yaml("merged config", first.s);
    struct buf final = {0};
    buf_str(&final, "# written by tests/integration/pipeline_config.c\n");
    emit_pairs(&final, mid, ext, 0);

    FILE *f = fopen(t->config_path, "w");
    cr_assert_not_null(f, "could not write %s: %s", t->config_path, strerror(errno));
    fwrite(final.s, 1, final.len, f);
    fclose(f);

    cy_free(base);
    cy_free(over);
    cy_free(ext);
    cy_free(mid);
    free(first.s);
    free(final.s);
    free(base_text);
    free(over_text);
    free(extra_text);
}
