/* warren public API: logging. One process-wide logger; the level is
 * checked before anything is formatted. Signal handlers never log. */
#ifndef WARREN_LOG_H
#define WARREN_LOG_H

#include <stdarg.h>
#include <warren/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum warren_log_level {
    WARREN_LOG_DEBUG = 0,
    WARREN_LOG_INFO = 1,
    WARREN_LOG_WARN = 2,
    WARREN_LOG_ERROR = 3,
} warren_log_level;

typedef enum warren_log_format {
    WARREN_LOG_TEXT = 0,
    WARREN_LOG_JSON = 1,
} warren_log_format;

/* A log sink receives one finished line's parts. `msgid` is short and
 * stable (e.g. "job.dead"); `fields` is a JSON object text of extra
 * key/values or NULL. */
typedef void (*warren_log_sink)(warren_log_level level, const char *msgid,
                                const char *fields, const char *msg, void *user);

/* Configures the default stderr sink. `role` is e.g. "supervisor" or
 * "worker 2" and appears on every line with the pid. Not thread-safe:
 * call before starting threads. */
WARREN_EXPORT void warren_log_setup(warren_log_level level, warren_log_format format,
                                    const char *role);

/* Replaces the sink (NULL restores stderr). Used by test helpers. */
WARREN_EXPORT void warren_log_set_sink(warren_log_sink sink, void *user);

WARREN_EXPORT int warren_log_enabled(warren_log_level level);

/* Logs one line. `fields` is a JSON object text or NULL. */
WARREN_EXPORT void warren_log_write(warren_log_level level, const char *msgid,
                                    const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
WARREN_EXPORT void warren_log_vwrite(warren_log_level level, const char *msgid,
                                     const char *fields, const char *fmt, va_list ap);

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
WARREN_EXPORT int warren_log_level_parse(const char *name);

#define WARREN_LOG(level, msgid, ...)                                   \
    do {                                                               \
        if (warren_log_enabled(level))                                 \
            warren_log_write((level), (msgid), NULL, __VA_ARGS__);     \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
