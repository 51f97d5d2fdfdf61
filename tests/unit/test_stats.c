/* Unit tests of the shared job statistics (stats.c): counts from several
 * processes add up exactly, histogram buckets are cumulative, slots and
 * health, overflow, and the text exposition format (checked here, and by
 * promtool when it is installed or WARREN_PROMTOOL names it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <warren/log.h>
#include "stats.h"

/* ---- reading the exposition ---- */

/* The value of the sample written exactly as `key` (name{labels}), or -1. */
static double sample(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtod(line + klen + 1, NULL);
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static double jobs(const char *text, const char *queue, const char *worker, const char *outcome)
{
    char key[512];
    snprintf(key, sizeof key, "warren_jobs_total{queue=\"%s\",worker=\"%s\",outcome=\"%s\"}",
             queue, worker, outcome);
    return sample(text, key);
}

static double bucket(const char *text, const char *worker, const char *le)
{
    char key[512];
    snprintf(key, sizeof key, "warren_job_duration_seconds_bucket{worker=\"%s\",le=\"%s\"}",
             worker, le);
    return sample(text, key);
}

static double hist(const char *text, const char *suffix, const char *worker)
{
    char key[512];
    snprintf(key, sizeof key, "warren_job_duration_seconds_%s{worker=\"%s\"}", suffix, worker);
    return sample(text, key);
}

static char *render(const struct warren_stats *st)
{
    char *text = NULL;
    size_t len = warren_stats_render(st, &text);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

/* ---- a small checker of the text format (version 0.0.4) ---- */

static int is_name_char(int c, int first)
{
    return isalpha(c) || c == '_' || c == ':' || (!first && isdigit(c));
}

/* Reads a metric or label name; returns its end or NULL. */
static const char *read_name(const char *p)
{
    if (!is_name_char((unsigned char)*p, 1))
        return NULL;
    while (is_name_char((unsigned char)*p, 0))
        p++;
    return p;
}

/* Checks {a="x",b="y"}: names, quotes, escapes (\\ \" \n only). */
static const char *read_labels(const char *p)
{
    if (*p != '{')
        return p;
    p++;
    while (*p != '}') {
        p = read_name(p);
        if (!p || *p++ != '=' || *p++ != '"')
            return NULL;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return NULL;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* Every line is a HELP, a TYPE before its family's samples, or a sample
 * `name{labels} value`; families are not interleaved. */
static void check_format(const char *text)
{
    char family[128] = "", typed[128] = "";
    char seen[4096] = " ";
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *n = read_name(line + 7);
            assert_non_null(n);
            assert_int_equal(*n, ' ');
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *n = read_name(line + 7);
            assert_non_null(n);
            snprintf(typed, sizeof typed, "%.*s", (int)(n - line - 7), line + 7);
            char key[140];
            snprintf(key, sizeof key, " %s ", typed);
            assert_null(strstr(seen, key)); /* one TYPE per family */
            strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
            const char *t = n + 1;
            assert_true(!strncmp(t, "counter\n", 8) || !strncmp(t, "gauge\n", 6) ||
                        !strncmp(t, "histogram\n", 10));
            snprintf(family, sizeof family, "%s", typed);
        } else {
            const char *n = read_name(line);
            assert_non_null(n);
            /* A sample belongs to the family typed last (histograms add
             * _bucket, _sum and _count). */
            assert_true(strncmp(line, family, strlen(family)) == 0);
            const char *v = read_labels(n);
            assert_non_null(v);
            assert_int_equal(*v, ' ');
            char *stop;
            strtod(v + 1, &stop);
            assert_ptr_equal(stop, end);
        }
        line = end + 1;
    }
}

static void promtool_check(const char *text)
{
    const char *tool = getenv("WARREN_PROMTOOL");
    if (!tool || !*tool)
        tool = system("command -v promtool >/dev/null 2>&1") == 0 ? "promtool" : NULL;
    if (!tool) {
        print_message("promtool not found: format checked by the built-in checker only\n");
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s check metrics", tool);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int rc = pclose(p);
    assert_int_equal(rc, 0);
}

/* ---- tests ---- */

static void test_counts_from_children_add_up(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(4);
    assert_non_null(st);
    enum { CHILDREN = 4, JOBS = 10000 };
    static const char *const workers[] = {"mail", "report", "diag.echo"};
    for (int c = 0; c < CHILDREN; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < JOBS; i++) {
                const char *q = i % 2 ? "default" : "critical";
                warren_stats_job(st, q, workers[i % 3], (enum warren_stats_outcome)(i % 4),
                                 i % 4 == 3 ? -1 : 0.001 * (i % 7));
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* Expected per (queue, worker, outcome): count i in [0, JOBS) with
     * i%2, i%3 and i%4 fixed, times the number of children. */
    static const char *const outcomes[] = {"succeeded", "retried", "dead", "crashed"};
    char *text = render(st);
    double total = 0, observed = 0;
    for (int q = 0; q < 2; q++)
        for (int w = 0; w < 3; w++)
            for (int o = 0; o < 4; o++) {
                int expect = 0;
                for (int i = 0; i < JOBS; i++)
                    expect += i % 2 == (q == 0) && i % 3 == w && i % 4 == o;
                double got = jobs(text, q == 0 ? "default" : "critical", workers[w],
                                  outcomes[o]);
                assert_true(got == (double)(expect * CHILDREN));
                total += got;
            }
    for (int w = 0; w < 3; w++)
        observed += hist(text, "count", workers[w]);
    assert_true(total == CHILDREN * JOBS);
    assert_true(observed == CHILDREN * JOBS * 3 / 4); /* crashes observe nothing */
    check_format(text);
    promtool_check(text);
    free(text);
    warren_stats_destroy(st);
}

static void test_histogram_is_cumulative(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(1);
    double d[] = {0.001, 0.005, 0.007, 1.0, 1.5, 400.0};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        warren_stats_job(st, "default", "w", WARREN_STATS_SUCCEEDED, d[i]);
    char *text = render(st);
    assert_true(bucket(text, "w", "0.005") == 2); /* le is inclusive */
    assert_true(bucket(text, "w", "0.01") == 3);
    assert_true(bucket(text, "w", "0.5") == 3);
    assert_true(bucket(text, "w", "1") == 4);
    assert_true(bucket(text, "w", "2.5") == 5);
    assert_true(bucket(text, "w", "300") == 5);
    assert_true(bucket(text, "w", "+Inf") == 6);
    assert_true(hist(text, "count", "w") == 6);
    double sum = hist(text, "sum", "w");
    assert_true(sum > 402.512 && sum < 402.514);
    /* Buckets never decrease, in the order they are written. */
    double prev = 0;
    for (const char *p = strstr(text, "_bucket{worker=\"w\""); p;
         p = strstr(p + 1, "_bucket{worker=\"w\"")) {
        double v = strtod(strchr(p, '}') + 2, NULL);
        assert_true(v >= prev);
        prev = v;
    }
    assert_true(jobs(text, "default", "w", "succeeded") == 6);
    assert_true(jobs(text, "default", "w", "dead") == 0);
    check_format(text);
    free(text);
    warren_stats_destroy(st);
}

static void test_histogram_by_worker_across_queues(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(1);
    warren_stats_job(st, "a", "w", WARREN_STATS_SUCCEEDED, 0.1);
    warren_stats_job(st, "b", "w", WARREN_STATS_RETRIED, 0.2);
    /* An unknown worker: counted, never run, no histogram. */
    warren_stats_job(st, "a", "", WARREN_STATS_DEAD, -1);
    char *text = render(st);
    assert_true(jobs(text, "a", "w", "succeeded") == 1);
    assert_true(jobs(text, "b", "w", "retried") == 1);
    assert_true(jobs(text, "a", "", "dead") == 1);
    assert_true(hist(text, "count", "w") == 2);
    assert_true(hist(text, "count", "") == -1);
    check_format(text);
    promtool_check(text);
    free(text);
    warren_stats_destroy(st);
}

static void test_labels_are_escaped(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(1);
    warren_stats_job(st, "q\"1", "a\\b\nc", WARREN_STATS_DEAD, 0.5);
    char *text = render(st);
    assert_non_null(strstr(text, "{queue=\"q\\\"1\",worker=\"a\\\\b\\nc\",outcome=\"dead\"} 1\n"));
    check_format(text);
    promtool_check(text);
    free(text);
    warren_stats_destroy(st);
}

static void test_empty_exposition(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(2);
    char *text = render(st);
    assert_true(sample(text, "warren_jobs_in_flight") == 0);
    assert_true(sample(text, "warren_worker_restarts_total") == 0);
    assert_true(sample(text, "warren_broker_connected") == 0);
    assert_non_null(strstr(text, "# TYPE warren_jobs_total counter\n"));
    assert_non_null(strstr(text, "# TYPE warren_job_duration_seconds histogram\n"));
    check_format(text);
    promtool_check(text);
    free(text);
    warren_stats_destroy(st);
}

static void test_slots_health_and_crash(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(2);
    char why[512];
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not running\nworker 2: not running\n");

    /* Worker 1 is a child in process slot 7 that connects, consumes and
     * starts a job, then dies with it in flight. */
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        warren_stats_worker_attach(st, 7);
        warren_stats_worker_state(st, 1, 1);
        warren_stats_job_begin(st, "default", "w");
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(3);
    }
    close(go[0]);
    warren_stats_slot_begin(st, 7, pid);
    warren_stats_set_worker(st, 1, 7);
    struct warren_stats_slot_view v;
    for (int i = 0; i < 2000; i++) {
        warren_stats_slot_get(st, 7, &v);
        if (v.in_flight)
            break;
        usleep(1000);
    }
    assert_int_equal(v.pid, pid);
    assert_true(v.connected && v.consuming && v.in_flight);

    /* Worker 2 is this process, in slot 3: connected, not consuming. */
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 2: not running\n");
    warren_stats_worker_attach(st, 3);
    warren_stats_set_worker(st, 2, 3);
    warren_stats_worker_state(st, 1, 0);
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 2: not consuming (no queue, or the consumer was "
                             "cancelled)\n");
    warren_stats_worker_state(st, 1, 1);
    assert_int_equal(warren_stats_health(st, why, sizeof why), 1);
    assert_string_equal(why, "ok\n");
    char *text = render(st);
    assert_true(sample(text, "warren_jobs_in_flight") == 1);
    assert_true(sample(text, "warren_broker_connected") == 1);
    free(text);

    /* A slot belongs to its pid: the supervisor's late slot_begin for
     * the same pid changes nothing, and another pid cannot end it. */
    warren_stats_slot_begin(st, 7, pid);
    warren_stats_slot_get(st, 7, &v);
    assert_true(v.connected && v.in_flight);
    assert_int_equal(warren_stats_slot_end(st, 7, pid + 1, 1), 0);

    assert_int_equal(write(go[1], "x", 1), 1);
    close(go[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(warren_stats_slot_end(st, 7, pid, 1), 1);
    warren_stats_set_worker(st, 1, 0);
    warren_stats_restart(st);
    warren_stats_slot_get(st, 7, &v);
    assert_int_equal(v.pid, 0);
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not running\n");

    /* This process's own job: begin, end as succeeded with a duration. */
    warren_stats_job_begin(st, "default", "w");
    warren_stats_slot_get(st, 3, &v);
    assert_true(v.in_flight && v.connected);
    warren_stats_job_end(st, WARREN_STATS_SUCCEEDED, 0.02);
    warren_stats_slot_get(st, 3, &v);
    assert_true(!v.in_flight && v.connected && v.consuming);
    /* Left unacked: the duration is observed, no outcome counted. */
    warren_stats_job_begin(st, "default", "w");
    warren_stats_job_end(st, -1, 0.03);
    /* No job in flight: nothing. */
    warren_stats_job_end(st, WARREN_STATS_DEAD, 1);

    text = render(st);
    assert_true(jobs(text, "default", "w", "crashed") == 1);
    assert_true(jobs(text, "default", "w", "succeeded") == 1);
    assert_true(jobs(text, "default", "w", "dead") == 0);
    assert_true(hist(text, "count", "w") == 2);
    assert_true(sample(text, "warren_worker_restarts_total") == 1);
    assert_true(sample(text, "warren_broker_connected") == 0);
    assert_true(sample(text, "warren_jobs_in_flight") == 0);
    check_format(text);
    free(text);

    /* A crash is not counted when asked not to (drain), nor for an idle
     * process. */
    warren_stats_job_begin(st, "default", "w");
    assert_int_equal(warren_stats_slot_end(st, 3, getpid(), 0), 0);
    warren_stats_worker_attach(st, 3);
    assert_int_equal(warren_stats_slot_end(st, 3, getpid(), 1), 0);
    warren_stats_destroy(st);
}

/* A process retiring after a reload keeps its own slot: its job counts
 * as in flight, but health looks at the current worker processes. */
static void test_workers_and_retiring(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(3);
    assert_int_equal(warren_stats_workers(st), 3);
    warren_stats_set_workers(st, 1);
    warren_stats_worker_attach(st, 5); /* the retiring one, busy */
    warren_stats_worker_state(st, 1, 1);
    warren_stats_job_begin(st, "q", "w");
    char why[256];
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not running\n");
    warren_stats_slot_begin(st, 6, getpid() + 1000000); /* its successor */
    warren_stats_set_worker(st, 1, 6);
    assert_int_equal(warren_stats_health(st, why, sizeof why), 0);
    assert_string_equal(why, "worker 1: not connected to the broker\n");
    char *text = render(st);
    assert_true(sample(text, "warren_jobs_in_flight") == 1);
    assert_true(sample(text, "warren_broker_connected") == 0);
    free(text);
    warren_stats_set_workers(st, 0);
    assert_int_equal(warren_stats_workers(st), 1);
    warren_stats_set_workers(st, 5000);
    assert_int_equal(warren_stats_workers(st), WARREN_STATS_SLOTS_MAX);
    struct warren_stats_slot_view v;
    warren_stats_slot_get(st, WARREN_STATS_SLOTS_MAX + 1, &v);
    assert_int_equal(v.pid, 0);
    warren_stats_destroy(st);
}

static int warnings;

static void count_warnings(warren_log_level level, const char *msgid, const char *fields,
                           const char *msg, void *user)
{
    (void)fields;
    (void)msg;
    (void)user;
    if (level == WARREN_LOG_WARN && strcmp(msgid, "metrics.overflow") == 0)
        warnings++;
}

static void test_overflow_series(void **state)
{
    (void)state;
    warren_log_set_sink(count_warnings, NULL);
    struct warren_stats *st = warren_stats_create(1);
    enum { EXTRA = 40 };
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < WARREN_STATS_SERIES_MAX + EXTRA; i++) {
            char worker[32];
            snprintf(worker, sizeof worker, "w%d", i);
            warren_stats_job(st, "default", worker, WARREN_STATS_SUCCEEDED, 0.001);
        }
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    warren_stats_job(st, "default", long_name, WARREN_STATS_DEAD, -1);
    warren_log_set_sink(NULL, NULL);
    assert_int_equal(warnings, 1);

    char *text = render(st);
    int series = 0;
    double total = 0;
    for (const char *p = strstr(text, "outcome=\"succeeded\"} "); p;
         p = strstr(p + 1, "outcome=\"succeeded\"} ")) {
        series++;
        total += strtod(strchr(p, '}') + 2, NULL);
    }
    assert_int_equal(series, WARREN_STATS_SERIES_MAX + 1);
    assert_true(total == 2 * (WARREN_STATS_SERIES_MAX + EXTRA));
    assert_true(jobs(text, "", "", "succeeded") == 2 * EXTRA);
    assert_true(jobs(text, "", "", "dead") == 1);
    assert_true(jobs(text, "default", "w0", "succeeded") == 2);
    assert_true(hist(text, "count", "") == 2 * EXTRA);
    check_format(text);
    promtool_check(text);
    free(text);
    warren_stats_destroy(st);
}

/* Several processes registering the same new series at once end with one
 * series each, whose counts are exact. */
static void test_concurrent_registration(void **state)
{
    (void)state;
    struct warren_stats *st = warren_stats_create(1);
    enum { CHILDREN = 4, SERIES = 100, ROUNDS = 50 };
    for (int c = 0; c < CHILDREN; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int r = 0; r < ROUNDS; r++)
                for (int i = 0; i < SERIES; i++) {
                    char worker[32];
                    snprintf(worker, sizeof worker, "job%d", i);
                    warren_stats_job(st, "q", worker, WARREN_STATS_RETRIED, -1);
                }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char *text = render(st);
    for (int i = 0; i < SERIES; i++) {
        char worker[32];
        snprintf(worker, sizeof worker, "job%d", i);
        assert_true(jobs(text, "q", worker, "retried") == CHILDREN * ROUNDS);
    }
    int lines = 0;
    for (const char *p = strstr(text, "outcome=\"retried\"}"); p;
         p = strstr(p + 1, "outcome=\"retried\"}"))
        lines++;
    assert_int_equal(lines, SERIES);
    free(text);
    warren_stats_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_from_children_add_up),
        cmocka_unit_test(test_histogram_is_cumulative),
        cmocka_unit_test(test_histogram_by_worker_across_queues),
        cmocka_unit_test(test_labels_are_escaped),
        cmocka_unit_test(test_empty_exposition),
        cmocka_unit_test(test_slots_health_and_crash),
        cmocka_unit_test(test_workers_and_retiring),
        cmocka_unit_test(test_overflow_series),
        cmocka_unit_test(test_concurrent_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
