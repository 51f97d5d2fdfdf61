/* `warren schedule add|list|pause|resume|remove`: recurring jobs added at
 * run time, stored in the broker (see src/lib/schedule_store.h). Names of
 * the config's `schedules` (-c FILE) cannot be changed here. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <warren/warren.h>
#include "cli.h"
#include "common.h"
#include "schedule_store.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: warren schedule add NAME WORKER (--cron EXPR | --every DURATION "
            "[--max-count N])\n"
            "                           [--args JSON] [--priority N] [-c CONFIG | --url URL]\n"
            "       warren schedule list [--json] [-c CONFIG | --url URL]\n"
            "       warren schedule pause|resume|remove NAME [-c CONFIG | --url URL]\n"
            "  runtime schedules live in the broker (<ns>.scheduler.runtime); the host\n"
            "  holding the scheduler lock fires them from their next boundary.\n"
            "  Two edits at the same moment race: the last one wins.\n");
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int config_has(const struct cli_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->cfg.n_schedules; i++)
        if (!strcmp(ctx->cfg.schedules[i].name, name))
            return 1;
    return 0;
}

static int quorum_of(const struct warren_config *cfg)
{
    for (size_t i = 0; i < cfg->n_queues; i++)
        if (cfg->queues[i].type == WARREN_QUEUE_QUORUM)
            return 1;
    return 0;
}

static const char *text_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_table(const json_t *rows)
{
    printf("%-20s %-8s %-20s %-16s %-24s %-24s %7s %9s %s\n", "NAME", "SOURCE", "WORKER",
           "WHEN", "NEXT", "LAST", "COUNT", "MAX", "STATUS");
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r)
    {
        char when[128], max[32];
        const json_t *cron = json_object_get(r, "cron");
        if (json_is_string(cron)) {
            snprintf(when, sizeof when, "cron %s", json_string_value(cron));
        } else {
            char d[32];
            warren__format_duration(json_integer_value(json_object_get(r, "every_ms")), d,
                                    sizeof d);
            snprintf(when, sizeof when, "every %s", d);
        }
        long long mc = json_integer_value(json_object_get(r, "max_count"));
        if (mc > 0)
            snprintf(max, sizeof max, "%lld", mc);
        else
            snprintf(max, sizeof max, "-");
        printf("%-20s %-8s %-20s %-16s %-24s %-24s %7lld %9s %s\n",
               text_or(json_object_get(r, "name"), "?"), text_or(json_object_get(r, "source"), "?"),
               text_or(json_object_get(r, "worker"), "?"), when,
               text_or(json_object_get(r, "next_fire"), "-"),
               text_or(json_object_get(r, "last_fire"), "-"),
               (long long)json_integer_value(json_object_get(r, "count")), max,
               text_or(json_object_get(r, "status"), "?"));
    }
}

int warren__cli_schedule(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    const char *op = NULL, *pos[2] = {NULL, NULL}, *cron = NULL, *every = NULL, *args = NULL;
    const char *max_count = NULL, *priority = NULL;
    int npos = 0, as_json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char **slot = !strcmp(a, "--cron")        ? &cron
                            : !strcmp(a, "--every")     ? &every
                            : !strcmp(a, "--args")      ? &args
                            : !strcmp(a, "--max-count") ? &max_count
                            : !strcmp(a, "--priority")  ? &priority
                                                        : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "warren schedule: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
            continue;
        }
        if (!strcmp(a, "--json")) {
            as_json = 1;
            continue;
        }
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "warren schedule: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!op)
            op = a;
        else if (npos < 2)
            pos[npos++] = a;
        else {
            fprintf(stderr, "warren schedule: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    int is_add = op && !strcmp(op, "add"), is_list = op && !strcmp(op, "list");
    char change = !op                       ? 0
                  : !strcmp(op, "remove")   ? 'r'
                  : !strcmp(op, "pause")    ? 'p'
                  : !strcmp(op, "resume")   ? 'u'
                                            : 0;
    if (!is_add && !is_list && !change) {
        if (op)
            fprintf(stderr, "warren schedule: unknown subcommand '%s'\n", op);
        usage(stderr);
        return 2;
    }
    int want = is_add ? 2 : is_list ? 0 : 1;
    if (npos != want) {
        fprintf(stderr, "warren schedule %s: expected %s\n", op,
                is_add ? "NAME WORKER" : is_list ? "no arguments" : "NAME");
        return 2;
    }
    if (!is_add && (cron || every || args || max_count || priority)) {
        fprintf(stderr, "warren schedule %s: --cron, --every, --args, --max-count and "
                        "--priority are for add\n", op);
        return 2;
    }
    if (!is_list && as_json) {
        fprintf(stderr, "warren schedule %s: --json is for list\n", op);
        return 2;
    }

    warren_schedule_def def;
    memset(&def, 0, sizeof def);
    json_t *args_json = NULL;
    warren_error err;
    warren_error_clear(&err);
    if (is_add) {
        def.name = pos[0];
        def.worker = pos[1];
        if (!cron == !every) {
            fprintf(stderr, "warren schedule add: give exactly one of --cron and --every\n");
            return 2;
        }
        def.cron = cron;
        if (every) {
            char why[256];
            if (warren__parse_duration(every, &def.every_ms, why, sizeof why) != 0) {
                fprintf(stderr, "warren schedule add: --every: %s\n", why);
                return 2;
            }
            if (def.every_ms < 1000) {
                fprintf(stderr, "warren schedule add: --every must be at least 1s\n");
                return 2;
            }
        }
        long v;
        if (max_count) {
            if (cli_parse_int(max_count, 1, 2000000000L, &v) != 0) {
                fprintf(stderr, "warren schedule add: --max-count must be a positive integer\n");
                return 2;
            }
            def.max_count = v;
        }
        if (priority) {
            if (cli_parse_int(priority, 0, 9, &v) != 0) {
                fprintf(stderr, "warren schedule add: --priority must be 0-9\n");
                return 2;
            }
            def.priority = (int)v;
        }
        if (args) {
            json_error_t jerr;
            args_json = json_loads(args, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(args_json)) {
                fprintf(stderr, "warren schedule add: --args must be a JSON object%s%s\n",
                        args_json ? "" : ": ", args_json ? "" : jerr.text);
                json_decref(args_json);
                return 2;
            }
            def.args = args_json;
        }
        if (warren_schedule_validate(&def, &err) != WARREN_OK) {
            fprintf(stderr, "warren schedule add: %s\n", err.text);
            json_decref(args_json);
            return 2;
        }
    } else if (change && !warren__sched_name_valid(pos[0])) {
        fprintf(stderr, "warren schedule %s: schedule name '%s' is not [A-Za-z0-9_.-]{1,128}\n",
                op, pos[0]);
        return 2;
    }

    int rc = cli_load(&ctx);
    if (rc == 0 && !is_list && config_has(&ctx, pos[0])) {
        fprintf(stderr, "warren schedule %s: schedule '%s' comes from the config file; change "
                        "it there\n", op, pos[0]);
        rc = 2;
    }
    struct warren_conn *conn = NULL;
    if (rc == 0)
        rc = cli_connect(&ctx, &conn);
    if (rc == 0 && is_list) {
        json_t *rows = NULL;
        if (warren__sched_store_list(conn, ctx.cfg.namespace_, ctx.cfg.schedules,
                                     ctx.cfg.n_schedules, now_ms(), &rows, &err) != WARREN_OK) {
            cli_error("schedule list", &err);
            rc = 1;
        } else if (as_json) {
            char *text = json_dumps(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (text)
                printf("%s\n", text);
            free(text);
        } else {
            print_table(rows);
        }
        json_decref(rows);
    } else if (rc == 0) {
        warren_status st = warren__sched_store_change(conn, ctx.cfg.namespace_, quorum_of(&ctx.cfg),
                                                      is_add ? 'a' : change, &def, pos[0], &err);
        if (st != WARREN_OK) {
            cli_error(is_add ? "schedule add" : "schedule", &err);
            rc = st == WARREN_EINVAL ? 2 : 1;
        } else {
            printf("schedule %s %s\n", pos[0],
                   is_add ? "added" : change == 'r' ? "removed" : change == 'p' ? "paused"
                                                                                 : "resumed");
        }
    }
    warren__conn_close(conn);
    json_decref(args_json);
    cli_free(&ctx);
    return rc;
}
