/* The job guard: a second thread in each worker process that looks after
 * the connection while a handler runs.
 *
 * rabbitmq-c answers heartbeats only inside its own calls, so a handler
 * that runs for minutes would lose its connection. Once a job has run for
 * GUARD_PUMP_AFTER_MS the guard takes the connection and keeps reading
 * frames (heartbeats both ways; deliveries are queued) until the handler
 * returns. It also enforces the job's time limit: at the deadline it calls
 * the timeout callback on its own thread, which hands the job on and ends
 * the process. The handler's thread never touches the connection while the
 * guard may: the main thread calls guard_leave() before using it again.
 *
 * Starting and ending a job costs an atomic store and a compare-and-swap,
 * no lock and no wake-up: the guard looks on its own tick (GUARD_TICK_MS),
 * so it takes the connection, or acts on a deadline, at most a tick late.
 * Only a job that ends while the guard holds the connection waits (for the
 * rest of that slice), as before. */
#ifndef WARREND_GUARD_H
#define WARREND_GUARD_H

#include "conn.h"

#define GUARD_PUMP_AFTER_MS 1000
#define GUARD_TICK_MS 100

struct guard;

/* Starts the thread. NULL on failure. */
struct guard *guard_create(void);
void guard_destroy(struct guard *g);

/* What the guard calls on its own thread: on_timeout at the deadline (it
 * must not return), on_tick after each slice of looking after the
 * connection (it may use the connection; may be NULL). */
struct guard_calls {
    void (*on_timeout)(void *ctx);
    void (*on_tick)(void *ctx);
    void *ctx;
};

/* A job starts: from now until guard_leave() the guard may use `conn`.
 * deadline_ms (monotonic, 0 = none) triggers calls->on_timeout. */
void guard_enter(struct guard *g, struct warren_conn *conn, long long deadline_ms,
                 const struct guard_calls *calls);

/* The job ended: waits until the guard has let go of the connection. */
void guard_leave(struct guard *g);

#endif
