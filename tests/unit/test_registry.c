/* Unit tests of the registry (registry.c) and the job accessors
 * (job_api.c), through warren_handle() and the internal entry points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/warren.h>
#include "job.h"
#include "registry_internal.h"

/* ---- handlers used by the tests ---- */

static int calls;

static warren_outcome ok_handler(warren_job *job, void *user)
{
    (void)job;
    (void)user;
    calls++;
    return WARREN_JOB_OK;
}

/* Returns the outcome that `user` points at, with a message when asked. */
struct scripted {
    int outcome;
    const char *message;
};

static warren_outcome scripted_handler(warren_job *job, void *user)
{
    const struct scripted *s = user;
    calls++;
    if (s->message && s->outcome == WARREN_JOB_RETRY)
        return warren_job_retry(job, "%s", s->message);
    if (s->message && s->outcome == WARREN_JOB_FAIL)
        return warren_job_fail(job, "%s", s->message);
    return (warren_outcome)s->outcome;
}

/* Checks what a handler sees of its job, against `user`. */
struct expect_job {
    const char *worker, *id;
    int attempt, max_attempts, priority;
    json_t *args;
};

static warren_outcome inspecting_handler(warren_job *job, void *user)
{
    const struct expect_job *e = user;
    calls++;
    assert_string_equal(warren_job_worker(job), e->worker);
    assert_string_equal(warren_job_id(job), e->id);
    assert_int_equal(warren_job_attempt(job), e->attempt);
    assert_int_equal(warren_job_max_attempts(job), e->max_attempts);
    assert_int_equal(warren_job_priority(job), e->priority);
    assert_ptr_equal(warren_job_args(job), e->args);
    assert_true(json_is_object(warren_job_headers(job)));
    assert_string_equal(warren_job_error(job), "");
    return WARREN_JOB_OK;
}

static warren_outcome logging_handler(warren_job *job, void *user)
{
    (void)user;
    warren_job_log(job, WARREN_LOG_INFO, "hello %d", 42);
    return WARREN_JOB_OK;
}

static warren_outcome long_error_handler(warren_job *job, void *user)
{
    const char *text = user;
    return warren_job_fail(job, "%s", text);
}

/* ---- helpers ---- */

static warren_registry *new_registry(void)
{
    warren_registry *reg = NULL;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    assert_non_null(reg);
    return reg;
}

static warren_status add(warren_registry *reg, const char *name, const char *schema,
                         const char *const *keys, warren_error *err)
{
    warren_worker_def def = {
        .name = name, .handler = ok_handler, .schema = schema, .schema_keys = keys};
    warren_error_clear(err);
    return warren_registry_add(reg, &def, err);
}

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

static struct {
    int lines;
    warren_log_level level;
    char msgid[64], fields[256], msg[256];
} seen;

static void capture(warren_log_level level, const char *msgid, const char *fields, const char *msg,
                    void *user)
{
    (void)user;
    seen.lines++;
    seen.level = level;
    snprintf(seen.msgid, sizeof seen.msgid, "%s", msgid);
    snprintf(seen.fields, sizeof seen.fields, "%s", fields ? fields : "");
    snprintf(seen.msg, sizeof seen.msg, "%s", msg);
}

/* ---- registration ---- */

static void test_create_destroy(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    assert_int_equal(warren_registry_count(reg), 0);
    assert_null(warren_registry_name(reg, 0));
    assert_false(warren_registry_has(reg, "x"));
    warren_registry_destroy(reg);
    warren_registry_destroy(NULL);
}

static void test_add_copies_and_finds(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    char name[32] = "send_email";
    char schema[32] = "{s:s, s?:i}";
    char k0[8] = "to", k1[8] = "retries";
    const char *keys[] = {k0, k1, NULL};
    int token = 0;
    warren_worker_def def = {
        .name = name, .handler = ok_handler, .user = &token, .schema = schema, .schema_keys = keys};
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    assert_int_equal(add(reg, "diag.echo", NULL, NULL, &err), WARREN_OK);
    /* The registry kept copies, not the caller's buffers. */
    strcpy(name, "zzz");
    strcpy(schema, "garbage");
    strcpy(k0, "no");

    assert_int_equal(warren_registry_count(reg), 2);
    assert_string_equal(warren_registry_name(reg, 0), "send_email");
    assert_string_equal(warren_registry_name(reg, 1), "diag.echo");
    assert_null(warren_registry_name(reg, 2));
    assert_true(warren_registry_has(reg, "send_email"));
    assert_false(warren_registry_has(reg, "zzz"));
    assert_false(warren_registry_has(reg, NULL));

    const struct warren_worker_entry *e = warren__registry_find(reg, "send_email");
    assert_non_null(e);
    assert_ptr_equal(e->handler, ok_handler);
    assert_ptr_equal(e->user, &token);
    assert_string_equal(e->schema, "{s:s, s?:i}");
    assert_string_equal(e->schema_keys[0], "to");
    assert_string_equal(e->schema_keys[1], "retries");
    assert_null(e->schema_keys[2]);
    assert_null(e->module);
    e = warren__registry_find(reg, "diag.echo");
    assert_null(e->schema);
    assert_null(e->schema_keys);
    warren_registry_destroy(reg);
}

static void test_duplicate_refused(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    assert_int_equal(add(reg, "a", NULL, NULL, &err), WARREN_OK);
    assert_int_equal(add(reg, "a", NULL, NULL, &err), WARREN_EEXIST);
    assert_string_equal(err.text, "worker 'a' is already registered");

    warren__registry_set_module(reg, "mod_one");
    assert_int_equal(add(reg, "b", NULL, NULL, &err), WARREN_OK);
    warren__registry_set_module(reg, "mod_two");
    assert_int_equal(add(reg, "b", NULL, NULL, &err), WARREN_EEXIST);
    assert_string_equal(err.text, "worker 'b' is already registered by module 'mod_one'");
    warren__registry_set_module(reg, NULL);
    assert_int_equal(warren_registry_count(reg), 2);
    warren_registry_destroy(reg);
}

static void test_bad_names_refused(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    char longest[130];
    memset(longest, 'a', 128);
    longest[128] = '\0';
    assert_int_equal(add(reg, longest, NULL, NULL, &err), WARREN_OK);
    longest[128] = 'a';
    longest[129] = '\0';
    assert_int_equal(add(reg, longest, NULL, NULL, &err), WARREN_EINVAL);

    const char *bad[] = {"", "a b", "a/b", "caf\xc3\xa9", "x\n", "a:b", "*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(add(reg, bad[i], NULL, NULL, &err), WARREN_EINVAL);
        assert_non_null(strstr(err.text, "invalid worker name"));
        assert_non_null(strstr(err.text, "[A-Za-z0-9_.-]{1,128}"));
        assert_false(warren_worker_name_valid(bad[i]));
    }
    assert_int_equal(add(reg, NULL, NULL, NULL, &err), WARREN_EINVAL);
    assert_false(warren_worker_name_valid(NULL));
    assert_true(warren_worker_name_valid("Az09_.-"));

    warren_worker_def no_handler = {.name = "fine"};
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add(reg, &no_handler, &err), WARREN_EINVAL);
    assert_string_equal(err.text, "worker 'fine' has no handler");
    assert_int_equal(warren_registry_count(reg), 1);
    warren_registry_destroy(reg);
}

static void test_schema_checked_at_registration(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    const char *k1[] = {"to", NULL};
    const char *k2[] = {"to", "subject", NULL};
    const char *k3[] = {"to", "subject", "extra", NULL};
    const char *k4[] = {"to", "list", "nested", "flag", NULL};

    assert_int_equal(add(reg, "ok1", "{s:s}", k1, &err), WARREN_OK);
    assert_int_equal(add(reg, "ok2", "{s:s, s?:[i*], s?{s:b}}", k4, &err), WARREN_OK);
    assert_int_equal(add(reg, "ok3", "{}", NULL, &err), WARREN_OK);
    assert_int_equal(add(reg, "ok4", "{s:s !}", k1, &err), WARREN_OK);

    /* A format error anywhere is found, even past keys an empty object
     * would stop at. */
    assert_int_equal(add(reg, "bad1", "{s:s, s:Q}", k2, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "invalid schema \"{s:s, s:Q}\""));
    assert_non_null(strstr(err.text, "Unexpected format character 'Q'"));
    assert_int_equal(add(reg, "bad2", "{s:s", k1, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "Unexpected end of format string"));
    assert_int_equal(add(reg, "bad3", "[s]", NULL, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "must describe one object"));
    assert_int_equal(add(reg, "bad4", "{s:s} s", k1, &err), WARREN_EINVAL);
    assert_int_equal(add(reg, "bad5", "{s:s}}", k1, &err), WARREN_EINVAL);

    /* The key list must match the format. */
    assert_int_equal(add(reg, "bad6", "{s:s, s:s}", k1, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "names more keys than the 1 in schema_keys"));
    assert_int_equal(add(reg, "bad7", "{s:s}", k2, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "schema_keys lists 2 keys"));
    assert_int_equal(add(reg, "bad7b", "{s:s, s:s}", k3, &err), WARREN_EINVAL);
    assert_int_equal(add(reg, "bad8", NULL, k1, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "without a schema"));

    const char *many[WARREN_SCHEMA_MAX_KEYS + 2];
    for (int i = 0; i <= WARREN_SCHEMA_MAX_KEYS; i++)
        many[i] = "k";
    many[WARREN_SCHEMA_MAX_KEYS + 1] = NULL;
    assert_int_equal(add(reg, "bad9", "{s:s}", many, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "at most 32"));

    assert_int_equal(warren_registry_count(reg), 4);
    warren_registry_destroy(reg);
}

static void test_schema_with_max_keys(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    char names[WARREN_SCHEMA_MAX_KEYS][8];
    const char *keys[WARREN_SCHEMA_MAX_KEYS + 1];
    char schema[WARREN_SCHEMA_MAX_KEYS * 6 + 4] = "{";
    json_t *args = json_object();
    for (int i = 0; i < WARREN_SCHEMA_MAX_KEYS; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        keys[i] = names[i];
        strcat(schema, i ? ", s:i" : "s:i");
        json_object_set_new(args, names[i], json_integer(i));
    }
    keys[WARREN_SCHEMA_MAX_KEYS] = NULL;
    strcat(schema, "}");
    assert_int_equal(add(reg, "wide", schema, keys, &err), WARREN_OK);
    warren_error_clear(&err);
    assert_int_equal(warren_registry_validate(reg, "wide", args, &err), WARREN_OK);
    json_object_set_new(args, "k31", json_string("no"));
    assert_int_equal(warren_registry_validate(reg, "wide", args, &err), WARREN_EINVAL);
    assert_string_equal(err.text, "Expected integer, got string");
    json_decref(args);
    warren_registry_destroy(reg);
}

static void test_validate(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    const char *keys[] = {"to", "subject", "retries", NULL};
    assert_int_equal(add(reg, "mail", "{s:s, s:s, s?:i}", keys, &err), WARREN_OK);
    assert_int_equal(add(reg, "free", NULL, NULL, &err), WARREN_OK);

    json_t *good = parse("{\"to\": \"a@b\", \"subject\": \"hi\", \"other\": 1}");
    json_t *missing = parse("{\"to\": \"a@b\"}");
    json_t *wrong = parse("{\"to\": \"a@b\", \"subject\": \"hi\", \"retries\": \"3\"}");
    json_t *array = parse("[1]");

    warren_error_clear(&err);
    assert_int_equal(warren_registry_validate(reg, "mail", good, &err), WARREN_OK);
    assert_int_equal(warren_registry_validate(reg, "mail", missing, &err), WARREN_EINVAL);
    assert_string_equal(err.text, "Object item not found: subject");
    warren_error_clear(&err);
    assert_int_equal(warren_registry_validate(reg, "mail", wrong, &err), WARREN_EINVAL);
    assert_string_equal(err.text, "Expected integer, got string");
    warren_error_clear(&err);
    assert_int_equal(warren_registry_validate(reg, "free", missing, &err), WARREN_OK);
    assert_int_equal(warren_registry_validate(reg, "free", array, &err), WARREN_EINVAL);
    warren_error_clear(&err);
    assert_int_equal(warren_registry_validate(reg, "nope", good, &err), WARREN_ENOTFOUND);
    assert_string_equal(err.text, "unknown worker 'nope'");

    char why[200];
    const struct warren_worker_entry *e = warren__registry_find(reg, "mail");
    assert_int_equal(warren__registry_check_args(e, good, why, sizeof why), 0);
    assert_int_equal(warren__registry_check_args(e, missing, why, sizeof why), -1);
    assert_string_equal(why, "Object item not found: subject");

    json_decref(good);
    json_decref(missing);
    json_decref(wrong);
    json_decref(array);
    warren_registry_destroy(reg);
}

static void test_many_workers(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "worker.%d", i);
        assert_int_equal(add(reg, name, NULL, NULL, &err), WARREN_OK);
    }
    assert_int_equal(warren_registry_count(reg), 3000);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "worker.%d", i);
        const struct warren_worker_entry *e = warren__registry_find(reg, name);
        assert_non_null(e);
        assert_string_equal(e->name, name);
        assert_string_equal(warren_registry_name(reg, (unsigned)i), name);
    }
    assert_null(warren__registry_find(reg, "worker.3000"));
    assert_null(warren__registry_find(reg, "worker."));
    warren_registry_destroy(reg);
}

static void test_remove_module(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    char name[32];
    for (int i = 0; i < 40; i++) {
        warren__registry_set_module(reg, i % 3 == 0 ? "alpha" : "beta");
        snprintf(name, sizeof name, "w%d", i);
        assert_int_equal(add(reg, name, NULL, NULL, &err), WARREN_OK);
    }
    warren__registry_set_module(reg, NULL);
    assert_int_equal(add(reg, "untagged", NULL, NULL, &err), WARREN_OK);
    assert_string_equal(warren__registry_find(reg, "w0")->module, "alpha");
    assert_string_equal(warren__registry_find(reg, "w1")->module, "beta");

    warren__registry_remove_module(reg, "alpha");
    assert_int_equal(warren_registry_count(reg), 41 - 14);
    unsigned at = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "w%d", i);
        if (i % 3 == 0) {
            assert_false(warren_registry_has(reg, name));
            continue;
        }
        assert_true(warren_registry_has(reg, name));
        /* order kept, and each entry knows its new position */
        assert_int_equal(warren__registry_find(reg, name)->pos, at);
        assert_string_equal(warren_registry_name(reg, at++), name);
    }
    assert_string_equal(warren_registry_name(reg, at), "untagged");
    assert_int_equal(warren__registry_find(reg, "untagged")->pos, at);
    warren__registry_remove_module(reg, "nobody");
    warren__registry_remove_module(reg, "beta");
    assert_int_equal(warren_registry_count(reg), 1);
    /* Names freed by a removal can be registered again. */
    assert_int_equal(add(reg, "w0", NULL, NULL, &err), WARREN_OK);
    assert_int_equal(add(reg, "w1", NULL, NULL, &err), WARREN_OK);
    assert_int_equal(warren_registry_count(reg), 3);
    assert_int_equal(warren__registry_find(reg, "untagged")->pos, 0);
    assert_int_equal(warren__registry_find(reg, "w1")->pos, 2);
    warren_registry_destroy(reg);
}

/* ---- running jobs ---- */

static void test_handle_builds_the_job(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    json_t *args = parse("{\"x\": 1}");
    struct expect_job e = {"inspect", "test-job", 1, 5, 0, args};
    warren_worker_def def = {.name = "inspect", .handler = inspecting_handler, .user = &e};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);

    warren_handle_result res;
    calls = 0;
    assert_int_equal(warren_handle(reg, "inspect", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    assert_string_equal(res.error, "");

    struct expect_job e2 = {"inspect", "job-42", 3, 8, 7, args};
    def.user = &e2;
    warren_registry_destroy(reg);
    reg = new_registry();
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    warren_handle_opts opts = {.id = "job-42", .attempt = 3, .max_attempts = 8, .priority = 7};
    assert_int_equal(warren_handle(reg, "inspect", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(calls, 2);
    /* The job's reference to args was given back. */
    assert_int_equal(args->refcount, 1);
    json_decref(args);
    warren_registry_destroy(reg);
}

static void check_scripted(warren_registry *reg, int outcome, const char *message,
                           warren_outcome expect, const char *expect_error)
{
    struct scripted s = {outcome, message};
    warren_worker_def def = {.name = "scripted", .handler = scripted_handler, .user = &s};
    warren_error err;
    warren_error_clear(&err);
    warren__registry_remove_module(reg, "scripts");
    warren__registry_set_module(reg, "scripts");
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    warren__registry_set_module(reg, NULL);
    json_t *args = json_object();
    warren_handle_result res;
    assert_int_equal(warren_handle(reg, "scripted", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, expect);
    assert_string_equal(res.error, expect_error);
    json_decref(args);
}

static void test_handle_outcomes(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    check_scripted(reg, WARREN_JOB_OK, NULL, WARREN_JOB_OK, "");
    check_scripted(reg, WARREN_JOB_RETRY, "smtp: busy", WARREN_JOB_RETRY, "smtp: busy");
    check_scripted(reg, WARREN_JOB_FAIL, "no such user", WARREN_JOB_FAIL, "no such user");
    check_scripted(reg, WARREN_JOB_RETRY, NULL, WARREN_JOB_RETRY,
                   "handler failed without a message");
    check_scripted(reg, WARREN_JOB_FAIL, NULL, WARREN_JOB_FAIL, "handler failed without a message");
    check_scripted(reg, 7, NULL, WARREN_JOB_FAIL, "handler returned an invalid outcome (7)");
    check_scripted(reg, -1, NULL, WARREN_JOB_FAIL, "handler returned an invalid outcome (-1)");
    warren_registry_destroy(reg);
}

static void test_handle_invalid_args(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_error err;
    const char *keys[] = {"to", "subject", NULL};
    assert_int_equal(add(reg, "mail", "{s:s, s:s}", keys, &err), WARREN_OK);
    json_t *args = parse("{\"to\": \"a@b\"}");
    warren_handle_result res;
    calls = 0;
    assert_int_equal(warren_handle(reg, "mail", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_FAIL);
    assert_string_equal(res.error, "invalid_args: Object item not found: subject");
    assert_int_equal(calls, 0);
    json_decref(args);

    args = parse("{\"to\": \"a@b\", \"subject\": \"s\"}");
    assert_int_equal(warren_handle(reg, "mail", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    assert_int_equal(calls, 1);
    json_decref(args);

    args = parse("[\"not an object\"]");
    warren_error_clear(&err);
    assert_int_equal(warren_handle(reg, "mail", args, NULL, &res, &err), WARREN_EINVAL);
    json_decref(args);
    warren_registry_destroy(reg);
}

static void test_handle_unknown_worker(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    json_t *args = json_object();
    warren_handle_result res;
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_handle(reg, "ghost", args, NULL, &res, &err), WARREN_ENOTFOUND);
    assert_int_equal(err.code, WARREN_ENOTFOUND);
    assert_string_equal(err.text, "unknown worker 'ghost'");
    assert_int_equal(warren_handle(reg, "ghost", args, NULL, &res, NULL), WARREN_ENOTFOUND);
    json_decref(args);
    warren_registry_destroy(reg);
}

static void test_error_text_capped_at_1k(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    /* 700 two-byte characters: the cut at 1023 bytes falls inside one. */
    char text[1401];
    for (int i = 0; i < 700; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[1400] = '\0';
    warren_worker_def def = {.name = "long", .handler = long_error_handler, .user = text};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    json_t *args = json_object();
    warren_handle_result res;
    assert_int_equal(warren_handle(reg, "long", args, NULL, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_FAIL);
    assert_int_equal(strlen(res.error), 1022);
    json_t *s = json_string(res.error); /* NULL if not valid UTF-8 */
    assert_non_null(s);
    json_decref(s);
    json_decref(args);
    warren_registry_destroy(reg);
}

static void test_job_log(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    warren_worker_def def = {.name = "talker", .handler = logging_handler};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    warren__registry_set_module(reg, "chatty");
    def.name = "chatty.talker";
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    warren__registry_set_module(reg, NULL);

    memset(&seen, 0, sizeof seen);
    warren_log_set_sink(capture, NULL);
    json_t *args = json_object();
    warren_handle_result res;
    warren_handle_opts opts = {.id = "abc-1"};
    assert_int_equal(warren_handle(reg, "talker", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(seen.lines, 1);
    assert_int_equal(seen.level, WARREN_LOG_INFO);
    assert_string_equal(seen.msgid, "handler.log");
    assert_string_equal(seen.fields, "{\"id\":\"abc-1\",\"worker\":\"talker\"}");
    assert_string_equal(seen.msg, "hello 42");

    assert_int_equal(warren_handle(reg, "chatty.talker", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(seen.lines, 2);
    assert_string_equal(seen.msgid, "chatty.log");

    /* Below the level nothing reaches the sink. */
    warren_log_setup(WARREN_LOG_WARN, WARREN_LOG_TEXT, "test");
    assert_int_equal(warren_handle(reg, "talker", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(seen.lines, 2);
    warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "test");
    warren_log_set_sink(NULL, NULL);
    json_decref(args);
    warren_registry_destroy(reg);
}

static void test_run_and_accessors_on_a_raw_job(void **state)
{
    (void)state;
    warren_registry *reg = new_registry();
    struct scripted s = {WARREN_JOB_RETRY, NULL};
    warren_worker_def def = {.name = "raw", .handler = scripted_handler, .user = &s};
    warren_error err;
    warren_error_clear(&err);
    warren__registry_set_module(reg, "rawmod");
    assert_int_equal(warren_registry_add(reg, &def, &err), WARREN_OK);
    warren__registry_set_module(reg, NULL);

    struct warren_job job;
    memset(&job, 0, sizeof job);
    strcpy(job.worker, "raw");
    strcpy(job.id, "id-9");
    job.attempt = 2;
    job.args = json_object();
    snprintf(job.error, sizeof job.error, "stale");
    /* Headers left NULL by whoever built the job: never NULL to a handler. */
    json_t *h = warren_job_headers(&job);
    assert_true(json_is_object(h));
    assert_ptr_equal(warren_job_headers(&job), h);

    const struct warren_worker_entry *e = warren__registry_find(reg, "raw");
    assert_int_equal(warren__registry_run(e, &job), WARREN_JOB_RETRY);
    assert_string_equal(warren_job_error(&job), "handler failed without a message");
    assert_string_equal(job.module, "rawmod");
    s.outcome = WARREN_JOB_OK;
    assert_int_equal(warren__registry_run(e, &job), WARREN_JOB_OK);
    assert_string_equal(warren_job_error(&job), "");

    assert_int_equal(warren_job_retry(&job, "try %s", "later"), WARREN_JOB_RETRY);
    assert_string_equal(warren_job_error(&job), "try later");
    assert_int_equal(warren_job_fail(&job, "%s!", warren_job_error(&job)), WARREN_JOB_FAIL);
    assert_string_equal(warren_job_error(&job), "try later!");
    json_decref(job.args);
    json_decref(job.headers);
    warren_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_destroy),
        cmocka_unit_test(test_add_copies_and_finds),
        cmocka_unit_test(test_duplicate_refused),
        cmocka_unit_test(test_bad_names_refused),
        cmocka_unit_test(test_schema_checked_at_registration),
        cmocka_unit_test(test_schema_with_max_keys),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_many_workers),
        cmocka_unit_test(test_remove_module),
        cmocka_unit_test(test_handle_builds_the_job),
        cmocka_unit_test(test_handle_outcomes),
        cmocka_unit_test(test_handle_invalid_args),
        cmocka_unit_test(test_handle_unknown_worker),
        cmocka_unit_test(test_error_text_capped_at_1k),
        cmocka_unit_test(test_job_log),
        cmocka_unit_test(test_run_and_accessors_on_a_raw_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
