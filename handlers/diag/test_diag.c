/* Unit tests of the diag module, run in-process with warren_handle(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/warren.h>
#include "registry_internal.h"

extern const struct warren_module warren_module;

struct fixture {
    warren_registry *reg;
    char dir[64];
    char record[128];
};

static struct {
    int lines;
    char msgid[64];
    char fields[512];
    char msg[1024];
} seen;

static void capture(warren_log_level level, const char *msgid, const char *fields, const char *msg,
                    void *user)
{
    (void)level;
    (void)user;
    seen.lines++;
    snprintf(seen.msgid, sizeof seen.msgid, "%s", msgid);
    snprintf(seen.fields, sizeof seen.fields, "%s", fields ? fields : "");
    snprintf(seen.msg, sizeof seen.msg, "%s", msg);
}

static int init_with(struct fixture *f, const char *config_text)
{
    json_t *config = json_loads(config_text, 0, NULL);
    warren_error err;
    warren_error_clear(&err);
    warren__registry_set_module(f->reg, "diag");
    warren_status st = warren_module.init(f->reg, config, &err);
    warren__registry_set_module(f->reg, NULL);
    json_decref(config);
    return st;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/warren-diag-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->record, sizeof f->record, "%s/record.jsonl", f->dir);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    char config[256];
    snprintf(config, sizeof config, "{\"record_file\": \"%s\"}", f->record);
    assert_int_equal(init_with(f, config), WARREN_OK);
    memset(&seen, 0, sizeof seen);
    warren_log_set_sink(capture, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    warren_log_set_sink(NULL, NULL);
    warren_module.fini();
    warren_registry_destroy(f->reg);
    unlink(f->record);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs `worker` with args given as JSON text; returns the outcome. */
static warren_outcome run(struct fixture *f, const char *worker, const char *args_text, int attempt,
                          warren_handle_result *res)
{
    json_t *args = json_loads(args_text, 0, NULL);
    assert_non_null(args);
    warren_handle_opts opts = {.id = "job-1", .attempt = attempt};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_handle(f->reg, worker, args, &opts, res, &err), WARREN_OK);
    json_decref(args);
    return res->outcome;
}

static long long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000LL + (t1.tv_nsec - t0->tv_nsec) / 1000000LL;
}

static void test_registers_every_worker(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"diag.echo",  "diag.noop",   "diag.sleep", "diag.fail",
                           "diag.crash", "diag.snooze", "diag.record"};
    assert_int_equal(warren_registry_count(f->reg), 7);
    for (unsigned i = 0; i < 7; i++)
        assert_string_equal(warren_registry_name(f->reg, i), names[i]);
}

static void test_snooze_asks_for_later_then_succeeds(void **state)
{
    struct fixture *f = *state;
    json_t *args = json_pack("{s:i, s:i}", "times", 1, "ms", 2500);
    warren_handle_result res;
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_handle(f->reg, "diag.snooze", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_SNOOZE);
    json_decref(args);
}

static void test_echo_logs_args(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.echo", "{\"hello\": \"world\"}", 1, &res), WARREN_JOB_OK);
    assert_int_equal(seen.lines, 1);
    assert_string_equal(seen.msgid, "diag.log");
    assert_non_null(strstr(seen.fields, "\"id\":\"job-1\""));
    assert_non_null(strstr(seen.fields, "\"worker\":\"diag.echo\""));
    assert_non_null(strstr(seen.msg, "{\"hello\":\"world\"}"));
}

static void test_noop(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.noop", "{\"any\": [1, 2]}", 1, &res), WARREN_JOB_OK);
    assert_string_equal(res.error, "");
}

static void test_sleep(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(run(f, "diag.sleep", "{\"ms\": 60}", 1, &res), WARREN_JOB_OK);
    assert_true(elapsed_ms(&t0) >= 60);

    assert_int_equal(run(f, "diag.sleep", "{}", 1, &res), WARREN_JOB_FAIL);
    assert_string_equal(res.error, "invalid_args: Object item not found: ms");
    assert_int_equal(run(f, "diag.sleep", "{\"ms\": \"10\"}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "invalid_args: Expected integer, got string"));
    assert_int_equal(run(f, "diag.sleep", "{\"ms\": -5}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "negative"));
}

static void test_fail_times(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.fail", "{\"times\": 2}", 1, &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "planned failure 1 of 2"));
    assert_int_equal(run(f, "diag.fail", "{\"times\": 2}", 2, &res), WARREN_JOB_RETRY);
    assert_int_equal(run(f, "diag.fail", "{\"times\": 2}", 3, &res), WARREN_JOB_OK);
    assert_int_equal(run(f, "diag.fail", "{\"times\": 0}", 1, &res), WARREN_JOB_OK);
}

static void test_fail_permanent_always_default(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.fail", "{\"permanent\": true}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "permanent"));
    assert_int_equal(run(f, "diag.fail", "{\"always\": true}", 9, &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "attempt 9"));
    assert_int_equal(run(f, "diag.fail", "{}", 1, &res), WARREN_JOB_FAIL);
    assert_int_equal(run(f, "diag.fail", "{\"always\": 1}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "invalid_args: Expected true or false"));
}

static void test_crash_kills_with_sigsegv(void **state)
{
    struct fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A disposition set here (cmocka has its own) must not save it. */
        signal(SIGSEGV, SIG_IGN);
        warren_handle_result res;
        json_t *args = json_object();
        warren_handle(f->reg, "diag.crash", args, NULL, &res, NULL);
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* Reads the record file as an array of parsed lines. */
static json_t *read_records(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    json_t *lines = json_array();
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, fp)) > 0) {
        assert_int_equal(buf[n - 1], '\n');
        json_error_t jerr;
        json_t *line = json_loads(buf, 0, &jerr);
        if (!line)
            fail_msg("bad record line: %s (%s)", buf, jerr.text);
        json_array_append_new(lines, line);
    }
    free(buf);
    fclose(fp);
    return lines;
}

/* 2026-05-01T02:00:00.123Z */
static void assert_time_format(const char *t)
{
    assert_non_null(t);
    assert_int_equal(strlen(t), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd')
            assert_true(t[i] >= '0' && t[i] <= '9');
        else
            assert_int_equal(t[i], shape[i]);
    }
}

static void test_record_appends_lines(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.record", "{\"n\": 1}", 1, &res), WARREN_JOB_OK);
    assert_int_equal(run(f, "diag.record", "{\"n\": 2, \"s\": \"\\u00e9\"}", 4, &res),
                     WARREN_JOB_OK);
    json_t *lines = read_records(f->record);
    assert_int_equal(json_array_size(lines), 2);
    json_t *second = json_array_get(lines, 1);
    assert_string_equal(json_string_value(json_object_get(second, "id")), "job-1");
    assert_int_equal(json_integer_value(json_object_get(second, "attempt")), 4);
    assert_string_equal(json_string_value(json_object_get(second, "worker")), "diag.record");
    json_t *args = json_object_get(second, "args");
    assert_int_equal(json_integer_value(json_object_get(args, "n")), 2);
    assert_string_equal(json_string_value(json_object_get(args, "s")), "\xc3\xa9");
    assert_time_format(json_string_value(json_object_get(second, "at")));
    assert_null(json_object_get(second, "started"));
    json_decref(lines);
}

static void test_record_sleep_adds_started(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run(f, "diag.record", "{\"sleep_ms\": 30}", 1, &res), WARREN_JOB_OK);
    json_t *lines = read_records(f->record);
    json_t *line = json_array_get(lines, 0);
    const char *started = json_string_value(json_object_get(line, "started"));
    const char *at = json_string_value(json_object_get(line, "at"));
    assert_time_format(started);
    assert_time_format(at);
    assert_true(strcmp(started, at) < 0);
    json_decref(lines);

    assert_int_equal(run(f, "diag.record", "{\"sleep_ms\": \"x\"}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "invalid_args"));
}

static void test_record_without_file_fails_permanently(void **state)
{
    struct fixture *f = *state;
    warren_module.fini();
    warren_registry_destroy(f->reg);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    assert_int_equal(init_with(f, "{}"), WARREN_OK);
    warren_handle_result res;
    assert_int_equal(run(f, "diag.record", "{}", 1, &res), WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "record_file"));
}

static void test_record_unwritable_is_transient(void **state)
{
    struct fixture *f = *state;
    warren_module.fini();
    warren_registry_destroy(f->reg);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    char config[256];
    snprintf(config, sizeof config, "{\"record_file\": \"%s/no/such/dir/r.jsonl\"}", f->dir);
    assert_int_equal(init_with(f, config), WARREN_OK);
    warren_handle_result res;
    assert_int_equal(run(f, "diag.record", "{}", 1, &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "cannot open"));
}

static void test_init_rejects_bad_config(void **state)
{
    struct fixture *f = *state;
    warren_module.fini();
    warren_registry_destroy(f->reg);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    json_t *config = json_pack("{s:i}", "record_file", 5);
    warren_error err;
    warren_error_clear(&err);
    assert_int_not_equal(warren_module.init(f->reg, config, &err), WARREN_OK);
    assert_string_equal(err.text, "diag: record_file must be a string");
    json_decref(config);
}

/* Many processes appending at once: every line stays whole. */
static void test_record_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    enum { WRITERS = 4, PER_WRITER = 100 };
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int w = 0; w < WRITERS; w++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int bad = 0;
            for (int i = 0; i < PER_WRITER; i++) {
                json_t *args =
                    json_pack("{s:i, s:i, s:s}", "w", w, "i", i, "pad", i % 2 ? big : "small");
                warren_handle_result res;
                warren_handle(f->reg, "diag.record", args, NULL, &res, NULL);
                bad += res.outcome != WARREN_JOB_OK;
                json_decref(args);
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status = 0;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    json_t *lines = read_records(f->record);
    assert_int_equal(json_array_size(lines), WRITERS * PER_WRITER);
    json_decref(lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snooze_asks_for_later_then_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registers_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_logs_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_permanent_always_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_kills_with_sigsegv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_appends_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_sleep_adds_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_without_file_fails_permanently, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_record_unwritable_is_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
