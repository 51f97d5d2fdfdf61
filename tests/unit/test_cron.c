/* Unit tests for cron.c: next-fire tables (month ends, leap years, both
 * day fields, steps, names, 5 and 6 fields), every error message, and the
 * search agreeing with a brute-force walk over matching seconds. The
 * expected times were worked out by hand and checked against an
 * independent brute-force implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "cron.h"

/* "2026-05-01T02:00:00Z" -> Unix time. */
static time_t at(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm))
        fail_msg("bad time in test: %s", text);
    return timegm(&tm);
}

static const char *show(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (t < 0) {
        snprintf(buf, size, "-1");
        return buf;
    }
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static struct warren_cron parse_ok(const char *expr)
{
    struct warren_cron c;
    char why[256] = "";
    if (warren__cron_parse(&c, expr, why, sizeof why) != 0)
        fail_msg("'%s' refused: %s", expr, why);
    return c;
}

struct next_case {
    const char *expr;
    const char *after;
    const char *want; /* NULL: never (-1) */
};

static void check_next(const struct next_case *k)
{
    struct warren_cron c = parse_ok(k->expr);
    time_t got = warren__cron_next(&c, at(k->after));
    time_t want = k->want ? at(k->want) : -1;
    char g[32], w[32];
    if (got != want)
        fail_msg("'%s' after %s: got %s, expected %s", k->expr, k->after,
                 show(got, g, sizeof g), show(want, w, sizeof w));
    if (got >= 0)
        assert_true(warren__cron_matches(&c, got));
}

static void run_table(const struct next_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_next(&cases[i]);
}

#define RUN(table) run_table(table, sizeof table / sizeof table[0])

static void test_month_ends(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        /* The 31st: months with 30 days (and February) are skipped. */
        {"0 0 0 31 * *", "2026-04-15T00:00:00Z", "2026-05-31T00:00:00Z"},
        {"0 0 0 31 * *", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"},
        {"0 0 31 * *", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z"},
        {"0 0 0 31 * *", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z"},
        {"0 0 0 30 * *", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z"},
        /* The first of the month, across a year end. */
        {"0 0 1 * *", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"},
        {"59 59 23 31 12 *", "2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z"},
        {"* * * * * *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
        {"0 0 0 1 1 *", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
        /* The last days of February in common and leap years. */
        {"0 0 0 28-31 2 *", "2027-02-27T00:00:00Z", "2027-02-28T00:00:00Z"},
        {"0 0 0 28-31 2 *", "2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z"},
        {"0 0 0 28-31 2 *", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"},
    };
    RUN(cases);
}

static void test_leap_years(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        {"0 0 0 29 2 *", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 0 29 2 *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 0 29 2 *", "2024-02-28T23:59:59Z", "2024-02-29T00:00:00Z"},
        /* 2100 is not a leap year: eight years between two 29 Februaries. */
        {"0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
        /* 2000 is one (divisible by 400). */
        {"0 0 29 2 *", "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z"},
        {"0 0 0 * 2 *", "2028-02-28T12:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 0 * 2 *", "2027-02-28T12:00:00Z", "2028-02-01T00:00:00Z"},
    };
    RUN(cases);
}

static void test_both_day_fields(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        /* Both restricted: the 13th or any Friday. 2026-01-02 is a Friday. */
        {"0 0 12 13 * FRI", "2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z"},
        {"0 0 12 13 * 5", "2026-02-13T12:00:00Z", "2026-02-20T12:00:00Z"},
        {"0 0 12 13 * 5", "2026-01-09T12:00:00Z", "2026-01-13T12:00:00Z"},
        {"0 0 0 1 * MON", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
        /* Both restricted, the day of month impossible: Mondays still fire. */
        {"0 0 0 31 4,6,9,11 1", "2026-01-01T00:00:00Z", "2026-04-06T00:00:00Z"},
        /* A field starting with '*' counts as unrestricted (Vixie): odd
         * days that are Mondays. */
        {"0 0 0 */2 * 1", "2026-03-01T00:00:00Z", "2026-03-09T00:00:00Z"},
        /* Only the day of week restricted. */
        {"0 0 12 * * */3", "2026-03-05T00:00:00Z", "2026-03-07T12:00:00Z"},
        {"0 30 8 * * MON-FRI", "2026-03-06T09:00:00Z", "2026-03-09T08:30:00Z"},
        {"0 0 * * 7", "2026-03-05T00:00:00Z", "2026-03-08T00:00:00Z"},
        {"0 0 * * 0", "2026-03-05T00:00:00Z", "2026-03-08T00:00:00Z"},
    };
    RUN(cases);
}

static void test_steps_and_ranges(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        {"*/15 * * * * *", "2026-03-05T10:00:14Z", "2026-03-05T10:00:15Z"},
        {"*/15 * * * * *", "2026-03-05T10:00:59Z", "2026-03-05T10:01:00Z"},
        {"0 */20 * * * *", "2026-03-05T10:45:00Z", "2026-03-05T11:00:00Z"},
        {"5/20 * * * * *", "2026-03-05T10:00:46Z", "2026-03-05T10:01:05Z"},
        {"0 0 9-17/4 * * *", "2026-03-05T13:00:00Z", "2026-03-05T17:00:00Z"},
        {"0 0 9-17/4 * * *", "2026-03-05T17:00:00Z", "2026-03-06T09:00:00Z"},
        {"0 0 0 */10 * *", "2026-03-05T00:00:00Z", "2026-03-11T00:00:00Z"},
        {"0 0 0 1 JAN-MAR/2 *", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"},
        {"0 0 0 1 jan-mar/2 *", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
        {"0,30 0 0 * * *", "2026-03-05T00:00:00Z", "2026-03-05T00:00:30Z"},
        {"30 2 * * *", "2026-03-05T02:30:00Z", "2026-03-06T02:30:00Z"},
        {"*/5 * * * *", "2026-03-05T10:02:30Z", "2026-03-05T10:05:00Z"},
        {"0 0 0 1 NOV-DEC *", "2026-12-01T00:00:00Z", "2027-11-01T00:00:00Z"},
    };
    RUN(cases);
}

static void test_impossible(void **state)
{
    (void)state;
    static const struct next_case cases[] = {
        {"0 0 0 30 2 *", "2026-01-01T00:00:00Z", NULL},
        {"0 0 0 31 4,6,9,11 *", "2026-01-01T00:00:00Z", NULL},
        {"0 0 31 2 *", "2026-01-01T00:00:00Z", NULL},
    };
    RUN(cases);
    struct warren_cron c = parse_ok("0 0 0 30 2 *");
    assert_true(warren__cron_never(&c));
    c = parse_ok("0 0 31 4,6,9,11 *");
    assert_true(warren__cron_never(&c));
    c = parse_ok("0 0 0 31 4,6,9,11 1"); /* Mondays still fire */
    assert_false(warren__cron_never(&c));
    c = parse_ok("0 0 29 2 *");
    assert_false(warren__cron_never(&c));
    c = parse_ok("* * * * *");
    assert_false(warren__cron_never(&c));
    c = parse_ok("0 0 30 2 MON"); /* Vixie OR: any Monday of February */
    assert_false(warren__cron_never(&c));
}

static void test_five_and_six_fields(void **state)
{
    (void)state;
    struct warren_cron a = parse_ok("*/5 * * * *");
    struct warren_cron b = parse_ok("0 */5 * * * *");
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(a.seconds == 1); /* second 0 only */
    a = parse_ok("  30\t2 * *   *  ");
    b = parse_ok("0 30 2 * * *");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("* * * * * *");
    assert_true(a.seconds == (1ULL << 60) - 1);
    assert_true(a.minutes == (1ULL << 60) - 1);
    assert_true(a.hours == (1U << 24) - 1);
    assert_true(a.mdays == 0xfffffffe);
    assert_true(a.months == 0x1ffe);
    assert_true(a.wdays == 0x7f);
    assert_true(a.mday_star && a.wday_star);
}

static void test_names(void **state)
{
    (void)state;
    struct warren_cron a, b;
    a = parse_ok("0 0 * * MON-FRI");
    b = parse_ok("0 0 * * 1-5");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("0 0 * * sun,Sat");
    b = parse_ok("0 0 * * 0,6");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("0 0 1 JAN,jun-AUG,dec *");
    b = parse_ok("0 0 1 1,6-8,12 *");
    assert_memory_equal(&a, &b, sizeof a);
    /* Sunday is 0 or 7, also at the end of a range. */
    a = parse_ok("0 0 * * 7");
    assert_int_equal(a.wdays, 1);
    a = parse_ok("0 0 * * 5-7");
    assert_int_equal(a.wdays, (1 << 5) | (1 << 6) | 1);
    a = parse_ok("0 0 * * 0-7");
    assert_int_equal(a.wdays, 0x7f);
    a = parse_ok("0 0 * * 7/4"); /* found by fuzz_cron: was empty */
    assert_int_equal(a.wdays, 1);
    a = parse_ok("0 0 * * 1/3");
    assert_int_equal(a.wdays, (1 << 1) | (1 << 4));
    a = parse_ok("0 0 * * */3");
    assert_int_equal(a.wdays, (1 << 0) | (1 << 3) | (1 << 6));
    a = parse_ok("59/5 * * * * *");
    assert_true(a.seconds == 1ULL << 59);
}

struct error_case {
    const char *expr;
    const char *why;
};

static void test_errors(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {"", "cron expression '' must have 5 or 6 fields, not 0"},
        {"* * * *", "cron expression '* * * *' must have 5 or 6 fields, not 4"},
        {"* * * * * * *", "cron expression '* * * * * * *' must have 5 or 6 fields, not 7"},
        {"60 * * * * *", "cron expression '60 * * * * *': second field '60': "
                         "60 is out of range 0-59"},
        {"60 * * * *", "cron expression '60 * * * *': minute field '60': 60 is out of range 0-59"},
        {"* 24 * * *", "cron expression '* 24 * * *': hour field '24': 24 is out of range 0-23"},
        {"* * 0 0 *", "cron expression '* * 0 0 *': day-of-month field '0': "
                      "0 is out of range 1-31"},
        {"* * 32 * *", "cron expression '* * 32 * *': day-of-month field '32': "
                       "32 is out of range 1-31"},
        {"* * * 13 *", "cron expression '* * * 13 *': month field '13': 13 is out of range 1-12"},
        {"* * * 0 *", "cron expression '* * * 0 *': month field '0': 0 is out of range 1-12"},
        {"* * * * * 8", "cron expression '* * * * * 8': day-of-week field '8': "
                        "8 is out of range 0-7"},
        {"1-99999999999 * * * *", "cron expression '1-99999999999 * * * *': minute field "
                                  "'1-99999999999': 99999999999 is out of range 0-59"},
        {"* * * ? * *", "cron expression '* * * ? * *': day-of-month field '?': "
                        "'?' is not supported (use '*')"},
        {"0 0 ? * MON", "cron expression '0 0 ? * MON': day-of-month field '?': "
                        "'?' is not supported (use '*')"},
        {"0 0 L * *", "cron expression '0 0 L * *': day-of-month field 'L': "
                      "'L' (last day) is not supported"},
        {"0 0 15W * *", "cron expression '0 0 15W * *': day-of-month field '15W': "
                        "'W' (nearest weekday) is not supported"},
        {"0 0 LW * *", "cron expression '0 0 LW * *': day-of-month field 'LW': "
                       "'W' (nearest weekday) is not supported"},
        {"0 0 W * *", "cron expression '0 0 W * *': day-of-month field 'W': "
                      "'W' (nearest weekday) is not supported"},
        {"0 0 * * 5L", "cron expression '0 0 * * 5L': day-of-week field '5L': "
                       "'L' (last day) is not supported"},
        {"0 0 * * L", "cron expression '0 0 * * L': day-of-week field 'L': "
                      "'L' (last day) is not supported"},
        {"0 0 * * 5#3", "cron expression '0 0 * * 5#3': day-of-week field '5#3': "
                        "'#' (nth weekday of the month) is not supported"},
        {"0 0 * * FRI#3", "cron expression '0 0 * * FRI#3': day-of-week field 'FRI#3': "
                          "'#' (nth weekday of the month) is not supported"},
        {"*/0 * * * *", "cron expression '*/0 * * * *': minute field '*/0': "
                        "step must be at least 1"},
        {"*/ * * * *", "cron expression '*/ * * * *': minute field '*/': "
                       "a step is missing after '/'"},
        {"*/x * * * *", "cron expression '*/x * * * *': minute field '*/x': unexpected 'x'"},
        {"*/60 * * * *", "cron expression '*/60 * * * *': minute field '*/60': "
                         "step 60 is larger than the field (at most 59)"},
        {"5-1 * * * *", "cron expression '5-1 * * * *': minute field '5-1': "
                        "range 5-1 goes backwards"},
        {"0 0 * * SAT-SUN", "cron expression '0 0 * * SAT-SUN': day-of-week field 'SAT-SUN': "
                            "range 6-0 goes backwards"},
        {"1,,2 * * * *", "cron expression '1,,2 * * * *': minute field '1,,2': empty list item"},
        {"1, * * * *", "cron expression '1, * * * *': minute field '1,': empty list item"},
        {",1 * * * *", "cron expression ',1 * * * *': minute field ',1': empty list item"},
        {"* * * FOO *", "cron expression '* * * FOO *': month field 'FOO': "
                        "unknown name 'FOO' (use JAN-DEC)"},
        {"* * * MON *", "cron expression '* * * MON *': month field 'MON': "
                        "unknown name 'MON' (use JAN-DEC)"},
        {"* * * * * FUNDAY", "cron expression '* * * * * FUNDAY': day-of-week field 'FUNDAY': "
                             "unknown name 'FUNDAY' (use SUN-SAT)"},
        {"* * * * * JANUARY", "cron expression '* * * * * JANUARY': day-of-week field "
                              "'JANUARY': unknown name 'JANUARY' (use SUN-SAT)"},
        {"abc * * * *", "cron expression 'abc * * * *': minute field 'abc': "
                        "'abc' is not a number"},
        {"1-2-3 * * * *", "cron expression '1-2-3 * * * *': minute field '1-2-3': "
                          "unexpected '-'"},
        {"*-5 * * * *", "cron expression '*-5 * * * *': minute field '*-5': unexpected '-'"},
        {"- * * * *", "cron expression '- * * * *': minute field '-': unexpected '-'"},
        {"1- * * * *", "cron expression '1- * * * *': minute field '1-': a value is missing"},
        {"1.5 * * * *", "cron expression '1.5 * * * *': minute field '1.5': unexpected '.'"},
        {"*/2/3 * * * *", "cron expression '*/2/3 * * * *': minute field '*/2/3': "
                          "unexpected '/'"},
        {"\x01 * * * *", "cron expression '\x01 * * * *': minute field '\x01': "
                         "unexpected character 0x01"},
        {"@daily", "cron expression '@daily' must have 5 or 6 fields, not 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct warren_cron c;
        char why[256] = "";
        memset(&c, 0x5a, sizeof c);
        struct warren_cron before = c;
        if (warren__cron_parse(&c, cases[i].expr, why, sizeof why) != -1)
            fail_msg("'%s' was accepted", cases[i].expr);
        if (strcmp(why, cases[i].why) != 0)
            fail_msg("'%s':\n  got      %s\n  expected %s", cases[i].expr, why, cases[i].why);
        assert_memory_equal(&c, &before, sizeof c); /* untouched on failure */
    }
    /* A NULL or short buffer for the reason is fine. */
    struct warren_cron c;
    char tiny[8];
    assert_int_equal(warren__cron_parse(&c, "61 * * * *", NULL, 0), -1);
    assert_int_equal(warren__cron_parse(&c, "61 * * * *", tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* next() agrees with walking second by second over three days, from
 * every sampled starting point. */
static void test_agrees_with_walk(void **state)
{
    (void)state;
    static const char *const exprs[] = {
        "* * * * * *",   "*/7 */13 * * * *", "0 0 */5 * * *", "15 30 1,13 * * *",
        "0 0 0 * * *",   "0 0 12 6 * SAT",   "0 */10 22-23 * * 0,6", "59 59 23 * * *",
    };
    const time_t start = at("2028-02-27T00:00:00Z"); /* across 29 February */
    const time_t span = 3 * 86400;
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
        struct warren_cron c = parse_ok(exprs[e]);
        time_t next_match = -1;
        /* Walk backwards, so next_match is always the first match > t. */
        for (time_t t = start + span; t >= start; t--) {
            if (t % 613 == 0 || t == start) {
                time_t got = warren__cron_next(&c, t);
                if (next_match >= 0 && got != next_match) {
                    char a[32], b[32], d[32];
                    fail_msg("'%s' after %s: got %s, walk found %s", exprs[e],
                             show(t, a, sizeof a), show(got, b, sizeof b),
                             show(next_match, d, sizeof d));
                }
            }
            if (warren__cron_matches(&c, t))
                next_match = t;
        }
    }
}

static void test_strictly_after_and_edges(void **state)
{
    (void)state;
    struct warren_cron c = parse_ok("* * * * * *");
    assert_int_equal(warren__cron_next(&c, 0), 1);
    assert_int_equal(warren__cron_next(&c, -1), 0);
    c = parse_ok("0 0 2 * * *");
    time_t t = at("2026-05-01T02:00:00Z");
    assert_true(warren__cron_matches(&c, t));
    assert_int_equal(warren__cron_next(&c, t), at("2026-05-02T02:00:00Z"));
    assert_int_equal(warren__cron_next(&c, t - 1), t);
    /* Before 1970 and near the year 9999 limit. */
    assert_int_equal(warren__cron_next(&c, at("1969-12-31T03:00:00Z")),
                     at("1970-01-01T02:00:00Z"));
    assert_int_equal(warren__cron_next(&c, at("9999-12-31T02:00:00Z")), -1);
    assert_int_equal(warren__cron_next(&c, (time_t)INT64_MAX), -1);
    assert_int_equal(warren__cron_next(&c, (time_t)INT64_MIN),
                     warren__cron_next(&c, (time_t)-62167219200LL - 1)); /* 0000-01-01 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_month_ends),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_both_day_fields),
        cmocka_unit_test(test_steps_and_ranges),
        cmocka_unit_test(test_impossible),
        cmocka_unit_test(test_five_and_six_fields),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_agrees_with_walk),
        cmocka_unit_test(test_strictly_after_and_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
