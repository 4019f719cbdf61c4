/*
 * ops_report: what `cancelctl status` and `cancelctl show` read from the
 * database, as JSON documents. The commands print the document with --json
 * or render it as tables; tests read the same documents.
 */
#ifndef CR_OPS_REPORT_H
#define CR_OPS_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config/config.h"
#include "store/db.h"

/* The rows of res as a JSON array of objects keyed by column name: integers
 * (int2/4/8) as numbers, booleans as true/false, json/jsonb parsed, SQL NULL
 * as null, everything else as text. New reference; NULL when out of memory. */
json_t *ops_report_rows(const PGresult *res);

/* Run sql (text parameters) and return its rows as ops_report_rows() does;
 * NULL with err = "context: reason" on failure. */
json_t *ops_report_query(struct db *db, const char *sql, int n, const char *const *values,
                         const char *context, char *err, size_t errlen);

/* The database half of `cancelctl status`: {"requests": {"byStatus", "total"},
 * "oldestDue", "inFlight", "outbox" (with "parked" and "oldestParked"), "relay" (the
 * lease's holder), "replays", "slack", "reconciliation":
 * {"openMismatches": {"total", "byKind"}, "recentOpen", "lastRun"}}. New
 * reference in *out. */
bool ops_report_status(struct db *db, const struct config *cfg, json_t **out, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* Everything about one request: {"request", "attempts", "events",
 * "deadLetters", "replays", "operatorActions", "next"}. *out NULL (and true
 * returned) when there is no such request. */
bool ops_report_show(struct db *db, const struct config *cfg, const char *request_id, json_t **out,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
