/*
 * webhook_listener: a small HTTP endpoint inside a test process that
 * receives gateway-sim's Adyen notifications: it records every POST (body,
 * Authorization and Content-Type) in arrival order and answers 202
 * "[accepted]", or what the test scripted for the next posts (a status, a
 * delay). Fixture state of the test's own process, like sim_test_client's;
 * every function fails the current test when the listener cannot do its part.
 */
#ifndef GATEWAY_SIM_WEBHOOK_LISTENER_H
#define GATEWAY_SIM_WEBHOOK_LISTENER_H

#include <stddef.h>

#include <jansson.h>

/* Listen on an ephemeral loopback port; listener_url() is its address. */
void listener_start(void);
void listener_stop(void);
const char *listener_url(void);

/* Answer the next n posts with status (instead of 202). */
void listener_fail_next(int n, int status);

/* Hold the answer to the next n posts for ms milliseconds. */
void listener_delay_next(int n, long ms);

/* Wait until at least n posts arrived or timeout_ms passed; returns how
 * many arrived. */
size_t listener_wait(size_t n, long timeout_ms);

/* Posts received so far. */
size_t listener_count(void);

/* Post i's body parsed (new reference; fails the test if it is not JSON),
 * its raw body, and a header of it ("" when absent). */
json_t *listener_body(size_t i);
const char *listener_raw(size_t i, char *buf, size_t buflen);
const char *listener_header(size_t i, const char *name, char *buf, size_t buflen);

/* The answer status given to post i. */
int listener_status(size_t i);

#endif
