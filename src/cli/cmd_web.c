/* `warren web [-c FILE] [--url URL] [--listen HOST:PORT] [--static DIR]`:
 * the history consumer and web page. See src/web/web.c and docs/web.md. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "web.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warren web [-c CONFIG] [--url URL] [--listen HOST:PORT] [--static DIR]\n"
                "  consumes <ns>.events through the durable queue <ns>.history into the\n"
                "  history database (web.db) and serves the page and JSON API on web.listen\n");
}

int warren__cli_web(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    struct web_opts o = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            o.listen = argv[++i];
        } else if (!strcmp(argv[i], "--static") && i + 1 < argc) {
            o.static_dir = argv[++i];
        } else {
            fprintf(stderr, "warren web: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int rc = cli_load(&ctx);
    if (rc == 0)
        rc = warren__web_run(&ctx, &o);
    cli_free(&ctx);
    return rc;
}
