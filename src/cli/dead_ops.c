/* Listing, replaying and purging the letters of one dead-letter queue:
 * see dead_ops.h for the walk and its guarantees. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/log.h>
#include "dead_ops.h"
#include "job.h"
#include "topology.h"

#define AUDIT_IDS_MAX 50 /* ids named in one purge audit line */
#define CONFIRM_TIMEOUT_MS 30000

/* What a walk's visitor did with the letter it was shown. */
enum visit {
    VISIT_HOLD,      /* keep it: it is requeued when the walk ends */
    VISIT_DONE,      /* it was acked */
    VISIT_HOLD_STOP, /* keep it and end the walk */
    VISIT_FAIL,      /* the connection failed (err is set) */
};

typedef enum visit (*visit_fn)(struct warren_conn_delivery *d, const struct dead_letter *l,
                               void *user, warren_error *err);

/* ---- audit --------------------------------------------------------------- */

/* The fields every audit line carries: who, which queue, which filter. */
static json_t *audit_fields(const struct dead_request *o, const char *dead)
{
    const char *user = o->actor ? o->actor : getenv("USER");
    struct passwd *pw = (user && user[0]) ? NULL : getpwuid(getuid());
    json_t *filter = json_object();
    if (o->n_ids) {
        json_t *ids = json_array();
        for (size_t i = 0; i < o->n_ids; i++)
            json_array_append_new(ids, dead_json_text(o->ids[i]));
        json_object_set_new(filter, "ids", ids);
    }
    if (o->all)
        json_object_set_new(filter, "all", json_true());
    const char *const names[] = {"worker", "reason", "since", "error"};
    const char *const values[] = {o->filter.worker, o->filter.reason, o->filter.since_text,
                                  o->filter.error};
    for (size_t i = 0; i < 4; i++)
        if (values[i])
            json_object_set_new(filter, names[i], dead_json_text(values[i]));
    json_t *f = json_object();
    json_object_set_new(f, "user", dead_json_text(user && user[0] ? user : pw ? pw->pw_name : ""));
    json_object_set_new(f, "uid", json_integer((json_int_t)getuid()));
    json_object_set_new(f, "queue", dead_json_text(o->queue));
    json_object_set_new(f, "dead_queue", dead_json_text(dead));
    json_object_set_new(f, "filter", filter);
    return f;
}

/* Writes one audit line; steals `fields`. */
static void audit(const char *msgid, json_t *fields, const char *what, const char *queue)
{
    char *text = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
    warren_log_write(WARREN_LOG_INFO, msgid, text, "%s in %s", what, queue);
    free(text);
    json_decref(fields);
}

/* ---- walking the letters ------------------------------------------------- */

struct walk {
    struct warren_conn *conn;
    const char *dead;          /* full queue name */
    const char *jobs_exchange; /* the namespace's */
    uint32_t present;          /* letters when the command started */
    uint64_t *held;            /* tags to requeue at the end, in order taken */
    size_t n_held, cap_held;
};

static int hold(struct walk *w, uint64_t tag)
{
    if (w->n_held == w->cap_held) {
        size_t cap = w->cap_held ? w->cap_held * 2 : 64;
        uint64_t *h = realloc(w->held, cap * sizeof *h);
        if (!h)
            return -1;
        w->held = h;
        w->cap_held = cap;
    }
    w->held[w->n_held++] = tag;
    return 0;
}

/* Returns once the queue counts the letters just requeued again, or after
 * about 2 s. basic.reject is asynchronous, and the broker answers a
 * queue's count from another process than the one that requeues: a
 * listing right after a walk (the page reloads its groups after each
 * replay or purge) could otherwise find the held letters missing. */
static void wait_requeued(struct walk *w)
{
    for (int i = 0; i < 40 && w->n_held > 0; i++) {
        uint32_t n = 0;
        warren_error err;
        warren_error_clear(&err);
        if (warren__conn_queue_inspect(w->conn, w->dead, &n, NULL, &err) != WARREN_OK ||
            n >= w->n_held)
            return;
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Shows each of the letters present to `fn`, then requeues those held.
 * 0 ok, -1 on a broker error (err set; the broker requeues whatever was
 * still unacked when the connection closes). */
static int walk_run(struct walk *w, visit_fn fn, void *user, warren_error *err)
{
    for (uint32_t i = 0; i < w->present; i++) {
        struct warren_conn_delivery d;
        warren_error_clear(err);
        warren_status st = warren__conn_get(w->conn, w->dead, &d, err);
        if (st == WARREN_ENOTFOUND && err->code == WARREN_OK)
            break; /* fewer letters than counted: others took some */
        if (st != WARREN_OK)
            return -1;
        struct dead_letter l;
        enum visit v = VISIT_FAIL;
        if (dead_letter_read(&l, &d.message.properties, w->jobs_exchange) == 0) {
            v = fn(&d, &l, user, err);
            dead_letter_free(&l);
        } else {
            warren_error_set(err, WARREN_ENOMEM, "out of memory reading a letter");
        }
        if ((v == VISIT_HOLD || v == VISIT_HOLD_STOP) && hold(w, d.delivery_tag) != 0)
            v = VISIT_FAIL;
        warren__conn_delivery_free(&d);
        if (v == VISIT_FAIL)
            return -1;
        if (v == VISIT_HOLD_STOP)
            break;
    }
    for (size_t i = 0; i < w->n_held; i++)
        if (warren__conn_reject(w->conn, w->held[i], 1, err) != WARREN_OK)
            return -1;
    wait_requeued(w);
    return 0;
}

/* The status of a walk that returned rc: a failure without a broker error
 * was a failed allocation. */
static warren_status walk_status(int rc, warren_error *err)
{
    if (rc == 0)
        return WARREN_OK;
    if (err->code == WARREN_OK)
        warren_error_set(err, WARREN_ENOMEM, "out of memory");
    return err->code;
}

/* ---- list ----------------------------------------------------------------- */

struct list_state {
    const struct dead_request *o;
    struct dead_output *out;
    long long now;
};

static enum visit list_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                             void *user, warren_error *err)
{
    struct list_state *s = user;
    (void)err;
    if (!dead_filter_match(&s->o->filter, l, s->now))
        return VISIT_HOLD;
    dead_output_add(s->out, l, &d->message);
    /* --group counts every letter; a plain list stops at --limit. */
    return !s->out->group && (long)s->out->n >= s->o->limit ? VISIT_HOLD_STOP : VISIT_HOLD;
}

static warren_status run_list(const struct dead_request *o, struct walk *w,
                              struct dead_output *out, warren_error *err)
{
    struct list_state s = {o, out, dead_now_ms()};
    return walk_status(walk_run(w, list_visit, &s, err), err);
}

/* ---- replay --------------------------------------------------------------- */

struct replay_state {
    const struct dead_request *o;
    struct walk *w;
    struct dead_output *out; /* for a dry run */
    long long now;
    struct dead_result *res;
};

/* Headers a replayed copy leaves behind: the dead letter's, those of the
 * attempts before (a replay starts again at attempt 1), the broker's, and
 * the replay count, which replay_publish sets anew. */
static int dropped_on_replay(amqp_bytes_t key)
{
    static const char *const exact[] = {
        "x-warren-dead-reason", "x-warren-error", "x-warren-attempts", "x-warren-failed-at",
        "x-warren-queue",       "x-warren-host",  "x-warren-attempt",  "x-warren-last-error",
        "x-warren-snoozes",     "x-death",        "x-delivery-count",  "x-warren-replay",
    };
    static const char *const prefixes[] = {"x-warren-original-", "x-first-death-", "x-last-death-"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (key.len == strlen(exact[i]) && !memcmp(key.bytes, exact[i], key.len))
            return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (key.len >= strlen(prefixes[i]) && !memcmp(key.bytes, prefixes[i], strlen(prefixes[i])))
            return 1;
    return 0;
}

/* Publishes the letter's copy to the jobs exchange and waits for its
 * confirm. The copy's headers borrow from the delivery. It counts one
 * more replay than the letter (x-warren-replay), so the job history ranks
 * the new run above the events of the one that went dead. */
static warren_status replay_publish(struct walk *w, const struct warren_conn_delivery *d,
                                    const struct dead_letter *l, warren_error *err)
{
    const amqp_basic_properties_t *orig = &d->message.properties;
    int n = (orig->_flags & AMQP_BASIC_HEADERS_FLAG) ? orig->headers.num_entries : 0;
    amqp_table_entry_t *e = calloc((size_t)n + 2, sizeof *e);
    if (!e)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!dropped_on_replay(orig->headers.entries[i].key))
            e[k++] = orig->headers.entries[i];
    e[k].key = amqp_cstring_bytes("x-warren-attempt");
    e[k].value.kind = AMQP_FIELD_KIND_I64;
    e[k++].value.value.i64 = 1;
    e[k].key = amqp_cstring_bytes("x-warren-replay");
    e[k].value.kind = AMQP_FIELD_KIND_I32;
    e[k++].value.value.i32 = l->replay < WARREN_MAX_REPLAY ? l->replay + 1 : WARREN_MAX_REPLAY;
    amqp_basic_properties_t p = *orig;
    p._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.headers.num_entries = k;
    p.headers.entries = e;
    uint64_t seq;
    /* Not mandatory: the jobs exchange's alternate exchange keeps a job no
     * queue serves, as for any producer. */
    warren_status st = warren__conn_publish(w->conn, w->jobs_exchange, l->worker, 0, &p,
                                            d->message.body.bytes, d->message.body.len, &seq, err);
    if (st == WARREN_OK)
        st = warren__conn_wait_confirms(w->conn, seq, CONFIRM_TIMEOUT_MS, err);
    free(e);
    return st;
}

/* Raises the state of every --id that names the letter; returns whether
 * one does. */
static int note_ids(struct replay_state *s, const struct dead_letter *l, enum dead_id_state state)
{
    int named = 0;
    for (size_t i = 0; i < s->o->n_ids; i++) {
        if (strcmp(l->id, s->o->ids[i]) != 0)
            continue;
        named = 1;
        if (s->res->seen[i] < state)
            s->res->seen[i] = (unsigned char)state;
    }
    return named;
}

static void replay_audit(struct replay_state *s, const struct dead_letter *l)
{
    json_t *f = audit_fields(s->o, s->w->dead);
    json_object_set_new(f, "id", dead_json_text(l->id));
    json_object_set_new(f, "worker", dead_json_text(l->worker));
    json_object_set_new(f, "reason", dead_json_text(l->reason));
    char id[100], what[256];
    dead_cell(id, sizeof id, l->id, 64);
    snprintf(what, sizeof what, "replayed dead letter %s to %s", id, l->worker);
    audit("dead.replay", f, what, s->w->dead);
}

static enum visit replay_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                               void *user, warren_error *err)
{
    struct replay_state *s = user;
    if (!dead_filter_match(&s->o->filter, l, s->now)) {
        note_ids(s, l, DEAD_ID_FILTERED);
        return VISIT_HOLD;
    }
    if (!note_ids(s, l, DEAD_ID_KEPT) && !s->o->all)
        return VISIT_HOLD;
    if (!l->worker_ok) {
        char id[100];
        dead_cell(id, sizeof id, l->id[0] ? l->id : "(no id)", 64);
        WARREN_LOG(WARREN_LOG_WARN, "dead.kept", "letter %s has no usable worker name; kept", id);
        s->res->skipped++;
        return VISIT_HOLD;
    }
    if (s->o->dry_run) {
        dead_output_add(s->out, l, &d->message);
        note_ids(s, l, DEAD_ID_REPLAYED);
        return VISIT_HOLD;
    }
    warren_status st = replay_publish(s->w, d, l, err);
    if (st == WARREN_OK) {
        replay_audit(s, l);
        note_ids(s, l, DEAD_ID_REPLAYED);
        if (warren__conn_ack(s->w->conn, d->delivery_tag, err) != WARREN_OK)
            return VISIT_FAIL;
        s->res->replayed++;
        return VISIT_DONE;
    }
    if (warren__conn_broken(s->w->conn))
        return VISIT_FAIL;
    /* Refused (nack) or unconfirmed: the letter stays. */
    WARREN_LOG(WARREN_LOG_WARN, "dead.refused", "%s: %s", s->w->dead, err->text);
    warren_error_clear(err);
    s->res->refused++;
    return VISIT_HOLD;
}

static warren_status run_replay(const struct dead_request *o, struct walk *w,
                                struct dead_output *out, struct dead_result *res,
                                warren_error *err)
{
    struct replay_state s = {o, w, out, dead_now_ms(), res};
    return walk_status(walk_run(w, replay_visit, &s, err), err);
}

/* ---- purge ---------------------------------------------------------------- */

struct purge_state {
    const struct dead_request *o;
    struct walk *w;
    struct dead_output *out; /* for a dry run */
    long long now;
    json_t *ids; /* of the letters removed, for the audit line */
    size_t purged;
};

static enum visit purge_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                              void *user, warren_error *err)
{
    struct purge_state *s = user;
    if (!dead_filter_match(&s->o->filter, l, s->now))
        return VISIT_HOLD;
    if (s->o->dry_run) {
        dead_output_add(s->out, l, &d->message);
        return VISIT_HOLD;
    }
    if (warren__conn_ack(s->w->conn, d->delivery_tag, err) != WARREN_OK)
        return VISIT_FAIL;
    if (s->purged++ < AUDIT_IDS_MAX)
        json_array_append_new(s->ids, dead_json_text(l->id));
    return VISIT_DONE;
}

static void purge_audit(const struct dead_request *o, const char *dead, json_t *ids, size_t n)
{
    json_t *f = audit_fields(o, dead);
    json_object_set_new(f, "count", json_integer((json_int_t)n));
    if (ids) {
        json_object_set(f, "ids", ids);
        if (n > json_array_size(ids))
            json_object_set_new(f, "ids_not_shown",
                                json_integer((json_int_t)(n - json_array_size(ids))));
    }
    char what[64];
    snprintf(what, sizeof what, "purged %zu dead letter(s)", n);
    audit("dead.purge", f, what, dead);
}

static warren_status run_purge(const struct dead_request *o, struct walk *w,
                               struct dead_output *out, struct dead_result *res,
                               warren_error *err)
{
    if (!dead_filter_active(&o->filter) && !o->dry_run) {
        uint32_t purged = 0;
        if (warren__conn_queue_purge(w->conn, w->dead, &purged, err) != WARREN_OK)
            return err->code;
        purge_audit(o, w->dead, NULL, purged);
        res->purged = purged;
        return WARREN_OK;
    }
    struct purge_state s = {o, w, out, dead_now_ms(), json_array(), 0};
    int rc = walk_run(w, purge_visit, &s, err);
    /* What was acked is gone even when the walk failed later on. */
    if (!o->dry_run && (rc == 0 || s.purged))
        purge_audit(o, w->dead, s.ids, s.purged);
    res->purged = s.purged;
    json_decref(s.ids);
    return walk_status(rc, err);
}

/* ---- the operation -------------------------------------------------------- */

warren_status dead_run(const struct dead_request *r, struct warren_conn *conn, const char *ns,
                       struct dead_output *out, struct dead_result *res, warren_error *err)
{
    memset(res, 0, sizeof *res);
    res->seen = calloc(r->n_ids + 1, 1);
    if (!res->seen)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    char dead[WARREN_AMQP_NAME_MAX], ex[WARREN_AMQP_NAME_MAX];
    warren__name_dead(dead, sizeof dead, ns, r->queue);
    warren__name_exchange(ex, sizeof ex, ns);
    struct walk w = {conn, dead, ex, 0, NULL, 0, 0};
    warren_status st = warren__conn_queue_inspect(conn, dead, &w.present, NULL, err);
    if (st == WARREN_ENOTFOUND) {
        warren_error_clear(err); /* the broker's 404 text says less */
        return warren_error_set(err, WARREN_ENOTFOUND, "no queue '%s' (%s does not exist)",
                                r->queue, dead);
    }
    /* A replay is a producer: like one, it makes sure the jobs exchange and
     * its alternate exchange exist, so an unserved job is kept. */
    if (st == WARREN_OK && r->op == DEAD_REPLAY && !r->dry_run)
        st = warren__topology_declare_base(conn, ns, 0, NULL, NULL, err);
    if (st != WARREN_OK)
        return st;
    res->present = w.present;
    if (r->op == DEAD_LIST && r->scan_limit > 0 && w.present > (uint32_t)r->scan_limit)
        w.present = (uint32_t)r->scan_limit;
    st = r->op == DEAD_LIST     ? run_list(r, &w, out, err)
         : r->op == DEAD_REPLAY ? run_replay(r, &w, out, res, err)
                                : run_purge(r, &w, out, res, err);
    free(w.held);
    return st;
}

void dead_result_free(struct dead_result *res)
{
    free(res->seen);
    res->seen = NULL;
}
