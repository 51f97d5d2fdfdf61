/* Loading and validating warren.conf.
 *
 * DESIGN: every group of the file has one table of known keys (below,
 * after the validators; the walk over them is config_parse.c, the notes
 * config_diag.c). A row names the key, its type, default, bounds,
 * validator and destination field (an offset into the struct the group
 * fills), so one walk over the tables sets the defaults, another parses
 * a file and a third frees what was allocated. Lists of groups (queues,
 * modules, workers, schedules) are rows too, pointing to the table of
 * their entries and to hooks for the rules that span keys (a quorum queue
 * with a priority, a schedule with both cron and every).
 *
 * Nothing stops at the first problem: every error and warning becomes a
 * note "FILE:LINE: message" naming the key path, and the notes are sorted
 * by line before they reach the caller, so `warren config check` prints
 * them in file order. Lists are parsed after the plain groups because
 * workers inherit the global retry group and must see the queues. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <warren/log.h>
#include "config_internal.h"
#include "cron.h"

/* The delay levels hold at most 2^28 - 1 seconds (about 8.5 years). */
#define MAX_DELAY_MS (((1LL << 28) - 1) * WARREN_SEC)
#define DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"

/* ------------------------------------------------------------------ */
/* Validators for strings */

static int matches(const char *s, const char *extra, int lower_only, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (!lower_only && ch >= 'A' && ch <= 'Z') || strchr(extra, ch);
        if (!ok)
            return 0;
    }
    return n >= 1 && n <= max;
}

static int check_namespace(const char *v, char *why, size_t size)
{
    if (matches(v, "_.-", 1, 48))
        return 0;
    snprintf(why, size, "bad namespace '%.60s' (use [a-z0-9_.-]{1,48})", v);
    return -1;
}

static int check_queue_name(const char *v, char *why, size_t size)
{
    if (matches(v, "_-", 1, WARREN_QNAME_MAX - 1))
        return 0;
    snprintf(why, size, "bad queue name '%.80s' (use [a-z0-9_-]{1,64})", v);
    return -1;
}

static int check_worker_name(const char *v, char *why, size_t size)
{
    if (matches(v, "_.-", 0, WARREN_NAME_MAX - 1))
        return 0;
    snprintf(why, size, "bad name '%.140s' (use [A-Za-z0-9_.-]{1,128})", v);
    return -1;
}

static int check_nonempty(const char *v, char *why, size_t size)
{
    if (*v)
        return 0;
    snprintf(why, size, "must not be empty");
    return -1;
}

/* "" (off) or HOST:PORT, the host possibly a bracketed IPv6 address. */
static int check_listen(const char *v, char *why, size_t size)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long port;

    if (!*v)
        return 0;
    if (colon && colon != v && colon[1]) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (!*end && !errno && port >= 0 && port <= 65535 && colon[1] >= '0' && colon[1] <= '9')
            return 0;
    }
    snprintf(why, size,
             "bad address '%.80s' (use HOST:PORT with a port 0..65535, or \"\" for off)", v);
    return -1;
}

/* URLs are never echoed: they may carry a password. */
static int check_amqp_url(const char *v, char *why, size_t size)
{
    if (strncmp(v, "amqp://", 7) != 0 && strncmp(v, "amqps://", 8) != 0) {
        snprintf(why, size, "must start with amqp:// or amqps://");
        return -1;
    }
    if (strchr(v, '?')) {
        snprintf(why, size, "query strings are not supported");
        return -1;
    }
    return 0;
}

static int check_http_url(const char *v, char *why, size_t size)
{
    if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0)
        return 0;
    snprintf(why, size, "must start with http:// or https://");
    return -1;
}

static int check_host_name(const char *v, char *why, size_t size)
{
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p <= ' ') {
            snprintf(why, size, "must not contain spaces or control characters");
            return -1;
        }
    }
    return check_nonempty(v, why, size);
}

/* The scheduler's own parser, so config check refuses exactly what the
 * scheduler could not run, including dates no month has (30 February). */
static int check_cron(const char *v, char *why, size_t size)
{
    struct warren_cron c;
    if (warren__cron_parse(&c, v, why, size) < 0)
        return -1;
    if (warren__cron_never(&c)) {
        snprintf(why, size, "cron expression '%.80s' never fires (no chosen month has that day)",
                 v);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The tables */

static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const queue_type_names[] = {"classic", "quorum", NULL};


/* The retry keys, shared by the global group and each worker. */
#define RETRY_KEYS(prefix)                                                       \
    KEY_INT("max_attempts", prefix.max_attempts, 5, 1, INT_MAX),                 \
    KEY_DUR("initial_delay", prefix.initial_delay_ms, 1 * WARREN_SEC, 0, MAX_DELAY_MS), \
    KEY_FLOAT("multiplier", prefix.multiplier, 2.0, 1.0, HUGE_VAL),              \
    KEY_DUR("max_delay", prefix.max_delay_ms, 1 * WARREN_HOUR, 0, MAX_DELAY_MS),        \
    KEY_FLOAT("jitter", prefix.jitter, 0.2, 0.0, 1.0)

#define BASE struct warren_config
static const struct cfg_key tls_keys[] = {
    KEY_STR("ca_cert", tls.ca_cert, NULL, check_nonempty, 0),
    KEY_STR("cert", tls.cert, NULL, check_nonempty, 0),
    KEY_STR("key", tls.key, NULL, check_nonempty, 0),
    KEY_BOOL("verify_peer", tls.verify_peer, 1),
    KEY_BOOL("verify_hostname", tls.verify_hostname, 1),
    KEY_END,
};

static const struct cfg_key broker_keys[] = {
    KEY_STRS_N("urls", urls, n_urls, DEFAULT_URL, check_amqp_url, KF_NONEMPTY),
    KEY_INT("heartbeat", heartbeat, 30, 0, 65535),
    KEY_STR("password_file", password_file, NULL, check_nonempty, 0),
    KEY_DUR("consumer_timeout", consumer_timeout_ms, 30 * WARREN_MIN, 0, CFG_NOMAX),
    KEY_STR("management_url", management_url, NULL, check_http_url, 0),
    KEY_GROUP("tls", tls_keys),
    KEY_END,
};

static const struct cfg_key host_keys[] = {
    KEY_BUF("name", host_name, NULL, check_host_name, 0),
    KEY_INT("concurrency", concurrency, 4, 1, 1024),
    KEY_INT("prefetch", prefetch, 10, 1, 65535),
    KEY_DUR("shutdown_timeout", shutdown_timeout_ms, 30 * WARREN_SEC, 0, CFG_NOMAX),
    KEY_BYTES("max_message_bytes", max_message_bytes, 1 << 20, 1, 512LL << 20),
    KEY_INT("max_crashes", max_crashes, 3, 1, INT_MAX),
    KEY_INT("max_redeliveries", max_redeliveries, 20, 1, INT_MAX),
    KEY_STRS_N("queues", host_queues, n_host_queues, NULL, check_queue_name, KF_NONEMPTY),
    KEY_INT64("max_jobs_per_process", max_jobs_per_process, 0, 0, CFG_NOMAX),
    KEY_BYTES("max_memory_per_process", max_memory_per_process, 0, 0, CFG_NOMAX),
    KEY_BUF("metrics_listen", metrics_listen, "127.0.0.1:9464", check_listen, 0),
    KEY_ENUM("log_level", log_level, WARREN_LOG_INFO, log_level_names),
    KEY_ENUM("log_format", log_format, WARREN_LOG_TEXT, log_format_names),
    KEY_END,
};

static const struct cfg_key retry_keys[] = {
    RETRY_KEYS(retry),
    KEY_END,
};

static const struct cfg_key security_keys[] = {
    KEY_STR("signing_key_file", signing_key_file, NULL, check_nonempty, 0),
    KEY_BOOL("require_signature", require_signature, 0),
    KEY_END,
};

static const struct cfg_key events_keys[] = {
    KEY_BOOL("enabled", events_enabled, 0),
    KEY_BOOL("persistent", events_persistent, 1),
    KEY_END,
};

static const struct cfg_key web_keys[] = {
    KEY_STR("db", web_db, "var/warren.db", check_nonempty, 0),
    KEY_BUF("listen", web_listen, "127.0.0.1:9465", check_listen, 0),
    KEY_DUR("retention", web_retention_ms, 7 * WARREN_DAY, 1 * WARREN_SEC, CFG_NOMAX),
    KEY_STR("token_file", web_token_file, NULL, check_nonempty, 0),
    KEY_END,
};
#undef BASE

#define BASE struct warren_queue_conf
static const struct cfg_key queue_keys[] = {
    KEY_BUF("name", name, NULL, check_queue_name, KF_REQUIRED),
    KEY_ENUM("type", type, WARREN_QUEUE_CLASSIC, queue_type_names),
    KEY_INT("max_priority", max_priority, 10, 1, 255),
    KEY_END,
};
#undef BASE

#define BASE struct warren_module_conf
static const struct cfg_key module_keys[] = {
    KEY_STR("path", path, NULL, check_nonempty, KF_REQUIRED),
    KEY_JSON_GROUP("config", config),
    KEY_END,
};
#undef BASE

#define BASE struct warren_worker_conf
static const struct cfg_key worker_keys[] = {
    KEY_BUF("name", name, NULL, check_worker_name, KF_REQUIRED),
    KEY_BUF("queue", queue, "default", check_queue_name, 0),
    RETRY_KEYS(retry),
    KEY_DUR("time_limit", time_limit_ms, 0, 0, CFG_NOMAX),
    KEY_FLOAT("rate_limit", rate_limit, 0.0, 0.0, HUGE_VAL),
    KEY_STRS("lock_by", lock_by, check_nonempty),
    KEY_DUR("lock_timeout", lock_timeout_ms, 10 * WARREN_MIN, 0, CFG_NOMAX),
    KEY_STRS("unique_by", unique_by, check_nonempty),
    KEY_DUR("unique_for", unique_for_ms, 0, 0, CFG_NOMAX),
    KEY_INT("max_snoozes", max_snoozes, 100, 0, INT_MAX),
    KEY_END,
};
#undef BASE

#define BASE struct warren_schedule_conf
static const struct cfg_key schedule_keys[] = {
    KEY_BUF("name", name, NULL, check_worker_name, KF_REQUIRED),
    KEY_BUF("worker", worker, NULL, check_worker_name, KF_REQUIRED),
    KEY_STR("cron", cron, NULL, check_cron, 0),
    KEY_DUR("every", every_ms, 0, 1 * WARREN_SEC, MAX_DELAY_MS),
    KEY_INT64("max_count", max_count, 0, 1, CFG_NOMAX),
    KEY_JSON_TEXT("args", args, "{}"),
    KEY_INT("priority", priority, 0, 0, 9),
    KEY_END,
};
#undef BASE

typedef void finish_fn(struct cfg_ctx *c, const config_setting_t *s, const char *path, void *e);
static finish_fn queue_finish, worker_finish, schedule_finish;
static void module_cleanup(void *e);
static void worker_prepare(struct cfg_ctx *c, void *e);

static const struct cfg_list queue_list = {
    "queue", sizeof(struct warren_queue_conf), queue_keys,
    offsetof(struct warren_queue_conf, line), offsetof(struct warren_queue_conf, name),
    NULL, queue_finish, NULL,
};
static const struct cfg_list module_list = {
    "module", sizeof(struct warren_module_conf), module_keys,
    offsetof(struct warren_module_conf, line), SIZE_MAX,
    NULL, NULL, module_cleanup,
};
static const struct cfg_list worker_list = {
    "worker", sizeof(struct warren_worker_conf), worker_keys,
    offsetof(struct warren_worker_conf, line), offsetof(struct warren_worker_conf, name),
    worker_prepare, worker_finish, NULL,
};
static const struct cfg_list schedule_list = {
    "schedule", sizeof(struct warren_schedule_conf), schedule_keys,
    offsetof(struct warren_schedule_conf, line), offsetof(struct warren_schedule_conf, name),
    NULL, schedule_finish, NULL,
};

/* Lists come last in the table: they are parsed after the groups. */
#define BASE struct warren_config
static const struct cfg_key root_keys[] = {
    KEY_BUF("namespace", namespace_, "warren", check_namespace, 0),
    KEY_GROUP("broker", broker_keys),
    KEY_GROUP("host", host_keys),
    KEY_GROUP("retry", retry_keys),
    KEY_GROUP("security", security_keys),
    KEY_GROUP("events", events_keys),
    KEY_GROUP("web", web_keys),
    KEY_LIST("queues", queues, n_queues, &queue_list, KF_NONEMPTY),
    KEY_LIST("modules", modules, n_modules, &module_list, 0),
    KEY_LIST("workers", workers, n_workers, &worker_list, 0),
    KEY_LIST("schedules", schedules, n_schedules, &schedule_list, 0),
    KEY_END,
};
#undef BASE

/* ------------------------------------------------------------------ */
/* Rules that span keys */

static void queue_finish(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                         void *e)
{
    struct warren_queue_conf *q = e;
    const config_setting_t *prio = config_setting_get_member(s, "max_priority");

    if (q->type != WARREN_QUEUE_QUORUM)
        return;
    q->max_priority = 0;
    if (prio)
        warren__cfg_error(c, prio,
                          "%s.max_priority: a quorum queue has no priorities "
                          "(RabbitMQ 3.10 refuses x-max-priority on it)",
                          path);
    else if (q->name[0])
        warren__cfg_warn(c, s,
                         "queue '%s' is a quorum queue: RabbitMQ 3.10 ignores job priority on it",
                         q->name);
}

static void module_cleanup(void *e)
{
    struct warren_module_conf *m = e;
    free(m->resolved);
    m->resolved = NULL;
}

static void worker_prepare(struct cfg_ctx *c, void *e)
{
    struct warren_worker_conf *w = e;
    w->retry = c->cfg->retry;
}

static void worker_finish(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                          void *e)
{
    const struct warren_worker_conf *w = e;
    const struct warren_config *cfg = c->cfg;
    const config_setting_t *qs = config_setting_get_member(s, "queue");
    const config_setting_t *ts = config_setting_get_member(s, "time_limit");
    char a[32], b[32];

    if (w->queue[0] && !warren__config_queue(cfg, w->queue)) {
        if (qs)
            warren__cfg_error(c, qs, "%s.queue: unknown queue '%s' (not declared in queues)",
                              path, w->queue);
        else
            warren__cfg_error(c, s,
                              "%s: its queue 'default' is not declared in queues; set queue",
                              path);
    }
    if (ts && w->time_limit_ms > 0 && cfg->consumer_timeout_ms > 0 &&
        w->time_limit_ms >= cfg->consumer_timeout_ms)
        warren__cfg_warn(c, ts,
                         "%s.time_limit %s is not below broker.consumer_timeout %s: RabbitMQ "
                         "will close the channel; raise consumer_timeout in rabbitmq.conf",
                         path, warren__format_duration(w->time_limit_ms, a, sizeof a),
                         warren__format_duration(cfg->consumer_timeout_ms, b, sizeof b));
}

static void schedule_finish(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                            void *e)
{
    int has_cron = config_setting_get_member(s, "cron") != NULL;
    int has_every = config_setting_get_member(s, "every") != NULL;

    (void)e;
    if (has_cron && has_every)
        warren__cfg_error(c, s, "%s: set either cron or every, not both", path);
    else if (!has_cron && !has_every)
        warren__cfg_error(c, s, "%s: needs cron or every", path);
}

/* The rules that need the whole file: references to queues and secrets. */
static void check_whole(struct cfg_ctx *c, const config_t *lc)
{
    const struct warren_config *cfg = c->cfg;
    const config_setting_t *hq = config_lookup(lc, "host.queues");
    const config_setting_t *rs = config_lookup(lc, "security.require_signature");
    const config_setting_t *tls = config_lookup(lc, "broker.tls");

    for (size_t i = 0; hq && i < cfg->n_host_queues; i++) {
        if (warren__config_queue(cfg, cfg->host_queues[i]))
            continue;
        const config_setting_t *e = config_setting_type(hq) == CONFIG_TYPE_STRING
                                        ? hq
                                        : config_setting_get_elem(hq, (unsigned)i);
        warren__cfg_error(c, e, "host.queues: unknown queue '%s' (not declared in queues)",
                          cfg->host_queues[i]);
    }
    if (rs && cfg->require_signature && !cfg->signing_key_file)
        warren__cfg_error(c, rs, "security.require_signature: needs security.signing_key_file");
    if (tls && !cfg->tls.cert != !cfg->tls.key)
        warren__cfg_error(c, tls, "broker.tls: cert and key go together (a client "
                                  "certificate needs its key)");
}

/* WARREN_URL (a comma-separated list) replaces broker.urls. */
static void apply_env_urls(struct cfg_ctx *c)
{
    const char *env = getenv("WARREN_URL");
    size_t n = 0, cap = 2;
    char **v;
    char why[128];

    if (!env || !*env)
        return;
    for (const char *p = env; *p; p++)
        cap += *p == ',';
    if (!(v = calloc(cap, sizeof *v))) {
        c->oom = 1;
        return;
    }
    for (const char *p = env; *p;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        p += len + (p[len] == ',');
        if (e == b)
            continue;
        if (!(v[n] = strndup(b, (size_t)(e - b)))) {
            c->oom = 1;
            break;
        }
        if (check_amqp_url(v[n++], why, sizeof why) < 0)
            warren__cfg_error_line(c, c->name, 0, "WARREN_URL (environment), URL %zu: %s", n,
                                   why);
    }
    if (n == 0) {
        if (!c->oom)
            warren__cfg_error_line(c, c->name, 0, "WARREN_URL (environment): no URL in it");
        warren__cfg_free_strv(v);
        return;
    }
    warren__cfg_free_strv(c->cfg->urls);
    c->cfg->urls = v;
    c->cfg->n_urls = n;
}

/* ------------------------------------------------------------------ */
/* Entry points */

static void default_host_name(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0 || !buf[0])
        snprintf(buf, size, "localhost");
    buf[size - 1] = '\0';
}

warren_status warren__config_defaults(struct warren_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (warren__cfg_apply_defaults(root_keys, cfg) < 0)
        goto oom;
    default_host_name(cfg->host_name, sizeof cfg->host_name);
    if (!(cfg->queues = calloc(1, sizeof *cfg->queues)) ||
        !(cfg->fallback_worker = calloc(1, sizeof *cfg->fallback_worker)))
        goto oom;
    warren__cfg_apply_defaults(queue_keys, &cfg->queues[0]);
    snprintf(cfg->queues[0].name, sizeof cfg->queues[0].name, "default");
    cfg->n_queues = 1;
    return WARREN_OK;
oom:
    warren__config_free(cfg);
    return WARREN_ENOMEM;
}

/* The config file's folder, absolute. */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    char *real = dir ? realpath(dir, NULL) : NULL;

    if (!real && dir && dir[0] == '/')
        return dir;
    if (!real)
        real = getcwd(NULL, 0);
    free(dir);
    return real ? real : strdup(".");
}

/* libconfig stops at the first syntax error; it names the file (an
 * included one, perhaps) and the line. */
static void syntax_error(struct cfg_ctx *c, const config_t *lc)
{
    const char *file = config_error_file(lc) ? config_error_file(lc) : c->name;
    const char *text = config_error_text(lc) ? config_error_text(lc) : "cannot parse";

    warren__cfg_error_line(c, file, config_error_line(lc), "%s", text);
}

static warren_status load(struct warren_config *cfg, const char *path, const char *text,
                          const char *name, struct warren_config_diag *diag, warren_error *err)
{
    struct cfg_ctx c = {.cfg = cfg, .name = name};
    config_t lc;
    int ok;
    warren_status st;

    if (diag)
        memset(diag, 0, sizeof *diag);
    if ((st = warren__config_defaults(cfg)) != WARREN_OK)
        return warren_error_set(err, st, "out of memory");
    cfg->path = strdup(name);
    cfg->dir = config_dir(name);
    if (!cfg->path || !cfg->dir)
        c.oom = 1;

    config_init(&lc);
    if (cfg->dir)
        config_set_include_dir(&lc, cfg->dir);  /* @include is relative to the file */
    if (path) {
        FILE *f = fopen(path, "r");
        if (!f) {
            warren__cfg_error_line(&c, name, 0, "cannot open: %s", strerror(errno));
            config_destroy(&lc);
            return warren__cfg_finish(&c, diag, err);
        }
        fclose(f);
        ok = config_read_file(&lc, path);
    } else {
        ok = config_read_string(&lc, text);
    }
    if (!ok) {
        syntax_error(&c, &lc);
    } else {
        const config_setting_t *root = config_root_setting(&lc);
        warren__cfg_parse_group(&c, root, "", root_keys, cfg, 0);
        warren__cfg_parse_group(&c, root, "", root_keys, cfg, 2);
        check_whole(&c, &lc);
        apply_env_urls(&c);
    }
    config_destroy(&lc);
    return warren__cfg_finish(&c, diag, err);
}

warren_status warren__config_load(struct warren_config *cfg, const char *path,
                                  struct warren_config_diag *diag, warren_error *err)
{
    return load(cfg, path, NULL, path, diag, err);
}

warren_status warren__config_load_string(struct warren_config *cfg, const char *text,
                                         const char *name, struct warren_config_diag *diag,
                                         warren_error *err)
{
    return load(cfg, NULL, text ? text : "", name ? name : "<string>", diag, err);
}

void warren__config_free(struct warren_config *cfg)
{
    if (!cfg)
        return;
    warren__cfg_free_fields(root_keys, cfg);  /* the implicit "default" queue too */
    free(cfg->fallback_worker);
    free(cfg->path);
    free(cfg->dir);
    memset(cfg, 0, sizeof *cfg);
}

const struct warren_queue_conf *warren__config_queue(const struct warren_config *cfg,
                                                     const char *name)
{
    for (size_t i = 0; name && i < cfg->n_queues; i++)
        if (strcmp(cfg->queues[i].name, name) == 0)
            return &cfg->queues[i];
    return NULL;
}

const struct warren_worker_conf *warren__config_worker(const struct warren_config *cfg,
                                                       const char *worker)
{
    static _Thread_local struct warren_worker_conf spare;
    struct warren_worker_conf *w = cfg->fallback_worker ? cfg->fallback_worker : &spare;

    for (size_t i = 0; worker && i < cfg->n_workers; i++)
        if (strcmp(cfg->workers[i].name, worker) == 0)
            return &cfg->workers[i];
    memset(w, 0, sizeof *w);
    warren__cfg_apply_defaults(worker_keys, w);  /* allocates nothing: no string defaults */
    snprintf(w->name, sizeof w->name, "%s", worker ? worker : "");
    w->retry = cfg->retry;
    return w;
}
