/* `warren report [--since 24h] [--format text|json|csv] [-c FILE]`: per
 * worker counts by outcome, failure rate, p50/p95/p99 duration and top
 * errors; throughput per hour. From the history database (read-only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "cli.h"
#include "common.h"
#include "history.h"
#include "web.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warren report [--since DURATION] [--format text|json|csv] [-c CONFIG]\n"
                "  --since  how far back (default 24h)\n");
}

static long long ival(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void ms_or_dash(char *buf, size_t size, json_t *v)
{
    if (json_is_integer(v))
        snprintf(buf, size, "%lld", json_integer_value(v));
    else
        snprintf(buf, size, "-");
}

/* Worker names and errors come from the wire: no control characters. */
static void put_clean(FILE *f, const char *s)
{
    for (; s && *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void csv_field(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar((unsigned char)*s < 0x20 ? ' ' : *s);
    }
    putchar('"');
}

static void print_text(json_t *r)
{
    printf("since %s until %s\n\n", json_string_value(json_object_get(r, "since")),
           json_string_value(json_object_get(r, "until")));
    printf("%-24s %8s %9s %8s %6s %7s %8s %8s %8s\n", "WORKER", "STARTED", "SUCCEEDED",
           "RETRIED", "DEAD", "FAIL%", "P50_MS", "P95_MS", "P99_MS");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(r, "workers"), i, w) {
        char p50[24], p95[24], p99[24], name[25];
        ms_or_dash(p50, sizeof p50, json_object_get(w, "p50_ms"));
        ms_or_dash(p95, sizeof p95, json_object_get(w, "p95_ms"));
        ms_or_dash(p99, sizeof p99, json_object_get(w, "p99_ms"));
        snprintf(name, sizeof name, "%s", json_string_value(json_object_get(w, "worker")) ? json_string_value(json_object_get(w, "worker")) : "");
        put_clean(stdout, name[0] ? name : "(unknown)");
        printf("%*s %8lld %9lld %8lld %6lld %6.1f%% %8s %8s %8s\n",
               (int)(24 - strlen(name[0] ? name : "(unknown)")), "", ival(w, "started"),
               ival(w, "succeeded"), ival(w, "retried"), ival(w, "dead"),
               100.0 * json_real_value(json_object_get(w, "failure_rate")), p50, p95, p99);
    }
    json_array_foreach(json_object_get(r, "workers"), i, w) {
        json_t *top = json_object_get(w, "top_errors");
        if (!json_array_size(top))
            continue;
        printf("\ntop errors of ");
        put_clean(stdout, json_string_value(json_object_get(w, "worker")));
        printf(":\n");
        size_t k;
        json_t *e;
        json_array_foreach(top, k, e) {
            printf("  %6lld  ", ival(e, "count"));
            put_clean(stdout, json_string_value(json_object_get(e, "error")));
            putchar('\n');
        }
    }
    printf("\n%-26s %9s %8s %6s\n", "HOUR (UTC)", "SUCCEEDED", "RETRIED", "DEAD");
    json_t *hr;
    json_array_foreach(json_object_get(r, "hours"), i, hr)
        printf("%-26s %9lld %8lld %6lld\n", json_string_value(json_object_get(hr, "hour")),
               ival(hr, "succeeded"), ival(hr, "retried"), ival(hr, "dead"));
}

static void print_csv(json_t *r)
{
    printf("kind,key,started,succeeded,retried,dead,failed,failure_rate,p50_ms,p95_ms,p99_ms,"
           "top_error\n");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(r, "workers"), i, w) {
        char p50[24], p95[24], p99[24];
        ms_or_dash(p50, sizeof p50, json_object_get(w, "p50_ms"));
        ms_or_dash(p95, sizeof p95, json_object_get(w, "p95_ms"));
        ms_or_dash(p99, sizeof p99, json_object_get(w, "p99_ms"));
        printf("worker,");
        csv_field(json_string_value(json_object_get(w, "worker")));
        printf(",%lld,%lld,%lld,%lld,%lld,%.4f,%s,%s,%s,", ival(w, "started"),
               ival(w, "succeeded"), ival(w, "retried"), ival(w, "dead"), ival(w, "failed"),
               json_real_value(json_object_get(w, "failure_rate")), p50[0] == '-' ? "" : p50,
               p95[0] == '-' ? "" : p95, p99[0] == '-' ? "" : p99);
        csv_field(json_string_value(
            json_object_get(json_array_get(json_object_get(w, "top_errors"), 0), "error")));
        putchar('\n');
    }
    json_t *hr;
    json_array_foreach(json_object_get(r, "hours"), i, hr)
        printf("hour,%s,,%lld,%lld,%lld,,,,,,\n", json_string_value(json_object_get(hr, "hour")),
               ival(hr, "succeeded"), ival(hr, "retried"), ival(hr, "dead"));
}

int warren__cli_report(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    long long since_d = 24LL * 3600 * 1000;
    const char *format = "text";
    for (int i = 1; i < argc; i++) {
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--since") && v) {
            char why[128];
            if (warren__parse_duration(v, &since_d, why, sizeof why) != 0 || since_d <= 0) {
                fprintf(stderr, "warren report: --since %s: expected a duration, e.g. 24h\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--format") && v) {
            if (strcmp(v, "text") && strcmp(v, "json") && strcmp(v, "csv")) {
                fprintf(stderr, "warren report: --format %s: expected text, json or csv\n", v);
                return 2;
            }
            format = v;
            i++;
        } else {
            fprintf(stderr, "warren report: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int rc = cli_load(&ctx);
    if (rc != 0) {
        cli_free(&ctx);
        return rc;
    }
    char db[4096];
    warren__web_db_path(&ctx.cfg, db, sizeof db);
    struct warren_history_opts o = {.read_only = 1};
    struct warren_history *h;
    warren_error err;
    warren_error_clear(&err);
    json_t *r = NULL;
    if (warren__history_open(&h, db, &o, &err) != WARREN_OK) {
        cli_error("report", &err);
        cli_free(&ctx);
        return 1;
    }
    if (warren__history_report(h, (long long)time(NULL) * 1000 - since_d, &r, &err) != WARREN_OK) {
        cli_error("report", &err);
        rc = 1;
    } else if (!strcmp(format, "json")) {
        char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
    } else if (!strcmp(format, "csv")) {
        print_csv(r);
    } else {
        print_text(r);
    }
    json_decref(r);
    warren__history_close(h);
    cli_free(&ctx);
    return rc;
}
