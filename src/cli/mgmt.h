/* The RabbitMQ management API, for what AMQP cannot tell: unacked counts
 * and message rates. Optional: every caller copes with its absence. */
#ifndef WARREN_CLI_MGMT_H
#define WARREN_CLI_MGMT_H

#include <stddef.h>
#include <warren/error.h>

struct mgmt_queue {
    long long ready, unacked, consumers;
    double publish_rate, deliver_rate, ack_rate; /* messages per second */
};

/* Reads one queue's figures from `base_url` (e.g. http://127.0.0.1:15672/)
 * with the credentials and vhost of the AMQP URL `amqp_url`. */
warren_status mgmt_queue_get(const char *base_url, const char *amqp_url, const char *queue,
                             struct mgmt_queue *out, warren_error *err);

/* A response body collected by libcurl: CURLOPT_WRITEFUNCTION
 * mgmt_body_write with CURLOPT_WRITEDATA a struct mgmt_body (start it
 * zeroed, set max; free data). Longer bodies end the transfer. */
struct mgmt_body {
    char *data; /* NUL-terminated */
    size_t len, max;
};
size_t mgmt_body_write(char *ptr, size_t size, size_t n, void *body);

#endif
