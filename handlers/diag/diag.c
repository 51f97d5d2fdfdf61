/* The diag module: diagnostic workers for operators and tests.
 *
 *   diag.echo    logs its arguments and succeeds
 *   diag.noop    does nothing
 *   diag.sleep   {"ms": N} sleeps N milliseconds, reporting progress
 *   diag.fail    {"times": N} fails transiently while attempt <= N, then
 *                succeeds; {"permanent": true} fails permanently;
 *                {"always": true} always fails transiently; with none of
 *                them it fails permanently
 *   diag.crash   kills its own process with SIGSEGV
 *   diag.snooze  {"times": N, "ms": M} snoozes M ms (default 1000) until
 *                snoozed N times, then succeeds
 *   diag.record  appends one JSON line per job to the module config's
 *                record_file; {"sleep_ms": N} sleeps first and records
 *                when it started
 *
 * diag.record is how the integration and fault tests prove that every job
 * ran: each line is written with a single write() on an O_APPEND file, so
 * lines from many worker processes (and hosts sharing a folder) never
 * interleave, and the file is opened per job, so it may be moved away or
 * truncated between test runs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>

static struct {
    char *record_file; /* NULL: diag.record fails permanently */
} diag;

/* Writes the time as RFC 3339 UTC with milliseconds. */
static void format_time(const struct timespec *ts, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts->tv_nsec / 1000000L);
}

static void now_text(char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    format_time(&ts, buf, size);
}

/* Sleeps the whole time even when signals interrupt it. */
static void sleep_ms(long long ms)
{
    struct timespec left = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

static warren_outcome echo_run(warren_job *job, void *user)
{
    (void)user;
    char *args = json_dumps(warren_job_args(job), JSON_COMPACT | JSON_PRESERVE_ORDER);
    warren_job_log(job, WARREN_LOG_INFO, "echo %s (attempt %d)", args ? args : "{}",
                   warren_job_attempt(job));
    free(args);
    return WARREN_JOB_OK;
}

static warren_outcome noop_run(warren_job *job, void *user)
{
    (void)job;
    (void)user;
    return WARREN_JOB_OK;
}

static warren_outcome sleep_run(warren_job *job, void *user)
{
    (void)user;
    json_int_t ms = json_integer_value(json_object_get(warren_job_args(job), "ms"));
    if (ms < 0)
        return warren_job_fail(job, "diag.sleep: ms must not be negative (got %lld)",
                               (long long)ms);
    /* In slices of 100 ms, reporting progress after each: the host turns
     * that into `progress` events for the job history. */
    for (json_int_t done = 0; done < ms;) {
        json_int_t slice = ms - done < 100 ? ms - done : 100;
        sleep_ms(slice);
        done += slice;
        warren_job_progress(job, done, ms);
    }
    return WARREN_JOB_OK;
}

static warren_outcome fail_run(warren_job *job, void *user)
{
    (void)user;
    json_t *args = warren_job_args(job);
    json_t *times = json_object_get(args, "times");
    int attempt = warren_job_attempt(job);
    if (json_is_true(json_object_get(args, "permanent")))
        return warren_job_fail(job, "diag.fail: permanent failure, as asked");
    if (json_is_true(json_object_get(args, "always")))
        return warren_job_retry(job, "diag.fail: transient failure (attempt %d), as asked",
                                attempt);
    if (!times)
        return warren_job_fail(job, "diag.fail: failing, as asked (no \"times\", "
                                    "\"permanent\" or \"always\" given)");
    json_int_t n = json_integer_value(times);
    if (attempt <= n)
        return warren_job_retry(job, "diag.fail: planned failure %d of %lld", attempt,
                                (long long)n);
    return WARREN_JOB_OK;
}

/* Snoozes ("later, in ms") until the job has been snoozed `times` times,
 * then succeeds: x-warren-snoozes counts them. */
static warren_outcome snooze_run(warren_job *job, void *user)
{
    (void)user;
    json_t *args = warren_job_args(job);
    json_int_t times = json_integer_value(json_object_get(args, "times"));
    json_int_t ms = json_is_integer(json_object_get(args, "ms"))
                        ? json_integer_value(json_object_get(args, "ms"))
                        : 1000;
    json_int_t done =
        json_integer_value(json_object_get(warren_job_headers(job), "x-warren-snoozes"));
    if (done < times)
        return warren_job_snooze(job, ms);
    warren_job_log(job, WARREN_LOG_INFO, "diag.snooze: done after %lld snooze(s)",
                   (long long)done);
    return WARREN_JOB_OK;
}

static warren_outcome crash_run(warren_job *job, void *user)
{
    (void)user;
    /* Sanitizers and the host may have their own SIGSEGV handlers, and a
     * thread may block it: restore the default and make sure it arrives. */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, NULL);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    return warren_job_fail(job, "diag.crash: still alive after raising SIGSEGV");
}

/* Builds the record line, with its newline. NULL when out of memory. */
static char *record_line(warren_job *job, const char *started, size_t *len)
{
    char at[40];
    now_text(at, sizeof at);
    json_t *line = json_pack("{s:s, s:i, s:s, s:O, s:s}", "id", warren_job_id(job), "attempt",
                             warren_job_attempt(job), "worker", warren_job_worker(job), "args",
                             warren_job_args(job), "at", at);
    if (line && started)
        json_object_set_new(line, "started", json_string(started));
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(line);
    if (!text)
        return NULL;
    *len = strlen(text);
    char *with_nl = realloc(text, *len + 2);
    if (!with_nl) {
        free(text);
        return NULL;
    }
    with_nl[(*len)++] = '\n';
    with_nl[*len] = '\0';
    return with_nl;
}

/* One write() per line: never a partial line between two others. */
static warren_outcome record_append(warren_job *job, const char *text, size_t len)
{
    int fd = open(diag.record_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return warren_job_retry(job, "diag.record: cannot open '%s': %s", diag.record_file,
                                strerror(errno));
    ssize_t n;
    do
        n = write(fd, text, len);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    if (close(fd) != 0 && n == (ssize_t)len)
        return warren_job_retry(job, "diag.record: closing '%s': %s", diag.record_file,
                                strerror(errno));
    if (n < 0)
        return warren_job_retry(job, "diag.record: writing '%s': %s", diag.record_file,
                                strerror(saved));
    if ((size_t)n != len)
        return warren_job_retry(job, "diag.record: short write to '%s' (%zd of %zu bytes)",
                                diag.record_file, n, len);
    return WARREN_JOB_OK;
}

static warren_outcome record_run(warren_job *job, void *user)
{
    (void)user;
    if (!diag.record_file)
        return warren_job_fail(job, "diag.record: no record_file in the diag module config");
    json_t *sleep = json_object_get(warren_job_args(job), "sleep_ms");
    char started[40];
    if (sleep) {
        now_text(started, sizeof started);
        if (json_integer_value(sleep) > 0)
            sleep_ms(json_integer_value(sleep));
    }
    size_t len = 0;
    char *text = record_line(job, sleep ? started : NULL, &len);
    if (!text)
        return warren_job_retry(job, "diag.record: out of memory");
    warren_outcome out = record_append(job, text, len);
    free(text);
    return out;
}

static const char *const sleep_keys[] = {"ms", NULL};
static const char *const fail_keys[] = {"times", "permanent", "always", NULL};
static const char *const snooze_keys[] = {"times", "ms", NULL};
static const char *const record_keys[] = {"sleep_ms", NULL};

static const warren_worker_def workers[] = {
    {.name = "diag.echo", .handler = echo_run},
    {.name = "diag.noop", .handler = noop_run},
    {.name = "diag.sleep", .handler = sleep_run, .schema = "{s:I}", .schema_keys = sleep_keys},
    {.name = "diag.fail",
     .handler = fail_run,
     .schema = "{s?:I, s?:b, s?:b}",
     .schema_keys = fail_keys},
    {.name = "diag.crash", .handler = crash_run},
    {.name = "diag.snooze", .handler = snooze_run, .schema = "{s:I, s?:I}",
     .schema_keys = snooze_keys},
    {.name = "diag.record", .handler = record_run, .schema = "{s?:I}", .schema_keys = record_keys},
};

static void diag_fini(void)
{
    free(diag.record_file);
    diag.record_file = NULL;
}

static warren_status diag_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    diag_fini();
    json_t *file = json_object_get(config, "record_file");
    if (file && !json_is_string(file))
        return warren_error_set(err, WARREN_ECONFIG, "diag: record_file must be a string");
    if (file && json_string_length(file) == 0)
        return warren_error_set(err, WARREN_ECONFIG, "diag: record_file must not be empty");
    if (file && !(diag.record_file = strdup(json_string_value(file))))
        return warren_error_set(err, WARREN_ENOMEM, "diag: out of memory");
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        warren_status st = warren_registry_add(reg, &workers[i], err);
        if (st != WARREN_OK) {
            diag_fini();
            return st;
        }
    }
    return WARREN_OK;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1,
    .name = "diag",
    .init = diag_init,
    .fini = diag_fini,
};
