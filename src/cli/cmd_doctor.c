/* `warren doctor [-c FILE] [--url URL] [--grace DURATION] [--json]`: checks
 * a namespace on the broker against its configuration and prints one line
 * per finding.
 *
 * DESIGN: five checks run in turn (topology, capabilities, consumer
 * timeout, bindings, balance) and add findings (ok, skip, WARN, FAIL) to
 * one list, printed at the end as text or JSON; only a FAIL makes the exit
 * 1. What AMQP cannot tell (bindings, unacked counts, the arguments of the
 * delay queues, which are only looked up) comes from the management API
 * when broker.management_url is set; without it those parts are skipped
 * with the reason, never failed. A FAIL is meant to be certain: the
 * balance, which races with jobs moving, must come out wrong twice in a
 * row. docs/doctor.md gives every rule. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <warren/warren.h>
#include "cli.h"
#include "doctor.h"
#include "mgmt.h"
#include "registry_internal.h"

#define MGMT_TIMEOUT_MS 5000L
#define MGMT_MAX_BODY (4 << 20)

static const char *const level_names[] = {"ok", "skip", "WARN", "FAIL"};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: warren doctor [-c CONFIG | --url URL] [--grace DURATION] [--json]\n"
            "  checks the broker against the configuration, one line per finding:\n"
            "  topology (exchanges, queues and their arguments), capabilities and version,\n"
            "  time limits against the consumer timeout, bindings and delay dead-lettering\n"
            "  (management API), and, where the history exists, that each worker's jobs\n"
            "  balance (published = succeeded + dead + in flight + waiting)\n"
            "  --grace  how long a job may go without an event before it must be found on\n"
            "           the broker (default 60s)\n"
            "  --json   print the findings as JSON\n"
            "  exit 0: nothing wrong (warnings and skipped checks allowed), 1: a problem\n");
}

void doctor_note(struct doctor *d, enum doctor_level lv, const char *check, json_t *detail,
                 const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (text && d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct doctor_finding *v = realloc(d->v, cap * sizeof *v);
        if (v) {
            d->v = v;
            d->cap = cap;
        } else {
            free(text);
            text = NULL;
        }
    }
    if (!text) {
        json_decref(detail);
        return;
    }
    d->v[d->n++] = (struct doctor_finding){lv, check, text, detail};
}

const char *doctor_dur(long long ms, char *buf, size_t size)
{
    return warren__format_duration(ms, buf, size);
}

/* ---- management API ------------------------------------------------------ */

/* Sets up the client, or writes into d->mgmt_why why there is none. The
 * password is the one the AMQP connection uses (broker.password_file, or
 * the URL's). */
static void open_mgmt(struct doctor *d)
{
    const char *base = d->ctx.cfg.management_url;
    const struct mgmt_limits limits = {MGMT_TIMEOUT_MS, MGMT_MAX_BODY};
    warren_error err;
    warren_error_clear(&err);
    if (!base || !base[0])
        snprintf(d->mgmt_why, sizeof d->mgmt_why, "broker.management_url is not set");
    else if (!d->amqp_url)
        snprintf(d->mgmt_why, sizeof d->mgmt_why, "no broker URL");
    else if (mgmt_open(&d->mgmt, base, d->amqp_url, d->ctx.cfg.password_file, &limits, &err) !=
             WARREN_OK)
        snprintf(d->mgmt_why, sizeof d->mgmt_why, "%s", err.text);
}

json_t *doctor_mgmt_get(struct doctor *d, const char *kind, const char *name,
                        const char *suffix, int *found)
{
    *found = 0;
    if (d->mgmt_why[0])
        return NULL;
    json_t *answer = NULL;
    warren_error err;
    warren_error_clear(&err);
    warren_status st = mgmt_get_json(d->mgmt, kind, name, suffix, &answer, &err);
    if (st != WARREN_OK && st != WARREN_ENOTFOUND)
        snprintf(d->mgmt_why, sizeof d->mgmt_why, "%s", err.text);
    *found = answer != NULL;
    return answer;
}

/* ---- the command --------------------------------------------------------- */

static int parse_args(struct doctor *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            d->json = 1;
            continue;
        }
        if (!strcmp(a, "--grace")) {
            char why[128];
            if (i + 1 >= argc || warren__parse_duration(argv[i + 1], &d->grace_ms, why,
                                                        sizeof why) != 0) {
                fprintf(stderr, "warren doctor: --grace %s\n",
                        i + 1 < argc ? why : "needs a duration (e.g. 60s)");
                usage(stderr);
                return 2;
            }
            i++;
            continue;
        }
        int r = cli_take_conn_option(&d->ctx, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren doctor: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* Loads the modules, to know the worker names (as `warren topology`). */
static int load_workers(struct doctor *d)
{
    warren_error err;
    warren_error_clear(&err);
    if (warren_registry_create(&d->reg) != WARREN_OK)
        return 1;
    if (warren__modules_load(&d->mods, &d->ctx.cfg, d->reg, &err) != WARREN_OK) {
        cli_error("doctor", &err);
        return 2;
    }
    return 0;
}

/* Like cli_connect, but an unreachable broker is a finding, not the end. */
static int connect_broker(struct doctor *d)
{
    char *list = cli_urls(&d->ctx);
    size_t n = 0;
    char **urls = list ? warren__url_list(list, &n) : NULL;
    free(list);
    d->amqp_url = urls && n ? strdup(urls[0]) : NULL;
    const struct warren_config *cfg = &d->ctx.cfg;
    struct warren_conn_opts co = {cfg->heartbeat, cfg->password_file, &cfg->tls, "warren doctor"};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = urls ? warren__conn_open(&d->conn, urls, n, &co, &err)
                            : warren_error_set(&err, WARREN_ENOMEM, "out of memory");
    warren__strv_free(urls);
    if (st == WARREN_EINVAL) {
        cli_error("doctor", &err);
        return 2;
    }
    if (st != WARREN_OK)
        doctor_note(d, LV_FAIL, "broker", NULL, "%s", err.text);
    return 0;
}

static int print_findings(const struct doctor *d)
{
    size_t count[4] = {0};
    for (size_t i = 0; i < d->n; i++)
        count[d->v[i].level]++;
    if (d->json) {
        json_t *list = json_array();
        for (size_t i = 0; i < d->n; i++) {
            json_t *f = json_pack("{s:s, s:s, s:s}", "check", d->v[i].check, "status",
                                  level_names[d->v[i].level], "text", d->v[i].text);
            json_object_update(f, d->v[i].detail);
            json_array_append_new(list, f);
        }
        json_t *root = json_pack("{s:b, s:I, s:I, s:I, s:o}", "ok", count[LV_FAIL] == 0,
                                 "problems", (json_int_t)count[LV_FAIL], "warnings",
                                 (json_int_t)count[LV_WARN], "skipped",
                                 (json_int_t)count[LV_SKIP], "findings", list);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "null");
        free(text);
        json_decref(root);
    } else {
        for (size_t i = 0; i < d->n; i++)
            printf("%-4s  %s: %s\n", level_names[d->v[i].level], d->v[i].check, d->v[i].text);
        printf("doctor: %zu problem%s, %zu warning%s, %zu skipped\n", count[LV_FAIL],
               count[LV_FAIL] == 1 ? "" : "s", count[LV_WARN], count[LV_WARN] == 1 ? "" : "s",
               count[LV_SKIP]);
    }
    return count[LV_FAIL] ? 1 : 0;
}

int warren__cli_doctor(int argc, char **argv)
{
    struct doctor d;
    memset(&d, 0, sizeof d);
    d.grace_ms = 60000;
    int rc = parse_args(&d, argc, argv);
    if (rc >= 0)
        return rc;
    rc = cli_load(&d.ctx);
    if (rc == 0)
        rc = load_workers(&d);
    if (rc == 0)
        rc = connect_broker(&d);
    if (rc == 0) {
        open_mgmt(&d);
        if (d.conn) {
            doctor_check_topology(&d);
            doctor_check_capabilities(&d);
        }
        doctor_check_consumer_timeout(&d);
        if (d.conn) {
            doctor_check_bindings(&d);
            doctor_check_balance(&d);
        }
        rc = print_findings(&d);
        mgmt_close(d.mgmt);
    }
    for (size_t i = 0; i < d.n; i++) {
        free(d.v[i].text);
        json_decref(d.v[i].detail);
    }
    free(d.v);
    free(d.amqp_url);
    warren__conn_close(d.conn);
    warren__modules_unload(d.mods);
    warren_registry_destroy(d.reg);
    cli_free(&d.ctx);
    return rc;
}
