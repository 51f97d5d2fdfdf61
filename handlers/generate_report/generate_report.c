/* The generate_report module: one worker, `generate_report`, with args
 * {csv, group_by?, sum?}. Module config: `data_dir` (required).
 *
 * It reads data_dir/<csv> (a CSV file with a header row), counts the rows
 * per value of column `group_by` (one group "all" without it), sums the
 * numeric column `sum` per group when asked, and writes
 *
 *     {"csv": ..., "rows": N, "groups": {"<value>": {"count": n, "sum": s}}}
 *
 * to data_dir/reports/<job id>.json, under a temporary name and then
 * renamed, so a reader never sees half a report and a retry replaces its
 * own. Paths never leave data_dir: an absolute `csv` or one with a ".."
 * component is refused. Bad input (missing file, unknown column, a cell
 * that is not a number) fails permanently: retrying would not change it.
 * Sums stay integers while every cell is one, and become reals otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/job.h>
#include <warren/module.h>
#include <warren/registry.h>
#include "csv.h"

static struct {
    char *data_dir;
} report;

struct group {
    long long count;
    long long isum;
    double sum;
};

/* What one run builds up. */
struct tally {
    json_t *index; /* group value -> position in groups */
    struct group *groups; /* in order of first appearance */
    size_t n_groups, cap_groups;
    long long rows;
    int integral; /* every sum cell so far was an integer */
    int out_of_memory;
};

/* ---- checks ---- */

static int escapes(const char *path)
{
    if (path[0] == '/' || path[0] == '\0')
        return 1;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n + (p[n] == '/');
    }
    return 0;
}

static const char *unsafe_id(const char *id)
{
    if (!id[0])
        return "is empty";
    if (id[0] == '.')
        return "starts with '.'";
    if (strchr(id, '/'))
        return "contains '/'";
    if (strlen(id) > NAME_MAX - 32)
        return "is too long for a file name";
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "contains a control character";
    return NULL;
}

/* ---- numbers and groups ---- */

/* Parses a whole cell (spaces around allowed) as an integer or a finite
 * real. 0 ok (*is_int says which), -1 not a number. */
static int parse_number(const char *text, long long *i, double *d, int *is_int)
{
    const char *s = text + strspn(text, " \t");
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    *i = strtoll(s, &end, 10);
    if (errno == 0 && end != s && end[strspn(end, " \t")] == '\0') {
        *is_int = 1;
        *d = (double)*i;
        return 0;
    }
    errno = 0;
    *d = strtod(s, &end);
    if (end == s || end[strspn(end, " \t")] != '\0' || !isfinite(*d))
        return -1;
    *is_int = 0;
    return 0;
}

static struct group *group_of(struct tally *t, const char *key, size_t len)
{
    json_t *pos = json_object_getn(t->index, key, len);
    if (pos)
        return &t->groups[json_integer_value(pos)];
    if (t->n_groups == t->cap_groups) {
        size_t cap = t->cap_groups ? t->cap_groups * 2 : 16;
        struct group *grown = realloc(t->groups, cap * sizeof *grown);
        if (!grown) {
            t->out_of_memory = 1;
            return NULL;
        }
        t->groups = grown;
        t->cap_groups = cap;
    }
    /* Fails for a key that is not valid UTF-8, which JSON cannot carry. */
    if (json_object_setn_new(t->index, key, len, json_integer((json_int_t)t->n_groups)) != 0)
        return NULL;
    struct group *g = &t->groups[t->n_groups++];
    memset(g, 0, sizeof *g);
    return g;
}

static void group_add(struct tally *t, struct group *g, long long i, double d, int is_int)
{
    g->sum += d;
    if (!is_int || __builtin_add_overflow(g->isum, i, &g->isum))
        t->integral = 0;
}

/* ---- reading ---- */

static int column_of(const struct csv_reader *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (strcmp(r->fields[i].text, name) == 0)
            return (int)i;
    return -1;
}

static warren_outcome unknown_column(warren_job *job, const struct csv_reader *r, const char *csv,
                                     const char *name)
{
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < r->n_fields && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 r->fields[i].text);
    return warren_job_fail(job, "generate_report: unknown column '%s' in %s (columns: %s)", name,
                           csv, list);
}

struct columns {
    int group, sum; /* -1: not asked */
    const char *sum_name;
    size_t width; /* fields per row */
};

/* Reads the header row and finds the columns asked for. */
static warren_outcome read_header(warren_job *job, struct csv_reader *r, const char *csv,
                                  const char *group_by, const char *sum, struct columns *cols)
{
    int rc = csv_next(r);
    if (rc == 0)
        return warren_job_fail(job, "generate_report: %s is empty (no header row)", csv);
    if (rc == -2)
        return warren_job_retry(job, "generate_report: reading %s: %s", csv, strerror(errno));
    if (rc < 0)
        return warren_job_fail(job, "generate_report: %s: %s", csv, r->error);
    struct csv_field *first = &r->fields[0];
    if (first->len >= 3 && memcmp(first->text, "\xEF\xBB\xBF", 3) == 0) {
        memmove(first->text, first->text + 3, first->len - 2); /* a byte order mark */
        first->len -= 3;
    }
    cols->width = r->n_fields;
    cols->sum_name = sum;
    cols->group = group_by ? column_of(r, group_by) : -1;
    cols->sum = sum ? column_of(r, sum) : -1;
    if (group_by && cols->group < 0)
        return unknown_column(job, r, csv, group_by);
    if (sum && cols->sum < 0)
        return unknown_column(job, r, csv, sum);
    return WARREN_JOB_OK;
}

static warren_outcome add_row(warren_job *job, struct tally *t, const struct csv_reader *r,
                              const struct columns *cols, const char *csv)
{
    if (r->n_fields != cols->width)
        return warren_job_fail(job, "generate_report: %s line %ld: expected %zu fields, got %zu",
                               csv, r->record_line, cols->width, r->n_fields);
    long long i = 0;
    double d = 0;
    int is_int = 1;
    if (cols->sum >= 0 && parse_number(r->fields[cols->sum].text, &i, &d, &is_int) != 0)
        return warren_job_fail(job,
                               "generate_report: %s line %ld: column '%s' is not a "
                               "number: '%.64s'",
                               csv, r->record_line, cols->sum_name, r->fields[cols->sum].text);
    const struct csv_field *key = cols->group >= 0 ? &r->fields[cols->group] : NULL;
    struct group *g = key ? group_of(t, key->text, key->len) : group_of(t, "all", 3);
    if (!g && t->out_of_memory)
        return warren_job_retry(job, "generate_report: out of memory");
    if (!g)
        return warren_job_fail(job,
                               "generate_report: %s line %ld: group value is not valid "
                               "UTF-8",
                               csv, r->record_line);
    g->count++;
    group_add(t, g, i, d, is_int);
    t->rows++;
    return WARREN_JOB_OK;
}

static warren_outcome tally_file(warren_job *job, FILE *fp, const char *csv, const char *group_by,
                                 const char *sum, struct tally *t)
{
    struct csv_reader r;
    struct columns cols = {0};
    csv_open(&r, fp);
    warren_outcome out = read_header(job, &r, csv, group_by, sum, &cols);
    int rc = 1;
    while (out == WARREN_JOB_OK && (rc = csv_next(&r)) == 1)
        out = add_row(job, t, &r, &cols, csv);
    if (out == WARREN_JOB_OK && rc == -2)
        out = warren_job_retry(job, "generate_report: reading %s: %s", csv, strerror(errno));
    else if (out == WARREN_JOB_OK && rc < 0)
        out = warren_job_fail(job, "generate_report: %s: %s", csv, r.error);
    csv_close(&r);
    return out;
}

/* ---- writing ---- */

static json_t *report_json(const struct tally *t, const char *csv, int with_sum)
{
    json_t *groups = json_object();
    const char *key;
    size_t key_len;
    json_t *pos;
    json_object_keylen_foreach(t->index, key, key_len, pos)
    {
        const struct group *g = &t->groups[json_integer_value(pos)];
        json_t *entry = json_pack("{s:I}", "count", (json_int_t)g->count);
        if (entry && with_sum)
            json_object_set_new(entry, "sum",
                                t->integral ? json_integer(g->isum) : json_real(g->sum));
        json_object_setn_new(groups, key, key_len, entry);
    }
    return json_pack("{s:s, s:I, s:o}", "csv", csv, "rows", (json_int_t)t->rows, "groups", groups);
}

static int write_file(const char *tmp, const char *text)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    const char *p = text;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    int failed = len > 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    errno = saved;
    return failed ? -1 : 0;
}

static warren_outcome save_report(warren_job *job, json_t *doc, char *path, size_t size)
{
    const char *id = warren_job_id(job);
    char dir[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/reports", report.data_dir) >= (int)sizeof dir ||
        snprintf(path, size, "%s/%s.json", dir, id) >= (int)size ||
        snprintf(tmp, sizeof tmp, "%s/.%s.json.%ld.tmp", dir, id, (long)getpid()) >=
            (int)sizeof tmp)
        return warren_job_fail(job, "generate_report: report path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return warren_job_retry(job, "generate_report: cannot create %s: %s", dir, strerror(errno));
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (!text)
        return warren_job_retry(job, "generate_report: out of memory");
    size_t len = strlen(text);
    char *with_nl = realloc(text, len + 2);
    if (with_nl) {
        text = with_nl;
        memcpy(text + len, "\n", 2);
    }
    int failed = write_file(tmp, text) != 0 || rename(tmp, path) != 0;
    int saved = errno;
    free(text);
    if (failed) {
        unlink(tmp);
        return warren_job_retry(job, "generate_report: writing %s: %s", path, strerror(saved));
    }
    return WARREN_JOB_OK;
}

/* ---- the worker ---- */

static warren_outcome open_csv(warren_job *job, const char *csv, FILE **fp)
{
    char path[PATH_MAX];
    if (escapes(csv))
        return warren_job_fail(job, "generate_report: '%s': path escapes data_dir", csv);
    if (snprintf(path, sizeof path, "%s/%s", report.data_dir, csv) >= (int)sizeof path)
        return warren_job_fail(job, "generate_report: '%.64s...': path too long", csv);
    *fp = fopen(path, "re");
    struct stat st;
    if (*fp && fstat(fileno(*fp), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(*fp);
        *fp = NULL;
        errno = EISDIR;
    }
    if (*fp)
        return WARREN_JOB_OK;
    /* Not there, not a file, not readable: the job names the wrong thing
     * and no retry changes that. Anything else (EMFILE, EIO, ENOMEM) is
     * the machine's trouble and may pass. */
    int e = errno;
    if (e == ENOENT || e == ENOTDIR || e == EISDIR || e == EACCES || e == ELOOP ||
        e == ENAMETOOLONG)
        return warren_job_fail(job, "generate_report: cannot read %s: %s", csv, strerror(e));
    return warren_job_retry(job, "generate_report: cannot read %s: %s", csv, strerror(e));
}

static warren_outcome report_run(warren_job *job, void *user)
{
    (void)user;
    json_t *args = warren_job_args(job);
    const char *csv = json_string_value(json_object_get(args, "csv"));
    const char *group_by = json_string_value(json_object_get(args, "group_by"));
    const char *sum = json_string_value(json_object_get(args, "sum"));
    const char *bad_id = unsafe_id(warren_job_id(job));
    if (bad_id)
        return warren_job_fail(job, "generate_report: job id '%.64s' %s: it names the report",
                               warren_job_id(job), bad_id);
    FILE *fp = NULL;
    warren_outcome out = open_csv(job, csv, &fp);
    if (out != WARREN_JOB_OK)
        return out;

    struct tally t = {.index = json_object(), .integral = 1};
    out = t.index ? tally_file(job, fp, csv, group_by, sum, &t)
                  : warren_job_retry(job, "generate_report: out of memory");
    fclose(fp);
    json_t *doc = out == WARREN_JOB_OK ? report_json(&t, csv, sum != NULL) : NULL;
    char path[PATH_MAX];
    if (out == WARREN_JOB_OK)
        out = doc ? save_report(job, doc, path, sizeof path)
                  : warren_job_retry(job, "generate_report: out of memory");
    if (out == WARREN_JOB_OK)
        warren_job_log(job, WARREN_LOG_INFO, "report on %s: %lld rows in %zu group(s) -> %s", csv,
                       t.rows, t.n_groups, path);
    json_decref(doc);
    json_decref(t.index);
    free(t.groups);
    return out;
}

/* ---- module ---- */

static const char *const keys[] = {"csv", "group_by", "sum", NULL};

static const warren_worker_def worker = {
    .name = "generate_report",
    .handler = report_run,
    .schema = "{s:s, s?:s, s?:s}",
    .schema_keys = keys,
};

static void report_fini(void)
{
    free(report.data_dir);
    report.data_dir = NULL;
}

static warren_status report_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    report_fini();
    json_t *dir = json_object_get(config, "data_dir");
    if (!json_is_string(dir) || json_string_length(dir) == 0)
        return warren_error_set(err, WARREN_ECONFIG,
                                "generate_report: the module config needs data_dir (the "
                                "folder that holds the CSV files and receives reports/)");
    if (!(report.data_dir = strdup(json_string_value(dir))))
        return warren_error_set(err, WARREN_ENOMEM, "generate_report: out of memory");
    warren_status st = warren_registry_add(reg, &worker, err);
    if (st != WARREN_OK)
        report_fini();
    return st;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    WARREN_MODULE_V1,
    .name = "generate_report",
    .init = report_init,
    .fini = report_fini,
};
