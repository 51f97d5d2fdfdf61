/* `warren job ID [--json]` and `warren jobs [--state S] [--worker W]
 * [--since D] [--limit N] [--json]`: answers from the history database
 * that `warren web` keeps (web.db of -c FILE), opened read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "cli.h"
#include "common.h"
#include "history.h"
#include "web.h"

static const char *const states[] = {"queued", "scheduled", "running", "retrying",
                                     "succeeded", "dead"};

static int open_store(struct cli_ctx *ctx, const char *cmd, struct warren_history **h)
{
    int rc = cli_load(ctx);
    if (rc != 0)
        return rc;
    char db[4096];
    warren__web_db_path(&ctx->cfg, db, sizeof db);
    struct warren_history_opts o = {.read_only = 1};
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_open(h, db, &o, &err) != WARREN_OK) {
        cli_error(cmd, &err);
        return 1;
    }
    return 0;
}

static void print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "null");
    free(text);
}

static const char *s_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* Text from the history may hold anything: control characters are shown
 * as '?' so a job cannot drive the terminal. */
static void put_clean(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void print_job(json_t *j)
{
    printf("job       ");
    put_clean(s_or(j, "id", ""));
    printf("\nworker    ");
    put_clean(s_or(j, "worker", "-"));
    printf("\nqueue     ");
    put_clean(s_or(j, "queue", "-"));
    printf("\nstate     %s\nattempt   %lld\n", s_or(j, "state", "-"),
           json_integer_value(json_object_get(j, "attempt")));
    /* Only for replayed jobs, whose attempts started again at 1. */
    if (json_integer_value(json_object_get(j, "replay")) > 0)
        printf("replay    %lld\n", json_integer_value(json_object_get(j, "replay")));
    json_t *p = json_object_get(j, "progress");
    if (json_is_object(p))
        printf("progress  %lld/%lld\n", json_integer_value(json_object_get(p, "done")),
               json_integer_value(json_object_get(p, "total")));
    if (json_is_string(json_object_get(j, "error"))) {
        printf("error     ");
        put_clean(s_or(j, "error", ""));
        putchar('\n');
    }
    printf("created   %s\nupdated   %s\ntimeline:\n", s_or(j, "created_at", "-"),
           s_or(j, "updated_at", "-"));
    json_t *tl = json_object_get(j, "timeline");
    size_t i;
    json_t *e;
    json_array_foreach(tl, i, e) {
        printf("  %s  #%lld %-10s ", s_or(e, "at", "-"),
               json_integer_value(json_object_get(e, "attempt")), s_or(e, "event", "?"));
        put_clean(s_or(e, "host", ""));
        if (json_is_integer(json_object_get(e, "duration_ms")))
            printf("  %lld ms", json_integer_value(json_object_get(e, "duration_ms")));
        if (json_is_integer(json_object_get(e, "delay_ms")))
            printf("  next in %lld ms", json_integer_value(json_object_get(e, "delay_ms")));
        if (json_is_string(json_object_get(e, "error"))) {
            printf("  ");
            put_clean(s_or(e, "error", ""));
        }
        if (json_integer_value(json_object_get(e, "replay")) > 0)
            printf("  (replay %lld)", json_integer_value(json_object_get(e, "replay")));
        putchar('\n');
    }
}

int warren__cli_job(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    const char *id = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: warren job ID [--json] [-c CONFIG]\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] != '-' && !id) {
            id = argv[i];
        } else {
            fprintf(stderr, "warren job: unexpected argument '%s'\n"
                            "usage: warren job ID [--json] [-c CONFIG]\n", argv[i]);
            return 2;
        }
    }
    if (!id) {
        fprintf(stderr, "usage: warren job ID [--json] [-c CONFIG]\n");
        return 2;
    }
    struct warren_history *h;
    int rc = open_store(&ctx, "job", &h);
    if (rc != 0) {
        cli_free(&ctx);
        return rc;
    }
    json_t *j;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__history_job(h, id, &j, &err);
    if (st == WARREN_OK) {
        if (json)
            print_json(j);
        else
            print_job(j);
        json_decref(j);
    } else {
        cli_error("job", &err);
        rc = 1;
    }
    warren__history_close(h);
    cli_free(&ctx);
    return rc;
}

static void jobs_usage(FILE *to)
{
    fprintf(to, "usage: warren jobs [--state S] [--worker W] [--since DURATION] [--limit N]"
                " [--json] [-c CONFIG]\n  states: queued scheduled running retrying succeeded"
                " dead\n");
}

int warren__cli_jobs(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    struct warren_history_filter f = {.limit = 50};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            jobs_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--state") && v) {
            int ok = 0;
            for (size_t k = 0; k < sizeof states / sizeof states[0]; k++)
                ok |= !strcmp(v, states[k]);
            if (!ok) {
                fprintf(stderr, "warren jobs: unknown state '%s'\n", v);
                jobs_usage(stderr);
                return 2;
            }
            f.state = v;
            i++;
        } else if (!strcmp(a, "--worker") && v) {
            f.worker = v;
            i++;
        } else if (!strcmp(a, "--since") && v) {
            long long d;
            char why[128];
            if (warren__parse_duration(v, &d, why, sizeof why) != 0 || d <= 0) {
                fprintf(stderr, "warren jobs: --since %s: expected a duration, e.g. 24h\n", v);
                return 2;
            }
            f.since_ms = (long long)time(NULL) * 1000 - d;
            i++;
        } else if (!strcmp(a, "--limit") && v) {
            long n;
            if (cli_parse_int(v, 1, 100000, &n) != 0) {
                fprintf(stderr, "warren jobs: --limit %s: expected 1-100000\n", v);
                return 2;
            }
            f.limit = (int)n;
            i++;
        } else {
            fprintf(stderr, "warren jobs: unexpected argument '%s'\n", a);
            jobs_usage(stderr);
            return 2;
        }
    }
    struct warren_history *h;
    int rc = open_store(&ctx, "jobs", &h);
    if (rc != 0) {
        cli_free(&ctx);
        return rc;
    }
    json_t *out;
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_jobs(h, &f, &out, &err) == WARREN_OK) {
        if (json) {
            print_json(out);
        } else {
            printf("%-38s %-20s %-10s %7s %-24s %s\n", "ID", "WORKER", "STATE", "ATTEMPT",
                   "UPDATED", "ERROR");
            size_t i;
            json_t *j;
            json_array_foreach(json_object_get(out, "jobs"), i, j) {
                char id[39], worker[21];
                snprintf(id, sizeof id, "%s", s_or(j, "id", ""));
                snprintf(worker, sizeof worker, "%s", s_or(j, "worker", "-"));
                put_clean(id);
                printf("%*s ", (int)(38 - strlen(id)), "");
                put_clean(worker);
                printf("%*s %-10s %7lld %-24s ", (int)(20 - strlen(worker)), "",
                       s_or(j, "state", "-"), json_integer_value(json_object_get(j, "attempt")),
                       s_or(j, "updated_at", "-"));
                put_clean(s_or(j, "error", ""));
                putchar('\n');
            }
        }
        json_decref(out);
    } else {
        cli_error("jobs", &err);
        rc = 1;
    }
    warren__history_close(h);
    cli_free(&ctx);
    return rc;
}
