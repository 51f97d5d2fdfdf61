/* Unit tests of the configuration loader (config.c, config_parse.c,
 * config_diag.c) and of the duration and size helpers (duration.c).
 *
 * Most tests load a string under the name "t.conf" and compare the exact
 * "FILE:LINE: message" texts. test_data_cases walks tests/data/config/,
 * one folder per case holding warren.conf and the expected first error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/log.h>
#include "config.h"

#define NAME "t.conf"

struct loaded {
    struct warren_config cfg;
    struct warren_config_diag diag;
    warren_error err;
    warren_status st;
};

static void load(struct loaded *l, const char *text)
{
    warren_error_clear(&l->err);
    l->st = warren__config_load_string(&l->cfg, text, NAME, &l->diag, &l->err);
}

static void unload(struct loaded *l)
{
    warren__config_diag_free(&l->diag);
    warren__config_free(&l->cfg);
}

static void print_diag(const struct loaded *l)
{
    for (size_t i = 0; i < l->diag.n_errors; i++)
        print_message("  error: %s\n", l->diag.errors[i]);
    for (size_t i = 0; i < l->diag.n_warnings; i++)
        print_message("  warning: %s\n", l->diag.warnings[i]);
}

/* Loads text that must be valid (warnings allowed). */
static void load_ok(struct loaded *l, const char *text)
{
    load(l, text);
    if (l->st != WARREN_OK)
        print_diag(l);
    assert_int_equal(l->st, WARREN_OK);
    assert_int_equal(l->diag.n_errors, 0);
}

static int has_text(char **texts, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(texts[i], want) == 0)
            return 1;
    return 0;
}

/* Loads text that must fail with `want` among its errors. */
static void expect_error(const char *text, const char *want)
{
    struct loaded l;
    load(&l, text);
    if (!has_text(l.diag.errors, l.diag.n_errors, want)) {
        print_message("expected error: %s\n", want);
        print_diag(&l);
        fail();
    }
    assert_int_equal(l.st, WARREN_ECONFIG);
    unload(&l);
}

/* Loads text that must be valid, with `want` among its warnings. */
static void expect_warning(const char *text, const char *want)
{
    struct loaded l;
    load_ok(&l, text);
    if (!has_text(l.diag.warnings, l.diag.n_warnings, want)) {
        print_message("expected warning: %s\n", want);
        print_diag(&l);
        fail();
    }
    unload(&l);
}

/* ------------------------------------------------------------------ */
/* Durations and sizes */

static void test_parse_duration(void **state)
{
    static const struct { const char *text; long long ms; } good[] = {
        {"500ms", 500}, {"30s", 30000}, {"5m", 300000}, {"2h", 7200000},
        {"1d", 86400000}, {"45", 45000}, {"0", 0}, {"0ms", 0}, {"007s", 7000},
    };
    static const char *const bad[] = {"", "5x", "1.5h", "-1s", " 5s", "5s ", "5 s", "s",
                                      "ms", "+5s", "5sec", "1e3"};
    char why[256];
    long long ms;
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ms = -1;
        assert_int_equal(warren__parse_duration(good[i].text, &ms, why, sizeof why), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(warren__parse_duration(bad[i], &ms, why, sizeof why), -1);
    warren__parse_duration("5x", &ms, why, sizeof why);
    assert_string_equal(why, "bad duration '5x' (use 500ms, 30s, 5m, 2h, 1d or whole seconds)");
    assert_int_equal(warren__parse_duration("99999999999999999d", &ms, why, sizeof why), -1);
    assert_string_equal(why, "duration '99999999999999999d' is too large");
    assert_int_equal(warren__parse_duration("99999999999999999999999", &ms, why, sizeof why), -1);
    assert_int_equal(warren__parse_duration(NULL, &ms, why, sizeof why), -1);
    /* why may be left out. */
    assert_int_equal(warren__parse_duration("x", &ms, NULL, 0), -1);
}

static void test_parse_bytes(void **state)
{
    static const struct { const char *text; long long bytes; } good[] = {
        {"1048576", 1048576}, {"64KiB", 65536}, {"512MiB", 536870912LL},
        {"1GiB", 1073741824LL}, {"2TiB", 2LL << 40}, {"0", 0},
    };
    static const char *const bad[] = {"", "64KB", "1.5MiB", "-1", "MiB", "64 KiB", "64kib",
                                      "1GB"};
    char why[256];
    long long b;
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(warren__parse_bytes(good[i].text, &b, why, sizeof why), 0);
        assert_int_equal(b, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(warren__parse_bytes(bad[i], &b, why, sizeof why), -1);
    warren__parse_bytes("64KB", &b, why, sizeof why);
    assert_string_equal(why, "bad size '64KB' (use a number of bytes, or 64KiB, 512MiB, 1GiB)");
    assert_int_equal(warren__parse_bytes("99999999999TiB", &b, why, sizeof why), -1);
    assert_string_equal(why, "size '99999999999TiB' is too large");
}

static void test_format_duration(void **state)
{
    static const struct { long long ms; const char *text; } cases[] = {
        {0, "0s"}, {500, "500ms"}, {1500, "1500ms"}, {30000, "30s"}, {90000, "90s"},
        {600000, "10m"}, {2700000, "45m"}, {7200000, "2h"}, {86400000, "1d"},
        {90000000, "25h"}, {-1000, "-1s"}, {LLONG_MIN, "-9223372036854775808ms"},
    };
    char buf[32];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(warren__format_duration(cases[i].ms, buf, sizeof buf),
                            cases[i].text);
    /* What it prints reads back to the same value. */
    for (long long ms = 1; ms < 200LL * 86400000; ms = ms * 7 + 3) {
        long long back;
        warren__format_duration(ms, buf, sizeof buf);
        assert_int_equal(warren__parse_duration(buf, &back, NULL, 0), 0);
        assert_int_equal(back, ms);
    }
}

static void test_durations_in_config(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "retry = { initial_delay = 3; max_delay = \"2h\"; };\n"
                "host = { shutdown_timeout = \"1500ms\"; };\n"
                "broker = { consumer_timeout = \"1d\"; };\n"
                "web = { retention = \"120\"; };\n"  /* a string of digits: seconds */
                "workers = ( { name = \"w\"; time_limit = \"5m\"; lock_timeout = 0; } );\n");
    assert_int_equal(l.cfg.retry.initial_delay_ms, 3000);
    assert_int_equal(l.cfg.retry.max_delay_ms, 7200000);
    assert_int_equal(l.cfg.shutdown_timeout_ms, 1500);
    assert_int_equal(l.cfg.consumer_timeout_ms, 86400000);
    assert_int_equal(l.cfg.web_retention_ms, 120000);
    assert_int_equal(l.cfg.workers[0].time_limit_ms, 300000);
    assert_int_equal(l.cfg.workers[0].lock_timeout_ms, 0);
    unload(&l);

    expect_error("retry = { initial_delay = \"5x\"; };",
                 "t.conf:1: retry.initial_delay: bad duration '5x' (use 500ms, 30s, 5m, 2h, 1d "
                 "or whole seconds)");
    expect_error("retry = {\n max_delay = -5; };",
                 "t.conf:2: retry.max_delay: must not be negative");
    expect_error("retry = { max_delay = true; };",
                 "t.conf:1: retry.max_delay: must be a duration (500ms, 30s, 5m, 2h, 1d or "
                 "whole seconds), not a boolean");
    expect_error("retry = { max_delay = \"10000d\"; };",
                 "t.conf:1: retry.max_delay: must be between 0s and 268435455s");
    expect_error("broker = { consumer_timeout = 9223372036854775807L; };",
                 "t.conf:1: broker.consumer_timeout: too large");
    expect_error("web = { retention = \"0s\"; };", "t.conf:1: web.retention: must be at least 1s");
}

static void test_bytes_in_config(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "host = { max_message_bytes = \"64KiB\"; max_memory_per_process = \"1GiB\"; };");
    assert_int_equal(l.cfg.max_message_bytes, 65536);
    assert_int_equal(l.cfg.max_memory_per_process, 1LL << 30);
    unload(&l);
    load_ok(&l, "host = { max_message_bytes = 2048; max_memory_per_process = 5000000000L; };");
    assert_int_equal(l.cfg.max_message_bytes, 2048);
    assert_int_equal(l.cfg.max_memory_per_process, 5000000000LL);
    unload(&l);

    expect_error("host = { max_message_bytes = \"1GiB\"; };",
                 "t.conf:1: host.max_message_bytes: must be between 1 and 536870912");
    expect_error("host = { max_message_bytes = 0; };",
                 "t.conf:1: host.max_message_bytes: must be between 1 and 536870912");
    expect_error("host = { max_memory_per_process = \"512MB\"; };",
                 "t.conf:1: host.max_memory_per_process: bad size '512MB' (use a number of "
                 "bytes, or 64KiB, 512MiB, 1GiB)");
    expect_error("host = { max_memory_per_process = -1; };",
                 "t.conf:1: host.max_memory_per_process: must not be negative");
    expect_error("host = { max_memory_per_process = 1.5; };",
                 "t.conf:1: host.max_memory_per_process: must be a size (bytes, or 64KiB, "
                 "512MiB, 1GiB), not a float");
}

/* ------------------------------------------------------------------ */
/* Defaults */

static void check_defaults(const struct warren_config *cfg)
{
    char host[256] = "";

    assert_string_equal(cfg->namespace_, "warren");
    assert_int_equal(cfg->n_urls, 1);
    assert_string_equal(cfg->urls[0], "amqp://guest:guest@127.0.0.1:5672/");
    assert_null(cfg->urls[1]);
    assert_int_equal(cfg->heartbeat, 30);
    assert_null(cfg->password_file);
    assert_int_equal(cfg->consumer_timeout_ms, 30 * 60 * 1000);
    assert_null(cfg->management_url);
    assert_null(cfg->tls.ca_cert);
    assert_null(cfg->tls.cert);
    assert_null(cfg->tls.key);
    assert_int_equal(cfg->tls.verify_peer, 1);
    assert_int_equal(cfg->tls.verify_hostname, 1);

    gethostname(host, sizeof host - 1);
    assert_string_equal(cfg->host_name, host[0] ? host : "localhost");
    assert_int_equal(cfg->concurrency, 4);
    assert_int_equal(cfg->prefetch, 10);
    assert_int_equal(cfg->shutdown_timeout_ms, 30000);
    assert_int_equal(cfg->max_message_bytes, 1048576);
    assert_int_equal(cfg->max_crashes, 3);
    assert_int_equal(cfg->max_redeliveries, 20);
    assert_null(cfg->host_queues);
    assert_int_equal(cfg->n_host_queues, 0);
    assert_int_equal(cfg->max_jobs_per_process, 0);
    assert_int_equal(cfg->max_memory_per_process, 0);
    assert_string_equal(cfg->metrics_listen, "127.0.0.1:9464");
    assert_int_equal(cfg->log_level, WARREN_LOG_INFO);
    assert_int_equal(cfg->log_format, WARREN_LOG_TEXT);

    assert_int_equal(cfg->retry.max_attempts, 5);
    assert_int_equal(cfg->retry.initial_delay_ms, 1000);
    assert_true(cfg->retry.multiplier == 2.0);
    assert_int_equal(cfg->retry.max_delay_ms, 3600000);
    assert_true(cfg->retry.jitter == 0.2);

    assert_int_equal(cfg->n_queues, 1);
    assert_string_equal(cfg->queues[0].name, "default");
    assert_int_equal(cfg->queues[0].type, WARREN_QUEUE_CLASSIC);
    assert_int_equal(cfg->queues[0].max_priority, 10);
    assert_int_equal(cfg->queues[0].line, 0);
    assert_int_equal(cfg->n_modules, 0);
    assert_int_equal(cfg->n_workers, 0);
    assert_int_equal(cfg->n_schedules, 0);

    assert_null(cfg->signing_key_file);
    assert_int_equal(cfg->require_signature, 0);
    assert_int_equal(cfg->events_enabled, 0);
    assert_int_equal(cfg->events_persistent, 1);
    assert_string_equal(cfg->web_db, "var/warren.db");
    assert_string_equal(cfg->web_listen, "127.0.0.1:9465");
    assert_int_equal(cfg->web_retention_ms, 7LL * 86400000);
    assert_null(cfg->web_token_file);
}

static void test_defaults(void **state)
{
    struct warren_config cfg;
    (void)state;

    assert_int_equal(warren__config_defaults(&cfg), WARREN_OK);
    check_defaults(&cfg);
    assert_null(cfg.path);
    warren__config_free(&cfg);
    /* Freeing twice, or a zeroed struct, is harmless. */
    warren__config_free(&cfg);
    warren__config_free(NULL);
}

static void test_empty_file_has_defaults(void **state)
{
    struct loaded l;
    char *cwd = getcwd(NULL, 0);
    (void)state;

    load_ok(&l, "# nothing but a comment\n");
    check_defaults(&l.cfg);
    assert_string_equal(l.cfg.path, NAME);
    assert_string_equal(l.cfg.dir, cwd);  /* "t.conf" sits in the current folder */
    assert_int_equal(l.diag.n_warnings, 0);
    free(cwd);
    unload(&l);
}

static void test_failed_load_keeps_defaults(void **state)
{
    struct loaded l;
    (void)state;

    load(&l, "host = { concurrency = 0; prefetch = 7; };");
    assert_int_equal(l.st, WARREN_ECONFIG);
    assert_int_equal(l.cfg.concurrency, 4);
    assert_int_equal(l.cfg.prefetch, 7);
    assert_int_equal(l.cfg.n_queues, 1);
    unload(&l);
}

/* ------------------------------------------------------------------ */
/* Keys, types and bounds */

static void test_every_key_parsed(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l,
            "namespace = \"acme.jobs-1\";\n"
            "broker = { urls = [\"amqps://u:p@a:5671/vh\", \"amqp://b/\"]; heartbeat = 0;\n"
            "  password_file = \"pw\"; consumer_timeout = \"1h\";\n"
            "  management_url = \"https://m:15672/\";\n"
            "  tls = { ca_cert = \"ca\"; cert = \"c\"; key = \"k\"; verify_peer = false;\n"
            "          verify_hostname = false; }; };\n"
            "host = { name = \"h1\"; concurrency = 1024; prefetch = 65535; shutdown_timeout = 5;\n"
            "  max_message_bytes = 100; max_crashes = 1; max_redeliveries = 2;\n"
            "  queues = [\"a\"]; max_jobs_per_process = 1000; max_memory_per_process = 10;\n"
            "  metrics_listen = \"\"; log_level = \"debug\"; log_format = \"json\"; };\n"
            "retry = { max_attempts = 9; initial_delay = \"2s\"; multiplier = 3; max_delay = 60;\n"
            "  jitter = 0; };\n"
            "queues = ( { name = \"a\"; type = \"classic\"; max_priority = 255; },\n"
            "           { name = \"b\"; type = \"classic\"; max_priority = 1; } );\n"
            "security = { signing_key_file = \"key\"; require_signature = true; };\n"
            "events = { enabled = true; persistent = false; };\n"
            "web = { db = \"/tmp/x.db\"; listen = \"[::1]:0\"; retention = \"1h\";\n"
            "  token_file = \"tok\"; };\n");
    const struct warren_config *c = &l.cfg;
    assert_string_equal(c->namespace_, "acme.jobs-1");
    assert_int_equal(c->n_urls, 2);
    assert_string_equal(c->urls[0], "amqps://u:p@a:5671/vh");
    assert_string_equal(c->urls[1], "amqp://b/");
    assert_null(c->urls[2]);
    assert_int_equal(c->heartbeat, 0);
    assert_string_equal(c->password_file, "pw");
    assert_int_equal(c->consumer_timeout_ms, 3600000);
    assert_string_equal(c->management_url, "https://m:15672/");
    assert_string_equal(c->tls.ca_cert, "ca");
    assert_string_equal(c->tls.cert, "c");
    assert_string_equal(c->tls.key, "k");
    assert_int_equal(c->tls.verify_peer, 0);
    assert_int_equal(c->tls.verify_hostname, 0);
    assert_string_equal(c->host_name, "h1");
    assert_int_equal(c->concurrency, 1024);
    assert_int_equal(c->prefetch, 65535);
    assert_int_equal(c->shutdown_timeout_ms, 5000);
    assert_int_equal(c->max_message_bytes, 100);
    assert_int_equal(c->max_crashes, 1);
    assert_int_equal(c->max_redeliveries, 2);
    assert_int_equal(c->n_host_queues, 1);
    assert_string_equal(c->host_queues[0], "a");
    assert_int_equal(c->max_jobs_per_process, 1000);
    assert_int_equal(c->max_memory_per_process, 10);
    assert_string_equal(c->metrics_listen, "");
    assert_int_equal(c->log_level, WARREN_LOG_DEBUG);
    assert_int_equal(c->log_format, WARREN_LOG_JSON);
    assert_int_equal(c->retry.max_attempts, 9);
    assert_int_equal(c->retry.initial_delay_ms, 2000);
    assert_true(c->retry.multiplier == 3.0);
    assert_int_equal(c->retry.max_delay_ms, 60000);
    assert_true(c->retry.jitter == 0.0);
    assert_int_equal(c->n_queues, 2);
    assert_int_equal(c->queues[0].max_priority, 255);
    assert_int_equal(c->queues[0].line, 13);
    assert_int_equal(c->queues[1].max_priority, 1);
    assert_string_equal(c->signing_key_file, "key");
    assert_int_equal(c->require_signature, 1);
    assert_int_equal(c->events_enabled, 1);
    assert_int_equal(c->events_persistent, 0);
    assert_string_equal(c->web_db, "/tmp/x.db");
    assert_string_equal(c->web_listen, "[::1]:0");
    assert_int_equal(c->web_retention_ms, 3600000);
    assert_string_equal(c->web_token_file, "tok");
    unload(&l);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("namespace = \"x\";\nfoo = 1;", "t.conf:2: unknown top-level key 'foo'");
    expect_error("host = {\n  foo = 1; };", "t.conf:2: unknown key 'foo' in group 'host'");
    expect_error("broker = { tls = { verify = true; }; };",
                 "t.conf:1: unknown key 'verify' in group 'broker.tls'");
    expect_error("workers = ( { name = \"w\"; retries = 3; } );",
                 "t.conf:1: unknown key 'retries' in group 'workers.w'");
    expect_error("modules = ( { path = \"x\"; conf = {}; } );",
                 "t.conf:1: unknown key 'conf' in group 'modules[0]'");
    /* A key that belongs elsewhere is still unknown here. */
    expect_error("retry = { time_limit = 5; };",
                 "t.conf:1: unknown key 'time_limit' in group 'retry'");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("host = { concurrency = \"4\"; };",
                 "t.conf:1: host.concurrency: must be an integer, not a string");
    expect_error("host = { concurrency = 4.0; };",
                 "t.conf:1: host.concurrency: must be an integer, not a float");
    expect_error("events = { enabled = 1; };",
                 "t.conf:1: events.enabled: must be true or false, not an integer");
    expect_error("events = { persistent = \"no\"; };",
                 "t.conf:1: events.persistent: must be true or false, not a string");
    expect_error("retry = { multiplier = \"2\"; };",
                 "t.conf:1: retry.multiplier: must be a number, not a string");
    expect_error("namespace = 5;", "t.conf:1: namespace: must be a string, not an integer");
    expect_error("host = [1];", "t.conf:1: host: must be a group, not an array");
    expect_error("broker = { urls = 5; };",
                 "t.conf:1: broker.urls: must be a list of strings, not an integer");
    expect_error("broker = { urls = (\"amqp://a/\", 5); };",
                 "t.conf:1: broker.urls[1]: must be a string, not an integer");
    expect_error("workers = { name = \"w\"; };",
                 "t.conf:1: workers: must be a list of groups ( {...}, {...} ), not a group");
    expect_error("workers = ( 5 );",
                 "t.conf:1: workers[0]: must be a group { ... }, not an integer");
    expect_error("host = { log_level = 1; };",
                 "t.conf:1: host.log_level: must be a string, not an integer");
}

static void test_floats_accept_integers(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "retry = { multiplier = 3; jitter = 1; };\n"
                "workers = ( { name = \"w\"; rate_limit = 50; multiplier = 1.5; jitter = 0; } );");
    assert_true(l.cfg.retry.multiplier == 3.0);
    assert_true(l.cfg.retry.jitter == 1.0);
    assert_true(l.cfg.workers[0].rate_limit == 50.0);
    assert_true(l.cfg.workers[0].retry.multiplier == 1.5);
    assert_true(l.cfg.workers[0].retry.jitter == 0.0);
    unload(&l);
    expect_error("workers = ( { name = \"w\"; rate_limit = -1; } );",
                 "t.conf:1: workers.w.rate_limit: must be at least 0");
}

static void test_bounds(void **state)
{
    struct loaded l;
    (void)state;

    expect_error("host = { concurrency = 0; };",
                 "t.conf:1: host.concurrency: must be between 1 and 1024");
    expect_error("host = { concurrency = 1025; };",
                 "t.conf:1: host.concurrency: must be between 1 and 1024");
    expect_error("host = { prefetch = 65536; };",
                 "t.conf:1: host.prefetch: must be between 1 and 65535");
    expect_error("broker = { heartbeat = -1; };",
                 "t.conf:1: broker.heartbeat: must be between 0 and 65535");
    expect_error("host = { max_crashes = 0; };", "t.conf:1: host.max_crashes: must be at least 1");
    expect_error("host = { max_jobs_per_process = -1; };",
                 "t.conf:1: host.max_jobs_per_process: must be at least 0");
    expect_error("retry = { max_attempts = 0; };", "t.conf:1: retry.max_attempts: must be at least 1");
    expect_error("retry = { multiplier = 0.99; };", "t.conf:1: retry.multiplier: must be at least 1");
    expect_error("retry = { jitter = -0.1; };", "t.conf:1: retry.jitter: must be between 0 and 1");
    expect_error("retry = { jitter = 1.01; };", "t.conf:1: retry.jitter: must be between 0 and 1");
    /* An int64 beyond the int range of an int field is refused, not cut. */
    expect_error("retry = { max_attempts = 4294967297L; };",
                 "t.conf:1: retry.max_attempts: must be between 1 and 2147483647");
    load_ok(&l, "retry = { multiplier = 1; jitter = 1.0; max_attempts = 1; };");
    unload(&l);
}

static void test_namespace(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "namespace = \"a_b.c-9\";");
    assert_string_equal(l.cfg.namespace_, "a_b.c-9");
    unload(&l);
    load_ok(&l, "namespace = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";"); /* 48 */
    unload(&l);
    expect_error("namespace = \"\";", "t.conf:1: namespace: bad namespace '' (use [a-z0-9_.-]{1,48})");
    expect_error("namespace = \"Warren\";",
                 "t.conf:1: namespace: bad namespace 'Warren' (use [a-z0-9_.-]{1,48})");
    expect_error("namespace = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";",
                 "t.conf:1: namespace: bad namespace "
                 "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' (use [a-z0-9_.-]{1,48})");
}

static void test_log_settings(void **state)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    char text[128];
    struct loaded l;
    (void)state;

    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "host = { log_level = \"%s\"; };", levels[i]);
        load_ok(&l, text);
        assert_int_equal(l.cfg.log_level, i);
        unload(&l);
    }
    load_ok(&l, "host = { log_format = \"text\"; };");
    assert_int_equal(l.cfg.log_format, WARREN_LOG_TEXT);
    unload(&l);
    expect_error("host = { log_level = \"INFO\"; };",
                 "t.conf:1: host.log_level: must be one of debug, info, warn, error, not 'INFO'");
    expect_error("host = { log_format = \"logfmt\"; };",
                 "t.conf:1: host.log_format: must be one of text, json, not 'logfmt'");
}

static void test_listen_addresses(void **state)
{
    static const char *const good[] = {"", "127.0.0.1:9464", "0.0.0.0:0", "localhost:65535",
                                       "[::1]:9464"};
    static const char *const bad[] = {"9464", ":9464", "host:", "host:65536", "host:-1",
                                      "host:12a", "host: 80"};
    char text[160], want[320];
    struct loaded l;
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(text, sizeof text, "host = { metrics_listen = \"%s\"; };", good[i]);
        load_ok(&l, text);
        assert_string_equal(l.cfg.metrics_listen, good[i]);
        unload(&l);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "web = { listen = \"%s\"; };", bad[i]);
        snprintf(want, sizeof want,
                 "t.conf:1: web.listen: bad address '%s' (use HOST:PORT with a port 0..65535, "
                 "or \"\" for off)", bad[i]);
        expect_error(text, want);
    }
}

static void test_host_name(void **state)
{
    (void)state;
    expect_error("host = { name = \"\"; };", "t.conf:1: host.name: must not be empty");
    expect_error("host = { name = \"a b\"; };",
                 "t.conf:1: host.name: must not contain spaces or control characters");
}

/* ------------------------------------------------------------------ */
/* Broker */

static void test_urls(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "broker = { urls = \"amqp://one/\"; };");  /* one string is a list of one */
    assert_int_equal(l.cfg.n_urls, 1);
    assert_string_equal(l.cfg.urls[0], "amqp://one/");
    unload(&l);
    load_ok(&l, "broker = { urls = (\"amqp://a/\", \"amqps://b/%2f\"); };");
    assert_int_equal(l.cfg.n_urls, 2);
    assert_string_equal(l.cfg.urls[1], "amqps://b/%2f");
    unload(&l);

    expect_error("broker = { urls = []; };", "t.conf:1: broker.urls: must not be empty");
    expect_error("broker = { urls = [\"amqp://a/?x=1\"]; };",
                 "t.conf:1: broker.urls[0]: query strings are not supported");
    expect_error("broker = { urls = [\"rabbit://a/\"]; };",
                 "t.conf:1: broker.urls[0]: must start with amqp:// or amqps://");
    expect_error("broker = { management_url = \"ftp://x/\"; };",
                 "t.conf:1: broker.management_url: must start with http:// or https://");
    expect_error("broker = { password_file = \"\"; };",
                 "t.conf:1: broker.password_file: must not be empty");
    expect_error("broker = {\n  tls = { cert = \"c\"; }; };",
                 "t.conf:2: broker.tls: cert and key go together (a client certificate needs "
                 "its key)");
}

static void test_warren_url_env(void **state)
{
    struct loaded l;
    (void)state;

    setenv("WARREN_URL", "amqp://env/", 1);
    load_ok(&l, "broker = { urls = [\"amqp://file/\"]; };");
    assert_int_equal(l.cfg.n_urls, 1);
    assert_string_equal(l.cfg.urls[0], "amqp://env/");
    unload(&l);

    setenv("WARREN_URL", " amqp://a/ ,amqps://b/,, ", 1);
    load_ok(&l, "");
    assert_int_equal(l.cfg.n_urls, 2);
    assert_string_equal(l.cfg.urls[0], "amqp://a/");
    assert_string_equal(l.cfg.urls[1], "amqps://b/");
    assert_null(l.cfg.urls[2]);
    unload(&l);

    setenv("WARREN_URL", "amqp://a/,amqp://b/?heartbeat=5", 1);
    expect_error("", "t.conf: WARREN_URL (environment), URL 2: query strings are not supported");
    setenv("WARREN_URL", " , ", 1);
    expect_error("", "t.conf: WARREN_URL (environment): no URL in it");

    /* Empty means unset. */
    setenv("WARREN_URL", "", 1);
    load_ok(&l, "broker = { urls = [\"amqp://file/\"]; };");
    assert_string_equal(l.cfg.urls[0], "amqp://file/");
    unload(&l);
    unsetenv("WARREN_URL");
}

/* ------------------------------------------------------------------ */
/* Queues */

static void test_queues(void **state)
{
    struct loaded l;
    const struct warren_queue_conf *q;
    (void)state;

    load(&l, "queues = ( { name = \"default\"; },\n"
             "           { name = \"critical\"; type = \"quorum\"; },\n"
             "           { name = \"low_prio-2\"; max_priority = 3; } );");
    assert_int_equal(l.st, WARREN_OK);
    assert_int_equal(l.cfg.n_queues, 3);
    q = warren__config_queue(&l.cfg, "default");
    assert_non_null(q);
    assert_int_equal(q->type, WARREN_QUEUE_CLASSIC);
    assert_int_equal(q->max_priority, 10);
    assert_int_equal(q->line, 1);
    q = warren__config_queue(&l.cfg, "critical");
    assert_non_null(q);
    assert_int_equal(q->type, WARREN_QUEUE_QUORUM);
    assert_int_equal(q->max_priority, 0);
    assert_int_equal(q->line, 2);
    assert_int_equal(warren__config_queue(&l.cfg, "low_prio-2")->max_priority, 3);
    assert_null(warren__config_queue(&l.cfg, "nope"));
    assert_null(warren__config_queue(&l.cfg, NULL));
    assert_int_equal(l.diag.n_warnings, 1);
    assert_string_equal(l.diag.warnings[0],
                        "t.conf:2: warning: queue 'critical' is a quorum queue: RabbitMQ 3.10 "
                        "ignores job priority on it");
    unload(&l);

    expect_error("queues = ( { name = \"q\"; type = \"quorum\"; max_priority = 10; } );",
                 "t.conf:1: queues.q.max_priority: a quorum queue has no priorities (RabbitMQ "
                 "3.10 refuses x-max-priority on it)");
    expect_error("queues = ( { name = \"q\"; max_priority = 0; } );",
                 "t.conf:1: queues.q.max_priority: must be between 1 and 255");
    expect_error("queues = ( { name = \"q\"; max_priority = 256; } );",
                 "t.conf:1: queues.q.max_priority: must be between 1 and 255");
    expect_error("queues = ( { name = \"q.x\"; } );",
                 "t.conf:1: queues[0].name: bad queue name 'q.x' (use [a-z0-9_-]{1,64})");
    expect_error("queues = ( { name = \"q\"; },\n { name = \"q\"; } );",
                 "t.conf:2: queues.q: duplicate queue name 'q' (first declared at line 1)");
    expect_error("queues = ( { type = \"classic\"; } );", "t.conf:1: queues[0]: missing key 'name'");
    expect_error("queues = ( { name = \"q\"; type = \"lazy\"; } );",
                 "t.conf:1: queues.q.type: must be one of classic, quorum, not 'lazy'");
    expect_error("queues = ();", "t.conf:1: queues: must declare at least one queue");
}

static void test_host_queues(void **state)
{
    struct loaded l;
    (void)state;

    load_ok(&l, "queues = ( { name = \"a\"; }, { name = \"b\"; } );\n"
                "host = { queues = [\"b\", \"a\"]; };");
    assert_int_equal(l.cfg.n_host_queues, 2);
    assert_string_equal(l.cfg.host_queues[0], "b");
    assert_null(l.cfg.host_queues[2]);
    unload(&l);
    /* Without `queues`, "default" is the implicit one. */
    load_ok(&l, "host = { queues = \"default\"; };");
    unload(&l);
    expect_error("host = { queues = [\"default\", \"x\"]; };",
                 "t.conf:1: host.queues: unknown queue 'x' (not declared in queues)");
    expect_error("host = { queues = []; };", "t.conf:1: host.queues: must not be empty");
    expect_error("host = { queues = [\"Bad\"]; };",
                 "t.conf:1: host.queues[0]: bad queue name 'Bad' (use [a-z0-9_-]{1,64})");
}

/* ------------------------------------------------------------------ */
/* Workers */

static void test_workers(void **state)
{
    struct loaded l;
    const struct warren_worker_conf *w;
    (void)state;

    /* The global retry group comes after the workers: they still inherit it. */
    load_ok(&l, "queues = ( { name = \"default\"; }, { name = \"mail\"; } );\n"
                "workers = ( { name = \"send_email\"; queue = \"mail\"; max_attempts = 8;\n"
                "              time_limit = \"30s\"; rate_limit = 50.0; initial_delay = \"5s\";\n"
                "              lock_by = [\"to\", \"subject\"]; lock_timeout = \"1m\";\n"
                "              unique_by = [\"to\"]; unique_for = \"1h\"; max_snoozes = 3; },\n"
                "            { name = \"Diag.Echo-2\"; } );\n"
                "retry = { max_attempts = 7; multiplier = 3.0; jitter = 0.5; };\n");
    assert_int_equal(l.cfg.n_workers, 2);
    w = warren__config_worker(&l.cfg, "send_email");
    assert_ptr_equal(w, &l.cfg.workers[0]);
    assert_string_equal(w->queue, "mail");
    assert_int_equal(w->retry.max_attempts, 8);
    assert_int_equal(w->retry.initial_delay_ms, 5000);
    assert_true(w->retry.multiplier == 3.0);  /* inherited */
    assert_true(w->retry.jitter == 0.5);      /* inherited */
    assert_int_equal(w->retry.max_delay_ms, 3600000);
    assert_int_equal(w->time_limit_ms, 30000);
    assert_true(w->rate_limit == 50.0);
    assert_string_equal(w->lock_by[0], "to");
    assert_string_equal(w->lock_by[1], "subject");
    assert_null(w->lock_by[2]);
    assert_int_equal(w->lock_timeout_ms, 60000);
    assert_string_equal(w->unique_by[0], "to");
    assert_null(w->unique_by[1]);
    assert_int_equal(w->unique_for_ms, 3600000);
    assert_int_equal(w->max_snoozes, 3);
    assert_int_equal(w->line, 2);

    w = warren__config_worker(&l.cfg, "Diag.Echo-2");
    assert_string_equal(w->queue, "default");
    assert_int_equal(w->retry.max_attempts, 7);
    assert_null(w->lock_by);
    assert_null(w->unique_by);
    assert_int_equal(w->lock_timeout_ms, 600000);
    assert_int_equal(w->unique_for_ms, 0);
    assert_int_equal(w->max_snoozes, 100);
    assert_int_equal(w->time_limit_ms, 0);
    assert_true(w->rate_limit == 0.0);

    /* A worker not listed: queue "default", the global retry group. */
    w = warren__config_worker(&l.cfg, "generate_report");
    assert_non_null(w);
    assert_string_equal(w->name, "generate_report");
    assert_string_equal(w->queue, "default");
    assert_int_equal(w->retry.max_attempts, 7);
    assert_true(w->retry.multiplier == 3.0);
    assert_int_equal(w->lock_timeout_ms, 600000);
    assert_int_equal(w->max_snoozes, 100);
    assert_int_equal(w->line, 0);
    assert_string_equal(warren__config_worker(&l.cfg, "other")->name, "other");
    unload(&l);
}

static void test_worker_rules(void **state)
{
    (void)state;
    expect_error("workers = ( { name = \"a b\"; } );",
                 "t.conf:1: workers[0].name: bad name 'a b' (use [A-Za-z0-9_.-]{1,128})");
    expect_error("workers = ( { queue = \"default\"; } );",
                 "t.conf:1: workers[0]: missing key 'name'");
    expect_error("workers = ( { name = \"w\"; },\n{ name = \"w\"; } );",
                 "t.conf:2: workers.w: duplicate worker name 'w' (first declared at line 1)");
    expect_error("workers = ( { name = \"w\";\n queue = \"mail\"; } );",
                 "t.conf:2: workers.w.queue: unknown queue 'mail' (not declared in queues)");
    expect_error("queues = ( { name = \"mail\"; } );\nworkers = ( { name = \"w\"; } );",
                 "t.conf:2: workers.w: its queue 'default' is not declared in queues; set queue");
    expect_error("workers = ( { name = \"w\"; lock_by = [\"to\", \"\"]; } );",
                 "t.conf:1: workers.w.lock_by[1]: must not be empty");
    expect_error("workers = ( { name = \"w\"; max_snoozes = -1; } );",
                 "t.conf:1: workers.w.max_snoozes: must be at least 0");
    expect_error("workers = ( { name = \"w\"; jitter = 3; } );",
                 "t.conf:1: workers.w.jitter: must be between 0 and 1");
}

static void test_time_limit_warning(void **state)
{
    struct loaded l;
    (void)state;

    expect_warning("workers = ( { name = \"send_email\";\n time_limit = \"45m\"; } );",
                   "t.conf:2: warning: workers.send_email.time_limit 45m is not below "
                   "broker.consumer_timeout 30m: RabbitMQ will close the channel; raise "
                   "consumer_timeout in rabbitmq.conf");
    expect_warning("broker = { consumer_timeout = \"1h\"; };\n"
                   "workers = ( { name = \"w\"; time_limit = 3600; } );",
                   "t.conf:2: warning: workers.w.time_limit 1h is not below "
                   "broker.consumer_timeout 1h: RabbitMQ will close the channel; raise "
                   "consumer_timeout in rabbitmq.conf");
    load_ok(&l, "workers = ( { name = \"w\"; time_limit = \"29m\"; } );");
    assert_int_equal(l.diag.n_warnings, 0);
    unload(&l);
    /* consumer_timeout = 0: the broker's limit is unknown, nothing to compare. */
    load_ok(&l, "broker = { consumer_timeout = 0; };\n"
                "workers = ( { name = \"w\"; time_limit = \"2h\"; } );");
    assert_int_equal(l.diag.n_warnings, 0);
    unload(&l);
}

/* ------------------------------------------------------------------ */
/* Modules */

static void test_module_config_json(void **state)
{
    struct loaded l;
    json_error_t jerr;
    json_t *want;
    (void)state;

    load_ok(&l, "modules = ( { path = \"diag\"; },\n"
                "  { path = \"./x/send_email.so\"; config = {\n"
                "      spool_dir = \"../var/spool\"; port = 25; big = 5000000000L;\n"
                "      ratio = 0.5; tls = true; off = false;\n"
                "      hosts = [\"a\", \"b\"]; empty = [];\n"
                "      mixed = (1, \"two\", { three = 3; }, (4));\n"
                "      nested = { deeper = { x = -1; }; };\n"
                "  }; } );");
    assert_int_equal(l.cfg.n_modules, 2);
    assert_string_equal(l.cfg.modules[0].path, "diag");
    assert_null(l.cfg.modules[0].resolved);
    assert_int_equal(l.cfg.modules[0].line, 1);
    assert_true(json_is_object(l.cfg.modules[0].config));
    assert_int_equal(json_object_size(l.cfg.modules[0].config), 0);
    assert_string_equal(l.cfg.modules[1].path, "./x/send_email.so");
    assert_int_equal(l.cfg.modules[1].line, 2);
    want = json_loads("{\"spool_dir\": \"../var/spool\", \"port\": 25, \"big\": 5000000000,"
                      " \"ratio\": 0.5, \"tls\": true, \"off\": false, \"hosts\": [\"a\", \"b\"],"
                      " \"empty\": [], \"mixed\": [1, \"two\", {\"three\": 3}, [4]],"
                      " \"nested\": {\"deeper\": {\"x\": -1}}}",
                      0, &jerr);
    assert_non_null(want);
    if (!json_equal(want, l.cfg.modules[1].config)) {
        char *got = json_dumps(l.cfg.modules[1].config, JSON_SORT_KEYS);
        print_message("got %s\n", got);
        free(got);
        fail();
    }
    /* Key order is kept as written. */
    assert_string_equal(json_object_iter_key(json_object_iter(l.cfg.modules[1].config)),
                        "spool_dir");
    json_decref(want);
    unload(&l);

    expect_error("modules = ( { path = \"x\"; config = 5; } );",
                 "t.conf:1: modules[0].config: must be a group, not an integer");
    expect_error("modules = ( { path = \"\"; } );", "t.conf:1: modules[0].path: must not be empty");
    expect_error("modules = ( { config = {}; } );", "t.conf:1: modules[0]: missing key 'path'");
    expect_error("modules = ( { path = \"x\"; config = { s = \"\\xff\"; }; } );",
                 "t.conf:1: modules[0].config.s: not valid UTF-8");
}

/* ------------------------------------------------------------------ */
/* Schedules */

static void test_schedules(void **state)
{
    struct loaded l;
    const struct warren_schedule_conf *s;
    (void)state;

    load_ok(&l, "schedules = (\n"
                "  { name = \"nightly-report\"; worker = \"generate_report\"; cron = \"0 0 2 * * *\";\n"
                "    args = \"{\\\"csv\\\": \\\"sales.csv\\\", \\\"n\\\": [1, 2]}\"; priority = 9; },\n"
                "  { name = \"heartbeat\"; worker = \"diag.echo\"; every = \"10s\"; max_count = 100; },\n"
                "  { name = \"five\"; worker = \"w\"; cron = \"*/5  * * * *\"; }\n"
                ");");
    assert_int_equal(l.cfg.n_schedules, 3);
    s = &l.cfg.schedules[0];
    assert_string_equal(s->name, "nightly-report");
    assert_string_equal(s->worker, "generate_report");
    assert_string_equal(s->cron, "0 0 2 * * *");
    assert_int_equal(s->every_ms, 0);
    assert_int_equal(s->max_count, 0);
    assert_int_equal(s->priority, 9);
    assert_int_equal(s->line, 2);
    assert_string_equal(json_string_value(json_object_get(s->args, "csv")), "sales.csv");
    assert_int_equal(json_array_size(json_object_get(s->args, "n")), 2);
    s = &l.cfg.schedules[1];
    assert_null(s->cron);
    assert_int_equal(s->every_ms, 10000);
    assert_int_equal(s->max_count, 100);
    assert_int_equal(s->priority, 0);
    assert_true(json_is_object(s->args));
    assert_int_equal(json_object_size(s->args), 0);  /* default {} */
    assert_string_equal(l.cfg.schedules[2].cron, "*/5  * * * *");
    unload(&l);
}

static void test_schedule_rules(void **state)
{
    (void)state;
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; } );",
                 "t.conf:1: schedules.s: needs cron or every");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; cron = \"* * * * *\"; every = 5; } );",
                 "t.conf:1: schedules.s: set either cron or every, not both");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; cron = \"* * * * * * *\"; } );",
                 "t.conf:1: schedules.s.cron: cron expression '* * * * * * *' must have 5 or 6 "
                 "fields, not 7");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; cron = \"\"; } );",
                 "t.conf:1: schedules.s.cron: cron expression '' must have 5 or 6 fields, not 0");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = \"999ms\"; } );",
                 "t.conf:1: schedules.s.every: must be between 1s and 268435455s");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 0; } );",
                 "t.conf:1: schedules.s.every: must be between 1s and 268435455s");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1; max_count = 0; } );",
                 "t.conf:1: schedules.s.max_count: must be at least 1");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1; priority = 10; } );",
                 "t.conf:1: schedules.s.priority: must be between 0 and 9");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1;\n args = \"{bad\"; } );",
                 "t.conf:2: schedules.s.args: bad JSON: string or '}' expected near 'bad'");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1; args = \"[]\"; } );",
                 "t.conf:1: schedules.s.args: must be a JSON object");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1;"
                 " args = \"{\\\"a\\\": 1, \\\"a\\\": 2}\"; } );",
                 "t.conf:1: schedules.s.args: bad JSON: duplicate object key near '\"a\"'");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1; args = { a = 1; }; } );",
                 "t.conf:1: schedules.s.args: must be a string, not a group");
    expect_error("schedules = ( { name = \"s\"; worker = \"a b\"; every = 1; } );",
                 "t.conf:1: schedules.s.worker: bad name 'a b' (use [A-Za-z0-9_.-]{1,128})");
    expect_error("schedules = ( { name = \"s/1\"; worker = \"w\"; every = 1; } );",
                 "t.conf:1: schedules[0].name: bad name 's/1' (use [A-Za-z0-9_.-]{1,128})");
    expect_error("schedules = ( { name = \"s\"; every = 1; } );",
                 "t.conf:1: schedules.s: missing key 'worker'");
    expect_error("schedules = ( { name = \"s\"; worker = \"w\"; every = 1; },\n"
                 "  { name = \"s\"; worker = \"w\"; every = 2; } );",
                 "t.conf:2: schedules.s: duplicate schedule name 's' (first declared at line 1)");
}

/* ------------------------------------------------------------------ */
/* Security */

static void test_security(void **state)
{
    struct loaded l;
    (void)state;

    expect_error("security = {\n  require_signature = true; };",
                 "t.conf:2: security.require_signature: needs security.signing_key_file");
    load_ok(&l, "security = { signing_key_file = \"/no/such/file\"; require_signature = true; };");
    assert_int_equal(l.cfg.require_signature, 1);
    unload(&l);
    load_ok(&l, "security = { require_signature = false; };");
    unload(&l);
}

/* ------------------------------------------------------------------ */
/* Reporting */

static void test_many_errors_at_once(void **state)
{
    struct loaded l;
    char text[1024];
    (void)state;

    /* The lists are parsed after the groups; notes still come in line order. */
    load(&l, "workers = ( { name = \"w\"; queue = \"nope\"; } );\n"
             "host = { concurrency = 0;\n"
             "         prefetch = \"x\"; bogus = 1; };\n"
             "retry = { jitter = 2.0; };\n"
             "schedules = ( { name = \"s\"; worker = \"w\"; } );\n");
    assert_int_equal(l.st, WARREN_ECONFIG);
    assert_int_equal(l.diag.n_errors, 6);
    assert_string_equal(l.diag.errors[0],
                        "t.conf:1: workers.w.queue: unknown queue 'nope' (not declared in queues)");
    assert_string_equal(l.diag.errors[1], "t.conf:2: host.concurrency: must be between 1 and 1024");
    assert_string_equal(l.diag.errors[2],
                        "t.conf:3: host.prefetch: must be an integer, not a string");
    assert_string_equal(l.diag.errors[3], "t.conf:3: unknown key 'bogus' in group 'host'");
    assert_string_equal(l.diag.errors[4], "t.conf:4: retry.jitter: must be between 0 and 1");
    assert_string_equal(l.diag.errors[5], "t.conf:5: schedules.s: needs cron or every");
    /* err holds the first one, with its file and line apart. */
    assert_int_equal(l.err.code, WARREN_ECONFIG);
    assert_string_equal(l.err.source, NAME);
    assert_int_equal(l.err.line, 1);
    assert_string_equal(l.err.text,
                        "workers.w.queue: unknown queue 'nope' (not declared in queues)");
    assert_string_equal(warren_error_format(&l.err, text, sizeof text), l.diag.errors[0]);
    unload(&l);
}

static void test_diag_may_be_null(void **state)
{
    struct warren_config cfg;
    warren_error err;
    (void)state;

    warren_error_clear(&err);
    assert_int_equal(warren__config_load_string(&cfg, "host = { concurrency = 0; };\nx = 1;",
                                                NAME, NULL, &err),
                     WARREN_ECONFIG);
    assert_int_equal(err.line, 1);
    warren__config_free(&cfg);
    assert_int_equal(warren__config_load_string(&cfg, "x = 1;", NAME, NULL, NULL), WARREN_ECONFIG);
    warren__config_free(&cfg);
    assert_int_equal(warren__config_load_string(&cfg, NULL, NULL, NULL, NULL), WARREN_OK);
    assert_string_equal(cfg.path, "<string>");
    warren__config_free(&cfg);
}

static void test_syntax_error(void **state)
{
    struct loaded l;
    (void)state;

    load(&l, "host = {\n  concurrency = 4;\n  prefetch = ;\n};\n");
    assert_int_equal(l.st, WARREN_ECONFIG);
    assert_int_equal(l.diag.n_errors, 1);
    assert_string_equal(l.diag.errors[0], "t.conf:3: syntax error");
    assert_int_equal(l.err.line, 3);
    check_defaults(&l.cfg);
    unload(&l);
    expect_error("a = 1;\na = 2;", "t.conf:2: duplicate setting name");
}

static char *source_path(const char *rel)
{
    const char *root = getenv("WARREN_SOURCE_DIR");
    char *path = NULL;
    if (root && *root) {
        assert_true(asprintf(&path, "%s/%s", root, rel) > 0);
    } else {
        /* Run by hand: find the tree from this file's own path. */
        const char *self = __FILE__;
        const char *cut = strstr(self, "tests/unit/");
        assert_non_null(cut);
        assert_true(asprintf(&path, "%.*s%s", (int)(cut - self), self, rel) > 0);
    }
    return path;
}

static void test_load_file(void **state)
{
    struct warren_config cfg;
    struct warren_config_diag diag;
    warren_error err;
    char *path = source_path("tests/data/config/unknown_key/warren.conf");
    char *dir = source_path("tests/data/config/unknown_key");
    char *real = realpath(dir, NULL);
    (void)state;

    warren_error_clear(&err);
    assert_int_equal(warren__config_load(&cfg, path, &diag, &err), WARREN_ECONFIG);
    assert_string_equal(cfg.path, path);
    assert_non_null(real);
    assert_string_equal(cfg.dir, real);
    assert_string_equal(err.source, path);
    assert_int_equal(err.line, 3);
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);

    warren_error_clear(&err);
    assert_int_equal(warren__config_load(&cfg, "/no/such/dir/warren.conf", &diag, &err),
                     WARREN_ECONFIG);
    assert_int_equal(diag.n_errors, 1);
    assert_string_equal(diag.errors[0],
                        "/no/such/dir/warren.conf: cannot open: No such file or directory");
    assert_int_equal(err.line, 0);
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);
    free(path);
    free(dir);
    free(real);
}

static void load_shipped(const char *rel, size_t want_warnings)
{
    struct warren_config cfg;
    struct warren_config_diag diag;
    char *path = source_path(rel);

    if (warren__config_load(&cfg, path, &diag, NULL) != WARREN_OK ||
        diag.n_warnings != want_warnings) {
        for (size_t i = 0; i < diag.n_errors; i++)
            print_message("  %s\n", diag.errors[i]);
        for (size_t i = 0; i < diag.n_warnings; i++)
            print_message("  %s\n", diag.warnings[i]);
        fail_msg("%s does not load cleanly", rel);
    }
    assert_true(cfg.dir[0] == '/');
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);
    free(path);
}

static void test_shipped_configs(void **state)
{
    struct warren_config cfg;
    (void)state;

    load_shipped("config/warren.conf", 0);
    load_shipped("config/examples/full.conf", 1);  /* the quorum queue's warning */

    /* The sample's values arrive where they belong. */
    char *path = source_path("config/examples/full.conf");
    assert_int_equal(warren__config_load(&cfg, path, NULL, NULL), WARREN_OK);
    assert_string_equal(cfg.host_name, "host-a");
    assert_int_equal(cfg.log_format, WARREN_LOG_JSON);
    assert_int_equal(cfg.max_memory_per_process, 512LL << 20);
    assert_int_equal(cfg.n_queues, 2);
    assert_int_equal(warren__config_queue(&cfg, "critical")->type, WARREN_QUEUE_QUORUM);
    assert_int_equal(cfg.n_modules, 2);
    assert_string_equal(json_string_value(json_object_get(cfg.modules[1].config, "spool_dir")),
                        "/var/spool/warren");
    assert_int_equal(warren__config_worker(&cfg, "send_email")->retry.max_attempts, 8);
    assert_int_equal(cfg.n_schedules, 2);
    assert_int_equal(cfg.schedules[1].max_count, 100);
    assert_int_equal(cfg.events_enabled, 1);
    assert_string_equal(cfg.web_token_file, "/run/secrets/warren_web");
    warren__config_free(&cfg);
    free(path);
}

/* Each folder of tests/data/config holds warren.conf and `expected`, the
 * first error with the file's path written as FILE. */
static void check_case(const char *dir, const char *name)
{
    char conf[PATH_MAX], expected_path[PATH_MAX], want[1024] = "", got[1200];
    struct warren_config cfg;
    struct warren_config_diag diag;
    FILE *f;

    snprintf(conf, sizeof conf, "%s/%s/warren.conf", dir, name);
    snprintf(expected_path, sizeof expected_path, "%s/%s/expected", dir, name);
    f = fopen(expected_path, "r");
    if (!f)
        fail_msg("case %s has no expected file", name);
    if (!fgets(want, sizeof want, f))
        want[0] = '\0';
    fclose(f);
    want[strcspn(want, "\n")] = '\0';

    assert_int_equal(warren__config_load(&cfg, conf, &diag, NULL), WARREN_ECONFIG);
    assert_true(diag.n_errors >= 1);
    assert_memory_equal(diag.errors[0], conf, strlen(conf));
    snprintf(got, sizeof got, "FILE%s", diag.errors[0] + strlen(conf));
    if (strcmp(got, want) != 0)
        fail_msg("case %s:\n  got      %s\n  expected %s", name, got, want);
    warren__config_diag_free(&diag);
    warren__config_free(&cfg);
}

static void test_data_cases(void **state)
{
    char *dir = source_path("tests/data/config");
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    (void)state;

    assert_non_null(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        check_case(dir, e->d_name);
        n++;
    }
    closedir(d);
    free(dir);
    print_message("%d config cases checked\n", n);
    assert_true(n >= 15);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("WARREN_URL");  /* the caller's broker must not leak into the tests */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_durations_in_config),
        cmocka_unit_test(test_bytes_in_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_file_has_defaults),
        cmocka_unit_test(test_failed_load_keeps_defaults),
        cmocka_unit_test(test_every_key_parsed),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_floats_accept_integers),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_namespace),
        cmocka_unit_test(test_log_settings),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_warren_url_env),
        cmocka_unit_test(test_queues),
        cmocka_unit_test(test_host_queues),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_worker_rules),
        cmocka_unit_test(test_time_limit_warning),
        cmocka_unit_test(test_module_config_json),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_schedule_rules),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_many_errors_at_once),
        cmocka_unit_test(test_diag_may_be_null),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_shipped_configs),
        cmocka_unit_test(test_data_cases),
    };
    return cmocka_run_group_tests_name("config", tests, setup, NULL);
}
