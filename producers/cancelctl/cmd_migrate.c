/*
 * cancelctl migrate: apply (or list) the database migrations.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelctl.h"
#include "store/migrate.h"

static const char help[] =
    "usage: cancelctl migrate [--migrations-dir DIR] [--status]\n"
    "\n"
    "Apply the database migrations (NNNN_*.sql) that the database has not applied yet, in\n"
    "name order, each in its own transaction. Running it again applies nothing; two runs at\n"
    "once apply each file once. A file changed after it was applied is refused.\n"
    "\n"
    "Options:\n"
    "  --migrations-dir DIR  where the NNNN_*.sql files are (default:\n"
    "                        $CANCEL_RETRY_MIGRATIONS_DIR, else " CR_MIGRATIONS_DIR ")\n"
    "  --status              list applied and pending migrations, change nothing\n"
    "\n"
    "Examples:\n"
    "  cancelctl migrate\n"
    "  cancelctl --config /etc/cancel-retry/cancel-retry.yaml migrate --status\n"
    "  cancelctl migrate --migrations-dir ./schemas/db --json";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_migrate = {
    "migrate", run, "apply the database migrations (--status: list them)", help};

static const char *state_of(const struct migrate_entry *e)
{
    if (e->changed)
        return "changed";
    if (e->applied && !e->file_exists)
        return "applied, file missing";
    return e->applied ? "applied" : "pending";
}

static json_t *entries_json(const struct migrate_status *st)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < st->n; i++) {
        const struct migrate_entry *e = &st->entries[i];
        json_t *o = json_pack("{s:s, s:s, s:s}", "version", e->version, "file", e->file, "state",
                              state_of(e));
        if (e->applied_at != NULL)
            json_object_set_new(o, "appliedAt", json_string(e->applied_at));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void print_table(const struct migrate_status *st)
{
    printf("%-32s %-22s %s\n", "MIGRATION", "STATE", "APPLIED AT");
    for (size_t i = 0; i < st->n; i++) {
        const struct migrate_entry *e = &st->entries[i];
        printf("%-32s %-22s %s\n", e->file, state_of(e), e->applied_at ? e->applied_at : "-");
    }
}

static int show_status(struct cancelctl_ctx *ctx, struct db *db, const char *dir)
{
    char err[1024];
    struct migrate_status *st = NULL;

    if (!migrate_status(db, dir, &st, err, sizeof(err)))
        return cancelctl_fail(ctx, "%s", err);
    int rc = st->n_changed > 0 ? CANCELCTL_EXIT_FAILURE : CANCELCTL_EXIT_OK;
    if (ctx->json) {
        cancelctl_print_json(json_pack("{s:b, s:s, s:i, s:o}", "ok", rc == 0, "directory", dir,
                                       "pending", (int)st->n_pending, "migrations",
                                       entries_json(st)));
    } else {
        print_table(st);
        printf("%zu pending\n", st->n_pending);
    }
    if (st->n_changed > 0)
        fprintf(stderr, "cancelctl: %zu applied migration%s changed since: restore %s\n",
                st->n_changed, st->n_changed == 1 ? "" : "s", st->n_changed == 1 ? "it" : "them");
    migrate_status_free(st);
    return rc;
}

static int apply(struct cancelctl_ctx *ctx, struct db *db, const char *dir)
{
    char err[1024];
    struct migrate_status *before = NULL, *after = NULL;
    int applied = 0, rc;

    /* What was pending before tells which files this run applied. */
    if (!migrate_status(db, dir, &before, err, sizeof(err)))
        return cancelctl_fail(ctx, "%s", err);
    if (!migrate_apply(db, dir, &applied, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    if (!migrate_status(db, dir, &after, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    json_t *names = json_array();
    int shown = 0;
    for (size_t i = 0; i < before->n && shown < applied; i++) {
        const struct migrate_entry *e = &before->entries[i];
        if (e->applied || !e->file_exists)
            continue;
        shown++;
        json_array_append_new(names, json_string(e->version));
        if (!ctx->json)
            printf("applied %s\n", e->file);
    }
    if (ctx->json) {
        cancelctl_print_json(json_pack("{s:b, s:s, s:o, s:o}", "ok", 1, "directory", dir, "applied",
                                       names, "migrations", entries_json(after)));
    } else {
        json_decref(names);
        if (applied == 0)
            printf("already up to date (%zu migration%s applied)\n", after->n,
                   after->n == 1 ? "" : "s");
        else
            printf("database is up to date (%d applied now, %zu in all)\n", applied, after->n);
    }
    rc = CANCELCTL_EXIT_OK;
out:
    migrate_status_free(before);
    migrate_status_free(after);
    return rc;
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"migrations-dir", required_argument, NULL, 'd'},
                                             {"status", no_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    const char *dir = getenv("CANCEL_RETRY_MIGRATIONS_DIR");
    bool status = false;
    int c;

    if (dir == NULL || dir[0] == '\0')
        dir = CR_MIGRATIONS_DIR;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 's':
            status = true;
            break;
        default:
            return cancelctl_bad_option(&cancelctl_cmd_migrate, c, argc, argv);
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(&cancelctl_cmd_migrate, "unexpected argument \"%s\"",
                                     argv[optind]);

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    struct db *db = cancelctl_connect_db(ctx, cfg);
    int rc = CANCELCTL_EXIT_FAILURE;
    if (db != NULL)
        rc = status ? show_status(ctx, db, dir) : apply(ctx, db, dir);
    db_free(db);
    config_free(cfg);
    return rc;
}
