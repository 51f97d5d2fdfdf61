/* Internal: a fast path for parsing a job's body.
 *
 * DESIGN: jansson's json_loadb() reads its input one character at a time
 * through a callback, saves each character into a growable buffer and
 * walks strings twice; for a 200-byte body that is about 30,000
 * instructions, more than everything else a worker does for a job. This
 * parser reads the bytes in place (runs of plain string bytes are found
 * with a table lookup per byte, strings without escapes are copied once)
 * and builds the same jansson values with the same calls in the same
 * order (json_object_setn_new_nocheck for members, so a repeated key
 * behaves as in jansson).
 *
 * It never disagrees with jansson: for any input it either returns the
 * value json_loadb(buf, len, JSON_DECODE_ANY, ...) would return (equal
 * types, values and key order), or NULL, meaning "ask jansson", which then
 * parses the input again and words the error. It answers NULL for
 * anything it is not sure about: invalid JSON of any kind, a top-level
 * value that is not an object, an integer of 19 digits or more that does
 * not fit (jansson: "too big integer"), a real that overflows, reals when
 * the locale's decimal point is not '.', nesting deeper than max_depth,
 * "\u0000" anywhere (jansson refuses it without JSON_ALLOW_NUL), and lack
 * of memory. Strings are checked for strict UTF-8 as jansson checks them,
 * and no byte above 0x7f is accepted outside a string, so a body it
 * accepts is valid UTF-8. tests/unit/test_json_fast.c and the job_decode
 * fuzz target compare it with jansson. */
#ifndef WARREN_JSON_FAST_H
#define WARREN_JSON_FAST_H

#include <stddef.h>
#include <jansson.h>

/* A JSON object parsed from buf[0..len) (a new reference), or NULL: ask
 * jansson (see DESIGN). */
json_t *warren__json_fast_object(const void *buf, size_t len, int max_depth);

/* The first byte at or after p that is not plain string text, i.e. not
 * 0x20..0x7f other than '"' and '\\' (end if none): what a JSON string
 * holds as itself, and what a writer copies as it is. */
const unsigned char *warren__json_skip_plain(const unsigned char *p, const unsigned char *end);

#endif
