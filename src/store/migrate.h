/*
 * migrate: apply schemas/db/NNNN_*.sql in name order, each exactly once.
 *
 * Applied files are recorded in schema_migrations (version = file name
 * without ".sql", the md5 of the file's bytes as PostgreSQL's md5() computes
 * it, so `md5sum FILE` shows the same value, and when). A file that changed
 * after it was applied is refused: a migration is history, fixes go in a new
 * file. Concurrent runs serialize on an advisory lock, so two operators (or
 * two deploy jobs) running `cancelctl migrate` at once apply each file once.
 *
 * Migration files must not contain BEGIN/COMMIT: each runs inside the
 * transaction that also records it, so a failure leaves no trace.
 */
#ifndef CR_MIGRATE_H
#define CR_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/db.h"

/* One migration as migrate_status() sees it. */
struct migrate_entry {
    char *version;    /* "0001_init" */
    char *file;       /* "0001_init.sql" */
    bool file_exists; /* false: recorded in the db but no such file in dir */
    bool applied;
    bool changed;     /* applied, but the file's checksum differs from the record */
    char *checksum;   /* of the file (NULL if the file is missing) */
    char *applied_at; /* RFC 3339-ish text from the db, NULL if not applied */
};

struct migrate_status {
    struct migrate_entry *entries; /* in version order */
    size_t n;
    size_t n_pending; /* files not yet applied */
    size_t n_changed; /* applied files that changed since */
};

/* Apply every pending migration of dir on the connected db. *applied_out
 * (may be NULL) receives how many were applied by this call (0 = up to
 * date). Stops at the first failure, leaving the ones before it applied.
 * Errors: "could not read migrations directory ...", "could not apply
 * migration 0002_x.sql: <server message>", "cannot apply migrations:
 * 0001_init.sql was changed after it was applied". */
bool migrate_apply(struct db *db, const char *dir, int *applied_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Compare dir with what the db recorded, without changing anything (a db
 * that never saw a migration simply has everything pending). On success
 * *out is a new struct for migrate_status_free(). */
bool migrate_status(struct db *db, const char *dir, struct migrate_status **out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

void migrate_status_free(struct migrate_status *st);

#endif
