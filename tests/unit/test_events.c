/* Unit tests of lifecycle events (events.c): the JSON payload and routing
 * key, and the lifecycle's fan-out to observers and statistics (no
 * broker: publishing is covered by tests/integration/test_events.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/warren.h>
#include "events.h"
#include "job.h"
#include "registry_internal.h"
#include "stats.h"

static void test_json_fields(void **state)
{
    (void)state;
    struct warren_event ev = {"retrying", "id-1", "send_email", "default", "host-a", 2,
                              150, "smtp: 421", 4000, NULL, "2026-05-01T02:00:00.123Z"};
    char *text = warren__event_json(&ev);
    assert_non_null(text);
    assert_string_equal(text, "{\"id\":\"id-1\",\"worker\":\"send_email\",\"queue\":\"default\","
                              "\"attempt\":2,\"event\":\"retrying\","
                              "\"at\":\"2026-05-01T02:00:00.123Z\",\"duration_ms\":150,"
                              "\"error\":\"smtp: 421\",\"host\":\"host-a\",\"delay_ms\":4000}");
    free(text);

    struct warren_event started = {"started", "id-1", "w", "q", "h", 1, -1, NULL, -1, NULL, NULL};
    text = warren__event_json(&started);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    assert_true(json_is_null(json_object_get(o, "error")));
    assert_null(json_object_get(o, "delay_ms"));
    assert_null(json_object_get(o, "reason"));
    const char *at = json_string_value(json_object_get(o, "at"));
    assert_non_null(at);
    assert_int_equal(strlen(at), 24); /* 2026-05-01T02:00:00.123Z */
    assert_int_equal(at[23], 'Z');
    assert_int_equal(json_object_size(o), 9);
    json_decref(o);
    free(text);
}

static void test_json_dead_and_bad_strings(void **state)
{
    (void)state;
    struct warren_event ev = {"dead", "", "bad\xff", NULL, "h", 0, -1, "", -1, "malformed", NULL};
    char *text = warren__event_json(&ev);
    assert_non_null(text);
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "worker")), "");
    assert_string_equal(json_string_value(json_object_get(o, "queue")), "");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "malformed");
    assert_true(json_is_null(json_object_get(o, "error")));
    json_decref(o);
    free(text);
}

/* The direct writer gives jansson's text, byte for byte, whatever the
 * strings hold. */
static void test_json_direct_equals_jansson(void **state)
{
    (void)state;
    static const char *const texts[] = {NULL, "", "plain", "q\"uo\\te/", "\n\t\x01\x1f",
                                        "caf\xc3\xa9 \xf0\x9f\x98\x80", "bad\xff", "\xc3"};
    const size_t n = sizeof texts / sizeof texts[0];
    char *long_error = malloc(3000);
    assert_non_null(long_error);
    memset(long_error, '\x01', 2999); /* escaped six times over: longer than the buffer */
    long_error[2999] = '\0';
    for (size_t i = 0; i < n * n; i++) {
        const char *a = texts[i % n], *b = texts[(i / n) % n];
        struct warren_event ev = {"failed", a, b, b, a, (int)i, (long long)i - 3, b, -1, NULL,
                                  "2026-05-01T02:00:00.123Z"};
        if (i % 3 == 0) {
            ev.event = "dead";
            ev.reason = "malformed";
        }
        if (i % 4 == 1) {
            ev.event = "retrying";
            ev.delay_ms = 4000;
        }
        if (i % 5 == 2) {
            ev.event = "progress";
            ev.done = 7;
            ev.total = 10;
        }
        if (i % 7 == 3)
            ev.at = NULL;
        if (i == n * n - 1)
            ev.error = long_error;
        /* a producer's event carries its args and priority; a replayed
         * job's events their replay */
        json_t *args = NULL;
        if (i % 6 == 4) {
            args = json_pack("{s:s?, s:i, s:[s?]}", "to", a, "n", (int)i, "list", b);
            ev.event = "queued";
            ev.args = args ? args : json_null();
            ev.priority = (int)(i % 10);
        }
        if (i % 11 == 5)
            ev.replay = (int)i;
        char *direct = warren__event_json(&ev), *slow = warren__event_json_jansson(&ev);
        assert_non_null(direct);
        assert_non_null(slow);
        if (ev.at) /* "now" differs between two calls */
            assert_string_equal(direct, slow);
        free(direct);
        free(slow);
        json_decref(args);
    }
    free(long_error);
}

/* Args past WARREN_EVENT_ARGS_MAX are cut at a character's start and
 * marked, the same in both writers. */
static void test_json_args_cut_equals_jansson(void **state)
{
    (void)state;
    for (size_t pad = WARREN_EVENT_ARGS_MAX - 40; pad < WARREN_EVENT_ARGS_MAX + 8; pad++) {
        char *text = malloc(pad + 1);
        assert_non_null(text);
        for (size_t k = 0; k < pad; k++) /* two-byte characters and quotes */
            text[k] = k % 3 == 2 ? '"' : (k % 3 == 0 ? '\xc3' : '\xa9');
        text[pad] = '\0';
        if (pad % 3 == 1) /* never end inside a character */
            text[pad - 1] = 'x';
        json_t *args = json_pack("{s:s}", "pad", text);
        assert_non_null(args);
        struct warren_event ev = {"queued", "id-1", "w", "", "host", 1, -1, NULL, -1, NULL,
                                  "2026-05-01T02:00:00.123Z"};
        ev.args = args;
        ev.priority = 3;
        char *direct = warren__event_json(&ev), *slow = warren__event_json_jansson(&ev);
        assert_non_null(direct);
        assert_non_null(slow);
        assert_string_equal(direct, slow);
        free(direct);
        free(slow);
        json_decref(args);
        free(text);
    }
}

static void test_routing_key(void **state)
{
    (void)state;
    char key[300], name[300];
    struct warren_event ev = {"started", "i", "diag.echo", "q", "h", 1, -1, NULL, -1, NULL, NULL};
    assert_string_equal(warren__event_key(key, sizeof key, &ev), "diag.echo.started");
    ev.worker = "no spaces allowed";
    ev.event = "dead";
    assert_string_equal(warren__event_key(key, sizeof key, &ev), ".dead");
    ev.worker = NULL;
    assert_string_equal(warren__event_key(key, sizeof key, &ev), ".dead");
    assert_string_equal(warren__name_events(name, sizeof name, "warren"), "warren.events");
    /* cut as snprintf cuts */
    assert_string_equal(warren__name_events(name, 5, "warren"), "warr");
    assert_string_equal(warren__name_events(name, 8, "warren"), "warren.");
    assert_string_equal(warren__name_events(name, 10, "warren"), "warren.ev");
    ev.worker = "diag.echo";
    ev.event = "started";
    assert_string_equal(warren__event_key(key, 11, &ev), "diag.echo.");
    assert_string_equal(warren__event_key(key, 1, &ev), "");
}

/* ---- the lifecycle, with observers and statistics, events off ---- */

static char trace[1024];

static void on_before(const warren_job *job, const warren_observer_ctx *ctx, void *user)
{
    (void)user;
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "before %s@%s/%s;", warren_job_worker(job),
             ctx->queue, ctx->host);
}

static void on_after(const warren_job *job, const warren_observer_ctx *ctx,
                     warren_outcome outcome, double duration, void *user)
{
    (void)ctx;
    (void)user;
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "after %s %d %.3f;", warren_job_worker(job),
             (int)outcome, duration);
}

static void on_error(const warren_job *job, const warren_observer_ctx *ctx, const char *error,
                     void *user)
{
    (void)ctx;
    (void)user;
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "error %s %s;", warren_job_worker(job), error);
}

static void on_dead(const warren_job *job, const warren_observer_ctx *ctx, const char *reason,
                    const char *error, void *user)
{
    (void)user;
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "dead %s@%s %s %s;", warren_job_worker(job),
             ctx->queue, reason, error);
}

static warren_outcome ok_handler(warren_job *job, void *user)
{
    (void)job;
    (void)user;
    return WARREN_JOB_OK;
}

static double sample(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key) + 1, NULL) : -1;
}

static void job_init(struct warren_job *job, const char *worker, int attempt, const char *error)
{
    memset(job, 0, sizeof *job);
    snprintf(job->worker, sizeof job->worker, "%s", worker);
    snprintf(job->id, sizeof job->id, "id-%s-%d", worker, attempt);
    job->attempt = attempt;
    snprintf(job->error, sizeof job->error, "%s", error ? error : "");
}

static void test_lifecycle_fan_out(void **state)
{
    (void)state;
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    warren_worker_def def = {"mail", ok_handler, NULL, NULL, NULL};
    assert_int_equal(warren_registry_add(reg, &def, NULL), WARREN_OK);
    warren_observer obs = {on_before, on_after, on_error, on_dead, NULL, {NULL}};
    assert_int_equal(warren_registry_observe(reg, &obs, NULL), WARREN_OK);
    struct warren_stats *st = warren_stats_create(1);
    warren_stats_worker_attach(st, 1);
    warren_stats_set_worker(st, 1, 1);
    struct warren_conn *no_conn = NULL;
    struct warren_lifecycle lc = {&no_conn, "warren", "host-a", 1, reg, st, 0, -1};
    trace[0] = '\0';

    struct warren_job job;
    /* succeeded */
    job_init(&job, "mail", 1, NULL);
    warren__lifecycle_started(&lc, &job, "default");
    struct warren_stats_slot_view v;
    warren_stats_slot_get(st, 1, &v);
    assert_true(v.in_flight);
    warren__lifecycle_ran(&lc, &job, "default", WARREN_JOB_OK, 20);
    warren_stats_slot_get(st, 1, &v);
    assert_false(v.in_flight);
    /* failed, retrying */
    job_init(&job, "mail", 1, "smtp down");
    warren__lifecycle_started(&lc, &job, "default");
    warren__lifecycle_ran(&lc, &job, "default", WARREN_JOB_RETRY, 30);
    warren__lifecycle_retrying(&lc, &job, "default", 1000);
    /* failed, dead */
    job_init(&job, "mail", 2, "bad address");
    warren__lifecycle_started(&lc, &job, "default");
    warren__lifecycle_ran(&lc, &job, "default", WARREN_JOB_FAIL, 40);
    warren__lifecycle_dead(&lc, &job, "default", "permanent_failure", job.error);
    /* never started: unknown worker, counted as worker "" */
    job_init(&job, "nobody", 1, NULL);
    warren__lifecycle_dead(&lc, &job, "default", "unknown_worker", "no handler");
    /* left unacked: no count, not in flight */
    job_init(&job, "mail", 1, NULL);
    warren__lifecycle_started(&lc, &job, "default");
    warren__lifecycle_ran(&lc, &job, "default", WARREN_JOB_RETRY, 50);
    warren__lifecycle_unsettled(&lc);
    warren_stats_slot_get(st, 1, &v);
    assert_false(v.in_flight);

    assert_string_equal(trace, "before mail@default/host-a;after mail 0 0.020;"
                               "before mail@default/host-a;after mail 1 0.030;"
                               "error mail smtp down;"
                               "before mail@default/host-a;after mail 2 0.040;"
                               "error mail bad address;"
                               "dead mail@default permanent_failure bad address;"
                               "dead nobody@default unknown_worker no handler;"
                               "before mail@default/host-a;after mail 1 0.050;"
                               "error mail ;");
    char *text = NULL;
    warren_stats_render(st, &text);
    assert_non_null(text);
    const char *q = "warren_jobs_total{queue=\"default\",";
    char key[200];
    snprintf(key, sizeof key, "%sworker=\"mail\",outcome=\"succeeded\"}", q);
    assert_true(sample(text, key) == 1);
    snprintf(key, sizeof key, "%sworker=\"mail\",outcome=\"retried\"}", q);
    assert_true(sample(text, key) == 1);
    snprintf(key, sizeof key, "%sworker=\"mail\",outcome=\"dead\"}", q);
    assert_true(sample(text, key) == 1);
    snprintf(key, sizeof key, "%sworker=\"\",outcome=\"dead\"}", q);
    assert_true(sample(text, key) == 1);
    assert_null(strstr(text, "nobody"));
    /* Four runs observed (the unsettled one too), each once. */
    assert_true(sample(text, "warren_job_duration_seconds_count{worker=\"mail\"}") == 4);
    assert_true(sample(text, "warren_job_duration_seconds_bucket{worker=\"mail\",le=\"0.025\"}") ==
                1);
    free(text);
    warren_stats_destroy(st);
    warren_registry_destroy(reg);
}

/* No registry, no statistics: the lifecycle still works (a CLI or test
 * may use it for events alone). */
static void test_lifecycle_bare(void **state)
{
    (void)state;
    struct warren_lifecycle lc = {NULL, "warren", "h", 0, NULL, NULL, 0, -1};
    struct warren_job job;
    job_init(&job, "x", 1, "e");
    warren__lifecycle_started(&lc, &job, "q");
    warren__lifecycle_ran(&lc, &job, "q", WARREN_JOB_RETRY, 1);
    warren__lifecycle_retrying(&lc, &job, "q", 5);
    warren__lifecycle_dead(&lc, &job, NULL, NULL, NULL);
    warren__lifecycle_unsettled(&lc);
    assert_int_equal(lc.in_job, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_dead_and_bad_strings),
        cmocka_unit_test(test_json_direct_equals_jansson),
        cmocka_unit_test(test_json_args_cut_equals_jansson),
        cmocka_unit_test(test_routing_key),
        cmocka_unit_test(test_lifecycle_fan_out),
        cmocka_unit_test(test_lifecycle_bare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
