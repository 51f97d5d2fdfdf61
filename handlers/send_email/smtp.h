/* send_email's SMTP client: plain SMTP over one TCP connection. */
#ifndef SEND_EMAIL_SMTP_H
#define SEND_EMAIL_SMTP_H

#include <stddef.h>

struct smtp_server {
    char host[256];
    char port[8];
};

/* How a delivery ended: the job outcome follows from it. */
enum smtp_result {
    SMTP_SENT = 0,
    SMTP_TRANSIENT, /* no connection, timeout, 4xx, broken protocol */
    SMTP_PERMANENT, /* 5xx */
};

/* Parses "smtp://host[:port][/]" (port 25 by default; "[::1]:2525" for
 * IPv6). Returns 0, or -1 with the reason in why. */
int smtp_parse_url(const char *url, struct smtp_server *server, char *why, size_t why_size);

/* One delivery. `message` is the whole RFC 5322 text with CRLF line
 * ends; it is dot-stuffed on the way. `rcpts` holds n_rcpts bare
 * addresses. Every wait is bounded by timeout_ms. The reason for anything
 * but SMTP_SENT is written to why. */
enum smtp_result smtp_send(const struct smtp_server *server, int timeout_ms, const char *from,
                           const char *const *rcpts, size_t n_rcpts, const char *message, char *why,
                           size_t why_size);

#endif
