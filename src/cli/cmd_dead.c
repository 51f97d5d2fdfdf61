/* `warren dead list|replay|purge QUEUE`: the dead letters of one queue.
 *
 * DESIGN: every subcommand walks the letters that were in
 * "<namespace>.<QUEUE>.dead" when it started (the count from a passive
 * declare), taking them one by one with basic.get and no ack. A letter the
 * command acts on is acked (purge) or acked once the broker confirmed its
 * copy (replay); every other letter is held unacked until the walk ends,
 * so basic.get never hands the same letter out twice, and is then rejected
 * with requeue in the order taken, which puts it back where it was. A
 * command killed midway therefore leaves each letter either still dead or
 * replayed (possibly both: at-least-once), never neither.
 *
 * Each action (a replayed letter, a purge) logs one audit line on stderr,
 * msgid "dead.replay" or "dead.purge", naming the user, queue, ids and
 * filter. */
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/log.h>
#include "cli.h"
#include "common.h"
#include "dead_letter.h"
#include "topology.h"

#define DEFAULT_LIMIT 100
#define AUDIT_IDS_MAX 50 /* ids named in one purge audit line */
#define CONFIRM_TIMEOUT_MS 30000

enum sub { SUB_LIST, SUB_REPLAY, SUB_PURGE };

#define FOR_LIST (1u << SUB_LIST)
#define FOR_REPLAY (1u << SUB_REPLAY)
#define FOR_PURGE (1u << SUB_PURGE)

struct dead_opts {
    enum sub sub;
    const char *queue;
    const char *limit_text;
    struct dead_filter filter;
    int json, group, all, dry_run, yes;
    long limit;
    const char **ids; /* borrowed from argv; the array is new */
    size_t n_ids;
};

/* What a walk's visitor did with the letter it was shown. */
enum visit {
    VISIT_HOLD,      /* keep it: it is requeued when the walk ends */
    VISIT_DONE,      /* it was acked */
    VISIT_HOLD_STOP, /* keep it and end the walk */
    VISIT_FAIL,      /* the connection failed (err is set) */
};

typedef enum visit (*visit_fn)(struct warren_conn_delivery *d, const struct dead_letter *l,
                               void *user, warren_error *err);

static void usage_short(FILE *to)
{
    fprintf(to, "usage: warren dead list QUEUE [--limit N] [--json] [--group] [FILTERS] [CONN]\n"
                "       warren dead replay QUEUE (--id ID... | --all) [FILTERS]"
                " [--dry-run [--json]] [CONN]\n"
                "       warren dead purge QUEUE (--yes | --dry-run [--json]) [FILTERS] [CONN]\n");
}

static void usage(FILE *to)
{
    usage_short(to);
    fprintf(to,
            "  QUEUE            a queue's short name (default); its letters are in "
            "<namespace>.QUEUE.dead\n"
            "  FILTERS          combined; a letter must match all of them:\n"
            "    --worker W     its worker name is W\n"
            "    --reason R     its x-warren-dead-reason is R (max_attempts, "
            "permanent_failure, ...)\n"
            "    --since D      it failed within the last D (500ms, 30s, 5m, 2h, 1d)\n"
            "    --error TEXT   its x-warren-error contains TEXT\n"
            "  CONN             -c CONFIG | --url URL\n"
            "list removes nothing (default --limit %d letters; --group counts all of them\n"
            "by worker, reason and error and shows the --limit largest groups).\n"
            "replay publishes each letter again to the jobs exchange with its worker name as\n"
            "routing key, attempt 1, id and signature kept, and removes the letter once the\n"
            "broker confirmed the copy. purge removes letters (all of them without a filter).\n"
            "--dry-run prints what would be replayed or purged and changes nothing.\n",
            DEFAULT_LIMIT);
}

/* ---- options ----------------------------------------------------------- */

struct option_def {
    const char *name;
    unsigned subs; /* FOR_* bits of the subcommands that take it */
    int has_value; /* 1: a const char * at `offset`; 0: an int flag */
    size_t offset;
};

static const struct option_def option_defs[] = {
    {"--limit", FOR_LIST, 1, offsetof(struct dead_opts, limit_text)},
    {"--json", FOR_LIST | FOR_REPLAY | FOR_PURGE, 0, offsetof(struct dead_opts, json)},
    {"--group", FOR_LIST, 0, offsetof(struct dead_opts, group)},
    {"--all", FOR_REPLAY, 0, offsetof(struct dead_opts, all)},
    {"--yes", FOR_PURGE, 0, offsetof(struct dead_opts, yes)},
    {"--dry-run", FOR_REPLAY | FOR_PURGE, 0, offsetof(struct dead_opts, dry_run)},
    {"--worker", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.worker)},
    {"--reason", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.reason)},
    {"--since", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1,
     offsetof(struct dead_opts, filter.since_text)},
    {"--error", FOR_LIST | FOR_REPLAY | FOR_PURGE, 1, offsetof(struct dead_opts, filter.error)},
};

static const char *const sub_names[] = {"list", "replay", "purge"};

/* Takes one option of ours at argv[*i]. 1 taken, 0 not ours, -1 misuse. */
static int take_option(struct dead_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--id") && o->sub == SUB_REPLAY) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "warren dead: --id needs a value\n");
            return -1;
        }
        o->ids[o->n_ids++] = argv[++*i];
        return 1;
    }
    for (size_t k = 0; k < sizeof option_defs / sizeof option_defs[0]; k++) {
        const struct option_def *def = &option_defs[k];
        if (strcmp(a, def->name) != 0 || !(def->subs & (1u << o->sub)))
            continue;
        char *field = (char *)o + def->offset;
        if (!def->has_value) {
            *(int *)field = 1;
            return 1;
        }
        if (*i + 1 >= argc) {
            fprintf(stderr, "warren dead: %s needs a value\n", a);
            return -1;
        }
        *(const char **)field = argv[++*i];
        return 1;
    }
    return 0;
}

static int queue_name_valid(const char *q)
{
    size_t n = strlen(q);
    if (n < 1 || n > 64)
        return 0;
    return strspn(q, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Checks what the options say together. 0 ok, -1 misuse (printed). */
static int check_options(struct dead_opts *o)
{
    const char *sub = sub_names[o->sub];
    char why[128];
    if (!o->queue) {
        fprintf(stderr, "warren dead %s: QUEUE is missing\n", sub);
        return -1;
    }
    if (!queue_name_valid(o->queue)) {
        fprintf(stderr, "warren dead %s: invalid queue name '%s' (must match [a-z0-9_-]{1,64})\n",
                sub, o->queue);
        return -1;
    }
    if (o->sub == SUB_REPLAY && !o->n_ids && !o->all) {
        fprintf(stderr, "warren dead replay: name the letters with --id ID or use --all\n");
        return -1;
    }
    if (o->sub == SUB_PURGE && !o->yes && !o->dry_run) {
        fprintf(stderr, "warren dead purge: removing letters needs --yes (or --dry-run)\n");
        return -1;
    }
    if (o->sub != SUB_LIST && o->json && !o->dry_run) {
        fprintf(stderr, "warren dead %s: --json goes with --dry-run\n", sub);
        return -1;
    }
    if (o->limit_text && cli_parse_int(o->limit_text, 1, 1000000000, &o->limit) != 0) {
        fprintf(stderr, "warren dead %s: --limit must be an integer >= 1\n", sub);
        return -1;
    }
    if (o->filter.since_text &&
        warren__parse_duration(o->filter.since_text, &o->filter.since_ms, why, sizeof why)) {
        fprintf(stderr, "warren dead %s: --since: %s\n", sub, why);
        return -1;
    }
    if (o->filter.reason && !dead_reason_known(o->filter.reason)) {
        fprintf(stderr, "warren dead %s: unknown reason '%s'\n", sub, o->filter.reason);
        return -1;
    }
    return 0;
}

/* 0 parsed, 1 help was asked (printed), 2 misuse (printed). */
static int parse_args(struct dead_opts *o, struct cli_ctx *ctx, int argc, char **argv)
{
    o->limit = DEFAULT_LIMIT;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        if (argc < 2)
            usage_short(stderr);
        else
            usage(stdout);
        return argc < 2 ? 2 : 1;
    }
    size_t s = 0;
    while (s < 3 && strcmp(argv[1], sub_names[s]) != 0)
        s++;
    if (s == 3) {
        fprintf(stderr, "warren dead: unknown subcommand '%s'\n", argv[1]);
        usage_short(stderr);
        return 2;
    }
    o->sub = (enum sub)s;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 1;
        }
        int r = take_option(o, argc, argv, &i);
        if (r == 0)
            r = cli_take_conn_option(ctx, argc, argv, &i);
        if (r == 0 && argv[i][0] != '-' && !o->queue) {
            o->queue = argv[i];
            r = 1;
        }
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "warren dead %s: unexpected argument '%s'\n", sub_names[s],
                        argv[i]);
            usage_short(stderr);
            return 2;
        }
    }
    if (check_options(o) != 0) {
        usage_short(stderr);
        return 2;
    }
    return 0;
}

/* ---- audit --------------------------------------------------------------- */

/* The fields every audit line carries: who, which queue, which filter. */
static json_t *audit_fields(const struct dead_opts *o, const char *dead)
{
    const char *user = getenv("USER");
    struct passwd *pw = (user && user[0]) ? NULL : getpwuid(getuid());
    json_t *filter = json_object();
    if (o->n_ids) {
        json_t *ids = json_array();
        for (size_t i = 0; i < o->n_ids; i++)
            json_array_append_new(ids, dead_json_text(o->ids[i]));
        json_object_set_new(filter, "ids", ids);
    }
    if (o->all)
        json_object_set_new(filter, "all", json_true());
    const char *const names[] = {"worker", "reason", "since", "error"};
    const char *const values[] = {o->filter.worker, o->filter.reason, o->filter.since_text,
                                  o->filter.error};
    for (size_t i = 0; i < 4; i++)
        if (values[i])
            json_object_set_new(filter, names[i], dead_json_text(values[i]));
    json_t *f = json_object();
    json_object_set_new(f, "user", dead_json_text(user && user[0] ? user : pw ? pw->pw_name : ""));
    json_object_set_new(f, "uid", json_integer((json_int_t)getuid()));
    json_object_set_new(f, "queue", dead_json_text(o->queue));
    json_object_set_new(f, "dead_queue", dead_json_text(dead));
    json_object_set_new(f, "filter", filter);
    return f;
}

/* Writes one audit line; steals `fields`. */
static void audit(const char *msgid, json_t *fields, const char *what, const char *queue)
{
    char *text = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
    warren_log_write(WARREN_LOG_INFO, msgid, text, "%s in %s", what, queue);
    free(text);
    json_decref(fields);
}

/* ---- walking the letters ------------------------------------------------- */

struct walk {
    struct warren_conn *conn;
    const char *dead;          /* full queue name */
    const char *jobs_exchange; /* the namespace's */
    uint32_t present;          /* letters when the command started */
    uint64_t *held;            /* tags to requeue at the end, in order taken */
    size_t n_held, cap_held;
};

static int hold(struct walk *w, uint64_t tag)
{
    if (w->n_held == w->cap_held) {
        size_t cap = w->cap_held ? w->cap_held * 2 : 64;
        uint64_t *h = realloc(w->held, cap * sizeof *h);
        if (!h)
            return -1;
        w->held = h;
        w->cap_held = cap;
    }
    w->held[w->n_held++] = tag;
    return 0;
}

/* Shows each of the letters present to `fn`, then requeues those held.
 * 0 ok, -1 on a broker error (err set; the broker requeues whatever was
 * still unacked when the connection closes). */
static int walk_run(struct walk *w, visit_fn fn, void *user, warren_error *err)
{
    for (uint32_t i = 0; i < w->present; i++) {
        struct warren_conn_delivery d;
        warren_error_clear(err);
        warren_status st = warren__conn_get(w->conn, w->dead, &d, err);
        if (st == WARREN_ENOTFOUND && err->code == WARREN_OK)
            break; /* fewer letters than counted: others took some */
        if (st != WARREN_OK)
            return -1;
        struct dead_letter l;
        enum visit v = VISIT_FAIL;
        if (dead_letter_read(&l, &d.message.properties, w->jobs_exchange) == 0) {
            v = fn(&d, &l, user, err);
            dead_letter_free(&l);
        } else {
            warren_error_set(err, WARREN_ENOMEM, "out of memory reading a letter");
        }
        if ((v == VISIT_HOLD || v == VISIT_HOLD_STOP) && hold(w, d.delivery_tag) != 0)
            v = VISIT_FAIL;
        warren__conn_delivery_free(&d);
        if (v == VISIT_FAIL)
            return -1;
        if (v == VISIT_HOLD_STOP)
            break;
    }
    for (size_t i = 0; i < w->n_held; i++)
        if (warren__conn_reject(w->conn, w->held[i], 1, err) != WARREN_OK)
            return -1;
    return 0;
}

/* ---- list ----------------------------------------------------------------- */

struct list_state {
    const struct dead_opts *o;
    struct dead_output *out;
    long long now;
};

static enum visit list_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                             void *user, warren_error *err)
{
    struct list_state *s = user;
    (void)err;
    if (!dead_filter_match(&s->o->filter, l, s->now))
        return VISIT_HOLD;
    dead_output_add(s->out, l, &d->message);
    /* --group counts every letter; a plain list stops at --limit. */
    return !s->out->group && (long)s->out->n >= s->o->limit ? VISIT_HOLD_STOP : VISIT_HOLD;
}

static int run_list(const struct dead_opts *o, struct walk *w, struct dead_output *out,
                    warren_error *err)
{
    struct list_state s = {o, out, dead_now_ms()};
    if (walk_run(w, list_visit, &s, err) != 0)
        return -1;
    dead_output_print(out, o->limit, NULL, w->dead, w->present);
    return 0;
}

/* ---- replay --------------------------------------------------------------- */

struct replay_state {
    const struct dead_opts *o;
    struct walk *w;
    struct dead_output *out; /* for --dry-run */
    long long now;
    unsigned char *seen; /* per --id: the furthest enum id_state a letter reached */
    size_t replayed, skipped, refused;
};

/* Headers a replayed copy leaves behind: the dead letter's, those of the
 * attempts before (a replay starts again at attempt 1) and the broker's. */
static int dropped_on_replay(amqp_bytes_t key)
{
    static const char *const exact[] = {
        "x-warren-dead-reason", "x-warren-error", "x-warren-attempts", "x-warren-failed-at",
        "x-warren-queue",       "x-warren-host",  "x-warren-attempt",  "x-warren-last-error",
        "x-warren-snoozes",     "x-death",        "x-delivery-count",
    };
    static const char *const prefixes[] = {"x-warren-original-", "x-first-death-", "x-last-death-"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (key.len == strlen(exact[i]) && !memcmp(key.bytes, exact[i], key.len))
            return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (key.len >= strlen(prefixes[i]) && !memcmp(key.bytes, prefixes[i], strlen(prefixes[i])))
            return 1;
    return 0;
}

/* Publishes the letter's copy to the jobs exchange and waits for its
 * confirm. The copy's headers borrow from the delivery. */
static warren_status replay_publish(struct walk *w, const struct warren_conn_delivery *d,
                                    const char *worker, warren_error *err)
{
    const amqp_basic_properties_t *orig = &d->message.properties;
    int n = (orig->_flags & AMQP_BASIC_HEADERS_FLAG) ? orig->headers.num_entries : 0;
    amqp_table_entry_t *e = calloc((size_t)n + 1, sizeof *e);
    if (!e)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!dropped_on_replay(orig->headers.entries[i].key))
            e[k++] = orig->headers.entries[i];
    e[k].key = amqp_cstring_bytes("x-warren-attempt");
    e[k].value.kind = AMQP_FIELD_KIND_I64;
    e[k++].value.value.i64 = 1;
    amqp_basic_properties_t p = *orig;
    p._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.headers.num_entries = k;
    p.headers.entries = e;
    uint64_t seq;
    /* Not mandatory: the jobs exchange's alternate exchange keeps a job no
     * queue serves, as for any producer. */
    warren_status st = warren__conn_publish(w->conn, w->jobs_exchange, worker, 0, &p,
                                            d->message.body.bytes, d->message.body.len, &seq, err);
    if (st == WARREN_OK)
        st = warren__conn_wait_confirms(w->conn, seq, CONFIRM_TIMEOUT_MS, err);
    free(e);
    return st;
}

/* How far the letters an --id names got. */
enum id_state { ID_MISSING, ID_FILTERED, ID_KEPT, ID_REPLAYED };

/* Raises the state of every --id that names the letter; returns whether
 * one does. */
static int note_ids(struct replay_state *s, const struct dead_letter *l, enum id_state state)
{
    int named = 0;
    for (size_t i = 0; i < s->o->n_ids; i++) {
        if (strcmp(l->id, s->o->ids[i]) != 0)
            continue;
        named = 1;
        if (s->seen[i] < state)
            s->seen[i] = (unsigned char)state;
    }
    return named;
}

static void replay_audit(struct replay_state *s, const struct dead_letter *l)
{
    json_t *f = audit_fields(s->o, s->w->dead);
    json_object_set_new(f, "id", dead_json_text(l->id));
    json_object_set_new(f, "worker", dead_json_text(l->worker));
    json_object_set_new(f, "reason", dead_json_text(l->reason));
    char id[100], what[256];
    dead_cell(id, sizeof id, l->id, 64);
    snprintf(what, sizeof what, "replayed dead letter %s to %s", id, l->worker);
    audit("dead.replay", f, what, s->w->dead);
}

static enum visit replay_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                               void *user, warren_error *err)
{
    struct replay_state *s = user;
    if (!dead_filter_match(&s->o->filter, l, s->now)) {
        note_ids(s, l, ID_FILTERED);
        return VISIT_HOLD;
    }
    if (!note_ids(s, l, ID_KEPT) && !s->o->all)
        return VISIT_HOLD;
    if (!l->worker_ok) {
        char id[100];
        dead_cell(id, sizeof id, l->id[0] ? l->id : "(no id)", 64);
        fprintf(stderr, "warren dead replay: letter %s has no usable worker name; kept\n", id);
        s->skipped++;
        return VISIT_HOLD;
    }
    if (s->o->dry_run) {
        dead_output_add(s->out, l, &d->message);
        note_ids(s, l, ID_REPLAYED);
        return VISIT_HOLD;
    }
    warren_status st = replay_publish(s->w, d, l->worker, err);
    if (st == WARREN_OK) {
        replay_audit(s, l);
        note_ids(s, l, ID_REPLAYED);
        if (warren__conn_ack(s->w->conn, d->delivery_tag, err) != WARREN_OK)
            return VISIT_FAIL;
        s->replayed++;
        return VISIT_DONE;
    }
    if (warren__conn_broken(s->w->conn))
        return VISIT_FAIL;
    /* Refused (nack) or unconfirmed: the letter stays. */
    cli_error("dead replay", err);
    warren_error_clear(err);
    s->refused++;
    return VISIT_HOLD;
}

/* Reports the ids that were not replayed; returns 1 when there are any. */
static int report_missing(const struct replay_state *s)
{
    int missing = 0;
    for (size_t i = 0; i < s->o->n_ids; i++) {
        char id[300];
        dead_cell(id, sizeof id, s->o->ids[i], 255);
        if (s->seen[i] == ID_MISSING)
            fprintf(stderr, "warren dead replay: id %s not found\n", id);
        else if (s->seen[i] == ID_FILTERED)
            fprintf(stderr, "warren dead replay: id %s does not match the filters\n", id);
        missing |= s->seen[i] != ID_REPLAYED;
    }
    return missing;
}

static int run_replay(const struct dead_opts *o, struct walk *w, struct dead_output *out,
                      warren_error *err)
{
    struct replay_state s = {o, w, out, dead_now_ms(), calloc(o->n_ids + 1, 1), 0, 0, 0};
    if (!s.seen) {
        warren_error_set(err, WARREN_ENOMEM, "out of memory");
        return -1;
    }
    int rc = walk_run(w, replay_visit, &s, err);
    if (rc == 0 && o->dry_run)
        dead_output_print(out, 0, "replay", w->dead, w->present);
    else if (!o->dry_run)
        printf("replayed %zu letter(s)\n", s.replayed);
    if (s.skipped)
        fprintf(stderr, "warren dead replay: kept %zu letter(s) without a usable worker name\n",
                s.skipped);
    if (rc == 0 && (report_missing(&s) || s.refused))
        rc = 1;
    free(s.seen);
    return rc;
}

/* ---- purge ---------------------------------------------------------------- */

struct purge_state {
    const struct dead_opts *o;
    struct walk *w;
    struct dead_output *out; /* for --dry-run */
    long long now;
    json_t *ids; /* of the letters removed, for the audit line */
    size_t purged;
};

static enum visit purge_visit(struct warren_conn_delivery *d, const struct dead_letter *l,
                              void *user, warren_error *err)
{
    struct purge_state *s = user;
    if (!dead_filter_match(&s->o->filter, l, s->now))
        return VISIT_HOLD;
    if (s->o->dry_run) {
        dead_output_add(s->out, l, &d->message);
        return VISIT_HOLD;
    }
    if (warren__conn_ack(s->w->conn, d->delivery_tag, err) != WARREN_OK)
        return VISIT_FAIL;
    if (s->purged++ < AUDIT_IDS_MAX)
        json_array_append_new(s->ids, dead_json_text(l->id));
    return VISIT_DONE;
}

static void purge_audit(const struct dead_opts *o, const char *dead, json_t *ids, size_t n)
{
    json_t *f = audit_fields(o, dead);
    json_object_set_new(f, "count", json_integer((json_int_t)n));
    if (ids) {
        json_object_set(f, "ids", ids);
        if (n > json_array_size(ids))
            json_object_set_new(f, "ids_not_shown",
                                json_integer((json_int_t)(n - json_array_size(ids))));
    }
    char what[64];
    snprintf(what, sizeof what, "purged %zu dead letter(s)", n);
    audit("dead.purge", f, what, dead);
}

static int run_purge(const struct dead_opts *o, struct walk *w, struct dead_output *out,
                     warren_error *err)
{
    if (!dead_filter_active(&o->filter) && !o->dry_run) {
        uint32_t purged = 0;
        if (warren__conn_queue_purge(w->conn, w->dead, &purged, err) != WARREN_OK)
            return -1;
        purge_audit(o, w->dead, NULL, purged);
        printf("purged %u letter(s)\n", purged);
        return 0;
    }
    struct purge_state s = {o, w, out, dead_now_ms(), json_array(), 0};
    int rc = walk_run(w, purge_visit, &s, err);
    /* What was acked is gone even when the walk failed later on. */
    if (!o->dry_run && (rc == 0 || s.purged))
        purge_audit(o, w->dead, s.ids, s.purged);
    if (rc == 0 && o->dry_run)
        dead_output_print(out, 0, "purge", w->dead, w->present);
    else if (!o->dry_run)
        printf("purged %zu letter(s)\n", s.purged);
    json_decref(s.ids);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

/* Audit lines are part of what the dead-letter commands do: a log level
 * above info in the config does not silence them. */
static void keep_audit_lines(void)
{
    if (!warren_log_enabled(WARREN_LOG_INFO))
        warren_log_setup(WARREN_LOG_INFO, WARREN_LOG_TEXT, "cli");
}

/* Runs the subcommand on an open connection. Returns the exit status. */
static int run(const struct dead_opts *o, const struct cli_ctx *ctx, struct warren_conn *conn)
{
    const char *sub = o->sub == SUB_LIST     ? "dead list"
                      : o->sub == SUB_REPLAY ? "dead replay"
                                             : "dead purge";
    char dead[WARREN_AMQP_NAME_MAX], ex[WARREN_AMQP_NAME_MAX];
    warren__name_dead(dead, sizeof dead, ctx->cfg.namespace_, o->queue);
    warren__name_exchange(ex, sizeof ex, ctx->cfg.namespace_);
    struct walk w = {conn, dead, ex, 0, NULL, 0, 0};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__conn_queue_inspect(conn, dead, &w.present, NULL, &err);
    if (st == WARREN_ENOTFOUND) {
        fprintf(stderr, "warren %s: no queue '%s' (%s does not exist)\n", sub, o->queue, dead);
        return 1;
    }
    /* A replay is a producer: like one, it makes sure the jobs exchange and
     * its alternate exchange exist, so an unserved job is kept. */
    if (st == WARREN_OK && o->sub == SUB_REPLAY && !o->dry_run)
        st = warren__topology_declare_base(conn, ctx->cfg.namespace_, 0, NULL, NULL, &err);
    if (st != WARREN_OK) {
        cli_error(sub, &err);
        return 1;
    }
    struct dead_output out;
    if (dead_output_init(&out, o->json, o->group) != 0) {
        fprintf(stderr, "warren %s: out of memory\n", sub);
        return 1;
    }
    int rc = o->sub == SUB_LIST     ? run_list(o, &w, &out, &err)
             : o->sub == SUB_REPLAY ? run_replay(o, &w, &out, &err)
                                    : run_purge(o, &w, &out, &err);
    if (rc < 0) {
        cli_error(sub, &err);
        rc = 1;
    }
    dead_output_free(&out);
    free(w.held);
    return rc;
}

int warren__cli_dead(int argc, char **argv)
{
    struct cli_ctx ctx;
    struct dead_opts o;
    memset(&ctx, 0, sizeof ctx);
    memset(&o, 0, sizeof o);
    o.ids = calloc((size_t)argc + 1, sizeof *o.ids);
    if (!o.ids)
        return 1;
    int rc = parse_args(&o, &ctx, argc, argv);
    if (rc != 0) {
        free(o.ids);
        return rc == 1 ? 0 : rc;
    }
    rc = cli_load(&ctx);
    struct warren_conn *conn = NULL;
    if (rc == 0) {
        keep_audit_lines();
        rc = cli_connect(&ctx, &conn);
    }
    if (rc == 0)
        rc = run(&o, &ctx, conn);
    warren__conn_close(conn);
    cli_free(&ctx);
    free(o.ids);
    return rc;
}
