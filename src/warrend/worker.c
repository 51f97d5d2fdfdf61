/* A worker process: loads the modules, keeps one broker connection, and
 * runs each delivery through its handler, one at a time.
 *
 * Every delivery ends in exactly one of: acked after its handler
 * succeeded; acked after a confirmed retry copy; acked after a confirmed
 * dead letter; or left unacked (the broker refused even the dead letter, or
 * the connection was lost), in which case the broker redelivers it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <warren/log.h>
#include "board.h"
#include "delay.h"
#include "events.h"
#include "guard.h"
#include "handoff.h"
#include "job.h"
#include "registry_internal.h"
#include "signature.h"
#include "stats.h"
#include "topology.h"
#include "warrend.h"
#include "worker.h"

#define POLL_MS 200
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000


static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, returning early when asked to stop. */
static void nap(long long ms)
{
    long long end = mono_ms() + ms;
    while (!warrend_stop) {
        long long left = end - mono_ms();
        if (left <= 0)
            return;
        if (left > 100)
            left = 100;
        struct timespec ts = {0, left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void log_job(warren_log_level level, const char *msgid, const struct warren_job *job,
                    const char *outcome, long long duration_ms, const char *error)
{
    if (!warren_log_enabled(level))
        return;
    /* {"id","worker","attempt","outcome","duration_ms"[,"error"]}, as
     * jansson would write it; an error that is not UTF-8 is left out. */
    struct warren_fields f;
    warren__fields_begin(&f);
    const char *fields = NULL;
    if (warren__fields_str(&f, "id", job->id) == 0 &&
        warren__fields_str(&f, "worker", job->worker) == 0) {
        warren__fields_int(&f, "attempt", job->attempt);
        warren__fields_str(&f, "outcome", outcome);
        warren__fields_int(&f, "duration_ms", duration_ms);
        if (error && error[0])
            warren__fields_str(&f, "error", error);
        fields = warren__fields_end(&f);
    }
    warren_log_write(level, msgid, fields, "%s %s %s (attempt %d, %lld ms)%s%s", job->worker,
                     job->id, outcome, job->attempt, duration_ms, error && error[0] ? ": " : "",
                     error && error[0] ? error : "");
}

/* Parks the delivery in its queue's dead letters, then acks it. A refusal
 * is retried once as rejected_by_broker; if that is refused too the
 * original stays unacked (the broker keeps it) and we log an error. */
warren_status warrend_park(struct worker *w, struct warren_conn_delivery *d,
                          const struct warren_job *job, enum warren_dead_reason reason,
                          const char *error, int attempts)
{
    struct warren_dead_info info = {reason, error, attempts, d->consumer_tag,
                                    w->cfg->host_name, job->id_assigned ? job->id : NULL};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__send_dead(w->conn, w->cfg->namespace_, d, &info, &err);
    if (st == WARREN_ENACK) {
        char why[WARREN_ERROR_TEXT_MAX];
        snprintf(why, sizeof why, "dead letter (%s) refused: %s; was: %s",
                 warren__dead_reason_name(reason), err.text, error ? error : "");
        info.reason = WARREN_DEAD_REJECTED_BY_BROKER;
        info.error = why;
        warren_error_clear(&err);
        st = warren__send_dead(w->conn, w->cfg->namespace_, d, &info, &err);
    }
    if (st != WARREN_OK) {
        warren_log_write(WARREN_LOG_ERROR, "job.unparked", NULL,
                         "cannot park %s %s (%s): %s; left unacked for redelivery",
                         job->worker[0] ? job->worker : "?", job->id[0] ? job->id : "?",
                         warren__dead_reason_name(reason), err.text);
        warren__lifecycle_unsettled(&w->lc);
        return warren__conn_broken(w->conn) ? WARREN_EBROKER : WARREN_OK;
    }
    log_job(WARREN_LOG_WARN, "job.dead", job, warren__dead_reason_name(info.reason), 0,
            info.error);
    warren__lifecycle_dead(&w->lc, job, d->consumer_tag, warren__dead_reason_name(info.reason),
                           info.error);
    warren_error_clear(&err);
    return warren__conn_ack(w->conn, d->delivery_tag, &err);
}

long long warrend_header_int(const amqp_basic_properties_t *p, const char *name, long long dflt)
{
    long long v;
    const amqp_table_entry_t *e = NULL;
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
        e = warren__table_find(&p->headers, name);
    return e && warren__field_int(&e->value, &v) == 0 ? v : dflt;
}

const struct warren_worker_conf *warrend_worker_conf(const struct worker *w,
                                                     const struct warren_worker_entry *entry,
                                                     const char *name)
{
    if (entry && entry->pos < w->n_confs)
        return &w->confs[entry->pos];
    return warren__config_worker(w->cfg, name);
}

/* Resolves every registered worker's settings once. The config's own
 * lookup builds a default entry afresh for a worker it does not list,
 * which is most of what it costs. */
static int resolve_confs(struct worker *w)
{
    unsigned n = warren_registry_count(w->reg);
    w->confs = calloc(n ? n : 1, sizeof *w->confs);
    if (!w->confs)
        return -1;
    for (unsigned i = 0; i < n; i++)
        w->confs[i] = *warren__config_worker(w->cfg, warren_registry_name(w->reg, i));
    w->n_confs = n;
    return 0;
}

/* Sends the retry copy. A nacked copy is not a hand-off, but a nack is
 * often a moment's: in a cluster, a quorum delay queue whose leader's node
 * just stopped refuses copies until a new leader is elected (seconds). So
 * a refused copy is sent again after a pause, three times (about 3 s in
 * all, well inside the heartbeat), before the job is parked as
 * rejected_by_broker. The worker holds the job meanwhile. */
static warren_status send_retry(struct worker *w, struct warren_conn_delivery *d,
                                const struct warren_job *job,
                                const struct warren_retry_info *info, warren_error *err)
{
    static const int pause_ms[] = {250, 1000, 2000};
    warren_status st = warren__send_retry(w->conn, w->cfg->namespace_, d, info, err);
    for (size_t i = 0; st == WARREN_ENACK && i < sizeof pause_ms / sizeof pause_ms[0]; i++) {
        WARREN_LOG(WARREN_LOG_WARN, "job.retry_refused",
                   "%s %s: the broker refused the retry copy (%s); sending it again in %d ms",
                   job->worker, job->id, err->text, pause_ms[i]);
        nap(pause_ms[i]);
        warren_error_clear(err);
        st = warren__send_retry(w->conn, w->cfg->namespace_, d, info, err);
    }
    return st;
}

warren_status warrend_retry_or_park(struct worker *w, struct warren_conn_delivery *d,
                                   struct warren_job *job)
{
    if (job->attempt >= job->max_attempts) {
        char why[WARREN_ERROR_TEXT_MAX + 64];
        snprintf(why, sizeof why, "attempt %d of %d failed: %s", job->attempt,
                 job->max_attempts, job->error);
        return warrend_park(w, d, job, WARREN_DEAD_MAX_ATTEMPTS, why, job->attempt);
    }
    const struct warren_worker_conf *wc =
        warrend_worker_conf(w, warren__registry_find(w->reg, job->worker), job->worker);
    long long delay_ms = warren__backoff_ms(&wc->retry, job->attempt, (double)rand() / RAND_MAX);
    /* A retry starts any lock wait afresh. */
    long long lock_since =
        warrend_header_int(&d->message.properties, "x-warren-lock-since", -1) > 0 ? 0 : -1;
    struct warren_retry_info info = {job->worker, job->attempt + 1,
                                     warren__backoff_seconds(delay_ms), 0, lock_since,
                                     job->error, job->id_assigned ? job->id : NULL};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = send_retry(w, d, job, &info, &err);
    if (st == WARREN_OK) {
        WARREN_LOG(WARREN_LOG_DEBUG, "job.retry", "%s %s: attempt %d in %lld s", job->worker,
                   job->id, info.next_attempt, info.delay_s);
        warren__lifecycle_retrying(&w->lc, job, d->consumer_tag, info.delay_s * 1000);
    }
    if (st == WARREN_ENACK) {
        char why[2 * WARREN_ERROR_TEXT_MAX];
        snprintf(why, sizeof why, "retry copy refused: %s; was: %s", err.text, job->error);
        return warrend_park(w, d, job, WARREN_DEAD_REJECTED_BY_BROKER, why, job->attempt);
    }
    if (st != WARREN_OK) {
        warren__lifecycle_unsettled(&w->lc);
        return st;
    }
    warren_error_clear(&err);
    return warren__conn_ack(w->conn, d->delivery_tag, &err);
}

/* The key the completed-jobs memory knows a job by: its id and attempt,
 * because a retry copy carries the same id and must still run:
 * "<id>#<attempt>", written without snprintf (once per job). */
static void completed_key(const struct warren_job *job, char *buf, size_t size)
{
    char digits[12];
    size_t n_digits = 0, len = strlen(job->id);
    unsigned a = job->attempt > 0 ? (unsigned)job->attempt : 0;
    do
        digits[n_digits++] = (char)('0' + a % 10);
    while ((a /= 10) != 0);
    if (job->attempt < 1 || len + 1 + n_digits + 1 > size) {
        snprintf(buf, size, "%s#%d", job->id, job->attempt);
        return;
    }
    memcpy(buf, job->id, len);
    buf[len++] = '#';
    while (n_digits)
        buf[len++] = digits[--n_digits];
    buf[len] = '\0';
}


/* The key a job's crashes are counted by: its id, or, for a job that came
 * without message_id (its id is assigned afresh at every delivery, so it
 * would never reach max_crashes), a hash of its worker name and body,
 * which stays the same across redeliveries. Two id-less jobs with the same
 * worker and body share a count; both crash alike anyway. */
static const char *crash_key(const struct warren_conn_delivery *d, const struct warren_job *job,
                             char *buf, size_t size)
{
    if (!job->id_assigned)
        return job->id;
    unsigned long long h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)job->worker; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    const unsigned char *b = d->message.body.bytes;
    for (size_t i = 0; i < d->message.body.len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    snprintf(buf, size, "no-id:%s:%016llx", job->worker, h);
    return buf;
}

/* A redelivered job is acked unrun when this host completed it (its ack
 * was lost with the connection), and parked as `crashed` when it keeps
 * killing worker processes. Returns 1 when it dealt with the delivery. */
static int screen_redelivery(struct worker *w, struct warren_conn_delivery *d,
                             struct warren_job *job, warren_status *st)
{
    char key[300];
    completed_key(job, key, sizeof key);
    if (warren__board_completed(w->board, key)) {
        warren_error err;
        warren_error_clear(&err);
        WARREN_LOG(WARREN_LOG_INFO, "job.already_done",
                   "%s %s was completed on this host; its ack was lost: acking", job->worker,
                   job->id);
        *st = warren__conn_ack(w->conn, d->delivery_tag, &err);
        return 1;
    }
    int sig = 0;
    char ckey[300];
    int crashes = warren__board_crashes(w->board, crash_key(d, job, ckey, sizeof ckey), &sig);
    long long deliveries = warrend_header_int(&d->message.properties, "x-delivery-count", 0);
    char why[256];
    if (crashes >= w->cfg->max_crashes) {
        snprintf(why, sizeof why, "crashed its worker process %d times (last: signal %d, %s)",
                 crashes, sig, sig ? strsignal(sig) : "exit");
    } else if (deliveries > w->cfg->max_redeliveries) {
        snprintf(why, sizeof why, "delivered %lld times (x-delivery-count) without completing",
                 deliveries + 1);
    } else {
        return 0;
    }
    *st = warrend_park(w, d, job, WARREN_DEAD_CRASHED, why, job->attempt);
    return 1;
}

struct running {
    struct worker *w;
    struct warren_conn_delivery *d;
    struct warren_job *job;
    long long limit_ms;
    unsigned progress_sent;     /* progress_seq last published */
    long long progress_sent_ms; /* when */
};

#define PROGRESS_EVERY_MS 500

/* Publishes the job's progress when it changed, at most every
 * PROGRESS_EVERY_MS unless `force`. Runs on whichever thread owns the
 * connection: the guard's while the handler runs, the main one after. */
static void report_progress(struct running *r, int force)
{
    unsigned seq = r->job->progress_seq;
    long long now = mono_ms();
    if (seq == r->progress_sent || (!force && now - r->progress_sent_ms < PROGRESS_EVERY_MS))
        return;
    r->progress_sent = seq;
    r->progress_sent_ms = now;
    warren__lifecycle_progress(&r->w->lc, r->job, r->d->consumer_tag, r->job->progress_done,
                               r->job->progress_total);
}

static void on_guard_tick(void *ctx)
{
    report_progress(ctx, 0);
}

/* Runs on the guard's thread when a job overruns its time limit, while the
 * handler still runs: hands the job on as a transient failure, acks it,
 * and ends the process (the supervisor starts a new one). */
static void on_time_limit(void *ctx)
{
    struct running *r = ctx;
    struct warren_job copy = *r->job; /* the handler may still write to its own */
    char limit[32];
    snprintf(copy.error, sizeof copy.error, "time limit %s exceeded",
             warren__format_duration(r->limit_ms, limit, sizeof limit));
    log_job(WARREN_LOG_WARN, "job.failed", &copy, "timed_out", r->limit_ms, copy.error);
    warren__lifecycle_failed(&r->w->lc, &copy, r->d->consumer_tag, r->limit_ms);
    if (warrend_retry_or_park(r->w, r->d, &copy) == WARREN_OK)
        warren__board_job_end(r->w->board, r->w->board_slot, copy.id, 0);
    fflush(NULL);
    _exit(WORKER_EXIT_RECYCLE);
}

/* rate_limit holds for the whole host: the board spaces the start times of
 * the worker's jobs across all processes. The job waits here, prefetched
 * and unacked, while the connection keeps being served. */
static void wait_for_rate(struct worker *w, const struct warren_job *job, double rate)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now_us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    long long wait = warren__board_rate_reserve(w->board, job->worker, rate, now_us);
    long long until = mono_ms() + wait;
    for (long long left = wait; left > 0; left = until - mono_ms()) {
        warren_error err;
        warren_error_clear(&err);
        if (warren__conn_pump(w->conn, left > POLL_MS ? POLL_MS : (int)left, &err) != WARREN_OK)
            return; /* the hand-off or ack after the job will notice */
    }
}

static warren_outcome run_guarded(struct worker *w, struct warren_conn_delivery *d,
                                  const struct warren_worker_entry *entry,
                                  struct warren_job *job, long long limit_ms)
{
    long long now = warren__board_now_ms();
    long long deadline = limit_ms ? now + limit_ms : 0;
    /* The supervisor kills a process whose own guard failed to act. */
    char ckey[300];
    warren__board_job_start(w->board, w->board_slot, crash_key(d, job, ckey, sizeof ckey),
                            deadline ? deadline + 5000 : 0);
    struct running r = {w, d, job, limit_ms, 0, 0};
    struct guard_calls calls = {on_time_limit, on_guard_tick, &r};
    guard_enter(w->guard, w->conn, deadline, &calls);
    warren_outcome outcome = warren__registry_run(entry, job);
    guard_leave(w->guard);
    report_progress(&r, 1);
    return outcome;
}

static warren_status settle(struct worker *w, struct warren_conn_delivery *d,
                            struct warren_job *job, warren_outcome outcome, long long dt);

static warren_status run_job(struct worker *w, struct warren_conn_delivery *d,
                             struct warren_job *job)
{
    warren_status st;
    if (d->redelivered && screen_redelivery(w, d, job, &st))
        return st;
    const struct warren_worker_entry *entry = warren__registry_find(w->reg, job->worker);
    if (!entry) {
        char why[512];
        snprintf(why, sizeof why, "no handler registered for worker '%s' on host %s",
                 job->worker, w->cfg->host_name);
        return warrend_park(w, d, job, WARREN_DEAD_UNKNOWN_WORKER, why, job->attempt);
    }
    warren_error verr;
    warren_error_clear(&verr);
    if (warren_registry_validate(w->reg, job->worker, job->args, &verr) != WARREN_OK)
        return warrend_park(w, d, job, WARREN_DEAD_INVALID_ARGS, verr.text, job->attempt);

    const struct warren_worker_conf *wc = warrend_worker_conf(w, entry, job->worker);
    if (job->max_attempts <= 0)
        job->max_attempts = wc->retry.max_attempts;
    job->module = entry->module;

    struct held_keys held;
    if (warrend_take_keys(w, d, job, wc, &held, &st))
        return st;
    if (wc->rate_limit > 0)
        wait_for_rate(w, job, wc->rate_limit);
    warren__lifecycle_started(&w->lc, job, d->consumer_tag);
    long long t0 = mono_ms();
    warren_outcome outcome = run_guarded(w, d, entry, job, wc->time_limit_ms);
    long long dt = mono_ms() - t0;
    warrend_release_keys(w, &held);
    warren__lifecycle_ran(&w->lc, job, d->consumer_tag, outcome, dt);
    w->jobs_done++;
    return settle(w, d, job, outcome, dt);
}

/* What follows a run: the ack, a snooze, a retry or a dead letter. */
static warren_status settle(struct worker *w, struct warren_conn_delivery *d,
                            struct warren_job *job, warren_outcome outcome, long long dt)
{
    char key[300];
    completed_key(job, key, sizeof key);
    if (outcome == WARREN_JOB_OK) {
        /* Remembered before the ack: if the ack is lost with the
         * connection, the redelivery is recognised. */
        warren__board_job_end(w->board, w->board_slot, key, 1);
        log_job(WARREN_LOG_INFO, "job.succeeded", job, "succeeded", dt, NULL);
        warren_error err;
        warren_error_clear(&err);
        return warren__conn_ack(w->conn, d->delivery_tag, &err);
    }
    warren__board_job_end(w->board, w->board_slot, key, 0);
    if (outcome == WARREN_JOB_SNOOZE)
        return warrend_snooze(w, d, job, job->snooze_ms, 1, -1, "its handler snoozed it");
    int last = outcome == WARREN_JOB_FAIL || job->attempt >= job->max_attempts;
    log_job(WARREN_LOG_WARN, "job.failed", job, last ? "failed" : "retrying", dt, job->error);
    if (outcome == WARREN_JOB_FAIL)
        return warrend_park(w, d, job, WARREN_DEAD_PERMANENT_FAILURE, job->error, job->attempt);
    return warrend_retry_or_park(w, d, job);
}

/* Resident memory in bytes, from /proc/self/statm (opened once, then one
 * pread per look); -1 when unknown. */
static long long resident_bytes(struct worker *w)
{
    if (w->statm_fd < 0)
        w->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char buf[128];
    ssize_t n = w->statm_fd >= 0 ? pread(w->statm_fd, buf, sizeof buf - 1, 0) : -1;
    long pages = 0, resident = 0;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%ld %ld", &pages, &resident) != 2)
        return -1;
    return (long long)resident * sysconf(_SC_PAGESIZE);
}

/* Whether this process should make way for a fresh one after its job:
 * max_jobs_per_process and max_memory_per_process guard against leaks in
 * handlers. Memory is looked at after a job at most every RSS_CHECK_MS,
 * not after every one (it was four system calls and an allocation per
 * job): a leak grows over many jobs, and the process still makes way
 * after the job that finds it over the limit. */
#define RSS_CHECK_MS 100

static int needs_recycling(struct worker *w)
{
    const struct warren_config *cfg = w->cfg;
    if (cfg->max_jobs_per_process && w->jobs_done >= cfg->max_jobs_per_process) {
        WARREN_LOG(WARREN_LOG_INFO, "worker.recycle", "%lld jobs done: making way for a fresh "
                                                      "process", w->jobs_done);
        return 1;
    }
    if (!cfg->max_memory_per_process)
        return 0;
    long long now = mono_ms();
    if (w->rss_checked_ms && now - w->rss_checked_ms < RSS_CHECK_MS)
        return 0;
    w->rss_checked_ms = now;
    long long rss = resident_bytes(w);
    if (rss > cfg->max_memory_per_process) {
        WARREN_LOG(WARREN_LOG_INFO, "worker.recycle",
                   "resident memory %lld bytes over max_memory_per_process: making way for a "
                   "fresh process", rss);
        return 1;
    }
    return 0;
}

/* A job that came through the delay levels carries its worker name after
 * the 28 delay words of its routing key; seen that way, it is just like
 * one published to the jobs exchange. */
static void view_delivery(const struct worker *w, const struct warren_conn_delivery *d,
                          struct warren_delivery *in)
{
    const char *worker = NULL;
    if (strncmp(d->exchange, w->delay_prefix, strlen(w->delay_prefix)) == 0)
        worker = warren__delay_key_worker(d->routing_key);
    in->exchange = worker ? w->jobs_exchange : d->exchange;
    in->exchange_len = strlen(in->exchange);
    in->routing_key = worker ? worker : d->routing_key;
    in->routing_key_len = strlen(in->routing_key);
    in->props = &d->message.properties;
    in->body = d->message.body.bytes;
    in->body_len = d->message.body.len;
}

static warren_status handle_delivery(struct worker *w, struct warren_conn_delivery *d)
{
    struct warren_delivery in;
    view_delivery(w, d, &in);
    struct warren_job job;
    char why[WARREN_ERROR_TEXT_MAX];
    enum warren_dead_reason reason =
        warren__job_decode(&job, &in, w->jobs_exchange, (size_t)w->cfg->max_message_bytes, why,
                           sizeof why);
    if (reason == WARREN_DEAD_NONE) {
        const char *refusal = warren__signature_refusal(
            w->sig_key, w->cfg->require_signature, job.worker, &d->message.properties,
            d->message.body.bytes, d->message.body.len);
        if (refusal) {
            reason = WARREN_DEAD_BAD_SIGNATURE;
            snprintf(why, sizeof why, "%s", refusal);
        }
    }
    warren_status st;
    if (reason != WARREN_DEAD_NONE)
        st = warrend_park(w, d, &job, reason, why, job.attempt > 0 ? job.attempt : 1);
    else
        st = run_job(w, d, &job);
    warren__job_clear(&job);
    return st;
}

static warren_status connect_and_consume(struct worker *w, warren_error *err)
{
    char name[320];
    snprintf(name, sizeof name, "warrend %s worker %d", w->cfg->host_name, w->slot);
    struct warren_conn_opts co = {w->cfg->heartbeat, w->cfg->password_file, &w->cfg->tls, name};
    warren_status st = warren__conn_open(&w->conn, w->urls, w->n_urls, &co, err);
    if (st != WARREN_OK)
        return st;
    st = warren__topology_declare_host(w->conn, w->cfg, w->reg, NULL, NULL, err);
    if (st == WARREN_OK && w->cfg->events_enabled)
        st = warren__events_declare(w->conn, w->cfg->namespace_, err);
    if (st == WARREN_OK)
        st = warren__conn_qos(w->conn, (uint16_t)w->cfg->prefetch, err);
    size_t nq = 0;
    const struct warren_queue_conf **queues = warren__host_queues(w->cfg, w->reg, &nq);
    char qname[WARREN_AMQP_NAME_MAX];
    for (size_t i = 0; st == WARREN_OK && queues && i < nq; i++)
        st = warren__conn_consume(
            w->conn, warren__name_queue(qname, sizeof qname, w->cfg->namespace_, queues[i]->name),
            queues[i]->name, err);
    if (st == WARREN_OK && nq == 0)
        WARREN_LOG(WARREN_LOG_WARN, "worker.idle", "no queue to consume: no loaded worker "
                                                   "is served by a configured queue");
    if (st == WARREN_OK)
        warren_stats_worker_state(w->stats, 1, nq > 0);
    free(queues);
    return st;
}

/* Takes deliveries until asked to stop or the connection fails. */
static warren_status consume_loop(struct worker *w)
{
    while (!warrend_stop && !w->recycle) {
        struct warren_conn_delivery d;
        warren_error err;
        warren_error_clear(&err);
        warren_status st = warren__conn_next_delivery(w->conn, POLL_MS, &d, &err);
        if (st == WARREN_ETIMEDOUT)
            continue;
        if (st == WARREN_ENOTFOUND) {
            WARREN_LOG(WARREN_LOG_WARN, "worker.cancelled",
                       "the broker cancelled consumer '%s'; reconnecting", err.text);
            return WARREN_EBROKER;
        }
        if (st != WARREN_OK) {
            WARREN_LOG(WARREN_LOG_ERROR, "broker.lost", "%s", err.text);
            return st;
        }
        st = handle_delivery(w, &d);
        warren__conn_delivery_free(&d);
        if (st != WARREN_OK)
            return st;
        w->recycle = needs_recycling(w);
    }
    return WARREN_OK;
}

static int load_modules(struct worker *w)
{
    warren_error err;
    warren_error_clear(&err);
    if (warren_registry_create(&w->reg) != WARREN_OK)
        return WORKER_EXIT_ERROR;
    if (warren__modules_load(&w->mods, w->cfg, w->reg, &err) != WARREN_OK) {
        char buf[1024];
        warren_log_write(WARREN_LOG_ERROR, "module.load", NULL, "%s",
                         warren_error_format(&err, buf, sizeof buf));
        return WORKER_EXIT_CONFIG;
    }
    return WORKER_EXIT_OK;
}

static int serve(struct worker *w)
{
    long long backoff = BACKOFF_MIN_MS;
    while (!warrend_stop) {
        warren_error err;
        warren_error_clear(&err);
        warren_status st = connect_and_consume(w, &err);
        if (st == WARREN_EDRIFT) {
            warren_log_write(WARREN_LOG_ERROR, "topology.drift", NULL, "%s", err.text);
            return WORKER_EXIT_DRIFT;
        }
        if (st == WARREN_OK) {
            WARREN_LOG(WARREN_LOG_INFO, "worker.ready", "consuming from %s",
                       warren__conn_url(w->conn));
            backoff = BACKOFF_MIN_MS;
            st = consume_loop(w);
        } else {
            WARREN_LOG(WARREN_LOG_WARN, "broker.connect", "%s; retrying in %lld ms", err.text,
                       backoff);
        }
        warren__conn_close(w->conn);
        w->conn = NULL;
        warren_stats_worker_state(w->stats, 0, 0);
        if (st == WARREN_OK || warrend_stop)
            break;
        /* Jitter of +-20 % keeps a fleet from reconnecting in lockstep. */
        nap(backoff * (80 + rand() % 41) / 100);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return WORKER_EXIT_OK;
}

int warrend_worker_main(struct warren_config *cfg, int slot, struct warren_board *board,
                        int board_slot, struct warren_stats *stats)
{
    warrend_signals_worker();
    /* A worker must not outlive its supervisor. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char role[32];
    snprintf(role, sizeof role, "worker %d", slot);
    warren_log_setup(cfg->log_level, cfg->log_format, role);
    srand((unsigned)(getpid() ^ time(NULL)));

    struct worker w;
    memset(&w, 0, sizeof w);
    w.statm_fd = -1;
    w.cfg = cfg;
    w.slot = slot;
    w.board = board;
    w.board_slot = board_slot;
    w.stats = stats;
    warren_stats_worker_attach(stats, board_slot + 1);
    w.lc.conn = &w.conn;
    w.lc.ns = cfg->namespace_;
    w.lc.host = cfg->host_name;
    w.lc.events = cfg->events_enabled;
    w.lc.events_transient = !cfg->events_persistent;
    w.lc.stats = stats;
    w.lc.duration_ms = -1;
    w.urls = cfg->urls;
    w.n_urls = cfg->n_urls;
    warren__name_exchange(w.jobs_exchange, sizeof w.jobs_exchange, cfg->namespace_);
    snprintf(w.delay_prefix, sizeof w.delay_prefix, "%s.delay.", cfg->namespace_);

    int rc = load_modules(&w);
    if (rc == WORKER_EXIT_OK && resolve_confs(&w) != 0)
        rc = WORKER_EXIT_ERROR;
    w.lc.reg = w.reg; /* observers, and which workers are known */
    if (rc == WORKER_EXIT_OK && cfg->signing_key_file) {
        warren_error err;
        warren_error_clear(&err);
        if (warren__sig_key_load(&w.sig_key, cfg->signing_key_file, &err) != WARREN_OK) {
            warren_log_write(WARREN_LOG_ERROR, "security.key", NULL, "%s", err.text);
            rc = WORKER_EXIT_CONFIG;
        }
    }
    if (rc == WORKER_EXIT_OK) {
        w.guard = guard_create();
        rc = w.guard ? serve(&w) : WORKER_EXIT_ERROR;
        if (rc == WORKER_EXIT_OK && w.recycle)
            rc = WORKER_EXIT_RECYCLE;
        guard_destroy(w.guard);
    }
    warren__sig_key_free(w.sig_key);
    if (w.statm_fd >= 0)
        close(w.statm_fd);
    free(w.confs);
    warren__modules_unload(w.mods);
    warren_registry_destroy(w.reg);
    return rc;
}

int warrend_preflight(struct warren_config *cfg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct worker w;
        memset(&w, 0, sizeof w);
        w.statm_fd = -1;
        w.cfg = cfg;
        int rc = load_modules(&w);
        warren__modules_unload(w.mods);
        warren_registry_destroy(w.reg);
        fflush(NULL);
        _exit(rc);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return 1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 0 ? 0 : 2;
    return 1;
}
