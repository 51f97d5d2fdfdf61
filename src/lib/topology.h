/* Internal: the wire contract's names and their declaration.
 *
 * DESIGN: every exchange and queue name is derived here from the namespace,
 * so no other file spells "warren.<queue>.dead". Declarations are
 * idempotent; a declaration the broker refuses as inequivalent (the config
 * drifted from what exists) comes back as WARREN_EDRIFT with the broker's
 * text, which names the argument. */
#ifndef WARREN_TOPOLOGY_H
#define WARREN_TOPOLOGY_H

#include <stddef.h>
#include <warren/registry.h>
#include "config.h"
#include "conn.h"

#define WARREN_AMQP_NAME_MAX 256

const char *warren__name_exchange(char *buf, size_t size, const char *ns);
const char *warren__name_unroutable(char *buf, size_t size, const char *ns);
const char *warren__name_queue(char *buf, size_t size, const char *ns, const char *queue);
const char *warren__name_dead(char *buf, size_t size, const char *ns, const char *queue);

/* Called for each object declared: kind is "exchange", "queue" or
 * "binding"; detail describes its arguments. */
typedef void (*warren_topology_report)(const char *kind, const char *name, const char *detail,
                                       void *user);

/* Declares a queue shared by every host and producer of a namespace
 * (unroutable, delay levels) only when it does not exist yet: whoever comes
 * first picks classic or quorum, and later declarers with another opinion
 * do not fail on it. `quorum` adds x-queue-type = quorum to `args`. */
warren_status warren__topology_ensure_queue(struct warren_conn *c, const char *name,
                                            amqp_table_t args, int quorum, warren_error *err);

/* The jobs exchange, its alternate exchange and the unroutable queue
 * (quorum when `quorum`, if it does not exist yet). */
warren_status warren__topology_declare_base(struct warren_conn *c, const char *ns, int quorum,
                                            warren_topology_report report, void *user,
                                            warren_error *err);

/* A work queue and its dead-letter queue. */
warren_status warren__topology_declare_queue(struct warren_conn *c, const char *ns,
                                             const struct warren_queue_conf *q,
                                             warren_topology_report report, void *user,
                                             warren_error *err);

/* Binds the work queue of `queue` to the jobs exchange for `worker`, and to
 * the delay levels' delivery exchange (which must exist) for the same. */
warren_status warren__topology_bind_worker(struct warren_conn *c, const char *ns,
                                           const char *queue, const char *worker,
                                           warren_topology_report report, void *user,
                                           warren_error *err);

/* The queues this host consumes: host.queues, or else every configured
 * queue that serves at least one registered worker. Returns a
 * NULL-terminated array of borrowed queue configs (free the array). */
const struct warren_queue_conf **warren__host_queues(const struct warren_config *cfg,
                                                     const warren_registry *reg, size_t *n);

/* Declares all a host needs: base, the delay levels (quorum when any
 * configured queue is), its queues, and a binding per
 * registered worker whose queue it consumes. */
warren_status warren__topology_declare_host(struct warren_conn *c,
                                            const struct warren_config *cfg,
                                            const warren_registry *reg,
                                            warren_topology_report report, void *user,
                                            warren_error *err);

#endif
