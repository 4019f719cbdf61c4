/*
 * http_fixture: one blocking HTTP request from a test to a process of its
 * own (gateway-sim's /_sim API, slack-sink's /_sink API, a /metrics page).
 */
#ifndef CR_TEST_HTTP_FIXTURE_H
#define CR_TEST_HTTP_FIXTURE_H

#include <stddef.h>

#include <curl/curl.h>

/* method url, with json as the body (Content-Type: application/json) when
 * it is not NULL and an empty body for a POST or PUT without one, within
 * timeout_ms. Returns the HTTP status, 0 when no answer came (then err, when
 * not NULL, says why). *body gets the answer, "" when none came (malloc'd,
 * caller frees), unless body is NULL. curl: an easy handle to reuse (it is
 * reset first: its connection stays open), or NULL for one of its own. */
long http_fixture_call(CURL *curl, const char *method, const char *url, const char *json,
                       long timeout_ms, char **body, char *err, size_t errlen);

/* GET url (10 s at most): the body of a 2xx answer (caller frees), or NULL
 * for any other answer or none. */
char *http_fixture_get(const char *url);

#endif
