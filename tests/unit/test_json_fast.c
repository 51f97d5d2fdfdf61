/* The body parser's fast path against jansson: whenever it answers, its
 * value is jansson's (types, values, key order), and whatever jansson
 * refuses it refuses too. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "json_fast.h"

#define DEPTH 64

/* jansson's own text of a value, for comparing two. */
static char *text_of(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

/* Parses with both; checks they agree. Returns 1 when the fast path
 * answered. */
static int agree(const void *buf, size_t len)
{
    json_error_t jerr;
    json_t *fast = warren__json_fast_object(buf, len, DEPTH);
    json_t *slow = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    int answered = fast != NULL;
    if (fast) {
        if (!slow || !json_equal(fast, slow)) {
            fprintf(stderr, "disagree on '%.*s': jansson %s\n", (int)len, (const char *)buf,
                    slow ? "gave another value" : jerr.text);
            fail();
        }
        char *a = text_of(fast), *b = text_of(slow);
        assert_non_null(a);
        assert_non_null(b);
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "disagree on '%.*s': %s vs jansson's %s\n", (int)len,
                    (const char *)buf, a, b);
            fail();
        }
        free(a);
        free(b);
    }
    json_decref(fast);
    json_decref(slow);
    return answered;
}

static int agree_str(const char *s)
{
    return agree(s, strlen(s));
}

static void test_answers_common_bodies(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{}",
        " { } ",
        "{\"n\":1,\"pad\":\"abcdefghijklmnopqrstuvwxyz\"}",
        "{\"to\": \"a@example.com\", \"subject\": \"Hi\", \"retries\": 3}",
        "{\"a\": [1, 2, 3], \"b\": {\"c\": null, \"d\": true, \"e\": false}}",
        "{\"neg\": -42, \"zero\": 0, \"negzero\": -0, \"big\": 999999999999999999}",
        "{\"max\": 9223372036854775807, \"min\": -9223372036854775808}",
        "{\"r\": 1.5, \"e\": 1e10, \"E\": -2.5E-3, \"z\": 0.0, \"nz\": -0.0, \"x\": 1e+2}",
        "{\"tiny\": 4.9e-324, \"under\": 1e-400, \"pi\": 3.141592653589793238462643}",
        "{\"esc\": \"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}",
        "{\"u\": \"\\u00e9\\u4e2d\\ud83d\\ude00\\u0041\\u007f\"}",
        "{\"utf8\": \"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \x7f\"}",
        "{\"dup\": 1, \"other\": 2, \"dup\": 3}",
        "{\"\": \"empty key\", \"k\\u00e9y\": 1, \"k\\\"q\": 2}",
        "{\"nested\": [[[[{\"a\": [{}]}]]]], \"arr\": [], \"obj\": {}}",
        "\t\r\n{\t\"a\"\r:\n1\t}\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        assert_true(agree_str(bodies[i]));
}

static void test_leaves_the_rest_to_jansson(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "", " ", "[]", "[1]", "\"s\"", "42", "null", "true",
        "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}",
        "{\"a\":1}x", "{\"a\":1}{}", "{'a':1}", "{a:1}", "{\"a\":01}", "{\"a\":1.}",
        "{\"a\":.5}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":0x10}",
        "{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":NaN}",
        "{\"a\":Infinity}", "{\"a\":1e400}", "{\"a\":-1e400}",
        "{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}",
        "{\"a\":99999999999999999999999}",
        "{\"a\":\"\\u0000\"}", "{\"\\u0000\":1}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\'\"}", "{\"a\":\"tab\there\"}",
        "{\"a\":\"line\nbreak\"}", "{\"a\":\"unterminated}", "{\"a\":\"\\",
        "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xe0\x80\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc3\"}", "{\"a\":1}\xc3\xa9", "\xef\xbb\xbf{}", "{\"a\":[1,]}",
        "{\"a\":[,1]}", "{\"a\":[1 2]}", "{\"a\":[}", "{\"a\":{]}",
        "{\"a\":\"\\ud83d\\ude00\\ud83d\"}", "/* c */{}", "{}//",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        assert_false(agree_str(bodies[i]));
    /* a raw NUL byte, inside and outside a string */
    assert_false(agree("{\"a\":\"x\0y\"}", 11));
    assert_false(agree("{}\0", 3));
    assert_false(agree("{\"a\":1\0}", 8));
}

static void test_depth(void **state)
{
    (void)state;
    char buf[2 * DEPTH + 16];
    /* DEPTH levels of objects and arrays: answered; one more: jansson's */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        int levels = DEPTH + extra;
        buf[n++] = '{';
        memcpy(buf + n, "\"a\":", 4);
        n += 4;
        for (int i = 1; i < levels; i++)
            buf[n++] = '[';
        for (int i = 1; i < levels; i++)
            buf[n++] = ']';
        buf[n++] = '}';
        json_t *v = warren__json_fast_object(buf, n, DEPTH);
        if (extra)
            assert_null(v);
        else
            assert_non_null(v);
        json_decref(v);
    }
}

static void test_long_strings(void **state)
{
    (void)state;
    /* long enough that the decode buffer grows, escapes on both sides */
    size_t len = 100000;
    char *body = malloc(len + 64);
    assert_non_null(body);
    size_t n = 0;
    n += (size_t)sprintf(body, "{\"k\\n\":\"");
    for (size_t i = 0; n < len; i++)
        body[n++] = (char)(i % 7 == 0 ? '\\' : 'a' + i % 26);
    if (body[n - 1] == '\\')
        body[n - 1] = 'z';
    n += (size_t)sprintf(body + n, "\",\"plain\":\"%s\",\"\\u00e9\":[\"\\t\"]}", "xyz");
    /* "\a" is no escape: jansson refuses, and so does the fast path */
    agree(body, n);
    for (size_t i = 0; i < n; i++)
        if (body[i] == '\\' && body[i + 1] >= 'a' && body[i + 1] <= 'z' &&
            !strchr("bfnrt", body[i + 1]))
            body[i + 1] = 'n';
    assert_true(agree(body, n));
    free(body);
}

/* Each kind of special byte at every offset of a long string: the word-
 * at-a-time scan must stop wherever it is. */
static void test_special_byte_at_every_offset(void **state)
{
    (void)state;
    static const char *const specials[] = {"\\n", "\\\"", "\x01", "\x1f", "\x7f",
                                           "\xc3\xa9", "\xe2\x82\xac", "\xff", "\"", " "};
    char body[128];
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (int at = 0; at < 40; at++) {
            int n = snprintf(body, sizeof body, "{\"a\":\"%.*s%s%.*s\"}", at,
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", specials[k], 19,
                             "0123456789012345678");
            agree(body, (size_t)n);
        }
    }
}

/* Bodies made of JSON's pieces at random, then mutated: wherever they
 * land, the two must agree. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static void test_random_bodies(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "{", "}", "[", "]", ",", ":", " ", "\"k\"", "\"a b\"", "\"\\n\"", "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"", "\"\\ud800\"", "\"\xc3\xa9\"", "\"\xc3\"", "1", "-1", "0",
        "-0", "12345678901234567890", "1.5", "1e5", "-2.5E-3", "1e400", "01", "1.",
        "true", "false", "null", "tru", "\"", "\\", "\\u", "\t", "\n", "\x01", "\x7f",
        "\xff", "9223372036854775807", "9223372036854775808",
    };
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    char buf[512];
    int answered = 0;
    for (int round = 0; round < 200000; round++) {
        size_t n = 0;
        if (next_rand() % 4 != 0)
            buf[n++] = '{';
        int count = 1 + (int)(next_rand() % 24);
        for (int i = 0; i < count; i++) {
            /* mostly well-formed members, sometimes any piece */
            if (next_rand() % 3 != 0) {
                const char *key = pieces[7 + next_rand() % 7];
                const char *val = pieces[7 + next_rand() % (n_pieces - 7)];
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s:%s", i ? "," : "", key,
                                      val);
            } else {
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s",
                                      pieces[next_rand() % n_pieces]);
            }
            if (n > sizeof buf - 64)
                break;
        }
        if (next_rand() % 4 != 0)
            buf[n++] = '}';
        if (next_rand() % 3 == 0 && n > 0)
            buf[next_rand() % n] = (char)(next_rand() % 256); /* one byte anywhere */
        answered += agree(buf, n);
    }
    /* the generator must reach the fast path often enough to mean something */
    assert_true(answered > 1000);
}

static void test_locale_comma(void **state)
{
    (void)state;
    /* With a decimal comma, reals go to jansson (which swaps the point);
     * integers stay on the fast path. */
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
        skip();
    assert_false(agree_str("{\"r\": 1.5}"));
    assert_true(agree_str("{\"i\": 15}"));
    setlocale(LC_NUMERIC, "C");
    assert_true(agree_str("{\"r\": 1.5}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_common_bodies),
        cmocka_unit_test(test_leaves_the_rest_to_jansson),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_special_byte_at_every_offset),
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_locale_comma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
