/* The host's shared board: crash counts, completed jobs and deadlines seen
 * across processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "board.h"

static void test_crash_counted_only_mid_job(void **state)
{
    (void)state;
    struct warren_board *b = warren__board_create();
    assert_non_null(b);
    struct warren_board_exit ex;
    for (int round = 1; round <= 3; round++) {
        int slot = warren__board_claim(b, 100 + round);
        assert_true(slot >= 0);
        warren__board_job_start(b, slot, "poison", 0);
        warren__board_release(b, slot, 1, SIGSEGV, &ex);
        assert_true(ex.was_in_job);
        assert_string_equal(ex.job_id, "poison");
        assert_int_equal(ex.crashes, round);
    }
    int sig = 0;
    assert_int_equal(warren__board_crashes(b, "poison", &sig), 3);
    assert_int_equal(sig, SIGSEGV);

    /* an idle process, or a finished job, is no crash */
    int slot = warren__board_claim(b, 200);
    warren__board_job_start(b, slot, "fine", 0);
    warren__board_job_end(b, slot, "fine#1", 1);
    warren__board_release(b, slot, 1, SIGKILL, &ex);
    assert_false(ex.was_in_job);
    assert_int_equal(warren__board_crashes(b, "fine", NULL), 0);

    /* a kill the supervisor asked for (draining) is not counted */
    slot = warren__board_claim(b, 201);
    warren__board_job_start(b, slot, "drained", 0);
    warren__board_release(b, slot, 0, SIGKILL, &ex);
    assert_true(ex.was_in_job);
    assert_int_equal(warren__board_crashes(b, "drained", NULL), 0);
    warren__board_destroy(b);
}

static void test_children_share_the_board(void **state)
{
    (void)state;
    struct warren_board *b = warren__board_create();
    enum { CHILDREN = 4, JOBS = 500 };
    int slots[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        slots[c] = warren__board_claim(b, 1);
        pid_t pid = fork();
        if (pid == 0) {
            char key[64];
            for (int j = 0; j < JOBS; j++) {
                snprintf(key, sizeof key, "c%d-j%d#1", c, j);
                warren__board_job_start(b, slots[c], key, 0);
                warren__board_job_end(b, slots[c], key, 1);
            }
            _exit(0);
        }
        warren__board_set_pid(b, slots[c], pid);
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        wait(&status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char key[64];
    for (int c = 0; c < CHILDREN; c++)
        for (int j = 0; j < JOBS; j += 97) {
            snprintf(key, sizeof key, "c%d-j%d#1", c, j);
            assert_true(warren__board_completed(b, key));
        }
    assert_false(warren__board_completed(b, "never#1"));
    assert_false(warren__board_completed(b, "c0-j0#2")); /* a retry copy still runs */
    warren__board_destroy(b);
}

static void test_completed_memory_is_bounded(void **state)
{
    (void)state;
    struct warren_board *b = warren__board_create();
    int slot = warren__board_claim(b, 1);
    char key[64];
    for (int j = 0; j < WARREN_BOARD_COMPLETED + 10; j++) {
        snprintf(key, sizeof key, "id-%d#1", j);
        warren__board_job_end(b, slot, key, 1);
    }
    assert_false(warren__board_completed(b, "id-0#1")); /* oldest forgotten */
    snprintf(key, sizeof key, "id-%d#1", WARREN_BOARD_COMPLETED + 9);
    assert_true(warren__board_completed(b, key));
    warren__board_destroy(b);
}

static void test_overdue_only_after_kill_deadline(void **state)
{
    (void)state;
    struct warren_board *b = warren__board_create();
    int a = warren__board_claim(b, 11);
    int c = warren__board_claim(b, 12);
    int unset = warren__board_claim(b, -1); /* forked, pid not yet recorded */
    warren__board_job_start(b, a, "late", 1000);
    warren__board_job_start(b, c, "free", 0);
    warren__board_job_start(b, unset, "x", 1000);
    pid_t pids[4];
    assert_int_equal(warren__board_overdue(b, 999, pids, 4), 0);
    assert_int_equal(warren__board_overdue(b, 1000, pids, 4), 1);
    assert_int_equal(pids[0], 11);
    warren__board_destroy(b);
}

static void test_rate_reservations_are_spaced(void **state)
{
    (void)state;
    struct warren_board *b = warren__board_create();
    long long now = 1000000000; /* microseconds */
    assert_int_equal(warren__board_rate_reserve(b, "w", 4.0, now), 0);
    assert_int_equal(warren__board_rate_reserve(b, "w", 4.0, now), 250);
    assert_int_equal(warren__board_rate_reserve(b, "w", 4.0, now), 500);
    /* another worker has its own schedule */
    assert_int_equal(warren__board_rate_reserve(b, "other", 4.0, now), 0);
    /* after an idle spell there is no backlog of credit beyond one job */
    now += 10 * 1000000LL;
    assert_int_equal(warren__board_rate_reserve(b, "w", 4.0, now), 0);
    assert_int_equal(warren__board_rate_reserve(b, "w", 4.0, now), 250);
    assert_int_equal(warren__board_rate_reserve(b, "w", 0.0, now), 0);
    warren__board_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_counted_only_mid_job),
        cmocka_unit_test(test_children_share_the_board),
        cmocka_unit_test(test_completed_memory_is_bounded),
        cmocka_unit_test(test_overdue_only_after_kill_deadline),
        cmocka_unit_test(test_rate_reservations_are_spaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
