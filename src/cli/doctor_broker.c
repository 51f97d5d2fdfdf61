/* `warren doctor`: what the broker says about itself when asked over AMQP
 * (the topology walk in check mode, the capabilities it announces) and
 * the config-only check of time limits against the consumer timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <amqp.h>
#include "delay.h"
#include "doctor.h"
#include "topology.h"

#define HANDOFF_MARGIN_MS 5000 /* the supervisor's kill comes at time_limit + 5 s */

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
        doctor_note(d, LV_FAIL, "topology",
                    json_pack("{s:s, s:s, s:b}", "kind", kind, "object", name, "missing", 1),
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
        doctor_note(d, LV_FAIL, "topology",
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", kind, "object", name, "argument",
                              arg, "expected", want, "actual", have),
                    "%s '%s': %s is %s on the broker but %s in the configuration", kind, name, arg,
                    shown_value(have, hv, sizeof hv), shown_value(want, wv, sizeof wv));
        return;
    }
    doctor_note(d, LV_FAIL, "topology", NULL, "%s", problem);
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

void doctor_check_topology(struct doctor *d)
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
        doctor_note(d, LV_FAIL, "topology", json_pack("{s:i}", "missing_delay_objects", levels),
                    "%d of the %d exchanges and queues of the delay levels (%s.delay.0 .. %d) are "
                    "missing: delayed jobs and retries cannot be handed off",
                    levels, 2 * WARREN_DELAY_LEVELS, d->ctx.cfg.namespace_,
                    WARREN_DELAY_LEVELS - 1);
    if (st != WARREN_OK)
        doctor_note(d, LV_FAIL, "topology", NULL, "%s", err.text);
    else if (n == 0)
        doctor_note(d, LV_OK, "topology", NULL,
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
    enum doctor_level missing;
    const char *why;
} capabilities[] = {
    {"publisher_confirms", LV_FAIL, "producers and hand-offs wait for the broker's confirm"},
    {"basic.nack", LV_FAIL, "a copy the broker refuses must come back as a nack"},
    {"consumer_cancel_notify", LV_FAIL, "hosts learn that their queue was deleted"},
    {"exchange_exchange_bindings", LV_FAIL, "the delay levels are a chain of exchanges"},
    {"per_consumer_qos", LV_WARN, "the prefetch is meant per consumer"},
    {"connection.blocked", LV_WARN, "publishers learn that a resource alarm blocks them"},
};

void doctor_check_capabilities(struct doctor *d)
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
        doctor_note(d, capabilities[i].missing, "capabilities", NULL,
                    "the broker does not announce %s: %s", capabilities[i].name,
                    capabilities[i].why);
    }
    int quorum = 0;
    for (size_t i = 0; i < d->ctx.cfg.n_queues; i++)
        quorum |= d->ctx.cfg.queues[i].type == WARREN_QUEUE_QUORUM;
    int parsed = sscanf(version, "%d.%d.%d", &major, &minor, &patch) >= 2;
    d->version = parsed ? major * 10000 + minor * 100 + patch : 0;
    if (strcmp(product, "RabbitMQ") != 0) {
        bad = 1;
        doctor_note(d, LV_WARN, "capabilities", NULL,
                    "the broker is '%s' %s; warren is built for RabbitMQ (tested with 3.10)",
                    product[0] ? product : "unnamed", version);
    } else if (quorum && (!parsed || major < 3 || (major == 3 && minor < 10))) {
        bad = 1;
        doctor_note(d, LV_FAIL, "capabilities", NULL,
                    "RabbitMQ %s is too old for the quorum queues of the configuration: the quorum "
                    "delay levels need at-least-once dead-lettering (RabbitMQ 3.10)",
                    version[0] ? version : "(no version)");
    }
    if (!bad)
        doctor_note(d, LV_OK, "capabilities",
                    json_pack("{s:s, s:s}", "product", product, "version", version),
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
    json_t *q = doctor_mgmt_get(d, "queues", name, "", &found);
    json_t *arg = json_object_get(json_object_get(q, "arguments"), "x-consumer-timeout");
    json_t *pol =
        json_object_get(json_object_get(q, "effective_policy_definition"), "consumer-timeout");
    long long ms = json_is_integer(arg) ? json_integer_value(arg)
                   : json_is_integer(pol) ? json_integer_value(pol)
                                          : 0;
    json_decref(q);
    return ms;
}

void doctor_check_consumer_timeout(struct doctor *d)
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
        enum doctor_level lv = w->time_limit_ms >= timeout                        ? LV_FAIL
                        : w->time_limit_ms + HANDOFF_MARGIN_MS > timeout ? LV_WARN
                                                                         : LV_OK;
        if (lv == LV_OK)
            continue;
        bad = 1;
        char where[WARREN_AMQP_NAME_MAX + 40] = "broker.consumer_timeout";
        if (own > 0)
            snprintf(where, sizeof where, "the consumer timeout of queue %s", w->queue);
        doctor_note(
            d, lv, "consumer-timeout",
            json_pack("{s:s, s:I, s:I}", "worker", w->name, "time_limit_ms",
                      (json_int_t)w->time_limit_ms, "consumer_timeout_ms", (json_int_t)timeout),
            "%s:%d: worker %s has time_limit %s, %s %s %s: %s", cfg->path ? cfg->path : "-",
            w->line, w->name, doctor_dur(w->time_limit_ms, a, sizeof a),
            lv == LV_FAIL ? "not below" : "less than 5s below", where,
            doctor_dur(timeout, b, sizeof b),
            lv == LV_FAIL ? "RabbitMQ closes the channel of a job that runs that long, and it "
                            "comes back as a redelivery; raise consumer_timeout on the broker"
                          : "the hand-off after the limit may not be acked in time");
    }
    if (bad)
        return;
    if (cfg->consumer_timeout_ms <= 0)
        doctor_note(d, LV_OK, "consumer-timeout", NULL, "broker.consumer_timeout is off");
    else if (!limited)
        doctor_note(d, LV_OK, "consumer-timeout", NULL,
                    "no worker has a time limit; a job running %s or longer loses its channel "
                    "(broker.consumer_timeout)",
                    doctor_dur(cfg->consumer_timeout_ms, a, sizeof a));
    else
        doctor_note(d, LV_OK, "consumer-timeout", NULL,
                    "%d time limit%s below broker.consumer_timeout %s (longest: %s %s)", limited,
                    limited == 1 ? " is" : "s are",
                    doctor_dur(cfg->consumer_timeout_ms, a, sizeof a), longest->name,
                    doctor_dur(longest->time_limit_ms, b, sizeof b));
}
