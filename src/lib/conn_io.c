/* One broker connection, its traffic: publishing with confirms,
 * consuming, exclusive queues and the lock channel (see conn.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <amqp.h>
#include <sys/socket.h>
#include <warren/log.h>
#include "conn_internal.h"

/* The i-th queued delivery, oldest first. */
static struct warren_conn_delivery *queued_at(struct warren_conn *c, size_t i)
{
    return &c->queued[(c->q_head + i) % c->cap_queued];
}

void warren__conn_drop_queued(struct warren_conn *c)
{
    for (size_t i = 0; i < c->n_queued; i++)
        warren__conn_delivery_free(queued_at(c, i));
    c->n_queued = 0;
    c->q_head = 0;
}

/* ---- publishing ------------------------------------------------------- */

static int pubs_push(struct warren_conn *c, int untracked)
{
    if (c->pubs_len == c->pubs_cap) {
        size_t cap = c->pubs_cap ? c->pubs_cap * 2 : 64;
        unsigned char *p = realloc(c->pubs, cap);
        if (!p)
            return -1;
        c->pubs = p;
        c->pubs_cap = cap;
    }
    c->pubs[c->pubs_len++] = untracked ? PUB_PENDING | PUB_UNTRACKED : PUB_PENDING;
    return 0;
}

static void pubs_settle(struct warren_conn *c, uint64_t tag, int multiple, int state)
{
    if (tag < c->base)
        return;
    uint64_t first = multiple ? c->base : tag;
    for (uint64_t s = first; s <= tag && s - c->base < c->pubs_len; s++) {
        unsigned char *p = &c->pubs[s - c->base];
        if ((*p & PUB_STATE) == PUB_PENDING || state == PUB_FAILED)
            *p = (unsigned char)((*p & PUB_UNTRACKED) | state);
    }
}

/* Drops untracked publishes from the front of the window, settled or not
 * (a late confirm for a seq below `base` is ignored), so a connection that
 * publishes only events keeps no record of them. */
static void pubs_trim_untracked(struct warren_conn *c)
{
    size_t k = 0;
    while (k < c->pubs_len && (c->pubs[k] & PUB_UNTRACKED))
        k++;
    if (k == 0)
        return;
    memmove(c->pubs, c->pubs + k, c->pubs_len - k);
    c->pubs_len -= k;
    c->base += k;
}

static warren_status publish_one(struct warren_conn *c, const char *exchange,
                                 const char *routing_key, int mandatory, int untracked,
                                 const amqp_basic_properties_t *props, const void *body,
                                 size_t body_len, uint64_t *seq, warren_error *err)
{
    if (c->broken)
        return warren_error_set(err, WARREN_EBROKER, "connection is broken");
    if (untracked)
        pubs_trim_untracked(c);
    if (pubs_push(c, untracked) != 0)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    amqp_bytes_t b = {body_len, (void *)body};
    int rc = amqp_basic_publish(c->state, CHANNEL, bytes_of(exchange), bytes_of(routing_key),
                                mandatory, 0, props, b);
    if (rc != AMQP_STATUS_OK) {
        c->pubs_len--;
        return warren__conn_fail_broken(c, err, "publish", amqp_error_string2(rc));
    }
    if (seq)
        *seq = c->next_seq;
    c->next_seq++;
    return WARREN_OK;
}

warren_status warren__conn_publish(struct warren_conn *c, const char *exchange,
                                   const char *routing_key, int mandatory,
                                   const amqp_basic_properties_t *props, const void *body,
                                   size_t body_len, uint64_t *seq, warren_error *err)
{
    return publish_one(c, exchange, routing_key, mandatory, 0, props, body, body_len, seq, err);
}

warren_status warren__conn_publish_untracked(struct warren_conn *c, const char *exchange,
                                             const char *routing_key,
                                             const amqp_basic_properties_t *props,
                                             const void *body, size_t body_len,
                                             warren_error *err)
{
    return publish_one(c, exchange, routing_key, 0, 1, props, body, body_len, NULL, err);
}

/* Room for one more queued delivery. Growing unwraps the ring into the
 * new array, oldest first. */
static int grow_queue(struct warren_conn *c)
{
    if (c->n_queued < c->cap_queued)
        return 0;
    size_t cap = c->cap_queued ? c->cap_queued * 2 : 16;
    struct warren_conn_delivery *q = malloc(cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < c->n_queued; i++)
        q[i] = *queued_at(c, i);
    free(c->queued);
    c->queued = q;
    c->cap_queued = cap;
    c->q_head = 0;
    return 0;
}

/* consumer_tag, exchange and routing key as one allocation (owned by
 * consumer_tag; warren__conn_delivery_free frees that block). */
static int set_names(struct warren_conn_delivery *d, amqp_bytes_t tag, amqp_bytes_t exchange,
                     amqp_bytes_t key)
{
    char *block = malloc(tag.len + exchange.len + key.len + 3);
    if (!block)
        return -1;
    char *p = block;
    const amqp_bytes_t parts[3] = {tag, exchange, key};
    char **dst[3] = {&d->consumer_tag, &d->exchange, &d->routing_key};
    for (int i = 0; i < 3; i++) {
        *dst[i] = p;
        if (parts[i].len)
            memcpy(p, parts[i].bytes, parts[i].len);
        p += parts[i].len;
        *p++ = '\0';
    }
    return 0;
}

/* Reads the header and body frames that follow a basic.deliver, get-ok or
 * return into `d`. */
static warren_status read_content(struct warren_conn *c, struct warren_conn_delivery *d,
                                  warren_error *err)
{
    amqp_rpc_reply_t r = amqp_read_message(c->state, CHANNEL, &d->message, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        warren__conn_delivery_free(d);
        return warren__conn_fail_broken(c, err, "read message",
                           r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                               ? amqp_error_string2(r.library_error)
                               : "unexpected frame");
    }
    return WARREN_OK;
}

static warren_status on_deliver(struct warren_conn *c, const amqp_basic_deliver_t *m,
                                warren_error *err)
{
    if (grow_queue(c) != 0)
        return warren__conn_fail_broken(c, err, "deliver", "out of memory");
    struct warren_conn_delivery *d = queued_at(c, c->n_queued);
    memset(d, 0, sizeof *d);
    d->delivery_tag = m->delivery_tag;
    d->redelivered = m->redelivered;
    if (set_names(d, m->consumer_tag, m->exchange, m->routing_key) != 0)
        return warren__conn_fail_broken(c, err, "deliver", "out of memory");
    warren_status st = read_content(c, d, err);
    if (st == WARREN_OK)
        c->n_queued++;
    return st;
}

/* Reads one frame (waiting up to timeout_ms, -1 forever) and acts on it:
 * deliveries are queued, confirms settle publishes, returns are noted.
 * WARREN_ETIMEDOUT when nothing came. */
static warren_status pump_one(struct warren_conn *c, int timeout_ms, warren_error *err)
{
    if (c->broken)
        return warren_error_set(err, WARREN_EBROKER, "connection is broken");
    amqp_maybe_release_buffers(c->state);
    amqp_frame_t f;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int rc = amqp_simple_wait_frame_noblock(c->state, &f, timeout_ms < 0 ? NULL : &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return WARREN_ETIMEDOUT;
    if (rc != AMQP_STATUS_OK)
        return warren__conn_fail_broken(c, err, "connection lost", amqp_error_string2(rc));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return WARREN_OK; /* stray content of nothing we asked for */
    amqp_method_t *m = &f.payload.method;
    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return on_deliver(c, m->decoded, err);
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = m->decoded;
        pubs_settle(c, a->delivery_tag, a->multiple, PUB_ACKED);
        return WARREN_OK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = m->decoded;
        pubs_settle(c, n->delivery_tag, n->multiple, PUB_FAILED);
        return WARREN_OK;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        struct warren_conn_delivery d;
        memset(&d, 0, sizeof d);
        warren_status st = read_content(c, &d, err);
        if (st == WARREN_OK) {
            c->returned = 1;
            warren__conn_delivery_free(&d);
        }
        return st;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        const amqp_basic_cancel_t *cn = m->decoded;
        snprintf(c->cancelled_tag, sizeof c->cancelled_tag, "%.*s",
                 (int)cn->consumer_tag.len, (const char *)cn->consumer_tag.bytes);
        return WARREN_OK;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        return warren__conn_fold_exception(c, m, "broker closed", err);
    default:
        return WARREN_OK;
    }
}

warren_status warren__conn_pump(struct warren_conn *c, int timeout_ms, warren_error *err)
{
    warren_status st = pump_one(c, timeout_ms, err);
    return st == WARREN_ETIMEDOUT ? WARREN_OK : st;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drops settled publishes, and untracked ones whatever their state, from
 * the front of the window up to `seq`. Returns nonzero if a tracked one
 * among them was nacked: an event's nack must not make the hand-off that
 * follows it look refused. */
static int pubs_collect(struct warren_conn *c, uint64_t seq, int *all_settled)
{
    int failed = 0;
    size_t k = 0;
    while (k < c->pubs_len && c->base + k <= seq &&
           ((c->pubs[k] & PUB_UNTRACKED) || (c->pubs[k] & PUB_STATE) != PUB_PENDING)) {
        failed |= c->pubs[k] == PUB_FAILED; /* tracked and nacked */
        k++;
    }
    memmove(c->pubs, c->pubs + k, c->pubs_len - k);
    c->pubs_len -= k;
    c->base += k;
    *all_settled = c->base > seq;
    return failed;
}

warren_status warren__conn_wait_confirms(struct warren_conn *c, uint64_t seq, int timeout_ms,
                                         warren_error *err)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int failed = 0, done = 0;
    for (;;) {
        failed |= pubs_collect(c, seq, &done);
        if (done)
            break;
        int wait = 1000;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                return warren_error_set(err, WARREN_ETIMEDOUT, "no publisher confirm in %d ms",
                                        timeout_ms);
            wait = left < wait ? (int)left : wait;
        }
        warren_status st = pump_one(c, wait, err);
        if (st != WARREN_OK && st != WARREN_ETIMEDOUT)
            return st;
    }
    if (c->returned) {
        c->returned = 0;
        return warren_error_set(err, WARREN_ENACK, "no queue took the message (returned)");
    }
    if (failed)
        return warren_error_set(err, WARREN_ENACK, "the broker nacked the message");
    return WARREN_OK;
}

warren_status warren__conn_publish_confirmed(struct warren_conn *c, const char *exchange,
                                             const char *routing_key,
                                             const amqp_basic_properties_t *props,
                                             const void *body, size_t body_len,
                                             int timeout_ms, warren_error *err)
{
    uint64_t seq = 0;
    c->returned = 0;
    warren_status st =
        warren__conn_publish(c, exchange, routing_key, 1, props, body, body_len, &seq, err);
    if (st != WARREN_OK)
        return st;
    return warren__conn_wait_confirms(c, seq, timeout_ms, err);
}

/* ---- consuming -------------------------------------------------------- */

/* Whether input may be waiting: in rabbitmq-c's buffer or frame queue,
 * else (plain TCP) per a non-blocking peek at the socket. One syscall that
 * usually says "nothing", where letting rabbitmq-c look costs a recv that
 * fails and a poll. Under TLS, OpenSSL may hold decrypted input the socket
 * no longer shows: always 1 there. */
static int may_have_input(struct warren_conn *c)
{
    if (c->tls || amqp_data_in_buffer(c->state) || amqp_frames_enqueued(c->state))
        return 1;
    int fd = amqp_get_sockfd(c->state);
    char byte;
    if (fd < 0 || recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
        return 1; /* data or end of stream: rabbitmq-c reads it */
    return errno != EAGAIN && errno != EWOULDBLOCK; /* an error: let it report */
}

static void take_queued(struct warren_conn *c, struct warren_conn_delivery *out)
{
    *out = c->queued[c->q_head];
    c->q_head = (c->q_head + 1) % c->cap_queued;
    if (--c->n_queued == 0)
        c->q_head = 0;
}

warren_status warren__conn_next_delivery(struct warren_conn *c, int timeout_ms,
                                         struct warren_conn_delivery *out, warren_error *err)
{
    memset(out, 0, sizeof *out);
    long long deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        if (c->cancelled_tag[0]) {
            warren_error_set(err, WARREN_ENOTFOUND, "%s", c->cancelled_tag);
            c->cancelled_tag[0] = '\0';
            return WARREN_ENOTFOUND;
        }
        if (c->n_queued) {
            /* Read what the broker sent meanwhile before starting another
             * job: after a connection.close (or a lost socket) the queued
             * deliveries are void, the broker has requeued them and may
             * give them to another consumer, so running them would only
             * make duplicates. */
            warren_status st = WARREN_ETIMEDOUT;
            while (may_have_input(c) && (st = pump_one(c, 0, err)) == WARREN_OK)
                st = WARREN_ETIMEDOUT;
            if (st != WARREN_ETIMEDOUT) {
                warren__conn_drop_queued(c);
                return st;
            }
            if (c->cancelled_tag[0] || !c->n_queued)
                continue;
            take_queued(c, out);
            return WARREN_OK;
        }
        long long left = deadline - now_ms();
        if (left <= 0 && timeout_ms >= 0)
            return WARREN_ETIMEDOUT;
        warren_status st = pump_one(c, timeout_ms < 0 ? -1 : (int)left, err);
        if (st != WARREN_OK && st != WARREN_ETIMEDOUT)
            return st;
        if (st == WARREN_ETIMEDOUT && !c->n_queued && !c->cancelled_tag[0])
            return WARREN_ETIMEDOUT;
    }
}

void warren__conn_delivery_free(struct warren_conn_delivery *d)
{
    if (!d)
        return;
    free(d->consumer_tag); /* also holds exchange and routing_key */
    if (d->message.pool.pagesize)
        amqp_destroy_message(&d->message);
    memset(d, 0, sizeof *d);
}

warren_status warren__conn_get(struct warren_conn *c, const char *queue,
                               struct warren_conn_delivery *out, warren_error *err)
{
    memset(out, 0, sizeof *out);
    char what[300];
    snprintf(what, sizeof what, "get from '%s'", queue);
    amqp_rpc_reply_t r = amqp_basic_get(c->state, CHANNEL, bytes_of(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return warren__conn_check_reply(c, what, err);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return WARREN_ENOTFOUND;
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    out->delivery_tag = ok->delivery_tag;
    out->redelivered = ok->redelivered;
    if (set_names(out, amqp_empty_bytes, ok->exchange, ok->routing_key) != 0)
        return warren__conn_fail_broken(c, err, what, "out of memory");
    return read_content(c, out, err);
}

warren_status warren__conn_ack(struct warren_conn *c, uint64_t tag, warren_error *err)
{
    if (c->broken)
        return warren_error_set(err, WARREN_EBROKER, "basic.ack: connection is broken");
    int rc = amqp_basic_ack(c->state, CHANNEL, tag, 0);
    if (rc != AMQP_STATUS_OK)
        return warren__conn_fail_broken(c, err, "basic.ack", amqp_error_string2(rc));
    return WARREN_OK;
}

warren_status warren__conn_reject(struct warren_conn *c, uint64_t tag, int requeue,
                                  warren_error *err)
{
    int rc = amqp_basic_reject(c->state, CHANNEL, tag, requeue);
    if (rc != AMQP_STATUS_OK)
        return warren__conn_fail_broken(c, err, "basic.reject", amqp_error_string2(rc));
    return WARREN_OK;
}

/* ---- exclusive queues ---------------------------------------------------- */

warren_status warren__conn_queue_declare_exclusive(struct warren_conn *c, const char *name,
                                                   warren_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "declare exclusive queue '%s'", name);
    if (c->broken)
        return warren_error_set(err, WARREN_EBROKER, "%s: connection is broken", what);
    amqp_queue_declare(c->state, CHANNEL, bytes_of(name), 0, 0, 1, 0, amqp_empty_table);
    /* The reply code is read before check_reply answers the close: 405
     * means another connection owns the queue, which is an answer, not a
     * failure. */
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    int locked = r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
                 r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
                 ((const amqp_channel_close_t *)r.reply.decoded)->reply_code ==
                     AMQP_RESOURCE_LOCKED;
    warren_error local;
    warren_error_clear(&local);
    warren_status st = warren__conn_check_reply(c, what, &local);
    if (st == WARREN_OK)
        return WARREN_OK;
    if (locked && !c->broken)
        st = WARREN_EEXIST;
    return warren_error_set(err, st, "%s", local.text);
}

/* ---- locks on channel 2 ---------------------------------------------- */

#define LOCK_CHANNEL 2

static warren_status open_lock_channel(struct warren_conn *c, warren_error *err)
{
    if (c->lock_channel_open)
        return WARREN_OK;
    amqp_channel_open(c->state, LOCK_CHANNEL);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return warren__conn_fail_broken(c, err, "open lock channel", "refused");
    c->lock_channel_open = 1;
    return WARREN_OK;
}

warren_status warren__conn_lock(struct warren_conn *c, const char *name, long long expires_ms,
                                warren_error *err)
{
    if (c->broken)
        return warren_error_set(err, WARREN_EBROKER, "connection is broken");
    warren_status st = open_lock_channel(c, err);
    if (st != WARREN_OK)
        return st;
    amqp_table_entry_t arg;
    amqp_table_t args = amqp_empty_table;
    if (expires_ms > 0) {
        arg.key = amqp_cstring_bytes("x-expires");
        arg.value.kind = AMQP_FIELD_KIND_I64;
        arg.value.value.i64 = expires_ms;
        args.num_entries = 1;
        args.entries = &arg;
    }
    amqp_queue_declare(c->state, LOCK_CHANNEL, bytes_of(name), 0, 0, 1, 0, args);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return WARREN_OK;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *cl = r.reply.decoded;
        amqp_channel_close_ok_t ok;
        amqp_send_method(c->state, LOCK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        c->lock_channel_open = 0;
        if (cl->reply_code == AMQP_RESOURCE_LOCKED)
            return WARREN_EEXIST;
        return warren_error_set(err, WARREN_EBROKER, "lock '%s': %u %.*s", name, cl->reply_code,
                                (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
    }
    return warren__conn_check_reply(c, "lock", err);
}

warren_status warren__conn_unlock(struct warren_conn *c, const char *name, warren_error *err)
{
    if (c->broken || !c->lock_channel_open)
        return warren_error_set(err, WARREN_EBROKER, "no lock channel");
    amqp_queue_delete(c->state, LOCK_CHANNEL, bytes_of(name), 0, 0);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return WARREN_OK;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok;
        amqp_send_method(c->state, LOCK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        c->lock_channel_open = 0;
        return warren_error_set(err, WARREN_EBROKER, "unlock '%s' refused", name);
    }
    return warren__conn_check_reply(c, "unlock", err);
}
