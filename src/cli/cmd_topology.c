/* `warren topology [--check] [-c FILE] [--url URL]`: declares the topology
 * a host of this config needs (loading its modules to learn the worker
 * names) and prints each object; with --check declares nothing and reports
 * each exchange or queue that is missing or whose arguments differ. */
#include <string.h>
#include <warren/warren.h>
#include "cli.h"
#include "common.h"
#include "registry_internal.h"
#include "topology.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warren topology [--check] [-c CONFIG | --url URL]\n"
                "  declares (idempotently) the exchanges, queues and bindings of the\n"
                "  configuration and its modules' workers, and prints them\n"
                "  --check  declare nothing; report what is missing or differs (exit 1)\n");
}

static void print_object(const char *kind, const char *name, const char *detail, void *user)
{
    (void)user;
    printf("%-8s %-40s %s\n", kind, name, detail);
}

static int report_check(struct warren_conn *conn)
{
    size_t n = 0;
    char *const *problems = warren__conn_check_problems(conn, &n);
    for (size_t i = 0; i < n; i++)
        printf("%s\n", problems[i]);
    if (n == 0)
        printf("topology matches the configuration\n");
    return n ? 1 : 0;
}

int warren__cli_topology(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--check")) {
            check = 1;
            continue;
        }
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren topology: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int rc = cli_load(&ctx);
    warren_registry *reg = NULL;
    struct warren_modules *mods = NULL;
    struct warren_conn *conn = NULL;
    warren_error err;
    warren_error_clear(&err);
    if (rc == 0 && warren_registry_create(&reg) != WARREN_OK)
        rc = 1;
    if (rc == 0 && warren__modules_load(&mods, &ctx.cfg, reg, &err) != WARREN_OK) {
        cli_error("topology", &err);
        rc = 2;
    }
    if (rc == 0)
        rc = cli_connect(&ctx, &conn);
    if (rc == 0) {
        warren__conn_set_check_mode(conn, check);
        if (warren__topology_declare_host(conn, &ctx.cfg, reg, check ? NULL : print_object, NULL,
                                          &err) != WARREN_OK) {
            cli_error("topology", &err);
            rc = 1;
        }
    }
    if (rc == 0 && check)
        rc = report_check(conn);
    warren__conn_close(conn);
    warren__modules_unload(mods);
    warren_registry_destroy(reg);
    cli_free(&ctx);
    return rc;
}
