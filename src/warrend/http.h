/* The supervisor's HTTP endpoint (host.metrics_listen): GET /metrics and
 * GET /healthz, served by libmicrohttpd from one internal thread.
 *
 *   /metrics   200, Prometheus text format 0.0.4 from the shared stats
 *   /healthz   200 "ok" when every worker process is connected and
 *              consuming; else 503 with one line per worker that is not
 *   other      404; a method other than GET or HEAD: 405
 *
 * The thread only reads the shared statistics (atomics, no lock), logs
 * nothing and runs with every signal blocked, so the supervisor's signal
 * handling is unchanged. */
#ifndef WARREND_HTTP_H
#define WARREND_HTTP_H

#include <warren/error.h>

struct warren_stats;
struct warren_http;

/* Starts serving on `listen` ("HOST:PORT", "[::1]:PORT" or ":PORT" for
 * every address; port 0 picks a free one). "" (or NULL) serves nothing:
 * *out is NULL and WARREN_OK is returned. *bound_port (may be NULL)
 * receives the port listened on. `stats` is borrowed and must outlive the
 * server. WARREN_EINVAL for a listen address that does not parse or
 * resolve; WARREN_EIO when the address cannot be bound (a port in use:
 * "cannot listen on 127.0.0.1:9464: Address already in use"), or the
 * server thread cannot start. */
warren_status warren_http_start(struct warren_http **out, const char *listen,
                                struct warren_stats *stats, int *bound_port, warren_error *err);

/* The address listened on, "127.0.0.1:9464" or "[::1]:9464" (for the
 * log line "metrics on ..."). "" for NULL. */
const char *warren_http_address(const struct warren_http *h);

/* Stops the thread, closes every socket and frees. NULL does nothing. */
void warren_http_stop(struct warren_http *h);

/* In a process forked from the one that started the server (a worker):
 * closes the copies of the server's sockets it inherited (the listening
 * socket and open connections), so a worker never holds the port or a
 * client's connection open. Touches nothing else: the server belongs to
 * the parent. NULL does nothing. */
void warren_http_close_inherited(struct warren_http *h);

#endif
