/* Shared plumbing of the CLI commands: connection options and config. */
#ifndef WARREN_CLI_COMMON_H
#define WARREN_CLI_COMMON_H

#include <stdio.h>
#include <warren/error.h>
#include "config.h"
#include "conn.h"

/* What every broker-facing command accepts: -c FILE and --url URL. */
struct cli_ctx {
    struct warren_config cfg; /* the file's, or defaults */
    const char *config_path;  /* NULL when not given */
    const char *url;          /* --url, or NULL */
};

/* Takes -c/--config FILE and --url URL out of argv at index *i (advancing
 * it). Returns 1 when argv[*i] was one of them, 0 when not, -1 on misuse
 * (missing value; a message was printed). */
int cli_take_conn_option(struct cli_ctx *ctx, int argc, char **argv, int *i);

/* Loads the config (or defaults) after options are parsed. Prints errors
 * as FILE:LINE and returns 2 on failure, 0 on success. */
int cli_load(struct cli_ctx *ctx);
void cli_free(struct cli_ctx *ctx);

/* The URL list to use: --url beats WARREN_URL, which beats the config's
 * broker.urls, which beats the default. New string (comma-separated). */
char *cli_urls(const struct cli_ctx *ctx);

/* Opens a connection per the precedence above. Prints the error and
 * returns 1 on failure, 0 on success. */
int cli_connect(const struct cli_ctx *ctx, struct warren_conn **out);

/* Prints "warren: <text>" for an error. */
void cli_error(const char *cmd, const warren_error *err);

/* Parses a non-negative integer in [lo, hi]; 0 ok, -1 bad. */
int cli_parse_int(const char *text, long lo, long hi, long *out);

#endif
