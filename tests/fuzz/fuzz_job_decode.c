/* Fuzz target for warren__job_decode: a delivery built from the input bytes.
 *
 * Input layout (every field is optional in the sense that a short input
 * simply ends early; missing bytes read as zero):
 *
 *   byte 0   flags: 0x01 properties present, 0x02 type, 0x04 message_id,
 *            0x08 headers, 0x10 priority, 0x20 exchange from the input
 *            (else "warren"), 0x40 small body limit (byte 1 * 16)
 *   byte 1   body limit when 0x40 is set
 *   then     type, message_id, exchange (when flagged) and the routing key
 *            (always), each as one length byte and that many bytes
 *   then     the priority byte (when flagged)
 *   then     the header table (when flagged), see read_table()
 *   rest     the body
 *
 * A table is a count byte, then per entry a key (length byte + bytes) and
 * a value: a kind selector byte, then the value's bytes (integers little
 * endian; strings a 2-byte length; arrays a count byte then values).
 * Every table and array gets its own allocation, so AddressSanitizer sees
 * a read past num_entries.
 *
 * Besides crashes, the target checks what decode promises: on success a
 * valid worker name, an id, objects for args and headers (and headers
 * that serialise); on a rejection nothing held and a reason given. It
 * also checks warren__utf8_valid against jansson's own UTF-8 check, and
 * the body parser's fast path against json_loadb on the whole input:
 * whenever the fast path answers, jansson gives the same value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "job.h"
#include "json_fast.h"

#define BUILD_MAX_DEPTH 12   /* deeper than the decoder's 8, to reach its limit */
#define BUILD_MAX_ALLOCS 4096

struct reader {
    const uint8_t *p;
    size_t n;
    void *allocs[BUILD_MAX_ALLOCS];
    size_t nallocs;
};

static uint8_t read_u8(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t read_le(struct reader *r, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)read_u8(r) << (8 * i);
    return v;
}

/* Bytes that point into the input (so reads past them are caught too). */
static amqp_bytes_t read_bytes(struct reader *r, size_t len)
{
    amqp_bytes_t b;
    if (len > r->n)
        len = r->n;
    b.len = len;
    b.bytes = len ? (void *)r->p : NULL;
    r->p += len;
    r->n -= len;
    return b;
}

static void *build_alloc(struct reader *r, size_t count, size_t size)
{
    if (count == 0 || r->nallocs == BUILD_MAX_ALLOCS)
        return NULL;
    void *p = calloc(count, size);
    if (p)
        r->allocs[r->nallocs++] = p;
    return p;
}

static const uint8_t kinds[] = {
    AMQP_FIELD_KIND_BOOLEAN, AMQP_FIELD_KIND_I8,      AMQP_FIELD_KIND_U8,
    AMQP_FIELD_KIND_I16,     AMQP_FIELD_KIND_U16,     AMQP_FIELD_KIND_I32,
    AMQP_FIELD_KIND_U32,     AMQP_FIELD_KIND_I64,     AMQP_FIELD_KIND_U64,
    AMQP_FIELD_KIND_F32,     AMQP_FIELD_KIND_F64,     AMQP_FIELD_KIND_DECIMAL,
    AMQP_FIELD_KIND_UTF8,    AMQP_FIELD_KIND_ARRAY,   AMQP_FIELD_KIND_TIMESTAMP,
    AMQP_FIELD_KIND_TABLE,   AMQP_FIELD_KIND_VOID,    AMQP_FIELD_KIND_BYTES,
    'Z', /* not a kind rabbitmq-c knows */
};

static void read_table(struct reader *r, amqp_table_t *t, int depth);
static void read_array(struct reader *r, amqp_array_t *a, int depth);

static void read_value(struct reader *r, amqp_field_value_t *v, int depth)
{
    v->kind = kinds[read_u8(r) % sizeof kinds];
    switch (v->kind) {
    case AMQP_FIELD_KIND_BOOLEAN: v->value.boolean = read_u8(r); break;
    case AMQP_FIELD_KIND_I8: v->value.i8 = (int8_t)read_u8(r); break;
    case AMQP_FIELD_KIND_U8: v->value.u8 = read_u8(r); break;
    case AMQP_FIELD_KIND_I16: v->value.i16 = (int16_t)read_le(r, 2); break;
    case AMQP_FIELD_KIND_U16: v->value.u16 = (uint16_t)read_le(r, 2); break;
    case AMQP_FIELD_KIND_I32: v->value.i32 = (int32_t)read_le(r, 4); break;
    case AMQP_FIELD_KIND_U32: v->value.u32 = (uint32_t)read_le(r, 4); break;
    case AMQP_FIELD_KIND_I64: v->value.i64 = (int64_t)read_le(r, 8); break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: v->value.u64 = read_le(r, 8); break;
    case AMQP_FIELD_KIND_F32: {
        uint32_t bits = (uint32_t)read_le(r, 4);
        memcpy(&v->value.f32, &bits, sizeof bits);
        break;
    }
    case AMQP_FIELD_KIND_F64: {
        uint64_t bits = read_le(r, 8);
        memcpy(&v->value.f64, &bits, sizeof bits);
        break;
    }
    case AMQP_FIELD_KIND_DECIMAL:
        v->value.decimal.decimals = read_u8(r);
        v->value.decimal.value = (uint32_t)read_le(r, 4);
        break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: v->value.bytes = read_bytes(r, read_le(r, 2)); break;
    case AMQP_FIELD_KIND_TABLE:
        if (depth < BUILD_MAX_DEPTH)
            read_table(r, &v->value.table, depth + 1);
        else
            v->kind = AMQP_FIELD_KIND_VOID;
        break;
    case AMQP_FIELD_KIND_ARRAY:
        if (depth < BUILD_MAX_DEPTH)
            read_array(r, &v->value.array, depth + 1);
        else
            v->kind = AMQP_FIELD_KIND_VOID;
        break;
    default: break;
    }
}

static void read_table(struct reader *r, amqp_table_t *t, int depth)
{
    int count = read_u8(r);
    t->entries = build_alloc(r, (size_t)count, sizeof *t->entries);
    t->num_entries = t->entries ? count : 0;
    for (int i = 0; i < t->num_entries; i++) {
        t->entries[i].key = read_bytes(r, read_u8(r));
        read_value(r, &t->entries[i].value, depth);
    }
}

static void read_array(struct reader *r, amqp_array_t *a, int depth)
{
    int count = read_u8(r);
    a->entries = build_alloc(r, (size_t)count, sizeof *a->entries);
    a->num_entries = a->entries ? count : 0;
    for (int i = 0; i < a->num_entries; i++)
        read_value(r, &a->entries[i], depth);
}

static int worker_ok(const char *s)
{
    size_t len = strlen(s);
    if (len < 1 || len > 128)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_job_decode: broken promise: %s\n", what);
        abort();
    }
}

static void check_job(enum warren_dead_reason r, const struct warren_job *job, const char *why)
{
    if (r == WARREN_DEAD_NONE) {
        check(why[0] == '\0', "success with a reason");
        check(json_is_object(job->args), "args is an object");
        check(job->headers == NULL, "headers converted only on demand");
        json_t *headers = warren__job_headers_json(job->header_src);
        check(json_is_object(headers), "headers convert to an object");
        check(worker_ok(job->worker), "worker name is valid");
        check(job->id[0] != '\0' && strlen(job->id) <= 255, "id is set");
        check(job->attempt >= 1 && job->max_attempts >= 0, "attempts in range");
        check(job->priority >= 0 && job->priority <= 255, "priority in range");
        char *text = json_dumps(headers, JSON_COMPACT);
        check(text != NULL, "headers serialise");
        free(text);
        json_decref(headers);
    } else {
        check(r == WARREN_DEAD_MALFORMED || r == WARREN_DEAD_TOO_LARGE, "reason is decode's");
        check(job->args == NULL && job->headers == NULL && job->header_src == NULL,
              "nothing held on rejection");
        check(why[0] != '\0', "a rejection says why");
        check(job->worker[0] == '\0' || worker_ok(job->worker), "worker valid when set");
    }
}

/* jansson checks UTF-8 itself when it makes a string: both must agree. */
static void check_utf8(const uint8_t *data, size_t size)
{
    json_t *s = json_stringn((const char *)data, size);
    check((s != NULL) == (warren__utf8_valid(data, size) != 0), "UTF-8 check agrees with jansson");
    json_decref(s);
}

/* Whenever the fast path answers, jansson must give the same value (same
 * text, so same types and key order); whatever jansson refuses, the fast
 * path refuses. */
static void check_fast(const uint8_t *data, size_t size)
{
    json_t *fast = warren__json_fast_object(data, size, 64);
    json_t *slow = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    check(!fast || slow, "fast path accepts only what jansson accepts");
    if (fast && slow) {
        size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
        char *a = json_dumps(fast, flags), *b = json_dumps(slow, flags);
        check(a && b && strcmp(a, b) == 0, "fast path gives jansson's value");
        free(a);
        free(b);
    }
    json_decref(fast);
    json_decref(slow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct reader r; /* large; the fuzzer runs one input at a time */
    amqp_basic_properties_t props;
    struct warren_delivery d = {"warren", 6, "", 0, NULL, NULL, 0};

    check_utf8(data, size);
    check_fast(data, size);
    memset(&props, 0, sizeof props);
    r.p = data;
    r.n = size;
    r.nallocs = 0;

    uint8_t flags = read_u8(&r);
    uint8_t limit = read_u8(&r);
    size_t max_body = (flags & 0x40) ? (size_t)limit * 16 : 1024 * 1024;
    if (flags & 0x02) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = read_bytes(&r, read_u8(&r));
    }
    if (flags & 0x04) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = read_bytes(&r, read_u8(&r));
    }
    if (flags & 0x20) {
        amqp_bytes_t ex = read_bytes(&r, read_u8(&r));
        d.exchange = ex.bytes;
        d.exchange_len = ex.len;
    }
    amqp_bytes_t rk = read_bytes(&r, read_u8(&r));
    d.routing_key = rk.bytes;
    d.routing_key_len = rk.len;
    if (flags & 0x10) {
        props._flags |= AMQP_BASIC_PRIORITY_FLAG;
        props.priority = read_u8(&r);
    }
    if (flags & 0x08) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        read_table(&r, &props.headers, 0);
    }
    d.props = (flags & 0x01) ? &props : NULL;
    d.body = r.n ? r.p : NULL;
    d.body_len = r.n;

    struct warren_job job;
    char why[WARREN_ERROR_TEXT_MAX];
    enum warren_dead_reason reason = warren__job_decode(&job, &d, "warren", max_body, why,
                                                        sizeof why);
    check_job(reason, &job, why);
    warren__job_clear(&job);

    for (size_t i = 0; i < r.nallocs; i++)
        free(r.allocs[i]);
    return 0;
}
