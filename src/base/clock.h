/*
 * clock: the two clocks, in milliseconds, named for which they are.
 *
 * mono_ms() measures: timeouts, back-off, deadlines within this process; it
 * never jumps when the system time is set, keeps counting while the process
 * is stopped (which is how a frozen relay sees its lease run out), and means
 * nothing outside the process. wall_ms() says when: instants written to the database, events and
 * logs, compared with other machines' times (dueAt, decidedAt, lease expiry).
 */
#ifndef CR_CLOCK_H
#define CR_CLOCK_H

#include <stdint.h>

/* Milliseconds from CLOCK_MONOTONIC (an arbitrary start, never set back). */
int64_t mono_ms(void);

/* Milliseconds since the Unix epoch, from CLOCK_REALTIME. */
int64_t wall_ms(void);

#endif
