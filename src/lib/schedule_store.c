/* Runtime schedules in the broker: the stored set, its reading and
 * writing, and the public API (see schedule_store.h and
 * include/warren/schedule.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <amqp.h>
#include <warren/registry.h>
#include <warren/schedule.h>
#include "conn.h"
#include "schedule_store.h"
#include "topology.h"

#define STORE_VERSION 1
#define READ_MAX 16
#define IO_TIMEOUT_MS 5000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *warren__sched_runtime_queue(char *buf, size_t size, const char *ns)
{
    snprintf(buf, size, "%s.scheduler.runtime", ns);
    return buf;
}

int warren__sched_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return 0;
    }
    return 1;
}

/* ---- the document ---------------------------------------------------------- */

json_t *warren__sched_store_new(void)
{
    return json_pack("{s:i, s:I, s:{}}", "version", STORE_VERSION, "revision", (json_int_t)0,
                     "schedules");
}

json_t *warren__sched_store_parse(const void *body, size_t len, char *why, size_t why_size)
{
    json_error_t jerr;
    why[0] = '\0';
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        snprintf(why, why_size, "not JSON: %s", jerr.text);
    else if (!json_is_object(doc))
        snprintf(why, why_size, "not a JSON object");
    else if (!json_is_object(json_object_get(doc, "schedules")))
        snprintf(why, why_size, "no \"schedules\" object");
    else
        return doc;
    json_decref(doc);
    return warren__sched_store_new();
}

long long warren__sched_store_revision(const json_t *doc)
{
    const json_t *r = json_object_get(doc, "revision");
    return json_is_integer(r) ? (long long)json_integer_value(r) : 0;
}

char *warren__sched_store_dump(json_t *doc, long long now)
{
    char when[40];
    if ((!json_object_get(doc, "version") &&
         json_object_set_new(doc, "version", json_integer(STORE_VERSION)) != 0) ||
        json_object_set_new(doc, "revision",
                            json_integer((json_int_t)(warren__sched_store_revision(doc) + 1))) !=
            0 ||
        json_object_set_new(doc, "updated",
                            json_string(warren__sched_format_time(now, when, sizeof when))) != 0)
        return NULL;
    return json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
}

warren_status warren_schedule_validate(const warren_schedule_def *def, warren_error *err)
{
    if (!def)
        return warren_error_set(err, WARREN_EINVAL, "no schedule given");
    if (!warren__sched_name_valid(def->name))
        return warren_error_set(err, WARREN_EINVAL,
                                "schedule name '%s' is not [A-Za-z0-9_.-]{1,128}",
                                def->name ? def->name : "");
    if (!def->worker || !warren_worker_name_valid(def->worker))
        return warren_error_set(err, WARREN_EINVAL, "'%s' is not a valid worker name",
                                def->worker ? def->worker : "");
    if ((def->cron != NULL) == (def->every_ms != 0))
        return warren_error_set(err, WARREN_EINVAL, "give exactly one of cron and every");
    if (def->cron) {
        struct warren_cron c;
        char why[256];
        if (warren__cron_parse(&c, def->cron, why, sizeof why) != 0)
            return warren_error_set(err, WARREN_EINVAL, "%s", why);
    } else if (def->every_ms < 1000) {
        return warren_error_set(err, WARREN_EINVAL, "every must be at least 1s");
    }
    if (def->max_count < 0)
        return warren_error_set(err, WARREN_EINVAL, "max_count must not be negative");
    if (def->args && !json_is_object(def->args))
        return warren_error_set(err, WARREN_EINVAL, "args must be a JSON object");
    if (def->priority < 0 || def->priority > 9)
        return warren_error_set(err, WARREN_EINVAL, "priority must be 0-9");
    return WARREN_OK;
}

static json_t *time_value(long long ms)
{
    char buf[40];
    return json_string(warren__sched_format_time(ms, buf, sizeof buf));
}

warren_status warren__sched_store_encode(const warren_schedule_def *def, long long created_ms,
                                         json_t **out, warren_error *err)
{
    *out = NULL;
    warren_status st = warren_schedule_validate(def, err);
    if (st != WARREN_OK)
        return st;
    json_t *args = def->args ? json_incref(def->args) : json_object();
    json_t *e = json_pack("{s:s, s:I, s:o, s:i, s:b, s:o}", "worker", def->worker, "max_count",
                          (json_int_t)def->max_count, "args", args, "priority", def->priority,
                          "paused", 0, "created_at", time_value(created_ms));
    if (e && (def->cron ? json_object_set_new(e, "cron", json_string(def->cron))
                        : json_object_set_new(e, "every_ms", json_integer(def->every_ms))) != 0) {
        json_decref(e);
        e = NULL;
    }
    if (!e)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    *out = e;
    return WARREN_OK;
}

static long long entry_time(const json_t *entry, const char *key)
{
    long long ms;
    const json_t *v = json_object_get(entry, key);
    if (!json_is_string(v) || warren__sched_parse_time(json_string_value(v), &ms) != 0)
        return -1;
    return ms;
}

warren_status warren__sched_store_decode(const char *name, const json_t *entry,
                                         struct warren_sched_def *d,
                                         struct warren_sched_meta *meta, warren_error *err)
{
    memset(d, 0, sizeof *d);
    if (!json_is_object(entry))
        return warren_error_set(err, WARREN_EINVAL, "schedule %s: not an object", name);
    const json_t *cron = json_object_get(entry, "cron"), *every = json_object_get(entry, "every_ms");
    const json_t *mc = json_object_get(entry, "max_count"), *pr = json_object_get(entry, "priority");
    const json_t *args = json_object_get(entry, "args"), *worker = json_object_get(entry, "worker");
    warren_schedule_def def = {0};
    def.name = name;
    def.worker = json_string_value(worker);
    def.cron = json_is_string(cron) ? json_string_value(cron) : NULL;
    def.every_ms = json_is_integer(every) ? (long long)json_integer_value(every) : 0;
    def.max_count = json_is_integer(mc) ? (long long)json_integer_value(mc) : 0;
    def.priority = json_is_integer(pr) ? (int)json_integer_value(pr) : 0;
    def.args = (json_t *)args;
    if ((cron && !json_is_string(cron)) || (every && !json_is_integer(every)) ||
        (mc && !json_is_integer(mc)) || (pr && !json_is_integer(pr)))
        return warren_error_set(err, WARREN_EINVAL, "schedule %s: a field has the wrong type",
                                name);
    warren_status st = warren_schedule_validate(&def, err);
    if (st != WARREN_OK)
        return st;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->worker, sizeof d->worker, "%s", def.worker);
    d->max_count = def.max_count;
    d->priority = def.priority;
    if (def.cron) {
        char why[256];
        d->kind = WARREN_SCHED_CRON;
        warren__cron_parse(&d->cron, def.cron, why, sizeof why);
    } else {
        d->kind = WARREN_SCHED_EVERY;
        d->every_ms = def.every_ms;
    }
    d->args = args ? json_incref((json_t *)args) : json_object();
    if (!d->args)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (meta) {
        meta->paused = json_is_true(json_object_get(entry, "paused"));
        meta->created_ms = entry_time(entry, "created_at");
        meta->resumed_ms = entry_time(entry, "resumed_at");
    }
    return WARREN_OK;
}

/* ---- the broker ------------------------------------------------------------ */

warren_status warren__sched_store_declare(struct warren_conn *c, const char *queue, int quorum,
                                          warren_error *err)
{
    amqp_table_entry_t args[2];
    args[0].key = amqp_cstring_bytes("x-max-length");
    args[0].value.kind = AMQP_FIELD_KIND_I64;
    args[0].value.value.i64 = 1;
    args[1].key = amqp_cstring_bytes("x-overflow");
    args[1].value.kind = AMQP_FIELD_KIND_UTF8;
    args[1].value.value.bytes = amqp_cstring_bytes("drop-head");
    amqp_table_t t = {2, args};
    return warren__topology_ensure_queue(c, queue, t, quorum, err);
}

warren_status warren__sched_store_read(struct warren_conn *c, const char *queue, int runtime,
                                       json_t **doc, int *found, char *why, size_t why_size,
                                       warren_error *err)
{
    uint64_t tags[READ_MAX];
    int n = 0;
    warren_status st = WARREN_OK;
    *doc = NULL;
    if (why_size)
        why[0] = '\0';
    if (found) {
        *found = 1;
        st = warren__conn_queue_inspect(c, queue, NULL, NULL, err);
        if (st == WARREN_ENOTFOUND && !warren__conn_broken(c)) {
            *found = 0;
            warren_error_clear(err);
            return WARREN_OK;
        }
        if (st != WARREN_OK)
            return st;
    }
    while (n < READ_MAX) {
        struct warren_conn_delivery d;
        st = warren__conn_get(c, queue, &d, err);
        if (st == WARREN_ENOTFOUND) {
            st = WARREN_OK;
            break;
        }
        if (st != WARREN_OK)
            break;
        tags[n++] = d.delivery_tag;
        char w[256];
        json_t *one = runtime ? warren__sched_store_parse(d.message.body.bytes, d.message.body.len,
                                                          w, sizeof w)
                              : warren__sched_doc_parse(d.message.body.bytes, d.message.body.len,
                                                        w, sizeof w);
        warren__conn_delivery_free(&d);
        if (!one) {
            st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
            break;
        }
        if (w[0] && why_size)
            snprintf(why, why_size, "%s", w);
        if (!*doc || !runtime ||
            warren__sched_store_revision(one) >= warren__sched_store_revision(*doc)) {
            json_decref(*doc);
            *doc = one;
        } else {
            json_decref(one);
        }
    }
    for (int i = 0; i < n; i++) {
        warren_error e2;
        warren_error_clear(&e2);
        warren_status s2 = warren__conn_reject(c, tags[i], 1, &e2);
        if (s2 != WARREN_OK && st == WARREN_OK) {
            st = s2;
            if (err)
                *err = e2;
        }
    }
    if (st != WARREN_OK) {
        json_decref(*doc);
        *doc = NULL;
    }
    return st;
}

warren_status warren__sched_store_write(struct warren_conn *c, const char *queue,
                                        const char *text, warren_error *err)
{
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    return warren__conn_publish_confirmed(c, "", queue, &props, text, strlen(text),
                                          IO_TIMEOUT_MS, err);
}

/* ---- changes ----------------------------------------------------------------- */

static int same_timing(const json_t *a, const json_t *b)
{
    return json_equal(json_object_get(a, "cron"), json_object_get(b, "cron")) &&
           json_equal(json_object_get(a, "every_ms"), json_object_get(b, "every_ms"));
}

warren_status warren__sched_store_change(struct warren_conn *c, const char *ns, int quorum,
                                         char op, const warren_schedule_def *def,
                                         const char *name, warren_error *err)
{
    char queue[300];
    warren__sched_runtime_queue(queue, sizeof queue, ns);
    json_t *entry = NULL;
    long long now = now_ms();
    if (op == 'a') {
        warren_status st = warren__sched_store_encode(def, now, &entry, err);
        if (st != WARREN_OK)
            return st;
        name = def->name;
    }
    json_t *doc = NULL;
    char why[256];
    warren_status st = warren__sched_store_declare(c, queue, quorum, err);
    if (st == WARREN_OK)
        st = warren__sched_store_read(c, queue, 1, &doc, NULL, why, sizeof why, err);
    if (st == WARREN_OK && !doc && !(doc = warren__sched_store_new()))
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    json_t *all = doc ? json_object_get(doc, "schedules") : NULL;
    json_t *old = all ? json_object_get(all, name) : NULL;
    if (st == WARREN_OK && op != 'a' && !json_is_object(old))
        st = warren_error_set(err, WARREN_ENOTFOUND, "no runtime schedule '%s'", name);
    if (st == WARREN_OK) {
        int rc = 0;
        if (op == 'a') {
            if (json_is_object(old) && same_timing(old, entry)) {
                /* Same timing: the same schedule, changed; keep its identity. */
                json_t *keep;
                if ((keep = json_object_get(old, "created_at")))
                    rc |= json_object_set(entry, "created_at", keep);
                if ((keep = json_object_get(old, "paused")))
                    rc |= json_object_set(entry, "paused", keep);
                if ((keep = json_object_get(old, "resumed_at")))
                    rc |= json_object_set(entry, "resumed_at", keep);
            }
            rc |= json_object_set(all, name, entry);
        } else if (op == 'r') {
            rc = json_object_del(all, name);
        } else if (op == 'p') {
            rc = json_object_set_new(old, "paused", json_true());
        } else {
            if (json_is_true(json_object_get(old, "paused")))
                rc = json_object_set_new(old, "resumed_at", time_value(now));
            rc |= json_object_set_new(old, "paused", json_false());
        }
        if (rc != 0)
            st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    }
    if (st == WARREN_OK) {
        char *text = warren__sched_store_dump(doc, now);
        st = text ? warren__sched_store_write(c, queue, text, err)
                  : warren_error_set(err, WARREN_ENOMEM, "out of memory");
        free(text);
    }
    json_decref(entry);
    json_decref(doc);
    return st;
}

/* ---- listing ------------------------------------------------------------------- */

static json_t *time_or_null(long long ms)
{
    return ms < 0 ? json_null() : time_value(ms);
}

/* One row: def and its state (from the state document, if known there). */
static json_t *row(const struct warren_sched_def *d, const char *source, const char *cron_text,
                   const struct warren_sched_meta *meta, const json_t *state_doc, long long now)
{
    struct warren_sched_state st;
    int known = warren__sched_doc_get(state_doc, d->name, &st);
    if (known && meta && meta->created_ms > 0 && st.gen != meta->created_ms) {
        known = 0; /* an older schedule of the same name */
        st.last_ms = st.since_ms = -1;
        st.count = 0;
    }
    int paused = meta && meta->paused;
    int finished = warren__sched_exhausted(d, &st);
    long long next = -1;
    if (!paused && !finished) {
        if (known) {
            if (meta && meta->resumed_ms > st.since_ms)
                st.since_ms = meta->resumed_ms;
            next = warren__sched_next_due(d, &st);
            if (next >= 0 && next <= now) /* due now: the leader's next tick fires it */
                next = warren__sched_next(d, now);
        } else {
            next = warren__sched_next(d, now);
        }
    }
    json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:O, s:i, s:b, s:o, s:o, s:I, s:s}", "name",
                          d->name, "source", source, "worker", d->worker, "max_count",
                          (json_int_t)d->max_count, "args", d->args, "priority", d->priority,
                          "paused", paused, "next_fire", time_or_null(next), "last_fire",
                          time_or_null(st.last_ms), "count", (json_int_t)st.count, "status",
                          paused ? "paused" : finished ? "finished" : "active");
    if (!r)
        return NULL;
    if (d->kind == WARREN_SCHED_CRON)
        json_object_set_new(r, "cron", json_string(cron_text ? cron_text : ""));
    else
        json_object_set_new(r, "every_ms", json_integer(d->every_ms));
    if (meta)
        json_object_set_new(r, "created_at", time_or_null(meta->created_ms));
    return r;
}

warren_status warren__sched_store_list(struct warren_conn *c, const char *ns,
                                       const struct warren_schedule_conf *conf, size_t n_conf,
                                       long long now, json_t **out, warren_error *err)
{
    char runtime_q[300], state_q[300], why[256];
    int found;
    json_t *rt = NULL, *state = NULL;
    *out = NULL;
    warren__sched_runtime_queue(runtime_q, sizeof runtime_q, ns);
    snprintf(state_q, sizeof state_q, "%s.scheduler.state", ns);
    warren_status st = warren__sched_store_read(c, runtime_q, 1, &rt, &found, why, sizeof why, err);
    if (st == WARREN_OK)
        st = warren__sched_store_read(c, state_q, 0, &state, &found, why, sizeof why, err);
    json_t *rows = json_array();
    if (!rows && st == WARREN_OK)
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    for (size_t i = 0; st == WARREN_OK && i < n_conf; i++) {
        struct warren_sched_def d;
        st = warren__sched_def_init(&d, &conf[i], err);
        if (st == WARREN_OK) {
            json_t *r = row(&d, "config", conf[i].cron, NULL, state, now);
            if (!r || json_array_append_new(rows, r) != 0)
                st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
        }
        warren__sched_def_clear(&d);
    }
    const char *name;
    json_t *entry;
    json_object_foreach(json_object_get(rt, "schedules"), name, entry)
    {
        if (st != WARREN_OK)
            break;
        int shadowed = 0;
        for (size_t i = 0; i < n_conf; i++)
            shadowed |= !strcmp(conf[i].name, name);
        struct warren_sched_def d;
        struct warren_sched_meta meta;
        warren_error bad;
        warren_error_clear(&bad);
        if (shadowed || warren__sched_store_decode(name, entry, &d, &meta, &bad) != WARREN_OK)
            continue; /* a config name wins; an invalid entry is not listed */
        json_t *r = row(&d, "runtime", json_string_value(json_object_get(entry, "cron")), &meta,
                        state, now);
        if (!r || json_array_append_new(rows, r) != 0)
            st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
        warren__sched_def_clear(&d);
    }
    json_decref(rt);
    json_decref(state);
    if (st != WARREN_OK) {
        json_decref(rows);
        return st;
    }
    *out = rows;
    return WARREN_OK;
}

/* ---- the public API ------------------------------------------------------------ */

warren_status warren__sched_store_connect(const warren_producer_opts *opts,
                                          struct warren_conn **out, char *ns, size_t ns_size,
                                          warren_error *err)
{
    const char *env = getenv("WARREN_URL");
    const char *list = opts && opts->urls && opts->urls[0] ? opts->urls
                       : env && env[0]                     ? env
                                       : "amqp://guest:guest@127.0.0.1:5672/";
    snprintf(ns, ns_size, "%s",
             opts && opts->namespace_ && opts->namespace_[0] ? opts->namespace_ : "warren");
    size_t n = 0;
    char **urls = warren__url_list(list, &n);
    if (!urls)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    struct warren_tls_conf tls;
    memset(&tls, 0, sizeof tls);
    tls.ca_cert = opts ? (char *)opts->tls_ca_cert : NULL;
    tls.cert = opts ? (char *)opts->tls_cert : NULL;
    tls.key = opts ? (char *)opts->tls_key : NULL;
    tls.verify_peer = !(opts && opts->tls_no_verify_peer);
    tls.verify_hostname = !(opts && opts->tls_no_verify_hostname);
    struct warren_conn_opts co = {opts && opts->heartbeat ? opts->heartbeat : 30,
                                  opts ? opts->password_file : NULL, &tls, "warren schedule"};
    warren_status st = warren__conn_open(out, urls, n, &co, err);
    warren__strv_free(urls);
    return st;
}

static warren_status change(const warren_producer_opts *opts, char op,
                            const warren_schedule_def *def, const char *name, warren_error *err)
{
    if (op == 'a') {
        warren_status st = warren_schedule_validate(def, err);
        if (st != WARREN_OK)
            return st;
    } else if (!warren__sched_name_valid(name)) {
        return warren_error_set(err, WARREN_EINVAL,
                                "schedule name '%s' is not [A-Za-z0-9_.-]{1,128}",
                                name ? name : "");
    }
    struct warren_conn *c = NULL;
    char ns[128];
    warren_status st = warren__sched_store_connect(opts, &c, ns, sizeof ns, err);
    if (st == WARREN_OK)
        st = warren__sched_store_change(c, ns, 0, op, def, name, err);
    warren__conn_close(c);
    return st;
}

warren_status warren_schedule_add(const warren_producer_opts *conn, const warren_schedule_def *def,
                                  warren_error *err)
{
    return change(conn, 'a', def, NULL, err);
}

warren_status warren_schedule_remove(const warren_producer_opts *conn, const char *name,
                                     warren_error *err)
{
    return change(conn, 'r', NULL, name, err);
}

warren_status warren_schedule_pause(const warren_producer_opts *conn, const char *name,
                                    warren_error *err)
{
    return change(conn, 'p', NULL, name, err);
}

warren_status warren_schedule_resume(const warren_producer_opts *conn, const char *name,
                                     warren_error *err)
{
    return change(conn, 'u', NULL, name, err);
}

warren_status warren_schedule_list(const warren_producer_opts *conn, json_t **out,
                                   warren_error *err)
{
    struct warren_conn *c = NULL;
    char ns[128];
    *out = NULL;
    warren_status st = warren__sched_store_connect(conn, &c, ns, sizeof ns, err);
    if (st == WARREN_OK)
        st = warren__sched_store_list(c, ns, NULL, 0, now_ms(), out, err);
    warren__conn_close(c);
    return st;
}
