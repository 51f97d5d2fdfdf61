/* Unit tests of the generate_report module and its CSV reader, with
 * files made in a mkdtemp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <warren/warren.h>
#include "csv.h"

extern const struct warren_module warren_module;

struct fixture {
    warren_registry *reg;
    char dir[64];
};

static char last_log[1024];

static void capture(warren_log_level level, const char *msgid, const char *fields, const char *msg,
                    void *user)
{
    (void)level;
    (void)msgid;
    (void)fields;
    (void)user;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/warren-report-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    json_t *config = json_pack("{s:s}", "data_dir", f->dir);
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_module.init(f->reg, config, &err), WARREN_OK);
    json_decref(config);
    last_log[0] = '\0';
    warren_log_set_sink(capture, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    warren_log_set_sink(NULL, NULL);
    warren_module.fini();
    warren_registry_destroy(f->reg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void put(struct fixture *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static warren_outcome run_report(struct fixture *f, const char *id, json_t *args,
                                 warren_handle_result *res)
{
    warren_handle_opts opts = {.id = id};
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_handle(f->reg, "generate_report", args, &opts, res, &err), WARREN_OK);
    json_decref(args);
    return res->outcome;
}

static json_t *load_report(struct fixture *f, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "%s/reports/%s.json", f->dir, id);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("cannot load %s: %s", path, jerr.text);
    return doc;
}

static json_t *group(json_t *doc, const char *key)
{
    json_t *g = json_object_get(json_object_get(doc, "groups"), key);
    assert_non_null(g);
    return g;
}

#define SALES                                                                                      \
    "region,product,amount\n"                                                                      \
    "north,\"Widget, large\",10\n"                                                                 \
    "south,\"Gadget \"\"Pro\"\"\",5\n"                                                             \
    "\n"                                                                                           \
    "north,Thing,2.5\n"

static void test_init_needs_data_dir(void **state)
{
    struct fixture *f = *state;
    warren_module.fini();
    warren_registry_destroy(f->reg);
    assert_int_equal(warren_registry_create(&f->reg), WARREN_OK);
    json_t *config = json_object();
    warren_error err;
    warren_error_clear(&err);
    assert_int_equal(warren_module.init(f->reg, config, &err), WARREN_ECONFIG);
    assert_non_null(strstr(err.text, "generate_report: the module config needs data_dir"));
    assert_int_equal(warren_registry_count(f->reg), 0);
    json_decref(config);
}

static void test_grouped_sum(void **state)
{
    struct fixture *f = *state;
    put(f, "sales.csv", SALES);
    warren_handle_result res;
    assert_int_equal(run_report(f, "r1",
                                json_pack("{s:s, s:s, s:s}", "csv", "sales.csv", "group_by",
                                          "region", "sum", "amount"),
                                &res),
                     WARREN_JOB_OK);
    json_t *doc = load_report(f, "r1");
    assert_string_equal(json_string_value(json_object_get(doc, "csv")), "sales.csv");
    assert_int_equal(json_integer_value(json_object_get(doc, "rows")), 3);
    assert_int_equal(json_object_size(json_object_get(doc, "groups")), 2);
    assert_int_equal(json_integer_value(json_object_get(group(doc, "north"), "count")), 2);
    assert_true(json_real_value(json_object_get(group(doc, "north"), "sum")) == 12.5);
    assert_int_equal(json_integer_value(json_object_get(group(doc, "south"), "count")), 1);
    assert_true(json_number_value(json_object_get(group(doc, "south"), "sum")) == 5.0);
    json_decref(doc);
    assert_non_null(strstr(last_log, "3 rows in 2 group(s)"));

    /* Only the report is left in reports/: the temporary file was renamed. */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/reports", f->dir);
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
}

static void test_quoted_fields_group_keys(void **state)
{
    struct fixture *f = *state;
    put(f, "sales.csv", SALES);
    warren_handle_result res;
    assert_int_equal(run_report(f, "r2",
                                json_pack("{s:s, s:s}", "csv", "sales.csv", "group_by", "product"),
                                &res),
                     WARREN_JOB_OK);
    json_t *doc = load_report(f, "r2");
    assert_int_equal(json_integer_value(json_object_get(group(doc, "Widget, large"), "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(group(doc, "Gadget \"Pro\""), "count")), 1);
    assert_null(json_object_get(group(doc, "Thing"), "sum")); /* no sum asked */
    json_decref(doc);
}

static void test_default_group_and_integer_sums(void **state)
{
    struct fixture *f = *state;
    put(f, "n.csv", "\xEF\xBB\xBFqty,name\r\n3,a\r\n4,\"multi\r\nline\"\r\n-2,c\r\n");
    warren_handle_result res;
    assert_int_equal(
        run_report(f, "r3", json_pack("{s:s, s:s}", "csv", "n.csv", "sum", "qty"), &res),
        WARREN_JOB_OK);
    json_t *doc = load_report(f, "r3");
    assert_int_equal(json_integer_value(json_object_get(doc, "rows")), 3);
    json_t *sum = json_object_get(group(doc, "all"), "sum");
    assert_true(json_is_integer(sum));
    assert_int_equal(json_integer_value(sum), 5);
    assert_int_equal(json_integer_value(json_object_get(group(doc, "all"), "count")), 3);
    json_decref(doc);
}

static void test_path_escapes_refused(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"../secret.csv", "/etc/passwd", "a/../../b.csv", "..", "x/.."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        warren_handle_result res;
        assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", bad[i]), &res),
                         WARREN_JOB_FAIL);
        assert_non_null(strstr(res.error, "path escapes data_dir"));
    }
}

static void test_bad_id_refused(void **state)
{
    struct fixture *f = *state;
    put(f, "sales.csv", SALES);
    warren_handle_result res;
    assert_int_equal(run_report(f, "../../x", json_pack("{s:s}", "csv", "sales.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "it names the report"));
    assert_int_equal(run_report(f, ".hidden", json_pack("{s:s}", "csv", "sales.csv"), &res),
                     WARREN_JOB_FAIL);
}

static void test_missing_file_is_permanent(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "nope.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_string_equal(res.error,
                        "generate_report: cannot read nope.csv: No such file or directory");
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "."), &res), WARREN_JOB_FAIL);
}

static void test_unknown_column_is_permanent(void **state)
{
    struct fixture *f = *state;
    put(f, "sales.csv", SALES);
    warren_handle_result res;
    assert_int_equal(
        run_report(f, "r", json_pack("{s:s, s:s}", "csv", "sales.csv", "group_by", "city"), &res),
        WARREN_JOB_FAIL);
    assert_string_equal(res.error, "generate_report: unknown column 'city' in sales.csv "
                                   "(columns: region, product, amount)");
    assert_int_equal(
        run_report(f, "r", json_pack("{s:s, s:s}", "csv", "sales.csv", "sum", "x"), &res),
        WARREN_JOB_FAIL);
}

static void test_non_numeric_cell_names_its_line(void **state)
{
    struct fixture *f = *state;
    put(f, "bad.csv", "k,v\na,1\nb,\"two\nlines\"\nc,x3\n");
    warren_handle_result res;
    assert_int_equal(
        run_report(f, "r", json_pack("{s:s, s:s}", "csv", "bad.csv", "sum", "v"), &res),
        WARREN_JOB_FAIL);
    assert_string_equal(res.error, "generate_report: bad.csv line 3: column 'v' is not a "
                                   "number: 'two\nlines'");
    put(f, "bad2.csv", "k,v\na,1\nb,\n");
    assert_int_equal(
        run_report(f, "r", json_pack("{s:s, s:s}", "csv", "bad2.csv", "sum", "v"), &res),
        WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "line 3: column 'v' is not a number: ''"));
}

static void test_malformed_csv_is_permanent(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    put(f, "empty.csv", "");
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "empty.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "empty (no header row)"));
    put(f, "ragged.csv", "a,b\n1,2\n3\n");
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "ragged.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "line 3: expected 2 fields, got 1"));
    put(f, "open.csv", "a,b\n1,\"never closed\n");
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "open.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "line 2: unterminated quoted field"));
    put(f, "after.csv", "a,b\n1,\"x\"y\n");
    assert_int_equal(run_report(f, "r", json_pack("{s:s}", "csv", "after.csv"), &res),
                     WARREN_JOB_FAIL);
    assert_non_null(strstr(res.error, "text after a closing quote"));
}

static void test_unwritable_reports_is_transient(void **state)
{
    struct fixture *f = *state;
    put(f, "sales.csv", SALES);
    put(f, "reports", "a file where the reports folder belongs");
    warren_handle_result res;
    assert_int_equal(run_report(f, "r9", json_pack("{s:s}", "csv", "sales.csv"), &res),
                     WARREN_JOB_RETRY);
    char want[256];
    snprintf(want, sizeof want, "generate_report: writing %s/reports/r9.json: Not a directory",
             f->dir);
    assert_string_equal(res.error, want);
    /* Once the folder can be made, the retry succeeds. */
    char path[128];
    snprintf(path, sizeof path, "%s/reports", f->dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(run_report(f, "r9", json_pack("{s:s}", "csv", "sales.csv"), &res),
                     WARREN_JOB_OK);
    json_decref(load_report(f, "r9"));
}

static void test_invalid_args(void **state)
{
    struct fixture *f = *state;
    warren_handle_result res;
    assert_int_equal(run_report(f, "r", json_pack("{s:i}", "csv", 1), &res), WARREN_JOB_FAIL);
    assert_string_equal(res.error, "invalid_args: Expected string, got integer");
    assert_int_equal(run_report(f, "r", json_object(), &res), WARREN_JOB_FAIL);
    assert_string_equal(res.error, "invalid_args: Object item not found: csv");
}

/* The reader on its own: edge cases of RFC 4180. */
static void test_csv_reader(void **state)
{
    (void)state;
    static const char text[] = "a,\"b,\"\"c\"\"\",\n\"\"\r\n\n\"x\ny\",z\rlast";
    FILE *fp = fmemopen((void *)text, sizeof text - 1, "r");
    struct csv_reader r;
    csv_open(&r, fp);
    assert_int_equal(csv_next(&r), 1);
    assert_int_equal(r.n_fields, 3);
    assert_string_equal(r.fields[0].text, "a");
    assert_string_equal(r.fields[1].text, "b,\"c\"");
    assert_string_equal(r.fields[2].text, "");
    assert_int_equal(csv_next(&r), 1); /* "" is a record with one empty field */
    assert_int_equal(r.n_fields, 1);
    assert_int_equal(r.record_line, 2);
    assert_int_equal(csv_next(&r), 1); /* the blank line 3 is skipped */
    assert_int_equal(r.record_line, 4);
    assert_string_equal(r.fields[0].text, "x\ny");
    assert_string_equal(r.fields[1].text, "z");
    assert_int_equal(csv_next(&r), 1);
    assert_int_equal(r.record_line, 6);
    assert_string_equal(r.fields[0].text, "last");
    assert_int_equal(csv_next(&r), 0);
    csv_close(&r);
    fclose(fp);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_needs_data_dir),
        T(test_grouped_sum),
        T(test_quoted_fields_group_keys),
        T(test_default_group_and_integer_sums),
        T(test_path_escapes_refused),
        T(test_bad_id_refused),
        T(test_missing_file_is_permanent),
        T(test_unknown_column_is_permanent),
        T(test_non_numeric_cell_names_its_line),
        T(test_malformed_csv_is_permanent),
        T(test_unwritable_reports_is_transient),
        T(test_invalid_args),
        cmocka_unit_test(test_csv_reader),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
