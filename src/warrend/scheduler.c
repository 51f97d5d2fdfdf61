/* The scheduler in the supervisor: lock, shared state, fires.
 *
 * DESIGN. One connection of our own, one state machine advanced by
 * ticks: no connection -> connected (waiting for the lock) -> leader.
 *
 * The lock is the exclusive queue <ns>.scheduler.lock: the broker lets one
 * connection own it and deletes it when that connection closes or dies
 * (a killed host's socket closes with it). A host that finds it taken
 * (405 RESOURCE_LOCKED) asks again every 2 s; the leader declares it again
 * every 2 s too, which notices a lock deleted by hand (and takes it back
 * unless another host was faster, in which case it steps down). Jobs and
 * state are published on the lock's own connection, so a host that lost
 * its connection cannot fire anything more: two leaders never publish.
 *
 * The state is one JSON document (schedule.h) as the only message of the
 * durable queue <ns>.scheduler.state, declared with x-max-length = 1 and
 * x-overflow = drop-head: publishing a new document drops the old one.
 * A new leader reads it with basic.get and at once rejects it with
 * requeue, so nothing is ever held unacked (RabbitMQ's consumer_timeout
 * would take it back after 30 minutes); then it keeps the document in
 * memory and publishes a new one, with a publisher confirm, after each
 * round of fires.
 *
 * Crash safety: a fire is published (confirmed) before the state that
 * records it. A leader that dies between the two leaves the old state,
 * and the next leader fires that time again if it is still the most
 * recent one due: at most one duplicate per schedule, with the same
 * message_id (<schedule>@<fire time>), which handlers and consumers can
 * use to drop it. A fire is never lost to a crash, except under the
 * catch-up rule itself (a newer fire time supersedes it). With max_count,
 * such a duplicate is counted once, so at most one extra job runs.
 *
 * Never blocking the supervisor: every broker call is bounded (the rpc
 * timeout and confirm waits are IO_TIMEOUT_MS), a failed connection is
 * retried with backoff (0.1 s doubling to 30 s, with jitter) from later
 * ticks, and one tick fires for at most FIRE_BUDGET_MS before leaving the
 * rest to the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <amqp.h>
#include <warren/log.h>
#include "conn.h"
#include "schedule.h"
#include "schedule_store.h"
#include "scheduler.h"
#include "signature.h"
#include "topology.h"

#define IO_TIMEOUT_MS 1500
#define LOCK_RETRY_MS 2000   /* a waiting host asks for the lock this often */
#define LOCK_CHECK_MS 2000   /* the leader checks it still holds it this often */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define FIRE_BUDGET_MS 500
#define REFUSED_RETRY_MS 1000
#define STATE_READ_MAX 64    /* messages read from the state queue at takeover */
#define RUNTIME_READ_MS 1000 /* the leader re-reads the runtime schedules this often */

/* Broker settings, copied from the config. */
struct settings {
    char ns[64];
    char host[256];
    char **urls;
    size_t n_urls;
    int heartbeat;
    char *password_file;
    struct warren_tls_conf tls;
    int quorum;
    char *signing_key_file;
};

struct entry {
    struct warren_sched_def def;
    struct warren_sched_state st;
    long long next_ms;   /* wall clock: when it is next due; -1 never */
    int runtime;         /* added at run time (after the config's, in entries[]) */
    int paused;          /* runtime only: paused with `warren schedule pause` */
};

struct warrend_scheduler {
    struct settings set;
    char lock_queue[WARREN_AMQP_NAME_MAX];
    char state_queue[WARREN_AMQP_NAME_MAX];
    char exchange[WARREN_AMQP_NAME_MAX];
    struct warren_sig_key *key; /* NULL: fired jobs go unsigned */
    struct entry *entries;
    size_t n;                  /* config schedules, then runtime ones */
    size_t n_config;
    char runtime_queue[WARREN_AMQP_NAME_MAX];
    json_t *runtime_seen;      /* the runtime set entries[] was built from (leader) */
    long long runtime_at;      /* monotonic: next read of the runtime set */

    struct warren_conn *conn;
    int leader;
    int forgotten;             /* the socket was closed in a forked child */
    json_t *doc;               /* the state document, while leader */
    int dirty;                 /* entries changed since the last state write */

    long long retry_at;        /* monotonic: next connection attempt */
    long long backoff_ms;
    int failures;              /* consecutive failed connection attempts */
    long long lock_at;         /* monotonic: next lock attempt or check */
    long long state_retry_at;  /* monotonic: next state write after a refusal */
    int standby_logged;
    unsigned rng;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- settings ------------------------------------------------------------ */

static char *dup_path(const struct warren_config *cfg, const char *path, int *failed)
{
    char buf[4096];
    if (!path)
        return NULL;
    const char *abs = warren__config_path(cfg, path, buf, sizeof buf);
    char *s = strdup(abs ? abs : path);
    if (!s)
        *failed = 1;
    return s;
}

static void settings_free(struct settings *set)
{
    warren__strv_free(set->urls);
    free(set->password_file);
    free(set->tls.ca_cert);
    free(set->tls.cert);
    free(set->tls.key);
    free(set->signing_key_file);
    memset(set, 0, sizeof *set);
}

static int settings_init(struct settings *set, const struct warren_config *cfg)
{
    int failed = 0;
    memset(set, 0, sizeof *set);
    snprintf(set->ns, sizeof set->ns, "%s", cfg->namespace_);
    snprintf(set->host, sizeof set->host, "%s", cfg->host_name);
    set->urls = calloc(cfg->n_urls + 1, sizeof *set->urls);
    failed |= set->urls == NULL;
    for (size_t i = 0; set->urls && i < cfg->n_urls; i++) {
        set->urls[i] = strdup(cfg->urls[i]);
        failed |= set->urls[i] == NULL;
        set->n_urls += set->urls[i] != NULL;
    }
    set->heartbeat = cfg->heartbeat;
    set->password_file = dup_path(cfg, cfg->password_file, &failed);
    set->tls.ca_cert = dup_path(cfg, cfg->tls.ca_cert, &failed);
    set->tls.cert = dup_path(cfg, cfg->tls.cert, &failed);
    set->tls.key = dup_path(cfg, cfg->tls.key, &failed);
    set->tls.verify_peer = cfg->tls.verify_peer;
    set->tls.verify_hostname = cfg->tls.verify_hostname;
    set->signing_key_file = dup_path(cfg, cfg->signing_key_file, &failed);
    for (size_t i = 0; i < cfg->n_queues; i++)
        set->quorum |= cfg->queues[i].type == WARREN_QUEUE_QUORUM;
    if (failed) {
        settings_free(set);
        return -1;
    }
    return 0;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether a connection made with `a` serves `b` as well. */
static int settings_same_broker(const struct settings *a, const struct settings *b)
{
    if (strcmp(a->ns, b->ns) || strcmp(a->host, b->host) || a->n_urls != b->n_urls ||
        a->heartbeat != b->heartbeat || a->quorum != b->quorum ||
        !same_str(a->password_file, b->password_file) ||
        !same_str(a->tls.ca_cert, b->tls.ca_cert) || !same_str(a->tls.cert, b->tls.cert) ||
        !same_str(a->tls.key, b->tls.key) || a->tls.verify_peer != b->tls.verify_peer ||
        a->tls.verify_hostname != b->tls.verify_hostname)
        return 0;
    for (size_t i = 0; i < a->n_urls; i++)
        if (strcmp(a->urls[i], b->urls[i]))
            return 0;
    return 1;
}

/* ---- create and destroy ---------------------------------------------------- */

static void free_entries(struct entry *entries, size_t n)
{
    for (size_t i = 0; entries && i < n; i++)
        warren__sched_def_clear(&entries[i].def);
    free(entries);
}

/* Frees everything but leaves the connection alone. */
static void free_scheduler(struct warrend_scheduler *s)
{
    free_entries(s->entries, s->n);
    json_decref(s->doc);
    json_decref(s->runtime_seen);
    warren__sig_key_free(s->key);
    settings_free(&s->set);
    free(s);
}

warren_status warrend_scheduler_create(struct warrend_scheduler **out,
                                       const struct warren_config *cfg, warren_error *err)
{
    *out = NULL;
    /* Created even without config schedules: runtime ones may be added
     * at any time (`warren schedule add`), and some host must fire them. */
    struct warrend_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (settings_init(&s->set, cfg) != 0) {
        free(s);
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    }
    snprintf(s->lock_queue, sizeof s->lock_queue, "%s.scheduler.lock", s->set.ns);
    snprintf(s->state_queue, sizeof s->state_queue, "%s.scheduler.state", s->set.ns);
    warren__sched_runtime_queue(s->runtime_queue, sizeof s->runtime_queue, s->set.ns);
    warren__name_exchange(s->exchange, sizeof s->exchange, s->set.ns);
    s->backoff_ms = BACKOFF_MIN_MS;
    s->rng = (unsigned)getpid() ^ (unsigned)wall_ms();
    warren_status st = WARREN_OK;
    s->entries = calloc(cfg->n_schedules + 1, sizeof *s->entries);
    if (!s->entries)
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    for (size_t i = 0; st == WARREN_OK && i < cfg->n_schedules; i++) {
        st = warren__sched_def_init(&s->entries[i].def, &cfg->schedules[i], err);
        s->n = i + 1; /* the failed one too: def_init leaves it clearable */
        s->entries[i].next_ms = -1;
    }
    s->n_config = s->n;
    if (st == WARREN_OK && s->set.signing_key_file)
        st = warren__sig_key_load(&s->key, s->set.signing_key_file, err);
    if (st != WARREN_OK) {
        free_scheduler(s);
        return st;
    }
    *out = s;
    return WARREN_OK;
}

void warrend_scheduler_destroy(struct warrend_scheduler *s)
{
    if (!s)
        return;
    if (s->conn && !s->forgotten) {
        /* A clean close deletes the exclusive lock queue at once, so
         * another host takes over within its next retry. */
        warren__conn_close(s->conn);
        if (s->leader)
            WARREN_LOG(WARREN_LOG_INFO, "scheduler.released",
                       "scheduler lock %s released", s->lock_queue);
    }
    free_scheduler(s);
}

void warrend_scheduler_forget_in_child(struct warrend_scheduler *s)
{
    if (!s || !s->conn || s->forgotten)
        return;
    int fd = amqp_get_sockfd(warren__conn_state(s->conn));
    if (fd >= 0)
        close(fd);
    s->forgotten = 1;
}

int warrend_scheduler_is_leader(const struct warrend_scheduler *s)
{
    return s && s->leader;
}

/* ---- the connection ---------------------------------------------------------- */

/* The delay before the next attempt: 0.1 s doubling to 30 s, +-20 %. */
static long long next_backoff(struct warrend_scheduler *s)
{
    long long d = s->backoff_ms;
    s->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    s->rng = s->rng * 1103515245u + 12345u;
    double jitter = ((double)((s->rng >> 8) % 4001) / 10000.0) - 0.2; /* -0.2 .. +0.2 */
    return (long long)((double)d * (1.0 + jitter));
}

static void drop_connection(struct warrend_scheduler *s, const char *why)
{
    long long mono = mono_ms();
    if (s->leader)
        warren_log_write(WARREN_LOG_WARN, "scheduler.lost", NULL,
                         "scheduler connection lost (%s); no longer firing schedules", why);
    else
        warren_log_write(WARREN_LOG_WARN, "scheduler.disconnected", NULL,
                         "scheduler connection lost (%s)", why);
    warren__conn_close(s->conn);
    s->conn = NULL;
    s->leader = 0;
    json_decref(s->doc);
    s->doc = NULL;
    /* The backoff is reset only once a connection reached the lock, so a
     * broker that accepts connections and then fails us is not hammered. */
    s->retry_at = mono + next_backoff(s);
}

static warren_status declare_state_queue(struct warrend_scheduler *s, warren_error *err)
{
    amqp_table_entry_t args[2];
    args[0].key = amqp_cstring_bytes("x-max-length");
    args[0].value.kind = AMQP_FIELD_KIND_I64;
    args[0].value.value.i64 = 1;
    args[1].key = amqp_cstring_bytes("x-overflow");
    args[1].value.kind = AMQP_FIELD_KIND_UTF8;
    args[1].value.value.bytes = amqp_cstring_bytes("drop-head");
    amqp_table_t t = {2, args};
    return warren__topology_ensure_queue(s->conn, s->state_queue, t, s->set.quorum, err);
}

static int connect_broker(struct warrend_scheduler *s, long long mono)
{
    char name[300];
    warren_error err;
    warren_error_clear(&err);
    snprintf(name, sizeof name, "warrend scheduler (%s)", s->set.host);
    struct warren_conn_opts co = {s->set.heartbeat, s->set.password_file, &s->set.tls, name};
    warren_status st = warren__conn_open(&s->conn, s->set.urls, s->set.n_urls, &co, &err);
    if (st == WARREN_OK) {
        /* Every RPC (declare, get, close) is bounded from here on; one that
         * times out marks the connection broken and we start over. */
        struct timeval tv = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
        amqp_set_rpc_timeout(warren__conn_state(s->conn), &tv);
        st = warren__topology_declare_base(s->conn, s->set.ns, s->set.quorum, NULL, NULL, &err);
    }
    if (st == WARREN_OK)
        st = declare_state_queue(s, &err);
    if (st == WARREN_OK)
        st = warren__sched_store_declare(s->conn, s->runtime_queue, s->set.quorum, &err);
    if (st != WARREN_OK) {
        warren__conn_close(s->conn);
        s->conn = NULL;
        long long delay = next_backoff(s);
        s->retry_at = mono + delay;
        /* The first failure is worth a warning; the retries that follow
         * only at debug level, until one succeeds. */
        warren_log_write(s->failures++ == 0 ? WARREN_LOG_WARN : WARREN_LOG_DEBUG,
                         "scheduler.connect", NULL, "scheduler cannot use the broker: %s; "
                         "retrying in %lld ms", err.text, delay);
        return 0;
    }
    if (s->failures)
        WARREN_LOG(WARREN_LOG_INFO, "scheduler.connected",
                   "scheduler connected to %s after %d failed attempt(s)",
                   warren__conn_url(s->conn), s->failures);
    s->failures = 0;
    s->lock_at = mono;
    return 1;
}

/* Reads frames that arrived (heartbeats, a close) without waiting. */
static int pump(struct warrend_scheduler *s)
{
    warren_error err;
    warren_error_clear(&err);
    if (warren__conn_pump(s->conn, 0, &err) == WARREN_OK && !warren__conn_broken(s->conn))
        return 1;
    drop_connection(s, err.text[0] ? err.text : "connection broken");
    return 0;
}

/* ---- the state ------------------------------------------------------------ */

/* Fills each entry's state from the document; a schedule it does not
 * know yet starts counting now (so it fires nothing from the past). */
static void init_entries(struct warrend_scheduler *s, long long now)
{
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];
        if (!warren__sched_doc_get(s->doc, e->def.name, &e->st)) {
            e->st.since_ms = now;
            s->dirty = 1;
        }
        e->next_ms = warren__sched_next_due(&e->def, &e->st);
        if (e->next_ms < 0 && !warren__sched_exhausted(&e->def, &e->st))
            warren_log_write(WARREN_LOG_WARN, "schedule.never", NULL,
                             "schedule %s will not fire again", e->def.name);
    }
}

/* Reads the newest state document (the last ready message) and puts
 * every message read back at once. */
static warren_status load_state(struct warrend_scheduler *s, warren_error *err)
{
    uint64_t tags[STATE_READ_MAX];
    int n = 0;
    json_t *doc = NULL;
    char why[256] = "";
    warren_status st = WARREN_OK;
    while (n < STATE_READ_MAX) {
        struct warren_conn_delivery d;
        st = warren__conn_get(s->conn, s->state_queue, &d, err);
        if (st == WARREN_ENOTFOUND) {
            st = WARREN_OK;
            break;
        }
        if (st != WARREN_OK)
            break;
        tags[n++] = d.delivery_tag;
        json_decref(doc);
        doc = warren__sched_doc_parse(d.message.body.bytes, d.message.body.len, why, sizeof why);
        warren__conn_delivery_free(&d);
        if (!doc) {
            st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
            break;
        }
    }
    for (int i = 0; i < n && st == WARREN_OK; i++)
        st = warren__conn_reject(s->conn, tags[i], 1, err);
    if (st == WARREN_OK && !doc && !(doc = warren__sched_doc_new()))
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (st != WARREN_OK) {
        json_decref(doc);
        return st;
    }
    if (why[0])
        warren_log_write(WARREN_LOG_WARN, "scheduler.state", NULL,
                         "the state in %s is unreadable (%s); starting from no state",
                         s->state_queue, why);
    if (n > 1)
        warren_log_write(WARREN_LOG_WARN, "scheduler.state", NULL,
                         "%s holds %d messages: it was declared without x-max-length = 1; "
                         "delete it so warren can declare it again", s->state_queue, n);
    json_decref(s->doc);
    s->doc = doc;
    return WARREN_OK;
}

static void write_state(struct warrend_scheduler *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (warren__sched_doc_set(s->doc, s->entries[i].def.name, &s->entries[i].st) != 0) {
            s->state_retry_at = mono_ms() + REFUSED_RETRY_MS;
            return;
        }
    char *text = warren__sched_doc_dump(s->doc, s->set.host, wall_ms());
    if (!text) {
        warren_log_write(WARREN_LOG_ERROR, "scheduler.state", NULL,
                         "cannot serialise the state: out of memory");
        s->state_retry_at = mono_ms() + REFUSED_RETRY_MS;
        return;
    }
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__conn_publish_confirmed(s->conn, "", s->state_queue, &props, text,
                                                      strlen(text), IO_TIMEOUT_MS, &err);
    free(text);
    if (st == WARREN_OK) {
        s->dirty = 0;
        return;
    }
    if (st != WARREN_ENACK || warren__conn_broken(s->conn)) {
        drop_connection(s, err.text);
        return;
    }
    /* Refused or returned (the queue was deleted?): declare it again and
     * retry shortly; fires go on meanwhile. */
    warren_log_write(WARREN_LOG_ERROR, "scheduler.state", NULL, "cannot write %s: %s",
                     s->state_queue, err.text);
    warren_error_clear(&err);
    if (declare_state_queue(s, &err) != WARREN_OK && warren__conn_broken(s->conn)) {
        drop_connection(s, err.text);
        return;
    }
    s->state_retry_at = mono_ms() + REFUSED_RETRY_MS;
}


/* ---- runtime schedules ------------------------------------------------------ */

/* Forgets the runtime entries (their state is in s->doc, or was written);
 * the next tick reads the runtime set again. */
static void drop_runtime(struct warrend_scheduler *s)
{
    for (size_t i = s->n_config; i < s->n; i++)
        warren__sched_def_clear(&s->entries[i].def);
    s->n = s->n_config;
    json_decref(s->runtime_seen);
    s->runtime_seen = NULL;
    s->runtime_at = 0;
}

static const struct entry *find_old(const struct entry *old, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(old[i].def.name, name))
            return &old[i];
    return NULL;
}

static int is_config_name(const struct warrend_scheduler *s, const char *name)
{
    for (size_t i = 0; i < s->n_config; i++)
        if (!strcmp(s->entries[i].def.name, name))
            return 1;
    return 0;
}

/* Builds the runtime entries from a new runtime set: a schedule this
 * leader already ran keeps its state, one it did not takes its state from
 * the state document when that is of the same definition (gen = its
 * created_at), else starts counting now. A resume moves `since` to the
 * resume time (no catch-up fire for the paused time). */
static void apply_runtime(struct warrend_scheduler *s, json_t *set, long long now)
{
    json_t *all = json_object_get(set, "schedules");
    size_t cap = s->n_config + json_object_size(all) + 1;
    struct entry *next = calloc(cap, sizeof *next);
    if (!next)
        return; /* tried again at the next read */
    memcpy(next, s->entries, s->n_config * sizeof *next);
    size_t n = s->n_config;
    struct entry *old = s->entries + s->n_config;
    size_t n_old = s->n - s->n_config;
    const char *name;
    json_t *item;
    json_object_foreach(all, name, item)
    {
        struct entry *e = &next[n];
        struct warren_sched_meta meta;
        warren_error err;
        warren_error_clear(&err);
        if (is_config_name(s, name)) {
            warren_log_write(WARREN_LOG_WARN, "schedule.shadowed", NULL,
                             "runtime schedule %s is ignored: the config has a schedule of that "
                             "name", name);
            continue;
        }
        if (warren__sched_store_decode(name, item, &e->def, &meta, &err) != WARREN_OK) {
            warren__sched_def_clear(&e->def);
            warren_log_write(WARREN_LOG_WARN, "schedule.invalid", NULL,
                             "runtime schedule %s is ignored: %s", name, err.text);
            continue;
        }
        e->runtime = 1;
        e->paused = meta.paused;
        long long gen = meta.created_ms > 0 ? meta.created_ms : 1;
        const struct entry *was = find_old(old, n_old, name);
        if (was && was->st.gen == gen) {
            e->st = was->st;
        } else if (!warren__sched_doc_get(s->doc, name, &e->st) || e->st.gen != gen) {
            e->st.last_ms = -1;
            e->st.since_ms = now;
            e->st.count = 0;
            e->st.gen = gen;
            s->dirty = 1;
        }
        if (meta.resumed_ms > e->st.since_ms && meta.resumed_ms > e->st.last_ms) {
            e->st.since_ms = meta.resumed_ms > now ? now : meta.resumed_ms;
            s->dirty = 1;
        }
        e->next_ms = e->paused ? -1 : warren__sched_next_due(&e->def, &e->st);
        if (!was || was->paused != e->paused || was->st.gen != gen)
            WARREN_LOG(WARREN_LOG_INFO, "schedule.runtime", "runtime schedule %s: %s (%s)", name,
                       e->paused ? "paused"
                       : warren__sched_exhausted(&e->def, &e->st) ? "finished"
                                                                  : "active",
                       e->def.worker);
        n++;
    }
    /* Removed ones: their state goes too. */
    json_t *states = json_object_get(s->doc, "schedules");
    for (size_t i = 0; i < n_old; i++) {
        if (!json_object_get(all, old[i].def.name)) {
            WARREN_LOG(WARREN_LOG_INFO, "schedule.runtime", "runtime schedule %s: removed",
                       old[i].def.name);
            json_object_del(states, old[i].def.name);
            s->dirty = 1;
        }
    }
    for (size_t i = 0; i < n_old; i++)
        warren__sched_def_clear(&old[i].def);
    free(s->entries);
    s->entries = next;
    s->n = n;
}

/* Reads the runtime set (basic.get + reject with requeue: nothing is held)
 * and applies it when it changed. */
static void refresh_runtime(struct warrend_scheduler *s, long long mono)
{
    s->runtime_at = mono + RUNTIME_READ_MS;
    json_t *set = NULL;
    char why[256];
    warren_error err;
    warren_error_clear(&err);
    warren_status st =
        warren__sched_store_read(s->conn, s->runtime_queue, 1, &set, NULL, why, sizeof why, &err);
    if (st != WARREN_OK) {
        if (warren__conn_broken(s->conn)) {
            drop_connection(s, err.text);
            return;
        }
        warren_log_write(WARREN_LOG_WARN, "scheduler.runtime", NULL,
                         "cannot read %s: %s; declaring it again", s->runtime_queue, err.text);
        warren_error_clear(&err);
        if (warren__sched_store_declare(s->conn, s->runtime_queue, s->set.quorum, &err) !=
                WARREN_OK &&
            warren__conn_broken(s->conn))
            drop_connection(s, err.text);
        return;
    }
    if (!set && !(set = warren__sched_store_new()))
        return;
    json_t *all = json_object_get(set, "schedules");
    if (s->runtime_seen && json_equal(s->runtime_seen, all)) {
        json_decref(set);
        return;
    }
    if (why[0])
        warren_log_write(WARREN_LOG_WARN, "scheduler.runtime", NULL,
                         "the runtime schedules in %s are unreadable (%s)", s->runtime_queue,
                         why);
    apply_runtime(s, set, wall_ms());
    json_decref(s->runtime_seen);
    s->runtime_seen = json_incref(all);
    json_decref(set);
}

/* ---- the lock ------------------------------------------------------------- */

static int take_lock(struct warrend_scheduler *s, long long mono)
{
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__conn_queue_declare_exclusive(s->conn, s->lock_queue, &err);
    if (st == WARREN_EEXIST) {
        s->lock_at = mono + LOCK_RETRY_MS;
        s->backoff_ms = BACKOFF_MIN_MS;
        if (!s->standby_logged)
            WARREN_LOG(WARREN_LOG_INFO, "scheduler.standby",
                       "another host holds %s; asking again every %d s", s->lock_queue,
                       LOCK_RETRY_MS / 1000);
        s->standby_logged = 1;
        return 0;
    }
    if (st == WARREN_OK)
        st = load_state(s, &err);
    if (st != WARREN_OK) {
        drop_connection(s, err.text);
        return 0;
    }
    s->leader = 1;
    s->standby_logged = 0;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->lock_at = mono + LOCK_CHECK_MS;
    drop_runtime(s);
    init_entries(s, wall_ms());
    if (warren_log_enabled(WARREN_LOG_INFO)) {
        char fields[300];
        snprintf(fields, sizeof fields, "{\"lock\":\"%s\",\"schedules\":%zu}", s->lock_queue,
                 s->n);
        warren_log_write(WARREN_LOG_INFO, "scheduler.leader", fields,
                         "this host now fires the schedules (%zu; lock %s)", s->n,
                         s->lock_queue);
    }
    return 1;
}

/* Declares the lock again: still ours, taken back after a deletion, or
 * lost to another host that declared it first. */
static int keep_lock(struct warrend_scheduler *s, long long mono)
{
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__conn_queue_declare_exclusive(s->conn, s->lock_queue, &err);
    if (st == WARREN_OK) {
        s->lock_at = mono + LOCK_CHECK_MS;
        return 1;
    }
    if (st == WARREN_EEXIST) {
        warren_log_write(WARREN_LOG_WARN, "scheduler.lost", NULL,
                         "%s was deleted and another host holds it now; standing by",
                         s->lock_queue);
        s->leader = 0;
        json_decref(s->doc);
        s->doc = NULL;
        s->lock_at = mono + LOCK_RETRY_MS;
        return 0;
    }
    drop_connection(s, err.text);
    return 0;
}

/* ---- firing --------------------------------------------------------------- */

static warren_status publish_fire(struct warrend_scheduler *s, const struct entry *e,
                                  const char *id, long long t, warren_error *err)
{
    char *body = json_dumps(e->def.args, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!body)
        return warren_error_set(err, WARREN_ENOMEM, "cannot serialise arguments");
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.priority = (uint8_t)e->def.priority;
    /* The fire time, not the publish time: a repeated fire (see the crash
     * note above) is then the same message, signature included. */
    props.timestamp = (uint64_t)(t / 1000);
    props.message_id = amqp_cstring_bytes(id);
    props.type = amqp_cstring_bytes(e->def.worker);
    amqp_table_entry_t h[2];
    int nh = 0;
    h[nh].key = amqp_cstring_bytes("x-warren-schedule");
    h[nh].value.kind = AMQP_FIELD_KIND_UTF8;
    h[nh++].value.value.bytes = amqp_cstring_bytes(e->def.name);
    char sig[WARREN_SIG_VALUE_SIZE];
    warren_status st = WARREN_OK;
    if (s->key) {
        st = warren__sig_sign(s->key, e->def.worker, id, 1, props.timestamp, body, strlen(body),
                              sig, err);
        h[nh].key = amqp_cstring_bytes(WARREN_SIG_HEADER);
        h[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        h[nh++].value.value.bytes = amqp_cstring_bytes(sig);
    }
    props.headers.num_entries = nh;
    props.headers.entries = h;
    if (st == WARREN_OK)
        st = warren__conn_publish_confirmed(s->conn, s->exchange, e->def.worker, &props, body,
                                            strlen(body), IO_TIMEOUT_MS, err);
    free(body);
    return st;
}

static void log_fired(const struct entry *e, const char *id, long long t, long long first,
                      long long now)
{
    if (!warren_log_enabled(WARREN_LOG_INFO))
        return;
    char when[40], since[40];
    warren__sched_format_time(t, when, sizeof when);
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "schedule", e->def.name, "worker",
                          e->def.worker, "id", id, "fire_time", when, "late_ms",
                          (json_int_t)(now - t), "count", (json_int_t)e->st.count);
    char *fields = f ? json_dumps(f, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (first >= 0 && first < t)
        warren_log_write(WARREN_LOG_INFO, "schedule.fired", fields,
                         "schedule %s fired %s as %s (%lld ms late; the most recent of the "
                         "fires missed since %s)",
                         e->def.name, e->def.worker, id, now - t,
                         warren__sched_format_time(first, since, sizeof since));
    else
        warren_log_write(WARREN_LOG_INFO, "schedule.fired", fields,
                         "schedule %s fired %s as %s (%lld ms late)", e->def.name,
                         e->def.worker, id, now - t);
    free(fields);
    json_decref(f);
}

/* Fires one schedule if it is due. Returns 0 to go on, -1 when the
 * connection was dropped. */
static int fire_one(struct warrend_scheduler *s, struct entry *e, long long now)
{
    long long t = warren__sched_due(&e->def, &e->st, now);
    if (t < 0) {
        e->next_ms = warren__sched_next_due(&e->def, &e->st);
        return 0;
    }
    char id[WARREN_NAME_MAX + 48];
    warren__sched_message_id(e->def.name, t, id, sizeof id);
    warren_error err;
    warren_error_clear(&err);
    warren_status st = publish_fire(s, e, id, t, &err);
    if (st == WARREN_OK) {
        long long first = warren__sched_next(&e->def, e->st.last_ms >= 0 ? e->st.last_ms
                                                                          : e->st.since_ms);
        warren__sched_fired(&e->st, t);
        s->dirty = 1;
        e->next_ms = warren__sched_next_due(&e->def, &e->st);
        log_fired(e, id, t, first, now);
        if (warren__sched_exhausted(&e->def, &e->st))
            WARREN_LOG(WARREN_LOG_INFO, "schedule.done",
                       "schedule %s reached max_count %lld and fires no more", e->def.name,
                       e->def.max_count);
        return 0;
    }
    if (warren__conn_broken(s->conn) || st == WARREN_ETIMEDOUT) {
        /* Whether an unconfirmed fire was taken is unknown: the next
         * leader may fire it again, under the same id. */
        drop_connection(s, err.text);
        return -1;
    }
    warren_log_write(WARREN_LOG_ERROR, "schedule.refused", NULL,
                     "schedule %s: the broker refused %s: %s; trying again in %d ms",
                     e->def.name, id, err.text, REFUSED_RETRY_MS);
    e->next_ms = now + REFUSED_RETRY_MS;
    if (st == WARREN_ENOTFOUND) {
        /* The jobs exchange was deleted by hand: declare it again. */
        warren_error_clear(&err);
        if (warren__topology_declare_base(s->conn, s->set.ns, s->set.quorum, NULL, NULL, &err) !=
                WARREN_OK &&
            warren__conn_broken(s->conn)) {
            drop_connection(s, err.text);
            return -1;
        }
    }
    return 0;
}

static void fire_due(struct warrend_scheduler *s)
{
    long long now = wall_ms(), start = mono_ms();
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];
        if (e->next_ms < 0 || now < e->next_ms)
            continue;
        if (mono_ms() - start > FIRE_BUDGET_MS)
            break; /* the rest next tick */
        if (fire_one(s, e, now) < 0)
            return;
    }
}

void warrend_scheduler_tick(struct warrend_scheduler *s)
{
    if (!s || s->forgotten)
        return;
    long long mono = mono_ms();
    if (!s->conn) {
        if (mono < s->retry_at || !connect_broker(s, mono))
            return;
    } else if (!pump(s)) {
        return;
    }
    if (!s->leader) {
        if (mono < s->lock_at || !take_lock(s, mono))
            return;
    } else if (mono >= s->lock_at && !keep_lock(s, mono)) {
        return;
    }
    if (mono >= s->runtime_at) {
        refresh_runtime(s, mono);
        if (!s->conn || !s->leader)
            return;
    }
    fire_due(s);
    if (s->conn && s->leader && s->dirty && mono_ms() >= s->state_retry_at)
        write_state(s);
}

/* ---- reload ---------------------------------------------------------------- */

warren_status warrend_scheduler_reload(struct warrend_scheduler **sp,
                                       const struct warren_config *cfg, warren_error *err)
{
    struct warrend_scheduler *old = *sp, *fresh = NULL;
    warren_status st = warrend_scheduler_create(&fresh, cfg, err);
    if (st != WARREN_OK)
        return st;
    if (!old || !fresh || old->forgotten || !settings_same_broker(&old->set, &fresh->set)) {
        warrend_scheduler_destroy(old);
        *sp = fresh;
        return WARREN_OK;
    }
    /* Same broker: the new scheduler takes over the connection, the lock
     * and what the old one knew, including fires not yet written. */
    if (old->leader)
        for (size_t i = 0; i < old->n; i++)
            warren__sched_doc_set(old->doc, old->entries[i].def.name, &old->entries[i].st);
    fresh->conn = old->conn;
    fresh->leader = old->leader;
    fresh->doc = old->doc;
    fresh->dirty = old->dirty;
    fresh->lock_at = old->lock_at;
    fresh->standby_logged = old->standby_logged;
    fresh->retry_at = old->retry_at;
    old->conn = NULL;
    old->doc = NULL;
    if (fresh->leader)
        init_entries(fresh, wall_ms());
    fresh->runtime_at = 0; /* the runtime schedules: read again at the next tick */
    free_scheduler(old);
    *sp = fresh;
    return WARREN_OK;
}
