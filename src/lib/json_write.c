/* The fast path for writing compact JSON (see json_write.h). The rules
 * below are jansson 2.14's dump.c as observed from outside; where this
 * file would have to guess (reals) it declines and jansson writes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "job.h"
#include "json_fast.h"
#include "json_write.h"

void warren__jbuf_free(struct warren__jbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int warren__jbuf_reserve(struct warren__jbuf *b, size_t more)
{
    if (b->len + more < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + more)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static int put(struct warren__jbuf *b, const void *s, size_t n)
{
    if (warren__jbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int put_char(struct warren__jbuf *b, char c)
{
    return put(b, &c, 1);
}

static const char hex[] = "0123456789ABCDEF";

char *warren__json_int_text(char *end, long long v)
{
    char *p = end;
    /* via unsigned, so the most negative value has a magnitude too */
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

size_t warren__json_escape(unsigned char c, char out[6])
{
    static const char short_form[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
                                        ['\t'] = 't'};
    out[0] = '\\';
    if (c == '"' || c == '\\') {
        out[1] = (char)c;
        return 2;
    }
    if (c < 0x20 && short_form[c]) {
        out[1] = short_form[c];
        return 2;
    }
    memcpy(out + 1, "u00", 3);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

static int put_int(struct warren__jbuf *b, json_int_t v)
{
    char digits[24], *end = digits + sizeof digits;
    char *p = warren__json_int_text(end, v);
    return put(b, p, (size_t)(end - p));
}

/* \uXXXX with upper-case hex, as jansson writes it. */
static int put_u16(struct warren__jbuf *b, unsigned cp)
{
    char e[6] = {'\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                 hex[cp & 15]};
    return put(b, e, sizeof e);
}

static int put_escape(struct warren__jbuf *b, unsigned char c)
{
    char e[6];
    return put(b, e, warren__json_escape(c, e));
}

/* The code point of a valid UTF-8 sequence of k bytes. */
static unsigned decode(const unsigned char *p, size_t k)
{
    unsigned cp = p[0] & (k == 2 ? 0x1f : k == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < k; i++)
        cp = (cp << 6) | (p[i] & 0x3f);
    return cp;
}

/* A multi-byte sequence at p: copied, or (ensure_ascii) written as one
 * \u escape or a surrogate pair. Returns its length, 0 to decline. */
static size_t put_sequence(struct warren__jbuf *b, const unsigned char *p,
                           const unsigned char *end, int ensure_ascii)
{
    size_t k = warren__utf8_seq(p, end);
    if (k == 0)
        return 0;
    if (!ensure_ascii)
        return put(b, p, k) == 0 ? k : 0;
    unsigned cp = decode(p, k);
    if (cp < 0x10000)
        return put_u16(b, cp) == 0 ? k : 0;
    cp -= 0x10000;
    if (put_u16(b, 0xd800 | (cp >> 10)) != 0 || put_u16(b, 0xdc00 | (cp & 0x3ff)) != 0)
        return 0;
    return k;
}

static int put_string(struct warren__jbuf *b, const char *s, size_t len, int ensure_ascii)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    if (put_char(b, '"') != 0)
        return -1;
    while (p < end) {
        const unsigned char *run = p;
        p = warren__json_skip_plain(p, end);
        if (p > run && put(b, run, (size_t)(p - run)) != 0)
            return -1;
        if (p == end)
            break;
        if (*p < 0x80) {
            if (put_escape(b, *p++) != 0)
                return -1;
            continue;
        }
        size_t k = put_sequence(b, p, end, ensure_ascii);
        if (k == 0)
            return -1;
        p += k;
    }
    return put_char(b, '"');
}

static int put_value(struct warren__jbuf *b, const json_t *v, int ensure_ascii, int depth);

static int put_array(struct warren__jbuf *b, const json_t *v, int ensure_ascii, int depth)
{
    size_t n = json_array_size(v);
    if (put_char(b, '[') != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && put_char(b, ',') != 0) ||
            put_value(b, json_array_get(v, i), ensure_ascii, depth + 1) != 0)
            return -1;
    }
    return put_char(b, ']');
}

static int put_object(struct warren__jbuf *b, const json_t *v, int ensure_ascii, int depth)
{
    if (put_char(b, '{') != 0)
        return -1;
    /* json_object_iter walks in insertion order, as json_dumps does */
    int first = 1;
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        if ((!first && put_char(b, ',') != 0) ||
            put_string(b, json_object_iter_key(it), json_object_iter_key_len(it),
                       ensure_ascii) != 0 ||
            put_char(b, ':') != 0 ||
            put_value(b, json_object_iter_value(it), ensure_ascii, depth + 1) != 0)
            return -1;
        first = 0;
    }
    return put_char(b, '}');
}

static int put_value(struct warren__jbuf *b, const json_t *v, int ensure_ascii, int depth)
{
    if (!v || depth > WARREN__JSON_WRITE_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: return put_object(b, v, ensure_ascii, depth);
    case JSON_ARRAY: return put_array(b, v, ensure_ascii, depth);
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v), ensure_ascii);
    case JSON_INTEGER: return put_int(b, json_integer_value(v));
    case JSON_TRUE: return put(b, "true", 4);
    case JSON_FALSE: return put(b, "false", 5);
    case JSON_NULL: return put(b, "null", 4);
    default: return -1; /* a real: jansson's shortest form */
    }
}

int warren__json_write_fast(struct warren__jbuf *b, const json_t *v, int ensure_ascii)
{
    b->len = 0;
    if (put_value(b, v, ensure_ascii, 0) != 0 || warren__jbuf_reserve(b, 0) != 0)
        return -1;
    b->data[b->len] = '\0';
    return 0;
}

int warren__json_compact(struct warren__jbuf *b, const json_t *v, int ensure_ascii)
{
    if (warren__json_write_fast(b, v, ensure_ascii) == 0)
        return 0;
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | (ensure_ascii ? JSON_ENSURE_ASCII : 0);
    char *text = v ? json_dumps(v, flags) : NULL;
    b->len = 0;
    int rc = text && put(b, text, strlen(text)) == 0 ? 0 : -1;
    free(text);
    if (rc == 0)
        b->data[b->len] = '\0';
    return rc;
}
