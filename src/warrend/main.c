/* warrend: the consumer host. `warrend -c FILE`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <warren/warren.h>
#include "conn.h"
#include "signature.h"
#include "warrend.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warrend -c FILE\n"
                "  -c, --config FILE   configuration file (libconfig syntax)\n"
                "  -h, --help          this help\n"
                "  -V, --version       print the version\n");
}

static int load_config(struct warren_config *cfg, const char *path)
{
    struct warren_config_diag diag = {0};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__config_load(cfg, path, &diag, &err);
    for (size_t i = 0; i < diag.n_errors; i++)
        fprintf(stderr, "%s\n", diag.errors[i]);
    for (size_t i = 0; i < diag.n_warnings; i++)
        fprintf(stderr, "%s\n", diag.warnings[i]);
    if (st != WARREN_OK && diag.n_errors == 0) {
        char buf[1024];
        fprintf(stderr, "%s\n", warren_error_format(&err, buf, sizeof buf));
    }
    warren__config_diag_free(&diag);
    return st == WARREN_OK ? 0 : 2;
}

static void log_start(const struct warren_config *cfg)
{
    for (size_t i = 0; i < cfg->n_urls; i++) {
        char shown[512];
        WARREN_LOG(WARREN_LOG_INFO, "host.broker", "broker %s",
                   warren__url_redact(cfg->urls[i], shown, sizeof shown));
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
            printf("warrend %s\n", warren_version_string());
            return 0;
        } else {
            fprintf(stderr, "warrend: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "warrend: -c FILE is required\n");
        usage(stderr);
        return 2;
    }
    struct warren_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return 1;
    if (load_config(cfg, path) != 0) {
        warren__config_free(cfg);
        free(cfg);
        return 2;
    }
    warren_log_setup(cfg->log_level, cfg->log_format, "supervisor");
    log_start(cfg);
    warren_error serr;
    warren_error_clear(&serr);
    if (warren__security_preflight(cfg, &serr) != WARREN_OK) {
        fprintf(stderr, "warrend: %s\n", serr.text);
        warren__config_free(cfg);
        free(cfg);
        return 2;
    }
    int rc = warrend_preflight(cfg);
    if (rc != 0) {
        warren__config_free(cfg);
        free(cfg);
        return rc;
    }
    return warrend_supervise(cfg);
}
