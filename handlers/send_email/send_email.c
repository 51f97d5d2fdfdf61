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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>
#include "message.h"
#include "smtp.h"

#define DEFAULT_FROM "warren@localhost"
#define MAX_RCPTS 100

static struct {
    char *spool_dir;
    char *from;
    int use_smtp;
    struct smtp_server smtp;
    int timeout_ms;
} mail;

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
    if (message_address(m->from, strlen(m->from), from_addr) != 0)
        return warren_job_fail(job, "send_email: bad sender address '%.200s'", m->from);
    char why[300];
    if ((*n_rcpt = message_recipients(m->to, rcpt, MAX_RCPTS, why, sizeof why)) < 0)
        return warren_job_fail(job, "send_email: %s", why);
    const char *unsafe = mail.use_smtp ? NULL : unsafe_id(m->id);
    if (unsafe)
        return warren_job_fail(job, "send_email: job id '%.64s' %s: it names the spool file", m->id,
                               unsafe);
    return WARREN_JOB_OK;
}

/* The worker. Everything that can make the job fail permanently is checked
 * before a message is built or sent; running out of memory is transient,
 * since a later attempt may well have it. */
static warren_outcome send_email_run(warren_job *job, void *user)
{
    (void)user;
    /* The schema guarantees that to, subject and body are strings. */
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
