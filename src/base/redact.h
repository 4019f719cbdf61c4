/*
 * redact: the one place that keeps secrets out of logs, errors, events,
 * alerts, operator output and metrics.
 *
 * Two nets, applied together to any text:
 *
 * 1. The secrets of the loaded config, by value (struct redact): gateway
 *    secret keys with the Authorization values made from them (Bearer is the
 *    key itself; Basic is base64 of "key:", also unpadded and base64url),
 *    Slack webhook URLs with their path and path token, the database
 *    password and sslpassword (from the DSN, keyword or URI form, and
 *    PGPASSWORD), and Kafka passwords and secrets of the kafka: map. A secret
 *    is found raw and also written with escapes: percent-encoding
 *    ("p%40ss" for "p@ss", either hex case), JSON or libpq backslashes
 *    ("\/", "\u0040", "\'"), and at the very end of a text cut short (at
 *    least 8 bytes and half the secret). Secrets shorter than
 *    REDACT_MIN_SECRET bytes are left to the second net: masking every "ab"
 *    in every line would make logs unreadable.
 *
 * 2. Pattern rules for secrets the config does not know (a DSN typed on the
 *    command line, a key a gateway echoes that is not ours):
 *    - keyword=value where the keyword ends in password, passwd, secret,
 *      secretkey, secret_key, apikey, api_key or token (so sslpassword=,
 *      client_secret=, access_token=), keyword possibly percent-encoded
 *      (?pass%77ord=); the value is a libpq 'quoted' value (backslash
 *      escapes, and a next keyword may follow the closing quote at once, as
 *      in dbname='x'password=y), a "quoted" one, a URI query value (after ?
 *      or &: up to & or #) or a bare word (up to white space);
 *    - "Authorization:" / "Proxy-Authorization:" (also "authorization"
 *      quoted as a JSON key): the value to the end of the line;
 *    - "Basic " / "Bearer " followed by a credential of 16 or more
 *      characters;
 *    - the password of URI userinfo (scheme://user:PASSWORD@host);
 *    - Slack webhook URLs (hooks.slack.com/...: the whole path);
 *    - gateway key formats (sk_live_, sk_test_, rk_live_, rk_test_,
 *      test_sk_, live_sk_, test_gsk_, live_gsk_, whsec_, xoxb-, xoxp-).
 *
 * What is found becomes REDACT_MASK ("***"); keywords, user names and hosts
 * stay so that a message can still be read. The rules err on the side of
 * masking: a word that merely looks like a secret is masked too.
 *
 * Where it is applied (the boundaries): log.c masks every log line (message
 * and fields) with the process's set; dlq.c the dlq.error header;
 * request_events.c an Outcome's lastError; slack.c every alert and digest;
 * gateway.c a gateway's answer before anyone sees it; http.c the debug trace
 * of a request (URL and headers); metrics.c label values; cancelctl what it
 * prints; db.c the DSN it shows.
 *
 * The process's set: service_start() and cancelctl install the set of the
 * loaded config (redact_process_install); the redact_process_* functions
 * use it, or only the pattern rules before one is installed. Thread-safe:
 * librdkafka logs from its own threads.
 */
#ifndef CR_REDACT_H
#define CR_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct config;

/* What a secret is replaced by. */
#define REDACT_MASK "***"

/* Secrets shorter than this are not matched by value (the patterns still
 * apply). */
#define REDACT_MIN_SECRET 4

/* A set of secrets to mask by value. */
struct redact;

/* An empty set (pattern rules only). NULL when out of memory. */
struct redact *redact_new(void) __attribute__((warn_unused_result));

/* redact_free(NULL) is a no-op. The secrets are wiped before being freed. */
void redact_free(struct redact *r);

/* Add one secret (copied). NULL, empty or shorter than REDACT_MIN_SECRET is
 * accepted and ignored. False only when out of memory. */
bool redact_add_secret(struct redact *r, const char *secret) __attribute__((warn_unused_result));

/* A gateway secret key and its Authorization forms: the key (Bearer),
 * base64 of "key:" and of the key (Basic), padded or not, base64 or
 * base64url. */
bool redact_add_gateway_key(struct redact *r, const char *key) __attribute__((warn_unused_result));

/* HTTP Basic credentials "user:password": the whole, the password and the
 * Authorization form (base64 of the whole, padded or not, base64 or
 * base64url). */
bool redact_add_basic_auth(struct redact *r, const char *userpass)
    __attribute__((warn_unused_result));

/* A webhook URL: the URL, its path (with the query) and its path token (the
 * last segment, and any other of 8 or more characters with a digit). */
bool redact_add_webhook_url(struct redact *r, const char *url) __attribute__((warn_unused_result));

/* The password and sslpassword of a libpq DSN (keyword=value with libpq's
 * quoting, or a postgres:// / postgresql:// URI, percent-decoded), also
 * inside a dbname that is itself a connection string. */
bool redact_add_dsn(struct redact *r, const char *dsn) __attribute__((warn_unused_result));

/* Every secret of cfg: gateway keys, gateway webhook HMAC keys and Basic
 * credentials, Slack webhook URLs (default and
 * routes), the database DSN, kafka: values whose key says password or
 * secret (sasl.password, ssl.key.password, sasl.oauthbearer.client.secret,
 * ...) or ssl.key.pem, and $PGPASSWORD. */
bool redact_add_config(struct redact *r, const struct config *cfg)
    __attribute__((warn_unused_result));

/* text with every secret of r (r may be NULL: patterns only) and every
 * pattern match replaced by REDACT_MASK, as a new string the caller frees.
 * NULL text gives "". NULL only when out of memory. */
char *redact_text(const struct redact *r, const char *text) __attribute__((warn_unused_result));

/* The same in place: buf (size bytes, NUL-terminated) is rewritten, cut on
 * a UTF-8 character boundary if the result does not fit. When out of
 * memory the whole text is replaced by REDACT_MASK: never fail open.
 * Returns strlen(buf). */
size_t redact_buf(const struct redact *r, char *buf, size_t size);

/* Every string inside value (object members, array items, recursively;
 * not object keys) redacted in place. Out of memory: the string becomes
 * REDACT_MASK. */
void redact_json(const struct redact *r, json_t *value);

/* Copy dsn into out (outlen bytes, always NUL-terminated) with its
 * passwords masked, for messages that name the database. */
void redact_dsn(const char *dsn, char *out, size_t outlen);

/* ---- the process's set ---- */

/* Build the set of cfg and make it the process's, replacing (and freeing)
 * any earlier one. False when out of memory: the pattern rules alone then
 * apply. */
bool redact_process_install(const struct config *cfg) __attribute__((warn_unused_result));

/* Drop the process's set (tests; the end of main). */
void redact_process_clear(void);

/* redact_text, redact_buf and redact_json with the process's set. */
char *redact_process_text(const char *text) __attribute__((warn_unused_result));
size_t redact_process_buf(char *buf, size_t size);
void redact_process_json(json_t *value);

#endif
