/* Retry copies and dead letters (see handoff.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "delay.h"
#include "handoff.h"
#include "topology.h"

/* A header table under construction: borrowed original entries plus new
 * ones whose strings it owns. */
struct hdrs {
    amqp_table_entry_t *e;
    size_t n, cap;
    char **owned;
    size_t n_owned;
};

static int key_is(amqp_bytes_t key, const char *name)
{
    size_t len = strlen(name);
    return key.len == len && memcmp(key.bytes, name, len) == 0;
}

static int key_has_prefix(amqp_bytes_t key, const char *prefix)
{
    size_t len = strlen(prefix);
    return key.len >= len && memcmp(key.bytes, prefix, len) == 0;
}

static int is_death_header(amqp_bytes_t key)
{
    return key_is(key, "x-death") || key_has_prefix(key, "x-first-death-") ||
           key_has_prefix(key, "x-last-death-");
}

static int hdrs_reserve(struct hdrs *h)
{
    if (h->n < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 32;
    amqp_table_entry_t *e = realloc(h->e, cap * sizeof *e);
    if (!e)
        return -1;
    h->e = e;
    h->cap = cap;
    return 0;
}

static int hdrs_init(struct hdrs *h, const amqp_basic_properties_t *p)
{
    memset(h, 0, sizeof *h);
    if (!p || !(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        if (is_death_header(p->headers.entries[i].key))
            continue;
        if (hdrs_reserve(h) != 0)
            return -1;
        h->e[h->n++] = p->headers.entries[i];
    }
    return 0;
}

/* Replaces or appends `key`; returns the entry to fill. */
static amqp_table_entry_t *hdrs_slot(struct hdrs *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (key_is(h->e[i].key, key))
            return &h->e[i];
    if (hdrs_reserve(h) != 0)
        return NULL;
    amqp_table_entry_t *e = &h->e[h->n++];
    e->key = amqp_cstring_bytes(key);
    return e;
}

static int hdrs_set_str(struct hdrs *h, const char *key, const char *value)
{
    char **owned = realloc(h->owned, (h->n_owned + 1) * sizeof *owned);
    if (!owned)
        return -1;
    h->owned = owned;
    char *copy = strdup(value ? value : "");
    if (!copy)
        return -1;
    h->owned[h->n_owned++] = copy;
    amqp_table_entry_t *e = hdrs_slot(h, key);
    if (!e)
        return -1;
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes(copy);
    return 0;
}

static int hdrs_set_int(struct hdrs *h, const char *key, long long value)
{
    amqp_table_entry_t *e = hdrs_slot(h, key);
    if (!e)
        return -1;
    e->value.kind = AMQP_FIELD_KIND_I64;
    e->value.value.i64 = value;
    return 0;
}

static int hdrs_has(const struct hdrs *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (key_is(h->e[i].key, key))
            return 1;
    return 0;
}

static void hdrs_free(struct hdrs *h)
{
    for (size_t i = 0; i < h->n_owned; i++)
        free(h->owned[i]);
    free(h->owned);
    free(h->e);
}

const char *warren__now_rfc3339(char *buf, size_t size)
{
    /* Each event carries one: the date and time of day are formatted once
     * per second and thread, then only the milliseconds are written. */
    static _Thread_local time_t second;
    static _Thread_local char date[32];
    static _Thread_local size_t date_len;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (!date_len || tv.tv_sec != second) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        date_len = strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        second = tv.tv_sec;
    }
    int ms = (int)(tv.tv_usec / 1000);
    if (!date_len || size < date_len + 6) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03dZ", ms);
        return buf;
    }
    memcpy(buf, date, date_len);
    char *p = buf + date_len;
    p[0] = '.';
    p[1] = (char)('0' + ms / 100);
    p[2] = (char)('0' + ms / 10 % 10);
    p[3] = (char)('0' + ms % 10);
    p[4] = 'Z';
    p[5] = '\0';
    return buf;
}

/* The copy's properties: the original's, persistent, no expiration, the
 * assigned id when the original had none, and the given headers. */
static amqp_basic_properties_t copy_props(const amqp_basic_properties_t *orig,
                                          const struct hdrs *h, const char *assigned_id,
                                          const char *type)
{
    amqp_basic_properties_t p;
    if (orig)
        p = *orig;
    else
        memset(&p, 0, sizeof p);
    p._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (assigned_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(assigned_id);
    }
    if (type) {
        p._flags |= AMQP_BASIC_TYPE_FLAG;
        p.type = amqp_cstring_bytes(type);
    }
    p.headers.num_entries = (int)h->n;
    p.headers.entries = h->e;
    return p;
}

/* Where the job first came from, kept across retries so the dead letter
 * can name it. */
static int set_origin(struct hdrs *h, const struct warren_conn_delivery *d)
{
    int rc = 0;
    if (!hdrs_has(h, "x-warren-original-exchange"))
        rc |= hdrs_set_str(h, "x-warren-original-exchange", d->exchange);
    if (!hdrs_has(h, "x-warren-original-routing-key"))
        rc |= hdrs_set_str(h, "x-warren-original-routing-key", d->routing_key);
    return rc;
}

static void cut_error(char *out, size_t size, const char *error)
{
    snprintf(out, size, "%s", error ? error : "");
}

warren_status warren__send_dead(struct warren_conn *c, const char *ns,
                                const struct warren_conn_delivery *d,
                                const struct warren_dead_info *info, warren_error *err)
{
    const amqp_basic_properties_t *orig = &d->message.properties;
    char when[40], error[1025], dead[WARREN_AMQP_NAME_MAX];
    struct hdrs h;
    int rc = hdrs_init(&h, orig);
    cut_error(error, sizeof error, info->error);
    rc |= hdrs_set_str(&h, "x-warren-dead-reason", warren__dead_reason_name(info->reason));
    rc |= hdrs_set_str(&h, "x-warren-error", error);
    rc |= hdrs_set_int(&h, "x-warren-attempts", info->attempts);
    rc |= hdrs_set_str(&h, "x-warren-failed-at", warren__now_rfc3339(when, sizeof when));
    rc |= hdrs_set_str(&h, "x-warren-queue", info->queue);
    rc |= hdrs_set_str(&h, "x-warren-host", info->host);
    rc |= set_origin(&h, d);
    warren_status st = WARREN_OK;
    if (rc != 0) {
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory building a dead letter");
    } else {
        amqp_basic_properties_t p = copy_props(orig, &h, info->assigned_id, NULL);
        warren__name_dead(dead, sizeof dead, ns, info->queue);
        st = warren__conn_publish_confirmed(c, "", dead, &p, d->message.body.bytes,
                                            d->message.body.len, WARREN_HANDOFF_TIMEOUT_MS,
                                            err);
    }
    hdrs_free(&h);
    return st;
}

warren_status warren__send_retry(struct warren_conn *c, const char *ns,
                                 const struct warren_conn_delivery *d,
                                 const struct warren_retry_info *info, warren_error *err)
{
    const amqp_basic_properties_t *orig = &d->message.properties;
    char error[1025], entry[WARREN_AMQP_NAME_MAX], key[2 * WARREN_DELAY_LEVELS + 130];
    struct hdrs h;
    int rc = hdrs_init(&h, orig);
    cut_error(error, sizeof error, info->error);
    rc |= warren__delay_routing_key(key, sizeof key, info->delay_s, info->worker);
    rc |= hdrs_set_int(&h, "x-warren-attempt", info->next_attempt);
    if (info->error)
        rc |= hdrs_set_str(&h, "x-warren-last-error", error);
    if (info->snoozes > 0)
        rc |= hdrs_set_int(&h, "x-warren-snoozes", info->snoozes);
    if (info->lock_since_ms >= 0)
        rc |= hdrs_set_int(&h, "x-warren-lock-since", info->lock_since_ms);
    rc |= set_origin(&h, d);
    warren_status st = WARREN_OK;
    if (rc != 0) {
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory building a retry copy");
    } else {
        /* The worker name rides in `type` too: the delivery's routing key
         * is then the delay key, not the name. */
        amqp_basic_properties_t p = copy_props(orig, &h, info->assigned_id, info->worker);
        warren__name_delay_level(entry, sizeof entry, ns, WARREN_DELAY_LEVELS - 1);
        st = warren__conn_publish_confirmed(c, entry, key, &p, d->message.body.bytes,
                                            d->message.body.len, WARREN_HANDOFF_TIMEOUT_MS,
                                            err);
    }
    hdrs_free(&h);
    return st;
}
