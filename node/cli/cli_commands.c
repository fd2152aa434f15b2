/* node/cli/cli_commands.c: the table of mabeam subcommands. A new
 * subcommand lives in its own cmd_*.c and adds one line here. */
#include "node/cli/cli.h"

extern const cli_cmd cli_cmd_status;
extern const cli_cmd cli_cmd_metrics;
extern const cli_cmd cli_cmd_events;
extern const cli_cmd cli_cmd_config;
extern const cli_cmd cli_cmd_agent;
extern const cli_cmd cli_cmd_kind;
extern const cli_cmd cli_cmd_var;
extern const cli_cmd cli_cmd_cluster;
extern const cli_cmd cli_cmd_node;
extern const cli_cmd cli_cmd_propose;  /* proposals piece */
extern const cli_cmd cli_cmd_proposal; /* proposals piece */

extern const cli_cmd cli_cmd_study;
extern const cli_cmd cli_cmd_lease; /* piece: agents/coord */
extern const cli_cmd cli_cmd_barrier;
extern const cli_cmd cli_cmd_election;

const cli_cmd *const cli_commands[] = {
    &cli_cmd_status,   &cli_cmd_events,  &cli_cmd_config,   &cli_cmd_metrics,
    &cli_cmd_var,      &cli_cmd_cluster, &cli_cmd_node,     &cli_cmd_agent,
    &cli_cmd_kind,     &cli_cmd_study,   &cli_cmd_lease,    &cli_cmd_barrier,
    &cli_cmd_election, &cli_cmd_propose, &cli_cmd_proposal, NULL,
};
