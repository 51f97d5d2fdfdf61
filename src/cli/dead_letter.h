/* The letters of a dead-letter queue as `warren dead` shows them: the
 * fields read from a letter's headers, the filters, and the list, group
 * and JSON output. Nothing here talks to the broker. */
#ifndef WARREN_CLI_DEAD_LETTER_H
#define WARREN_CLI_DEAD_LETTER_H

#include <stddef.h>
#include <amqp.h>
#include <jansson.h>

/* One dead letter's fields. Strings are new, "" when absent, and raw:
 * neither checked as UTF-8 nor escaped (dead_cell and dead_json_text make
 * them safe to show). */
struct dead_letter {
    char *id, *worker, *reason, *error, *failed_at, *queue, *host;
    long long attempts;  /* x-warren-attempts, 0 when absent */
    int replay;          /* x-warren-replay: replays before this letter, 0 when
                            absent or unreadable (warren__job_replay) */
    long long failed_ms; /* x-warren-failed-at in Unix ms; -1 when absent or unreadable */
    int worker_ok;       /* the worker name is valid to route by */
};

/* Reads the letter from its properties. The worker is the `type`
 * property, else x-warren-original-routing-key when
 * x-warren-original-exchange is `jobs_exchange`, else "". 0 ok, -1 out
 * of memory. */
int dead_letter_read(struct dead_letter *l, const amqp_basic_properties_t *p,
                     const char *jobs_exchange);
void dead_letter_free(struct dead_letter *l);

/* The filters the subcommands share; NULL / 0 means "any". */
struct dead_filter {
    const char *worker;     /* equal */
    const char *reason;     /* equal */
    const char *error;      /* contained in x-warren-error */
    const char *since_text; /* as given, for the audit line */
    long long since_ms;     /* failed at or after now - since_ms */
    int exact;              /* error too must be equal (a group: all three equal,
                               compared as shown, invalid UTF-8 as U+FFFD) */
};

int dead_filter_active(const struct dead_filter *f);
int dead_filter_match(const struct dead_filter *f, const struct dead_letter *l, long long now_ms);

/* Whether `name` is a reason of the wire contract. */
int dead_reason_known(const char *name);

/* "2026-05-01T02:00:00.123Z" (or with an offset) in Unix ms; -1 when not
 * RFC 3339. */
long long dead_parse_rfc3339_ms(const char *s);
long long dead_now_ms(void);

/* Collected letters: rows for a list, or counts per (worker, reason,
 * error) with `group`. */
struct dead_output {
    int json, group;
    json_t *rows;   /* array of letter objects */
    json_t *groups; /* object: group key -> {worker, reason, error, count} */
    size_t n;       /* letters collected */
};

/* 0 ok, -1 out of memory. */
int dead_output_init(struct dead_output *out, int json, int group);
void dead_output_free(struct dead_output *out);
void dead_output_add(struct dead_output *out, const struct dead_letter *l, const amqp_message_t *m);

/* Prints to stdout: a JSON array with `json`, else a table and a summary
 * line. `limit` caps the groups shown; `verb` is NULL for a list, else
 * "replay" or "purge" for a dry run; `present` is how many letters the
 * queue `queue` held. */
void dead_output_print(const struct dead_output *out, long limit, const char *verb,
                       const char *queue, unsigned present);

/* The groups collected, largest first, at most `limit` (new array). */
json_t *dead_output_groups(const struct dead_output *out, long limit);

/* A JSON string of any text; invalid UTF-8 becomes U+FFFD. New. */
json_t *dead_json_text(const char *s);

/* Copies `text` into buf for a terminal: control characters become '?',
 * at most `max` bytes cut on a character boundary and marked "...". */
void dead_cell(char *buf, size_t size, const char *text, size_t max);

#endif
