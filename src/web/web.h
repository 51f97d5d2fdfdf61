/* `warren web`: the history consumer and its HTTP server (JSON API and the
 * static page under web/). See docs/web.md. */
#ifndef WARREN_WEB_H
#define WARREN_WEB_H

#include <stddef.h>
#include "config.h"

struct cli_ctx;

/* The history database path: web.db, relative to the config file's
 * folder (the current folder without a config file). */
const char *warren__web_db_path(const struct warren_config *cfg, char *buf, size_t size);

struct web_opts {
    const char *listen;     /* NULL: web.listen */
    const char *static_dir; /* NULL: WARREN_WEB_DIR, the source tree's web/, the installed one */
    int batch;              /* events per transaction; 0 = 500 */
};

/* Runs until SIGINT/SIGTERM. Returns the exit status (0, 1 runtime, 2 config). */
int warren__web_run(struct cli_ctx *ctx, const struct web_opts *o);

#endif
