/* Internal to `warren web`: the server's state and the response helpers
 * its request handlers share (web.c serves the history and the page,
 * web_broker.c what needs the broker: queues, dead letters, schedules and
 * the actions). Everything here runs on libmicrohttpd's one thread. */
#ifndef WARREN_WEB_HTTP_H
#define WARREN_WEB_HTTP_H

#include <limits.h>
#include <stddef.h>
#include <jansson.h>
#include <microhttpd.h>
#include "../cli/common.h"

#define WEB_TOKEN_MAX 256

struct web {
    struct cli_ctx *ctx;
    const char *db_path;
    char static_dir[PATH_MAX];
    struct warren_history *reader; /* the server thread's */
    struct warren_conn *conn;      /* the server thread's, for the broker's side */
    struct MHD_Daemon *daemon;
    int listen_fd;
    char address[300];
    char token[WEB_TOKEN_MAX + 1]; /* "" when web.token_file is not set: no actions */
    size_t token_len;
};

/* One request's state, kept between libmicrohttpd's calls: the body of a
 * POST, read whole before it is handled. */
#define WEB_BODY_MAX 8192
struct web_request {
    char body[WEB_BODY_MAX + 1];
    size_t len;
    int too_big;
};

enum MHD_Result web_respond_json(struct MHD_Connection *c, unsigned status, json_t *v);
enum MHD_Result web_respond_error(struct MHD_Connection *c, unsigned status, const char *msg);

/* Reads web.token_file into w->token (trailing white space dropped).
 * 0 ok (or no file configured), -1 with the reason printed. */
int web_token_load(struct web *w);

/* GET /api/queues, /api/dead, /api/schedules. */
enum MHD_Result web_api_queues(struct web *w, struct MHD_Connection *c);
enum MHD_Result web_api_dead(struct web *w, struct MHD_Connection *c);
enum MHD_Result web_api_schedules(struct web *w, struct MHD_Connection *c);

/* POST /api/dead/replay and /api/dead/purge: checks the token and that
 * the request is same-origin, then acts on one group of letters. */
enum MHD_Result web_action(struct web *w, struct MHD_Connection *c, const char *url,
                           const struct web_request *req);

#endif
