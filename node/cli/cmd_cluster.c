/* node/cli/cmd_cluster.c: `mabeam cluster status` (GET /v1/cluster) and
 * `mabeam node join|leave` (docs/cli.md). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

static void cluster_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] cluster status\n\n"
                 "Every node of the cluster as the node at --addr sees it: role (voter,\n"
                 "standby), raft state, term, commit and applied index, reachability and\n"
                 "the failure detector's view. Exit status 0, 1 (node unreachable), 2.\n");
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static int cluster_status(cli_ctx *ctx)
{
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", "/v1/cluster", NULL, 10000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
        cJSON_Delete(j);
        return CLI_OK;
    }
    fprintf(ctx->out, "leader %.0f, term %.0f (asked node %.0f)\n", num(j, "leader_id"),
            num(j, "term"), num(j, "node_id"));
    fprintf(ctx->out, "%-6s %-8s %-11s %-6s %-8s %-8s %-9s %-8s %s\n", "ID", "ROLE", "STATE",
            "TERM", "COMMIT", "APPLIED", "REACHABLE", "DETECTOR", "API");
    const cJSON *nd;
    cJSON_ArrayForEach(nd, cJSON_GetObjectItemCaseSensitive(j, "nodes"))
    {
        fprintf(ctx->out, "%-6.0f %-8s %-11s %-6.0f %-8.0f %-8.0f %-9s %-8s %s\n", num(nd, "id"),
                str(nd, "role", "?"), str(nd, "raft_state", "-"), num(nd, "term"),
                num(nd, "commit_index"), num(nd, "applied_index"),
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(nd, "reachable")) ? "yes" : "no",
                str(nd, "detector", "-"), str(nd, "api", ""));
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int act_status(cli_ctx *ctx, const cli_action_call *ac)
{
    (void)ac;
    return cluster_status(ctx);
}

static int cluster_run(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_action acts[] = { { "status", 0, 0, act_status } };
    return cli_run_actions(ctx, "cluster", argc, argv, NULL, 0, acts, 1, NULL, cluster_help);
}

const cli_cmd cli_cmd_cluster = { "cluster", "show the cluster's nodes, roles and indexes",
                                  cluster_run, cluster_help };

static void node_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] node join [--timeout-ms T]\n"
                 "       mabeam [global options] node leave\n"
                 "       mabeam [global options] node drain NODE [--timeout-ms T]\n\n"
                 "drain  move every agent of node NODE (an id) to other nodes with a fresh\n"
                 "       checkpoint; prints progress and returns once they all run\n"
                 "       elsewhere (default deadline 60 s); then the node can leave\n"
                 "join   a node started with --seeds joins by itself; this waits (default\n"
                 "       30 s) until the node at --addr is a member of the cluster\n"
                 "leave  the node at --addr leaves the cluster gracefully (a leader hands\n"
                 "       leadership over first) and then stops\n"
                 "Exit status 0, 1 (error or not joined in time), 2 usage.\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int node_join(cli_ctx *ctx, long timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        cli_response resp;
        mb_error e;
        mb_error_clear(&e);
        int joined = 0;
        if (cli_http(ctx, "GET", "/v1/cluster", NULL, 5000, &resp, &e) == MB_OK) {
            cJSON *j = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
            double self = num(j, "node_id");
            const cJSON *nd;
            cJSON_ArrayForEach(nd, cJSON_GetObjectItemCaseSensitive(j, "nodes"))
            {
                const char *role = str(nd, "role", "");
                if (num(nd, "id") == self &&
                    (strcmp(role, "voter") == 0 || strcmp(role, "standby") == 0) &&
                    num(nd, "leader_id") != 0)
                    joined = 1;
            }
            if (joined) {
                if (ctx->json)
                    cli_print_json(ctx, j);
                else
                    fprintf(ctx->out, "node %.0f is a member (leader %.0f)\n", self,
                            num(j, "leader_id"));
            }
            cJSON_Delete(j);
            cli_response_free(&resp);
            if (joined)
                return CLI_OK;
        }
        if (mono_ms() >= deadline) {
            fprintf(ctx->err, "mabeam node join: not a member after %ld ms%s%s\n", timeout_ms,
                    e.msg[0] ? ": " : "", e.msg);
            return CLI_ERROR;
        }
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep(&pause, NULL);
    }
}

/* `node drain NODE`: start the drain, then poll its progress. */
static int node_drain(cli_ctx *ctx, const char *node, long timeout_ms)
{
    char *end;
    unsigned long long id = strtoull(node, &end, 10);
    if (*end != '\0' || id == 0 || node[0] == '-') {
        fprintf(ctx->err, "mabeam node drain: NODE must be a node id\n");
        return CLI_USAGE;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/nodes/%llu/drain?wait=0", id);
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "POST", path, "{}", 20000, &j);
    if (rv != CLI_OK)
        return rv;
    cJSON_Delete(j);
    snprintf(path, sizeof(path), "/v1/nodes/%llu/drain", id);
    int64_t start = mono_ms(), deadline = start + timeout_ms;
    double last = -1;
    for (;;) {
        j = NULL;
        if ((rv = cli_call_json(ctx, "GET", path, NULL, 5000, &j)) != CLI_OK)
            return rv;
        double remaining = num(j, "remaining"), starting = num(j, "starting_elsewhere");
        int done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "done"));
        if (!ctx->json && (remaining + starting != last || done)) {
            fprintf(ctx->out, "node %llu: %.0f agents still on it, %.0f starting elsewhere\n", id,
                    remaining, starting);
            last = remaining + starting;
        }
        if (done) {
            if (ctx->json)
                cli_print_json(ctx, j);
            else
                fprintf(ctx->out, "node %llu drained in %lld ms: it can leave now\n", id,
                        (long long)(mono_ms() - start));
            cJSON_Delete(j);
            return CLI_OK;
        }
        cJSON_Delete(j);
        if (mono_ms() >= deadline) {
            fprintf(ctx->err, "mabeam node drain: not finished after %ld ms\n", timeout_ms);
            return CLI_ERROR;
        }
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep(&pause, NULL);
    }
}

/* --timeout-ms of node join/drain (a positive number; `dflt` if absent). */
static int node_timeout(cli_ctx *ctx, const cli_action_call *ac, long dflt, long *out)
{
    const char *timeout = *(const char *const *)ac->opts;
    char *end;
    *out = timeout != NULL ? strtol(timeout, &end, 10) : dflt;
    if (timeout != NULL && (*end != '\0' || *out <= 0)) {
        fprintf(ctx->err, "mabeam node %s: --timeout-ms must be a positive integer\n", ac->act);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int act_join(cli_ctx *ctx, const cli_action_call *ac)
{
    long t;
    if (node_timeout(ctx, ac, 30000, &t) != CLI_OK)
        return CLI_USAGE;
    return node_join(ctx, t);
}

static int act_drain(cli_ctx *ctx, const cli_action_call *ac)
{
    long t;
    if (node_timeout(ctx, ac, 60000, &t) != CLI_OK)
        return CLI_USAGE;
    return node_drain(ctx, ac->args[0], t);
}

static int act_leave(cli_ctx *ctx, const cli_action_call *ac)
{
    if (*(const char *const *)ac->opts != NULL) {
        fprintf(ctx->err, "mabeam node leave: takes no --timeout-ms\n");
        return CLI_USAGE;
    }
    cJSON *j;
    int rv = cli_call_json(ctx, "POST", "/v1/cluster/leave", NULL, 20000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else
        fprintf(ctx->out, "node %.0f left the cluster and is stopping\n", num(j, "node_id"));
    cJSON_Delete(j);
    return CLI_OK;
}

static int node_run(cli_ctx *ctx, int argc, char **argv)
{
    const char *timeout = NULL;
    const cli_opt opts[] = { { "timeout-ms", 1, &timeout } };
    static const cli_action acts[] = {
        { "join", 0, 0, act_join },
        { "leave", 0, 0, act_leave },
        { "drain", 1, 1, act_drain },
    };
    return cli_run_actions(ctx, "node", argc, argv, opts, 1, acts, 3, &timeout, node_help);
}

const cli_cmd cli_cmd_node = { "node", "join, leave or drain nodes", node_run, node_help };
