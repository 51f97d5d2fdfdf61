/* Internal: a fast path for writing compact JSON, the producer's body.
 *
 * DESIGN: json_dumps() writes through a callback per piece, keeps a hash
 * table of the containers it is inside (formatting each one's address
 * with snprintf) to catch cycles, decodes every string character by
 * character and copies the result once more at the end: about 18,000
 * instructions for a 200-byte job, three times what rabbitmq-c spends
 * sending it. This writer appends to a buffer the caller keeps, copies
 * runs of plain string bytes at once, and bounds the nesting instead of
 * tracking parents (a value nested deeper is handed to jansson, which
 * finds the cycle, if that is what it is).
 *
 * Its output is byte for byte what json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY [| JSON_ENSURE_ASCII]) gives; it declines (jansson
 * writes) reals, whose shortest form is jansson's to choose, strings that
 * are not valid UTF-8, and nesting past WARREN__JSON_WRITE_DEPTH.
 * tests/unit/test_json_write.c compares the two. */
#ifndef WARREN_JSON_WRITE_H
#define WARREN_JSON_WRITE_H

#include <stddef.h>
#include <jansson.h>

#define WARREN__JSON_WRITE_DEPTH 64

/* A growable text buffer; zero-initialise, free with warren__jbuf_free. */
struct warren__jbuf {
    char *data;
    size_t len, cap;
};

void warren__jbuf_free(struct warren__jbuf *b);
/* Room for `more` bytes and a terminating NUL after b->len: 0, or -1
 * when out of memory. */
int warren__jbuf_reserve(struct warren__jbuf *b, size_t more);

/* The two pieces every JSON writer of ours shares (this one and the
 * fixed-buffer fields of job.h), written as jansson writes them:
 * the decimal text of v, ending at end (a buffer of at least 20 bytes
 * before it): returns where it starts; */
char *warren__json_int_text(char *end, long long v);
/* and the escape of c, one of '"', '\\' or a byte below 0x20 (\n, \t,
 * ... or \u00XX in upper case), into out[6]: returns its length. */
size_t warren__json_escape(unsigned char c, char out[6]);

/* Replaces b's contents with the compact JSON of v, NUL-terminated;
 * ensure_ascii as JSON_ENSURE_ASCII. Uses jansson where the fast path
 * declines. Returns 0, or -1 when jansson cannot write v either (a cycle,
 * invalid UTF-8) or memory runs out. */
int warren__json_compact(struct warren__jbuf *b, const json_t *v, int ensure_ascii);

/* The fast path alone: 0, or -1 when it declines (b's length is then
 * unspecified). For tests. */
int warren__json_write_fast(struct warren__jbuf *b, const json_t *v, int ensure_ascii);

#endif
