/* raw_publisher: the baseline the C API's warren_publish_batch is measured
 * against, and the tool that fills the benchmark backlogs.
 *
 * A plain rabbitmq-c publisher with publisher confirms and a sliding window
 * of outstanding confirms (default 256): each message is a warren job on
 * the wire (exchange `warren`, routing key and `type` the worker name, a
 * UUID message_id, persistent, application/json, priority 0, timestamp),
 * its body the ~200-byte {"n":N,"pad":"..."} of bench_common.h.
 *
 *   raw_publisher [--url URL] [--exchange warren] [--worker diag.noop]
 *                 [--count N] [--size 200] [--window 256]
 *
 * Returns once every message is confirmed; prints
 *   raw_publisher count=N secs=S rate=R
 * timed from the first publish to the last confirm (connecting excluded). */
#include "bench_common.h"

#define RING 65536

static unsigned char settled[RING];
static uint64_t acked_upto; /* every tag <= this is confirmed */

static void mark(uint64_t tag)
{
    if (tag > acked_upto)
        settled[tag % RING] = 1;
}

static void advance(void)
{
    while (settled[(acked_upto + 1) % RING]) {
        settled[(acked_upto + 1) % RING] = 0;
        acked_upto++;
    }
}

/* Reads one frame and applies the confirms in it. */
static void read_confirms(amqp_connection_state_t c, uint64_t *nacked)
{
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame(c, &f);
    if (rc != AMQP_STATUS_OK)
        bench_die("waiting for confirms: %s", amqp_error_string2(rc));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return;
    uint64_t tag;
    int multiple;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f.payload.method.decoded;
        tag = a->delivery_tag;
        multiple = a->multiple;
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = f.payload.method.decoded;
        tag = n->delivery_tag;
        multiple = n->multiple;
        (*nacked)++;
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        bench_die("the broker closed the channel while publishing");
        return;
    default:
        return;
    }
    if (multiple)
        for (uint64_t t = acked_upto + 1; t <= tag; t++)
            mark(t);
    else
        mark(tag);
    advance();
}

int main(int argc, char **argv)
{
    const char *url = getenv("WARREN_URL") ? getenv("WARREN_URL") : BENCH_DEFAULT_URL;
    const char *exchange = "warren", *worker = "diag.noop", *v;
    long long count = 100000;
    size_t size = 200;
    unsigned window = 256;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url")))
            url = v;
        else if ((v = bench_opt(argc, argv, &i, "--exchange")))
            exchange = v;
        else if ((v = bench_opt(argc, argv, &i, "--worker")))
            worker = v;
        else if ((v = bench_opt(argc, argv, &i, "--count")))
            count = atoll(v);
        else if ((v = bench_opt(argc, argv, &i, "--size")))
            size = (size_t)atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--window")))
            window = (unsigned)atoi(v);
        else
            bench_die("usage: raw_publisher [--url URL] [--exchange X] [--worker W] "
                      "[--count N] [--size BYTES] [--window N]");
    }
    if (count <= 0 || window == 0 || window >= RING / 2)
        bench_die("--count must be positive and --window between 1 and %d", RING / 2 - 1);
    amqp_connection_state_t c = bench_connect(url, 0);
    amqp_confirm_select(c, 1);
    bench_check_reply(amqp_get_rpc_reply(c), "confirm.select");

    char body[4096], id[37];
    amqp_bytes_t ex = amqp_cstring_bytes(exchange), key = amqp_cstring_bytes(worker);
    uint64_t published = 0, nacked = 0;
    long long t0 = bench_mono_ns();
    for (long long n = 0; n < count; n++) {
        size_t len = bench_body(body, sizeof body, n, size);
        bench_uuid(id);
        amqp_basic_properties_t props;
        bench_job_props(&props, worker, id);
        amqp_bytes_t b = {len, body};
        int rc = amqp_basic_publish(c, 1, ex, key, 0, 0, &props, b);
        if (rc != AMQP_STATUS_OK)
            bench_die("basic.publish: %s", amqp_error_string2(rc));
        published++;
        while (published - acked_upto >= window)
            read_confirms(c, &nacked);
    }
    while (acked_upto < published)
        read_confirms(c, &nacked);
    double secs = (bench_mono_ns() - t0) / 1e9;
    bench_close(c);
    if (nacked)
        bench_die("%llu messages were nacked", (unsigned long long)nacked);
    printf("raw_publisher count=%lld secs=%.3f rate=%.0f\n", count, secs, count / secs);
    return 0;
}
