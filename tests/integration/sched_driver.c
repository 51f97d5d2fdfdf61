/* A test-only program that runs warrend's scheduler alone: no worker
 * processes, no modules. It loads a config, ticks the scheduler every
 * 100 ms as the supervisor does, and on SIGTERM or SIGINT destroys it
 * (releasing the lock) and exits 0; on SIGHUP it loads the file again
 * and applies it with warrend_scheduler_reload(). test_scheduler_driver.py
 * runs two or three of them to test the lock, failover and the shared
 * state without warrend.
 *
 *   sched_driver -c FILE [--child]
 *
 * --child: once this process leads, it forks a child that calls
 * warrend_scheduler_forget_in_child() and then sleeps, as a worker
 * process would; a test kills only the parent and expects another
 * driver to take over within seconds (the child must not keep the
 * connection alive). Prints "child PID" to stderr. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <warren/log.h>
#include "config.h"
#include "scheduler.h"

static volatile sig_atomic_t stop, reload;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload = 1;
    else
        stop = 1;
}

static int load(struct warren_config *cfg, const char *path)
{
    struct warren_config_diag diag = {0};
    warren_error err;
    warren_error_clear(&err);
    warren_status st = warren__config_load(cfg, path, &diag, &err);
    for (size_t i = 0; i < diag.n_errors; i++)
        fprintf(stderr, "%s\n", diag.errors[i]);
    if (st != WARREN_OK && diag.n_errors == 0)
        fprintf(stderr, "%s\n", err.text);
    warren__config_diag_free(&diag);
    return st == WARREN_OK ? 0 : -1;
}

static void do_reload(struct warrend_scheduler **s, const char *path)
{
    struct warren_config cfg;
    warren_error err;
    warren_error_clear(&err);
    reload = 0;
    if (load(&cfg, path) == 0 && warrend_scheduler_reload(s, &cfg, &err) == WARREN_OK)
        WARREN_LOG(WARREN_LOG_INFO, "driver.reloaded", "configuration reloaded");
    else
        warren_log_write(WARREN_LOG_ERROR, "driver.reload", NULL, "reload refused %s", err.text);
    warren__config_free(&cfg);
}

static void spawn_child(struct warrend_scheduler *s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        warrend_scheduler_forget_in_child(s);
        for (;;)
            pause();
    }
    fprintf(stderr, "child %d\n", (int)pid);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int with_child = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--child"))
            with_child = 1;
        else {
            fprintf(stderr, "usage: sched_driver -c FILE [--child]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: sched_driver -c FILE [--child]\n");
        return 2;
    }
    struct warren_config cfg;
    if (load(&cfg, path) != 0) {
        warren__config_free(&cfg);
        return 2;
    }
    warren_log_setup(cfg.log_level, cfg.log_format, "scheduler");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    struct warrend_scheduler *s = NULL;
    warren_error err;
    warren_error_clear(&err);
    if (warrend_scheduler_create(&s, &cfg, &err) != WARREN_OK) {
        fprintf(stderr, "sched_driver: %s\n", err.text);
        warren__config_free(&cfg);
        return 1;
    }
    warren__config_free(&cfg); /* the scheduler keeps copies */
    WARREN_LOG(WARREN_LOG_INFO, "driver.started", "scheduler driver running%s",
               s ? "" : " (no schedules)");
    int spawned = 0;
    while (!stop) {
        if (reload)
            do_reload(&s, path);
        warrend_scheduler_tick(s);
        if (with_child && !spawned && warrend_scheduler_is_leader(s)) {
            spawn_child(s);
            spawned = 1;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    warrend_scheduler_destroy(s);
    WARREN_LOG(WARREN_LOG_INFO, "driver.stopped", "scheduler driver stopped");
    return 0;
}
