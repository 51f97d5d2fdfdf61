/* `warren stats [--json]`: per configured queue, ready messages, consumers
 * and dead letters, plus what waits in the unroutable queue. AMQP alone
 * cannot count unacked messages; the management API (issue 6) adds them. */
#include <string.h>
#include <jansson.h>
#include "cli.h"
#include "common.h"
#include "topology.h"

struct queue_stats {
    const char *name;
    int exists;
    uint32_t ready, consumers, dead;
};

static void usage(FILE *to)
{
    fprintf(to, "usage: warren stats [--json] [-c CONFIG | --url URL]\n");
}

static void inspect(struct warren_conn *conn, const char *ns, struct queue_stats *qs)
{
    char work[WARREN_AMQP_NAME_MAX], dead[WARREN_AMQP_NAME_MAX];
    warren_error err;
    warren_error_clear(&err);
    qs->exists = warren__conn_queue_inspect(conn, warren__name_queue(work, sizeof work, ns, qs->name),
                                            &qs->ready, &qs->consumers, &err) == WARREN_OK;
    warren_error_clear(&err);
    warren__conn_queue_inspect(conn, warren__name_dead(dead, sizeof dead, ns, qs->name), &qs->dead,
                               NULL, &err);
}

static void print_json(const struct queue_stats *qs, size_t n, uint32_t unroutable)
{
    json_t *queues = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(queues, json_pack("{s:s, s:b, s:i, s:i, s:i}", "name", qs[i].name,
                                                "exists", qs[i].exists, "ready", qs[i].ready,
                                                "consumers", qs[i].consumers, "dead", qs[i].dead));
    json_t *root = json_pack("{s:o, s:i}", "queues", queues, "unroutable", unroutable);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(root);
}

static void print_table(const struct queue_stats *qs, size_t n, uint32_t unroutable)
{
    printf("%-24s %10s %10s %10s\n", "QUEUE", "READY", "CONSUMERS", "DEAD");
    for (size_t i = 0; i < n; i++) {
        if (qs[i].exists)
            printf("%-24s %10u %10u %10u\n", qs[i].name, qs[i].ready, qs[i].consumers,
                   qs[i].dead);
        else
            printf("%-24s %10s %10s %10s\n", qs[i].name, "-", "-", "-");
    }
    printf("unroutable: %u\n", unroutable);
}

int warren__cli_stats(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren stats: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int rc = cli_load(&ctx);
    struct warren_conn *conn = NULL;
    if (rc == 0)
        rc = cli_connect(&ctx, &conn);
    if (rc == 0) {
        size_t n = ctx.cfg.n_queues;
        struct queue_stats *qs = calloc(n ? n : 1, sizeof *qs);
        for (size_t i = 0; qs && i < n; i++) {
            qs[i].name = ctx.cfg.queues[i].name;
            inspect(conn, ctx.cfg.namespace_, &qs[i]);
        }
        uint32_t unroutable = 0;
        char unr[WARREN_AMQP_NAME_MAX];
        warren_error err;
        warren_error_clear(&err);
        warren__conn_queue_inspect(conn, warren__name_unroutable(unr, sizeof unr, ctx.cfg.namespace_),
                                   &unroutable, NULL, &err);
        if (warren__conn_broken(conn)) {
            cli_error("stats", &err);
            rc = 1;
        } else if (qs) {
            if (json)
                print_json(qs, n, unroutable);
            else
                print_table(qs, n, unroutable);
        }
        free(qs);
    }
    warren__conn_close(conn);
    cli_free(&ctx);
    return rc;
}
