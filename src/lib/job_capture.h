/* Internal: capturing what handlers log through warren_job_log(), for
 * warren_handle_capture() (registry.c).
 *
 * DESIGN: a capture is active on one thread between begin and end; every
 * warren_job_log() call made on that thread meanwhile is appended to it as
 * "LEVEL: message\n", whatever the process's log level, and still goes to
 * the logger as usual. warren_handle() runs its one job synchronously on
 * the caller's thread, so that is exactly what the job logged. Captures
 * nest (the inner one sees the lines). */
#ifndef WARREN_JOB_CAPTURE_H
#define WARREN_JOB_CAPTURE_H

#include <stddef.h>
#include "json_write.h"

struct warren__log_capture {
    struct warren__jbuf buf; /* NUL-terminated once anything was added */
    int failed; /* an allocation failed: text is incomplete */
    struct warren__log_capture *prev;
};

/* Zeroes *c and makes it this thread's active capture. */
void warren__job_capture_begin(struct warren__log_capture *c);

/* Ends the capture (the previous one, if any, is active again) and
 * returns its text as a new string the caller frees ("" when nothing was
 * logged), or NULL when an allocation failed. */
char *warren__job_capture_end(struct warren__log_capture *c);

#endif
