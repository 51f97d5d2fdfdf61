/* `warren new-handler NAME [--dir DIR]`: writes a ready handler module,
 * DIR/NAME/{NAME.c, test_NAME.c, CMakeLists.txt} (DIR is "handlers" by
 * default), that builds, loads and passes its test with no edit.
 *
 * DESIGN: the three files are templates below, as string literals (nothing
 * to install or find beside the binary), with "@NAME@" replaced by the
 * name. They are written into a hidden temporary folder beside the target
 * and renamed into place at the end without replacing anything, so a
 * failure or a race with another writer leaves no half-made module. A
 * name that is no C identifier could not name the module's functions,
 * hence the narrower rule than a worker name's: [a-z][a-z0-9_]{0,63}. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

#define PLACEHOLDER "@NAME@"
#define NAME_MAX_LEN 64

/* ---- the templates (a test builds and runs what they expand to) ---- */

static const char source_template[] =
    "/* The @NAME@ module: one worker, `@NAME@`, with args {\"input\": string,\n"
    " * \"size\"?: integer} and module config `max_size` (default 1000).\n"
    " * Written by `warren new-handler @NAME@`: put the real work where the\n"
    " * comment says, keep the three outcomes, and see docs/handlers.md. */\n"
    "#include <string.h>\n"
    "#include <warren/warren.h>\n"
    "\n"
    "/* Read once, in init. A worker process loads its modules after fork, so\n"
    " * plain statics are per process and need no lock. */\n"
    "static struct {\n"
    "    json_int_t max_size;\n"
    "} settings;\n"
    "\n"
    "static warren_outcome @NAME@_run(warren_job *job, void *user)\n"
    "{\n"
    "    (void)user; /* the .user pointer of the worker definition below */\n"
    "    /* The args passed the schema before this ran: the types are right. */\n"
    "    json_t *args = warren_job_args(job);\n"
    "    const char *input = json_string_value(json_object_get(args, \"input\"));\n"
    "    json_t *size_arg = json_object_get(args, \"size\");\n"
    "    json_int_t size = size_arg ? json_integer_value(size_arg) : 1;\n"
    "\n"
    "    /* Permanent failure: a retry cannot fix bad input, so the job goes to\n"
    "     * the dead-letter queue at once, with this text as x-warren-error. */\n"
    "    if (size < 1 || size > settings.max_size)\n"
    "        return warren_job_fail(job, \"size %lld is outside 1..%lld\", (long long)size,\n"
    "                               (long long)settings.max_size);\n"
    "\n"
    "    /* Transient failure: what may work later (a service down, a lock held)\n"
    "     * is retried with backoff until max_attempts, then dead-lettered.\n"
    "     * Here the input \"busy\" stands for it. */\n"
    "    if (strcmp(input, \"busy\") == 0)\n"
    "        return warren_job_retry(job, \"%s is busy (attempt %d of %d)\", input,\n"
    "                                warren_job_attempt(job), warren_job_max_attempts(job));\n"
    "\n"
    "    /* The real work goes here. Delivery is at least once, so a job may run\n"
    "     * again after a crash: make the work idempotent, e.g. keyed on\n"
    "     * warren_job_id(job), which every retry of the job keeps. */\n"
    "    warren_job_log(job, WARREN_LOG_INFO, \"@NAME@ done: %s at size %lld\", input, (long long)size);\n"
    "    return WARREN_JOB_OK; /* the job is acknowledged */\n"
    "}\n"
    "\n"
    "static const char *const @NAME@_keys[] = {\"input\", \"size\", NULL};\n"
    "\n"
    "static warren_status @NAME@_init(warren_registry *reg, const json_t *config, warren_error *err)\n"
    "{\n"
    "    json_t *max = json_object_get(config, \"max_size\");\n"
    "    if (max && (!json_is_integer(max) || json_integer_value(max) < 1))\n"
    "        return warren_error_set(err, WARREN_ECONFIG, \"@NAME@: max_size must be a positive integer\");\n"
    "    settings.max_size = max ? json_integer_value(max) : 1000;\n"
    "    /* The schema is a json_unpack format with its keys, in order: jobs\n"
    "     * whose args do not fit are dead-lettered as invalid_args unrun. */\n"
    "    warren_worker_def def = {.name = \"@NAME@\", .handler = @NAME@_run,\n"
    "                             .schema = \"{s:s, s?:I}\", .schema_keys = @NAME@_keys};\n"
    "    return warren_registry_add(reg, &def, err);\n"
    "}\n"
    "\n"
    "WARREN_MODULE_EXPORT const struct warren_module warren_module = {\n"
    "    WARREN_MODULE_V1, .name = \"@NAME@\", .init = @NAME@_init,\n"
    "};\n";

static const char cmake_template[] =
    "# The @NAME@ module, written by `warren new-handler @NAME@`. Every folder\n"
    "# under handlers/ with a CMakeLists.txt is built: nothing else to edit.\n"
    "warren_module(@NAME@ SOURCES @NAME@.c)\n"
    "\n"
    "if(WARREN_BUILD_TESTS)\n"
    "  warren_test(unit_module_@NAME@ SOURCES test_@NAME@.c @NAME@.c LABELS unit TIMEOUT 60)\n"
    "endif()\n";

static const char test_template[] =
    "/* Unit tests of the @NAME@ module: each runs the worker in process, no\n"
    " * broker, and looks at its outcome, error text and log. Run them with\n"
    " * `ctest --test-dir build -R @NAME@`. */\n"
    "#include <setjmp.h>\n"
    "#include <stdarg.h>\n"
    "#include <stddef.h>\n"
    "#include <cmocka.h>\n"
    "\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <warren/warren.h>\n"
    "\n"
    "extern const struct warren_module warren_module; /* @NAME@.c's descriptor */\n"
    "\n"
    "static warren_registry *reg;\n"
    "static warren_handle_result res; /* outcome and error text of the last run */\n"
    "static char *logged;             /* what the last run logged, \"LEVEL: message\\n\" lines */\n"
    "\n"
    "/* A registry holding the module, initialised from `config_json` as a host\n"
    " * would from the module's config group. */\n"
    "static warren_status load(const char *config_json)\n"
    "{\n"
    "    json_t *config = json_loads(config_json, 0, NULL);\n"
    "    warren_status st = warren_registry_add_module(reg, &warren_module, config, NULL);\n"
    "    json_decref(config);\n"
    "    return st;\n"
    "}\n"
    "\n"
    "static int setup(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    return warren_registry_create(&reg) != WARREN_OK || load(\"{\\\"max_size\\\": 100}\") != WARREN_OK;\n"
    "}\n"
    "\n"
    "static int teardown(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    free(logged);\n"
    "    logged = NULL;\n"
    "    warren_registry_destroy(reg);\n"
    "    return 0;\n"
    "}\n"
    "\n"
    "/* Runs one job with `args_json` as the host would on delivery `attempt`\n"
    " * (of at most 3) and returns its outcome. */\n"
    "static warren_outcome run(const char *args_json, int attempt)\n"
    "{\n"
    "    json_t *args = json_loads(args_json, 0, NULL);\n"
    "    assert_non_null(args);\n"
    "    warren_handle_opts opts = {.id = \"job-1\", .attempt = attempt, .max_attempts = 3};\n"
    "    free(logged);\n"
    "    assert_int_equal(warren_handle_capture(reg, \"@NAME@\", args, &opts, &res, &logged, NULL),\n"
    "                     WARREN_OK);\n"
    "    json_decref(args);\n"
    "    return res.outcome;\n"
    "}\n"
    "\n"
    "static void test_success(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"a.txt\\\", \\\"size\\\": 10}\", 1), WARREN_JOB_OK);\n"
    "    assert_string_equal(res.error, \"\");\n"
    "    assert_string_equal(logged, \"info: @NAME@ done: a.txt at size 10\\n\");\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"b.txt\\\"}\", 1), WARREN_JOB_OK); /* size defaults to 1 */\n"
    "}\n"
    "\n"
    "static void test_busy_is_transient(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"busy\\\"}\", 2), WARREN_JOB_RETRY);\n"
    "    assert_string_equal(res.error, \"busy is busy (attempt 2 of 3)\");\n"
    "}\n"
    "\n"
    "static void test_size_out_of_range_is_permanent(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"a.txt\\\", \\\"size\\\": 101}\", 1), WARREN_JOB_FAIL);\n"
    "    assert_string_equal(res.error, \"size 101 is outside 1..100\");\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"a.txt\\\", \\\"size\\\": 0}\", 1), WARREN_JOB_FAIL);\n"
    "}\n"
    "\n"
    "static void test_invalid_args_are_refused_unrun(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    assert_int_equal(run(\"{\\\"size\\\": 3}\", 1), WARREN_JOB_FAIL);\n"
    "    assert_string_equal(res.error, \"invalid_args: Object item not found: input\");\n"
    "    assert_int_equal(run(\"{\\\"input\\\": \\\"a.txt\\\", \\\"size\\\": \\\"big\\\"}\", 1), WARREN_JOB_FAIL);\n"
    "    assert_non_null(strstr(res.error, \"invalid_args: \"));\n"
    "    assert_string_equal(logged, \"\");\n"
    "}\n"
    "\n"
    "static void test_bad_config_is_refused(void **state)\n"
    "{\n"
    "    (void)state;\n"
    "    warren_registry_destroy(reg);\n"
    "    assert_int_equal(warren_registry_create(&reg), WARREN_OK);\n"
    "    assert_int_equal(load(\"{\\\"max_size\\\": 0}\"), WARREN_ECONFIG);\n"
    "    assert_int_equal(warren_registry_count(reg), 0);\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    const struct CMUnitTest tests[] = {\n"
    "        cmocka_unit_test_setup_teardown(test_success, setup, teardown),\n"
    "        cmocka_unit_test_setup_teardown(test_busy_is_transient, setup, teardown),\n"
    "        cmocka_unit_test_setup_teardown(test_size_out_of_range_is_permanent, setup, teardown),\n"
    "        cmocka_unit_test_setup_teardown(test_invalid_args_are_refused_unrun, setup, teardown),\n"
    "        cmocka_unit_test_setup_teardown(test_bad_config_is_refused, setup, teardown),\n"
    "    };\n"
    "    return cmocka_run_group_tests(tests, NULL, NULL);\n"
    "}\n";

static const struct {
    const char *pattern; /* file name, with PLACEHOLDER */
    const char *text;
} files[] = {
    {PLACEHOLDER ".c", source_template},
    {"test_" PLACEHOLDER ".c", test_template},
    {"CMakeLists.txt", cmake_template},
};

#define N_FILES (sizeof files / sizeof files[0])

static void usage(FILE *to)
{
    fprintf(to, "usage: warren new-handler NAME [--dir DIR]\n\n"
                "Writes a handler module with one worker named NAME into DIR/NAME\n"
                "(DIR defaults to \"handlers\", the source tree's module folder): the\n"
                "source, its CMakeLists.txt and a unit test. NAME must match\n"
                "[a-z][a-z0-9_]{0,63}. Nothing is written when DIR/NAME exists.\n"
                "Exit status: 0 written, 1 I/O error, 2 bad name, existing module or misuse.\n");
}

static int name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len < 1 || len > NAME_MAX_LEN || name[0] < 'a' || name[0] > 'z')
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* The template with every PLACEHOLDER replaced by name (new string). */
static char *expand(const char *tpl, const char *name)
{
    size_t n = 0, plen = strlen(PLACEHOLDER), nlen = strlen(name);
    for (const char *p = tpl; (p = strstr(p, PLACEHOLDER)); p += plen)
        n++;
    char *out = malloc(strlen(tpl) + n * nlen + 1);
    if (!out)
        return NULL;
    char *w = out;
    for (const char *p = tpl, *hit; *p; p = hit + plen) {
        hit = strstr(p, PLACEHOLDER);
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(w, p, keep);
        w += keep;
        if (!hit)
            break;
        memcpy(w, name, nlen);
        w += nlen;
    }
    *w = '\0';
    return out;
}

/* Writes dir/file (both expanded); 0, or -1 with errno. */
static int write_file(const char *dir, const char *pattern, const char *tpl, const char *name)
{
    char *file = expand(pattern, name), *text = expand(tpl, name);
    char path[4096];
    int rc = -1;
    if (file && text && snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path) {
        FILE *fp = fopen(path, "wx");
        if (fp) {
            size_t len = strlen(text);
            int ok = fwrite(text, 1, len, fp) == len;
            int saved = errno;
            rc = fclose(fp) == 0 && ok ? 0 : -1;
            if (!ok)
                errno = saved;
        }
    } else if (file && text) {
        errno = ENAMETOOLONG;
    }
    free(file);
    free(text);
    return rc;
}

/* Removes what write_file may have left in the temporary folder. */
static void remove_tmp(const char *dir, const char *name)
{
    for (size_t i = 0; i < N_FILES; i++) {
        char *file = expand(files[i].pattern, name);
        char path[4096];
        if (file && snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path)
            unlink(path);
        free(file);
    }
    rmdir(dir);
}

/* Checks DIR and DIR/NAME; 0 ok, else the exit status (a message printed). */
static int check_target(const char *dir, const char *name, const char *target)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "warren new-handler: no folder '%s'%s: run this in the warren source tree "
                "or name the module folder with --dir\n",
                dir, strcmp(dir, "handlers") == 0 ? " here" : "");
        return 2;
    }
    if (lstat(target, &st) == 0) {
        fprintf(stderr,
                "warren new-handler: '%s' already exists: a module named '%s' is there; pick "
                "another name or remove it first\n",
                target, name);
        return 2;
    }
    if (errno != ENOENT) {
        fprintf(stderr, "warren new-handler: cannot check '%s': %s\n", target, strerror(errno));
        return 1;
    }
    return 0;
}

/* Writes the module into a temporary folder beside target, then renames
 * it into place (never over something that appeared meanwhile). */
static int write_module(const char *dir, const char *name, const char *target)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.new-XXXXXX", dir, name) >= (int)sizeof tmp) {
        fprintf(stderr, "warren new-handler: path too long: %s\n", dir);
        return 1;
    }
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "warren new-handler: cannot create a folder in '%s': %s\n", dir,
                strerror(errno));
        return 1;
    }
    chmod(tmp, 0755); /* mkdtemp makes it 0700; a module folder is not private */
    for (size_t i = 0; i < N_FILES; i++) {
        if (write_file(tmp, files[i].pattern, files[i].text, name) != 0) {
            fprintf(stderr, "warren new-handler: cannot write in '%s': %s\n", tmp,
                    strerror(errno));
            remove_tmp(tmp, name);
            return 1;
        }
    }
    int moved = renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE);
    struct stat st;
    if (moved != 0 && (errno == EINVAL || errno == ENOSYS)) {
        /* A file system without RENAME_NOREPLACE: rename() would replace
         * an empty folder made meanwhile, so look once more first. */
        moved = lstat(target, &st) == 0 ? (errno = EEXIST, -1) : rename(tmp, target);
    }
    if (moved != 0) {
        int e = errno;
        remove_tmp(tmp, name);
        fprintf(stderr, "warren new-handler: cannot create '%s': %s\n", target, strerror(e));
        return e == EEXIST || e == ENOTEMPTY ? 2 : 1;
    }
    return 0;
}

static void print_next_steps(const char *dir, const char *name, const char *target)
{
    printf("created %s/%s.c\ncreated %s/test_%s.c\ncreated %s/CMakeLists.txt\n\n", target, name,
           target, name, target);
    /* The source tree's handlers/CMakeLists.txt builds every folder in it;
     * a folder without one needs its own add_subdirectory(). */
    char list[4096];
    struct stat st;
    if (snprintf(list, sizeof list, "%s/CMakeLists.txt", dir) < (int)sizeof list &&
        stat(list, &st) == 0)
        printf("Build it and run its test (%s/ builds every module folder in it):\n", dir);
    else
        printf("Add `add_subdirectory(%s)` to the CMake project that includes\n"
               "cmake/WarrenHelpers.cmake, then build it and run its test:\n",
               target);
    printf("    cmake -S . -B build && cmake --build build -j\n"
           "    ctest --test-dir build -R %s --output-on-failure\n\n"
           "Load it in a host: add this to the config (or the { ... } entry to its\n"
           "modules list), start `warrend -c FILE` or send a running one SIGHUP:\n"
           "    modules = ( { path = \"%s\"; config = { max_size = 1000; }; } );\n\n"
           "Then publish a job:\n"
           "    build/src/warren publish %s '{\"input\": \"photo.jpg\", \"size\": 10}'\n",
           name, name, name);
}

int warren__cli_new_handler(int argc, char **argv)
{
    const char *name = NULL, *dir = "handlers";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strncmp(argv[i], "--dir=", 6)) {
            dir = argv[i] + 6;
        } else if (argv[i][0] == '-' || name) {
            fprintf(stderr, "warren new-handler: %s '%s'\n",
                    argv[i][0] == '-' ? "unknown option (or --dir without a value)"
                                      : "one NAME only, got also",
                    argv[i]);
            usage(stderr);
            return 2;
        } else {
            name = argv[i];
        }
    }
    if (!name) {
        fprintf(stderr, "warren new-handler: NAME is missing\n");
        usage(stderr);
        return 2;
    }
    if (!name_valid(name)) {
        fprintf(stderr,
                "warren new-handler: invalid name '%.80s': it names the module, its worker and "
                "its C functions, so it must match [a-z][a-z0-9_]{0,63}\n",
                name);
        return 2;
    }
    if (!dir[0])
        dir = ".";
    char target[4096];
    if (snprintf(target, sizeof target, "%s/%s", dir, name) >= (int)sizeof target) {
        fprintf(stderr, "warren new-handler: path too long: %s\n", dir);
        return 2;
    }
    int rc = check_target(dir, name, target);
    if (rc == 0)
        rc = write_module(dir, name, target);
    if (rc == 0)
        print_next_steps(dir, name, target);
    return rc;
}
