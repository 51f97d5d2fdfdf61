/* Internal: one broker connection with one channel in confirm mode.
 *
 * DESIGN: conn.c (connecting, declaring) and conn_io.c (publishing,
 * consuming) are the only files that talk rabbitmq-c's frame protocol.
 * It folds every amqp_rpc_reply_t and library status into a warren_error
 * ("404 NOT_FOUND - no queue 'x'"), so callers never decode replies.
 * Publishing and consuming share channel 1: while a publisher waits for
 * its confirm, deliveries that arrive are read whole and queued, and the
 * next call to warren__conn_next_delivery() returns them first. The queue
 * is bounded by the prefetch count. One thread at a time uses a conn. */
#ifndef WARREN_CONN_H
#define WARREN_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <amqp.h>
#include <warren/error.h>

struct warren_tls_conf;

struct warren_conn_opts {
    int heartbeat;                    /* seconds; 0 = none */
    const char *password_file;        /* replaces the URL's password; may be NULL */
    const struct warren_tls_conf *tls; /* for amqps://; NULL = verify with system CAs */
    const char *client_name;          /* connection_name client property */
};

struct warren_conn;

/* One delivery, owned by the caller until warren__conn_delivery_free().
 * consumer_tag, exchange and routing_key share one allocation. */
struct warren_conn_delivery {
    uint64_t delivery_tag;
    int redelivered;
    char *consumer_tag;
    char *exchange;
    char *routing_key;
    amqp_message_t message; /* properties and body */
};

/* The password in a broker.password_file: its bytes (at most 1,023) less
 * one trailing "\n" and a "\r" before that; read(2), not stdio, and the
 * stack copy wiped, so no copy lingers. A new string, or NULL with err. */
char *warren__password_file_read(const char *path, warren_error *err);

/* Parses one URL per the spec's rules (a path of "/" or none is vhost "/",
 * "%2f" is "/", a query string is refused). `buf` receives the strings
 * `info` points into. */
warren_status warren__url_parse(const char *url, struct amqp_connection_info *info,
                                char *buf, size_t buf_size, warren_error *err);

/* Splits a comma-separated list into a NULL-terminated array (new; free
 * with warren__strv_free). */
char **warren__url_list(const char *text, size_t *n);
void warren__strv_free(char **v);

/* Writes the URL with its password replaced by "***" (for logs). */
const char *warren__url_redact(const char *url, char *buf, size_t size);

/* Connects to the first URL that answers, logs in (announcing
 * consumer_cancel_notify and publisher confirms), opens channel 1 and puts
 * it in confirm mode. WARREN_ECONNECT when none answered (err names the
 * last failure), WARREN_EINVAL for a bad URL. */
warren_status warren__conn_open(struct warren_conn **out, char *const *urls, size_t n_urls,
                                const struct warren_conn_opts *opts, warren_error *err);

/* Closes cleanly when possible and frees. NULL does nothing. */
void warren__conn_close(struct warren_conn *c);

/* The raw state, for amqp_* calls not wrapped here. */
amqp_connection_state_t warren__conn_state(struct warren_conn *c);

/* Whether the connection has failed (any later call fails fast). */
int warren__conn_broken(const struct warren_conn *c);

/* The URL in use, redacted. */
const char *warren__conn_url(const struct warren_conn *c);

/* Folds the last RPC reply into err. Returns WARREN_OK when it was normal;
 * a channel or connection exception marks the connection broken. */
warren_status warren__conn_check_reply(struct warren_conn *c, const char *what,
                                       warren_error *err);

/* Declares. `args` may be amqp_empty_table. */
warren_status warren__conn_exchange_declare(struct warren_conn *c, const char *name,
                                            const char *type, amqp_table_t args,
                                            warren_error *err);
warren_status warren__conn_queue_declare(struct warren_conn *c, const char *name,
                                         amqp_table_t args, warren_error *err);
/* Passive declare: counts of an existing queue. WARREN_ENOTFOUND when it
 * does not exist (the channel is reopened). */
warren_status warren__conn_queue_inspect(struct warren_conn *c, const char *name,
                                         uint32_t *messages, uint32_t *consumers,
                                         warren_error *err);
warren_status warren__conn_exchange_exists(struct warren_conn *c, const char *name,
                                           warren_error *err);
warren_status warren__conn_queue_bind(struct warren_conn *c, const char *queue,
                                      const char *exchange, const char *key,
                                      warren_error *err);
warren_status warren__conn_queue_purge(struct warren_conn *c, const char *queue,
                                       uint32_t *purged, warren_error *err);

/* Binds exchange `dest` to `source` with `key`. */
warren_status warren__conn_exchange_bind(struct warren_conn *c, const char *dest,
                                         const char *source, const char *key,
                                         warren_error *err);

/* Check mode (`warren topology --check`): declarations create nothing.
 * Each exchange or queue is looked up passively; a missing one, or one the
 * broker refuses as inequivalent (a declaration of an existing object with
 * the same arguments changes nothing), is recorded as a problem and the
 * declaration reports success so the walk goes on. Bindings are skipped:
 * AMQP cannot list them. */
void warren__conn_set_check_mode(struct warren_conn *c, int on);
/* The problems recorded in check mode (borrowed; NULL-terminated). */
char *const *warren__conn_check_problems(const struct warren_conn *c, size_t *n);

/* basic.qos + basic.consume with consumer_tag = tag. */
warren_status warren__conn_qos(struct warren_conn *c, uint16_t prefetch, warren_error *err);
warren_status warren__conn_consume(struct warren_conn *c, const char *queue, const char *tag,
                                   warren_error *err);
warren_status warren__conn_cancel(struct warren_conn *c, const char *tag, warren_error *err);

/* Publishes one message and returns its confirm sequence number in *seq.
 * With `mandatory`, a message no queue takes counts as refused. */
warren_status warren__conn_publish(struct warren_conn *c, const char *exchange,
                                   const char *routing_key, int mandatory,
                                   const amqp_basic_properties_t *props, const void *body,
                                   size_t body_len, uint64_t *seq, warren_error *err);

/* Publishes one message whose confirm nobody waits for (lifecycle events):
 * not mandatory, and its ack or nack is never reported by
 * warren__conn_wait_confirms, which does not wait for it either. The
 * channel is in confirm mode, so it still takes a sequence number. */
warren_status warren__conn_publish_untracked(struct warren_conn *c, const char *exchange,
                                             const char *routing_key,
                                             const amqp_basic_properties_t *props,
                                             const void *body, size_t body_len,
                                             warren_error *err);

/* Waits until every tracked publish (warren__conn_publish) up to `seq` is
 * confirmed, or timeout_ms passes (-1: forever). WARREN_OK when all were
 * acked; WARREN_ENACK when any was nacked or (mandatory) returned;
 * WARREN_ETIMEDOUT; or a broker error. Untracked publishes in between are
 * neither waited for nor reported, so a nacked event never makes a
 * hand-off look refused. */
warren_status warren__conn_wait_confirms(struct warren_conn *c, uint64_t seq, int timeout_ms,
                                         warren_error *err);

/* Publishes and waits for the confirm (mandatory): the one-message hand-off
 * the host uses for retry copies and dead letters. */
warren_status warren__conn_publish_confirmed(struct warren_conn *c, const char *exchange,
                                             const char *routing_key,
                                             const amqp_basic_properties_t *props,
                                             const void *body, size_t body_len,
                                             int timeout_ms, warren_error *err);

/* Returns the next delivery (queued first), waiting up to timeout_ms.
 * WARREN_ETIMEDOUT when none came; WARREN_ENOTFOUND when the broker
 * cancelled a consumer (its tag is copied to err->text). */
warren_status warren__conn_next_delivery(struct warren_conn *c, int timeout_ms,
                                         struct warren_conn_delivery *out, warren_error *err);
void warren__conn_delivery_free(struct warren_conn_delivery *d);

/* basic.get one message (no ack). WARREN_ENOTFOUND when the queue is empty. */
warren_status warren__conn_get(struct warren_conn *c, const char *queue,
                               struct warren_conn_delivery *out, warren_error *err);

warren_status warren__conn_ack(struct warren_conn *c, uint64_t tag, warren_error *err);
warren_status warren__conn_reject(struct warren_conn *c, uint64_t tag, int requeue,
                                  warren_error *err);

/* Lets rabbitmq-c service heartbeats while idle: reads and queues frames
 * for up to timeout_ms. */
warren_status warren__conn_pump(struct warren_conn *c, int timeout_ms, warren_error *err);

/* Declares `name` as a non-durable queue exclusive to this connection: the
 * broker deletes it when the connection closes or dies, so it serves as a
 * lock between hosts. WARREN_OK when this connection holds it (declaring
 * it again while holding it is fine, and recreates it if it was deleted);
 * WARREN_EEXIST when another connection holds it (405 RESOURCE_LOCKED; the
 * channel is reopened and the connection stays usable); else a broker
 * error. */
warren_status warren__conn_queue_declare_exclusive(struct warren_conn *c, const char *name,
                                                   warren_error *err);

/* Locks as broker objects: an exclusive queue `name` on this connection,
 * gone when the connection dies. Declared on a second channel, because the
 * broker answers "held by another connection" (405) by closing the
 * channel, and channel 1's unacked deliveries must survive that.
 * expires_ms > 0 also ends the lock after that long (x-expires).
 * WARREN_OK: taken; WARREN_EEXIST: another connection holds it. */
warren_status warren__conn_lock(struct warren_conn *c, const char *name, long long expires_ms,
                                warren_error *err);
/* Releases a lock taken with warren__conn_lock (deletes the queue). */
warren_status warren__conn_unlock(struct warren_conn *c, const char *name, warren_error *err);

#endif
