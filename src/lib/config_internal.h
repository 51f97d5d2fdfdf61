/* Internal to the config loader: the key tables and the walk over them.
 *
 * config.c holds the tables (one per group of warren.conf) and the rules
 * that span keys; config_parse.c walks a table over a libconfig group
 * (defaults, parsing, freeing); config_diag.c collects the notes. Nothing
 * outside these three files includes this header. */
#ifndef WARREN_CONFIG_INTERNAL_H
#define WARREN_CONFIG_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <libconfig.h>
#include "config.h"

#define WARREN_SEC 1000LL
#define WARREN_MIN (60 * WARREN_SEC)
#define WARREN_HOUR (60 * WARREN_MIN)
#define WARREN_DAY (24 * WARREN_HOUR)
#define CFG_NOMAX LLONG_MAX
#define CFG_PATH_SIZE 320

enum cfg_type {
    K_INT,        /* int */
    K_INT64,      /* long long */
    K_FLOAT,      /* double; integers accepted */
    K_BOOL,       /* int 0/1 */
    K_ENUM,       /* int: index in `names` */
    K_STR,        /* char *, owned */
    K_BUF,        /* char[aux] */
    K_STRS,       /* char **, NULL-terminated; count at aux when KF_COUNTED */
    K_DURATION,   /* long long milliseconds; integers are seconds */
    K_BYTES,      /* long long bytes */
    K_JSON_GROUP, /* json_t * object (new) from a libconfig group */
    K_JSON_TEXT,  /* json_t * object (new) parsed from a string */
    K_GROUP,      /* a nested group filling the same struct */
    K_LIST,       /* a list of groups: array at off, count at aux */
};

#define KF_REQUIRED 1 /* an entry without the key is an error */
#define KF_NONEMPTY 2 /* lists: at least one element */
#define KF_COUNTED 4  /* K_STRS: a size_t count lives at aux */

/* Validates a string value (and each string of a list): 0, or -1 with a
 * reason written into why. */
typedef int (*cfg_check_fn)(const char *value, char *why, size_t why_size);

struct cfg_list;

/* One known key: a row of a group's table. Bounds apply to values read
 * from the file, not to defaults. */
struct cfg_key {
    const char *name;
    enum cfg_type type;
    int flags;
    size_t off;  /* destination in the struct the group fills */
    size_t aux;  /* K_BUF: its size; K_STRS, K_LIST: offset of the count */
    long long def, lo, hi;
    double fdef, flo, fhi;
    const char *sdef;
    const char *const *names; /* K_ENUM, NULL-terminated */
    cfg_check_fn check;
    const struct cfg_key *sub;   /* K_GROUP */
    const struct cfg_list *list; /* K_LIST */
};

struct cfg_ctx;

/* How the entries of a list of groups are built and checked. */
struct cfg_list {
    const char *what;           /* "queue", "worker": for messages */
    size_t size;                /* of one entry */
    const struct cfg_key *keys; /* the entry's table */
    size_t line_off;            /* its int line */
    size_t name_off;            /* its char name[], or SIZE_MAX when unnamed */
    void (*prepare)(struct cfg_ctx *c, void *entry);  /* after defaults */
    void (*finish)(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                   void *entry);
    void (*cleanup)(void *entry);  /* frees what the table does not know */
};

struct cfg_note {
    char *text;      /* "FILE:LINE: message" */
    char *file;
    const char *msg; /* the message, inside text */
    int line;
    unsigned seq;
};

struct cfg_notes {
    struct cfg_note *v;
    size_t n, cap;
};

/* One load in progress. */
struct cfg_ctx {
    struct warren_config *cfg;
    const char *name; /* the file, for notes outside any setting */
    struct cfg_notes errors, warnings;
    unsigned seq;
    int oom;
};

/* Table rows; each table #defines BASE as the struct it fills. */
#define CFG_FIELD(f) offsetof(BASE, f)
#define KEY_INT(n, f, d, l, h) \
    {.name = n, .type = K_INT, .off = CFG_FIELD(f), .def = d, .lo = l, .hi = h}
#define KEY_INT64(n, f, d, l, h) \
    {.name = n, .type = K_INT64, .off = CFG_FIELD(f), .def = d, .lo = l, .hi = h}
#define KEY_DUR(n, f, d, l, h) \
    {.name = n, .type = K_DURATION, .off = CFG_FIELD(f), .def = d, .lo = l, .hi = h}
#define KEY_BYTES(n, f, d, l, h) \
    {.name = n, .type = K_BYTES, .off = CFG_FIELD(f), .def = d, .lo = l, .hi = h}
#define KEY_FLOAT(n, f, d, l, h) \
    {.name = n, .type = K_FLOAT, .off = CFG_FIELD(f), .fdef = d, .flo = l, .fhi = h}
#define KEY_BOOL(n, f, d) {.name = n, .type = K_BOOL, .off = CFG_FIELD(f), .def = d}
#define KEY_ENUM(n, f, d, names_) \
    {.name = n, .type = K_ENUM, .off = CFG_FIELD(f), .def = d, .names = names_}
#define KEY_STR(n, f, d, chk, fl) \
    {.name = n, .type = K_STR, .flags = fl, .off = CFG_FIELD(f), .sdef = d, .check = chk}
#define KEY_BUF(n, f, d, chk, fl)                                            \
    {.name = n, .type = K_BUF, .flags = fl, .off = CFG_FIELD(f),             \
     .aux = sizeof(((BASE *)0)->f), .sdef = d, .check = chk}
#define KEY_STRS(n, f, chk) {.name = n, .type = K_STRS, .off = CFG_FIELD(f), .check = chk}
#define KEY_STRS_N(n, f, cnt, d, chk, fl)                                    \
    {.name = n, .type = K_STRS, .flags = (fl) | KF_COUNTED, .off = CFG_FIELD(f), \
     .aux = CFG_FIELD(cnt), .sdef = d, .check = chk}
#define KEY_JSON_GROUP(n, f) {.name = n, .type = K_JSON_GROUP, .off = CFG_FIELD(f)}
#define KEY_JSON_TEXT(n, f, d) \
    {.name = n, .type = K_JSON_TEXT, .off = CFG_FIELD(f), .sdef = d}
#define KEY_GROUP(n, keys) {.name = n, .type = K_GROUP, .sub = keys}
#define KEY_LIST(n, f, cnt, spec, fl)                                        \
    {.name = n, .type = K_LIST, .flags = fl, .off = CFG_FIELD(f),            \
     .aux = CFG_FIELD(cnt), .list = spec}
#define KEY_END {.name = NULL}

/* Notes (config_diag.c). A NULL setting stands for the file as a whole. */
void warren__cfg_error(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void warren__cfg_error_line(struct cfg_ctx *c, const char *file, int line, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
void warren__cfg_warn(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sorts the notes by line, hands them to diag (may be NULL), puts the
 * first error into err and returns OK, ECONFIG or ENOMEM. */
warren_status warren__cfg_finish(struct cfg_ctx *c, struct warren_config_diag *diag,
                                 warren_error *err);

/* The walk (config_parse.c). `base` is the struct the table fills. */
int warren__cfg_apply_defaults(const struct cfg_key *keys, void *base); /* -1: no memory */
void warren__cfg_free_fields(const struct cfg_key *keys, void *base);
void warren__cfg_free_strv(char **v);

/* Parses the members of group `g` into `base`; `pass` 0 parses all but
 * lists (and reports unknown keys), 1 everything, 2 only the lists. */
void warren__cfg_parse_group(struct cfg_ctx *c, const config_setting_t *g, const char *path,
                             const struct cfg_key *keys, void *base, int pass);

#endif
