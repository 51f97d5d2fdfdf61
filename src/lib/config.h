/* Internal: the parsed configuration (libconfig stays behind this header).
 *
 * DESIGN: config.c reads the file with libconfig and walks one table of
 * known keys per group; each row names the key, its type, default, bounds
 * and destination field. Unknown keys, wrong types and bad values are all
 * collected as "FILE:LINE: message" errors, so `warren config check`
 * reports every problem at once. Every field has its default after
 * warren__config_defaults(), even when loading fails. */
#ifndef WARREN_CONFIG_H
#define WARREN_CONFIG_H

#include <stddef.h>
#include <jansson.h>
#include <warren/error.h>

#define WARREN_NAME_MAX 129  /* worker names: 128 chars + NUL */
#define WARREN_QNAME_MAX 65  /* queue names: 64 chars + NUL */

enum warren_queue_type { WARREN_QUEUE_CLASSIC = 0, WARREN_QUEUE_QUORUM = 1 };

struct warren_retry_policy {
    int max_attempts;        /* default 5 */
    long long initial_delay_ms; /* default 1000 */
    double multiplier;       /* default 2.0 */
    long long max_delay_ms;  /* default 3600000 */
    double jitter;           /* default 0.2, in [0, 1] */
};

struct warren_queue_conf {
    char name[WARREN_QNAME_MAX];
    enum warren_queue_type type;
    int max_priority;        /* classic: default 10 (1..255); quorum: 0 */
    int line;                /* where it was declared (0: implicit default) */
};

struct warren_worker_conf {
    char name[WARREN_NAME_MAX];
    char queue[WARREN_QNAME_MAX];  /* default "default" */
    struct warren_retry_policy retry; /* inherits the global retry group */
    long long time_limit_ms;       /* 0 = none */
    double rate_limit;             /* jobs/s for the host, 0 = none */
    char **lock_by;                /* NULL-terminated or NULL */
    long long lock_timeout_ms;     /* default 600000 */
    char **unique_by;              /* NULL-terminated or NULL */
    long long unique_for_ms;       /* 0 */
    int max_snoozes;               /* default 100 */
    int line;
};

struct warren_module_conf {
    char *path;       /* as written */
    char *resolved;   /* absolute or as found; filled by the loader */
    json_t *config;   /* the module's `config` group as a JSON object (new) */
    int line;
};

struct warren_schedule_conf {
    char name[WARREN_NAME_MAX];
    char worker[WARREN_NAME_MAX];
    char *cron;            /* NULL when `every` is used */
    long long every_ms;    /* 0 when `cron` is used */
    long long max_count;   /* 0 = unlimited */
    json_t *args;          /* parsed object (new), {} by default */
    int priority;
    int line;
};

struct warren_tls_conf {
    char *ca_cert, *cert, *key;
    int verify_peer;      /* default 1 */
    int verify_hostname;  /* default 1 */
};

struct warren_config {
    char *path;               /* the file as given */
    char *dir;                /* its folder, for relative paths */
    char namespace_[64];      /* default "warren" */

    /* broker */
    char **urls;              /* NULL-terminated; never empty after load */
    size_t n_urls;
    int heartbeat;            /* seconds, default 30 */
    char *password_file;
    long long consumer_timeout_ms; /* default 30 min */
    char *management_url;
    struct warren_tls_conf tls;

    /* host */
    char host_name[256];      /* default: gethostname() */
    int concurrency;          /* default 4 (1..1024) */
    int prefetch;             /* default 10 (1..65535) */
    long long shutdown_timeout_ms; /* default 30 s */
    long long max_message_bytes;   /* default 1 MiB */
    int max_crashes;          /* default 3 */
    int max_redeliveries;     /* default 20 */
    char **host_queues;       /* NULL = every queue with a loaded worker */
    size_t n_host_queues;
    long long max_jobs_per_process;     /* 0 = none */
    long long max_memory_per_process;   /* bytes, 0 = none */
    char metrics_listen[128]; /* default "127.0.0.1:9464", "" = off */
    int log_level;            /* warren_log_level, default info */
    int log_format;           /* warren_log_format, default text */

    struct warren_retry_policy retry;

    struct warren_queue_conf *queues; /* default: one classic "default" */
    size_t n_queues;
    struct warren_module_conf *modules;
    size_t n_modules;
    struct warren_worker_conf *workers;
    size_t n_workers;
    struct warren_schedule_conf *schedules;
    size_t n_schedules;

    /* security */
    char *signing_key_file;
    int require_signature;

    /* events */
    int events_enabled;
    int events_persistent; /* delivery mode 2; 0: transient (faster, lost on a broker restart) */

    /* web */
    char *web_db;             /* default "var/warren.db" (relative to dir) */
    char web_listen[128];     /* default "127.0.0.1:9465" */
    long long web_retention_ms; /* default 7 d */
    char *web_token_file;

    /* Internal: what warren__config_worker() returns for a worker that is
     * not listed in `workers` (allocated by warren__config_defaults). */
    struct warren_worker_conf *fallback_worker;
};

/* A list of errors ("FILE:LINE: message") and warnings ("FILE:LINE:
 * warning: message"), each sorted by line. The loader overwrites the
 * struct: free a used one with warren__config_diag_free() first. */
struct warren_config_diag {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
};

/* Fills every field with its default (no file). Returns WARREN_ENOMEM or OK. */
warren_status warren__config_defaults(struct warren_config *cfg);

/* Loads and validates `path`. On WARREN_ECONFIG, diag lists every error
 * (diag may be NULL; err gets the first). The environment's WARREN_URL,
 * when set and non-empty, replaces broker.urls. The struct is always safe
 * to pass to warren__config_free(). */
warren_status warren__config_load(struct warren_config *cfg, const char *path,
                                  struct warren_config_diag *diag, warren_error *err);

/* Same, from a string (for tests and fuzzing); `name` stands for the file. */
warren_status warren__config_load_string(struct warren_config *cfg, const char *text,
                                         const char *name, struct warren_config_diag *diag,
                                         warren_error *err);

void warren__config_free(struct warren_config *cfg);
void warren__config_diag_free(struct warren_config_diag *diag);

/* The worker's settings: its `workers` entry, or defaults inherited from the
 * global retry group and queue "default". Never NULL: returns a pointer to
 * a per-config fallback when the worker is not listed (valid until
 * the next call with an unlisted name). */
const struct warren_worker_conf *warren__config_worker(const struct warren_config *cfg,
                                                       const char *worker);

const struct warren_queue_conf *warren__config_queue(const struct warren_config *cfg,
                                                     const char *name);

/* Parses "500ms", "30s", "5m", "2h", "1d" or an integer count of seconds
 * into milliseconds. Returns 0 on success, -1 with a message otherwise. */
int warren__parse_duration(const char *text, long long *ms, char *why, size_t why_size);

/* Parses "1048576", "64KiB", "512MiB", "1GiB" (also KB/MB/GB as powers of
 * 1000? no: only the binary suffixes and plain bytes). 0 ok, -1 error. */
int warren__parse_bytes(const char *text, long long *bytes, char *why, size_t why_size);

/* Formats a duration back as text ("30s", "1500ms", "10m"). */
const char *warren__format_duration(long long ms, char *buf, size_t size);

#endif
