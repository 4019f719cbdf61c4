/*
 * config_yaml: libyaml's document API turned into a tree with line numbers
 * and ${VAR} expansion. See config_yaml.h.
 */
#include "config_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Deeper than any sane config; stops runaway recursion on hostile input. */
#define CY_MAX_DEPTH 32
#define CY_MAX_VAR   128

struct cy_loader {
    const char *name;
    yaml_document_t *doc;
    unsigned char *seen; /* per node index: an alias reuses a node, which we refuse */
    size_t nnodes;
    char *err;
    size_t errlen;
};

/* A growing string for the expansion. */
struct cy_buf {
    char *s;
    size_t len, cap;
};

static bool buf_put(struct cy_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL)
            return false;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

static void cy_fail(struct cy_loader *ld, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cy_fail(struct cy_loader *ld, int line, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (path != NULL && path[0] != '\0')
        snprintf(ld->err, ld->errlen, "%s:%d: %s: %s", ld->name, line, path, reason);
    else
        snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->name, line, reason);
}

static bool is_var_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool is_var_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/*
 * Expand ${VAR}, ${VAR:-default} and $$ in in. Returns a malloc'd string, or
 * NULL with the reason in why. The reason may name the variable but never
 * holds its value or the default: either may be a secret.
 */
static char *expand(const char *in, char *why, size_t whylen)
{
    struct cy_buf b = {NULL, 0, 0};
    const char *p = in;

    if (!buf_put(&b, "", 0))
        goto nomem;
    while (*p != '\0') {
        if (p[0] == '$' && p[1] == '$') {
            if (!buf_put(&b, "$", 1))
                goto nomem;
            p += 2;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            const char *next = strchr(p + 1, '$');
            size_t n = next ? (size_t)(next - p) : strlen(p);
            if (!buf_put(&b, p, n))
                goto nomem;
            p += n;
            continue;
        }
        const char *name = p + 2, *q = name;
        char var[CY_MAX_VAR + 1];
        if (!is_var_start(*q)) {
            snprintf(why, whylen, "invalid variable reference: \"${\" must be followed by a name");
            goto fail;
        }
        while (is_var_char(*q))
            q++;
        size_t nlen = (size_t)(q - name);
        if (nlen > CY_MAX_VAR) {
            snprintf(why, whylen, "invalid variable reference: name longer than %d characters",
                     CY_MAX_VAR);
            goto fail;
        }
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        const char *value = getenv(var);
        if (*q == '}') {
            if (value == NULL) {
                snprintf(why, whylen, "environment variable %s is not set", var);
                goto fail;
            }
            if (!buf_put(&b, value, strlen(value)))
                goto nomem;
            p = q + 1;
        } else if (q[0] == ':' && q[1] == '-') {
            const char *def = q + 2, *end = strchr(def, '}');
            if (end == NULL) {
                snprintf(why, whylen, "unterminated reference to %s: missing \"}\"", var);
                goto fail;
            }
            bool ok = (value != NULL && value[0] != '\0') ? buf_put(&b, value, strlen(value))
                                                          : buf_put(&b, def, (size_t)(end - def));
            if (!ok)
                goto nomem;
            p = end + 1;
        } else {
            snprintf(why, whylen,
                     "invalid reference to %s: expected \"}\" or \":-default}\" after the name",
                     var);
            goto fail;
        }
    }
    return b.s;
nomem:
    snprintf(why, whylen, "out of memory");
fail:
    free(b.s);
    return NULL;
}

static void node_clear(struct cy_node *n)
{
    free(n->value);
    for (size_t i = 0; n->pairs != NULL && i < n->n; i++) {
        free(n->pairs[i].key);
        node_clear(&n->pairs[i].value);
    }
    free(n->pairs);
    for (size_t i = 0; n->items != NULL && i < n->n; i++)
        node_clear(&n->items[i]);
    free(n->items);
    memset(n, 0, sizeof(*n));
}

void cy_free(struct cy_node *root)
{
    if (root == NULL)
        return;
    node_clear(root);
    free(root);
}

static bool plain_null(const yaml_node_t *yn)
{
    const char *v = (const char *)yn->data.scalar.value;
    if (yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static bool convert(struct cy_loader *ld, int index, int ref_line, struct cy_node *out,
                    const char *path, int depth);

static bool convert_scalar(struct cy_loader *ld, yaml_node_t *yn, struct cy_node *out,
                           const char *path)
{
    const char *raw = (const char *)yn->data.scalar.value;
    char why[256];

    out->kind = CY_SCALAR;
    if (strlen(raw) != yn->data.scalar.length) {
        cy_fail(ld, out->line, path, "value contains a NUL character");
        return false;
    }
    out->null = plain_null(yn);
    out->value = out->null ? strdup("") : expand(raw, why, sizeof(why));
    if (out->value == NULL) {
        cy_fail(ld, out->line, path, "%s", out->null ? "out of memory" : why);
        return false;
    }
    return true;
}

static bool convert_map(struct cy_loader *ld, yaml_node_t *yn, struct cy_node *out,
                        const char *path, int depth)
{
    size_t n = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);

    out->kind = CY_MAP;
    out->pairs = calloc(n ? n : 1, sizeof(*out->pairs));
    if (out->pairs == NULL) {
        cy_fail(ld, out->line, path, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *yp = &yn->data.mapping.pairs.start[i];
        yaml_node_t *kn = yaml_document_get_node(ld->doc, yp->key);
        struct cy_pair *pair = &out->pairs[i];
        char child[512];

        out->n = i + 1; /* so that node_clear frees what is built so far */
        pair->line = (int)kn->start_mark.line + 1;
        pair->column = (int)kn->start_mark.column + 1;
        if (kn->type != YAML_SCALAR_NODE) {
            cy_fail(ld, pair->line, path, "map keys must be plain strings");
            return false;
        }
        pair->key = strdup((const char *)kn->data.scalar.value);
        if (pair->key == NULL) {
            cy_fail(ld, pair->line, path, "out of memory");
            return false;
        }
        if (path[0] != '\0')
            snprintf(child, sizeof(child), "%s.%s", path, pair->key);
        else
            snprintf(child, sizeof(child), "%s", pair->key);
        if (!convert(ld, yp->value, pair->line, &pair->value, child, depth + 1))
            return false;
    }
    return true;
}

static bool convert_seq(struct cy_loader *ld, yaml_node_t *yn, struct cy_node *out,
                        const char *path, int depth)
{
    size_t n = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);

    out->kind = CY_SEQ;
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    if (out->items == NULL) {
        cy_fail(ld, out->line, path, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char child[512];
        out->n = i + 1;
        snprintf(child, sizeof(child), "%s[%zu]", path, i);
        if (!convert(ld, yn->data.sequence.items.start[i], out->line, &out->items[i], child,
                     depth + 1))
            return false;
    }
    return true;
}

/* Convert node index of the document into out. ref_line is the line of the
 * key or sequence that refers to it: an alias's target has its own (earlier)
 * line, which would point the reader to the wrong place. */
static bool convert(struct cy_loader *ld, int index, int ref_line, struct cy_node *out,
                    const char *path, int depth)
{
    yaml_node_t *yn = yaml_document_get_node(ld->doc, index);

    if (yn == NULL)
        return false; /* cannot happen with a document libyaml built */
    out->line = (int)yn->start_mark.line + 1;
    out->column = (int)yn->start_mark.column + 1;
    if (depth > CY_MAX_DEPTH) {
        cy_fail(ld, out->line, path, "nesting deeper than %d levels", CY_MAX_DEPTH);
        return false;
    }
    if (index < 1 || (size_t)index > ld->nnodes || ld->seen[index - 1]) {
        cy_fail(ld, ref_line, path, "YAML aliases are not supported");
        return false;
    }
    ld->seen[index - 1] = 1;
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        return convert_scalar(ld, yn, out, path);
    case YAML_MAPPING_NODE:
        return convert_map(ld, yn, out, path, depth);
    case YAML_SEQUENCE_NODE:
        return convert_seq(ld, yn, out, path, depth);
    default:
        cy_fail(ld, out->line, path, "unsupported YAML node");
        return false;
    }
}

static void parser_fail(const char *name, const yaml_parser_t *p, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "unknown error";

    if (p->context != NULL)
        snprintf(err, errlen, "%s:%zu: invalid YAML: %s (%s at line %zu)", name,
                 p->problem_mark.line + 1, problem, p->context, p->context_mark.line + 1);
    else
        snprintf(err, errlen, "%s:%zu: invalid YAML: %s", name, p->problem_mark.line + 1, problem);
}

/* Shared tail of both loaders: parser input already set. */
static struct cy_node *load(const char *name, yaml_parser_t *parser, char *err, size_t errlen)
{
    yaml_document_t doc, extra;
    struct cy_node *root = NULL;
    struct cy_loader ld = {name, &doc, NULL, 0, err, errlen};
    bool have_doc = false, ok = false;

    if (!yaml_parser_load(parser, &doc)) {
        parser_fail(name, parser, err, errlen);
        goto out;
    }
    have_doc = true;
    root = calloc(1, sizeof(*root));
    if (root == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (top == NULL) {
        /* Empty file: an empty map, so that missing keys are reported as such. */
        root->kind = CY_MAP;
        root->line = 1;
        root->column = 1;
        ok = true;
        goto out;
    }
    if (top->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%zu: the top level must be a map of sections", name,
                 top->start_mark.line + 1);
        goto out;
    }
    ld.nnodes = (size_t)(doc.nodes.top - doc.nodes.start);
    ld.seen = calloc(ld.nnodes ? ld.nnodes : 1, 1);
    if (ld.seen == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    if (!convert(&ld, 1, 1, root, "", 0))
        goto out;
    /* A second document would be silently ignored: refuse it instead. */
    if (!yaml_parser_load(parser, &extra)) {
        parser_fail(name, parser, err, errlen);
        goto out;
    }
    top = yaml_document_get_root_node(&extra);
    if (top != NULL)
        snprintf(err, errlen, "%s:%zu: only one YAML document is allowed", name,
                 top->start_mark.line + 1);
    else
        ok = true;
    yaml_document_delete(&extra);
out:
    free(ld.seen);
    if (have_doc)
        yaml_document_delete(&doc);
    if (!ok) {
        cy_free(root);
        return NULL;
    }
    return root;
}

struct cy_node *cy_load_file(const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    struct cy_node *root;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(err, errlen, "%s: could not open file: %s", path, strerror(errno));
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    root = load(path, &parser, err, errlen);
    yaml_parser_delete(&parser);
    if (root != NULL && ferror(f)) {
        snprintf(err, errlen, "%s: could not read file: %s", path, strerror(errno));
        cy_free(root);
        root = NULL;
    }
    fclose(f);
    return root;
}

struct cy_node *cy_load_string(const char *name, const char *text, char *err, size_t errlen)
{
    yaml_parser_t parser;
    struct cy_node *root;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    root = load(name, &parser, err, errlen);
    yaml_parser_delete(&parser);
    return root;
}

const struct cy_pair *cy_map_find(const struct cy_node *map, const char *key)
{
    if (map == NULL || map->kind != CY_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key, key) == 0)
            return &map->pairs[i];
    return NULL;
}

const char *cy_kind_name(const struct cy_node *node)
{
    if (node->kind == CY_MAP)
        return "a map";
    if (node->kind == CY_SEQ)
        return "a sequence";
    return node->null ? "null" : "a string";
}
