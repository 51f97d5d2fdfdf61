/* Internal: what the host needs from the registry beyond the public API,
 * and the module loader. */
#ifndef WARREN_REGISTRY_INTERNAL_H
#define WARREN_REGISTRY_INTERNAL_H

#include <warren/registry.h>
#include "config.h"
#include "job.h"

struct warren_worker_entry {
    char *name;
    warren_handler_fn handler;
    void *user;
    char *schema;          /* NULL when none */
    char **schema_keys;    /* NULL-terminated, NULL when none */
    char *module;          /* name of the module that registered it, or NULL */
    unsigned pos;          /* its position in registration order (0-based) */
};

/* Finds a worker; NULL when unknown. */
const struct warren_worker_entry *warren__registry_find(const warren_registry *reg,
                                                        const char *worker);

/* Tags every worker added from now on with `module` (NULL: untagged). */
void warren__registry_set_module(warren_registry *reg, const char *module);

/* Removes every worker tagged with `module` (undoes a failed init). */
void warren__registry_remove_module(warren_registry *reg, const char *module);

/* Checks args against the entry's schema (args must be an object; no
 * schema: any object fits). Returns 0, or -1 with jansson's message in
 * `why` (the dead-letter reason is then `invalid_args`). */
int warren__registry_check_args(const struct warren_worker_entry *entry, json_t *args,
                                char *why, size_t why_size);

/* Runs the handler on a decoded job; the job's error text is set for any
 * failure (a handler that fails without a message gets a generic one). */
warren_outcome warren__registry_run(const struct warren_worker_entry *entry,
                                    struct warren_job *job);

/* Calls every observer's hook, in registration order (see
 * warren_observer in registry.h). `ctx` may be NULL (strings ""); `reason`
 * and `error` NULL are passed as "". */
void warren__registry_notify_before(const warren_registry *reg, const struct warren_job *job,
                                    const warren_observer_ctx *ctx);
void warren__registry_notify_after(const warren_registry *reg, const struct warren_job *job,
                                   const warren_observer_ctx *ctx, warren_outcome outcome,
                                   double duration);
void warren__registry_notify_error(const warren_registry *reg, const struct warren_job *job,
                                   const warren_observer_ctx *ctx, const char *error);
void warren__registry_notify_dead(const warren_registry *reg, const struct warren_job *job,
                                  const warren_observer_ctx *ctx, const char *reason,
                                  const char *error);

/* Number of observers registered. */
unsigned warren__registry_observers(const warren_registry *reg);

/* Loaded modules (opaque). */
struct warren_modules;

/* Resolves every `modules` entry of cfg (sets its `resolved`), dlopens it,
 * checks the descriptor and calls init with the module's config. On error
 * everything loaded so far is unloaded, and err names "FILE:LINE" of the
 * failing `modules` entry: WARREN_EMODULE, or WARREN_EABI with both
 * version numbers in the message. */
warren_status warren__modules_load(struct warren_modules **out, struct warren_config *cfg,
                                   warren_registry *reg, warren_error *err);

/* Calls each module's fini in reverse order and dlcloses it. NULL is fine. */
void warren__modules_unload(struct warren_modules *mods);

/* Finds the file for a `modules` path: a path with '/' is relative to
 * config_dir; a bare name ("diag" or "diag.so") is looked up in
 * $WARREN_MODULE_DIR, then the build tree's module folder, then
 * <libdir>/warren/. Returns WARREN_OK or WARREN_ENOTFOUND with the places
 * tried in err. */
warren_status warren__module_resolve(const char *path, const char *config_dir, char *out,
                                     size_t out_size, warren_error *err);

#endif
