/*
 * http_probe: see http_probe.h.
 */
#include "http_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    return fwrite(data, size, n, arg);
}

char *itest_http_get(const char *url, long *status)
{
    char *buf = NULL;
    size_t len = 0;
    long code = 0;
    FILE *mem = open_memstream(&buf, &len);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    fclose(mem);
    if (status != NULL)
        *status = code;
    if (rc != CURLE_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *itest_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return strdup("");
    }
    return buf;
}

unsigned itest_metrics_port(const char *log_path)
{
    char *text = itest_read_file(log_path);
    const char *at = strstr(text, "metrics at http://");
    unsigned port = 0;
    if (at == NULL || sscanf(at, "metrics at http://127.0.0.1:%u/metrics", &port) != 1)
        port = 0;
    free(text);
    return port;
}
