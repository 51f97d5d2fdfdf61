/* The process-wide logger: text or JSON lines on stderr, or a sink.
 *
 * Each line carries the time, level, pid and role ("supervisor",
 * "worker 2", "cli"), a stable msgid and the message. One write() per
 * line, so lines from several processes sharing stderr never interleave. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/log.h>
#include "job.h"
#include "json_fast.h"
#include "json_write.h"

static struct {
    warren_log_level level;
    warren_log_format format;
    char role[32];
    warren_log_sink sink;
    void *sink_user;
} logger = {WARREN_LOG_INFO, WARREN_LOG_TEXT, "", NULL, NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void warren_log_setup(warren_log_level level, warren_log_format format, const char *role)
{
    logger.level = level;
    logger.format = format;
    snprintf(logger.role, sizeof logger.role, "%s", role ? role : "");
}

void warren_log_set_sink(warren_log_sink sink, void *user)
{
    logger.sink = sink;
    logger.sink_user = user;
}

int warren_log_enabled(warren_log_level level)
{
    return level >= logger.level;
}

int warren_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void format_time(char *buf, size_t size)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* The fields object with the line's own keys after it, as jansson would
 * write it; parsed by the fast parser and written by the compact writer
 * (both give jansson's results, and hand what they are unsure of to
 * jansson), which cut the cost of a line from ~68,000 instructions to a
 * few thousand: at log_level info that is one line per job. */
static void emit_json(const char *when, warren_log_level level, const char *msgid,
                      const char *fields, const char *msg)
{
    json_t *line = NULL;
    if (fields) {
        line = warren__json_fast_object(fields, strlen(fields), WARREN_MAX_NESTING);
        if (!line)
            line = json_loads(fields, 0, NULL);
    }
    if (!json_is_object(line)) {
        json_decref(line);
        line = json_object();
    }
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "pid", json_integer(getpid()));
    json_object_set_new(line, "role", json_string(logger.role));
    json_object_set_new(line, "msgid", json_string(msgid));
    json_object_set_new(line, "msg", json_string(msg));
    struct warren__jbuf text = {0};
    /* The newline goes in the same write(): two writes let another
     * process's line land between them (glued lines, an empty one). */
    if (warren__json_compact(&text, line, 0) == 0) {
        text.data[text.len] = '\n';
        write_all(text.data, text.len + 1);
    }
    json_decref(line);
    warren__jbuf_free(&text);
}

static void emit_text(const char *when, warren_log_level level, const char *msgid,
                      const char *fields, const char *msg)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "%s %-5s [%d %s] %s: %s%s%s\n", when,
                     level_names[level], (int)getpid(), logger.role, msgid, msg,
                     fields ? " " : "", fields ? fields : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    write_all(line, (size_t)n);
}

void warren_log_vwrite(warren_log_level level, const char *msgid, const char *fields,
                       const char *fmt, va_list ap)
{
    if (!warren_log_enabled(level))
        return;
    if ((unsigned)level > WARREN_LOG_ERROR)
        level = WARREN_LOG_ERROR;
    int saved = errno; /* logging must not disturb the caller's errno */
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (logger.sink) {
        logger.sink(level, msgid, fields, msg, logger.sink_user);
    } else {
        char when[40];
        format_time(when, sizeof when);
        if (logger.format == WARREN_LOG_JSON)
            emit_json(when, level, msgid, fields, msg);
        else
            emit_text(when, level, msgid, fields, msg);
    }
    errno = saved;
}

void warren_log_write(warren_log_level level, const char *msgid, const char *fields,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warren_log_vwrite(level, msgid, fields, fmt, ap);
    va_end(ap);
}
