/* The job guard (see guard.h).
 *
 * The main thread and the guard share one atomic word: the job's sequence
 * number and a phase. A job starting or ending is a store or a
 * compare-and-swap on it, with no lock and no wake-up: the guard looks at
 * the word on its own tick (GUARD_TICK_MS), and only when it holds the
 * connection does the main thread, ending the job, wait for it.
 *
 *   IDLE     no job; the guard naps a tick at a time
 *   RUNNING  a job runs (started_ms, deadline_ms); the main thread can end
 *            it with one CAS (RUNNING -> IDLE)
 *   PUMPING  the guard took the connection (CAS RUNNING -> PUMPING, same
 *            sequence, so never for a job that already ended) for a slice
 *            or for the time limit's hand-off; it gives it back with CAS
 *            PUMPING -> RUNNING
 *   LEAVING  the job ended while the guard pumped: the main thread waits
 *            on `cv` until the guard, at the end of its slice, sets IDLE
 *            (under `mu`, so the wake cannot be lost)
 *
 * The job's connection and callbacks are written before RUNNING is
 * published (release) and read by the guard only while it holds PUMPING
 * for that job, when the main thread cannot be writing them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include "board.h"
#include "guard.h"

#define PUMP_SLICE_MS 100

enum { IDLE = 0, RUNNING = 1, PUMPING = 2, LEAVING = 3 };
#define PHASE(w) ((int)((w) & 3u))
#define SEQ(w) ((w) >> 2)
#define WORD(seq, phase) ((uint64_t)(seq) << 2 | (uint64_t)(phase))

struct guard {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* clock: CLOCK_MONOTONIC */
    int quit;          /* under mu */
    _Atomic uint64_t word;
    _Atomic long long started_ms, deadline_ms;
    struct warren_conn *conn;  /* see the DESIGN above */
    struct guard_calls calls;
    uint64_t seq;              /* the main thread's: jobs entered */
};

static int swap(struct guard *g, uint64_t from, uint64_t to)
{
    return atomic_compare_exchange_strong_explicit(&g->word, &from, to, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* One slice of looking after the connection, which the guard holds. */
static void pump_slice(struct guard *g)
{
    warren_error err;
    warren_error_clear(&err);
    /* An error marks the connection broken; the main thread finds out
     * when it next uses it, and reconnects. */
    if (!warren__conn_broken(g->conn)) {
        warren__conn_pump(g->conn, PUMP_SLICE_MS, &err);
        if (g->calls.on_tick)
            g->calls.on_tick(g->calls.ctx);
    } else {
        struct timespec ts = {0, PUMP_SLICE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Looks at the job, if any, and acts: takes the connection for a slice
 * once the job has run GUARD_PUMP_AFTER_MS, or for the time limit. Returns
 * how long to nap before looking again. */
static long long look(struct guard *g)
{
    uint64_t w = atomic_load_explicit(&g->word, memory_order_acquire);
    if (PHASE(w) != RUNNING)
        return GUARD_TICK_MS;
    long long now = warren__board_now_ms();
    long long started = atomic_load_explicit(&g->started_ms, memory_order_relaxed);
    long long deadline = atomic_load_explicit(&g->deadline_ms, memory_order_relaxed);
    int overdue = deadline && now >= deadline;
    if (!overdue && now < started + GUARD_PUMP_AFTER_MS) {
        long long next = started + GUARD_PUMP_AFTER_MS;
        if (deadline && deadline < next)
            next = deadline;
        return next - now < GUARD_TICK_MS ? next - now : GUARD_TICK_MS;
    }
    /* Only the job seen above: if it ended meanwhile, look again. */
    if (!swap(g, w, WORD(SEQ(w), PUMPING)))
        return 0;
    if (overdue) {
        g->calls.on_timeout(g->calls.ctx); /* does not return */
        abort();
    }
    pump_slice(g);
    if (!swap(g, WORD(SEQ(w), PUMPING), WORD(SEQ(w), RUNNING))) {
        /* LEAVING: the job ended while we pumped, and its thread waits. */
        pthread_mutex_lock(&g->mu);
        atomic_store_explicit(&g->word, WORD(SEQ(w), IDLE), memory_order_release);
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    return 0;
}

static void *guard_main(void *arg)
{
    struct guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        pthread_mutex_unlock(&g->mu);
        long long nap = look(g);
        pthread_mutex_lock(&g->mu);
        if (nap > 0 && !g->quit) {
            long long when = warren__board_now_ms() + nap;
            struct timespec ts = {when / 1000, (when % 1000) * 1000000L};
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

struct guard *guard_create(void)
{
    struct guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    atomic_init(&g->word, WORD(0, IDLE));
    atomic_init(&g->started_ms, 0);
    atomic_init(&g->deadline_ms, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void guard_destroy(struct guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->quit = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void guard_enter(struct guard *g, struct warren_conn *conn, long long deadline_ms,
                 const struct guard_calls *calls)
{
    g->conn = conn;
    g->calls = *calls;
    atomic_store_explicit(&g->started_ms, warren__board_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&g->deadline_ms, deadline_ms, memory_order_relaxed);
    g->seq++;
    atomic_store_explicit(&g->word, WORD(g->seq, RUNNING), memory_order_release);
}

void guard_leave(struct guard *g)
{
    uint64_t running = WORD(g->seq, RUNNING), idle = WORD(g->seq, IDLE);
    if (swap(g, running, idle))
        return; /* the usual case: the guard never took the connection */
    pthread_mutex_lock(&g->mu);
    for (;;) {
        uint64_t w = atomic_load_explicit(&g->word, memory_order_acquire);
        if (PHASE(w) == IDLE)
            break;
        if (PHASE(w) == RUNNING) {
            if (swap(g, w, idle))
                break;
            continue; /* the guard took it again meanwhile */
        }
        if (PHASE(w) == PUMPING && !swap(g, w, WORD(g->seq, LEAVING)))
            continue;
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}
