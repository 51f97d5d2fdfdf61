/* Job statistics shared by the processes of a host: see stats.h for the
 * design. */
#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <warren/log.h>
#include "stats.h"

/* Counters live in memory shared between processes: they must be
 * lock-free, or the atomics would use a lock private to each process. */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");

#define TABLE_CAP 1024u /* a power of two, twice the series limit */
#define OVERFLOW_INDEX TABLE_CAP
#define QUEUE_MAX 65
#define WORKER_MAX 129
#define N_OUTCOMES 6
#define N_BUCKETS 15 /* 14 bounds and +Inf */
#define CLAIM_SPINS (1u << 20)

static_assert(TABLE_CAP >= 2 * WARREN_STATS_SERIES_MAX, "table must stay half empty");

/* Bucket upper bounds, in nanoseconds, and as the `le` label shows them. */
static const uint64_t bucket_ns[N_BUCKETS - 1] = {
    5000000ull,     10000000ull,    25000000ull,     50000000ull,    100000000ull,
    250000000ull,   500000000ull,   1000000000ull,   2500000000ull,  5000000000ull,
    10000000000ull, 30000000000ull, 60000000000ull,  300000000000ull,
};
static const char *const bucket_le[N_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5",   "5",    "10",    "30",   "60",  "300",  "+Inf",
};
static const char *const outcome_names[N_OUTCOMES] = {"succeeded", "retried", "dead",
                                                      "crashed",   "snoozed", "duplicate"};

enum { SERIES_EMPTY = 0, SERIES_CLAIMED = 1, SERIES_READY = 2 };

struct series {
    _Atomic uint32_t state;
    uint32_t hash;              /* written before state turns READY */
    char queue[QUEUE_MAX];
    char worker[WORKER_MAX];
    _Atomic uint64_t outcomes[N_OUTCOMES];
    _Atomic uint64_t buckets[N_BUCKETS]; /* per bucket; rendered cumulative */
    _Atomic uint64_t sum_ns;
};

/* The slot word: pid, series of the job in flight (index + 1, 0 = none)
 * and the flags. */
#define W_PID(w) ((pid_t)((w) & 0xffffffffull))
#define W_SERIES(w) ((uint32_t)(((w) >> 32) & 0xffffull))
#define W_CONNECTED (1ull << 48)
#define W_CONSUMING (1ull << 49)
#define W_MAKE(pid, series) ((uint64_t)(uint32_t)(pid) | ((uint64_t)(series) << 32))

struct shared {
    _Atomic int n_workers;            /* worker processes the host should have */
    _Atomic int workers[WARREN_STATS_SLOTS_MAX]; /* worker number - 1 -> its slot (0: none) */
    _Atomic uint32_t used;            /* series claimed (or reserved) */
    _Atomic uint32_t overflow_logged;
    _Atomic uint64_t restarts;
    _Atomic uint64_t slots[WARREN_STATS_SLOTS_MAX];
    struct series table[TABLE_CAP + 1]; /* the last one is the overflow series */
};

struct warren_stats {
    struct shared *sh;
    pid_t self;    /* this process, once attached as a worker; else 0 */
    int self_slot; /* its process slot when attached */
};

static int clamp_workers(int n)
{
    if (n < 1)
        return 1;
    return n > WARREN_STATS_SLOTS_MAX ? WARREN_STATS_SLOTS_MAX : n;
}

struct warren_stats *warren_stats_create(int workers)
{
    struct warren_stats *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    /* MAP_ANONYMOUS memory starts zeroed, which is the initial state. */
    void *p = mmap(NULL, sizeof *st->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        free(st);
        return NULL;
    }
    st->sh = p;
    atomic_store(&st->sh->n_workers, clamp_workers(workers));
    struct series *ovf = &st->sh->table[OVERFLOW_INDEX];
    atomic_store(&ovf->state, SERIES_READY);
    return st;
}

void warren_stats_destroy(struct warren_stats *st)
{
    if (!st)
        return;
    munmap(st->sh, sizeof *st->sh);
    free(st);
}

void warren_stats_set_workers(struct warren_stats *st, int workers)
{
    atomic_store(&st->sh->n_workers, clamp_workers(workers));
}

int warren_stats_workers(const struct warren_stats *st)
{
    return atomic_load(&st->sh->n_workers);
}

void warren_stats_set_worker(struct warren_stats *st, int worker, int slot)
{
    if (worker >= 1 && worker <= WARREN_STATS_SLOTS_MAX)
        atomic_store(&st->sh->workers[worker - 1],
                     slot >= 1 && slot <= WARREN_STATS_SLOTS_MAX ? slot : 0);
}

/* The process slot that worker number `worker` runs in (0: none). */
static int worker_slot(const struct warren_stats *st, int worker)
{
    return atomic_load(&st->sh->workers[worker - 1]);
}

/* ---- series ----------------------------------------------------------- */

static uint32_t key_hash(const char *queue, const char *worker)
{
    uint32_t h = 2166136261u; /* FNV-1a over queue, NUL, worker */
    for (const char *p = queue;; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
        if (!*p)
            break;
    }
    for (const char *p = worker; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    return h;
}

static struct series *overflow(struct shared *sh)
{
    if (atomic_exchange(&sh->overflow_logged, 1) == 0)
        warren_log_write(WARREN_LOG_WARN, "metrics.overflow", NULL,
                         "more than %d (queue, worker) metric series; further ones are "
                         "counted with queue=\"\" and worker=\"\"",
                         WARREN_STATS_SERIES_MAX);
    return &sh->table[OVERFLOW_INDEX];
}

/* Waits for a slot being claimed to become READY. A claimer that died
 * between its compare-and-swap and its release leaves the slot CLAIMED
 * forever: after a while we stop waiting and treat it as someone else's. */
static uint32_t wait_ready(struct series *s)
{
    uint32_t state = SERIES_CLAIMED;
    for (uint32_t i = 0; i < CLAIM_SPINS && state == SERIES_CLAIMED; i++)
        state = atomic_load_explicit(&s->state, memory_order_acquire);
    return state;
}

static int same_key(const struct series *s, uint32_t hash, const char *queue, const char *worker)
{
    return s->hash == hash && strcmp(s->queue, queue) == 0 && strcmp(s->worker, worker) == 0;
}

/* Claims slot s for the key, or reports what state it is in. */
static uint32_t try_claim(struct series *s, uint32_t hash, const char *queue, const char *worker)
{
    uint32_t expected = SERIES_EMPTY;
    if (!atomic_compare_exchange_strong(&s->state, &expected, SERIES_CLAIMED))
        return expected;
    s->hash = hash;
    strcpy(s->queue, queue);
    strcpy(s->worker, worker);
    atomic_store_explicit(&s->state, SERIES_READY, memory_order_release);
    return SERIES_EMPTY; /* "it was empty, and is ours now" */
}

/* Finds or registers the series of (queue, worker); its index in *index. */
static struct series *series_get(struct shared *sh, const char *queue, const char *worker,
                                 uint32_t *index)
{
    *index = OVERFLOW_INDEX;
    if (strlen(queue) >= QUEUE_MAX || strlen(worker) >= WORKER_MAX)
        return overflow(sh);
    uint32_t hash = key_hash(queue, worker);
    int reserved = 0;
    struct series *found = NULL;
    for (uint32_t probe = 0; probe < TABLE_CAP && !found; probe++) {
        uint32_t i = (hash + probe) & (TABLE_CAP - 1);
        struct series *s = &sh->table[i];
        uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
        if (state == SERIES_EMPTY) {
            /* Reserve room first, so the table never holds more than
             * the limit; a reservation not used is given back below. */
            if (!reserved && atomic_fetch_add(&sh->used, 1) >= WARREN_STATS_SERIES_MAX) {
                atomic_fetch_sub(&sh->used, 1);
                return overflow(sh);
            }
            reserved = 1;
            state = try_claim(s, hash, queue, worker);
            if (state == SERIES_EMPTY) {
                *index = i;
                return s;
            }
        }
        if (state == SERIES_CLAIMED)
            state = wait_ready(s);
        if (state == SERIES_READY && same_key(s, hash, queue, worker)) {
            *index = i;
            found = s;
        }
    }
    if (reserved)
        atomic_fetch_sub(&sh->used, 1);
    return found ? found : overflow(sh);
}

static void count(struct series *s, int outcome)
{
    if (outcome >= 0 && outcome < N_OUTCOMES)
        atomic_fetch_add_explicit(&s->outcomes[outcome], 1, memory_order_relaxed);
}

static void observe(struct series *s, double seconds)
{
    if (!(seconds >= 0)) /* negative or NaN: nothing ran */
        return;
    uint64_t ns = seconds >= 1.8e10 ? UINT64_MAX / 2 : (uint64_t)(seconds * 1e9);
    int b = 0;
    while (b < N_BUCKETS - 1 && ns > bucket_ns[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

void warren_stats_job(struct warren_stats *st, const char *queue, const char *worker,
                      enum warren_stats_outcome outcome, double seconds)
{
    if (!st)
        return;
    uint32_t index;
    struct series *s = series_get(st->sh, queue ? queue : "", worker ? worker : "", &index);
    count(s, (int)outcome);
    observe(s, seconds);
}

/* ---- slots ------------------------------------------------------------ */

static _Atomic uint64_t *slot_word(const struct warren_stats *st, int slot)
{
    if (!st || slot < 1 || slot > WARREN_STATS_SLOTS_MAX)
        return NULL;
    return &st->sh->slots[slot - 1];
}

/* Replaces the word of the slot this process owns: keeps `keep` bits of
 * the old word, then sets `set`. Does nothing when the slot belongs to
 * another process. Returns the old word (0 when nothing was done). */
static uint64_t own_update(struct warren_stats *st, uint64_t keep, uint64_t set)
{
    _Atomic uint64_t *w = slot_word(st, st ? st->self_slot : 0);
    if (!w || st->self == 0)
        return 0;
    uint64_t old = atomic_load(w);
    do {
        if (W_PID(old) != st->self)
            return 0;
    } while (!atomic_compare_exchange_weak(w, &old, (old & keep) | set));
    return old;
}

void warren_stats_slot_begin(struct warren_stats *st, int slot, pid_t pid)
{
    _Atomic uint64_t *w = slot_word(st, slot);
    if (!w)
        return;
    uint64_t old = atomic_load(w);
    do {
        if (W_PID(old) == pid)
            return;
    } while (!atomic_compare_exchange_weak(w, &old, W_MAKE(pid, 0)));
}

void warren_stats_worker_attach(struct warren_stats *st, int slot)
{
    if (!st)
        return;
    st->self = getpid();
    st->self_slot = slot;
    warren_stats_slot_begin(st, slot, st->self);
}

int warren_stats_slot_end(struct warren_stats *st, int slot, pid_t pid, int count_crash)
{
    _Atomic uint64_t *w = slot_word(st, slot);
    if (!w)
        return 0;
    uint64_t old = atomic_load(w);
    do {
        if (W_PID(old) != pid)
            return 0;
    } while (!atomic_compare_exchange_weak(w, &old, 0));
    uint32_t series = W_SERIES(old);
    if (!count_crash || series == 0 || series > TABLE_CAP + 1)
        return 0;
    count(&st->sh->table[series - 1], WARREN_STATS_CRASHED);
    return 1;
}

void warren_stats_job_begin(struct warren_stats *st, const char *queue, const char *worker)
{
    if (!st || st->self == 0)
        return;
    uint32_t index;
    series_get(st->sh, queue ? queue : "", worker ? worker : "", &index);
    own_update(st, W_CONNECTED | W_CONSUMING | 0xffffffffull, (uint64_t)(index + 1) << 32);
}

void warren_stats_job_end(struct warren_stats *st, int outcome, double seconds)
{
    if (!st)
        return;
    uint64_t old = own_update(st, W_CONNECTED | W_CONSUMING | 0xffffffffull, 0);
    uint32_t series = W_SERIES(old);
    if (series == 0 || series > TABLE_CAP + 1)
        return;
    struct series *s = &st->sh->table[series - 1];
    count(s, outcome);
    observe(s, seconds);
}

void warren_stats_worker_state(struct warren_stats *st, int connected, int consuming)
{
    uint64_t set = (connected ? W_CONNECTED : 0) | (consuming ? W_CONSUMING : 0);
    own_update(st, ~(W_CONNECTED | W_CONSUMING), set);
}

void warren_stats_restart(struct warren_stats *st)
{
    if (st)
        atomic_fetch_add(&st->sh->restarts, 1);
}

void warren_stats_slot_get(const struct warren_stats *st, int slot,
                           struct warren_stats_slot_view *out)
{
    memset(out, 0, sizeof *out);
    _Atomic uint64_t *w = slot_word(st, slot);
    if (!w)
        return;
    uint64_t v = atomic_load(w);
    out->pid = W_PID(v);
    out->connected = (v & W_CONNECTED) != 0;
    out->consuming = (v & W_CONSUMING) != 0;
    out->in_flight = W_SERIES(v) != 0;
}

int warren_stats_health(const struct warren_stats *st, char *buf, size_t size)
{
    size_t len = 0;
    int healthy = 1;
    int n = warren_stats_workers(st);
    if (size)
        buf[0] = '\0';
    for (int i = 1; i <= n; i++) {
        struct warren_stats_slot_view v;
        warren_stats_slot_get(st, worker_slot(st, i), &v);
        const char *why = v.pid == 0      ? "not running"
                          : !v.connected  ? "not connected to the broker"
                          : !v.consuming  ? "not consuming (no queue, or the consumer was "
                                            "cancelled)"
                                          : NULL;
        if (why)
            healthy = 0;
        if (why && len < size) {
            int k = snprintf(buf + len, size - len, "worker %d: %s\n", i, why);
            len += k > 0 ? (size_t)k : 0;
        }
    }
    if (healthy && size)
        snprintf(buf, size, "ok\n");
    return healthy;
}

/* ---- rendering -------------------------------------------------------- */

/* A copy of one series' numbers; names point into the mapping (they never
 * change once a series is READY). */
struct snap {
    const char *queue, *worker;
    uint64_t outcomes[N_OUTCOMES];
    uint64_t buckets[N_BUCKETS];
    uint64_t sum_ns;
};

static void snap_take(struct snap *o, const struct series *s)
{
    o->queue = s->queue;
    o->worker = s->worker;
    for (int k = 0; k < N_OUTCOMES; k++)
        o->outcomes[k] = atomic_load_explicit(&s->outcomes[k], memory_order_relaxed);
    for (int b = 0; b < N_BUCKETS; b++)
        o->buckets[b] = atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
    o->sum_ns = atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
}

static void snap_add(struct snap *into, const struct snap *from)
{
    for (int k = 0; k < N_OUTCOMES; k++)
        into->outcomes[k] += from->outcomes[k];
    for (int b = 0; b < N_BUCKETS; b++)
        into->buckets[b] += from->buckets[b];
    into->sum_ns += from->sum_ns;
}

static int snap_busy(const struct snap *s)
{
    uint64_t any = s->sum_ns;
    for (int k = 0; k < N_OUTCOMES; k++)
        any |= s->outcomes[k];
    for (int b = 0; b < N_BUCKETS; b++)
        any |= s->buckets[b];
    return any != 0;
}

static int by_queue_worker(const void *a, const void *b)
{
    const struct snap *x = a, *y = b;
    int c = strcmp(x->queue, y->queue);
    return c ? c : strcmp(x->worker, y->worker);
}

static int by_worker(const void *a, const void *b)
{
    const struct snap *x = a, *y = b;
    int c = strcmp(x->worker, y->worker);
    return c ? c : strcmp(x->queue, y->queue);
}

/* Sorts with `cmp` and merges neighbours with the same names (the same
 * worker only, with by_worker_only): duplicates left by a claimer that
 * died, or one worker's series in several queues. */
static size_t snaps_merge(struct snap *v, size_t n, int (*cmp)(const void *, const void *),
                          int by_worker_only)
{
    qsort(v, n, sizeof *v, cmp);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        int same = out > 0 && strcmp(v[out - 1].worker, v[i].worker) == 0 &&
                   (by_worker_only || strcmp(v[out - 1].queue, v[i].queue) == 0);
        if (same)
            snap_add(&v[out - 1], &v[i]);
        else
            v[out++] = v[i];
    }
    return out;
}

/* Writes a label value escaped as the text format wants: \\, \" and \n. */
static void put_label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_jobs(FILE *f, const struct snap *v, size_t n)
{
    put_family(f, "warren_jobs_total", "counter",
               "Jobs finished by this host, by queue, worker and outcome.");
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < N_OUTCOMES; k++) {
            fputs("warren_jobs_total{queue=\"", f);
            put_label(f, v[i].queue);
            fputs("\",worker=\"", f);
            put_label(f, v[i].worker);
            fprintf(f, "\",outcome=\"%s\"} %llu\n", outcome_names[k],
                    (unsigned long long)v[i].outcomes[k]);
        }
}

static void render_histogram(FILE *f, const struct snap *v, size_t n)
{
    put_family(f, "warren_job_duration_seconds", "histogram",
               "How long handlers ran, by worker.");
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (int b = 0; b < N_BUCKETS; b++) {
            cum += v[i].buckets[b];
            fputs("warren_job_duration_seconds_bucket{worker=\"", f);
            put_label(f, v[i].worker);
            fprintf(f, "\",le=\"%s\"} %llu\n", bucket_le[b], (unsigned long long)cum);
        }
        /* _count is the +Inf bucket by definition: derived from the same
         * reads, the two always agree even while jobs are being counted. */
        fputs("warren_job_duration_seconds_sum{worker=\"", f);
        put_label(f, v[i].worker);
        fprintf(f, "\"} %llu.%09llu\n", (unsigned long long)(v[i].sum_ns / 1000000000ull),
                (unsigned long long)(v[i].sum_ns % 1000000000ull));
        fputs("warren_job_duration_seconds_count{worker=\"", f);
        put_label(f, v[i].worker);
        fprintf(f, "\"} %llu\n", (unsigned long long)cum);
    }
}

static void render_gauges(FILE *f, const struct warren_stats *st)
{
    /* In flight: every process, including those retiring after a
     * reload; connected: the host's current worker processes. */
    int n = warren_stats_workers(st), connected = 1;
    unsigned in_flight = 0;
    for (int i = 1; i <= WARREN_STATS_SLOTS_MAX; i++) {
        struct warren_stats_slot_view v;
        warren_stats_slot_get(st, i, &v);
        in_flight += (unsigned)v.in_flight;
    }
    for (int i = 1; i <= n; i++) {
        struct warren_stats_slot_view v;
        warren_stats_slot_get(st, worker_slot(st, i), &v);
        connected &= v.pid != 0 && v.connected;
    }
    put_family(f, "warren_jobs_in_flight", "gauge", "Jobs running in this host right now.");
    fprintf(f, "warren_jobs_in_flight %u\n", in_flight);
    put_family(f, "warren_worker_restarts_total", "counter",
               "Worker processes restarted after they exited.");
    fprintf(f, "warren_worker_restarts_total %llu\n",
            (unsigned long long)atomic_load(&st->sh->restarts));
    put_family(f, "warren_broker_connected", "gauge",
               "1 when every worker process of this host is connected to the broker, else 0.");
    fprintf(f, "warren_broker_connected %d\n", connected);
}

/* Copies every READY series (and the overflow series when it counted
 * anything) into v; returns how many. */
static size_t snaps_collect(const struct warren_stats *st, struct snap *v)
{
    size_t n = 0;
    for (uint32_t i = 0; i < TABLE_CAP; i++) {
        const struct series *s = &st->sh->table[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) == SERIES_READY)
            snap_take(&v[n++], s);
    }
    snap_take(&v[n], &st->sh->table[OVERFLOW_INDEX]);
    if (snap_busy(&v[n]))
        n++;
    return n;
}

size_t warren_stats_render(const struct warren_stats *st, char **out)
{
    *out = NULL;
    struct snap *v = malloc((TABLE_CAP + 1) * sizeof *v);
    char *text = NULL;
    size_t len = 0;
    FILE *f = v ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(v);
        return 0;
    }
    size_t n = snaps_collect(st, v);
    n = snaps_merge(v, n, by_queue_worker, 0);
    render_jobs(f, v, n);
    n = snaps_merge(v, n, by_worker, 1);
    /* worker="" holds unknown workers (which never run) and the overflow
     * series: shown only when something was observed there. */
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t observed = 0;
        for (int b = 0; b < N_BUCKETS; b++)
            observed += v[i].buckets[b];
        if (v[i].worker[0] || observed)
            v[shown++] = v[i];
    }
    render_histogram(f, v, shown);
    render_gauges(f, st);
    int failed = ferror(f);
    fclose(f);
    free(v);
    if (failed) {
        free(text);
        return 0;
    }
    *out = text;
    return len;
}
