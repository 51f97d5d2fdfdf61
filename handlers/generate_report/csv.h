/* generate_report's CSV reader: RFC 4180 records from a stream. */
#ifndef GENERATE_REPORT_CSV_H
#define GENERATE_REPORT_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_FIELD_MAX (1u << 20) /* bytes in one field */

struct csv_field {
    char *text; /* NUL-terminated; may also hold NULs, hence len */
    size_t len, cap;
};

struct csv_reader {
    FILE *fp;
    long line; /* where the next record starts, from 1 */
    long record_line; /* where the record just read started */
    struct csv_field *fields;
    size_t n_fields, cap_fields;
    char error[200];
};

void csv_open(struct csv_reader *r, FILE *fp);
void csv_close(struct csv_reader *r); /* frees the fields, not the stream */

/* Reads the next non-blank record into r->fields: fields are separated by
 * commas, records by LF, CRLF or CR; a field in double quotes may hold
 * commas, line breaks and doubled quotes. Returns 1 for a record, 0 at the
 * end, -1 with r->error on malformed input, -2 on a read error (errno). */
int csv_next(struct csv_reader *r);

#endif
