/* `warren web`: consumes `<ns>.events` through the durable queue
 * `<ns>.history` into the history store, and serves the JSON API and the
 * page.
 *
 * DESIGN: the main thread owns the broker connection and the writable
 * store. Deliveries are ingested inside one transaction per batch (up to
 * `batch` events, or what arrived within FLUSH_MS); only after COMMIT is
 * the last delivery tag acked with multiple=1. A crash before the commit
 * leaves every event of the batch unacked, so the broker delivers it
 * again, and ingest is idempotent. libmicrohttpd runs one internal polling
 * thread, which owns its own read-only store handle (WAL lets it read while
 * the main thread writes) and, for /api/queues, its own broker connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <microhttpd.h>
#include <warren/log.h>
#include "../cli/common.h"
#include "events.h"
#include "history.h"
#include "listen.h"
#include "topology.h"
#include "web.h"
#include "web_http.h"

#define FLUSH_MS 200
#define PRUNE_EVERY_MS 60000
#define BATCH 500
/* Twice a batch: the broker keeps sending the next batch while this one
 * commits (with PREFETCH == BATCH it waited for the ack; +20 % ingest). */
#define PREFETCH (2 * BATCH)

#ifndef WARREN_SOURCE_WEB_DIR
#define WARREN_SOURCE_WEB_DIR "web"
#endif
#ifndef WARREN_INSTALL_WEB_DIR
#define WARREN_INSTALL_WEB_DIR "/usr/local/share/warren/web"
#endif

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *warren__web_db_path(const struct warren_config *cfg, char *buf, size_t size)
{
    const char *db = cfg->web_db ? cfg->web_db : "var/warren.db";
    if (db[0] == '/' || !cfg->dir || !strcmp(db, ":memory:"))
        snprintf(buf, size, "%s", db);
    else
        snprintf(buf, size, "%s/%s", cfg->dir, db);
    return buf;
}

static int mkdir_parents(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

/* ---- the HTTP side ------------------------------------------------------ */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result web_respond_json(struct MHD_Connection *c, unsigned status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    if (!text)
        return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                       (void *)"{\"error\":\"out of memory\"}", 25, MHD_RESPMEM_PERSISTENT);
    return respond(c, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE);
}

enum MHD_Result web_respond_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return web_respond_json(c, status, json_pack("{s:s}", "error", msg));
}

/* The store, opened read-only on first use (warren web created it). */
static struct warren_history *reader(struct web *w, warren_error *err)
{
    if (!w->reader) {
        struct warren_history_opts o = {.read_only = 1};
        if (warren__history_open(&w->reader, w->db_path, &o, err) != WARREN_OK)
            w->reader = NULL;
    }
    return w->reader;
}

static const char *arg(struct MHD_Connection *c, const char *key)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    return v && v[0] ? v : NULL;
}

/* ?since=DURATION (e.g. 24h) -> Unix ms; -1 when it does not parse. */
static long long since_arg(struct MHD_Connection *c, long long dflt_ms)
{
    const char *s = arg(c, "since");
    long long d = dflt_ms;
    char why[128];
    if (s && warren__parse_duration(s, &d, why, sizeof why) != 0)
        return -1;
    return d > 0 ? wall_ms() - d : 0;
}

static enum MHD_Result api_jobs(struct web *w, struct MHD_Connection *c)
{
    warren_error err;
    warren_error_clear(&err);
    struct warren_history *h = reader(w, &err);
    if (!h)
        return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.text);
    struct warren_history_filter f = {.state = arg(c, "state"), .worker = arg(c, "worker"),
                                      .id_prefix = arg(c, "id")};
    f.since_ms = since_arg(c, 0);
    if (f.since_ms < 0)
        return web_respond_error(c, MHD_HTTP_BAD_REQUEST, "since: expected a duration, e.g. 24h");
    const char *limit = arg(c, "limit");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (*end || n < 1 || n > 10000)
            return web_respond_error(c, MHD_HTTP_BAD_REQUEST, "limit: expected 1-10000");
        f.limit = (int)n;
    }
    json_t *out;
    if (warren__history_jobs(h, &f, &out, &err) != WARREN_OK)
        return web_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.text);
    return web_respond_json(c, MHD_HTTP_OK, out);
}

static enum MHD_Result api_job(struct web *w, struct MHD_Connection *c, const char *id)
{
    warren_error err;
    warren_error_clear(&err);
    struct warren_history *h = reader(w, &err);
    if (!h)
        return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.text);
    json_t *out;
    warren_status st = warren__history_job(h, id, &out, &err);
    if (st == WARREN_ENOTFOUND)
        return web_respond_error(c, MHD_HTTP_NOT_FOUND, err.text);
    if (st != WARREN_OK)
        return web_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.text);
    return web_respond_json(c, MHD_HTTP_OK, out);
}

static enum MHD_Result api_report(struct web *w, struct MHD_Connection *c)
{
    warren_error err;
    warren_error_clear(&err);
    struct warren_history *h = reader(w, &err);
    if (!h)
        return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.text);
    long long since = since_arg(c, 24LL * 3600 * 1000);
    if (since < 0)
        return web_respond_error(c, MHD_HTTP_BAD_REQUEST, "since: expected a duration, e.g. 24h");
    json_t *out;
    if (warren__history_report(h, since, &out, &err) != WARREN_OK)
        return web_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.text);
    return web_respond_json(c, MHD_HTTP_OK, out);
}

static const struct {
    const char *path, *file, *type;
} statics[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
};

static enum MHD_Result serve_static(struct web *w, struct MHD_Connection *c, const char *url)
{
    for (size_t i = 0; i < sizeof statics / sizeof statics[0]; i++) {
        if (strcmp(url, statics[i].path) != 0)
            continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", w->static_dir, statics[i].file);
        FILE *f = fopen(path, "rb");
        if (!f)
            return web_respond_error(c, MHD_HTTP_NOT_FOUND, "page files not found");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        rewind(f);
        char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
        size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
        fclose(f);
        if (!buf)
            return web_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return respond(c, MHD_HTTP_OK, statics[i].type, buf, got, MHD_RESPMEM_MUST_FREE);
    }
    return web_respond_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

/* libmicrohttpd calls this first with the headers, then once per piece of
 * the body, then once more with *upload_size == 0: only then is the
 * request answered. A POST's body is kept in a web_request; a GET needs
 * no state (a marker stands in for it). */
static char get_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    struct web *w = cls;
    int post = !strcmp(method, MHD_HTTP_METHOD_POST);
    if (!*state) { /* first call: headers only */
        *state = post ? calloc(1, sizeof(struct web_request)) : (void *)&get_marker;
        return *state ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        struct web_request *req = post ? *state : NULL;
        if (req && req->len + *upload_size <= WEB_BODY_MAX) {
            memcpy(req->body + req->len, upload_data, *upload_size);
            req->len += *upload_size;
        } else if (req) {
            req->too_big = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (post && !strncmp(url, "/api/", 5))
        return web_action(w, c, url, *state);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return web_respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (!strcmp(url, "/api/jobs"))
        return api_jobs(w, c);
    if (!strncmp(url, "/api/jobs/", 10) && url[10])
        return api_job(w, c, url + 10);
    if (!strcmp(url, "/api/report"))
        return api_report(w, c);
    if (!strcmp(url, "/api/queues"))
        return web_api_queues(w, c);
    if (!strcmp(url, "/api/dead"))
        return web_api_dead(w, c);
    if (!strcmp(url, "/api/schedules"))
        return web_api_schedules(w, c);
    if (!strncmp(url, "/api/", 5))
        return web_respond_error(c, MHD_HTTP_NOT_FOUND, "not found");
    if (!strcmp(url, "/favicon.ico")) /* every browser asks; "none" beats a 404 in its console */
        return respond(c, MHD_HTTP_NO_CONTENT, "image/x-icon", (void *)"", 0,
                       MHD_RESPMEM_PERSISTENT);
    return serve_static(w, c, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    if (*state && *state != (void *)&get_marker)
        free(*state);
    *state = NULL;
}

static void find_static_dir(struct web *w, const char *given)
{
    const char *env = getenv("WARREN_WEB_DIR");
    const char *candidates[] = {given, env && env[0] ? env : NULL, WARREN_SOURCE_WEB_DIR,
                                WARREN_INSTALL_WEB_DIR};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char probe[PATH_MAX + 16];
        if (!candidates[i])
            continue;
        snprintf(probe, sizeof probe, "%s/index.html", candidates[i]);
        if (access(probe, R_OK) == 0 || i == 0) {
            snprintf(w->static_dir, sizeof w->static_dir, "%s", candidates[i]);
            return;
        }
    }
    snprintf(w->static_dir, sizeof w->static_dir, "%s", WARREN_INSTALL_WEB_DIR);
}

/* ---- the consumer ------------------------------------------------------- */

struct batch {
    int n;
    uint64_t last_tag;
    long long started_ms;
};

/* Commits the open batch and acks everything up to its last tag. Returns 0,
 * or -1 when the commit or the ack failed (the events come again). */
static int flush(struct warren_history *h, struct warren_conn *conn, struct batch *b,
                 long long *total)
{
    if (b->n == 0)
        return 0;
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_commit(h, &err) != WARREN_OK) {
        WARREN_LOG(WARREN_LOG_ERROR, "web.commit", "%s", err.text);
        b->n = 0;
        return -1;
    }
    int rc = amqp_basic_ack(warren__conn_state(conn), 1, b->last_tag, 1);
    *total += b->n;
    b->n = 0;
    if (rc != AMQP_STATUS_OK) {
        WARREN_LOG(WARREN_LOG_WARN, "web.ack", "ack failed: %s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

static int setup_consumer(struct cli_ctx *ctx, struct warren_conn **out)
{
    struct warren_conn *conn;
    if (cli_connect(ctx, &conn) != 0)
        return -1;
    const char *ns = ctx->cfg.namespace_;
    char exchange[300], queue[300];
    warren__name_events(exchange, sizeof exchange, ns);
    snprintf(queue, sizeof queue, "%s.history", ns);
    warren_error err;
    warren_error_clear(&err);
    if (warren__events_declare(conn, ns, &err) != WARREN_OK ||
        warren__conn_queue_declare(conn, queue, amqp_empty_table, &err) != WARREN_OK ||
        warren__conn_queue_bind(conn, queue, exchange, "#", &err) != WARREN_OK ||
        warren__conn_qos(conn, PREFETCH, &err) != WARREN_OK ||
        warren__conn_consume(conn, queue, "warren-web", &err) != WARREN_OK) {
        cli_error("web", &err);
        warren__conn_close(conn);
        return -1;
    }
    *out = conn;
    return 0;
}

static int consume(struct cli_ctx *ctx, struct warren_history *h, int batch_max)
{
    struct warren_conn *conn = NULL;
    struct batch b = {0};
    long long total = 0, bad = 0, last_prune = 0;
    while (!stopping) {
        if (!conn) {
            if (setup_consumer(ctx, &conn) != 0) {
                for (int i = 0; i < 20 && !stopping; i++)
                    usleep(100000);
                continue;
            }
            WARREN_LOG(WARREN_LOG_INFO, "web.consuming", "consuming %s.history",
                       ctx->cfg.namespace_);
        }
        long long now = mono_ms();
        if (b.n == 0 && now - last_prune >= PRUNE_EVERY_MS) {
            long long deleted = 0;
            warren_error err;
            warren_error_clear(&err);
            if (warren__history_prune(h, 0, &deleted, &err) != WARREN_OK)
                WARREN_LOG(WARREN_LOG_WARN, "web.prune", "%s", err.text);
            else if (deleted)
                WARREN_LOG(WARREN_LOG_INFO, "web.prune", "%lld old jobs deleted", deleted);
            last_prune = now;
        }
        int wait = b.n ? (int)(b.started_ms + FLUSH_MS - now) : 1000;
        if (wait < 0)
            wait = 0;
        struct warren_conn_delivery d;
        warren_error err;
        warren_error_clear(&err);
        warren_status st = warren__conn_next_delivery(conn, wait, &d, &err);
        if (st == WARREN_OK) {
            if (b.n == 0) {
                if (warren__history_begin(h, &err) != WARREN_OK) {
                    WARREN_LOG(WARREN_LOG_ERROR, "web.begin", "%s", err.text);
                    warren__conn_delivery_free(&d);
                    break;
                }
                b.started_ms = mono_ms();
            }
            warren_error ierr;
            warren_error_clear(&ierr);
            warren_status ist = warren__history_ingest(h, d.message.body.bytes,
                                                       d.message.body.len, &ierr);
            if (ist == WARREN_EINVAL) {
                bad++;
                WARREN_LOG(WARREN_LOG_WARN, "web.bad_event", "dropped: %s", ierr.text);
            } else if (ist != WARREN_OK) {
                /* The store failed: give the batch back (not acked). */
                WARREN_LOG(WARREN_LOG_ERROR, "web.ingest", "%s", ierr.text);
                warren__history_rollback(h);
                warren__conn_delivery_free(&d);
                b.n = 0;
                warren__conn_close(conn);
                conn = NULL;
                sleep(1);
                continue;
            }
            b.last_tag = d.delivery_tag;
            b.n++;
            warren__conn_delivery_free(&d);
        } else if (st != WARREN_ETIMEDOUT) {
            WARREN_LOG(WARREN_LOG_WARN, "web.broker", "%s", err.text);
            warren__history_rollback(h); /* unacked: redelivered */
            b.n = 0;
            warren__conn_close(conn);
            conn = NULL;
            continue;
        }
        if (b.n >= batch_max || (b.n && mono_ms() - b.started_ms >= FLUSH_MS)) {
            if (flush(h, conn, &b, &total) != 0) {
                warren__conn_close(conn);
                conn = NULL;
            }
        }
    }
    if (conn) {
        flush(h, conn, &b, &total);
        warren__conn_close(conn);
    } else {
        warren__history_rollback(h);
    }
    WARREN_LOG(WARREN_LOG_INFO, "web.stopped", "%lld events stored, %lld dropped", total, bad);
    return 0;
}

int warren__web_run(struct cli_ctx *ctx, const struct web_opts *o)
{
    char db[PATH_MAX];
    warren__web_db_path(&ctx->cfg, db, sizeof db);
    if (mkdir_parents(db) != 0) {
        fprintf(stderr, "warren web: cannot create the folder of %s: %s\n", db, strerror(errno));
        return 1;
    }
    struct warren_history_opts ho = {.retention_ms = ctx->cfg.web_retention_ms};
    struct warren_history *h;
    warren_error err;
    warren_error_clear(&err);
    if (warren__history_open(&h, db, &ho, &err) != WARREN_OK) {
        cli_error("web", &err);
        return 1;
    }
    struct web w;
    memset(&w, 0, sizeof w);
    w.ctx = ctx;
    w.db_path = db;
    w.listen_fd = -1;
    find_static_dir(&w, o ? o->static_dir : NULL);
    if (web_token_load(&w) != 0) {
        warren__history_close(h);
        return 2;
    }
    const char *listen = o && o->listen ? o->listen : ctx->cfg.web_listen;
    if (warren__listen_tcp(listen, "web.listen", &w.listen_fd, w.address, sizeof w.address, NULL,
                           &err) != WARREN_OK) {
        cli_error("web", &err);
        warren__history_close(h);
        return err.code == WARREN_EINVAL ? 2 : 1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    w.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                                on_request, &w, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)w.listen_fd,
                                MHD_OPTION_CONNECTION_LIMIT, 64U, MHD_OPTION_CONNECTION_TIMEOUT,
                                30U, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!w.daemon) {
        fprintf(stderr, "warren web: cannot start the HTTP server on %s\n", listen);
        close(w.listen_fd);
        warren__history_close(h);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "warren web: listening on http://%s/ (history %s, page %s)\n", w.address, db,
            w.static_dir);
    fflush(stderr);
    int batch = o && o->batch > 0 ? o->batch : BATCH;
    int rc = consume(ctx, h, batch);
    MHD_stop_daemon(w.daemon);
    warren__history_close(w.reader);
    warren__conn_close(w.conn);
    warren__history_close(h);
    return rc;
}
