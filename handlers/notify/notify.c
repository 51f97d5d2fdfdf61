/* The notify module: tells someone when a job is parked in dead letters.
 * It registers no worker, only a lifecycle observer (on_dead), and sends
 * each dead letter's event as JSON in an HTTP POST to a webhook.
 *
 * Module config:
 *   webhook_url  "http://..." or "https://...": where to POST (required)
 *   timeout_ms   the whole request's limit, default 5000 (1..600000)
 *   headers      optional object of extra request headers, e.g.
 *                { Authorization = "Bearer ..."; }
 *   workers      optional list of worker names: notify only for those
 *                (the worker name "" stands for unknown or malformed jobs)
 *   email_to     not supported: refused with a message (an email can be
 *                sent by pointing webhook_url at a mail gateway)
 *
 * The body is the `dead` event of the events exchange:
 *   {"id","worker","queue","attempt","event":"dead","at","duration_ms":null,
 *    "error","host","reason"}
 * with Content-Type application/json. A 2xx answer is success; anything
 * else, or no answer within timeout_ms, is logged as a warning with the
 * job's id and not retried: the dead letter itself stays parked, and
 * `warren dead list` shows it whatever happened to the notification. The
 * request runs on the worker process's thread (the job's ack waits for
 * it), so keep timeout_ms short. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 600000

static struct {
    char *url;
    long timeout_ms;
    struct curl_slist *headers;
    json_t *workers; /* array of strings, or NULL: all */
    int curl_ready;
} notify;

static void notify_fini(void)
{
    free(notify.url);
    curl_slist_free_all(notify.headers);
    json_decref(notify.workers);
    if (notify.curl_ready)
        curl_global_cleanup();
    memset(&notify, 0, sizeof notify);
}

/* ---- the request ---- */

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

static const char *now_rfc3339(char *buf, size_t size)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return buf;
}

static json_t *str_or_empty(const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v ? v : json_string(""); /* not UTF-8: "" */
}

/* The dead event, as the events exchange carries it. */
static char *event_json(const warren_job *job, const warren_observer_ctx *ctx,
                        const char *reason, const char *error)
{
    char at[40];
    int attempt = warren_job_attempt(job);
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", str_or_empty(warren_job_id(job)));
    json_object_set_new(o, "worker", str_or_empty(warren_job_worker(job)));
    json_object_set_new(o, "queue", str_or_empty(ctx->queue));
    json_object_set_new(o, "attempt", json_integer(attempt > 0 ? attempt : 1));
    json_object_set_new(o, "event", json_string("dead"));
    json_object_set_new(o, "at", json_string(now_rfc3339(at, sizeof at)));
    json_object_set_new(o, "duration_ms", json_null());
    json_object_set_new(o, "error", error && error[0] ? str_or_empty(error) : json_null());
    json_object_set_new(o, "host", str_or_empty(ctx->host));
    json_object_set_new(o, "reason", str_or_empty(reason));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* POSTs body; returns 0, or -1 with the reason in why. */
static int post(const char *body, char *why, size_t why_size)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(why, why_size, "cannot create a curl handle");
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, notify.url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, notify.headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "warren-notify");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, notify.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* may run on a second thread */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, why_size, "HTTP status %ld", status);
        return -1;
    }
    return 0;
}

static int wanted(const char *worker)
{
    if (!notify.workers)
        return 1;
    size_t i;
    json_t *v;
    json_array_foreach(notify.workers, i, v)
    {
        if (strcmp(json_string_value(v), worker) == 0)
            return 1;
    }
    return 0;
}

static void on_dead(const warren_job *job, const warren_observer_ctx *ctx, const char *reason,
                    const char *error, void *user)
{
    (void)user;
    if (!wanted(warren_job_worker(job)))
        return;
    char *body = event_json(job, ctx, reason, error);
    char why[CURL_ERROR_SIZE + 64];
    if (!body) {
        warren_job_log(job, WARREN_LOG_WARN, "dead letter notification not sent: out of memory");
        return;
    }
    if (post(body, why, sizeof why) == 0)
        warren_job_log(job, WARREN_LOG_INFO, "dead letter (%s) notified to the webhook", reason);
    else
        warren_job_log(job, WARREN_LOG_WARN, "dead letter (%s) notification failed: %s", reason,
                       why);
    free(body);
}

/* ---- configuration ---- */

static warren_status read_headers(const json_t *config, warren_error *err)
{
    notify.headers = curl_slist_append(NULL, "Content-Type: application/json");
    json_t *hdrs = json_object_get(config, "headers");
    if (hdrs && !json_is_object(hdrs))
        return warren_error_set(err, WARREN_ECONFIG, "notify: headers must be a group of "
                                                     "name = \"value\" settings");
    const char *name;
    json_t *value;
    json_object_foreach(hdrs, name, value)
    {
        const char *v = json_string_value(value);
        if (!v || strpbrk(v, "\r\n") || strpbrk(name, "\r\n: "))
            return warren_error_set(err, WARREN_ECONFIG,
                                    "notify: header '%s' must be a one-line string", name);
        char line[2048];
        snprintf(line, sizeof line, "%s: %s", name, v);
        struct curl_slist *grown = curl_slist_append(notify.headers, line);
        if (!grown)
            return warren_error_set(err, WARREN_ENOMEM, "out of memory");
        notify.headers = grown;
    }
    return notify.headers ? WARREN_OK : warren_error_set(err, WARREN_ENOMEM, "out of memory");
}

static warren_status read_workers(const json_t *config, warren_error *err)
{
    json_t *workers = json_object_get(config, "workers");
    if (!workers)
        return WARREN_OK;
    size_t i;
    json_t *v;
    if (!json_is_array(workers))
        return warren_error_set(err, WARREN_ECONFIG, "notify: workers must be a list of names");
    json_array_foreach(workers, i, v)
    {
        if (!json_is_string(v))
            return warren_error_set(err, WARREN_ECONFIG,
                                    "notify: workers must be a list of names");
    }
    notify.workers = json_incref(workers);
    return WARREN_OK;
}

static warren_status read_config(const json_t *config, warren_error *err)
{
    if (json_object_get(config, "email_to"))
        return warren_error_set(err, WARREN_ECONFIG,
                                "notify: email_to is not supported; set webhook_url (a mail "
                                "gateway's webhook can send the email)");
    const char *url = json_string_value(json_object_get(config, "webhook_url"));
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return warren_error_set(err, WARREN_ECONFIG,
                                "notify: webhook_url must be an http:// or https:// URL");
    notify.url = strdup(url);
    if (!notify.url)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    json_t *t = json_object_get(config, "timeout_ms");
    notify.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
              json_integer_value(t) > MAX_TIMEOUT_MS))
        return warren_error_set(err, WARREN_ECONFIG, "notify: timeout_ms must be 1..%d",
                                MAX_TIMEOUT_MS);
    if (t)
        notify.timeout_ms = (long)json_integer_value(t);
    warren_status st = read_headers(config, err);
    return st == WARREN_OK ? read_workers(config, err) : st;
}

static warren_status notify_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    notify_fini();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return warren_error_set(err, WARREN_EMODULE, "notify: libcurl failed to initialise");
    notify.curl_ready = 1;
    warren_status st = read_config(config, err);
    if (st == WARREN_OK) {
        warren_observer obs = {.on_dead = on_dead};
        st = warren_registry_observe(reg, &obs, err);
    }
    if (st != WARREN_OK)
        notify_fini();
    return st;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1,
    .name = "notify",
    .init = notify_init,
    .fini = notify_fini,
};
