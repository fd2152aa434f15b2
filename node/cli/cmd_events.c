/* node/cli/cmd_events.c: `mabeam events` — query the event logs with
 * filters and cursor paging (GET /v1/events). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

static void events_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] [--json] events [options]\n\n"
                 "List events of the node-local log (default) or the cluster log.\n\n"
                 "  --log local|cluster   which log (default local)\n"
                 "  --type T              only events of type T (e.g. config.changed)\n"
                 "  --subject S           only events about S (key, variable, agent, node)\n"
                 "  --from-seq N          first sequence (inclusive)\n"
                 "  --to-seq N            last sequence (inclusive)\n"
                 "  --since TIME          only events at or after TIME: ms since the epoch,\n"
                 "                        a duration ago (30s, 10m, 2h, 1d) or RFC 3339 UTC\n"
                 "                        (2026-11-25T22:09:02Z)\n"
                 "  --until TIME          only events at or before TIME (same forms)\n"
                 "  --order asc|desc      oldest first (default) or newest first\n"
                 "  --limit N             events per page (default 100, max 10000)\n"
                 "  --cursor C            continue from a previous page's next cursor\n"
                 "  --all                 follow the cursor through every page\n"
                 "  --follow              keep polling for new events until interrupted\n\n"
                 "Without --all the next page's cursor is printed on stderr as\n"
                 "\"next: --cursor C\". With --json the server's JSON page is printed.\n");
}

static void print_event(cli_ctx *ctx, const cJSON *ev)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(ev, "seq");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(ev, "time");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(ev, "subject");
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(ev, "payload");
    char *p = payload != NULL && !cJSON_IsNull(payload) ? cJSON_PrintUnformatted(payload) : NULL;
    fprintf(ctx->out, "%8.0f  %-24s  %-20s  %-16s  %s\n",
            cJSON_IsNumber(seq) ? seq->valuedouble : 0,
            cJSON_IsString(time) ? time->valuestring : "",
            cJSON_IsString(type) ? type->valuestring : "",
            cJSON_IsString(subj) ? subj->valuestring : "", p != NULL ? p : "");
    free(p);
}

static int events_run(cli_ctx *ctx, int argc, char **argv)
{
    const char *log = NULL, *type = NULL, *subject = NULL, *from = NULL, *to = NULL, *since = NULL,
               *until = NULL, *order = NULL, *limit = NULL, *cursor = NULL, *all = NULL,
               *follow = NULL;
    const cli_opt opts[] = {
        { "log", 1, &log },       { "type", 1, &type },   { "subject", 1, &subject },
        { "from-seq", 1, &from }, { "to-seq", 1, &to },   { "since", 1, &since },
        { "until", 1, &until },   { "order", 1, &order }, { "limit", 1, &limit },
        { "cursor", 1, &cursor }, { "all", 0, &all },     { "follow", 0, &follow },
    };
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "events", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 0,
                           &npos, events_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    if (follow != NULL && order != NULL && strcmp(order, "desc") == 0) {
        fprintf(ctx->err, "mabeam events: --follow needs ascending order\n");
        return CLI_USAGE;
    }
    char since_buf[24], until_buf[24];
    struct timespec now_ts;
    clock_gettime(CLOCK_REALTIME, &now_ts);
    int64_t now_ms = (int64_t)now_ts.tv_sec * 1000 + now_ts.tv_nsec / 1000000;
    const char **times[2] = { &since, &until };
    char *bufs[2] = { since_buf, until_buf };
    for (int i = 0; i < 2; i++) {
        int64_t ms;
        if (*times[i] == NULL)
            continue;
        if (cli_parse_time(*times[i], now_ms, &ms) != MB_OK || ms < 0) {
            fprintf(ctx->err,
                    "mabeam events: bad time '%s' (ms since the epoch, a duration ago like 10m, "
                    "or 2026-11-25T22:09:02Z)\n",
                    *times[i]);
            return CLI_USAGE;
        }
        snprintf(bufs[i], sizeof(since_buf), "%lld", (long long)ms);
        *times[i] = bufs[i];
    }
    char cur[32] = "";
    char from_buf[32] = "";
    if (cursor != NULL)
        snprintf(cur, sizeof(cur), "%s", cursor);
    if (from != NULL)
        snprintf(from_buf, sizeof(from_buf), "%s", from);
    int header = !ctx->json;
    for (;;) {
        char path[4096] = "/v1/events";
        const char *keys[] = { "log",   "type",  "subject", "to_seq",
                               "since", "until", "order",   "limit" };
        const char *vals[] = { log, type, subject, to, since, until, order, limit };
        int bad = 0;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (vals[i] != NULL)
                bad |= cli_query_add(path, sizeof(path), keys[i], vals[i]);
        if (from_buf[0] != '\0')
            bad |= cli_query_add(path, sizeof(path), "from_seq", from_buf);
        if (cur[0] != '\0')
            bad |= cli_query_add(path, sizeof(path), "cursor", cur);
        if (bad) {
            fprintf(ctx->err, "mabeam events: filters too long\n");
            return CLI_USAGE;
        }
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, 30000, &j);
        if (rv != CLI_OK)
            return rv;
        const cJSON *evs = cJSON_GetObjectItemCaseSensitive(j, "events");
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
        if (ctx->json) {
            char *s = cJSON_PrintUnformatted(j);
            fprintf(ctx->out, "%s\n", s != NULL ? s : "{}");
            free(s);
        } else {
            if (header && cJSON_GetArraySize(evs) > 0) {
                fprintf(ctx->out, "%8s  %-24s  %-20s  %-16s  %s\n", "SEQ", "TIME", "TYPE",
                        "SUBJECT", "PAYLOAD");
                header = 0;
            }
            const cJSON *ev;
            cJSON_ArrayForEach(ev, evs)
            {
                print_event(ctx, ev);
            }
        }
        double last_seq = 0;
        const cJSON *ev;
        cJSON_ArrayForEach(ev, evs)
        {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(ev, "seq");
            if (cJSON_IsNumber(s))
                last_seq = s->valuedouble;
        }
        int more = cJSON_IsString(next);
        if (more)
            snprintf(cur, sizeof(cur), "%s", next->valuestring);
        cJSON_Delete(j);
        fflush(ctx->out);
        if (more && (all != NULL || follow != NULL))
            continue;
        if (follow != NULL) {
            /* Poll for newer events: from the one after the last seen. */
            if (last_seq > 0)
                snprintf(from_buf, sizeof(from_buf), "%.0f", last_seq + 1);
            cur[0] = '\0';
            struct timespec ts = { 1, 0 };
            nanosleep(&ts, NULL);
            continue;
        }
        if (more && !ctx->json)
            fprintf(ctx->err, "next: --cursor %s\n", cur);
        return CLI_OK;
    }
}

const cli_cmd cli_cmd_events = { "events", "list events (filters, paging, --follow)", events_run,
                                 events_help };
