/* The fast path for parsing a job's body (see json_fast.h). Every rule
 * below mirrors jansson 2.14's load.c; where this file is unsure it gives
 * up and jansson decides. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "job.h"
#include "json_fast.h"

#define NUMBER_TEXT_MAX 64
/* Digits of an integer that always fits a long long (json_int_t). */
#define SAFE_DIGITS 18

struct parser {
    const unsigned char *p, *end;
    int depth, max_depth;
    char *buf; /* strings with escapes, decoded */
    size_t buf_cap;
};

/* 1 for a byte that stands for itself in a string: 0x20..0x7f but the
 * quote and the backslash. Below 0x20 is a control character (refused),
 * above 0x7f the start of a UTF-8 sequence (checked). */
#define ONES 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char plain[256] = {
    [0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    ONES,                                                  /* 0x30 */
    ONES,                                                  /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,         /* 0x5c '\\' */
    ONES,                                                  /* 0x60 */
    ONES,                                                  /* 0x70 */
};
#undef ONES

static json_t *value_at(struct parser *ps);

/* Skips plain string bytes (json_fast.h), eight at a time while a whole word is plain:
 * no byte with its top bit set, none below 0x20 (x - 0x20 borrows), none
 * equal to '"' or '\\' (x ^ c is zero). Each test only says whether some
 * byte of the word matches; the byte loop then finds which. */
const unsigned char *warren__json_skip_plain(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, tops = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
        if ((w | ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash)) &
            tops)
            break;
        p += 8;
    }
    while (p < end && plain[*p])
        p++;
    return p;
}

static void skip_space(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *t, unsigned v)
{
    if (v < 0x80) {
        t[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        t[0] = (char)(0xc0 | v >> 6);
        t[1] = (char)(0x80 | (v & 0x3f));
        return 2;
    }
    if (v < 0x10000) {
        t[0] = (char)(0xe0 | v >> 12);
        t[1] = (char)(0x80 | ((v >> 6) & 0x3f));
        t[2] = (char)(0x80 | (v & 0x3f));
        return 3;
    }
    t[0] = (char)(0xf0 | v >> 18);
    t[1] = (char)(0x80 | ((v >> 12) & 0x3f));
    t[2] = (char)(0x80 | ((v >> 6) & 0x3f));
    t[3] = (char)(0x80 | (v & 0x3f));
    return 4;
}

/* Decodes a string with escapes, from `start` (after the opening quote;
 * `p` is its first backslash), into ps->buf. A decoded string is never
 * longer than its source (an escape of 2, 6 or 12 bytes gives 1 to 4), so
 * room for the rest of the input is enough. */
static int unescape(struct parser *ps, const unsigned char *start, const unsigned char *p,
                    const char **s, size_t *n)
{
    const unsigned char *end = ps->end;
    size_t room = (size_t)(end - start) + 1;
    if (room > ps->buf_cap) {
        char *grown = realloc(ps->buf, room);
        if (!grown)
            return -1;
        ps->buf = grown;
        ps->buf_cap = room;
    }
    char *t = ps->buf;
    memcpy(t, start, (size_t)(p - start));
    t += p - start;
    while (p < end) {
        unsigned char c = *p;
        if (plain[c]) {
            const unsigned char *run = warren__json_skip_plain(p, end);
            memcpy(t, p, (size_t)(run - p));
            t += run - p;
            p = run;
            continue;
        }
        if (c == '"') {
            *s = ps->buf;
            *n = (size_t)(t - ps->buf);
            ps->p = p + 1;
            return 0;
        }
        if (c >= 0x80) {
            size_t k = warren__utf8_seq(p, end);
            if (!k)
                return -1;
            memcpy(t, p, k);
            t += k;
            p += k;
            continue;
        }
        if (c != '\\' || end - p < 2)
            return -1; /* a control character, or the input ends */
        c = p[1];
        p += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/': *t++ = (char)c; break;
        case 'b': *t++ = '\b'; break;
        case 'f': *t++ = '\f'; break;
        case 'n': *t++ = '\n'; break;
        case 'r': *t++ = '\r'; break;
        case 't': *t++ = '\t'; break;
        case 'u': {
            unsigned v, v2;
            if (hex4(p, end, &v) != 0)
                return -1;
            p += 4;
            if (v >= 0xd800 && v <= 0xdbff) {
                /* a high surrogate needs a low one right after it */
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &v2) != 0 ||
                    v2 < 0xdc00 || v2 > 0xdfff)
                    return -1;
                p += 6;
                v = ((v - 0xd800) << 10) + (v2 - 0xdc00) + 0x10000;
            } else if ((v >= 0xdc00 && v <= 0xdfff) || v == 0) {
                return -1; /* a lone low surrogate; \u0000 needs JSON_ALLOW_NUL */
            }
            t += utf8_put(t, v);
            break;
        }
        default: return -1;
        }
    }
    return -1;
}

/* Reads the string whose opening quote is at ps->p. On success [*s, *n)
 * holds its bytes: in the input when it had no escapes, else in ps->buf
 * (until the next string with escapes). 0, or -1: ask jansson. */
static int string_at(struct parser *ps, const char **s, size_t *n)
{
    const unsigned char *start = ps->p + 1, *p = start, *end = ps->end;
    for (;;) {
        p = warren__json_skip_plain(p, end);
        if (p >= end)
            return -1;
        if (*p < 0x80)
            break;
        size_t k = warren__utf8_seq(p, end);
        if (!k)
            return -1;
        p += k;
    }
    if (*p == '"') {
        *s = (const char *)start;
        *n = (size_t)(p - start);
        ps->p = p + 1;
        return 0;
    }
    if (*p != '\\')
        return -1; /* a control character */
    return unescape(ps, start, p, s, n);
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, as jansson lexes it: an
 * integer without fraction or exponent (strtoll, refused when out of
 * range), else a real (strtod, refused on overflow). */
static json_t *number_at(struct parser *ps)
{
    const unsigned char *start = ps->p, *p = ps->p, *end = ps->end;
    int negative = 0, real = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return NULL;
    const unsigned char *digits = p;
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return NULL;
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    size_t n_digits = (size_t)(p - digits);
    if (p < end && *p == '.') {
        if (++p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    ps->p = p;
    if (!real && n_digits <= SAFE_DIGITS) {
        long long v = 0;
        for (const unsigned char *q = digits; q < p; q++)
            v = v * 10 + (*q - '0');
        return json_integer(negative ? -v : v);
    }
    char text[NUMBER_TEXT_MAX], *after;
    size_t len = (size_t)(p - start);
    if (len >= sizeof text)
        return NULL;
    memcpy(text, start, len);
    text[len] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(text, &after, 10);
        if (errno == ERANGE || after != text + len)
            return NULL;
        return json_integer(v);
    }
    /* jansson swaps '.' for the locale's decimal point first */
    const char *point = localeconv()->decimal_point;
    if (!point || point[0] != '.' || point[1] != '\0')
        return NULL;
    double d = strtod(text, &after);
    if (after != text + len || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
        return NULL;
    return json_real(d);
}

static json_t *literal_at(struct parser *ps, const char *word, size_t len, json_t *value)
{
    if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, word, len) != 0)
        return NULL;
    ps->p += len;
    return value;
}

static json_t *object_at(struct parser *ps)
{
    if (++ps->depth > ps->max_depth)
        return NULL;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    ps->p++; /* '{' */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        ps->depth--;
        return obj;
    }
    for (;;) {
        const char *key;
        size_t key_len;
        char *owned = NULL;
        if (ps->p >= ps->end || *ps->p != '"' || string_at(ps, &key, &key_len) != 0)
            goto fail;
        if (key == ps->buf) {
            /* decoded into the buffer the value's strings may reuse */
            if (!(owned = malloc(key_len + 1)))
                goto fail;
            memcpy(owned, key, key_len);
            key = owned;
        }
        skip_space(ps);
        json_t *value = NULL;
        if (ps->p < ps->end && *ps->p == ':') {
            ps->p++;
            value = value_at(ps);
        }
        /* setn_new steals the value, on failure too */
        int rc = value ? json_object_setn_new_nocheck(obj, key, key_len, value) : -1;
        free(owned);
        if (rc != 0)
            goto fail;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_space(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        goto fail;
    }
    ps->depth--;
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

static json_t *array_at(struct parser *ps)
{
    if (++ps->depth > ps->max_depth)
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    ps->p++; /* '[' */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        ps->depth--;
        return arr;
    }
    for (;;) {
        json_t *value = value_at(ps);
        if (!value || json_array_append_new(arr, value) != 0)
            goto fail;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        goto fail;
    }
    ps->depth--;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

static json_t *value_at(struct parser *ps)
{
    skip_space(ps);
    if (ps->p >= ps->end)
        return NULL;
    switch (*ps->p) {
    case '{': return object_at(ps);
    case '[': return array_at(ps);
    case '"': {
        const char *s;
        size_t n;
        return string_at(ps, &s, &n) == 0 ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't': return literal_at(ps, "true", 4, json_true());
    case 'f': return literal_at(ps, "false", 5, json_false());
    case 'n': return literal_at(ps, "null", 4, json_null());
    default: return number_at(ps);
    }
}

json_t *warren__json_fast_object(const void *buf, size_t len, int max_depth)
{
    if (!buf)
        return NULL;
    struct parser ps = {buf, (const unsigned char *)buf + len, 0, max_depth, NULL, 0};
    json_t *obj = NULL;
    skip_space(&ps);
    if (ps.p < ps.end && *ps.p == '{') {
        obj = object_at(&ps);
        skip_space(&ps);
        if (obj && ps.p != ps.end) {
            json_decref(obj);
            obj = NULL;
        }
    }
    free(ps.buf);
    return obj;
}
