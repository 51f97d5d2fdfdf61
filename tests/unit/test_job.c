/* Unit tests for job.c: decoding a delivery into a job, rule by rule. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "job.h"

#define MAX_BODY 1048576
#define MSG_ENTRIES 80

/* One message under construction: properties, a header table and a body. */
struct msg {
    amqp_basic_properties_t props;
    amqp_table_entry_t entries[MSG_ENTRIES];
    const char *exchange;
    const char *routing_key;
    const void *body;
    size_t body_len;
    size_t max_body;
};

static amqp_bytes_t bytes_of(const void *p, size_t len)
{
    amqp_bytes_t b = {len, (void *)p};
    return b;
}

static amqp_bytes_t text(const char *s)
{
    return bytes_of(s, strlen(s));
}

static void msg_init(struct msg *m, const char *type, const char *body)
{
    memset(m, 0, sizeof *m);
    m->exchange = "warren";
    m->routing_key = "ignored.when.type.is.set";
    m->max_body = MAX_BODY;
    m->props.headers.entries = m->entries;
    if (type) {
        m->props._flags |= AMQP_BASIC_TYPE_FLAG;
        m->props.type = text(type);
    }
    m->props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    m->props.message_id = text("id-1");
    m->body = body;
    m->body_len = body ? strlen(body) : 0;
}

static void msg_body(struct msg *m, const void *body, size_t len)
{
    m->body = body;
    m->body_len = len;
}

/* Adds a header entry (value left to the caller). */
static amqp_field_value_t *msg_header(struct msg *m, const char *key)
{
    assert_true(m->props.headers.num_entries < MSG_ENTRIES);
    m->props._flags |= AMQP_BASIC_HEADERS_FLAG;
    amqp_table_entry_t *e = &m->entries[m->props.headers.num_entries++];
    e->key = text(key);
    return &e->value;
}

static void msg_int_header(struct msg *m, const char *key, long long n)
{
    amqp_field_value_t *v = msg_header(m, key);
    v->kind = AMQP_FIELD_KIND_I64;
    v->value.i64 = n;
}

static void msg_str_header(struct msg *m, const char *key, const char *s)
{
    amqp_field_value_t *v = msg_header(m, key);
    v->kind = AMQP_FIELD_KIND_UTF8;
    v->value.bytes = text(s);
}

/* Decodes and checks what holds for every outcome: nothing is held on a
 * rejection and a reason is given; a success holds two objects. */
static enum warren_dead_reason decode(struct msg *m, struct warren_job *job, char *why,
                                      size_t why_size)
{
    struct warren_delivery d = {
        .exchange = m->exchange,
        .exchange_len = strlen(m->exchange),
        .routing_key = m->routing_key,
        .routing_key_len = strlen(m->routing_key),
        .props = &m->props,
        .body = m->body,
        .body_len = m->body_len,
    };
    enum warren_dead_reason r = warren__job_decode(job, &d, "warren", m->max_body, why,
                                                   why_size);
    if (r == WARREN_DEAD_NONE) {
        assert_true(json_is_object(job->args));
        /* headers are converted on first use, and then kept */
        assert_null(job->headers);
        json_t *h = warren_job_headers(job);
        assert_true(json_is_object(h));
        assert_ptr_equal(warren_job_headers(job), h);
        assert_string_equal(why, "");
    } else {
        assert_null(job->args);
        assert_null(job->headers);
        assert_null(job->header_src);
        assert_true(strlen(why) > 0);
    }
    return r;
}

/* Expects a rejection with `reason` whose text contains `needle`. */
static void expect_reject(struct msg *m, enum warren_dead_reason reason, const char *needle)
{
    struct warren_job job;
    char why[WARREN_ERROR_TEXT_MAX];
    enum warren_dead_reason r = decode(m, &job, why, sizeof why);
    if (r != reason || !strstr(why, needle))
        fail_msg("expected %s containing \"%s\", got %s: %s", warren__dead_reason_name(reason),
                 needle, warren__dead_reason_name(r), why);
    warren__job_clear(&job);
}

static void expect_ok(struct msg *m, struct warren_job *job)
{
    char why[WARREN_ERROR_TEXT_MAX];
    enum warren_dead_reason r = decode(m, job, why, sizeof why);
    if (r != WARREN_DEAD_NONE)
        fail_msg("expected success, got %s: %s", warren__dead_reason_name(r), why);
}

static int is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* ---- names and small helpers --------------------------------------------- */

static void test_reason_names(void **state)
{
    (void)state;
    static const struct {
        enum warren_dead_reason r;
        const char *name;
    } names[] = {
        {WARREN_DEAD_MAX_ATTEMPTS, "max_attempts"},
        {WARREN_DEAD_PERMANENT_FAILURE, "permanent_failure"},
        {WARREN_DEAD_UNKNOWN_WORKER, "unknown_worker"},
        {WARREN_DEAD_MALFORMED, "malformed"},
        {WARREN_DEAD_TOO_LARGE, "too_large"},
        {WARREN_DEAD_BAD_SIGNATURE, "bad_signature"},
        {WARREN_DEAD_INVALID_ARGS, "invalid_args"},
        {WARREN_DEAD_CRASHED, "crashed"},
        {WARREN_DEAD_REJECTED_BY_BROKER, "rejected_by_broker"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(warren__dead_reason_name(names[i].r), names[i].name);
    assert_non_null(warren__dead_reason_name(WARREN_DEAD_NONE));
    assert_non_null(warren__dead_reason_name((enum warren_dead_reason)99));
}

static amqp_field_value_t field(uint8_t kind)
{
    amqp_field_value_t v;
    memset(&v, 0, sizeof v);
    v.kind = kind;
    return v;
}

static void expect_int(amqp_field_value_t v, long long want)
{
    long long got = 12345;
    assert_int_equal(warren__field_int(&v, &got), 0);
    assert_true(got == want);
}

static void test_field_int_widths(void **state)
{
    (void)state;
    amqp_field_value_t v;
    v = field(AMQP_FIELD_KIND_I8), v.value.i8 = INT8_MIN, expect_int(v, INT8_MIN);
    v = field(AMQP_FIELD_KIND_I8), v.value.i8 = INT8_MAX, expect_int(v, INT8_MAX);
    v = field(AMQP_FIELD_KIND_U8), v.value.u8 = UINT8_MAX, expect_int(v, UINT8_MAX);
    v = field(AMQP_FIELD_KIND_I16), v.value.i16 = INT16_MIN, expect_int(v, INT16_MIN);
    v = field(AMQP_FIELD_KIND_U16), v.value.u16 = UINT16_MAX, expect_int(v, UINT16_MAX);
    v = field(AMQP_FIELD_KIND_I32), v.value.i32 = INT32_MIN, expect_int(v, INT32_MIN);
    v = field(AMQP_FIELD_KIND_U32), v.value.u32 = UINT32_MAX, expect_int(v, UINT32_MAX);
    v = field(AMQP_FIELD_KIND_I64), v.value.i64 = LLONG_MIN, expect_int(v, LLONG_MIN);
    v = field(AMQP_FIELD_KIND_I64), v.value.i64 = LLONG_MAX, expect_int(v, LLONG_MAX);
    v = field(AMQP_FIELD_KIND_U64), v.value.u64 = (uint64_t)LLONG_MAX,
    expect_int(v, LLONG_MAX);
    v = field('l'), v.value.i64 = -7, expect_int(v, -7);
    v = field('L'), v.value.u64 = 7, expect_int(v, 7);
    /* out may be NULL when only the kind matters */
    assert_int_equal(warren__field_int(&v, NULL), 0);
}

static void test_field_int_rejects(void **state)
{
    (void)state;
    long long out = 42;
    static const uint8_t kinds[] = {
        AMQP_FIELD_KIND_UTF8,    AMQP_FIELD_KIND_BYTES, AMQP_FIELD_KIND_F32,
        AMQP_FIELD_KIND_F64,     AMQP_FIELD_KIND_BOOLEAN, AMQP_FIELD_KIND_DECIMAL,
        AMQP_FIELD_KIND_TIMESTAMP, AMQP_FIELD_KIND_VOID, AMQP_FIELD_KIND_TABLE,
        AMQP_FIELD_KIND_ARRAY,   'z',
    };
    for (size_t i = 0; i < sizeof kinds; i++) {
        amqp_field_value_t v = field(kinds[i]);
        assert_int_equal(warren__field_int(&v, &out), -1);
    }
    amqp_field_value_t v = field(AMQP_FIELD_KIND_U64);
    v.value.u64 = (uint64_t)LLONG_MAX + 1;
    assert_int_equal(warren__field_int(&v, &out), -1);
    v.value.u64 = UINT64_MAX;
    assert_int_equal(warren__field_int(&v, &out), -1);
    assert_int_equal(warren__field_int(NULL, &out), -1);
    assert_true(out == 42);
}

static void test_table_find(void **state)
{
    (void)state;
    amqp_table_entry_t e[3];
    memset(e, 0, sizeof e);
    e[0].key = text("x-warren-attempt-not");
    e[1].key = text("x-warren-attempt");
    e[1].value.kind = AMQP_FIELD_KIND_I32;
    e[2].key = text("x-warren-attempt");
    amqp_table_t t = {3, e};
    assert_ptr_equal(warren__table_find(&t, "x-warren-attempt"), &e[1]);
    assert_null(warren__table_find(&t, "x-warren"));
    assert_null(warren__table_find(&t, "absent"));
    assert_null(warren__table_find(NULL, "x"));
    amqp_table_t empty = {0, NULL};
    assert_null(warren__table_find(&empty, "x"));
}

static void test_utf8_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xed\x9f\xbf" /* U+D7FF */,
        "\xee\x80\x80" /* U+E000 */, "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(warren__utf8_valid(good[i], strlen(good[i])), 1);
    assert_int_equal(warren__utf8_valid("a\0b", 3), 1); /* U+0000 is a character */
    /* an empty AMQP field arrives as (NULL, 0) */
    assert_int_equal(warren__utf8_valid(NULL, 0), 1);
    assert_int_equal(warren__utf8_valid(NULL, 1), 0);
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc0\x80", "\xc1\xbf",                 /* overlong 2-byte */
        "\xe0\x80\x80", "\xe0\x9f\xbf",         /* overlong 3-byte */
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", /* overlong 4-byte */
        "\xed\xa0\x80", "\xed\xbf\xbf",         /* surrogates */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", /* > U+10FFFF */
        "\xc3", "\xe2\x82", "\xf0\x9f\x98",     /* truncated */
        "\x80", "\xbf", "a\x80",                /* stray continuation */
        "\xe2\x28\xa1", "\xc3\x28",              /* bad continuation */
        "\xfe", "\xff", "\xf8\x88\x80\x80\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (warren__utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("case %zu accepted", i);
    /* truncated at the very end of a longer buffer */
    assert_int_equal(warren__utf8_valid("ok \xe2\x82\xac", 5), 0);
}

/* ---- the happy path and the worker name ----------------------------------- */

static void test_decode_valid(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    msg_init(&m, "send_email", "{\"to\": \"a@example.com\", \"n\": 1}");
    expect_ok(&m, &job);
    assert_string_equal(job.worker, "send_email");
    assert_string_equal(job.id, "id-1");
    assert_int_equal(job.id_assigned, 0);
    assert_int_equal(job.attempt, 1);
    assert_int_equal(job.max_attempts, 0);
    assert_int_equal(job.priority, 0);
    assert_string_equal(json_string_value(json_object_get(job.args, "to")), "a@example.com");
    assert_int_equal(json_object_size(warren_job_headers(&job)), 0);
    warren__job_clear(&job);
    assert_null(job.args);
    assert_null(job.headers);
    assert_string_equal(job.worker, "");
}

static void test_worker_from_routing_key(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    msg_init(&m, NULL, "{}");
    m.routing_key = "diag.echo";
    expect_ok(&m, &job);
    assert_string_equal(job.worker, "diag.echo");
    warren__job_clear(&job);

    /* No properties at all: still fine on the jobs exchange. */
    struct warren_delivery d = {"warren", 6, "diag.noop", 9, NULL, "{}", 2};
    char why[256];
    assert_int_equal(warren__job_decode(&job, &d, "warren", MAX_BODY, why, sizeof why),
                     WARREN_DEAD_NONE);
    assert_string_equal(job.worker, "diag.noop");
    assert_int_equal(job.id_assigned, 1);
    warren__job_clear(&job);
}

static void test_type_wins(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    msg_init(&m, "from_type", "{}");
    m.routing_key = "from_key";
    expect_ok(&m, &job);
    assert_string_equal(job.worker, "from_type");
    warren__job_clear(&job);

    /* A retry copy: default exchange, routing key = queue name, type set. */
    msg_init(&m, "from_type", "{}");
    m.exchange = "";
    m.routing_key = "warren.default";
    expect_ok(&m, &job);
    assert_string_equal(job.worker, "from_type");
    warren__job_clear(&job);
}

static void test_worker_missing(void **state)
{
    (void)state;
    struct msg m;
    msg_init(&m, NULL, "{}");
    m.exchange = "";
    m.routing_key = "warren.default";
    expect_reject(&m, WARREN_DEAD_MALFORMED, "missing worker name");

    msg_init(&m, NULL, "{}");
    m.exchange = "warren.delay.deliver";
    m.routing_key = "send_email";
    expect_reject(&m, WARREN_DEAD_MALFORMED, "missing worker name");

    msg_init(&m, NULL, "{}");
    m.exchange = "warrenx"; /* a prefix is not the exchange */
    m.routing_key = "send_email";
    expect_reject(&m, WARREN_DEAD_MALFORMED, "missing worker name");

    msg_init(&m, NULL, "{}");
    m.routing_key = "";
    expect_reject(&m, WARREN_DEAD_MALFORMED, "missing worker name");

    /* The id is still known for the log line. */
    struct warren_job job;
    char why[256];
    msg_init(&m, NULL, "{}");
    m.exchange = "";
    assert_int_equal(decode(&m, &job, why, sizeof why), WARREN_DEAD_MALFORMED);
    assert_string_equal(job.id, "id-1");
    assert_string_equal(job.worker, "");
}

static void test_worker_bad_names(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    char name[200];

    memset(name, 'a', 128);
    name[128] = '\0';
    msg_init(&m, name, "{}");
    expect_ok(&m, &job);
    assert_string_equal(job.worker, name);
    warren__job_clear(&job);

    memset(name, 'a', 129);
    name[129] = '\0';
    msg_init(&m, name, "{}");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");

    static const char *const bad[] = {"send email", "", " x", "a/b", "caf\xc3\xa9", "a\tb",
                                      "x*", "a#b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg_init(&m, bad[i], "{}");
        expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");
    }
    /* A NUL byte inside the type. */
    msg_init(&m, "ab", "{}");
    m.props.type = bytes_of("a\0b", 3);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");

    /* The same rules apply to a routing key. */
    msg_init(&m, NULL, "{}");
    m.routing_key = "two words";
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");
    msg_init(&m, NULL, "{}");
    m.routing_key = name; /* 129 bytes */
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");

    static const char *const good[] = {"a", "A-Z_0.9", "diag.echo", "x-1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        msg_init(&m, good[i], "{}");
        expect_ok(&m, &job);
        warren__job_clear(&job);
    }
}

/* ---- message_id ----------------------------------------------------------- */

static void test_message_id_missing(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job a, b;
    msg_init(&m, "w", "{}");
    m.props._flags &= ~AMQP_BASIC_MESSAGE_ID_FLAG;
    expect_ok(&m, &a);
    assert_int_equal(a.id_assigned, 1);
    if (!is_uuid_v4(a.id))
        fail_msg("not a UUID v4: %s", a.id);
    expect_ok(&m, &b);
    assert_true(is_uuid_v4(b.id));
    assert_string_not_equal(a.id, b.id);
    warren__job_clear(&a);
    warren__job_clear(&b);

    /* present but empty counts as absent */
    msg_init(&m, "w", "{}");
    m.props.message_id = text("");
    expect_ok(&m, &a);
    assert_int_equal(a.id_assigned, 1);
    assert_true(is_uuid_v4(a.id));
    warren__job_clear(&a);
}

static void test_message_id_limits(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    char id[300];

    memset(id, 'x', 255);
    id[255] = '\0';
    msg_init(&m, "w", "{}");
    m.props.message_id = text(id);
    expect_ok(&m, &job);
    assert_string_equal(job.id, id);
    assert_int_equal(job.id_assigned, 0);
    warren__job_clear(&job);

    /* schedule ids and anything printable, spaces included */
    msg_init(&m, "w", "{}");
    m.props.message_id = text("nightly-report@2026-05-01T02:00:00Z ~!");
    expect_ok(&m, &job);
    warren__job_clear(&job);

    memset(id, 'x', 256);
    id[256] = '\0';
    msg_init(&m, "w", "{}");
    m.props.message_id = text(id);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid message_id");

    static const char *const bad[] = {"a\x01", "tab\there", "caf\xc3\xa9", "\x7f", "nl\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg_init(&m, "w", "{}");
        m.props.message_id = text(bad[i]);
        expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid message_id");
    }

    /* the worker is still known; the id is not */
    char why[256];
    msg_init(&m, "w", "{}");
    m.props.message_id = text("a\x01");
    assert_int_equal(decode(&m, &job, why, sizeof why), WARREN_DEAD_MALFORMED);
    assert_string_equal(job.worker, "w");
    assert_string_equal(job.id, "");
}

/* ---- attempt headers -------------------------------------------------------- */

static void test_attempt_all_widths(void **state)
{
    (void)state;
    static const uint8_t kinds[] = {
        AMQP_FIELD_KIND_I8,  AMQP_FIELD_KIND_U8,  AMQP_FIELD_KIND_I16, AMQP_FIELD_KIND_U16,
        AMQP_FIELD_KIND_I32, AMQP_FIELD_KIND_U32, AMQP_FIELD_KIND_I64, AMQP_FIELD_KIND_U64,
    };
    for (size_t i = 0; i < sizeof kinds; i++) {
        struct msg m;
        struct warren_job job;
        msg_init(&m, "w", "{}");
        amqp_field_value_t *a = msg_header(&m, "x-warren-attempt");
        amqp_field_value_t *x = msg_header(&m, "x-warren-max-attempts");
        a->kind = x->kind = kinds[i];
        switch (kinds[i]) {
        case AMQP_FIELD_KIND_I8: a->value.i8 = 3, x->value.i8 = 9; break;
        case AMQP_FIELD_KIND_U8: a->value.u8 = 3, x->value.u8 = 9; break;
        case AMQP_FIELD_KIND_I16: a->value.i16 = 3, x->value.i16 = 9; break;
        case AMQP_FIELD_KIND_U16: a->value.u16 = 3, x->value.u16 = 9; break;
        case AMQP_FIELD_KIND_I32: a->value.i32 = 3, x->value.i32 = 9; break;
        case AMQP_FIELD_KIND_U32: a->value.u32 = 3, x->value.u32 = 9; break;
        case AMQP_FIELD_KIND_I64: a->value.i64 = 3, x->value.i64 = 9; break;
        default: a->value.u64 = 3, x->value.u64 = 9; break;
        }
        expect_ok(&m, &job);
        assert_int_equal(job.attempt, 3);
        assert_int_equal(job.max_attempts, 9);
        /* the headers as JSON carry them as integers */
        json_t *h = warren_job_headers(&job);
        assert_int_equal(json_integer_value(json_object_get(h, "x-warren-attempt")), 3);
        warren__job_clear(&job);
    }
}

static void test_attempt_invalid(void **state)
{
    (void)state;
    struct msg m;
    amqp_field_value_t *v;
    const char *msg = "x-warren-attempt must be an integer >= 1";

    msg_init(&m, "w", "{}");
    msg_str_header(&m, "x-warren-attempt", "2");
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-attempt", 0);
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-attempt", -5);
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-attempt");
    v->kind = AMQP_FIELD_KIND_F64;
    v->value.f64 = 2.0;
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-attempt");
    v->kind = AMQP_FIELD_KIND_F32;
    v->value.f32 = 2.5f;
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-attempt");
    v->kind = AMQP_FIELD_KIND_BOOLEAN;
    v->value.boolean = 1;
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-attempt");
    v->kind = AMQP_FIELD_KIND_VOID;
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-attempt");
    v->kind = AMQP_FIELD_KIND_U64;
    v->value.u64 = UINT64_MAX;
    expect_reject(&m, WARREN_DEAD_MALFORMED, msg);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-attempt", (long long)INT_MAX + 1);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-warren-attempt is out of range");
}

static void test_max_attempts(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-max-attempts", 0);
    expect_ok(&m, &job);
    assert_int_equal(job.max_attempts, 0);
    warren__job_clear(&job);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-max-attempts", -1);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-warren-max-attempts must be an integer");

    msg_init(&m, "w", "{}");
    msg_str_header(&m, "x-warren-max-attempts", "8");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-warren-max-attempts must be an integer");

    msg_init(&m, "w", "{}");
    amqp_field_value_t *v = msg_header(&m, "x-warren-max-attempts");
    v->kind = AMQP_FIELD_KIND_F64;
    v->value.f64 = 8;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-warren-max-attempts must be an integer");

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-max-attempts", (long long)INT_MAX + 1);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "out of range");
}

/* x-warren-replay never costs a job: what does not read as a count is 0. */
static int replay_of(struct msg *m)
{
    struct warren_job job;
    expect_ok(m, &job);
    int replay = job.replay;
    assert_int_equal(replay, warren__job_replay(&m->props));
    warren__job_clear(&job);
    return replay;
}

static void test_replay_lenient(void **state)
{
    (void)state;
    struct msg m;
    msg_init(&m, "w", "{}");
    assert_int_equal(replay_of(&m), 0);
    assert_int_equal(warren__job_replay(NULL), 0);

    msg_init(&m, "w", "{}");
    amqp_field_value_t *v = msg_header(&m, "x-warren-replay");
    v->kind = AMQP_FIELD_KIND_I32;
    v->value.i32 = 2;
    assert_int_equal(replay_of(&m), 2);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-replay", -3);
    assert_int_equal(replay_of(&m), 0);

    msg_init(&m, "w", "{}");
    msg_str_header(&m, "x-warren-replay", "7");
    assert_int_equal(replay_of(&m), 0);

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-warren-replay");
    v->kind = AMQP_FIELD_KIND_F64;
    v->value.f64 = 1.5;
    assert_int_equal(replay_of(&m), 0);

    msg_init(&m, "w", "{}");
    msg_int_header(&m, "x-warren-replay", (long long)INT_MAX + 10);
    assert_int_equal(replay_of(&m), WARREN_MAX_REPLAY);

    /* A job rejected later still names its replay (for its `dead` event). */
    msg_init(&m, "w", "[]");
    msg_int_header(&m, "x-warren-replay", 4);
    struct warren_job job;
    char why[WARREN_ERROR_TEXT_MAX];
    assert_int_equal(decode(&m, &job, why, sizeof why), WARREN_DEAD_MALFORMED);
    assert_int_equal(job.replay, 4);
    warren__job_clear(&job);
}

static void test_priority(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    static const int values[] = {0, 9, 200, 255};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        msg_init(&m, "w", "{}");
        m.props._flags |= AMQP_BASIC_PRIORITY_FLAG;
        m.props.priority = (uint8_t)values[i];
        expect_ok(&m, &job);
        assert_int_equal(job.priority, values[i]); /* kept as sent */
        warren__job_clear(&job);
    }
    msg_init(&m, "w", "{}");
    m.props.priority = 7; /* flag not set: not present */
    expect_ok(&m, &job);
    assert_int_equal(job.priority, 0);
    warren__job_clear(&job);
}

/* ---- header limits ---------------------------------------------------------- */

static char header_names[MSG_ENTRIES][16];

static void add_numbered_headers(struct msg *m, int count)
{
    for (int i = 0; i < count; i++) {
        snprintf(header_names[i], sizeof header_names[i], "h%d", i);
        msg_int_header(m, header_names[i], i);
    }
}

static void test_header_count(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    msg_init(&m, "w", "{}");
    add_numbered_headers(&m, 64);
    expect_ok(&m, &job);
    assert_int_equal(json_object_size(warren_job_headers(&job)), 64);
    warren__job_clear(&job);

    msg_init(&m, "w", "{}");
    add_numbered_headers(&m, 65);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "65 headers exceed the limit of 64");
}

static void test_header_value_size(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    static char big[5001];
    memset(big, 'v', 5000);

    msg_init(&m, "w", "{}");
    amqp_field_value_t *v = msg_header(&m, "x-big");
    v->kind = AMQP_FIELD_KIND_UTF8;
    v->value.bytes = bytes_of(big, 4096);
    expect_ok(&m, &job);
    assert_int_equal(json_string_length(json_object_get(warren_job_headers(&job), "x-big")), 4096);
    warren__job_clear(&job);

    v->value.bytes = bytes_of(big, 5000);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "5000 bytes");

    v->kind = AMQP_FIELD_KIND_BYTES;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "the limit is 4096");

    /* inside an array, the same limit */
    amqp_field_value_t inner = field(AMQP_FIELD_KIND_UTF8);
    inner.value.bytes = bytes_of(big, 4097);
    v->kind = AMQP_FIELD_KIND_ARRAY;
    v->value.array.num_entries = 1;
    v->value.array.entries = &inner;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-big");
}

/* Builds a header whose value is `levels` arrays, one inside the other. */
static void nest_arrays(amqp_field_value_t *chain, int levels)
{
    for (int i = 0; i < levels; i++) {
        chain[i] = field(AMQP_FIELD_KIND_ARRAY);
        chain[i].value.array.num_entries = 1;
        chain[i].value.array.entries = &chain[i + 1];
    }
    chain[levels] = field(AMQP_FIELD_KIND_I32);
    chain[levels].value.i32 = 1;
}

static void test_header_depth(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    amqp_field_value_t chain[12];

    msg_init(&m, "w", "{}");
    nest_arrays(chain, 8);
    *msg_header(&m, "deep") = chain[0];
    expect_ok(&m, &job);
    json_t *j = json_object_get(warren_job_headers(&job), "deep");
    for (int i = 0; i < 8; i++) {
        assert_true(json_is_array(j));
        j = json_array_get(j, 0);
    }
    assert_int_equal(json_integer_value(j), 1);
    warren__job_clear(&job);

    msg_init(&m, "w", "{}");
    nest_arrays(chain, 9);
    *msg_header(&m, "deep") = chain[0];
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 8 levels");

    /* tables count the same as arrays */
    amqp_table_entry_t te[10];
    amqp_field_value_t top = field(AMQP_FIELD_KIND_TABLE);
    amqp_field_value_t *cur = &top;
    for (int i = 0; i < 9; i++) {
        te[i].key = text("t");
        cur->value.table.num_entries = 1;
        cur->value.table.entries = &te[i];
        te[i].value = field(i == 8 ? AMQP_FIELD_KIND_VOID : AMQP_FIELD_KIND_TABLE);
        cur = &te[i].value;
    }
    msg_init(&m, "w", "{}");
    *msg_header(&m, "tables") = top; /* 9 tables */
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 8 levels");
    te[7].value = field(AMQP_FIELD_KIND_VOID); /* now 8 */
    msg_init(&m, "w", "{}");
    *msg_header(&m, "tables") = top;
    expect_ok(&m, &job);
    warren__job_clear(&job);
}

static void test_header_nested_limits(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    static amqp_table_entry_t inner[65];
    static char names[65][8];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        inner[i].key = text(names[i]);
        inner[i].value = field(AMQP_FIELD_KIND_BOOLEAN);
    }
    msg_init(&m, "w", "{}");
    amqp_field_value_t *v = msg_header(&m, "x-table");
    v->kind = AMQP_FIELD_KIND_TABLE;
    v->value.table.num_entries = 64;
    v->value.table.entries = inner;
    expect_ok(&m, &job);
    assert_int_equal(json_object_size(json_object_get(warren_job_headers(&job), "x-table")), 64);
    warren__job_clear(&job);

    v->value.table.num_entries = 65;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "65 entries");

    /* A corrupt count is refused, not trusted. */
    v->value.table.num_entries = -1;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "corrupt");
}

static void test_header_total_budget(void **state)
{
    (void)state;
    struct msg m;
    static amqp_field_value_t elems[64];
    for (int i = 0; i < 64; i++)
        elems[i] = field(AMQP_FIELD_KIND_VOID);
    msg_init(&m, "w", "{}");
    /* 17 arrays of 64 values: each within limits, 1105 values in all */
    for (int i = 0; i < 17; i++) {
        snprintf(header_names[i], sizeof header_names[i], "a%d", i);
        amqp_field_value_t *v = msg_header(&m, header_names[i]);
        v->kind = AMQP_FIELD_KIND_ARRAY;
        v->value.array.num_entries = 64;
        v->value.array.entries = elems;
    }
    expect_reject(&m, WARREN_DEAD_MALFORMED, "values in all");
}

static void test_header_bad_names_and_kinds(void **state)
{
    (void)state;
    struct msg m;
    msg_init(&m, "w", "{}");
    msg_int_header(&m, "caf\xc3", 1);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "header name");

    msg_init(&m, "w", "{}");
    amqp_field_value_t *v = msg_header(&m, "x");
    m.entries[0].key = bytes_of("a\0b", 3);
    v->kind = AMQP_FIELD_KIND_VOID;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "header name");

    msg_init(&m, "w", "{}");
    v = msg_header(&m, "x-odd");
    v->kind = 'Z';
    expect_reject(&m, WARREN_DEAD_MALFORMED, "unknown field type");
}

static void test_headers_json(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    amqp_field_value_t *v;
    amqp_field_value_t arr[2];
    amqp_table_entry_t tab[1];

    msg_init(&m, "w", "{}");
    msg_str_header(&m, "s", "h\xc3\xa9llo");
    v = msg_header(&m, "bytes"), v->kind = AMQP_FIELD_KIND_BYTES,
    v->value.bytes = bytes_of("\x00\xff\x10", 3);
    v = msg_header(&m, "latin1"), v->kind = AMQP_FIELD_KIND_UTF8,
    v->value.bytes = bytes_of("caf\xe9", 4);
    v = msg_header(&m, "one"), v->kind = AMQP_FIELD_KIND_BYTES, v->value.bytes = text("a");
    v = msg_header(&m, "i8"), v->kind = AMQP_FIELD_KIND_I8, v->value.i8 = -8;
    v = msg_header(&m, "u32"), v->kind = AMQP_FIELD_KIND_U32, v->value.u32 = UINT32_MAX;
    v = msg_header(&m, "u64big"), v->kind = AMQP_FIELD_KIND_U64, v->value.u64 = UINT64_MAX;
    v = msg_header(&m, "t"), v->kind = AMQP_FIELD_KIND_BOOLEAN, v->value.boolean = 1;
    v = msg_header(&m, "f"), v->kind = AMQP_FIELD_KIND_BOOLEAN, v->value.boolean = 0;
    v = msg_header(&m, "d"), v->kind = AMQP_FIELD_KIND_F64, v->value.f64 = 2.5;
    v = msg_header(&m, "f32"), v->kind = AMQP_FIELD_KIND_F32, v->value.f32 = 0.5f;
    v = msg_header(&m, "nan"), v->kind = AMQP_FIELD_KIND_F64, v->value.f64 = NAN;
    v = msg_header(&m, "inf"), v->kind = AMQP_FIELD_KIND_F32, v->value.f32 = -INFINITY;
    v = msg_header(&m, "dec"), v->kind = AMQP_FIELD_KIND_DECIMAL,
    v->value.decimal.decimals = 2, v->value.decimal.value = 1250;
    v = msg_header(&m, "dec_small"), v->kind = AMQP_FIELD_KIND_DECIMAL,
    v->value.decimal.decimals = 4, v->value.decimal.value = 5;
    v = msg_header(&m, "dec_int"), v->kind = AMQP_FIELD_KIND_DECIMAL,
    v->value.decimal.decimals = 0, v->value.decimal.value = 42;
    v = msg_header(&m, "ts"), v->kind = AMQP_FIELD_KIND_TIMESTAMP,
    v->value.u64 = 1767225600;
    v = msg_header(&m, "void"), v->kind = AMQP_FIELD_KIND_VOID;
    arr[0] = field(AMQP_FIELD_KIND_UTF8), arr[0].value.bytes = text("x");
    arr[1] = field(AMQP_FIELD_KIND_I16), arr[1].value.i16 = 2;
    v = msg_header(&m, "arr"), v->kind = AMQP_FIELD_KIND_ARRAY,
    v->value.array.num_entries = 2, v->value.array.entries = arr;
    tab[0].key = text("k"), tab[0].value = field(AMQP_FIELD_KIND_U8),
    tab[0].value.value.u8 = 200;
    v = msg_header(&m, "tab"), v->kind = AMQP_FIELD_KIND_TABLE,
    v->value.table.num_entries = 1, v->value.table.entries = tab;
    v = msg_header(&m, "empty"), v->kind = AMQP_FIELD_KIND_UTF8, v->value.bytes = text("");
    msg_str_header(&m, "s", "second"); /* a repeated name: the first wins */

    expect_ok(&m, &job);
    json_t *h = warren_job_headers(&job);
    char *dump = json_dumps(h, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(dump); /* every string in it is valid UTF-8 */
    free(dump);
    assert_string_equal(json_string_value(json_object_get(h, "s")), "h\xc3\xa9llo");
    assert_string_equal(json_string_value(json_object_get(h, "bytes")), "AP8Q");
    assert_string_equal(json_string_value(json_object_get(h, "latin1")), "Y2Fm6Q==");
    assert_string_equal(json_string_value(json_object_get(h, "one")), "YQ==");
    assert_int_equal(json_integer_value(json_object_get(h, "i8")), -8);
    assert_int_equal(json_integer_value(json_object_get(h, "u32")), UINT32_MAX);
    assert_string_equal(json_string_value(json_object_get(h, "u64big")),
                        "18446744073709551615");
    assert_true(json_is_true(json_object_get(h, "t")));
    assert_true(json_is_false(json_object_get(h, "f")));
    assert_true(json_real_value(json_object_get(h, "d")) == 2.5);
    assert_true(json_real_value(json_object_get(h, "f32")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(h, "nan")), "NaN");
    assert_string_equal(json_string_value(json_object_get(h, "inf")), "-Infinity");
    assert_string_equal(json_string_value(json_object_get(h, "dec")), "12.50");
    assert_string_equal(json_string_value(json_object_get(h, "dec_small")), "0.0005");
    assert_string_equal(json_string_value(json_object_get(h, "dec_int")), "42");
    assert_int_equal(json_integer_value(json_object_get(h, "ts")), 1767225600);
    assert_true(json_is_null(json_object_get(h, "void")));
    json_t *a = json_object_get(h, "arr");
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "x");
    assert_int_equal(json_integer_value(json_array_get(a, 1)), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "tab"), "k")), 200);
    assert_string_equal(json_string_value(json_object_get(h, "empty")), "");
    warren__job_clear(&job);
}

/* ---- body --------------------------------------------------------------------- */

static void test_body_bad_utf8(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"a\": \"\xc0\xaf\"}",             /* overlong '/' */
        "{\"a\": \"\xe0\x80\xaf\"}",         /* overlong, 3 bytes */
        "{\"a\": \"\xed\xa0\x80\"}",         /* surrogate U+D800 */
        "{\"a\": \"\xf4\x90\x80\x80\"}",     /* above U+10FFFF */
        "{\"a\": \"\xe2\x82\"}",             /* truncated */
        "{\"a\": 1}\xc3",                    /* truncated at the end */
        "{\"a\": \"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct msg m;
        msg_init(&m, "w", bodies[i]);
        expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid UTF-8");
    }
    struct msg m;
    struct warren_job job;
    msg_init(&m, "w", "{\"a\": \"\xf0\x9f\x98\x80 caf\xc3\xa9\"}");
    expect_ok(&m, &job);
    warren__job_clear(&job);
}

static void test_body_not_object(void **state)
{
    (void)state;
    static const char *const bodies[] = {"[]", "[1, 2]", "\"text\"", "42", "-1.5", "null",
                                         "true", " [ {} ] "};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct msg m;
        msg_init(&m, "w", bodies[i]);
        expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not a JSON object");
    }
}

static void test_body_empty_and_invalid(void **state)
{
    (void)state;
    struct msg m;
    msg_init(&m, "w", "");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is empty");

    msg_init(&m, "w", "{\"a\": }");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid JSON");
    msg_init(&m, "w", "{\"a\": 1}\n{\"b\": 2}");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "line 2");
    msg_init(&m, "w", "{\"a\": 1");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid JSON");
    msg_init(&m, "w", "   ");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid JSON");
    /* \u0000 is refused (jansson's default), so args are safe as C strings */
    msg_init(&m, "w", "{\"a\": \"x\\u0000y\"}");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid JSON");
    /* a raw NUL byte is valid UTF-8 but not JSON */
    msg_init(&m, "w", NULL);
    msg_body(&m, "{}\0", 3);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid JSON");
}

/* A body `levels` deep: `[[[1]]]`, or `{"a":{"a":{}}}` for objects. */
static char *nested_body(int levels, int objects)
{
    char *s = malloc((size_t)levels * 6 + 8);
    size_t n = 0;
    for (int i = 0; i < levels - objects; i++) {
        const char *open = objects ? "{\"a\":" : "[";
        memcpy(s + n, open, strlen(open));
        n += strlen(open);
    }
    if (objects) {
        s[n++] = '{';
        s[n++] = '}';
    } else {
        s[n++] = '1';
    }
    for (int i = 0; i < levels - objects; i++)
        s[n++] = objects ? '}' : ']';
    s[n] = '\0';
    return s;
}

static void test_body_depth(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    char *body;

    /* 64 levels: an object holding 63 nested arrays */
    body = nested_body(63, 0);
    char *wrapped = malloc(strlen(body) + 8);
    sprintf(wrapped, "{\"a\":%s}", body);
    msg_init(&m, "w", wrapped);
    expect_ok(&m, &job);
    warren__job_clear(&job);
    free(body);
    free(wrapped);

    body = nested_body(64, 0);
    wrapped = malloc(strlen(body) + 8);
    sprintf(wrapped, "{\"a\":%s}", body);
    msg_init(&m, "w", wrapped);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 64 levels");
    free(body);
    free(wrapped);

    body = nested_body(64, 1);
    msg_init(&m, "w", body);
    expect_ok(&m, &job);
    warren__job_clear(&job);
    free(body);

    body = nested_body(65, 1);
    msg_init(&m, "w", body);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 64 levels");
    free(body);
}

static void test_body_brackets_in_strings(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    char body[400];
    char brackets[201];
    memset(brackets, '[', 100);
    memset(brackets + 100, '{', 100);
    brackets[200] = '\0';
    /* brackets inside strings, and an escaped quote that does not end one */
    snprintf(body, sizeof body, "{\"k\": \"%s\", \"e\": \"\\\"[[[[\\\\\", \"[\": 1}", brackets);
    msg_init(&m, "w", body);
    expect_ok(&m, &job);
    assert_int_equal(json_object_size(job.args), 3);
    warren__job_clear(&job);
}

static void test_body_hostile_brackets(void **state)
{
    (void)state;
    struct msg m;
    size_t len = 1024 * 1024;
    char *body = malloc(len);
    memset(body, '[', len);
    msg_init(&m, "w", NULL);
    msg_body(&m, body, len);
    m.max_body = len;
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 64 levels");
    free(body);
}

/* ---- size and rule order ------------------------------------------------------- */

static void test_too_large(void **state)
{
    (void)state;
    struct msg m;
    struct warren_job job;
    char why[256];

    msg_init(&m, "w", "{\"a\": 1}"); /* 8 bytes */
    m.max_body = 8;
    expect_ok(&m, &job);
    warren__job_clear(&job);

    m.max_body = 7;
    assert_int_equal(decode(&m, &job, why, sizeof why), WARREN_DEAD_TOO_LARGE);
    assert_string_equal(why, "body of 8 bytes exceeds max_message_bytes 7");
    assert_string_equal(job.worker, "w");
    assert_string_equal(job.id, "id-1");

    /* checked before anything else: headers, worker, JSON */
    msg_init(&m, NULL, "not json at all");
    m.exchange = "";
    add_numbered_headers(&m, 65);
    m.max_body = 3;
    expect_reject(&m, WARREN_DEAD_TOO_LARGE, "exceeds max_message_bytes 3");

    /* and an id is assigned for the log line when there is none */
    msg_init(&m, "w", "{}");
    m.props._flags &= ~AMQP_BASIC_MESSAGE_ID_FLAG;
    m.max_body = 1;
    assert_int_equal(decode(&m, &job, why, sizeof why), WARREN_DEAD_TOO_LARGE);
    assert_true(is_uuid_v4(job.id));
    assert_int_equal(job.id_assigned, 1);
}

static void test_rule_order(void **state)
{
    (void)state;
    struct msg m;

    /* headers before the worker name */
    msg_init(&m, NULL, "{}");
    m.exchange = "";
    add_numbered_headers(&m, 65);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "headers exceed");

    /* worker name before message_id */
    msg_init(&m, "bad name", "{}");
    m.props.message_id = text("bad\x01id");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid worker name");

    /* message_id before the attempt */
    msg_init(&m, "w", "{}");
    m.props.message_id = text("bad\x01id");
    msg_int_header(&m, "x-warren-attempt", 0);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "invalid message_id");

    /* the attempt before the body */
    msg_init(&m, "w", "[]");
    msg_int_header(&m, "x-warren-attempt", 0);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "x-warren-attempt");

    /* UTF-8 before JSON */
    msg_init(&m, "w", "[\xc0");
    expect_reject(&m, WARREN_DEAD_MALFORMED, "UTF-8");

    /* UTF-8 before nesting (jansson does the UTF-8 check; the message
     * stays the one the rules give first) */
    char deep[200];
    memset(deep, '[', 100);
    memcpy(deep + 100, "\"\xff\"", 4);
    msg_init(&m, "w", NULL);
    msg_body(&m, deep, 104);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "body is not valid UTF-8");
    msg_body(&m, deep, 100);
    expect_reject(&m, WARREN_DEAD_MALFORMED, "deeper than 64 levels");
}

/* The log fields writer gives json_dumps's text, byte for byte. */
static void test_log_fields_match_jansson(void **state)
{
    (void)state;
    static const char *const values[] = {
        "", "plain", "q\"uote", "back\\slash", "sl/ash", "\b\f\n\r\t", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xf0\x9f\x98\x80", "all \"\\/\x02 at once\n",
    };
    static const long long ints[] = {0, 1, -1, 42, 9223372036854775807LL, -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct warren_fields f;
        warren__fields_begin(&f);
        assert_int_equal(warren__fields_str(&f, "id", values[i]), 0);
        warren__fields_int(&f, "n", ints[i % 6]);
        assert_int_equal(warren__fields_str(&f, "k\"ey", values[(i + 1) % 9]), 0);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(values[i]));
        json_object_set_new(o, "n", json_integer(ints[i % 6]));
        json_object_set_new(o, "k\"ey", json_string(values[(i + 1) % 9]));
        char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_string_equal(warren__fields_end(&f), want);
        free(want);
        json_decref(o);
    }
    /* not UTF-8: left out, as jansson would refuse the string */
    struct warren_fields f;
    warren__fields_begin(&f);
    assert_int_equal(warren__fields_str(&f, "a", "x"), 0);
    assert_int_equal(warren__fields_str(&f, "bad", "\xc3("), -1);
    warren__fields_int(&f, "b", 2);
    assert_string_equal(warren__fields_end(&f), "{\"a\":\"x\",\"b\":2}");
    warren__fields_begin(&f);
    assert_string_equal(warren__fields_end(&f), "{}");
    /* too long for the buffer: no text rather than a cut one */
    char *big = malloc(WARREN_FIELDS_MAX);
    assert_non_null(big);
    memset(big, 'x', WARREN_FIELDS_MAX - 1);
    big[WARREN_FIELDS_MAX - 1] = '\0';
    warren__fields_begin(&f);
    warren__fields_str(&f, "big", big);
    assert_null(warren__fields_end(&f));
    free(big);
}

static void test_null_arguments(void **state)
{
    (void)state;
    struct warren_job job;
    char why[64];
    assert_int_equal(warren__job_decode(&job, NULL, "warren", 10, why, sizeof why),
                     WARREN_DEAD_MALFORMED);
    assert_null(job.args);
    assert_int_equal(warren__job_decode(NULL, NULL, "warren", 10, NULL, 0),
                     WARREN_DEAD_MALFORMED);

    /* why may be NULL; jobs_exchange may be NULL (never the routing key) */
    struct warren_delivery d = {"warren", 6, "w", 1, NULL, "{}", 2};
    assert_int_equal(warren__job_decode(&job, &d, NULL, 10, NULL, 0), WARREN_DEAD_MALFORMED);
    assert_int_equal(warren__job_decode(&job, &d, "warren", 10, NULL, 0), WARREN_DEAD_NONE);
    warren__job_clear(&job);
    warren__job_clear(&job);
    warren__job_clear(NULL);

    /* a short why buffer is truncated, not overrun */
    char tiny[8];
    struct msg m;
    msg_init(&m, "w", "[]");
    struct warren_delivery d2 = {"warren", 6, "w", 1, &m.props, "[]", 2};
    assert_int_equal(warren__job_decode(&job, &d2, "warren", 10, tiny, sizeof tiny),
                     WARREN_DEAD_MALFORMED);
    assert_int_equal(strlen(tiny), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_field_int_widths),
        cmocka_unit_test(test_field_int_rejects),
        cmocka_unit_test(test_table_find),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_decode_valid),
        cmocka_unit_test(test_worker_from_routing_key),
        cmocka_unit_test(test_type_wins),
        cmocka_unit_test(test_worker_missing),
        cmocka_unit_test(test_worker_bad_names),
        cmocka_unit_test(test_message_id_missing),
        cmocka_unit_test(test_message_id_limits),
        cmocka_unit_test(test_attempt_all_widths),
        cmocka_unit_test(test_attempt_invalid),
        cmocka_unit_test(test_max_attempts),
        cmocka_unit_test(test_replay_lenient),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_header_value_size),
        cmocka_unit_test(test_header_depth),
        cmocka_unit_test(test_header_nested_limits),
        cmocka_unit_test(test_header_total_budget),
        cmocka_unit_test(test_header_bad_names_and_kinds),
        cmocka_unit_test(test_headers_json),
        cmocka_unit_test(test_log_fields_match_jansson),
        cmocka_unit_test(test_body_bad_utf8),
        cmocka_unit_test(test_body_not_object),
        cmocka_unit_test(test_body_empty_and_invalid),
        cmocka_unit_test(test_body_depth),
        cmocka_unit_test(test_body_brackets_in_strings),
        cmocka_unit_test(test_body_hostile_brackets),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_rule_order),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
