/* Delay routing keys, binding keys and the retry backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "delay.h"

static void test_routing_key_bits_high_first(void **state)
{
    (void)state;
    char key[200];
    assert_int_equal(warren__delay_routing_key(key, sizeof key, 5, "diag.record"), 0);
    assert_string_equal(key, "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.1.diag.record");
    assert_int_equal(warren__delay_routing_key(key, sizeof key, 0, "w"), 0);
    assert_string_equal(key, "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.w");
    assert_int_equal(warren__delay_routing_key(key, sizeof key, WARREN_DELAY_MAX_S, "w"), 0);
    assert_string_equal(key, "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.w");
    /* beyond the maximum is capped, never wrapped */
    assert_int_equal(warren__delay_routing_key(key, sizeof key, WARREN_DELAY_MAX_S + 7, "w"), 0);
    assert_string_equal(key, "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.w");
    assert_int_equal(warren__delay_routing_key(key, 20, 1, "w"), -1);
}

static void test_key_worker_round_trip(void **state)
{
    (void)state;
    char key[200];
    warren__delay_routing_key(key, sizeof key, 123456, "send_email");
    assert_string_equal(warren__delay_key_worker(key), "send_email");
    assert_null(warren__delay_key_worker("send_email"));
    assert_null(warren__delay_key_worker("0.1.2.send_email"));
    assert_null(warren__delay_key_worker(
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."));
}

static void test_binding_key_has_exact_word_count(void **state)
{
    (void)state;
    char key[200];
    assert_int_equal(warren__delay_binding_key(key, sizeof key, "diag.record"), 0);
    assert_string_equal(key, "*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.diag.record");
}

static void test_delay_seconds_never_early(void **state)
{
    (void)state;
    assert_int_equal(warren__delay_seconds(0), 0);
    assert_int_equal(warren__delay_seconds(999), 0);
    assert_int_equal(warren__delay_seconds(1000), 1);
    assert_int_equal(warren__delay_seconds(1001), 2);
    assert_int_equal(warren__delay_seconds(20000), 20);
    assert_int_equal(warren__delay_seconds(1LL << 60), WARREN_DELAY_MAX_S);
}

static void test_backoff_formula_and_cap(void **state)
{
    (void)state;
    struct warren_retry_policy p = {5, 1000, 2.0, 3600000, 0.0};
    assert_int_equal(warren__backoff_ms(&p, 1, 0.5), 1000);
    assert_int_equal(warren__backoff_ms(&p, 2, 0.5), 2000);
    assert_int_equal(warren__backoff_ms(&p, 3, 0.5), 4000);
    assert_int_equal(warren__backoff_ms(&p, 13, 0.5), 3600000); /* 4096 s capped at 1 h */
    assert_int_equal(warren__backoff_ms(&p, 400, 0.5), 3600000); /* no overflow */
    assert_int_equal(warren__backoff_ms(&p, 0, 0.5), 1000);
}

static void test_backoff_jitter_bounds(void **state)
{
    (void)state;
    struct warren_retry_policy p = {5, 10000, 2.0, 3600000, 0.2};
    assert_int_equal(warren__backoff_ms(&p, 1, 0.0), 8000);
    assert_int_equal(warren__backoff_ms(&p, 1, 0.5), 10000);
    assert_true(warren__backoff_ms(&p, 1, 0.999999) <= 12000);
    assert_true(warren__backoff_ms(&p, 1, 0.999999) >= 11999);
}

static void test_backoff_seconds_rounds_to_nearest(void **state)
{
    (void)state;
    assert_int_equal(warren__backoff_seconds(0), 0);
    assert_int_equal(warren__backoff_seconds(499), 0);
    assert_int_equal(warren__backoff_seconds(800), 1);
    assert_int_equal(warren__backoff_seconds(1200), 1);
    assert_int_equal(warren__backoff_seconds(1600), 2);
    assert_int_equal(warren__backoff_seconds(2400), 2);
}

static void test_names(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(warren__name_delay_level(b, sizeof b, "warren", 27), "warren.delay.27");
    assert_string_equal(warren__name_delay_deliver(b, sizeof b, "ns"), "ns.delay.deliver");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_key_bits_high_first),
        cmocka_unit_test(test_key_worker_round_trip),
        cmocka_unit_test(test_binding_key_has_exact_word_count),
        cmocka_unit_test(test_delay_seconds_never_early),
        cmocka_unit_test(test_backoff_formula_and_cap),
        cmocka_unit_test(test_backoff_jitter_bounds),
        cmocka_unit_test(test_backoff_seconds_rounds_to_nearest),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
