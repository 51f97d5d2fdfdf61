/* Internal: the copies the host makes of a job and confirms before it acks
 * the original: the retry copy and the dead letter.
 *
 * DESIGN: a copy is the original's body and properties, made persistent,
 * without `expiration` and without RabbitMQ's x-death / x-first-death-* /
 * x-last-death-* headers (RabbitMQ drops a message that dead-letters
 * through a queue already in its x-death), with warren's headers set on
 * top. Both are published mandatory with confirms: a copy no queue takes
 * is not a hand-off. */
#ifndef WARREN_HANDOFF_H
#define WARREN_HANDOFF_H

#include "conn.h"
#include "job.h"

/* Timeout for one hand-off confirm. */
#define WARREN_HANDOFF_TIMEOUT_MS 30000

struct warren_dead_info {
    enum warren_dead_reason reason;
    const char *error;       /* human-readable; cut to 1 KiB */
    int attempts;
    const char *queue;       /* short name, e.g. "default" */
    const char *host;
    const char *assigned_id; /* the id the host gave a job that had none, or NULL */
};

/* Publishes the dead letter of `d` to "<ns>.<queue>.dead" and waits for the
 * confirm. When the broker refuses it (nack, or no such queue) and the
 * reason was not rejected_by_broker already, nothing else is tried here:
 * the caller decides (see the worker). */
warren_status warren__send_dead(struct warren_conn *c, const char *ns,
                                const struct warren_conn_delivery *d,
                                const struct warren_dead_info *info, warren_error *err);

struct warren_retry_info {
    const char *worker;
    int next_attempt;
    long long delay_s;       /* whole seconds to wait in the delay levels */
    int snoozes;             /* > 0: sets x-warren-snoozes */
    long long lock_since_ms; /* >= 0: sets x-warren-lock-since (0: not waiting) */
    const char *error;
    const char *assigned_id;
};

/* Publishes the retry copy of `d` (x-warren-attempt = next_attempt, last
 * error) into the delay levels, addressed to its worker, and waits for the
 * confirm. A snooze is the same with the attempt unchanged. */
warren_status warren__send_retry(struct warren_conn *c, const char *ns,
                                 const struct warren_conn_delivery *d,
                                 const struct warren_retry_info *info, warren_error *err);

/* "2026-05-01T02:00:00.123Z" for now. */
const char *warren__now_rfc3339(char *buf, size_t size);

#endif
