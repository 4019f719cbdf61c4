/*
 * outbox: the transactional outbox. Every event that must reach Kafka is
 * inserted here inside the transaction that makes the state change it
 * announces; outbox-relay publishes due rows in id order and marks them
 * published only after the broker acknowledged them.
 *
 * All functions take a PGconn the caller owns; none opens or commits a
 * transaction itself, except where stated.
 */
#ifndef CR_OUTBOX_H
#define CR_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event/cloudevent.h"
#include "store/db.h"

/* A row to insert. Every pointer is borrowed for the duration of the call. */
struct outbox_msg {
    const char *topic;
    const char *key;   /* Kafka key (the requestId), may be NULL */
    const void *value; /* message bytes */
    size_t value_len;
    const json_t *headers;   /* [[name, value], ...] or NULL */
    const char *event_type;  /* CloudEvents type, or "dead-letter"; for queries */
    const char *event_id;    /* CloudEvents id, may be NULL */
    const char *request_id;  /* may be NULL (an unparseable dead letter) */
    int64_t available_at_ms; /* epoch ms; 0 = now */
};

/* A row read back for publishing. Owned by the array from outbox_fetch_due(). */
struct outbox_row {
    int64_t id;
    char *topic;
    char *key; /* NULL if none */
    unsigned char *value;
    size_t value_len;
    json_t *headers;         /* array of pairs, owned; NULL when they could not be read */
    char headers_error[160]; /* why headers is NULL, "" otherwise */
};

/* The active relay's fencing token (relay_lease.h): the lease row's name,
 * its holder and epoch. Strings borrowed. */
struct outbox_fence {
    const char *lease_name;
    const char *holder;
    int64_t epoch;
};

/* Insert one row. Returns false with err set on failure; the error class is
 * in db_last_error_class(db). */
bool outbox_insert(struct db *db, const struct outbox_msg *msg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Insert msgs[0..n) in one statement, in that order (ascending ids): one
 * round trip for a whole batch. All or nothing, like one row. */
bool outbox_insert_many(struct db *db, const struct outbox_msg *msgs, size_t n, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* A CloudEvent made for the outbox by outbox_event_build(): msg is the row,
 * pointing into the event's own id, bytes and headers, so the struct must
 * not move while msg is used. Clear with outbox_event_clear(). */
struct outbox_event {
    struct outbox_msg msg;
    char id[CLOUDEVENT_ID_LEN];
    char *json;      /* the event, owned */
    json_t *headers; /* owned */
};

/* Build a CloudEvent (cloudevent_build) of type with subject = request_id and
 * the given data (borrowed), for topic, keyed by request_id, available at
 * available_at_ms (0: now). On failure ev is cleared and err says why. */
bool outbox_event_build(struct outbox_event *ev, const char *topic, const char *type,
                        const char *request_id, const char *correlation_id, const json_t *data,
                        int64_t available_at_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void outbox_event_clear(struct outbox_event *ev);

/* outbox_event_build() and insert it. */
bool outbox_insert_event(struct db *db, const char *topic, const char *type, const char *request_id,
                         const char *correlation_id, const json_t *data, int64_t available_at_ms,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Read up to limit unpublished, unparked rows whose available_at has come,
 * in id order. On success *rows_out is a malloc'd array of *n_out rows (free
 * with outbox_rows_free). A row whose headers cannot be read comes back with
 * headers NULL and headers_error set, for the relay to park. */
bool outbox_fetch_due(struct db *db, int limit, struct outbox_row **rows_out, size_t *n_out,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* The same, only rows with an id above after_id: the relay goes on from the
 * last row of a batch that ended without a failure, rather than from the
 * start of the table each time. Rows below it that became due, or visible,
 * meanwhile are the next outbox_fetch_due's. */
bool outbox_fetch_due_after(struct db *db, int64_t after_id, int limit,
                            struct outbox_row **rows_out, size_t *n_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* outbox_fetch_due_after in two steps (db_send_params): send the query,
 * and later take its rows. The connection runs nothing else in between. */
bool outbox_fetch_due_send(struct db *db, int64_t after_id, int limit, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool outbox_fetch_due_take(struct db *db, struct outbox_row **rows_out, size_t *n_out, char *err,
                           size_t errlen) __attribute__((warn_unused_result));
void outbox_rows_free(struct outbox_row *rows, size_t n);

/* The relay's writes below are fenced: they change nothing, and set
 * *held_out false, when fence is no longer the lease's current holder and
 * epoch (another relay took over). *held_out is true otherwise. */

/* Mark rows published (after their delivery reports succeeded), recording
 * the epoch that published them. */
bool outbox_mark_published(struct db *db, const struct outbox_fence *fence, const int64_t *ids,
                           size_t n, bool *held_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same in two steps: send the statement (n > 0), and later take its
 * result. The connection runs nothing else in between. */
bool outbox_mark_published_send(struct db *db, const struct outbox_fence *fence, const int64_t *ids,
                                size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool outbox_mark_published_take(struct db *db, bool *held_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Record a failed publish of one row; it stays pending and is retried. */
bool outbox_mark_failed(struct db *db, const struct outbox_fence *fence, int64_t id,
                        const char *error, bool *held_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Park one row that can never be published as it is: the relay fetches it
 * no more until an operator requeues it (ops_outbox.h). reason ("CODE:
 * detail") is kept in park_reason and last_error. */
bool outbox_park(struct db *db, const struct outbox_fence *fence, int64_t id, const char *reason,
                 bool *held_out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Milliseconds until the next unpublished, unparked row becomes due: 0 if one is due
 * now, -1 if there is none. */
bool outbox_next_due_in_ms(struct db *db, int64_t *ms_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Unpublished, unparked rows already due (*due_rows), and for how long the
 * oldest of them has been due (*oldest_due_ms, 0 when none is). */
bool outbox_backlog(struct db *db, int64_t *due_rows, int64_t *oldest_due_ms, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Delete up to limit rows published more than retention_ms ago. */
bool outbox_purge_published(struct db *db, int64_t retention_ms, int limit, int *deleted_out,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
