/* The host's shared board (see board.h). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "board.h"

struct slot {
    pid_t pid;               /* 0: free */
    int in_job;
    long long kill_at_ms;    /* 0: no deadline */
    char job_id[257];
};

struct crash {
    char id[257];
    int count;
    int signal;
};

struct rate {
    char worker[129];
    long long next_us; /* earliest start of the next job */
};

struct warren_board {
    pthread_mutex_t lock;
    struct slot slots[WARREN_BOARD_SLOTS];
    struct crash crashes[WARREN_BOARD_CRASHES];
    unsigned crash_next;
    uint64_t completed[WARREN_BOARD_COMPLETED];
    unsigned completed_next;
    struct rate rates[WARREN_BOARD_RATES];
};

long long warren__board_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a; 0 is reserved for "empty". */
static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static void lock(struct warren_board *b)
{
    /* A process killed while holding the lock leaves it "owner died";
     * every update is a handful of stores, so the data is usable as is. */
    if (pthread_mutex_lock(&b->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&b->lock);
}

static void unlock(struct warren_board *b)
{
    pthread_mutex_unlock(&b->lock);
}

struct warren_board *warren__board_create(void)
{
    struct warren_board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&b->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(b, sizeof *b);
        return NULL;
    }
    return b;
}

void warren__board_destroy(struct warren_board *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    munmap(b, sizeof *b);
}

int warren__board_claim(struct warren_board *b, pid_t pid)
{
    int found = -1;
    lock(b);
    for (int i = 0; i < WARREN_BOARD_SLOTS && found < 0; i++)
        if (b->slots[i].pid == 0) {
            memset(&b->slots[i], 0, sizeof b->slots[i]);
            b->slots[i].pid = pid;
            found = i;
        }
    unlock(b);
    return found;
}

void warren__board_set_pid(struct warren_board *b, int slot, pid_t pid)
{
    if (slot < 0 || slot >= WARREN_BOARD_SLOTS)
        return;
    lock(b);
    b->slots[slot].pid = pid;
    unlock(b);
}

static struct crash *crash_find(struct warren_board *b, const char *id)
{
    for (int i = 0; i < WARREN_BOARD_CRASHES; i++)
        if (b->crashes[i].count > 0 && strcmp(b->crashes[i].id, id) == 0)
            return &b->crashes[i];
    return NULL;
}

void warren__board_release(struct warren_board *b, int slot, int count_crash, int signal,
                           struct warren_board_exit *out)
{
    memset(out, 0, sizeof *out);
    if (slot < 0 || slot >= WARREN_BOARD_SLOTS)
        return;
    lock(b);
    struct slot *s = &b->slots[slot];
    out->was_in_job = s->in_job;
    snprintf(out->job_id, sizeof out->job_id, "%s", s->job_id);
    if (s->in_job && count_crash && s->job_id[0]) {
        struct crash *c = crash_find(b, s->job_id);
        if (!c) {
            /* The table is a ring: the oldest poison id is forgotten first. */
            c = &b->crashes[b->crash_next++ % WARREN_BOARD_CRASHES];
            memset(c, 0, sizeof *c);
            memcpy(c->id, s->job_id, sizeof c->id); /* both NUL-terminated 257 bytes */
        }
        c->count++;
        c->signal = signal;
        out->crashes = c->count;
    }
    memset(s, 0, sizeof *s);
    unlock(b);
}

size_t warren__board_overdue(struct warren_board *b, long long now_ms, pid_t *pids, size_t max)
{
    size_t n = 0;
    lock(b);
    for (int i = 0; i < WARREN_BOARD_SLOTS && n < max; i++) {
        struct slot *s = &b->slots[i];
        if (s->pid > 0 && s->in_job && s->kill_at_ms && now_ms >= s->kill_at_ms)
            pids[n++] = s->pid;
    }
    unlock(b);
    return n;
}

void warren__board_job_start(struct warren_board *b, int slot, const char *id,
                             long long kill_at_ms)
{
    if (!b || slot < 0 || slot >= WARREN_BOARD_SLOTS)
        return;
    lock(b);
    struct slot *s = &b->slots[slot];
    snprintf(s->job_id, sizeof s->job_id, "%s", id);
    s->kill_at_ms = kill_at_ms;
    s->in_job = 1;
    unlock(b);
}

void warren__board_job_end(struct warren_board *b, int slot, const char *id, int completed)
{
    if (!b || slot < 0 || slot >= WARREN_BOARD_SLOTS)
        return;
    lock(b);
    struct slot *s = &b->slots[slot];
    s->in_job = 0;
    s->kill_at_ms = 0;
    s->job_id[0] = '\0';
    if (completed)
        b->completed[b->completed_next++ % WARREN_BOARD_COMPLETED] = id_hash(id);
    unlock(b);
}

int warren__board_crashes(struct warren_board *b, const char *id, int *signal)
{
    if (!b)
        return 0;
    lock(b);
    struct crash *c = crash_find(b, id);
    int count = c ? c->count : 0;
    if (signal)
        *signal = c ? c->signal : 0;
    unlock(b);
    return count;
}

int warren__board_completed(struct warren_board *b, const char *id)
{
    if (!b)
        return 0;
    uint64_t h = id_hash(id);
    int found = 0;
    lock(b);
    for (int i = 0; i < WARREN_BOARD_COMPLETED && !found; i++)
        found = b->completed[i] == h;
    unlock(b);
    return found;
}

long long warren__board_rate_reserve(struct warren_board *b, const char *worker, double rate,
                                     long long now_us)
{
    if (!b || rate <= 0)
        return 0;
    long long interval = (long long)(1e6 / rate);
    long long wait_us = 0;
    lock(b);
    struct rate *r = NULL;
    for (int i = 0; i < WARREN_BOARD_RATES && !r; i++)
        if (b->rates[i].worker[0] == '\0' || strcmp(b->rates[i].worker, worker) == 0)
            r = &b->rates[i];
    if (r) {
        if (r->worker[0] == '\0')
            snprintf(r->worker, sizeof r->worker, "%s", worker);
        long long start = r->next_us > now_us ? r->next_us : now_us;
        r->next_us = start + interval;
        wait_us = start - now_us;
    }
    unlock(b);
    return (wait_us + 999) / 1000;
}
