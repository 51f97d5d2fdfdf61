/* Fuzz target for the config loader: the input is the text of a
 * warren.conf, given to warren__config_load_string().
 *
 * Besides crashes and leaks, it checks what the loader promises: a
 * success leaves a usable config (at least one URL, values inside their
 * documented bounds, every worker's queue declared), a failure says why in
 * err and in diag, and warren__config_free() takes either. Inputs with
 * libconfig's @include are skipped: they name files on this machine
 * (/dev/zero would never end), and the files a config reads are not what
 * is fuzzed here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: broken promise: %s\n", what);
        abort();
    }
}

static void check_loaded(const struct warren_config *cfg)
{
    check(cfg->urls && cfg->n_urls >= 1 && cfg->urls[cfg->n_urls - 1], "at least one URL");
    check(cfg->urls[cfg->n_urls] == NULL, "URL list is NULL-terminated");
    check(cfg->concurrency >= 1 && cfg->concurrency <= 1024, "concurrency in 1..1024");
    check(cfg->prefetch >= 1 && cfg->prefetch <= 65535, "prefetch in 1..65535");
    check(cfg->n_queues >= 1, "at least one queue");
    check(cfg->retry.max_attempts >= 1, "max_attempts >= 1");
    check(cfg->retry.jitter >= 0 && cfg->retry.jitter <= 1, "jitter in [0, 1]");
    check(cfg->retry.multiplier >= 1, "multiplier >= 1");
    check(!cfg->require_signature || cfg->signing_key_file, "require_signature has a key");
    check(!cfg->tls.cert == !cfg->tls.key, "TLS cert and key go together");
    for (size_t i = 0; i < cfg->n_workers; i++) {
        const struct warren_worker_conf *w = &cfg->workers[i];
        check(warren__config_queue(cfg, w->queue) != NULL, "a worker's queue is declared");
        check(warren__config_worker(cfg, w->name) == w, "a listed worker is found");
    }
    const struct warren_worker_conf *other = warren__config_worker(cfg, "not.listed");
    check(other && strcmp(other->name, "not.listed") == 0, "unlisted workers get defaults");
    for (size_t i = 0; i < cfg->n_schedules; i++)
        check(json_is_object(cfg->schedules[i].args), "schedule args are an object");
    for (size_t i = 0; i < cfg->n_modules; i++)
        check(json_is_object(cfg->modules[i].config), "module config is an object");
}

/* libconfig 1.5 (Debian 12) leaks the text of a string token that its
 * parser rejects (no bison %destructor): `"abc"` at the top level, or
 * `a = 1 ""`, leaks the string buffer (strbuf_append, 64 bytes) or the
 * empty string (a 1-byte calloc in libconfig_yylex), once per failed
 * load. Inside libconfig, not ours to fix; LeakSanitizer reads this hook
 * in fuzzing builds and ignores exactly those two allocation sites (not
 * the whole library, which would hide a missing config_destroy). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024 || memmem(data, size, "@include", 8))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct warren_config cfg;
    struct warren_config_diag diag;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__config_load_string(&cfg, text, "fuzz.conf", &diag, &err);
    if (st == WARREN_OK) {
        check(diag.n_errors == 0, "success without errors");
        check_loaded(&cfg);
    } else {
        check(st == WARREN_ECONFIG || st == WARREN_ENOMEM, "failure is ECONFIG or ENOMEM");
        check(err.text[0] != '\0', "a failure says why");
        check(st == WARREN_ENOMEM || diag.n_errors > 0, "a config error is listed");
    }
    for (size_t i = 0; i < diag.n_errors; i++)
        check(strncmp(diag.errors[i], "fuzz.conf:", 10) == 0, "errors start with FILE:");
    for (size_t i = 0; i < diag.n_warnings; i++)
        check(strncmp(diag.warnings[i], "fuzz.conf:", 10) == 0, "warnings start with FILE:");
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);
    free(text);
    return 0;
}
