/* The send_email module: one worker, `send_email`, with args
 * {to, subject, body, from?}.
 *
 * Module config: `spool_dir` (where <job id>.eml files go), `smtp_url`
 * ("smtp://host:port": deliver over SMTP instead), `from` (default sender,
 * else "warren@localhost") and `smtp_timeout_ms` (default 30000). One of
 * spool_dir and smtp_url is needed.
 *
 * Outcomes: arguments that can never make a valid message (a line break in
 * a header, an id that is no safe file name, a 5xx reply) fail
 * permanently; anything that may pass later (a spool folder that cannot be
 * written, no connection, a 4xx reply) fails transiently and is retried.
 * A spooled file is written under a temporary name and renamed, so a
 * reader of the spool never sees half a message, and a retried job
 * replaces its own file instead of adding a second one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>
#include "smtp.h"

#define DEFAULT_FROM "warren@localhost"
#define MAX_RCPTS 100
#define ADDR_MAX 254

static struct {
    char *spool_dir;
    char *from;
    int use_smtp;
    struct smtp_server smtp;
    int timeout_ms;
} mail;

/* ---- a growable text buffer; a failed allocation sticks ---- */

struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- message text ---- */

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static void base64_add(struct buf *b, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char out[4] = {abc[(v >> 18) & 63], abc[(v >> 12) & 63],
                       i + 1 < n ? abc[(v >> 6) & 63] : '=', i + 2 < n ? abc[v & 63] : '='};
        buf_add(b, out, 4);
    }
}

/* A Subject with non-ASCII text becomes RFC 2047 encoded-words of at most
 * 45 bytes each (75 characters encoded), never splitting a character. */
static void subject_add(struct buf *b, const char *subject)
{
    buf_puts(b, "Subject: ");
    if (is_ascii(subject)) {
        buf_puts(b, subject);
        buf_puts(b, "\r\n");
        return;
    }
    size_t len = strlen(subject), at = 0;
    while (at < len) {
        size_t n = len - at > 45 ? 45 : len - at;
        while (at + n < len && ((unsigned char)subject[at + n] & 0xC0) == 0x80)
            n--;
        buf_puts(b, at ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
        base64_add(b, (const unsigned char *)subject + at, n);
        buf_puts(b, "?=");
        at += n;
    }
    buf_puts(b, "\r\n");
}

/* RFC 5322 date in UTC, with English names whatever the locale. */
static void date_add(struct buf *b)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char text[64];
    snprintf(text, sizeof text, "Date: %s, %02d %s %d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    buf_puts(b, text);
}

/* <id@domain>, with the id reduced to characters a msg-id allows. */
static void message_id_add(struct buf *b, const char *id, const char *from_addr)
{
    const char *at = strrchr(from_addr, '@');
    const char *domain = at && at[1] ? at + 1 : "localhost";
    buf_puts(b, "Message-ID: <");
    for (const char *p = id; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr("!#$%&'*+-/=?^_`{|}~.", c);
        buf_add(b, ok ? &c : "_", 1);
    }
    buf_puts(b, "@");
    buf_puts(b, domain);
    buf_puts(b, ">\r\n");
}

/* The body with every line ending made CRLF. */
static void body_add(struct buf *b, const char *body)
{
    for (const char *p = body; *p;) {
        size_t n = strcspn(p, "\r\n");
        buf_add(b, p, n);
        p += n;
        if (!*p)
            break;
        buf_puts(b, "\r\n");
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    buf_puts(b, "\r\n");
}

struct message {
    const char *id, *from, *from_addr, *to, *subject, *body;
};

static char *message_build(const struct message *m)
{
    struct buf b = {0};
    buf_puts(&b, "From: ");
    buf_puts(&b, m->from);
    buf_puts(&b, "\r\nTo: ");
    buf_puts(&b, m->to);
    buf_puts(&b, "\r\n");
    subject_add(&b, m->subject);
    date_add(&b);
    message_id_add(&b, m->id, m->from_addr);
    buf_puts(&b, "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n");
    body_add(&b, m->body);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- addresses ---- */

/* Copies the address of one mailbox ("Name <a@b>" or "a@b") into out. */
static int address_of(const char *mailbox, size_t len, char *out)
{
    const char *lt = memchr(mailbox, '<', len);
    const char *start = mailbox, *end = mailbox + len;
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt)
            return -1;
        start = lt + 1;
        end = gt;
    }
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - start);
    if (n == 0 || n > ADDR_MAX)
        return -1;
    for (const char *p = start; p < end; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == '"')
            return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

/* Splits a To field at commas outside quotes and angle brackets. Returns
 * the count, or -1 with the bad mailbox in why. */
static int recipients(const char *to, char (*out)[ADDR_MAX + 1], int max, char *why,
                      size_t why_size)
{
    int n = 0, quoted = 0, angle = 0;
    const char *start = to;
    for (const char *p = to;; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '<' && !quoted)
            angle = 1;
        else if (*p == '>' && !quoted)
            angle = 0;
        if (*p && (*p != ',' || quoted || angle))
            continue;
        size_t len = (size_t)(p - start);
        if (strspn(start, " \t") < len) { /* a mailbox, not blanks between commas */
            if (n == max) {
                snprintf(why, why_size, "more than %d recipients", max);
                return -1;
            }
            if (address_of(start, len, out[n]) != 0) {
                snprintf(why, why_size, "bad recipient address '%.*s'",
                         (int)(len > 200 ? 200 : len), start);
                return -1;
            }
            n++;
        }
        if (!*p)
            break;
        start = p + 1;
    }
    if (n == 0)
        snprintf(why, why_size, "no recipient address in 'to'");
    return n ? n : -1;
}

/* ---- delivery ---- */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp || !tmp[0]) {
        errno = tmp[0] ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes a rename durable: it lives in the folder's own data. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static warren_outcome spool_write(warren_job *job, const char *text)
{
    const char *id = warren_job_id(job);
    char tmp[PATH_MAX], final[PATH_MAX];
    if (mkdir_p(mail.spool_dir) != 0)
        return warren_job_retry(job, "send_email: cannot create spool_dir '%s': %s", mail.spool_dir,
                                strerror(errno));
    if (snprintf(final, sizeof final, "%s/%s.eml", mail.spool_dir, id) >= (int)sizeof final ||
        snprintf(tmp, sizeof tmp, "%s/.%s.eml.%ld.tmp", mail.spool_dir, id, (long)getpid()) >=
            (int)sizeof tmp)
        return warren_job_fail(job, "send_email: spool file path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return warren_job_retry(job, "send_email: cannot write in spool_dir '%s': %s",
                                mail.spool_dir, strerror(errno));
    int failed = write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    if (!failed && rename(tmp, final) != 0) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        unlink(tmp);
        return warren_job_retry(job, "send_email: writing '%s': %s", final, strerror(saved));
    }
    sync_dir(mail.spool_dir);
    warren_job_log(job, WARREN_LOG_INFO, "spooled %s", final);
    return WARREN_JOB_OK;
}

static warren_outcome smtp_deliver(warren_job *job, const char *from_addr, const char *const *rcpts,
                                   int n, const char *text)
{
    char why[600];
    enum smtp_result r =
        smtp_send(&mail.smtp, mail.timeout_ms, from_addr, rcpts, (size_t)n, text, why, sizeof why);
    if (r == SMTP_PERMANENT)
        return warren_job_fail(job, "send_email: %s", why);
    if (r == SMTP_TRANSIENT)
        return warren_job_retry(job, "send_email: %s", why);
    warren_job_log(job, WARREN_LOG_INFO, "sent to %d recipient(s) via %s:%s", n, mail.smtp.host,
                   mail.smtp.port);
    return WARREN_JOB_OK;
}

/* An id names a file in the spool: it must stay a plain name in it. */
static const char *unsafe_id(const char *id)
{
    if (!id[0])
        return "is empty";
    if (id[0] == '.')
        return "starts with '.'";
    if (strchr(id, '/'))
        return "contains '/'";
    if (strlen(id) > NAME_MAX - 32)
        return "is too long for a file name";
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "contains a control character";
    return NULL;
}

static const char *header_with_break(const char *const fields[], const char *const names[])
{
    for (int i = 0; fields[i]; i++)
        if (strpbrk(fields[i], "\r\n"))
            return names[i];
    return NULL;
}

/* Checks what can be checked before building anything; fills
 * from_addr and the recipient list. */
static warren_outcome check_message(warren_job *job, const struct message *m, char *from_addr,
                                    char (*rcpt)[ADDR_MAX + 1], int *n_rcpt)
{
    const char *fields[] = {m->to, m->subject, m->from, NULL};
    const char *names[] = {"to", "subject", "from"};
    const char *bad = header_with_break(fields, names);
    if (bad)
        return warren_job_fail(job, "send_email: '%s' contains a line break", bad);
    if (address_of(m->from, strlen(m->from), from_addr) != 0)
        return warren_job_fail(job, "send_email: bad sender address '%.200s'", m->from);
    char why[300];
    if ((*n_rcpt = recipients(m->to, rcpt, MAX_RCPTS, why, sizeof why)) < 0)
        return warren_job_fail(job, "send_email: %s", why);
    const char *unsafe = mail.use_smtp ? NULL : unsafe_id(m->id);
    if (unsafe)
        return warren_job_fail(job, "send_email: job id '%.64s' %s: it names the spool file", m->id,
                               unsafe);
    return WARREN_JOB_OK;
}

static warren_outcome send_email_run(warren_job *job, void *user)
{
    (void)user;
    json_t *args = warren_job_args(job);
    struct message m = {.id = warren_job_id(job)};
    m.to = json_string_value(json_object_get(args, "to"));
    m.subject = json_string_value(json_object_get(args, "subject"));
    m.body = json_string_value(json_object_get(args, "body"));
    m.from = json_string_value(json_object_get(args, "from"));
    if (!m.from)
        m.from = mail.from ? mail.from : DEFAULT_FROM;

    char from_addr[ADDR_MAX + 1];
    char(*rcpt)[ADDR_MAX + 1] = malloc(MAX_RCPTS * sizeof *rcpt);
    const char **list = malloc(MAX_RCPTS * sizeof *list);
    char *text = NULL;
    int n = 0;
    warren_outcome out = WARREN_JOB_OK;
    if (!rcpt || !list)
        out = warren_job_retry(job, "send_email: out of memory");
    if (out == WARREN_JOB_OK)
        out = check_message(job, &m, from_addr, rcpt, &n);
    m.from_addr = from_addr;
    if (out == WARREN_JOB_OK && !(text = message_build(&m)))
        out = warren_job_retry(job, "send_email: out of memory");
    for (int i = 0; out == WARREN_JOB_OK && i < n; i++)
        list[i] = rcpt[i];
    if (out == WARREN_JOB_OK)
        out = mail.use_smtp ? smtp_deliver(job, from_addr, list, n, text) : spool_write(job, text);
    free(text);
    free(rcpt);
    free(list);
    return out;
}

/* ---- module ---- */

static const char *const keys[] = {"to", "subject", "body", "from", NULL};

static const warren_worker_def worker = {
    .name = "send_email",
    .handler = send_email_run,
    .schema = "{s:s, s:s, s:s, s?:s}",
    .schema_keys = keys,
};

static void send_email_fini(void)
{
    free(mail.spool_dir);
    free(mail.from);
    memset(&mail, 0, sizeof mail);
}

/* Copies an optional string setting; -1 when present but not a string. */
static int string_setting(const json_t *config, const char *key, char **out)
{
    json_t *v = json_object_get(config, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return -1;
    *out = strdup(json_string_value(v));
    return *out ? 0 : -1;
}

static warren_status send_email_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    send_email_fini();
    char *url = NULL;
    char why[300];
    warren_status st = WARREN_OK;
    json_t *timeout = json_object_get(config, "smtp_timeout_ms");
    if (string_setting(config, "spool_dir", &mail.spool_dir) != 0 ||
        string_setting(config, "from", &mail.from) != 0 ||
        string_setting(config, "smtp_url", &url) != 0)
        st = warren_error_set(err, WARREN_ECONFIG,
                              "send_email: spool_dir, smtp_url and from "
                              "must be non-empty strings");
    else if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 1 ||
                         json_integer_value(timeout) > 600000))
        st = warren_error_set(err, WARREN_ECONFIG,
                              "send_email: smtp_timeout_ms must be an integer in 1..600000");
    else if (!url && !mail.spool_dir)
        st = warren_error_set(err, WARREN_ECONFIG,
                              "send_email: set spool_dir (write .eml files) or smtp_url");
    else if (url && smtp_parse_url(url, &mail.smtp, why, sizeof why) != 0)
        st = warren_error_set(err, WARREN_ECONFIG, "send_email: %s", why);
    mail.use_smtp = url != NULL;
    mail.timeout_ms = timeout ? (int)json_integer_value(timeout) : 30000;
    free(url);
    if (st == WARREN_OK)
        st = warren_registry_add(reg, &worker, err);
    if (st != WARREN_OK)
        send_email_fini();
    return st;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1,
    .name = "send_email",
    .init = send_email_init,
    .fini = send_email_fini,
};
