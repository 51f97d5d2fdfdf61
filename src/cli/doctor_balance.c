/* `warren doctor`: each worker's jobs in the history against what the
 * broker holds (published = succeeded + dead + in flight + waiting).
 *
 * DESIGN: a job moves between the broker's queues without an event, so a
 * FAIL must be certain: the broker is read first, in the direction jobs
 * move, the history last after a settle, only jobs with no event for the
 * grace are judged, and a shortfall must show in two rounds in a row.
 * docs/doctor.md ("balance") gives the reasoning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "delay.h"
#include "doctor.h"
#include "history.h"
#include "topology.h"
#include "web.h"

#define SETTLE_MAX_MS 2000 /* events reach the history within this (web: 200 ms) */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* What the broker holds, read in the direction jobs move without an event
 * (delay level 27 down to 0, then the work queues), so a job moving on
 * while it is read is counted at least once. */
struct holdings {
    long long *total;   /* per configured queue: ready + unacked; -1 unknown */
    long long *ready, *unacked;
    long long pool;     /* delay levels + unroutable: any worker's jobs */
    uint32_t history_ready, history_consumers;
};

static uint32_t ready_of(struct doctor *d, const char *name, uint32_t *consumers)
{
    uint32_t ready = 0, c = 0;
    warren_error err;
    warren_error_clear(&err);
    if (warren__conn_queue_inspect(d->conn, name, &ready, &c, &err) != WARREN_OK)
        ready = c = 0;
    if (consumers)
        *consumers = c;
    return ready;
}

/* Unacked jobs of a queue with consumers, which only the management API
 * counts (-1 without it). Its figures are up to a few seconds old: of the
 * two ready counts, whichever is higher is the one that can explain a job. */
static void measure_unacked(struct doctor *d, const char *queue, long long *ready,
                            long long *unacked)
{
    int found;
    json_t *q = doctor_mgmt_get(d, "queues", queue, "", &found);
    json_t *r = json_object_get(q, "messages_ready");
    json_t *u = json_object_get(q, "messages_unacknowledged");
    *unacked = json_is_integer(u) ? json_integer_value(u) : -1;
    if (json_is_integer(r) && json_integer_value(r) > *ready)
        *ready = json_integer_value(r);
    json_decref(q);
}

static void measure(struct doctor *d, struct holdings *h)
{
    const struct warren_config *cfg = &d->ctx.cfg;
    char name[WARREN_AMQP_NAME_MAX];
    h->pool = 0;
    for (int l = WARREN_DELAY_LEVELS - 1; l >= 0; l--)
        h->pool += ready_of(d, warren__name_delay_level(name, sizeof name, cfg->namespace_, l),
                            NULL);
    h->pool += ready_of(d, warren__name_unroutable(name, sizeof name, cfg->namespace_), NULL);
    for (size_t i = 0; i < cfg->n_queues; i++) {
        uint32_t consumers = 0;
        warren__name_queue(name, sizeof name, cfg->namespace_, cfg->queues[i].name);
        h->ready[i] = ready_of(d, name, &consumers);
        h->unacked[i] = 0; /* without consumers, nothing is unacked */
        if (consumers)
            measure_unacked(d, name, &h->ready[i], &h->unacked[i]);
        h->total[i] = h->unacked[i] < 0 ? -1 : h->ready[i] + h->unacked[i];
    }
}

static long long ival(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static size_t queue_index(const struct warren_config *cfg, const char *worker)
{
    const char *q = warren__config_worker(cfg, worker)->queue;
    for (size_t i = 0; i < cfg->n_queues; i++)
        if (!strcmp(cfg->queues[i].name, q))
            return i;
    return 0; /* the loader makes sure a worker's queue is configured */
}

/* Jobs the history says the broker holds that no queue can account for:
 * per queue, what its workers hold beyond what it has, summed, less what
 * the shared delay levels and unroutable hold. */
static long long shortfall(const struct warren_config *cfg, json_t *workers,
                           const struct holdings *h, long long *need)
{
    size_t i;
    json_t *w;
    memset(need, 0, cfg->n_queues * sizeof *need);
    json_array_foreach(workers, i, w)
        need[queue_index(cfg, json_string_value(json_object_get(w, "worker")))] +=
            ival(w, "held_before");
    long long excess = 0;
    for (size_t q = 0; q < cfg->n_queues; q++)
        if (h->total[q] >= 0 && need[q] > h->total[q])
            excess += need[q] - h->total[q];
    return excess > h->pool ? excess - h->pool : 0;
}

/* One worker: the spec's sum, and a FAIL only when its own jobs are more
 * than its queue, the delay levels and unroutable hold together. */
static void note_worker(struct doctor *d, json_t *w, const struct holdings *h)
{
    const struct warren_config *cfg = &d->ctx.cfg;
    const char *name = json_string_value(json_object_get(w, "worker"));
    size_t q = queue_index(cfg, name);
    long long in_flight = ival(w, "running") + ival(w, "retrying");
    long long waiting = ival(w, "queued") + ival(w, "scheduled");
    long long held = ival(w, "held_before"), dup = ival(w, "duplicate");
    char formula[400], g[32], qname[WARREN_AMQP_NAME_MAX], dups[64] = "";
    if (dup)
        snprintf(dups, sizeof dups, " + duplicate %lld", dup);
    snprintf(formula, sizeof formula,
             "%s: published %lld = succeeded %lld + dead %lld%s + in flight %lld + waiting %lld",
             name[0] ? name : "(no worker)", ival(w, "published"), ival(w, "succeeded"),
             ival(w, "dead"), dups, in_flight, waiting);
    warren__name_queue(qname, sizeof qname, cfg->namespace_, cfg->queues[q].name);
    json_t *detail = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "worker", name, "queue",
        cfg->queues[q].name, "published", (json_int_t)ival(w, "published"), "succeeded",
        (json_int_t)ival(w, "succeeded"), "dead", (json_int_t)ival(w, "dead"), "duplicate",
        (json_int_t)dup, "in_flight", (json_int_t)in_flight, "waiting", (json_int_t)waiting,
        "held", (json_int_t)held);
    if (held && h->total[q] < 0)
        doctor_note(d, LV_SKIP, "balance", detail,
                    "%s; not compared: %s has consumers and without the management API its unacked "
                    "jobs cannot be counted",
                    formula, qname);
    else if (held && h->total[q] >= 0 && held > h->total[q] + h->pool)
        doctor_note(
            d, LV_FAIL, "balance", detail,
            "%s; but %lld had no event for %s, more than %s (%lld) and the delay levels and "
            "unroutable (%lld) hold",
            formula, held, doctor_dur(d->grace_ms, g, sizeof g), qname, h->total[q], h->pool);
    else
        doctor_note(d, LV_OK, "balance", detail, "%s", formula);
}

/* The namespace's sum: which queues are short, and by how much in all. */
static void note_missing(struct doctor *d, json_t *workers, const struct holdings *h,
                         const long long *need, long long missing)
{
    const struct warren_config *cfg = &d->ctx.cfg;
    char text[1500], g[32];
    size_t len = 0, i;
    json_t *w;
    for (size_t q = 0; q < cfg->n_queues && len < sizeof text; q++) {
        if (h->total[q] < 0 || need[q] <= h->total[q])
            continue;
        len += snprintf(text + len, sizeof text - len, "%s%s.%s holds %lld (ready %lld, unacked "
                        "%lld) of the %lld its workers wait for (", len ? "; " : "",
                        cfg->namespace_, cfg->queues[q].name, h->total[q], h->ready[q],
                        h->unacked[q], need[q]);
        int first = 1;
        json_array_foreach(workers, i, w) {
            const char *name = json_string_value(json_object_get(w, "worker"));
            if (len >= sizeof text || !ival(w, "held_before") || queue_index(cfg, name) != q)
                continue;
            len += snprintf(text + len, sizeof text - len, "%s%s %lld", first ? "" : ", ",
                            name[0] ? name : "(no worker)", ival(w, "held_before"));
            first = 0;
        }
        if (len < sizeof text)
            len += snprintf(text + len, sizeof text - len, ")");
    }
    doctor_note(d, LV_FAIL, "balance", json_pack("{s:I}", "missing", (json_int_t)missing),
                "%lld job%s the history waits for (no event for %s) %s not on the broker: %s; the "
                "delay levels and unroutable hold %lld",
                missing, missing == 1 ? "" : "s", doctor_dur(d->grace_ms, g, sizeof g),
                missing == 1 ? "is" : "are", text, h->pool);
}

static int open_history(struct doctor *d, struct warren_history **out)
{
    char db[4096];
    warren__web_db_path(&d->ctx.cfg, db, sizeof db);
    if (access(db, F_OK) != 0) {
        doctor_note(d, LV_SKIP, "balance", NULL, "no history at %s (`warren web` keeps it)", db);
        return -1;
    }
    struct warren_history_opts o = {.read_only = 1};
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_open(out, db, &o, &err) != WARREN_OK) {
        doctor_note(d, LV_FAIL, "balance", NULL, "%s", err.text);
        return -1;
    }
    return 0;
}

/* Reads the broker, waits for events in transit to reach the history,
 * then reads the history: a job whose last event is older than the grace
 * was on the broker when it was read, unless it is missing. */
static json_t *take_round(struct doctor *d, struct warren_history *hist, struct holdings *h)
{
    measure(d, h);
    long long settle = d->grace_ms < SETTLE_MAX_MS ? d->grace_ms : SETTLE_MAX_MS;
    sleep_ms(settle);
    /* Events that wait here have not reached the history. The name is not
     * in topology.h: warren web makes it (docs/web.md). */
    char name[WARREN_AMQP_NAME_MAX];
    snprintf(name, sizeof name, "%s.history", d->ctx.cfg.namespace_);
    h->history_ready = ready_of(d, name, &h->history_consumers);
    json_t *out = NULL;
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_balance(hist, now_ms() - d->grace_ms, &out, &err) != WARREN_OK)
        doctor_note(d, LV_FAIL, "balance", NULL, "%s", err.text);
    return out;
}

void doctor_check_balance(struct doctor *d)
{
    const struct warren_config *cfg = &d->ctx.cfg;
    struct warren_history *hist = NULL;
    if (open_history(d, &hist) != 0)
        return;
    size_t nq = cfg->n_queues;
    long long *mem = calloc(4 * nq + 1, sizeof *mem);
    struct holdings h = {mem, mem + nq, mem + 2 * nq, 0, 0, 0};
    long long *need = mem + 3 * nq, missing = 0;
    json_t *root = NULL, *workers = NULL;
    /* A job that moves while it is counted can look missing once; one that
     * is really gone is missing in a second round too. */
    for (int round = 0; mem && round < 2; round++) {
        json_decref(root);
        root = take_round(d, hist, &h);
        workers = json_object_get(root, "workers");
        if (!root || h.history_ready > 0)
            break;
        missing = shortfall(cfg, workers, &h, need);
        if (!missing)
            break;
    }
    if (!mem)
        doctor_note(d, LV_FAIL, "balance", NULL, "out of memory");
    else if (root && h.history_ready > 0)
        doctor_note(d, LV_WARN, "balance", NULL,
                    "not compared: the history is behind, %u event%s in %s.history (%s)",
                    h.history_ready, h.history_ready == 1 ? " waits" : "s wait", cfg->namespace_,
                    h.history_consumers ? "warren web is catching up" : "is warren web running?");
    else if (root && json_array_size(workers) == 0)
        doctor_note(d, LV_OK, "balance", NULL,
                    "no job in the history was published through warren's "
                    "API with events on: nothing to balance");
    else if (root) {
        size_t i;
        json_t *w;
        json_array_foreach(workers, i, w)
            note_worker(d, w, &h);
        if (missing)
            note_missing(d, workers, &h, need, missing);
    }
    json_decref(root);
    free(mem);
    warren__history_close(hist);
}
