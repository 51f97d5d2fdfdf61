/* warrend internals shared by the worker process's files: worker.c (the
 * consume loop and outcomes) and controls.c (snooze, locks, unique jobs). */
#ifndef WARREND_WORKER_H
#define WARREND_WORKER_H

#include <amqp.h>
#include "config.h"
#include "conn.h"
#include "events.h"
#include "job.h"
#include "registry_internal.h"
#include "topology.h"

struct guard;
struct warren_sig_key;
struct warren_board;
struct warren_stats;

struct worker {
    struct warren_config *cfg;
    int slot;                 /* 1-based, for logs */
    struct warren_board *board;
    int board_slot;
    struct warren_stats *stats;
    struct warren_lifecycle lc; /* events, observers, statistics */
    struct guard *guard;
    long long jobs_done;
    int recycle;              /* replace this process after the current job */
    warren_registry *reg;
    struct warren_modules *mods;
    struct warren_conn *conn;
    char **urls;
    size_t n_urls;
    char jobs_exchange[WARREN_AMQP_NAME_MAX];
    char delay_prefix[WARREN_AMQP_NAME_MAX]; /* "<ns>.delay." */
    struct warren_sig_key *sig_key; /* NULL: signatures are not checked */
    /* Each registered worker's settings (by its entry's pos), resolved
     * once after the modules are loaded rather than for every job. */
    struct warren_worker_conf *confs;
    unsigned n_confs;
    int statm_fd;               /* /proc/self/statm, kept open; -1 until needed */
    long long rss_checked_ms;   /* when max_memory_per_process was last checked */
};

/* The settings of a registered worker (entry may be NULL: looked up by
 * name, for workers the registry does not know). */
const struct warren_worker_conf *warrend_worker_conf(const struct worker *w,
                                                     const struct warren_worker_entry *entry,
                                                     const char *name);

/* Parks the delivery in its queue's dead letters (confirmed), then acks it.
 * A refused dead letter is retried once as rejected_by_broker; if that is
 * refused too, the delivery stays unacked. */
warren_status warrend_park(struct worker *w, struct warren_conn_delivery *d,
                           const struct warren_job *job, enum warren_dead_reason reason,
                           const char *error, int attempts);

/* A failed attempt: the retry copy through the delay levels (confirmed),
 * or the dead letter when attempts are used up; then the ack. */
warren_status warrend_retry_or_park(struct worker *w, struct warren_conn_delivery *d,
                                    struct warren_job *job);

/* An integer header of any width, or dflt. */
long long warrend_header_int(const amqp_basic_properties_t *p, const char *name, long long dflt);

/* Locks and unique keys a job holds while it runs (controls.c). */
struct held_keys {
    char lock[WARREN_AMQP_NAME_MAX];   /* "" when none */
    char unique[WARREN_AMQP_NAME_MAX]; /* "" when none */
};

/* Before a job runs: takes its lock (lock_by) and its unique key
 * (unique_by). Returns 1 when the job was dealt with instead of run:
 * snoozed because its lock is taken, failed because it waited longer than
 * lock_timeout, or acked as a duplicate; *st then says how that went. */
int warrend_take_keys(struct worker *w, struct warren_conn_delivery *d, struct warren_job *job,
                      const struct warren_worker_conf *wc, struct held_keys *held,
                      warren_status *st);

/* After the job: releases what warrend_take_keys took. */
void warrend_release_keys(struct worker *w, struct held_keys *held);

/* Sends the job back to wait delay_ms in the delay levels with the same
 * attempt, then acks it: a snooze its handler asked for (counted in
 * x-warren-snoozes, bounded by max_snoozes) or a wait for its lock (not
 * counted; lock_since_ms records when the wait began). */
warren_status warrend_snooze(struct worker *w, struct warren_conn_delivery *d,
                             struct warren_job *job, long long delay_ms, int counted,
                             long long lock_since_ms, const char *why);

#endif
