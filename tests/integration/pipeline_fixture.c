/*
 * pipeline_fixture: the whole pipeline of one integration test: start,
 * stop, its processes and their logs. See pipeline_fixture.h.
 */
#include "pipeline_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "config/config.h"
#include "log_file.h"
#include "pipeline_config.h"
#include "pipeline_internal.h"

/* The fixture's test policy over the harness template: short waits so that a
 * whole scenario takes seconds. */
static const char fixture_overrides[] = "consumers:\n"
                                        "  retry: { lease: 10s }\n"
                                        "relay:\n"
                                        "  poll_interval: 200ms\n"
                                        "  reconcile_interval: 1s\n"
                                        "retry:\n"
                                        "  max_attempts: 4\n"
                                        "  initial_delay: 300ms\n"
                                        "  backoff_coefficient: 2.0\n"
                                        "  max_delay: 2s\n"
                                        "  jitter: none\n"
                                        "  deadline: 1h\n"
                                        "gateways:\n"
                                        "  toss: { timeout: 2s }\n"
                                        "  stripe: { timeout: 2s }\n"
                                        "  kakaopay: { timeout: 2s }\n"
                                        "  portone: { timeout: 2s }\n"
                                        "  adyen: { timeout: 2s }\n";

static const char *const proc_names[PIPELINE_PROC_KINDS] = {
    "intake-consumer", "outbox-relay", "retry-consumer", "alert-consumer", "webhook-receiver"};
static const char *const proc_env[PIPELINE_PROC_KINDS] = {"CR_INTAKE_CONSUMER", "CR_OUTBOX_RELAY",
                                                          "CR_RETRY_CONSUMER", "CR_ALERT_CONSUMER",
                                                          "CR_WEBHOOK_RECEIVER"};

/* ---- the processes ---- */

static struct child *slot(struct pipeline *p, enum pipeline_proc which, int index)
{
    cr_assert(which >= PIPELINE_INTAKE && which < PIPELINE_PROC_KINDS, "bad process kind %d",
              (int)which);
    cr_assert(index >= 0 && index < PIPELINE_MAX_PROCS, "bad process slot %d", index);
    return &p->procs[which][index];
}

/* Start which in slot index with config_path; its log path into log_path. */
static void start_with(struct pipeline *p, enum pipeline_proc which, int index,
                       const char *config_path, char *log_path, size_t len)
{
    struct child *c = slot(p, which, index);
    cr_assert_eq(c->pid, 0, "%s slot %d is already running", proc_names[which], index);
    const char *exe = itest_require_env(proc_env[which]);
    snprintf(log_path, len, "%s/%s-%d.log", p->log_dir, proc_names[which], index);
    const char *argv[] = {exe, "--config", config_path, NULL};
    c->pid = child_spawn(argv, log_path);
    c->stopped = false;
}

void pipeline_start_process(struct pipeline *p, enum pipeline_proc which, int index)
{
    char log_path[640];
    start_with(p, which, index, p->t.config_path, log_path, sizeof(log_path));
}

const char *pipeline_start_webhook_receiver(struct pipeline *p, int index, const char *config_path,
                                            char *url, size_t len)
{
    char log_path[640];
    start_with(p, PIPELINE_WEBHOOK, index, config_path != NULL ? config_path : p->t.config_path,
               log_path, sizeof(log_path));
    /* The receiver logs where it listens once it does (port 0: its own). */
    url[0] = '\0';
    for (int waited = 0; url[0] == '\0' && waited < 15000; waited += 50) {
        char *text = log_file_read(log_path);
        const char *at = strstr(text, "webhook receiver at http://");
        unsigned port = 0;
        char path[256];
        if (at != NULL &&
            sscanf(at, "webhook receiver at http://127.0.0.1:%u%255[^\"]", &port, path) == 2)
            snprintf(url, len, "http://127.0.0.1:%u%s", port, path);
        free(text);
        if (url[0] == '\0') {
            cr_assert(child_running(slot(p, PIPELINE_WEBHOOK, index)),
                      "the webhook-receiver exited at start: see %s", log_path);
            itest_sleep_ms(50);
        }
    }
    cr_assert(url[0] != '\0', "the webhook-receiver did not listen within 15 s: see %s", log_path);
    return url;
}

bool pipeline_running(struct pipeline *p, enum pipeline_proc which, int index)
{
    return child_running(slot(p, which, index));
}

void pipeline_kill(struct pipeline *p, enum pipeline_proc which, int index, int signo)
{
    struct child *c = slot(p, which, index);
    cr_assert(c->pid > 0, "%s slot %d is not running", proc_names[which], index);
    cr_assert_eq(kill(c->pid, signo), 0, "kill %s: %s", proc_names[which], strerror(errno));
    switch (signo) {
    case SIGSTOP:
    case SIGTSTP:
        c->stopped = true;
        return;
    case SIGCONT:
        c->stopped = false;
        return;
    case SIGHUP:
    case SIGUSR1:
    case SIGUSR2:
        return;
    default:
        if (c->stopped)
            kill(c->pid, SIGCONT);
        child_reap(c, CHILD_STOP_WAIT_MS);
    }
}

/* ---- start / stop ---- */

static void make_log_dir(struct pipeline *p, const char *name)
{
    char s[64];
    size_t o = 0;
    for (const char *c = name; *c != '\0' && o + 1 < sizeof(s); c++) {
        char ch = *c;
        bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        s[o++] = keep ? ch : '-';
    }
    s[o] = '\0';
    const char *root = getenv("CR_BUILD_ROOT");
    char parent[400];
    if (root != NULL && root[0] != '\0') {
        snprintf(parent, sizeof(parent), "%s/meson-logs", root);
        mkdir(parent, 0755);
        snprintf(parent, sizeof(parent), "%s/meson-logs/pipeline", root);
    } else {
        snprintf(parent, sizeof(parent), "/tmp/cr-pipeline-logs");
    }
    mkdir(parent, 0755);
    snprintf(p->log_dir, sizeof(p->log_dir), "%s/%s", parent, s);
    itest_remove_tree(p->log_dir);
    cr_assert(mkdir(p->log_dir, 0755) == 0, "could not create %s: %s", p->log_dir, strerror(errno));
}

struct pipeline *pipeline_start(const char *name, const char *config_yaml_extra)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    cr_assert_not_null(p);
    p->curl = curl_easy_init();
    cr_assert_not_null(p->curl);
    itest_setup(&p->t, name);
    make_log_dir(p, name);
    fprintf(stderr, "pipeline %s: logs in %s\n", name, p->log_dir);

    pipeline_sim_start(p);
    snprintf(p->t.gateway_url, sizeof(p->t.gateway_url), "%s", p->sim_url);
    pipeline_config_write(&p->t, fixture_overrides, config_yaml_extra);
    char err[1024];
    p->cfg = config_load(p->t.config_path, err, sizeof(err));
    cr_assert_not_null(p->cfg, "the pipeline config does not load: %s", err);
    char copy[640];
    snprintf(copy, sizeof(copy), "%s/cancel-retry.yaml", p->log_dir);
    FILE *in = fopen(p->t.config_path, "rb"), *out = fopen(copy, "wb");
    if (in != NULL && out != NULL) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
            fwrite(chunk, 1, n, out);
    }
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);

    pipeline_cancelctl_ok(p, (const char *const[]){"migrate", NULL});
    pipeline_cancelctl_ok(p, (const char *const[]){"topics", NULL});

    pipeline_start_process(p, PIPELINE_INTAKE, 0);
    pipeline_start_process(p, PIPELINE_RELAY, 0);
    pipeline_start_process(p, PIPELINE_RETRY, 0);
    return p;
}

void pipeline_stop(struct pipeline *p)
{
    if (p == NULL)
        return;
    /* Consumers first (they stop writing outbox rows), then the relay
     * (it flushes what they wrote), then the simulator. */
    const enum pipeline_proc order[] = {PIPELINE_WEBHOOK, PIPELINE_ALERT, PIPELINE_RETRY,
                                        PIPELINE_INTAKE, PIPELINE_RELAY};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        /* SIGTERM to all of a kind first, so that they stop in parallel. */
        for (int i = 0; i < PIPELINE_MAX_PROCS; i++)
            child_request_stop(&p->procs[order[k]][i]);
        for (int i = 0; i < PIPELINE_MAX_PROCS; i++) {
            char what[64];
            snprintf(what, sizeof(what), "%s-%d", proc_names[order[k]], i);
            child_await_stop(&p->procs[order[k]][i], what);
        }
    }
    child_request_stop(&p->sim);
    child_await_stop(&p->sim, "gateway-sim");
    itest_teardown(&p->t);
    config_free(p->cfg);
    if (p->curl != NULL)
        curl_easy_cleanup(p->curl);
    free(p);
}

const char *pipeline_config_path(struct pipeline *p)
{
    return p->t.config_path;
}

const char *pipeline_log_dir(struct pipeline *p)
{
    return p->log_dir;
}

struct itest *pipeline_itest(struct pipeline *p)
{
    return &p->t;
}

const char *pipeline_config_variant(struct pipeline *p, const char *file, const char *prefix,
                                    const char *line, char *buf, size_t len)
{
    pipeline_log_path(p, file, buf, len);
    FILE *in = fopen(p->t.config_path, "r"), *out = fopen(buf, "w");
    cr_assert(in != NULL && out != NULL, "could not copy %s to %s: %s", p->t.config_path, buf,
              strerror(errno));
    char *text = NULL;
    size_t cap = 0;
    while (getline(&text, &cap, in) >= 0)
        fputs(strncmp(text, prefix, strlen(prefix)) == 0 ? line : text, out);
    free(text);
    fclose(in);
    cr_assert_eq(fclose(out), 0, "could not write %s: %s", buf, strerror(errno));
    return buf;
}

const char *pipeline_log_path(struct pipeline *p, const char *file, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", p->log_dir, file);
    return buf;
}

int pipeline_log_count(struct pipeline *p, const char *file, const char *needle)
{
    char path[700];
    return log_file_count(pipeline_log_path(p, file, path, sizeof(path)), needle);
}

bool pipeline_log_wait(struct pipeline *p, const char *file, const char *needle, int count,
                       int timeout_ms)
{
    char path[700];
    return log_file_wait(pipeline_log_path(p, file, path, sizeof(path)), needle, count, timeout_ms);
}
