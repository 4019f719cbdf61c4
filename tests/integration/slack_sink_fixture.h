/*
 * slack_sink_fixture: a slack-sink (tests/slack-sink, $CR_SLACK_SINK) for a
 * test of Slack alerts: an incoming-webhook stand-in on an ephemeral port
 * that records every post and answers with the faults the test sets.
 *
 * Start it before pipeline_start: it puts its webhook URL in
 * CR_IT_SLACK_URL, and the config names it as
 *     webhook_url: "${CR_IT_SLACK_URL}"
 * which the pipeline's config merge expands. Then the test starts an
 * alert-consumer with pipeline_start_process(p, PIPELINE_ALERT, 0).
 *
 * Every function fails the current Criterion test when the sink does not do
 * its part.
 */
#ifndef CR_TEST_SLACK_SINK_FIXTURE_H
#define CR_TEST_SLACK_SINK_FIXTURE_H

#include <stddef.h>

#include <jansson.h>

#include "child_process.h"

struct slack_sink {
    struct child proc;
    char url[128];     /* http://127.0.0.1:<port> */
    char webhook[256]; /* url + the hook path: CR_IT_SLACK_URL */
    char dir[64];      /* temp dir of its port file and log */
};

/* Start the sink, set s->url and s->webhook (url + hook_path, e.g.
 * "/services/T000/B000/token") and CR_IT_SLACK_URL to the webhook. */
void slack_sink_start(struct slack_sink *s, const char *hook_path);

/* Stop it (SIGTERM, SIGKILL after 15 s) and remove its temp dir. A zeroed
 * or stopped s is a no-op. */
void slack_sink_stop(struct slack_sink *s);

/* method path on the sink's own API (/_sink/posts, /_sink/fault), body may
 * be NULL; returns the JSON answer (caller decrefs). */
json_t *slack_sink_call(const struct slack_sink *s, const char *method, const char *path,
                        const char *body);

/* POST /_sink/fault: how the sink answers the next posts (see
 * tests/slack-sink/main.c). */
void slack_sink_fault(const struct slack_sink *s, const char *json);

/* Every post the sink saw, in order: objects with status, path and payload
 * (new reference). */
json_t *slack_sink_posts(const struct slack_sink *s);

/* Poll until the sink accepted (answered 200) at least n posts or
 * timeout_ms passed; returns every post it saw then (new reference). */
json_t *slack_sink_wait_accepted(const struct slack_sink *s, size_t n, int timeout_ms);

/* How many of posts were answered with HTTP status. */
size_t slack_sink_count_status(const json_t *posts, int status);

/* The text of a post's payload ("" when it has none). */
const char *slack_sink_text(const json_t *post);

#endif
