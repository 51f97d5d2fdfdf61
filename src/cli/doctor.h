/* Private to `warren doctor`: what its parts share. cmd_doctor.c runs the
 * command and prints the findings; doctor_broker.c checks the topology,
 * the capabilities and the consumer timeout; doctor_bindings.c the
 * bindings and the delay levels' dead-lettering; doctor_balance.c each
 * worker's jobs against what the broker holds. docs/doctor.md gives every
 * rule. */
#ifndef WARREN_CLI_DOCTOR_H
#define WARREN_CLI_DOCTOR_H

#include <stddef.h>
#include <jansson.h>
#include <warren/warren.h>
#include "common.h"

enum doctor_level { LV_OK, LV_SKIP, LV_WARN, LV_FAIL };

struct doctor_finding {
    enum doctor_level level;
    const char *check; /* static */
    char *text;
    json_t *detail;    /* NULL or an object merged into the JSON finding */
};

struct mgmt;

struct doctor {
    struct cli_ctx ctx;
    int json;
    long long grace_ms;
    struct doctor_finding *v;
    size_t n, cap;
    warren_registry *reg;
    struct warren_modules *mods;
    struct warren_conn *conn; /* NULL when no broker answered */
    char *amqp_url;           /* the first URL: management user and vhost */
    struct mgmt *mgmt;        /* NULL when mgmt_why says why */
    char mgmt_why[600];       /* why the management API cannot be used; "" while it can */
    int version;              /* the broker's, as 31015 for 3.10.15; 0 unknown */
};

/* Adds a finding; `detail` (may be NULL) is stolen. Out of memory drops
 * the finding. */
void doctor_note(struct doctor *d, enum doctor_level lv, const char *check, json_t *detail,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* GET api/<kind>/<vhost>/<name><suffix> from the management API: the
 * parsed answer (new), or NULL. *found is 0 for a 404. When the API cannot
 * be used at all, d->mgmt_why says why and every later call returns NULL
 * at once. */
json_t *doctor_mgmt_get(struct doctor *d, const char *kind, const char *name,
                        const char *suffix, int *found);

/* A duration for people ("1m", "30s"), written into buf. */
const char *doctor_dur(long long ms, char *buf, size_t size);

/* The checks, in the order they run. Each adds its findings. The broker
 * checks need d->conn; the consumer timeout runs without it. */
void doctor_check_topology(struct doctor *d);
void doctor_check_capabilities(struct doctor *d);
void doctor_check_consumer_timeout(struct doctor *d);
void doctor_check_bindings(struct doctor *d);
void doctor_check_balance(struct doctor *d);

#endif
