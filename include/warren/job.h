/* warren public API: the job a handler receives, and its outcomes.
 * A handler gets a borrowed warren_job, valid until it returns. */
#ifndef WARREN_JOB_H
#define WARREN_JOB_H

#include <jansson.h>
#include <warren/export.h>
#include <warren/log.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warren_job warren_job;

/* What a handler returns. */
typedef enum warren_outcome {
    WARREN_JOB_OK = 0,    /* done: the message is acknowledged */
    WARREN_JOB_RETRY = 1, /* transient failure: retried with backoff */
    WARREN_JOB_FAIL = 2,  /* permanent failure: dead letter at once */
    WARREN_JOB_SNOOZE = 3, /* not now: run again later, same attempt (warren_job_snooze) */
} warren_outcome;

/* Accessors. Strings are borrowed and live as long as the job. */
WARREN_EXPORT const char *warren_job_worker(const warren_job *job);
WARREN_EXPORT const char *warren_job_id(const warren_job *job);
WARREN_EXPORT int warren_job_attempt(const warren_job *job);
WARREN_EXPORT int warren_job_max_attempts(const warren_job *job);
WARREN_EXPORT int warren_job_priority(const warren_job *job);
/* The arguments object (borrowed; never NULL in a handler). */
WARREN_EXPORT json_t *warren_job_args(const warren_job *job);
/* The message headers as a JSON object (borrowed; never NULL). */
WARREN_EXPORT json_t *warren_job_headers(const warren_job *job);

/* Logs through the host's logger, with the job id and worker on the line
 * and the module's name as the msgid prefix. */
WARREN_EXPORT void warren_job_log(const warren_job *job, warren_log_level level,
                                  const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the error text for a failure (at most 1 KiB is kept) and
 * returns the matching outcome, so a handler writes
 * `return warren_job_retry(job, "smtp: %s", why);`. */
WARREN_EXPORT warren_outcome warren_job_retry(warren_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
WARREN_EXPORT warren_outcome warren_job_fail(warren_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "Later, in delay_ms": the job goes back through the delay levels (whole
 * seconds, rounded up; at least 1 s) with the same attempt number and
 * x-warren-snoozes + 1. Snoozes are not failures; after the worker's
 * max_snoozes (default 100) the job is parked as max_attempts. Returns
 * WARREN_JOB_SNOOZE: `return warren_job_snooze(job, 30000);`. */
WARREN_EXPORT warren_outcome warren_job_snooze(warren_job *job, long long delay_ms);

/* Reports progress of a long job: `done` of `total` units. The host
 * publishes it as a `progress` event (with events.enabled) at most about
 * twice a second, so calling it often is cheap. Thread-safe with respect
 * to the host; call it from the handler's thread. */
WARREN_EXPORT void warren_job_progress(warren_job *job, long long done, long long total);

/* The error text recorded so far ("" when none). */
WARREN_EXPORT const char *warren_job_error(const warren_job *job);

#ifdef __cplusplus
}
#endif
#endif
