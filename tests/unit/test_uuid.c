/* Unit tests for uuid.c: format, version and variant bits, uniqueness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <warren/producer.h>

#define COUNT 2000

static void assert_uuid_v4(const char *s)
{
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
            fail_msg("not lowercase hex at %d: %s", i, s);
    }
    assert_int_equal(s[14], '4');                 /* version 4 */
    assert_non_null(strchr("89ab", s[19]));      /* RFC 4122 variant */
}

static int compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_format(void **state)
{
    (void)state;
    char buf[37];
    memset(buf, 'Z', sizeof buf);
    warren_uuid(buf);
    assert_uuid_v4(buf);
}

static void test_unique(void **state)
{
    (void)state;
    char (*ids)[37] = malloc(sizeof *ids * COUNT);
    assert_non_null(ids);
    for (int i = 0; i < COUNT; i++) {
        warren_uuid(ids[i]);
        assert_uuid_v4(ids[i]);
    }
    qsort(ids, COUNT, sizeof *ids, compare);
    for (int i = 1; i < COUNT; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
