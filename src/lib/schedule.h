/* Internal: when recurring jobs fire, as pure functions.
 *
 * DESIGN: everything the scheduler decides lives here, apart from the
 * broker and the clock, so unit tests can drive it with made-up times:
 * the next fire after a time, the most recent fire in a window (the
 * catch-up rule), what is due now given what the shared state says, ids,
 * times in RFC 3339, and the state document kept in the broker.
 * src/warrend/scheduler.c does the talking and the lock.
 *
 * Times are Unix milliseconds (UTC). `every` fires at the multiples of
 * its period since the Unix epoch; cron fires at whole seconds.
 *
 * The rules (SPEC "Scheduling"): a schedule fires the most recent of the
 * fire times after its last fire, never older ones (missed fires while no
 * host held the lock are not replayed, except the most recent one); a
 * schedule never fired counts from when a holder first saw it (`since`),
 * so its very first start fires nothing from the past; with max_count it
 * stops after that many fires, counted in the shared state. */
#ifndef WARREN_SCHEDULE_H
#define WARREN_SCHEDULE_H

#include <stddef.h>
#include <jansson.h>
#include <warren/error.h>
#include "config.h"
#include "cron.h"

enum warren_sched_kind { WARREN_SCHED_EVERY = 0, WARREN_SCHED_CRON = 1 };

/* One schedule as the scheduler runs it. */
struct warren_sched_def {
    char name[WARREN_NAME_MAX];
    char worker[WARREN_NAME_MAX];
    enum warren_sched_kind kind;
    long long every_ms;        /* EVERY: the period, >= 1000 */
    struct warren_cron cron;   /* CRON */
    long long max_count;       /* 0 = unlimited */
    int priority;
    json_t *args;              /* owned reference to a JSON object */
};

/* What outlives a holder, per schedule. */
struct warren_sched_state {
    long long last_ms;   /* last fire time, -1 when never fired */
    long long since_ms;  /* when a holder first saw the schedule, -1 unknown */
    long long count;     /* fires so far */
    long long gen;       /* runtime schedules: the definition's created_at (ms), which
                            tells a re-added schedule from an old one of the same name;
                            0 for config schedules */
};

/* Fills *d from a config entry (parses its cron; takes a reference to its
 * args). Returns WARREN_OK, or WARREN_ECONFIG with "FILE:LINE"-less text
 * in err (the config loader has already checked it, so only a config
 * built by hand fails). Release with warren__sched_def_clear(). */
warren_status warren__sched_def_init(struct warren_sched_def *d,
                                     const struct warren_schedule_conf *conf, warren_error *err);
void warren__sched_def_clear(struct warren_sched_def *d);

/* The first fire time strictly after `after_ms`, or -1 when there is none
 * (a cron expression that never matches again). */
long long warren__sched_next(const struct warren_sched_def *d, long long after_ms);

/* The most recent fire time t with after_ms < t <= upto_ms, or -1. Cron
 * needs a few dozen next() steps (a binary search), never a walk. */
long long warren__sched_latest(const struct warren_sched_def *d, long long after_ms,
                               long long upto_ms);

/* Whether max_count fires have happened. */
int warren__sched_exhausted(const struct warren_sched_def *d, const struct warren_sched_state *st);

/* The fire time to publish now, or -1 when nothing is due: the most recent
 * fire time after the last fire or `since`, whichever is later (a resumed
 * runtime schedule moves `since` to the resume time), and
 * not after now_ms; -1 as well when exhausted or when neither last nor
 * since is known. */
long long warren__sched_due(const struct warren_sched_def *d, const struct warren_sched_state *st,
                            long long now_ms);

/* When the schedule is next due after its state (to wait without asking
 * due() every tick), or -1 for never (exhausted, or no more matches). */
long long warren__sched_next_due(const struct warren_sched_def *d,
                                 const struct warren_sched_state *st);

/* Records that fire time t was published. */
void warren__sched_fired(struct warren_sched_state *st, long long t);

/* "2026-05-01T02:00:00Z", with ".mmm" before the Z when the time is not a
 * whole second. Returns buf (at least 32 bytes advised). */
const char *warren__sched_format_time(long long ms, char *buf, size_t size);

/* Parses what format_time writes (and any fraction of up to 3 digits).
 * Returns 0, or -1 when the text is not such a time. */
int warren__sched_parse_time(const char *text, long long *ms);

/* The fired job's message_id, "<schedule>@<fire time>". Returns buf. */
const char *warren__sched_message_id(const char *name, long long t, char *buf, size_t size);

/* ---- the state document ------------------------------------------------
 * One JSON object, the only message of the durable state queue:
 *   {"version": 1, "holder": "host-a", "updated": "<time>",
 *    "schedules": {"<name>": {"last": "<time>" | null, "since": "<time>",
 *                             "count": N, "gen": "<time>"}, ...}}
 * ("gen" only for runtime schedules: their created_at.)
 * Keys and schedules a reader does not know are kept when it writes the
 * document back, so hosts with other configs (and, later, runtime
 * schedules) share it safely. */

/* Parses a state message body into a new document. A body that is not
 * such a document gives a new empty one and a reason in `why` (why[0] is
 * '\0' when the body was fine). Returns NULL only when out of memory. */
json_t *warren__sched_doc_parse(const void *body, size_t len, char *why, size_t why_size);

/* A new empty document. */
json_t *warren__sched_doc_new(void);

/* Reads a schedule's entry: 1 when present and well formed, else 0 (and
 * *st is reset to never fired, since unknown, count 0). */
int warren__sched_doc_get(const json_t *doc, const char *name, struct warren_sched_state *st);

/* Writes a schedule's entry. Returns 0, or -1 when out of memory. */
int warren__sched_doc_set(json_t *doc, const char *name, const struct warren_sched_state *st);

/* Serialises the document with `holder` and `updated` set (new string,
 * free() it). NULL when out of memory. */
char *warren__sched_doc_dump(json_t *doc, const char *holder, long long now_ms);

#endif
