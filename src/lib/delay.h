/* Internal: the delay levels, and the retry backoff.
 *
 * DESIGN (after NServiceBus's RabbitMQ transport): 28 levels, L = 27..0.
 * Level L is a topic exchange "<ns>.delay.L" and a queue of the same name
 * whose uniform x-message-ttl is 2^L seconds and whose dead-letter exchange
 * is level L-1 (level 0's is "<ns>.delay.deliver"). A delayed message's
 * routing key is 28 words "0"/"1", bit 27 first, then the worker name. At
 * exchange L a message whose bit L is 1 goes into the level's queue and
 * waits 2^L s; one whose bit is 0 passes straight on to exchange L-1. The
 * delivery exchange routes by worker name to every work queue bound with
 * 28 "*" words and the worker name. One TTL per queue means no message ever
 * waits behind a longer one. docs/delays.md draws it. */
#ifndef WARREN_DELAY_H
#define WARREN_DELAY_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "conn.h"
#include "topology.h"

#define WARREN_DELAY_LEVELS 28
#define WARREN_DELAY_MAX_S ((1LL << WARREN_DELAY_LEVELS) - 1)

/* "<ns>.delay.<level>" and "<ns>.delay.deliver". */
const char *warren__name_delay_level(char *buf, size_t size, const char *ns, int level);
const char *warren__name_delay_deliver(char *buf, size_t size, const char *ns);

/* Whole seconds a delay of ms waits: 0 below one second, else rounded
 * up (never early), capped at the maximum. */
long long warren__delay_seconds(long long ms);

/* The binding key of delay level `level` for messages whose bit there is
 * `bit` ('0' or '1'): (27 - level) "*" words, then the bit, then "#". */
void warren__delay_level_pattern(char *buf, size_t size, int level, char bit);

/* Writes the routing key for `seconds` (0..WARREN_DELAY_MAX_S) and worker.
 * Returns 0, or -1 when it does not fit in `size`. */
int warren__delay_routing_key(char *buf, size_t size, long long seconds, const char *worker);

/* The worker name a delay routing key carries (after its 28 words), or
 * NULL when `key` is not a delay routing key. Points into key. */
const char *warren__delay_key_worker(const char *key);

/* Binding key of a work queue on the delivery exchange for a worker. */
int warren__delay_binding_key(char *buf, size_t size, const char *worker);

/* Whole seconds a retry backoff of ms waits: rounded to the nearest second
 * (jitter around 1 s stays about 1 s), 0 below half a second. */
long long warren__backoff_seconds(long long ms);

/* Declares the 28 levels and the delivery exchange (idempotently; level
 * queues only when missing, see warren__topology_ensure_queue). `quorum`
 * makes new level queues quorum queues (at-least-once dead-lettering,
 * reject-publish on overflow), for clusters. */
warren_status warren__topology_declare_delay(struct warren_conn *c, const char *ns, int quorum,
                                             warren_topology_report report, void *user,
                                             warren_error *err);

/* Backoff before the retry that follows failed attempt `attempt` (>= 1):
 * min(max_delay, initial * multiplier^(attempt-1)) with +-jitter, where
 * `unit` in [0, 1) picks the point in the jitter range. */
long long warren__backoff_ms(const struct warren_retry_policy *p, int attempt, double unit);

#endif
