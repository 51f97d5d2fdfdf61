/* Unit tests for signature.c: the spec's HMAC-SHA256 job signature, key
 * files, verification outcomes and the permission warnings for secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "config.h"
#include "signature.h"

/* Reference vector, made outside warren with OpenSSL's command line:
 *
 *   printf 'send_email\norder-42\n1700000000\n{"to":"a@example.com"}' \
 *       | openssl dgst -sha256 -hmac 'test-key'
 *
 * (the key file holds "test-key\n"; its one trailing newline is not part
 * of the key). */
#define REF_WORKER "send_email"
#define REF_ID "order-42"
#define REF_TS 1700000000ULL
#define REF_BODY "{\"to\":\"a@example.com\"}"
#define REF_SIG "v1=02888d93d66bb63fa1be35c127949d8d36872a9d268387a49028f00fff9c6d0a"

/* printf 'diag.echo\n\n\n{}' | openssl dgst -sha256 -hmac 'k'
 * (no message_id, no timestamp: both parts empty). */
#define EMPTY_SIG "v1=60b7bb46d51fc63281fa009854bbf545ab296c15ac819cb5ac57c1950165462a"

/* The REF text again, with the key "test-key" plus a newline: a key file
 * "test-key\n\n" loses only its last newline. Made with
 *   printf '<REF text>' | openssl dgst -sha256 -hmac 'test-key
 *   '
 * (a newline inside the quotes). */
#define NEWLINE_KEY_SIG "v1=ef60289496706da32b60c1c3fc7679c76422c9a14650818606885ec9b3a81143"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/warren-sig-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static struct warren_sig_key *load(const char *path, const char *content, size_t len)
{
    struct warren_sig_key *key = NULL;
    warren_error err;
    warren_error_clear(&err);
    write_file(path, content, len, 0600);
    if (warren__sig_key_load(&key, path, &err) != WARREN_OK)
        fail_msg("loading %s: %s", path, err.text);
    return key;
}

static void sign(const struct warren_sig_key *key, const char *worker, const char *id,
                 int has_ts, uint64_t ts, const char *body, char out[WARREN_SIG_VALUE_SIZE])
{
    warren_error err;
    warren_error_clear(&err);
    if (warren__sig_sign(key, worker, id, has_ts, ts, body, strlen(body), out, &err) !=
        WARREN_OK)
        fail_msg("sign: %s", err.text);
}

/* Properties as a delivery would carry them, with one header. */
struct props {
    amqp_basic_properties_t p;
    amqp_table_entry_t h[2];
};

static void make_props(struct props *m, const char *id, int has_ts, uint64_t ts,
                       const char *sig)
{
    memset(m, 0, sizeof *m);
    if (id) {
        m->p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        m->p.message_id = amqp_cstring_bytes(id);
    }
    if (has_ts) {
        m->p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        m->p.timestamp = ts;
    }
    m->p._flags |= AMQP_BASIC_HEADERS_FLAG;
    m->h[0].key = amqp_cstring_bytes("x-warren-attempt");
    m->h[0].value.kind = AMQP_FIELD_KIND_I32;
    m->h[0].value.value.i32 = 1;
    m->p.headers.entries = m->h;
    m->p.headers.num_entries = 1;
    if (sig) {
        m->h[1].key = amqp_cstring_bytes(WARREN_SIG_HEADER);
        m->h[1].value.kind = AMQP_FIELD_KIND_UTF8;
        m->h[1].value.value.bytes = amqp_cstring_bytes(sig);
        m->p.headers.num_entries = 2;
    }
}

static enum warren_sig_result check(const struct warren_sig_key *key, const char *worker,
                                    const struct props *m, const char *body)
{
    return warren__signature_check_delivery(key, worker, &m->p, body, strlen(body));
}

static void test_reference_vector(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "test-key\n", 9);
    char sig[WARREN_SIG_VALUE_SIZE];
    sign(key, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sig);
    assert_string_equal(sig, REF_SIG);

    struct props m;
    make_props(&m, REF_ID, 1, REF_TS, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_OK);
    assert_null(warren__signature_refusal(key, 1, REF_WORKER, &m.p, REF_BODY,
                                          strlen(REF_BODY)));
    warren__sig_key_free(key);
}

static void test_no_id_no_timestamp(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "k", 1);
    char sig[WARREN_SIG_VALUE_SIZE];
    sign(key, "diag.echo", NULL, 0, 0, "{}", sig);
    assert_string_equal(sig, EMPTY_SIG);
    /* An empty id is the same text as no id. */
    sign(key, "diag.echo", "", 0, 0, "{}", sig);
    assert_string_equal(sig, EMPTY_SIG);

    struct props m;
    make_props(&m, NULL, 0, 0, EMPTY_SIG);
    assert_int_equal(check(key, "diag.echo", &m, "{}"), WARREN_SIG_OK);
    /* A timestamp of 0 is "0", not empty. */
    make_props(&m, NULL, 1, 0, EMPTY_SIG);
    assert_int_equal(check(key, "diag.echo", &m, "{}"), WARREN_SIG_BAD);
    /* The signed job without an id must stay without one. */
    make_props(&m, "assigned-by-a-host", 0, 0, EMPTY_SIG);
    assert_int_equal(check(key, "diag.echo", &m, "{}"), WARREN_SIG_BAD);
    warren__sig_key_free(key);
}

static void test_missing_timestamp(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "test-key\n", 9);
    char with[WARREN_SIG_VALUE_SIZE], without[WARREN_SIG_VALUE_SIZE];
    sign(key, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, with);
    sign(key, REF_WORKER, REF_ID, 0, 0, REF_BODY, without);
    assert_string_not_equal(with, without);

    struct props m;
    make_props(&m, REF_ID, 0, 0, without);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_OK);
    /* Signed without a timestamp, delivered with one: does not match. */
    make_props(&m, REF_ID, 1, REF_TS, without);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    /* Signed with one, delivered without. */
    make_props(&m, REF_ID, 0, 0, with);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    warren__sig_key_free(key);
}

static void test_tampering(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "test-key\n", 9);
    struct props m;

    make_props(&m, REF_ID, 1, REF_TS, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, "{\"to\":\"b@example.com\"}"), WARREN_SIG_BAD);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY " "), WARREN_SIG_BAD);
    assert_int_equal(check(key, "send_emaiL", &m, REF_BODY), WARREN_SIG_BAD);
    assert_int_equal(check(key, "generate_report", &m, REF_BODY), WARREN_SIG_BAD);
    make_props(&m, "order-43", 1, REF_TS, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    make_props(&m, REF_ID, 1, REF_TS + 1, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    /* Moving a newline between parts changes the text being signed. */
    make_props(&m, "order-42\n1700000000", 0, 0, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    /* Refusal text for a wrong signature, required or not. */
    make_props(&m, REF_ID, 1, REF_TS, REF_SIG);
    assert_string_equal(warren__signature_refusal(key, 0, REF_WORKER, &m.p, "{}", 2),
                        "signature does not match");
    assert_string_equal(warren__signature_refusal(key, 1, REF_WORKER, &m.p, "{}", 2),
                        "signature does not match");
    warren__sig_key_free(key);
}

static void test_wrong_key(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "other-key\n", 10);
    struct props m;
    make_props(&m, REF_ID, 1, REF_TS, REF_SIG);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    warren__sig_key_free(key);
}

static void test_malformed_header(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "test-key\n", 9);
    struct props m;
    char upper[sizeof REF_SIG], shortened[sizeof REF_SIG];

    /* Uppercase hex spells the same digest but is refused. */
    snprintf(upper, sizeof upper, "v1=%s", REF_SIG + 3);
    for (char *p = upper + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    make_props(&m, REF_ID, 1, REF_TS, upper);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);

    const char *bad[] = {
        REF_SIG + 3,                  /* no prefix */
        "v2=02888d93d66bb63fa1be35c127949d8d36872a9d268387a49028f00fff9c6d0a",
        "V1=02888d93d66bb63fa1be35c127949d8d36872a9d268387a49028f00fff9c6d0a",
        "sha256=02888d93d66bb63fa1be35c127949d8d36872a9d268387a49028f00fff9c6d0a",
        REF_SIG "00",                 /* too long */
        " " REF_SIG,                  /* leading space */
        "v1=",
        "",
        "v1=02888d93d66bb63fa1be35c127949d8d36872a9d268387a49028f00fff9c6d0g",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_props(&m, REF_ID, 1, REF_TS, bad[i]);
        if (check(key, REF_WORKER, &m, REF_BODY) != WARREN_SIG_BAD)
            fail_msg("accepted '%s'", bad[i]);
    }
    snprintf(shortened, sizeof shortened, "%.*s", (int)strlen(REF_SIG) - 2, REF_SIG);
    make_props(&m, REF_ID, 1, REF_TS, shortened);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);

    /* A byte-array header ('x') with the right text is a string too. */
    make_props(&m, REF_ID, 1, REF_TS, REF_SIG);
    m.h[1].value.kind = AMQP_FIELD_KIND_BYTES;
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_OK);
    /* A non-string header is bad, not missing. */
    m.h[1].value.kind = AMQP_FIELD_KIND_I64;
    m.h[1].value.value.i64 = 42;
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_BAD);
    warren__sig_key_free(key);
}

static void test_missing(void **state)
{
    struct fixture *f = *state;
    struct warren_sig_key *key = load(f->path, "test-key\n", 9);
    struct props m;
    make_props(&m, REF_ID, 1, REF_TS, NULL);
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_MISSING);
    assert_int_equal(warren__signature_check_delivery(key, REF_WORKER, NULL, "{}", 2),
                     WARREN_SIG_MISSING);
    m.p._flags &= ~AMQP_BASIC_HEADERS_FLAG;
    assert_int_equal(check(key, REF_WORKER, &m, REF_BODY), WARREN_SIG_MISSING);

    make_props(&m, REF_ID, 1, REF_TS, NULL);
    assert_string_equal(warren__signature_refusal(key, 1, REF_WORKER, &m.p, REF_BODY,
                                                  strlen(REF_BODY)),
                        "missing signature");
    assert_null(warren__signature_refusal(key, 0, REF_WORKER, &m.p, REF_BODY,
                                          strlen(REF_BODY)));
    /* Without a key, nothing is refused. */
    assert_null(warren__signature_refusal(NULL, 1, REF_WORKER, &m.p, REF_BODY,
                                          strlen(REF_BODY)));
    warren__sig_key_free(key);
}

static void test_key_file_newlines(void **state)
{
    struct fixture *f = *state;
    char sig[WARREN_SIG_VALUE_SIZE];

    /* Without a trailing newline: the same key as with one. */
    struct warren_sig_key *key = load(f->path, "test-key", 8);
    sign(key, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sig);
    assert_string_equal(sig, REF_SIG);
    warren__sig_key_free(key);

    /* Two newlines: only the last one goes. */
    key = load(f->path, "test-key\n\n", 10);
    sign(key, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sig);
    assert_string_equal(sig, NEWLINE_KEY_SIG);
    warren__sig_key_free(key);

    /* "\r\n" keeps its "\r": the key is bytes, not a line of text. */
    key = load(f->path, "test-key\r\n", 10);
    sign(key, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sig);
    assert_string_not_equal(sig, REF_SIG);
    warren__sig_key_free(key);

    /* Binary keys work: bytes after a NUL count. */
    struct warren_sig_key *a = load(f->path, "ab\0cd", 5);
    char sa[WARREN_SIG_VALUE_SIZE];
    sign(a, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sa);
    warren__sig_key_free(a);
    struct warren_sig_key *b = load(f->path, "ab\0ce", 5);
    sign(b, REF_WORKER, REF_ID, 1, REF_TS, REF_BODY, sig);
    warren__sig_key_free(b);
    assert_string_not_equal(sa, sig);
}

static void expect_load_error(const char *path, warren_status code, const char *needle)
{
    struct warren_sig_key *key = (struct warren_sig_key *)1;
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__sig_key_load(&key, path, &err), code);
    assert_null(key);
    if (!strstr(err.text, needle) || !strstr(err.text, path))
        fail_msg("error '%s' should name %s and say '%s'", err.text, path, needle);
}

static void test_key_file_errors(void **state)
{
    struct fixture *f = *state;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    expect_load_error(missing, WARREN_EIO, "No such file");
    expect_load_error(f->dir, WARREN_ECONFIG, "not a regular file");

    write_file(f->path, "", 0, 0600);
    expect_load_error(f->path, WARREN_ECONFIG, "empty");
    write_file(f->path, "\n", 1, 0600);
    expect_load_error(f->path, WARREN_ECONFIG, "empty");

    char *big = malloc(WARREN_SIG_KEY_MAX + 2);
    assert_non_null(big);
    memset(big, 'k', WARREN_SIG_KEY_MAX + 2);
    write_file(f->path, big, WARREN_SIG_KEY_MAX + 1, 0600);
    expect_load_error(f->path, WARREN_ECONFIG, "larger than");
    /* The largest key, with and without its newline, loads. */
    big[WARREN_SIG_KEY_MAX] = '\n';
    warren__sig_key_free(load(f->path, big, WARREN_SIG_KEY_MAX + 1));
    warren__sig_key_free(load(f->path, big, WARREN_SIG_KEY_MAX));
    free(big);

    /* Errors name the file, never its bytes. */
    char *secret = malloc(WARREN_SIG_KEY_MAX + 100);
    assert_non_null(secret);
    for (size_t i = 0; i + 6 <= WARREN_SIG_KEY_MAX + 100; i += 6)
        memcpy(secret + i, "SEKRIT", 6);
    write_file(f->path, secret, WARREN_SIG_KEY_MAX + 96, 0600);
    free(secret);
    struct warren_sig_key *key = NULL;
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren__sig_key_load(&key, f->path, &err), WARREN_ECONFIG);
    assert_null(strstr(err.text, "SEKRIT"));
    warren__sig_key_free(NULL);
}

static void test_permission_warning(void **state)
{
    struct fixture *f = *state;
    char text[1024];

    write_file(f->path, "k", 1, 0600);
    assert_int_equal(warren__secret_file_warning(f->path, "security.signing_key_file", text,
                                                 sizeof text), 0);
    write_file(f->path, "k", 1, 0400);
    assert_int_equal(warren__secret_file_warning(f->path, "x", text, sizeof text), 0);

    const mode_t open_modes[] = {0644, 0640, 0604, 0620, 0660, 0666};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        write_file(f->path, "k", 1, open_modes[i]);
        text[0] = '\0';
        assert_int_equal(warren__secret_file_warning(f->path, "security.signing_key_file",
                                                     text, sizeof text), 1);
        assert_non_null(strstr(text, f->path));
        assert_non_null(strstr(text, "security.signing_key_file"));
        assert_non_null(strstr(text, "warning"));
    }
    /* A missing file is not a permission problem (loading says so). */
    unlink(f->path);
    assert_int_equal(warren__secret_file_warning(f->path, "x", text, sizeof text), 0);
}

static void collect(const char *text, void *user)
{
    char *buf = user;
    strncat(buf, text, 4000 - strlen(buf));
    strncat(buf, "\n", 4000 - strlen(buf));
}

static void test_config_warnings_and_paths(void **state)
{
    struct fixture *f = *state;
    char conf[160], text[4096] = "", buf[256];
    struct warren_config cfg;
    warren_error err;

    snprintf(conf, sizeof conf, "%s/warren.conf", f->dir);
    write_file(f->path, "k\n", 2, 0644);
    const char *body = "broker = { urls = [\"amqp://u:hunter2@127.0.0.1:5672/\"];"
                       " password_file = \"key\"; };\n"
                       "security = { signing_key_file = \"key\"; };\n";
    write_file(conf, body, strlen(body), 0644);
    unsetenv("WARREN_URL");
    warren_error_clear(&err);
    assert_int_equal(warren__config_load(&cfg, conf, NULL, &err), WARREN_OK);

    /* Relative paths are the config folder's. */
    assert_string_equal(warren__config_path(&cfg, "key", buf, sizeof buf), f->path);
    assert_string_equal(warren__config_path(&cfg, "/etc/k", buf, sizeof buf), "/etc/k");
    assert_null(warren__config_path(&cfg, "key", buf, 4));

    assert_int_equal(warren__secret_warnings(&cfg, collect, text), 3);
    assert_non_null(strstr(text, "security.signing_key_file"));
    assert_non_null(strstr(text, "broker.password_file"));
    assert_non_null(strstr(text, conf));
    assert_null(strstr(text, "hunter2"));

    assert_int_equal(warren__config_resolve_secret_paths(&cfg), WARREN_OK);
    assert_string_equal(cfg.signing_key_file, f->path);
    assert_string_equal(cfg.password_file, f->path);
    assert_int_equal(warren__config_resolve_secret_paths(&cfg), WARREN_OK);
    assert_string_equal(cfg.signing_key_file, f->path);
    warren__config_free(&cfg);

    /* Private files and a "guest" URL: nothing to say. */
    chmod(f->path, 0600);
    body = "broker = { urls = [\"amqp://guest:guest@127.0.0.1:5672/\"]; };\n"
           "security = { signing_key_file = \"key\"; };\n";
    write_file(conf, body, strlen(body), 0644);
    assert_int_equal(warren__config_load(&cfg, conf, NULL, &err), WARREN_OK);
    text[0] = '\0';
    assert_int_equal(warren__secret_warnings(&cfg, collect, text), 0);
    warren__config_free(&cfg);
    unlink(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reference_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_id_no_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_newlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_warnings_and_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
