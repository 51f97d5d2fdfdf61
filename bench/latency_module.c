/* The bench module: one worker, `bench.latency`, that records when a job
 * reached its handler.
 *
 * For each job it appends "<latency ns> <epoch ns> <n>\n" to the module
 * config's `out_file`, where latency is CLOCK_MONOTONIC now minus the
 * job's "t" argument (latency_probe puts the publish time there; -1 when
 * "t" is 0 or missing) and epoch is CLOCK_REALTIME now (scripts/bench uses
 * it for "start to first job handled"). One write() per line on an
 * O_APPEND descriptor opened once per process (modules are loaded after
 * fork), so lines of several worker processes never interleave.
 *
 *   modules = ( { path = "/abs/path/bench.so"; config = { out_file = "/tmp/x"; }; } );
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>

static int out_fd = -1;

static long long ns_of(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static warren_outcome latency_run(warren_job *job, void *user)
{
    (void)user;
    long long now = ns_of(CLOCK_MONOTONIC), epoch = ns_of(CLOCK_REALTIME);
    json_t *args = warren_job_args(job);
    long long t = (long long)json_integer_value(json_object_get(args, "t"));
    long long n = json_is_integer(json_object_get(args, "n"))
                      ? (long long)json_integer_value(json_object_get(args, "n"))
                      : -1;
    char line[96];
    int len = snprintf(line, sizeof line, "%lld %lld %lld\n", t > 0 ? now - t : -1LL, epoch, n);
    if (write(out_fd, line, (size_t)len) != len)
        return warren_job_fail(job, "bench.latency: write: %s", strerror(errno));
    return WARREN_JOB_OK;
}

static warren_status init(warren_registry *reg, const json_t *config, warren_error *err)
{
    const char *path = json_string_value(json_object_get(config, "out_file"));
    if (!path)
        return warren_error_set(err, WARREN_EINVAL, "bench: config.out_file is required");
    out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0)
        return warren_error_set(err, WARREN_EINVAL, "bench: %s: %s", path, strerror(errno));
    warren_worker_def def = {.name = "bench.latency", .handler = latency_run};
    return warren_registry_add(reg, &def, err);
}

static void fini(void)
{
    if (out_fd >= 0)
        close(out_fd);
    out_fd = -1;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1, .name = "bench", .init = init, .fini = fini,
};
