/* drain_watch: times how long a consumer takes to drain a backlog, from
 * outside the consumer, the same way for every consumer measured.
 *
 *   drain_watch [--url URL] [--queue Q] --count N [--metrics HOST:PORT]
 *               [--until start|empty|done] [--interval-ms 10] [--timeout 600]
 *   drain_watch [--url URL] [--queue Q] --purge      (empties Q and exits)
 *   drain_watch [--url URL] [--queue Q] --ready      (prints "ready=N consumers=C")
 *
 * It polls the queue's ready count (passive queue.declare, one small
 * round trip) every --interval-ms. Once the queue holds N ready messages
 * it prints "watching" (the caller starts the consumer then); the first
 * poll that sees fewer than N is the start (the midpoint between that poll
 * and the one before it: the broker hands out a prefetch window at once,
 * so the count drops with the first delivery).
 *   --until start  stop there (the consumer reports its own end time);
 *   --until empty  the end is the first poll that sees 0 ready (up to
 *                  prefetch x processes jobs may still be unacked then);
 *   --until done   (needs --metrics) after 0 ready, polls warrend's
 *                  /metrics until the jobs finished (warren_jobs_total,
 *                  every outcome but retried/snoozed) reach N: the end.
 * Prints "drain_watch start=T end=T secs=S rate=R succeeded=K" (epoch
 * times; end/secs/rate absent with --until start). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "bench_common.h"

static long long ready_count(amqp_connection_state_t c, const char *queue, long long *consumers)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    if (!ok)
        bench_check_reply(amqp_get_rpc_reply(c), "queue.declare (passive)");
    if (consumers)
        *consumers = ok->consumer_count;
    return ok->message_count;
}

/* Jobs finished according to warrend's /metrics; -1 when unreachable. */
static long long metrics_done(const char *hostport, long long *succeeded)
{
    char host[64];
    int port = 0;
    if (sscanf(hostport, "%63[^:]:%d", host, &port) != 2)
        bench_die("--metrics wants HOST:PORT");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[160];
    int len = snprintf(req, sizeof req,
                       "GET /metrics HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", hostport);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    static char buf[1 << 20];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)n;
    close(fd);
    buf[have] = '\0';
    long long done = 0;
    *succeeded = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "warren_jobs_total{", 18) != 0)
            continue;
        char *end = strchr(line, '}');
        char *nl = strchr(line, '\n');
        if (!end || (nl && end > nl))
            continue;
        long long v = atoll(end + 1);
        if (memmem(line, (size_t)(end - line), "outcome=\"succeeded\"", 19))
            *succeeded += v;
        if (!memmem(line, (size_t)(end - line), "outcome=\"retried\"", 17) &&
            !memmem(line, (size_t)(end - line), "outcome=\"snoozed\"", 17))
            done += v;
    }
    return done;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    const char *url = getenv("WARREN_URL") ? getenv("WARREN_URL") : BENCH_DEFAULT_URL;
    const char *queue = "warren.default", *metrics = NULL, *until = "empty", *v;
    long long count = -1;
    int interval = 10, timeout = 600, purge = 0, show_ready = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url")))
            url = v;
        else if ((v = bench_opt(argc, argv, &i, "--queue")))
            queue = v;
        else if ((v = bench_opt(argc, argv, &i, "--count")))
            count = atoll(v);
        else if ((v = bench_opt(argc, argv, &i, "--metrics")))
            metrics = v;
        else if ((v = bench_opt(argc, argv, &i, "--until")))
            until = v;
        else if ((v = bench_opt(argc, argv, &i, "--interval-ms")))
            interval = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--timeout")))
            timeout = atoi(v);
        else if (!strcmp(argv[i], "--purge"))
            purge = 1;
        else if (!strcmp(argv[i], "--ready"))
            show_ready = 1;
        else
            bench_die("usage: drain_watch [--url URL] [--queue Q] --count N [--metrics H:P] "
                      "[--until start|empty|done] [--interval-ms MS] [--timeout S]"
                      " | [--queue Q] --purge | [--queue Q] --ready");
    }
    if (purge) {
        amqp_connection_state_t c = bench_connect(url, 0);
        amqp_queue_purge_ok_t *ok = amqp_queue_purge(c, 1, amqp_cstring_bytes(queue));
        if (!ok)
            bench_check_reply(amqp_get_rpc_reply(c), "queue.purge");
        printf("purged %s: %u\n", queue, ok->message_count);
        bench_close(c);
        return 0;
    }
    if (show_ready) {
        amqp_connection_state_t c = bench_connect(url, 0);
        long long consumers = 0, ready = ready_count(c, queue, &consumers);
        printf("ready=%lld consumers=%lld\n", ready, consumers);
        bench_close(c);
        return 0;
    }
    if (count <= 0 || interval <= 0)
        bench_die("--count and --interval-ms must be positive");
    if (strcmp(until, "start") && strcmp(until, "empty") && strcmp(until, "done"))
        bench_die("--until is start, empty or done");
    if (!strcmp(until, "done") && !metrics)
        bench_die("--until done needs --metrics");
    long long deadline = bench_mono_ns() + (long long)timeout * 1000000000LL;
#define CHECK_DEADLINE(what)                                                                   \
    do {                                                                                       \
        if (bench_mono_ns() > deadline)                                                        \
            bench_die("timed out after %d s waiting for %s", timeout, what);                   \
    } while (0)

    amqp_connection_state_t c = bench_connect(url, 0);
    long long ready;
    while ((ready = ready_count(c, queue, NULL)) < count) {
        CHECK_DEADLINE("the backlog");
        nap_ms(interval);
    }
    printf("watching %s ready=%lld\n", queue, ready);
    fflush(stdout);
    double before = bench_real_s(), start;
    for (;;) {
        nap_ms(interval);
        ready = ready_count(c, queue, NULL);
        double now = bench_real_s();
        if (ready < count) {
            start = (before + now) / 2;
            break;
        }
        before = now;
        CHECK_DEADLINE("the first delivery");
    }
    if (!strcmp(until, "start")) {
        printf("drain_watch start=%.6f\n", start);
        bench_close(c);
        return 0;
    }
    double end;
    before = bench_real_s();
    for (;;) {
        ready = ready_count(c, queue, NULL);
        double now = bench_real_s();
        if (ready == 0) {
            end = (before + now) / 2;
            break;
        }
        before = now;
        CHECK_DEADLINE("an empty queue");
        nap_ms(interval);
    }
    long long succeeded = -1;
    if (metrics) {
        before = bench_real_s();
        for (;;) {
            long long done = metrics_done(metrics, &succeeded);
            double now = bench_real_s();
            if (done >= count) {
                end = (before + now) / 2;
                break;
            }
            before = now;
            CHECK_DEADLINE("warren_jobs_total to reach the count");
            nap_ms(interval);
        }
    }
    bench_close(c);
    printf("drain_watch start=%.6f end=%.6f secs=%.3f rate=%.0f succeeded=%lld\n", start, end,
           end - start, count / (end - start), succeeded);
    return 0;
}
