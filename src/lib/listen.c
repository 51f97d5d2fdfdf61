/* TCP listening sockets for the HTTP endpoints (see listen.h). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "listen.h"

/* Splits the spec into host (may be "") and port. */
static warren_status split_listen(const char *spec, const char *what, char *host,
                                  size_t host_size, char *port, size_t port_size,
                                  warren_error *err)
{
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t hlen = colon ? (size_t)(colon - spec) : 0;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    const char *p = colon ? colon + 1 : "";
    int digits = p[0] != '\0' && strspn(p, "0123456789") == strlen(p) && strlen(p) <= 5;
    if (!colon || !digits || atoi(p) > 65535 || hlen >= host_size || strlen(p) >= port_size)
        return warren_error_set(err, WARREN_EINVAL,
                                "%s \"%s\": expected HOST:PORT (port 0-65535)", what, spec);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, port_size, "%s", p);
    return WARREN_OK;
}

warren_status warren__listen_tcp(const char *spec, const char *what, int *fd, char *address,
                                 size_t address_size, int *port, warren_error *err)
{
    char host[256], serv[8];
    warren_status st = split_listen(spec, what, host, sizeof host, serv, sizeof serv, err);
    if (st != WARREN_OK)
        return st;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, serv, &hints, &res);
    if (rc != 0)
        return warren_error_set(err, WARREN_EINVAL, "%s \"%s\": %s", what, spec,
                                gai_strerror(rc));
    int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s, res->ai_addr, res->ai_addrlen) != 0 || listen(s, 64) != 0) {
        st = warren_error_set(err, WARREN_EIO, "cannot listen on %s: %s", spec, strerror(errno));
        if (s >= 0)
            close(s);
        freeaddrinfo(res);
        return st;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(s, (struct sockaddr *)&ss, &len);
    char h[NI_MAXHOST] = "?", p[NI_MAXSERV] = "0";
    getnameinfo((struct sockaddr *)&ss, len, h, sizeof h, p, sizeof p,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(address, address_size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
    if (port)
        *port = atoi(p);
    *fd = s;
    return WARREN_OK;
}
