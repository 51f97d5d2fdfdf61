/* log_format = "json": each line is the caller's fields object with the
 * line's own keys after it, exactly the text jansson writes for it (the
 * logger builds it with the fast parser and writer), in one write with
 * its newline. Also the text format's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <warren/log.h>

/* stderr goes to a temporary file while a test writes lines. */
static int saved_stderr = -1;
static FILE *capture;

static int redirect(void **state)
{
    (void)state;
    capture = tmpfile();
    if (!capture)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    return dup2(fileno(capture), STDERR_FILENO) < 0 ? -1 : 0;
}

static int restore(void **state)
{
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    fclose(capture);
    return 0;
}

/* The lines written since the last call, one string (new). */
static char *take_output(void)
{
    long end = lseek(STDERR_FILENO, 0, SEEK_CUR);
    static long from = 0;
    size_t n = (size_t)(end - from);
    char *buf = calloc(1, n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(STDERR_FILENO, buf, n, from), (ssize_t)n);
    from = end;
    return buf;
}

/* The line the logger wrote before it had a fast path: jansson parses the
 * fields (anything but an object becomes {}), sets the keys, dumps. */
static char *jansson_line(const char *fields, const char *ts, const char *msgid,
                          const char *msg)
{
    json_t *line = fields ? json_loads(fields, 0, NULL) : NULL;
    if (!json_is_object(line)) {
        json_decref(line);
        line = json_object();
    }
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string("info"));
    json_object_set_new(line, "pid", json_integer(getpid()));
    json_object_set_new(line, "role", json_string("worker 3"));
    json_object_set_new(line, "msgid", json_string(msgid));
    json_object_set_new(line, "msg", json_string(msg));
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    return text;
}

static void test_json_lines_equal_jansson(void **state)
{
    (void)state;
    warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_JSON, "worker 3");
    static const char *const fields[] = {
        NULL,
        "{\"id\":\"a-1\",\"worker\":\"send_email\",\"attempt\":2,\"duration_ms\":13}",
        "{\"error\":\"quote \\\" back \\\\ nl \\n caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"}",
        "{\"ratio\":0.25,\"n\":null,\"ok\":true,\"list\":[1,{\"a\":[]}]}", /* a real: jansson */
        "{\"msg\":\"the caller's\",\"ts\":1}",                          /* the line's keys win */
        "{\"dup\":1,\"dup\":2}",
        "[1,2]",            /* not an object: dropped */
        "{not json",        /* dropped */
        "  {\"spaced\" : 1 }  ",
    };
    static const char *const msgs[] = {"plain", "caf\xc3\xa9 \"quoted\"\t", "bad \xff utf-8"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        for (size_t m = 0; m < sizeof msgs / sizeof msgs[0]; m++) {
            warren_log_write(WARREN_LOG_INFO, "test.line", fields[i], "%s", msgs[m]);
            char *out = take_output();
            size_t len = strlen(out);
            assert_true(len > 1);
            assert_int_equal(out[len - 1], '\n');
            assert_null(memchr(out, '\n', len - 1)); /* one line */
            out[len - 1] = '\0';
            json_t *parsed = json_loads(out, 0, NULL);
            assert_non_null(parsed);
            const char *ts = json_string_value(json_object_get(parsed, "ts"));
            assert_non_null(ts);
            char *want = jansson_line(fields[i], ts, "test.line", msgs[m]);
            assert_non_null(want);
            if (strcmp(out, want) != 0) {
                fprintf(stdout, "got  %s\nwant %s\n", out, want);
                fail();
            }
            free(want);
            json_decref(parsed);
            free(out);
        }
    }
}

static void test_text_line(void **state)
{
    (void)state;
    warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "cli");
    warren_log_write(WARREN_LOG_WARN, "test.text", "{\"n\":1}", "hello %d", 7);
    char *out = take_output();
    char want[64];
    snprintf(want, sizeof want, "warn  [%d cli] test.text: hello 7 {\"n\":1}\n", (int)getpid());
    assert_non_null(strstr(out, want));
    /* below the level: nothing */
    warren_log_write(WARREN_LOG_DEBUG, "test.text", NULL, "quiet");
    free(out);
    out = take_output();
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_lines_equal_jansson),
        cmocka_unit_test(test_text_line),
    };
    return cmocka_run_group_tests(tests, redirect, restore);
}
