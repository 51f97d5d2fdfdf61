/* `warren dead list|replay|purge QUEUE`: the dead letters of one queue.
 * This file reads the command line and prints; dead_ops.c walks the
 * letters (see dead_ops.h for how a walk keeps every letter). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/log.h>
#include "cli.h"
#include "common.h"
#include "dead_letter.h"
#include "dead_ops.h"
#include "topology.h"

#define DEFAULT_LIMIT 100

enum sub { SUB_LIST, SUB_REPLAY, SUB_PURGE };

#define FOR_LIST (1u << SUB_LIST)
#define FOR_REPLAY (1u << SUB_REPLAY)
#define FOR_PURGE (1u << SUB_PURGE)

struct dead_opts {
    enum sub sub;
    const char *queue;
    const char *limit_text;
    struct dead_filter filter;
    int json, group, all, dry_run, yes;
    long limit;
    const char **ids; /* borrowed from argv; the array is new */
    size_t n_ids;
};

static void usage_short(FILE *to)
{
    fprintf(to, "usage: warren dead list QUEUE [--limit N] [--json] [--group] [FILTERS] [CONN]\n"
                "       warren dead replay QUEUE (--id ID... | --all) [FILTERS]"
                " [--dry-run [--json]] [CONN]\n"
                "       warren dead purge QUEUE (--yes | --dry-run [--json]) [FILTERS] [CONN]\n");
}

static void usage(FILE *to)
{
    usage_short(to);
    fprintf(to,
            "  QUEUE            a queue's short name (default); its letters are in "
            "<namespace>.QUEUE.dead\n"
            "  FILTERS          combined; a letter must match all of them:\n"
            "    --worker W     its worker name is W\n"
            "    --reason R     its x-warren-dead-reason is R (max_attempts, "
            "permanent_failure, ...)\n"
            "    --since D      it failed within the last D (500ms, 30s, 5m, 2h, 1d)\n"
            "    --error TEXT   its x-warren-error contains TEXT\n"
            "  CONN             -c CONFIG | --url URL\n"
            "list removes nothing (default --limit %d letters; --group counts all of them\n"
            "by worker, reason and error and shows the --limit largest groups).\n"
            "replay publishes each letter again to the jobs exchange with its worker name as\n"
            "routing key, attempt 1, id and signature kept, and removes the letter once the\n"
            "broker confirmed the copy. purge removes letters (all of them without a filter).\n"
            "--dry-run prints what would be replayed or purged and changes nothing.\n",
            DEFAULT_LIMIT);
}

/* ---- options ----------------------------------------------------------- */

struct option_def {
    const char *name;
    unsigned subs; /* FOR_* bits of the subcommands that take it */
    int has_value; /* 1: a const char * at `offset`; 0: an int flag */
    size_t offset;
};

static const struct option_def option_defs[] = {
    {"--limit", FOR_LIST, 1, offsetof(struct dead_opts, limit_text)},
    {"--json", FOR_LIST | FOR_REPLAY | FOR_PURGE, 0, offsetof(struct dead_opts, json)},
    {"--group", FOR_LIST, 0, offsetof(struct dead_opts, group)},
    {"--all", FOR_REPLAY, 0, offsetof(struct dead_opts, all)},
    {"--yes", FOR_PURGE, 0, offsetof(struct dead_opts, yes)},
    {"--dry-run", FOR_REPLAY | FOR_PURGE, 0, offsetof(struct dead_opts, dry_run)},
    {"--worker", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.worker)},
    {"--reason", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.reason)},
    {"--since", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1,
     offsetof(struct dead_opts, filter.since_text)},
    {"--error", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.error)},
};

static const char *const sub_names[] = {"list", "replay", "purge"};

/* Takes one option of ours at argv[*i]. 1 taken, 0 not ours, -1 misuse. */
static int take_option(struct dead_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--id") && o->sub == SUB_REPLAY) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "warren dead: --id needs a value\n");
            return -1;
        }
        o->ids[o->n_ids++] = argv[++*i];
        return 1;
    }
    for (size_t k = 0; k < sizeof option_defs / sizeof option_defs[0]; k++) {
        const struct option_def *def = &option_defs[k];
        if (strcmp(a, def->name) != 0 || !(def->subs & (1u << o->sub)))
            continue;
        char *field = (char *)o + def->offset;
        if (!def->has_value) {
            *(int *)field = 1;
            return 1;
        }
        if (*i + 1 >= argc) {
            fprintf(stderr, "warren dead: %s needs a value\n", a);
            return -1;
        }
        *(const char **)field = argv[++*i];
        return 1;
    }
    return 0;
}

static int queue_name_valid(const char *q)
{
    size_t n = strlen(q);
    if (n < 1 || n > 64)
        return 0;
    return strspn(q, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Checks what the options say together. 0 ok, -1 misuse (printed). */
static int check_options(struct dead_opts *o)
{
    const char *sub = sub_names[o->sub];
    char why[128];
    if (!o->queue) {
        fprintf(stderr, "warren dead %s: QUEUE is missing\n", sub);
        return -1;
    }
    if (!queue_name_valid(o->queue)) {
        fprintf(stderr, "warren dead %s: invalid queue name '%s' (must match [a-z0-9_-]{1,64})\n",
                sub, o->queue);
        return -1;
    }
    if (o->sub == SUB_REPLAY && !o->n_ids && !o->all) {
        fprintf(stderr, "warren dead replay: name the letters with --id ID or use --all\n");
        return -1;
    }
    if (o->sub == SUB_PURGE && !o->yes && !o->dry_run) {
        fprintf(stderr, "warren dead purge: removing letters needs --yes (or --dry-run)\n");
        return -1;
    }
    if (o->sub != SUB_LIST && o->json && !o->dry_run) {
        fprintf(stderr, "warren dead %s: --json goes with --dry-run\n", sub);
        return -1;
    }
    if (o->limit_text && cli_parse_int(o->limit_text, 1, 1000000000, &o->limit) != 0) {
        fprintf(stderr, "warren dead %s: --limit must be an integer >= 1\n", sub);
        return -1;
    }
    if (o->filter.since_text &&
        warren__parse_duration(o->filter.since_text, &o->filter.since_ms, why, sizeof why)) {
        fprintf(stderr, "warren dead %s: --since: %s\n", sub, why);
        return -1;
    }
    if (o->filter.reason && !dead_reason_known(o->filter.reason)) {
        fprintf(stderr, "warren dead %s: unknown reason '%s'\n", sub, o->filter.reason);
        return -1;
    }
    return 0;
}

/* 0 parsed, 1 help was asked (printed), 2 misuse (printed). */
static int parse_args(struct dead_opts *o, struct cli_ctx *ctx, int argc, char **argv)
{
    o->limit = DEFAULT_LIMIT;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        if (argc < 2)
            usage_short(stderr);
        else
            usage(stdout);
        return argc < 2 ? 2 : 1;
    }
    size_t s = 0;
    while (s < 3 && strcmp(argv[1], sub_names[s]) != 0)
        s++;
    if (s == 3) {
        fprintf(stderr, "warren dead: unknown subcommand '%s'\n", argv[1]);
        usage_short(stderr);
        return 2;
    }
    o->sub = (enum sub)s;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 1;
        }
        int r = take_option(o, argc, argv, &i);
        if (r == 0)
            r = cli_take_conn_option(ctx, argc, argv, &i);
        if (r == 0 && argv[i][0] != '-' && !o->queue) {
            o->queue = argv[i];
            r = 1;
        }
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren dead %s: unexpected argument '%s'\n", sub_names[s],
                        argv[i]);
            usage_short(stderr);
            return 2;
        }
    }
    if (check_options(o) != 0) {
        usage_short(stderr);
        return 2;
    }
    return 0;
}

/* ---- the command ------------------------------------------------------------ */

/* Audit lines are part of what the dead-letter commands do: a log level
 * above info in the config does not silence them. */
static void keep_audit_lines(void)
{
    if (!warren_log_enabled(WARREN_LOG_INFO))
        warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "cli");
}

/* Names the ids a replay did not replay; returns 1 when there are any. */
static int report_missing(const struct dead_opts *o, const struct dead_result *res)
{
    int missing = 0;
    for (size_t i = 0; i < o->n_ids; i++) {
        char id[300];
        dead_cell(id, sizeof id, o->ids[i], 255);
        if (res->seen[i] == DEAD_ID_MISSING)
            fprintf(stderr, "warren dead replay: id %s not found\n", id);
        else if (res->seen[i] == DEAD_ID_FILTERED)
            fprintf(stderr, "warren dead replay: id %s does not match the filters\n", id);
        missing |= res->seen[i] != DEAD_ID_REPLAYED;
    }
    return missing;
}

/* Prints what the operation did; returns the exit status. */
static int print_result(const struct dead_opts *o, const struct dead_output *out,
                        const struct dead_result *res, const char *dead)
{
    if (o->sub == SUB_LIST) {
        dead_output_print(out, o->limit, NULL, dead, res->present);
        return 0;
    }
    const char *verb = o->sub == SUB_REPLAY ? "replay" : "purge";
    if (o->dry_run)
        dead_output_print(out, 0, verb, dead, res->present);
    else if (o->sub == SUB_REPLAY)
        printf("replayed %zu letter(s)\n", res->replayed);
    else
        printf("purged %zu letter(s)\n", res->purged);
    if (o->sub != SUB_REPLAY)
        return 0;
    if (res->skipped)
        fprintf(stderr, "warren dead replay: kept %zu letter(s) without a usable worker name\n",
                res->skipped);
    if (res->refused)
        fprintf(stderr, "warren dead replay: the broker refused %zu cop(ies); those letters stay\n",
                res->refused);
    return report_missing(o, res) || res->refused ? 1 : 0;
}

/* Runs the subcommand on an open connection. Returns the exit status. */
static int run(const struct dead_opts *o, const struct cli_ctx *ctx, struct warren_conn *conn)
{
    const char *sub = o->sub == SUB_LIST     ? "dead list"
                      : o->sub == SUB_REPLAY ? "dead replay"
                                             : "dead purge";
    struct dead_request r = {
        .op = o->sub == SUB_LIST ? DEAD_LIST : o->sub == SUB_REPLAY ? DEAD_REPLAY : DEAD_PURGE,
        .queue = o->queue,
        .filter = o->filter,
        .ids = o->ids,
        .n_ids = o->n_ids,
        .all = o->all,
        .dry_run = o->dry_run,
        .limit = o->limit,
    };
    struct dead_output out;
    if (dead_output_init(&out, o->json, o->group) != 0) {
        fprintf(stderr, "warren %s: out of memory\n", sub);
        return 1;
    }
    struct dead_result res;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = dead_run(&r, conn, ctx->cfg.namespace_, &out, &res, &err);
    int rc;
    if (st == WARREN_OK) {
        char dead[WARREN_AMQP_NAME_MAX];
        warren__name_dead(dead, sizeof dead, ctx->cfg.namespace_, o->queue);
        rc = print_result(o, &out, &res, dead);
    } else if (st == WARREN_ENOTFOUND) {
        fprintf(stderr, "warren %s: %s\n", sub, err.text);
        rc = 1;
    } else {
        /* What was done before the failure stays done. */
        if (o->sub == SUB_REPLAY && res.replayed)
            printf("replayed %zu letter(s) before the error\n", res.replayed);
        if (o->sub == SUB_PURGE && res.purged)
            printf("purged %zu letter(s) before the error\n", res.purged);
        cli_error(sub, &err);
        rc = 1;
    }
    dead_result_free(&res);
    dead_output_free(&out);
    return rc;
}

int warren__cli_dead(int argc, char **argv)
{
    struct cli_ctx ctx;
    struct dead_opts o;
    memset(&ctx, 0, sizeof ctx);
    memset(&o, 0, sizeof o);
    o.ids = calloc((size_t)argc + 1, sizeof *o.ids);
    if (!o.ids)
        return 1;
    int rc = parse_args(&o, &ctx, argc, argv);
    if (rc != 0) {
        free(o.ids);
        return rc == 1 ? 0 : rc;
    }
    rc = cli_load(&ctx);
    struct warren_conn *conn = NULL;
    if (rc == 0) {
        keep_audit_lines();
        rc = cli_connect(&ctx, &conn);
    }
    if (rc == 0)
        rc = run(&o, &ctx, conn);
    warren__conn_close(conn);
    cli_free(&ctx);
    free(o.ids);
    return rc;
}
