/* send_email's message text and address parsing: everything about RFC
 * 5322 that the handler needs, kept apart so send_email.c reads as the
 * handler it is. Nothing here touches the job or the network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "message.h"

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

char *message_build(const struct message *m)
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
int message_address(const char *mailbox, size_t len, char *out)
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
int message_recipients(const char *to, char (*out)[ADDR_MAX + 1], int max, char *why,
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
            if (message_address(start, len, out[n]) != 0) {
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
