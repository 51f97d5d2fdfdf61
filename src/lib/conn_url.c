/* Broker URLs: parsing with our rules, redacting the password for
 * messages, and the comma-separated list (see conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <amqp.h>
#include "conn.h"

warren_status warren__url_parse(const char *url, struct amqp_connection_info *info, char *buf,
                                size_t buf_size, warren_error *err)
{
    char shown[512];
    warren__url_redact(url, shown, sizeof shown);
    if (strlen(url) + 1 > buf_size)
        return warren_error_set(err, WARREN_EINVAL, "URL too long: %s", shown);
    if (strchr(url, '?'))
        return warren_error_set(err, WARREN_EINVAL,
                                "URL %s has a query string: query strings are not supported",
                                shown);
    strcpy(buf, url);
    amqp_default_connection_info(info);
    if (amqp_parse_url(buf, info) != AMQP_STATUS_OK)
        return warren_error_set(err, WARREN_EINVAL,
                                "bad broker URL %s (expected amqp[s]://user:pass@host:port/vhost)",
                                shown);
    /* rabbitmq-c reads "amqp://h/" as the empty vhost; pika and the RabbitMQ
     * docs read it as "/", and so do we. */
    if (info->vhost == NULL || info->vhost[0] == '\0')
        info->vhost = "/";
    return WARREN_OK;
}

/* Whether "host[:port]" (up to the path) could not hold a password: a
 * URL without '@' whose "port" is not a number may be "user:password"
 * with the host forgotten. */
static int authority_is_plain(const char *start)
{
    size_t len = strcspn(start, "/");
    const char *colon = memchr(start, ':', len);
    if (start[0] == '[') /* an IPv6 address: [::1]:5672 */
        colon = memchr(start, ']', len) ? strchr(memchr(start, ']', len), ':') : NULL;
    if (!colon || colon >= start + len)
        return 1;
    for (const char *p = colon + 1; p < start + len; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

const char *warren__url_redact(const char *url, char *buf, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *at = strrchr(url, '@');
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (scheme && !at && !authority_is_plain(scheme + 3)) {
        snprintf(buf, size, "%.*s***%s", (int)(scheme + 3 - url), url,
                 scheme + 3 + strcspn(scheme + 3, "/"));
        return buf;
    }
    if (!scheme || !at || !colon || colon > at) {
        snprintf(buf, size, "%s", url);
        return buf;
    }
    snprintf(buf, size, "%.*s:***%s", (int)(colon - url), url, at);
    return buf;
}

char **warren__url_list(const char *text, size_t *n)
{
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    char **v = calloc(count + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    const char *start = text;
    for (;;) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        while (len && (*start == ' ' || *start == '\t'))
            start++, len--;
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len) {
            v[k] = strndup(start, len);
            if (!v[k]) {
                warren__strv_free(v);
                return NULL;
            }
            k++;
        }
        if (!end)
            break;
        start = end + 1;
    }
    if (n)
        *n = k;
    return v;
}

void warren__strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
