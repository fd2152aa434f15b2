/* node/cli/cmd_coord.c: `mabeam lease|barrier|election ...`, the
 * coordination primitives of the API (docs/cli.md, docs/coordination.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "/v1/<area>/<percent-encoded name><suffix>" into buf. */
static int coord_path(char *buf, size_t size, const char *area, const char *name,
                      const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = (size_t)snprintf(buf, size, "/v1/%s/", area);
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        if (k + 4 >= size)
            return MB_ETOOBIG;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf[k++] = (char)*p;
        } else {
            buf[k++] = '%';
            buf[k++] = hex[*p >> 4];
            buf[k++] = hex[*p & 15];
        }
    }
    buf[k] = '\0';
    if (k + strlen(suffix) + 1 > size)
        return MB_ETOOBIG;
    strcat(buf, suffix);
    return MB_OK;
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

/* Parse a non-negative integer option (NULL = dflt). */
static int opt_u64(cli_ctx *ctx, const char *cmd, const char *name, const char *s,
                   unsigned long long dflt, unsigned long long *out)
{
    if (s == NULL) {
        *out = dflt;
        return CLI_OK;
    }
    char *end;
    *out = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0') {
        fprintf(ctx->err, "mabeam %s: --%s needs a non-negative integer\n", cmd, name);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static void print_lease(cli_ctx *ctx, const cJSON *l)
{
    fprintf(ctx->out, "%-24s holder %-24s token %-8.0f expires_ms %.0f (ttl %.0f ms)\n",
            str(l, "name"), str(l, "holder"), num(l, "token"), num(l, "expires_ms"),
            num(l, "ttl_ms"));
}

static void print_barrier(cli_ctx *ctx, const cJSON *b)
{
    fprintf(ctx->out, "%-24s round %-4.0f %-9s %.0f/%.0f arrived", str(b, "name"), num(b, "round"),
            str(b, "state"), num(b, "arrived"), num(b, "parties"));
    if (num(b, "deadline_ms") > 0)
        fprintf(ctx->out, ", deadline_ms %.0f", num(b, "deadline_ms"));
    fputc('\n', ctx->out);
}

static void print_election(cli_ctx *ctx, const cJSON *e)
{
    fprintf(ctx->out, "%-24s leader %-24s term %-6.0f members", str(e, "group"), str(e, "leader"),
            num(e, "term"));
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(e, "members"))
    {
        if (cJSON_IsString(m))
            fprintf(ctx->out, " %s", m->valuestring);
    }
    fputc('\n', ctx->out);
}

typedef void (*print_fn)(cli_ctx *, const cJSON *);

/* GET a list or one record and print it. */
static int coord_get(cli_ctx *ctx, const char *area, const char *name, print_fn pr)
{
    char path[1024];
    if (name != NULL && coord_path(path, sizeof(path), area, name, "") != MB_OK) {
        fprintf(ctx->err, "mabeam: name too long\n");
        return CLI_USAGE;
    }
    if (name == NULL)
        snprintf(path, sizeof(path), "/v1/%s", area);
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 10000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else if (name != NULL) {
        pr(ctx, j);
    } else {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, area)) pr(ctx, it);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

/* POST a write and print the record it returns under `key`. *out (may be
 * NULL) receives the answer instead of it being freed. */
static int coord_post(cli_ctx *ctx, const char *area, const char *name, const char *verb,
                      cJSON *body, const char *key, print_fn pr, cJSON **out)
{
    char path[1024], suffix[32];
    snprintf(suffix, sizeof(suffix), "/%s", verb);
    if (coord_path(path, sizeof(path), area, name, suffix) != MB_OK) {
        cJSON_Delete(body);
        fprintf(ctx->err, "mabeam: name too long\n");
        return CLI_USAGE;
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text == NULL)
        return CLI_ERROR;
    cJSON *j;
    int rv = cli_call_json(ctx, "POST", path, text, 30000, &j);
    cJSON_free(text);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(j, key);
        if (cJSON_IsObject(rec))
            pr(ctx, rec);
        else
            fprintf(ctx->out, "ok (version %.0f)\n", num(j, "version"));
    }
    if (out != NULL)
        *out = j;
    else
        cJSON_Delete(j);
    return CLI_OK;
}

/* ---- lease ---- */

static void lease_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] lease list\n"
                 "       mabeam [global options] lease show NAME\n"
                 "       mabeam [global options] lease acquire NAME --holder AGENT [--ttl-ms N]\n"
                 "       mabeam [global options] lease renew NAME --holder AGENT [--ttl-ms N]\n"
                 "       mabeam [global options] lease release NAME --holder AGENT\n\n"
                 "A lease is held by one cluster agent until it expires (default ttl 10000 ms),\n"
                 "is released, or its holder crashes, stops or moves. acquire fails (exit 1)\n"
                 "while another agent holds it; the holder may acquire again to renew.\n"
                 "The token printed is a fencing token: it changes with every new holder.\n");
}

typedef struct coord_opts {
    const char *holder, *ttl;                   /* lease */
    const char *who, *parties, *timeout, *wait; /* barrier */
    const char *member;                         /* election */
} coord_opts;

static int lease_list(cli_ctx *ctx, const cli_action_call *ac)
{
    (void)ac;
    return coord_get(ctx, "leases", NULL, print_lease);
}

static int lease_show(cli_ctx *ctx, const cli_action_call *ac)
{
    return coord_get(ctx, "leases", ac->args[0], print_lease);
}

/* acquire, renew and release */
static int lease_change(cli_ctx *ctx, const cli_action_call *ac)
{
    const coord_opts *o = ac->opts;
    if (o->holder == NULL) {
        fprintf(ctx->err, "mabeam lease %s: --holder AGENT is required\n", ac->act);
        return CLI_USAGE;
    }
    unsigned long long ttl_ms;
    if (opt_u64(ctx, "lease", "ttl-ms", o->ttl, 10000, &ttl_ms) != CLI_OK)
        return CLI_USAGE;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "holder", o->holder);
    if (strcmp(ac->act, "release") != 0)
        cJSON_AddNumberToObject(body, "ttl_ms", (double)ttl_ms);
    return coord_post(ctx, "leases", ac->args[0], ac->act, body, "lease", print_lease, NULL);
}

static int lease_run(cli_ctx *ctx, int argc, char **argv)
{
    coord_opts o = { 0 };
    const cli_opt opts[] = { { "holder", 1, &o.holder }, { "ttl-ms", 1, &o.ttl } };
    static const cli_action acts[] = {
        { "list", 0, 0, lease_list },      { "show", 1, 1, lease_show },
        { "acquire", 1, 1, lease_change }, { "renew", 1, 1, lease_change },
        { "release", 1, 1, lease_change },
    };
    return cli_run_actions(ctx, "lease", argc, argv, opts, 2, acts, 5, &o, lease_help);
}

const cli_cmd cli_cmd_lease = { "lease", "acquire, renew, release and list leases held by agents",
                                lease_run, lease_help };

/* ---- barrier ---- */

static void barrier_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] barrier list\n"
                 "       mabeam [global options] barrier show NAME\n"
                 "       mabeam [global options] barrier arrive NAME --participant AGENT\n"
                 "              [--parties N] [--timeout-ms T] [--wait]\n\n"
                 "The first arrival of a round gives the number of parties and the timeout\n"
                 "(0 = none); the round passes when that many agents arrived, or times out\n"
                 "reporting how many did. An agent that crashes or stops leaves the round.\n"
                 "--wait polls until the round ends: exit 0 when it passed, 1 when it timed\n"
                 "out (or the wait itself ran past the timeout plus 10 s).\n");
}

static int barrier_wait(cli_ctx *ctx, const char *name, double round, unsigned long long timeout)
{
    int64_t deadline = mono_ms() + (int64_t)(timeout > 0 ? timeout : 3600000) + 10000;
    char path[1024];
    if (coord_path(path, sizeof(path), "barriers", name, "") != MB_OK)
        return CLI_USAGE;
    for (;;) {
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, 10000, &j);
        if (rv != CLI_OK)
            return rv;
        const char *st = str(j, "state");
        if (num(j, "round") > round || strcmp(st, "open") != 0) {
            int passed = num(j, "round") == round && strcmp(st, "passed") == 0;
            if (ctx->json)
                cli_print_json(ctx, j);
            else if (num(j, "round") != round)
                fprintf(ctx->out, "round %.0f ended; the barrier is at round %.0f\n", round,
                        num(j, "round"));
            else
                fprintf(ctx->out, "%s: %.0f of %.0f arrived\n", passed ? "passed" : "timed out",
                        num(j, "arrived"), num(j, "parties"));
            cJSON_Delete(j);
            return passed ? CLI_OK : CLI_ERROR;
        }
        cJSON_Delete(j);
        if (mono_ms() > deadline) {
            fprintf(ctx->err, "mabeam barrier: gave up waiting for round %.0f\n", round);
            return CLI_ERROR;
        }
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL); /* polling interval of a client, not a synchronisation */
    }
}

static int barrier_list(cli_ctx *ctx, const cli_action_call *ac)
{
    (void)ac;
    return coord_get(ctx, "barriers", NULL, print_barrier);
}

static int barrier_show(cli_ctx *ctx, const cli_action_call *ac)
{
    return coord_get(ctx, "barriers", ac->args[0], print_barrier);
}

static int barrier_arrive(cli_ctx *ctx, const cli_action_call *ac)
{
    const coord_opts *o = ac->opts;
    unsigned long long np, tmo;
    if (o->who == NULL) {
        fprintf(ctx->err, "mabeam barrier arrive: --participant AGENT is required\n");
        return CLI_USAGE;
    }
    if (opt_u64(ctx, "barrier", "parties", o->parties, 0, &np) != CLI_OK ||
        opt_u64(ctx, "barrier", "timeout-ms", o->timeout, 0, &tmo) != CLI_OK)
        return CLI_USAGE;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "participant", o->who);
    cJSON_AddNumberToObject(body, "parties", (double)np);
    cJSON_AddNumberToObject(body, "timeout_ms", (double)tmo);
    cJSON *ans = NULL;
    int rv = coord_post(ctx, "barriers", ac->args[0], "arrive", body, "barrier", print_barrier,
                        o->wait != NULL ? &ans : NULL);
    if (rv != CLI_OK || o->wait == NULL)
        return rv;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(ans, "barrier");
    double round = num(b, "round");
    unsigned long long t = (unsigned long long)num(b, "timeout_ms");
    cJSON_Delete(ans);
    return barrier_wait(ctx, ac->args[0], round, t);
}

static int barrier_run(cli_ctx *ctx, int argc, char **argv)
{
    coord_opts o = { 0 };
    const cli_opt opts[] = { { "participant", 1, &o.who },
                             { "parties", 1, &o.parties },
                             { "timeout-ms", 1, &o.timeout },
                             { "wait", 0, &o.wait } };
    static const cli_action acts[] = {
        { "list", 0, 0, barrier_list },
        { "show", 1, 1, barrier_show },
        { "arrive", 1, 1, barrier_arrive },
    };
    return cli_run_actions(ctx, "barrier", argc, argv, opts, 4, acts, 3, &o, barrier_help);
}

const cli_cmd cli_cmd_barrier = { "barrier", "arrive at and list barriers of n agents", barrier_run,
                                  barrier_help };

/* ---- election ---- */

static void election_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] election list\n"
                 "       mabeam [global options] election show GROUP\n"
                 "       mabeam [global options] election join GROUP --member AGENT\n"
                 "       mabeam [global options] election leave GROUP --member AGENT\n\n"
                 "One leader per group: the member that joined first. When the leader\n"
                 "leaves, crashes, stops or moves, the next member by join order leads and\n"
                 "the group's term grows by one.\n");
}

static int election_list(cli_ctx *ctx, const cli_action_call *ac)
{
    (void)ac;
    return coord_get(ctx, "elections", NULL, print_election);
}

static int election_show(cli_ctx *ctx, const cli_action_call *ac)
{
    return coord_get(ctx, "elections", ac->args[0], print_election);
}

/* join and leave */
static int election_change(cli_ctx *ctx, const cli_action_call *ac)
{
    const coord_opts *o = ac->opts;
    if (o->member == NULL) {
        fprintf(ctx->err, "mabeam election %s: --member AGENT is required\n", ac->act);
        return CLI_USAGE;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "member", o->member);
    return coord_post(ctx, "elections", ac->args[0], ac->act, body, "election", print_election,
                      NULL);
}

static int election_run(cli_ctx *ctx, int argc, char **argv)
{
    coord_opts o = { 0 };
    const cli_opt opts[] = { { "member", 1, &o.member } };
    static const cli_action acts[] = {
        { "list", 0, 0, election_list },
        { "show", 1, 1, election_show },
        { "join", 1, 1, election_change },
        { "leave", 1, 1, election_change },
    };
    return cli_run_actions(ctx, "election", argc, argv, opts, 1, acts, 4, &o, election_help);
}

const cli_cmd cli_cmd_election = { "election", "join, leave and list leader-election groups",
                                   election_run, election_help };
