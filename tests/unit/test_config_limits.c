/*
 * Unit tests of the config loader's limits (config_yaml.h): a huge, deep or
 * wide file, an overlong value, and a path that is not a regular file are
 * refused with the file, line, key and limit, and a file at a limit still
 * loads. Each refusal happens while reading, so these run in milliseconds;
 * they assert the behaviour, not the time. Kept apart from test_config.c,
 * which covers the keys and is near the 800-line mark.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_yaml.h"
#include "config_base.h"

/* A growing malloc'd string for generated files. */
struct text {
    char *s;
    size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    char piece[256];

    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof(piece), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(piece));
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        cr_assert_not_null(t->s);
    }
    memcpy(t->s + t->len, piece, (size_t)n + 1);
    t->len += (size_t)n;
}

static void add_repeated(struct text *t, char c, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = t->len + n + 1;
        t->s = realloc(t->s, t->cap);
        cr_assert_not_null(t->s);
    }
    memset(t->s + t->len, c, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static struct config *load(const char *yaml, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_load_string("t.yaml", yaml, err, errlen);
}

/* BASE plus a retry.non_retryable_codes list of n items, one a line from
 * line 11: 4 nodes for retry:, the map, the key and the list, then one per
 * item. */
static char *with_codes(size_t n)
{
    struct text t = {0};
    add(&t, "%s", BASE "retry:\n  non_retryable_codes:\n");
    for (size_t i = 0; i < n; i++)
        add(&t, "    - C%zu\n", i);
    return t.s;
}

Test(config_limits, hundred_thousand_keys_are_refused_at_the_node_limit)
{
    struct text t = {0};
    char err[512];

    /* kafka: last, so that its keys 00000, 00001, ... start at line 9; a
     * one-space indent keeps 100,000 of them under the 1 MiB size limit. */
    add(&t, "database:\n  dsn: x\ngateways:\n  toss:\n    kind: toss\n    secret_key: sk\n"
            "kafka:\n bootstrap.servers: k\n");
    for (int i = 0; i < 100000; i++)
        add(&t, " %05d: v\n", i);
    cr_assert_lt(t.len, CY_MAX_FILE_SIZE);
    cr_assert_null(load(t.s, err, sizeof(err)));
    /* Node 10001 is the value of key 4991 (17 nodes before key 0, two per
     * key). */
    cr_expect_str_eq(err, "t.yaml:5000: kafka.04991: too many keys, values and list items: the "
                          "limit is 10000");
    free(t.s);
}

Test(config_limits, a_file_at_the_node_limit_loads)
{
    char err[512];
    size_t n = CY_MAX_NODES - BASE_NODES - 4;
    char *yaml = with_codes(n);
    struct config *cfg = load(yaml, err, sizeof(err));

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->retry.n_non_retryable_codes, n);
    config_free(cfg);
    free(yaml);

    yaml = with_codes(n + 1);
    cr_assert_null(load(yaml, err, sizeof(err)));
    cr_expect_str_eq(err, "t.yaml:9990: retry.non_retryable_codes[9979]: too many keys, values "
                          "and list items: the limit is 10000");
    free(yaml);
}

Test(config_limits, duplicate_keys_far_apart_are_found)
{
    struct text t = {0};
    char err[512];

    /* 4,000 distinct kafka properties, then the first one again. */
    add(&t, "database:\n  dsn: x\ngateways:\n  toss:\n    kind: toss\n    secret_key: sk\n"
            "kafka:\n  bootstrap.servers: k\n");
    for (int i = 0; i < 4000; i++)
        add(&t, "  p%d: v\n", i);
    add(&t, "  p0: again\n");
    cr_assert_null(load(t.s, err, sizeof(err)));
    cr_expect_str_eq(err, "t.yaml:4009: kafka.p0: duplicate key (first at line 9)");
    free(t.s);
}

Test(config_limits, deep_flow_nesting_is_refused_at_the_depth_limit)
{
    const char *opens[] = {"[", "{a: "};

    for (int k = 0; k < 2; k++) {
        struct text t = {0};
        char err[512];
        add(&t, "%s", BASE "relay: ");
        for (int i = 0; i < 200000; i++)
            add(&t, "%s", opens[k]);
        add(&t, "\n");
        cr_assert_null(load(t.s, err, sizeof(err)));
        cr_expect(strncmp(err, "t.yaml:9: relay", 15) == 0, "%s", err);
        cr_expect(strstr(err, ": nesting deeper than 32 levels") != NULL, "%s", err);
        free(t.s);
    }
}

Test(config_limits, an_overlong_value_is_refused)
{
    struct text t = {0};
    char err[512];

    add(&t, "%s", BASE "metrics:\n  listen: ");
    add_repeated(&t, 'a', CY_MAX_SCALAR + 1);
    add(&t, "\n");
    cr_assert_null(load(t.s, err, sizeof(err)));
    cr_expect_str_eq(err, "t.yaml:10: metrics.listen: value is too long: 16385 bytes, the limit "
                          "is 16384");
    free(t.s);

    /* The same through ${VAR}: the expanded value is what the program uses. */
    char *big = malloc(CY_MAX_SCALAR + 2);
    cr_assert_not_null(big);
    memset(big, 'a', CY_MAX_SCALAR + 1);
    big[CY_MAX_SCALAR + 1] = '\0';
    setenv("CR_T_BIG", big, 1);
    free(big);
    cr_assert_null(load(BASE "metrics:\n  listen: ${CR_T_BIG}\n", err, sizeof(err)));
    cr_expect_str_eq(err, "t.yaml:10: metrics.listen: expanded value is too long: the limit is "
                          "16384 bytes");
    unsetenv("CR_T_BIG");
}

/* ---- files --------------------------------------------------------------- */

static char dir[] = "/tmp/cr-config-limits-XXXXXX";

static void make_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

Test(config_limits, a_directory_is_refused_by_name)
{
    char err[512];

    cr_assert_null(config_load("tests/unit/data/config", err, sizeof(err)));
    cr_expect_str_eq(err, "tests/unit/data/config: cannot read config: it is a directory, not a "
                          "regular file");
}

Test(config_limits, a_fifo_is_refused_without_waiting_for_a_writer)
{
    char path[sizeof(dir) + 16], err[512];

    make_dir();
    snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    struct config *cfg = config_load(path, err, sizeof(err));
    unlink(path);
    rmdir(dir);
    cr_assert_null(cfg);
    cr_expect(strstr(err, ": cannot read config: it is a FIFO, not a regular file") != NULL, "%s",
              err);
}

Test(config_limits, a_huge_file_is_refused_by_its_size)
{
    char path[sizeof(dir) + 16], err[512], expect[600];

    make_dir();
    snprintf(path, sizeof(path), "%s/huge.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(BASE, f);
    /* Valid YAML all the way: only the size is wrong with it. */
    for (int i = 0; i < 40000; i++)
        fprintf(f, "# padding line %05d of a config that grew far too big\n", i);
    long size = ftell(f);
    fclose(f);
    struct config *cfg = config_load(path, err, sizeof(err));
    unlink(path);
    rmdir(dir);
    cr_assert_null(cfg);
    snprintf(expect, sizeof(expect),
             "%s: config file is too large: %ld bytes, the limit is 1048576", path, size);
    cr_expect_str_eq(err, expect);
}

Test(config_limits, a_huge_string_is_refused_by_its_size)
{
    struct text t = {0};
    char err[512];

    add(&t, "%s", BASE);
    add_repeated(&t, '#', CY_MAX_FILE_SIZE);
    char expect[100];
    snprintf(expect, sizeof(expect), "t.yaml: config is too large: %zu bytes, the limit is 1048576",
             t.len);
    cr_assert_null(load(t.s, err, sizeof(err)));
    cr_expect_str_eq(err, expect);
    free(t.s);
}
