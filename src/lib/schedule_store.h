/* Internal: runtime schedules as stored in the broker (include/warren/
 * schedule.h is the public side). The CLI, the C API and the scheduler
 * all go through here, so the format lives in one place.
 *
 * The runtime set is one JSON document, the only message of the durable
 * queue <ns>.scheduler.runtime (x-max-length = 1, x-overflow = drop-head):
 *   {"version": 1, "revision": N, "updated": "<time>",
 *    "schedules": {"<name>": {"worker": "diag.echo",
 *                             "cron": "0 * * * * *" | "every_ms": 2000,
 *                             "max_count": 5, "args": {...}, "priority": 0,
 *                             "paused": false, "created_at": "<time>",
 *                             "resumed_at": "<time>" (after a resume)}, ...}}
 * Times are RFC 3339 UTC with milliseconds when not whole seconds. Each
 * write bumps "revision"; a reader that finds more than one message (a
 * version requeued while a newer one was published) takes the highest.
 * Keys a reader does not know are kept. */
#ifndef WARREN_SCHEDULE_STORE_H
#define WARREN_SCHEDULE_STORE_H

#include <jansson.h>
#include <warren/error.h>
#include <warren/schedule.h>
#include "conn.h"
#include "schedule.h"

/* What a stored entry says besides the definition. */
struct warren_sched_meta {
    int paused;
    long long created_ms;  /* -1 unknown */
    long long resumed_ms;  /* -1 never resumed */
};

/* <ns>.scheduler.runtime into buf. */
const char *warren__sched_runtime_queue(char *buf, size_t size, const char *ns);

/* Whether a schedule name is [A-Za-z0-9_.-]{1,128}. */
int warren__sched_name_valid(const char *name);

/* A new empty set. */
json_t *warren__sched_store_new(void);

/* Parses a message body; a body that is not a set gives an empty set and
 * the reason in `why` (why[0] == '\0' when fine). NULL only when out of
 * memory. */
json_t *warren__sched_store_parse(const void *body, size_t len, char *why, size_t why_size);

/* Serialises with "revision" bumped and "updated" set (new string). */
char *warren__sched_store_dump(json_t *doc, long long now_ms);

/* The revision of a set (0 when none). */
long long warren__sched_store_revision(const json_t *doc);

/* A new entry for def (validated first: WARREN_EINVAL with the reason). */
warren_status warren__sched_store_encode(const warren_schedule_def *def, long long created_ms,
                                         json_t **out, warren_error *err);

/* Builds the scheduler's definition from a stored entry (release with
 * warren__sched_def_clear). WARREN_EINVAL with the reason when the entry
 * is not valid. meta may be NULL. */
warren_status warren__sched_store_decode(const char *name, const json_t *entry,
                                         struct warren_sched_def *d,
                                         struct warren_sched_meta *meta, warren_error *err);

/* Declares the runtime queue (only when missing, like the state queue). */
warren_status warren__sched_store_declare(struct warren_conn *c, const char *queue, int quorum,
                                          warren_error *err);

/* Reads a max-length-1 document queue without taking anything: basic.get
 * of each message, then reject with requeue. runtime = 1 keeps the
 * message with the highest revision, 0 (the state queue) the last one.
 * *doc is NULL when the queue is empty (and *found = 0 when it does not
 * exist; found may be NULL, then a missing queue is an error). *why gets
 * the reason when a body was unreadable. */
warren_status warren__sched_store_read(struct warren_conn *c, const char *queue, int runtime,
                                       json_t **doc, int *found, char *why, size_t why_size,
                                       warren_error *err);

/* Publishes text as the queue's new document, persistent, confirmed. */
warren_status warren__sched_store_write(struct warren_conn *c, const char *queue,
                                        const char *text, warren_error *err);

/* The listing of warren_schedule_list, with the given config schedules
 * first (source "config"). */
warren_status warren__sched_store_list(struct warren_conn *c, const char *ns,
                                       const struct warren_schedule_conf *conf, size_t n_conf,
                                       long long now_ms, json_t **out, warren_error *err);

/* Opens a connection for the public API from producer options. */
warren_status warren__sched_store_connect(const warren_producer_opts *opts,
                                          struct warren_conn **out, char *ns, size_t ns_size,
                                          warren_error *err);

/* What the CLI does for add/remove/pause/resume on an open connection:
 * op 'a' add (def), 'r' remove, 'p' pause, 'u' resume (name). */
warren_status warren__sched_store_change(struct warren_conn *c, const char *ns, int quorum,
                                         char op, const warren_schedule_def *def,
                                         const char *name, warren_error *err);

#endif
