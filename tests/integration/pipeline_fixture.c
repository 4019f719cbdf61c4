/*
 * pipeline_fixture: the whole pipeline of one integration test. See
 * pipeline_fixture.h.
 */
#include "pipeline_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "base/clock.h"
#include "config/config.h"
#include "config/config_yaml.h"
#include "event/dlq.h"

/* Secrets of the harness's default template; the simulator is started with
 * them so that the default config authenticates. */
#define SIM_TOSS_SECRET   "test_sk_toss_it"
#define SIM_STRIPE_SECRET "sk_test_stripe_it"

#define STOP_WAIT_MS 15000

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
                                        "  stripe: { timeout: 2s }\n";

struct child {
    pid_t pid; /* 0 when the slot is free */
    bool stopped;
};

struct pipeline {
    struct itest t;
    struct config *cfg;
    char log_dir[512];
    char sim_url[128];
    struct child sim;
    struct child procs[3][PIPELINE_MAX_PROCS];
    CURL *curl;
};

static const char *const proc_names[3] = {"intake-consumer", "outbox-relay", "retry-consumer"};
static const char *const proc_env[3] = {"CR_INTAKE_CONSUMER", "CR_OUTBOX_RELAY",
                                        "CR_RETRY_CONSUMER"};

/* ---- growing text buffer ---- */

struct buf {
    char *s;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        cr_assert_not_null(b->s, "out of memory");
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_indent(struct buf *b, int indent)
{
    for (int i = 0; i < indent; i++)
        buf_add(b, " ", 1);
}

/* A YAML double-quoted scalar: the config loader does not care about the
 * style, only about the value (and null). */
static void buf_quoted(struct buf *b, const char *s)
{
    buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            buf_add(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            buf_str(b, esc);
        } else {
            buf_add(b, (const char *)p, 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* ---- config merge ---- */

/* A map key: plain when it is a simple word (every key of the config
 * format), quoted otherwise. */
static void buf_key(struct buf *b, const char *k)
{
    bool plain = k[0] != '\0';
    for (const char *c = k; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            plain = false;
    }
    if (plain)
        buf_str(b, k);
    else
        buf_quoted(b, k);
}

static void emit_flow(struct buf *b, const struct cy_node *n)
{
    if (n->kind == CY_SCALAR) {
        if (n->null)
            buf_str(b, "~");
        else
            buf_quoted(b, n->value);
    } else if (n->kind == CY_SEQ) {
        buf_str(b, "[");
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                buf_str(b, ", ");
            emit_flow(b, &n->items[i]);
        }
        buf_str(b, "]");
    } else {
        buf_str(b, "{");
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                buf_str(b, ", ");
            buf_key(b, n->pairs[i].key);
            buf_str(b, ": ");
            emit_flow(b, &n->pairs[i].value);
        }
        buf_str(b, "}");
    }
}

static void emit_pairs(struct buf *b, const struct cy_node *base, const struct cy_node *over,
                       int indent);

/* "key: value" at indent, where value is base merged with over (either may
 * be NULL, not both). */
static void emit_pair(struct buf *b, const char *key, const struct cy_node *base,
                      const struct cy_node *over, int indent)
{
    buf_indent(b, indent);
    buf_key(b, key);
    buf_str(b, ":");
    const struct cy_node *v = over != NULL ? over : base;
    bool merge = base != NULL && over != NULL && base->kind == CY_MAP && over->kind == CY_MAP;
    if (v->kind == CY_MAP && (merge ? base->n + over->n : v->n) > 0) {
        buf_str(b, "\n");
        emit_pairs(b, merge ? base : v, merge ? over : NULL, indent + 2);
    } else {
        buf_str(b, " ");
        emit_flow(b, v);
        buf_str(b, "\n");
    }
}

/* The pairs of map base with those of map over (may be NULL) merged in:
 * base's order first, over's new keys after. */
static void emit_pairs(struct buf *b, const struct cy_node *base, const struct cy_node *over,
                       int indent)
{
    for (size_t i = 0; i < base->n; i++) {
        const struct cy_pair *o = cy_map_find(over, base->pairs[i].key);
        emit_pair(b, base->pairs[i].key, &base->pairs[i].value, o ? &o->value : NULL, indent);
    }
    for (size_t i = 0; over != NULL && i < over->n; i++) {
        if (cy_map_find(base, over->pairs[i].key) == NULL)
            emit_pair(b, over->pairs[i].key, NULL, &over->pairs[i].value, indent);
    }
}

/* yaml_text with the harness's @PLACEHOLDER@ substitution applied, via the
 * harness's own writer (it writes t->config_path). Caller frees. */
static char *substituted(struct itest *t, const char *yaml_text)
{
    itest_write_config(t, yaml_text);
    FILE *f = fopen(t->config_path, "rb");
    cr_assert_not_null(f, "could not read %s: %s", t->config_path, strerror(errno));
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    if (b.s == NULL)
        buf_str(&b, "");
    return b.s;
}

static struct cy_node *load_yaml(const char *name, const char *text)
{
    char err[512];
    struct cy_node *n = cy_load_string(name, text, err, sizeof(err));
    cr_assert_not_null(n, "pipeline config: %s", err);
    return n;
}

/* Write t->config_path: harness template <- fixture overrides <- extra. */
static void write_config(struct itest *t, const char *extra)
{
    char *base_text = substituted(t, itest_default_config);
    char *over_text = substituted(t, fixture_overrides);
    char *extra_text = substituted(t, extra != NULL ? extra : "");
    struct cy_node *base = load_yaml("harness template", base_text);
    struct cy_node *over = load_yaml("fixture overrides", over_text);
    struct cy_node *ext = load_yaml("the test's config_yaml_extra", extra_text);

    struct buf first = {0};
    buf_str(&first, "");
    emit_pairs(&first, base, over, 0);
    struct cy_node *mid = load_yaml("merged config", first.s);
    struct buf final = {0};
    buf_str(&final, "# written by tests/integration/pipeline_fixture.c\n");
    emit_pairs(&final, mid, ext, 0);

    FILE *f = fopen(t->config_path, "w");
    cr_assert_not_null(f, "could not write %s: %s", t->config_path, strerror(errno));
    fwrite(final.s, 1, final.len, f);
    fclose(f);

    cy_free(base);
    cy_free(over);
    cy_free(ext);
    cy_free(mid);
    free(first.s);
    free(final.s);
    free(base_text);
    free(over_text);
    free(extra_text);
}

/* ---- child processes ---- */

/* Start argv with stdout and stderr appended to log_path, in the source root,
 * dying with the test process. */
static pid_t spawn(const char *const *argv, const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "could not open %s: %s", log_path, strerror(errno));
    const char *cwd = getenv("CR_SOURCE_ROOT");
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The test process may die on an assertion without running its
         * .fini: the pipeline must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(125);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (cwd != NULL && chdir(cwd) != 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "could not run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    return pid;
}

/* Wait up to timeout_ms for c to exit; SIGKILL it after that. Returns its
 * wait status. */
static int reap(struct child *c, int timeout_ms)
{
    int status = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno != EINTR))
            break;
        if (mono_ms() >= deadline) {
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        itest_sleep_ms(20);
    }
    c->pid = 0;
    c->stopped = false;
    return status;
}

/* Ask c to stop (one SIGTERM: a second one makes the processes exit at
 * once, skipping their clean shutdown). */
static void request_stop(struct child *c)
{
    if (c->pid <= 0)
        return;
    if (c->stopped)
        kill(c->pid, SIGCONT);
    kill(c->pid, SIGTERM);
}

/* Wait for c after request_stop; say so on stderr if it did not exit 0. */
static void await_stop(struct child *c, const char *what)
{
    if (c->pid <= 0)
        return;
    int status = reap(c, STOP_WAIT_MS);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
        !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
        fprintf(stderr, "pipeline: %s did not stop cleanly (wait status %d)\n", what, status);
}

static struct child *slot(struct pipeline *p, enum pipeline_proc which, int index)
{
    cr_assert(which >= PIPELINE_INTAKE && which <= PIPELINE_RETRY, "bad process kind %d",
              (int)which);
    cr_assert(index >= 0 && index < PIPELINE_MAX_PROCS, "bad process slot %d", index);
    return &p->procs[which][index];
}

void pipeline_start_process(struct pipeline *p, enum pipeline_proc which, int index)
{
    struct child *c = slot(p, which, index);
    cr_assert_eq(c->pid, 0, "%s slot %d is already running", proc_names[which], index);
    const char *exe = itest_require_env(proc_env[which]);
    char log_path[640];
    snprintf(log_path, sizeof(log_path), "%s/%s-%d.log", p->log_dir, proc_names[which], index);
    const char *argv[] = {exe, "--config", p->t.config_path, NULL};
    c->pid = spawn(argv, log_path);
    c->stopped = false;
}

bool pipeline_running(struct pipeline *p, enum pipeline_proc which, int index)
{
    struct child *c = slot(p, which, index);
    if (c->pid <= 0)
        return false;
    int status;
    if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->pid = 0;
        c->stopped = false;
        return false;
    }
    return true;
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
        reap(c, STOP_WAIT_MS);
    }
}

/* ---- the simulator ---- */

static void start_sim(struct pipeline *p)
{
    char port_file[600], log_path[640];
    snprintf(port_file, sizeof(port_file), "%s/sim.port", p->t.dir);
    snprintf(log_path, sizeof(log_path), "%s/gateway-sim.log", p->log_dir);
    /* A test that configures its own gateway keys says so in the
     * environment (pipeline_fixture.h). */
    const char *toss = getenv("CR_IT_SIM_TOSS_SECRET");
    const char *stripe = getenv("CR_IT_SIM_STRIPE_SECRET");
    const char *argv[] = {itest_require_env("CR_GATEWAY_SIM"),
                          "--listen",
                          "127.0.0.1:0",
                          "--port-file",
                          port_file,
                          "--toss-secret",
                          toss != NULL && toss[0] != '\0' ? toss : SIM_TOSS_SECRET,
                          "--stripe-secret",
                          stripe != NULL && stripe[0] != '\0' ? stripe : SIM_STRIPE_SECRET,
                          NULL};
    p->sim.pid = spawn(argv, log_path);
    int port = 0;
    for (int64_t deadline = mono_ms() + 10000; port == 0 && mono_ms() < deadline;) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port == 0)
            itest_sleep_ms(20);
    }
    cr_assert(port > 0, "gateway-sim did not write its port within 10 s (log: %s)", log_path);
    snprintf(p->sim_url, sizeof(p->sim_url), "http://127.0.0.1:%d", port);
}

static size_t curl_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_add(userdata, ptr, size * nmemb);
    return size * nmemb;
}

long pipeline_sim_call(struct pipeline *p, const char *method, const char *path, const char *json,
                       char **body)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", p->sim_url, path);
    struct buf b = {0};
    buf_str(&b, "");
    CURL *c = p->curl;
    curl_easy_reset(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (json != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        free(b.s);
        cr_assert_fail("gateway-sim %s %s: %s", method, path, curl_easy_strerror(rc));
    }
    if (body != NULL)
        *body = b.s;
    else
        free(b.s);
    return status;
}

void pipeline_sim_post(struct pipeline *p, const char *path, const char *json)
{
    char *body = NULL;
    long st = pipeline_sim_call(p, "POST", path, json, &body);
    bool ok = st >= 200 && st < 300;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", body);
    free(body);
    cr_assert(ok, "gateway-sim POST %s %s: HTTP %ld %s", path, json ? json : "", st, msg);
}

char *pipeline_sim_get(struct pipeline *p, const char *path)
{
    char *body = NULL;
    long st = pipeline_sim_call(p, "GET", path, NULL, &body);
    if (st < 200 || st >= 300) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", body);
        free(body);
        cr_assert_fail("gateway-sim GET %s: HTTP %ld %s", path, st, msg);
    }
    return body;
}

const char *pipeline_sim_url(struct pipeline *p)
{
    return p->sim_url;
}

void pipeline_payment(struct pipeline *p, const char *gateway, const char *payment_key,
                      long long amount, const char *currency, long long refunded)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:I}", "gateway", gateway, "paymentKey",
                          payment_key, "amount", (json_int_t)amount, "currency", currency,
                          "refunded", (json_int_t)refunded);
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    pipeline_sim_post(p, "/_sim/payments", s);
    free(s);
}

/* The simulator's ledger entry of payment_key, or NULL if it has none. */
static json_t *ledger(struct pipeline *p, const char *payment_key)
{
    char path[512];
    char *esc = curl_easy_escape(p->curl, payment_key, 0);
    snprintf(path, sizeof(path), "/_sim/ledger/%s", esc);
    curl_free(esc);
    char *body = NULL;
    long st = pipeline_sim_call(p, "GET", path, NULL, &body);
    json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
    free(body);
    cr_assert(st == 200 || st == 404, "gateway-sim GET %s: HTTP %ld", path, st);
    return j;
}

long long pipeline_refunds(struct pipeline *p, const char *payment_key)
{
    json_t *j = ledger(p, payment_key);
    long long n = j ? (long long)json_array_size(json_object_get(j, "refunds")) : 0;
    json_decref(j);
    return n;
}

long long pipeline_refunded_amount(struct pipeline *p, const char *payment_key)
{
    json_t *j = ledger(p, payment_key);
    long long n = j ? (long long)json_integer_value(json_object_get(j, "refunded")) : 0;
    json_decref(j);
    return n;
}

/* ---- start / stop ---- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

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
    nftw(p->log_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    cr_assert(mkdir(p->log_dir, 0755) == 0, "could not create %s: %s", p->log_dir, strerror(errno));
}

static void run_cancelctl(struct pipeline *p, const char *const *args, const char *what)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = itest_cancelctl();
    argv[n++] = "--config";
    argv[n++] = p->t.config_path;
    for (size_t i = 0; args[i] != NULL && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct itest_result r;
    itest_run(&r, 60000, argv, NULL);
    int code = r.exit_code;
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s%s", r.err, r.out);
    itest_result_free(&r);
    cr_assert_eq(code, 0, "cancelctl %s exited %d: %s", what, code, msg);
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

    start_sim(p);
    snprintf(p->t.gateway_url, sizeof(p->t.gateway_url), "%s", p->sim_url);
    write_config(&p->t, config_yaml_extra);
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

    run_cancelctl(p, (const char *const[]){"migrate", NULL}, "migrate");
    run_cancelctl(p, (const char *const[]){"topics", NULL}, "topics");

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
    const enum pipeline_proc order[] = {PIPELINE_RETRY, PIPELINE_INTAKE, PIPELINE_RELAY};
    for (size_t k = 0; k < 3; k++) {
        /* SIGTERM to all of a kind first, so that they stop in parallel. */
        for (int i = 0; i < PIPELINE_MAX_PROCS; i++)
            request_stop(&p->procs[order[k]][i]);
        for (int i = 0; i < PIPELINE_MAX_PROCS; i++) {
            char what[64];
            snprintf(what, sizeof(what), "%s-%d", proc_names[order[k]], i);
            await_stop(&p->procs[order[k]][i], what);
        }
    }
    request_stop(&p->sim);
    await_stop(&p->sim, "gateway-sim");
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

/* ---- the database ---- */

const char *pipeline_wait_final(struct pipeline *p, const char *request_id, int timeout_ms)
{
    static const char *const finals[] = {"SUCCEEDED", "ALREADY_REFUNDED", "FAILED", "EXHAUSTED",
                                         "MANUALLY_RESOLVED"};
    const char *params[] = {request_id};
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        PGresult *res =
            PQexecParams(itest_pg(&p->t), "SELECT status FROM cancel_request WHERE request_id = $1",
                         1, NULL, params, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "select status: %s",
                     PQresultErrorMessage(res));
        const char *found = NULL;
        if (PQntuples(res) == 1) {
            for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
                if (strcmp(PQgetvalue(res, 0, 0), finals[i]) == 0)
                    found = finals[i];
            }
        }
        PQclear(res);
        if (found != NULL)
            return found;
        if (mono_ms() >= deadline)
            return NULL;
        itest_sleep_ms(100);
    }
}

bool pipeline_wait_query(struct pipeline *p, const char *sql, int nparams,
                         const char *const *params, const char *want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        PGresult *res = PQexecParams(itest_pg(&p->t), sql, nparams, NULL, params, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
                     PQresultErrorMessage(res));
        bool match = false;
        if (PQntuples(res) >= 1) {
            if (PQgetisnull(res, 0, 0))
                match = want == NULL;
            else
                match = want != NULL && strcmp(PQgetvalue(res, 0, 0), want) == 0;
        }
        PQclear(res);
        if (match)
            return true;
        if (mono_ms() >= deadline)
            return false;
        itest_sleep_ms(100);
    }
}

/* ---- Kafka ---- */

static const char *topic_of(struct pipeline *p, const char *role)
{
    if (strcmp(role, "cancel_failed") == 0)
        return p->cfg->topics.cancel_failed.name;
    if (strcmp(role, "retry") == 0)
        return p->cfg->topics.retry.name;
    if (strcmp(role, "outcome") == 0)
        return p->cfg->topics.outcome.name;
    if (strcmp(role, "dlq") == 0)
        return p->cfg->topics.dlq.name;
    cr_assert_fail("unknown topic role \"%s\" (cancel_failed, retry, outcome, dlq)", role);
    return NULL;
}

static rd_kafka_conf_t *kafka_conf(struct pipeline *p)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(
        rd_kafka_conf_set(conf, "bootstrap.servers", p->t.bootstrap, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    return conf;
}

void pipeline_publish_raw_len(struct pipeline *p, const char *topic_role, const char *key,
                              const void *bytes, size_t len, const json_t *headers)
{
    pipeline_publish_raw_at(p, topic_role, key, bytes, len, headers, 0);
}

void pipeline_publish_raw_at(struct pipeline *p, const char *topic_role, const char *key,
                             const void *bytes, size_t len, const json_t *headers,
                             int64_t timestamp_ms)
{
    char errstr[256];
    const char *topic = topic_of(p, topic_role);
    rd_kafka_conf_t *conf = kafka_conf(p);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "producer: %s", errstr);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)headers, name, v)
    {
        const char *s = json_string_value(v);
        rd_kafka_header_add(hdrs, name, -1, s, s ? -1 : 0);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)bytes, len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(hdrs);
    rd_kafka_resp_err_t fe = e == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_flush(rk, 15000) : e;
    int left = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce to %s: %s", topic, rd_kafka_err2str(e));
    cr_assert(fe == RD_KAFKA_RESP_ERR_NO_ERROR && left == 0,
              "produce to %s: not acknowledged within 15 s (%s)", topic, rd_kafka_err2str(fe));
}

void pipeline_publish_raw(struct pipeline *p, const char *topic_role, const char *key,
                          const char *bytes)
{
    pipeline_publish_raw_len(p, topic_role, key, bytes, strlen(bytes), NULL);
}

void pipeline_publish(struct pipeline *p, const char *request_id, const char *gateway,
                      const char *payment_key, long long amount, const char *currency, bool partial)
{
    char amount_s[32];
    snprintf(amount_s, sizeof(amount_s), "%lld", amount);
    const char *args[] = {"publish",
                          "--request-id",
                          request_id,
                          "--gateway",
                          gateway,
                          "--payment-key",
                          payment_key,
                          "--amount",
                          amount_s,
                          "--currency",
                          currency,
                          "--reason",
                          "customer cancelled",
                          partial ? "--partial" : NULL,
                          NULL};
    run_cancelctl(p, args, "publish");
}

size_t pipeline_read_topic(struct pipeline *p, const char *topic_role, size_t expect,
                           int timeout_ms, struct pipeline_msg **out)
{
    char errstr[256];
    const char *topic = topic_of(p, topic_role);
    rd_kafka_conf_t *conf = kafka_conf(p);
    char group[160];
    snprintf(group, sizeof(group), "%sreader-%d-%lld", p->t.prefix, (int)getpid(),
             (long long)mono_ms());
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "consumer: %s", errstr);

    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "metadata of %s: %s", topic, rd_kafka_err2str(e));
    int nparts = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    cr_assert(nparts > 0, "topic %s has no partitions", topic);

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "assign %s: %s", topic, rd_kafka_err2str(e));

    struct pipeline_msg *m = NULL;
    size_t n = 0, cap = 0;
    /* expect 0: done when every partition is at its end at once. */
    bool *at_end = calloc((size_t)nparts, sizeof(*at_end));
    cr_assert_not_null(at_end);
    int ends = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline && (expect == 0 ? ends < nparts : n < expect)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL)
            continue;
        bool known = msg->partition >= 0 && msg->partition < nparts;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (known && !at_end[msg->partition]) {
                at_end[msg->partition] = true;
                ends++;
            }
        } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (known && at_end[msg->partition]) {
                at_end[msg->partition] = false;
                ends--;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                m = realloc(m, cap * sizeof(*m));
                cr_assert_not_null(m);
            }
            struct pipeline_msg *x = &m[n++];
            memset(x, 0, sizeof(*x));
            if (msg->key != NULL) {
                x->key = strndup(msg->key, msg->key_len);
            }
            if (msg->payload != NULL) {
                x->value = malloc(msg->len + 1);
                cr_assert_not_null(x->value);
                memcpy(x->value, msg->payload, msg->len);
                x->value[msg->len] = '\0';
                x->len = msg->len;
            }
            rd_kafka_headers_t *hdrs = NULL;
            if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                hdrs = NULL;
            x->headers = dlq_headers_from_kafka(hdrs);
            cr_assert_not_null(x->headers);
            x->partition = msg->partition;
            x->offset = msg->offset;
        }
        rd_kafka_message_destroy(msg);
    }
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = m;
    return n;
}

void pipeline_msgs_free(struct pipeline_msg *m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++) {
        free(m[i].key);
        free(m[i].value);
        json_decref(m[i].headers);
    }
    free(m);
}

bool pipeline_wait_consumed(struct pipeline *p, const char *topic_role, const char *consumer_role,
                            int timeout_ms)
{
    char errstr[256];
    const char *topic = topic_of(p, topic_role);
    const char *group = NULL;
    if (strcmp(consumer_role, "intake") == 0)
        group = p->cfg->consumers.intake.group_id;
    else if (strcmp(consumer_role, "retry") == 0)
        group = p->cfg->consumers.retry.group_id;
    else
        cr_assert_fail("unknown consumer role \"%s\" (intake, retry)", consumer_role);
    int nparts = 0;
    if (strcmp(topic_role, "cancel_failed") == 0)
        nparts = p->cfg->topics.cancel_failed.partitions;
    else if (strcmp(topic_role, "retry") == 0)
        nparts = p->cfg->topics.retry.partitions;
    else if (strcmp(topic_role, "outcome") == 0)
        nparts = p->cfg->topics.outcome.partitions;
    else
        nparts = p->cfg->topics.dlq.partitions;

    /* A consumer of that group that never subscribes: it may read the
     * group's committed offsets without joining (and disturbing) it. */
    rd_kafka_conf_t *conf = kafka_conf(p);
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "consumer: %s", errstr);

    int64_t *high = calloc((size_t)nparts, sizeof(*high));
    cr_assert_not_null(high);
    for (int i = 0; i < nparts; i++) {
        int64_t low = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, i, &low, &high[i], 10000);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "watermarks of %s/%d: %s", topic, i,
                     rd_kafka_err2str(e));
    }
    bool done = false;
    int64_t deadline = mono_ms() + timeout_ms;
    while (!done) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
        for (int i = 0; i < nparts; i++)
            rd_kafka_topic_partition_list_add(parts, topic, i);
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
        done = e == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; done && i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t want = high[tp->partition];
            /* An empty partition needs no commit. */
            if (want > 0 && (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset < want))
                done = false;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (done || mono_ms() >= deadline)
            break;
        itest_sleep_ms(200);
    }
    free(high);
    rd_kafka_destroy(rk);
    return done;
}

static void on_bulk_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *failed = opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        (*failed)++;
}

void pipeline_publish_many(struct pipeline *p, int n, pipeline_event_fn fill, void *arg)
{
    struct itest *t = pipeline_itest(p);
    char errstr[512], topic[256];
    int failed = 0;
    snprintf(topic, sizeof(topic), "%spayments.cancel.failed", t->prefix);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", t->bootstrap, errstr, sizeof(errstr)),
                 RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, on_bulk_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "producer: %s", errstr);

    for (int i = 0; i < n; i++) {
        char rid[PIPELINE_ID_MAX] = "", pk[PIPELINE_ID_MAX] = "", *json = NULL;
        struct cancel_failed_event ev = CANCEL_FAILED_EVENT_INIT;
        ev.reason = "customer cancelled";
        fill(i, &ev, rid, pk, arg);
        cr_assert(cancel_event_build(&ev, &json, NULL, errstr, sizeof(errstr)), "event %d: %s", i,
                  errstr);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(ev.request_id, strlen(ev.request_id)),
                                      RD_KAFKA_V_VALUE(json, strlen(json)), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 50);
        free(json);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    int left = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    cr_assert(left == 0 && failed == 0, "%d events not acknowledged, %d failed", left, failed);
}
