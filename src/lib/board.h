/* Internal: the host's shared board, one anonymous shared mapping made by
 * the supervisor before it forks, read and written by every process of the
 * host.
 *
 * DESIGN: three things must be known across the worker processes of a
 * host, and survive the death of any one of them:
 *   - which job each worker process is running (so that when a process
 *     dies mid-job, the supervisor can blame that message id, and can kill
 *     a process that overruns its job's time limit);
 *   - how often each message id has crashed a process (so that when the
 *     broker redelivers it, whichever process gets it can park it at
 *     max_crashes);
 *   - the ids of jobs completed recently (so that a job whose ack was lost
 *     with its connection is acked, not run again, when redelivered).
 * It also holds each rate-limited worker's schedule, so `rate_limit`
 * holds for the whole host, all its processes together.
 * A process-shared robust mutex guards the crash table and slot claims;
 * the completed-id ring stores 64-bit hashes, written under the same lock.
 * A process that dies holding the lock leaves it consistent-able: every
 * update is a few stores. */
#ifndef WARREN_BOARD_H
#define WARREN_BOARD_H

#include <stddef.h>
#include <sys/types.h>

#define WARREN_BOARD_SLOTS 512
#define WARREN_BOARD_CRASHES 256
#define WARREN_BOARD_COMPLETED 10000
#define WARREN_BOARD_RATES 128

struct warren_board;

/* What the supervisor learns from a slot when its process ends. */
struct warren_board_exit {
    int was_in_job;      /* the process died while running a job */
    char job_id[257];
    int crashes;         /* the id's crash count after this one */
};

/* Creates the mapping. NULL on failure. */
struct warren_board *warren__board_create(void);
void warren__board_destroy(struct warren_board *b);

/* Supervisor: takes a free slot for a new process (-1 when none). */
int warren__board_claim(struct warren_board *b, pid_t pid);

/* Supervisor: records the pid of the process forked for a claimed slot. */
void warren__board_set_pid(struct warren_board *b, int slot, pid_t pid);

/* Supervisor: the process in `slot` ended. When it died mid-job and
 * `count_crash` is set, the job's id gets one more crash with `signal`. The
 * slot is freed. */
void warren__board_release(struct warren_board *b, int slot, int count_crash, int signal,
                           struct warren_board_exit *out);

/* Supervisor: slots whose job overran its kill deadline; returns how many
 * pids were written (at most max). */
size_t warren__board_overdue(struct warren_board *b, long long now_ms, pid_t *pids, size_t max);

/* Worker: a job starts in `slot`; kill_at_ms (monotonic, 0 = none) is when
 * the supervisor may kill the process. */
void warren__board_job_start(struct warren_board *b, int slot, const char *id,
                             long long kill_at_ms);
/* Worker: the job ended; when `completed`, its id joins the recent ring. */
void warren__board_job_end(struct warren_board *b, int slot, const char *id, int completed);

/* Worker: crashes recorded for an id (0 when none), and the last signal. */
int warren__board_crashes(struct warren_board *b, const char *id, int *signal);

/* Worker: whether the id completed recently on this host. */
int warren__board_completed(struct warren_board *b, const char *id);

/* Worker: reserves the next start time for a job of a worker limited to
 * `rate` jobs per second on this host, and returns how many milliseconds
 * to wait before starting it (0: start now). Reservations are spaced
 * 1/rate apart, so no window of time sees more than the rate (plus one). */
long long warren__board_rate_reserve(struct warren_board *b, const char *worker, double rate,
                                     long long now_us);

/* Monotonic milliseconds, the board's clock. */
long long warren__board_now_ms(void);

#endif
