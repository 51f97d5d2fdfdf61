/* warren public API: the registry of workers (worker name -> handler),
 * and the in-process path that runs one job without a broker. */
#ifndef WARREN_REGISTRY_H
#define WARREN_REGISTRY_H

#include <jansson.h>
#include <warren/error.h>
#include <warren/export.h>
#include <warren/job.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warren_registry warren_registry;

/* A handler does the work of one worker name. `user` is the pointer given
 * at registration. */
typedef warren_outcome (*warren_handler_fn)(warren_job *job, void *user);

#define WARREN_SCHEMA_MAX_KEYS 32

/* Describes one worker. Strings are copied at registration.
 * `schema` is an optional jansson json_unpack format checked with
 * JSON_VALIDATE_ONLY (e.g. "{s:s, s:s, s?:i}"), and `schema_keys` the
 * NULL-terminated list of the keys it names, in order (at most
 * WARREN_SCHEMA_MAX_KEYS). Arguments that do not fit are dead-lettered
 * with reason `invalid_args`. */
typedef struct warren_worker_def {
    const char *name;
    warren_handler_fn handler;
    void *user;
    const char *schema;
    const char *const *schema_keys;
} warren_worker_def;

/* Creates an empty registry. Returns WARREN_OK or WARREN_ENOMEM. */
WARREN_EXPORT warren_status warren_registry_create(warren_registry **out);
/* Frees the registry; NULL does nothing. Handlers' modules are not
 * touched: unloading is the loader's business. */
WARREN_EXPORT void warren_registry_destroy(warren_registry *reg);

/* Registers a worker. WARREN_EINVAL for a bad name (must match
 * [A-Za-z0-9_.-]{1,128}), missing handler or schema that does not parse;
 * WARREN_EEXIST when the name is taken. Not thread-safe. */
WARREN_EXPORT warren_status warren_registry_add(warren_registry *reg,
                                                const warren_worker_def *def,
                                                warren_error *err);

/* Whether a worker name is registered. */
WARREN_EXPORT int warren_registry_has(const warren_registry *reg, const char *worker);

/* Number of workers and the name of worker i (0-based, registration order). */
WARREN_EXPORT unsigned warren_registry_count(const warren_registry *reg);
WARREN_EXPORT const char *warren_registry_name(const warren_registry *reg, unsigned i);

/* Checks `args` against the worker's schema. WARREN_OK when it fits or the
 * worker has none, WARREN_EINVAL with jansson's message otherwise,
 * WARREN_ENOTFOUND for an unknown worker. */
WARREN_EXPORT warren_status warren_registry_validate(const warren_registry *reg,
                                                     const char *worker, json_t *args,
                                                     warren_error *err);

/* Options and result of an in-process run. */
typedef struct warren_handle_opts {
    const char *id;       /* NULL: "test-job" */
    int attempt;          /* 0: 1 */
    int max_attempts;     /* 0: 5 */
    int priority;
} warren_handle_opts;

typedef struct warren_handle_result {
    warren_outcome outcome;
    char error[1024];
} warren_handle_result;

/* Runs one job through the registry without a broker: validates args
 * against the schema (a mismatch is WARREN_JOB_FAIL with the message),
 * then calls the handler. `args` is borrowed. Returns WARREN_ENOTFOUND for
 * an unknown worker, else WARREN_OK with the outcome in *result. */
WARREN_EXPORT warren_status warren_handle(const warren_registry *reg, const char *worker,
                                          json_t *args, const warren_handle_opts *opts,
                                          warren_handle_result *result, warren_error *err);

/* Checks a worker name against [A-Za-z0-9_.-]{1,128}. */
WARREN_EXPORT int warren_worker_name_valid(const char *name);

/* ---- lifecycle observers ---- */

/* Where a job is being run, for observers. */
typedef struct warren_observer_ctx {
    const char *queue; /* the short name of the job's queue ("default"); "" in process */
    const char *host;  /* host.name of the host; "" in process */
} warren_observer_ctx;

/* In-process observers of every job of the registry, whatever its worker
 * (the Observer pattern): a module registers one to log, count or notify.
 * Each hook may be NULL; `user` is passed back to each. The job and the
 * strings are borrowed, valid during the call only. Hooks run on the
 * worker process's job thread, in registration order, except that when a
 * job overruns its time limit, on_error and on_dead run on the job
 * guard's thread while the handler may still be running. A hook must not
 * block for long: the job's ack waits for it.
 *   before    the handler is about to run;
 *   after     it returned `outcome` after `duration` seconds;
 *   on_error  it failed (transiently or not) with `error` (also a time
 *             limit, with "time limit 30s exceeded");
 *   on_dead   the job was parked in its dead letters (confirmed by the
 *             broker) with `reason` (as in x-warren-dead-reason) and
 *             `error`. Also for input that never reached a handler: then
 *             warren_job_args() may be NULL and the worker or id "".
 * warren_handle() runs before, after and on_error (ctx strings ""); it
 * parks nothing. */
typedef struct warren_observer {
    void (*before)(const warren_job *job, const warren_observer_ctx *ctx, void *user);
    void (*after)(const warren_job *job, const warren_observer_ctx *ctx, warren_outcome outcome,
                  double duration, void *user);
    void (*on_error)(const warren_job *job, const warren_observer_ctx *ctx, const char *error,
                     void *user);
    void (*on_dead)(const warren_job *job, const warren_observer_ctx *ctx, const char *reason,
                    const char *error, void *user);
    void *user;
    void *reserved[4]; /* must be NULL */
} warren_observer;

/* Registers an observer (the struct is copied). One registered from a
 * module's init is removed with the module's workers if that init fails.
 * WARREN_EINVAL when every hook is NULL, WARREN_ENOMEM. Not thread-safe:
 * register from init, before jobs run. */
WARREN_EXPORT warren_status warren_registry_observe(warren_registry *reg,
                                                    const warren_observer *obs,
                                                    warren_error *err);

/* ---- test helpers: run a module's workers in process, no broker ---- */

struct warren_module;

/* Initialises a module from its descriptor the way the host does after
 * loading it: checks the ABI version (WARREN_EABI, both numbers in the
 * message), tags the workers it registers with its name (their log lines
 * read "<module>.log"), and undoes those registrations when init fails.
 * `config` is the module's config group as an object (borrowed; NULL: {}).
 * Returns init's status, with the module name before init's message.
 * For unit tests and hosts that link handlers statically; fini, if any, is
 * the caller's to call. Not thread-safe. */
WARREN_EXPORT warren_status warren_registry_add_module(warren_registry *reg,
                                                       const struct warren_module *module,
                                                       const json_t *config, warren_error *err);

/* warren_handle(), and also what the handler logged with warren_job_log()
 * during the run: one line per call, "LEVEL: message\n" (e.g.
 * "info: sent 2 mails\n"), at every level whatever the process's log
 * level (the lines still reach the logger as usual). On WARREN_OK *log is
 * a new string the caller frees with free() ("" when nothing was logged);
 * on any error it is NULL (WARREN_ENOMEM when capturing ran out of memory;
 * *result then still holds the outcome). `log` may be NULL. Simulate a
 * retry with opts->attempt and opts->max_attempts. Lines logged from
 * other threads than the caller's are not captured. */
WARREN_EXPORT warren_status warren_handle_capture(const warren_registry *reg, const char *worker,
                                                  json_t *args, const warren_handle_opts *opts,
                                                  warren_handle_result *result, char **log,
                                                  warren_error *err);

#ifdef __cplusplus
}
#endif
#endif
