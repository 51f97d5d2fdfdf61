/* Fuzz target for warren__parse_duration and warren__parse_bytes: the
 * input is the text (a NUL is added; bytes after an embedded NUL are
 * ignored, as C strings do).
 *
 * Checks besides crashes: a success gives a value >= 0 and leaves `why`
 * alone; a failure writes a message that fits its buffer; and a parsed
 * duration written back by warren__format_duration parses to the same
 * milliseconds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

static void check(int ok, const char *what, const char *input)
{
    if (!ok) {
        fprintf(stderr, "fuzz_duration: broken promise: %s (input '%s')\n", what, input);
        abort();
    }
}

static void check_duration(const char *text)
{
    long long ms = -1, again = -1;
    char why[64] = "", buf[48], why2[64];
    if (warren__parse_duration(text, &ms, why, sizeof why) == 0) {
        check(ms >= 0, "a duration is not negative", text);
        check(why[0] == '\0', "success leaves why alone", text);
        warren__format_duration(ms, buf, sizeof buf);
        check(warren__parse_duration(buf, &again, why2, sizeof why2) == 0,
              "a formatted duration parses", text);
        check(again == ms, "format and parse round-trip", text);
    } else {
        check(why[0] != '\0' && memchr(why, '\0', sizeof why) != NULL, "failure says why",
              text);
    }
    /* Small and absent buffers for the message are fine too. */
    char tiny[4];
    warren__parse_duration(text, &ms, tiny, sizeof tiny);
    warren__parse_duration(text, &ms, NULL, 0);
}

static void check_bytes(const char *text)
{
    long long n = -1;
    char why[64] = "";
    if (warren__parse_bytes(text, &n, why, sizeof why) == 0) {
        check(n >= 0, "a size is not negative", text);
        check(why[0] == '\0', "success leaves why alone", text);
    } else {
        check(why[0] != '\0', "failure says why", text);
    }
    warren__parse_bytes(text, &n, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_duration(text);
    check_bytes(text);
    free(text);

    /* Any value formats and reads back (negative ones format with a sign
     * and are refused, which is what a config wants). */
    if (size >= 8) {
        long long v;
        char buf[48], why[64];
        memcpy(&v, data, sizeof v);
        warren__format_duration(v, buf, sizeof buf);
        long long back = -1;
        if (v >= 0)
            check(warren__parse_duration(buf, &back, why, sizeof why) == 0 && back == v,
                  "every non-negative duration round-trips", buf);
        else
            check(warren__parse_duration(buf, &back, why, sizeof why) != 0,
                  "negative durations are refused", buf);
    }
    return 0;
}
