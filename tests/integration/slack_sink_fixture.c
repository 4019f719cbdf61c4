/*
 * slack_sink_fixture: the slack-sink of a test. See slack_sink_fixture.h.
 */
#include "slack_sink_fixture.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http_fixture.h"

void slack_sink_start(struct slack_sink *s, const char *hook_path)
{
    char port_file[128], log_path[128];
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/cr-it-slack-sink-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir), "could not create a temp dir for the slack-sink");
    snprintf(port_file, sizeof(port_file), "%s/sink.port", s->dir);
    snprintf(log_path, sizeof(log_path), "%s/slack-sink.log", s->dir);
    const char *argv[] = {itest_require_env("CR_SLACK_SINK"),
                          "--listen",
                          "127.0.0.1:0",
                          "--port-file",
                          port_file,
                          NULL};
    s->proc.pid = child_spawn(argv, log_path);
    int port = child_wait_port_file(port_file, 5000, "slack-sink", log_path);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", port);
    snprintf(s->webhook, sizeof(s->webhook), "%s%s", s->url, hook_path);
    setenv("CR_IT_SLACK_URL", s->webhook, 1);
}

void slack_sink_stop(struct slack_sink *s)
{
    child_stop(&s->proc, "slack-sink");
    if (s->dir[0] != '\0' && !itest_remove_tree(s->dir))
        fprintf(stderr, "could not remove %s\n", s->dir);
    s->dir[0] = '\0';
}

json_t *slack_sink_call(const struct slack_sink *s, const char *method, const char *path,
                        const char *body)
{
    char url[256], err[256], *answer = NULL;
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    long status = http_fixture_call(NULL, method, url, body, 10000, &answer, err, sizeof(err));
    json_t *j = json_loads(answer, 0, NULL);
    free(answer);
    cr_assert_neq(status, 0, "sink %s %s: %s", method, path, err);
    cr_assert_not_null(j, "sink %s %s: not JSON", method, path);
    return j;
}

void slack_sink_fault(const struct slack_sink *s, const char *json)
{
    json_decref(slack_sink_call(s, "POST", "/_sink/fault", json));
}

json_t *slack_sink_posts(const struct slack_sink *s)
{
    json_t *j = slack_sink_call(s, "GET", "/_sink/posts", NULL);
    json_t *posts = json_incref(json_object_get(j, "posts"));
    json_decref(j);
    cr_assert(json_is_array(posts), "sink GET /_sink/posts: no posts array");
    return posts;
}

size_t slack_sink_count_status(const json_t *posts, int status)
{
    size_t i, n = 0;
    json_t *post;
    json_array_foreach(posts, i, post)
    {
        if (json_integer_value(json_object_get(post, "status")) == status)
            n++;
    }
    return n;
}

json_t *slack_sink_wait_accepted(const struct slack_sink *s, size_t n, int timeout_ms)
{
    for (int waited = 0;; waited += 250) {
        json_t *posts = slack_sink_posts(s);
        if (slack_sink_count_status(posts, 200) >= n || waited >= timeout_ms)
            return posts;
        json_decref(posts);
        itest_sleep_ms(250);
    }
}

const char *slack_sink_text(const json_t *post)
{
    const char *t = json_string_value(json_object_get(json_object_get(post, "payload"), "text"));
    return t != NULL ? t : "";
}
