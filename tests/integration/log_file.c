/*
 * log_file: reading a child process's log. See log_file.h.
 */
#include "log_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness.h"

#include "base/clock.h"

char *log_file_read(const char *path)
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

int log_file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) >= 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return n;
}

bool log_file_wait(const char *path, const char *needle, int count, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (log_file_count(path, needle) < count) {
        if (mono_ms() >= deadline)
            return false;
        itest_sleep_ms(50);
    }
    return true;
}

unsigned log_file_metrics_port(const char *path)
{
    char *text = log_file_read(path);
    const char *at = strstr(text, "metrics at http://");
    unsigned port = 0;
    if (at == NULL || sscanf(at, "metrics at http://127.0.0.1:%u/metrics", &port) != 1)
        port = 0;
    free(text);
    return port;
}
