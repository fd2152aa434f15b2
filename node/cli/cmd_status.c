/* node/cli/cmd_status.c: `mabeam status` and `mabeam metrics`. */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

static void status_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] [--json] status\n\n"
                 "Show the node's identity, uptime, memory, storage figures, configuration\n"
                 "version and active alerts (GET /v1/status).\n");
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int status_run(cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "status", argc, argv, NULL, 0, pos, 0, &npos, status_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", "/v1/status", NULL, 10000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
        cJSON_Delete(j);
        return CLI_OK;
    }
    fprintf(ctx->out, "node        %s (id %.0f)\n", str(j, "node_name"), num(j, "node_id"));
    fprintf(ctx->out, "version     %s\n", str(j, "version"));
    fprintf(ctx->out, "pid         %.0f\n", num(j, "pid"));
    fprintf(ctx->out, "uptime      %.1f s\n", num(j, "uptime_s"));
    fprintf(ctx->out, "http        %s\n", str(j, "http_address"));
    fprintf(ctx->out, "data dir    %s\n", str(j, "data_dir"));
    fprintf(ctx->out, "memory      %.1f MiB resident\n", num(j, "rss_bytes") / 1048576.0);
    fprintf(ctx->out, "cpu         %.2f s\n", num(j, "cpu_seconds"));
    fprintf(ctx->out, "config      version %.0f\n", num(j, "config_version"));
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "storage");
    const char *logs[2] = { "local", "cluster" };
    for (int i = 0; i < 2; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(st, logs[i]);
        if (cJSON_GetObjectItemCaseSensitive(s, "error") != NULL)
            fprintf(ctx->out, "%-7s log %s\n", logs[i], str(s, "error"));
        else
            fprintf(ctx->out, "%-7s log %.0f events (seq %.0f..%.0f), %.0f bytes\n", logs[i],
                    num(s, "count"), num(s, "first_seq"), num(s, "last_seq"), num(s, "bytes"));
    }
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(j, "alerts");
    int na = cJSON_GetArraySize(alerts);
    fprintf(ctx->out, "alerts      %d active\n", na);
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        fprintf(ctx->out, "  %s  %s = %g (threshold %g)\n", str(a, "rule"), str(a, "series"),
                num(a, "value"), num(a, "threshold"));
    }
    cJSON_Delete(j);
    return CLI_OK;
}

const cli_cmd cli_cmd_status = { "status", "show the node's status", status_run, status_help };

static void metrics_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] metrics [--grep TEXT]\n\n"
                 "Print the node's Prometheus metrics (GET /metrics); --grep keeps only the\n"
                 "lines that contain TEXT.\n");
}

static int metrics_run(cli_ctx *ctx, int argc, char **argv)
{
    const char *grep = NULL;
    const cli_opt opts[] = { { "grep", 1, &grep } };
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "metrics", argc, argv, opts, 1, pos, 0, &npos, metrics_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    cli_response r;
    mb_error e;
    if (cli_http(ctx, "GET", "/metrics", NULL, 10000, &r, &e) != MB_OK) {
        fprintf(ctx->err, "mabeam: %s\n", e.msg);
        return CLI_ERROR;
    }
    if (r.status != 200) {
        fprintf(ctx->err, "mabeam: HTTP %d from GET /metrics: %s\n", r.status, r.body);
        cli_response_free(&r);
        return CLI_ERROR;
    }
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
        if (grep == NULL || strstr(line, grep) != NULL)
            fprintf(ctx->out, "%s\n", line);
    cli_response_free(&r);
    return CLI_OK;
}

const cli_cmd cli_cmd_metrics = { "metrics", "print the node's Prometheus metrics", metrics_run,
                                  metrics_help };
