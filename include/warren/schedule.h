/* warren public API: recurring jobs added, paused and removed at run time.
 *
 * Runtime schedules live in the broker, in the durable queue
 * `<ns>.scheduler.runtime` (x-max-length = 1, x-overflow = drop-head) as
 * one persistent JSON message holding the whole set; each call connects,
 * reads the set (basic.get, then reject with requeue: nothing stays
 * unacked), changes it and publishes the new version with a publisher
 * confirm (drop-head then drops the old one). Two writers at the same
 * moment race: the last one wins. The one host holding the scheduler lock
 * (`<ns>.scheduler.lock`) re-reads the set about once a second and fires
 * runtime schedules exactly like the config's `schedules`.
 *
 * The connection is described by warren_producer_opts (urls, namespace_,
 * heartbeat, password_file, TLS; signing_key_file and window are unused):
 * NULL means WARREN_URL or amqp://guest:guest@127.0.0.1:5672/, namespace
 * "warren". */
#ifndef WARREN_SCHEDULE_API_H
#define WARREN_SCHEDULE_API_H

#include <jansson.h>
#include <warren/error.h>
#include <warren/export.h>
#include <warren/producer.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One recurring job. Exactly one of `cron` (6 fields with seconds, or 5;
 * UTC) and `every_ms` (>= 1000, aligned to the Unix epoch). */
typedef struct warren_schedule_def {
    const char *name;     /* [A-Za-z0-9_.-]{1,128} */
    const char *worker;   /* a valid worker name */
    const char *cron;     /* NULL: every_ms */
    long long every_ms;   /* 0 with cron */
    long long max_count;  /* 0: unlimited; else the schedule ends after that many fires */
    json_t *args;         /* a JSON object (borrowed); NULL: {} */
    int priority;         /* 0-9 */
} warren_schedule_def;

/* Checks a definition without connecting: WARREN_EINVAL with the reason
 * (a cron error names the field at fault). */
WARREN_EXPORT warren_status warren_schedule_validate(const warren_schedule_def *def,
                                                     warren_error *err);

/* Adds a runtime schedule, or replaces the definition of the one of that
 * name (its paused flag, last fire and count are kept when only
 * max_count, args or priority change; a new cron/every starts afresh).
 * WARREN_EINVAL for a bad definition, else a broker error. */
WARREN_EXPORT warren_status warren_schedule_add(const warren_producer_opts *conn,
                                                const warren_schedule_def *def,
                                                warren_error *err);

/* WARREN_ENOTFOUND when no runtime schedule has that name. */
WARREN_EXPORT warren_status warren_schedule_remove(const warren_producer_opts *conn,
                                                   const char *name, warren_error *err);
WARREN_EXPORT warren_status warren_schedule_pause(const warren_producer_opts *conn,
                                                  const char *name, warren_error *err);
WARREN_EXPORT warren_status warren_schedule_resume(const warren_producer_opts *conn,
                                                   const char *name, warren_error *err);

/* The runtime schedules with their state, as a new JSON array (sorted by
 * name) of objects: name, source ("runtime"), worker, cron or every_ms,
 * max_count, args, priority, paused, created_at, next_fire, last_fire
 * (RFC 3339 or null), count, status ("active", "paused", "finished"). */
WARREN_EXPORT warren_status warren_schedule_list(const warren_producer_opts *conn, json_t **out,
                                                 warren_error *err);

#ifdef __cplusplus
}
#endif
#endif
