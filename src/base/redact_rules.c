/*
 * redact_rules: the pattern rules of redact.h (net 2) and the DSN parser
 * that finds a database password to mask by value (net 1).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/redact_internal.h"

#define MASK_LEN (sizeof(REDACT_MASK) - 1)

/* A credential after "Basic " or "Bearer " is masked from this length on:
 * shorter words are prose ("Basic authentication failed"). */
#define CREDENTIAL_MIN 16

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bytes of a keyword or an identifier (sslpassword, pass%77ord, a.b-c). */
static bool ident_byte(char c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '%';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Keywords whose value is a secret, matched at the end of an identifier
 * (lower case, percent-decoded). */
static const char *const secret_keywords[] = {
    "password", "passwd", "secret", "secretkey", "secret_key", "apikey", "api_key", "token",
};

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The identifier text[i..end) percent-decoded and lower-cased into buf;
 * false if it does not fit. */
static bool decode_ident(const char *text, size_t i, size_t end, char *buf, size_t buflen,
                         size_t *outlen)
{
    size_t o = 0;
    while (i < end) {
        unsigned char c;
        size_t n = text[i] == '%' ? redact_escape_at(text + i, &c) : 0;
        if (n == 0) {
            c = (unsigned char)text[i];
            n = 1;
        }
        if (o + 1 >= buflen)
            return false;
        buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        i += n;
    }
    buf[o] = '\0';
    *outlen = o;
    return true;
}

/* End of a quoted value starting at text[v] (the quote), past the closing
 * quote; backslash escapes the next byte (libpq and JSON alike). */
static size_t quoted_end(const char *text, size_t v)
{
    char q = text[v];
    size_t k = v + 1;
    while (text[k] != '\0' && text[k] != q) {
        if (text[k] == '\\' && text[k + 1] != '\0')
            k++;
        k++;
    }
    return text[k] == q ? k + 1 : k;
}

/* keyword=value, keyword: value (Authorization), "keyword": "value". */
static size_t keyword_rule(const char *text, size_t i, struct redact_sb *out)
{
    char kw[64];
    size_t end = i, kwlen;
    while (ident_byte(text[end]))
        end++;
    /* Only the end of a long identifier matters (a.b.c.password=). */
    size_t from = end - i > 48 ? end - 48 : i;
    if (end == i || !decode_ident(text, from, end, kw, sizeof(kw), &kwlen))
        return 0;
    bool header = ends_with(kw, kwlen, "authorization");
    bool secret = header;
    for (size_t k = 0; !secret && k < sizeof(secret_keywords) / sizeof(*secret_keywords); k++)
        secret = ends_with(kw, kwlen, secret_keywords[k]);
    if (!secret)
        return 0;

    size_t k = end;
    bool json_key = i > 0 && text[i - 1] == '"' && text[k] == '"';
    if (json_key)
        k++;
    while (is_blank(text[k]))
        k++;
    char sep = text[k];
    /* "key: reason" is how config errors name a key; only a header or a JSON
     * member has its value after a colon. */
    if (sep != '=' && !(sep == ':' && (header || json_key)))
        return 0;
    if (sep == ':' && text[k + 1] == '/' && text[k + 2] == '/')
        return 0;
    k++;
    while (is_blank(text[k]))
        k++;
    size_t v = k, vend;
    bool keep_quotes = false;
    if (text[v] == '\'') {
        vend = quoted_end(text, v);
    } else if (text[v] == '"') {
        vend = quoted_end(text, v);
        keep_quotes = true;
    } else if (sep == ':') {
        vend = v + strcspn(text + v, "\r\n");
    } else if (i > 0 && (text[i - 1] == '?' || text[i - 1] == '&')) {
        vend = v;
        while (text[vend] != '\0' && text[vend] != '&' && text[vend] != '#' &&
               !is_space(text[vend]))
            vend++;
    } else {
        /* libpq: a bare value runs to white space; backslash escapes. */
        vend = v;
        while (text[vend] != '\0' && !is_space(text[vend])) {
            if (text[vend] == '\\' && text[vend + 1] != '\0')
                vend++;
            vend++;
        }
    }
    if (vend == v)
        return 0;
    redact_sb_add(out, text + i, v - i);
    if (keep_quotes)
        redact_sb_add(out, "\"", 1);
    redact_sb_add(out, REDACT_MASK, MASK_LEN);
    if (keep_quotes && text[vend - 1] == '"' && vend - 1 > v)
        redact_sb_add(out, "\"", 1);
    return vend - i;
}

/* Prefixes of gateway and Slack credentials. */
static const char *const key_prefixes[] = {
    "sk_live_",  "sk_test_",  "rk_live_", "rk_test_", "test_sk_", "live_sk_",
    "test_gsk_", "live_gsk_", "whsec_",   "xoxb-",    "xoxp-",
};

static size_t key_prefix_rule(const char *text, size_t i, struct redact_sb *out)
{
    for (size_t k = 0; k < sizeof(key_prefixes) / sizeof(*key_prefixes); k++) {
        size_t n = strlen(key_prefixes[k]);
        if (strncmp(text + i, key_prefixes[k], n) != 0)
            continue;
        while (is_alnum(text[i + n]) || text[i + n] == '_' || text[i + n] == '-')
            n++;
        redact_sb_add(out, REDACT_MASK, MASK_LEN);
        return n;
    }
    return 0;
}

static bool token68_byte(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("-._~+/=", c) != NULL);
}

/* "Basic <credential>", "Bearer <credential>" (RFC 7235 token68). */
static size_t scheme_rule(const char *text, size_t i, struct redact_sb *out)
{
    size_t n;
    if (strncasecmp(text + i, "basic", 5) == 0)
        n = 5;
    else if (strncasecmp(text + i, "bearer", 6) == 0)
        n = 6;
    else
        return 0;
    size_t v = i + n;
    if (!is_blank(text[v]))
        return 0;
    while (is_blank(text[v]))
        v++;
    size_t e = v;
    while (token68_byte(text[e]))
        e++;
    if (e - v < CREDENTIAL_MIN)
        return 0;
    redact_sb_add(out, text + i, v - i);
    redact_sb_add(out, REDACT_MASK, MASK_LEN);
    return e - i;
}

/* Where a URL's authority or path ends in running text. */
static bool url_stop(char c)
{
    return c == '\0' || is_space(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`';
}

/* hooks.slack.com/<path>: the path is the webhook's secret. */
static size_t webhook_rule(const char *text, size_t i, struct redact_sb *out)
{
    static const char host[] = "hooks.slack.com/";
    size_t n = sizeof(host) - 1;
    if (strncasecmp(text + i, host, n) != 0)
        return 0;
    size_t e = i + n;
    while (!url_stop(text[e]))
        e++;
    redact_sb_add(out, text + i, n);
    redact_sb_add(out, REDACT_MASK, MASK_LEN);
    return e - i;
}

/* scheme://user:password@host: the password, up to the authority's last
 * '@' (libpq stops at the first, but a stray '@' in a password must not
 * leave its tail readable). */
static size_t userinfo_rule(const char *text, size_t i, struct redact_sb *out)
{
    if (strncmp(text + i, "://", 3) != 0 || i == 0 ||
        !(is_alnum(text[i - 1]) || text[i - 1] == '+' || text[i - 1] == '.' || text[i - 1] == '-'))
        return 0;
    size_t a = i + 3, e = a, at = 0, colon = 0;
    bool found_at = false;
    while (!url_stop(text[e]) && text[e] != '/' && text[e] != '?' && text[e] != '#') {
        if (text[e] == '@') {
            at = e;
            found_at = true;
        }
        e++;
    }
    if (!found_at)
        return 0;
    for (size_t k = a; k < at; k++) {
        if (text[k] == ':') {
            colon = k;
            break;
        }
    }
    if (colon == 0)
        return 0;
    redact_sb_add(out, text + i, colon + 1 - i);
    redact_sb_add(out, REDACT_MASK, MASK_LEN);
    return at - i;
}

size_t redact_rule_at(const char *text, size_t i, struct redact_sb *out)
{
    if (text[i] == ':')
        return userinfo_rule(text, i, out);
    if (i > 0 && ident_byte(text[i - 1]))
        return 0;
    size_t n = keyword_rule(text, i, out);
    if (n == 0)
        n = key_prefix_rule(text, i, out);
    if (n == 0)
        n = scheme_rule(text, i, out);
    if (n == 0)
        n = webhook_rule(text, i, out);
    return n;
}

/* ---- DSN passwords ---- */

static bool is_password_key(const char *key)
{
    return strcmp(key, "password") == 0 || strcmp(key, "sslpassword") == 0;
}

/* s[0..n) percent-decoded, as a new string (NULL when out of memory). */
static char *percent_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t k = 0; k < n;) {
        unsigned char c;
        size_t used = s[k] == '%' ? redact_escape_at(s + k, &c) : 0;
        if (used == 3) {
            out[o++] = (char)c;
            k += 3;
        } else {
            out[o++] = s[k++];
        }
    }
    out[o] = '\0';
    return out;
}

static bool found_decoded(const char *s, size_t n, redact_found_fn found, void *arg)
{
    char *v = percent_decode(s, n);
    if (v == NULL)
        return false;
    bool ok = found(v, arg);
    memset(v, 0, strlen(v));
    free(v);
    return ok;
}

/* postgres[ql]://[user[:password]@]host.../db?key=value&...: the password
 * of the userinfo (up to the first '@' before any '/', as libpq reads it)
 * and password/sslpassword query parameters, keys and values decoded. */
static bool uri_passwords(const char *auth, redact_found_fn found, void *arg)
{
    size_t at = strcspn(auth, "@/?");
    if (auth[at] == '@') {
        const char *colon = memchr(auth, ':', at);
        if (colon != NULL && !found_decoded(colon + 1, (size_t)(auth + at - colon - 1), found, arg))
            return false;
    }
    const char *q = strchr(auth, '?');
    while (q != NULL) {
        q++;
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        if (eq != NULL) {
            char *key = percent_decode(q, (size_t)(eq - q));
            if (key == NULL)
                return false;
            bool want = is_password_key(key);
            free(key);
            if (want && !found_decoded(eq + 1, (size_t)(q + n - eq - 1), found, arg))
                return false;
        }
        q = q[n] == '&' ? q + n : NULL;
    }
    return true;
}

/* One value of a keyword=value conninfo at *p, unescaped into a new string
 * (libpq's conninfo_parse: 'quoted' with backslash escapes, or bare up to
 * white space with backslash escapes); *p is moved past it. */
static char *conninfo_value(const char **p)
{
    const char *s = *p;
    char *v = malloc(strlen(s) + 1);
    size_t o = 0;
    if (v == NULL)
        return NULL;
    if (*s == '\'') {
        for (s++; *s != '\0' && *s != '\''; s++) {
            if (*s == '\\' && s[1] != '\0')
                s++;
            v[o++] = *s;
        }
        if (*s == '\'')
            s++;
    } else {
        for (; *s != '\0' && !is_space(*s); s++) {
            if (*s == '\\' && s[1] != '\0')
                s++;
            v[o++] = *s;
        }
    }
    v[o] = '\0';
    *p = s;
    return v;
}

bool redact_dsn_passwords(const char *dsn, redact_found_fn found, void *arg)
{
    if (strncmp(dsn, "postgresql://", 13) == 0)
        return uri_passwords(dsn + 13, found, arg);
    if (strncmp(dsn, "postgres://", 11) == 0)
        return uri_passwords(dsn + 11, found, arg);
    const char *p = dsn;
    bool ok = true;
    while (ok && *p != '\0') {
        if (is_space(*p)) {
            p++;
            continue;
        }
        /* The keyword runs to '=' or white space; a quoted value may be
         * followed by the next keyword at once (dbname='x'password=y). */
        const char *key = p;
        while (*p != '\0' && *p != '=' && !is_space(*p))
            p++;
        size_t klen = (size_t)(p - key);
        while (is_space(*p))
            p++;
        if (*p != '=')
            return true; /* libpq would refuse it; nothing more to read */
        p++;
        while (is_space(*p))
            p++;
        char *value = conninfo_value(&p);
        if (value == NULL)
            return false;
        if ((klen == 8 && strncmp(key, "password", 8) == 0) ||
            (klen == 11 && strncmp(key, "sslpassword", 11) == 0))
            ok = found(value, arg);
        else if (klen == 6 && strncmp(key, "dbname", 6) == 0 &&
                 (strchr(value, '=') != NULL || strncmp(value, "postgresql://", 13) == 0 ||
                  strncmp(value, "postgres://", 11) == 0))
            ok = redact_dsn_passwords(value, found, arg);
        memset(value, 0, strlen(value));
        free(value);
    }
    return ok;
}
