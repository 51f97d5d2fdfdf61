/* `warren doctor`: the bindings a host of this config declares, and the
 * dead-letter route of each delay level, read from the management API
 * (AMQP cannot list bindings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "delay.h"
#include "doctor.h"
#include "registry_internal.h"
#include "topology.h"

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
            doctor_note(
                d, LV_FAIL, "bindings", NULL,
                "jobs for %s go to both %s and %s, so each runs twice: unbind the queue the "
                "configuration does not name",
                key, dest, d2);
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
    json_t *q = doctor_mgmt_get(d, "queues", name, "", &found);
    if (!q)
        return 0; /* missing: the topology check said so */
    json_t *args = json_object_get(q, "arguments");
    const char *dlx = json_string_value(json_object_get(args, "x-dead-letter-exchange"));
    json_t *ttl = json_object_get(args, "x-message-ttl");
    long long want = (1LL << level) * 1000;
    int bad = 0;
    if (!dlx || strcmp(dlx, next) != 0) {
        bad = 1;
        doctor_note(d, LV_FAIL, "bindings", NULL,
                    "queue %s dead-letters to '%s', not to '%s': its delayed jobs never arrive",
                    name, dlx ? dlx : "(none)", next);
    }
    if (!json_is_integer(ttl) || json_integer_value(ttl) != want) {
        bad = 1;
        doctor_note(d, LV_FAIL, "bindings", NULL, "queue %s has x-message-ttl %lld, not %lld", name,
                    json_is_integer(ttl) ? (long long)json_integer_value(ttl) : -1LL, want);
    }
    json_decref(q);
    return bad;
}

void doctor_check_bindings(struct doctor *d)
{
    struct binding *v = NULL;
    size_t n = expected_bindings(d, &v);
    int bad = 0, missing_sources = 0;
    char shown[KEY_MAX + 24];
    json_t *list = NULL;
    for (size_t i = 0; i < n && !d->mgmt_why[0]; i++) {
        int found = 1;
        if (i == 0 || strcmp(v[i].source, v[i - 1].source) != 0) {
            json_decref(list);
            list = doctor_mgmt_get(d, "exchanges", v[i].source, "/bindings/source", &found);
            if (!found && !d->mgmt_why[0])
                missing_sources++; /* the topology check names it */
            if (list && !strcmp(v[i].source, d->ctx.cfg.namespace_))
                bad |= check_doubles(d, list);
        }
        if (!list || has_binding(list, &v[i]))
            continue;
        bad = 1;
        doctor_note(d, LV_FAIL, "bindings",
                    json_pack("{s:s, s:s, s:s, s:s}", "source", v[i].source, "destination",
                              v[i].dest, "destination_type", v[i].dest_type, "routing_key",
                              v[i].key),
                    "%s %s is not bound to exchange %s with %s: %s", v[i].dest_type, v[i].dest,
                    v[i].source, short_key(v[i].key, shown, sizeof shown), v[i].what);
    }
    json_decref(list);
    for (int l = 0; l < WARREN_DELAY_LEVELS && !d->mgmt_why[0]; l++)
        bad |= check_level_queue(d, l);
    if (d->mgmt_why[0])
        doctor_note(d, LV_SKIP, "bindings", NULL, "not checked: %s (AMQP cannot list bindings)",
                    d->mgmt_why);
    else if (missing_sources)
        doctor_note(d, LV_FAIL, "bindings", NULL, "%d exchange%s missing, so %s bindings are too",
                    missing_sources, missing_sources == 1 ? " is" : "s are",
                    missing_sources == 1 ? "its" : "their");
    else if (!bad)
        doctor_note(d, LV_OK, "bindings", NULL,
                    "%zu bindings in place (jobs, retries and delays of every worker, %d delay "
                    "levels, unroutable); each level dead-letters to the next",
                    n, WARREN_DELAY_LEVELS);
    free(v);
}
