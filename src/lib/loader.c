/* Handler modules: finding, loading, checking and unloading them.
 *
 * DESIGN: each `modules` entry of the config is resolved to a file,
 * dlopen()ed with RTLD_NOW|RTLD_LOCAL (a missing symbol fails here, not
 * in the middle of a job; modules cannot see each other), and its one
 * descriptor symbol is read, ABI version first: no other field of a
 * descriptor from another ABI can be trusted. Registrations made during a
 * module's init are tagged with its name, so a failed init is undone
 * exactly. Loading is all or nothing: on any failure every module loaded
 * so far is finalised and closed, and its workers leave the registry. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/module.h>
#include <warren/warren.h>
#include "config.h"
#include "registry_internal.h"

#ifndef WARREN_BUILD_MODULE_DIR
#define WARREN_BUILD_MODULE_DIR ""
#endif
#ifndef WARREN_INSTALL_MODULE_DIR
#define WARREN_INSTALL_MODULE_DIR "/usr/local/lib/warren"
#endif

/* Modules resolve the warren API from the program that loads them. A
 * program linked with the static library only holds the archive members
 * it references itself, so the loader references what a module may call:
 * wherever the loader is linked in, so is that API (and -rdynamic exports
 * it). */
typedef void (*api_fn)(void);
__attribute__((used)) static const api_fn module_api[] = {
    (api_fn)warren_registry_add,      (api_fn)warren_registry_has,
    (api_fn)warren_registry_count,    (api_fn)warren_registry_name,
    (api_fn)warren_registry_validate, (api_fn)warren_worker_name_valid,
    (api_fn)warren_job_worker,        (api_fn)warren_job_id,
    (api_fn)warren_job_attempt,       (api_fn)warren_job_max_attempts,
    (api_fn)warren_job_priority,      (api_fn)warren_job_args,
    (api_fn)warren_job_headers,       (api_fn)warren_job_log,
    (api_fn)warren_job_retry,         (api_fn)warren_job_fail,
    (api_fn)warren_job_error,         (api_fn)warren_log_write,
    (api_fn)warren_log_vwrite,        (api_fn)warren_log_enabled,
    (api_fn)warren_error_set,         (api_fn)warren_error_set_at,
    (api_fn)warren_error_clear,       (api_fn)warren_error_format,
    (api_fn)warren_strerror,          (api_fn)warren_version,
    (api_fn)warren_version_string,
};

struct loaded_module {
    void *handle;
    const struct warren_module *desc;
    char *name; /* a copy: the descriptor's string goes away with dlclose */
    int line;
};

struct warren_modules {
    struct loaded_module *v;
    size_t n;
};

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Appends ", place" to the list of places tried. */
static void tried_add(char *tried, size_t size, const char *place)
{
    size_t used = strlen(tried);
    /* The list is for the error message: a long one is cut. */
    if (used < size && snprintf(tried + used, size - used, "%s%s", used ? ", " : "", place) < 0)
        tried[used] = '\0';
}

/* Tries `dir/name` (dir may be NULL for "as is"); 0 and `out` set when it
 * is a file. */
static int try_place(const char *dir, const char *name, char *out, size_t out_size, char *tried,
                     size_t tried_size)
{
    char path[PATH_MAX];
    int n = dir ? snprintf(path, sizeof path, "%s/%s", dir, name)
                : snprintf(path, sizeof path, "%s", name);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    tried_add(tried, tried_size, path);
    if (!is_file(path))
        return -1;
    /* Canonical when possible: messages name the real file, and a process
     * that changes folder can still reopen it. */
    char real[PATH_MAX];
    const char *found = realpath(path, real) ? real : path;
    if (strlen(found) >= out_size)
        return -1;
    snprintf(out, out_size, "%s", found);
    return 0;
}

static warren_status resolve_path(const char *path, const char *config_dir, char *out,
                                  size_t out_size, warren_error *err)
{
    char tried[1024] = "";
    const char *dir = path[0] == '/' || !config_dir || !config_dir[0] ? NULL : config_dir;
    if (try_place(dir, path, out, out_size, tried, sizeof tried) == 0)
        return WARREN_OK;
    if (!ends_with(path, ".so")) {
        char with_so[PATH_MAX];
        snprintf(with_so, sizeof with_so, "%s.so", path);
        if (try_place(dir, with_so, out, out_size, tried, sizeof tried) == 0)
            return WARREN_OK;
    }
    return warren_error_set(err, WARREN_ENOTFOUND, "module '%s' not found (tried %s)", path, tried);
}

/* Tries every folder of a ':'-separated list. */
static int try_dirs(const char *list, const char *file, char *out, size_t out_size, char *tried,
                    size_t tried_size)
{
    char dir[PATH_MAX];
    while (list && *list) {
        size_t len = strcspn(list, ":");
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, list, len);
            dir[len] = '\0';
            if (try_place(dir, file, out, out_size, tried, tried_size) == 0)
                return 0;
        }
        list += len + (list[len] == ':');
    }
    return -1;
}

static warren_status resolve_bare(const char *name, char *out, size_t out_size, warren_error *err)
{
    char file[NAME_MAX + 1];
    int n = snprintf(file, sizeof file, "%s%s", name, ends_with(name, ".so") ? "" : ".so");
    if (n < 0 || (size_t)n >= sizeof file)
        return warren_error_set(err, WARREN_ENOTFOUND, "module name '%.64s...' is too long", name);
    char tried[1024] = "";
    const char *env = getenv("WARREN_MODULE_DIR");
    if (env && *env && try_dirs(env, file, out, out_size, tried, sizeof tried) == 0)
        return WARREN_OK;
    if (!env || !*env)
        tried_add(tried, sizeof tried, "$WARREN_MODULE_DIR (unset)");
    if (try_dirs(WARREN_BUILD_MODULE_DIR, file, out, out_size, tried, sizeof tried) == 0)
        return WARREN_OK;
    if (try_dirs(WARREN_INSTALL_MODULE_DIR, file, out, out_size, tried, sizeof tried) == 0)
        return WARREN_OK;
    return warren_error_set(err, WARREN_ENOTFOUND, "module '%s' not found (tried %s)", name, tried);
}

warren_status warren__module_resolve(const char *path, const char *config_dir, char *out,
                                     size_t out_size, warren_error *err)
{
    if (!path || !*path)
        return warren_error_set(err, WARREN_ENOTFOUND, "empty module path");
    if (strchr(path, '/'))
        return resolve_path(path, config_dir, out, out_size, err);
    return resolve_bare(path, out, out_size, err);
}

static void module_close(warren_registry *reg, struct loaded_module *m)
{
    if (m->desc && m->desc->fini)
        m->desc->fini();
    if (reg)
        warren__registry_remove_module(reg, m->name);
    if (m->handle)
        dlclose(m->handle);
    free(m->name);
    memset(m, 0, sizeof *m);
}

/* Closes modules [0, n) in reverse order. */
static void modules_close(struct warren_modules *mods, warren_registry *reg)
{
    while (mods->n > 0)
        module_close(reg, &mods->v[--mods->n]);
}

/* Opens and checks one module; on success m->handle, m->desc are set. */
static warren_status module_open(struct loaded_module *m, const char *file, const char *src,
                                 int line, warren_error *err)
{
    dlerror();
    m->handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle)
        return warren_error_set_at(err, WARREN_EMODULE, src, line, "cannot load module '%s': %s",
                                   file, dlerror());
    const struct warren_module *d = dlsym(m->handle, WARREN_MODULE_SYMBOL);
    if (!d)
        return warren_error_set_at(err, WARREN_EMODULE, src, line,
                                   "'%s' is not a warren module: it has no '%s' symbol", file,
                                   WARREN_MODULE_SYMBOL);
    if (d->abi_version != WARREN_MODULE_ABI_VERSION)
        return warren_error_set_at(err, WARREN_EABI, src, line,
                                   "module '%s' was built for ABI version %u, this host needs "
                                   "%d",
                                   file, (unsigned)d->abi_version, WARREN_MODULE_ABI_VERSION);
    if (d->struct_size < sizeof(struct warren_module))
        return warren_error_set_at(err, WARREN_EMODULE, src, line,
                                   "module '%s': descriptor is %u bytes, ABI version %d needs "
                                   "at least %zu",
                                   file, (unsigned)d->struct_size, WARREN_MODULE_ABI_VERSION,
                                   sizeof(struct warren_module));
    if (!d->name || !d->name[0] || strlen(d->name) > 128)
        return warren_error_set_at(err, WARREN_EMODULE, src, line,
                                   "module '%s' has no name (or one over 128 characters)", file);
    if (!d->init)
        return warren_error_set_at(err, WARREN_EMODULE, src, line,
                                   "module '%s' (%s) has no init function", d->name, file);
    m->desc = d;
    return WARREN_OK;
}

static const struct loaded_module *find_loaded(const struct warren_modules *mods, const char *name)
{
    for (size_t i = 0; i < mods->n; i++)
        if (strcmp(mods->v[i].name, name) == 0)
            return &mods->v[i];
    return NULL;
}

/* Calls init with registrations tagged; undoes them when it fails. */
static warren_status module_init(struct loaded_module *m, const json_t *config,
                                 warren_registry *reg, const char *src, int line, warren_error *err)
{
    json_t *empty = NULL;
    if (!config) {
        config = empty = json_object();
        if (!empty)
            return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    }
    warren_error why;
    warren_error_clear(&why);
    warren__registry_set_module(reg, m->name);
    warren_status st = m->desc->init(reg, config, &why);
    warren__registry_set_module(reg, NULL);
    json_decref(empty);
    if (st == WARREN_OK)
        return WARREN_OK;
    /* Its fini is not called: an init that fails frees what it made. */
    warren__registry_remove_module(reg, m->name);
    char text[sizeof why.text];
    if (why.code != WARREN_OK)
        warren_error_format(&why, text, sizeof text);
    else
        snprintf(text, sizeof text, "%s", warren_strerror(st));
    return warren_error_set_at(err, WARREN_EMODULE, src, line,
                               "module '%s' failed to initialise: %s", m->name, text);
}

static warren_status module_load(struct warren_modules *mods, struct warren_module_conf *mc,
                                 const struct warren_config *cfg, warren_registry *reg,
                                 warren_error *err)
{
    const char *src = cfg->path;
    char file[PATH_MAX];
    warren_error why;
    warren_error_clear(&why);
    if (warren__module_resolve(mc->path, cfg->dir, file, sizeof file, &why) != WARREN_OK)
        return warren_error_set_at(err, WARREN_EMODULE, src, mc->line, "%s", why.text);
    free(mc->resolved);
    if (!(mc->resolved = strdup(file)))
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");

    struct loaded_module m = {.line = mc->line};
    warren_status st = module_open(&m, file, src, mc->line, err);
    if (st == WARREN_OK) {
        const struct loaded_module *other = find_loaded(mods, m.desc->name);
        if (other)
            st = warren_error_set_at(err, WARREN_EMODULE, src, mc->line,
                                     "module '%s' (%s) is already loaded by the entry on "
                                     "line %d",
                                     m.desc->name, file, other->line);
    }
    if (st == WARREN_OK && !(m.name = strdup(m.desc->name)))
        st = warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (st == WARREN_OK)
        st = module_init(&m, mc->config, reg, src, mc->line, err);
    if (st != WARREN_OK) {
        m.desc = NULL; /* not initialised: no fini */
        module_close(NULL, &m);
        return st;
    }
    mods->v[mods->n++] = m;
    return WARREN_OK;
}

warren_status warren__modules_load(struct warren_modules **out, struct warren_config *cfg,
                                   warren_registry *reg, warren_error *err)
{
    *out = NULL;
    struct warren_modules *mods = calloc(1, sizeof *mods);
    if (!mods || (cfg->n_modules && !(mods->v = calloc(cfg->n_modules, sizeof *mods->v)))) {
        free(mods);
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cfg->n_modules; i++) {
        warren_status st = module_load(mods, &cfg->modules[i], cfg, reg, err);
        if (st != WARREN_OK) {
            modules_close(mods, reg);
            free(mods->v);
            free(mods);
            return st;
        }
    }
    *out = mods;
    return WARREN_OK;
}

void warren__modules_unload(struct warren_modules *mods)
{
    if (!mods)
        return;
    modules_close(mods, NULL);
    free(mods->v);
    free(mods);
}
