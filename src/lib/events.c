/* A job's lifecycle: events, observers and statistics. See events.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <warren/log.h>
#include "events.h"
#include "handoff.h"
#include "json_write.h"
#include "registry_internal.h"
#include "stats.h"

/* a + "." + b into buf, cut to size as snprintf would cut it (two of
 * these per event: snprintf was a tenth of an event's cost). */
static const char *join_dot(char *buf, size_t size, const char *a, const char *b)
{
    if (size == 0)
        return buf;
    size_t n = 0, la = strlen(a), lb = strlen(b);
    const char *parts[3] = {a, ".", b};
    const size_t lens[3] = {la, 1, lb};
    for (int i = 0; i < 3 && n + 1 < size; i++) {
        size_t take = lens[i] < size - 1 - n ? lens[i] : size - 1 - n;
        memcpy(buf + n, parts[i], take);
        n += take;
    }
    buf[n] = '\0';
    return buf;
}

const char *warren__name_events(char *buf, size_t size, const char *ns)
{
    return join_dot(buf, size, ns, "events");
}

static json_t *string_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

/* jansson refuses strings that are not UTF-8; a worker name or id from a
 * malformed message may be one. Such a value is written as "". */
static json_t *string_or_empty(const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v ? v : json_string("");
}

/* Where args' compact text of n bytes is cut: at WARREN_EVENT_ARGS_MAX,
 * moved back to the start of a UTF-8 character; n when it fits. */
static size_t args_cut(const char *text, size_t n)
{
    if (n <= WARREN_EVENT_ARGS_MAX)
        return n;
    n = WARREN_EVENT_ARGS_MAX;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* "args", whole or cut (see WARREN_EVENT_ARGS_MAX). 0 ok, -1 no memory. */
static int add_args(json_t *o, const json_t *args)
{
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    size_t len = strlen(text), n = args_cut(text, len);
    int rc;
    if (n == len) {
        rc = json_object_set(o, "args", (json_t *)args);
    } else {
        rc = json_object_set_new(o, "args", json_stringn(text, n));
        rc |= json_object_set_new(o, "args_truncated", json_true());
    }
    free(text);
    return rc;
}

/* add_args for the direct writer: "priority" and "args" as the jansson
 * path writes them. -1 when args cannot be written. */
static int fields_args(struct warren_fields *f, const struct warren_event *ev)
{
    struct warren__jbuf b = {0};
    warren__fields_int(f, "priority", ev->priority);
    int rc = warren__json_compact(&b, ev->args, 0);
    if (rc == 0) {
        size_t n = args_cut(b.data, b.len);
        if (n == b.len) {
            warren__fields_raw(f, "args", b.data, b.len);
        } else {
            b.data[n] = '\0';
            rc = warren__fields_str(f, "args", b.data);
            warren__fields_raw(f, "args_truncated", "true", 4);
        }
    }
    warren__jbuf_free(&b);
    return rc;
}

/* What the code below builds with jansson, written directly (an event per
 * job start and end: jansson's object, dump and frees cost ~30,000
 * instructions and 30 allocations an event). Same keys, order, escapes
 * and fallbacks for text jansson would refuse. Returns the text in f, or
 * NULL when it did not fit (a very long error) or jansson would have
 * refused the event: the caller then builds it with jansson. */
static const char *event_text(struct warren_fields *f, const struct warren_event *ev,
                              const char *at)
{
    warren__fields_begin(f);
    if (warren__fields_str(f, "id", ev->id ? ev->id : "") != 0)
        warren__fields_str(f, "id", "");
    if (warren__fields_str(f, "worker", ev->worker ? ev->worker : "") != 0)
        warren__fields_str(f, "worker", "");
    if (warren__fields_str(f, "queue", ev->queue ? ev->queue : "") != 0)
        warren__fields_str(f, "queue", "");
    warren__fields_int(f, "attempt", ev->attempt);
    if (warren__fields_str(f, "event", ev->event) != 0 || warren__fields_str(f, "at", at) != 0)
        return NULL;
    if (ev->duration_ms >= 0)
        warren__fields_int(f, "duration_ms", ev->duration_ms);
    else
        warren__fields_null(f, "duration_ms");
    if (!ev->error || !ev->error[0])
        warren__fields_null(f, "error");
    else if (warren__fields_str(f, "error", ev->error) != 0)
        warren__fields_str(f, "error", "");
    if (warren__fields_str(f, "host", ev->host ? ev->host : "") != 0)
        warren__fields_str(f, "host", "");
    if (ev->delay_ms >= 0)
        warren__fields_int(f, "delay_ms", ev->delay_ms);
    if (ev->reason && warren__fields_str(f, "reason", ev->reason) != 0)
        return NULL;
    if (ev->total > 0) {
        warren__fields_int(f, "done", ev->done);
        warren__fields_int(f, "total", ev->total);
    }
    if (ev->replay > 0)
        warren__fields_int(f, "replay", ev->replay);
    if (ev->args && fields_args(f, ev) != 0)
        return NULL;
    return warren__fields_end(f);
}

char *warren__event_json_jansson(const struct warren_event *ev)
{
    char now[40];
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(o, "id", string_or_empty(ev->id));
    rc |= json_object_set_new(o, "worker", string_or_empty(ev->worker));
    rc |= json_object_set_new(o, "queue", string_or_empty(ev->queue));
    rc |= json_object_set_new(o, "attempt", json_integer(ev->attempt));
    rc |= json_object_set_new(o, "event", json_string(ev->event));
    rc |= json_object_set_new(o, "at", json_string(ev->at ? ev->at
                                                          : warren__now_rfc3339(now, sizeof now)));
    rc |= json_object_set_new(o, "duration_ms", ev->duration_ms >= 0
                                                    ? json_integer(ev->duration_ms)
                                                    : json_null());
    json_t *error = string_or_null(ev->error);
    rc |= json_object_set_new(o, "error", error ? error : json_string(""));
    rc |= json_object_set_new(o, "host", string_or_empty(ev->host));
    if (ev->delay_ms >= 0)
        rc |= json_object_set_new(o, "delay_ms", json_integer(ev->delay_ms));
    if (ev->reason)
        rc |= json_object_set_new(o, "reason", json_string(ev->reason));
    if (ev->total > 0) {
        rc |= json_object_set_new(o, "done", json_integer(ev->done));
        rc |= json_object_set_new(o, "total", json_integer(ev->total));
    }
    if (ev->replay > 0)
        rc |= json_object_set_new(o, "replay", json_integer(ev->replay));
    if (ev->args) {
        rc |= json_object_set_new(o, "priority", json_integer(ev->priority));
        rc |= add_args(o, ev->args);
    }
    char *text = rc == 0 ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

char *warren__event_json(const struct warren_event *ev)
{
    struct warren_fields f;
    char now[40];
    const char *text = event_text(&f, ev, ev->at ? ev->at : warren__now_rfc3339(now, sizeof now));
    return text ? strdup(text) : warren__event_json_jansson(ev);
}

const char *warren__event_key(char *buf, size_t size, const struct warren_event *ev)
{
    const char *worker = warren_worker_name_valid(ev->worker) ? ev->worker : "";
    return join_dot(buf, size, worker, ev->event);
}

warren_status warren__events_declare(struct warren_conn *c, const char *ns, warren_error *err)
{
    char name[300];
    return warren__conn_exchange_declare(c, warren__name_events(name, sizeof name, ns), "topic",
                                         amqp_empty_table, err);
}

warren_status warren__event_publish(struct warren_conn *c, const char *ns,
                                    const struct warren_event *ev, warren_error *err)
{
    /* The text is written on the stack; jansson only when it does not fit. */
    struct warren_fields f;
    char now[40], *built = NULL;
    const char *body = event_text(&f, ev, ev->at ? ev->at : warren__now_rfc3339(now, sizeof now));
    if (!body)
        body = built = warren__event_json_jansson(ev);
    if (!body)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory building an event");
    char exchange[300], key[300];
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode = ev->transient ? 1 : 2;
    p.timestamp = (uint64_t)time(NULL);
    p.type = amqp_cstring_bytes(ev->event);
    warren_status st = warren__conn_publish_untracked(
        c, warren__name_events(exchange, sizeof exchange, ns),
        warren__event_key(key, sizeof key, ev), &p, body, strlen(body), err);
    free(built);
    return st;
}

/* ---- the lifecycle ------------------------------------------------------ */

static void emit(struct warren_lifecycle *lc, struct warren_event *ev,
                 const struct warren_job *job, const char *queue)
{
    struct warren_conn *c = lc->conn ? *lc->conn : NULL;
    if (!lc->events || !c)
        return;
    ev->id = job->id;
    ev->worker = job->worker;
    ev->queue = queue;
    ev->host = lc->host;
    ev->attempt = job->attempt > 0 ? job->attempt : 1;
    ev->replay = job->replay;
    ev->transient = lc->events_transient;
    warren_error err;
    warren_error_clear(&err);
    if (warren__event_publish(c, lc->ns, ev, &err) != WARREN_OK)
        WARREN_LOG(WARREN_LOG_DEBUG, "event.lost", "%s event of %s not published: %s",
                   ev->event, job->id, err.text);
}

static void event_init(struct warren_event *ev, const char *name, long long duration_ms,
                       const char *error)
{
    memset(ev, 0, sizeof *ev);
    ev->event = name;
    ev->duration_ms = duration_ms;
    ev->error = error;
    ev->delay_ms = -1;
}

static warren_observer_ctx ctx_of(const struct warren_lifecycle *lc, const char *queue)
{
    warren_observer_ctx ctx = {queue ? queue : "", lc->host ? lc->host : ""};
    return ctx;
}

/* The worker name a series may carry: only registered ones. */
static const char *known_worker(const struct warren_lifecycle *lc,
                                const struct warren_job *job)
{
    return warren__registry_find(lc->reg, job->worker) ? job->worker : "";
}

/* Ends the job in flight with `outcome`, or counts one that never
 * started. */
static void count(struct warren_lifecycle *lc, const struct warren_job *job, const char *queue,
                  int outcome)
{
    double seconds = lc->duration_ms >= 0 ? lc->duration_ms / 1000.0 : -1;
    if (lc->in_job)
        warren_stats_job_end(lc->stats, outcome, seconds);
    else if (outcome >= 0)
        warren_stats_job(lc->stats, queue ? queue : "", known_worker(lc, job),
                         (enum warren_stats_outcome)outcome, -1);
    lc->in_job = 0;
    lc->duration_ms = -1;
}

void warren__lifecycle_started(struct warren_lifecycle *lc, const struct warren_job *job,
                               const char *queue)
{
    lc->in_job = 1;
    lc->duration_ms = -1;
    warren_stats_job_begin(lc->stats, queue ? queue : "", known_worker(lc, job));
    struct warren_event ev;
    event_init(&ev, "started", -1, NULL);
    emit(lc, &ev, job, queue);
    warren_observer_ctx ctx = ctx_of(lc, queue);
    warren__registry_notify_before(lc->reg, job, &ctx);
}

void warren__lifecycle_failed(struct warren_lifecycle *lc, const struct warren_job *job,
                              const char *queue, long long duration_ms)
{
    lc->duration_ms = duration_ms;
    warren_observer_ctx ctx = ctx_of(lc, queue);
    warren__registry_notify_error(lc->reg, job, &ctx, job->error);
    struct warren_event ev;
    event_init(&ev, "failed", duration_ms, job->error);
    emit(lc, &ev, job, queue);
}

void warren__lifecycle_ran(struct warren_lifecycle *lc, const struct warren_job *job,
                           const char *queue, warren_outcome outcome, long long duration_ms)
{
    lc->duration_ms = duration_ms;
    warren_observer_ctx ctx = ctx_of(lc, queue);
    warren__registry_notify_after(lc->reg, job, &ctx, outcome, duration_ms / 1000.0);
    if (outcome == WARREN_JOB_SNOOZE)
        return; /* warren__lifecycle_snoozed follows the hand-off */
    if (outcome != WARREN_JOB_OK) {
        warren__lifecycle_failed(lc, job, queue, duration_ms);
        return;
    }
    struct warren_event ev;
    event_init(&ev, "succeeded", duration_ms, NULL);
    emit(lc, &ev, job, queue);
    count(lc, job, queue, WARREN_STATS_SUCCEEDED);
}

void warren__lifecycle_retrying(struct warren_lifecycle *lc, const struct warren_job *job,
                                const char *queue, long long delay_ms)
{
    struct warren_event ev;
    event_init(&ev, "retrying", lc->duration_ms, job->error);
    ev.delay_ms = delay_ms >= 0 ? delay_ms : 0;
    emit(lc, &ev, job, queue);
    count(lc, job, queue, WARREN_STATS_RETRIED);
}

void warren__lifecycle_snoozed(struct warren_lifecycle *lc, const struct warren_job *job,
                               const char *queue, long long delay_ms, const char *why)
{
    struct warren_event ev;
    event_init(&ev, "snoozed", lc->in_job ? lc->duration_ms : -1, why);
    ev.delay_ms = delay_ms >= 0 ? delay_ms : 0;
    emit(lc, &ev, job, queue);
    count(lc, job, queue, WARREN_STATS_SNOOZED);
}

void warren__lifecycle_progress(struct warren_lifecycle *lc, const struct warren_job *job,
                                const char *queue, long long done, long long total)
{
    struct warren_event ev;
    event_init(&ev, "progress", -1, NULL);
    ev.done = done;
    ev.total = total;
    emit(lc, &ev, job, queue);
}

void warren__lifecycle_duplicate(struct warren_lifecycle *lc, const struct warren_job *job,
                                 const char *queue)
{
    struct warren_event ev;
    event_init(&ev, "duplicate", -1, NULL);
    emit(lc, &ev, job, queue);
    count(lc, job, queue, WARREN_STATS_DUPLICATE);
}

void warren__lifecycle_dead(struct warren_lifecycle *lc, const struct warren_job *job,
                            const char *queue, const char *reason, const char *error)
{
    struct warren_event ev;
    event_init(&ev, "dead", lc->in_job ? lc->duration_ms : -1, error);
    ev.reason = reason ? reason : "";
    emit(lc, &ev, job, queue);
    count(lc, job, queue, WARREN_STATS_DEAD);
    warren_observer_ctx ctx = ctx_of(lc, queue);
    warren__registry_notify_dead(lc->reg, job, &ctx, reason, error);
}

void warren__lifecycle_unsettled(struct warren_lifecycle *lc)
{
    if (lc->in_job)
        warren_stats_job_end(lc->stats, -1,
                             lc->duration_ms >= 0 ? lc->duration_ms / 1000.0 : -1);
    lc->in_job = 0;
    lc->duration_ms = -1;
}
