/* Unit tests of the notify module: its configuration, and the webhook
 * POST against a tiny HTTP server in a forked child on a loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/warren.h>
#include "job.h"
#include "registry_internal.h"

extern const struct warren_module warren_module;

/* ---- the fake webhook: answers each request with the next status of a
 * list (0: never answers), and writes each request it read to a pipe ---- */

struct server {
    pid_t pid;
    int port;
    int requests; /* read end: "<len>\n<request bytes>" per request */
};

static void serve_one(int fd, int status, int out)
{
    char buf[16384];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof buf - 1) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = (size_t)(end - buf) + 4 + (cl ? (size_t)atol(cl + 17) : 0);
    while (len < want && len < sizeof buf - 1) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    char head[32];
    int k = snprintf(head, sizeof head, "%zu\n", len);
    if (write(out, head, (size_t)k) != k || write(out, buf, len) != (ssize_t)len)
        _exit(3);
    if (status == 0) {
        sleep(5);
        return;
    }
    char reply[128];
    k = snprintf(reply, sizeof reply,
                 "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    if (write(fd, reply, (size_t)k) < 0)
        _exit(4);
}

static struct server server_start(const int *statuses, int n)
{
    struct server s = {0};
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t alen = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    s.port = ntohs(a.sin_port);
    int p[2];
    assert_int_equal(pipe(p), 0);
    s.pid = fork();
    assert_true(s.pid >= 0);
    if (s.pid == 0) {
        close(p[0]);
        for (int i = 0; i < n; i++) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0)
                _exit(2);
            serve_one(fd, statuses[i], p[1]);
            close(fd);
        }
        _exit(0);
    }
    close(lfd);
    close(p[1]);
    s.requests = p[0];
    return s;
}

/* The next request the server read (new), or NULL when none came. */
static char *server_request(struct server *s)
{
    char head[32];
    size_t k = 0;
    while (k < sizeof head - 1 && read(s->requests, head + k, 1) == 1 && head[k] != '\n')
        k++;
    if (k == 0)
        return NULL;
    head[k] = '\0';
    size_t len = (size_t)atol(head);
    char *req = calloc(1, len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(s->requests, req + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return req;
}

static void server_stop(struct server *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(s->requests);
}

/* ---- log capture ---- */

static char logged[4096];

static void sink(warren_log_level level, const char *msgid, const char *fields, const char *msg,
                 void *user)
{
    (void)fields;
    (void)user;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%d %s %s\n", (int)level, msgid, msg);
}

/* ---- fixture ---- */

struct fixture {
    warren_registry *reg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    logged[0] = '\0';
    warren_log_set_sink(sink, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    warren_log_set_sink(NULL, NULL);
    warren_module.fini();
    warren_registry_destroy(f->reg);
    free(f);
    return 0;
}

static warren_status init_with(struct fixture *f, json_t *config, warren_error *err)
{
    warren_error_clear(err);
    warren_status st = warren_module.init(f->reg, config, err);
    json_decref(config);
    return st;
}

static void dead(struct fixture *f, const char *worker, const char *reason, const char *error)
{
    struct warren_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.worker, sizeof job.worker, "%s", worker);
    snprintf(job.id, sizeof job.id, "job-42");
    job.attempt = 3;
    warren_observer_ctx ctx = {"default", "host-a"};
    warren__registry_notify_dead(f->reg, &job, &ctx, reason, error);
}

static char *hook_url(const struct server *s, char *buf, size_t size)
{
    snprintf(buf, size, "http://127.0.0.1:%d/hook", s->port);
    return buf;
}

/* ---- tests ---- */

static void test_config_refusals(void **state)
{
    struct fixture *f = *state;
    warren_error err;
    assert_int_equal(init_with(f, json_object(), &err), WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "webhook_url"));
    assert_int_equal(init_with(f, json_pack("{s:s}", "webhook_url", "ftp://x/"), &err),
                     WARREN_ECONFIG);
    assert_int_equal(init_with(f, json_pack("{s:s}", "email_to", "ops@example.com"), &err),
                     WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "email_to is not supported"));
    assert_int_equal(init_with(f, json_pack("{s:s, s:i}", "webhook_url", "http://h/",
                                            "timeout_ms", 0),
                               &err),
                     WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "timeout_ms"));
    assert_int_equal(init_with(f, json_pack("{s:s, s:{s:i}}", "webhook_url", "http://h/",
                                            "headers", "X-A", 1),
                               &err),
                     WARREN_ECONFIG);
    assert_int_equal(init_with(f, json_pack("{s:s, s:s}", "webhook_url", "http://h/",
                                            "workers", "a"),
                               &err),
                     WARREN_ECONFIG);
    assert_int_equal(warren__registry_observers(f->reg), 0);
    assert_int_equal(init_with(f, json_pack("{s:s}", "webhook_url", "https://h/x"), &err),
                     WARREN_OK);
    /* An observer, no worker. */
    assert_int_equal(warren__registry_observers(f->reg), 1);
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_posts_the_dead_event(void **state)
{
    struct fixture *f = *state;
    int statuses[] = {204};
    struct server s = server_start(statuses, 1);
    char url[128];
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s, s:{s:s}}", "webhook_url",
                                            hook_url(&s, url, sizeof url), "headers",
                                            "Authorization", "Bearer t0ken"),
                               &err),
                     WARREN_OK);
    dead(f, "send_email", "max_attempts", "attempt 3 of 3 failed: smtp \"down\"");
    char *req = server_request(&s);
    assert_non_null(req);
    assert_true(strncmp(req, "POST /hook HTTP/1.1\r\n", 21) == 0);
    assert_non_null(strcasestr(req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(req, "\r\nAuthorization: Bearer t0ken\r\n"));
    json_t *ev = json_loads(strstr(req, "\r\n\r\n") + 4, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "id")), "job-42");
    assert_string_equal(json_string_value(json_object_get(ev, "worker")), "send_email");
    assert_string_equal(json_string_value(json_object_get(ev, "queue")), "default");
    assert_string_equal(json_string_value(json_object_get(ev, "host")), "host-a");
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "dead");
    assert_string_equal(json_string_value(json_object_get(ev, "reason")), "max_attempts");
    assert_string_equal(json_string_value(json_object_get(ev, "error")),
                        "attempt 3 of 3 failed: smtp \"down\"");
    assert_int_equal(json_integer_value(json_object_get(ev, "attempt")), 3);
    assert_true(json_is_null(json_object_get(ev, "duration_ms")));
    assert_true(json_is_string(json_object_get(ev, "at")));
    json_decref(ev);
    free(req);
    assert_non_null(strstr(logged, "notified to the webhook"));
    server_stop(&s);
}

static void test_failures_are_logged(void **state)
{
    struct fixture *f = *state;
    int statuses[] = {500, 0};
    struct server s = server_start(statuses, 2);
    char url[128];
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s, s:i}", "webhook_url",
                                            hook_url(&s, url, sizeof url), "timeout_ms", 300),
                               &err),
                     WARREN_OK);
    dead(f, "w", "permanent_failure", "no");
    assert_non_null(strstr(logged, "notification failed: HTTP status 500"));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dead(f, "w", "permanent_failure", "no"); /* the server never answers */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.25 && took < 3);
    assert_non_null(strstr(logged, "notification failed: Operation timed out"));
    free(server_request(&s));
    free(server_request(&s));
    server_stop(&s);

    /* Nobody listening. */
    logged[0] = '\0';
    dead(f, "w", "permanent_failure", "no");
    assert_non_null(strstr(logged, "notification failed:"));
}

static void test_workers_filter(void **state)
{
    struct fixture *f = *state;
    int statuses[] = {200};
    struct server s = server_start(statuses, 1);
    char url[128];
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s, s:[s,s]}", "webhook_url",
                                            hook_url(&s, url, sizeof url), "workers",
                                            "billing", ""),
                               &err),
                     WARREN_OK);
    dead(f, "send_email", "max_attempts", "x"); /* not listed: nothing sent */
    dead(f, "", "malformed", "not JSON");       /* "" stands for unknown jobs */
    char *req = server_request(&s);
    assert_non_null(req);
    assert_non_null(strstr(req, "\"reason\":\"malformed\""));
    free(req);
    server_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posts_the_dead_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_are_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_filter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
