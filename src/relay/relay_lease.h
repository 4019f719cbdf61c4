/*
 * relay_lease: which outbox-relay is the active one, decided by a lease row
 * in PostgreSQL (relay_leader, schemas/db/0005_relay_lease_outbox_parking.sql)
 * with a fencing token.
 *
 * Why not the session-level advisory lock the relay used to hold: that lock
 * lives as long as the database session, and a relay host that dies or is
 * cut off without a FIN leaves its session (and the lock) to the server
 * until TCP keepalive gives up, about two hours with PostgreSQL's defaults.
 * Tuning keepalives would shorten that but not to seconds on every
 * deployment (poolers, cloud load balancers), and it would never cover a
 * relay that froze (a stopped VM, a long GC-like stall) with its socket
 * still answered by the kernel. A lease counts on the database's clock alone:
 *
 * - the active relay renews expires_at every third of relay.leader_lease;
 * - a standby takes the row (epoch + 1) once expires_at has passed, or at
 *   once when the holder's database session is gone (its backend is no
 *   longer in pg_stat_activity: a crash, kill -9, pg_terminate_backend, a
 *   connection reset), so the common failures still fail over in about a
 *   second;
 * - the epoch is the fencing token: the statements that mark outbox rows
 *   published, failed or parked carry it (outbox.h, struct outbox_fence) and
 *   change nothing once a newer epoch exists;
 * - the holder stops publishing on its own before its lease can end: it
 *   counts the lease from the moment it sent the renewal (the database's
 *   now() of that statement is later) on the monotonic clock, which keeps
 *   running while the process is stopped, minus a margin of a fifth of the
 *   lease for clock rate differences. A relay that wakes from a freeze, or
 *   could not renew because the database is unreachable, sees its lease run
 *   out before it produces another message, and then asks the database.
 *
 * Two active relays at once are therefore impossible for longer than it
 * takes the old one's messages already handed to librdkafka to go out
 * (duplicates, which consumers absorb), never with both marking rows.
 */
#ifndef CR_RELAY_LEASE_H
#define CR_RELAY_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

/* The relay_leader row of the outbox relays. */
#define RELAY_LEASE_NAME "outbox-relay"

struct relay_lease {
    char holder[256];       /* this relay's worker id */
    int64_t lease_ms;       /* relay.leader_lease */
    int64_t epoch;          /* the fencing token while held; 0 when not */
    int64_t valid_until_ms; /* monotonic ms: publishing stops here unless renewed */
    int64_t renew_at_ms;    /* monotonic ms: the next renewal */
};

/* Why a take succeeded, for the log. */
struct relay_lease_takeover {
    char previous[256]; /* the last holder, "" if none */
    bool expired;       /* its lease had lapsed */
    bool session_gone;  /* its database session no longer existed */
    bool released;      /* it gave the lease up (shut down) */
};

enum relay_lease_result {
    RELAY_LEASE_HELD = 0, /* ours, with l->epoch */
    RELAY_LEASE_OTHER,    /* another relay holds it (or took it from us) */
    RELAY_LEASE_DB_ERROR, /* could not ask: err says why */
};

/* Start not holding the lease. holder and lease_ms are copied. */
void relay_lease_init(struct relay_lease *l, const char *holder, int64_t lease_ms);

/* ---- pure: what the holder may do at monotonic time now_ms ---- */

/* True while held and the lease cannot have ended: the holder may publish. */
bool relay_lease_valid(const struct relay_lease *l, int64_t now_ms);

/* True when held and a renewal is due (a third of the lease after the last
 * one; half a second after a renewal that could not reach the database). */
bool relay_lease_renew_due(const struct relay_lease *l, int64_t now_ms);

/* The holder's view after a renewal sent at sent_ms succeeded: valid until
 * sent_ms + lease - lease / 5, next renewal at sent_ms + lease / 3. */
void relay_lease_renewed(struct relay_lease *l, int64_t sent_ms);

/* Forget the lease locally (lost, or the session it was taken on ended). */
void relay_lease_drop(struct relay_lease *l);

/* ---- database ---- */

/* Take the lease if it is free, lapsed, or its holder's session is gone.
 * RELAY_LEASE_HELD sets l->epoch (a new one) and fills *why (may be NULL). */
enum relay_lease_result relay_lease_acquire(struct relay_lease *l, struct db *db,
                                            struct relay_lease_takeover *why, char *err,
                                            size_t errlen);

/* Renew a held lease. RELAY_LEASE_OTHER: another relay took it; the lease is
 * dropped. RELAY_LEASE_DB_ERROR: still ours as far as we know, until
 * relay_lease_valid() says otherwise; the next try is due in half a second. */
enum relay_lease_result relay_lease_renew(struct relay_lease *l, struct db *db, char *err,
                                          size_t errlen);

/* End a held lease now (on shutdown), so that a standby takes over at its
 * next try rather than when the lease lapses. Best effort; drops it. */
void relay_lease_release(struct relay_lease *l, struct db *db);

#endif
