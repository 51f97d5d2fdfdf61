/* Internal: job statistics shared by the processes of one host.
 *
 * DESIGN: the supervisor creates one anonymous shared mapping before it
 * forks any worker process; every process of the host then reads and
 * writes the same counters with C11 atomics. Nothing on the job path
 * takes a lock or makes a system call: counting is a hash lookup and an
 * atomic add. A series is one (queue, worker) pair with a counter per
 * outcome and a duration histogram; series live in an open-addressing
 * table in the mapping and are never removed, so a reader needs no lock
 * either. Registering a new series claims an empty slot with a
 * compare-and-swap and publishes it once its names are written; a process
 * that meets a slot still being claimed spins briefly, and gives up on it
 * (probing further) if the claimer seems to have died half-way, which at
 * worst leaves two slots with the same names: rendering merges them.
 * Beyond WARREN_STATS_SERIES_MAX series, jobs count into one overflow
 * series (queue="", worker="") and a warning is logged once per host.
 *
 * Per process slot one 64-bit word holds the pid, the connected and
 * consuming flags and the series of the job in flight, so the supervisor
 * can tell a process that died mid-job (a crash) from one that was idle,
 * and /healthz reads all of it without a lock. A process slot is any
 * number in 1..WARREN_STATS_SLOTS_MAX unique among the live worker
 * processes of the host (warrend uses its board slot + 1), so a process
 * retiring after a reload keeps its own slot beside its successor's. A
 * slot's word is changed (by compare-and-swap) only by the process whose
 * pid it holds, or by the supervisor once that process is gone. The
 * supervisor also maps each worker number (1..concurrency, "worker 2" in
 * the logs) to the slot of the process serving it now: /healthz and
 * warren_broker_connected look at those.
 *
 * Names from the wire never create series: callers pass "" as the worker
 * for a job whose worker is not registered in this host. */
#ifndef WARREN_STATS_H
#define WARREN_STATS_H

#include <stddef.h>
#include <sys/types.h>

#define WARREN_STATS_SERIES_MAX 512 /* (queue, worker) series; more go to overflow */
#define WARREN_STATS_SLOTS_MAX 1024 /* process slots, and worker numbers */

/* Outcomes counted in warren_jobs_total{outcome=...}. */
enum warren_stats_outcome {
    WARREN_STATS_SUCCEEDED = 0,
    WARREN_STATS_RETRIED = 1,
    WARREN_STATS_DEAD = 2,
    WARREN_STATS_CRASHED = 3,
    WARREN_STATS_SNOOZED = 4,   /* went back to wait, not a failure */
    WARREN_STATS_DUPLICATE = 5, /* acked unrun: unique_by within unique_for */
};

/* A process's handle on the shared statistics. The handle itself is
 * process-local memory (a forked child gets its own copy); what it points
 * at is shared. */
struct warren_stats;

/* Creates the shared statistics (all zero). Call in the supervisor before
 * forking: children inherit the mapping and a copy of the handle.
 * `workers` is the number of worker processes the host runs
 * (host.concurrency, clamped to 1..WARREN_STATS_SLOTS_MAX). Returns NULL
 * when the mapping cannot be made. */
struct warren_stats *warren_stats_create(int workers);

/* Unmaps and frees this process's handle. NULL does nothing. Each process
 * that inherited the handle may call it, or just exit. */
void warren_stats_destroy(struct warren_stats *st);

/* Changes how many worker processes /healthz and warren_broker_connected
 * expect (after a reload that changed host.concurrency). */
void warren_stats_set_workers(struct warren_stats *st, int workers);
int warren_stats_workers(const struct warren_stats *st);

/* Supervisor: worker number `worker` (1..n) now runs in process slot
 * `slot` (0: no process, e.g. waiting to be restarted). */
void warren_stats_set_worker(struct warren_stats *st, int worker, int slot);

/* ---- a worker process; after attaching, nothing here blocks or makes a
 * system call ---- */

/* Tells the handle that this process runs in process slot `slot` and
 * claims the slot for it (see warren_stats_slot_begin). Call first thing
 * in the child after fork. */
void warren_stats_worker_attach(struct warren_stats *st, int slot);

/* Counts one finished job. `queue` is the queue's short name, `worker`
 * the worker name, or "" when the worker is not registered here.
 * `seconds` is how long the handler ran, or < 0 when it never ran (bad
 * input): then no duration is observed. Needs no slot; any process. */
void warren_stats_job(struct warren_stats *st, const char *queue, const char *worker,
                      enum warren_stats_outcome outcome, double seconds);

/* Marks this worker process's job as started (in flight) and remembers
 * its series, so that the supervisor can count a crash if the process
 * dies before warren_stats_job_end. Needs warren_stats_worker_attach. */
void warren_stats_job_begin(struct warren_stats *st, const char *queue, const char *worker);

/* Ends the job in flight: counts `outcome` (an enum warren_stats_outcome)
 * on the series given to warren_stats_job_begin and observes `seconds`
 * (< 0: none). An outcome < 0 counts nothing (the job was left unacked
 * for redelivery) but still observes the duration. No job in flight:
 * nothing happens. */
void warren_stats_job_end(struct warren_stats *st, int outcome, double seconds);

/* Sets this worker process's connection state. */
void warren_stats_worker_state(struct warren_stats *st, int connected, int consuming);

/* ---- the supervisor ---- */

/* Claims process slot `slot` for process `pid` with all flags clear
 * (call it before warren_stats_set_worker names the slot). Both the
 * supervisor (after fork) and the new process (warren_stats_worker_attach)
 * do it; whichever comes second finds the pid already set and changes
 * nothing, so the child's flags are never reset. */
void warren_stats_slot_begin(struct warren_stats *st, int slot, pid_t pid);

/* Clears `slot` after process `pid` exited (nothing happens when the slot
 * belongs to another pid). When it died with a job in flight and
 * `count_crash` is set, counts outcome `crashed` on that job's series and
 * returns 1; otherwise returns 0. For retiring processes too. */
int warren_stats_slot_end(struct warren_stats *st, int slot, pid_t pid, int count_crash);

/* Counts one restart of a worker process. */
void warren_stats_restart(struct warren_stats *st);

/* ---- readers (any thread of any process) ---- */

struct warren_stats_slot_view {
    pid_t pid;       /* 0 when not running */
    int connected;
    int consuming;
    int in_flight;
};

/* A snapshot of process slot `slot`; all zero when out of range. */
void warren_stats_slot_get(const struct warren_stats *st, int slot,
                           struct warren_stats_slot_view *out);

/* Returns 1 and writes "ok\n" into buf when every worker number has a
 * process that is connected and consuming; otherwise returns 0 and writes
 * one line per worker that is not ("worker 2: not connected to the
 * broker\n"; also "not running" and "not consuming ..."). */
int warren_stats_health(const struct warren_stats *st, char *buf, size_t size);

/* Renders the Prometheus text exposition (format 0.0.4):
 * warren_jobs_total{queue,worker,outcome} (every outcome of every series,
 * zeros included), warren_job_duration_seconds (histogram by worker),
 * warren_jobs_in_flight, warren_worker_restarts_total and
 * warren_broker_connected (1 when every worker process is connected,
 * else 0). *out is new (free()); returns its length, or 0 with *out = NULL
 * when out of memory. */
size_t warren_stats_render(const struct warren_stats *st, char **out);

#endif
