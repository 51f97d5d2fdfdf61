/* warren public API: status codes and the caller's error buffer.
 * Anything not declared under include/warren/ is internal. */
#ifndef WARREN_ERROR_H
#define WARREN_ERROR_H

#include <warren/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table drives the enum and warren_strerror(). */
#define WARREN_STATUS_MAP(X)                                     \
    X(OK, "success")                                             \
    X(EINVAL, "invalid argument")                                \
    X(ENOMEM, "out of memory")                                   \
    X(ECONFIG, "configuration error")                            \
    X(EBROKER, "broker error")                                   \
    X(ECONNECT, "cannot connect to broker")                      \
    X(ENOTFOUND, "not found")                                    \
    X(EEXIST, "already exists")                                  \
    X(EABI, "module ABI version mismatch")                       \
    X(EMODULE, "module error")                                   \
    X(EIO, "I/O error")                                          \
    X(ETIMEDOUT, "timed out")                                    \
    X(ENACK, "broker refused the message")                       \
    X(EDRIFT, "topology differs from configuration")             \
    X(EMALFORMED, "malformed message")

typedef enum warren_status {
#define WARREN__STATUS_ENUM(name, text) WARREN_##name,
    WARREN_STATUS_MAP(WARREN__STATUS_ENUM)
#undef WARREN__STATUS_ENUM
    WARREN_STATUS_COUNT
} warren_status;

/* The specific reason behind a status. Callers may pass NULL wherever a
 * warren_error * is taken. The first error set wins, as with jansson's
 * json_error_t, so the root cause is what gets printed. `source` names the
 * file (config errors) and `line` its line, or 0 when not applicable. */
typedef struct warren_error {
    warren_status code;
    int line;
    char source[256];
    char text[512];
} warren_error;

/* A static, never-NULL description of a status. */
WARREN_EXPORT const char *warren_strerror(warren_status status);

/* Resets an error buffer to "no error". */
WARREN_EXPORT void warren_error_clear(warren_error *err);

/* Sets *err (if not NULL and not already set) and returns `code`, so a
 * caller can write `return warren_error_set(err, WARREN_EINVAL, ...)`. */
WARREN_EXPORT warren_status warren_error_set(warren_error *err, warren_status code,
                                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with the file and line the error is about. */
WARREN_EXPORT warren_status warren_error_set_at(warren_error *err, warren_status code,
                                                const char *source, int line,
                                                const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Formats an error for humans: "FILE:LINE: text" when it has a source,
 * else "text". Returns buf. */
WARREN_EXPORT const char *warren_error_format(const warren_error *err, char *buf,
                                              unsigned long size);

#ifdef __cplusplus
}
#endif
#endif
