/* `warren config check FILE`: loads a configuration the way warrend does
 * and prints every problem as FILE:LINE, errors first, then warnings.
 * Modules are not loaded here: the host checks them when it starts. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "config.h"
#include "signature.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warren config check FILE\n\n"
                "Validates FILE and prints each problem as FILE:LINE: message.\n"
                "Exit status: 0 valid (warnings alone included), 2 errors or misuse.\n");
}

static int is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void print_line(const char *text, void *user)
{
    (void)user;
    fprintf(stderr, "%s\n", text);
}

/* Secrets others can read, and a signing key the host could not load.
 * Both are warnings: the files may exist only where the host runs. */
static void check_secrets(const struct warren_config *cfg)
{
    char path[4096];
    struct warren_sig_key *key = NULL;
    warren_error err;

    warren__secret_warnings(cfg, print_line, NULL);
    if (!cfg->signing_key_file ||
        !warren__config_path(cfg, cfg->signing_key_file, path, sizeof path))
        return;
    warren_error_clear(&err);
    if (warren__sig_key_load(&key, path, &err) != WARREN_OK)
        fprintf(stderr, "%s: warning: security.signing_key_file: %s (warrend will not start)\n",
                cfg->path, err.text);
    warren__sig_key_free(key);
}

static int check(const char *path)
{
    struct warren_config cfg;
    struct warren_config_diag diag;
    warren_error err;
    warren_status st;
    char text[1024];

    warren_error_clear(&err);
    st = warren__config_load(&cfg, path, &diag, &err);
    for (size_t i = 0; i < diag.n_errors; i++)
        fprintf(stderr, "%s\n", diag.errors[i]);
    for (size_t i = 0; i < diag.n_warnings; i++)
        fprintf(stderr, "%s\n", diag.warnings[i]);
    if (st == WARREN_OK)
        check_secrets(&cfg);
    /* Out of memory leaves no notes: say so rather than exit silently. */
    if (st != WARREN_OK && diag.n_errors == 0)
        fprintf(stderr, "warren: %s\n", warren_error_format(&err, text, sizeof text));
    if (st == WARREN_OK)
        printf("%s: OK\n", path);
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);
    if (st == WARREN_OK)
        return 0;
    return st == WARREN_ECONFIG ? 2 : 1;
}

int warren__cli_config(int argc, char **argv)
{
    if (argc >= 2 && is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "warren config: unknown subcommand '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (argc == 3 && is_help(argv[2])) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || (argv[2][0] == '-' && argv[2][1] != '\0')) {
        if (argc > 3)
            fprintf(stderr, "warren config check: one FILE only\n");
        else if (argc == 3)
            fprintf(stderr, "warren config check: unknown option '%s'\n", argv[2]);
        else
            fprintf(stderr, "warren config check: FILE is missing\n");
        usage(stderr);
        return 2;
    }
    return check(argv[2]);
}
