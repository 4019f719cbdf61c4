/*
 * config_yaml: libyaml's event API turned into a tree with line numbers and
 * ${VAR} expansion, with the limits of config_yaml.h checked as events
 * arrive. See config_yaml.h.
 */
#include "config/config_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#define CY_MAX_VAR 128

/* One load in progress. */
struct cy_loader {
    const char *name; /* file name for messages */
    yaml_parser_t *parser;
    long nodes; /* nodes read so far, against CY_MAX_NODES */
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

static bool plain_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
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

static bool next_event(struct cy_loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(ld->parser, ev))
        return true;
    parser_fail(ld->name, ld->parser, ld->err, ld->errlen);
    return false;
}

static int event_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

/* Count one more node (key, value or list item) against CY_MAX_NODES. */
static bool count_node(struct cy_loader *ld, int line, const char *path)
{
    if (++ld->nodes <= CY_MAX_NODES)
        return true;
    cy_fail(ld, line, path, "too many keys, values and list items: the limit is %d", CY_MAX_NODES);
    return false;
}

static bool check_length(struct cy_loader *ld, const yaml_event_t *ev, int line, const char *path)
{
    size_t len = ev->data.scalar.length;

    if (len > CY_MAX_SCALAR) {
        cy_fail(ld, line, path, "value is too long: %zu bytes, the limit is %d", len,
                CY_MAX_SCALAR);
        return false;
    }
    if (strlen((const char *)ev->data.scalar.value) != len) {
        cy_fail(ld, line, path, "value contains a NUL character");
        return false;
    }
    return true;
}

/*
 * The keys of one map being read, for the duplicate check: an open-addressing
 * hash set of indexes into the map's pairs, so that a map of n keys costs O(n)
 * rather than comparing every key with every earlier one.
 */
struct cy_keyset {
    size_t *slots; /* index + 1 into pairs; 0 = empty */
    size_t cap;    /* a power of two, at least twice the number of keys */
    size_t count;
};

static size_t key_hash(const char *s)
{
    size_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool keyset_grow(struct cy_keyset *ks, const struct cy_pair *pairs)
{
    size_t cap = ks->cap ? ks->cap * 2 : 16;
    size_t *slots = calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return false;
    for (size_t i = 0; i < ks->cap; i++) {
        if (ks->slots[i] == 0)
            continue;
        size_t j = key_hash(pairs[ks->slots[i] - 1].key) & (cap - 1);
        while (slots[j] != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = ks->slots[i];
    }
    free(ks->slots);
    ks->slots = slots;
    ks->cap = cap;
    return true;
}

/* Add pairs[index].key. Returns 1 when added, 0 when an earlier pair has the
 * same key (its index in *first), -1 when out of memory. */
static int keyset_add(struct cy_keyset *ks, const struct cy_pair *pairs, size_t index,
                      size_t *first)
{
    if ((ks->count + 1) * 2 > ks->cap && !keyset_grow(ks, pairs))
        return -1;
    size_t j = key_hash(pairs[index].key) & (ks->cap - 1);
    while (ks->slots[j] != 0) {
        if (strcmp(pairs[ks->slots[j] - 1].key, pairs[index].key) == 0) {
            *first = ks->slots[j] - 1;
            return 0;
        }
        j = (j + 1) & (ks->cap - 1);
    }
    ks->slots[j] = index + 1;
    ks->count++;
    return 1;
}

static bool parse_node(struct cy_loader *ld, yaml_event_t *ev, struct cy_node *out,
                       const char *path, int depth);

static bool parse_scalar(struct cy_loader *ld, const yaml_event_t *ev, struct cy_node *out,
                         const char *path)
{
    const char *raw = (const char *)ev->data.scalar.value;
    char why[256];

    out->kind = CY_SCALAR;
    if (!check_length(ld, ev, out->line, path))
        return false;
    out->null = plain_null(ev);
    out->value = out->null ? strdup("") : expand(raw, why, sizeof(why));
    if (out->value == NULL) {
        cy_fail(ld, out->line, path, "%s", out->null ? "out of memory" : why);
        return false;
    }
    /* ${VAR} may bring in more than the file held. */
    if (strlen(out->value) > CY_MAX_SCALAR) {
        cy_fail(ld, out->line, path, "expanded value is too long: the limit is %d bytes",
                CY_MAX_SCALAR);
        return false;
    }
    return true;
}

/* Make room for one more element of size elem in *array (holding n, room for
 * *cap); the new element is zeroed so that node_clear can free a partial one. */
static bool grow(void **array, size_t n, size_t *cap, size_t elem)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void *na = realloc(*array, ncap * elem);
        if (na == NULL)
            return false;
        *array = na;
        *cap = ncap;
    }
    memset((char *)*array + n * elem, 0, elem);
    return true;
}

/* Read key and value events up to the end of the map opened at out. */
static bool parse_map(struct cy_loader *ld, struct cy_node *out, const char *path, int depth)
{
    struct cy_keyset keys = {NULL, 0, 0};
    size_t cap = 0, first;
    bool ok = false;

    out->kind = CY_MAP;
    for (;;) {
        yaml_event_t kev, vev;
        char child[512];

        if (!next_event(ld, &kev))
            goto out;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (!grow((void **)&out->pairs, out->n, &cap, sizeof(*out->pairs))) {
            yaml_event_delete(&kev);
            cy_fail(ld, event_line(&kev), path, "out of memory");
            goto out;
        }
        struct cy_pair *pair = &out->pairs[out->n++];
        pair->line = event_line(&kev);
        pair->column = (int)kev.start_mark.column + 1;
        bool key_ok = false;
        if (kev.type == YAML_ALIAS_EVENT)
            cy_fail(ld, pair->line, path, "YAML aliases are not supported");
        else if (kev.type != YAML_SCALAR_EVENT)
            cy_fail(ld, pair->line, path, "map keys must be plain strings");
        else if (count_node(ld, pair->line, path) && check_length(ld, &kev, pair->line, path)) {
            pair->key = strdup((const char *)kev.data.scalar.value);
            key_ok = pair->key != NULL;
            if (!key_ok)
                cy_fail(ld, pair->line, path, "out of memory");
        }
        yaml_event_delete(&kev);
        if (!key_ok)
            goto out;
        if (path[0] != '\0')
            snprintf(child, sizeof(child), "%s.%s", path, pair->key);
        else
            snprintf(child, sizeof(child), "%s", pair->key);
        int added = keyset_add(&keys, out->pairs, out->n - 1, &first);
        if (added < 0) {
            cy_fail(ld, pair->line, child, "out of memory");
            goto out;
        }
        if (added == 0) {
            cy_fail(ld, pair->line, child, "duplicate key (first at line %d)",
                    out->pairs[first].line);
            goto out;
        }
        if (!next_event(ld, &vev) || !parse_node(ld, &vev, &pair->value, child, depth + 1))
            goto out;
    }
    ok = true;
out:
    free(keys.slots);
    return ok;
}

/* Read item events up to the end of the sequence opened at out. */
static bool parse_seq(struct cy_loader *ld, struct cy_node *out, const char *path, int depth)
{
    size_t cap = 0;

    out->kind = CY_SEQ;
    for (;;) {
        yaml_event_t iev;
        char child[512];

        if (!next_event(ld, &iev))
            return false;
        if (iev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&iev);
            return true;
        }
        if (!grow((void **)&out->items, out->n, &cap, sizeof(*out->items))) {
            cy_fail(ld, event_line(&iev), path, "out of memory");
            yaml_event_delete(&iev);
            return false;
        }
        snprintf(child, sizeof(child), "%s[%zu]", path, out->n);
        struct cy_node *item = &out->items[out->n++];
        if (!parse_node(ld, &iev, item, child, depth + 1))
            return false;
    }
}

/*
 * Build out from the node that starts with event ev (taken over and deleted
 * here) and the events after it. Every limit is checked as the events arrive,
 * so that a hostile file is refused after reading at most a little past the
 * limit it breaks, not after libyaml has built all of it.
 */
static bool parse_node(struct cy_loader *ld, yaml_event_t *ev, struct cy_node *out,
                       const char *path, int depth)
{
    bool ok = false;

    out->line = event_line(ev);
    out->column = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT) {
        cy_fail(ld, out->line, path, "YAML aliases are not supported");
    } else if (depth > CY_MAX_DEPTH) {
        cy_fail(ld, out->line, path, "nesting deeper than %d levels", CY_MAX_DEPTH);
    } else if (count_node(ld, out->line, path)) {
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
            ok = parse_scalar(ld, ev, out, path);
            break;
        case YAML_MAPPING_START_EVENT:
            ok = parse_map(ld, out, path, depth);
            break;
        case YAML_SEQUENCE_START_EVENT:
            ok = parse_seq(ld, out, path, depth);
            break;
        default:
            cy_fail(ld, out->line, path, "unsupported YAML node");
            break;
        }
    }
    yaml_event_delete(ev);
    return ok;
}

/* Everything after the root's events: the end of the document and of the
 * stream. A second document would be silently ignored: refuse it instead. */
static bool parse_tail(struct cy_loader *ld)
{
    yaml_event_t ev;
    bool ok = false;

    if (!next_event(ld, &ev))
        return false;
    yaml_event_delete(&ev); /* DOCUMENT-END */
    if (!next_event(ld, &ev))
        return false;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        if (!next_event(ld, &ev))
            return false;
        snprintf(ld->err, ld->errlen, "%s:%d: only one YAML document is allowed", ld->name,
                 event_line(&ev));
    } else {
        ok = true;
    }
    yaml_event_delete(&ev);
    return ok;
}

/* Shared tail of both loaders: parser input already set. */
static struct cy_node *load(const char *name, yaml_parser_t *parser, char *err, size_t errlen)
{
    struct cy_loader ld = {name, parser, 0, err, errlen};
    struct cy_node *root = calloc(1, sizeof(*root));
    yaml_event_t ev;
    bool ok = false;

    if (root == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (!next_event(&ld, &ev))
        goto out;
    yaml_event_delete(&ev); /* STREAM-START */
    if (!next_event(&ld, &ev))
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        /* Empty file: an empty map, so that missing keys are reported as such. */
        yaml_event_delete(&ev);
        root->kind = CY_MAP;
        root->line = 1;
        root->column = 1;
        ok = true;
        goto out;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (!next_event(&ld, &ev))
        goto out;
    if (ev.type != YAML_MAPPING_START_EVENT) {
        snprintf(err, errlen, "%s:%d: the top level must be a map of sections", name,
                 event_line(&ev));
        yaml_event_delete(&ev);
        goto out;
    }
    ok = parse_node(&ld, &ev, root, "", 0) && parse_tail(&ld);
out:
    if (!ok) {
        cy_free(root);
        return NULL;
    }
    return root;
}

static struct cy_node *load_text(const char *name, const char *text, size_t len, char *err,
                                 size_t errlen)
{
    yaml_parser_t parser;
    struct cy_node *root;

    if (len > CY_MAX_FILE_SIZE) {
        snprintf(err, errlen, "%s: config is too large: %zu bytes, the limit is %d", name, len,
                 CY_MAX_FILE_SIZE);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    root = load(name, &parser, err, errlen);
    yaml_parser_delete(&parser);
    return root;
}

static const char *file_type_name(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "a special file";
}

/*
 * Read all of path into a malloc'd buffer (NUL-terminated, length in *len).
 * Only a regular file of at most CY_MAX_FILE_SIZE bytes is read: both are
 * checked on the open descriptor before reading, and the size again while
 * reading in case the file grows meanwhile.
 */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before we can
     * refuse it. It changes nothing for a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    size_t n = 0;

    if (fd < 0) {
        snprintf(err, errlen, "%s: could not open file: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: could not stat file: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot read config: it is %s, not a regular file", path,
                 file_type_name(st.st_mode));
        goto fail;
    }
    if (st.st_size > CY_MAX_FILE_SIZE) {
        snprintf(err, errlen, "%s: config file is too large: %lld bytes, the limit is %d", path,
                 (long long)st.st_size, CY_MAX_FILE_SIZE);
        goto fail;
    }
    buf = malloc(CY_MAX_FILE_SIZE + 2);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, CY_MAX_FILE_SIZE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: could not read file: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CY_MAX_FILE_SIZE) {
            snprintf(err, errlen, "%s: config file is too large: more than %d bytes", path,
                     CY_MAX_FILE_SIZE);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

struct cy_node *cy_load_file(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = read_file(path, &len, err, errlen);
    struct cy_node *root;

    if (text == NULL)
        return NULL;
    root = load_text(path, text, len, err, errlen);
    free(text);
    return root;
}

struct cy_node *cy_load_string(const char *name, const char *text, char *err, size_t errlen)
{
    return load_text(name, text, strlen(text), err, errlen);
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
