/* The `warren` command line tool: one function per command. Each returns
 * the process exit status: 0 ok, 1 runtime error, 2 usage or config error.
 * argv[0] is the command's own name (e.g. "publish"). */
#ifndef WARREN_CLI_H
#define WARREN_CLI_H

int warren__cli_publish(int argc, char **argv);
int warren__cli_config(int argc, char **argv);
int warren__cli_topology(int argc, char **argv);
int warren__cli_stats(int argc, char **argv);
int warren__cli_unroutable(int argc, char **argv);
int warren__cli_dead(int argc, char **argv);
int warren__cli_new_handler(int argc, char **argv);
int warren__cli_schedule(int argc, char **argv);
int warren__cli_web(int argc, char **argv);
int warren__cli_job(int argc, char **argv);
int warren__cli_jobs(int argc, char **argv);
int warren__cli_report(int argc, char **argv);
int warren__cli_doctor(int argc, char **argv);

#endif
