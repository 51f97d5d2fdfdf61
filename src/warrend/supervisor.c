/* The supervisor: forks the worker processes, restarts the ones that die
 * (with backoff), drains them on SIGTERM/SIGINT and rolls them on SIGHUP.
 *
 * One loop, in the manner of nginx's master: signal handlers set flags,
 * the loop wakes at least every 100 ms, reaps children, then acts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <warren/log.h>
#include "board.h"
#include "http.h"
#include "scheduler.h"
#include "signature.h"
#include "stats.h"
#include "warrend.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 30000
#define HEALTHY_RUN_MS 30000

/* A worker process: its pid and its row on the shared board. */
struct proc {
    pid_t pid;
    int board_slot;
};

struct slot {
    pid_t pid;           /* 0 when not running */
    int board_slot;
    int failures;        /* consecutive early exits, for backoff */
    long long started;   /* when the current process started */
    long long due;       /* when to start the next one */
};

struct supervisor {
    struct warren_config *cfg;
    struct slot *slots;
    int n_slots;
    struct proc *retiring; /* old processes draining after a reload */
    int n_retiring;
    int fatal;       /* exit status to stop with, or -1 */
    int draining;    /* stopping: deaths are not crashes */
    struct warren_board *board;
    struct warren_stats *stats; /* shared statistics: /metrics, /healthz */
    struct warren_http *http;   /* NULL when metrics_listen is "" */
    struct warrend_scheduler *sched; /* NULL when the config has no schedules */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t spawn(struct supervisor *s, int index, int *board_slot)
{
    *board_slot = warren__board_claim(s->board, -1);
    if (*board_slot < 0) {
        warren_log_write(WARREN_LOG_ERROR, "worker.fork", NULL, "no free board slot");
        return 0;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        warrend_scheduler_forget_in_child(s->sched);
        free(s->retiring);
        warren_http_close_inherited(s->http);
        int rc = warrend_worker_main(s->cfg, index + 1, s->board, *board_slot, s->stats);
        fflush(NULL);
        _exit(rc);
    }
    if (pid < 0) {
        warren_log_write(WARREN_LOG_ERROR, "worker.fork", NULL, "fork failed: %s",
                         strerror(errno));
        struct warren_board_exit ex;
        warren__board_release(s->board, *board_slot, 0, 0, &ex);
        return 0;
    }
    warren__board_set_pid(s->board, *board_slot, pid);
    warren_stats_slot_begin(s->stats, *board_slot + 1, pid);
    warren_stats_set_worker(s->stats, index + 1, *board_slot + 1);
    WARREN_LOG(WARREN_LOG_INFO, "worker.started", "worker %d started as pid %d", index + 1,
               (int)pid);
    return pid;
}

static void start_due(struct supervisor *s)
{
    long long now = mono_ms();
    for (int i = 0; i < s->n_slots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->pid == 0 && now >= sl->due) {
            sl->pid = spawn(s, i, &sl->board_slot);
            sl->started = now;
            if (sl->pid == 0)
                sl->due = now + RESTART_MAX_MS;
        }
    }
}

static void describe_exit(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "status %d", status);
}

/* Frees the process's board row; a death mid-job (not one we caused by
 * stopping the host) counts as a crash of that job's message. Returns
 * whether the process died running a job. */
static int release(struct supervisor *s, int board_slot, int index, pid_t pid, int status)
{
    int killed = WIFSIGNALED(status);
    int failed = killed || (WIFEXITED(status) && WEXITSTATUS(status) != WORKER_EXIT_OK &&
                            WEXITSTATUS(status) != WORKER_EXIT_RECYCLE);
    warren_stats_slot_end(s->stats, board_slot + 1, pid, failed && !s->draining);
    struct warren_board_exit ex;
    warren__board_release(s->board, board_slot, failed && !s->draining,
                          killed ? WTERMSIG(status) : 0, &ex);
    if (ex.was_in_job && failed && !s->draining)
        warren_log_write(WARREN_LOG_WARN, "job.crashed", NULL,
                         "worker %d died running job %s (crash %d of max_crashes %d)",
                         index + 1, ex.job_id, ex.crashes, s->cfg->max_crashes);
    return ex.was_in_job;
}

static int drop_retiring(struct supervisor *s, pid_t pid, int status)
{
    for (int i = 0; i < s->n_retiring; i++)
        if (s->retiring[i].pid == pid) {
            release(s, s->retiring[i].board_slot, -1, pid, status);
            s->retiring[i] = s->retiring[--s->n_retiring];
            return 1;
        }
    return 0;
}

/* Decides what a worker's exit means for its slot and the host. */
static void on_exit_of(struct supervisor *s, struct slot *sl, int index, int status)
{
    char how[96];
    describe_exit(status, how, sizeof how);
    long long now = mono_ms();
    pid_t pid = sl->pid;
    sl->pid = 0;
    int in_job = release(s, sl->board_slot, index, pid, status);
    warren_stats_set_worker(s->stats, index + 1, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == WORKER_EXIT_CONFIG || code == WORKER_EXIT_DRIFT) {
        s->fatal = code == WORKER_EXIT_CONFIG ? 2 : 1;
        return;
    }
    if (warrend_stop)
        return;
    warren_stats_restart(s->stats);
    /* Backoff is for processes that cannot start. One that died running
     * a job had started fine: the job is to blame (max_crashes bounds
     * it), so the slot gets a new process at once, and a burst of poison
     * messages or of killed processes does not starve the host. */
    if (now - sl->started >= HEALTHY_RUN_MS || code == WORKER_EXIT_RECYCLE || in_job)
        sl->failures = 0;
    long long delay = RESTART_MIN_MS;
    for (int k = 0; k < sl->failures && delay < RESTART_MAX_MS; k++)
        delay *= 2;
    if (delay > RESTART_MAX_MS)
        delay = RESTART_MAX_MS;
    sl->failures++;
    sl->due = now + delay;
    warren_log_write(code == WORKER_EXIT_RECYCLE ? WARREN_LOG_INFO : WARREN_LOG_WARN,
                     "worker.exited", NULL, "worker %d exited (%s); restarting in %lld ms",
                     index + 1, how, delay);
}

static void reap(struct supervisor *s)
{
    int status;
    pid_t pid;
    warrend_child = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (drop_retiring(s, pid, status))
            continue;
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].pid == pid)
                on_exit_of(s, &s->slots[i], i, status);
    }
}

static int running(const struct supervisor *s)
{
    int n = s->n_retiring;
    for (int i = 0; i < s->n_slots; i++)
        n += s->slots[i].pid != 0;
    return n;
}

static void signal_all(struct supervisor *s, int sig)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].pid)
            kill(s->slots[i].pid, sig);
    for (int i = 0; i < s->n_retiring; i++)
        kill(s->retiring[i].pid, sig);
}

/* A process whose job overran its time limit by 5 s and whose own guard
 * did not act is killed; the job comes back as a redelivery, a crash. */
static void kill_overdue(struct supervisor *s)
{
    pid_t pids[16];
    size_t n = warren__board_overdue(s->board, mono_ms(), pids, 16);
    for (size_t i = 0; i < n; i++) {
        warren_log_write(WARREN_LOG_WARN, "worker.overdue", NULL,
                         "worker pid %d overran its job's time limit by 5 s: killing it",
                         (int)pids[i]);
        kill(pids[i], SIGKILL);
    }
}

static void tick(void)
{
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

/* Drains: workers finish their running job and exit; what still runs at
 * shutdown_timeout is killed and its job goes back to the queue. */
static void drain(struct supervisor *s)
{
    s->draining = 1;
    WARREN_LOG(WARREN_LOG_INFO, "host.stopping", "stopping %d worker process(es)", running(s));
    signal_all(s, SIGTERM);
    long long deadline = mono_ms() + s->cfg->shutdown_timeout_ms;
    while (running(s) > 0 && mono_ms() < deadline) {
        tick();
        reap(s);
    }
    if (running(s) > 0) {
        warren_log_write(WARREN_LOG_WARN, "host.shutdown_timeout", NULL,
                         "%d worker process(es) still running after shutdown_timeout; "
                         "stopping them, their jobs go back to the queue",
                         running(s));
        signal_all(s, SIGKILL);
        while (running(s) > 0) {
            tick();
            reap(s);
        }
    }
}

/* Asks an old process to finish its job and leave; reaped later. */
static void retire(struct supervisor *s, const struct slot *old)
{
    if (!old->pid)
        return;
    kill(old->pid, SIGTERM);
    s->retiring[s->n_retiring].pid = old->pid;
    s->retiring[s->n_retiring].board_slot = old->board_slot;
    s->n_retiring++;
}

/* SIGHUP: load the file again; if it is good, start a new set of workers
 * and only then ask each old one to finish its job and leave. */
static void reload(struct supervisor *s)
{
    warrend_reload = 0;
    struct warren_config *next = calloc(1, sizeof *next);
    struct warren_config_diag diag = {0};
    warren_error err;
    warren_error_clear(&err);
    if (!next)
        return;
    if (warren__config_load(next, s->cfg->path, &diag, &err) != WARREN_OK) {
        for (size_t i = 0; i < diag.n_errors; i++)
            warren_log_write(WARREN_LOG_ERROR, "config.reload", NULL, "%s", diag.errors[i]);
        warren_log_write(WARREN_LOG_ERROR, "config.reload", NULL,
                         "reload refused; keeping the running configuration");
        warren__config_diag_free(&diag);
        warren__config_free(next);
        free(next);
        return;
    }
    warren__config_diag_free(&diag);
    if (warren__security_preflight(next, &err) != WARREN_OK) {
        warren_log_write(WARREN_LOG_ERROR, "config.reload", NULL,
                         "reload refused: %s; keeping the running configuration", err.text);
        warren__config_free(next);
        free(next);
        return;
    }
    if (warrend_preflight(next) != 0) {
        warren_log_write(WARREN_LOG_ERROR, "config.reload", NULL,
                         "reload refused: a module does not load; keeping the running "
                         "configuration");
        warren__config_free(next);
        free(next);
        return;
    }
    if (strcmp(s->cfg->metrics_listen, next->metrics_listen) != 0)
        warren_log_write(WARREN_LOG_WARN, "config.reload", NULL,
                         "host.metrics_listen changed: the new address is used from the next "
                         "start");
    struct proc *old = realloc(s->retiring, (size_t)(s->n_retiring + s->n_slots) * sizeof *old);
    struct slot *slots = calloc((size_t)next->concurrency, sizeof *slots);
    if (!old || !slots) {
        free(slots);
        s->retiring = old ? old : s->retiring;
        warren__config_free(next);
        free(next);
        return;
    }
    s->retiring = old;
    struct slot *prev = s->slots;
    int n_prev = s->n_slots;
    warren__config_free(s->cfg);
    free(s->cfg);
    s->cfg = next;
    s->slots = slots;
    s->n_slots = next->concurrency;
    warren_stats_set_workers(s->stats, next->concurrency);
    warren_log_setup(next->log_level, next->log_format, "supervisor");
    warren_error serr;
    warren_error_clear(&serr);
    if (warrend_scheduler_reload(&s->sched, next, &serr) != WARREN_OK)
        warren_log_write(WARREN_LOG_ERROR, "scheduler.reload", NULL,
                         "schedules not reloaded: %s", serr.text);
    for (int i = 0; i < s->n_slots; i++) {
        slots[i].pid = spawn(s, i, &slots[i].board_slot);
        slots[i].started = mono_ms();
        if (i < n_prev)
            retire(s, &prev[i]);
    }
    for (int i = s->n_slots; i < n_prev; i++)
        retire(s, &prev[i]);
    free(prev);
    WARREN_LOG(WARREN_LOG_INFO, "config.reloaded", "configuration reloaded; workers replaced");
}

int warrend_supervise(struct warren_config *cfg)
{
    struct supervisor s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.fatal = -1;
    s.n_slots = cfg->concurrency;
    s.slots = calloc((size_t)s.n_slots, sizeof *s.slots);
    s.board = warren__board_create();
    s.stats = warren_stats_create(cfg->concurrency);
    warren_error err;
    warren_error_clear(&err);
    warren_status st = !s.slots || !s.board || !s.stats
                           ? warren_error_set(&err, WARREN_ENOMEM, "cannot map shared memory")
                           : warren_http_start(&s.http, cfg->metrics_listen, s.stats, NULL, &err);
    if (st != WARREN_OK) {
        warren_log_write(WARREN_LOG_ERROR, "host.metrics", NULL, "%s", err.text);
        free(s.slots);
        warren__board_destroy(s.board);
        warren_stats_destroy(s.stats);
        warren__config_free(cfg);
        free(cfg);
        return 1;
    }
    if (s.http)
        WARREN_LOG(WARREN_LOG_INFO, "host.metrics", "metrics on %s",
                   warren_http_address(s.http));
    warrend_signals_supervisor();
    WARREN_LOG(WARREN_LOG_INFO, "host.starting", "host %s starting %d worker process(es)",
               cfg->host_name, cfg->concurrency);
    warren_error serr;
    warren_error_clear(&serr);
    if (warrend_scheduler_create(&s.sched, cfg, &serr) != WARREN_OK) {
        warren_log_write(WARREN_LOG_ERROR, "scheduler.create", NULL, "%s", serr.text);
        s.fatal = serr.code == WARREN_ECONFIG ? 2 : 1;
    }
    while (!warrend_stop && s.fatal < 0) {
        start_due(&s);
        tick();
        reap(&s);
        kill_overdue(&s);
        if (warrend_reload && !warrend_stop)
            reload(&s);
        warrend_scheduler_tick(s.sched);
    }
    /* Released first, so another host takes over while this one drains. */
    warrend_scheduler_destroy(s.sched);
    s.sched = NULL;
    drain(&s);
    warren_http_stop(s.http);
    free(s.slots);
    free(s.retiring);
    warren__board_destroy(s.board);
    warren_stats_destroy(s.stats);
    int rc = s.fatal < 0 ? 0 : s.fatal;
    WARREN_LOG(WARREN_LOG_INFO, "host.stopped", "host stopped (exit %d)", rc);
    warren__config_free(s.cfg);
    free(s.cfg);
    return rc;
}
