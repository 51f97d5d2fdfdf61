/* A small SMTP client (RFC 5321): EHLO (HELO when refused), MAIL FROM,
 * RCPT TO, DATA, QUIT over a plain TCP connection, every step bounded by
 * a timeout. Replies sort a failure into transient (no connection, 4xx,
 * anything unexpected) or permanent (5xx), which is all the job needs. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "smtp.h"

#define REPLY_MAX 4096

struct conn {
    int fd;
    char buf[REPLY_MAX];
    size_t len; /* bytes in buf not yet consumed */
    char *why;
    size_t why_size;
};

int smtp_parse_url(const char *url, struct smtp_server *server, char *why, size_t why_size)
{
    const char *p = url && strncmp(url, "smtp://", 7) == 0 ? url + 7 : NULL;
    if (!p || !*p) {
        snprintf(why, why_size, "smtp_url must look like smtp://host:port");
        return -1;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            snprintf(why, why_size, "smtp_url: missing ']' after the IPv6 address");
            return -1;
        }
        p = host_end + 1;
    } else {
        host_end = host + strcspn(host, ":/");
        p = host_end;
    }
    size_t host_len = (size_t)(host_end - host);
    const char *port = "25";
    size_t port_len = 2;
    if (*p == ':') {
        port = ++p;
        port_len = strspn(p, "0123456789");
        p += port_len;
    }
    if (host_len == 0 || host_len >= sizeof server->host || port_len == 0 ||
        port_len >= sizeof server->port || (*p && strcmp(p, "/") != 0)) {
        snprintf(why, why_size, "smtp_url '%s' must look like smtp://host:port", url);
        return -1;
    }
    long n = strtol(port, NULL, 10);
    if (n < 1 || n > 65535) {
        snprintf(why, why_size, "smtp_url '%s': port out of range", url);
        return -1;
    }
    memcpy(server->host, host, host_len);
    server->host[host_len] = '\0';
    memcpy(server->port, port, port_len);
    server->port[port_len] = '\0';
    return 0;
}

/* Connects within timeout_ms to any address of the server. */
static int dial(const struct smtp_server *server, int timeout_ms, char *why, size_t why_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(server->host, server->port, &hints, &list);
    if (rc != 0) {
        snprintf(why, why_size, "smtp: cannot resolve %s: %s", server->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            err = 0;
        } else if (errno != EINPROGRESS) {
            err = errno;
        } else {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            socklen_t len = sizeof err;
            int ready = poll(&pfd, 1, timeout_ms);
            if (ready == 0)
                err = ETIMEDOUT;
            else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        snprintf(why, why_size, "smtp: cannot connect to %s:%s: %s", server->host, server->port,
                 strerror(err ? err : ECONNREFUSED));
        return -1;
    }
    /* Blocking from here on, with the timeout on every read and write. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int io_failed(struct conn *c, const char *doing, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK)
        snprintf(c->why, c->why_size, "smtp: timed out %s", doing);
    else if (err == 0)
        snprintf(c->why, c->why_size, "smtp: server closed the connection %s", doing);
    else
        snprintf(c->why, c->why_size, "smtp: %s: %s", doing, strerror(err));
    return -1;
}

static int send_all(struct conn *c, const char *data, size_t len)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a server that hangs up must not kill the worker. */
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return io_failed(c, "sending", n < 0 ? errno : EPIPE);
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one line (without CRLF) into line. */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t keep = n > 0 && c->buf[n - 1] == '\r' ? n - 1 : n;
            if (keep >= size)
                keep = size - 1;
            memcpy(line, c->buf, keep);
            line[keep] = '\0';
            c->len -= n + 1;
            memmove(c->buf, nl + 1, c->len);
            return 0;
        }
        if (c->len == sizeof c->buf) {
            snprintf(c->why, c->why_size, "smtp: reply line over %d bytes", REPLY_MAX);
            return -1;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return io_failed(c, "waiting for the server's reply", n < 0 ? errno : 0);
        c->len += (size_t)n;
    }
}

/* Reads a whole (maybe multi-line) reply; returns its code, or -1. The
 * last line's text is left in text. */
static int read_reply(struct conn *c, char *text, size_t size)
{
    for (;;) {
        if (read_line(c, text, size) != 0)
            return -1;
        if (strlen(text) < 3 || strspn(text, "0123456789") < 3 ||
            (text[3] != '\0' && text[3] != ' ' && text[3] != '-')) {
            snprintf(c->why, c->why_size, "smtp: not an SMTP reply: '%.80s'", text);
            return -1;
        }
        if (text[3] != '-')
            return atoi(text);
    }
}

/* Sends `cmd` (NULL: only read) and checks the reply's first digit. */
static enum smtp_result step(struct conn *c, const char *cmd, const char *what, char expect)
{
    char reply[512];
    if (cmd && send_all(c, cmd, strlen(cmd)) != 0)
        return SMTP_TRANSIENT;
    int code = read_reply(c, reply, sizeof reply);
    if (code < 0)
        return SMTP_TRANSIENT;
    if (reply[0] == expect)
        return SMTP_SENT;
    snprintf(c->why, c->why_size, "smtp: %s refused: %s", what, reply);
    return reply[0] == '5' ? SMTP_PERMANENT : SMTP_TRANSIENT;
}

static enum smtp_result greet(struct conn *c)
{
    char host[256] = "localhost";
    char cmd[300];
    gethostname(host, sizeof host - 1);
    host[strcspn(host, " \r\n")] = '\0';
    enum smtp_result r = step(c, NULL, "the greeting", '2');
    if (r != SMTP_SENT)
        return r;
    snprintf(cmd, sizeof cmd, "EHLO %s\r\n", host);
    r = step(c, cmd, "EHLO", '2');
    if (r != SMTP_PERMANENT)
        return r;
    snprintf(cmd, sizeof cmd, "HELO %s\r\n", host);
    return step(c, cmd, "HELO", '2');
}

/* Sends the message with dot-stuffing and the closing ".". */
static int send_data(struct conn *c, const char *message)
{
    const char *p = message;
    while (*p) {
        size_t len = strcspn(p, "\n");
        if (*p == '.' && send_all(c, ".", 1) != 0)
            return -1;
        if (send_all(c, p, len + (p[len] == '\n')) != 0)
            return -1;
        p += len + (p[len] == '\n');
    }
    size_t n = strlen(message);
    const char *end = n >= 2 && strcmp(message + n - 2, "\r\n") == 0 ? ".\r\n" : "\r\n.\r\n";
    return send_all(c, end, strlen(end));
}

static enum smtp_result transaction(struct conn *c, const char *from, const char *const *rcpts,
                                    size_t n_rcpts, const char *message)
{
    char cmd[1100], what[1100];
    enum smtp_result r = greet(c);
    snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", from);
    if (r == SMTP_SENT)
        r = step(c, cmd, "MAIL FROM", '2');
    for (size_t i = 0; r == SMTP_SENT && i < n_rcpts; i++) {
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", rcpts[i]);
        snprintf(what, sizeof what, "RCPT TO <%s>", rcpts[i]);
        r = step(c, cmd, what, '2');
    }
    if (r == SMTP_SENT)
        r = step(c, "DATA\r\n", "DATA", '3');
    if (r == SMTP_SENT)
        r = send_data(c, message) == 0 ? step(c, NULL, "the message", '2') : SMTP_TRANSIENT;
    return r;
}

enum smtp_result smtp_send(const struct smtp_server *server, int timeout_ms, const char *from,
                           const char *const *rcpts, size_t n_rcpts, const char *message, char *why,
                           size_t why_size)
{
    struct conn c = {.fd = -1, .why = why, .why_size = why_size};
    c.fd = dial(server, timeout_ms, why, why_size);
    if (c.fd < 0)
        return SMTP_TRANSIENT;
    enum smtp_result r = transaction(&c, from, rcpts, n_rcpts, message);
    /* Polite, and what some servers wait for before they deliver; its
     * reply no longer matters. */
    if (r == SMTP_SENT) {
        char ignored[128];
        c.why = ignored;
        c.why_size = sizeof ignored;
        step(&c, "QUIT\r\n", "QUIT", '2');
    }
    close(c.fd);
    return r;
}
