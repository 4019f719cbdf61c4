/*
 * migrate: ordered, checksummed, serialized schema migrations. See migrate.h.
 */
#include "store/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* Every statement below takes this lock first. A transaction-scoped lock
 * (released by COMMIT/ROLLBACK, even if the process dies) keyed by a hash of
 * a fixed name, so no other part of the system can collide with it by
 * accident. */
static const char lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('cancel_retry.migrate', 0))";

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

static const char table_exists_sql[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";

static const char applied_sql[] =
    "SELECT version, checksum,"
    " to_char(applied_at AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM schema_migrations ORDER BY version";

static const char applied_one_sql[] = "SELECT checksum FROM schema_migrations WHERE version = $1";

static const char record_sql[] =
    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)";

static const char checksum_sql[] = "SELECT md5($1::bytea)";

/* A migration may run longer than the session's statement_timeout (an index
 * on a big table); lift it for this transaction only. */
static const char no_timeout_sql[] = "SELECT set_config('statement_timeout', '0', true)";
/* clang-format on */

/* "NNNN_something.sql": four digits, underscore, at least one more char. */
static bool is_migration_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
        return false;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)name[i]))
            return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The migration files of dir, sorted; *out owned by the caller. */
static bool scan_dir(const char *dir, char ***out, size_t *nout, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0;

    if (d == NULL) {
        snprintf(err, errlen, "could not read migrations directory \"%s\": %s", dir,
                 strerror(errno));
        return false;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_migration_name(de->d_name))
            continue;
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        if (grown == NULL || (grown[n] = strdup(de->d_name)) == NULL) {
            closedir(d);
            free_names(grown ? grown : names, n);
            snprintf(err, errlen, "could not read migrations directory \"%s\": out of memory", dir);
            return false;
        }
        names = grown;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 1; i < n; i++) {
        if (strncmp(names[i - 1], names[i], 4) == 0) {
            snprintf(err, errlen, "cannot apply migrations: %s and %s share the number %.4s",
                     names[i - 1], names[i], names[i]);
            free_names(names, n);
            return false;
        }
    }
    *out = names;
    *nout = n;
    return true;
}

/* Whole file into a NUL-terminated buffer; *out owned by the caller. */
static bool read_whole(const char *path, const char *name, char **out, size_t *len, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        snprintf(err, errlen, "could not read migration %s: %s", name, strerror(errno));
        return false;
    }
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *grown = realloc(buf, cap + 1);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "could not read migration %s: out of memory", name);
                return false;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        snprintf(err, errlen, "could not read migration %s: read error", name);
        return false;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        free(buf);
        snprintf(err, errlen, "cannot apply migration %s: the file contains a NUL byte", name);
        return false;
    }
    *out = buf;
    *len = n;
    return true;
}

/* md5 of the bytes, computed by the server so that no crypto library is
 * needed here and the value matches `md5sum`. *out owned by the caller. */
static bool checksum(struct db *db, const char *buf, size_t len, const char *name, char **out,
                     char *err, size_t errlen)
{
    const char *params[] = {buf};
    const int lengths[] = {(int)len};
    const int formats[] = {1};
    PGresult *res = NULL;
    char why[512];

    if (!db_exec_params(db, checksum_sql, 1, params, lengths, formats, 0, PGRES_TUPLES_OK, &res,
                        why, sizeof(why))) {
        snprintf(err, errlen, "could not checksum migration %s: %s", name, why);
        return false;
    }
    *out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*out == NULL) {
        snprintf(err, errlen, "could not checksum migration %s: out of memory", name);
        return false;
    }
    return true;
}

void migrate_status_free(struct migrate_status *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++) {
        free(st->entries[i].version);
        free(st->entries[i].file);
        free(st->entries[i].checksum);
        free(st->entries[i].applied_at);
    }
    free(st->entries);
    free(st);
}

static char *join_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Find or append the entry for version; NULL when out of memory. */
static struct migrate_entry *entry_for(struct migrate_status *st, const char *version)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->entries[i].version, version) == 0)
            return &st->entries[i];
    }
    struct migrate_entry *grown = realloc(st->entries, (st->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    st->entries = grown;
    struct migrate_entry *e = &st->entries[st->n];
    memset(e, 0, sizeof(*e));
    size_t flen = strlen(version) + 5;
    e->version = strdup(version);
    e->file = malloc(flen);
    if (e->version == NULL || e->file == NULL) {
        free(e->version);
        free(e->file);
        return NULL;
    }
    snprintf(e->file, flen, "%s.sql", version);
    st->n++;
    return e;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct migrate_entry *)a)->version,
                  ((const struct migrate_entry *)b)->version);
}

bool migrate_status(struct db *db, const char *dir, struct migrate_status **out, char *err,
                    size_t errlen)
{
    char **names = NULL;
    size_t nnames = 0;
    PGresult *res = NULL;
    char why[512];
    bool ok = false;
    struct migrate_status *st = calloc(1, sizeof(*st));

    *out = NULL;
    if (st == NULL) {
        snprintf(err, errlen, "could not read migration status: out of memory");
        return false;
    }
    if (!scan_dir(dir, &names, &nnames, err, errlen))
        goto out;
    for (size_t i = 0; i < nnames; i++) {
        char version[256];
        snprintf(version, sizeof(version), "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        struct migrate_entry *e = entry_for(st, version);
        char *path = join_path(dir, names[i]);
        char *buf = NULL;
        size_t len = 0;
        if (e == NULL || path == NULL) {
            free(path);
            snprintf(err, errlen, "could not read migration status: out of memory");
            goto out;
        }
        e->file_exists = true;
        bool read_ok = read_whole(path, names[i], &buf, &len, err, errlen) &&
                       checksum(db, buf, len, names[i], &e->checksum, err, errlen);
        free(path);
        free(buf);
        if (!read_ok)
            goto out;
    }
    if (!db_exec(db, table_exists_sql, 0, NULL, PGRES_TUPLES_OK, &res, why, sizeof(why))) {
        snprintf(err, errlen, "could not read migration status: %s", why);
        goto out;
    }
    bool have_table = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (have_table) {
        if (!db_exec(db, applied_sql, 0, NULL, PGRES_TUPLES_OK, &res, why, sizeof(why))) {
            snprintf(err, errlen, "could not read migration status: %s", why);
            goto out;
        }
        for (int r = 0; r < PQntuples(res); r++) {
            struct migrate_entry *e = entry_for(st, PQgetvalue(res, r, 0));
            if (e == NULL || (e->applied_at = strdup(PQgetvalue(res, r, 2))) == NULL) {
                snprintf(err, errlen, "could not read migration status: out of memory");
                goto out;
            }
            e->applied = true;
            e->changed = e->file_exists && strcmp(e->checksum, PQgetvalue(res, r, 1)) != 0;
        }
    }
    qsort(st->entries, st->n, sizeof(*st->entries), cmp_entry);
    for (size_t i = 0; i < st->n; i++) {
        if (st->entries[i].file_exists && !st->entries[i].applied)
            st->n_pending++;
        if (st->entries[i].changed)
            st->n_changed++;
    }
    ok = true;
out:
    PQclear(res);
    free_names(names, nnames);
    if (ok)
        *out = st;
    else
        migrate_status_free(st);
    return ok;
}

/* BEGIN + the lock; on failure nothing is left open. */
static bool begin_locked(struct db *db, char *why, size_t whylen)
{
    if (!db_begin(db, why, whylen))
        return false;
    if (!db_exec(db, lock_sql, 0, NULL, PGRES_TUPLES_OK, NULL, why, whylen)) {
        db_rollback(db);
        return false;
    }
    return true;
}

/* "could not apply migration F: <message> (SQLSTATE x) at line N": the
 * server gives the character position of syntax errors in the script; turn
 * it into a line an author can jump to. */
static void describe_script_error(struct db *db, const PGresult *res, const char *script,
                                  const char *file, char *err, size_t errlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    char where[48] = "";

    if (primary == NULL)
        primary = PQerrorMessage(db_conn(db));
    if (pos != NULL) {
        /* The position counts characters (not bytes) from 1. */
        long chars = strtol(pos, NULL, 10);
        int line = 1;
        for (const char *p = script; *p != '\0' && chars > 1; p++) {
            if (((unsigned char)*p & 0xC0) != 0x80)
                chars--;
            if (*p == '\n')
                line++;
        }
        snprintf(where, sizeof(where), " at line %d", line);
    }
    snprintf(err, errlen, "could not apply migration %s: %.*s%s%s%s%s", file,
             (int)strcspn(primary, "\n"), primary, sqlstate ? " (SQLSTATE " : "",
             sqlstate ? sqlstate : "", sqlstate ? ")" : "", where);
}

/* Apply one file in its own transaction with its schema_migrations row.
 * *applied tells whether it ran (false: a concurrent migrate got there
 * first, with the same checksum). */
static bool apply_one(struct db *db, const char *dir, const struct migrate_entry *e, bool *applied,
                      char *err, size_t errlen)
{
    char why[512];
    char *path = join_path(dir, e->file);
    char *buf = NULL;
    size_t len = 0;
    PGresult *res = NULL;
    bool ok = false;

    *applied = false;
    if (path == NULL) {
        snprintf(err, errlen, "could not apply migration %s: out of memory", e->file);
        return false;
    }
    /* Read again: the file must be the one whose checksum is recorded. */
    char *sum = NULL;
    if (!read_whole(path, e->file, &buf, &len, err, errlen) ||
        !checksum(db, buf, len, e->file, &sum, err, errlen))
        goto out;
    if (!begin_locked(db, why, sizeof(why))) {
        snprintf(err, errlen, "could not apply migration %s: %s", e->file, why);
        goto out;
    }
    const char *one[] = {e->version};
    if (!db_exec(db, applied_one_sql, 1, one, PGRES_TUPLES_OK, &res, why, sizeof(why))) {
        snprintf(err, errlen, "could not apply migration %s: %s", e->file, why);
        goto rollback;
    }
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), sum) != 0) {
            snprintf(err, errlen, "cannot apply migrations: %s was changed after it was applied",
                     e->file);
            goto rollback;
        }
        ok = true; /* applied meanwhile by someone else: nothing to do */
        goto rollback;
    }
    if (!db_exec(db, no_timeout_sql, 0, NULL, PGRES_TUPLES_OK, NULL, why, sizeof(why))) {
        snprintf(err, errlen, "could not apply migration %s: %s", e->file, why);
        goto rollback;
    }
    /* The one place that runs SQL without PQexecParams: a migration file is
     * a script of many statements (and plpgsql bodies), which only the
     * simple query protocol accepts. Its text comes from the repository,
     * never from input. */
    PGresult *script = PQexec(db_conn(db), buf);
    ExecStatusType st = script ? PQresultStatus(script) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        describe_script_error(db, script, buf, e->file, err, errlen);
        PQclear(script);
        goto rollback;
    }
    PQclear(script);
    if (PQtransactionStatus(db_conn(db)) != PQTRANS_INTRANS) {
        snprintf(err, errlen,
                 "cannot apply migration %s: it ended the transaction itself (remove its "
                 "BEGIN/COMMIT)",
                 e->file);
        goto rollback;
    }
    const char *rec[] = {e->version, sum};
    if (!db_exec(db, record_sql, 2, rec, PGRES_COMMAND_OK, NULL, why, sizeof(why)) ||
        !db_commit(db, why, sizeof(why))) {
        snprintf(err, errlen, "could not apply migration %s: %s", e->file, why);
        goto rollback;
    }
    *applied = true;
    ok = true;
    goto out;
rollback:
    db_rollback(db);
out:
    PQclear(res);
    free(sum);
    free(buf);
    free(path);
    return ok;
}

bool migrate_apply(struct db *db, const char *dir, int *applied_out, char *err, size_t errlen)
{
    struct migrate_status *st = NULL;
    char why[512];
    int applied = 0;
    bool ok = false;

    if (applied_out != NULL)
        *applied_out = 0;
    /* The table is created under the lock too: two concurrent CREATE TABLE IF
     * NOT EXISTS can still collide in the catalog. */
    if (!begin_locked(db, why, sizeof(why)) ||
        !db_exec(db, create_table_sql, 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) ||
        !db_commit(db, why, sizeof(why))) {
        db_rollback(db);
        snprintf(err, errlen, "could not create schema_migrations: %s", why);
        return false;
    }
    if (!migrate_status(db, dir, &st, err, errlen))
        return false;
    for (size_t i = 0; i < st->n; i++) {
        const struct migrate_entry *e = &st->entries[i];
        if (e->changed) {
            snprintf(err, errlen, "cannot apply migrations: %s was changed after it was applied",
                     e->file);
            goto out;
        }
        if (e->applied && !e->file_exists)
            log_warn("migration %s is recorded in the database but missing from %s", e->file, dir);
    }
    for (size_t i = 0; i < st->n; i++) {
        const struct migrate_entry *e = &st->entries[i];
        bool did = false;
        if (e->applied || !e->file_exists)
            continue;
        if (!apply_one(db, dir, e, &did, err, errlen))
            goto out;
        if (did) {
            applied++;
            log_info("applied migration %s", e->file);
        }
    }
    ok = true;
out:
    if (applied_out != NULL)
        *applied_out = applied;
    migrate_status_free(st);
    return ok;
}
