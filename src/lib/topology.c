/* Names and declarations of the wire contract (see topology.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <amqp.h>
#include "delay.h"
#include "registry_internal.h"
#include "topology.h"

const char *warren__name_exchange(char *buf, size_t size, const char *ns)
{
    snprintf(buf, size, "%s", ns);
    return buf;
}

const char *warren__name_unroutable(char *buf, size_t size, const char *ns)
{
    snprintf(buf, size, "%s.unroutable", ns);
    return buf;
}

const char *warren__name_queue(char *buf, size_t size, const char *ns, const char *queue)
{
    snprintf(buf, size, "%s.%s", ns, queue);
    return buf;
}

const char *warren__name_dead(char *buf, size_t size, const char *ns, const char *queue)
{
    snprintf(buf, size, "%s.%s.dead", ns, queue);
    return buf;
}

static void report_one(warren_topology_report report, void *user, const char *kind,
                       const char *name, const char *detail)
{
    if (report)
        report(kind, name, detail, user);
}

static amqp_table_entry_t string_arg(const char *key, const char *value)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

static amqp_table_entry_t int_arg(const char *key, int value)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I32;
    e.value.value.i32 = value;
    return e;
}

warren_status warren__topology_ensure_queue(struct warren_conn *c, const char *name,
                                            amqp_table_t args, int quorum, warren_error *err)
{
    warren_error probe;
    warren_error_clear(&probe);
    warren_status st = warren__conn_queue_inspect(c, name, NULL, NULL, &probe);
    if (st != WARREN_ENOTFOUND)
        return st == WARREN_OK ? st : warren_error_set(err, st, "%s", probe.text);
    if (!quorum)
        return warren__conn_queue_declare(c, name, args, err);
    amqp_table_entry_t more[8];
    int n = args.num_entries < 7 ? args.num_entries : 7;
    for (int i = 0; i < n; i++)
        more[i] = args.entries[i];
    more[n++] = string_arg("x-queue-type", "quorum");
    amqp_table_t t = {n, more};
    return warren__conn_queue_declare(c, name, t, err);
}

warren_status warren__topology_declare_base(struct warren_conn *c, const char *ns, int quorum,
                                            warren_topology_report report, void *user,
                                            warren_error *err)
{
    char ex[WARREN_AMQP_NAME_MAX], unr[WARREN_AMQP_NAME_MAX];
    warren__name_exchange(ex, sizeof ex, ns);
    warren__name_unroutable(unr, sizeof unr, ns);

    warren_status st = warren__conn_exchange_declare(c, unr, "fanout", amqp_empty_table, err);
    if (st != WARREN_OK)
        return st;
    report_one(report, user, "exchange", unr, "fanout, durable");
    st = warren__topology_ensure_queue(c, unr, amqp_empty_table, quorum, err);
    if (st != WARREN_OK)
        return st;
    report_one(report, user, "queue", unr, quorum ? "durable (quorum if new)" : "durable");
    st = warren__conn_queue_bind(c, unr, unr, "", err);
    if (st != WARREN_OK)
        return st;
    report_one(report, user, "binding", unr, "from exchange with any key");

    amqp_table_entry_t args[1] = {string_arg("alternate-exchange", unr)};
    amqp_table_t t = {1, args};
    st = warren__conn_exchange_declare(c, ex, "direct", t, err);
    if (st == WARREN_OK) {
        char detail[300];
        snprintf(detail, sizeof detail, "direct, durable, alternate-exchange=%s", unr);
        report_one(report, user, "exchange", ex, detail);
    }
    return st;
}

warren_status warren__topology_declare_queue(struct warren_conn *c, const char *ns,
                                             const struct warren_queue_conf *q,
                                             warren_topology_report report, void *user,
                                             warren_error *err)
{
    char work[WARREN_AMQP_NAME_MAX], dead[WARREN_AMQP_NAME_MAX], detail[128];
    warren__name_queue(work, sizeof work, ns, q->name);
    warren__name_dead(dead, sizeof dead, ns, q->name);

    amqp_table_entry_t args[1];
    amqp_table_t t = {1, args};
    if (q->type == WARREN_QUEUE_QUORUM) {
        args[0] = string_arg("x-queue-type", "quorum");
        snprintf(detail, sizeof detail, "durable, quorum");
    } else {
        args[0] = int_arg("x-max-priority", q->max_priority);
        snprintf(detail, sizeof detail, "durable, classic, x-max-priority=%d", q->max_priority);
    }
    warren_status st = warren__conn_queue_declare(c, work, t, err);
    if (st != WARREN_OK)
        return st;
    report_one(report, user, "queue", work, detail);

    /* Dead letters keep the work queue's type; they need no priority. */
    amqp_table_t dead_args = amqp_empty_table;
    if (q->type == WARREN_QUEUE_QUORUM)
        dead_args = t;
    st = warren__conn_queue_declare(c, dead, dead_args, err);
    if (st == WARREN_OK)
        report_one(report, user, "queue", dead,
                   q->type == WARREN_QUEUE_QUORUM ? "durable, quorum" : "durable, classic");
    return st;
}

warren_status warren__topology_bind_worker(struct warren_conn *c, const char *ns,
                                           const char *queue, const char *worker,
                                           warren_topology_report report, void *user,
                                           warren_error *err)
{
    char ex[WARREN_AMQP_NAME_MAX], work[WARREN_AMQP_NAME_MAX];
    char deliver[WARREN_AMQP_NAME_MAX], key[2 * WARREN_DELAY_LEVELS + 130];
    char detail[WARREN_AMQP_NAME_MAX + 200];
    warren__name_exchange(ex, sizeof ex, ns);
    warren__name_queue(work, sizeof work, ns, queue);
    warren__name_delay_deliver(deliver, sizeof deliver, ns);
    warren_status st = warren__conn_queue_bind(c, work, ex, worker, err);
    if (st == WARREN_OK) {
        snprintf(detail, sizeof detail, "%s -> %s", worker, work);
        report_one(report, user, "binding", ex, detail);
        /* Delayed jobs and retries reach the queue by the same worker name. */
        if (warren__delay_binding_key(key, sizeof key, worker) != 0)
            return warren_error_set(err, WARREN_EINVAL, "worker name too long: %s", worker);
        st = warren__conn_queue_bind(c, work, deliver, key, err);
    }
    if (st == WARREN_OK) {
        snprintf(detail, sizeof detail, "<28 *>.%s -> %s", worker, work);
        report_one(report, user, "binding", deliver, detail);
    }
    return st;
}

static int queue_listed(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static int queue_has_worker(const struct warren_config *cfg, const warren_registry *reg,
                            const char *queue)
{
    unsigned n = warren_registry_count(reg);
    for (unsigned i = 0; i < n; i++) {
        const struct warren_worker_conf *w =
            warren__config_worker(cfg, warren_registry_name(reg, i));
        if (strcmp(w->queue, queue) == 0)
            return 1;
    }
    return 0;
}

const struct warren_queue_conf **warren__host_queues(const struct warren_config *cfg,
                                                     const warren_registry *reg, size_t *n)
{
    const struct warren_queue_conf **out = calloc(cfg->n_queues + 1, sizeof *out);
    size_t k = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const struct warren_queue_conf *q = &cfg->queues[i];
        int take = cfg->host_queues ? queue_listed(cfg->host_queues, cfg->n_host_queues, q->name)
                                    : queue_has_worker(cfg, reg, q->name);
        if (take)
            out[k++] = q;
    }
    if (n)
        *n = k;
    return out;
}

warren_status warren__topology_declare_host(struct warren_conn *c,
                                            const struct warren_config *cfg,
                                            const warren_registry *reg,
                                            warren_topology_report report, void *user,
                                            warren_error *err)
{
    int quorum = 0;
    for (size_t i = 0; i < cfg->n_queues; i++)
        quorum |= cfg->queues[i].type == WARREN_QUEUE_QUORUM;
    warren_status st =
        warren__topology_declare_base(c, cfg->namespace_, quorum, report, user, err);
    if (st == WARREN_OK)
        st = warren__topology_declare_delay(c, cfg->namespace_, quorum, report, user, err);
    size_t nq = 0;
    const struct warren_queue_conf **queues = st == WARREN_OK ? warren__host_queues(cfg, reg, &nq)
                                                              : NULL;
    if (st == WARREN_OK && !queues)
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    for (size_t i = 0; st == WARREN_OK && i < nq; i++)
        st = warren__topology_declare_queue(c, cfg->namespace_, queues[i], report, user, err);
    unsigned nw = warren_registry_count(reg);
    for (unsigned i = 0; st == WARREN_OK && i < nw; i++) {
        const char *name = warren_registry_name(reg, i);
        const struct warren_worker_conf *w = warren__config_worker(cfg, name);
        for (size_t k = 0; k < nq; k++)
            if (strcmp(queues[k]->name, w->queue) == 0)
                st = warren__topology_bind_worker(c, cfg->namespace_, w->queue, name, report,
                                                  user, err);
    }
    free(queues);
    return st;
}
