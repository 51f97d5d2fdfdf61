/* The management API over libcurl (see mgmt.h). */
#include <stdlib.h>
#include <string.h>
#include <amqp.h>
#include <curl/curl.h>
#include <jansson.h>
#include "conn.h"
#include "mgmt.h"

#define MGMT_TIMEOUT_MS 3000
#define MGMT_MAX_BODY (1 << 20)

size_t mgmt_body_write(char *ptr, size_t size, size_t n, void *body)
{
    struct mgmt_body *b = body;
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

static double rate_of(json_t *stats, const char *key)
{
    return json_number_value(json_object_get(json_object_get(stats, key), "rate"));
}

static warren_status parse(const char *text, struct mgmt_queue *out, warren_error *err)
{
    json_error_t jerr;
    json_t *q = json_loads(text, 0, &jerr);
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

warren_status mgmt_queue_get(const char *base_url, const char *amqp_url, const char *queue,
                             struct mgmt_queue *out, warren_error *err)
{
    memset(out, 0, sizeof *out);
    char buf[1024];
    struct amqp_connection_info info;
    warren_status st = warren__url_parse(amqp_url, &info, buf, sizeof buf, err);
    if (st != WARREN_OK)
        return st;
    CURL *curl = curl_easy_init();
    if (!curl)
        return warren_error_set(err, WARREN_ENOMEM, "cannot start libcurl");
    char *vhost = curl_easy_escape(curl, info.vhost, 0);
    char *name = curl_easy_escape(curl, queue, 0);
    size_t blen = strlen(base_url);
    char url[2048];
    snprintf(url, sizeof url, "%s%sapi/queues/%s/%s", base_url,
             blen && base_url[blen - 1] == '/' ? "" : "/", vhost ? vhost : "", name ? name : "");
    curl_free(vhost);
    curl_free(name);
    struct mgmt_body b = {NULL, 0, MGMT_MAX_BODY};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_USERNAME, info.user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, info.password);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)MGMT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mgmt_body_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        st = warren_error_set(err, WARREN_ECONNECT, "management API at %s: %s", base_url,
                              curl_easy_strerror(rc));
    else if (code != 200)
        st = warren_error_set(err, code == 404 ? WARREN_ENOTFOUND : WARREN_EBROKER,
                              "management API at %s: HTTP %ld for queue '%s'", base_url, code,
                              queue);
    else
        st = parse(b.data ? b.data : "", out, err);
    free(b.data);
    return st;
}
