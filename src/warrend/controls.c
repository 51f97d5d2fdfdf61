/* Job controls in the worker process: snooze, locks (lock_by) and unique
 * jobs (unique_by).
 *
 * DESIGN: locks and unique keys are broker objects, so they hold across
 * every host of a vhost and die with the connection that took them: an
 * exclusive queue "<ns>.lock.<worker>.<hash>" (or ".unique.") declared by
 * the worker process that runs the job (conn.c declares it on a second
 * channel, so a refusal never disturbs the deliveries of the first). The
 * hash is over the worker name and the JSON values of the named
 * arguments. A job that finds its lock taken goes back through the delay
 * levels for about a second and tries again, holding no worker process
 * and using no attempt; x-warren-lock-since remembers when it began
 * waiting, so lock_timeout can end the wait. A unique key lives while its
 * job runs, and at most unique_for (x-expires). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <warren/log.h>
#include "delay.h"
#include "handoff.h"
#include "worker.h"

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void hash_bytes(unsigned long long *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= 1099511628211ULL;
    }
}

/* "<ns>.<kind>.<worker>.<16 hex digits>" for the job's key. */
static void key_name(const struct worker *w, const struct warren_job *job, const char *kind,
                     char *const *names, char *out, size_t size)
{
    unsigned long long h = 1469598103934665603ULL;
    hash_bytes(&h, job->worker, strlen(job->worker) + 1);
    for (char *const *n = names; *n; n++) {
        json_t *v = json_object_get(job->args, *n);
        char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        const char *part = text ? text : "null";
        hash_bytes(&h, part, strlen(part) + 1);
        free(text);
    }
    snprintf(out, size, "%s.%s.%s.%016llx", w->cfg->namespace_, kind, job->worker, h);
}

warren_status warrend_snooze(struct worker *w, struct warren_conn_delivery *d,
                             struct warren_job *job, long long delay_ms, int counted,
                             long long lock_since_ms, const char *why)
{
    const amqp_basic_properties_t *p = &d->message.properties;
    int snoozes = (int)warrend_header_int(p, "x-warren-snoozes", 0);
    if (counted) {
        const struct warren_worker_conf *wc = warren__config_worker(w->cfg, job->worker);
        if (++snoozes > wc->max_snoozes) {
            char text[160];
            snprintf(text, sizeof text, "snoozed %d times, over max_snoozes %d", snoozes - 1,
                     wc->max_snoozes);
            return warrend_park(w, d, job, WARREN_DEAD_MAX_ATTEMPTS, text, job->attempt);
        }
    }
    long long secs = warren__delay_seconds(delay_ms);
    if (secs < 1)
        secs = 1; /* "later" is never "now": that would spin */
    struct warren_retry_info info = {job->worker, job->attempt, secs, counted ? snoozes : 0,
                                     lock_since_ms, NULL, job->id_assigned ? job->id : NULL};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__send_retry(w->conn, w->cfg->namespace_, d, &info, &err);
    if (st == WARREN_ENACK)
        return warrend_park(w, d, job, WARREN_DEAD_REJECTED_BY_BROKER, err.text, job->attempt);
    if (st != WARREN_OK) {
        warren__lifecycle_unsettled(&w->lc);
        return st;
    }
    WARREN_LOG(WARREN_LOG_INFO, "job.snoozed", "%s %s: %s; again in %lld s", job->worker, job->id,
               why, secs);
    warren__lifecycle_snoozed(&w->lc, job, d->consumer_tag, secs * 1000, why);
    warren_error_clear(&err);
    return warren__conn_ack(w->conn, d->delivery_tag, &err);
}

/* The lock is taken: wait about a second (+-20 %), unless the job has
 * waited longer than lock_timeout, which is a transient failure. */
static warren_status lock_busy(struct worker *w, struct warren_conn_delivery *d,
                               struct warren_job *job, const struct warren_worker_conf *wc)
{
    long long now = wall_ms();
    long long since = warrend_header_int(&d->message.properties, "x-warren-lock-since", 0);
    if (since <= 0)
        since = now;
    if (now - since > wc->lock_timeout_ms) {
        char limit[32];
        snprintf(job->error, sizeof job->error, "lock held longer than %s",
                 warren__format_duration(wc->lock_timeout_ms, limit, sizeof limit));
        if (job->max_attempts <= 0)
            job->max_attempts = wc->retry.max_attempts;
        return warrend_retry_or_park(w, d, job);
    }
    long long delay = 800 + rand() % 401;
    return warrend_snooze(w, d, job, delay, 0, since, "its lock is taken");
}

static warren_status duplicate(struct worker *w, struct warren_conn_delivery *d,
                               const struct warren_job *job)
{
    WARREN_LOG(WARREN_LOG_INFO, "job.duplicate",
               "%s %s: a job with the same unique key ran within unique_for: acked unrun",
               job->worker, job->id);
    warren__lifecycle_duplicate(&w->lc, job, d->consumer_tag);
    warren_error err;
    warren_error_clear(&err);
    return warren__conn_ack(w->conn, d->delivery_tag, &err);
}

int warrend_take_keys(struct worker *w, struct warren_conn_delivery *d, struct warren_job *job,
                      const struct warren_worker_conf *wc, struct held_keys *held,
                      warren_status *st)
{
    warren_error err;
    warren_error_clear(&err);
    held->lock[0] = held->unique[0] = '\0';
    if (wc->unique_by && wc->unique_for_ms > 0) {
        key_name(w, job, "unique", wc->unique_by, held->unique, sizeof held->unique);
        *st = warren__conn_lock(w->conn, held->unique, wc->unique_for_ms, &err);
        if (*st != WARREN_OK) {
            held->unique[0] = '\0';
            if (*st == WARREN_EEXIST)
                *st = duplicate(w, d, job);
            return 1;
        }
    }
    if (wc->lock_by) {
        key_name(w, job, "lock", wc->lock_by, held->lock, sizeof held->lock);
        *st = warren__conn_lock(w->conn, held->lock, 0, &err);
        if (*st != WARREN_OK) {
            held->lock[0] = '\0';
            if (*st == WARREN_EEXIST)
                *st = lock_busy(w, d, job, wc);
            warrend_release_keys(w, held);
            return 1;
        }
    }
    return 0;
}

void warrend_release_keys(struct worker *w, struct held_keys *held)
{
    warren_error err;
    warren_error_clear(&err);
    if (held->lock[0])
        warren__conn_unlock(w->conn, held->lock, &err);
    if (held->unique[0])
        warren__conn_unlock(w->conn, held->unique, &err);
    held->lock[0] = held->unique[0] = '\0';
}
