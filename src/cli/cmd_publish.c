/* `warren publish WORKER [ARGS_JSON|-] [options]`: publishes jobs through
 * the public producer API and prints each confirmed id. With -c, the
 * config's security.signing_key_file signs every job, and
 * broker.password_file and broker.tls apply to the connection. */
#include <stdlib.h>
#include <string.h>
#include <warren/warren.h>
#include "cli.h"
#include "common.h"
#include "job.h"
#include "json_fast.h"
#include "signature.h"

struct publish_args {
    const char *worker;
    const char *args; /* JSON text, "-" for stdin, NULL for {} */
    warren_publish_opts opts;
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: warren publish WORKER [ARGS_JSON|-] [--priority N] [--delay DURATION]\n"
            "                      [--max-attempts N] [--id ID] [-c CONFIG | --url URL]\n"
            "  ARGS_JSON   the job's arguments, a JSON object (default {})\n"
            "  -           read one job's arguments per non-blank line of stdin\n"
            "  -c CONFIG   its broker.urls, broker.password_file and broker.tls, and\n"
            "              security.signing_key_file to sign every job\n");
}

static int parse_option(struct publish_args *pa, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (*i + 1 >= argc) {
        fprintf(stderr, "warren publish: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(a, "--priority")) {
        if (cli_parse_int(v, 0, 9, &n) != 0) {
            fprintf(stderr, "warren publish: --priority must be an integer from 0 to 9\n");
            return -1;
        }
        pa->opts.priority = (int)n;
    } else if (!strcmp(a, "--max-attempts")) {
        if (cli_parse_int(v, 1, 1000000, &n) != 0) {
            fprintf(stderr, "warren publish: --max-attempts must be an integer >= 1\n");
            return -1;
        }
        pa->opts.max_attempts = (int)n;
    } else if (!strcmp(a, "--id")) {
        pa->opts.id = v;
    } else if (!strcmp(a, "--delay")) {
        long long ms;
        char why[128];
        if (warren__parse_duration(v, &ms, why, sizeof why) != 0) {
            fprintf(stderr, "warren publish: --delay: %s\n", why);
            return -1;
        }
        pa->opts.delay_ms = ms;
    } else {
        fprintf(stderr, "warren publish: unknown option '%s'\n", a);
        return -1;
    }
    return 0;
}

static int parse_args(struct publish_args *pa, struct cli_ctx *ctx, int argc, char **argv)
{
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_take_conn_option(ctx, argc, argv, &i);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            if (parse_option(pa, argc, argv, &i) != 0)
                return -1;
        } else if (positional == 0) {
            pa->worker = argv[i];
            positional++;
        } else if (positional == 1) {
            pa->args = argv[i];
            positional++;
        } else {
            fprintf(stderr, "warren publish: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!pa->worker) {
        fprintf(stderr, "warren publish: WORKER is required\n");
        return -1;
    }
    if (!warren_worker_name_valid(pa->worker)) {
        fprintf(stderr, "warren publish: invalid worker name '%s' (expected [A-Za-z0-9_.-]{1,128})\n",
                pa->worker);
        return -1;
    }
    if (pa->args && !strcmp(pa->args, "-") && pa->opts.id) {
        fprintf(stderr, "warren publish: --id cannot be used with '-' (one id per job)\n");
        return -1;
    }
    return 0;
}

static json_t *parse_object(const char *text, const char *where, int line)
{
    /* The fast parser takes the lines it is sure of (most of a batch);
     * jansson the rest, and words any error. */
    json_t *v = warren__json_fast_object(text, strlen(text), WARREN_MAX_NESTING);
    if (v)
        return v;
    json_error_t jerr;
    v = json_loads(text, 0, &jerr);
    if (!v) {
        if (line)
            fprintf(stderr, "%s:%d: %s\n", where, line, jerr.text);
        else
            fprintf(stderr, "warren publish: ARGS_JSON: %s\n", jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        if (line)
            fprintf(stderr, "%s:%d: arguments must be a JSON object\n", where, line);
        else
            fprintf(stderr, "warren publish: ARGS_JSON must be a JSON object\n");
        json_decref(v);
        return NULL;
    }
    return v;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* Reads every job from stdin and checks them all before anything is
 * published: a bad line means nothing goes out. */
static warren_batch_job *read_stdin_jobs(const struct publish_args *pa, size_t *n_out)
{
    warren_batch_job *jobs = NULL;
    size_t n = 0, cap = 0;
    int bad = 0, line_no = 0;
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, stdin) >= 0) {
        line_no++;
        if (blank(line))
            continue;
        json_t *args = parse_object(line, "stdin", line_no);
        if (!args) {
            bad = 1;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            warren_batch_job *grown = realloc(jobs, cap * sizeof *jobs);
            if (!grown) {
                json_decref(args);
                bad = 1;
                break;
            }
            jobs = grown;
        }
        memset(&jobs[n], 0, sizeof jobs[n]);
        jobs[n].worker = pa->worker;
        jobs[n].args = args;
        jobs[n].opts = pa->opts;
        n++;
    }
    free(line);
    if (bad) {
        for (size_t i = 0; i < n; i++)
            json_decref(jobs[i].args);
        free(jobs);
        return NULL;
    }
    *n_out = n;
    return jobs ? jobs : calloc(1, sizeof *jobs);
}

static int publish_batch(warren_producer *p, const struct publish_args *pa)
{
    size_t n = 0;
    warren_batch_job *jobs = read_stdin_jobs(pa, &n);
    if (!jobs)
        return 2;
    warren_error err;
    warren_error_clear(&err);
    size_t confirmed = 0;
    warren_status st = warren_publish_batch(p, jobs, n, &confirmed, &err);
    for (size_t i = 0; i < confirmed; i++)
        printf("%s\n", jobs[i].id);
    for (size_t i = 0; i < n; i++)
        json_decref(jobs[i].args);
    free(jobs);
    if (st != WARREN_OK) {
        cli_error("publish", &err);
        fprintf(stderr, "warren publish: %zu of %zu jobs confirmed\n", confirmed, n);
        return st == WARREN_EINVAL ? 2 : 1;
    }
    return 0;
}

static int publish_one(warren_producer *p, const struct publish_args *pa, json_t *args)
{
    char id[257];
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren_publish(p, pa->worker, args, &pa->opts, id, sizeof id, &err);
    if (st != WARREN_OK) {
        cli_error("publish", &err);
        return st == WARREN_EINVAL ? 2 : 1;
    }
    printf("%s\n", id);
    return 0;
}

/* `ps` shows a process's arguments to every user: once --url is copied,
 * its password is blanked in argv (the copy is what gets used). */
static char *hide_url_password(struct cli_ctx *ctx, int argc, char **argv)
{
    if (!ctx->url)
        return NULL;
    char *copy = strdup(ctx->url);
    if (!copy)
        return NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i] != ctx->url)
            continue;
        char *scheme = strstr(argv[i], "://");
        char *at = strrchr(argv[i], '@');
        char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
        if (colon && at && colon < at)
            memset(colon + 1, 'x', (size_t)(at - colon - 1));
    }
    ctx->url = copy;
    return copy;
}

static void print_warning(const char *text, void *user)
{
    (void)user;
    fprintf(stderr, "%s\n", text);
}

static int create_producer(warren_producer **p, struct cli_ctx *ctx, const char *urls)
{
    const struct warren_config *cfg = &ctx->cfg;
    if (ctx->config_path) {
        if (warren__config_resolve_secret_paths(&ctx->cfg) != WARREN_OK)
            return 1;
        warren__secret_warnings(cfg, print_warning, NULL);
    }
    warren_producer_opts po = {urls, cfg->namespace_, cfg->heartbeat, 0};
    po.signing_key_file = cfg->signing_key_file;
    po.password_file = cfg->password_file;
    po.tls_ca_cert = cfg->tls.ca_cert;
    po.tls_cert = cfg->tls.cert;
    po.tls_key = cfg->tls.key;
    po.tls_no_verify_peer = !cfg->tls.verify_peer;
    po.tls_no_verify_hostname = !cfg->tls.verify_hostname;
    po.events = cfg->events_enabled;
    po.events_transient = !cfg->events_persistent;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren_producer_create(p, &po, &err);
    if (st != WARREN_OK) {
        cli_error("publish", &err);
        return st == WARREN_EINVAL || st == WARREN_ECONFIG ? 2 : 1;
    }
    return 0;
}

int warren__cli_publish(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    struct publish_args pa;
    struct cli_ctx ctx;
    memset(&pa, 0, sizeof pa);
    memset(&ctx, 0, sizeof ctx);
    if (parse_args(&pa, &ctx, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    char *url_copy = hide_url_password(&ctx, argc, argv);
    json_t *args = NULL;
    int from_stdin = pa.args && !strcmp(pa.args, "-");
    if (!from_stdin) {
        args = pa.args ? parse_object(pa.args, NULL, 0) : json_object();
        if (!args) {
            free(url_copy);
            return 2;
        }
    }
    int rc = cli_load(&ctx);
    char *urls = rc == 0 ? cli_urls(&ctx) : NULL;
    warren_producer *p = NULL;
    if (rc == 0)
        rc = create_producer(&p, &ctx, urls);
    if (rc == 0)
        rc = from_stdin ? publish_batch(p, &pa) : publish_one(p, &pa, args);
    warren_producer_destroy(p);
    free(urls);
    free(url_copy);
    json_decref(args);
    cli_free(&ctx);
    return rc;
}
