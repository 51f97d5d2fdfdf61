/* `warren stats [--json] [--watch [SECONDS]]`: per configured queue, ready
 * messages, consumers and dead letters, plus what waits in the unroutable
 * queue. AMQP alone cannot count unacked messages: with
 * broker.management_url the management API adds them, and message rates. */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "cli.h"
#include "common.h"
#include "mgmt.h"
#include "topology.h"

#define MGMT_TIMEOUT_MS 3000L
#define MGMT_MAX_BODY (1 << 20)

struct queue_stats {
    const char *name;
    int exists;
    uint32_t ready, consumers, dead;
    int have_mgmt;
    struct mgmt_queue mgmt;
};

struct stats_opts {
    int json;
    int watch_s; /* 0: print once */
};

static void usage(FILE *to)
{
    fprintf(to, "usage: warren stats [--json] [--watch [SECONDS]] [-c CONFIG | --url URL]\n"
                "  --watch  refresh every SECONDS (default 2) until interrupted\n"
                "  unacked counts and rates need broker.management_url in the config\n");
}

static void inspect(struct warren_conn *conn, const struct cli_ctx *ctx, struct mgmt *mgmt,
                    struct queue_stats *qs)
{
    const char *ns = ctx->cfg.namespace_;
    char work[WARREN_AMQP_NAME_MAX], dead[WARREN_AMQP_NAME_MAX];
    warren_error err;
    warren_error_clear(&err);
    warren__name_queue(work, sizeof work, ns, qs->name);
    qs->exists =
        warren__conn_queue_inspect(conn, work, &qs->ready, &qs->consumers, &err) == WARREN_OK;
    warren_error_clear(&err);
    qs->dead = 0;
    warren__conn_queue_inspect(conn, warren__name_dead(dead, sizeof dead, ns, qs->name),
                               &qs->dead, NULL, &err);
    qs->have_mgmt = 0;
    if (qs->exists && mgmt) {
        warren_error_clear(&err);
        qs->have_mgmt = mgmt_queue_get(mgmt, work, &qs->mgmt, &err) == WARREN_OK;
        if (!qs->have_mgmt)
            fprintf(stderr, "warren stats: %s\n", err.text);
    }
}

/* The management API client, with the first node's user and vhost and
 * the password the AMQP connection uses; NULL without management_url or
 * when it cannot be set up (said on stderr: the AMQP figures still come). */
static struct mgmt *open_mgmt(const struct cli_ctx *ctx)
{
    if (!ctx->cfg.management_url)
        return NULL;
    char *urls = cli_urls(ctx);
    char *comma = urls ? strchr(urls, ',') : NULL;
    if (comma)
        *comma = '\0';
    const struct mgmt_limits limits = {MGMT_TIMEOUT_MS, MGMT_MAX_BODY};
    struct mgmt *m = NULL;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = urls ? mgmt_open(&m, ctx->cfg.management_url, urls,
                                        ctx->cfg.password_file, &limits, &err)
                            : warren_error_set(&err, WARREN_ENOMEM, "out of memory");
    if (st != WARREN_OK)
        fprintf(stderr, "warren stats: %s\n", err.text);
    free(urls);
    return m;
}

static json_t *queue_json(const struct queue_stats *q)
{
    json_t *o = json_pack("{s:s, s:b, s:i, s:i, s:i}", "name", q->name, "exists", q->exists,
                          "ready", q->ready, "consumers", q->consumers, "dead", q->dead);
    if (q->have_mgmt) {
        json_object_set_new(o, "unacked", json_integer(q->mgmt.unacked));
        json_object_set_new(o, "publish_rate", json_real(q->mgmt.publish_rate));
        json_object_set_new(o, "deliver_rate", json_real(q->mgmt.deliver_rate));
        json_object_set_new(o, "ack_rate", json_real(q->mgmt.ack_rate));
    } else {
        json_object_set_new(o, "unacked", json_null());
    }
    return o;
}

static void print_json(const struct queue_stats *qs, size_t n, uint32_t unroutable)
{
    json_t *queues = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(queues, queue_json(&qs[i]));
    json_t *root = json_pack("{s:o, s:i}", "queues", queues, "unroutable", unroutable);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(root);
}

static void print_table(const struct queue_stats *qs, size_t n, uint32_t unroutable)
{
    printf("%-24s %10s %10s %10s %10s %10s %10s\n", "QUEUE", "READY", "UNACKED", "CONSUMERS",
           "DEAD", "IN/S", "ACK/S");
    for (size_t i = 0; i < n; i++) {
        const struct queue_stats *q = &qs[i];
        if (!q->exists) {
            printf("%-24s %10s %10s %10s %10s %10s %10s\n", q->name, "-", "-", "-", "-", "-",
                   "-");
            continue;
        }
        char unacked[24] = "-", in[24] = "-", ack[24] = "-";
        if (q->have_mgmt) {
            snprintf(unacked, sizeof unacked, "%lld", q->mgmt.unacked);
            snprintf(in, sizeof in, "%.1f", q->mgmt.publish_rate);
            snprintf(ack, sizeof ack, "%.1f", q->mgmt.ack_rate);
        }
        printf("%-24s %10u %10s %10u %10u %10s %10s\n", q->name, q->ready, unacked, q->consumers,
               q->dead, in, ack);
    }
    printf("unroutable: %u\n", unroutable);
}

/* One sample of every queue; returns 0, or 1 when the broker went away. */
static int sample(struct warren_conn *conn, const struct cli_ctx *ctx, struct mgmt *mgmt,
                  const struct stats_opts *o)
{
    size_t n = ctx->cfg.n_queues;
    struct queue_stats *qs = calloc(n ? n : 1, sizeof *qs);
    if (!qs)
        return 1;
    for (size_t i = 0; i < n; i++) {
        qs[i].name = ctx->cfg.queues[i].name;
        inspect(conn, ctx, mgmt, &qs[i]);
    }
    uint32_t unroutable = 0;
    char unr[WARREN_AMQP_NAME_MAX];
    warren_error err;
    warren_error_clear(&err);
    warren__conn_queue_inspect(conn, warren__name_unroutable(unr, sizeof unr, ctx->cfg.namespace_),
                               &unroutable, NULL, &err);
    int rc = 0;
    if (warren__conn_broken(conn)) {
        cli_error("stats", &err);
        rc = 1;
    } else if (o->json) {
        print_json(qs, n, unroutable);
    } else {
        print_table(qs, n, unroutable);
    }
    free(qs);
    fflush(stdout);
    return rc;
}

static int parse_args(int argc, char **argv, struct cli_ctx *ctx, struct stats_opts *o)
{
    for (int i = 1; i < argc; i++) {
        long secs;
        if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--watch")) {
            o->watch_s = 2;
            if (i + 1 < argc && cli_parse_int(argv[i + 1], 1, 3600, &secs) == 0) {
                o->watch_s = (int)secs;
                i++;
            }
        } else {
            int r = cli_take_conn_option(ctx, argc, argv, &i);
            if (r == 0)
                fprintf(stderr, "warren stats: unexpected argument '%s'\n", argv[i]);
            if (r <= 0)
                return -1;
        }
    }
    return 0;
}

int warren__cli_stats(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    struct cli_ctx ctx;
    struct stats_opts o = {0, 0};
    memset(&ctx, 0, sizeof ctx);
    if (parse_args(argc, argv, &ctx, &o) != 0) {
        usage(stderr);
        return 2;
    }
    int rc = cli_load(&ctx);
    struct warren_conn *conn = NULL;
    if (rc == 0)
        rc = cli_connect(&ctx, &conn);
    struct mgmt *mgmt = rc == 0 ? open_mgmt(&ctx) : NULL;
    if (rc == 0)
        rc = sample(conn, &ctx, mgmt, &o);
    while (rc == 0 && o.watch_s) {
        sleep((unsigned)o.watch_s);
        if (!o.json)
            printf("\033[H\033[2J"); /* a fresh screen each time, like watch(1) */
        rc = sample(conn, &ctx, mgmt, &o);
    }
    mgmt_close(mgmt);
    warren__conn_close(conn);
    cli_free(&ctx);
    return rc;
}
