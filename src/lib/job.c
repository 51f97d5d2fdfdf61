/* Decoding a delivery into a job.
 *
 * DESIGN: warren__job_decode() applies the spec's rules in a fixed order,
 * and each limit is checked before the work it guards, so hostile input
 * costs at most one linear pass over bytes the broker already holds in
 * memory:
 *
 *   1. body size against max_message_bytes (nothing is parsed before);
 *   2. the header table: at most 64 entries per table or array, values of
 *      at most 4 KiB, at most 8 levels of nested tables/arrays, at most
 *      HEADER_MAX_VALUES values in all (a walk that allocates nothing);
 *   3. the worker name: the `type` property, else the routing key when the
 *      message was published to the jobs exchange;
 *   4. message_id, or a fresh UUID v4 (warren_uuid) when there is none;
 *   5. x-warren-attempt and x-warren-max-attempts (x-warren-replay, an
 *      extension only `warren dead replay` sets, is read leniently and
 *      never rejects a job);
 *   6. the body: nesting depth (pre-scanned on the raw bytes, so a
 *      megabyte of '[' never reaches a parser), UTF-8 and JSON in one
 *      pass (json_fast.h, else jansson's), an object.
 *
 * The worker name and id are worked out before the size and header checks
 * (without failing there), so that a rejected job still names them on the
 * dead letter's log line; the first rule that fails decides the reason.
 *
 * Headers as JSON (warren_job_headers, for handlers and observers) are
 * built from the checked table on first use, not for every job: most
 * handlers never look. Strings that are valid UTF-8 become JSON strings;
 * byte arrays ('x'), and long strings that are not valid UTF-8, become
 * base64 strings (RFC 4648, padded); every integer
 * width becomes a JSON integer, except an unsigned 64-bit value above
 * LLONG_MAX, which becomes its decimal string; timestamps are integers
 * (Unix seconds); floats are reals, except NaN and the infinities, which
 * become "NaN", "Infinity" and "-Infinity"; decimals become exact decimal
 * strings ("12.50"); booleans are booleans, void is null, tables are
 * objects (the first of two equal keys wins, as in warren__table_find) and
 * arrays are arrays. A header name that is not UTF-8, or holds a NUL byte,
 * makes the message malformed. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <warren/producer.h>
#include "job.h"
#include "json_fast.h"

#define WORKER_NAME_MAX 128
#define MESSAGE_ID_MAX 255
#define HEADER_MAX_DEPTH 8
/* Per-table and per-array counts are capped at WARREN_MAX_HEADERS; this caps
 * the whole tree. A job delayed through all 28 delay levels carries an
 * x-death array of 28 tables (about 250 values), well below it. */
#define HEADER_MAX_VALUES 1024
#define EXCERPT_MAX 64

static const char *const reason_names[] = {
    [WARREN_DEAD_NONE] = "none",
    [WARREN_DEAD_MAX_ATTEMPTS] = "max_attempts",
    [WARREN_DEAD_PERMANENT_FAILURE] = "permanent_failure",
    [WARREN_DEAD_UNKNOWN_WORKER] = "unknown_worker",
    [WARREN_DEAD_MALFORMED] = "malformed",
    [WARREN_DEAD_TOO_LARGE] = "too_large",
    [WARREN_DEAD_BAD_SIGNATURE] = "bad_signature",
    [WARREN_DEAD_INVALID_ARGS] = "invalid_args",
    [WARREN_DEAD_CRASHED] = "crashed",
    [WARREN_DEAD_REJECTED_BY_BROKER] = "rejected_by_broker",
};

const char *warren__dead_reason_name(enum warren_dead_reason reason)
{
    if ((unsigned)reason >= sizeof reason_names / sizeof reason_names[0])
        return "unknown";
    return reason_names[reason];
}

/* ---- small helpers ------------------------------------------------------ */

static enum warren_dead_reason reject(char *why, size_t why_size,
                                      enum warren_dead_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum warren_dead_reason reject(char *why, size_t why_size,
                                      enum warren_dead_reason reason, const char *fmt, ...)
{
    if (why && why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return reason;
}

/* Copies untrusted bytes into an error message: at most EXCERPT_MAX of
 * them, with anything that is not printable ASCII (and quotes) as '?'. */
static const char *excerpt(char *dst, size_t size, const void *src, size_t len)
{
    const unsigned char *p = src;
    size_t n = 0;
    for (size_t i = 0; i < len && i < EXCERPT_MAX && n + 1 < size; i++) {
        unsigned char c = p[i];
        dst[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (len > EXCERPT_MAX && n + 4 < size) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    if (size > 0)
        dst[n] = '\0';
    return dst;
}

static int bytes_equal(const void *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && (blen == 0 || memcmp(a, b, blen) == 0);
}

const amqp_table_entry_t *warren__table_find(const amqp_table_t *t, const char *key)
{
    if (!t || !t->entries || !key)
        return NULL;
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if ((e->key.len == 0 || e->key.bytes) && bytes_equal(e->key.bytes, e->key.len, key))
            return e;
    }
    return NULL;
}

int warren__field_int(const amqp_field_value_t *v, long long *out)
{
    long long n;
    if (!v)
        return -1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: n = v->value.i8; break;
    case AMQP_FIELD_KIND_U8: n = v->value.u8; break;
    case AMQP_FIELD_KIND_I16: n = v->value.i16; break;
    case AMQP_FIELD_KIND_U16: n = v->value.u16; break;
    case AMQP_FIELD_KIND_I32: n = v->value.i32; break;
    case AMQP_FIELD_KIND_U32: n = v->value.u32; break;
    case AMQP_FIELD_KIND_I64: n = v->value.i64; break;
    case AMQP_FIELD_KIND_U64:
        if (v->value.u64 > (uint64_t)LLONG_MAX)
            return -1;
        n = (long long)v->value.u64;
        break;
    default:
        return -1;
    }
    if (out)
        *out = n;
    return 0;
}

/* Strict UTF-8 (RFC 3629): the second byte's range depends on the lead
 * byte, which is what rules out overlong forms (C0, C1, E0 80..9F,
 * F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF
 * (F4 90..BF, F5..FF): what jansson's utf8_check_first and
 * utf8_check_full accept. */
size_t warren__utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if ((size_t)(end - p) - 1 < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return need + 1;
}

int warren__utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s, *end;
    /* An empty AMQP field arrives as (NULL, 0): NULL + 0 is undefined in C. */
    if (len == 0)
        return 1;
    if (!p)
        return 0;
    end = p + len;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = warren__utf8_seq(p, end);
        if (!k)
            return 0;
        p += k;
    }
    return 1;
}

/* ---- worker name and id -------------------------------------------------- */

static int worker_name_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    if (len < 1 || len > WORKER_NAME_MAX || !p)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int message_id_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    if (len < 1 || len > MESSAGE_ID_MAX || !p)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return 0;
    return 1;
}

static int has(const amqp_basic_properties_t *props, amqp_flags_t flag)
{
    return props && (props->_flags & flag);
}

static enum warren_dead_reason find_worker(struct warren_job *job,
                                           const struct warren_delivery *d,
                                           const char *jobs_exchange, char *why,
                                           size_t why_size)
{
    const void *name;
    size_t len;
    const char *from;
    char shown[EXCERPT_MAX + 4];

    if (has(d->props, AMQP_BASIC_TYPE_FLAG)) {
        /* A retried copy comes back through the default exchange with the
         * type set, so the type always wins over the routing key. */
        name = d->props->type.bytes;
        len = d->props->type.len;
        from = "type property";
    } else if (jobs_exchange && (d->exchange_len == 0 || d->exchange) &&
               bytes_equal(d->exchange, d->exchange_len, jobs_exchange)) {
        name = d->routing_key;
        len = d->routing_key_len;
        from = "routing key";
        if (len == 0)
            return reject(why, why_size, WARREN_DEAD_MALFORMED,
                          "missing worker name (no type property and an empty routing key)");
    } else {
        return reject(why, why_size, WARREN_DEAD_MALFORMED,
                      "missing worker name (no type property, and not published to '%s')",
                      jobs_exchange ? jobs_exchange : "");
    }
    if (!worker_name_valid(name, len))
        return reject(why, why_size, WARREN_DEAD_MALFORMED,
                      "invalid worker name \"%s\" (%zu bytes, from the %s): must match "
                      "[A-Za-z0-9_.-]{1,128}",
                      excerpt(shown, sizeof shown, name, len), len, from);
    memcpy(job->worker, name, len);
    job->worker[len] = '\0';
    return WARREN_DEAD_NONE;
}

static enum warren_dead_reason find_id(struct warren_job *job, const struct warren_delivery *d,
                                       char *why, size_t why_size)
{
    char shown[EXCERPT_MAX + 4];
    if (!has(d->props, AMQP_BASIC_MESSAGE_ID_FLAG) || d->props->message_id.len == 0) {
        warren_uuid(job->id);
        job->id_assigned = 1;
        return WARREN_DEAD_NONE;
    }
    const amqp_bytes_t *id = &d->props->message_id;
    if (!message_id_valid(id->bytes, id->len))
        return reject(why, why_size, WARREN_DEAD_MALFORMED,
                      "invalid message_id \"%s\" (%zu bytes): must be 1 to %d bytes of "
                      "printable ASCII",
                      excerpt(shown, sizeof shown, id->bytes, id->len), id->len,
                      MESSAGE_ID_MAX);
    memcpy(job->id, id->bytes, id->len);
    job->id[id->len] = '\0';
    return WARREN_DEAD_NONE;
}

/* ---- headers to JSON ----------------------------------------------------- */

struct walk {
    size_t values;  /* values seen so far, against HEADER_MAX_VALUES */
    char name[EXCERPT_MAX + 4]; /* the top-level header being converted */
    char *why;
    size_t why_size;
    int failed;
};

static int walk_fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int walk_fail(struct walk *w, const char *fmt, ...)
{
    if (!w->failed && w->why && w->why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->why, w->why_size, fmt, ap);
        va_end(ap);
    }
    w->failed = 1;
    return -1;
}

/* Stores a value just built: 0, or -1 when it could not be (no memory). */
static int made(json_t *value, json_t **out)
{
    *out = value;
    return value ? 0 : -1;
}

static json_t *base64_string(const unsigned char *p, size_t len)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[(WARREN_MAX_HEADER_VALUE + 2) / 3 * 4 + 1];
    size_t n = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[n++] = digits[v >> 18];
        out[n++] = digits[(v >> 12) & 63];
        out[n++] = digits[(v >> 6) & 63];
        out[n++] = digits[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        out[n++] = digits[v >> 18];
        out[n++] = digits[(v >> 12) & 63];
        out[n++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
        out[n++] = '=';
    }
    return json_stringn_nocheck(out, n);
}

static json_t *unsigned_json(uint64_t u)
{
    char buf[24];
    if (u <= (uint64_t)LLONG_MAX)
        return json_integer((json_int_t)u);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
    return json_string(buf);
}

static json_t *real_json(double x)
{
    if (isnan(x))
        return json_string("NaN");
    if (isinf(x))
        return json_string(x > 0 ? "Infinity" : "-Infinity");
    return json_real(x);
}

/* An AMQP decimal is value * 10^-decimals, written out exactly. */
static json_t *decimal_json(const amqp_decimal_t *dec)
{
    char digits[16];
    char out[sizeof digits + 256 + 2];
    int nd = snprintf(digits, sizeof digits, "%u", (unsigned)dec->value);
    int places = dec->decimals;
    size_t n = 0;
    if (places == 0)
        return json_string(digits);
    if (nd <= places) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < places - nd; i++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += (size_t)nd;
    } else {
        memcpy(out, digits, (size_t)(nd - places));
        n = (size_t)(nd - places);
        out[n++] = '.';
        memcpy(out + n, digits + nd - places, (size_t)places);
        n += (size_t)places;
    }
    return json_stringn_nocheck(out, n);
}

/* The walkers below check a header value against the limits and, when
 * `out` is not NULL, also build its JSON into *out. They return 0, or -1
 * when a limit is broken (w->failed set, `why` says which) or, building,
 * when memory ran out (w->failed not set). Checking alone allocates
 * nothing, so a table that passed the check converts later without any
 * error but lack of memory. */
static int bytes_walk(const amqp_bytes_t *b, int as_text, struct walk *w, json_t **out)
{
    if (b->len > 0 && !b->bytes)
        return walk_fail(w, "header '%s' is corrupt", w->name);
    if (b->len > WARREN_MAX_HEADER_VALUE)
        return walk_fail(w, "header '%s' holds a value of %zu bytes; the limit is %d", w->name,
                         b->len, WARREN_MAX_HEADER_VALUE);
    if (!out)
        return 0;
    if (as_text && warren__utf8_valid(b->bytes, b->len))
        return made(json_stringn_nocheck(b->len ? (const char *)b->bytes : "", b->len), out);
    return made(base64_string(b->bytes, b->len), out);
}

/* A value that holds no other: a number, boolean, timestamp or void. */
static json_t *scalar_json(const amqp_field_value_t *v)
{
    long long n;
    if (warren__field_int(v, &n) == 0)
        return json_integer(n);
    switch (v->kind) {
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return unsigned_json(v->value.u64);
    case AMQP_FIELD_KIND_BOOLEAN: return json_boolean(v->value.boolean);
    case AMQP_FIELD_KIND_F32: return real_json(v->value.f32);
    case AMQP_FIELD_KIND_F64: return real_json(v->value.f64);
    case AMQP_FIELD_KIND_DECIMAL: return decimal_json(&v->value.decimal);
    default: return json_null();
    }
}

static int table_walk(const amqp_table_t *t, int depth, struct walk *w, json_t **out);
static int array_walk(const amqp_array_t *a, int depth, struct walk *w, json_t **out);

/* `depth` is the number of tables/arrays around v, counting the headers
 * table itself as 0. Recursion is bounded by HEADER_MAX_DEPTH. */
static int field_walk(const amqp_field_value_t *v, int depth, struct walk *w, json_t **out)
{
    if (++w->values > HEADER_MAX_VALUES)
        return walk_fail(w, "headers hold more than %d values in all", HEADER_MAX_VALUES);
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
    case AMQP_FIELD_KIND_U8:
    case AMQP_FIELD_KIND_I16:
    case AMQP_FIELD_KIND_U16:
    case AMQP_FIELD_KIND_I32:
    case AMQP_FIELD_KIND_U32:
    case AMQP_FIELD_KIND_I64:
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
    case AMQP_FIELD_KIND_BOOLEAN:
    case AMQP_FIELD_KIND_F32:
    case AMQP_FIELD_KIND_F64:
    case AMQP_FIELD_KIND_DECIMAL:
    case AMQP_FIELD_KIND_VOID:
        return out ? made(scalar_json(v), out) : 0;
    case AMQP_FIELD_KIND_UTF8: return bytes_walk(&v->value.bytes, 1, w, out);
    case AMQP_FIELD_KIND_BYTES: return bytes_walk(&v->value.bytes, 0, w, out);
    case AMQP_FIELD_KIND_TABLE:
    case AMQP_FIELD_KIND_ARRAY:
        if (depth + 1 > HEADER_MAX_DEPTH)
            return walk_fail(w, "header '%s' nests tables or arrays deeper than %d levels",
                             w->name, HEADER_MAX_DEPTH);
        if (v->kind == AMQP_FIELD_KIND_TABLE)
            return table_walk(&v->value.table, depth + 1, w, out);
        return array_walk(&v->value.array, depth + 1, w, out);
    default:
        return walk_fail(w, "header '%s' has an unknown field type 0x%02x", w->name,
                         (unsigned)v->kind);
    }
}

static int check_count(int count, const void *entries, int depth, struct walk *w)
{
    if (count < 0 || (count > 0 && !entries))
        return walk_fail(w, "header table is corrupt");
    if (count <= WARREN_MAX_HEADERS)
        return 0;
    if (depth == 0)
        return walk_fail(w, "%d headers exceed the limit of %d", count, WARREN_MAX_HEADERS);
    return walk_fail(w, "header '%s' holds a table or array of %d entries; the limit is %d",
                     w->name, count, WARREN_MAX_HEADERS);
}

static int table_walk(const amqp_table_t *t, int depth, struct walk *w, json_t **out)
{
    if (check_count(t->num_entries, t->entries, depth, w) != 0)
        return -1;
    json_t *obj = NULL;
    if (out && !(obj = json_object()))
        return -1;
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        const char *key = e->key.len ? e->key.bytes : "";
        if (depth == 0)
            excerpt(w->name, sizeof w->name, key, e->key.len);
        if ((e->key.len > 0 && !e->key.bytes) || !warren__utf8_valid(key, e->key.len) ||
            memchr(key, '\0', e->key.len)) {
            char shown[EXCERPT_MAX + 4];
            json_decref(obj);
            return walk_fail(w, "header name '%s' is not valid UTF-8 text",
                             excerpt(shown, sizeof shown, key, e->key.len));
        }
        json_t *value = NULL;
        if (field_walk(&e->value, depth, w, out ? &value : NULL) != 0) {
            json_decref(obj);
            return -1;
        }
        if (!out)
            continue;
        if (json_object_getn(obj, key, e->key.len)) {
            json_decref(value); /* a repeated name: the first one wins */
            continue;
        }
        /* setn_new steals the value, on failure too. */
        if (json_object_setn_new_nocheck(obj, key, e->key.len, value) != 0) {
            json_decref(obj);
            return -1;
        }
    }
    if (out)
        *out = obj;
    return 0;
}

static int array_walk(const amqp_array_t *a, int depth, struct walk *w, json_t **out)
{
    if (check_count(a->num_entries, a->entries, depth, w) != 0)
        return -1;
    json_t *arr = NULL;
    if (out && !(arr = json_array()))
        return -1;
    for (int i = 0; i < a->num_entries; i++) {
        json_t *value = NULL;
        if (field_walk(&a->entries[i], depth, w, out ? &value : NULL) != 0 ||
            (out && json_array_append_new(arr, value) != 0)) {
            json_decref(arr);
            return -1;
        }
    }
    if (out)
        *out = arr;
    return 0;
}

json_t *warren__job_headers_json(const amqp_table_t *headers)
{
    if (!headers)
        return json_object();
    struct walk w = {0, "", NULL, 0, 0};
    json_t *obj = NULL;
    return table_walk(headers, 0, &w, &obj) == 0 ? obj : NULL;
}

/* Checks the header table against the limits; its JSON is built only
 * when someone asks (warren_job_headers). */
static enum warren_dead_reason decode_headers(struct warren_job *job,
                                              const struct warren_delivery *d, char *why,
                                              size_t why_size)
{
    struct walk w = {0, "", why, why_size, 0};
    if (!has(d->props, AMQP_BASIC_HEADERS_FLAG))
        return WARREN_DEAD_NONE;
    if (table_walk(&d->props->headers, 0, &w, NULL) != 0)
        return WARREN_DEAD_MALFORMED;
    job->header_src = &d->props->headers;
    return WARREN_DEAD_NONE;
}

/* ---- attempt counters ----------------------------------------------------- */

/* Reads an optional integer header into *out (left alone when absent). */
static enum warren_dead_reason int_header(const struct warren_delivery *d, const char *name,
                                          long long min, int *out, char *why, size_t why_size)
{
    const amqp_table_entry_t *e = NULL;
    long long n;
    if (has(d->props, AMQP_BASIC_HEADERS_FLAG))
        e = warren__table_find(&d->props->headers, name);
    if (!e)
        return WARREN_DEAD_NONE;
    if (warren__field_int(&e->value, &n) != 0 || n < min)
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "%s must be an integer >= %lld",
                      name, min);
    if (n > INT_MAX)
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "%s is out of range (%lld > %d)",
                      name, n, INT_MAX);
    *out = (int)n;
    return WARREN_DEAD_NONE;
}

/* x-warren-replay only orders a job's history (a replay's run supersedes
 * the one that went dead), so a value that does not make sense must not
 * cost the job: anything but a non-negative integer reads as 0, and a
 * huge one as WARREN_MAX_REPLAY, which keeps the history's ranking key
 * (history_sqlite.c) from overflowing. */
int warren__job_replay(const amqp_basic_properties_t *props)
{
    const amqp_table_entry_t *e = NULL;
    long long n;
    if (has(props, AMQP_BASIC_HEADERS_FLAG))
        e = warren__table_find(&props->headers, "x-warren-replay");
    if (!e || warren__field_int(&e->value, &n) != 0 || n < 0)
        return 0;
    return n > WARREN_MAX_REPLAY ? WARREN_MAX_REPLAY : (int)n;
}

/* ---- body ------------------------------------------------------------------ */

/* Deepest nesting of [ and { outside strings, stopping once past `limit`.
 * For valid JSON this is the real depth; for invalid JSON it may be off,
 * and the parser then reports the real error anyway. A string ends at the
 * first quote not escaped, i.e. not preceded by an odd run of backslashes
 * (memchr finds the candidates, so string bytes cost next to nothing). */
static int scan_depth(const unsigned char *p, size_t len, int limit)
{
    const unsigned char *end = p + len;
    int depth = 0, deepest = 0;
    while (p < end) {
        unsigned char c = *p++;
        if (c == '"') {
            for (;;) {
                const unsigned char *q = memchr(p, '"', (size_t)(end - p));
                if (!q)
                    return deepest;
                size_t slashes = 0;
                while (q - slashes > p && q[-1 - (ptrdiff_t)slashes] == '\\')
                    slashes++;
                p = q + 1;
                if (slashes % 2 == 0)
                    break;
            }
        } else if (c == '[' || c == '{') {
            depth++;
            if (depth > deepest)
                deepest = depth;
            if (deepest > limit)
                break;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

static enum warren_dead_reason decode_body(struct warren_job *job,
                                           const struct warren_delivery *d, char *why,
                                           size_t why_size)
{
    json_error_t error;
    if (d->body_len == 0 || !d->body)
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "body is empty");
    int too_deep = scan_depth(d->body, d->body_len, WARREN_MAX_NESTING) > WARREN_MAX_NESTING;
    /* The fast path (json_fast.h) parses what it is sure of exactly as
     * jansson would; anything else goes to jansson, which words the
     * error. JSON_DECODE_ANY only so that "42" or "null" gets the plain
     * message below rather than jansson's "'[' or '{' expected". Both
     * check every string byte for strict UTF-8 (no overlongs, surrogates
     * or code points above U+10FFFF), accept no other byte above 0x7f and
     * read to the end, so a body either accepts is valid UTF-8: the
     * separate pass runs only on failure, to give the message the rules
     * give. */
    json_t *body = NULL;
    if (!too_deep)
        body = warren__json_fast_object(d->body, d->body_len, WARREN_MAX_NESTING);
    if (!body && !too_deep)
        body = json_loadb(d->body, d->body_len, JSON_DECODE_ANY, &error);
    if (!body && !warren__utf8_valid(d->body, d->body_len))
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "body is not valid UTF-8");
    if (too_deep)
        return reject(why, why_size, WARREN_DEAD_MALFORMED,
                      "body nests arrays or objects deeper than %d levels", WARREN_MAX_NESTING);
    if (!body)
        return reject(why, why_size, WARREN_DEAD_MALFORMED,
                      "body is not valid JSON: %s (line %d, column %d, byte %d)", error.text,
                      error.line, error.column, error.position);
    if (!json_is_object(body)) {
        json_decref(body);
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "body is not a JSON object");
    }
    job->args = body;
    return WARREN_DEAD_NONE;
}

/* ---- decode ----------------------------------------------------------------- */

static enum warren_dead_reason decode_rules(struct warren_job *job,
                                            const struct warren_delivery *d,
                                            const char *jobs_exchange, size_t max_body_bytes,
                                            char *why, size_t why_size)
{
    char who[WARREN_ERROR_TEXT_MAX];
    enum warren_dead_reason r;

    /* Worker and id first, for the log line of any rejection; their own
     * errors come after the size and header checks, as the rules say. */
    r = find_worker(job, d, jobs_exchange, who, sizeof who);
    enum warren_dead_reason r_id =
        find_id(job, d, r ? NULL : who, r ? 0 : sizeof who);
    if (r == WARREN_DEAD_NONE)
        r = r_id;

    if (d->body_len > max_body_bytes)
        return reject(why, why_size, WARREN_DEAD_TOO_LARGE,
                      "body of %zu bytes exceeds max_message_bytes %zu", d->body_len,
                      max_body_bytes);
    if (decode_headers(job, d, why, why_size) != WARREN_DEAD_NONE)
        return WARREN_DEAD_MALFORMED;
    /* Before any later rejection, so that its `dead` event is ranked with
     * the replay it belongs to. */
    job->replay = warren__job_replay(d->props);
    if (r != WARREN_DEAD_NONE)
        return reject(why, why_size, r, "%s", who);

    if (has(d->props, AMQP_BASIC_PRIORITY_FLAG))
        job->priority = d->props->priority;
    if ((r = int_header(d, "x-warren-attempt", 1, &job->attempt, why, why_size)) ||
        (r = int_header(d, "x-warren-max-attempts", 0, &job->max_attempts, why, why_size)))
        return r;
    return decode_body(job, d, why, why_size);
}

enum warren_dead_reason warren__job_decode(struct warren_job *job,
                                           const struct warren_delivery *d,
                                           const char *jobs_exchange, size_t max_body_bytes,
                                           char *why, size_t why_size)
{
    if (why && why_size > 0)
        why[0] = '\0';
    if (!job)
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "no job to decode into");
    memset(job, 0, sizeof *job);
    job->attempt = 1;
    if (!d)
        return reject(why, why_size, WARREN_DEAD_MALFORMED, "no delivery");

    enum warren_dead_reason r = decode_rules(job, d, jobs_exchange, max_body_bytes, why,
                                             why_size);
    if (r != WARREN_DEAD_NONE) {
        /* Nothing is held on a rejection; worker and id stay for the log. */
        json_decref(job->args);
        job->args = NULL;
        job->header_src = NULL;
    }
    return r;
}

void warren__job_clear(struct warren_job *job)
{
    if (!job)
        return;
    json_decref(job->args);
    json_decref(job->headers);
    memset(job, 0, sizeof *job);
}
