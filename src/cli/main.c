/* `warren`: the command line tool. Dispatches to one function per command;
 * only main maps results to exit codes (0 ok, 1 runtime, 2 usage/config). */
#include <stdio.h>
#include <string.h>
#include <warren/warren.h>
#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"publish", warren__cli_publish, "publish a job (or one per stdin line) and print its id"},
    {"config", warren__cli_config, "config check FILE: validate a configuration"},
    {"topology", warren__cli_topology, "declare and print exchanges, queues and bindings"},
    {"stats", warren__cli_stats, "ready, consumers and dead letters per queue"},
    {"unroutable", warren__cli_unroutable, "unroutable replay: publish unserved jobs again"},
    {"dead", warren__cli_dead, "dead list|replay|purge QUEUE: a queue's dead letters"},
    {"new-handler", warren__cli_new_handler, "new-handler NAME: write a module and its test"},
    {"schedule", warren__cli_schedule, "schedule add|list|pause|resume|remove: runtime schedules"},
    {"web", warren__cli_web, "keep the job history from events and serve the web page"},
    {"job", warren__cli_job, "job ID: a job's state and timeline from the history"},
    {"jobs", warren__cli_jobs, "jobs from the history, filtered by state, worker, age"},
    {"report", warren__cli_report, "per worker outcomes, durations, errors; per hour"},
    {"doctor", warren__cli_doctor, "check broker, topology, bindings and job balance"},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: warren COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\nConnection: --url URL beats WARREN_URL, which beats -c FILE's broker.urls,\n"
                "which beats amqp://guest:guest@127.0.0.1:5672/.\n"
                "Run 'warren COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    warren_log_setup(WARREN_LOG_WARN, WARREN_LOG_TEXT, "cli");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
        printf("warren %s\n", warren_version_string());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "warren: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
