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

#ifdef __cplusplus
}
#endif
#endif
