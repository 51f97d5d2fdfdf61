/* Unit tests of lifecycle observers (warren_registry_observe and the
 * warren__registry_notify_* calls the host makes), in process. */
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

/* Every hook appends one line to the trace of its observer. */
struct trace {
    char name;
    char text[2048];
};

static char shared_order[64]; /* which observer ran, in order */

static void add(struct trace *t, const char *fmt, ...)
{
    size_t len = strlen(t->text);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->text + len, sizeof t->text - len, fmt, ap);
    va_end(ap);
    size_t n = strlen(shared_order);
    if (n + 1 < sizeof shared_order) {
        shared_order[n] = t->name;
        shared_order[n + 1] = '\0';
    }
}

static void on_before(const warren_job *job, const warren_observer_ctx *ctx, void *user)
{
    add(user, "before %s %s a%d [%s|%s]\n", warren_job_worker(job), warren_job_id(job),
        warren_job_attempt(job), ctx->queue, ctx->host);
}

static void on_after(const warren_job *job, const warren_observer_ctx *ctx,
                     warren_outcome outcome, double duration, void *user)
{
    (void)ctx;
    assert_true(duration >= 0 && duration < 10);
    add(user, "after %s %d\n", warren_job_worker(job), (int)outcome);
}

static void on_error(const warren_job *job, const warren_observer_ctx *ctx, const char *error,
                     void *user)
{
    (void)ctx;
    add(user, "error %s %s\n", warren_job_worker(job), error);
}

static void on_dead(const warren_job *job, const warren_observer_ctx *ctx, const char *reason,
                    const char *error, void *user)
{
    add(user, "dead %s %s %s [%s|%s]\n", warren_job_worker(job), reason, error, ctx->queue,
        ctx->host);
}

static warren_outcome ok_handler(warren_job *job, void *user)
{
    (void)job;
    (void)user;
    return WARREN_JOB_OK;
}

static warren_outcome retry_handler(warren_job *job, void *user)
{
    (void)user;
    return warren_job_retry(job, "try later");
}

static warren_outcome fail_handler(warren_job *job, void *user)
{
    (void)user;
    return warren_job_fail(job, "no such user");
}

static warren_registry *make_registry(void)
{
    warren_registry *reg;
    assert_int_equal(warren_registry_create(&reg), WARREN_OK);
    const char *names[] = {"ok", "retry", "fail"};
    warren_handler_fn fns[] = {ok_handler, retry_handler, fail_handler};
    for (int i = 0; i < 3; i++) {
        warren_worker_def def = {names[i], fns[i], NULL, NULL, NULL};
        assert_int_equal(warren_registry_add(reg, &def, NULL), WARREN_OK);
    }
    return reg;
}

static void run(warren_registry *reg, const char *worker, warren_outcome expect)
{
    json_t *args = json_object();
    warren_handle_opts opts = {"job-1", 2, 5, 0};
    warren_handle_result res;
    assert_int_equal(warren_handle(reg, worker, args, &opts, &res, NULL), WARREN_OK);
    assert_int_equal(res.outcome, expect);
    json_decref(args);
}

static void test_hooks_through_warren_handle(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    struct trace t = {'a', ""};
    warren_observer obs = {on_before, on_after, on_error, on_dead, &t, {NULL}};
    assert_int_equal(warren_registry_observe(reg, &obs, NULL), WARREN_OK);
    assert_int_equal(warren__registry_observers(reg), 1);
    run(reg, "ok", WARREN_JOB_OK);
    run(reg, "retry", WARREN_JOB_RETRY);
    run(reg, "fail", WARREN_JOB_FAIL);
    assert_string_equal(t.text, "before ok job-1 a2 [|]\n"
                                "after ok 0\n"
                                "before retry job-1 a2 [|]\n"
                                "after retry 1\n"
                                "error retry try later\n"
                                "before fail job-1 a2 [|]\n"
                                "after fail 2\n"
                                "error fail no such user\n");
    warren_registry_destroy(reg);
}

static void test_notify_dead_with_context(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    struct trace t = {'a', ""};
    warren_observer obs = {NULL, NULL, NULL, on_dead, &t, {NULL}};
    assert_int_equal(warren_registry_observe(reg, &obs, NULL), WARREN_OK);
    struct warren_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.worker, sizeof job.worker, "fail");
    snprintf(job.id, sizeof job.id, "j9");
    job.attempt = 3;
    warren_observer_ctx ctx = {"default", "host-a"};
    warren__registry_notify_before(reg, &job, &ctx); /* no hook: nothing */
    warren__registry_notify_dead(reg, &job, &ctx, "max_attempts", "attempt 3 of 3 failed");
    warren__registry_notify_dead(reg, &job, NULL, NULL, NULL);
    assert_string_equal(t.text, "dead fail max_attempts attempt 3 of 3 failed [default|host-a]\n"
                                "dead fail   [|]\n");
    warren_registry_destroy(reg);
}

static void test_registration_order(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    struct trace a = {'a', ""}, b = {'b', ""}, c = {'c', ""};
    warren_observer oa = {on_before, NULL, NULL, NULL, &a, {NULL}};
    warren_observer ob = {on_before, on_after, NULL, NULL, &b, {NULL}};
    warren_observer oc = {NULL, on_after, NULL, NULL, &c, {NULL}};
    assert_int_equal(warren_registry_observe(reg, &oa, NULL), WARREN_OK);
    assert_int_equal(warren_registry_observe(reg, &ob, NULL), WARREN_OK);
    assert_int_equal(warren_registry_observe(reg, &oc, NULL), WARREN_OK);
    shared_order[0] = '\0';
    run(reg, "ok", WARREN_JOB_OK);
    assert_string_equal(shared_order, "abbc");
    warren_registry_destroy(reg);
}

static void test_refusals(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    warren_observer none = {NULL, NULL, NULL, NULL, NULL, {NULL}};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_registry_observe(reg, &none, &err), WARREN_EINVAL);
    assert_string_equal(err.text, "observer has no hook");
    assert_int_equal(warren_registry_observe(reg, NULL, NULL), WARREN_EINVAL);
    assert_int_equal(warren_registry_observe(NULL, &none, NULL), WARREN_EINVAL);
    assert_int_equal(warren__registry_observers(reg), 0);
    warren_registry_destroy(reg);
}

/* A module whose init fails takes its observers with it. */
static void test_removed_with_module(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    struct trace keep = {'k', ""}, gone = {'g', ""};
    warren_observer ok = {on_before, NULL, NULL, NULL, &keep, {NULL}};
    warren_observer bad = {on_before, NULL, NULL, NULL, &gone, {NULL}};
    warren__registry_set_module(reg, "good");
    assert_int_equal(warren_registry_observe(reg, &ok, NULL), WARREN_OK);
    warren__registry_set_module(reg, "broken");
    assert_int_equal(warren_registry_observe(reg, &bad, NULL), WARREN_OK);
    assert_int_equal(warren_registry_observe(reg, &bad, NULL), WARREN_OK);
    warren__registry_set_module(reg, NULL);
    assert_int_equal(warren_registry_observe(reg, &ok, NULL), WARREN_OK);
    assert_int_equal(warren__registry_observers(reg), 4);
    warren__registry_remove_module(reg, "broken");
    assert_int_equal(warren__registry_observers(reg), 2);
    run(reg, "ok", WARREN_JOB_OK);
    assert_string_equal(gone.text, "");
    assert_string_equal(keep.text, "before ok job-1 a2 [|]\nbefore ok job-1 a2 [|]\n");
    warren_registry_destroy(reg);
}

/* Many observers: the array grows; no observer: notifying is a no-op. */
static void test_many_and_none(void **state)
{
    (void)state;
    warren_registry *reg = make_registry();
    struct warren_job job;
    memset(&job, 0, sizeof job);
    warren__registry_notify_before(reg, &job, NULL);
    warren__registry_notify_after(reg, &job, NULL, WARREN_JOB_OK, 0);
    warren__registry_notify_error(reg, &job, NULL, "x");
    warren__registry_notify_dead(reg, &job, NULL, "x", "y");
    warren__registry_notify_dead(NULL, &job, NULL, "x", "y");
    struct trace t = {'t', ""};
    warren_observer obs = {NULL, NULL, on_error, NULL, &t, {NULL}};
    for (int i = 0; i < 20; i++)
        assert_int_equal(warren_registry_observe(reg, &obs, NULL), WARREN_OK);
    shared_order[0] = '\0';
    run(reg, "retry", WARREN_JOB_RETRY);
    assert_int_equal(strlen(shared_order), 20);
    warren_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_through_warren_handle),
        cmocka_unit_test(test_notify_dead_with_context),
        cmocka_unit_test(test_registration_order),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_removed_with_module),
        cmocka_unit_test(test_many_and_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
