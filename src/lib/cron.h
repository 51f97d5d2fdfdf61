/* Internal: cron expressions, parsed once and asked for their next time.
 *
 * DESIGN: an expression becomes one bit set per field (seconds, minutes,
 * hours, day of month, month, day of week), so matching a time is a few
 * bit tests and finding the next time skips whole months, days, hours and
 * minutes at once instead of walking second by second. Everything is UTC.
 *
 * The language is classic Vixie cron with an optional leading seconds
 * field: 6 fields "sec min hour dom mon dow", or the usual 5 (seconds are
 * then 0). A field is a comma-separated list of `*`, `N`, `A-B`, each with
 * an optional `/STEP`; `N/STEP` means N to the field's end. Months take
 * JAN-DEC and days SUN-SAT (any case); Sunday is 0 or 7. When both
 * day-of-month and day-of-week are restricted, a day matching either one
 * is enough; a field that starts with `*` (also `*` + step) counts as
 * unrestricted for that rule, as in Vixie cron. `?`, `L`, `W` and `#` are
 * refused with a message that names them. */
#ifndef WARREN_CRON_H
#define WARREN_CRON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* How far warren__cron_next() looks ahead before it gives up: long
 * enough for 29 February across a century year (2096 -> 2104). */
#define WARREN_CRON_SEARCH_YEARS 9

/* A parsed expression: a plain value, copy it freely. Bit N set means the
 * value N matches. */
struct warren_cron {
    uint64_t seconds;   /* bits 0..59 */
    uint64_t minutes;   /* bits 0..59 */
    uint32_t hours;     /* bits 0..23 */
    uint32_t mdays;     /* bits 1..31 */
    uint16_t months;    /* bits 1..12 */
    uint8_t wdays;      /* bits 0..6, Sunday 0 */
    uint8_t mday_star;  /* day-of-month field started with '*' */
    uint8_t wday_star;  /* day-of-week field started with '*' */
    uint8_t zero[3];    /* always 0: no padding, so memcmp compares values */
};

/* Parses `expr` into *out. Returns 0, or -1 with a one-line reason in
 * `why` (which names the field and the offending text). *out is only
 * written on success. */
int warren__cron_parse(struct warren_cron *out, const char *expr, char *why, size_t why_size);

/* Whether the Unix time `t` (UTC) matches. */
int warren__cron_matches(const struct warren_cron *c, time_t t);

/* The first matching time strictly after `after`, or -1 when none comes
 * within WARREN_CRON_SEARCH_YEARS years (e.g. "0 0 0 30 2 *", 30
 * February) or before the year 9999. */
time_t warren__cron_next(const struct warren_cron *c, time_t after);

/* Whether the expression can never fire: it restricts the day of month
 * only, to days none of its months has (30 February, 31 April). A pure
 * check of the fields, for config validation. */
int warren__cron_never(const struct warren_cron *c);

#endif
