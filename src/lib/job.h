/* Internal: a decoded job, and decoding a delivery into one.
 *
 * DESIGN: job.c turns what the broker handed over (exchange, routing key,
 * properties, body) into a struct warren_job, or into a rejection with one
 * of the spec's dead-letter reasons and a human-readable error. It does not
 * talk to the broker and does not allocate beyond the job itself, so it is
 * unit-tested and fuzzed on its own. The job borrows the delivery's header
 * table: the delivery must outlive it. */
#ifndef WARREN_JOB_INTERNAL_H
#define WARREN_JOB_INTERNAL_H

#include <stddef.h>
#include <amqp.h>
#include <jansson.h>
#include <warren/job.h>

#define WARREN_ERROR_TEXT_MAX 1024
#define WARREN_MAX_NESTING 64
#define WARREN_MAX_HEADERS 64
#define WARREN_MAX_HEADER_VALUE 4096
#define WARREN_MAX_REPLAY 1000000 /* x-warren-replay above this reads as this */

/* Dead-letter reasons, as written in x-warren-dead-reason. */
enum warren_dead_reason {
    WARREN_DEAD_NONE = 0,
    WARREN_DEAD_MAX_ATTEMPTS,
    WARREN_DEAD_PERMANENT_FAILURE,
    WARREN_DEAD_UNKNOWN_WORKER,
    WARREN_DEAD_MALFORMED,
    WARREN_DEAD_TOO_LARGE,
    WARREN_DEAD_BAD_SIGNATURE,
    WARREN_DEAD_INVALID_ARGS,
    WARREN_DEAD_CRASHED,
    WARREN_DEAD_REJECTED_BY_BROKER,
};

const char *warren__dead_reason_name(enum warren_dead_reason reason);

struct warren_job {
    char worker[129];
    char id[257];           /* message_id, or one the host assigned */
    int id_assigned;        /* 1 when the message came without an id */
    int attempt;            /* x-warren-attempt, default 1 */
    int max_attempts;       /* x-warren-max-attempts, or 0 = worker's */
    int replay;             /* x-warren-replay: times `warren dead replay` republished
                               it; 0 when absent or unreadable (see job.c) */
    int priority;
    json_t *args;           /* new reference; the body object */
    /* The headers: the delivery's table, checked by decode and borrowed
     * (it lives as long as the delivery, which outlives the job), and
     * its JSON, built on the first warren_job_headers() (new reference,
     * or NULL until then). */
    const amqp_table_t *header_src; /* NULL: no headers */
    json_t *headers;
    const char *module;     /* module name, for the log prefix (borrowed) */
    long long snooze_ms;    /* set by warren_job_snooze */
    /* progress, written by the handler's thread, read by the guard's */
    _Atomic long long progress_done, progress_total;
    _Atomic unsigned progress_seq; /* bumped on each report */
    char error[WARREN_ERROR_TEXT_MAX];
};

/* What the broker handed over. Everything is borrowed. */
struct warren_delivery {
    const char *exchange;     /* may be "" */
    size_t exchange_len;
    const char *routing_key;
    size_t routing_key_len;
    const amqp_basic_properties_t *props; /* may be NULL */
    const void *body;
    size_t body_len;
};

/* Decodes a delivery. `jobs_exchange` is "<namespace>" (the routing key is
 * the worker only for messages published there). Returns WARREN_DEAD_NONE
 * with *job filled (free with warren__job_clear), or a reason with a
 * message in `why` (and *job cleared, though its worker and id may be set
 * for the dead letter's log line). */
enum warren_dead_reason warren__job_decode(struct warren_job *job,
                                           const struct warren_delivery *d,
                                           const char *jobs_exchange,
                                           size_t max_body_bytes, char *why,
                                           size_t why_size);

/* The JSON of a header table decode accepted (see job.c for the
 * mapping): a new object, {} for NULL; NULL only when out of memory. */
json_t *warren__job_headers_json(const amqp_table_t *headers);

/* Frees what a decoded job holds and zeroes it. */
void warren__job_clear(struct warren_job *job);

/* The fields of a job's log line ({"id":..,"worker":..,...}), written
 * exactly as json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) writes the
 * object jansson would build, without building it: a line per job at
 * info level then costs no allocation. Room for the longest fields a job
 * line has (id, worker, a 1 KiB error, all escaped). */
#define WARREN_FIELDS_MAX 8192
struct warren_fields {
    char buf[WARREN_FIELDS_MAX];
    size_t len;
    int overflow;
};
void warren__fields_begin(struct warren_fields *f);
/* Adds "key":"value". A value that is not valid UTF-8 (which jansson
 * would refuse to make a string of) is not added: returns -1. */
int warren__fields_str(struct warren_fields *f, const char *key, const char *value);
void warren__fields_int(struct warren_fields *f, const char *key, long long value);
void warren__fields_null(struct warren_fields *f, const char *key);
/* Adds "key":JSON, the value text as given (already valid JSON). */
void warren__fields_raw(struct warren_fields *f, const char *key, const char *json, size_t len);
/* The text, or NULL when it did not fit. */
const char *warren__fields_end(struct warren_fields *f);

/* The x-warren-replay header of `props` (may be NULL): 0 when absent, not
 * an integer or negative, at most WARREN_MAX_REPLAY. Never an error. */
int warren__job_replay(const amqp_basic_properties_t *props);

/* Looks up a header in an AMQP table by name; NULL when absent. */
const amqp_table_entry_t *warren__table_find(const amqp_table_t *t, const char *key);

/* Reads an integer of any width from a field value. 0 ok, -1 not an int. */
int warren__field_int(const amqp_field_value_t *v, long long *out);

/* Checks UTF-8 well-formedness (no overlongs, no surrogates). */
int warren__utf8_valid(const void *s, size_t len);

/* Length of the strict UTF-8 sequence at p (lead byte above 0x7f, p < end),
 * or 0 when it is not one. */
size_t warren__utf8_seq(const unsigned char *p, const unsigned char *end);

#endif
