/* The C producer API against the private broker: confirms, ids,
 * properties, batches, and unroutable jobs kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <warren/warren.h>
#include "conn.h"
#include "delay.h"
#include "topology.h"

struct fixture {
    char ns[32];
    warren_producer *p;
    struct warren_conn *conn; /* for reading back what was published */
};

static const char *test_url(void)
{
    const char *u = getenv("WARREN_TEST_URL");
    return u && u[0] ? u : "amqp://guest:guest@127.0.0.1:21672/";
}

static void assert_ok_(warren_status st, const warren_error *err, const char *file, int line)
{
    if (st != WARREN_OK)
        fail_msg("%s:%d: %s: %s", file, line, warren_strerror(st), err ? err->text : "");
}
#define assert_ok(st, err) assert_ok_((st), (err), __FILE__, __LINE__)

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->ns, sizeof f->ns, "tapi%d%ld", (int)getpid(), random() % 100000);
    warren_producer_opts po = {test_url(), f->ns, 0, 0};
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren_producer_create(&f->p, &po, &err), &err);
    char *url = strdup(test_url());
    char *urls[] = {url, NULL};
    struct warren_conn_opts co = {0, NULL, NULL, "test"};
    assert_ok(warren__conn_open(&f->conn, urls, 1, &co, &err), &err);
    free(url);
    struct warren_queue_conf q = {"default", WARREN_QUEUE_CLASSIC, 10, 0};
    assert_ok(warren__topology_declare_delay(f->conn, f->ns, 0, NULL, NULL, &err), &err);
    assert_ok(warren__topology_declare_queue(f->conn, f->ns, &q, NULL, NULL, &err), &err);
    assert_ok(warren__topology_bind_worker(f->conn, f->ns, "default", "diag.echo", NULL, NULL,
                                           &err),
              &err);
    *state = f;
    return 0;
}

static void delete_queue(struct warren_conn *c, const char *name)
{
    amqp_queue_delete(warren__conn_state(c), 1, amqp_cstring_bytes(name), 0, 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char name[WARREN_AMQP_NAME_MAX];
    delete_queue(f->conn, warren__name_queue(name, sizeof name, f->ns, "default"));
    delete_queue(f->conn, warren__name_dead(name, sizeof name, f->ns, "default"));
    delete_queue(f->conn, warren__name_unroutable(name, sizeof name, f->ns));
    amqp_exchange_delete(warren__conn_state(f->conn), 1, amqp_cstring_bytes(f->ns), 0);
    for (int level = 0; level < WARREN_DELAY_LEVELS; level++) {
        warren__name_delay_level(name, sizeof name, f->ns, level);
        delete_queue(f->conn, name);
        amqp_exchange_delete(warren__conn_state(f->conn), 1, amqp_cstring_bytes(name), 0);
    }
    amqp_exchange_delete(warren__conn_state(f->conn), 1,
                         amqp_cstring_bytes(warren__name_delay_deliver(name, sizeof name, f->ns)),
                         0);
    amqp_exchange_delete(warren__conn_state(f->conn), 1,
                         amqp_cstring_bytes(warren__name_unroutable(name, sizeof name, f->ns)), 0);
    warren__conn_close(f->conn);
    warren_producer_destroy(f->p);
    free(f);
    return 0;
}

static uint32_t count(struct fixture *f, const char *queue_name)
{
    uint32_t n = 0;
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren__conn_queue_inspect(f->conn, queue_name, &n, NULL, &err), &err);
    return n;
}

static void test_publish_one_with_properties(void **state)
{
    struct fixture *f = *state;
    json_t *args = json_pack("{s:s}", "hello", "world");
    warren_publish_opts o = {"job-42", 7, 3, 0};
    char id[64];
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren_publish(f->p, "diag.echo", args, &o, id, sizeof id, &err), &err);
    json_decref(args);
    assert_string_equal(id, "job-42");

    char q[WARREN_AMQP_NAME_MAX];
    struct warren_conn_delivery d;
    assert_ok(warren__conn_get(f->conn, warren__name_queue(q, sizeof q, f->ns, "default"), &d,
                               &err),
              &err);
    const amqp_basic_properties_t *p = &d.message.properties;
    assert_true(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG);
    assert_int_equal(p->message_id.len, 6);
    assert_memory_equal(p->message_id.bytes, "job-42", 6);
    assert_int_equal(p->priority, 7);
    assert_int_equal(p->delivery_mode, 2);
    assert_true(p->_flags & AMQP_BASIC_TIMESTAMP_FLAG);
    assert_int_equal(p->type.len, strlen("diag.echo"));
    assert_memory_equal(p->content_type.bytes, "application/json", 16);
    assert_string_equal(d.routing_key, "diag.echo");
    assert_int_equal(d.message.body.len, strlen("{\"hello\":\"world\"}"));
    assert_memory_equal(d.message.body.bytes, "{\"hello\":\"world\"}", d.message.body.len);
    long long max = 0;
    const amqp_table_entry_t *h = NULL;
    for (int i = 0; i < p->headers.num_entries; i++)
        if (p->headers.entries[i].key.len == 21 &&
            !memcmp(p->headers.entries[i].key.bytes, "x-warren-max-attempts", 21))
            h = &p->headers.entries[i];
    assert_non_null(h);
    max = h->value.value.i32;
    assert_int_equal(max, 3);
    assert_ok(warren__conn_ack(f->conn, d.delivery_tag, &err), &err);
    warren__conn_delivery_free(&d);
}

static void test_generated_ids_are_uuids(void **state)
{
    struct fixture *f = *state;
    json_t *args = json_object();
    char a[64], b[64];
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren_publish(f->p, "diag.echo", args, NULL, a, sizeof a, &err), &err);
    assert_ok(warren_publish(f->p, "diag.echo", args, NULL, b, sizeof b, &err), &err);
    json_decref(args);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[14], '4');
    assert_string_not_equal(a, b);
}

static void test_batch_is_all_confirmed(void **state)
{
    struct fixture *f = *state;
    enum { N = 1000 };
    warren_batch_job *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].worker = "diag.echo";
        jobs[i].args = json_pack("{s:i}", "n", i);
    }
    char q[WARREN_AMQP_NAME_MAX];
    warren__name_queue(q, sizeof q, f->ns, "default");
    uint32_t before = count(f, q);
    size_t confirmed = 0;
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren_publish_batch(f->p, jobs, N, &confirmed, &err), &err);
    assert_int_equal(confirmed, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(strlen(jobs[i].id), 36);
        json_decref(jobs[i].args);
    }
    free(jobs);
    assert_int_equal(count(f, q) - before, N);
}

static void test_unserved_worker_lands_in_unroutable(void **state)
{
    struct fixture *f = *state;
    char unr[WARREN_AMQP_NAME_MAX];
    warren__name_unroutable(unr, sizeof unr, f->ns);
    uint32_t before = count(f, unr);
    json_t *args = json_object();
    warren_error err;
    warren_error_clear(&err);
    assert_ok(warren_publish(f->p, "nobody.serves.this", args, NULL, NULL, 0, &err), &err);
    json_decref(args);
    assert_int_equal(count(f, unr), before + 1);
}

static void test_bad_input_refused_before_publish(void **state)
{
    struct fixture *f = *state;
    json_t *array = json_array();
    json_t *obj = json_object();
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_publish(f->p, "diag.echo", array, NULL, NULL, 0, &err), WARREN_EINVAL);
    warren_error_clear(&err);
    assert_int_equal(warren_publish(f->p, "bad name", obj, NULL, NULL, 0, &err), WARREN_EINVAL);
    assert_non_null(strstr(err.text, "bad name"));
    warren_publish_opts o = {NULL, 10, 0, 0};
    warren_error_clear(&err);
    assert_int_equal(warren_publish(f->p, "diag.echo", obj, &o, NULL, 0, &err), WARREN_EINVAL);
    json_decref(array);
    json_decref(obj);
}

static void test_unreachable_broker_is_econnect(void **state)
{
    (void)state;
    warren_producer *p = NULL;
    warren_producer_opts po = {"amqp://guest:guest@127.0.0.1:1/", "x", 0, 0};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_producer_create(&p, &po, &err), WARREN_ECONNECT);
    assert_null(p);
    assert_non_null(strstr(err.text, "127.0.0.1"));
    assert_null(strstr(err.text, "guest:guest")); /* passwords never printed */
}

int main(void)
{
    srandom((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_one_with_properties),
        cmocka_unit_test(test_generated_ids_are_uuids),
        cmocka_unit_test(test_batch_is_all_confirmed),
        cmocka_unit_test(test_unserved_worker_lands_in_unroutable),
        cmocka_unit_test(test_bad_input_refused_before_publish),
        cmocka_unit_test(test_unreachable_broker_is_econnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
