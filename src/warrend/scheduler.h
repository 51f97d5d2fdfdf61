/* The scheduler: fires the config's `schedules` from the supervisor.
 *
 * It runs inside the supervisor's single-threaded loop: the loop calls
 * warrend_scheduler_tick() about every 100 ms and a tick never blocks for
 * long (broker calls have a 1.5 s bound; connecting is retried with
 * backoff instead of waited for). It owns one broker connection of its
 * own, which worker processes must not use (see
 * warrend_scheduler_forget_in_child()).
 *
 * Exactly one host of a vhost fires at a time: the one whose connection
 * holds the exclusive queue `<ns>.scheduler.lock`. The others try for it
 * every 2 s, so when the holder's connection dies another host takes over
 * within a few seconds. What must outlive a holder lives in the durable
 * queue `<ns>.scheduler.state` (see schedule.h and scheduler.c). */
#ifndef WARREND_SCHEDULER_H
#define WARREND_SCHEDULER_H

#include <warren/error.h>
#include "config.h"

struct warrend_scheduler;

/* Creates the scheduler for cfg's schedules; it copies what it needs, so
 * cfg may be freed afterwards. It is created with no config schedules too:
 * the leader also fires the runtime schedules (`warren schedule add`),
 * re-reading <ns>.scheduler.runtime about once a second. Every function
 * here accepts NULL and does nothing. It does not connect yet (the first
 * tick does). WARREN_ECONFIG for a schedule
 * the config loader would have refused, WARREN_ENOMEM. */
warren_status warrend_scheduler_create(struct warrend_scheduler **out,
                                       const struct warren_config *cfg, warren_error *err);

/* Does what is due: connects (with backoff), tries for the lock, fires
 * what is due and writes the state. Never blocks for more than about
 * 1.5 s, and usually for well under a millisecond. */
void warrend_scheduler_tick(struct warrend_scheduler *s);

/* Applies a reloaded config: keeps the connection (and the lock) when the
 * broker settings and namespace are the same, else starts afresh; the
 * runtime schedules are read again at the next tick. Creates the
 * scheduler when *sp is NULL. On an error *sp is unchanged. */
warren_status warrend_scheduler_reload(struct warrend_scheduler **sp,
                                       const struct warren_config *cfg, warren_error *err);

/* Whether this host holds the lock (for tests and health reports). */
int warrend_scheduler_is_leader(const struct warrend_scheduler *s);

/* Closes the connection cleanly, which releases the lock at once, and
 * frees. NULL does nothing. */
void warrend_scheduler_destroy(struct warrend_scheduler *s);

/* For a forked child: closes the inherited socket without speaking to the
 * broker and without freeing anything. A child that kept the descriptor
 * open would keep the connection (and the lock) alive after the
 * supervisor died, until the broker's heartbeat timeout. */
void warrend_scheduler_forget_in_child(struct warrend_scheduler *s);

#endif
