/*
 * log_file: reading what a child process (child_process.h) wrote to its log
 * file, while it runs or after.
 */
#ifndef CR_TEST_LOG_FILE_H
#define CR_TEST_LOG_FILE_H

#include <stdbool.h>

/* The whole file (caller frees); "" when it is missing or unreadable. */
char *log_file_read(const char *path);

/* How many lines of the file contain needle (0 when the file is missing). */
int log_file_count(const char *path, const char *needle);

/* Poll until at least count lines contain needle, up to timeout_ms; returns
 * whether they did. */
bool log_file_wait(const char *path, const char *needle, int count, int timeout_ms);

/* The port of the first "metrics at http://127.0.0.1:PORT/metrics" a process
 * logged at path; 0 when there is none (yet). */
unsigned log_file_metrics_port(const char *path);

#endif
