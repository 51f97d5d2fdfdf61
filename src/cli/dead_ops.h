/* What can be done to the letters of one dead-letter queue: list them,
 * replay them to their workers, purge them. `warren dead` and the web
 * page's dead-letter actions both go through here; nothing here prints
 * except the audit lines (and a note per letter that cannot be replayed).
 *
 * DESIGN: every operation walks the letters that were in
 * "<namespace>.<QUEUE>.dead" when it started (the count from a passive
 * declare), taking them one by one with basic.get and no ack. A letter the
 * operation acts on is acked (purge) or acked once the broker confirmed its
 * copy (replay); every other letter is held unacked until the walk ends,
 * so basic.get never hands the same letter out twice, and is then rejected
 * with requeue in the order taken, which puts it back where it was. An
 * operation killed midway therefore leaves each letter either still dead
 * or replayed (possibly both: at-least-once), never neither.
 *
 * Each action (a replayed letter, a purge) logs one audit line on stderr,
 * msgid "dead.replay" or "dead.purge", naming the actor, queue, ids and
 * filter. */
#ifndef WARREN_CLI_DEAD_OPS_H
#define WARREN_CLI_DEAD_OPS_H

#include <stddef.h>
#include <warren/error.h>
#include "conn.h"
#include "dead_letter.h"

enum dead_op { DEAD_LIST, DEAD_REPLAY, DEAD_PURGE };

struct dead_request {
    enum dead_op op;
    const char *queue; /* short name, already checked */
    struct dead_filter filter;
    const char *const *ids; /* replay: the letters named (borrowed) */
    size_t n_ids;
    int all;          /* replay: every letter that matches the filter */
    int dry_run;      /* replay/purge: only collect what would be done */
    long limit;       /* list without groups: stop after this many */
    long scan_limit;  /* list: look at no more letters than this; 0 = all */
    const char *actor; /* the audit lines' "user"; NULL: the Unix user */
};

/* How far the letters an id names got. */
enum dead_id_state { DEAD_ID_MISSING, DEAD_ID_FILTERED, DEAD_ID_KEPT, DEAD_ID_REPLAYED };

struct dead_result {
    unsigned present; /* letters in the queue when the walk started */
    size_t replayed, purged;
    size_t skipped; /* letters without a usable worker name (kept) */
    size_t refused; /* copies the broker refused or did not confirm (kept) */
    unsigned char *seen; /* per id: the furthest enum dead_id_state (new) */
};

/* Runs the request on an open connection; letters listed (and, with
 * dry_run, those that would be acted on) go to `out`. Returns WARREN_OK,
 * WARREN_ENOTFOUND when the dead queue does not exist, or the broker's
 * error (err set). Free res with dead_result_free, whatever it returned. */
warren_status dead_run(const struct dead_request *r, struct warren_conn *conn, const char *ns,
                       struct dead_output *out, struct dead_result *res, warren_error *err);

void dead_result_free(struct dead_result *res);

#endif
