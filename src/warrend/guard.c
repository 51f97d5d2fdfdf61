/* The job guard (see guard.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "board.h"
#include "guard.h"

#define PUMP_SLICE_MS 100

struct guard {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* clock: CLOCK_MONOTONIC */
    int quit;
    int active;        /* a job is running */
    int pumping;       /* the guard is inside a call on the connection */
    struct warren_conn *conn;
    long long started_ms, deadline_ms;
    struct guard_calls calls;
};

static void wait_until(struct guard *g, long long when_ms)
{
    struct timespec ts = {when_ms / 1000, (when_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
}

/* One slice of looking after the connection, with the lock released. */
static void pump_slice(struct guard *g)
{
    g->pumping = 1;
    struct warren_conn *conn = g->conn;
    pthread_mutex_unlock(&g->mu);
    warren_error err;
    warren_error_clear(&err);
    /* An error marks the connection broken; the main thread finds out
     * when it next uses it, and reconnects. */
    if (!warren__conn_broken(conn)) {
        warren__conn_pump(conn, PUMP_SLICE_MS, &err);
        if (g->calls.on_tick)
            g->calls.on_tick(g->calls.ctx);
    } else {
        struct timespec ts = {0, PUMP_SLICE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&g->mu);
    g->pumping = 0;
    pthread_cond_broadcast(&g->cv);
}

static void watch_job(struct guard *g)
{
    while (g->active && !g->quit) {
        long long now = warren__board_now_ms();
        if (g->deadline_ms && now >= g->deadline_ms) {
            g->pumping = 1;
            pthread_mutex_unlock(&g->mu);
            g->calls.on_timeout(g->calls.ctx); /* does not return */
            abort();
        }
        if (now >= g->started_ms + GUARD_PUMP_AFTER_MS) {
            pump_slice(g);
            continue;
        }
        long long next = g->started_ms + GUARD_PUMP_AFTER_MS;
        if (g->deadline_ms && g->deadline_ms < next)
            next = g->deadline_ms;
        wait_until(g, next);
    }
}

static void *guard_main(void *arg)
{
    struct guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        if (!g->active) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        watch_job(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

struct guard *guard_create(void)
{
    struct guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
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
    pthread_mutex_lock(&g->mu);
    g->conn = conn;
    g->started_ms = warren__board_now_ms();
    g->deadline_ms = deadline_ms;
    g->calls = *calls;
    g->active = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void guard_leave(struct guard *g)
{
    pthread_mutex_lock(&g->mu);
    g->active = 0;
    pthread_cond_broadcast(&g->cv);
    while (g->pumping)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}
