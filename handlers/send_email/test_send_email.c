/* Unit tests of the send_email module: the spool path, argument checks,
 * and SMTP against a small fake server in a forked child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/warren.h>

extern const struct warren_module warren_module;

struct fixture {
    warren_registry *reg;
    char dir[64];
    char spool[128];
    char *log; /* what the last run logged */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/warren-mail-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->spool, sizeof f->spool, "%s/spool/new", f->dir);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    warren_module.fini();
    warren_registry_destroy(f->reg);
    free(f->log);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
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

static void init_spool(struct fixture *f)
{
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s}", "spool_dir", f->spool), &err), WARREN_OK);
}

static warren_outcome run_mail(struct fixture *f, const char *id, json_t *args,
                               warren_handle_result *res)
{
    warren_handle_opts opts = {.id = id};
    warren_error err;
    warren_error_clear(&err);
    free(f->log);
    assert_int_equal(warren_handle_capture(f->reg, "send_email", args, &opts, res, &f->log, &err),
                     WARREN_OK);
    json_decref(args);
    return res->outcome;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    return text;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++; /* temporary files (".name") count too */
    closedir(d);
    return n;
}

/* ---- configuration ---- */

static void test_init_needs_a_destination(void **state)
{
    struct fixture *f = *state;
    warren_error err;
    assert_int_equal(init_with(f, json_object(), &err), WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "spool_dir"));
    assert_int_equal(init_with(f, json_pack("{s:s}", "smtp_url", "http://x"), &err),
                     WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "smtp://host:port"));
    assert_int_equal(init_with(f, json_pack("{s:s}", "smtp_url", "smtp://h:99999"), &err),
                     WARREN_ECONFIG);
    assert_int_equal(init_with(f, json_pack("{s:i}", "spool_dir", 3), &err), WARREN_ECONFIG);
    assert_int_equal(warren_registry_count(f->reg), 0);
}

static void test_init_checks_settings(void **state)
{
    struct fixture *f = *state;
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s, s:i}", "spool_dir", f->spool,
                                            "smtp_timeout_ms", 0),
                               &err),
                     WARREN_ECONFIG);
    assert_string_equal(err.text, "send_email: smtp_timeout_ms must be an integer in 1..600000");
    assert_int_equal(init_with(f, json_pack("{s:s, s:s}", "spool_dir", f->spool,
                                            "smtp_timeout_ms", "5s"),
                               &err),
                     WARREN_ECONFIG);
    assert_int_equal(init_with(f, json_pack("{s:s, s:s}", "spool_dir", f->spool, "from", ""),
                               &err),
                     WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "must be non-empty strings"));
    assert_int_equal(warren_registry_count(f->reg), 0);
}

/* ---- spool ---- */

static void test_spool_writes_a_message(void **state)
{
    struct fixture *f = *state;
    init_spool(f);
    warren_handle_result res;
    json_t *args = json_pack("{s:s, s:s, s:s}", "to", "Bob <bob@example.com>", "subject", "Hello",
                             "body", "line one\nline two\n.dot line");
    assert_int_equal(run_mail(f, "job-1", args, &res), WARREN_JOB_OK);

    char path[256];
    snprintf(path, sizeof path, "%s/job-1.eml", f->spool);
    char *text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "From: warren@localhost\r\n"));
    assert_non_null(strstr(text, "To: Bob <bob@example.com>\r\n"));
    assert_non_null(strstr(text, "Subject: Hello\r\n"));
    assert_non_null(strstr(text, "\r\nDate: "));
    assert_non_null(strstr(text, " +0000\r\n"));
    assert_non_null(strstr(text, "Message-ID: <job-1@localhost>\r\n"));
    assert_non_null(strstr(text, "\r\n\r\nline one\r\nline two\r\n.dot line\r\n"));
    free(text);
    char logged[300];
    snprintf(logged, sizeof logged, "info: spooled %s\n", path);
    assert_string_equal(f->log, logged);
    /* Nothing else in the spool: the temporary file was renamed. */
    assert_int_equal(count_files(f->spool), 1);

    /* A retry of the same job replaces its file. */
    args = json_pack("{s:s, s:s, s:s, s:s}", "to", "a@b", "subject", "Caf\xc3\xa9", "body", "x",
                     "from", "Shop <shop@example.org>");
    assert_int_equal(run_mail(f, "job-1", args, &res), WARREN_JOB_OK);
    assert_int_equal(count_files(f->spool), 1);
    text = slurp(path);
    assert_non_null(strstr(text, "From: Shop <shop@example.org>\r\n"));
    assert_non_null(strstr(text, "Subject: =?UTF-8?B?Q2Fmw6k=?=\r\n"));
    assert_non_null(strstr(text, "Message-ID: <job-1@example.org>\r\n"));
    free(text);
}

static void test_spool_default_from_config(void **state)
{
    struct fixture *f = *state;
    warren_error err;
    assert_int_equal(
        init_with(f, json_pack("{s:s, s:s}", "spool_dir", f->spool, "from", "noreply@example.net"),
                  &err),
        WARREN_OK);
    warren_handle_result res;
    assert_int_equal(
        run_mail(f, "j2", json_pack("{s:s, s:s, s:s}", "to", "a@b", "subject", "s", "body", "b"),
                 &res),
        WARREN_JOB_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/j2.eml", f->spool);
    char *text = slurp(path);
    assert_non_null(strstr(text, "From: noreply@example.net\r\n"));
    free(text);
}

static void test_invalid_args(void **state)
{
    struct fixture *f = *state;
    init_spool(f);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "j", json_pack("{s:s, s:s}", "to", "a@b", "body", "b"), &res),
                     WARREN_JOB_FAIL);
    assert_string_equal(res.error, "invalid_args: Object item not found: subject");
    assert_int_equal(run_mail(f, "j",
                              json_pack("{s:s, s:s, s:s, s:i}", "to", "a@b", "subject", "s", "body",
                                        "b", "from", 1),
                              &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "invalid_args: Expected string, got integer"));
    /* Header injection. */
    assert_int_equal(run_mail(f, "j",
                              json_pack("{s:s, s:s, s:s}", "to", "a@b", "subject",
                                        "hi\r\nBcc: all@example.com", "body", "b"),
                              &res),
                     WARREN_JOB_FAIL);
    assert_string_equal(res.error, "send_email: 'subject' contains a line break");
    assert_int_equal(
        run_mail(f, "j",
                 json_pack("{s:s, s:s, s:s}", "to", "not an address", "subject", "s", "body", "b"),
                 &res),
        WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "bad recipient address"));
    assert_int_equal(count_files(f->spool), -1); /* nothing was even created */
}

static void test_bad_sender_or_recipients_are_permanent(void **state)
{
    struct fixture *f = *state;
    init_spool(f);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "j",
                              json_pack("{s:s, s:s, s:s, s:s}", "to", "a@b", "subject", "s",
                                        "body", "b", "from", "Shop <shop@example.org"),
                              &res),
                     WARREN_JOB_FAIL);
    assert_string_equal(res.error, "send_email: bad sender address 'Shop <shop@example.org'");
    assert_int_equal(
        run_mail(f, "j", json_pack("{s:s, s:s, s:s}", "to", " , ", "subject", "s", "body", "b"),
                 &res),
        WARREN_JOB_FAIL);
    assert_string_equal(res.error, "send_email: no recipient address in 'to'");
    char to[101 * 8] = "";
    for (int i = 0; i < 101; i++)
        snprintf(to + strlen(to), sizeof to - strlen(to), "%sr%d@x", i ? "," : "", i);
    assert_int_equal(
        run_mail(f, "j", json_pack("{s:s, s:s, s:s}", "to", to, "subject", "s", "body", "b"), &res),
        WARREN_JOB_FAIL);
    assert_string_equal(res.error, "send_email: more than 100 recipients");
    assert_int_equal(count_files(f->spool), -1); /* nothing was even created */
}

static void test_id_cannot_escape_the_spool(void **state)
{
    struct fixture *f = *state;
    init_spool(f);
    const char *bad[] = {"../evil", ".hidden", "a/b", "/etc/passwd", "tab\there"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        warren_handle_result res;
        json_t *args = json_pack("{s:s, s:s, s:s}", "to", "a@b", "subject", "s", "body", "b");
        warren_handle_opts opts = {.id = bad[i]};
        warren_error err;
        warren_error_clear(&err);
        assert_int_equal(warren_handle(f->reg, "send_email", args, &opts, &res, &err), WARREN_OK);
        json_decref(args);
        assert_int_equal(res.outcome, WARREN_JOB_FAIL);
        assert_non_null(strstr(res.error, "it names the spool file"));
    }
    char path[256];
    snprintf(path, sizeof path, "%s/spool/evil.eml", f->dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_files(f->spool), -1);
}

static void test_unwritable_spool_is_transient(void **state)
{
    struct fixture *f = *state;
    /* A spool folder under a regular file can never be created (root can
     * write anywhere, so permissions would prove nothing). */
    char blocker[128], spool[160];
    snprintf(blocker, sizeof blocker, "%s/file", f->dir);
    FILE *fp = fopen(blocker, "w");
    fclose(fp);
    snprintf(spool, sizeof spool, "%s/spool", blocker);
    warren_error err;
    assert_int_equal(init_with(f, json_pack("{s:s}", "spool_dir", spool), &err), WARREN_OK);
    warren_handle_result res;
    assert_int_equal(
        run_mail(f, "j", json_pack("{s:s, s:s, s:s}", "to", "a@b", "subject", "s", "body", "b"),
                 &res),
        WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "cannot create spool_dir"));
}

/* ---- SMTP ---- */

enum fake_mode { FAKE_ACCEPT, FAKE_REJECT_RCPT, FAKE_TEMPFAIL_RCPT, FAKE_SILENT };

/* Serves one SMTP session on `lfd`, writing what it received to `log`. */
static void fake_server(int lfd, enum fake_mode mode, const char *log)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        _exit(2);
    FILE *in = fdopen(fd, "r");
    FILE *out = fdopen(dup(fd), "w");
    FILE *rec = fopen(log, "w");
    if (mode == FAKE_SILENT) {
        sleep(3);
        _exit(0);
    }
    fputs("220 fake.example ESMTP\r\n", out);
    fflush(out);
    char line[2048];
    int in_data = 0;
    while (fgets(line, sizeof line, in)) {
        fputs(line, rec);
        const char *reply = NULL;
        if (in_data) {
            if (strcmp(line, ".\r\n") == 0) {
                in_data = 0;
                reply = "250 2.0.0 queued\r\n";
            }
        } else if (strncmp(line, "EHLO", 4) == 0) {
            reply = "250-fake.example\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n";
        } else if (strncmp(line, "MAIL", 4) == 0) {
            reply = "250 2.1.0 ok\r\n";
        } else if (strncmp(line, "RCPT", 4) == 0) {
            reply = mode == FAKE_REJECT_RCPT     ? "550 5.1.1 no such user\r\n"
                    : mode == FAKE_TEMPFAIL_RCPT ? "451 4.3.0 try again later\r\n"
                                                 : "250 2.1.5 ok\r\n";
        } else if (strncmp(line, "DATA", 4) == 0) {
            in_data = 1;
            reply = "354 go ahead\r\n";
        } else if (strncmp(line, "QUIT", 4) == 0) {
            fputs("221 bye\r\n", out);
            break;
        } else {
            reply = "500 what?\r\n";
        }
        if (reply) {
            fputs(reply, out);
            fflush(out);
        }
    }
    fclose(rec);
    fclose(out);
    fclose(in);
    _exit(0);
}

/* Starts a fake server on a loopback port; returns its pid. */
static pid_t fake_start(enum fake_mode mode, const char *log, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        fake_server(lfd, mode, log);
    close(lfd);
    return pid;
}

static void fake_wait(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
}

static void init_smtp(struct fixture *f, int port, int timeout_ms)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    warren_error err;
    assert_int_equal(
        init_with(f, json_pack("{s:s, s:i}", "smtp_url", url, "smtp_timeout_ms", timeout_ms), &err),
        WARREN_OK);
}

static json_t *smtp_args(void)
{
    return json_pack("{s:s, s:s, s:s}", "to", "Bob <bob@example.com>, \"Doe, Jane\" <jane@x.org>",
                     "subject", "Hi", "body", "hello\n.leading dot\nend");
}

static void test_smtp_delivers(void **state)
{
    struct fixture *f = *state;
    char log[128];
    snprintf(log, sizeof log, "%s/session.log", f->dir);
    int port;
    pid_t pid = fake_start(FAKE_ACCEPT, log, &port);
    init_smtp(f, port, 5000);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "mail-7", smtp_args(), &res), WARREN_JOB_OK);
    fake_wait(pid);
    char *session = slurp(log);
    assert_non_null(session);
    assert_non_null(strstr(session, "EHLO "));
    assert_non_null(strstr(session, "MAIL FROM:<warren@localhost>\r\n"));
    assert_non_null(strstr(session, "RCPT TO:<bob@example.com>\r\n"));
    assert_non_null(strstr(session, "RCPT TO:<jane@x.org>\r\n"));
    assert_non_null(strstr(session, "DATA\r\n"));
    assert_non_null(strstr(session, "Subject: Hi\r\n"));
    assert_non_null(strstr(session, "Message-ID: <mail-7@localhost>\r\n"));
    assert_non_null(strstr(session, "\r\nhello\r\n..leading dot\r\nend\r\n.\r\nQUIT\r\n"));
    free(session);
    char logged[100];
    snprintf(logged, sizeof logged, "info: sent to 2 recipient(s) via 127.0.0.1:%d\n", port);
    assert_string_equal(f->log, logged);
}

static void test_smtp_550_is_permanent(void **state)
{
    struct fixture *f = *state;
    char log[128];
    snprintf(log, sizeof log, "%s/session.log", f->dir);
    int port;
    pid_t pid = fake_start(FAKE_REJECT_RCPT, log, &port);
    init_smtp(f, port, 5000);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "mail-8", smtp_args(), &res), WARREN_JOB_FAIL);
    assert_string_equal(res.error,
                        "send_email: smtp: RCPT TO <bob@example.com> refused: 550 5.1.1 no "
                        "such user");
    fake_wait(pid);
}

static void test_smtp_451_is_transient(void **state)
{
    struct fixture *f = *state;
    char log[128];
    snprintf(log, sizeof log, "%s/session.log", f->dir);
    int port;
    pid_t pid = fake_start(FAKE_TEMPFAIL_RCPT, log, &port);
    init_smtp(f, port, 5000);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "mail-9", smtp_args(), &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "451 4.3.0 try again later"));
    fake_wait(pid);
}

static void test_smtp_refused_is_transient(void **state)
{
    struct fixture *f = *state;
    /* A port that was just free: nothing listens there. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    init_smtp(f, ntohs(sa.sin_port), 2000);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "mail-10", smtp_args(), &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "cannot connect to 127.0.0.1:"));
    assert_non_null(strstr(res.error, "Connection refused"));
}

static void test_smtp_silent_server_times_out(void **state)
{
    struct fixture *f = *state;
    char log[128];
    snprintf(log, sizeof log, "%s/session.log", f->dir);
    int port;
    pid_t pid = fake_start(FAKE_SILENT, log, &port);
    init_smtp(f, port, 300);
    warren_handle_result res;
    assert_int_equal(run_mail(f, "mail-11", smtp_args(), &res), WARREN_JOB_RETRY);
    assert_non_null(strstr(res.error, "timed out"));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_needs_a_destination),
        T(test_init_checks_settings),
        T(test_spool_writes_a_message),
        T(test_spool_default_from_config),
        T(test_invalid_args),
        T(test_bad_sender_or_recipients_are_permanent),
        T(test_id_cannot_escape_the_spool),
        T(test_unwritable_spool_is_transient),
        T(test_smtp_delivers),
        T(test_smtp_550_is_permanent),
        T(test_smtp_451_is_transient),
        T(test_smtp_refused_is_transient),
        T(test_smtp_silent_server_times_out),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
