/* `warren doctor [-c FILE] [--url URL] [--grace DURATION] [--json]`: checks
 * a namespace on the broker against its configuration and prints one line
 * per finding.
 *
 * DESIGN: five checks run in turn (topology, capabilities, consumer
 * timeout, bindings, balance) and add findings (ok, skip, WARN, FAIL) to
 * one list, printed at the end as text or JSON; only a FAIL makes the exit
 * 1. What AMQP cannot tell (bindings, unacked counts, the arguments of the
 * delay queues, which are only looked up) comes from the management API
 * when broker.management_url is set; without it those parts are skipped
 * with the reason, never failed. A FAIL is meant to be certain: the
 * balance, which races with jobs moving, must come out wrong twice in a
 * row. docs/doctor.md gives every rule. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <amqp.h>
#include <curl/curl.h>
#include <jansson.h>
#include <warren/warren.h>
#include "cli.h"
#include "common.h"
#include "mgmt.h"
#include "delay.h"
#include "history.h"
#include "registry_internal.h"
#include "topology.h"
#include "web.h"

#define MGMT_TIMEOUT_MS 5000
#define MGMT_MAX_BODY (4 << 20)
#define SETTLE_MAX_MS 2000   /* events reach the history within this (web: 200 ms) */
#define HANDOFF_MARGIN_MS 5000 /* the supervisor's kill comes at time_limit + 5 s */

enum level { LV_OK, LV_SKIP, LV_WARN, LV_FAIL };
static const char *const level_names[] = {"ok", "skip", "WARN", "FAIL"};

struct finding {
    enum level level;
    const char *check; /* static */
    char *text;
    json_t *detail; /* NULL or an object merged into the JSON finding */
};

/* The management API, for what AMQP cannot list. */
struct mgmt {
    CURL *curl;
    const char *base; /* broker.management_url (borrowed) */
    char *user, *password, *vhost; /* vhost URL-escaped (curl_free) */
    char why[600];    /* why it cannot be used; "" while it can */
};

struct doctor {
    struct cli_ctx ctx;
    int json;
    long long grace_ms;
    struct finding *v;
    size_t n, cap;
    warren_registry *reg;
    struct warren_modules *mods;
    struct warren_conn *conn; /* NULL when no broker answered */
    char *amqp_url;           /* the first URL: management credentials and vhost */
    struct mgmt mgmt;
    int version;              /* the broker's, as 31015 for 3.10.15; 0 unknown */
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: warren doctor [-c CONFIG | --url URL] [--grace DURATION] [--json]\n"
            "  checks the broker against the configuration, one line per finding:\n"
            "  topology (exchanges, queues and their arguments), capabilities and version,\n"
            "  time limits against the consumer timeout, bindings and delay dead-lettering\n"
            "  (management API), and, where the history exists, that each worker's jobs\n"
            "  balance (published = succeeded + dead + in flight + waiting)\n"
            "  --grace  how long a job may go without an event before it must be found on\n"
            "           the broker (default 60s)\n"
            "  --json   print the findings as JSON\n"
            "  exit 0: nothing wrong (warnings and skipped checks allowed), 1: a problem\n");
}

static void note(struct doctor *d, enum level lv, const char *check, json_t *detail,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void note(struct doctor *d, enum level lv, const char *check, json_t *detail,
                 const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (text && d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct finding *v = realloc(d->v, cap * sizeof *v);
        if (v) {
            d->v = v;
            d->cap = cap;
        } else {
            free(text);
            text = NULL;
        }
    }
    if (!text) {
        json_decref(detail);
        return;
    }
    d->v[d->n++] = (struct finding){lv, check, text, detail};
}

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

static const char *dur(long long ms, char *buf, size_t size)
{
    return warren__format_duration(ms, buf, size);
}

/* ---- management API ------------------------------------------------------ */

static void mgmt_open(struct mgmt *m, const char *base, const char *amqp_url)
{
    memset(m, 0, sizeof *m);
    m->base = base;
    char buf[1024];
    struct amqp_connection_info info;
    warren_error err;
    warren_error_clear(&err);
    if (!base || !base[0]) {
        snprintf(m->why, sizeof m->why, "broker.management_url is not set");
        return;
    }
    if (!amqp_url || warren__url_parse(amqp_url, &info, buf, sizeof buf, &err) != WARREN_OK) {
        snprintf(m->why, sizeof m->why, "%s", amqp_url ? err.text : "no broker URL");
        return;
    }
    m->curl = curl_easy_init();
    m->user = strdup(info.user);
    m->password = strdup(info.password);
    m->vhost = m->curl ? curl_easy_escape(m->curl, info.vhost, 0) : NULL;
    if (!m->curl || !m->user || !m->password || !m->vhost) {
        snprintf(m->why, sizeof m->why, "cannot start libcurl");
        return;
    }
    curl_easy_setopt(m->curl, CURLOPT_USERNAME, m->user);
    curl_easy_setopt(m->curl, CURLOPT_PASSWORD, m->password);
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, (long)MGMT_TIMEOUT_MS);
    curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, mgmt_body_write);
}

static void mgmt_close(struct mgmt *m)
{
    curl_free(m->vhost);
    free(m->user);
    free(m->password);
    if (m->curl)
        curl_easy_cleanup(m->curl);
}

/* GET api/<kind>/<vhost>/<name><suffix>: the parsed answer (new), or NULL.
 * *found is 0 for a 404. When the API cannot be used at all, m->why says
 * why and every later call returns NULL at once. */
static json_t *mgmt_get(struct mgmt *m, const char *kind, const char *name, const char *suffix,
                        int *found)
{
    *found = 0;
    if (m->why[0])
        return NULL;
    char *ename = curl_easy_escape(m->curl, name, 0);
    size_t blen = strlen(m->base);
    char url[2048];
    snprintf(url, sizeof url, "%s%sapi/%s/%s/%s%s", m->base,
             blen && m->base[blen - 1] == '/' ? "" : "/", kind, m->vhost, ename ? ename : "",
             suffix);
    curl_free(ename);
    struct mgmt_body b = {NULL, 0, MGMT_MAX_BODY};
    curl_easy_setopt(m->curl, CURLOPT_URL, url);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(m->curl);
    long code = 0;
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &code);
    json_t *answer = NULL;
    if (rc != CURLE_OK)
        snprintf(m->why, sizeof m->why, "management API at %s: %s", m->base,
                 curl_easy_strerror(rc));
    else if (code == 404)
        ; /* no such object */
    else if (code != 200)
        snprintf(m->why, sizeof m->why, "management API at %s: HTTP %ld", m->base, code);
    else if (!(answer = json_loads(b.data ? b.data : "", 0, NULL)))
        snprintf(m->why, sizeof m->why, "management API at %s: an answer that is not JSON",
                 m->base);
    free(b.data);
    *found = answer != NULL;
    return answer;
}

/* ---- topology ------------------------------------------------------------ */

/* Copies the text between `from` (after it) and `to` into buf; returns the
 * end of the copied span or NULL. */
static const char *between(const char *s, const char *from, const char *to, char *buf,
                           size_t size)
{
    const char *a = strstr(s, from);
    if (!a)
        return NULL;
    a += strlen(from);
    const char *b = to ? strstr(a, to) : a + strlen(a);
    if (!b)
        return NULL;
    snprintf(buf, size, "%.*s", (int)(b - a), a);
    return b;
}

/* The broker writes a value as 'x', none, or the value 'x' of type 't'. */
static void clean_value(char *v)
{
    char *p = v;
    if (!strncmp(p, "the value ", 10))
        p += 10;
    char *t = strstr(p, " of type '");
    if (t)
        *t = '\0';
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '\'' && p[n - 1] == '\'') {
        p[n - 1] = '\0';
        p++;
    }
    memmove(v, p, strlen(p) + 1);
}

static const char *shown_value(const char *v, char *buf, size_t size)
{
    if (!strcmp(v, "none"))
        return "not set";
    snprintf(buf, size, "'%s'", v);
    return buf;
}

/* One problem of check mode: "NAME: ... inequivalent arg 'A' for queue
 * 'NAME' ...: received 'X' but current is 'Y'", or "KIND 'NAME' is missing". */
static void note_drift(struct doctor *d, const char *problem)
{
    char kind[16] = "", name[WARREN_AMQP_NAME_MAX], arg[128], want[128], have[128];
    char wv[132], hv[132];
    if (sscanf(problem, "%15s '", kind) == 1 && between(problem, "'", "' is missing", name,
                                                        sizeof name)) {
        note(d, LV_FAIL, "topology", json_pack("{s:s, s:s, s:b}", "kind", kind, "object", name,
                                               "missing", 1),
             "%s '%s' is missing", kind, name);
        return;
    }
    const char *p = between(problem, "inequivalent arg '", "'", arg, sizeof arg);
    const char *k = p ? strstr(p, " for ") : NULL;
    if (k && sscanf(k, " for %15s '", kind) == 1 && between(k, "'", "'", name, sizeof name) &&
        between(k, ": received ", " but current is ", want, sizeof want) &&
        between(k, " but current is ", NULL, have, sizeof have)) {
        clean_value(want);
        clean_value(have);
        note(d, LV_FAIL, "topology",
             json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", kind, "object", name, "argument", arg,
                       "expected", want, "actual", have),
             "%s '%s': %s is %s on the broker but %s in the configuration", kind, name, arg,
             shown_value(have, hv, sizeof hv), shown_value(want, wv, sizeof wv));
        return;
    }
    note(d, LV_FAIL, "topology", NULL, "%s", problem);
}

/* Whether a problem is a missing delay level ("... 'NS.delay.N' is
 * missing"): all 28 are named in one line, not 56. */
static int missing_level(const struct doctor *d, const char *problem)
{
    char prefix[WARREN_AMQP_NAME_MAX + 8];
    int n = snprintf(prefix, sizeof prefix, "'%s.delay.", d->ctx.cfg.namespace_);
    const char *p = strstr(problem, prefix);
    if (!p || n < 0)
        return 0;
    p += n;
    while (*p >= '0' && *p <= '9')
        p++;
    return !strcmp(p, "' is missing");
}

static void check_topology(struct doctor *d)
{
    warren_error err;
    warren_error_clear(&err);
    warren__conn_set_check_mode(d->conn, 1);
    warren_status st = warren__topology_declare_host(d->conn, &d->ctx.cfg, d->reg, NULL, NULL,
                                                     &err);
    warren__conn_set_check_mode(d->conn, 0);
    size_t n = 0;
    char *const *problems = warren__conn_check_problems(d->conn, &n);
    int levels = 0;
    for (size_t i = 0; i < n; i++) {
        if (missing_level(d, problems[i]))
            levels++;
        else
            note_drift(d, problems[i]);
    }
    if (levels)
        note(d, LV_FAIL, "topology", json_pack("{s:i}", "missing_delay_objects", levels),
             "%d of the %d exchanges and queues of the delay levels (%s.delay.0 .. %d) are "
             "missing: delayed jobs and retries cannot be handed off", levels,
             2 * WARREN_DELAY_LEVELS, d->ctx.cfg.namespace_, WARREN_DELAY_LEVELS - 1);
    if (st != WARREN_OK)
        note(d, LV_FAIL, "topology", NULL, "%s", err.text);
    else if (n == 0)
        note(d, LV_OK, "topology", NULL,
             "every exchange and queue exists with the arguments of the configuration");
}

/* ---- capabilities -------------------------------------------------------- */

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key)
{
    size_t len = strlen(key);
    for (int i = 0; t && i < t->num_entries; i++)
        if (t->entries[i].key.len == len && !memcmp(t->entries[i].key.bytes, key, len))
            return &t->entries[i].value;
    return NULL;
}

static const char *table_text(const amqp_table_t *t, const char *key, char *buf, size_t size)
{
    const amqp_field_value_t *v = table_get(t, key);
    buf[0] = '\0';
    if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
        snprintf(buf, size, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
    return buf;
}

static const struct {
    const char *name;
    enum level missing;
    const char *why;
} capabilities[] = {
    {"publisher_confirms", LV_FAIL, "producers and hand-offs wait for the broker's confirm"},
    {"basic.nack", LV_FAIL, "a copy the broker refuses must come back as a nack"},
    {"consumer_cancel_notify", LV_FAIL, "hosts learn that their queue was deleted"},
    {"exchange_exchange_bindings", LV_FAIL, "the delay levels are a chain of exchanges"},
    {"per_consumer_qos", LV_WARN, "the prefetch is meant per consumer"},
    {"connection.blocked", LV_WARN, "publishers learn that a resource alarm blocks them"},
};

static void check_capabilities(struct doctor *d)
{
    const amqp_table_t *props = amqp_get_server_properties(warren__conn_state(d->conn));
    const amqp_field_value_t *cv = table_get(props, "capabilities");
    const amqp_table_t *caps = cv && cv->kind == AMQP_FIELD_KIND_TABLE ? &cv->value.table : NULL;
    char product[64], version[64], have[512] = "";
    table_text(props, "product", product, sizeof product);
    table_text(props, "version", version, sizeof version);
    int bad = 0, major = 0, minor = 0, patch = 0;
    for (size_t i = 0; i < sizeof capabilities / sizeof capabilities[0]; i++) {
        const amqp_field_value_t *c = table_get(caps, capabilities[i].name);
        if (c && c->kind == AMQP_FIELD_KIND_BOOLEAN && c->value.boolean) {
            size_t len = strlen(have);
            snprintf(have + len, sizeof have - len, "%s%s", len ? ", " : "", capabilities[i].name);
            continue;
        }
        bad = 1;
        note(d, capabilities[i].missing, "capabilities", NULL,
             "the broker does not announce %s: %s", capabilities[i].name, capabilities[i].why);
    }
    int quorum = 0;
    for (size_t i = 0; i < d->ctx.cfg.n_queues; i++)
        quorum |= d->ctx.cfg.queues[i].type == WARREN_QUEUE_QUORUM;
    int parsed = sscanf(version, "%d.%d.%d", &major, &minor, &patch) >= 2;
    d->version = parsed ? major * 10000 + minor * 100 + patch : 0;
    if (strcmp(product, "RabbitMQ") != 0) {
        bad = 1;
        note(d, LV_WARN, "capabilities", NULL,
             "the broker is '%s' %s; warren is built for RabbitMQ (tested with 3.10)",
             product[0] ? product : "unnamed", version);
    } else if (quorum && (!parsed || major < 3 || (major == 3 && minor < 10))) {
        bad = 1;
        note(d, LV_FAIL, "capabilities", NULL,
             "RabbitMQ %s is too old for the quorum queues of the configuration: the quorum "
             "delay levels need at-least-once dead-lettering (RabbitMQ 3.10)",
             version[0] ? version : "(no version)");
    }
    if (!bad)
        note(d, LV_OK, "capabilities", json_pack("{s:s, s:s}", "product", product, "version",
                                                 version),
             "%s %s announces %s", product, version, have);
}

/* ---- consumer timeout ---------------------------------------------------- */

/* A queue's own consumer timeout (RabbitMQ 3.11.15 and later: the
 * x-consumer-timeout argument, or a consumer-timeout policy), or 0. Older
 * brokers accept the argument but ignore it. */
static long long queue_timeout(struct doctor *d, const char *queue)
{
    char name[WARREN_AMQP_NAME_MAX];
    int found;
    if (d->version < 31115)
        return 0;
    warren__name_queue(name, sizeof name, d->ctx.cfg.namespace_, queue);
    json_t *q = mgmt_get(&d->mgmt, "queues", name, "", &found);
    json_t *arg = json_object_get(json_object_get(q, "arguments"), "x-consumer-timeout");
    json_t *pol =
        json_object_get(json_object_get(q, "effective_policy_definition"), "consumer-timeout");
    long long ms = json_is_integer(arg) ? json_integer_value(arg)
                   : json_is_integer(pol) ? json_integer_value(pol)
                                          : 0;
    json_decref(q);
    return ms;
}

static void check_consumer_timeout(struct doctor *d)
{
    const struct warren_config *cfg = &d->ctx.cfg;
    char a[32], b[32];
    int limited = 0, bad = 0;
    const struct warren_worker_conf *longest = NULL;
    for (size_t i = 0; i < cfg->n_workers; i++) {
        const struct warren_worker_conf *w = &cfg->workers[i];
        if (w->time_limit_ms <= 0)
            continue;
        limited++;
        if (!longest || w->time_limit_ms > longest->time_limit_ms)
            longest = w;
        long long own = d->conn ? queue_timeout(d, w->queue) : 0;
        long long timeout = own > 0 ? own : cfg->consumer_timeout_ms;
        if (timeout <= 0)
            continue; /* no timeout on the broker */
        enum level lv = w->time_limit_ms >= timeout                        ? LV_FAIL
                        : w->time_limit_ms + HANDOFF_MARGIN_MS > timeout ? LV_WARN
                                                                         : LV_OK;
        if (lv == LV_OK)
            continue;
        bad = 1;
        char where[WARREN_AMQP_NAME_MAX + 40] = "broker.consumer_timeout";
        if (own > 0)
            snprintf(where, sizeof where, "the consumer timeout of queue %s", w->queue);
        note(d, lv, "consumer-timeout",
             json_pack("{s:s, s:I, s:I}", "worker", w->name, "time_limit_ms",
                       (json_int_t)w->time_limit_ms, "consumer_timeout_ms", (json_int_t)timeout),
             "%s:%d: worker %s has time_limit %s, %s %s %s: %s", cfg->path ? cfg->path : "-",
             w->line, w->name, dur(w->time_limit_ms, a, sizeof a),
             lv == LV_FAIL ? "not below" : "less than 5s below", where,
             dur(timeout, b, sizeof b),
             lv == LV_FAIL ? "RabbitMQ closes the channel of a job that runs that long, and it "
                             "comes back as a redelivery; raise consumer_timeout on the broker"
                           : "the hand-off after the limit may not be acked in time");
    }
    if (bad)
        return;
    if (cfg->consumer_timeout_ms <= 0)
        note(d, LV_OK, "consumer-timeout", NULL, "broker.consumer_timeout is off");
    else if (!limited)
        note(d, LV_OK, "consumer-timeout", NULL,
             "no worker has a time limit; a job running %s or longer loses its channel "
             "(broker.consumer_timeout)", dur(cfg->consumer_timeout_ms, a, sizeof a));
    else
        note(d, LV_OK, "consumer-timeout", NULL,
             "%d time limit%s below broker.consumer_timeout %s (longest: %s %s)", limited,
             limited == 1 ? " is" : "s are", dur(cfg->consumer_timeout_ms, a, sizeof a),
             longest->name, dur(longest->time_limit_ms, b, sizeof b));
}

/* ---- bindings ------------------------------------------------------------ */

#define KEY_MAX (2 * WARREN_DELAY_LEVELS + WARREN_NAME_MAX)

struct binding {
    char source[WARREN_AMQP_NAME_MAX], dest[WARREN_AMQP_NAME_MAX];
    const char *dest_type; /* "queue" or "exchange" */
    char key[KEY_MAX];
    const char *what;      /* what goes wrong without it */
};

/* "*.*.*.x" as "<3 *>.x", for people. */
static const char *short_key(const char *key, char *buf, size_t size)
{
    int n = 0;
    while (key[2 * n] == '*' && key[2 * n + 1] == '.')
        n++;
    if (n < 2)
        snprintf(buf, size, "'%s'", key);
    else
        snprintf(buf, size, "'<%d *>.%s'", n, key + 2 * n);
    return buf;
}

static size_t expect(struct binding **v, size_t n, const char *source, const char *dest,
                     const char *type, const char *key, const char *what)
{
    struct binding *grown = realloc(*v, (n + 1) * sizeof **v);
    if (!grown)
        return n;
    *v = grown;
    struct binding *b = &grown[n];
    snprintf(b->source, sizeof b->source, "%s", source);
    snprintf(b->dest, sizeof b->dest, "%s", dest);
    b->dest_type = type;
    snprintf(b->key, sizeof b->key, "%s", key);
    b->what = what;
    return n + 1;
}

/* Every binding warren__topology_declare_host makes for this config. */
static size_t expected_bindings(struct doctor *d, struct binding **v)
{
    const char *ns = d->ctx.cfg.namespace_;
    char ex[WARREN_AMQP_NAME_MAX], unr[WARREN_AMQP_NAME_MAX], deliver[WARREN_AMQP_NAME_MAX];
    char a[WARREN_AMQP_NAME_MAX], b[WARREN_AMQP_NAME_MAX], key[KEY_MAX];
    warren__name_exchange(ex, sizeof ex, ns);
    warren__name_unroutable(unr, sizeof unr, ns);
    warren__name_delay_deliver(deliver, sizeof deliver, ns);
    size_t n = expect(v, 0, unr, unr, "queue", "", "jobs that no queue serves are dropped");
    for (int l = 0; l < WARREN_DELAY_LEVELS; l++) {
        warren__name_delay_level(a, sizeof a, ns, l);
        warren__delay_level_pattern(key, sizeof key, l, '1');
        n = expect(v, n, a, a, "queue", key, "delayed jobs and retries that wait here are lost");
        if (l)
            warren__name_delay_level(b, sizeof b, ns, l - 1);
        warren__delay_level_pattern(key, sizeof key, l, '0');
        n = expect(v, n, a, l ? b : deliver, "exchange", key,
                   "delayed jobs and retries that pass this level are lost");
    }
    size_t nq = 0;
    const struct warren_queue_conf **queues = warren__host_queues(&d->ctx.cfg, d->reg, &nq);
    /* Jobs exchange first, then the delivery exchange: each source is read
     * once, as a run. */
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; queues && i < warren_registry_count(d->reg); i++) {
            const char *worker = warren_registry_name(d->reg, i);
            const char *q = warren__config_worker(&d->ctx.cfg, worker)->queue;
            for (size_t k = 0; k < nq; k++) {
                if (strcmp(queues[k]->name, q) != 0)
                    continue;
                warren__name_queue(a, sizeof a, ns, q);
                if (pass == 0)
                    n = expect(v, n, ex, a, "queue", worker, "the worker's jobs go to unroutable");
                else if (warren__delay_binding_key(key, sizeof key, worker) == 0)
                    n = expect(v, n, deliver, a, "queue", key,
                               "the worker's retries and delayed jobs go to unroutable");
            }
        }
    free(queues);
    return n;
}

static int has_binding(json_t *list, const struct binding *b)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *dest = json_string_value(json_object_get(e, "destination"));
        const char *type = json_string_value(json_object_get(e, "destination_type"));
        const char *key = json_string_value(json_object_get(e, "routing_key"));
        if (dest && type && key && !strcmp(dest, b->dest) && !strcmp(type, b->dest_type) &&
            !strcmp(key, b->key))
            return 1;
    }
    return 0;
}

/* Jobs of one worker bound to two of our work queues run twice (a worker
 * moved to another queue keeps its old binding). */
static int check_doubles(struct doctor *d, json_t *list)
{
    int bad = 0;
    size_t i, j;
    json_t *e, *f;
    char prefix[WARREN_AMQP_NAME_MAX];
    snprintf(prefix, sizeof prefix, "%s.", d->ctx.cfg.namespace_);
    json_array_foreach(list, i, e) {
        const char *key = json_string_value(json_object_get(e, "routing_key"));
        const char *dest = json_string_value(json_object_get(e, "destination"));
        if (!key || !dest || strncmp(dest, prefix, strlen(prefix)) != 0 ||
            !warren__config_queue(&d->ctx.cfg, dest + strlen(prefix)))
            continue;
        json_array_foreach(list, j, f) {
            const char *k2 = json_string_value(json_object_get(f, "routing_key"));
            const char *d2 = json_string_value(json_object_get(f, "destination"));
            if (j <= i || !k2 || !d2 || strcmp(k2, key) != 0 || !strcmp(d2, dest) ||
                strncmp(d2, prefix, strlen(prefix)) != 0 ||
                !warren__config_queue(&d->ctx.cfg, d2 + strlen(prefix)))
                continue;
            bad = 1;
            note(d, LV_FAIL, "bindings", NULL,
                 "jobs for %s go to both %s and %s, so each runs twice: unbind the queue the "
                 "configuration does not name", key, dest, d2);
        }
    }
    return bad;
}

/* Each level queue waits 2^L s and dead-letters to the level below. */
static int check_level_queue(struct doctor *d, int level)
{
    const char *ns = d->ctx.cfg.namespace_;
    char name[WARREN_AMQP_NAME_MAX], next[WARREN_AMQP_NAME_MAX];
    int found;
    warren__name_delay_level(name, sizeof name, ns, level);
    if (level)
        warren__name_delay_level(next, sizeof next, ns, level - 1);
    else
        warren__name_delay_deliver(next, sizeof next, ns);
    json_t *q = mgmt_get(&d->mgmt, "queues", name, "", &found);
    if (!q)
        return 0; /* missing: the topology check said so */
    json_t *args = json_object_get(q, "arguments");
    const char *dlx = json_string_value(json_object_get(args, "x-dead-letter-exchange"));
    json_t *ttl = json_object_get(args, "x-message-ttl");
    long long want = (1LL << level) * 1000;
    int bad = 0;
    if (!dlx || strcmp(dlx, next) != 0) {
        bad = 1;
        note(d, LV_FAIL, "bindings", NULL,
             "queue %s dead-letters to '%s', not to '%s': its delayed jobs never arrive", name,
             dlx ? dlx : "(none)", next);
    }
    if (!json_is_integer(ttl) || json_integer_value(ttl) != want) {
        bad = 1;
        note(d, LV_FAIL, "bindings", NULL, "queue %s has x-message-ttl %lld, not %lld", name,
             json_is_integer(ttl) ? (long long)json_integer_value(ttl) : -1LL, want);
    }
    json_decref(q);
    return bad;
}

static void check_bindings(struct doctor *d)
{
    struct binding *v = NULL;
    size_t n = expected_bindings(d, &v);
    int bad = 0, missing_sources = 0;
    char shown[KEY_MAX + 24];
    json_t *list = NULL;
    for (size_t i = 0; i < n && !d->mgmt.why[0]; i++) {
        int found = 1;
        if (i == 0 || strcmp(v[i].source, v[i - 1].source) != 0) {
            json_decref(list);
            list = mgmt_get(&d->mgmt, "exchanges", v[i].source, "/bindings/source", &found);
            if (!found && !d->mgmt.why[0])
                missing_sources++; /* the topology check names it */
            if (list && !strcmp(v[i].source, d->ctx.cfg.namespace_))
                bad |= check_doubles(d, list);
        }
        if (!list || has_binding(list, &v[i]))
            continue;
        bad = 1;
        note(d, LV_FAIL, "bindings",
             json_pack("{s:s, s:s, s:s, s:s}", "source", v[i].source, "destination", v[i].dest,
                       "destination_type", v[i].dest_type, "routing_key", v[i].key),
             "%s %s is not bound to exchange %s with %s: %s", v[i].dest_type, v[i].dest,
             v[i].source, short_key(v[i].key, shown, sizeof shown), v[i].what);
    }
    json_decref(list);
    for (int l = 0; l < WARREN_DELAY_LEVELS && !d->mgmt.why[0]; l++)
        bad |= check_level_queue(d, l);
    if (d->mgmt.why[0])
        note(d, LV_SKIP, "bindings", NULL, "not checked: %s (AMQP cannot list bindings)",
             d->mgmt.why);
    else if (missing_sources)
        note(d, LV_FAIL, "bindings", NULL, "%d exchange%s missing, so %s bindings are too",
             missing_sources, missing_sources == 1 ? " is" : "s are",
             missing_sources == 1 ? "its" : "their");
    else if (!bad)
        note(d, LV_OK, "bindings", NULL,
             "%zu bindings in place (jobs, retries and delays of every worker, %d delay "
             "levels, unroutable); each level dead-letters to the next", n, WARREN_DELAY_LEVELS);
    free(v);
}

/* ---- balance ------------------------------------------------------------- */

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
    json_t *q = mgmt_get(&d->mgmt, "queues", queue, "", &found);
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
        note(d, LV_SKIP, "balance", detail,
             "%s; not compared: %s has consumers and without the management API its unacked "
             "jobs cannot be counted", formula, qname);
    else if (held && h->total[q] >= 0 && held > h->total[q] + h->pool)
        note(d, LV_FAIL, "balance", detail,
             "%s; but %lld had no event for %s, more than %s (%lld) and the delay levels and "
             "unroutable (%lld) hold", formula, held, dur(d->grace_ms, g, sizeof g), qname,
             h->total[q], h->pool);
    else
        note(d, LV_OK, "balance", detail, "%s", formula);
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
    note(d, LV_FAIL, "balance", json_pack("{s:I}", "missing", (json_int_t)missing),
         "%lld job%s the history waits for (no event for %s) %s not on the broker: %s; the "
         "delay levels and unroutable hold %lld", missing, missing == 1 ? "" : "s",
         dur(d->grace_ms, g, sizeof g), missing == 1 ? "is" : "are", text, h->pool);
}

static int open_history(struct doctor *d, struct warren_history **out)
{
    char db[4096];
    warren__web_db_path(&d->ctx.cfg, db, sizeof db);
    if (access(db, F_OK) != 0) {
        note(d, LV_SKIP, "balance", NULL, "no history at %s (`warren web` keeps it)", db);
        return -1;
    }
    struct warren_history_opts o = {.read_only = 1};
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_open(out, db, &o, &err) != WARREN_OK) {
        note(d, LV_FAIL, "balance", NULL, "%s", err.text);
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
        note(d, LV_FAIL, "balance", NULL, "%s", err.text);
    return out;
}

static void check_balance(struct doctor *d)
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
        note(d, LV_FAIL, "balance", NULL, "out of memory");
    else if (root && h.history_ready > 0)
        note(d, LV_WARN, "balance", NULL,
             "not compared: the history is behind, %u event%s in %s.history (%s)",
             h.history_ready, h.history_ready == 1 ? " waits" : "s wait", cfg->namespace_,
             h.history_consumers ? "warren web is catching up" : "is warren web running?");
    else if (root && json_array_size(workers) == 0)
        note(d, LV_OK, "balance", NULL, "no job in the history was published through warren's "
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

/* ---- the command --------------------------------------------------------- */

static int parse_args(struct doctor *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            d->json = 1;
            continue;
        }
        if (!strcmp(a, "--grace")) {
            char why[128];
            if (i + 1 >= argc || warren__parse_duration(argv[i + 1], &d->grace_ms, why,
                                                        sizeof why) != 0) {
                fprintf(stderr, "warren doctor: --grace %s\n",
                        i + 1 < argc ? why : "needs a duration (e.g. 60s)");
                usage(stderr);
                return 2;
            }
            i++;
            continue;
        }
        int r = cli_take_conn_option(&d->ctx, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren doctor: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* Loads the modules, to know the worker names (as `warren topology`). */
static int load_workers(struct doctor *d)
{
    warren_error err;
    warren_error_clear(&err);
    if (warren_registry_create(&d->reg) != WARREN_OK)
        return 1;
    if (warren__modules_load(&d->mods, &d->ctx.cfg, d->reg, &err) != WARREN_OK) {
        cli_error("doctor", &err);
        return 2;
    }
    return 0;
}

/* Like cli_connect, but an unreachable broker is a finding, not the end. */
static int connect_broker(struct doctor *d)
{
    char *list = cli_urls(&d->ctx);
    size_t n = 0;
    char **urls = list ? warren__url_list(list, &n) : NULL;
    free(list);
    d->amqp_url = urls && n ? strdup(urls[0]) : NULL;
    const struct warren_config *cfg = &d->ctx.cfg;
    struct warren_conn_opts co = {cfg->heartbeat, cfg->password_file, &cfg->tls, "warren doctor"};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = urls ? warren__conn_open(&d->conn, urls, n, &co, &err)
                            : warren_error_set(&err, WARREN_ENOMEM, "out of memory");
    warren__strv_free(urls);
    if (st == WARREN_EINVAL) {
        cli_error("doctor", &err);
        return 2;
    }
    if (st != WARREN_OK)
        note(d, LV_FAIL, "broker", NULL, "%s", err.text);
    return 0;
}

static int print_findings(const struct doctor *d)
{
    size_t count[4] = {0};
    for (size_t i = 0; i < d->n; i++)
        count[d->v[i].level]++;
    if (d->json) {
        json_t *list = json_array();
        for (size_t i = 0; i < d->n; i++) {
            json_t *f = json_pack("{s:s, s:s, s:s}", "check", d->v[i].check, "status",
                                  level_names[d->v[i].level], "text", d->v[i].text);
            json_object_update(f, d->v[i].detail);
            json_array_append_new(list, f);
        }
        json_t *root = json_pack("{s:b, s:I, s:I, s:I, s:o}", "ok", count[LV_FAIL] == 0,
                                 "problems", (json_int_t)count[LV_FAIL], "warnings",
                                 (json_int_t)count[LV_WARN], "skipped",
                                 (json_int_t)count[LV_SKIP], "findings", list);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "null");
        free(text);
        json_decref(root);
    } else {
        for (size_t i = 0; i < d->n; i++)
            printf("%-4s  %s: %s\n", level_names[d->v[i].level], d->v[i].check, d->v[i].text);
        printf("doctor: %zu problem%s, %zu warning%s, %zu skipped\n", count[LV_FAIL],
               count[LV_FAIL] == 1 ? "" : "s", count[LV_WARN], count[LV_WARN] == 1 ? "" : "s",
               count[LV_SKIP]);
    }
    return count[LV_FAIL] ? 1 : 0;
}

int warren__cli_doctor(int argc, char **argv)
{
    struct doctor d;
    memset(&d, 0, sizeof d);
    d.grace_ms = 60000;
    int rc = parse_args(&d, argc, argv);
    if (rc >= 0)
        return rc;
    rc = cli_load(&d.ctx);
    if (rc == 0)
        rc = load_workers(&d);
    if (rc == 0)
        rc = connect_broker(&d);
    if (rc == 0) {
        mgmt_open(&d.mgmt, d.ctx.cfg.management_url, d.amqp_url);
        if (d.conn) {
            check_topology(&d);
            check_capabilities(&d);
        }
        check_consumer_timeout(&d);
        if (d.conn) {
            check_bindings(&d);
            check_balance(&d);
        }
        rc = print_findings(&d);
        mgmt_close(&d.mgmt);
    }
    for (size_t i = 0; i < d.n; i++) {
        free(d.v[i].text);
        json_decref(d.v[i].detail);
    }
    free(d.v);
    free(d.amqp_url);
    warren__conn_close(d.conn);
    warren__modules_unload(d.mods);
    warren_registry_destroy(d.reg);
    cli_free(&d.ctx);
    return rc;
}
