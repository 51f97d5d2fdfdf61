/* latency_probe: end-to-end latency at a fixed publish rate.
 *
 * Publishes `bench.latency` jobs (warren jobs on the wire, persistent) at
 * --rate jobs/s for --seconds, each body {"t":T,"n":N,"pad":"..."} (~200
 * bytes) where T is CLOCK_MONOTONIC in ns taken just before basic.publish.
 * Whatever consumes them (warrend with bench/latency_module.c, or
 * raw_consumer --latency-out) writes one line per job, "<latency ns> ...",
 * to --results FILE; the probe waits until FILE holds every job, then
 * prints
 *   latency n=N p50_ms=.. p99_ms=.. p999_ms=.. max_ms=..
 * The first --warmup jobs carry t=0 and are not counted (the consumer
 * writes -1 for them). No publisher confirms: the probe measures delivery,
 * not the publisher (a confirm waits for the broker's fsync, the delivery
 * to a waiting consumer does not).
 *
 *   latency_probe [--url URL] [--worker bench.latency] [--rate 1000]
 *                 [--seconds 10] [--warmup 200] --results FILE
 *                 [--timeout 60] */
#include "bench_common.h"

static size_t probe_body(char *buf, size_t cap, long long t, long long n, size_t size)
{
    int head = snprintf(buf, cap, "{\"t\":%lld,\"n\":%lld,\"pad\":\"", t, n);
    size_t pad = size > (size_t)head + 2 ? size - (size_t)head - 2 : 0;
    if ((size_t)head + pad + 3 > cap)
        pad = cap - (size_t)head - 3;
    for (size_t i = 0; i < pad; i++)
        buf[head + i] = (char)('a' + i % 26);
    memcpy(buf + head + pad, "\"}", 3);
    return (size_t)head + pad + 2;
}

/* Lines in FILE, -1 if it does not exist yet. */
static long long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long n = 0;
    int ch;
    while ((ch = getc_unlocked(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *url = getenv("WARREN_URL") ? getenv("WARREN_URL") : BENCH_DEFAULT_URL;
    const char *worker = "bench.latency", *results = NULL, *v;
    double rate = 1000, seconds = 10;
    long long warmup = 200;
    int timeout = 60;
    size_t size = 200;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url")))
            url = v;
        else if ((v = bench_opt(argc, argv, &i, "--worker")))
            worker = v;
        else if ((v = bench_opt(argc, argv, &i, "--rate")))
            rate = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--seconds")))
            seconds = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--warmup")))
            warmup = atoll(v);
        else if ((v = bench_opt(argc, argv, &i, "--results")))
            results = v;
        else if ((v = bench_opt(argc, argv, &i, "--timeout")))
            timeout = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--size")))
            size = (size_t)atol(v);
        else
            bench_die("usage: latency_probe [--url URL] [--worker W] [--rate N] [--seconds S] "
                      "[--warmup N] --results FILE [--timeout S]");
    }
    if (!results || rate <= 0 || seconds <= 0 || warmup < 0)
        bench_die("--results FILE is required; --rate and --seconds must be positive");
    long long count = (long long)(rate * seconds);
    long long total = count + warmup;

    amqp_connection_state_t c = bench_connect(url, 0);
    amqp_bytes_t ex = amqp_cstring_bytes("warren"), key = amqp_cstring_bytes(worker);
    char body[4096], id[37];
    long long step = (long long)(1e9 / rate);
    long long t0 = bench_mono_ns();
    long long late = 0;
    for (long long n = 0; n < total; n++) {
        long long due = t0 + n * step;
        struct timespec ts = {due / 1000000000LL, due % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        bench_uuid(id);
        amqp_basic_properties_t props;
        bench_job_props(&props, worker, id);
        long long now = bench_mono_ns();
        late += now - due > 1000000; /* over 1 ms behind the schedule */
        size_t len = probe_body(body, sizeof body, n < warmup ? 0 : now, n, size);
        amqp_bytes_t b = {len, body};
        int rc = amqp_basic_publish(c, 1, ex, key, 0, 0, &props, b);
        if (rc != AMQP_STATUS_OK)
            bench_die("basic.publish: %s", amqp_error_string2(rc));
    }
    double pub_secs = (bench_mono_ns() - t0) / 1e9;
    bench_close(c);

    long long deadline = bench_mono_ns() + (long long)timeout * 1000000000LL;
    long long have;
    while ((have = count_lines(results)) < total) {
        if (bench_mono_ns() > deadline)
            bench_die("%s: %lld of %lld jobs recorded after %d s", results, have < 0 ? 0 : have,
                      total, timeout);
        usleep(50000);
    }
    FILE *f = fopen(results, "r");
    long long *lat = malloc((size_t)total * sizeof *lat);
    if (!f || !lat)
        bench_die("%s: %s", results, strerror(errno));
    size_t n = 0;
    char line[256];
    while (fgets(line, sizeof line, f) && n < (size_t)total) {
        long long x = atoll(line);
        if (x >= 0)
            lat[n++] = x;
    }
    fclose(f);
    printf("latency_probe rate=%.0f published=%lld secs=%.3f late_over_1ms=%lld\n", rate, total,
           pub_secs, late);
    bench_print_latency(stdout, "latency", lat, n);
    free(lat);
    return 0;
}
