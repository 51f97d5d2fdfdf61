/* raw_consumer: the baseline a warren worker process is measured against.
 *
 * A plain rabbitmq-c consumer doing the least a correct job consumer does:
 * basic.qos(prefetch), manual ack of each message after its body was parsed
 * with jansson (json_loads, checked to be an object, freed). No batching
 * of acks.
 *
 *   raw_consumer [--url URL] [--queue Q] [--count N] [--procs P]
 *                [--prefetch 100] [--latency-out FILE] [--events EXCHANGE [--confirm]]
 *
 * P processes (each with its own connection, like warrend's worker
 * processes) consume from Q until N messages were acked in all, then exit.
 * With --procs 1 it consumes in this process (no fork; handy under
 * callgrind). Prints one line:
 *   raw_consumer procs=P count=N first=T last=T secs=S rate=R ready_s=S hwm_kib=K
 * first/last are wall-clock (epoch) times of the first delivery and the
 * last ack; ready_s is start -> first delivery; hwm_kib the largest VmHWM
 * of the consuming processes.
 *
 * --latency-out: each body carries "t" (CLOCK_MONOTONIC ns at publish, see
 * latency_probe); the consumer writes "<now - t> <epoch ns>" per message
 * to FILE once all N are in (written to FILE.tmp, then renamed).
 *
 * --events EXCHANGE: per message, before its ack, publishes two persistent
 * JSON events of ~200 bytes ("started", "succeeded", routing key
 * diag.noop.<event>) to EXCHANGE on the same channel, the traffic of a
 * warren host with events on; --confirm puts the channel in confirm mode
 * first (as warren's is) and reads the broker's confirms without waiting
 * for them. The baseline of section (g) of scripts/bench. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <jansson.h>
#include "bench_common.h"

struct shared {
    _Atomic long long done;     /* messages acked, all processes */
    _Atomic long long first_ns; /* CLOCK_REALTIME ns of the first delivery, 0: none */
    _Atomic long long last_ns;  /* ... of the latest ack */
    _Atomic long hwm_kib;
    long long lat[];            /* --latency-out: one per message */
};

static struct shared *sh;
static long long count = 100000;
static int latency;
static const char *events; /* --events EXCHANGE, or NULL */
static int confirm;

/* One event as a host would publish it: persistent JSON, ~200 bytes. */
static void publish_event(amqp_connection_state_t c, amqp_bytes_t id, const char *event)
{
    char body[512], key[64];
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"%.*s\",\"worker\":\"diag.noop\",\"queue\":\"default\","
                     "\"attempt\":1,\"event\":\"%s\",\"at\":\"2026-05-01T02:00:00.123Z\","
                     "\"duration_ms\":0,\"error\":null,\"host\":\"bench\"}",
                     (int)(id.len < 64 ? id.len : 64), (const char *)id.bytes, event);
    snprintf(key, sizeof key, "diag.noop.%s", event);
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode = 2;
    amqp_bytes_t b = {(size_t)n, body};
    if (amqp_basic_publish(c, 1, amqp_cstring_bytes(events), amqp_cstring_bytes(key), 0, 0, &p,
                           b) != AMQP_STATUS_OK)
        bench_die("publishing an event failed");
}

static long long real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void set_min(_Atomic long long *a, long long v)
{
    long long cur = atomic_load(a);
    while ((cur == 0 || v < cur) && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void set_max(_Atomic long long *a, long long v)
{
    long long cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void consume(const char *url, const char *queue, int prefetch)
{
    amqp_connection_state_t c = bench_connect(url, 0);
    amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
    bench_check_reply(amqp_get_rpc_reply(c), "basic.qos");
    if (confirm) {
        amqp_confirm_select(c, 1);
        bench_check_reply(amqp_get_rpc_reply(c), "confirm.select");
    }
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    bench_check_reply(amqp_get_rpc_reply(c), "basic.consume");
    struct timeval poll = {0, 100000};
    long long my_last = 0;
    int got_first = 0;
    while (atomic_load(&sh->done) < count) {
        amqp_envelope_t env;
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &poll, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* A method frame other than basic.deliver (a confirm of an
             * event, a consumer cancel): read it and go on. */
            amqp_frame_t f;
            if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
                bench_die("connection lost");
            continue;
        }
        bench_check_reply(r, "consume");
        long long now_mono = latency ? bench_mono_ns() : 0;
        if (!got_first) {
            got_first = 1;
            set_min(&sh->first_ns, real_ns());
        }
        json_error_t jerr;
        json_t *body = json_loadb(env.message.body.bytes, env.message.body.len, 0, &jerr);
        if (!json_is_object(body))
            bench_die("message %llu: not a JSON object: %s",
                      (unsigned long long)env.delivery_tag, jerr.text);
        long long t = latency ? json_integer_value(json_object_get(body, "t")) : 0;
        json_decref(body);
        if (events) {
            publish_event(c, env.message.properties.message_id, "started");
            publish_event(c, env.message.properties.message_id, "succeeded");
        }
        if (amqp_basic_ack(c, 1, env.delivery_tag, 0) != AMQP_STATUS_OK)
            bench_die("basic.ack failed");
        amqp_destroy_envelope(&env);
        long long k = atomic_fetch_add(&sh->done, 1);
        if (latency && k < count)
            sh->lat[k] = t ? now_mono - t : -1;
        if (k + 1 >= count)
            my_last = real_ns(); /* the very last ack of the whole run */
    }
    /* Only whoever acked the last message knows when the run ended. */
    if (my_last)
        set_max(&sh->last_ns, my_last);
    long kib = bench_vmhwm_kib("self");
    long cur = atomic_load(&sh->hwm_kib);
    while (kib > cur && !atomic_compare_exchange_weak(&sh->hwm_kib, &cur, kib))
        ;
    bench_close(c);
}

int main(int argc, char **argv)
{
    const char *url = getenv("WARREN_URL") ? getenv("WARREN_URL") : BENCH_DEFAULT_URL;
    const char *queue = "warren.default", *lat_out = NULL, *v;
    int procs = 1, prefetch = 100;
    for (int i = 1; i < argc; i++) {
        if ((v = bench_opt(argc, argv, &i, "--url")))
            url = v;
        else if ((v = bench_opt(argc, argv, &i, "--queue")))
            queue = v;
        else if ((v = bench_opt(argc, argv, &i, "--count")))
            count = atoll(v);
        else if ((v = bench_opt(argc, argv, &i, "--procs")))
            procs = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--prefetch")))
            prefetch = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--latency-out")))
            lat_out = v;
        else if ((v = bench_opt(argc, argv, &i, "--events")))
            events = v;
        else if (!strcmp(argv[i], "--confirm"))
            confirm = 1;
        else
            bench_die("usage: raw_consumer [--url URL] [--queue Q] [--count N] [--procs P] "
                      "[--prefetch N] [--latency-out FILE] [--events EXCHANGE [--confirm]]");
    }
    if (count <= 0 || procs <= 0 || prefetch <= 0 || prefetch > 65535)
        bench_die("--count, --procs and --prefetch must be positive");
    latency = lat_out != NULL;
    size_t size = sizeof *sh + (latency ? (size_t)count * sizeof(long long) : 0);
    sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        bench_die("mmap: %s", strerror(errno));
    long long start = real_ns();
    if (procs == 1) {
        consume(url, queue, prefetch);
    } else {
        fflush(NULL);
        for (int p = 0; p < procs; p++) {
            pid_t pid = fork();
            if (pid < 0)
                bench_die("fork: %s", strerror(errno));
            if (pid == 0) {
                consume(url, queue, prefetch);
                _exit(0);
            }
        }
        int status, failed = 0;
        while (wait(&status) > 0)
            failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (failed)
            bench_die("a consumer process failed");
    }
    long long first = sh->first_ns, last = sh->last_ns, done = sh->done;
    double secs = (last - first) / 1e9;
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                 kids.ru_stime.tv_sec +
                 (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
                  kids.ru_stime.tv_usec) / 1e6;
    printf("raw_consumer procs=%d count=%lld first=%.6f last=%.6f secs=%.3f rate=%.0f "
           "ready_s=%.3f hwm_kib=%ld cpu_s=%.3f\n",
           procs, done, first / 1e9, last / 1e9, secs, secs > 0 ? done / secs : 0.0,
           (first - start) / 1e9, (long)sh->hwm_kib, cpu);
    if (latency) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", lat_out);
        FILE *f = fopen(tmp, "w");
        if (!f)
            bench_die("%s: %s", tmp, strerror(errno));
        for (long long k = 0; k < count; k++)
            fprintf(f, "%lld 0\n", sh->lat[k]);
        if (fclose(f) != 0 || rename(tmp, lat_out) != 0)
            bench_die("%s: %s", lat_out, strerror(errno));
    }
    return 0;
}
