/* The letters of a dead-letter queue as `warren dead` shows them (see
 * dead_letter.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dead_letter.h"
#include "job.h"

#define TABLE_ERROR_MAX 60 /* bytes of the error shown in a table row */

int dead_reason_known(const char *name)
{
    for (int r = WARREN_DEAD_NONE + 1;; r++) {
        const char *known = warren__dead_reason_name((enum warren_dead_reason)r);
        if (!strcmp(known, "unknown"))
            return 0;
        if (!strcmp(known, name))
            return 1;
    }
}

/* ---- reading a letter --------------------------------------------------- */

static const amqp_table_entry_t *header(const amqp_basic_properties_t *p, const char *key)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    return warren__table_find(&p->headers, key);
}

/* New text of the bytes. A NUL byte becomes '?', so a name with one
 * inside never passes for the name before it. */
static char *bytes_text(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        return NULL;
    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    for (size_t i = 0; i < b.len; i++)
        if (!s[i])
            s[i] = '?';
    return s;
}

/* A string header as new text ("" when absent or not a string). */
static char *header_text(const amqp_basic_properties_t *p, const char *key)
{
    const amqp_table_entry_t *e = header(p, key);
    if (!e || (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES))
        return strdup("");
    return bytes_text(e->value.value.bytes);
}

static int two_digits(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

/* "2026-05-01T02:00:00.123Z" (fraction optional, or an offset such as
 * +02:00 instead of Z) as Unix milliseconds; -1 when unreadable. */
long long dead_parse_rfc3339_ms(const char *s)
{
    struct tm tm;
    int cent, yy, offset_min = 0, h, m;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) < 20 || two_digits(s, &cent) || two_digits(s + 2, &yy) || s[4] != '-' ||
        two_digits(s + 5, &tm.tm_mon) || s[7] != '-' || two_digits(s + 8, &tm.tm_mday) ||
        !strchr("Tt ", s[10]) || two_digits(s + 11, &tm.tm_hour) || s[13] != ':' ||
        two_digits(s + 14, &tm.tm_min) || s[16] != ':' || two_digits(s + 17, &tm.tm_sec))
        return -1;
    tm.tm_year = cent * 100 + yy - 1900;
    tm.tm_mon -= 1;
    const char *p = s + 19;
    long long ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (!digits)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if ((*p == '+' || *p == '-') && !two_digits(p + 1, &h) && p[3] == ':' &&
        !two_digits(p + 4, &m) && !p[6])
        offset_min = (*p == '-' ? -1 : 1) * (h * 60 + m);
    else if (!((*p == 'Z' || *p == 'z') && !p[1]))
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return ((long long)t - offset_min * 60LL) * 1000 + ms;
}

static int worker_name_ok(const char *w)
{
    size_t n = strlen(w);
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    return n >= 1 && n <= 128 && strspn(w, allowed) == n;
}

/* The worker: the type property, else the original routing key when the
 * job was first published to the jobs exchange (as the host decides). */
static char *letter_worker(const amqp_basic_properties_t *p, const char *jobs_exchange)
{
    if (p->_flags & AMQP_BASIC_TYPE_FLAG)
        return bytes_text(p->type);
    char *ex = header_text(p, "x-warren-original-exchange");
    int from_jobs = ex && !strcmp(ex, jobs_exchange);
    free(ex);
    return from_jobs ? header_text(p, "x-warren-original-routing-key") : strdup("");
}

void dead_letter_free(struct dead_letter *l)
{
    free(l->id);
    free(l->worker);
    free(l->reason);
    free(l->error);
    free(l->failed_at);
    free(l->queue);
    free(l->host);
    memset(l, 0, sizeof *l);
}

int dead_letter_read(struct dead_letter *l, const amqp_basic_properties_t *p,
                     const char *jobs_exchange)
{
    memset(l, 0, sizeof *l);
    l->id = (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? bytes_text(p->message_id) : strdup("");
    l->worker = letter_worker(p, jobs_exchange);
    l->reason = header_text(p, "x-warren-dead-reason");
    l->error = header_text(p, "x-warren-error");
    l->failed_at = header_text(p, "x-warren-failed-at");
    l->queue = header_text(p, "x-warren-queue");
    l->host = header_text(p, "x-warren-host");
    const amqp_table_entry_t *e = header(p, "x-warren-attempts");
    if (!e || warren__field_int(&e->value, &l->attempts) != 0)
        l->attempts = 0;
    l->replay = warren__job_replay(p);
    if (!l->id || !l->worker || !l->reason || !l->error || !l->failed_at || !l->queue || !l->host) {
        dead_letter_free(l);
        return -1;
    }
    l->failed_ms = dead_parse_rfc3339_ms(l->failed_at);
    l->worker_ok = worker_name_ok(l->worker);
    return 0;
}

long long dead_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether a letter's raw text is `shown`, the text as a group showed it
 * (JSON, where invalid UTF-8 became U+FFFD). */
static int same_as_shown(const char *raw, const char *shown)
{
    if (!strcmp(raw, shown))
        return 1;
    if (warren__utf8_valid(raw, strlen(raw)))
        return 0;
    json_t *t = dead_json_text(raw);
    int same = json_is_string(t) && !strcmp(json_string_value(t), shown);
    json_decref(t);
    return same;
}

int dead_filter_match(const struct dead_filter *f, const struct dead_letter *l, long long now_ms)
{
    if (f->worker && !(f->exact ? same_as_shown(l->worker, f->worker) : !strcmp(l->worker, f->worker)))
        return 0;
    if (f->reason && strcmp(l->reason, f->reason) != 0)
        return 0;
    if (f->error && !(f->exact ? same_as_shown(l->error, f->error) : !!strstr(l->error, f->error)))
        return 0;
    /* A letter without a readable time is older than any --since. */
    if (f->since_text && (l->failed_ms < 0 || l->failed_ms < now_ms - f->since_ms))
        return 0;
    return 1;
}

int dead_filter_active(const struct dead_filter *f)
{
    return f->worker || f->reason || f->error || f->since_text;
}

/* ---- output ------------------------------------------------------------- */

/* A JSON string of any bytes: invalid UTF-8 becomes U+FFFD. */
static json_t *json_text_n(const char *s, size_t len)
{
    if (warren__utf8_valid(s, len))
        return json_stringn(s, len);
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (k && i + k <= len && warren__utf8_valid(s + i, k)) {
            memcpy(out + n, s + i, k);
            n += k;
            i += k;
        } else {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
        }
    }
    json_t *j = json_stringn(out, n);
    free(out);
    return j;
}

json_t *dead_json_text(const char *s)
{
    return json_text_n(s, strlen(s));
}

static json_t *letter_json(const struct dead_letter *l, const amqp_message_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", dead_json_text(l->id));
    json_object_set_new(o, "worker", dead_json_text(l->worker));
    json_object_set_new(o, "reason", dead_json_text(l->reason));
    json_object_set_new(o, "error", dead_json_text(l->error));
    json_object_set_new(o, "attempts", json_integer(l->attempts));
    json_object_set_new(o, "failed_at", dead_json_text(l->failed_at));
    json_object_set_new(o, "queue", dead_json_text(l->queue));
    json_object_set_new(o, "host", dead_json_text(l->host));
    const char *body = m->body.bytes ? m->body.bytes : "";
    json_t *args = json_loadb(body, m->body.len, JSON_DECODE_ANY, NULL);
    json_object_set_new(o, "args", args ? args : json_text_n(body, m->body.len));
    return o;
}

/* Counts the letter in its (worker, reason, error) group. */
static void group_add(struct dead_output *out, const struct dead_letter *l)
{
    size_t len = strlen(l->worker) + strlen(l->reason) + strlen(l->error) + 3;
    char *key = malloc(len);
    if (!key)
        return;
    /* \x1f cannot occur in a worker name or a reason, so keys never collide. */
    snprintf(key, len, "%s\x1f%s\x1f%s", l->worker, l->reason, l->error);
    json_t *g = json_object_get(out->groups, key);
    if (g) {
        json_t *count = json_object_get(g, "count");
        json_integer_set(count, json_integer_value(count) + 1);
    } else {
        g = json_pack("{s:o, s:o, s:o, s:i}", "worker", dead_json_text(l->worker), "reason",
                      dead_json_text(l->reason), "error", dead_json_text(l->error), "count", 1);
        json_object_set_new_nocheck(out->groups, key, g);
    }
    free(key);
}

int dead_output_init(struct dead_output *out, int json, int group)
{
    out->json = json;
    out->group = group;
    out->rows = json_array();
    out->groups = json_object();
    out->n = 0;
    if (out->rows && out->groups)
        return 0;
    dead_output_free(out);
    return -1;
}

void dead_output_free(struct dead_output *out)
{
    json_decref(out->rows);
    json_decref(out->groups);
    out->rows = out->groups = NULL;
}

void dead_output_add(struct dead_output *out, const struct dead_letter *l, const amqp_message_t *m)
{
    if (out->group)
        group_add(out, l);
    else
        json_array_append_new(out->rows, letter_json(l, m));
    out->n++;
}

/* Printable table cell: control characters (C0, DEL, C1) become '?', so a
 * hostile error text cannot drive the terminal; at most `max` bytes, cut
 * on a character boundary. */
void dead_cell(char *buf, size_t size, const char *text, size_t max)
{
    size_t n = 0, len = text ? strlen(text) : 0;
    int cut = 0;
    for (size_t i = 0; i < len && n + 4 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (n >= max && (c & 0xc0) != 0x80) {
            cut = 1;
            break;
        }
        if (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] >= 0x80 &&
            (unsigned char)text[i + 1] <= 0x9f) {
            buf[n++] = '?';
            i++;
        } else {
            buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    if (cut && n + 4 <= size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_rows(json_t *rows)
{
    size_t i;
    json_t *r;
    if (json_array_size(rows))
        printf("%-36s %-24s %-18s %8s %-24s %s\n", "ID", "WORKER", "REASON", "ATTEMPTS",
               "FAILED_AT", "ERROR");
    json_array_foreach(rows, i, r) {
        char id[300], worker[300], reason[100], failed[100], error[TABLE_ERROR_MAX + 8];
        dead_cell(id, sizeof id, str_of(r, "id"), 255);
        dead_cell(worker, sizeof worker, str_of(r, "worker"), 128);
        dead_cell(reason, sizeof reason, str_of(r, "reason"), 64);
        dead_cell(failed, sizeof failed, str_of(r, "failed_at"), 40);
        dead_cell(error, sizeof error, str_of(r, "error"), TABLE_ERROR_MAX);
        printf("%-36s %-24s %-18s %8lld %-24s %s\n", id[0] ? id : "-", worker[0] ? worker : "-",
               reason[0] ? reason : "-",
               (long long)json_integer_value(json_object_get(r, "attempts")),
               failed[0] ? failed : "-", error);
    }
}

static int by_count_desc(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t cx = json_integer_value(json_object_get(x, "count"));
    json_int_t cy = json_integer_value(json_object_get(y, "count"));
    if (cx != cy)
        return cx > cy ? -1 : 1;
    int c = strcmp(str_of(x, "worker"), str_of(y, "worker"));
    if (!c)
        c = strcmp(str_of(x, "reason"), str_of(y, "reason"));
    return c ? c : strcmp(str_of(x, "error"), str_of(y, "error"));
}

json_t *dead_output_groups(const struct dead_output *out, long limit)
{
    json_t *groups = out->groups;
    size_t n = json_object_size(groups), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    json_t *arr = json_array();
    const char *key;
    json_t *g;
    if (!v)
        return arr;
    json_object_foreach(groups, key, g)
        v[k++] = g;
    qsort(v, n, sizeof *v, by_count_desc);
    for (size_t i = 0; i < n && (long)i < limit; i++)
        json_array_append(arr, v[i]);
    free(v);
    return arr;
}

static void print_groups(json_t *arr)
{
    size_t i;
    json_t *g;
    if (json_array_size(arr))
        printf("%8s %-24s %-18s %s\n", "COUNT", "WORKER", "REASON", "ERROR");
    json_array_foreach(arr, i, g) {
        char worker[300], reason[100], error[TABLE_ERROR_MAX + 8];
        dead_cell(worker, sizeof worker, str_of(g, "worker"), 128);
        dead_cell(reason, sizeof reason, str_of(g, "reason"), 64);
        dead_cell(error, sizeof error, str_of(g, "error"), TABLE_ERROR_MAX);
        printf("%8lld %-24s %-18s %s\n", (long long)json_integer_value(json_object_get(g, "count")),
               worker[0] ? worker : "-", reason[0] ? reason : "-", error);
    }
}

static void print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "[]");
    free(text);
}

void dead_output_print(const struct dead_output *out, long limit, const char *verb,
                       const char *queue, unsigned present)
{
    json_t *groups = out->group ? dead_output_groups(out, limit) : NULL;
    if (out->json)
        print_json(groups ? groups : out->rows);
    else if (groups)
        print_groups(groups);
    else
        print_rows(out->rows);
    if (!out->json && groups)
        printf("%zu letter(s) in %zu group(s) (%u in %s)\n", out->n, json_object_size(out->groups),
               present, queue);
    else if (!out->json && verb)
        printf("would %s %zu letter(s) of %u in %s\n", verb, out->n, present, queue);
    else if (!out->json)
        printf("listed %zu letter(s) of %u in %s\n", out->n, present, queue);
    json_decref(groups);
}
