/* An out-of-tree handler module: one worker, `hello.greet`, args
 * {"name": string}, module config `greeting` (default "hello").
 *
 * Built from the installed library alone, with CMake (CMakeLists.txt:
 * find_package(warren)) or make (Makefile: pkg-config warren). The module
 * links libwarren.so, yet in warrend its warren_* calls bind to the
 * host's own copies, which warrend exports: the dynamic linker looks in
 * the executable first. */
#include <stdio.h>
#include <string.h>
#include <warren/warren.h>

static char greeting[64] = "hello";

static warren_outcome greet(warren_job *job, void *user)
{
    (void)user;
    const char *name = json_string_value(json_object_get(warren_job_args(job), "name"));
    if (name[0] == '\0')
        return warren_job_fail(job, "no one to greet"); /* dead letter at once */
    warren_job_log(job, WARREN_LOG_INFO, "%s, %s (attempt %d)", greeting, name,
                   warren_job_attempt(job));
    return WARREN_JOB_OK;
}

static const char *const greet_keys[] = {"name", NULL};

static warren_status init(warren_registry *reg, const json_t *config, warren_error *err)
{
    json_t *g = json_object_get(config, "greeting");
    if (g && (!json_is_string(g) || json_string_length(g) >= sizeof greeting))
        return warren_error_set(err, WARREN_ECONFIG, "hello: greeting must be a short string");
    snprintf(greeting, sizeof greeting, "%s", g ? json_string_value(g) : "hello");
    warren_worker_def def = {.name = "hello.greet", .handler = greet, .schema = "{s:s}",
                             .schema_keys = greet_keys};
    return warren_registry_add(reg, &def, err);
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1, .name = "hello", .init = init,
};
