/*
 * http_fixture: a blocking HTTP request. See http_fixture.h.
 */
#include "http_fixture.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    return fwrite(data, size, n, (FILE *)arg);
}

long http_fixture_call(CURL *curl, const char *method, const char *url, const char *json,
                       long timeout_ms, char **body, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cr_assert_not_null(mem, "out of memory");
    CURL *c = curl != NULL ? curl : curl_easy_init();
    cr_assert_not_null(c, "could not create a curl handle");
    if (curl != NULL)
        curl_easy_reset(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (json != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else if (err != NULL)
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    if (curl == NULL)
        curl_easy_cleanup(c);
    fclose(mem);
    if (rc != CURLE_OK) {
        free(buf);
        buf = strdup("");
        cr_assert_not_null(buf, "out of memory");
    }
    if (body != NULL)
        *body = buf;
    else
        free(buf);
    return status;
}

char *http_fixture_get(const char *url)
{
    char *body = NULL;
    long status = http_fixture_call(NULL, "GET", url, NULL, 10000, &body, NULL, 0);
    if (status < 200 || status >= 300) {
        free(body);
        return NULL;
    }
    return body;
}
