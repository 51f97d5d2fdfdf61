/* A streaming CSV reader (RFC 4180, plus bare CR line ends and quotes
 * inside unquoted fields taken literally). One character at a time from a
 * stdio stream, so a file of any size needs only one record in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "csv.h"

void csv_open(struct csv_reader *r, FILE *fp)
{
    memset(r, 0, sizeof *r);
    r->fp = fp;
    r->line = 1;
}

void csv_close(struct csv_reader *r)
{
    for (size_t i = 0; i < r->cap_fields; i++)
        free(r->fields[i].text);
    free(r->fields);
    r->fields = NULL;
    r->n_fields = r->cap_fields = 0;
}

static int fail(struct csv_reader *r, const char *what)
{
    snprintf(r->error, sizeof r->error, "line %ld: %s", r->record_line, what);
    return -1;
}

/* Starts a new empty field; -1 when out of memory. */
static int field_begin(struct csv_reader *r)
{
    if (r->n_fields == r->cap_fields) {
        size_t cap = r->cap_fields ? r->cap_fields * 2 : 16;
        struct csv_field *grown = realloc(r->fields, cap * sizeof *grown);
        if (!grown)
            return -1;
        memset(grown + r->cap_fields, 0, (cap - r->cap_fields) * sizeof *grown);
        r->fields = grown;
        r->cap_fields = cap;
    }
    struct csv_field *f = &r->fields[r->n_fields++];
    f->len = 0;
    if (!f->text) {
        f->cap = 64;
        if (!(f->text = malloc(f->cap)))
            return -1;
    }
    f->text[0] = '\0';
    return 0;
}

static int field_add(struct csv_reader *r, int c)
{
    struct csv_field *f = &r->fields[r->n_fields - 1];
    if (f->len + 2 > f->cap) {
        if (f->cap >= CSV_FIELD_MAX)
            return fail(r, "field longer than 1 MiB");
        char *grown = realloc(f->text, f->cap * 2);
        if (!grown)
            return fail(r, "out of memory");
        f->text = grown;
        f->cap *= 2;
    }
    f->text[f->len++] = (char)c;
    f->text[f->len] = '\0';
    return 0;
}

/* Counts a line break that begins with c; "\r\n" counts once. */
static void count_break(struct csv_reader *r, int c)
{
    if (c == '\n') {
        r->line++;
    } else if (c == '\r') {
        int next = getc(r->fp);
        if (next != '\n')
            r->line++;
        if (next != EOF)
            ungetc(next, r->fp);
    }
}

/* Reads a quoted field's content up to and including its closing quote.
 * Line breaks inside are kept as they are. */
static int read_quoted(struct csv_reader *r)
{
    for (;;) {
        int c = getc(r->fp);
        if (c == EOF)
            return ferror(r->fp) ? -2 : fail(r, "unterminated quoted field");
        if (c == '"') {
            int next = getc(r->fp);
            if (next != '"') {
                if (next != EOF)
                    ungetc(next, r->fp);
                return 0;
            }
        }
        count_break(r, c);
        if (field_add(r, c) != 0)
            return -1;
    }
}

/* Reads one record. Returns 1, 0 when the input had nothing more, or an
 * error as csv_next(). *blank tells a blank line. */
static int read_record(struct csv_reader *r, int *blank)
{
    r->n_fields = 0;
    r->record_line = r->line;
    if (field_begin(r) != 0)
        return fail(r, "out of memory");
    int fresh = 1, any = 0, was_quoted = 0; /* fresh: nothing yet in this field */
    for (;;) {
        int c = getc(r->fp);
        if (c == '"' && fresh) {
            int rc = read_quoted(r);
            if (rc != 0)
                return rc;
            fresh = 0;
            any = was_quoted = 1;
            c = getc(r->fp);
            if (c != EOF && c != ',' && c != '\r' && c != '\n')
                return fail(r, "text after a closing quote");
        }
        if (c == EOF) {
            if (ferror(r->fp))
                return -2;
            if (!any)
                return 0;
            break;
        }
        any = 1;
        if (c == '\r' || c == '\n') {
            int next = c == '\r' ? getc(r->fp) : EOF;
            if (next != '\n' && next != EOF)
                ungetc(next, r->fp);
            r->line++;
            break;
        }
        if (c == ',') {
            if (field_begin(r) != 0)
                return fail(r, "out of memory");
            fresh = 1;
            continue;
        }
        fresh = 0;
        if (field_add(r, c) != 0)
            return -1;
    }
    *blank = r->n_fields == 1 && r->fields[0].len == 0 && !was_quoted;
    return 1;
}

int csv_next(struct csv_reader *r)
{
    for (;;) {
        int blank = 0;
        int rc = read_record(r, &blank);
        if (rc != 1 || !blank)
            return rc;
    }
}
