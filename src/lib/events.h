/* Internal: a job's lifecycle as others see it: events on the
 * `<ns>.events` exchange, in-process observers, and the host's statistics.
 *
 * DESIGN: the worker process tells one struct warren_lifecycle what
 * happens to each job (started, ran, failed, retrying, dead, or left
 * unsettled) at the points where it happens, and the lifecycle fans it
 * out: a JSON event published to the topic exchange `<ns>.events` with
 * routing key `<worker>.<event>` (when events.enabled), the registry's
 * observers, and the shared statistics (stats.h). Events are published on
 * the worker's own connection and channel, fire-and-forget: untracked, so
 * no hand-off waits for them and a nacked event never makes a hand-off
 * look refused; not mandatory, so an event nobody listens for is simply
 * dropped by the broker. An event that cannot be published is logged at
 * debug level and forgotten: events are for watching, the job path never
 * depends on them.
 *
 * The event body is a JSON object with every field present:
 *   {"id", "worker", "queue", "attempt", "event", "at", "duration_ms",
 *    "error", "host"}   (duration_ms and error are null when not known)
 * plus "delay_ms" for `retrying` (milliseconds until the next attempt),
 * "reason" for `dead` (x-warren-dead-reason), and "replay" when the job is
 * a copy `warren dead replay` republished (its x-warren-replay, left out
 * when 0 so that events of other jobs are unchanged). "at" is RFC 3339 UTC with
 * milliseconds. A job that runs emits started, then succeeded, or failed
 * followed by retrying or dead; input that never reaches a handler (bad
 * message, unknown worker, invalid arguments, a poison message) emits only
 * dead. Each event carries the attempt it is about. */
#ifndef WARREN_EVENTS_H
#define WARREN_EVENTS_H

#include <stddef.h>
#include <jansson.h>
#include <warren/registry.h>
#include "conn.h"
#include "job.h"

struct warren_stats;

/* One event. Strings are borrowed; NULL strings are written as "" (id,
 * worker, queue, host) or null (error). */
struct warren_event {
    const char *event;     /* "started", "succeeded", "failed", "retrying", "dead" */
    const char *id;
    const char *worker;
    const char *queue;     /* short name, e.g. "default" */
    const char *host;
    int attempt;
    long long duration_ms; /* < 0: null */
    const char *error;     /* NULL or "": null */
    long long delay_ms;    /* `retrying` only; < 0: left out */
    const char *reason;    /* `dead` only; NULL: left out */
    const char *at;        /* RFC 3339; NULL: now */
    long long done, total; /* `progress` only; total <= 0: left out */
    const json_t *args;    /* `queued`/`scheduled`: the job's args, so the history can
                              show them; NULL: args and priority left out */
    int priority;          /* with args */
    int replay;            /* x-warren-replay; 0: left out */
    int transient;         /* delivery mode 1 (events.persistent = false) */
};

/* Args longer than this (compact JSON) go out as their first bytes, cut on
 * a character boundary, in a string, with "args_truncated": true: the
 * history keeps no more (WARREN_HISTORY_ARGS_MAX) and an event stays small. */
#define WARREN_EVENT_ARGS_MAX 4096

/* "<ns>.events". */
const char *warren__name_events(char *buf, size_t size, const char *ns);

/* The event's JSON text (new; free()), NULL when out of memory. Written
 * directly for the events a worker publishes for every job; built with
 * jansson when it carries args, or when it is too long for the direct
 * writer's buffer. */
char *warren__event_json(const struct warren_event *ev);
/* The same text always built with jansson (what the direct writer must
 * equal, byte for byte; for tests). */
char *warren__event_json_jansson(const struct warren_event *ev);

/* The routing key "<worker>.<event>" ("" for the worker when it is not a
 * valid worker name). */
const char *warren__event_key(char *buf, size_t size, const struct warren_event *ev);

/* Declares `<ns>.events` (topic, durable). Idempotent. */
warren_status warren__events_declare(struct warren_conn *c, const char *ns, warren_error *err);

/* Publishes one event, untracked and not mandatory (see DESIGN). */
warren_status warren__event_publish(struct warren_conn *c, const char *ns,
                                    const struct warren_event *ev, warren_error *err);

/* What one worker process reports to. Fill the first fields; the rest is
 * the job in progress. `conn` points at where the worker keeps its
 * current connection, so a reconnect needs no update (NULL, or a NULL
 * connection: no event is published). */
struct warren_lifecycle {
    struct warren_conn *const *conn;
    const char *ns;
    const char *host;
    int events;                  /* events.enabled */
    const warren_registry *reg;  /* observers, and which workers are known; may be NULL */
    struct warren_stats *stats;  /* may be NULL */
    /* the job in progress */
    int in_job;                  /* between started and its end */
    long long duration_ms;       /* of its run, once it ran; else -1 */
    int events_transient;        /* events.persistent = false */
};

/* The handler is about to run: `started` event, observers' before, the job
 * counts as in flight. `queue` is the short name (the consumer tag). */
void warren__lifecycle_started(struct warren_lifecycle *lc, const struct warren_job *job,
                               const char *queue);

/* The handler returned `outcome` after duration_ms: observers' after;
 * then on success the `succeeded` event and the count, and on failure what
 * warren__lifecycle_failed does. */
void warren__lifecycle_ran(struct warren_lifecycle *lc, const struct warren_job *job,
                           const char *queue, warren_outcome outcome, long long duration_ms);

/* The run failed with job->error (also: time limit exceeded, called from
 * the guard thread): observers' on_error and the `failed` event. Whether
 * it is retried or parked follows. */
void warren__lifecycle_failed(struct warren_lifecycle *lc, const struct warren_job *job,
                              const char *queue, long long duration_ms);

/* The retry copy was confirmed: `retrying` event (job->attempt is the
 * attempt that failed, delay_ms the wait before the next), counted as
 * retried. */
void warren__lifecycle_retrying(struct warren_lifecycle *lc, const struct warren_job *job,
                                const char *queue, long long delay_ms);

/* The dead letter was confirmed: `dead` event, observers' on_dead, counted
 * as dead (worker "" when it is not registered: names from the wire never
 * create metric series). Also for jobs that never started. */
void warren__lifecycle_dead(struct warren_lifecycle *lc, const struct warren_job *job,
                            const char *queue, const char *reason, const char *error);

/* The job went back to wait in the delay levels for delay_ms, with the
 * same attempt: its handler snoozed it, or (why = "lock ...") its lock was
 * taken. `snoozed` event, counted as snoozed; not a failure. */
void warren__lifecycle_snoozed(struct warren_lifecycle *lc, const struct warren_job *job,
                               const char *queue, long long delay_ms, const char *why);

/* The job was acked without running: another with its unique key ran
 * within unique_for. `duplicate` event, counted as duplicate. */
void warren__lifecycle_duplicate(struct warren_lifecycle *lc, const struct warren_job *job,
                                 const char *queue);

/* The running job reported progress (done of total): a `progress` event.
 * Called on whichever thread owns the connection at that moment. */
void warren__lifecycle_progress(struct warren_lifecycle *lc, const struct warren_job *job,
                                const char *queue, long long done, long long total);

/* The job was left unacked for redelivery (the hand-off or ack failed):
 * nothing is counted; the job is no longer in flight. */
void warren__lifecycle_unsettled(struct warren_lifecycle *lc);

#endif
