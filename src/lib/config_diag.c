/* The notes of one config load: errors and warnings as "FILE:LINE: text".
 *
 * Notes are collected in the order the walk finds them (which is not file
 * order: lists are parsed last) and sorted by line at the end, so the
 * first error reported is the first one in the file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_internal.h"

static void add_note(struct cfg_ctx *c, struct cfg_notes *list, const char *file, int line,
                     const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];
    struct cfg_note n = {0};
    int head;

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        struct cfg_note *v = realloc(list->v, cap * sizeof *v);
        if (!v) {
            c->oom = 1;
            return;
        }
        list->v = v;
        list->cap = cap;
    }
    head = line > 0 ? asprintf(&n.text, "%s:%d: %s%s", file, line, prefix, msg)
                    : asprintf(&n.text, "%s: %s%s", file, prefix, msg);
    if (head < 0 || !(n.file = strdup(file))) {
        if (head >= 0)
            free(n.text);
        c->oom = 1;
        return;
    }
    n.msg = n.text + strlen(n.text) - strlen(msg);
    n.line = line;
    n.seq = c->seq++;
    list->v[list->n++] = n;
}

/* Where a setting was written; NULL stands for the file as a whole. */
static const char *setting_file(const struct cfg_ctx *c, const config_setting_t *s)
{
    return s && config_setting_source_file(s) ? config_setting_source_file(s) : c->name;
}

void warren__cfg_error(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(c, &c->errors, setting_file(c, s), s ? config_setting_source_line(s) : 0, "",
             fmt, ap);
    va_end(ap);
}

void warren__cfg_error_line(struct cfg_ctx *c, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(c, &c->errors, file, line, "", fmt, ap);
    va_end(ap);
}

void warren__cfg_warn(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(c, &c->warnings, setting_file(c, s), s ? config_setting_source_line(s) : 0,
             "warning: ", fmt, ap);
    va_end(ap);
}

static int note_before(const struct cfg_note *a, const struct cfg_note *b)
{
    return a->line != b->line ? a->line < b->line : a->seq < b->seq;
}

/* Insertion sort: lists are short and already nearly in order. */
static void sort_notes(struct cfg_notes *list)
{
    for (size_t i = 1; i < list->n; i++) {
        struct cfg_note n = list->v[i];
        size_t j = i;
        while (j > 0 && note_before(&n, &list->v[j - 1])) {
            list->v[j] = list->v[j - 1];
            j--;
        }
        list->v[j] = n;
    }
}

/* Hands the texts over to *out (when given) and frees the rest. */
static void move_notes(struct cfg_notes *list, char ***out, size_t *count)
{
    char **texts = out && list->n ? calloc(list->n, sizeof *texts) : NULL;
    for (size_t i = 0; i < list->n; i++) {
        if (texts)
            texts[i] = list->v[i].text;
        else
            free(list->v[i].text);
        free(list->v[i].file);
    }
    if (out) {
        *out = texts;
        *count = texts ? list->n : 0;
    }
    free(list->v);
    memset(list, 0, sizeof *list);
}

warren_status warren__cfg_finish(struct cfg_ctx *c, struct warren_config_diag *diag,
                                 warren_error *err)
{
    warren_status st = c->oom ? WARREN_ENOMEM : c->errors.n ? WARREN_ECONFIG : WARREN_OK;

    sort_notes(&c->errors);
    sort_notes(&c->warnings);
    if (c->oom)
        warren_error_set(err, WARREN_ENOMEM, "out of memory while loading %s", c->name);
    else if (c->errors.n)
        warren_error_set_at(err, WARREN_ECONFIG, c->errors.v[0].file, c->errors.v[0].line,
                            "%s", c->errors.v[0].msg);
    move_notes(&c->errors, diag ? &diag->errors : NULL, diag ? &diag->n_errors : NULL);
    move_notes(&c->warnings, diag ? &diag->warnings : NULL, diag ? &diag->n_warnings : NULL);
    return st;
}

void warren__config_diag_free(struct warren_config_diag *diag)
{
    if (!diag)
        return;
    for (size_t i = 0; i < diag->n_errors; i++)
        free(diag->errors[i]);
    for (size_t i = 0; i < diag->n_warnings; i++)
        free(diag->warnings[i]);
    free(diag->errors);
    free(diag->warnings);
    memset(diag, 0, sizeof *diag);
}
