/* Status codes and the caller's error buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <warren/error.h>

static const char *const status_text[] = {
#define WARREN__STATUS_TEXT(name, text) text,
    WARREN_STATUS_MAP(WARREN__STATUS_TEXT)
#undef WARREN__STATUS_TEXT
};

const char *warren_strerror(warren_status status)
{
    if ((unsigned)status >= WARREN_STATUS_COUNT)
        return "unknown status";
    return status_text[status];
}

void warren_error_clear(warren_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

static void error_vset(warren_error *err, warren_status code, const char *source, int line,
                       const char *fmt, va_list ap)
{
    /* The first error wins: it is the root cause, later ones are echoes. */
    if (!err || err->code != WARREN_OK)
        return;
    err->code = code;
    err->line = line;
    snprintf(err->source, sizeof err->source, "%s", source ? source : "");
    vsnprintf(err->text, sizeof err->text, fmt, ap);
}

warren_status warren_error_set(warren_error *err, warren_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, NULL, 0, fmt, ap);
    va_end(ap);
    return code;
}

warren_status warren_error_set_at(warren_error *err, warren_status code, const char *source,
                                  int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, source, line, fmt, ap);
    va_end(ap);
    return code;
}

const char *warren_error_format(const warren_error *err, char *buf, unsigned long size)
{
    if (!err || err->code == WARREN_OK)
        snprintf(buf, size, "no error");
    else if (err->source[0] && err->line > 0)
        snprintf(buf, size, "%s:%d: %s", err->source, err->line, err->text);
    else if (err->source[0])
        snprintf(buf, size, "%s: %s", err->source, err->text);
    else
        snprintf(buf, size, "%s", err->text[0] ? err->text : warren_strerror(err->code));
    return buf;
}
