/* node/cli/cmd_study.c: `mabeam study create|list|show|watch|stop|export`
 * — distributed hyperparameter studies (/v1/studies..., docs/cli.md,
 * docs/studies.md). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/cli/cli.h"

#define WATCH_POLL_MS 10000
#define BAR_WIDTH     30

static void study_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] study create FILE|-\n"
                 "       mabeam study list\n"
                 "       mabeam study show ID [--no-trials]\n"
                 "       mabeam study watch ID [--timeout-ms T]\n"
                 "       mabeam study stop ID [--reason TEXT]\n"
                 "       mabeam study export ID [--format csv|json]\n\n"
                 "create reads a study definition (JSON, docs/studies.md) from FILE or\n"
                 "stdin. watch shows a live progress bar (trials done, best value so far\n"
                 "and its configuration) until the study ends or --timeout-ms passes.\n"
                 "export prints every trial as CSV (default) or JSON.\n"
                 "Exit status: 0 ok, 1 error (the node's message on stderr), 2 usage.\n");
}

static int id_ok(cli_ctx *ctx, const char *id)
{
    if (id[0] == '\0' || strlen(id) > 128 || strpbrk(id, "/?#% \"\\") != NULL) {
        fprintf(ctx->err, "mabeam study: bad study id '%s'\n", id);
        return 0;
    }
    return 1;
}

static char *read_all(FILE *f)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
        if (n + 1 == cap) {
            if (cap >= (16u << 20)) {
                free(b);
                return NULL;
            }
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b != NULL)
        b[n] = '\0';
    return b;
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

/* One-line summary: id, status, done/budget, best. */
static void print_summary(cli_ctx *ctx, const cJSON *s)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "trials_by_status");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(s, "best");
    double done = num(c, "completed") + num(c, "pruned") + num(c, "failed");
    fprintf(ctx->out, "%-20s %-9s %5.0f/%-5.0f %-10s", str(s, "id"), str(s, "status"), done,
            num(cJSON_GetObjectItemCaseSensitive(s, "budget"), "trials"), str(s, "strategy"));
    if (b != NULL) {
        char *p = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "params"));
        fprintf(ctx->out, " best %.6g %s", num(b, "value"), p != NULL ? p : "");
        free(p);
    }
    fputc('\n', ctx->out);
}

static int study_create(cli_ctx *ctx, const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (f == NULL) {
        fprintf(ctx->err, "mabeam study create: cannot open %s\n", file);
        return CLI_ERROR;
    }
    char *text = read_all(f);
    if (f != stdin)
        fclose(f);
    if (text == NULL) {
        fprintf(ctx->err, "mabeam study create: cannot read %s\n", file);
        return CLI_ERROR;
    }
    cJSON *j;
    int rv = cli_call_json(ctx, "POST", "/v1/studies", text, 15000, &j);
    free(text);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else
        fprintf(ctx->out, "created study %s\n", str(j, "id"));
    cJSON_Delete(j);
    return CLI_OK;
}

static int study_list(cli_ctx *ctx)
{
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", "/v1/studies", NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "studies")) print_summary(ctx, s);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int study_show(cli_ctx *ctx, const char *id, int trials)
{
    char path[300];
    snprintf(path, sizeof(path), "/v1/studies/%s%s", id, trials ? "" : "?trials=0");
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
        cJSON_Delete(j);
        return CLI_OK;
    }
    print_summary(ctx, j);
    fprintf(ctx->out, "objective %s, %s, parallelism %.0f\n",
            cJSON_IsString(cJSON_GetObjectItem(j, "objective")) ? str(j, "objective") : "command",
            str(j, "direction"), num(j, "parallelism"));
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(j, "allocation"), *a;
    cJSON_ArrayForEach(a, al)
    {
        fprintf(ctx->out, "  strategy %-8s %4.0f trials, %4.0f completed", a->string,
                num(a, "trials"), num(a, "completed"));
        if (cJSON_GetObjectItem(a, "best") != NULL)
            fprintf(ctx->out, ", best %.6g", num(a, "best"));
        fputc('\n', ctx->out);
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "trials"))
    {
        char *p = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(t, "params"));
        fprintf(ctx->out, "  #%-4.0f %-9s", num(t, "number"), str(t, "status"));
        if (cJSON_GetObjectItem(t, "value") != NULL)
            fprintf(ctx->out, " %-12.6g", num(t, "value"));
        else
            fprintf(ctx->out, " %-12s", "-");
        fprintf(ctx->out, " %-7s %s", str(t, "strategy"), p != NULL ? p : "");
        if (cJSON_GetObjectItem(t, "error") != NULL)
            fprintf(ctx->out, "  (%s)", str(t, "error"));
        fputc('\n', ctx->out);
        free(p);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static void draw_bar(cli_ctx *ctx, const cJSON *s, int tty)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "trials_by_status");
    double done = num(c, "completed") + num(c, "pruned") + num(c, "failed");
    double budget = num(cJSON_GetObjectItemCaseSensitive(s, "budget"), "trials");
    int fill = budget > 0 ? (int)(BAR_WIDTH * done / budget) : 0;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    fprintf(ctx->out, "%s[%s] %.0f/%.0f done, %.0f running", tty ? "\r\033[K" : "", bar, done,
            budget, num(c, "running"));
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(s, "best");
    if (b != NULL) {
        char *p = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "params"));
        fprintf(ctx->out, ", best %.6g (trial %.0f) %s", num(b, "value"), num(b, "number"),
                p != NULL ? p : "");
        free(p);
    }
    if (!tty)
        fputc('\n', ctx->out);
    fflush(ctx->out);
}

static int study_watch(cli_ctx *ctx, const char *id, const char *timeout)
{
    long limit_ms = -1;
    if (timeout != NULL) {
        char *end;
        limit_ms = strtol(timeout, &end, 10);
        if (*end != '\0' || limit_ms < 0) {
            fprintf(ctx->err, "mabeam study watch: --timeout-ms must be a number\n");
            return CLI_USAGE;
        }
    }
    int tty = !ctx->json && isatty(fileno(ctx->out));
    double done = -1;
    long waited = 0;
    for (;;) {
        char path[400];
        long wait =
            limit_ms >= 0 && limit_ms - waited < WATCH_POLL_MS ? limit_ms - waited : WATCH_POLL_MS;
        if (done < 0)
            snprintf(path, sizeof(path), "/v1/studies/%s?trials=0", id);
        else
            snprintf(path, sizeof(path), "/v1/studies/%s/watch?done=%.0f&timeout_ms=%ld", id, done,
                     wait);
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, wait + 15000, &j);
        if (rv != CLI_OK)
            return rv;
        if (ctx->json)
            cli_print_json(ctx, j);
        else
            draw_bar(ctx, j, tty);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "trials_by_status");
        double now_done = num(c, "completed") + num(c, "pruned") + num(c, "failed");
        int ended = strcmp(str(j, "status"), "running") != 0;
        if (ended && !ctx->json)
            fprintf(ctx->out, "%sstudy %s %s: %s\n", tty ? "\n" : "", id, str(j, "status"),
                    str(j, "reason"));
        cJSON_Delete(j);
        if (ended)
            return CLI_OK;
        if (done >= 0)
            waited += now_done == done ? wait : 0;
        done = now_done;
        if (limit_ms >= 0 && waited >= limit_ms) {
            if (tty)
                fputc('\n', ctx->out);
            return CLI_OK;
        }
    }
}

static int study_stop(cli_ctx *ctx, const char *id, const char *reason)
{
    char path[600];
    snprintf(path, sizeof(path), "/v1/studies/%s/stop", id);
    if (reason != NULL && cli_query_add(path, sizeof(path), "reason", reason) != MB_OK)
        return CLI_USAGE;
    cJSON *j;
    int rv = cli_call_json(ctx, "POST", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else
        fprintf(ctx->out, "stopped study %s\n", id);
    cJSON_Delete(j);
    return CLI_OK;
}

static int study_export(cli_ctx *ctx, const char *id, const char *format)
{
    if (format == NULL)
        format = "csv";
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        fprintf(ctx->err, "mabeam study export: --format is csv or json\n");
        return CLI_USAGE;
    }
    char path[400];
    snprintf(path, sizeof(path), "/v1/studies/%s/export?format=%s", id, format);
    cli_response r;
    mb_error e;
    mb_error_clear(&e);
    if (cli_http(ctx, "GET", path, NULL, 30000, &r, &e) != MB_OK) {
        fprintf(ctx->err, "mabeam: %s\n", e.msg);
        return CLI_ERROR;
    }
    int rv = CLI_OK;
    if (r.status != 200) {
        fprintf(ctx->err, "mabeam: HTTP %d: %.*s\n", r.status, (int)r.body_len, r.body);
        rv = CLI_ERROR;
    } else {
        fwrite(r.body, 1, r.body_len, ctx->out);
        if (r.body_len > 0 && r.body[r.body_len - 1] != '\n')
            fputc('\n', ctx->out);
    }
    cli_response_free(&r);
    return rv;
}

typedef struct study_opts {
    const char *no_trials, *timeout, *reason, *format;
} study_opts;

static int act_list(cli_ctx *ctx, const cli_action_call *ac)
{
    return study_list(ctx);
}

static int act_create(cli_ctx *ctx, const cli_action_call *ac)
{
    return study_create(ctx, ac->args[0]);
}

/* show, watch, stop and export: one study id. */
static int act_one(cli_ctx *ctx, const cli_action_call *ac)
{
    const study_opts *o = ac->opts;
    if (!id_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    if (strcmp(ac->act, "show") == 0)
        return study_show(ctx, ac->args[0], o->no_trials == NULL);
    if (strcmp(ac->act, "watch") == 0)
        return study_watch(ctx, ac->args[0], o->timeout);
    if (strcmp(ac->act, "stop") == 0)
        return study_stop(ctx, ac->args[0], o->reason);
    return study_export(ctx, ac->args[0], o->format);
}

static int study_run(cli_ctx *ctx, int argc, char **argv)
{
    study_opts o = { 0 };
    const cli_opt opts[] = {
        { "no-trials", 0, &o.no_trials },
        { "timeout-ms", 1, &o.timeout },
        { "reason", 1, &o.reason },
        { "format", 1, &o.format },
    };
    static const cli_action acts[] = {
        { "list", 0, 0, act_list }, { "create", 1, 1, act_create }, { "show", 1, 1, act_one },
        { "watch", 1, 1, act_one }, { "stop", 1, 1, act_one },      { "export", 1, 1, act_one },
    };
    return cli_run_actions(ctx, "study", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), acts,
                           sizeof(acts) / sizeof(acts[0]), &o, study_help);
}

const cli_cmd cli_cmd_study = { "study", "run and follow hyperparameter optimisation studies",
                                study_run, study_help };
