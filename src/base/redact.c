/*
 * redact: the set of secrets, matching by value, the process's set. The
 * pattern rules and the DSN parser are in redact_rules.c. See redact.h.
 */
#include "base/redact.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/hex.h"
#include "base/redact_internal.h"
#include "config/config.h"

/* Longer secrets are not matched by value: matching recurses once per byte,
 * and nothing we hold (a PEM key is ~3 KB) is that long. */
#define REDACT_MAX_SECRET 16384

struct redact {
    char **secrets; /* owned, longest first: a URL is masked whole, not by its token */
    size_t n;
    size_t cap;
    uint8_t first[32]; /* bitmap of the secrets' first bytes: a cheap pre-check */
};

struct redact *redact_new(void)
{
    return calloc(1, sizeof(struct redact));
}

void redact_free(struct redact *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        /* The heap is not the log, but a core dump is. */
        memset(r->secrets[i], 0, strlen(r->secrets[i]));
        free(r->secrets[i]);
    }
    free(r->secrets);
    free(r);
}

static bool has_first(const struct redact *r, unsigned char c)
{
    return (r->first[c >> 3] & (1u << (c & 7))) != 0;
}

bool redact_add_secret(struct redact *r, const char *secret)
{
    size_t len = secret != NULL ? strlen(secret) : 0;
    if (len < REDACT_MIN_SECRET || len > REDACT_MAX_SECRET)
        return true;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->secrets[i], secret) == 0)
            return true;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **s = realloc(r->secrets, cap * sizeof(*s));
        if (s == NULL)
            return false;
        r->secrets = s;
        r->cap = cap;
    }
    char *copy = strdup(secret);
    if (copy == NULL)
        return false;
    size_t at = 0;
    while (at < r->n && strlen(r->secrets[at]) >= len)
        at++;
    memmove(r->secrets + at + 1, r->secrets + at, (r->n - at) * sizeof(*r->secrets));
    r->secrets[at] = copy;
    r->n++;
    unsigned char c = (unsigned char)secret[0];
    r->first[c >> 3] |= (uint8_t)(1u << (c & 7));
    return true;
}

/* b64 as it is, without its '=' padding, and in the base64url alphabet. */
static bool add_base64_forms(struct redact *r, char *b64)
{
    if (!redact_add_secret(r, b64))
        return false;
    size_t n = strlen(b64);
    while (n > 0 && b64[n - 1] == '=')
        b64[--n] = '\0';
    if (!redact_add_secret(r, b64))
        return false;
    for (char *p = b64; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return redact_add_secret(r, b64);
}

bool redact_add_gateway_key(struct redact *r, const char *key)
{
    size_t len = key != NULL ? strlen(key) : 0;
    if (len < REDACT_MIN_SECRET || len > REDACT_MAX_SECRET / 2)
        return true;
    if (!redact_add_secret(r, key))
        return false;
    /* Basic auth is base64("key:") for both gateways; base64 of the bare key
     * shares all but its last characters and is what a gateway that shows
     * only the user part would print. */
    char *userpass = malloc(len + 2);
    char *b64 = malloc(BASE64_ENCODED_SIZE(len + 1));
    bool ok = userpass != NULL && b64 != NULL;
    if (ok) {
        memcpy(userpass, key, len);
        userpass[len] = ':';
        userpass[len + 1] = '\0';
        base64_encode((const unsigned char *)userpass, len + 1, b64);
        ok = add_base64_forms(r, b64);
        memset(b64, 0, strlen(b64));
        base64_encode((const unsigned char *)key, len, b64);
        ok = ok && add_base64_forms(r, b64);
        memset(b64, 0, strlen(b64));
        memset(userpass, 0, len + 1);
    }
    free(userpass);
    free(b64);
    return ok;
}

bool redact_add_basic_auth(struct redact *r, const char *userpass)
{
    size_t len = userpass != NULL ? strlen(userpass) : 0;
    if (len < REDACT_MIN_SECRET || len > REDACT_MAX_SECRET / 2)
        return true;
    const char *password = strchr(userpass, ':');
    if (!redact_add_secret(r, userpass) ||
        (password != NULL && !redact_add_secret(r, password + 1)))
        return false;
    char *b64 = malloc(BASE64_ENCODED_SIZE(len));
    if (b64 == NULL)
        return false;
    base64_encode((const unsigned char *)userpass, len, b64);
    bool ok = add_base64_forms(r, b64);
    memset(b64, 0, strlen(b64));
    free(b64);
    return ok;
}

static bool has_digit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            return true;
    }
    return false;
}

static bool add_n(struct redact *r, const char *s, size_t n)
{
    char *copy = strndup(s, n);
    if (copy == NULL)
        return false;
    bool ok = redact_add_secret(r, copy);
    memset(copy, 0, n);
    free(copy);
    return ok;
}

bool redact_add_webhook_url(struct redact *r, const char *url)
{
    if (url == NULL)
        return true;
    if (!redact_add_secret(r, url))
        return false;
    const char *host = strstr(url, "://");
    const char *path = strchr(host != NULL ? host + 3 : url, '/');
    if (path == NULL)
        return true;
    /* The path is the secret of a webhook (the host is everyone's): masked
     * whole, and by its token, which an error may quote alone. Segments
     * like "services" stay readable. */
    if (strlen(path) >= 8 && !redact_add_secret(r, path))
        return false;
    const char *end = path + strcspn(path, "?#");
    const char *seg = path;
    while (seg < end) {
        seg++;
        size_t n = strcspn(seg, "/?#");
        if (seg + n > end)
            n = (size_t)(end - seg);
        bool last = seg + n >= end;
        if (n >= 8 && (last || has_digit(seg, n)) && !add_n(r, seg, n))
            return false;
        seg += n;
    }
    if (*end == '?' && !redact_add_secret(r, end + 1))
        return false;
    return true;
}

static bool add_found(const char *secret, void *arg)
{
    return redact_add_secret(arg, secret);
}

bool redact_add_dsn(struct redact *r, const char *dsn)
{
    return dsn == NULL || redact_dsn_passwords(dsn, add_found, r);
}

/* kafka: keys whose values are secrets. */
static bool kafka_key_is_secret(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strcmp(key, "ssl.key.pem") == 0 || strcmp(key, "sasl.oauthbearer.config") == 0;
}

bool redact_add_config(struct redact *r, const struct config *cfg)
{
    bool ok = redact_add_dsn(r, cfg->database.dsn) && redact_add_secret(r, getenv("PGPASSWORD"));
    for (size_t i = 0; ok && i < cfg->ngateways; i++)
        ok = redact_add_gateway_key(r, cfg->gateways[i].secret_key);
    for (size_t i = 0; ok && i < cfg->ngateways; i++) {
        const struct config_gateway *gw = &cfg->gateways[i];
        for (size_t k = 0; ok && k < gw->n_webhook_hmac_keys; k++)
            ok = redact_add_secret(r, gw->webhook_hmac_keys[k]);
        ok = ok && redact_add_basic_auth(r, gw->webhook_basic_auth);
    }
    const struct config_slack *s = &cfg->alerts.slack;
    ok = ok && redact_add_webhook_url(r, s->webhook_url);
    for (size_t i = 0; ok && i < s->nroutes; i++)
        ok = redact_add_webhook_url(r, s->routes[i].webhook_url);
    for (size_t i = 0; ok && i < cfg->kafka.nprops; i++) {
        if (kafka_key_is_secret(cfg->kafka.props[i].key))
            ok = redact_add_secret(r, cfg->kafka.props[i].value);
    }
    return ok;
}

/* ---- matching ---- */

void redact_sb_add(struct redact_sb *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 128;
        while (sb->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(sb->p, cap);
        if (p == NULL) {
            sb->oom = true;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

size_t redact_escape_at(const char *t, unsigned char *c)
{
    if (t[0] == '%' && hex_value(t[1]) >= 0 && hex_value(t[2]) >= 0) {
        *c = (unsigned char)(hex_value(t[1]) * 16 + hex_value(t[2]));
        return 3;
    }
    if (t[0] != '\\' || t[1] == '\0')
        return 0;
    if (t[1] == 'u' && t[2] == '0' && t[3] == '0' && hex_value(t[4]) >= 0 && hex_value(t[5]) >= 0) {
        *c = (unsigned char)(hex_value(t[4]) * 16 + hex_value(t[5]));
        return 6;
    }
    *c = (unsigned char)t[1];
    return 2;
}

/* A text that ends in the first part of a secret was cut (a gateway message
 * kept to 256 bytes): that part is masked too, when it is at least this
 * long and at least half the secret. */
#define REDACT_MIN_CUT 8

static bool cut_secret(const char *s0, const char *s)
{
    size_t seen = (size_t)(s - s0);
    return seen >= REDACT_MIN_CUT && seen * 2 >= strlen(s0);
}

/* Bytes of t that spell s (s0 is where the secret starts), each byte of s
 * written as itself or escaped; -1 if t does not start with s. Both ways are
 * tried at an escape, so a secret that holds '%' or '\' itself is found
 * too. */
static long match_len(const char *t, const char *s, const char *s0)
{
    long used = 0;
    while (*s != '\0') {
        if (*t == '\0')
            return cut_secret(s0, s) ? used : -1;
        if (*t != '%' && *t != '\\') {
            if (*t != *s)
                return -1;
            t++, s++, used++;
            continue;
        }
        unsigned char c;
        size_t n = redact_escape_at(t, &c);
        if (*t == *s) {
            long rest = match_len(t + 1, s + 1, s0);
            if (rest >= 0)
                return used + 1 + rest;
        }
        if (n == 0 || c != (unsigned char)*s)
            return -1;
        t += n, s++, used += (long)n;
    }
    return used;
}

/* Length of the secret of r that text + i starts with (the longest secret
 * first), 0 if none. */
static size_t secret_at(const struct redact *r, const char *t)
{
    unsigned char c = (unsigned char)*t;
    if (r == NULL || (c != '%' && c != '\\' && !has_first(r, c)))
        return 0;
    for (size_t k = 0; k < r->n; k++) {
        long n = match_len(t, r->secrets[k], r->secrets[k]);
        if (n > 0)
            return (size_t)n;
    }
    return 0;
}

/* Letters, digits and UTF-8 bytes: inside a word no rule can start. */
static bool word_byte(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u >= 0x80;
}

char *redact_text(const struct redact *r, const char *text)
{
    struct redact_sb out = {0};
    size_t i = 0;

    text = text != NULL ? text : "";
    redact_sb_add(&out, "", 0);
    while (text[i] != '\0' && !out.oom) {
        size_t n = secret_at(r, text + i);
        if (n > 0) {
            redact_sb_add(&out, REDACT_MASK, strlen(REDACT_MASK));
            i += n;
            continue;
        }
        n = redact_rule_at(text, i, &out);
        if (n > 0) {
            i += n;
            continue;
        }
        /* Copy the rest of a word at once: rules start only where a word
         * does, secrets anywhere (checked byte by byte). */
        size_t run = 1;
        while (run < 64 && word_byte(text[i + run - 1]) && word_byte(text[i + run]) &&
               secret_at(r, text + i + run) == 0)
            run++;
        redact_sb_add(&out, text + i, run);
        i += run;
    }
    if (out.oom) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

size_t redact_buf(const struct redact *r, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return 0;
    char *clean = redact_text(r, buf);
    if (clean == NULL) {
        snprintf(buf, size, "%s", REDACT_MASK);
        return strlen(buf);
    }
    size_t n = utf8_cut(clean, strlen(clean), size - 1);
    memcpy(buf, clean, n);
    buf[n] = '\0';
    free(clean);
    return n;
}

void redact_json(const struct redact *r, json_t *value)
{
    size_t i;
    const char *key;
    json_t *v;

    if (json_is_string(value)) {
        char *clean = redact_text(r, json_string_value(value));
        if (clean == NULL || strcmp(clean, json_string_value(value)) != 0)
            json_string_set(value, clean != NULL ? clean : REDACT_MASK);
        free(clean);
    } else if (json_is_object(value)) {
        json_object_foreach(value, key, v) redact_json(r, v);
    } else if (json_is_array(value)) {
        json_array_foreach(value, i, v) redact_json(r, v);
    }
}

void redact_dsn(const char *dsn, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    struct redact *r = redact_new();
    char *clean = NULL;
    if (r != NULL && redact_add_dsn(r, dsn))
        clean = redact_text(r, dsn);
    redact_free(r);
    if (clean == NULL) {
        snprintf(out, outlen, "%s", dsn != NULL && dsn[0] != '\0' ? REDACT_MASK : "");
        return;
    }
    size_t n = utf8_cut(clean, strlen(clean), outlen - 1);
    memcpy(out, clean, n);
    out[n] = '\0';
    free(clean);
}

/* ---- the process's set ---- */

/* The logger has no context to carry a set through (librdkafka calls it from
 * its own threads), so the process's set is the one piece of shared state
 * here: installed at start-up, read under the lock by every log line. */
static pthread_rwlock_t process_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct redact *process_set;

static void install(struct redact *r)
{
    pthread_rwlock_wrlock(&process_lock);
    struct redact *old = process_set;
    process_set = r;
    pthread_rwlock_unlock(&process_lock);
    redact_free(old);
}

bool redact_process_install(const struct config *cfg)
{
    struct redact *r = redact_new();
    if (r == NULL || !redact_add_config(r, cfg)) {
        redact_free(r);
        return false;
    }
    install(r);
    return true;
}

void redact_process_clear(void)
{
    install(NULL);
}

char *redact_process_text(const char *text)
{
    pthread_rwlock_rdlock(&process_lock);
    char *clean = redact_text(process_set, text);
    pthread_rwlock_unlock(&process_lock);
    return clean;
}

size_t redact_process_buf(char *buf, size_t size)
{
    pthread_rwlock_rdlock(&process_lock);
    size_t n = redact_buf(process_set, buf, size);
    pthread_rwlock_unlock(&process_lock);
    return n;
}

void redact_process_json(json_t *value)
{
    pthread_rwlock_rdlock(&process_lock);
    redact_json(process_set, value);
    pthread_rwlock_unlock(&process_lock);
}
