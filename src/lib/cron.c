/* Cron expressions: parsing into bit sets and finding the next time.
 * See cron.h for the language. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cron.h"

#define DAY_SECONDS 86400
/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years we handle. */
#define MIN_TIME (-62167219200LL)
#define MAX_TIME 253402300799LL

_Static_assert(sizeof(struct warren_cron) == 32, "struct warren_cron has no padding");

enum { F_SEC, F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

struct field_spec {
    const char *name;
    int lo, hi;                 /* values accepted in the text */
    int star_hi;                /* where `*` and `N/STEP` end */
    const char *const *names;   /* three-letter names for lo.., or NULL */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct field_spec specs[F_COUNT] = {
    {"second", 0, 59, 59, NULL},
    {"minute", 0, 59, 59, NULL},
    {"hour", 0, 23, 23, NULL},
    {"day-of-month", 1, 31, 31, NULL},
    {"month", 1, 12, 12, month_names},
    {"day-of-week", 0, 7, 6, day_names}, /* 7 is Sunday too */
};

/* What one field is being parsed with, for messages. */
struct parse_ctx {
    const char *expr;
    const struct field_spec *spec;
    const char *text;
    size_t len;
    char *why;
    size_t why_size;
};

static int fail(struct parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *p, const char *fmt, ...)
{
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (p->why && p->why_size)
        snprintf(p->why, p->why_size, "cron expression '%.80s': %s field '%.*s': %s", p->expr,
                 p->spec->name, (int)(p->len > 40 ? 40 : p->len), p->text, reason);
    return -1;
}

/* The features of other cron dialects we refuse, named so the user knows
 * what to change. `ch` is the character found where a value was due. */
static int fail_unsupported(struct parse_ctx *p, char ch)
{
    switch (toupper((unsigned char)ch)) {
    case '?':
        return fail(p, "'?' is not supported (use '*')");
    case 'L':
        return fail(p, "'L' (last day) is not supported");
    case 'W':
        return fail(p, "'W' (nearest weekday) is not supported");
    case '#':
        return fail(p, "'#' (nth weekday of the month) is not supported");
    default:
        if (isprint((unsigned char)ch))
            return fail(p, "unexpected '%c'", ch);
        return fail(p, "unexpected character 0x%02x", (unsigned char)ch);
    }
}

/* Reads one value (a number or, where the field has them, a name) at *s
 * and advances *s past it. */
static int read_value(struct parse_ctx *p, const char **s, const char *end, int *out)
{
    const char *q = *s;
    if (q < end && isdigit((unsigned char)*q)) {
        long v = 0;
        while (q < end && isdigit((unsigned char)*q)) {
            if (v <= p->spec->hi)
                v = v * 10 + (*q - '0');
            q++;
        }
        if (v < p->spec->lo || v > p->spec->hi)
            return fail(p, "%.*s is out of range %d-%d", (int)(q - *s > 20 ? 20 : q - *s), *s,
                        p->spec->lo, p->spec->hi);
        if (q < end && isalpha((unsigned char)*q))
            return fail_unsupported(p, *q);
        *s = q;
        *out = (int)v;
        return 0;
    }
    if (q < end && isalpha((unsigned char)*q)) {
        const char *start = q;
        while (q < end && isalpha((unsigned char)*q))
            q++;
        size_t n = (size_t)(q - start);
        for (int i = 0; p->spec->names && p->spec->names[i]; i++) {
            if (n == 3 && strncasecmp(start, p->spec->names[i], 3) == 0) {
                *s = q;
                *out = p->spec->lo + i;
                return 0;
            }
        }
        if (toupper((unsigned char)start[0]) == 'L' || toupper((unsigned char)start[0]) == 'W')
            if (n <= 2 && strspn(start, "LWlw") >= n)
                return fail_unsupported(p, start[n - 1]);
        if (p->spec->names)
            return fail(p, "unknown name '%.*s' (use %s-%s)", (int)(n > 20 ? 20 : n), start,
                        p->spec->names[0],
                        p->spec->names[p->spec->hi - p->spec->lo - (p->spec->hi == 7)]);
        return fail(p, "'%.*s' is not a number", (int)(n > 20 ? 20 : n), start);
    }
    if (q >= end)
        return fail(p, "a value is missing");
    return fail_unsupported(p, *q);
}

/* One list item: `*`, `N`, `A-B`, each with an optional `/STEP`. */
static int parse_item(struct parse_ctx *p, const char *s, const char *end, uint64_t *bits)
{
    int lo, hi, step = 1, single = 0;
    if (s == end)
        return fail(p, "empty list item");
    if (*s == '*') {
        lo = p->spec->lo;
        hi = p->spec->star_hi;
        s++;
    } else {
        if (read_value(p, &s, end, &lo) < 0)
            return -1;
        hi = lo;
        single = 1;
        if (s < end && *s == '-') {
            s++;
            if (read_value(p, &s, end, &hi) < 0)
                return -1;
            if (hi < lo)
                return fail(p, "range %d-%d goes backwards", lo, hi);
            single = 0;
        }
    }
    if (s < end && *s == '/') {
        s++;
        if (s == end || !isdigit((unsigned char)*s))
            return s == end ? fail(p, "a step is missing after '/'") : fail_unsupported(p, *s);
        const char *digits = s;
        long v = 0;
        while (s < end && isdigit((unsigned char)*s)) {
            if (v <= p->spec->hi)
                v = v * 10 + (*s - '0');
            s++;
        }
        if (v < 1)
            return fail(p, "step must be at least 1");
        if (v > p->spec->hi)
            return fail(p, "step %.*s is larger than the field (at most %d)",
                        (int)(s - digits > 20 ? 20 : s - digits), digits, p->spec->hi);
        step = (int)v;
        if (single) /* N/STEP: from N to the end (7/STEP is Sunday alone) */
            hi = lo > p->spec->star_hi ? lo : p->spec->star_hi;
    }
    if (s != end)
        return fail_unsupported(p, *s);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;
}

static int parse_field(struct parse_ctx *p, uint64_t *bits)
{
    const char *s = p->text, *end = p->text + p->len;
    *bits = 0;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        if (parse_item(p, s, item_end, bits) < 0)
            return -1;
        if (!comma)
            break;
        s = comma + 1;
    }
    return 0;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Splits expr into at most 7 fields; returns how many there were. */
static int split(const char *expr, const char **starts, size_t *lens)
{
    int n = 0;
    for (const char *s = expr; *s;) {
        while (is_space(*s))
            s++;
        if (!*s)
            break;
        const char *start = s;
        while (*s && !is_space(*s))
            s++;
        if (n < 7) {
            starts[n] = start;
            lens[n] = (size_t)(s - start);
        }
        n++;
    }
    return n;
}

int warren__cron_parse(struct warren_cron *out, const char *expr, char *why, size_t why_size)
{
    const char *starts[7];
    size_t lens[7];
    int n = split(expr, starts, lens);
    if (n != 5 && n != 6) {
        if (why && why_size)
            snprintf(why, why_size, "cron expression '%.80s' must have 5 or 6 fields, not %d",
                     expr, n);
        return -1;
    }
    uint64_t bits[F_COUNT];
    int first = 0;
    if (n == 5) {
        bits[F_SEC] = 1; /* second 0 */
        first = F_MIN;
    }
    for (int f = first; f < F_COUNT; f++) {
        struct parse_ctx p = {expr, &specs[f], starts[f - first], lens[f - first], why,
                              why_size};
        if (parse_field(&p, &bits[f]) < 0)
            return -1;
    }
    if (bits[F_WDAY] & (1ULL << 7))
        bits[F_WDAY] = (bits[F_WDAY] | 1) & 0x7f; /* 7 is Sunday */
    memset(out, 0, sizeof *out);
    out->seconds = bits[F_SEC];
    out->minutes = bits[F_MIN];
    out->hours = (uint32_t)bits[F_HOUR];
    out->mdays = (uint32_t)bits[F_MDAY];
    out->months = (uint16_t)bits[F_MON];
    out->wdays = (uint8_t)bits[F_WDAY];
    out->mday_star = starts[F_MDAY - first][0] == '*';
    out->wday_star = starts[F_WDAY - first][0] == '*';
    return 0;
}

/* ---- calendar ---------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms: exact for every year we handle, no tables). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long long y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : n[m - 1];
}

static int weekday(long long days)
{
    int w = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    return w < 0 ? w + 7 : w;
}

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int day_matches(const struct warren_cron *c, long long days, int mday)
{
    int dom = (c->mdays >> mday) & 1;
    int dow = (c->wdays >> weekday(days)) & 1;
    /* Vixie's rule: both restricted means either one is enough. */
    if (c->mday_star || c->wday_star)
        return dom && dow;
    return dom || dow;
}

int warren__cron_matches(const struct warren_cron *c, time_t t)
{
    long long days = floor_div((long long)t, DAY_SECONDS);
    long long secs = (long long)t - days * DAY_SECONDS;
    long long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    return ((c->months >> m) & 1) && day_matches(c, days, d) &&
           ((c->hours >> (secs / 3600)) & 1) && ((c->minutes >> (secs / 60 % 60)) & 1) &&
           ((c->seconds >> (secs % 60)) & 1);
}

/* The lowest set bit at or above `from` (up to bit `max`), or -1. */
static int next_bit(uint64_t bits, int from, int max)
{
    for (int b = from; b <= max; b++)
        if ((bits >> b) & 1)
            return b;
    return -1;
}

/* The position being searched: a calendar date and a time of day. */
struct cursor {
    long long y;
    int mon, mday, hour, min, sec;
};

static void next_month(struct cursor *k)
{
    k->mday = 1;
    k->hour = k->min = k->sec = 0;
    if (++k->mon > 12) {
        k->mon = 1;
        k->y++;
    }
}

static void next_day(struct cursor *k)
{
    k->hour = k->min = k->sec = 0;
    if (++k->mday > days_in_month(k->y, k->mon)) {
        k->mday = 1;
        if (++k->mon > 12) {
            k->mon = 1;
            k->y++;
        }
    }
}

/* Moves to the first matching time of day at or after the cursor's, on
 * the cursor's day. Returns 0 when there is one, -1 (cursor on the next
 * day) when the day has none left. */
static int settle_time(const struct warren_cron *c, struct cursor *k)
{
    for (;;) {
        int h = next_bit(c->hours, k->hour, 23);
        if (h < 0) {
            next_day(k);
            return -1;
        }
        if (h != k->hour) {
            k->hour = h;
            k->min = k->sec = 0;
        }
        int mi = next_bit(c->minutes, k->min, 59);
        if (mi < 0) {
            k->min = k->sec = 0;
            if (++k->hour > 23) {
                next_day(k);
                return -1;
            }
            continue;
        }
        if (mi != k->min) {
            k->min = mi;
            k->sec = 0;
        }
        int s = next_bit(c->seconds, k->sec, 59);
        if (s < 0) {
            k->sec = 0;
            if (++k->min > 59) {
                k->min = 0;
                if (++k->hour > 23) {
                    next_day(k);
                    return -1;
                }
            }
            continue;
        }
        k->sec = s;
        return 0;
    }
}

time_t warren__cron_next(const struct warren_cron *c, time_t after)
{
    long long t = (long long)after;
    if (t >= MAX_TIME)
        return -1;
    if (t < MIN_TIME)
        t = MIN_TIME - 1;
    t++;
    long long days = floor_div(t, DAY_SECONDS);
    long long secs = t - days * DAY_SECONDS;
    struct cursor k;
    civil_from_days(days, &k.y, &k.mon, &k.mday);
    k.hour = (int)(secs / 3600);
    k.min = (int)(secs / 60 % 60);
    k.sec = (int)(secs % 60);
    long long limit = k.y + WARREN_CRON_SEARCH_YEARS;
    if (limit > 9999)
        limit = 9999;
    while (k.y <= limit) {
        if (!((c->months >> k.mon) & 1)) {
            next_month(&k);
            continue;
        }
        days = days_from_civil(k.y, k.mon, k.mday);
        if (!day_matches(c, days, k.mday)) {
            next_day(&k);
            continue;
        }
        if (settle_time(c, &k) < 0)
            continue;
        return (time_t)(days * DAY_SECONDS + k.hour * 3600 + k.min * 60 + k.sec);
    }
    return -1;
}

int warren__cron_never(const struct warren_cron *c)
{
    /* With both day fields restricted, any day of a matching weekday
     * will do; otherwise the day of month must exist in some month. */
    if (!c->mday_star && !c->wday_star)
        return 0;
    static const int longest[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        if (!((c->months >> m) & 1))
            continue;
        for (int d = 1; d <= longest[m - 1]; d++)
            if ((c->mdays >> d) & 1)
                return 0;
    }
    return 1;
}
