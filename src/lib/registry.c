/* The registry of workers: worker name -> handler, schema and module.
 *
 * DESIGN: entries live in an array in registration order (what
 * warren_registry_name() walks) and are found through a small
 * open-addressing hash index of positions, because a lookup happens for
 * every job. Entries are separately allocated so a pointer returned by
 * warren__registry_find() stays valid while other workers are added.
 * Removal (only when a module's init fails) compacts the array and
 * rebuilds the index; it is rare enough not to deserve anything smarter.
 *
 * A schema is checked once, at registration, by running it in jansson's
 * "skip" mode: wrapped as the value of a missing optional key, the whole
 * format is walked, every key is read from the argument list, and nothing
 * is compared. So a typo in a format, or a key list that does not match
 * the format, is an error for the module author, not a dead letter later. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <warren/module.h>
#include <warren/registry.h>
#include "job.h"
#include "job_capture.h"
#include "registry_internal.h"

#define MIN_SLOTS 16u
#define PROBE_KEY "warren.schema.probe"

struct observer_entry {
    warren_observer obs;
    char *module; /* the module that registered it, or NULL */
};

struct warren_registry {
    struct warren_worker_entry **entries; /* registration order */
    unsigned n, cap;
    unsigned *slots; /* hash index: 0 empty, else position + 1 */
    unsigned n_slots; /* a power of two, at least 2 * n */
    char *module; /* tag for workers added from now on */
    struct observer_entry *observers; /* registration order */
    unsigned n_observers, cap_observers;
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Returns the slot holding `name`, or the empty slot where it would go. */
static unsigned slot_of(const struct warren_registry *reg, const char *name)
{
    unsigned mask = reg->n_slots - 1;
    unsigned i = name_hash(name) & mask;
    while (reg->slots[i] != 0 && strcmp(reg->entries[reg->slots[i] - 1]->name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

static int index_rebuild(struct warren_registry *reg, unsigned n_slots)
{
    unsigned *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    free(reg->slots);
    reg->slots = slots;
    reg->n_slots = n_slots;
    for (unsigned pos = 0; pos < reg->n; pos++)
        reg->slots[slot_of(reg, reg->entries[pos]->name)] = pos + 1;
    return 0;
}

static void entry_free(struct warren_worker_entry *e)
{
    if (!e)
        return;
    free(e->name);
    free(e->schema);
    if (e->schema_keys) {
        for (char **k = e->schema_keys; *k; k++)
            free(*k);
        free(e->schema_keys);
    }
    free(e->module);
    free(e);
}

warren_status warren_registry_create(warren_registry **out)
{
    struct warren_registry *reg = calloc(1, sizeof *reg);
    if (!reg || index_rebuild(reg, MIN_SLOTS) != 0) {
        free(reg);
        *out = NULL;
        return WARREN_ENOMEM;
    }
    *out = reg;
    return WARREN_OK;
}

void warren_registry_destroy(warren_registry *reg)
{
    if (!reg)
        return;
    for (unsigned i = 0; i < reg->n; i++)
        entry_free(reg->entries[i]);
    free(reg->entries);
    free(reg->slots);
    free(reg->module);
    for (unsigned i = 0; i < reg->n_observers; i++)
        free(reg->observers[i].module);
    free(reg->observers);
    free(reg);
}

int warren_worker_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t len = 0;
    for (const char *p = name; *p; p++, len++) {
        unsigned char c = (unsigned char)*p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok || len >= 128)
            return 0;
    }
    return len >= 1;
}

/* Runs `schema` over `args` with the keys as json_unpack's arguments.
 * Passing all WARREN_SCHEMA_MAX_KEYS slots is fine: unused trailing
 * variadic arguments are ignored. `lead` (may be NULL) goes first. */
static int schema_unpack(json_t *args, json_error_t *jerr, const char *schema, const char *lead,
                         const char *const *keys, size_t n_keys)
{
    const char *k[WARREN_SCHEMA_MAX_KEYS + 1] = {0};
    size_t at = 0;
    if (lead)
        k[at++] = lead;
    for (size_t i = 0; i < n_keys && at < WARREN_SCHEMA_MAX_KEYS + 1; i++)
        k[at++] = keys[i];
    return json_unpack_ex(args, jerr, JSON_VALIDATE_ONLY, schema, k[0], k[1], k[2], k[3], k[4],
                          k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14], k[15],
                          k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23], k[24], k[25],
                          k[26], k[27], k[28], k[29], k[30], k[31], k[32]);
}

static size_t count_keys(const char *const *keys)
{
    size_t n = 0;
    while (keys && keys[n])
        n++;
    return n;
}

/* Walks the whole format without comparing anything (see DESIGN). */
static int schema_walk(const char *schema, const char *const *keys, size_t n_keys,
                       json_error_t *jerr)
{
    size_t len = strlen(schema);
    char *probe = malloc(len + 6);
    if (!probe)
        return -2;
    snprintf(probe, len + 6, "{s?%s}", schema);
    json_t *empty = json_object();
    int rc = empty ? schema_unpack(empty, jerr, probe, PROBE_KEY, keys, n_keys) : -2;
    json_decref(empty);
    free(probe);
    return rc;
}

/* 0 when the format is one object: '{' first, and nothing but separators
 * after its closing '}'. Braces and brackets in a format are always
 * structure (keys come from the argument list), so counting is enough.
 * The skip walk alone would accept "{s:s}, s:i" wrapped in its probe. */
static int schema_is_one_object(const char *schema)
{
    const char *p = schema + strspn(schema, " \t\n,:");
    if (*p != '{')
        return -1;
    int depth = 0;
    for (; *p; p++) {
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            break;
    }
    if (!*p)
        return 0; /* unbalanced: the walk reports it in jansson's words */
    p++;
    return p[strspn(p, " \t\n,:")] == '\0' ? 0 : -1;
}

static warren_status schema_check(const char *worker, const char *schema, const char *const *keys,
                                  size_t n_keys, warren_error *err)
{
    json_error_t jerr;
    if (schema_is_one_object(schema) != 0)
        return warren_error_set(err, WARREN_EINVAL,
                                "worker '%s': schema \"%s\" must describe one object "
                                "(\"{...}\")",
                                worker, schema);
    int rc = schema_walk(schema, keys, n_keys, &jerr);
    if (rc == -2)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (rc != 0) {
        if (json_error_code(&jerr) == json_error_null_value)
            return warren_error_set(err, WARREN_EINVAL,
                                    "worker '%s': schema \"%s\" names more keys than the "
                                    "%zu in schema_keys",
                                    worker, schema, n_keys);
        return warren_error_set(err, WARREN_EINVAL, "worker '%s': invalid schema \"%s\": %s",
                                worker, schema, jerr.text);
    }
    /* Without its last key the walk must fail; if it does not, the format
     * never reached that key. */
    if (n_keys > 0 && schema_walk(schema, keys, n_keys - 1, &jerr) == 0)
        return warren_error_set(err, WARREN_EINVAL,
                                "worker '%s': schema_keys lists %zu keys but schema \"%s\" "
                                "uses fewer",
                                worker, n_keys, schema);
    return WARREN_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static struct warren_worker_entry *entry_new(const warren_worker_def *def, size_t n_keys,
                                             const char *module)
{
    struct warren_worker_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->handler = def->handler;
    e->user = def->user;
    e->name = strdup(def->name);
    e->schema = dup_or_null(def->schema);
    e->module = dup_or_null(module);
    int failed = !e->name || (def->schema && !e->schema) || (module && !e->module);
    if (def->schema && !failed) {
        e->schema_keys = calloc(n_keys + 1, sizeof *e->schema_keys);
        failed = !e->schema_keys;
        for (size_t i = 0; !failed && i < n_keys; i++)
            failed = !(e->schema_keys[i] = strdup(def->schema_keys[i]));
    }
    if (failed) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static int entries_reserve(struct warren_registry *reg)
{
    if (reg->n == reg->cap) {
        unsigned cap = reg->cap ? reg->cap * 2 : 16;
        void *grown = realloc(reg->entries, cap * sizeof *reg->entries);
        if (!grown)
            return -1;
        reg->entries = grown;
        reg->cap = cap;
    }
    if (2 * (reg->n + 1) > reg->n_slots)
        return index_rebuild(reg, reg->n_slots * 2);
    return 0;
}

static warren_status def_check(const warren_worker_def *def, size_t *n_keys, warren_error *err)
{
    if (!warren_worker_name_valid(def->name))
        return warren_error_set(err, WARREN_EINVAL,
                                "invalid worker name '%.140s': must match "
                                "[A-Za-z0-9_.-]{1,128}",
                                def->name ? def->name : "(null)");
    if (!def->handler)
        return warren_error_set(err, WARREN_EINVAL, "worker '%s' has no handler", def->name);
    *n_keys = count_keys(def->schema_keys);
    if (*n_keys > WARREN_SCHEMA_MAX_KEYS)
        return warren_error_set(err, WARREN_EINVAL,
                                "worker '%s': schema_keys lists %zu keys, at most %d "
                                "are supported",
                                def->name, *n_keys, WARREN_SCHEMA_MAX_KEYS);
    if (!def->schema && *n_keys > 0)
        return warren_error_set(err, WARREN_EINVAL,
                                "worker '%s': schema_keys given without a schema", def->name);
    if (def->schema)
        return schema_check(def->name, def->schema, def->schema_keys, *n_keys, err);
    return WARREN_OK;
}

warren_status warren_registry_add(warren_registry *reg, const warren_worker_def *def,
                                  warren_error *err)
{
    if (!reg || !def)
        return warren_error_set(err, WARREN_EINVAL, "registry and worker definition needed");
    size_t n_keys = 0;
    warren_status st = def_check(def, &n_keys, err);
    if (st != WARREN_OK)
        return st;
    const struct warren_worker_entry *taken = warren__registry_find(reg, def->name);
    if (taken && taken->module)
        return warren_error_set(err, WARREN_EEXIST,
                                "worker '%s' is already registered by module '%s'", def->name,
                                taken->module);
    if (taken)
        return warren_error_set(err, WARREN_EEXIST, "worker '%s' is already registered", def->name);

    struct warren_worker_entry *e = entry_new(def, n_keys, reg->module);
    if (!e || entries_reserve(reg) != 0) {
        entry_free(e);
        return warren_error_set(err, WARREN_ENOMEM, "out of memory registering worker '%s'",
                                def->name);
    }
    e->pos = reg->n;
    reg->entries[reg->n] = e;
    reg->slots[slot_of(reg, e->name)] = reg->n + 1;
    reg->n++;
    return WARREN_OK;
}

const struct warren_worker_entry *warren__registry_find(const warren_registry *reg,
                                                        const char *worker)
{
    if (!reg || !worker)
        return NULL;
    unsigned pos = reg->slots[slot_of(reg, worker)];
    return pos ? reg->entries[pos - 1] : NULL;
}

int warren_registry_has(const warren_registry *reg, const char *worker)
{
    return warren__registry_find(reg, worker) != NULL;
}

unsigned warren_registry_count(const warren_registry *reg)
{
    return reg ? reg->n : 0;
}

const char *warren_registry_name(const warren_registry *reg, unsigned i)
{
    return reg && i < reg->n ? reg->entries[i]->name : NULL;
}

void warren__registry_set_module(warren_registry *reg, const char *module)
{
    free(reg->module);
    /* Out of memory only loses the tag, which is used for messages and the
     * undo of a failed init; the loader checks nothing else. */
    reg->module = dup_or_null(module);
}

static void remove_module_observers(warren_registry *reg, const char *module)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < reg->n_observers; i++) {
        struct observer_entry *o = &reg->observers[i];
        if (o->module && strcmp(o->module, module) == 0)
            free(o->module);
        else
            reg->observers[kept++] = *o;
    }
    reg->n_observers = kept;
}

void warren__registry_remove_module(warren_registry *reg, const char *module)
{
    if (!reg || !module)
        return;
    remove_module_observers(reg, module);
    unsigned kept = 0;
    for (unsigned i = 0; i < reg->n; i++) {
        struct warren_worker_entry *e = reg->entries[i];
        if (e->module && strcmp(e->module, module) == 0) {
            entry_free(e);
        } else {
            e->pos = kept;
            reg->entries[kept++] = e;
        }
    }
    if (kept == reg->n)
        return;
    reg->n = kept;
    /* Same size: cannot fail for lack of room, only for lack of memory, in
     * which case the old index is cleared and rebuilt in place. */
    if (index_rebuild(reg, reg->n_slots) != 0) {
        memset(reg->slots, 0, reg->n_slots * sizeof *reg->slots);
        for (unsigned pos = 0; pos < reg->n; pos++)
            reg->slots[slot_of(reg, reg->entries[pos]->name)] = pos + 1;
    }
}

int warren__registry_check_args(const struct warren_worker_entry *entry, json_t *args, char *why,
                                size_t why_size)
{
    if (!json_is_object(args)) {
        snprintf(why, why_size, "arguments must be a JSON object");
        return -1;
    }
    if (!entry->schema)
        return 0;
    json_error_t jerr;
    size_t n_keys = count_keys((const char *const *)entry->schema_keys);
    if (schema_unpack(args, &jerr, entry->schema, NULL, (const char *const *)entry->schema_keys,
                      n_keys) == 0)
        return 0;
    snprintf(why, why_size, "%s", jerr.text);
    return -1;
}

warren_status warren_registry_validate(const warren_registry *reg, const char *worker, json_t *args,
                                       warren_error *err)
{
    const struct warren_worker_entry *e = warren__registry_find(reg, worker);
    if (!e)
        return warren_error_set(err, WARREN_ENOTFOUND, "unknown worker '%.140s'",
                                worker ? worker : "(null)");
    char why[JSON_ERROR_TEXT_LENGTH + 64];
    if (warren__registry_check_args(e, args, why, sizeof why) != 0)
        return warren_error_set(err, WARREN_EINVAL, "%s", why);
    return WARREN_OK;
}

warren_outcome warren__registry_run(const struct warren_worker_entry *entry, struct warren_job *job)
{
    if (!job->module)
        job->module = entry->module;
    job->error[0] = '\0';
    warren_outcome out = entry->handler(job, entry->user);
    switch (out) {
    case WARREN_JOB_OK:
    case WARREN_JOB_SNOOZE:
        job->error[0] = '\0';
        return out;
    case WARREN_JOB_RETRY:
    case WARREN_JOB_FAIL:
        if (!job->error[0])
            snprintf(job->error, sizeof job->error, "handler failed without a message");
        return out;
    }
    snprintf(job->error, sizeof job->error, "handler returned an invalid outcome (%d)", (int)out);
    return WARREN_JOB_FAIL;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The in-process run, seen by observers as the host's would be. */
static warren_outcome run_observed(const warren_registry *reg,
                                   const struct warren_worker_entry *e, struct warren_job *job)
{
    warren__registry_notify_before(reg, job, NULL);
    double t0 = mono_seconds();
    warren_outcome out = warren__registry_run(e, job);
    warren__registry_notify_after(reg, job, NULL, out, mono_seconds() - t0);
    if (out != WARREN_JOB_OK)
        warren__registry_notify_error(reg, job, NULL, job->error);
    return out;
}

static warren_status handle_job_init(struct warren_job *job, const char *worker, json_t *args,
                                     const warren_handle_opts *opts, warren_error *err)
{
    const char *id = opts && opts->id ? opts->id : "test-job";
    if (strlen(id) >= sizeof job->id)
        return warren_error_set(err, WARREN_EINVAL, "job id longer than %zu bytes",
                                sizeof job->id - 1);
    memset(job, 0, sizeof *job);
    snprintf(job->worker, sizeof job->worker, "%s", worker);
    snprintf(job->id, sizeof job->id, "%s", id);
    job->attempt = opts && opts->attempt > 0 ? opts->attempt : 1;
    job->max_attempts = opts && opts->max_attempts > 0 ? opts->max_attempts : 5;
    job->priority = opts ? opts->priority : 0;
    /* headers: {} on first warren_job_headers() */
    job->args = json_incref(args);
    return WARREN_OK;
}

warren_status warren_handle(const warren_registry *reg, const char *worker, json_t *args,
                            const warren_handle_opts *opts, warren_handle_result *result,
                            warren_error *err)
{
    const struct warren_worker_entry *e = warren__registry_find(reg, worker);
    if (!e)
        return warren_error_set(err, WARREN_ENOTFOUND, "unknown worker '%.140s'",
                                worker ? worker : "(null)");
    if (!result)
        return warren_error_set(err, WARREN_EINVAL, "no result buffer");
    if (!json_is_object(args))
        return warren_error_set(err, WARREN_EINVAL, "arguments must be a JSON object");

    struct warren_job job;
    warren_status st = handle_job_init(&job, e->name, args, opts, err);
    if (st != WARREN_OK)
        return st;

    char why[JSON_ERROR_TEXT_LENGTH + 64];
    if (warren__registry_check_args(e, args, why, sizeof why) != 0) {
        result->outcome = WARREN_JOB_FAIL;
        snprintf(result->error, sizeof result->error, "invalid_args: %s", why);
    } else {
        result->outcome = run_observed(reg, e, &job);
        snprintf(result->error, sizeof result->error, "%s", job.error);
    }
    json_decref(job.args);
    json_decref(job.headers);
    return WARREN_OK;
}

/* ---- test helpers ---- */

warren_status warren_registry_add_module(warren_registry *reg, const struct warren_module *module,
                                         const json_t *config, warren_error *err)
{
    if (!reg || !module)
        return warren_error_set(err, WARREN_EINVAL, "registry and module descriptor needed");
    /* Nothing but abi_version can be trusted in a descriptor of another ABI. */
    if (module->abi_version != WARREN_MODULE_ABI_VERSION)
        return warren_error_set(err, WARREN_EABI,
                                "module was built for ABI version %u, this library needs %d",
                                (unsigned)module->abi_version, WARREN_MODULE_ABI_VERSION);
    if (!module->name || !module->name[0] || !module->init)
        return warren_error_set(err, WARREN_EINVAL, "module descriptor without a name or init");
    /* Undoing a failed init removes every worker tagged with the name, so
     * a second init of one module must not get that far. */
    for (unsigned i = 0; i < reg->n; i++)
        if (reg->entries[i]->module && strcmp(reg->entries[i]->module, module->name) == 0)
            return warren_error_set(err, WARREN_EEXIST, "module '%s' is already initialised",
                                    module->name);
    json_t *empty = NULL;
    if (!config && !(config = empty = json_object()))
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    warren_error why;
    warren_error_clear(&why);
    warren__registry_set_module(reg, module->name);
    warren_status st = module->init(reg, config, &why);
    warren__registry_set_module(reg, NULL);
    json_decref(empty);
    if (st == WARREN_OK)
        return WARREN_OK;
    warren__registry_remove_module(reg, module->name);
    return warren_error_set(err, st, "module '%s' failed to initialise: %s", module->name,
                            why.code != WARREN_OK ? why.text : warren_strerror(st));
}

warren_status warren_handle_capture(const warren_registry *reg, const char *worker, json_t *args,
                                    const warren_handle_opts *opts, warren_handle_result *result,
                                    char **log, warren_error *err)
{
    if (log)
        *log = NULL;
    struct warren__log_capture c;
    warren__job_capture_begin(&c);
    warren_status st = warren_handle(reg, worker, args, opts, result, err);
    char *text = warren__job_capture_end(&c);
    if (st == WARREN_OK && !text)
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory capturing the job's log");
    if (st == WARREN_OK && log)
        *log = text;
    else
        free(text);
    return st;
}

/* ---- observers ---- */

warren_status warren_registry_observe(warren_registry *reg, const warren_observer *obs,
                                      warren_error *err)
{
    if (!reg || !obs)
        return warren_error_set(err, WARREN_EINVAL, "registry and observer needed");
    if (!obs->before && !obs->after && !obs->on_error && !obs->on_dead)
        return warren_error_set(err, WARREN_EINVAL, "observer has no hook");
    if (reg->n_observers == reg->cap_observers) {
        unsigned cap = reg->cap_observers ? reg->cap_observers * 2 : 4;
        void *grown = realloc(reg->observers, cap * sizeof *reg->observers);
        if (!grown)
            return warren_error_set(err, WARREN_ENOMEM, "out of memory registering an observer");
        reg->observers = grown;
        reg->cap_observers = cap;
    }
    struct observer_entry *o = &reg->observers[reg->n_observers];
    o->obs = *obs;
    o->module = dup_or_null(reg->module);
    if (reg->module && !o->module)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory registering an observer");
    reg->n_observers++;
    return WARREN_OK;
}

unsigned warren__registry_observers(const warren_registry *reg)
{
    return reg ? reg->n_observers : 0;
}

static const warren_observer_ctx *ctx_or_empty(const warren_observer_ctx *ctx)
{
    static const warren_observer_ctx empty = {"", ""};
    return ctx ? ctx : &empty;
}

void warren__registry_notify_before(const warren_registry *reg, const struct warren_job *job,
                                    const warren_observer_ctx *ctx)
{
    for (unsigned i = 0; reg && i < reg->n_observers; i++) {
        const warren_observer *o = &reg->observers[i].obs;
        if (o->before)
            o->before(job, ctx_or_empty(ctx), o->user);
    }
}

void warren__registry_notify_after(const warren_registry *reg, const struct warren_job *job,
                                   const warren_observer_ctx *ctx, warren_outcome outcome,
                                   double duration)
{
    for (unsigned i = 0; reg && i < reg->n_observers; i++) {
        const warren_observer *o = &reg->observers[i].obs;
        if (o->after)
            o->after(job, ctx_or_empty(ctx), outcome, duration, o->user);
    }
}

void warren__registry_notify_error(const warren_registry *reg, const struct warren_job *job,
                                   const warren_observer_ctx *ctx, const char *error)
{
    for (unsigned i = 0; reg && i < reg->n_observers; i++) {
        const warren_observer *o = &reg->observers[i].obs;
        if (o->on_error)
            o->on_error(job, ctx_or_empty(ctx), error ? error : "", o->user);
    }
}

void warren__registry_notify_dead(const warren_registry *reg, const struct warren_job *job,
                                  const warren_observer_ctx *ctx, const char *reason,
                                  const char *error)
{
    for (unsigned i = 0; reg && i < reg->n_observers; i++) {
        const warren_observer *o = &reg->observers[i].obs;
        if (o->on_dead)
            o->on_dead(job, ctx_or_empty(ctx), reason ? reason : "", error ? error : "",
                       o->user);
    }
}
