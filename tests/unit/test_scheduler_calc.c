/* Unit tests for schedule.c, the scheduler's decisions as pure functions:
 * next fire for `every` (epoch-aligned) and cron, the most recent fire in
 * a window, what is due given the shared state (first start, catch-up,
 * max_count), RFC 3339 times and ids, and the state document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "schedule.h"

#define SEC 1000LL

/* "2026-05-01T02:00:00Z" or with ".250Z" -> Unix ms. */
static long long at(const char *text)
{
    long long ms;
    if (warren__sched_parse_time(text, &ms) != 0)
        fail_msg("bad time in test: %s", text);
    return ms;
}

static const char *show(long long ms, char *buf, size_t size)
{
    if (ms < 0)
        snprintf(buf, size, "%lld", ms);
    else
        warren__sched_format_time(ms, buf, size);
    return buf;
}

#define assert_time(got, want)                                                         \
    do {                                                                               \
        long long g_ = (got), w_ = (want);                                             \
        char a_[40], b_[40];                                                           \
        if (g_ != w_)                                                                  \
            fail_msg("%s: got %s, expected %s", #got, show(g_, a_, sizeof a_),         \
                     show(w_, b_, sizeof b_));                                         \
    } while (0)

static struct warren_sched_def every(long long ms, long long max_count)
{
    struct warren_sched_def d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "heartbeat");
    d.kind = WARREN_SCHED_EVERY;
    d.every_ms = ms;
    d.max_count = max_count;
    return d;
}

static struct warren_sched_def cron(const char *expr, long long max_count)
{
    struct warren_sched_def d;
    char why[256];
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "nightly");
    d.kind = WARREN_SCHED_CRON;
    d.max_count = max_count;
    if (warren__cron_parse(&d.cron, expr, why, sizeof why) != 0)
        fail_msg("%s", why);
    return d;
}

static struct warren_sched_state state(long long last, long long since, long long count)
{
    struct warren_sched_state st = {last, since, count};
    return st;
}

static void test_next_every(void **state_)
{
    (void)state_;
    struct warren_sched_def d = every(1 * SEC, 0);
    assert_time(warren__sched_next(&d, 1000), 2000);
    assert_time(warren__sched_next(&d, 1500), 2000);
    assert_time(warren__sched_next(&d, 1999), 2000);
    assert_time(warren__sched_next(&d, 0), 1000);
    d = every(10 * SEC, 0); /* aligned to the epoch, not to any start */
    assert_time(warren__sched_next(&d, at("2026-05-01T02:00:03.400Z")),
                at("2026-05-01T02:00:10Z"));
    d = every(7 * SEC, 0);
    long long n = warren__sched_next(&d, at("2026-05-01T02:00:00Z"));
    assert_int_equal(n % (7 * SEC), 0);
    assert_true(n > at("2026-05-01T02:00:00Z") && n <= at("2026-05-01T02:00:07Z"));
    d = every(1500, 0); /* a period that is not whole seconds */
    assert_time(warren__sched_next(&d, 0), 1500);
    assert_time(warren__sched_next(&d, 1500), 3000);
    d = every(24 * 3600 * SEC, 0);
    assert_time(warren__sched_next(&d, at("2026-05-01T13:00:00Z")), at("2026-05-02T00:00:00Z"));
}

static void test_next_cron(void **state_)
{
    (void)state_;
    struct warren_sched_def d = cron("0 0 2 * * *", 0);
    assert_time(warren__sched_next(&d, at("2026-05-01T01:59:59.999Z")),
                at("2026-05-01T02:00:00Z"));
    assert_time(warren__sched_next(&d, at("2026-05-01T02:00:00Z")), at("2026-05-02T02:00:00Z"));
    assert_time(warren__sched_next(&d, at("2026-05-01T02:00:00.500Z")),
                at("2026-05-02T02:00:00Z"));
    d = cron("* * * * * *", 0);
    assert_time(warren__sched_next(&d, at("2026-05-01T02:00:00.500Z")),
                at("2026-05-01T02:00:01Z"));
    d = cron("0 0 0 30 2 *", 0);
    assert_time(warren__sched_next(&d, at("2026-05-01T02:00:00Z")), -1);
}

static void test_latest_every(void **state_)
{
    (void)state_;
    struct warren_sched_def d = every(1 * SEC, 0);
    assert_time(warren__sched_latest(&d, 10000, 15500), 15000);
    assert_time(warren__sched_latest(&d, 10000, 15000), 15000);
    assert_time(warren__sched_latest(&d, 15000, 15999), -1);
    assert_time(warren__sched_latest(&d, 15000, 15000), -1);
    assert_time(warren__sched_latest(&d, 15000, 14000), -1);
    assert_time(warren__sched_latest(&d, 14999, 15000), 15000);
    d = every(3600 * SEC, 0);
    assert_time(warren__sched_latest(&d, at("2026-05-01T02:00:00Z"), at("2026-05-03T10:30:00Z")),
                at("2026-05-03T10:00:00Z"));
}

static void test_latest_cron(void **state_)
{
    (void)state_;
    struct warren_sched_def d = cron("0 0 2 * * *", 0);
    assert_time(warren__sched_latest(&d, at("2026-05-01T02:00:00Z"), at("2026-05-05T12:00:00Z")),
                at("2026-05-05T02:00:00Z"));
    assert_time(warren__sched_latest(&d, at("2026-05-01T02:00:00Z"), at("2026-05-02T01:59:59Z")),
                -1);
    assert_time(warren__sched_latest(&d, at("2026-05-01T02:00:00Z"), at("2026-05-02T02:00:00Z")),
                at("2026-05-02T02:00:00Z"));
    d = cron("0 0 0 29 2 *", 0);
    assert_time(warren__sched_latest(&d, at("2024-03-01T00:00:00Z"), at("2030-01-01T00:00:00Z")),
                at("2028-02-29T00:00:00Z"));
    d = cron("* * * * * *", 0);
    assert_time(warren__sched_latest(&d, at("2026-01-01T00:00:00Z"),
                                     at("2026-05-01T02:00:00.700Z")),
                at("2026-05-01T02:00:00Z"));
    d = cron("0 30 8 * * MON-FRI", 0); /* 2026-05-02 and 03 are a weekend */
    assert_time(warren__sched_latest(&d, at("2026-04-01T00:00:00Z"), at("2026-05-04T08:00:00Z")),
                at("2026-05-01T08:30:00Z"));
}

/* latest() agrees with stepping next() through the window. */
static void test_latest_agrees_with_stepping(void **state_)
{
    (void)state_;
    struct warren_sched_def defs[] = {
        cron("*/7 */13 * * * *", 0), cron("0 0 12 13 * FRI", 0), cron("0 0 */5 * * *", 0),
        every(7 * SEC, 0), every(1500, 0),
    };
    long long base = at("2026-05-01T00:00:00Z");
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
        for (long long after = base; after < base + 40 * 86400 * SEC; after += 86400 * SEC + 777) {
            long long upto = after + (after / 1000 % 5 + 1) * 3 * 3600 * SEC + 321;
            long long want = -1;
            for (long long t = warren__sched_next(&defs[k], after); t >= 0 && t <= upto;
                 t = warren__sched_next(&defs[k], t))
                want = t;
            assert_time(warren__sched_latest(&defs[k], after, upto), want);
        }
    }
}

static void test_first_start_fires_nothing_past(void **state_)
{
    (void)state_;
    struct warren_sched_def d = every(1 * SEC, 0);
    long long start = at("2026-05-01T12:00:00.350Z");
    struct warren_sched_state st = state(-1, start, 0);
    assert_time(warren__sched_due(&d, &st, start), -1);
    assert_time(warren__sched_due(&d, &st, start + 649), -1);
    assert_time(warren__sched_next_due(&d, &st), at("2026-05-01T12:00:01Z"));
    assert_time(warren__sched_due(&d, &st, at("2026-05-01T12:00:01.020Z")),
                at("2026-05-01T12:00:01Z"));
    /* A nightly cron first seen at noon waits for the next night, even
     * though 02:00 today is in the past. */
    struct warren_sched_def n = cron("0 0 2 * * *", 0);
    st = state(-1, at("2026-05-01T12:00:00Z"), 0);
    assert_time(warren__sched_due(&n, &st, at("2026-05-01T12:00:00Z")), -1);
    assert_time(warren__sched_next_due(&n, &st), at("2026-05-02T02:00:00Z"));
    /* Nothing known at all: nothing is due. */
    st = state(-1, -1, 0);
    assert_time(warren__sched_due(&d, &st, start), -1);
    assert_time(warren__sched_next_due(&d, &st), -1);
}

static void test_catch_up_only_most_recent(void **state_)
{
    (void)state_;
    /* No holder from 02:00 on the 1st until 10:00 on the 4th: of the
     * missed nightly fires only the 4th's 02:00 is fired. */
    struct warren_sched_def d = cron("0 0 2 * * *", 0);
    struct warren_sched_state st = state(at("2026-05-01T02:00:00Z"), at("2026-04-01T00:00:00Z"), 7);
    long long now = at("2026-05-04T10:00:00Z");
    assert_time(warren__sched_next_due(&d, &st), at("2026-05-02T02:00:00Z"));
    long long t = warren__sched_due(&d, &st, now);
    assert_time(t, at("2026-05-04T02:00:00Z"));
    warren__sched_fired(&st, t);
    assert_time(st.last_ms, t);
    assert_int_equal(st.count, 8);
    assert_time(warren__sched_due(&d, &st, now), -1);
    assert_time(warren__sched_next_due(&d, &st), at("2026-05-05T02:00:00Z"));

    /* Every second, a 3.5 s gap (failover): one fire, the most recent. */
    struct warren_sched_def e = every(1 * SEC, 0);
    st = state(at("2026-05-01T12:00:05Z"), -1, 5);
    assert_time(warren__sched_due(&e, &st, at("2026-05-01T12:00:08.500Z")),
                at("2026-05-01T12:00:08Z"));
    /* On time: the next one exactly. */
    assert_time(warren__sched_due(&e, &st, at("2026-05-01T12:00:06.001Z")),
                at("2026-05-01T12:00:06Z"));
    /* A clock behind the last fire (another host's clock ran ahead):
     * nothing until it catches up, and never the same time twice. */
    assert_time(warren__sched_due(&e, &st, at("2026-05-01T12:00:04Z")), -1);
    assert_time(warren__sched_due(&e, &st, at("2026-05-01T12:00:05.900Z")), -1);
}

static void test_max_count(void **state_)
{
    (void)state_;
    struct warren_sched_def d = every(1 * SEC, 5);
    struct warren_sched_state st = state(-1, at("2026-05-01T12:00:00.100Z"), 0);
    long long now = at("2026-05-01T12:00:00.100Z");
    int fired = 0;
    for (int i = 0; i < 20; i++) {
        now += SEC;
        long long t = warren__sched_due(&d, &st, now);
        if (t >= 0) {
            warren__sched_fired(&st, t);
            fired++;
        }
    }
    assert_int_equal(fired, 5);
    assert_int_equal(st.count, 5);
    assert_true(warren__sched_exhausted(&d, &st));
    assert_time(warren__sched_next_due(&d, &st), -1);
    assert_time(warren__sched_due(&d, &st, now + 100 * SEC), -1);
    /* The count comes from the shared state: a new holder that reads
     * count 4 fires once more, one that reads 5 never. */
    st = state(at("2026-05-01T12:00:04Z"), -1, 4);
    assert_false(warren__sched_exhausted(&d, &st));
    assert_time(warren__sched_due(&d, &st, at("2026-05-01T12:00:09Z")), at("2026-05-01T12:00:09Z"));
    st.count = 5;
    assert_time(warren__sched_due(&d, &st, at("2026-05-01T12:00:09Z")), -1);
    d.max_count = 0; /* unlimited */
    st.count = 1000000;
    assert_false(warren__sched_exhausted(&d, &st));
}

static void test_times_and_ids(void **state_)
{
    (void)state_;
    char buf[64];
    long long t = at("2026-05-01T02:00:00Z");
    assert_int_equal(t, 1777600800000LL);
    assert_string_equal(warren__sched_format_time(t, buf, sizeof buf), "2026-05-01T02:00:00Z");
    assert_string_equal(warren__sched_format_time(t + 250, buf, sizeof buf),
                        "2026-05-01T02:00:00.250Z");
    assert_string_equal(warren__sched_format_time(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
    assert_string_equal(warren__sched_message_id("heartbeat", t, buf, sizeof buf),
                        "heartbeat@2026-05-01T02:00:00Z");
    assert_string_equal(warren__sched_message_id("a.b-c_d", t + 1500, buf, sizeof buf),
                        "a.b-c_d@2026-05-01T02:00:01.500Z");
    long long ms;
    assert_int_equal(warren__sched_parse_time("2026-05-01T02:00:00.5Z", &ms), 0);
    assert_int_equal(ms, t + 500);
    assert_int_equal(warren__sched_parse_time("2028-02-29T00:00:00Z", &ms), 0);
    static const char *const bad[] = {
        "", "2026-05-01T02:00:00", "2026-05-01 02:00:00Z", "2026-05-01T02:00:00Zx",
        "2026-02-30T00:00:00Z", "2027-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
        "2026-05-01T24:00:00Z", "2026-05-01T02:60:00Z", "2026-05-01T02:00:60Z",
        "2026-05-01T02:00:00.Z", "2026-05-01T02:00:00.1234Z", "26-05-01T02:00:00Z",
        "2026-5-01T02:00:00Z", "2026-05-01T02:00:00+00:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (warren__sched_parse_time(bad[i], &ms) == 0)
            fail_msg("'%s' was accepted", bad[i]);
}

static void test_state_document(void **state_)
{
    (void)state_;
    json_t *doc = warren__sched_doc_new();
    struct warren_sched_state st = state(5, 5, 5), got;
    assert_int_equal(warren__sched_doc_get(doc, "heartbeat", &got), 0);
    assert_true(got.last_ms == -1 && got.since_ms == -1 && got.count == 0);

    st = state(at("2026-05-01T02:00:00Z"), at("2026-04-30T10:00:00.125Z"), 3);
    assert_int_equal(warren__sched_doc_set(doc, "heartbeat", &st), 0);
    st = state(-1, at("2026-05-01T12:00:00Z"), 0);
    assert_int_equal(warren__sched_doc_set(doc, "new-one", &st), 0);
    char *text = warren__sched_doc_dump(doc, "host-a", at("2026-05-01T12:00:00Z"));
    assert_non_null(text);
    assert_string_equal(text,
                        "{\"holder\":\"host-a\",\"schedules\":{\"heartbeat\":{\"count\":3,"
                        "\"last\":\"2026-05-01T02:00:00Z\",\"since\":\"2026-04-30T10:00:00.125Z\"},"
                        "\"new-one\":{\"count\":0,\"last\":null,\"since\":\"2026-05-01T12:00:00Z\"}},"
                        "\"updated\":\"2026-05-01T12:00:00Z\",\"version\":1}");
    json_decref(doc);

    /* What the next holder reads back. */
    char why[256];
    doc = warren__sched_doc_parse(text, strlen(text), why, sizeof why);
    free(text);
    assert_string_equal(why, "");
    assert_int_equal(warren__sched_doc_get(doc, "heartbeat", &got), 1);
    assert_true(got.last_ms == at("2026-05-01T02:00:00Z"));
    assert_true(got.since_ms == at("2026-04-30T10:00:00.125Z"));
    assert_int_equal(got.count, 3);
    assert_int_equal(warren__sched_doc_get(doc, "new-one", &got), 1);
    assert_true(got.last_ms == -1 && got.count == 0);
    json_decref(doc);
}

static void test_state_keeps_what_others_wrote(void **state_)
{
    (void)state_;
    const char *body = "{\"version\":2,\"runtime\":[{\"name\":\"later\"}],"
                       "\"schedules\":{\"theirs\":{\"count\":9,\"last\":\"2026-05-01T00:00:00Z\","
                       "\"since\":null,\"paused\":true}}}";
    char why[256];
    json_t *doc = warren__sched_doc_parse(body, strlen(body), why, sizeof why);
    assert_string_equal(why, "");
    struct warren_sched_state st = state(at("2026-05-01T02:00:00Z"), -1, 1);
    assert_int_equal(warren__sched_doc_set(doc, "mine", &st), 0);
    char *text = warren__sched_doc_dump(doc, "host-b", 0);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(back);
    assert_int_equal(json_integer_value(json_object_get(back, "version")), 2);
    assert_true(json_is_array(json_object_get(back, "runtime")));
    json_t *theirs = json_object_get(json_object_get(back, "schedules"), "theirs");
    assert_int_equal(json_integer_value(json_object_get(theirs, "count")), 9);
    assert_true(json_is_true(json_object_get(theirs, "paused")));
    json_decref(back);
    /* A holder name that is not UTF-8 does not stop the write. */
    text = warren__sched_doc_dump(doc, "h\xff", 0);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"holder\":\"?\""));
    free(text);
    json_decref(doc);
}

static void test_state_unreadable(void **state_)
{
    (void)state_;
    static const struct {
        const char *body, *why_prefix;
    } cases[] = {
        {"", "not JSON: "},
        {"{nope", "not JSON: "},
        {"[1,2]", "not a JSON object"},
        {"{\"version\":1}", "no \"schedules\" object"},
        {"{\"schedules\":[]}", "no \"schedules\" object"},
        {"{\"schedules\":{},\"schedules\":{}}", "not JSON: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256];
        json_t *doc = warren__sched_doc_parse(cases[i].body, strlen(cases[i].body), why,
                                              sizeof why);
        assert_non_null(doc);
        if (strncmp(why, cases[i].why_prefix, strlen(cases[i].why_prefix)) != 0)
            fail_msg("'%s': why '%s'", cases[i].body, why);
        assert_true(json_is_object(json_object_get(doc, "schedules")));
        json_decref(doc);
    }
    /* Entries that are not well formed count as unknown. */
    static const char *const entries[] = {
        "{\"schedules\":{\"s\":1}}",
        "{\"schedules\":{\"s\":{\"last\":\"2026-05-01T00:00:00Z\"}}}",
        "{\"schedules\":{\"s\":{\"count\":-1,\"last\":\"2026-05-01T00:00:00Z\"}}}",
        "{\"schedules\":{\"s\":{\"count\":1,\"last\":\"yesterday\"}}}",
        "{\"schedules\":{\"s\":{\"count\":1,\"last\":5}}}",
        "{\"schedules\":{\"s\":{\"count\":1}}}",
        "{\"schedules\":{\"s\":{\"count\":1,\"last\":null,\"since\":null}}}",
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        char why[256];
        struct warren_sched_state st;
        json_t *doc = warren__sched_doc_parse(entries[i], strlen(entries[i]), why, sizeof why);
        if (warren__sched_doc_get(doc, "s", &st) != 0)
            fail_msg("'%s' was read as a state", entries[i]);
        assert_true(st.last_ms == -1 && st.since_ms == -1 && st.count == 0);
        json_decref(doc);
    }
}

static void test_def_from_config(void **state_)
{
    (void)state_;
    struct warren_schedule_conf conf;
    struct warren_sched_def d;
    warren_error err;
    memset(&conf, 0, sizeof conf);
    snprintf(conf.name, sizeof conf.name, "nightly-report");
    snprintf(conf.worker, sizeof conf.worker, "generate_report");
    conf.cron = "0 0 2 * * *";
    conf.args = json_pack("{s:s}", "csv", "sales.csv");
    conf.priority = 3;
    warren_error_clear(&err);
    assert_int_equal(warren__sched_def_init(&d, &conf, &err), WARREN_OK);
    assert_int_equal(d.kind, WARREN_SCHED_CRON);
    assert_int_equal(d.priority, 3);
    assert_string_equal(d.worker, "generate_report");
    assert_ptr_equal(d.args, conf.args);
    assert_int_equal(conf.args->refcount, 2);
    warren__sched_def_clear(&d);
    assert_int_equal(conf.args->refcount, 1);
    json_decref(conf.args);

    conf.args = NULL;
    conf.cron = NULL;
    conf.every_ms = 10 * SEC;
    conf.max_count = 100;
    assert_int_equal(warren__sched_def_init(&d, &conf, &err), WARREN_OK);
    assert_int_equal(d.kind, WARREN_SCHED_EVERY);
    assert_int_equal(d.max_count, 100);
    assert_true(json_is_object(d.args) && json_object_size(d.args) == 0);
    warren__sched_def_clear(&d);

    conf.cron = "0 0 L * *";
    assert_int_equal(warren__sched_def_init(&d, &conf, &err), WARREN_ECONFIG);
    assert_string_equal(err.text, "schedule nightly-report: cron expression '0 0 L * *': "
                                  "day-of-month field 'L': 'L' (last day) is not supported");
    warren__sched_def_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_every),
        cmocka_unit_test(test_next_cron),
        cmocka_unit_test(test_latest_every),
        cmocka_unit_test(test_latest_cron),
        cmocka_unit_test(test_latest_agrees_with_stepping),
        cmocka_unit_test(test_first_start_fires_nothing_past),
        cmocka_unit_test(test_catch_up_only_most_recent),
        cmocka_unit_test(test_max_count),
        cmocka_unit_test(test_times_and_ids),
        cmocka_unit_test(test_state_document),
        cmocka_unit_test(test_state_keeps_what_others_wrote),
        cmocka_unit_test(test_state_unreadable),
        cmocka_unit_test(test_def_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
