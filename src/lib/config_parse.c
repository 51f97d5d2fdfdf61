/* The walk over a key table: defaults, parsing and freeing.
 *
 * A table row says where its value lives (an offset into the struct the
 * group fills) and how to read it, so the same rows set the defaults,
 * parse a libconfig group, report unknown keys and free what was
 * allocated. Every problem becomes a note naming the key path; parsing
 * goes on after it, so one run reports everything. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_internal.h"

#define MAX_JSON_DEPTH 64

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

void warren__cfg_free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void free_list(const struct cfg_list *ls, void *array, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *e = (char *)array + i * ls->size;
        warren__cfg_free_fields(ls->keys, e);
        if (ls->cleanup)
            ls->cleanup(e);
    }
    free(array);
}

void warren__cfg_free_fields(const struct cfg_key *keys, void *base)
{
    for (const struct cfg_key *k = keys; k->name; k++) {
        switch (k->type) {
        case K_STR:
            free(*AT(base, k->off, char *));
            *AT(base, k->off, char *) = NULL;
            break;
        case K_STRS:
            warren__cfg_free_strv(*AT(base, k->off, char **));
            *AT(base, k->off, char **) = NULL;
            if (k->flags & KF_COUNTED)
                *AT(base, k->aux, size_t) = 0;
            break;
        case K_JSON_GROUP:
        case K_JSON_TEXT:
            json_decref(*AT(base, k->off, json_t *));
            *AT(base, k->off, json_t *) = NULL;
            break;
        case K_GROUP:
            warren__cfg_free_fields(k->sub, base);
            break;
        case K_LIST:
            free_list(k->list, *AT(base, k->off, void *), *AT(base, k->aux, size_t));
            *AT(base, k->off, void *) = NULL;
            *AT(base, k->aux, size_t) = 0;
            break;
        default:
            break;
        }
    }
}

/* Stores a NULL-terminated list (stolen) in the key's field. */
static void set_strv(const struct cfg_key *k, void *base, char **v, size_t n)
{
    warren__cfg_free_strv(*AT(base, k->off, char **));
    *AT(base, k->off, char **) = v;
    if (k->flags & KF_COUNTED)
        *AT(base, k->aux, size_t) = n;
}

static char **strv_of_one(const char *s)
{
    char **v = calloc(2, sizeof *v);
    if (v && !(v[0] = strdup(s))) {
        free(v);
        return NULL;
    }
    return v;
}

/* Sets every field of the table to its default; `base` starts zeroed.
 * Returns -1 when out of memory. */
int warren__cfg_apply_defaults(const struct cfg_key *keys, void *base)
{
    for (const struct cfg_key *k = keys; k->name; k++) {
        switch (k->type) {
        case K_INT:
        case K_BOOL:
        case K_ENUM:
            *AT(base, k->off, int) = (int)k->def;
            break;
        case K_INT64:
        case K_DURATION:
        case K_BYTES:
            *AT(base, k->off, long long) = k->def;
            break;
        case K_FLOAT:
            *AT(base, k->off, double) = k->fdef;
            break;
        case K_STR:
            if (k->sdef && !(*AT(base, k->off, char *) = strdup(k->sdef)))
                return -1;
            break;
        case K_BUF:
            snprintf(AT(base, k->off, char), k->aux, "%s", k->sdef ? k->sdef : "");
            break;
        case K_STRS:
            if (k->sdef) {
                char **v = strv_of_one(k->sdef);
                if (!v)
                    return -1;
                set_strv(k, base, v, 1);
            }
            break;
        case K_JSON_GROUP:
            if (!(*AT(base, k->off, json_t *) = json_object()))
                return -1;
            break;
        case K_JSON_TEXT:
            if (!(*AT(base, k->off, json_t *) = json_loads(k->sdef, 0, NULL)))
                return -1;
            break;
        case K_GROUP:
            if (warren__cfg_apply_defaults(k->sub, base) < 0)
                return -1;
            break;
        case K_LIST:
            break;
        }
    }
    return 0;
}

static const struct cfg_key *find_key(const struct cfg_key *keys, const char *name)
{
    for (const struct cfg_key *k = keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Values */

static const char *type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "nothing";
    }
}

static void type_error(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                       const char *expected)
{
    warren__cfg_error(c, s, "%s: must be %s, not %s", path, expected,
                      type_name(config_setting_type(s)));
}

static int get_integer(const config_setting_t *s, long long *v)
{
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        *v = config_setting_get_int(s);
    else if (config_setting_type(s) == CONFIG_TYPE_INT64)
        *v = config_setting_get_int64(s);
    else
        return -1;
    return 0;
}

static void describe(const struct cfg_key *k, long long v, char *buf, size_t size)
{
    if (k->type == K_DURATION)
        warren__format_duration(v, buf, size);
    else
        snprintf(buf, size, "%lld", v);
}

static int check_range(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                       const struct cfg_key *k, long long v)
{
    /* An int row with no upper bound still ends at INT_MAX. */
    int unbounded = k->hi == CFG_NOMAX || (k->type == K_INT && k->hi >= INT_MAX);
    long long hi = k->type == K_INT && k->hi > INT_MAX ? INT_MAX : k->hi;
    char lo_text[32], hi_text[32];

    if (v >= k->lo && v <= hi)
        return 0;
    describe(k, k->lo, lo_text, sizeof lo_text);
    describe(k, hi, hi_text, sizeof hi_text);
    if (unbounded && v < k->lo)
        warren__cfg_error(c, s, "%s: must be at least %s", path, lo_text);
    else
        warren__cfg_error(c, s, "%s: must be between %s and %s", path, lo_text, hi_text);
    return -1;
}

/* A duration or a byte size: an integer (seconds, bytes) or a string. */
static int get_scaled(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                      const struct cfg_key *k, long long *v)
{
    int duration = k->type == K_DURATION;
    long long scale = duration ? WARREN_SEC : 1;
    char why[256];

    if (get_integer(s, v) == 0) {
        if (*v < 0) {
            warren__cfg_error(c, s, "%s: must not be negative", path);
            return -1;
        }
        if (*v > LLONG_MAX / scale) {
            warren__cfg_error(c, s, "%s: too large", path);
            return -1;
        }
        *v *= scale;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        type_error(c, s, path, duration ? "a duration (500ms, 30s, 5m, 2h, 1d or whole seconds)"
                                        : "a size (bytes, or 64KiB, 512MiB, 1GiB)");
        return -1;
    }
    const char *text = config_setting_get_string(s);
    int rc = duration ? warren__parse_duration(text, v, why, sizeof why)
                      : warren__parse_bytes(text, v, why, sizeof why);
    if (rc < 0)
        warren__cfg_error(c, s, "%s: %s", path, why);
    return rc;
}

static int get_checked_string(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                              cfg_check_fn check, const char **out)
{
    char why[256];
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        type_error(c, s, path, "a string");
        return -1;
    }
    *out = config_setting_get_string(s);
    if (check && check(*out, why, sizeof why) < 0) {
        warren__cfg_error(c, s, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

/* A string, or an array or list of strings. */
static void parse_strings(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                          const char *path, void *base)
{
    int type = config_setting_type(s);
    int single = type == CONFIG_TYPE_STRING;
    int n = single ? 1 : config_setting_length(s);
    char **v;
    int bad = 0;

    if (!single && type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        type_error(c, s, path, "a list of strings");
        return;
    }
    if (n == 0 && (k->flags & KF_NONEMPTY)) {
        warren__cfg_error(c, s, "%s: must not be empty", path);
        return;
    }
    if (!(v = calloc((size_t)n + 1, sizeof *v))) {
        c->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = single ? s : config_setting_get_elem(s, (unsigned)i);
        char epath[CFG_PATH_SIZE];
        const char *text;
        snprintf(epath, sizeof epath, single ? "%s" : "%s[%d]", path, i);
        if (get_checked_string(c, e, epath, k->check, &text) < 0)
            bad = 1;
        else if (!(v[i] = strdup(text)))
            c->oom = bad = 1;
    }
    if (bad || n == 0) {
        /* A bad entry leaves a NULL hole that would stop a strv free
         * early: free every slot. */
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        v = NULL;
        if (bad)
            return;
    }
    set_strv(k, base, v, (size_t)n);
}

static json_t *to_json(struct cfg_ctx *c, const config_setting_t *s, const char *path, int depth);

static json_t *container_to_json(struct cfg_ctx *c, const config_setting_t *s, const char *path,
                                 int depth)
{
    int group = config_setting_type(s) == CONFIG_TYPE_GROUP;
    json_t *out = group ? json_object() : json_array();
    int n = config_setting_length(s);

    if (!out) {
        c->oom = 1;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char epath[CFG_PATH_SIZE];
        json_t *v;
        if (group)
            snprintf(epath, sizeof epath, "%s.%s", path, config_setting_name(e));
        else
            snprintf(epath, sizeof epath, "%s[%d]", path, i);
        if (!(v = to_json(c, e, epath, depth + 1)) ||
            (group ? json_object_set_new(out, config_setting_name(e), v)
                   : json_array_append_new(out, v)) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* A libconfig value as JSON: groups become objects, lists and arrays
 * become arrays, scalars map one to one. */
static json_t *to_json(struct cfg_ctx *c, const config_setting_t *s, const char *path, int depth)
{
    json_t *v = NULL;

    if (depth > MAX_JSON_DEPTH) {
        warren__cfg_error(c, s, "%s: nested too deeply (at most %d levels)", path, MAX_JSON_DEPTH);
        return NULL;
    }
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST:
        return container_to_json(c, s, path, depth);
    case CONFIG_TYPE_INT:
        v = json_integer(config_setting_get_int(s));
        break;
    case CONFIG_TYPE_INT64:
        v = json_integer(config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_FLOAT:
        v = json_real(config_setting_get_float(s));
        break;
    case CONFIG_TYPE_BOOL:
        v = json_boolean(config_setting_get_bool(s));
        break;
    case CONFIG_TYPE_STRING:
        /* jansson refuses strings that are not UTF-8. */
        if (!(v = json_string(config_setting_get_string(s)))) {
            warren__cfg_error(c, s, "%s: not valid UTF-8", path);
            return NULL;
        }
        return v;
    default:
        break;
    }
    if (!v)
        c->oom = 1;
    return v;
}

static void set_json(const struct cfg_key *k, void *base, json_t *v)
{
    json_decref(*AT(base, k->off, json_t *));
    *AT(base, k->off, json_t *) = v;
}

static void parse_json_text(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                            const char *path, void *base)
{
    json_error_t jerr;
    const char *text;
    json_t *v;

    if (get_checked_string(c, s, path, NULL, &text) < 0)
        return;
    if (!(v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr))) {
        warren__cfg_error(c, s, "%s: bad JSON: %s", path, jerr.text);
        return;
    }
    if (!json_is_object(v)) {
        warren__cfg_error(c, s, "%s: must be a JSON object", path);
        json_decref(v);
        return;
    }
    set_json(k, base, v);
}

static void parse_enum(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                       const char *path, void *base)
{
    char choices[128] = "";
    const char *text;

    if (get_checked_string(c, s, path, NULL, &text) < 0)
        return;
    for (int i = 0; k->names[i]; i++) {
        if (strcmp(text, k->names[i]) == 0) {
            *AT(base, k->off, int) = i;
            return;
        }
        size_t used = strlen(choices);
        snprintf(choices + used, sizeof choices - used, "%s%s", i ? ", " : "", k->names[i]);
    }
    warren__cfg_error(c, s, "%s: must be one of %s, not '%.60s'", path, choices, text);
}

static void parse_number(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                         const char *path, void *base)
{
    long long v;

    if (k->type == K_DURATION || k->type == K_BYTES) {
        if (get_scaled(c, s, path, k, &v) < 0)
            return;
    } else if (get_integer(s, &v) < 0) {
        type_error(c, s, path, "an integer");
        return;
    }
    if (check_range(c, s, path, k, v) < 0)
        return;
    if (k->type == K_INT)
        *AT(base, k->off, int) = (int)v;
    else
        *AT(base, k->off, long long) = v;
}

static void parse_float(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                        const char *path, void *base)
{
    long long i;
    double v;

    if (get_integer(s, &i) == 0)
        v = (double)i;
    else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else {
        type_error(c, s, path, "a number");
        return;
    }
    if (!(v >= k->flo && v <= k->fhi)) {
        if (k->fhi == HUGE_VAL)
            warren__cfg_error(c, s, "%s: must be at least %g", path, k->flo);
        else
            warren__cfg_error(c, s, "%s: must be between %g and %g", path, k->flo, k->fhi);
        return;
    }
    *AT(base, k->off, double) = v;
}

static void parse_list(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                       const char *path, void *base);

static void parse_value(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                        const char *path, void *base)
{
    const char *text;

    switch (k->type) {
    case K_INT:
    case K_INT64:
    case K_DURATION:
    case K_BYTES:
        parse_number(c, k, s, path, base);
        break;
    case K_FLOAT:
        parse_float(c, k, s, path, base);
        break;
    case K_BOOL:
        if (config_setting_type(s) == CONFIG_TYPE_BOOL)
            *AT(base, k->off, int) = config_setting_get_bool(s) ? 1 : 0;
        else
            type_error(c, s, path, "true or false");
        break;
    case K_ENUM:
        parse_enum(c, k, s, path, base);
        break;
    case K_STR:
        if (get_checked_string(c, s, path, k->check, &text) < 0)
            break;
        free(*AT(base, k->off, char *));
        if (!(*AT(base, k->off, char *) = strdup(text)))
            c->oom = 1;
        break;
    case K_BUF:
        if (get_checked_string(c, s, path, k->check, &text) < 0)
            break;
        if (strlen(text) >= k->aux)
            warren__cfg_error(c, s, "%s: longer than %zu characters", path, k->aux - 1);
        else
            snprintf(AT(base, k->off, char), k->aux, "%s", text);
        break;
    case K_STRS:
        parse_strings(c, k, s, path, base);
        break;
    case K_JSON_GROUP:
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
            type_error(c, s, path, "a group");
            break;
        }
        json_t *v = to_json(c, s, path, 0);
        if (v)
            set_json(k, base, v);
        break;
    case K_JSON_TEXT:
        parse_json_text(c, k, s, path, base);
        break;
    case K_GROUP:
        if (config_setting_type(s) == CONFIG_TYPE_GROUP)
            warren__cfg_parse_group(c, s, path, k->sub, base, 1);
        else
            type_error(c, s, path, "a group");
        break;
    case K_LIST:
        parse_list(c, k, s, path, base);
        break;
    }
}

static void join_path(char *out, size_t size, const char *parent, const char *name)
{
    snprintf(out, size, parent[0] ? "%s.%s" : "%s%s", parent, name);
}

/* `pass` 0 parses everything but lists, 1 everything, 2 only the lists;
 * unknown and missing keys are reported outside pass 2. */
void warren__cfg_parse_group(struct cfg_ctx *c, const config_setting_t *g, const char *path,
                             const struct cfg_key *keys, void *base, int pass)
{
    int n = config_setting_length(g);

    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct cfg_key *k = find_key(keys, name);
        char kpath[CFG_PATH_SIZE];

        if (!k) {
            if (pass == 2)
                continue;
            if (path[0])
                warren__cfg_error(c, s, "unknown key '%s' in group '%s'", name, path);
            else
                warren__cfg_error(c, s, "unknown top-level key '%s'", name);
            continue;
        }
        if ((k->type == K_LIST && pass == 0) || (k->type != K_LIST && pass == 2))
            continue;
        join_path(kpath, sizeof kpath, path, name);
        parse_value(c, k, s, kpath, base);
    }
    if (pass == 2)
        return;
    for (const struct cfg_key *k = keys; k->name; k++)
        if ((k->flags & KF_REQUIRED) && !config_setting_get_member(g, k->name))
            warren__cfg_error(c, g, "%s: missing key '%s'", path, k->name);
}

/* "workers.send_email" when the entry has a good name, else "workers[2]". */
static void entry_path(char *out, size_t size, const char *list_path, const config_setting_t *e,
                       int index, const struct cfg_list *ls)
{
    const struct cfg_key *nk = find_key(ls->keys, "name");
    const config_setting_t *ns = nk ? config_setting_get_member(e, "name") : NULL;
    const char *name = ns ? config_setting_get_string(ns) : NULL;
    char why[256];

    /* A path too long for `out` is cut: it only names the key in errors. */
    int n = name && nk->check(name, why, sizeof why) == 0
                ? snprintf(out, size, "%s.%s", list_path, name)
                : snprintf(out, size, "%s[%d]", list_path, index);
    if (n < 0)
        out[0] = '\0';
}

static void check_duplicate(struct cfg_ctx *c, const config_setting_t *e, const char *path,
                            const struct cfg_list *ls, const char *array, size_t index)
{
    const char *name;

    /* SIZE_MAX means the entries have no name: no pointer may be made
     * from it (the sum would wrap). */
    if (ls->name_off == SIZE_MAX)
        return;
    name = array + index * ls->size + ls->name_off;
    if (!name[0])
        return;
    for (size_t j = 0; j < index; j++) {
        const char *other = array + j * ls->size;
        if (strcmp(other + ls->name_off, name) == 0) {
            warren__cfg_error(c, e, "%s: duplicate %s name '%s' (first declared at line %d)",
                              path, ls->what, name, *(const int *)(other + ls->line_off));
            return;
        }
    }
}

static void parse_list(struct cfg_ctx *c, const struct cfg_key *k, const config_setting_t *s,
                       const char *path, void *base)
{
    const struct cfg_list *ls = k->list;
    int type = config_setting_type(s);
    int n = config_setting_length(s);
    char *array = NULL;

    /* An empty `[]` is an array to libconfig; anything else must be ( ). */
    if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && n == 0)) {
        type_error(c, s, path, "a list of groups ( {...}, {...} )");
        return;
    }
    if (n == 0 && (k->flags & KF_NONEMPTY)) {
        warren__cfg_error(c, s, "%s: must declare at least one %s", path, ls->what);
        return;
    }
    if (n > 0 && !(array = calloc((size_t)n, ls->size))) {
        c->oom = 1;
        return;
    }
    free_list(ls, *AT(base, k->off, void *), *AT(base, k->aux, size_t));
    *AT(base, k->off, void *) = array;
    *AT(base, k->aux, size_t) = (size_t)n;

    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        void *entry = array + (size_t)i * ls->size;
        char epath[CFG_PATH_SIZE];

        if (warren__cfg_apply_defaults(ls->keys, entry) < 0)
            c->oom = 1;
        if (ls->prepare)
            ls->prepare(c, entry);
        *AT(entry, ls->line_off, int) = config_setting_source_line(e);
        if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
            if (snprintf(epath, sizeof epath, "%s[%d]", path, i) < 0)
                epath[0] = '\0';
            type_error(c, e, epath, "a group { ... }");
            continue;
        }
        entry_path(epath, sizeof epath, path, e, i, ls);
        warren__cfg_parse_group(c, e, epath, ls->keys, entry, 1);
        check_duplicate(c, e, epath, ls, array, (size_t)i);
        if (ls->finish)
            ls->finish(c, e, epath, entry);
    }
}
