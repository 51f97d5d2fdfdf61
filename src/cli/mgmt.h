/* The RabbitMQ management API, for what AMQP cannot tell: bindings,
 * unacked counts and message rates. Optional: every caller copes with its
 * absence. Used by `warren stats` and `warren doctor`. */
#ifndef WARREN_CLI_MGMT_H
#define WARREN_CLI_MGMT_H

#include <stddef.h>
#include <jansson.h>
#include <warren/error.h>

/* One client of the API: a libcurl handle kept open between requests,
 * with the credentials and vhost resolved as the AMQP connection resolves
 * them. Used by one thread at a time. */
struct mgmt;

struct mgmt_limits {
    long timeout_ms; /* per request */
    size_t max_body; /* longer answers end the transfer */
};

/* Opens a client of `base_url` (e.g. http://127.0.0.1:15672/; borrowed,
 * must outlive the client) with the user and vhost of the AMQP URL
 * `amqp_url` and its password, or the content of `password_file` when
 * that is not NULL (as broker.password_file replaces the URL's password
 * for AMQP). *out is new (mgmt_close). WARREN_EINVAL for a bad URL,
 * WARREN_EIO when the password file cannot be read, WARREN_ENOMEM; the
 * error text never holds the password. */
warren_status mgmt_open(struct mgmt **out, const char *base_url, const char *amqp_url,
                        const char *password_file, const struct mgmt_limits *limits,
                        warren_error *err);

/* Wipes the password and frees. NULL does nothing. */
void mgmt_close(struct mgmt *m);

/* GET api/<kind>/<vhost>/<name><suffix> (name URL-escaped here), e.g.
 * ("queues", "warren.default", "") or ("exchanges", "warren",
 * "/bindings/source"). WARREN_OK with *out the parsed answer (new);
 * otherwise *out is NULL and: WARREN_ECONNECT when the API did not answer,
 * WARREN_ENOTFOUND for HTTP 404, WARREN_EBROKER for another status or an
 * answer that is not JSON. mgmt_http_status() then tells the status. */
warren_status mgmt_get_json(struct mgmt *m, const char *kind, const char *name,
                            const char *suffix, json_t **out, warren_error *err);

/* The HTTP status of the last request (0 when none answered). */
long mgmt_http_status(const struct mgmt *m);

struct mgmt_queue {
    long long ready, unacked, consumers;
    double publish_rate, deliver_rate, ack_rate; /* messages per second */
};

/* Reads one queue's figures (api/queues/VHOST/NAME). Statuses as
 * mgmt_get_json; an answer that is not an object is WARREN_EBROKER. */
warren_status mgmt_queue_get(struct mgmt *m, const char *queue, struct mgmt_queue *out,
                             warren_error *err);

#endif
