/* `warren unroutable replay`: publishes the jobs waiting in the unroutable
 * queue again to the jobs exchange. Each is confirmed before it is removed,
 * so a replay killed midway loses nothing. Only the jobs present when the
 * replay started are handled: those still unserved come back behind them. */
#include <string.h>
#include "cli.h"
#include "common.h"
#include "topology.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: warren unroutable replay [-c CONFIG | --url URL]\n");
}

static int replay_one(struct warren_conn *conn, const char *exchange, const char *unr,
                      warren_error *err)
{
    struct warren_conn_delivery d;
    warren_status st = warren__conn_get(conn, unr, &d, err);
    if (st == WARREN_ENOTFOUND)
        return 1;
    if (st != WARREN_OK)
        return -1;
    /* The routing key a job was published with is its worker name. */
    const amqp_basic_properties_t *p = &d.message.properties;
    const char *key = d.routing_key;
    char type[130];
    if ((p->_flags & AMQP_BASIC_TYPE_FLAG) && p->type.len < sizeof type) {
        memcpy(type, p->type.bytes, p->type.len);
        type[p->type.len] = '\0';
        key = type;
    }
    uint64_t seq;
    st = warren__conn_publish(conn, exchange, key, 0, p, d.message.body.bytes,
                              d.message.body.len, &seq, err);
    if (st == WARREN_OK)
        st = warren__conn_wait_confirms(conn, seq, 30000, err);
    if (st == WARREN_OK)
        st = warren__conn_ack(conn, d.delivery_tag, err);
    else
        warren__conn_reject(conn, d.delivery_tag, 1, err);
    warren__conn_delivery_free(&d);
    return st == WARREN_OK ? 0 : -1;
}

int warren__cli_unroutable(int argc, char **argv)
{
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int replay = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "replay") && !replay) {
            replay = 1;
            continue;
        }
        int r = cli_take_conn_option(&ctx, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren unroutable: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!replay) {
        usage(stderr);
        return 2;
    }
    int rc = cli_load(&ctx);
    struct warren_conn *conn = NULL;
    if (rc == 0)
        rc = cli_connect(&ctx, &conn);
    if (rc == 0) {
        char unr[WARREN_AMQP_NAME_MAX], ex[WARREN_AMQP_NAME_MAX];
        warren__name_unroutable(unr, sizeof unr, ctx.cfg.namespace_);
        warren__name_exchange(ex, sizeof ex, ctx.cfg.namespace_);
        warren_error err;
        warren_error_clear(&err);
        uint32_t waiting = 0, done = 0;
        if (warren__conn_queue_inspect(conn, unr, &waiting, NULL, &err) != WARREN_OK) {
            cli_error("unroutable", &err);
            rc = 1;
        }
        while (rc == 0 && done < waiting) {
            int r = replay_one(conn, ex, unr, &err);
            if (r < 0) {
                cli_error("unroutable", &err);
                rc = 1;
            }
            if (r != 0)
                break;
            done++;
        }
        printf("replayed %u job(s)\n", done);
        if (rc == 0) {
            uint32_t after = 0;
            if (warren__conn_queue_inspect(conn, unr, &after, NULL, &err) == WARREN_OK && after)
                printf("%u job(s) still unserved are back in %s\n", after, unr);
        }
    }
    warren__conn_close(conn);
    cli_free(&ctx);
    return rc;
}
