/* Unit tests of the handler test helpers (registry.h): running a module's
 * workers in process with warren_registry_add_module() and
 * warren_handle_capture(), and the log capture in job_api.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/warren.h>

/* ---- a small module, as a handler author would write it ---- */

static int init_calls, fini_calls;
static char greeting[32] = "hello";

/* {"name": s, "mode"?: s}: mode "retry", "fail", "loud", "quiet", "long" */
static warren_outcome greet_run(warren_job *job, void *user)
{
    (void)user;
    json_t *args = warren_job_args(job);
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *mode = json_string_value(json_object_get(args, "mode"));
    if (mode && !strcmp(mode, "retry"))
        return warren_job_retry(job, "busy (attempt %d of %d)", warren_job_attempt(job),
                                warren_job_max_attempts(job));
    if (mode && !strcmp(mode, "fail"))
        return warren_job_fail(job, "no such person: %s", name);
    if (mode && !strcmp(mode, "quiet"))
        return WARREN_JOB_OK;
    if (mode && !strcmp(mode, "long")) {
        char big[5000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        warren_job_log(job, WARREN_LOG_INFO, "%s", big);
        return WARREN_JOB_OK;
    }
    if (mode && !strcmp(mode, "loud")) {
        warren_job_log(job, WARREN_LOG_DEBUG, "about to greet %s", name);
        warren_job_log(job, WARREN_LOG_WARN, "greeting %s loudly", name);
        warren_job_log(job, WARREN_LOG_ERROR, "ears hurt");
    }
    warren_job_log(job, WARREN_LOG_INFO, "%s, %s (job %s, attempt %d of %d, priority %d)",
                   greeting, name, warren_job_id(job), warren_job_attempt(job),
                   warren_job_max_attempts(job), warren_job_priority(job));
    return WARREN_JOB_OK;
}

static warren_outcome wave_run(warren_job *job, void *user)
{
    (void)user;
    warren_job_log(job, WARREN_LOG_INFO, "waving");
    return WARREN_JOB_OK;
}

static const char *const greet_keys[] = {"name", "mode", NULL};

static warren_status greet_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    init_calls++;
    json_t *g = json_object_get(config, "greeting");
    if (g && !json_is_string(g))
        return warren_error_set(err, WARREN_ECONFIG, "greeting must be a string");
    snprintf(greeting, sizeof greeting, "%s", g ? json_string_value(g) : "hello");
    warren_worker_def wave = {.name = "wave", .handler = wave_run};
    warren_worker_def greet = {.name = "greet", .handler = greet_run, .schema = "{s:s, s?:s}",
                               .schema_keys = greet_keys};
    warren_status st = warren_registry_add(reg, &wave, err);
    /* A config asking for it fails after one worker is registered: the
     * helper must undo that registration. */
    if (st == WARREN_OK && json_is_true(json_object_get(config, "fail_late")))
        return warren_error_set(err, WARREN_ECONFIG, "failing late, as asked");
    return st == WARREN_OK ? warren_registry_add(reg, &greet, err) : st;
}

static void greet_fini(void)
{
    fini_calls++;
}

static const struct warren_module greet_module = {
    WARREN_MODULE_V1, .name = "greeter", .init = greet_init, .fini = greet_fini,
};

/* ---- what the process logger sees ---- */

static struct {
    int lines;
    char msgid[64];
    char msg[256];
} sunk;

static void sink(warren_log_level level, const char *msgid, const char *fields, const char *msg,
                 void *user)
{
    (void)level;
    (void)fields;
    (void)user;
    sunk.lines++;
    snprintf(sunk.msgid, sizeof sunk.msgid, "%s", msgid);
    snprintf(sunk.msg, sizeof sunk.msg, "%s", msg);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    json_t *config = json_pack("{s:s}", "greeting", "hi");
    warren_error err;
    warren_error_clear(&err);
    init_calls = fini_calls = 0;
    assert_int_equal(warren_registry_add_module(reg, &greet_module, config, &err), WARREN_OK);
    json_decref(config);
    memset(&sunk, 0, sizeof sunk);
    warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "test");
    warren_log_set_sink(sink, NULL);
    *state = reg;
    return 0;
}

static int teardown(void **state)
{
    warren_log_set_sink(NULL, NULL);
    warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "test");
    warren_registry_destroy(*state);
    return 0;
}

/* Runs `worker` with args as JSON text; returns the status, with the
 * captured log in *log (free it). */
static warren_status run(warren_registry *reg, const char *worker, const char *args_json,
                         const warren_handle_opts *opts, warren_handle_result *res, char **log)
{
    json_t *args = json_loads(args_json, 0, NULL);
    assert_non_null(args);
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren_handle_capture(reg, worker, args, opts, res, log, &err);
    assert_int_equal(err.code, st);
    json_decref(args);
    return st;
}

/* ---- warren_handle_capture ---- */

static void test_success_captures_the_line(void **state)
{
    warren_handle_result res;
    char *log = NULL;
    assert_int_equal(run(*state, "greet", "{\"name\": \"ada\"}", NULL, &res, &log), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    assert_string_equal(res.error, "");
    assert_string_equal(log, "info: hi, ada (job test-job, attempt 1 of 5, priority 0)\n");
    /* The line still went to the logger, under the module's msgid. */
    assert_int_equal(sunk.lines, 1);
    assert_string_equal(sunk.msgid, "greeter.log");
    free(log);
}

static void test_every_level_is_captured_whatever_the_log_level(void **state)
{
    warren_log_setup(WARREN_LOG_ERROR, WARREN_LOG_TEXT, "test");
    warren_handle_result res;
    char *log = NULL;
    assert_int_equal(run(*state, "greet", "{\"name\": \"bo\", \"mode\": \"loud\"}", NULL, &res, &log),
                     WARREN_OK);
    assert_string_equal(log, "debug: about to greet bo\n"
                             "warn: greeting bo loudly\n"
                             "error: ears hurt\n"
                             "info: hi, bo (job test-job, attempt 1 of 5, priority 0)\n");
    assert_int_equal(sunk.lines, 1); /* only the error line passed the level */
    free(log);
}

static void test_opts_simulate_attempts(void **state)
{
    warren_handle_result res;
    char *log = NULL;
    warren_handle_opts opts = {.id = "order-7", .attempt = 3, .max_attempts = 4, .priority = 9};
    assert_int_equal(run(*state, "greet", "{\"name\": \"cy\"}", &opts, &res, &log), WARREN_OK);
    assert_string_equal(log, "info: hi, cy (job order-7, attempt 3 of 4, priority 9)\n");
    free(log);

    assert_int_equal(run(*state, "greet", "{\"name\": \"cy\", \"mode\": \"retry\"}", &opts, &res,
                         &log),
                     WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_RETRY);
    assert_string_equal(res.error, "busy (attempt 3 of 4)");
    assert_string_equal(log, "");
    free(log);
}

static void test_permanent_failure(void **state)
{
    warren_handle_result res;
    char *log = NULL;
    assert_int_equal(run(*state, "greet", "{\"name\": \"zed\", \"mode\": \"fail\"}", NULL, &res,
                         &log),
                     WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_FAIL);
    assert_string_equal(res.error, "no such person: zed");
    assert_string_equal(log, "");
    free(log);
}

static void test_invalid_args_never_run_the_handler(void **state)
{
    warren_handle_result res;
    char *log = NULL;
    assert_int_equal(run(*state, "greet", "{\"name\": 5}", NULL, &res, &log), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "invalid_args: "));
    assert_string_equal(log, "");
    free(log);
    assert_int_equal(run(*state, "greet", "{}", NULL, &res, &log), WARREN_OK);
    assert_string_equal(res.error, "invalid_args: Object item not found: name");
    free(log);
}

static void test_unknown_worker_and_bad_args_leave_no_log(void **state)
{
    warren_handle_result res;
    char *log = (char *)"untouched";
    assert_int_equal(run(*state, "nobody", "{}", NULL, &res, &log), WARREN_ENOTFOUND);
    assert_null(log);
    log = (char *)"untouched";
    assert_int_equal(run(*state, "greet", "[1]", NULL, &res, &log), WARREN_EINVAL);
    assert_null(log);
}

static void test_log_may_be_null_and_lines_are_whole(void **state)
{
    warren_handle_result res;
    json_t *args = json_pack("{s:s}", "name", "di");
    assert_int_equal(warren_handle_capture(*state, "greet", args, NULL, &res, NULL, NULL),
                     WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    json_decref(args);

    /* A line longer than the logger's own buffer is captured whole. */
    char *log = NULL;
    assert_int_equal(run(*state, "greet", "{\"name\": \"ed\", \"mode\": \"long\"}", NULL, &res,
                         &log),
                     WARREN_OK);
    assert_int_equal(strlen(log), strlen("info: ") + 4999 + 1);
    assert_int_equal(log[strlen(log) - 1], '\n');
    free(log);
}

static void test_only_the_run_is_captured(void **state)
{
    warren_handle_result res;
    json_t *args = json_pack("{s:s}", "name", "fay");
    /* warren_handle alone captures nothing, and a capture sees only its own
     * run: nothing logged before or after leaks in. */
    assert_int_equal(warren_handle(*state, "greet", args, NULL, &res, NULL), WARREN_OK);
    char *log = NULL;
    assert_int_equal(warren_handle_capture(*state, "wave", args, NULL, &res, &log, NULL),
                     WARREN_OK);
    assert_string_equal(log, "info: waving\n");
    free(log);
    assert_int_equal(warren_handle(*state, "greet", args, NULL, &res, NULL), WARREN_OK);
    assert_int_equal(sunk.lines, 3);
    json_decref(args);
}

/* ---- warren_registry_add_module ---- */

static void test_add_module_registers_and_tags(void **state)
{
    warren_registry *reg = *state;
    assert_int_equal(init_calls, 1);
    assert_int_equal(warren_registry_count(reg), 2);
    assert_string_equal(warren_registry_name(reg, 0), "wave");
    assert_string_equal(warren_registry_name(reg, 1), "greet");
    /* A second init of the same module is refused before init runs, and
     * what the first registered stays. */
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add_module(reg, &greet_module, NULL, &err), WARREN_EEXIST);
    assert_string_equal(err.text, "module 'greeter' is already initialised");
    assert_int_equal(init_calls, 1);
    assert_int_equal(warren_registry_count(reg), 2);
    /* Another module registering a taken worker name fails, and only its
     * own registrations are undone. */
    struct warren_module copy = greet_module;
    copy.name = "copycat";
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add_module(reg, &copy, NULL, &err), WARREN_EEXIST);
    assert_string_equal(err.text, "module 'copycat' failed to initialise: worker 'wave' is "
                                  "already registered by module 'greeter'");
    assert_int_equal(warren_registry_count(reg), 2);
    /* fini is the caller's. */
    greet_module.fini();
    assert_int_equal(fini_calls, 1);
}

static void test_add_module_null_config_is_empty(void **state)
{
    (void)state;
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    assert_int_equal(warren_registry_add_module(reg, &greet_module, NULL, NULL), WARREN_OK);
    warren_handle_result res;
    char *log = NULL;
    assert_int_equal(run(reg, "greet", "{\"name\": \"gus\"}", NULL, &res, &log), WARREN_OK);
    assert_string_equal(log, "info: hello, gus (job test-job, attempt 1 of 5, priority 0)\n");
    free(log);
    warren_registry_destroy(reg);
}

static void test_add_module_failure_undoes_registrations(void **state)
{
    (void)state;
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    json_t *config = json_pack("{s:b}", "fail_late", 1);
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add_module(reg, &greet_module, config, &err),
                     WARREN_ECONFIG);
    assert_string_equal(err.text, "module 'greeter' failed to initialise: failing late, as asked");
    assert_int_equal(warren_registry_count(reg), 0);
    json_decref(config);

    config = json_pack("{s:i}", "greeting", 3);
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add_module(reg, &greet_module, config, &err),
                     WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "greeting must be a string"));
    json_decref(config);
    warren_registry_destroy(reg);
}

static void test_add_module_refuses_another_abi(void **state)
{
    (void)state;
    struct warren_module other = greet_module;
    other.abi_version = WARREN_MODULE_ABI_VERSION + 1;
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    warren_error err;
    warren_error_clear(&err);
    int before = init_calls;
    assert_int_equal(warren_registry_add_module(reg, &other, NULL, &err), WARREN_EABI);
    char want[128];
    snprintf(want, sizeof want, "module was built for ABI version %d, this library needs %d",
             WARREN_MODULE_ABI_VERSION + 1, WARREN_MODULE_ABI_VERSION);
    assert_string_equal(err.text, want);
    assert_int_equal(init_calls, before);

    struct warren_module nameless = greet_module;
    nameless.name = NULL;
    assert_int_equal(warren_registry_add_module(reg, &nameless, NULL, NULL), WARREN_EINVAL);
    assert_int_equal(warren_registry_add_module(reg, NULL, NULL, NULL), WARREN_EINVAL);
    warren_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_captures_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_level_is_captured_whatever_the_log_level,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_opts_simulate_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args_never_run_the_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_worker_and_bad_args_leave_no_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_may_be_null_and_lines_are_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_only_the_run_is_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_module_registers_and_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_module_null_config_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_module_failure_undoes_registrations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_module_refuses_another_abi, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
