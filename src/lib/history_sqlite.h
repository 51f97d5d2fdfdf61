/* Internal to the SQLite job history: what its writer (history_sqlite.c)
 * and its queries (history_query.c) share. */
#ifndef WARREN_HISTORY_SQLITE_H
#define WARREN_HISTORY_SQLITE_H

#include <sqlite3.h>
#include "history.h"

enum { ST_INSERT_EVENT, ST_UPSERT_JOB, ST_UPDATE_PROGRESS, ST_COUNT };

struct warren_history {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct warren_history_opts opts;
    int in_batch;
    const char *replay_col; /* "replay", or "0" in a database without the column */
};

/* WARREN_EIO with "history: WHAT: " and SQLite's message. */
warren_status warren__history_db_fail(struct warren_history *h, warren_error *err,
                                      const char *what);

/* Unix milliseconds, wall clock. */
long long warren__history_now_ms(void);

/* Binds v, or NULL when v is NULL. */
void warren__history_bind_text(sqlite3_stmt *s, int i, const char *v);

#endif
