/* warren public API: publishing jobs with publisher confirms.
 * A producer owns one broker connection and is used by one thread at a
 * time. */
#ifndef WARREN_PRODUCER_H
#define WARREN_PRODUCER_H

#include <stddef.h>
#include <jansson.h>
#include <warren/error.h>
#include <warren/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warren_producer warren_producer;

/* How to reach the broker. `urls` is a comma-separated list tried in turn;
 * NULL means WARREN_URL from the environment, else
 * amqp://guest:guest@127.0.0.1:5672/. `namespace_` NULL means "warren".
 *
 * Security (all optional; zeroed means off or the safe default):
 * `signing_key_file` makes every job carry x-warren-signature (HMAC-SHA256,
 * see docs/security.md); the key is read once, at create. `password_file`
 * replaces the URLs' password with the file's first line. For amqps://
 * URLs the broker's certificate is verified against `tls_ca_cert` (NULL:
 * the system's CAs) and must name the URL's host; `tls_cert` + `tls_key`
 * present a client certificate. The tls_no_verify_* switches turn the
 * checks off (tests only). */
typedef struct warren_producer_opts {
    const char *urls;
    const char *namespace_;
    int heartbeat;        /* seconds, 0: 30 */
    unsigned window;      /* outstanding confirms in batches, 0: 256 */
    const char *signing_key_file;
    const char *password_file;
    const char *tls_ca_cert;
    const char *tls_cert;
    const char *tls_key;
    int tls_no_verify_peer;
    int tls_no_verify_hostname;
    /* With events on (the config's events.enabled), each confirmed job is
     * announced as a `queued` event (`scheduled` when delayed) on
     * <ns>.events, so the job history knows it before a host takes it. */
    int events;
    /* Events as transient messages (the config's events.persistent =
     * false): cheaper for the broker, lost if it restarts before the
     * history took them. */
    int events_transient;
} warren_producer_opts;

/* Per-job options; zeroed means defaults. */
typedef struct warren_publish_opts {
    const char *id;        /* message id; NULL: a new UUID */
    int priority;          /* 0-9 */
    int max_attempts;      /* 0: the worker's setting */
    long long delay_ms;    /* run no earlier than this: under 1 s runs at once, else whole
                              seconds rounded up, at most 2^28-1 s (about 8.5 years) */
} warren_publish_opts;

/* Connects, and declares (idempotently) the jobs exchange, its alternate
 * exchange and the unroutable queue, so jobs are never dropped even before
 * any host ran. Returns WARREN_OK, WARREN_ECONNECT, WARREN_EBROKER or
 * WARREN_EINVAL (bad URL) with the reason in err. */
WARREN_EXPORT warren_status warren_producer_create(warren_producer **out,
                                                   const warren_producer_opts *opts,
                                                   warren_error *err);
/* Closes the connection and frees; NULL does nothing. */
WARREN_EXPORT void warren_producer_destroy(warren_producer *p);

/* Publishes one job and waits for the broker's confirm. `args` must be a
 * JSON object (borrowed). On WARREN_OK the id is copied into id_out (if
 * not NULL; 64 bytes are enough for generated ids, up to 256 for given
 * ones). WARREN_ENACK when the broker refused it. */
WARREN_EXPORT warren_status warren_publish(warren_producer *p, const char *worker,
                                           json_t *args, const warren_publish_opts *opts,
                                           char *id_out, size_t id_size, warren_error *err);

/* One job of a batch. `id` receives the id (generated when opts.id is NULL). */
typedef struct warren_batch_job {
    const char *worker;
    json_t *args;
    warren_publish_opts opts;
    char id[257];
} warren_batch_job;

/* Publishes n jobs pipelined with a window of outstanding confirms and
 * returns once all are confirmed. WARREN_OK only when every job was
 * confirmed; *n_confirmed (if not NULL) counts those that were, in order. */
WARREN_EXPORT warren_status warren_publish_batch(warren_producer *p, warren_batch_job *jobs,
                                                 size_t n, size_t *n_confirmed,
                                                 warren_error *err);

/* Writes a new random UUID (36 chars + NUL) into buf. */
WARREN_EXPORT void warren_uuid(char buf[37]);

#ifdef __cplusplus
}
#endif
#endif
