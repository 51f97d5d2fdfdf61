/* When recurring jobs fire: pure functions (see schedule.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "schedule.h"

#define STATE_VERSION 1

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

warren_status warren__sched_def_init(struct warren_sched_def *d,
                                     const struct warren_schedule_conf *conf, warren_error *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", conf->name);
    snprintf(d->worker, sizeof d->worker, "%s", conf->worker);
    d->max_count = conf->max_count;
    d->priority = conf->priority;
    if (conf->cron) {
        char why[256];
        d->kind = WARREN_SCHED_CRON;
        if (warren__cron_parse(&d->cron, conf->cron, why, sizeof why) != 0)
            return warren_error_set(err, WARREN_ECONFIG, "schedule %s: %s", conf->name, why);
    } else {
        d->kind = WARREN_SCHED_EVERY;
        d->every_ms = conf->every_ms;
        if (d->every_ms < 1000)
            return warren_error_set(err, WARREN_ECONFIG,
                                    "schedule %s: every must be at least 1s", conf->name);
    }
    d->args = conf->args ? json_incref(conf->args) : json_object();
    if (!d->args)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    return WARREN_OK;
}

void warren__sched_def_clear(struct warren_sched_def *d)
{
    if (!d)
        return;
    json_decref(d->args);
    d->args = NULL;
}

long long warren__sched_next(const struct warren_sched_def *d, long long after_ms)
{
    if (d->kind == WARREN_SCHED_EVERY)
        return (floor_div(after_ms, d->every_ms) + 1) * d->every_ms;
    /* Cron fires at whole seconds: the first one after after_ms is the
     * first one after the second after_ms falls in. */
    time_t t = warren__cron_next(&d->cron, (time_t)floor_div(after_ms, 1000));
    return t < 0 ? -1 : (long long)t * 1000;
}

long long warren__sched_latest(const struct warren_sched_def *d, long long after_ms,
                               long long upto_ms)
{
    if (upto_ms <= after_ms)
        return -1;
    if (d->kind == WARREN_SCHED_EVERY) {
        long long t = floor_div(upto_ms, d->every_ms) * d->every_ms;
        return t > after_ms ? t : -1;
    }
    long long upto = floor_div(upto_ms, 1000);
    time_t first = warren__cron_next(&d->cron, (time_t)floor_div(after_ms, 1000));
    if (first < 0 || first > upto)
        return -1;
    /* The largest x in [first, upto] with a match in [x, upto] is the last
     * match; "a match in [x, upto]" only gets rarer as x grows. */
    long long lo = first, hi = upto;
    while (lo < hi) {
        long long mid = lo + (hi - lo + 1) / 2;
        time_t n = warren__cron_next(&d->cron, (time_t)(mid - 1));
        if (n >= 0 && n <= upto)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo * 1000;
}

int warren__sched_exhausted(const struct warren_sched_def *d, const struct warren_sched_state *st)
{
    return d->max_count > 0 && st->count >= d->max_count;
}

static long long counted_from(const struct warren_sched_state *st)
{
    return st->last_ms > st->since_ms ? st->last_ms : st->since_ms;
}

long long warren__sched_due(const struct warren_sched_def *d, const struct warren_sched_state *st,
                            long long now_ms)
{
    long long from = counted_from(st);
    if (from < 0 || warren__sched_exhausted(d, st))
        return -1;
    return warren__sched_latest(d, from, now_ms);
}

long long warren__sched_next_due(const struct warren_sched_def *d,
                                 const struct warren_sched_state *st)
{
    long long from = counted_from(st);
    if (from < 0 || warren__sched_exhausted(d, st))
        return -1;
    return warren__sched_next(d, from);
}

void warren__sched_fired(struct warren_sched_state *st, long long t)
{
    st->last_ms = t;
    st->count++;
}

/* ---- times and ids ------------------------------------------------------ */

const char *warren__sched_format_time(long long ms, char *buf, size_t size)
{
    long long secs = floor_div(ms, 1000);
    int frac = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    char day[32];
    if (!gmtime_r(&t, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, size, "?");
        return buf;
    }
    if (frac)
        snprintf(buf, size, "%s.%03dZ", day, frac);
    else
        snprintf(buf, size, "%sZ", day);
    return buf;
}

/* Reads exactly n digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int expect(const char **s, char ch)
{
    if (**s != ch)
        return -1;
    (*s)++;
    return 0;
}

int warren__sched_parse_time(const char *text, long long *ms)
{
    const char *s = text;
    int y, mo, d, h, mi, sec, frac = 0;
    if (digits(&s, 4, &y) || expect(&s, '-') || digits(&s, 2, &mo) || expect(&s, '-') ||
        digits(&s, 2, &d) || expect(&s, 'T') || digits(&s, 2, &h) || expect(&s, ':') ||
        digits(&s, 2, &mi) || expect(&s, ':') || digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        s++;
        int n = 0;
        while (isdigit((unsigned char)s[n]) && n < 3)
            n++;
        if (n == 0 || digits(&s, n, &frac))
            return -1;
        for (int i = n; i < 3; i++)
            frac *= 10;
    }
    if (expect(&s, 'Z') || *s)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* 30 February rolled over */
        return -1;
    *ms = (long long)t * 1000 + frac;
    return 0;
}

const char *warren__sched_message_id(const char *name, long long t, char *buf, size_t size)
{
    char when[40];
    snprintf(buf, size, "%s@%s", name, warren__sched_format_time(t, when, sizeof when));
    return buf;
}

/* ---- the state document -------------------------------------------------- */

json_t *warren__sched_doc_new(void)
{
    return json_pack("{s:i, s:{}}", "version", STATE_VERSION, "schedules");
}

json_t *warren__sched_doc_parse(const void *body, size_t len, char *why, size_t why_size)
{
    json_error_t jerr;
    why[0] = '\0';
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(why, why_size, "not JSON: %s", jerr.text);
    } else if (!json_is_object(doc)) {
        snprintf(why, why_size, "not a JSON object");
    } else if (!json_is_object(json_object_get(doc, "schedules"))) {
        snprintf(why, why_size, "no \"schedules\" object");
    } else {
        return doc;
    }
    json_decref(doc);
    return warren__sched_doc_new();
}

static int get_time(const json_t *entry, const char *key, long long *ms)
{
    const json_t *v = json_object_get(entry, key);
    *ms = -1;
    if (!v || json_is_null(v))
        return 0;
    return json_is_string(v) ? warren__sched_parse_time(json_string_value(v), ms) : -1;
}

int warren__sched_doc_get(const json_t *doc, const char *name, struct warren_sched_state *st)
{
    const json_t *entry = json_object_get(json_object_get(doc, "schedules"), name);
    const json_t *count = json_object_get(entry, "count");
    long long gen = -1;
    st->last_ms = st->since_ms = -1;
    st->count = 0;
    st->gen = 0;
    if (!json_is_object(entry) || !json_is_integer(count) || json_integer_value(count) < 0 ||
        get_time(entry, "last", &st->last_ms) < 0 || get_time(entry, "since", &st->since_ms) < 0 ||
        (st->last_ms < 0 && st->since_ms < 0)) {
        st->last_ms = st->since_ms = -1;
        return 0;
    }
    st->count = json_integer_value(count);
    if (get_time(entry, "gen", &gen) == 0 && gen > 0)
        st->gen = gen;
    return 1;
}

static json_t *time_or_null(long long ms)
{
    char buf[40];
    return ms < 0 ? json_null() : json_string(warren__sched_format_time(ms, buf, sizeof buf));
}

int warren__sched_doc_set(json_t *doc, const char *name, const struct warren_sched_state *st)
{
    json_t *all = json_object_get(doc, "schedules");
    if (!json_is_object(all)) {
        all = json_object();
        if (!all || json_object_set_new(doc, "schedules", all) != 0)
            return -1;
    }
    json_t *entry = json_pack("{s:o, s:o, s:I}", "last", time_or_null(st->last_ms), "since",
                              time_or_null(st->since_ms), "count", (json_int_t)st->count);
    if (!entry)
        return -1;
    if (st->gen > 0 && json_object_set_new(entry, "gen", time_or_null(st->gen)) != 0) {
        json_decref(entry);
        return -1;
    }
    return json_object_set_new(all, name, entry);
}

/* A host name that is not UTF-8 must not stop the state from being
 * written. */
static json_t *holder_value(const char *holder)
{
    json_t *v = json_string(holder);
    return v ? v : json_string("?");
}

char *warren__sched_doc_dump(json_t *doc, const char *holder, long long now_ms)
{
    char when[40];
    /* A newer writer's version number stays: its keys are kept too. */
    if ((!json_object_get(doc, "version") &&
         json_object_set_new(doc, "version", json_integer(STATE_VERSION)) != 0) ||
        json_object_set_new(doc, "holder", holder_value(holder)) != 0 ||
        json_object_set_new(doc, "updated",
                            json_string(warren__sched_format_time(now_ms, when, sizeof when))) != 0)
        return NULL;
    return json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
}
