/* bench_proposals: decision latency of a proposal among many voting
 * agents over a running cluster, through the HTTP API (the same path as
 * `mabeam propose --wait`). Spawns N builtin "voter" agents (vote yes at
 * once) as cluster agents spread by load over the nodes, defines
 * a consensus int variable, then per run: POST /v1/proposals (majority,
 * all N voters) on node run%nodes, long-poll its watch on the same node
 * until decided. Latency = POST sent -> decision applied on that node
 * (open + every vote request + batched votes committed + decision).
 * Prints one JSON line per figure (suite "failover").
 *
 * usage: bench_proposals --nodes h:p,h:p,h:p [--voters 1000] [--runs 30]
 *                        [--warmup 3] [--prefix bv] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cli/cli.h"

#define MAX_NODES 8

static cli_ctx nodes[MAX_NODES];
static int n_nodes;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Request on node i; *status and (when out != NULL) the JSON answer. */
static int call(int i, const char *method, const char *path, const char *body, long timeout_ms,
                int *status, cJSON **out)
{
    cli_response r;
    mb_error e;
    if (cli_http(&nodes[i], method, path, body, timeout_ms, &r, &e) != MB_OK) {
        fprintf(stderr, "bench_proposals: %s %s on node %d: %s\n", method, path, i + 1, e.msg);
        return -1;
    }
    *status = r.status;
    if (out != NULL)
        *out = cJSON_ParseWithLength(r.body, r.body_len);
    if (r.status >= 300)
        fprintf(stderr, "bench_proposals: %s %s -> %d %.*s\n", method, path, r.status,
                (int)(r.body_len > 300 ? 300 : r.body_len), r.body);
    cli_response_free(&r);
    return 0;
}

static void emit(const char *metric, double value, const char *unit, const char *extra)
{
    printf("{\"suite\":\"failover\",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"%s%s}\n",
           metric, value, unit, extra != NULL ? "," : "", extra != NULL ? extra : "");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *list = NULL, *prefix = "bv";
    int voters = 1000, runs = 30, warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            list = argv[++i];
        else if (strcmp(argv[i], "--voters") == 0 && i + 1 < argc)
            voters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else {
            fprintf(stderr, "usage: bench_proposals --nodes h:p,h:p,.. [--voters N] [--runs N] "
                            "[--warmup N] [--prefix P]\n");
            return 2;
        }
    }
    if (list == NULL || voters < 1 || voters > 4096 || runs < 1 || warmup < 0) {
        fprintf(stderr, "bench_proposals: --nodes is required; 1 <= voters <= 4096\n");
        return 2;
    }
    char *copy = strdup(list);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL && n_nodes < MAX_NODES;
         t = strtok_r(NULL, ",", &save)) {
        mb_error e;
        memset(&nodes[n_nodes], 0, sizeof(nodes[0]));
        nodes[n_nodes].out = stdout;
        nodes[n_nodes].err = stderr;
        if (cli_set_addr(&nodes[n_nodes], t, &e) != MB_OK) {
            fprintf(stderr, "bench_proposals: bad address %s\n", t);
            return 2;
        }
        n_nodes++;
    }
    free(copy);

    /* Voters: cluster agents spread by load over the nodes, all running
     * before the first proposal. */
    double t0 = now_ms();
    for (int v = 0; v < voters; v++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"kind\":\"voter\",\"name\":\"%s%04d\",\"placement\":\"spread:load\","
                 "\"config\":{\"vote\":\"yes\"}}",
                 prefix, v);
        int st;
        if (call(v % n_nodes, "POST", "/v1/agents", body, 10000, &st, NULL) != 0 || st != 201)
            return 1;
    }
    for (int running = 0; running < voters;) {
        if (now_ms() - t0 > 120000) {
            fprintf(stderr, "bench_proposals: voters not running after 120 s\n");
            return 1;
        }
        int st;
        cJSON *j = NULL;
        if (call(0, "GET", "/v1/cluster/agents?limit=10000", NULL, 10000, &st, &j) != 0 ||
            st != 200) {
            cJSON_Delete(j);
            return 1;
        }
        running = 0;
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "agents"))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
            const cJSON *stt = cJSON_GetObjectItemCaseSensitive(a, "status");
            running += cJSON_IsString(id) &&
                       strncmp(id->valuestring, prefix, strlen(prefix)) == 0 &&
                       cJSON_IsString(stt) && strcmp(stt->valuestring, "running") == 0;
        }
        cJSON_Delete(j);
        if (running < voters) {
            struct timespec ts = { 0, 50 * 1000000L }; /* poll interval of a deadline wait */
            nanosleep(&ts, NULL);
        }
    }
    fprintf(stderr, "bench_proposals: %d voters placed and running in %.0f ms\n", voters,
            now_ms() - t0);
    int st;
    char var[64];
    snprintf(var, sizeof(var), "%s_k", prefix);
    char def[256];
    snprintf(
        def, sizeof(def),
        "{\"name\":\"%s\",\"type\":\"int\",\"min\":0,\"max\":1000000,\"policy\":\"consensus\"}",
        var);
    if (call(0, "POST", "/v1/vars", def, 10000, &st, NULL) != 0 || (st != 201 && st != 409))
        return 1;

    /* The request body: all voters. */
    size_t cap = (size_t)voters * 24 + 512;
    char *body = malloc(cap);
    char *vl = malloc(cap);
    size_t off = 0;
    for (int v = 0; v < voters; v++)
        off += (size_t)snprintf(vl + off, cap - off, "%s\"%s%04d\"", v ? "," : "", prefix, v);
    /* Which node leads (node ids are 1..n in the order given). */
    int leader = 0;
    cJSON *cl = NULL;
    if (call(0, "GET", "/v1/cluster", NULL, 10000, &st, &cl) == 0 && st == 200) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(cl, "leader_id");
        leader = cJSON_IsNumber(l) ? (int)l->valuedouble : 0;
    }
    cJSON_Delete(cl);
    double *lat = calloc((size_t)runs, sizeof(double));
    double *lat_leader = calloc((size_t)runs, sizeof(double));
    double *lat_follower = calloc((size_t)runs, sizeof(double));
    double *open_ms = calloc((size_t)runs, sizeof(double));
    int ok = 0, n_leader = 0, n_follower = 0;
    for (int r = 0; r < warmup + runs; r++) {
        int node = r % n_nodes;
        snprintf(body, cap,
                 "{\"variable\":\"%s\",\"value\":%d,\"rule\":\"majority\",\"timeout_ms\":20000,"
                 "\"voters\":[%s]}",
                 var, r + 1, vl);
        cJSON *j = NULL;
        double a = now_ms();
        if (call(node, "POST", "/v1/proposals", body, 20000, &st, &j) != 0 || st != 201) {
            cJSON_Delete(j);
            return 1;
        }
        double b = now_ms();
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        char path[256];
        snprintf(path, sizeof(path), "/v1/proposals/%s/watch?timeout_ms=20000",
                 cJSON_IsString(id) ? id->valuestring : "?");
        cJSON_Delete(j);
        j = NULL;
        if (call(node, "GET", path, NULL, 30000, &st, &j) != 0 || st != 200) {
            cJSON_Delete(j);
            return 1;
        }
        double c = now_ms();
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "outcome");
        int accepted = cJSON_IsString(out) && strcmp(out->valuestring, "accepted") == 0;
        cJSON_Delete(j);
        if (!accepted) {
            fprintf(stderr, "bench_proposals: run %d not accepted\n", r);
            return 1;
        }
        if (r >= warmup) {
            if (node + 1 == leader)
                lat_leader[n_leader++] = c - a;
            else
                lat_follower[n_follower++] = c - a;
            lat[ok] = c - a;
            open_ms[ok] = b - a;
            ok++;
        }
        fprintf(stderr, "run %d node %d: open %.1f ms, decided %.1f ms\n", r, node + 1, b - a,
                c - a);
    }
    qsort(lat, (size_t)ok, sizeof(double), cmp_double);
    qsort(open_ms, (size_t)ok, sizeof(double), cmp_double);
    qsort(lat_leader, (size_t)n_leader, sizeof(double), cmp_double);
    qsort(lat_follower, (size_t)n_follower, sizeof(double), cmp_double);
    char extra[200];
    snprintf(extra, sizeof(extra), "\"voters\":%d,\"nodes\":%d,\"runs\":%d,\"target\":20", voters,
             n_nodes, ok);
    emit("proposal_decision_p50_ms", lat[ok / 2], "ms", extra);
    /* Entered (and watched) on the leader: open -> decision committed.
     * On a follower: open -> decision applied on that follower. */
    if (n_leader > 0) {
        snprintf(extra, sizeof(extra), "\"voters\":%d,\"nodes\":%d,\"runs\":%d,\"target\":20",
                 voters, n_nodes, n_leader);
        emit("proposal_decision_on_leader_p50_ms", lat_leader[n_leader / 2], "ms", extra);
    }
    if (n_follower > 0) {
        snprintf(extra, sizeof(extra), "\"voters\":%d,\"nodes\":%d,\"runs\":%d", voters, n_nodes,
                 n_follower);
        emit("proposal_decision_on_follower_p50_ms", lat_follower[n_follower / 2], "ms", extra);
    }
    snprintf(extra, sizeof(extra), "\"voters\":%d,\"nodes\":%d,\"runs\":%d", voters, n_nodes, ok);
    emit("proposal_decision_p90_ms", lat[(ok * 9) / 10 < ok ? (ok * 9) / 10 : ok - 1], "ms", extra);
    emit("proposal_decision_max_ms", lat[ok - 1], "ms", extra);
    emit("proposal_open_p50_ms", open_ms[ok / 2], "ms", extra);
    free(lat);
    free(lat_leader);
    free(lat_follower);
    free(open_ms);
    free(body);
    free(vl);
    return 0;
}
