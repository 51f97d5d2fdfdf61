/* Unit tests of the module loader (loader.c): path resolution, loading the
 * real diag module, and every refusal with its FILE:LINE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/warren.h>
#include "config.h"
#include "registry_internal.h"

#ifndef WARREN_TEST_MODULE_DIR
#error "WARREN_TEST_MODULE_DIR must name the folder of the test modules"
#endif

#define CONF "/etc/warren/test.conf"

struct fixture {
    char dir[64];
    char *saved_env;
    struct warren_config cfg;
    struct warren_module_conf mods[4];
    warren_registry *reg;
};

static void touch(const char *path)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not really a shared object\n", fp);
    fclose(fp);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/warren-loader-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *env = getenv("WARREN_MODULE_DIR");
    f->saved_env = env ? strdup(env) : NULL;
    /* Only the fields the loader reads; the rest stays zero. */
    f->cfg.path = CONF;
    f->cfg.dir = "/etc/warren";
    f->cfg.modules = f->mods;
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < 4; i++) {
        free(f->mods[i].resolved);
        json_decref(f->mods[i].config);
    }
    warren_registry_destroy(f->reg);
    if (f->saved_env)
        setenv("WARREN_MODULE_DIR", f->saved_env, 1);
    else
        unsetenv("WARREN_MODULE_DIR");
    free(f->saved_env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Adds a `modules` entry: path, config as JSON text (or NULL), line. */
static void entry(struct fixture *f, const char *path, const char *config, int line)
{
    struct warren_module_conf *m = &f->mods[f->cfg.n_modules++];
    m->path = (char *)path;
    m->config = config ? json_loads(config, 0, NULL) : NULL;
    m->line = line;
}

static warren_status load(struct fixture *f, struct warren_modules **mods, warren_error *err)
{
    warren_error_clear(err);
    return warren__modules_load(mods, &f->cfg, f->reg, err);
}

static const char *formatted(const warren_error *err)
{
    static char buf[1024];
    return warren_error_format(err, buf, sizeof buf);
}

/* ---- resolution ---- */

static void test_resolve_bare_name_in_env_dir(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], out[PATH_MAX], list[PATH_MAX];
    snprintf(path, sizeof path, "%s/sub", f->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/sub/mine.so", f->dir);
    touch(path);
    snprintf(list, sizeof list, "%s/empty:%s/sub", f->dir, f->dir);
    setenv("WARREN_MODULE_DIR", list, 1);
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__module_resolve("mine", "/nowhere", out, sizeof out, &err), WARREN_OK);
    assert_string_equal(out, path);
    assert_int_equal(warren__module_resolve("mine.so", NULL, out, sizeof out, &err), WARREN_OK);
    assert_string_equal(out, path);
}

static void test_resolve_bare_name_not_found_lists_places(void **state)
{
    struct fixture *f = *state;
    setenv("WARREN_MODULE_DIR", f->dir, 1);
    char out[PATH_MAX], expect[PATH_MAX];
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__module_resolve("ghost", NULL, out, sizeof out, &err),
                     WARREN_ENOTFOUND);
    assert_non_null(strstr(err.text, "module 'ghost' not found (tried "));
    snprintf(expect, sizeof expect, "%s/ghost.so", f->dir);
    assert_non_null(strstr(err.text, expect));
    assert_non_null(strstr(err.text, "/warren/ghost.so")); /* <libdir>/warren */

    unsetenv("WARREN_MODULE_DIR");
    warren_error_clear(&err);
    assert_int_equal(warren__module_resolve("ghost", NULL, out, sizeof out, &err),
                     WARREN_ENOTFOUND);
    assert_non_null(strstr(err.text, "$WARREN_MODULE_DIR (unset)"));
}

static void test_resolve_path_relative_to_config_dir(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], out[PATH_MAX];
    snprintf(path, sizeof path, "%s/handlers", f->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/handlers/x.so", f->dir);
    touch(path);
    /* Same name in the env folder must not win over a path with '/'. */
    setenv("WARREN_MODULE_DIR", "/nonexistent", 1);
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__module_resolve("handlers/x.so", f->dir, out, sizeof out, &err),
                     WARREN_OK);
    assert_string_equal(out, path);
    assert_int_equal(warren__module_resolve("handlers/x", f->dir, out, sizeof out, &err),
                     WARREN_OK);
    assert_string_equal(out, path);
    assert_int_equal(warren__module_resolve("./handlers/x.so", f->dir, out, sizeof out, &err),
                     WARREN_OK);
    /* An absolute path ignores the config folder. */
    assert_int_equal(warren__module_resolve(path, "/elsewhere", out, sizeof out, &err), WARREN_OK);
    assert_string_equal(out, path);

    assert_int_equal(warren__module_resolve("handlers/y.so", f->dir, out, sizeof out, &err),
                     WARREN_ENOTFOUND);
    assert_non_null(strstr(err.text, "handlers/y.so"));
    assert_non_null(strstr(err.text, f->dir));
    warren_error_clear(&err);
    assert_int_equal(warren__module_resolve("", f->dir, out, sizeof out, &err), WARREN_ENOTFOUND);
}

/* ---- loading ---- */

static void test_load_diag(void **state)
{
    struct fixture *f = *state;
    char record[PATH_MAX], config[PATH_MAX + 32];
    snprintf(record, sizeof record, "%s/record.jsonl", f->dir);
    snprintf(config, sizeof config, "{\"record_file\": \"%s\"}", record);
    entry(f, "diag", config, 3);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_OK);
    assert_non_null(mods);
    assert_non_null(f->mods[0].resolved);
    assert_non_null(strstr(f->mods[0].resolved, "/diag.so"));

    assert_int_equal(warren_registry_count(f->reg), 7); /* diag.echo, noop, sleep, fail, crash, snooze, record */
    const struct warren_worker_entry *e = warren__registry_find(f->reg, "diag.record");
    assert_non_null(e);
    assert_string_equal(e->module, "diag");

    json_t *args = json_pack("{s:s}", "hello", "loader");
    warren_handle_result res;
    warren_handle_opts opts = {.id = "loaded-1"};
    assert_int_equal(warren_handle(f->reg, "diag.noop", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    assert_int_equal(warren_handle(f->reg, "diag.record", args, &opts, &res, &err), WARREN_OK);
    assert_int_equal(res.outcome, WARREN_JOB_OK);
    json_decref(args);
    warren__modules_unload(mods);

    FILE *fp = fopen(record, "r");
    assert_non_null(fp);
    char line[512];
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_non_null(strstr(line, "\"id\":\"loaded-1\""));
    assert_non_null(strstr(line, "\"args\":{\"hello\":\"loader\"}"));
}

static void test_load_nothing(void **state)
{
    struct fixture *f = *state;
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_OK);
    warren__modules_unload(mods);
    warren__modules_unload(NULL);
}

static void test_wrong_abi_refused_with_both_versions(void **state)
{
    struct fixture *f = *state;
    entry(f, "diag", NULL, 2);
    entry(f, WARREN_TEST_MODULE_DIR "/bad_abi.so", NULL, 7);
    struct warren_modules *mods = (void *)1;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EABI);
    assert_null(mods);
    assert_string_equal(err.source, CONF);
    assert_int_equal(err.line, 7);
    assert_string_equal(formatted(&err),
                        CONF ":7: module '" WARREN_TEST_MODULE_DIR "/bad_abi.so' was built "
                             "for ABI version 999, this host needs 1");
    /* diag, loaded first, was unloaded and its workers are gone. */
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_failing_init_reported_at_its_line(void **state)
{
    struct fixture *f = *state;
    entry(f, "diag", "{\"record_file\": 5}", 12);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_null(mods);
    assert_string_equal(formatted(&err), CONF ":12: module 'diag' failed to initialise: "
                                              "diag: record_file must be a string");
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_duplicate_worker_unloads_the_first(void **state)
{
    struct fixture *f = *state;
    char marker[PATH_MAX], config[PATH_MAX + 32];
    snprintf(marker, sizeof marker, "%s/clash-alive", f->dir);
    snprintf(config, sizeof config, "{\"marker\": \"%s\"}", marker);
    entry(f, WARREN_TEST_MODULE_DIR "/clash.so", config, 4);
    entry(f, "diag", NULL, 5);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_null(mods);
    assert_string_equal(formatted(&err),
                        CONF ":5: module 'diag' failed to initialise: worker 'diag.echo' is "
                             "already registered by module 'clash'");
    /* clash was finalised (its fini removed the marker) and its workers,
     * and diag's partial registration, are gone. */
    assert_int_equal(access(marker, F_OK), -1);
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_duplicate_worker_partial_init_undone(void **state)
{
    struct fixture *f = *state;
    entry(f, "diag", NULL, 1);
    entry(f, WARREN_TEST_MODULE_DIR "/clash.so", NULL, 2);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.text, "module 'clash' failed to initialise: worker "
                                     "'diag.echo' is already registered by module 'diag'"));
    assert_false(warren_registry_has(f->reg, "clash.ok"));
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_same_module_twice_refused(void **state)
{
    struct fixture *f = *state;
    entry(f, "diag", NULL, 8);
    entry(f, "diag.so", NULL, 9);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_int_equal(err.line, 9);
    assert_non_null(strstr(err.text, "module 'diag'"));
    assert_non_null(strstr(err.text, "already loaded by the entry on line 8"));
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_not_a_module(void **state)
{
    struct fixture *f = *state;
    entry(f, WARREN_TEST_MODULE_DIR "/nosym.so", NULL, 3);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_int_equal(err.line, 3);
    assert_non_null(strstr(err.text, "is not a warren module: it has no 'warren_module'"));

    char junk[PATH_MAX];
    snprintf(junk, sizeof junk, "%s/junk.so", f->dir);
    touch(junk);
    free(f->mods[0].resolved);
    f->mods[0].resolved = NULL;
    f->cfg.n_modules = 0;
    entry(f, "junk.so", NULL, 6);
    f->cfg.dir = f->dir;
    /* A bare name is not looked up in the config folder... */
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_non_null(strstr(err.text, "module 'junk.so' not found"));
    /* ...but "./junk.so" is, and it is no shared object. */
    f->mods[0].path = "./junk.so";
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_int_equal(err.line, 6);
    assert_non_null(strstr(err.text, "cannot load module"));
    assert_string_equal(f->mods[0].resolved, junk);
}

static void test_missing_module_reported_at_its_line(void **state)
{
    struct fixture *f = *state;
    entry(f, "no_such_module", NULL, 21);
    struct warren_modules *mods = NULL;
    warren_error err;
    assert_int_equal(load(f, &mods, &err), WARREN_EMODULE);
    assert_string_equal(err.source, CONF);
    assert_int_equal(err.line, 21);
    assert_non_null(strstr(err.text, "module 'no_such_module' not found (tried "));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_resolve_bare_name_in_env_dir),
        T(test_resolve_bare_name_not_found_lists_places),
        T(test_resolve_path_relative_to_config_dir),
        T(test_load_diag),
        T(test_load_nothing),
        T(test_wrong_abi_refused_with_both_versions),
        T(test_failing_init_reported_at_its_line),
        T(test_duplicate_worker_unloads_the_first),
        T(test_duplicate_worker_partial_init_undone),
        T(test_same_module_twice_refused),
        T(test_not_a_module),
        T(test_missing_module_reported_at_its_line),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
