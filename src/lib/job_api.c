/* The public view of a job (include/warren/job.h) over struct warren_job. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/log.h>
#include "job.h"
#include "job_capture.h"
#include "json_write.h"

const char *warren_job_worker(const warren_job *job)
{
    return job->worker;
}

const char *warren_job_id(const warren_job *job)
{
    return job->id;
}

int warren_job_attempt(const warren_job *job)
{
    return job->attempt;
}

int warren_job_max_attempts(const warren_job *job)
{
    return job->max_attempts;
}

int warren_job_priority(const warren_job *job)
{
    return job->priority;
}

json_t *warren_job_args(const warren_job *job)
{
    return job->args;
}

json_t *warren_job_headers(const warren_job *job)
{
    /* Built on first use from the table decode checked (job.c), and
     * freed with the job; a job without headers (or one built in process)
     * gets an empty object. The contract says never NULL: if memory ran
     * out converting, the handler still gets an (empty) object if one can
     * be had. A job is used by one thread at a time. */
    struct warren_job *j = (struct warren_job *)job;
    if (!j->headers)
        j->headers = warren__job_headers_json(j->header_src);
    if (!j->headers)
        j->headers = json_object();
    return j->headers;
}

/* ---- log fields (job.h) ---- */

static void fields_put(struct warren_fields *f, const char *s, size_t n)
{
    if (f->overflow || n > sizeof f->buf - 1 - f->len) {
        f->overflow = 1;
        return;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
}

/* A JSON string as jansson's dump writes one: '"' and '\\' escaped,
 * \b \f \n \r \t, other control characters as \u00XX (upper case), the
 * rest (UTF-8 included, and '/') as is. */
static void fields_string(struct warren_fields *f, const char *s)
{
    fields_put(f, "\"", 1);
    const char *run = s;
    for (;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fields_put(f, run, (size_t)(s - run));
        run = s + 1;
        if (c == '\0')
            break;
        char esc[6];
        fields_put(f, esc, warren__json_escape(c, esc));
    }
    fields_put(f, "\"", 1);
}

static void fields_key(struct warren_fields *f, const char *key)
{
    if (f->len > 1)
        fields_put(f, ",", 1);
    fields_string(f, key);
    fields_put(f, ":", 1);
}

void warren__fields_begin(struct warren_fields *f)
{
    f->len = 0;
    f->overflow = 0;
    fields_put(f, "{", 1);
}

int warren__fields_str(struct warren_fields *f, const char *key, const char *value)
{
    if (!value || !warren__utf8_valid(value, strlen(value)))
        return -1;
    fields_key(f, key);
    fields_string(f, value);
    return 0;
}

void warren__fields_int(struct warren_fields *f, const char *key, long long value)
{
    char digits[24], *end = digits + sizeof digits;
    const char *p = warren__json_int_text(end, value);
    fields_key(f, key);
    fields_put(f, p, (size_t)(end - p));
}

void warren__fields_raw(struct warren_fields *f, const char *key, const char *json, size_t len)
{
    fields_key(f, key);
    fields_put(f, json, len);
}

void warren__fields_null(struct warren_fields *f, const char *key)
{
    fields_key(f, key);
    fields_put(f, "null", 4);
}

const char *warren__fields_end(struct warren_fields *f)
{
    fields_put(f, "}", 1);
    if (f->overflow)
        return NULL;
    f->buf[f->len] = '\0';
    return f->buf;
}

/* The active capture of this thread (job_capture.h), or NULL. Thread-local
 * so tests running jobs on several threads keep their lines apart. */
static _Thread_local struct warren__log_capture *capture;

void warren__job_capture_begin(struct warren__log_capture *c)
{
    memset(c, 0, sizeof *c);
    c->prev = capture;
    capture = c;
}

char *warren__job_capture_end(struct warren__log_capture *c)
{
    capture = c->prev;
    if (c->failed) {
        warren__jbuf_free(&c->buf);
        return NULL;
    }
    return c->buf.data ? c->buf.data : strdup("");
}

/* Appends "LEVEL: message\n". Unlike the logger's lines, no length cap. */
static void capture_add(struct warren__log_capture *c, warren_log_level level, const char *fmt,
                        va_list ap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    const char *name = (unsigned)level <= WARREN_LOG_ERROR ? names[level] : "error";
    if (c->failed)
        return;
    va_list measure;
    va_copy(measure, ap);
    int n = vsnprintf(NULL, 0, fmt, measure);
    va_end(measure);
    /* name, ": ", the message and '\n' (the buffer keeps room for the NUL) */
    struct warren__jbuf *b = &c->buf;
    if (n < 0 || warren__jbuf_reserve(b, strlen(name) + 2 + (size_t)n + 1) != 0) {
        c->failed = 1;
        return;
    }
    b->len += (size_t)sprintf(b->data + b->len, "%s: ", name);
    b->len += (size_t)vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    b->data[b->len++] = '\n';
    b->data[b->len] = '\0';
}

void warren_job_log(const warren_job *job, warren_log_level level, const char *fmt, ...)
{
    if (capture) {
        va_list ap;
        va_start(ap, fmt);
        capture_add(capture, level, fmt, ap);
        va_end(ap);
    }
    if (!warren_log_enabled(level))
        return;
    char msgid[160];
    snprintf(msgid, sizeof msgid, "%s.log", job->module ? job->module : "handler");
    struct warren_fields f;
    warren__fields_begin(&f);
    const char *fields = NULL;
    if (warren__fields_str(&f, "id", job->id) == 0 &&
        warren__fields_str(&f, "worker", job->worker) == 0)
        fields = warren__fields_end(&f);
    va_list ap;
    va_start(ap, fmt);
    warren_log_vwrite(level, msgid, fields, fmt, ap);
    va_end(ap);
}

/* Cuts a truncated text back to the last whole UTF-8 character, so the
 * error stays valid UTF-8 in headers and JSON events. */
static void utf8_trim(char *s, size_t len)
{
    size_t end = len;
    size_t back = 0;
    while (end > 0 && back < 4 && ((unsigned char)s[end - 1] & 0xC0) == 0x80) {
        end--;
        back++;
    }
    if (end == 0)
        return;
    unsigned char lead = (unsigned char)s[end - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need != back + 1 && lead >= 0xC0)
        s[end - 1] = '\0';
}

static void set_error(struct warren_job *job, const char *fmt, va_list ap)
{
    if (!fmt) {
        job->error[0] = '\0';
        return;
    }
    /* Through a copy: the arguments may include the job's own error text. */
    char text[sizeof job->error];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n >= (int)sizeof text)
        utf8_trim(text, sizeof text - 1);
    memcpy(job->error, text, sizeof text);
}

warren_outcome warren_job_retry(warren_job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(job, fmt, ap);
    va_end(ap);
    return WARREN_JOB_RETRY;
}

warren_outcome warren_job_fail(warren_job *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(job, fmt, ap);
    va_end(ap);
    return WARREN_JOB_FAIL;
}

void warren_job_progress(warren_job *job, long long done, long long total)
{
    job->progress_done = done;
    job->progress_total = total;
    job->progress_seq++;
}

warren_outcome warren_job_snooze(warren_job *job, long long delay_ms)
{
    job->snooze_ms = delay_ms < 0 ? 0 : delay_ms;
    return WARREN_JOB_SNOOZE;
}

const char *warren_job_error(const warren_job *job)
{
    return job->error;
}
