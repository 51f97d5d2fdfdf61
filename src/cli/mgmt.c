/* The management API over libcurl (see mgmt.h).
 *
 * DESIGN: one place builds the request (URL, Basic auth, timeout, body
 * cap) so `warren stats` and `warren doctor` cannot drift apart on how
 * they log in. The credentials follow the AMQP connection's rules: the
 * user and vhost come from the URL, the password from broker.password_file
 * when it is set, else from the URL. */
#include <stdlib.h>
#include <string.h>
#include <amqp.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include "conn.h"
#include "mgmt.h"

struct mgmt {
    CURL *curl;
    const char *base;  /* borrowed */
    char *user, *password;
    char *vhost;       /* URL-escaped (curl_free) */
    size_t max_body;
    long status;       /* HTTP status of the last request; 0 none */
};

/* A response body being collected; longer than max ends the transfer. */
struct body {
    char *data; /* NUL-terminated */
    size_t len, max;
};

static size_t body_write(char *ptr, size_t size, size_t n, void *user)
{
    struct body *b = user;
    size_t add = size * n;
    if (b->len + add > b->max)
        return 0;
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

void mgmt_close(struct mgmt *m)
{
    if (!m)
        return;
    if (m->password) {
        OPENSSL_cleanse(m->password, strlen(m->password));
        free(m->password);
    }
    free(m->user);
    curl_free(m->vhost);
    if (m->curl)
        curl_easy_cleanup(m->curl);
    free(m);
}

warren_status mgmt_open(struct mgmt **out, const char *base_url, const char *amqp_url,
                        const char *password_file, const struct mgmt_limits *limits,
                        warren_error *err)
{
    *out = NULL;
    char buf[1024];
    struct amqp_connection_info info;
    warren_status st = warren__url_parse(amqp_url, &info, buf, sizeof buf, err);
    if (st != WARREN_OK)
        return st;
    struct mgmt *m = calloc(1, sizeof *m);
    if (!m) {
        OPENSSL_cleanse(buf, sizeof buf);
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    }
    m->base = base_url;
    m->max_body = limits->max_body;
    m->user = strdup(info.user);
    m->curl = curl_easy_init();
    m->vhost = m->curl ? curl_easy_escape(m->curl, info.vhost, 0) : NULL;
    if (password_file) {
        m->password = warren__password_file_read(password_file, err);
        if (!m->password)
            st = WARREN_EIO; /* as the AMQP connection answers it */
    } else
        m->password = strdup(info.password);
    OPENSSL_cleanse(buf, sizeof buf); /* the URL's copy, password included */
    if (st != WARREN_OK) {
        mgmt_close(m);
        return st;
    }
    if (!m->user || !m->password || !m->vhost) {
        mgmt_close(m);
        return warren_error_set(err, WARREN_ENOMEM, "cannot start libcurl");
    }
    curl_easy_setopt(m->curl, CURLOPT_USERNAME, m->user);
    curl_easy_setopt(m->curl, CURLOPT_PASSWORD, m->password);
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, limits->timeout_ms);
    curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, body_write);
    *out = m;
    return WARREN_OK;
}

long mgmt_http_status(const struct mgmt *m)
{
    return m->status;
}

warren_status mgmt_get_json(struct mgmt *m, const char *kind, const char *name,
                            const char *suffix, json_t **out, warren_error *err)
{
    *out = NULL;
    char *ename = curl_easy_escape(m->curl, name, 0);
    size_t blen = strlen(m->base);
    char url[2048];
    snprintf(url, sizeof url, "%s%sapi/%s/%s/%s%s", m->base,
             blen && m->base[blen - 1] == '/' ? "" : "/", kind, m->vhost, ename ? ename : "",
             suffix);
    curl_free(ename);
    struct body b = {NULL, 0, m->max_body};
    curl_easy_setopt(m->curl, CURLOPT_URL, url);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(m->curl);
    m->status = 0;
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &m->status);
    warren_status st = WARREN_OK;
    if (rc != CURLE_OK)
        st = warren_error_set(err, WARREN_ECONNECT, "management API at %s: %s", m->base,
                              curl_easy_strerror(rc));
    else if (m->status != 200)
        st = warren_error_set(err, m->status == 404 ? WARREN_ENOTFOUND : WARREN_EBROKER,
                              "management API at %s: HTTP %ld", m->base, m->status);
    else if (!(*out = json_loads(b.data ? b.data : "", 0, NULL)))
        st = warren_error_set(err, WARREN_EBROKER,
                              "management API at %s: an answer that is not JSON", m->base);
    free(b.data);
    return st;
}

static double rate_of(json_t *stats, const char *key)
{
    return json_number_value(json_object_get(json_object_get(stats, key), "rate"));
}

warren_status mgmt_queue_get(struct mgmt *m, const char *queue, struct mgmt_queue *out,
                             warren_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *q = NULL;
    warren_error why;
    warren_error_clear(&why);
    warren_status st = mgmt_get_json(m, "queues", queue, "", &q, &why);
    if (st == WARREN_ECONNECT)
        return warren_error_set(err, st, "%s", why.text);
    if (m->status != 200)
        return warren_error_set(err, st, "management API at %s: HTTP %ld for queue '%s'",
                                m->base, m->status, queue);
    if (!json_is_object(q)) {
        json_decref(q);
        return warren_error_set(err, WARREN_EBROKER, "management API: unexpected answer");
    }
    out->ready = json_integer_value(json_object_get(q, "messages_ready"));
    out->unacked = json_integer_value(json_object_get(q, "messages_unacknowledged"));
    out->consumers = json_integer_value(json_object_get(q, "consumers"));
    json_t *ms = json_object_get(q, "message_stats");
    out->publish_rate = rate_of(ms, "publish_details");
    out->deliver_rate = rate_of(ms, "deliver_get_details");
    out->ack_rate = rate_of(ms, "ack_details");
    json_decref(q);
    return WARREN_OK;
}
