/* The job history in SQLite (WAL): opening, the schema, ingest and
 * pruning; the queries are in history_query.c. See history.h.
 *
 * Two tables: `events` (the timeline, one row per distinct (job, event,
 * replay, attempt, at), so a redelivered event is ignored) and `jobs` (one
 * row per job, folded from its events). A job's state is set only by an
 * event whose key (event_key: replay, then attempt, then its place in the
 * lifecycle) is at least the key of the event that set the current state,
 * so late or repeated events never move a job backwards, and a replayed
 * copy's run, which starts again at attempt 1, moves it past the `dead` it
 * was replayed from.
 *
 * The replay columns came after the first release: a database without
 * them gets them on the writer's open (migrate), with 0 for what it holds,
 * whose keys are then unchanged; a reader of a database no writer has
 * migrated yet reads 0 for them. Such a database keeps its old unique key
 * (without replay): the events of a replay's run are still kept, as they
 * come later than the `dead` they follow and so differ in `at`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "history_sqlite.h"
#include "job.h"
#include "json_fast.h"

/* Deeper event bodies (args) are left to jansson. */
#define HISTORY_MAX_DEPTH 64

static const char *const statements[ST_COUNT] = {
    [ST_INSERT_EVENT] =
        "INSERT OR IGNORE INTO events(job_id, event, attempt, rank, at, at_ms, worker, host,"
        " duration_ms, error, delay_ms, reason, replay)"
        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    /* One statement folds an event into its job (an UPSERT, SQLite 3.24+;
     * one look-up of the job instead of four statements): a new job takes
     * the event's fields; a known one keeps its worker and queue unless
     * they were empty, its highest attempt, its first and last event
     * times, and takes the state (?8) and the error (?9) only when the
     * event's key (?10) is at least the key of the ones it has (on the
     * right of SET every column is the row's value before the update). A
     * NULL ?8 or ?9 leaves that key at -1 in a new job and changes nothing
     * in a known one. The attempt is the highest of the latest replay
     * (?11): a replay's attempt 1 follows the first run's last. */
    [ST_UPSERT_JOB] =
        "INSERT INTO jobs(id, worker, queue, attempt, created_ms, updated_ms, priority, args,"
        " state, state_key, error, error_key, progress_at, replay)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, CASE WHEN ?8 IS NULL THEN -1 ELSE ?10 END,"
        " ?9, CASE WHEN ?9 IS NULL THEN -1 ELSE ?10 END, -1, ?11)"
        " ON CONFLICT(id) DO UPDATE SET"
        " worker = CASE WHEN worker IS NULL OR worker = '' THEN ?2 ELSE worker END,"
        " queue = CASE WHEN queue IS NULL OR queue = '' THEN ?3 ELSE queue END,"
        " attempt = CASE WHEN ?11 > replay THEN ?4 WHEN ?11 = replay THEN MAX(attempt, ?4)"
        " ELSE attempt END, replay = MAX(replay, ?11), created_ms = MIN(created_ms, ?5),"
        " updated_ms = MAX(updated_ms, ?5), priority = COALESCE(?6, priority),"
        " args = COALESCE(?7, args),"
        " state = CASE WHEN ?8 IS NOT NULL AND state_key <= ?10 THEN ?8 ELSE state END,"
        " state_key = CASE WHEN ?8 IS NOT NULL AND state_key <= ?10 THEN ?10 ELSE state_key END,"
        " error = CASE WHEN ?9 IS NOT NULL AND error_key <= ?10 THEN ?9 ELSE error END,"
        " error_key = CASE WHEN ?9 IS NOT NULL AND error_key <= ?10 THEN ?10 ELSE error_key END",
    [ST_UPDATE_PROGRESS] =
        "UPDATE jobs SET progress_done = ?2, progress_total = ?3, progress_at = ?4"
        " WHERE id = ?1 AND progress_at <= ?4",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs("
    " id TEXT PRIMARY KEY, worker TEXT, queue TEXT, state TEXT, state_key INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL, priority INTEGER, args TEXT, error TEXT,"
    " error_key INTEGER NOT NULL, progress_done INTEGER, progress_total INTEGER,"
    " progress_at INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " replay INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_updated ON jobs(updated_ms);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, updated_ms);"
    "CREATE INDEX IF NOT EXISTS jobs_worker ON jobs(worker, updated_ms);"
    "CREATE TABLE IF NOT EXISTS events("
    " job_id TEXT NOT NULL, event TEXT NOT NULL, attempt INTEGER NOT NULL,"
    " rank INTEGER NOT NULL, at TEXT NOT NULL, at_ms INTEGER NOT NULL, worker TEXT, host TEXT,"
    " duration_ms INTEGER, error TEXT, delay_ms INTEGER, reason TEXT,"
    " replay INTEGER NOT NULL DEFAULT 0, UNIQUE(job_id, event, replay, attempt, at));"
    "CREATE INDEX IF NOT EXISTS events_at ON events(at_ms);"
    "CREATE INDEX IF NOT EXISTS events_worker_at ON events(worker, at_ms);";


warren_status warren__history_db_fail(struct warren_history *h, warren_error *err,
                                      const char *what)
{
    return warren_error_set(err, WARREN_EIO, "history: %s: %s", what,
                            h && h->db ? sqlite3_errmsg(h->db) : "cannot open");
}

/* ---- time --------------------------------------------------------------- */

long long warren__history_parse_time(const char *text)
{
    if (!text)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0, n = 0;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = text + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3 && digits > 0; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (long long)t * 1000 + ms;
}

const char *warren__history_format_time(long long ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(ms % 1000));
    return buf;
}

long long warren__history_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- open / close ------------------------------------------------------- */

static int has_column(sqlite3 *db, const char *table, const char *column)
{
    char sql[64];
    sqlite3_stmt *s;
    int found = 0;
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return 0;
    while (!found && sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(s, 1);
        found = name && !strcmp((const char *)name, column);
    }
    sqlite3_finalize(s);
    return found;
}

/* The writer creates the tables, and adds the replay columns to a
 * database made before them (see the top); a reader only looks. 0 ok. */
static int schema_ready(struct warren_history *h)
{
    static const char *const tables[] = {"jobs", "events"};
    int have = 1;
    if (!h->opts.read_only && sqlite3_exec(h->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (has_column(h->db, tables[i], "replay"))
            continue;
        char sql[128];
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN replay INTEGER NOT NULL DEFAULT 0",
                 tables[i]);
        if (h->opts.read_only)
            have = 0;
        else if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            return -1;
    }
    h->replay_col = have ? "replay" : "0";
    return 0;
}

warren_status warren__history_open(struct warren_history **out, const char *path,
                                   const struct warren_history_opts *opts, warren_error *err)
{
    *out = NULL;
    struct warren_history *h = calloc(1, sizeof *h);
    if (!h)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (opts)
        h->opts = *opts;
    if (h->opts.max_jobs <= 0)
        h->opts.max_jobs = WARREN_HISTORY_MAX_JOBS_DEFAULT;
    int memory = !strcmp(path, ":memory:");
    if (h->opts.read_only && !memory && access(path, R_OK) != 0) {
        free(h);
        return warren_error_set(err, WARREN_ENOTFOUND, "history: no database at %s (is "
                                "`warren web` running with this config?)", path);
    }
    int flags = h->opts.read_only ? SQLITE_OPEN_READONLY
                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &h->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        warren_status st = warren_error_set(err, WARREN_EIO, "history: open %s: %s", path,
                                            h->db ? sqlite3_errmsg(h->db) : "out of memory");
        sqlite3_close(h->db);
        free(h);
        return st;
    }
    sqlite3_busy_timeout(h->db, 5000);
    /* The writer: every event puts index entries of random job ids on
     * random pages, so a batch of 500 dirties ~2,000 pages. A 16 MiB page
     * cache (default 2 MiB) keeps them between batches, and checkpointing
     * every 10,000 WAL pages (~40 MiB; default 1,000, about every batch)
     * writes a page hit by several batches to the database once: together
     * ~30 % more events/s and 30 % fewer bytes written (scripts/bench (h),
     * bench/RESULTS.md). Durability is unchanged: synchronous = FULL syncs
     * the WAL at every commit. */
    const char *setup = h->opts.read_only
                            ? "PRAGMA query_only = 1;"
                            : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                              " PRAGMA foreign_keys = OFF; PRAGMA cache_size = -16384;"
                              " PRAGMA wal_autocheckpoint = 10000;";
    if (sqlite3_exec(h->db, setup, NULL, NULL, NULL) != SQLITE_OK || schema_ready(h) != 0) {
        warren_status st = warren__history_db_fail(h, err, path);
        warren__history_close(h);
        return st;
    }
    if (!h->opts.read_only)
        for (int i = 0; i < ST_COUNT; i++)
            if (sqlite3_prepare_v2(h->db, statements[i], -1, &h->st[i], NULL) != SQLITE_OK) {
                warren_status st = warren__history_db_fail(h, err, "prepare");
                warren__history_close(h);
                return st;
            }
    *out = h;
    return WARREN_OK;
}

void warren__history_close(struct warren_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(h->st[i]);
    sqlite3_close(h->db);
    free(h);
}

warren_status warren__history_begin(struct warren_history *h, warren_error *err)
{
    if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return warren__history_db_fail(h, err, "begin");
    h->in_batch = 1;
    return WARREN_OK;
}

warren_status warren__history_commit(struct warren_history *h, warren_error *err)
{
    if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        warren_status st = warren__history_db_fail(h, err, "commit");
        warren__history_rollback(h);
        return st;
    }
    h->in_batch = 0;
    return WARREN_OK;
}

warren_status warren__history_rollback(struct warren_history *h)
{
    if (h->in_batch)
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    h->in_batch = 0;
    return WARREN_OK;
}

/* ---- ingest ------------------------------------------------------------- */

struct event_kind {
    const char *name;
    int rank;          /* place in an attempt's lifecycle */
    const char *state; /* NULL: timeline only */
};

static const struct event_kind kinds[] = {
    {"queued", 0, "queued"},     {"scheduled", 0, "scheduled"}, {"started", 2, "running"},
    {"progress", 2, NULL},       {"failed", 3, NULL},           {"retrying", 4, "retrying"},
    {"succeeded", 5, "succeeded"}, {"dead", 5, "dead"},
};

static const struct event_kind *kind_of(const char *event)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, event))
            return &kinds[i];
    return NULL;
}

static const char *str_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? s : NULL;
}

static int int_field(json_t *o, const char *key, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return 0;
    *out = json_integer_value(v);
    return 1;
}

void warren__history_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void bind_opt_int(sqlite3_stmt *s, int i, int have, long long v)
{
    if (have)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE;
}

/* args as text, cut at WARREN_HISTORY_ARGS_MAX bytes on a UTF-8 boundary. */
static char *args_text(json_t *args)
{
    if (!args || json_is_null(args))
        return NULL;
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && strlen(text) > WARREN_HISTORY_ARGS_MAX) {
        size_t n = WARREN_HISTORY_ARGS_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        text[n] = '\0';
    }
    return text;
}

/* What ingest takes from an event; strings borrow from its JSON. */
struct event_row {
    const char *id, *event, *at, *worker, *queue, *error;
    long long at_ms, attempt, replay, key;
    const struct event_kind *kind; /* NULL: an event without a state */
    int rank;
};

/* A job's events order by replay, then attempt, then lifecycle place.
 * With attempt below 2^31 and replay at most WARREN_MAX_REPLAY (< 2^20)
 * the key stays below 2^54; with replay 0 it is attempt * 8 + rank, the
 * key of the databases made before replays were counted. */
static long long event_key(long long replay, long long attempt, int rank)
{
    return ((replay << 31) + attempt) * 8 + rank;
}

/* 0, or -1 when the event lacks an id, a name or a valid time. Attempt and
 * replay are read as leniently as the host reads their headers. */
static int read_row(struct event_row *r, json_t *o)
{
    long long v;
    memset(r, 0, sizeof *r);
    r->id = str_field(o, "id");
    r->event = str_field(o, "event");
    r->at = str_field(o, "at");
    r->at_ms = warren__history_parse_time(r->at);
    r->attempt = int_field(o, "attempt", &v) && v > 0 && v < INT_MAX ? v : 1;
    if (int_field(o, "replay", &v) && v > 0)
        r->replay = v < WARREN_MAX_REPLAY ? v : WARREN_MAX_REPLAY;
    if (!r->id || !r->event || r->at_ms < 0)
        return -1;
    r->kind = kind_of(r->event);
    r->rank = r->kind ? r->kind->rank : 1; /* other events (snoozed, duplicate): timeline only */
    r->key = event_key(r->replay, r->attempt, r->rank);
    r->worker = str_field(o, "worker");
    r->queue = str_field(o, "queue");
    r->error = str_field(o, "error");
    return 0;
}

/* The timeline row; *fresh = 0 when it was there already. */
static warren_status insert_event(struct warren_history *h, const struct event_row *r, json_t *o,
                                  int *fresh, warren_error *err)
{
    long long duration = 0, delay = 0;
    int have_duration = int_field(o, "duration_ms", &duration);
    int have_delay = int_field(o, "delay_ms", &delay);
    sqlite3_stmt *s = h->st[ST_INSERT_EVENT];
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, r->event, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, r->attempt);
    sqlite3_bind_int(s, 4, r->rank);
    sqlite3_bind_text(s, 5, r->at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, r->at_ms);
    warren__history_bind_text(s, 7, r->worker);
    warren__history_bind_text(s, 8, str_field(o, "host"));
    bind_opt_int(s, 9, have_duration, duration);
    warren__history_bind_text(s, 10, r->error);
    bind_opt_int(s, 11, have_delay, delay);
    warren__history_bind_text(s, 12, str_field(o, "reason"));
    sqlite3_bind_int64(s, 13, r->replay);
    if (!step_done(s))
        return warren__history_db_fail(h, err, "insert event");
    *fresh = sqlite3_changes(h->db) > 0;
    return WARREN_OK;
}

static warren_status upsert_job(struct warren_history *h, const struct event_row *r, json_t *o,
                                warren_error *err)
{
    long long prio = 0;
    int have_prio = int_field(o, "priority", &prio);
    char *args = args_text(json_object_get(o, "args"));
    sqlite3_stmt *s = h->st[ST_UPSERT_JOB];
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_TRANSIENT);
    warren__history_bind_text(s, 2, r->worker);
    warren__history_bind_text(s, 3, r->queue);
    sqlite3_bind_int64(s, 4, r->attempt);
    sqlite3_bind_int64(s, 5, r->at_ms);
    bind_opt_int(s, 6, have_prio, prio);
    warren__history_bind_text(s, 7, args);
    warren__history_bind_text(s, 8, r->kind ? r->kind->state : NULL);
    warren__history_bind_text(s, 9, r->error);
    sqlite3_bind_int64(s, 10, r->key);
    sqlite3_bind_int64(s, 11, r->replay);
    int ok = step_done(s);
    free(args);
    return ok ? WARREN_OK : warren__history_db_fail(h, err, "update job");
}

static warren_status update_progress(struct warren_history *h, const struct event_row *r,
                                     json_t *o, warren_error *err)
{
    long long done, total;
    if (!int_field(o, "done", &done))
        return WARREN_OK;
    int have_total = int_field(o, "total", &total);
    sqlite3_stmt *s = h->st[ST_UPDATE_PROGRESS];
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, done);
    bind_opt_int(s, 3, have_total, total);
    sqlite3_bind_int64(s, 4, r->at_ms);
    return step_done(s) ? WARREN_OK : warren__history_db_fail(h, err, "update progress");
}

warren_status warren__history_ingest(struct warren_history *h, const char *json, size_t len,
                                     warren_error *err)
{
    if (h->opts.read_only)
        return warren_error_set(err, WARREN_EINVAL, "history: opened read-only");
    /* warren__json_fast_object gives what jansson would, or NULL (then
     * jansson decides): a fifth of jansson's instructions for an event. */
    json_error_t jerr;
    json_t *o = warren__json_fast_object(json, len, HISTORY_MAX_DEPTH);
    if (!o)
        o = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return warren_error_set(err, WARREN_EINVAL, "event is not a JSON object");
    }
    struct event_row r;
    warren_status st = WARREN_OK;
    int fresh = 1;
    int is_progress;
    if (read_row(&r, o) != 0) {
        st = warren_error_set(err, WARREN_EINVAL, "event without id, event or a valid at");
        goto out;
    }
    /* Progress is not a timeline row: it only updates the job. */
    is_progress = r.kind && !strcmp(r.kind->name, "progress");
    if (!is_progress && ((st = insert_event(h, &r, o, &fresh, err)) != WARREN_OK || !fresh))
        goto out; /* failed, or seen before */
    if ((st = upsert_job(h, &r, o, err)) == WARREN_OK && is_progress)
        st = update_progress(h, &r, o, err);
out:
    json_decref(o);
    return st;
}

/* ---- prune -------------------------------------------------------------- */

static int exec_int(sqlite3 *db, const char *sql, long long a, long long *changes)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, a);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (changes)
        *changes += sqlite3_changes(db);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

warren_status warren__history_prune(struct warren_history *h, long long now, long long *deleted,
                                    warren_error *err)
{
    long long jobs = 0;
    if (now <= 0)
        now = warren__history_now_ms();
    int own = !h->in_batch;
    warren_status st0;
    if (own && (st0 = warren__history_begin(h, err)) != WARREN_OK)
        return st0;
    int bad = 0;
    if (h->opts.retention_ms > 0) {
        long long cutoff = now - h->opts.retention_ms;
        bad |= exec_int(h->db, "DELETE FROM events WHERE job_id IN"
                               " (SELECT id FROM jobs WHERE updated_ms < ?1)", cutoff, NULL);
        bad |= exec_int(h->db, "DELETE FROM jobs WHERE updated_ms < ?1", cutoff, &jobs);
        bad |= exec_int(h->db, "DELETE FROM events WHERE at_ms < ?1", cutoff, NULL);
    }
    sqlite3_stmt *s;
    long long count = 0;
    if (sqlite3_prepare_v2(h->db, "SELECT COUNT(*) FROM jobs", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            count = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    if (count > h->opts.max_jobs) {
        long long excess = count - h->opts.max_jobs;
        bad |= exec_int(h->db, "DELETE FROM events WHERE job_id IN (SELECT id FROM jobs"
                               " ORDER BY updated_ms LIMIT ?1)", excess, NULL);
        bad |= exec_int(h->db, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
                               " ORDER BY updated_ms LIMIT ?1)", excess, &jobs);
    }
    if (bad) {
        warren_status st = warren__history_db_fail(h, err, "prune");
        if (own)
            warren__history_rollback(h);
        return st;
    }
    if (own && (st0 = warren__history_commit(h, err)) != WARREN_OK)
        return st0;
    if (deleted)
        *deleted = jobs;
    return WARREN_OK;
}
