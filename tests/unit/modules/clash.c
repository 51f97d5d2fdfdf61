/* A module whose second worker is diag's: loaded beside diag, one of the
 * two must be refused. Its init creates the file named by the config's
 * "marker" and its fini removes it, so a test can see that a module was
 * finalised when a later one failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <warren/module.h>

static char *marker;

static warren_outcome clash_ok(warren_job *job, void *user)
{
    (void)job;
    (void)user;
    return WARREN_JOB_OK;
}

static void clash_fini(void)
{
    if (marker)
        unlink(marker);
    free(marker);
    marker = NULL;
}

static warren_status clash_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    const char *path = json_string_value(json_object_get(config, "marker"));
    if (path) {
        marker = strdup(path);
        FILE *fp = fopen(path, "w");
        if (fp)
            fclose(fp);
    }
    static const warren_worker_def defs[] = {
        {.name = "clash.ok", .handler = clash_ok},
        {.name = "diag.echo", .handler = clash_ok},
    };
    for (size_t i = 0; i < 2; i++) {
        warren_status st = warren_registry_add(reg, &defs[i], err);
        if (st != WARREN_OK) {
            clash_fini(); /* a failed init cleans up after itself */
            return st;
        }
    }
    return WARREN_OK;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1,
    .name = "clash",
    .init = clash_init,
    .fini = clash_fini,
};
