/* Unit tests for schedule_store.c: the runtime set's JSON (encode, decode,
 * parse, dump with revisions), validation, and the state's "gen". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "schedule_store.h"

static void encode_decode_every(void **state)
{
    (void)state;
    json_t *args = json_pack("{s:i}", "n", 7);
    warren_schedule_def def = {"tick", "diag.echo", NULL, 2000, 5, args, 3};
    json_t *e = NULL;
    assert_int_equal(warren__sched_store_encode(&def, 1777600000250LL, &e, NULL), WARREN_OK);
    assert_string_equal(json_string_value(json_object_get(e, "created_at")),
                        "2026-05-01T01:46:40.250Z");
    assert_int_equal(json_integer_value(json_object_get(e, "every_ms")), 2000);
    assert_null(json_object_get(e, "cron"));
    assert_true(json_is_false(json_object_get(e, "paused")));

    struct warren_sched_def d;
    struct warren_sched_meta meta;
    assert_int_equal(warren__sched_store_decode("tick", e, &d, &meta, NULL), WARREN_OK);
    assert_string_equal(d.name, "tick");
    assert_string_equal(d.worker, "diag.echo");
    assert_int_equal(d.kind, WARREN_SCHED_EVERY);
    assert_int_equal(d.every_ms, 2000);
    assert_int_equal(d.max_count, 5);
    assert_int_equal(d.priority, 3);
    assert_true(json_equal(d.args, args));
    assert_int_equal(meta.paused, 0);
    assert_int_equal(meta.created_ms, 1777600000250LL);
    assert_int_equal(meta.resumed_ms, -1);
    warren__sched_def_clear(&d);
    json_decref(e);
    json_decref(args);
}

static void encode_decode_cron(void **state)
{
    (void)state;
    warren_schedule_def def = {"c", "diag.echo", "*/5 * * * * *", 0, 0, NULL, 0};
    json_t *e = NULL;
    assert_int_equal(warren__sched_store_encode(&def, 1777600000000LL, &e, NULL), WARREN_OK);
    assert_string_equal(json_string_value(json_object_get(e, "cron")), "*/5 * * * * *");
    assert_true(json_is_object(json_object_get(e, "args")));
    json_object_set_new(e, "paused", json_true());
    struct warren_sched_def d;
    struct warren_sched_meta meta;
    assert_int_equal(warren__sched_store_decode("c", e, &d, &meta, NULL), WARREN_OK);
    assert_int_equal(d.kind, WARREN_SCHED_CRON);
    assert_int_equal(meta.paused, 1);
    assert_int_equal(warren__sched_next(&d, 1777600000000LL), 1777600005000LL);
    warren__sched_def_clear(&d);
    json_decref(e);
}

static void validation(void **state)
{
    (void)state;
    warren_error err;
    json_t *arr = json_array();
    warren_schedule_def bad[] = {
        {"", "diag.echo", NULL, 1000, 0, NULL, 0},
        {"a b", "diag.echo", NULL, 1000, 0, NULL, 0},
        {"x", "bad worker", NULL, 1000, 0, NULL, 0},
        {"x", "diag.echo", NULL, 0, 0, NULL, 0},
        {"x", "diag.echo", "* * * * *", 1000, 0, NULL, 0},
        {"x", "diag.echo", NULL, 999, 0, NULL, 0},
        {"x", "diag.echo", "0 61 * * *", 0, 0, NULL, 0},
        {"x", "diag.echo", NULL, 1000, -1, NULL, 0},
        {"x", "diag.echo", NULL, 1000, 0, arr, 0},
        {"x", "diag.echo", NULL, 1000, 0, NULL, 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        warren_error_clear(&err);
        if (warren_schedule_validate(&bad[i], &err) != WARREN_EINVAL)
            fail_msg("case %zu accepted", i);
    }
    warren_error_clear(&err);
    warren_schedule_validate(&bad[6], &err);
    assert_non_null(strstr(err.text, "hour field '61'"));
    char name[130];
    memset(name, 'a', 128);
    name[128] = '\0';
    assert_true(warren__sched_name_valid(name));
    name[127] = '\0';
    strcat(name, "ab");
    assert_false(warren__sched_name_valid(name));
    assert_true(warren__sched_name_valid("A-z_0.9"));
    json_decref(arr);
}

static void decode_refuses_bad_entries(void **state)
{
    (void)state;
    const char *bodies[] = {
        "[]",
        "{\"worker\": \"diag.echo\"}",
        "{\"worker\": \"diag.echo\", \"every_ms\": \"1000\"}",
        "{\"worker\": \"diag.echo\", \"every_ms\": 1000, \"args\": 3}",
        "{\"worker\": \"diag.echo\", \"every_ms\": 1000, \"priority\": 12}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *e = json_loads(bodies[i], 0, NULL);
        struct warren_sched_def d;
        if (warren__sched_store_decode("x", e, &d, NULL, NULL) != WARREN_EINVAL)
            fail_msg("body %zu accepted", i);
        warren__sched_def_clear(&d);
        json_decref(e);
    }
}

static void parse_and_dump(void **state)
{
    (void)state;
    char why[256];
    json_t *doc = warren__sched_store_parse("nope", 4, why, sizeof why);
    assert_non_null(doc);
    assert_true(why[0] != '\0');
    assert_int_equal(json_object_size(json_object_get(doc, "schedules")), 0);
    assert_int_equal(warren__sched_store_revision(doc), 0);
    char *a = warren__sched_store_dump(doc, 1777600000000LL);
    char *b = warren__sched_store_dump(doc, 1777600001000LL);
    json_decref(doc);
    doc = warren__sched_store_parse(b, strlen(b), why, sizeof why);
    assert_string_equal(why, "");
    assert_int_equal(warren__sched_store_revision(doc), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "updated")),
                        "2026-05-01T01:46:41Z");
    assert_non_null(strstr(a, "\"revision\":1"));
    json_decref(doc);
    free(a);
    free(b);
    /* unknown keys are kept */
    const char *text = "{\"version\":1,\"revision\":4,\"future\":true,\"schedules\":{}}";
    doc = warren__sched_store_parse(text, strlen(text), why, sizeof why);
    char *c = warren__sched_store_dump(doc, 0);
    assert_non_null(strstr(c, "\"future\":true"));
    assert_non_null(strstr(c, "\"revision\":5"));
    free(c);
    json_decref(doc);
}

static void state_gen_round_trip(void **state)
{
    (void)state;
    json_t *doc = warren__sched_doc_new();
    struct warren_sched_state st = {1777600002000LL, 1777600000000LL, 2, 1777599999250LL}, got;
    assert_int_equal(warren__sched_doc_set(doc, "tick", &st), 0);
    assert_int_equal(warren__sched_doc_get(doc, "tick", &got), 1);
    assert_int_equal(got.gen, 1777599999250LL);
    assert_int_equal(got.count, 2);
    struct warren_sched_state cfg = {-1, 1777600000000LL, 0, 0};
    warren__sched_doc_set(doc, "nightly", &cfg);
    assert_null(json_object_get(json_object_get(json_object_get(doc, "schedules"), "nightly"),
                                "gen"));
    json_decref(doc);
}

static void resume_moves_since(void **state)
{
    (void)state;
    struct warren_sched_def d;
    memset(&d, 0, sizeof d);
    d.kind = WARREN_SCHED_EVERY;
    d.every_ms = 1000;
    /* last fire at 10 s; resumed at 20.5 s: nothing from 11..20 is due */
    struct warren_sched_state st = {10000, 20500, 1, 0};
    assert_int_equal(warren__sched_due(&d, &st, 20900), -1);
    assert_int_equal(warren__sched_next_due(&d, &st), 21000);
    assert_int_equal(warren__sched_due(&d, &st, 21100), 21000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_decode_every), cmocka_unit_test(encode_decode_cron),
        cmocka_unit_test(validation),          cmocka_unit_test(decode_refuses_bad_entries),
        cmocka_unit_test(parse_and_dump),      cmocka_unit_test(state_gen_round_trip),
        cmocka_unit_test(resume_moves_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
