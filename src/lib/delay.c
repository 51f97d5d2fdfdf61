/* The delay levels and the retry backoff (see delay.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <amqp.h>
#include "delay.h"

const char *warren__name_delay_level(char *buf, size_t size, const char *ns, int level)
{
    snprintf(buf, size, "%s.delay.%d", ns, level);
    return buf;
}

const char *warren__name_delay_deliver(char *buf, size_t size, const char *ns)
{
    snprintf(buf, size, "%s.delay.deliver", ns);
    return buf;
}

long long warren__delay_seconds(long long ms)
{
    /* The levels count whole seconds: a sub-second delay runs at once,
     * anything longer is rounded up so a job never runs early. */
    if (ms < 1000)
        return 0;
    long long s = (ms + 999) / 1000;
    return s > WARREN_DELAY_MAX_S ? WARREN_DELAY_MAX_S : s;
}

int warren__delay_routing_key(char *buf, size_t size, long long seconds, const char *worker)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds > WARREN_DELAY_MAX_S)
        seconds = WARREN_DELAY_MAX_S;
    size_t need = 2 * WARREN_DELAY_LEVELS + strlen(worker) + 1;
    if (need > size)
        return -1;
    char *p = buf;
    for (int bit = WARREN_DELAY_LEVELS - 1; bit >= 0; bit--) {
        *p++ = (seconds >> bit) & 1 ? '1' : '0';
        *p++ = '.';
    }
    strcpy(p, worker);
    return 0;
}

const char *warren__delay_key_worker(const char *key)
{
    const char *p = key;
    for (int i = 0; i < WARREN_DELAY_LEVELS; i++) {
        if ((p[0] != '0' && p[0] != '1') || p[1] != '.')
            return NULL;
        p += 2;
    }
    return *p ? p : NULL;
}

int warren__delay_binding_key(char *buf, size_t size, const char *worker)
{
    size_t need = 2 * WARREN_DELAY_LEVELS + strlen(worker) + 1;
    if (need > size)
        return -1;
    char *p = buf;
    for (int i = 0; i < WARREN_DELAY_LEVELS; i++) {
        *p++ = '*';
        *p++ = '.';
    }
    strcpy(p, worker);
    return 0;
}

void warren__delay_level_pattern(char *buf, size_t size, int level, char bit)
{
    size_t n = 0;
    for (int i = WARREN_DELAY_LEVELS - 1; i > level && n + 2 < size; i--) {
        buf[n++] = '*';
        buf[n++] = '.';
    }
    snprintf(buf + n, size - n, "%c.#", bit);
}

static warren_status declare_level(struct warren_conn *c, const char *ns, int level, int quorum,
                                   warren_error *err)
{
    char name[WARREN_AMQP_NAME_MAX], next[WARREN_AMQP_NAME_MAX], key[128];
    warren__name_delay_level(name, sizeof name, ns, level);
    if (level == 0)
        warren__name_delay_deliver(next, sizeof next, ns);
    else
        warren__name_delay_level(next, sizeof next, ns, level - 1);

    warren_status st = warren__conn_exchange_declare(c, name, "topic", amqp_empty_table, err);
    if (st != WARREN_OK)
        return st;
    amqp_table_entry_t args[4];
    int n = 0;
    args[n].key = amqp_cstring_bytes("x-message-ttl");
    args[n].value.kind = AMQP_FIELD_KIND_I64;
    args[n++].value.value.i64 = (1LL << level) * 1000;
    args[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
    args[n].value.kind = AMQP_FIELD_KIND_UTF8;
    args[n++].value.value.bytes = amqp_cstring_bytes(next);
    if (quorum) {
        args[n].key = amqp_cstring_bytes("x-dead-letter-strategy");
        args[n].value.kind = AMQP_FIELD_KIND_UTF8;
        args[n++].value.value.bytes = amqp_cstring_bytes("at-least-once");
        args[n].key = amqp_cstring_bytes("x-overflow");
        args[n].value.kind = AMQP_FIELD_KIND_UTF8;
        args[n++].value.value.bytes = amqp_cstring_bytes("reject-publish");
    }
    amqp_table_t t = {n, args};
    st = warren__topology_ensure_queue(c, name, t, quorum, err);
    if (st != WARREN_OK)
        return st;
    warren__delay_level_pattern(key, sizeof key, level, '1');
    st = warren__conn_queue_bind(c, name, name, key, err);
    if (st != WARREN_OK)
        return st;
    warren__delay_level_pattern(key, sizeof key, level, '0');
    return warren__conn_exchange_bind(c, next, name, key, err);
}

warren_status warren__topology_declare_delay(struct warren_conn *c, const char *ns, int quorum,
                                             warren_topology_report report, void *user,
                                             warren_error *err)
{
    char deliver[WARREN_AMQP_NAME_MAX], unr[WARREN_AMQP_NAME_MAX];
    warren__name_delay_deliver(deliver, sizeof deliver, ns);
    warren__name_unroutable(unr, sizeof unr, ns);
    /* A delayed job whose queue is gone is kept in unroutable, never
     * dropped and never stuck at the head of a level. */
    amqp_table_entry_t ae[1];
    ae[0].key = amqp_cstring_bytes("alternate-exchange");
    ae[0].value.kind = AMQP_FIELD_KIND_UTF8;
    ae[0].value.value.bytes = amqp_cstring_bytes(unr);
    amqp_table_t t = {1, ae};
    warren_status st = warren__conn_exchange_declare(c, deliver, "topic", t, err);
    if (st == WARREN_OK && report)
        report("exchange", deliver, "topic, durable, alternate-exchange (delivery of delays)",
               user);
    for (int level = 0; st == WARREN_OK && level < WARREN_DELAY_LEVELS; level++)
        st = declare_level(c, ns, level, quorum, err);
    if (st == WARREN_OK && report) {
        char first[WARREN_AMQP_NAME_MAX], detail[2 * WARREN_AMQP_NAME_MAX];
        warren__name_delay_level(first, sizeof first, ns, 0);
        snprintf(detail, sizeof detail, "%d levels %s .. %s.delay.%d, level L waits 2^L s%s",
                 WARREN_DELAY_LEVELS, first, ns, WARREN_DELAY_LEVELS - 1,
                 quorum ? ", quorum" : "");
        report("queue", first, detail, user);
    }
    return st;
}

long long warren__backoff_seconds(long long ms)
{
    if (ms < 500)
        return 0;
    long long s = (ms + 500) / 1000;
    return s > WARREN_DELAY_MAX_S ? WARREN_DELAY_MAX_S : s;
}

long long warren__backoff_ms(const struct warren_retry_policy *p, int attempt, double unit)
{
    if (attempt < 1)
        attempt = 1;
    double d = (double)p->initial_delay_ms * pow(p->multiplier, attempt - 1);
    if (d > (double)p->max_delay_ms || !isfinite(d))
        d = (double)p->max_delay_ms;
    d *= 1.0 + p->jitter * (2.0 * unit - 1.0);
    return d < 0 ? 0 : (long long)llround(d);
}
