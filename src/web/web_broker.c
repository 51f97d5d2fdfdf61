/* `warren web`: what the page asks of the broker rather than of the
 * history: queues, dead letters grouped by worker/reason/error, schedules,
 * and the two actions, replay and purge of a group of dead letters.
 *
 * SECURITY: reads are open (web.listen is loopback by default); actions
 * need the token of web.token_file in the X-Warren-Token header, a JSON
 * body, and a same-origin request. A custom header and a JSON content
 * type cannot be sent cross-origin without a CORS preflight, which this
 * server never grants, so another site open in the same browser cannot
 * make the page's user replay or purge anything; the Origin and
 * Sec-Fetch-Site checks refuse such requests outright as well. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <warren/log.h>
#include "../cli/dead_ops.h"
#include "schedule_store.h"
#include "signature.h"
#include "topology.h"
#include "web_http.h"

/* Letters a group listing looks at per queue: basic.get takes them one
 * by one, so a queue of millions is counted in part (the reply says how
 * many were scanned) rather than blocking the server for minutes. */
#define DEAD_SCAN_MAX 20000
#define DEAD_GROUPS_MAX 500

/* The server thread's broker connection, opened again after a failure. */
static struct warren_conn *broker(struct web *w)
{
    if (w->conn && warren__conn_broken(w->conn)) {
        warren__conn_close(w->conn);
        w->conn = NULL;
    }
    if (!w->conn && cli_connect(w->ctx, &w->conn) != 0)
        w->conn = NULL;
    return w->conn;
}

/* After an error that may have closed the channel: start afresh. */
static void broker_drop(struct web *w)
{
    warren__conn_close(w->conn);
    w->conn = NULL;
}

static enum MHD_Result no_broker(struct MHD_Connection *c)
{
    return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot connect to the broker");
}

enum MHD_Result web_api_queues(struct web *w, struct MHD_Connection *c)
{
    struct warren_conn *conn = broker(w);
    if (!conn)
        return no_broker(c);
    const struct warren_config *cfg = &w->ctx->cfg;
    json_t *queues = json_array();
    for (size_t i = 0; i < cfg->n_queues; i++) {
        char work[WARREN_AMQP_NAME_MAX], dead[WARREN_AMQP_NAME_MAX];
        uint32_t ready = 0, consumers = 0, nd = 0;
        warren_error err;
        warren_error_clear(&err);
        warren__name_queue(work, sizeof work, cfg->namespace_, cfg->queues[i].name);
        int exists = warren__conn_queue_inspect(conn, work, &ready, &consumers, &err) == WARREN_OK;
        warren_error_clear(&err);
        warren__conn_queue_inspect(
            conn, warren__name_dead(dead, sizeof dead, cfg->namespace_, cfg->queues[i].name), &nd,
            NULL, &err);
        json_array_append_new(queues, json_pack("{s:s, s:b, s:i, s:i, s:i}", "name",
                                                 cfg->queues[i].name, "exists", exists, "ready",
                                                 ready, "consumers", consumers, "dead", nd));
    }
    return web_respond_json(c, MHD_HTTP_OK, json_pack("{s:o}", "queues", queues));
}

/* One queue's entry of /api/dead; NULL with err set on a broker error. */
static json_t *dead_groups_of(struct warren_conn *conn, const char *ns, const char *queue,
                              warren_error *err)
{
    struct dead_request r = {.op = DEAD_LIST, .queue = queue, .scan_limit = DEAD_SCAN_MAX};
    struct dead_output out;
    struct dead_result res;
    if (dead_output_init(&out, 1, 1) != 0) {
        warren_error_set(err, WARREN_ENOMEM, "out of memory");
        return NULL;
    }
    char dead[WARREN_AMQP_NAME_MAX];
    warren__name_dead(dead, sizeof dead, ns, queue);
    json_t *entry = NULL;
    warren_status st = dead_run(&r, conn, ns, &out, &res, err);
    if (st == WARREN_OK || st == WARREN_ENOTFOUND)
        entry = json_pack("{s:s, s:s, s:b, s:I, s:I, s:o}", "queue", queue, "dead_queue", dead,
                          "exists", st == WARREN_OK, "count", (json_int_t)res.present, "scanned",
                          (json_int_t)out.n, "groups", dead_output_groups(&out, DEAD_GROUPS_MAX));
    if (st == WARREN_ENOTFOUND)
        warren_error_clear(err);
    dead_result_free(&res);
    dead_output_free(&out);
    return entry;
}

enum MHD_Result web_api_dead(struct web *w, struct MHD_Connection *c)
{
    struct warren_conn *conn = broker(w);
    if (!conn)
        return no_broker(c);
    const struct warren_config *cfg = &w->ctx->cfg;
    json_t *queues = json_array();
    for (size_t i = 0; i < cfg->n_queues; i++) {
        warren_error err;
        warren_error_clear(&err);
        json_t *entry = dead_groups_of(conn, cfg->namespace_, cfg->queues[i].name, &err);
        if (!entry) {
            json_decref(queues);
            broker_drop(w);
            return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.text);
        }
        json_array_append_new(queues, entry);
    }
    return web_respond_json(c, MHD_HTTP_OK,
                            json_pack("{s:o, s:b}", "queues", queues, "actions", w->token_len > 0));
}

enum MHD_Result web_api_schedules(struct web *w, struct MHD_Connection *c)
{
    struct warren_conn *conn = broker(w);
    if (!conn)
        return no_broker(c);
    const struct warren_config *cfg = &w->ctx->cfg;
    json_t *rows = NULL;
    warren_error err;
    warren_error_clear(&err);
    if (warren__sched_store_list(conn, cfg->namespace_, cfg->schedules, cfg->n_schedules,
                                 dead_now_ms(), &rows, &err) != WARREN_OK) {
        broker_drop(w);
        return web_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.text);
    }
    return web_respond_json(c, MHD_HTTP_OK, json_pack("{s:o}", "schedules", rows));
}

/* ---- actions ---------------------------------------------------------------- */

int web_token_load(struct web *w)
{
    const struct warren_config *cfg = &w->ctx->cfg;
    w->token[0] = '\0';
    w->token_len = 0;
    if (!cfg->web_token_file)
        return 0;
    char path[PATH_MAX], warning[PATH_MAX + 200];
    if (!warren__config_path(cfg, cfg->web_token_file, path, sizeof path)) {
        fprintf(stderr, "warren web: web.token_file: path too long\n");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "warren web: web.token_file %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(w->token, 1, WEB_TOKEN_MAX + 1, f);
    fclose(f);
    if (n > WEB_TOKEN_MAX) {
        fprintf(stderr, "warren web: web.token_file %s: longer than %d bytes\n", path,
                WEB_TOKEN_MAX);
        return -1;
    }
    while (n > 0 && strchr(" \t\r\n", w->token[n - 1]))
        n--;
    w->token[n] = '\0';
    if (n == 0 || strlen(w->token) != n) {
        fprintf(stderr, "warren web: web.token_file %s: %s\n", path,
                n ? "contains a NUL byte" : "is empty");
        return -1;
    }
    w->token_len = n;
    if (n < 16)
        WARREN_LOG(WARREN_LOG_WARN, "web.token", "web.token_file %s: a token of %zu bytes is easy "
                   "to guess; use 32 random characters", path, n);
    if (warren__secret_file_warning(path, "web.token_file", warning, sizeof warning))
        WARREN_LOG(WARREN_LOG_WARN, "security.permissions", "%s", warning);
    return 0;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Compares in time that depends only on the token's length. */
static int token_ok(const struct web *w, struct MHD_Connection *c)
{
    const char *t = header(c, "X-Warren-Token");
    if (!t)
        return 0;
    size_t n = strlen(t);
    unsigned diff = n != w->token_len;
    for (size_t i = 0; i < w->token_len; i++)
        diff |= (unsigned char)w->token[i] ^ (unsigned char)(i < n ? t[i] : 0);
    return diff == 0;
}

/* A browser says where a request comes from: refuse any other site. A
 * client that is not a browser (curl) sends neither header. */
static int same_origin(struct MHD_Connection *c)
{
    const char *site = header(c, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 0;
    const char *origin = header(c, "Origin");
    if (!origin)
        return 1;
    const char *host = header(c, MHD_HTTP_HEADER_HOST);
    const char *rest = strstr(origin, "://");
    return host && rest && !strcmp(rest + 3, host);
}

static int is_json(struct MHD_Connection *c)
{
    const char *type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    return type && !strncasecmp(type, "application/json", 16) &&
           (type[16] == '\0' || type[16] == ';');
}

/* "web 127.0.0.1" for the audit lines. */
static void actor_of(struct MHD_Connection *c, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[NI_MAXHOST] = "?";
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in);
        getnameinfo(ci->client_addr, len, host, sizeof host, NULL, 0, NI_NUMERICHOST);
    }
    snprintf(buf, size, "web %s", host);
}

static int queue_configured(const struct warren_config *cfg, const char *q)
{
    for (size_t i = 0; i < cfg->n_queues; i++)
        if (!strcmp(cfg->queues[i].name, q))
            return 1;
    return 0;
}

/* Checks who may act. 0 when allowed, else the HTTP status (msg set). */
static unsigned refusal(const struct web *w, struct MHD_Connection *c,
                        const struct web_request *req, const char **msg)
{
    if (!w->token_len) {
        *msg = "actions are off: set web.token_file in the config";
        return MHD_HTTP_FORBIDDEN;
    }
    if (!same_origin(c)) {
        *msg = "cross-origin request refused";
        return MHD_HTTP_FORBIDDEN;
    }
    if (!token_ok(w, c)) {
        *msg = "missing or wrong token (X-Warren-Token)";
        return MHD_HTTP_UNAUTHORIZED;
    }
    if (!is_json(c)) {
        *msg = "expected Content-Type: application/json";
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if (req->too_big) {
        *msg = "request body too large";
        return MHD_HTTP_CONTENT_TOO_LARGE;
    }
    return 0;
}

/* The group a body names: {"queue", "worker", "reason", "error"}, all
 * strings (a group's fields as /api/dead gave them). */
static const char *read_group(const struct warren_config *cfg, const json_t *b,
                              struct dead_request *r)
{
    const char *keys[] = {"queue", "worker", "reason", "error"};
    const char *vals[4];
    for (size_t i = 0; i < 4; i++) {
        const json_t *v = json_object_get(b, keys[i]);
        if (!json_is_string(v))
            return "expected a JSON object with the strings queue, worker, reason and error";
        vals[i] = json_string_value(v);
    }
    if (!queue_configured(cfg, vals[0]))
        return "queue: not a queue of this config";
    r->queue = vals[0];
    r->filter.worker = vals[1];
    r->filter.reason = vals[2];
    r->filter.error = vals[3];
    r->filter.exact = 1;
    r->all = 1;
    return NULL;
}

enum MHD_Result web_action(struct web *w, struct MHD_Connection *c, const char *url,
                           const struct web_request *req)
{
    int purge = !strcmp(url, "/api/dead/purge");
    if (!purge && strcmp(url, "/api/dead/replay") != 0)
        return web_respond_error(c, MHD_HTTP_NOT_FOUND, "not found");
    const char *msg = NULL;
    unsigned status = refusal(w, c, req, &msg);
    if (status)
        return web_respond_error(c, status, msg);
    json_t *body = json_loadb(req->body, req->len, 0, NULL);
    char actor[NI_MAXHOST + 8];
    actor_of(c, actor, sizeof actor);
    struct dead_request r = {.op = purge ? DEAD_PURGE : DEAD_REPLAY, .actor = actor};
    const char *bad = json_is_object(body) ? read_group(&w->ctx->cfg, body, &r)
                                           : "expected a JSON object";
    if (bad) {
        json_decref(body);
        return web_respond_error(c, MHD_HTTP_BAD_REQUEST, bad);
    }
    struct warren_conn *conn = broker(w);
    if (!conn) {
        json_decref(body);
        return no_broker(c);
    }
    struct dead_output out;
    struct dead_result res;
    warren_error err;
    warren_error_clear(&err);
    if (dead_output_init(&out, 1, 0) != 0) {
        json_decref(body);
        return web_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    warren_status st = dead_run(&r, conn, w->ctx->cfg.namespace_, &out, &res, &err);
    json_t *reply = json_pack("{s:s, s:I, s:I, s:I, s:I}", "queue", r.queue,
                              purge ? "purged" : "replayed",
                              (json_int_t)(purge ? res.purged : res.replayed), "skipped",
                              (json_int_t)res.skipped, "refused", (json_int_t)res.refused,
                              "present", (json_int_t)res.present);
    dead_result_free(&res);
    dead_output_free(&out);
    json_decref(body);
    if (st == WARREN_ENOTFOUND) {
        json_decref(reply);
        return web_respond_error(c, MHD_HTTP_NOT_FOUND, err.text);
    }
    if (st != WARREN_OK) {
        /* What was done before the failure stays done: say how much. */
        broker_drop(w);
        json_object_set_new(reply, "error", json_string(err.text));
        return web_respond_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, reply);
    }
    return web_respond_json(c, MHD_HTTP_OK, reply);
}
