/* The supervisor's HTTP endpoint: /metrics and /healthz (see http.h).
 *
 * DESIGN: we bind the listening socket ourselves (listen.h) and hand it
 * to libmicrohttpd (MHD_OPTION_LISTEN_SOCKET), so the descriptor is known: a worker process forked later closes its copy
 * (warren_http_close_inherited), along with copies of client connections
 * open at the time of the fork, which a connection-notify callback keeps
 * in a small table of atomics (a mutex could be held by the server thread
 * at the moment of the fork, and the child would deadlock on it). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>
#include "http.h"
#include "listen.h"
#include "stats.h"

#define MAX_CONNECTIONS 32
#define CONNECTION_TIMEOUT_S 10
#define HEALTH_TEXT_MAX 8192

struct warren_http {
    struct MHD_Daemon *daemon;
    struct warren_stats *stats;
    int listen_fd;
    char address[128];
    _Atomic int conn_fds[MAX_CONNECTIONS + 8]; /* open connections' fds + 1 (0: free) */
};

/* ---- connections (for the child's close) ---- */

static void track(struct warren_http *h, int fd, int open)
{
    size_t n = sizeof h->conn_fds / sizeof h->conn_fds[0];
    for (size_t i = 0; i < n; i++) {
        int expected = open ? 0 : fd + 1;
        if (atomic_compare_exchange_strong(&h->conn_fds[i], &expected, open ? fd + 1 : 0))
            return;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)socket_context;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info)
        track(cls, info->connect_fd, toe == MHD_CONNECTION_NOTIFY_STARTED);
}

void warren_http_close_inherited(struct warren_http *h)
{
    if (!h)
        return;
    size_t n = sizeof h->conn_fds / sizeof h->conn_fds[0];
    for (size_t i = 0; i < n; i++) {
        int fd = atomic_load(&h->conn_fds[i]);
        if (fd > 0)
            close(fd - 1);
    }
    if (h->listen_fd >= 0)
        close(h->listen_fd);
}

/* ---- requests ---- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, char *body,
                               size_t len, enum MHD_ResponseMemoryMode mode,
                               const char *content_type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status,
                                    const char *text)
{
    return respond(c, status, (char *)text, strlen(text), MHD_RESPMEM_MUST_COPY,
                   "text/plain; charset=utf-8");
}

static enum MHD_Result serve_metrics(struct warren_http *h, struct MHD_Connection *c)
{
    char *text = NULL;
    size_t len = warren_stats_render(h->stats, &text);
    if (!text)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return respond(c, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE,
                   "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result serve_health(struct warren_http *h, struct MHD_Connection *c)
{
    char why[HEALTH_TEXT_MAX];
    int ok = warren_stats_health(h->stats, why, sizeof why);
    return respond_text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    struct warren_http *h = cls;
    int known = strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0;
    *upload_data_size = 0; /* a body, if any, is ignored */
    if (!known)
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    return url[1] == 'm' ? serve_metrics(h, c) : serve_health(h, c);
}

/* ---- the server ---- */

warren_status warren_http_start(struct warren_http **out, const char *listen,
                                struct warren_stats *stats, int *bound_port, warren_error *err)
{
    *out = NULL;
    if (bound_port)
        *bound_port = 0;
    if (!listen || !listen[0])
        return WARREN_OK;
    struct warren_http *h = calloc(1, sizeof *h);
    if (!h)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    h->stats = stats;
    h->listen_fd = -1;
    int port = 0;
    warren_status st = warren__listen_tcp(listen, "metrics_listen", &h->listen_fd, h->address,
                                          sizeof h->address, &port, err);
    if (st != WARREN_OK) {
        free(h);
        return st;
    }
    /* The server thread inherits this mask: signals stay with the
     * supervisor's own thread, whose loop acts on them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    h->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->daemon) {
        close(h->listen_fd);
        free(h);
        return warren_error_set(err, WARREN_EIO, "cannot start the HTTP server on %s", listen);
    }
    if (bound_port)
        *bound_port = port;
    *out = h;
    return WARREN_OK;
}

const char *warren_http_address(const struct warren_http *h)
{
    return h ? h->address : "";
}

void warren_http_stop(struct warren_http *h)
{
    if (!h)
        return;
    /* MHD closes the listening socket it was given. */
    MHD_stop_daemon(h->daemon);
    free(h);
}
