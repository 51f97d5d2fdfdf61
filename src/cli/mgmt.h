/* The RabbitMQ management API, for what AMQP cannot tell: unacked counts
 * and message rates. Optional: every caller copes with its absence. */
#ifndef WARREN_CLI_MGMT_H
#define WARREN_CLI_MGMT_H

#include <warren/error.h>

struct mgmt_queue {
    long long ready, unacked, consumers;
    double publish_rate, deliver_rate, ack_rate; /* messages per second */
};

/* Reads one queue's figures from `base_url` (e.g. http://127.0.0.1:15672/)
 * with the credentials and vhost of the AMQP URL `amqp_url`. */
warren_status mgmt_queue_get(const char *base_url, const char *amqp_url, const char *queue,
                             struct mgmt_queue *out, warren_error *err);

#endif
