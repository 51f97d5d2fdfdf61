/* The job history's read side on SQLite: a job with its timeline, job
 * lists, the report and the balance doctor checks (see history.h). The
 * writer side is history_sqlite.c; both share history_sqlite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "history_sqlite.h"

static json_t *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t)
        return json_null();
    json_t *v = json_string((const char *)t);
    return v ? v : json_string("");
}

static json_t *col_int(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? json_null()
                                                    : json_integer(sqlite3_column_int64(s, i));
}

static json_t *col_time(sqlite3_stmt *s, int i)
{
    char buf[40];
    return sqlite3_column_type(s, i) == SQLITE_NULL
               ? json_null()
               : json_string(warren__history_format_time(sqlite3_column_int64(s, i), buf,
                                                         sizeof buf));
}

/* %s: h->replay_col. */
#define JOB_COLUMNS                                                                            \
    "id, worker, queue, state, attempt, priority, args, error, progress_done,"                 \
    " progress_total, created_ms, updated_ms, %s AS replay"

static json_t *job_row(sqlite3_stmt *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", col_text(s, 0));
    json_object_set_new(o, "worker", col_text(s, 1));
    json_object_set_new(o, "queue", col_text(s, 2));
    json_object_set_new(o, "state", col_text(s, 3));
    json_object_set_new(o, "attempt", col_int(s, 4));
    json_object_set_new(o, "priority", col_int(s, 5));
    json_t *args = json_null();
    const unsigned char *a = sqlite3_column_text(s, 6);
    if (a) {
        args = json_loads((const char *)a, JSON_DECODE_ANY, NULL);
        if (!args) /* truncated: keep the text */
            args = json_string((const char *)a);
        if (!args)
            args = json_null();
    }
    json_object_set_new(o, "args", args);
    json_object_set_new(o, "error", col_text(s, 7));
    json_object_set_new(o, "progress",
                        sqlite3_column_type(s, 8) == SQLITE_NULL
                            ? json_null()
                            : json_pack("{s:o, s:o}", "done", col_int(s, 8), "total",
                                        col_int(s, 9)));
    json_object_set_new(o, "created_at", col_time(s, 10));
    json_object_set_new(o, "updated_at", col_time(s, 11));
    json_object_set_new(o, "replay", col_int(s, 12));
    return o;
}

warren_status warren__history_job(struct warren_history *h, const char *id, json_t **out,
                                  warren_error *err)
{
    *out = NULL;
    sqlite3_stmt *s;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1", h->replay_col);
    if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK)
        return warren__history_db_fail(h, err, "query job");
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        if (rc == SQLITE_DONE)
            return warren_error_set(err, WARREN_ENOTFOUND, "no job %s in the history", id);
        return warren__history_db_fail(h, err, "query job");
    }
    json_t *job = job_row(s);
    sqlite3_finalize(s);
    /* In time order, as people read a history (a replay starts again at
     * attempt 1); events of the same millisecond in lifecycle order. */
    snprintf(sql, sizeof sql,
             "SELECT event, at, host, attempt, duration_ms, error, delay_ms, reason, %s AS replay"
             " FROM events WHERE job_id = ?1 ORDER BY at_ms, replay, attempt, rank",
             h->replay_col);
    if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK) {
        json_decref(job);
        return warren__history_db_fail(h, err, "query timeline");
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    json_t *timeline = json_array();
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *e = json_object();
        json_object_set_new(e, "event", col_text(s, 0));
        json_object_set_new(e, "at", col_text(s, 1));
        json_object_set_new(e, "host", col_text(s, 2));
        json_object_set_new(e, "attempt", col_int(s, 3));
        json_object_set_new(e, "duration_ms", col_int(s, 4));
        json_object_set_new(e, "error", col_text(s, 5));
        json_object_set_new(e, "delay_ms", col_int(s, 6));
        json_object_set_new(e, "reason", col_text(s, 7));
        json_object_set_new(e, "replay", col_int(s, 8));
        json_array_append_new(timeline, e);
    }
    sqlite3_finalize(s);
    json_object_set_new(job, "timeline", timeline);
    *out = job;
    return WARREN_OK;
}

warren_status warren__history_jobs(struct warren_history *h,
                                   const struct warren_history_filter *f, json_t **out,
                                   warren_error *err)
{
    *out = NULL;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR state = ?1)"
             " AND (?2 IS NULL OR worker = ?2) AND updated_ms >= ?3"
             " AND (?4 IS NULL OR substr(id, 1, length(?4)) = ?4)"
             " ORDER BY updated_ms DESC, id LIMIT ?5", h->replay_col);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK)
        return warren__history_db_fail(h, err, "query jobs");
    warren__history_bind_text(s, 1, f && f->state && f->state[0] ? f->state : NULL);
    warren__history_bind_text(s, 2, f && f->worker && f->worker[0] ? f->worker : NULL);
    sqlite3_bind_int64(s, 3, f ? f->since_ms : 0);
    warren__history_bind_text(s, 4, f && f->id_prefix && f->id_prefix[0] ? f->id_prefix : NULL);
    sqlite3_bind_int(s, 5, f && f->limit > 0 ? f->limit : 100);
    json_t *jobs = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(jobs, job_row(s));
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        json_decref(jobs);
        return warren__history_db_fail(h, err, "query jobs");
    }
    *out = json_pack("{s:o}", "jobs", jobs);
    return WARREN_OK;
}

/* Nearest-rank percentile of sorted values. */
static json_t *percentile(const long long *v, size_t n, double p)
{
    if (n == 0)
        return json_null();
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return json_integer(v[rank - 1]);
}

static int prepare(struct warren_history *h, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v2(h->db, sql, -1, s, NULL) == SQLITE_OK ? 0 : -1;
}

static json_t *worker_report(struct warren_history *h, sqlite3_stmt *row, long long since,
                             int *bad)
{
    const char *worker = (const char *)sqlite3_column_text(row, 0);
    long long started = sqlite3_column_int64(row, 1), succeeded = sqlite3_column_int64(row, 2);
    long long retried = sqlite3_column_int64(row, 3), dead = sqlite3_column_int64(row, 4);
    long long failed = sqlite3_column_int64(row, 5);
    long long finished = succeeded + retried + dead;
    json_t *o = json_object();
    json_object_set_new(o, "worker", col_text(row, 0));
    json_object_set_new(o, "started", json_integer(started));
    json_object_set_new(o, "succeeded", json_integer(succeeded));
    json_object_set_new(o, "retried", json_integer(retried));
    json_object_set_new(o, "dead", json_integer(dead));
    json_object_set_new(o, "failed", json_integer(failed));
    json_object_set_new(o, "failure_rate",
                        json_real(finished ? (double)(retried + dead) / (double)finished : 0.0));
    sqlite3_stmt *s;
    size_t n = 0, cap = 64;
    long long *v = malloc(cap * sizeof *v);
    if (v && prepare(h, "SELECT duration_ms FROM events WHERE worker IS ?1 AND at_ms >= ?2"
                        " AND event IN ('succeeded', 'failed') AND duration_ms IS NOT NULL"
                        " ORDER BY duration_ms", &s) == 0) {
        warren__history_bind_text(s, 1, worker);
        sqlite3_bind_int64(s, 2, since);
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (n == cap) {
                long long *w = realloc(v, 2 * cap * sizeof *v);
                if (!w)
                    break;
                v = w;
                cap *= 2;
            }
            v[n++] = sqlite3_column_int64(s, 0);
        }
        sqlite3_finalize(s);
    } else {
        *bad = 1;
    }
    json_object_set_new(o, "runs_timed", json_integer((long long)n));
    json_object_set_new(o, "p50_ms", percentile(v, n, 0.50));
    json_object_set_new(o, "p95_ms", percentile(v, n, 0.95));
    json_object_set_new(o, "p99_ms", percentile(v, n, 0.99));
    free(v);
    json_t *top = json_array();
    if (prepare(h, "SELECT error, COUNT(*) AS c FROM events WHERE worker IS ?1 AND at_ms >= ?2"
                   " AND event IN ('retrying', 'dead') AND error IS NOT NULL"
                   " GROUP BY error ORDER BY c DESC, error LIMIT 5", &s) == 0) {
        warren__history_bind_text(s, 1, worker);
        sqlite3_bind_int64(s, 2, since);
        while (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(top, json_pack("{s:o, s:I}", "error", col_text(s, 0),
                                                 "count", (json_int_t)sqlite3_column_int64(s, 1)));
        sqlite3_finalize(s);
    } else {
        *bad = 1;
    }
    json_object_set_new(o, "top_errors", top);
    return o;
}

warren_status warren__history_report(struct warren_history *h, long long since, json_t **out,
                                     warren_error *err)
{
    *out = NULL;
    long long now = warren__history_now_ms();
    int bad = 0;
    sqlite3_stmt *s;
    char buf[40];
    json_t *root = json_object();
    json_object_set_new(root, "since",
                        json_string(warren__history_format_time(since, buf, sizeof buf)));
    json_object_set_new(root, "until",
                        json_string(warren__history_format_time(now, buf, sizeof buf)));
    json_t *workers = json_array();
    if (prepare(h, "SELECT worker, SUM(event = 'started'), SUM(event = 'succeeded'),"
                   " SUM(event = 'retrying'), SUM(event = 'dead'), SUM(event = 'failed')"
                   " FROM events WHERE at_ms >= ?1 GROUP BY worker ORDER BY worker", &s) == 0) {
        sqlite3_bind_int64(s, 1, since);
        while (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(workers, worker_report(h, s, since, &bad));
        sqlite3_finalize(s);
    } else {
        bad = 1;
    }
    json_object_set_new(root, "workers", workers);
    json_t *hours = json_array();
    if (prepare(h, "SELECT at_ms / 3600000, SUM(event = 'succeeded'), SUM(event = 'retrying'),"
                   " SUM(event = 'dead') FROM events WHERE at_ms >= ?1"
                   " AND event IN ('succeeded', 'retrying', 'dead') GROUP BY 1 ORDER BY 1",
                &s) == 0) {
        sqlite3_bind_int64(s, 1, since);
        while (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(
                hours, json_pack("{s:s, s:I, s:I, s:I}", "hour",
                                 warren__history_format_time(sqlite3_column_int64(s, 0) * 3600000,
                                                             buf, sizeof buf),
                                 "succeeded", (json_int_t)sqlite3_column_int64(s, 1), "retried",
                                 (json_int_t)sqlite3_column_int64(s, 2), "dead",
                                 (json_int_t)sqlite3_column_int64(s, 3)));
        sqlite3_finalize(s);
    } else {
        bad = 1;
    }
    json_object_set_new(root, "hours", hours);
    json_t *states = json_object();
    if (prepare(h, "SELECT COALESCE(state, 'unknown'), COUNT(*) FROM jobs WHERE updated_ms >= ?1"
                   " GROUP BY 1", &s) == 0) {
        sqlite3_bind_int64(s, 1, since);
        while (sqlite3_step(s) == SQLITE_ROW)
            json_object_set_new(states, (const char *)sqlite3_column_text(s, 0),
                                json_integer(sqlite3_column_int64(s, 1)));
        sqlite3_finalize(s);
    } else {
        bad = 1;
    }
    json_object_set_new(root, "states", states);
    /* The overview's last hour: finished jobs per minute, states per worker. */
    json_t *minutes = json_array();
    if (prepare(h, "SELECT at_ms / 60000, COUNT(*) FROM events WHERE at_ms >= ?1"
                   " AND event IN ('succeeded', 'dead') GROUP BY 1 ORDER BY 1", &s) == 0) {
        sqlite3_bind_int64(s, 1, now - 3600000);
        while (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(
                minutes, json_pack("{s:s, s:I}", "minute",
                                   warren__history_format_time(sqlite3_column_int64(s, 0) * 60000,
                                                               buf, sizeof buf),
                                   "finished", (json_int_t)sqlite3_column_int64(s, 1)));
        sqlite3_finalize(s);
    } else {
        bad = 1;
    }
    json_object_set_new(root, "minutes", minutes);
    json_t *recent = json_object();
    if (prepare(h, "SELECT COALESCE(worker, ''), COALESCE(state, 'unknown'), COUNT(*) FROM jobs"
                   " WHERE updated_ms >= ?1 GROUP BY 1, 2", &s) == 0) {
        sqlite3_bind_int64(s, 1, now - 3600000);
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *w = (const char *)sqlite3_column_text(s, 0);
            json_t *per = json_object_get(recent, w);
            if (!per) {
                per = json_object();
                json_object_set_new(recent, w, per);
            }
            json_object_set_new(per, (const char *)sqlite3_column_text(s, 1),
                                json_integer(sqlite3_column_int64(s, 2)));
        }
        sqlite3_finalize(s);
    } else {
        bad = 1;
    }
    json_object_set_new(root, "last_hour_by_worker", recent);
    if (bad) {
        json_decref(root);
        return warren__history_db_fail(h, err, "report");
    }
    *out = root;
    return WARREN_OK;
}

/* ---- balance ------------------------------------------------------------ */

static json_t *balance_worker(json_t *workers, const char *name)
{
    size_t n = json_array_size(workers);
    json_t *last = n ? json_array_get(workers, n - 1) : NULL;
    if (last && !strcmp(json_string_value(json_object_get(last, "worker")), name))
        return last;
    json_t *w = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "worker", name,
                          "published", (json_int_t)0, "queued", (json_int_t)0, "scheduled",
                          (json_int_t)0, "running", (json_int_t)0, "retrying", (json_int_t)0,
                          "succeeded", (json_int_t)0, "dead", (json_int_t)0, "duplicate",
                          (json_int_t)0, "held_before", (json_int_t)0);
    json_array_append_new(workers, w);
    return w;
}

warren_status warren__history_balance(struct warren_history *h, long long before_ms,
                                      json_t **out, warren_error *err)
{
    *out = NULL;
    sqlite3_stmt *s;
    /* A duplicate's only state event is its `queued`; it is finished all
     * the same. Rows come sorted by worker, so each worker is one object. */
    if (prepare(h, "SELECT COALESCE(worker, ''), CASE WHEN state IN ('queued', 'scheduled')"
                   " AND EXISTS (SELECT 1 FROM events d WHERE d.job_id = j.id"
                   " AND d.event = 'duplicate') THEN 'duplicate' ELSE state END,"
                   " COUNT(*), SUM(updated_ms < ?1) FROM jobs j WHERE EXISTS (SELECT 1"
                   " FROM events e WHERE e.job_id = j.id AND e.event IN ('queued', 'scheduled'))"
                   " GROUP BY 1, 2 ORDER BY 1, 2", &s) != 0)
        return warren__history_db_fail(h, err, "balance");
    sqlite3_bind_int64(s, 1, before_ms);
    json_t *workers = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 1);
        long long jobs = sqlite3_column_int64(s, 2), old = sqlite3_column_int64(s, 3);
        json_t *w = balance_worker(workers, (const char *)sqlite3_column_text(s, 0));
        json_t *count = state ? json_object_get(w, state) : NULL;
        if (!w || !count)
            continue; /* a state this query does not know: not counted */
        json_integer_set(count, json_integer_value(count) + jobs);
        json_t *published = json_object_get(w, "published");
        json_integer_set(published, json_integer_value(published) + jobs);
        if (strcmp(state, "succeeded") && strcmp(state, "dead") && strcmp(state, "duplicate")) {
            json_t *held = json_object_get(w, "held_before");
            json_integer_set(held, json_integer_value(held) + old);
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        json_decref(workers);
        return warren__history_db_fail(h, err, "balance");
    }
    *out = json_pack("{s:o}", "workers", workers);
    return WARREN_OK;
}
