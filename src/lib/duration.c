/* Durations and byte sizes as people write them in configs and commands.
 *
 * Both parsers take a whole number followed by an optional unit and
 * nothing else: no sign, no spaces, no fractions, so "1.5h" is refused
 * rather than silently read as 1 h. Overflow is an error, never a wrap. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "config.h"

struct unit {
    const char *suffix;
    long long factor;
};

/* Longest suffix first where one is a prefix of another ("ms" before "m"). */
static const struct unit duration_units[] = {
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
    {"d", 24 * 60 * 60 * 1000LL},
    {"", 1000},  /* a bare number counts seconds */
    {NULL, 0},
};

static const struct unit byte_units[] = {
    {"KiB", 1LL << 10},
    {"MiB", 1LL << 20},
    {"GiB", 1LL << 30},
    {"TiB", 1LL << 40},
    {"", 1},
    {NULL, 0},
};

/* Reads the leading digits of `text`; returns where they end, or NULL when
 * there are none or the number does not fit. */
static const char *scan_digits(const char *text, long long *value, int *overflow)
{
    const char *p = text;
    long long v = 0;
    *overflow = 0;
    while (*p >= '0' && *p <= '9') {
        int d = *p - '0';
        if (v > (LLONG_MAX - d) / 10)
            *overflow = 1;
        else
            v = v * 10 + d;
        p++;
    }
    if (p == text)
        return NULL;
    *value = v;
    return p;
}

/* Number + unit from `units`. Returns 0, -1 when malformed, -2 on overflow. */
static int parse_scaled(const char *text, const struct unit *units, long long *out)
{
    long long v;
    int overflow;
    const char *end;

    if (!text || !(end = scan_digits(text, &v, &overflow)))
        return -1;
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcmp(end, u->suffix) != 0)
            continue;
        if (overflow || v > LLONG_MAX / u->factor)
            return -2;
        *out = v * u->factor;
        return 0;
    }
    return -1;
}

static void set_why(char *why, size_t size, const char *fmt, const char *text)
{
    if (why && size)
        snprintf(why, size, fmt, text ? text : "");
}

int warren__parse_duration(const char *text, long long *ms, char *why, size_t why_size)
{
    int rc = parse_scaled(text, duration_units, ms);
    if (rc == -2)
        set_why(why, why_size, "duration '%.40s' is too large", text);
    else if (rc < 0)
        set_why(why, why_size,
                "bad duration '%.40s' (use 500ms, 30s, 5m, 2h, 1d or whole seconds)", text);
    return rc < 0 ? -1 : 0;
}

int warren__parse_bytes(const char *text, long long *bytes, char *why, size_t why_size)
{
    int rc = parse_scaled(text, byte_units, bytes);
    if (rc == -2)
        set_why(why, why_size, "size '%.40s' is too large", text);
    else if (rc < 0)
        set_why(why, why_size,
                "bad size '%.40s' (use a number of bytes, or 64KiB, 512MiB, 1GiB)", text);
    return rc < 0 ? -1 : 0;
}

const char *warren__format_duration(long long ms, char *buf, size_t size)
{
    /* The largest unit that divides the value exactly, so the text reads
     * back to the same number of milliseconds. */
    static const struct unit largest_first[] = {
        {"d", 24 * 60 * 60 * 1000LL}, {"h", 60 * 60 * 1000}, {"m", 60 * 1000}, {"s", 1000},
    };
    const char *sign = "";
    unsigned long long v = (unsigned long long)ms;

    if (ms < 0) {
        sign = "-";
        v = 0ULL - v;
    }
    if (v == 0) {
        snprintf(buf, size, "0s");
        return buf;
    }
    for (size_t i = 0; i < sizeof largest_first / sizeof largest_first[0]; i++) {
        unsigned long long f = (unsigned long long)largest_first[i].factor;
        if (v % f == 0) {
            snprintf(buf, size, "%s%llu%s", sign, v / f, largest_first[i].suffix);
            return buf;
        }
    }
    snprintf(buf, size, "%s%llums", sign, v);
    return buf;
}
