/*
 * retry_job: one retry event in a retry-consumer, from the polled message to
 * its recorded answer: the copy of the event, its parse (or why it is
 * poison), the claimed request row, and the gateway calls it makes. The
 * worker (retry_worker.c) moves jobs through their states and does the db
 * and Kafka work; this module only builds jobs and starts their calls.
 */
#ifndef CR_RETRY_JOB_H
#define CR_RETRY_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "base/ratelimit.h"
#include "core/breaker.h"
#include "core/retry_steps.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "gateway/gateway.h"
#include "kafka/consumer.h"
#include "store/request_store.h"

/* A configured gateway with its client, breaker and rate limit. */
struct gw {
    const struct config_gateway *cfg;
    struct gateway_client *client;
    struct breaker *breaker;
    struct ratelimit *ratelimit;
};

enum job_state {
    JOB_START,    /* parsed (or poison); next: breaker, token, claim */
    JOB_ASKING,   /* claimed; an inquiry is running (before or after the call) */
    JOB_ASKED,    /* claimed; the inquiry the row asked for first is here */
    JOB_IN_CALL,  /* claimed; the refund call is running */
    JOB_CALLED,   /* the refund's answer is here; next: an inquiry if it needs one */
    JOB_ANSWERED, /* all is known; next: record it */
    JOB_DONE,     /* effects durable: its offset may be committed */
};

struct job {
    struct job *next;
    enum job_state state;
    char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    unsigned char *value; /* the event bytes, for a dead letter */
    size_t len;
    char *key;
    const char *poison_reason; /* set when the event cannot be read */
    char poison_error[512];
    struct cloudevent ev;
    struct retry_scheduled rs;
    struct gw *gw;
    bool breaker_permit;   /* breaker_allow() granted; give back if unused */
    int64_t not_before_ms; /* token wait */
    struct request_row row;
    bool have_row;
    struct attempt_result result;
    char idem_key[300]; /* the Idempotency-Key of the call */
};

/* A new job in JOB_START for the event in rec (copied: the job outlives the
 * message), with its gateway looked up in gws; poison_reason set when the
 * event cannot be read or names no configured gateway. NULL when out of
 * memory. */
struct job *retry_job_new(const struct kafka_record *rec, struct gw *gws, size_t ngws);

void retry_job_free(struct job *j);

/* Ask the gateway what it did about the claimed request (JOB_ASKING; the
 * answer moves the job to JOB_ASKED, or JOB_ANSWERED after a call). */
void retry_job_inquire(struct job *j);

/* The inquiry's finding known without asking the gateway (a stored
 * notification, or nothing could be read: FINDING_UNKNOWN): lands as an
 * inquiry's answer would. */
void retry_job_found(struct job *j, enum refund_finding finding, const char *detail);

/* Send the refund under key generation gen (JOB_IN_CALL; the answer moves
 * the job to JOB_CALLED). */
void retry_job_call(struct job *j, int gen);

void retry_job_log(const struct job *j, enum log_level level, const char *what, const char *why);

#endif
