/*
 * cancelctl topics against the real broker.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct itest t;

static void setup(void)
{
    itest_setup(&t, "topics");
}

static void teardown(void)
{
    itest_teardown(&t);
}

TestSuite(topics, .init = setup, .fini = teardown, .timeout = 120);

static void topics_cmd(const char *a1, const char *a2, struct itest_result *r)
{
    const char *argv[] = {itest_cancelctl(), "--config", t.config_path, "topics", a1, a2, NULL};
    itest_run(r, 60000, argv, NULL);
}

static void topic_name(const char *suffix, char *out, size_t outlen)
{
    snprintf(out, outlen, "%spayments.cancel.%s", t.prefix, suffix);
}

/* Configured partitions of the default test config. */
static const struct {
    const char *suffix;
    int partitions;
} expected[] = {{"failed", 3}, {"retry", 6}, {"outcome", 3}, {"dlq", 1}};

Test(topics, creates_the_configured_topics_once)
{
    struct itest_result r;
    char name[256];

    topics_cmd(NULL, NULL, &r);
    cr_assert_eq(r.exit_code, 0, "exit %d\nstdout: %s\nstderr: %s", r.exit_code, r.out, r.err);
    cr_expect_not_null(strstr(r.out, "created"), "stdout: %s", r.out);
    itest_result_free(&r);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        topic_name(expected[i].suffix, name, sizeof(name));
        cr_expect_eq(itest_topic_partitions(&t, name), expected[i].partitions,
                     "%s: %d partitions on the broker, want %d", name,
                     itest_topic_partitions(&t, name), expected[i].partitions);
    }

    /* Second run: nothing to do, every topic "ok". */
    topics_cmd("--json", NULL, &r);
    cr_assert_eq(r.exit_code, 0, "second run: exit %d\nstderr: %s", r.exit_code, r.err);
    cr_expect_null(strstr(r.out, "\"created\""), "second run created something: %s", r.out);
    const char *p = r.out;
    int oks = 0;
    while ((p = strstr(p, "\"state\": \"ok\"")) != NULL) {
        oks++;
        p++;
    }
    cr_expect_eq(oks, 4, "want 4 topics ok: %s", r.out);
    itest_result_free(&r);

    /* --check agrees. */
    topics_cmd("--check", NULL, &r);
    cr_expect_eq(r.exit_code, 0, "--check after creation: exit %d: %s", r.exit_code, r.err);
    itest_result_free(&r);
}

Test(topics, check_reports_a_missing_topic)
{
    struct itest_result r;
    char name[256];

    topics_cmd("--check", NULL, &r);
    cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
    cr_expect_not_null(strstr(r.err, "does not exist"), "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.out, "missing"), "stdout: %s", r.out);
    itest_result_free(&r);
    /* --check created nothing. */
    topic_name("failed", name, sizeof(name));
    cr_expect_eq(itest_topic_partitions(&t, name), -1, "--check created %s", name);
}

Test(topics, fewer_partitions_than_configured_is_an_error)
{
    struct itest_result r;
    char name[256];

    topic_name("retry", name, sizeof(name));
    itest_create_topic(&t, name, 2);
    topics_cmd(NULL, NULL, &r);
    cr_expect_eq(r.exit_code, 1, "exit %d\nstdout: %s", r.exit_code, r.out);
    cr_expect_not_null(strstr(r.err, "has 2 partitions on the broker but the config says 6"),
                       "stderr: %s", r.err);
    itest_result_free(&r);
    /* The others were still created; the short one was left alone. */
    topic_name("failed", name, sizeof(name));
    cr_expect_eq(itest_topic_partitions(&t, name), 3);
    topic_name("retry", name, sizeof(name));
    cr_expect_eq(itest_topic_partitions(&t, name), 2);
}

Test(topics, more_partitions_than_configured_is_a_warning)
{
    struct itest_result r;
    char name[256];

    topic_name("dlq", name, sizeof(name));
    itest_create_topic(&t, name, 4);
    topics_cmd(NULL, NULL, &r);
    cr_expect_eq(r.exit_code, 0, "exit %d\nstderr: %s", r.exit_code, r.err);
    cr_expect_not_null(strstr(r.err, "warning"), "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.out, "more partitions"), "stdout: %s", r.out);
    itest_result_free(&r);
}

Test(topics, unreachable_broker_exits_1)
{
    char *tpl = strdup(itest_default_config);
    char cfg[8192];
    const char *mark = strstr(tpl, "@BOOTSTRAP@");
    cr_assert_not_null(mark);
    snprintf(cfg, sizeof(cfg), "%.*s127.0.0.1:1%s", (int)(mark - tpl), tpl, mark + 11);
    free(tpl);
    itest_write_config(&t, cfg);
    struct itest_result r;
    topics_cmd("--timeout", "3s", &r);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "could not reach the Kafka broker at 127.0.0.1:1"),
                       "stderr: %s", r.err);
    itest_result_free(&r);
}
