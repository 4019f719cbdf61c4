/*
 * http_probe: what a test reads from a running process: a URL's body and
 * status (libcurl, 10 s at most), a file whole, and the metrics port a
 * process logged ("metrics at http://127.0.0.1:PORT/metrics").
 */
#ifndef CR_TEST_HTTP_PROBE_H
#define CR_TEST_HTTP_PROBE_H

/* GET url: the body (malloc'd, caller frees) and, if status is not NULL, the
 * HTTP status; NULL (status 0) when nothing answered. */
char *itest_http_get(const char *url, long *status);

/* The whole file (malloc'd, caller frees); "" when it cannot be read. */
char *itest_read_file(const char *path);

/* The port of the first "metrics at http://127.0.0.1:PORT/metrics" in the
 * log at log_path; 0 when there is none (yet). */
unsigned itest_metrics_port(const char *log_path);

#endif
