/* warrend internals: the supervisor, its worker processes and signals.
 *
 * warrend is prefork: the supervisor reads the config, forks `concurrency`
 * worker processes and watches them; it loads no module, and its only
 * broker connection is the scheduler's (when there are schedules). Each worker process loads the modules after fork,
 * opens its own connection and runs one job at a time. */
#ifndef WARREND_H
#define WARREND_H

#include <signal.h>
#include "config.h"

/* Exit statuses of a worker process, read by the supervisor. */
enum {
    WORKER_EXIT_OK = 0,      /* stopped on request */
    WORKER_EXIT_ERROR = 1,   /* unexpected failure: restart with backoff */
    WORKER_EXIT_CONFIG = 2,  /* modules or config refused: stop the host, exit 2 */
    WORKER_EXIT_DRIFT = 3,   /* topology differs from config: stop the host, exit 1 */
    WORKER_EXIT_RECYCLE = 4, /* asked to be replaced (recycling, time limit) */
};

/* Flags set by signal handlers (signals.c). */
extern volatile sig_atomic_t warrend_stop;   /* SIGTERM / SIGINT */
extern volatile sig_atomic_t warrend_reload; /* SIGHUP */
extern volatile sig_atomic_t warrend_child;  /* SIGCHLD */

void warrend_signals_supervisor(void);
/* In a worker: SIGTERM sets warrend_stop; SIGINT and SIGHUP are ignored,
 * so Ctrl-C on a terminal reaches workers only through the supervisor. */
void warrend_signals_worker(void);

/* Runs the supervisor until stopped. Takes ownership of cfg (allocated
 * with malloc; a reload replaces it). Returns the exit status. */
int warrend_supervise(struct warren_config *cfg);

struct warren_board;
struct warren_stats;

/* Body of worker process number `slot` (1-based, for logs), which writes
 * its running job to `board_slot` of the host's shared board, and its
 * statistics to process slot board_slot + 1 of `stats`. Returns its exit
 * status. */
int warrend_worker_main(struct warren_config *cfg, int slot, struct warren_board *board,
                        int board_slot, struct warren_stats *stats);

/* Loads the modules in a throwaway child to check them before any worker
 * starts (at start, and before a reload is accepted), so the supervisor
 * itself keeps none loaded. Returns 0, or 2 after logging the FILE:LINE
 * error, or 1 when the child could not run. */
int warrend_preflight(struct warren_config *cfg);

#endif
