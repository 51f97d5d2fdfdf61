/* Shared plumbing of the CLI commands (see common.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <warren/log.h>
#include "common.h"
#include "signature.h"

#define DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"

int cli_take_conn_option(struct cli_ctx *ctx, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    int is_config = !strcmp(a, "-c") || !strcmp(a, "--config");
    int is_url = !strcmp(a, "--url");
    if (!is_config && !is_url)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "warren: %s needs a value\n", a);
        return -1;
    }
    (*i)++;
    if (is_config)
        ctx->config_path = argv[*i];
    else
        ctx->url = argv[*i];
    return 1;
}

int cli_load(struct cli_ctx *ctx)
{
    warren_error err;
    warren_error_clear(&err);
    if (!ctx->config_path) {
        if (warren__config_defaults(&ctx->cfg) != WARREN_OK)
            return 1;
        return 0;
    }
    struct warren_config_diag diag = {0};
    warren_status st = warren__config_load(&ctx->cfg, ctx->config_path, &diag, &err);
    for (size_t i = 0; i < diag.n_errors; i++)
        fprintf(stderr, "%s\n", diag.errors[i]);
    if (st != WARREN_OK && diag.n_errors == 0) {
        char buf[1024];
        fprintf(stderr, "%s\n", warren_error_format(&err, buf, sizeof buf));
    }
    warren__config_diag_free(&diag);
    if (st == WARREN_OK)
        st = warren__config_resolve_secret_paths(&ctx->cfg);
    if (st == WARREN_OK)
        warren_log_setup(ctx->cfg.log_level, WARREN_LOG_TEXT, "cli");
    return st == WARREN_OK ? 0 : 2;
}

void cli_free(struct cli_ctx *ctx)
{
    warren__config_free(&ctx->cfg);
}

static char *join(char *const *v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; s && i < n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, v[i]);
    }
    return s;
}

char *cli_urls(const struct cli_ctx *ctx)
{
    if (ctx->url)
        return strdup(ctx->url);
    const char *env = getenv("WARREN_URL");
    if (env && env[0])
        return strdup(env);
    if (ctx->config_path && ctx->cfg.n_urls)
        return join(ctx->cfg.urls, ctx->cfg.n_urls);
    return strdup(DEFAULT_URL);
}

int cli_connect(const struct cli_ctx *ctx, struct warren_conn **out)
{
    char *list = cli_urls(ctx);
    size_t n = 0;
    char **urls = list ? warren__url_list(list, &n) : NULL;
    free(list);
    warren_error err;
    warren_error_clear(&err);
    struct warren_conn_opts co = {ctx->cfg.heartbeat, ctx->cfg.password_file, &ctx->cfg.tls,
                                  "warren cli"};
    warren_status st = urls ? warren__conn_open(out, urls, n, &co, &err)
                            : warren_error_set(&err, WARREN_ENOMEM, "out of memory");
    warren__strv_free(urls);
    if (st != WARREN_OK) {
        cli_error(NULL, &err);
        return st == WARREN_EINVAL ? 2 : 1;
    }
    return 0;
}

void cli_error(const char *cmd, const warren_error *err)
{
    char buf[1024];
    fprintf(stderr, "warren%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "",
            warren_error_format(err, buf, sizeof buf));
}

int cli_parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}
