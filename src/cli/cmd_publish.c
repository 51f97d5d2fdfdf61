/* `warren publish WORKER [ARGS_JSON|-] [options]`: publishes jobs through
 * the public producer API and prints each confirmed id. */
#include <stdlib.h>
#include <string.h>
#include <warren/warren.h>
#include "cli.h"
#include "common.h"

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
            "  -           read one job's arguments per non-blank line of stdin\n");
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
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
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
    json_t *args = NULL;
    int from_stdin = pa.args && !strcmp(pa.args, "-");
    if (!from_stdin) {
        args = pa.args ? parse_object(pa.args, NULL, 0) : json_object();
        if (!args)
            return 2;
    }
    int rc = cli_load(&ctx);
    char *urls = rc == 0 ? cli_urls(&ctx) : NULL;
    warren_producer *p = NULL;
    if (rc == 0) {
        warren_producer_opts po = {urls, ctx.cfg.namespace_, ctx.cfg.heartbeat, 0};
        warren_error err;
        warren_error_clear(&err);
        warren_status st = warren_producer_create(&p, &po, &err);
        if (st != WARREN_OK) {
            cli_error("publish", &err);
            rc = st == WARREN_EINVAL ? 2 : 1;
        }
    }
    if (rc == 0)
        rc = from_stdin ? publish_batch(p, &pa) : publish_one(p, &pa, args);
    warren_producer_destroy(p);
    free(urls);
    json_decref(args);
    cli_free(&ctx);
    return rc;
}
