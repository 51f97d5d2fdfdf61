/* api_publisher: publishes the benchmark jobs through warren's C API,
 * warren_publish_batch() (include/warren/producer.h), the way a service
 * would: each job's arguments built as a json_t ({"n":N,"pad":"..."}, the
 * same ~200 bytes as raw_publisher's body), a generated id, default
 * window (256).
 *
 *   api_publisher [--url URL] [--worker diag.noop] [--count N] [--size 200]
 *                 [--chunk 10000] [--window 0]
 *
 * Jobs go in batches of --chunk (the id array of a batch is 257 bytes per
 * job); each batch returns once all its jobs are confirmed. Prints
 *   api_publisher count=N secs=S rate=R
 * timed from the first publish to the last confirm (connecting, which also
 * declares the exchanges, excluded), argument building included. */
#include <warren/warren.h>
#include "bench_common.h"

int main(int argc, char **argv)
{
    const char *url = getenv("WARREN_URL") ? getenv("WARREN_URL") : BENCH_DEFAULT_URL;
    const char *worker = "diag.noop", *v;
    long long count = 100000;
    size_t size = 200, chunk = 10000;
    unsigned window = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url")))
            url = v;
        else if ((v = bench_opt(argc, argv, &i, "--worker")))
            worker = v;
        else if ((v = bench_opt(argc, argv, &i, "--count")))
            count = atoll(v);
        else if ((v = bench_opt(argc, argv, &i, "--size")))
            size = (size_t)atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--chunk")))
            chunk = (size_t)atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--window")))
            window = (unsigned)atoi(v);
        else
            bench_die("usage: api_publisher [--url URL] [--worker W] [--count N] "
                      "[--size BYTES] [--chunk N] [--window N]");
    }
    if (count <= 0 || chunk == 0)
        bench_die("--count and --chunk must be positive");
    /* The pad string the raw body carries, so both bodies are the same size. */
    char body[4096];
    size_t len = bench_body(body, sizeof body, 0, size);
    const char *p0 = strstr(body, "\"pad\":\"") + 7;
    char *pad = strndup(p0, (size_t)(body + len - 2 - p0));

    warren_producer *p;
    warren_error err = {0};
    warren_producer_opts po = {.urls = url, .window = window};
    if (warren_producer_create(&p, &po, &err) != WARREN_OK)
        bench_die("warren_producer_create: %s", err.text);
    warren_batch_job *jobs = calloc(chunk, sizeof *jobs);
    if (!jobs || !pad)
        bench_die("out of memory");
    long long t0 = bench_mono_ns();
    for (long long done = 0; done < count;) {
        size_t n = count - done < (long long)chunk ? (size_t)(count - done) : chunk;
        for (size_t i = 0; i < n; i++) {
            jobs[i].worker = worker;
            jobs[i].args = json_pack("{s:I, s:s}", "n", (json_int_t)(done + i), "pad", pad);
            if (!jobs[i].args)
                bench_die("json_pack failed");
        }
        size_t confirmed = 0;
        warren_status st = warren_publish_batch(p, jobs, n, &confirmed, &err);
        for (size_t i = 0; i < n; i++) {
            json_decref(jobs[i].args);
            jobs[i].args = NULL;
        }
        if (st != WARREN_OK)
            bench_die("warren_publish_batch: %s (%zu of %zu confirmed)", err.text, confirmed, n);
        done += (long long)n;
    }
    double secs = (bench_mono_ns() - t0) / 1e9;
    warren_producer_destroy(p);
    free(jobs);
    free(pad);
    printf("api_publisher count=%lld secs=%.3f rate=%.0f\n", count, secs, count / secs);
    return 0;
}
