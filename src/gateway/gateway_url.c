/*
 * gateway_url: the URLs of gateway calls built from event fields. See
 * gateway_internal.h.
 *
 * A paymentKey of "." or ".." used to be escaped by curl_easy_escape (dots
 * are unreserved) and then collapsed by libcurl as a dot-segment: the refund
 * POST, with our credentials, went to {base}/v1/cancel or
 * {base}/v1/payments/cancel. Two independent guards now: the segment is
 * validated and encoded here, and the URL as libcurl will send it is checked
 * against the expected prefix before anything is sent.
 */
#include "gateway/gateway_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *gateway_path_segment(const char *s, char *err, size_t errlen)
{
    char why[96];

    if (!bounds_path_segment_ok(s, why, sizeof(why))) {
        snprintf(err, errlen, "cannot build the gateway URL: the payment key %s", why);
        return NULL;
    }
    /* RFC 3986: everything but the unreserved characters as %XX, so "/",
     * "?", "#", "%" and spaces stay inside the one segment. */
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    char *out = malloc(len * 3 + 1);
    if (out == NULL) {
        snprintf(err, errlen, "could not build the gateway URL: out of memory");
        return NULL;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0x0F];
        }
    }
    *o = '\0';
    return out;
}

/* url as libcurl will send it: parsed (dot-segments removed, as the
 * transfer does) and written back. NULL if libcurl cannot parse it. */
static char *as_sent(const char *url)
{
    CURLU *h = curl_url();
    char *out = NULL, *copy = NULL;
    if (h == NULL)
        return NULL;
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_URL, &out, 0) == CURLUE_OK)
        copy = strdup(out);
    curl_free(out);
    curl_url_cleanup(h);
    return copy;
}

/* Does the path (up to '?' or '#') of rest hold a segment that is, or
 * decodes to, "." or ".."? libcurl collapses the plain ones; a server may
 * decode %2E first (RFC 3986 6.2.2.2 calls them equivalent). */
static bool has_dot_segment(const char *rest)
{
    const char *p = rest;
    while (*p != '\0' && *p != '?' && *p != '#') {
        size_t dots = 0;
        bool other = false;
        while (*p != '\0' && *p != '/' && *p != '?' && *p != '#') {
            if (*p == '.') {
                dots++;
                p++;
            } else if (p[0] == '%' && p[1] == '2' && (p[2] == 'e' || p[2] == 'E')) {
                dots++;
                p += 3;
            } else {
                other = true;
                p++;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            return true;
        if (*p == '/')
            p++;
    }
    return false;
}

bool gateway_url_check(const char *url, const char *base_url, const char *prefix, char *err,
                       size_t errlen)
{
    size_t blen = strlen(base_url), plen = strlen(prefix);
    bool ok = false;

    /* What we wrote, then what libcurl makes of it: the expected prefix
     * normalized the same way, with a character after it so that a prefix
     * ending in "/" keeps its slash. */
    if (strncmp(url, base_url, blen) != 0 || strncmp(url + blen, prefix, plen) != 0) {
        snprintf(err, errlen, "cannot send: the gateway URL does not start with %s%s", base_url,
                 prefix);
        return false;
    }
    if (has_dot_segment(url + blen)) {
        snprintf(err, errlen, "cannot send: the gateway URL has a \".\" or \"..\" segment");
        return false;
    }
    size_t n = blen + plen + 2;
    char *want_raw = malloc(n);
    if (want_raw == NULL) {
        snprintf(err, errlen, "could not check the gateway URL: out of memory");
        return false;
    }
    snprintf(want_raw, n, "%s%sx", base_url, prefix);
    char *want = as_sent(want_raw);
    char *got = as_sent(url);
    free(want_raw);
    if (want == NULL || got == NULL) {
        /* What libcurl cannot parse it cannot send either: the transfer
         * fails as INVALID_URL, the configuration fault it is (a base_url
         * without a scheme, say), with nothing sent. */
        ok = true;
        goto out;
    }
    size_t wlen = strlen(want) - 1; /* without the "x" */
    /* Under the prefix, and nothing after it rewritten on the way. */
    if (strncmp(got, want, wlen) != 0 || strcmp(got + wlen, url + blen + plen) != 0) {
        snprintf(err, errlen, "cannot send: the gateway URL would leave %s%s", base_url, prefix);
        goto out;
    }
    ok = true;
out:
    free(want);
    free(got);
    return ok;
}
