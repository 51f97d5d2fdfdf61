/* The compact writer's fast path against json_dumps: whenever it writes,
 * its text is jansson's byte for byte, in both ASCII modes; what it
 * declines, warren__json_compact hands to jansson. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "json_write.h"

static char *jansson_text(const json_t *v, int ascii)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | (ascii ? JSON_ENSURE_ASCII : 0));
}

/* Writes v both ways in both modes; checks they agree. Returns 1 when the
 * fast path wrote it. */
static int agree(const json_t *v)
{
    int wrote = 0;
    for (int ascii = 0; ascii <= 1; ascii++) {
        struct warren__jbuf b = {0};
        char *want = jansson_text(v, ascii);
        int fast = warren__json_write_fast(&b, v, ascii) == 0;
        if (fast) {
            assert_non_null(want);
            assert_int_equal(b.len, strlen(want));
            if (strcmp(b.data, want) != 0) {
                fprintf(stderr, "fast %s\njansson %s\n", b.data, want);
                fail();
            }
            wrote++;
        }
        /* the entry point gives jansson's text either way */
        int rc = warren__json_compact(&b, v, ascii);
        assert_int_equal(rc, want ? 0 : -1);
        if (want)
            assert_string_equal(b.data, want);
        free(want);
        warren__jbuf_free(&b);
    }
    return wrote == 2;
}

static void test_common_values(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s, s:I, s:[i, b, b, n], s:{}, s:[], s:s}", "to", "a@example.com",
                          "n", (json_int_t)42, "list", -7, 1, 0, "empty", "arr", "text",
                          "line\nbreak \"quoted\" back\\slash tab\t \x01\x1f\x7f");
    assert_true(agree(v));
    json_decref(v);
    const json_int_t ints[] = {0, -1, 9, 10, -10, LLONG_MAX, LLONG_MIN, 1000000007};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *n = json_integer(ints[i]);
        assert_true(agree(n));
        json_decref(n);
    }
}

static void test_unicode(void **state)
{
    (void)state;
    const char *const texts[] = {
        "caf\xc3\xa9",                 /* 2 bytes */
        "\xe2\x82\xac 5",              /* 3 bytes */
        "\xf0\x9f\x98\x80 smile",      /* 4 bytes: a surrogate pair in ASCII mode */
        "\xef\xbf\xbf\xf4\x8f\xbf\xbf", /* U+FFFF, U+10FFFF */
        "\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *o = json_pack("{s:s}", texts[i], texts[i]); /* as key and value */
        assert_true(agree(o));
        json_decref(o);
    }
    json_t *nul = json_stringn("a\0b", 3); /* U+0000 inside a string */
    assert_true(agree(nul));
    json_decref(nul);
}

static void test_declines(void **state)
{
    (void)state;
    /* reals: jansson's to write */
    json_t *r = json_pack("{s:f}", "x", 1.5);
    assert_false(agree(r));
    json_decref(r);
    /* invalid UTF-8 slipped in without a check: neither writes it */
    json_t *bad = json_stringn_nocheck("\xc3(", 2);
    struct warren__jbuf b = {0};
    assert_int_equal(warren__json_write_fast(&b, bad, 1), -1);
    assert_int_equal(warren__json_compact(&b, bad, 0), -1);
    json_decref(bad);
    /* a cycle: the depth bound stops the fast path, jansson refuses */
    json_t *a = json_array(), *inner = json_array();
    json_array_append(a, inner);
    json_array_append(inner, a); /* jansson refuses a self-append, not this */
    assert_int_equal(warren__json_compact(&b, a, 1), -1);
    json_array_clear(inner);
    json_decref(inner);
    json_decref(a);
    /* deep but finite: jansson writes what the fast path declines */
    json_t *deep = json_array();
    for (int i = 0; i < WARREN__JSON_WRITE_DEPTH + 5; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    assert_false(agree(deep));
    json_decref(deep);
    warren__jbuf_free(&b);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

/* A string of characters drawn from every class the writer treats
 * differently. */
static json_t *random_string(void)
{
    static const char *const pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\b", "\x01",
                                         "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80", "long plain text run "};
    char buf[256];
    size_t n = 0, count = next_rand() % 12;
    for (size_t i = 0; i < count; i++) {
        const char *p = pieces[next_rand() % (sizeof pieces / sizeof pieces[0])];
        size_t len = strlen(p);
        memcpy(buf + n, p, len);
        n += len;
    }
    if (next_rand() % 8 == 0)
        buf[n++] = '\0';
    return json_stringn(buf, n);
}

static json_t *random_value(int depth)
{
    switch (next_rand() % (depth > 4 ? 5 : 7)) {
    case 0: return random_string();
    case 1: return json_integer((json_int_t)(((uint64_t)next_rand() << 32) ^ next_rand()));
    case 2: return json_integer((json_int_t)(next_rand() % 2000) - 1000);
    case 3: return next_rand() % 2 ? json_true() : json_false();
    case 4: return json_null();
    case 5: {
        json_t *a = json_array();
        for (unsigned i = next_rand() % 5; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = next_rand() % 5; i > 0; i--) {
            json_t *k = random_string();
            json_object_setn_new(o, json_string_value(k), json_string_length(k),
                                 random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_random_values(void **state)
{
    (void)state;
    for (int round = 0; round < 20000; round++) {
        json_t *v = random_value(0);
        assert_true(agree(v));
        json_decref(v);
    }
}

static void test_buffer_reuse(void **state)
{
    (void)state;
    /* one buffer for many values, as the producer keeps it: each call
     * replaces what the last one wrote */
    struct warren__jbuf b = {0};
    json_t *big = json_pack("{s:s%}", "pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", (size_t)50);
    json_t *small = json_pack("{s:i}", "n", 1);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(warren__json_compact(&b, big, 1), 0);
        assert_int_equal(b.len, strlen(b.data));
        assert_int_equal(warren__json_compact(&b, small, 1), 0);
        assert_string_equal(b.data, "{\"n\":1}");
    }
    json_decref(big);
    json_decref(small);
    warren__jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_values),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_buffer_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
