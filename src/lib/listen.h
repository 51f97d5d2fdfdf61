/* Internal: a TCP listening socket for an HTTP endpoint (warrend's
 * /metrics and `warren web`). We bind it ourselves and hand it to
 * libmicrohttpd, so a port in use is reported in the system's words and
 * port 0 can be read back. */
#ifndef WARREN_LISTEN_H
#define WARREN_LISTEN_H

#include <stddef.h>
#include <warren/error.h>

/* Binds and listens on "HOST:PORT", "[V6]:PORT" or ":PORT" (every
 * address). `what` names the setting in errors (e.g. "web.listen").
 * On success *fd is the socket (close-on-exec), `address` the bound
 * "HOST:PORT" and *port the bound port (port may be NULL). WARREN_EINVAL
 * for a bad spec, WARREN_EIO when the socket cannot be bound. */
warren_status warren__listen_tcp(const char *spec, const char *what, int *fd, char *address,
                                 size_t address_size, int *port, warren_error *err);

#endif
