/* Unit tests of the job history store (history_sqlite.c): states from
 * events in any order, idempotent ingest, timelines, filters, reports that
 * add up, retention and the size bound, a file reopened read-only, a
 * replayed job's new run, and a database made before replays counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "history.h"

static char *event(const char *id, const char *worker, const char *ev, int attempt,
                   const char *at, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"id\":\"%s\",\"worker\":\"%s\",\"queue\":\"default\",\"attempt\":%d,"
             "\"event\":\"%s\",\"at\":\"%s\",\"host\":\"h1\"%s%s}",
             id, worker, attempt, ev, at, extra ? "," : "", extra ? extra : "");
    return buf;
}

static void feed(struct warren_history *h, const char *json)
{
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__history_ingest(h, json, strlen(json), &err), WARREN_OK);
}

static struct warren_history *mem(void)
{
    struct warren_history *h;
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__history_open(&h, ":memory:", NULL, &err), WARREN_OK);
    return h;
}

static json_t *job(struct warren_history *h, const char *id)
{
    json_t *j;
    assert_int_equal(warren__history_job(h, id, &j, NULL), WARREN_OK);
    return j;
}

static const char *state_of(struct warren_history *h, const char *id)
{
    static char state[32];
    json_t *j = job(h, id);
    snprintf(state, sizeof state, "%s", json_string_value(json_object_get(j, "state")));
    json_decref(j);
    return state;
}

static void test_time_round_trip(void **s)
{
    (void)s;
    char buf[40];
    long long ms = warren__history_parse_time("2026-05-01T02:00:00.123Z");
    assert_true(ms > 0);
    assert_string_equal(warren__history_format_time(ms, buf, sizeof buf),
                        "2026-05-01T02:00:00.123Z");
    assert_int_equal(warren__history_parse_time("2026-05-01T02:00:00Z") % 1000, 0);
    assert_int_equal(warren__history_parse_time("yesterday"), -1);
    assert_int_equal(warren__history_parse_time("2026-05-01T02:00:00.1+01:00"), -1);
}

static void test_lifecycle_and_timeline(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    assert_int_equal(warren__history_begin(h, NULL), WARREN_OK);
    feed(h, event("j1", "w", "queued", 1, "2026-05-01T00:00:00.000Z", "\"args\":{\"a\":1},\"priority\":5"));
    feed(h, event("j1", "w", "started", 1, "2026-05-01T00:00:01.000Z", NULL));
    feed(h, event("j1", "w", "failed", 1, "2026-05-01T00:00:02.000Z",
                  "\"duration_ms\":10,\"error\":\"boom\""));
    feed(h, event("j1", "w", "retrying", 1, "2026-05-01T00:00:02.001Z",
                  "\"error\":\"boom\",\"delay_ms\":1000"));
    assert_int_equal(warren__history_commit(h, NULL), WARREN_OK);
    assert_string_equal(state_of(h, "j1"), "retrying");
    feed(h, event("j1", "w", "started", 2, "2026-05-01T00:00:03.000Z", NULL));
    assert_string_equal(state_of(h, "j1"), "running");
    feed(h, event("j1", "w", "progress", 2, "2026-05-01T00:00:03.500Z", "\"done\":3,\"total\":10"));
    feed(h, event("j1", "w", "succeeded", 2, "2026-05-01T00:00:04.000Z", "\"duration_ms\":20"));
    json_t *j = job(h, "j1");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "args"), "a")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "boom");
    json_t *p = json_object_get(j, "progress");
    assert_int_equal(json_integer_value(json_object_get(p, "done")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 10);
    json_t *tl = json_object_get(j, "timeline");
    assert_int_equal(json_array_size(tl), 6);
    const char *order[] = {"queued", "started", "failed", "retrying", "started", "succeeded"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(tl, i), "event")),
                            order[i]);
    json_t *retry = json_array_get(tl, 3);
    assert_int_equal(json_integer_value(json_object_get(retry, "delay_ms")), 1000);
    assert_string_equal(json_string_value(json_object_get(retry, "host")), "h1");
    json_decref(j);
    warren__history_close(h);
}

static void test_out_of_order_and_duplicates(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    /* The terminal event first, then older ones, then everything again. */
    for (int round = 0; round < 2; round++) {
        feed(h, event("j2", "w", "dead", 2, "2026-05-01T00:00:09.000Z",
                      "\"error\":\"final\",\"reason\":\"failed\""));
        feed(h, event("j2", "w", "started", 2, "2026-05-01T00:00:08.000Z", NULL));
        feed(h, event("j2", "w", "retrying", 1, "2026-05-01T00:00:05.000Z", "\"error\":\"first\""));
        feed(h, event("j2", "w", "failed", 2, "2026-05-01T00:00:08.500Z", "\"error\":\"final\""));
        feed(h, event("j2", "w", "started", 1, "2026-05-01T00:00:04.000Z", NULL));
        /* The same instant on the same attempt: dead still wins over started. */
        feed(h, event("j3", "w", "dead", 1, "2026-05-01T00:00:04.000Z", "\"error\":\"x\""));
        feed(h, event("j3", "w", "started", 1, "2026-05-01T00:00:04.000Z", NULL));
    }
    json_t *j = job(h, "j2");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "dead");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "final");
    assert_int_equal(json_array_size(json_object_get(j, "timeline")), 5);
    json_decref(j);
    assert_string_equal(state_of(h, "j3"), "dead");
    json_t *list;
    assert_int_equal(warren__history_jobs(h, NULL, &list, NULL), WARREN_OK);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 2);
    json_decref(list);
    warren__history_close(h);
}

/* A fresh folder `dir` (a "/tmp/warren-history-XXXXXX" template) and the
 * path of `name` in it; remove_dir removes it again. */
static void temp_path(char *dir, char *path, size_t size, const char *name)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, size, "%s/%s", dir, name);
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A first run of `id`: three attempts, the last one `dead`. */
static void feed_dead_run(struct warren_history *h, const char *id)
{
    feed(h, event(id, "w", "queued", 1, "2026-05-01T00:00:00.000Z", NULL));
    for (int a = 1; a <= 3; a++) {
        char at[40];
        snprintf(at, sizeof at, "2026-05-01T00:00:0%d.000Z", a);
        feed(h, event(id, "w", "started", a, at, NULL));
        snprintf(at, sizeof at, "2026-05-01T00:00:0%d.500Z", a);
        feed(h, event(id, "w", "failed", a, at, "\"error\":\"boom\""));
        feed(h, event(id, "w", a < 3 ? "retrying" : "dead", a, at,
                      a < 3 ? "\"error\":\"boom\",\"delay_ms\":1"
                            : "\"error\":\"boom\",\"reason\":\"max_attempts\""));
    }
}

static long long int_of(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void test_replay_supersedes_dead(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    feed_dead_run(h, "r1");
    assert_string_equal(state_of(h, "r1"), "dead");
    feed(h, event("r1", "w", "started", 1, "2026-05-01T00:01:00.000Z", "\"replay\":1"));
    assert_string_equal(state_of(h, "r1"), "running");
    feed(h, event("r1", "w", "succeeded", 1, "2026-05-01T00:01:01.000Z",
                  "\"replay\":1,\"duration_ms\":5"));
    json_t *j = job(h, "r1");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
    assert_int_equal(int_of(j, "attempt"), 1);
    assert_int_equal(int_of(j, "replay"), 1);
    json_t *tl = json_object_get(j, "timeline");
    assert_int_equal(json_array_size(tl), 12); /* queued, 3 x 3, then 2 */
    assert_int_equal(int_of(json_array_get(tl, 9), "replay"), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 9), "event")),
                        "dead");
    assert_int_equal(int_of(json_array_get(tl, 10), "replay"), 1);
    assert_int_equal(int_of(json_array_get(tl, 11), "replay"), 1);
    json_decref(j);
    /* A second replay supersedes the first one's end the same way. */
    feed(h, event("r1", "w", "started", 1, "2026-05-01T00:02:00.000Z", "\"replay\":2"));
    assert_string_equal(state_of(h, "r1"), "running");
    warren__history_close(h);
}

static void test_replay_out_of_order(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    /* The replay's started first, then the whole first run: it stays running. */
    feed(h, event("r2", "w", "started", 1, "2026-05-01T00:01:00.000Z", "\"replay\":1"));
    feed_dead_run(h, "r2");
    json_t *j = job(h, "r2");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_int_equal(int_of(j, "attempt"), 1);
    assert_int_equal(int_of(j, "replay"), 1);
    json_decref(j);
    /* The replay's end, then its own started again (redelivered): succeeded. */
    feed(h, event("r2", "w", "succeeded", 1, "2026-05-01T00:01:01.000Z", "\"replay\":1"));
    feed(h, event("r2", "w", "started", 1, "2026-05-01T00:01:00.000Z", "\"replay\":1"));
    assert_string_equal(state_of(h, "r2"), "succeeded");
    /* The same instant as the first run's started of attempt 1 is still a
     * row of its own: replay is part of the timeline's unique key. */
    feed(h, event("r3", "w", "started", 1, "2026-05-01T00:00:01.000Z", NULL));
    feed(h, event("r3", "w", "started", 1, "2026-05-01T00:00:01.000Z", "\"replay\":1"));
    j = job(h, "r3");
    assert_int_equal(json_array_size(json_object_get(j, "timeline")), 2);
    json_decref(j);
    /* A replay count that makes no sense is 0, a huge one is capped. */
    feed(h, event("r4", "w", "dead", 2, "2026-05-01T00:00:01.000Z", "\"replay\":-4"));
    feed(h, event("r4", "w", "started", 1, "2026-05-01T00:00:02.000Z", "\"replay\":\"x\""));
    assert_string_equal(state_of(h, "r4"), "dead");
    feed(h, event("r4", "w", "started", 1, "2026-05-01T00:00:03.000Z",
                  "\"replay\":9223372036854775807"));
    j = job(h, "r4");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_int_equal(int_of(j, "replay"), 1000000);
    json_decref(j);
    warren__history_close(h);
}

/* A file as the store made it before replays counted. */
static void make_old_db(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *sql =
        "CREATE TABLE jobs(id TEXT PRIMARY KEY, worker TEXT, queue TEXT, state TEXT,"
        " state_key INTEGER NOT NULL, attempt INTEGER NOT NULL, priority INTEGER, args TEXT,"
        " error TEXT, error_key INTEGER NOT NULL, progress_done INTEGER, progress_total INTEGER,"
        " progress_at INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
        "CREATE TABLE events(job_id TEXT NOT NULL, event TEXT NOT NULL, attempt INTEGER NOT NULL,"
        " rank INTEGER NOT NULL, at TEXT NOT NULL, at_ms INTEGER NOT NULL, worker TEXT, host TEXT,"
        " duration_ms INTEGER, error TEXT, delay_ms INTEGER, reason TEXT,"
        " UNIQUE(job_id, event, attempt, at));"
        "INSERT INTO jobs VALUES('old', 'w', 'default', 'dead', 29, 3, 0, NULL, 'boom', 29,"
        " NULL, NULL, -1, 1777593600000, 1777593603500);"
        "INSERT INTO events VALUES('old', 'dead', 3, 5, '2026-05-01T00:00:03.500Z',"
        " 1777593603500, 'w', 'h1', NULL, 'boom', NULL, 'max_attempts');";
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_old_database(void **s)
{
    (void)s;
    char dir[] = "/tmp/warren-history-XXXXXX", path[128];
    temp_path(dir, path, sizeof path, "old.db");
    make_old_db(path);
    /* A reader before any writer migrated it: replay reads as 0. */
    struct warren_history_opts ro = {.read_only = 1};
    struct warren_history *h;
    assert_int_equal(warren__history_open(&h, path, &ro, NULL), WARREN_OK);
    json_t *j = job(h, "old");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "dead");
    assert_int_equal(int_of(j, "replay"), 0);
    assert_int_equal(int_of(json_array_get(json_object_get(j, "timeline"), 0), "replay"), 0);
    json_decref(j);
    warren__history_close(h);
    /* The writer adds the columns; the old rows keep their keys. */
    assert_int_equal(warren__history_open(&h, path, NULL, NULL), WARREN_OK);
    feed(h, event("old", "w", "started", 2, "2026-05-01T00:00:00.100Z", NULL));
    assert_string_equal(state_of(h, "old"), "dead");
    feed(h, event("old", "w", "started", 1, "2026-05-01T00:01:00.000Z", "\"replay\":1"));
    warren__history_close(h);
    assert_int_equal(warren__history_open(&h, path, &ro, NULL), WARREN_OK);
    j = job(h, "old");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_int_equal(int_of(j, "replay"), 1);
    assert_int_equal(json_array_size(json_object_get(j, "timeline")), 3);
    json_decref(j);
    warren__history_close(h);
    /* Opening it again as the writer changes nothing. */
    assert_int_equal(warren__history_open(&h, path, NULL, NULL), WARREN_OK);
    assert_string_equal(state_of(h, "old"), "running");
    warren__history_close(h);
    remove_dir(dir);
}

static void test_bad_input(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    const char *bad[] = {"", "[]", "{\"id\":\"x\"}", "{\"id\":\"x\",\"event\":\"started\"}",
                         "{\"id\":\"x\",\"event\":\"started\",\"at\":\"never\"}", "{nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(warren__history_ingest(h, bad[i], strlen(bad[i]), NULL), WARREN_EINVAL);
    assert_int_equal(warren__history_job(h, "x", &(json_t *){NULL}, NULL), WARREN_ENOTFOUND);
    /* Unknown events are kept in the timeline and do not set a state. */
    feed(h, event("u", "w", "started", 1, "2026-05-01T00:00:00.000Z", NULL));
    feed(h, event("u", "w", "snoozed", 1, "2026-05-01T00:00:01.000Z", NULL));
    assert_string_equal(state_of(h, "u"), "running");
    /* Args longer than 4 KiB are cut, and come back as text. */
    char *big = malloc(6000), *ev = malloc(7000);
    memset(big, 'a', 5000);
    big[5000] = '\0';
    snprintf(ev, 7000,
             "{\"id\":\"big\",\"event\":\"queued\",\"attempt\":1,\"at\":\"2026-05-01T00:00:00Z\","
             "\"args\":{\"s\":\"%s\"}}", big);
    feed(h, ev);
    json_t *j = job(h, "big");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "args"))),
                     WARREN_HISTORY_ARGS_MAX);
    json_decref(j);
    free(big);
    free(ev);
    warren__history_close(h);
}

static void test_filters(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    feed(h, event("a1", "alpha", "succeeded", 1, "2026-05-01T00:00:01.000Z", NULL));
    feed(h, event("a2", "alpha", "dead", 1, "2026-05-01T00:00:02.000Z", NULL));
    feed(h, event("b1", "beta", "succeeded", 1, "2026-05-01T00:00:03.000Z", NULL));
    json_t *list;
    struct warren_history_filter f = {.state = "succeeded"};
    assert_int_equal(warren__history_jobs(h, &f, &list, NULL), WARREN_OK);
    json_t *jobs = json_object_get(list, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 0), "id")), "b1");
    json_decref(list);
    f = (struct warren_history_filter){.worker = "alpha", .limit = 1};
    assert_int_equal(warren__history_jobs(h, &f, &list, NULL), WARREN_OK);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 1);
    json_decref(list);
    f = (struct warren_history_filter){
        .since_ms = warren__history_parse_time("2026-05-01T00:00:02.000Z")};
    assert_int_equal(warren__history_jobs(h, &f, &list, NULL), WARREN_OK);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 2);
    json_decref(list);
    f = (struct warren_history_filter){.id_prefix = "a"};
    assert_int_equal(warren__history_jobs(h, &f, &list, NULL), WARREN_OK);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 2);
    json_decref(list);
    warren__history_close(h);
}

static void test_report_adds_up(void **s)
{
    (void)s;
    struct warren_history *h = mem();
    char id[32], extra[96];
    /* 10 jobs of w: 7 succeed (durations 10..70), 2 retry once then succeed, 1 dies. */
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        feed(h, event(id, "w", "started", 1, "2026-05-01T10:00:00.000Z", NULL));
        if (i < 7) {
            snprintf(extra, sizeof extra, "\"duration_ms\":%d", (i + 1) * 10);
            feed(h, event(id, "w", "succeeded", 1, "2026-05-01T10:00:01.000Z", extra));
        } else if (i < 9) {
            feed(h, event(id, "w", "failed", 1, "2026-05-01T10:00:01.000Z",
                          "\"duration_ms\":5,\"error\":\"flaky\""));
            feed(h, event(id, "w", "retrying", 1, "2026-05-01T10:00:01.001Z",
                          "\"error\":\"flaky\",\"delay_ms\":1"));
            feed(h, event(id, "w", "started", 2, "2026-05-01T11:00:00.000Z", NULL));
            feed(h, event(id, "w", "succeeded", 2, "2026-05-01T11:00:01.000Z",
                          "\"duration_ms\":100"));
        } else {
            feed(h, event(id, "w", "failed", 1, "2026-05-01T10:00:01.000Z",
                          "\"duration_ms\":5,\"error\":\"bad\""));
            feed(h, event(id, "w", "dead", 1, "2026-05-01T10:00:01.001Z", "\"error\":\"bad\""));
        }
    }
    feed(h, event("z", "other", "dead", 1, "2026-05-01T10:30:00.000Z", "\"error\":\"unknown\""));
    json_t *r;
    assert_int_equal(warren__history_report(h, 0, &r, NULL), WARREN_OK);
    json_t *workers = json_object_get(r, "workers");
    assert_int_equal(json_array_size(workers), 2);
    json_t *w = json_array_get(workers, 1);
    assert_string_equal(json_string_value(json_object_get(w, "worker")), "w");
    assert_int_equal(json_integer_value(json_object_get(w, "started")), 12);
    assert_int_equal(json_integer_value(json_object_get(w, "succeeded")), 9);
    assert_int_equal(json_integer_value(json_object_get(w, "retried")), 2);
    assert_int_equal(json_integer_value(json_object_get(w, "dead")), 1);
    assert_int_equal(json_integer_value(json_object_get(w, "failed")), 3);
    assert_true(json_real_value(json_object_get(w, "failure_rate")) > 0.249 &&
                json_real_value(json_object_get(w, "failure_rate")) < 0.251);
    /* 12 timed runs: 5 5 5 10 20 30 40 50 60 70 100 100 */
    assert_int_equal(json_integer_value(json_object_get(w, "p50_ms")), 30);
    assert_int_equal(json_integer_value(json_object_get(w, "p95_ms")), 100);
    assert_int_equal(json_integer_value(json_object_get(w, "p99_ms")), 100);
    json_t *top = json_object_get(w, "top_errors");
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "error")),
                        "flaky");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "count")), 2);
    json_t *hours = json_object_get(r, "hours");
    long long total = 0;
    for (size_t i = 0; i < json_array_size(hours); i++) {
        json_t *hr = json_array_get(hours, i);
        total += json_integer_value(json_object_get(hr, "succeeded")) +
                 json_integer_value(json_object_get(hr, "retried")) +
                 json_integer_value(json_object_get(hr, "dead"));
    }
    assert_int_equal(total, 9 + 2 + 1 + 1);
    assert_int_equal(json_array_size(hours), 2);
    json_t *states = json_object_get(r, "states");
    assert_int_equal(json_integer_value(json_object_get(states, "succeeded")), 9);
    assert_int_equal(json_integer_value(json_object_get(states, "dead")), 2);
    json_decref(r);
    /* since excludes older events. */
    assert_int_equal(warren__history_report(h, warren__history_parse_time("2026-05-01T11:00:00Z"),
                                            &r, NULL), WARREN_OK);
    w = json_array_get(json_object_get(r, "workers"), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "succeeded")), 2);
    json_decref(r);
    warren__history_close(h);
}

static void test_retention_and_bound_on_file(void **s)
{
    (void)s;
    char dir[] = "/tmp/warren-history-XXXXXX", path[128];
    temp_path(dir, path, sizeof path, "h.db");
    struct warren_history_opts o = {.retention_ms = 3600 * 1000LL, .max_jobs = 3};
    struct warren_history *h;
    assert_int_equal(warren__history_open(&h, path, &o, NULL), WARREN_OK);
    char id[16], at[40];
    long long base = warren__history_parse_time("2026-05-01T00:00:00Z");
    assert_int_equal(warren__history_begin(h, NULL), WARREN_OK);
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "k%d", i);
        warren__history_format_time(base + i * 600000LL, at, sizeof at); /* every 10 min */
        feed(h, event(id, "w", "succeeded", 1, at, NULL));
    }
    assert_int_equal(warren__history_commit(h, NULL), WARREN_OK);
    long long deleted = 0;
    /* now = base + 1h05: k0 (older than 1 h) goes by retention, then k1, k2 by the bound. */
    assert_int_equal(warren__history_prune(h, base + 3900000LL, &deleted, NULL), WARREN_OK);
    assert_int_equal(deleted, 3);
    warren__history_close(h);

    struct warren_history_opts ro = {.read_only = 1};
    assert_int_equal(warren__history_open(&h, path, &ro, NULL), WARREN_OK);
    json_t *list;
    assert_int_equal(warren__history_jobs(h, NULL, &list, NULL), WARREN_OK);
    json_t *jobs = json_object_get(list, "jobs");
    assert_int_equal(json_array_size(jobs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 2), "id")), "k3");
    json_decref(list);
    assert_int_equal(warren__history_ingest(h, "{}", 2, NULL), WARREN_EINVAL);
    warren__history_close(h);

    snprintf(path, sizeof path, "%s/missing.db", dir);
    assert_int_equal(warren__history_open(&h, path, &ro, NULL), WARREN_ENOTFOUND);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_lifecycle_and_timeline),
        cmocka_unit_test(test_out_of_order_and_duplicates),
        cmocka_unit_test(test_replay_supersedes_dead),
        cmocka_unit_test(test_replay_out_of_order),
        cmocka_unit_test(test_old_database),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_report_adds_up),
        cmocka_unit_test(test_retention_and_bound_on_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
