/* Publishing jobs with publisher confirms (public producer.h).
 *
 * A job is a persistent message on the jobs exchange with routing key and
 * `type` both the worker name, so a host needs nothing but the message to
 * route it, and the broker's alternate exchange keeps what no queue serves.
 * Batches are pipelined: up to `window` publishes are outstanding before
 * the producer waits for the oldest confirms. With a signing key every
 * job carries x-warren-signature over the exact properties and body that
 * go out (signature.h), so the key never leaves this process.
 *
 * A lost connection does not lose a job: the producer reconnects (each URL
 * in turn, backoff 0.1 s doubling, about 25 s in all) and publishes again
 * whatever was not confirmed, with the same message ids. A job whose
 * confirm was lost may so reach the broker twice (at-least-once), never
 * zero times; hosts see the same id both times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <warren/producer.h>
#include <warren/log.h>
#include <warren/registry.h>
#include "config.h"
#include "conn.h"
#include "delay.h"
#include "events.h"
#include "handoff.h"
#include "json_write.h"
#include "signature.h"
#include "topology.h"

#define DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"
#define CONFIRM_TIMEOUT_MS 30000
#define RECONNECT_TRIES 8

/* The body buffer is kept between jobs up to this size. */
#define BODY_KEEP_MAX (1024 * 1024)

struct warren_producer {
    struct warren_conn *conn;
    char ns[64];
    char exchange[WARREN_AMQP_NAME_MAX];
    unsigned window;
    int delay_ready; /* the delay levels are known to exist */
    struct warren_sig_key *key; /* NULL: jobs go unsigned */
    /* what reconnecting needs, copied from the options */
    char **urls;
    size_t n_urls;
    int heartbeat;
    int events;
    int events_transient;
    char host[256]; /* for the events */
    char *password_file;
    struct warren_tls_conf tls;
    struct warren__jbuf body; /* the job being sent, reused: no allocation per job */
};

static const char *pick_urls(const warren_producer_opts *opts)
{
    if (opts && opts->urls && opts->urls[0])
        return opts->urls;
    const char *env = getenv("WARREN_URL");
    if (env && env[0])
        return env;
    return DEFAULT_URL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies what a reconnect needs: the caller's strings may be gone by then. */
static warren_status keep_settings(warren_producer *p, const warren_producer_opts *opts,
                                   warren_error *err)
{
    p->urls = warren__url_list(pick_urls(opts), &p->n_urls);
    p->heartbeat = opts && opts->heartbeat ? opts->heartbeat : 30;
    p->events = opts && opts->events;
    p->events_transient = opts && opts->events_transient;
    if (gethostname(p->host, sizeof p->host) != 0)
        snprintf(p->host, sizeof p->host, "unknown");
    p->host[sizeof p->host - 1] = '\0';
    p->password_file = dup_or_null(opts ? opts->password_file : NULL);
    p->tls.ca_cert = dup_or_null(opts ? opts->tls_ca_cert : NULL);
    p->tls.cert = dup_or_null(opts ? opts->tls_cert : NULL);
    p->tls.key = dup_or_null(opts ? opts->tls_key : NULL);
    p->tls.verify_peer = !(opts && opts->tls_no_verify_peer);
    p->tls.verify_hostname = !(opts && opts->tls_no_verify_hostname);
    if (!p->urls || (opts && opts->password_file && !p->password_file))
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    return WARREN_OK;
}

static warren_status producer_connect(warren_producer *p, warren_error *err)
{
    struct warren_conn_opts co = {p->heartbeat, p->password_file, &p->tls, "warren producer"};
    warren_status st = warren__conn_open(&p->conn, p->urls, p->n_urls, &co, err);
    if (st == WARREN_OK)
        st = warren__topology_declare_base(p->conn, p->ns, 0, NULL, NULL, err);
    if (st == WARREN_OK && p->events)
        st = warren__events_declare(p->conn, p->ns, err);
    p->delay_ready = 0;
    return st;
}

/* Whether a failed publish may succeed on a new connection. A broker's
 * refusal (nack) or bad input will not. */
static int worth_retrying(const warren_producer *p, warren_status st)
{
    return st == WARREN_ETIMEDOUT || st == WARREN_ECONNECT || (p->conn && warren__conn_broken(p->conn));
}

static warren_status reconnect(warren_producer *p, int attempt, warren_error *err)
{
    warren_log_write(WARREN_LOG_WARN, "producer.reconnect", NULL,
                     "%s; reconnecting (try %d of %d) to publish again what was not confirmed",
                     err && err->text[0] ? err->text : "connection lost", attempt + 1,
                     RECONNECT_TRIES);
    warren__conn_close(p->conn);
    p->conn = NULL;
    struct timespec ts = {0, 0};
    long long ms = 100LL << attempt;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    warren_error_clear(err);
    return producer_connect(p, err);
}

warren_status warren_producer_create(warren_producer **out, const warren_producer_opts *opts,
                                     warren_error *err)
{
    *out = NULL;
    warren_producer *p = calloc(1, sizeof *p);
    if (!p)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    snprintf(p->ns, sizeof p->ns, "%s",
             opts && opts->namespace_ && opts->namespace_[0] ? opts->namespace_ : "warren");
    warren__name_exchange(p->exchange, sizeof p->exchange, p->ns);
    p->window = opts && opts->window ? opts->window : 256;

    if (opts && opts->signing_key_file) {
        warren_status st = warren__sig_key_load(&p->key, opts->signing_key_file, err);
        if (st != WARREN_OK) {
            free(p);
            return st;
        }
    }
    warren_status st = keep_settings(p, opts, err);
    if (st == WARREN_OK)
        st = producer_connect(p, err);
    if (st != WARREN_OK) {
        warren_producer_destroy(p);
        return st;
    }
    *out = p;
    return WARREN_OK;
}

void warren_producer_destroy(warren_producer *p)
{
    if (!p)
        return;
    warren__conn_close(p->conn);
    warren__sig_key_free(p->key);
    warren__strv_free(p->urls);
    free(p->password_file);
    free(p->tls.ca_cert);
    free(p->tls.cert);
    free(p->tls.key);
    warren__jbuf_free(&p->body);
    free(p);
}

static warren_status check_job(const char *worker, json_t *args,
                               const warren_publish_opts *opts, warren_error *err)
{
    if (!worker || !warren_worker_name_valid(worker))
        return warren_error_set(err, WARREN_EINVAL,
                                "invalid worker name '%s' (expected [A-Za-z0-9_.-]{1,128})",
                                worker ? worker : "");
    if (!json_is_object(args))
        return warren_error_set(err, WARREN_EINVAL, "job arguments must be a JSON object");
    if (opts && (opts->priority < 0 || opts->priority > 9))
        return warren_error_set(err, WARREN_EINVAL, "priority must be between 0 and 9");
    if (opts && opts->max_attempts < 0)
        return warren_error_set(err, WARREN_EINVAL, "max attempts must be at least 1");
    if (opts && opts->id && (opts->id[0] == '\0' || strlen(opts->id) > 255))
        return warren_error_set(err, WARREN_EINVAL, "a job id must be 1 to 255 characters");
    if (opts && (opts->delay_ms < 0 || opts->delay_ms / 1000 > WARREN_DELAY_MAX_S))
        return warren_error_set(err, WARREN_EINVAL,
                                "a delay must be between 0 and %lld seconds", WARREN_DELAY_MAX_S);
    return WARREN_OK;
}

/* Where a job goes: the jobs exchange by worker name, or, when delayed by
 * a second or more, the top delay level with the delay's routing key. */
static warren_status route(warren_producer *p, const char *worker,
                           const warren_publish_opts *opts, char *exchange, size_t ex_size,
                           char *key, size_t key_size, warren_error *err)
{
    long long seconds = warren__delay_seconds(opts ? opts->delay_ms : 0);
    if (seconds == 0) {
        /* both fit: the exchange is one of ours, the worker name was checked */
        size_t ex_len = strlen(p->exchange), key_len = strlen(worker);
        if (ex_len >= ex_size || key_len >= key_size)
            return warren_error_set(err, WARREN_EINVAL, "worker name too long");
        memcpy(exchange, p->exchange, ex_len + 1);
        memcpy(key, worker, key_len + 1);
        return WARREN_OK;
    }
    if (!p->delay_ready) {
        warren_status st = warren__topology_declare_delay(p->conn, p->ns, 0, NULL, NULL, err);
        if (st != WARREN_OK)
            return st;
        p->delay_ready = 1;
    }
    warren__name_delay_level(exchange, ex_size, p->ns, WARREN_DELAY_LEVELS - 1);
    if (warren__delay_routing_key(key, key_size, seconds, worker) != 0)
        return warren_error_set(err, WARREN_EINVAL, "worker name too long");
    return WARREN_OK;
}

/* Publishes without waiting; `id` receives the message id. */
static warren_status publish_async(warren_producer *p, const char *worker, json_t *args,
                                   const warren_publish_opts *opts, char *id, size_t id_size,
                                   uint64_t *seq, warren_error *err)
{
    char exchange[WARREN_AMQP_NAME_MAX], key[2 * WARREN_DELAY_LEVELS + 130];
    warren_status st = check_job(worker, args, opts, err);
    if (st == WARREN_OK)
        st = route(p, worker, opts, exchange, sizeof exchange, key, sizeof key, err);
    if (st != WARREN_OK)
        return st;
    char uuid[37];
    const char *mid = opts && opts->id ? opts->id : (warren_uuid(uuid), uuid);
    if (warren__json_compact(&p->body, args, 1) != 0)
        return warren_error_set(err, WARREN_EINVAL,
                                "cannot serialise arguments (a cycle, invalid UTF-8 or no memory)");
    const char *body = p->body.data;
    size_t body_len = p->body.len;

    amqp_table_entry_t h[2];
    char sig[WARREN_SIG_VALUE_SIZE];
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.priority = (uint8_t)(opts ? opts->priority : 0);
    props.timestamp = (uint64_t)time(NULL);
    props.message_id = amqp_cstring_bytes(mid);
    props.type = amqp_cstring_bytes(worker);
    int nh = 0;
    if (opts && opts->max_attempts > 0) {
        h[nh].key = amqp_cstring_bytes("x-warren-max-attempts");
        h[nh].value.kind = AMQP_FIELD_KIND_I32;
        h[nh].value.value.i32 = opts->max_attempts;
        nh++;
    }
    if (p->key) {
        st = warren__sig_sign(p->key, worker, mid, 1, props.timestamp, body, body_len, sig, err);
        if (st != WARREN_OK)
            return st;
        h[nh].key = amqp_cstring_bytes(WARREN_SIG_HEADER);
        h[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        h[nh].value.value.bytes = amqp_cstring_bytes(sig);
        nh++;
    }
    if (nh > 0) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = nh;
        props.headers.entries = h;
    }
    st = warren__conn_publish(p->conn, exchange, key, 0, &props, body, body_len, seq, err);
    if (p->body.cap > BODY_KEEP_MAX) /* one huge job does not pin its buffer */
        warren__jbuf_free(&p->body);
    if (st == WARREN_OK && id)
        snprintf(id, id_size, "%s", mid);
    return st;
}

/* Announces a confirmed job to the job history: fire-and-forget, like all
 * events (events.h). */
static void announce(warren_producer *p, const char *worker, const char *id, const json_t *args,
                     const warren_publish_opts *opts, const char *at)
{
    if (!p->events || !p->conn)
        return;
    long long delay_s = warren__delay_seconds(opts ? opts->delay_ms : 0);
    struct warren_event ev;
    memset(&ev, 0, sizeof ev);
    ev.event = delay_s ? "scheduled" : "queued";
    ev.id = id;
    ev.worker = worker;
    ev.queue = "";
    ev.host = p->host;
    ev.attempt = 1;
    ev.duration_ms = -1;
    ev.delay_ms = delay_s ? delay_s * 1000 : -1;
    ev.at = at; /* when it was sent: a host may start it before the confirm comes */
    ev.args = args ? args : json_null();
    ev.priority = opts ? opts->priority : 0;
    ev.transient = p->events_transient;
    warren_error err;
    warren_error_clear(&err);
    warren__event_publish(p->conn, p->ns, &ev, &err);
}

warren_status warren_publish(warren_producer *p, const char *worker, json_t *args,
                             const warren_publish_opts *opts, char *id_out, size_t id_size,
                             warren_error *err)
{
    /* The id is chosen once, so a publish repeated after a reconnect is
     * the same job. */
    char id[257];
    warren_publish_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.id) {
        warren_uuid(id);
        o.id = id;
    }
    warren_status st = WARREN_OK;
    char at[40];
    warren__now_rfc3339(at, sizeof at);
    for (int attempt = 0;; attempt++) {
        uint64_t seq;
        st = p->conn ? publish_async(p, worker, args, &o, NULL, 0, &seq, err)
                     : warren_error_set(err, WARREN_ECONNECT, "not connected");
        if (st == WARREN_OK)
            st = warren__conn_wait_confirms(p->conn, seq, CONFIRM_TIMEOUT_MS, err);
        if (st == WARREN_OK || !worth_retrying(p, st) || attempt == RECONNECT_TRIES)
            break;
        reconnect(p, attempt, err);
    }
    if (st == WARREN_OK)
        announce(p, worker, o.id, args, &o, at);
    if (st == WARREN_OK && id_out)
        snprintf(id_out, id_size, "%s", o.id);
    return st;
}

/* Publishes jobs[from..n) keeping at most `window` unconfirmed; *confirmed
 * advances past every job whose confirm came. */
static warren_status publish_window(warren_producer *p, warren_batch_job *jobs, size_t from,
                                    size_t n, size_t *confirmed, warren_error *err)
{
    warren_status st = WARREN_OK;
    uint64_t first_seq = 0, seq = 0;
    for (size_t i = from; i < n && st == WARREN_OK; i++) {
        warren_publish_opts o = jobs[i].opts;
        o.id = jobs[i].id;
        st = publish_async(p, jobs[i].worker, jobs[i].args, &o, NULL, 0, &seq, err);
        if (i == from)
            first_seq = seq;
        /* Keep at most `window` unconfirmed: wait for the oldest half. */
        if (st == WARREN_OK && i + 1 - *confirmed >= p->window) {
            size_t upto = *confirmed + (p->window > 1 ? p->window / 2 : 1);
            st = warren__conn_wait_confirms(p->conn, first_seq + (upto - from) - 1,
                                            CONFIRM_TIMEOUT_MS, err);
            if (st == WARREN_OK)
                *confirmed = upto;
        }
    }
    if (st == WARREN_OK && n > *confirmed) {
        st = warren__conn_wait_confirms(p->conn, seq, CONFIRM_TIMEOUT_MS, err);
        if (st == WARREN_OK)
            *confirmed = n;
    }
    return st;
}

warren_status warren_publish_batch(warren_producer *p, warren_batch_job *jobs, size_t n,
                                   size_t *n_confirmed, warren_error *err)
{
    /* Ids are fixed before anything goes out, so jobs published again
     * after a reconnect keep theirs. */
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].opts.id)
            snprintf(jobs[i].id, sizeof jobs[i].id, "%s", jobs[i].opts.id);
        else
            warren_uuid(jobs[i].id);
    }
    char at[40];
    warren__now_rfc3339(at, sizeof at);
    size_t confirmed = 0;
    warren_status st = WARREN_OK;
    for (int attempt = 0;; attempt++) {
        st = p->conn ? publish_window(p, jobs, confirmed, n, &confirmed, err)
                     : warren_error_set(err, WARREN_ECONNECT, "not connected");
        if (st == WARREN_OK || !worth_retrying(p, st) || attempt == RECONNECT_TRIES)
            break;
        reconnect(p, attempt, err);
    }
    for (size_t i = 0; i < confirmed; i++)
        announce(p, jobs[i].worker, jobs[i].id, jobs[i].args, &jobs[i].opts, at);
    if (n_confirmed)
        *n_confirmed = confirmed;
    return st;
}
