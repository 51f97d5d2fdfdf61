/* Helpers shared by the benchmark programs (header only, no warren
 * internals): clocks, AMQP URL parsing, connecting with rabbitmq-c, the
 * ~200-byte job body every benchmark publishes, UUIDs, percentiles. */
#ifndef WARREN_BENCH_COMMON_H
#define WARREN_BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>

#define BENCH_DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"

static inline long long bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline double bench_real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static inline void bench_check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        bench_die("%s: %s", what, amqp_error_string2(r.library_error));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            bench_die("%s: connection closed %d %.*s", what, m->reply_code,
                      (int)m->reply_text.len, (char *)m->reply_text.bytes);
        }
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            bench_die("%s: channel closed %d %.*s", what, m->reply_code,
                      (int)m->reply_text.len, (char *)m->reply_text.bytes);
        }
    }
    bench_die("%s: unexpected reply type %d", what, r.reply_type);
}

/* Connects to `url` (amqp://user:pass@host:port/vhost; "/" or nothing is
 * vhost "/") and opens channel 1. */
static inline amqp_connection_state_t bench_connect(const char *url, int heartbeat)
{
    char *copy = strdup(url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (!copy || amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
        bench_die("bad URL '%s'", url);
    if (!ci.vhost || !ci.vhost[0])
        ci.vhost = "/";
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK)
        bench_die("cannot connect to %s:%d", ci.host, ci.port);
    bench_check_reply(amqp_login(c, ci.vhost, 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN,
                                 ci.user, ci.password),
                      "login");
    amqp_channel_open(c, 1);
    bench_check_reply(amqp_get_rpc_reply(c), "channel.open");
    free(copy);
    return c;
}

static inline void bench_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* The job body every benchmark publishes: {"n":N,"pad":"..."} of about
 * `size` bytes (at least the braces and n). Returns its length. */
static inline size_t bench_body(char *buf, size_t cap, long long n, size_t size)
{
    int head = snprintf(buf, cap, "{\"n\":%lld,\"pad\":\"", n);
    size_t pad = size > (size_t)head + 2 ? size - (size_t)head - 2 : 0;
    if ((size_t)head + pad + 3 > cap)
        pad = cap - (size_t)head - 3;
    for (size_t i = 0; i < pad; i++)
        buf[head + i] = (char)('a' + i % 26);
    memcpy(buf + head + pad, "\"}", 3);
    return (size_t)head + pad + 2;
}

/* A random (v4) UUID from a buffered /dev/urandom. */
static inline void bench_uuid(char out[37])
{
    static unsigned char pool[4096];
    static size_t left = 0;
    static int fd = -1;
    if (left < 16) {
        if (fd < 0)
            fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, pool, sizeof pool) != (ssize_t)sizeof pool)
            bench_die("cannot read /dev/urandom");
        left = sizeof pool;
    }
    unsigned char *b = pool + sizeof pool - left;
    left -= 16;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = '\0';
}

/* The properties warren's producer puts on a job (see src/lib/producer.c),
 * so that raw and warren-published jobs are the same on the wire. */
static inline void bench_job_props(amqp_basic_properties_t *p, const char *worker,
                                   const char *id)
{
    memset(p, 0, sizeof *p);
    p->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
    p->content_type = amqp_cstring_bytes("application/json");
    p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p->priority = 0;
    p->timestamp = (uint64_t)time(NULL);
    p->message_id = amqp_cstring_bytes(id);
    p->type = amqp_cstring_bytes(worker);
}

static int bench_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its q-quantile (nearest rank). */
static inline long long bench_quantile(long long *v, size_t n, double q, int sorted)
{
    if (n == 0)
        return 0;
    if (!sorted)
        qsort(v, n, sizeof *v, bench_cmp_ll);
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* Prints "p50_ms=.. p99_ms=.. p999_ms=.. max_ms=.. n=.." for latencies in ns. */
static inline void bench_print_latency(FILE *f, const char *label, long long *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_ll);
    fprintf(f, "%s n=%zu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n", label, n,
            bench_quantile(v, n, 0.50, 1) / 1e6, bench_quantile(v, n, 0.99, 1) / 1e6,
            bench_quantile(v, n, 0.999, 1) / 1e6, n ? v[n - 1] / 1e6 : 0.0);
}

/* VmHWM (peak resident set) of a process in KiB, -1 if unknown. */
static inline long bench_vmhwm_kib(const char *pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* A tiny argv helper: matches "--name VALUE" and advances *i. */
static inline const char *bench_opt(int argc, char **argv, int *i, const char *name)
{
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc)
        bench_die("%s needs a value", name);
    return argv[++*i];
}

#endif
