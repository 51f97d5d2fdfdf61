/* Internal: the job history that `warren web` keeps from lifecycle events
 * and `warren job/jobs/report` read.
 *
 * DESIGN: a small interface with one implementation, SQLite in WAL mode
 * (history_sqlite.c writes, history_query.c reads); a server database
 * would be a second implementation of these functions (or, with two at
 * once, a table of them). Writers feed the raw event JSON bodies one at a
 * time between warren__history_begin and _commit (one transaction per batch);
 * ingest is idempotent (a timeline row is unique per (id, event, replay,
 * attempt, at)), so a batch redelivered after a crash changes nothing, and
 * a job's state comes from its latest event by (replay, attempt, place in
 * the lifecycle), never from arrival order. `replay` is the event's count
 * of `warren dead replay`s (x-warren-replay, 0 when absent): a replayed
 * copy starts again at attempt 1, and its run supersedes the `dead` it
 * came from. Queries answer JSON objects (jansson), which
 * the CLI prints and the web server sends as they are.
 *
 * States: queued, scheduled, running, retrying, succeeded, dead. Event to
 * state: queued, scheduled, started->running, retrying, succeeded, dead;
 * `failed` is a timeline entry only; `progress` sets done/total. */
#ifndef WARREN_HISTORY_H
#define WARREN_HISTORY_H

#include <stddef.h>
#include <jansson.h>
#include <warren/error.h>

#define WARREN_HISTORY_ARGS_MAX 4096          /* args kept per job, bytes */
#define WARREN_HISTORY_MAX_JOBS_DEFAULT 1000000 /* size bound: jobs kept */

struct warren_history;

struct warren_history_opts {
    int read_only;          /* CLI readers: open an existing file read-only */
    long long retention_ms; /* prune: events and jobs older than this; 0 = keep */
    long long max_jobs;     /* prune: keep at most this many jobs; 0 = default */
};

struct warren_history_filter {
    const char *state;  /* NULL = any */
    const char *worker; /* NULL = any */
    const char *id_prefix; /* NULL = any */
    long long since_ms; /* last update at or after (Unix ms); 0 = any */
    int limit;          /* 0 = 100 */
};

/* Opens (creating unless read_only) the store at `path` (":memory:" for
 * tests). WARREN_ENOTFOUND when read_only and the file does not exist. */
warren_status warren__history_open(struct warren_history **out, const char *path,
                                   const struct warren_history_opts *opts, warren_error *err);
void warren__history_close(struct warren_history *h);

warren_status warren__history_begin(struct warren_history *h, warren_error *err);
warren_status warren__history_commit(struct warren_history *h, warren_error *err);
warren_status warren__history_rollback(struct warren_history *h);

/* Ingests one event body. WARREN_EINVAL for a body that is not an event
 * (the caller drops it); duplicates are WARREN_OK and change nothing. */
warren_status warren__history_ingest(struct warren_history *h, const char *json, size_t len,
                                     warren_error *err);

/* Deletes what is older than the retention and what exceeds max_jobs
 * (oldest last update first). `now_ms` = 0: the clock. *deleted: jobs. */
warren_status warren__history_prune(struct warren_history *h, long long now_ms,
                                    long long *deleted, warren_error *err);

/* {"id", "worker", "queue", "state", "attempt", "priority", "args",
 *  "error", "progress": {"done","total"}|null, "created_at", "updated_at",
 *  "replay", "timeline": [{"event","at","host","attempt","duration_ms",
 *  "error","delay_ms","reason","replay"}...]} (new), or WARREN_ENOTFOUND.
 * The job's attempt and replay are those of its latest replay. */
warren_status warren__history_job(struct warren_history *h, const char *id, json_t **out,
                                  warren_error *err);

/* {"jobs": [job without timeline, newest update first]} (new). */
warren_status warren__history_jobs(struct warren_history *h,
                                   const struct warren_history_filter *f, json_t **out,
                                   warren_error *err);

/* Aggregates since `since_ms` (Unix ms):
 * {"since", "until", "workers": [{"worker", "started", "succeeded",
 *  "retried", "dead", "failed", "failure_rate", "p50_ms", "p95_ms",
 *  "p99_ms", "top_errors": [{"error","count"}]}], "hours": [{"hour",
 *  "succeeded", "retried", "dead"}], "states": {state: jobs},
 *  "minutes": [{"minute","finished"}] (last hour)} (new). */
warren_status warren__history_report(struct warren_history *h, long long since_ms,
                                     json_t **out, warren_error *err);

/* The balance `warren doctor` checks, per worker, over the jobs that had a
 * queued or scheduled event (published through warren's API with events
 * on; jobs of other clients first appear at `started` and are left out):
 * {"workers": [{"worker", "published", "queued", "scheduled", "running",
 *  "retrying", "succeeded", "dead", "duplicate", "held_before"}]} (new).
 * "duplicate" counts jobs a host acked as duplicates (their state stays
 * queued, so they are taken out of it); "held_before" counts the jobs
 * still queued, scheduled, running or retrying whose last event is older
 * than `before_ms` (Unix ms). */
warren_status warren__history_balance(struct warren_history *h, long long before_ms,
                                      json_t **out, warren_error *err);

/* "2026-05-01T02:00:00.123Z" -> Unix ms; -1 when not that form. */
long long warren__history_parse_time(const char *text);
/* Unix ms -> "2026-05-01T02:00:00.123Z". */
const char *warren__history_format_time(long long ms, char *buf, size_t size);

#endif
