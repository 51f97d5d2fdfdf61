/* Signal handlers only set flags; the loops act on them. */
#include <string.h>
#include "warrend.h"

volatile sig_atomic_t warrend_stop;
volatile sig_atomic_t warrend_reload;
volatile sig_atomic_t warrend_child;

static void on_stop(int sig)
{
    (void)sig;
    warrend_stop = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    warrend_reload = 1;
}

static void on_child(int sig)
{
    (void)sig;
    warrend_child = 1;
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void warrend_signals_supervisor(void)
{
    set_handler(SIGTERM, on_stop);
    set_handler(SIGINT, on_stop);
    set_handler(SIGHUP, on_reload);
    set_handler(SIGCHLD, on_child);
    set_handler(SIGPIPE, SIG_IGN);
}

void warrend_signals_worker(void)
{
    warrend_stop = 0;
    warrend_reload = 0;
    set_handler(SIGTERM, on_stop);
    set_handler(SIGINT, SIG_IGN);
    set_handler(SIGHUP, SIG_IGN);
    set_handler(SIGCHLD, SIG_DFL);
    set_handler(SIGPIPE, SIG_IGN);
}
