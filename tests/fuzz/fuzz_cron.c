/* Fuzz target for warren__cron_parse and warren__cron_next.
 *
 * Input: the bytes up to the first NUL (or all of them) are the
 * expression, so the seed corpus is plain text. The rest, when present,
 * seeds one more starting time for the search.
 *
 * Besides crashes, the target checks what cron.h promises: a refusal
 * says why in the usual form and leaves the result untouched; an accepted
 * expression has every field in range and not empty; the next time is
 * strictly after the start and matches, nothing in between matches (walked
 * when the gap is short), and asking again from just before it gives it
 * again; an expression that can never fire never finds a time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cron.h"

#define WALK_MAX 5000 /* seconds walked one by one to check for a missed match */

static void check(int ok, const char *what, const char *expr)
{
    if (!ok) {
        fprintf(stderr, "fuzz_cron: broken promise: %s (expression '%s')\n", what, expr);
        abort();
    }
}

static void check_fields(const struct warren_cron *c, const char *expr)
{
    check(c->seconds && c->seconds < (1ULL << 60), "seconds in 0-59", expr);
    check(c->minutes && c->minutes < (1ULL << 60), "minutes in 0-59", expr);
    check(c->hours && c->hours < (1U << 24), "hours in 0-23", expr);
    check(c->mdays && !(c->mdays & 1), "days of month in 1-31", expr);
    check(c->months && !(c->months & 1) && c->months < (1U << 13), "months in 1-12", expr);
    check(c->wdays && c->wdays < (1U << 7), "days of week in 0-6", expr);
}

static void check_next(const struct warren_cron *c, time_t after, const char *expr)
{
    time_t r = warren__cron_next(c, after);
    if (r == -1)
        return;
    check(r > after, "next is strictly after", expr);
    check(warren__cron_matches(c, r), "next matches", expr);
    check(warren__cron_next(c, r - 1) == r, "next from just before gives it again", expr);
    if (r - after <= WALK_MAX)
        for (time_t t = after + 1; t < r; t++)
            check(!warren__cron_matches(c, t), "no match skipped", expr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;
    char *expr = malloc(len + 1);
    if (!expr)
        return 0;
    if (len)
        memcpy(expr, data, len);
    expr[len] = '\0';

    struct warren_cron c, again;
    char why[256] = "";
    memset(&c, 0xa5, sizeof c);
    struct warren_cron untouched = c;
    int rc = warren__cron_parse(&c, expr, why, sizeof why);
    if (rc != 0) {
        check(rc == -1, "parse returns 0 or -1", expr);
        check(strncmp(why, "cron expression '", 17) == 0, "a refusal says why", expr);
        check(memcmp(&c, &untouched, sizeof c) == 0, "a refusal leaves the result alone", expr);
        free(expr);
        return 0;
    }
    check_fields(&c, expr);
    check(warren__cron_parse(&again, expr, NULL, 0) == 0 && memcmp(&c, &again, sizeof c) == 0,
          "parsing is deterministic", expr);

    /* A few fixed starts (epoch, a leap day, a century year, a year end)
     * and one from the rest of the input, within 1970..2999. */
    time_t starts[6] = {0, 1835395199 /* 2028-02-28T23:59:59Z */,
                        4102444799 /* 2099-12-31T23:59:59Z */,
                        1798761599 /* 2026-12-31T23:59:59Z */, -1, 0};
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = nul ? len + 1 : size; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    starts[5] = (time_t)(h % 32503680000ULL);
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        check_next(&c, starts[i], expr);
        if (warren__cron_never(&c))
            check(warren__cron_next(&c, starts[i]) == -1, "a never-firing expression never fires",
                  expr);
    }
    free(expr);
    return 0;
}
