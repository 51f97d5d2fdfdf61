/* Internal to the connection: what conn.c (connecting, declaring) and
 * conn_io.c (publishing, consuming) share. */
#ifndef WARREN_CONN_INTERNAL_H
#define WARREN_CONN_INTERNAL_H

#include <amqp.h>
#include "conn.h"

#define CHANNEL 1

/* Confirm state of publishes not yet collected, indexed by seq - base.
 * PUB_UNTRACKED marks a fire-and-forget publish (an event): nobody waits
 * for it, so its outcome is never reported and it may be dropped from the
 * window before it is settled. */
enum { PUB_PENDING = 0, PUB_ACKED = 1, PUB_FAILED = 2, PUB_STATE = 3, PUB_UNTRACKED = 4 };

struct warren_conn {
    amqp_connection_state_t state;
    int broken;
    char url[512]; /* redacted */
    uint64_t next_seq;   /* sequence number of the next publish (first is 1) */
    uint64_t base;       /* seq of slot 0 in `pubs` */
    unsigned char *pubs; /* PUB_* per outstanding publish */
    size_t pubs_cap;
    size_t pubs_len;
    int returned;        /* a mandatory publish came back since the last wait */
    int tls;             /* amqps: OpenSSL may hold input the socket no longer shows */
    /* Deliveries read while waiting: a ring of cap_queued slots, the
     * oldest at q_head, so taking one is O(1) however many are queued. */
    struct warren_conn_delivery *queued;
    size_t q_head, n_queued, cap_queued;
    char cancelled_tag[128];
    int lock_channel_open; /* channel 2, for warren__conn_lock */
    int check_mode;
    char **problems; /* NULL-terminated, check mode only */
    size_t n_problems;
};

static inline amqp_bytes_t bytes_of(const char *s)
{
    return amqp_cstring_bytes(s ? s : "");
}

/* Marks the connection broken (every later call fails at once) and sets
 * err to "WHAT: DETAIL" with WARREN_EBROKER. */
warren_status warren__conn_fail_broken(struct warren_conn *c, warren_error *err, const char *what,
                                       const char *detail);

/* A channel.close or connection.close from the broker as an error with
 * its code (404: WARREN_ENOTFOUND; 406 on a declare: WARREN_EDRIFT). A
 * channel close is answered and the channel reopened; a connection close
 * (or any other method) leaves the connection broken. */
warren_status warren__conn_fold_exception(struct warren_conn *c, const amqp_method_t *m,
                                          const char *what, warren_error *err);

/* Frees every delivery read ahead and queued. */
void warren__conn_drop_queued(struct warren_conn *c);

#endif
