/* Tests of node/core telemetry: counters and gauges (also under
 * concurrent updates), histogram buckets and quantile accuracy, merging,
 * registration errors, the Prometheus text (checked by Debian's promtool
 * when installed), the JSON snapshot, and alert rules on an injected
 * clock. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "mb_test.h"
#include "node/core/telemetry.h"

static nc_metrics *new_metrics(void)
{
    nc_metrics *m;
    CU_ASSERT_EQUAL_FATAL(nc_metrics_new(&m, NULL), MB_OK);
    return m;
}

static void test_counter_and_gauge_values(void)
{
    nc_metrics *m = new_metrics();
    nc_counter *c, *c2;
    nc_gauge *g;
    nc_label l[] = { { "method", "GET" } };
    CU_ASSERT_EQUAL(nc_metrics_counter(m, "mb_requests_total", "Requests.", l, 1, &c, NULL), MB_OK);
    nc_counter_inc(c);
    nc_counter_add(c, 41);
    CU_ASSERT_EQUAL(nc_counter_value(c), 42);
    /* The same labels give the same series. */
    CU_ASSERT_EQUAL(nc_metrics_counter(m, "mb_requests_total", NULL, l, 1, &c2, NULL), MB_OK);
    CU_ASSERT_PTR_EQUAL(c, c2);
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_queue_depth", "Depth.", NULL, 0, &g, NULL), MB_OK);
    nc_gauge_set(g, 10);
    nc_gauge_add(g, -2.5);
    CU_ASSERT_DOUBLE_EQUAL(nc_gauge_value(g), 7.5, 1e-12);
    nc_metrics_free(m);
}

static void test_registration_errors_are_explained(void)
{
    nc_metrics *m = new_metrics();
    nc_counter *c;
    nc_gauge *g;
    nc_hist *h;
    mb_error e;
    CU_ASSERT_EQUAL(nc_metrics_counter(m, "mb_requests", "x", NULL, 0, &c, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "must end in _total"));
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_x_total", "x", NULL, 0, &g, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "1abc", "x", NULL, 0, &g, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not valid"));
    nc_label le[] = { { "le", "1" } };
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "x", le, 1, &g, &e), MB_EINVAL);
    nc_label under[] = { { "__x", "1" } };
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "x", under, 1, &g, &e), MB_EINVAL);
    nc_label five[] = { { "a", "1" }, { "b", "1" }, { "c", "1" }, { "d", "1" }, { "e", "1" } };
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "x", five, 5, &g, &e), MB_EINVAL);
    nc_label a[] = { { "a", "1" } }, b[] = { { "b", "1" } };
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "x", a, 1, &g, &e), MB_OK);
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "x", b, 1, &g, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "label names differ"));
    CU_ASSERT_EQUAL(nc_metrics_hist(m, "mb_g", "x", a, 1, NULL, &h, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "is a gauge"));
    CU_ASSERT_EQUAL(nc_metrics_gauge(m, "mb_g", "other help", a, 1, &g, &e), MB_EINVAL);
    nc_hist_options bad = { .unit_scale = 1, .le_min_log2 = 3, .le_max_log2 = 60 };
    CU_ASSERT_EQUAL(nc_metrics_hist(m, "mb_h", "x", NULL, 0, &bad, &h, &e), MB_EINVAL);
    nc_metrics_free(m);
}

#define UPDATERS    4
#define UPDATES_PER 100000

struct upd_arg {
    nc_counter *c;
    nc_gauge *g;
    nc_hist *h;
};

static void *updater_main(void *p)
{
    struct upd_arg *u = p;
    for (int i = 0; i < UPDATES_PER; i++) {
        nc_counter_inc(u->c);
        nc_hist_record(u->h, (uint64_t)i);
        if (i % 10 == 0)
            nc_gauge_add(u->g, 1.0);
    }
    return NULL;
}

static void test_concurrent_updates_are_not_lost(void)
{
    nc_metrics *m = new_metrics();
    struct upd_arg u;
    CU_ASSERT_EQUAL_FATAL(nc_metrics_counter(m, "mb_ops_total", "Ops.", NULL, 0, &u.c, NULL),
                          MB_OK);
    CU_ASSERT_EQUAL_FATAL(nc_metrics_gauge(m, "mb_level", "Level.", NULL, 0, &u.g, NULL), MB_OK);
    CU_ASSERT_EQUAL_FATAL(nc_metrics_hist(m, "mb_lat", "Lat.", NULL, 0, NULL, &u.h, NULL), MB_OK);
    pthread_t t[UPDATERS];
    for (int i = 0; i < UPDATERS; i++)
        pthread_create(&t[i], NULL, updater_main, &u);
    for (int i = 0; i < UPDATERS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(nc_counter_value(u.c), (uint64_t)UPDATERS * UPDATES_PER);
    CU_ASSERT_DOUBLE_EQUAL(nc_gauge_value(u.g), UPDATERS * UPDATES_PER / 10, 1e-9);
    nc_hist_snapshot *s = malloc(sizeof(*s));
    nc_hist_snapshot_get(u.h, s);
    CU_ASSERT_EQUAL(s->count, (uint64_t)UPDATERS * UPDATES_PER);
    CU_ASSERT_EQUAL(s->sum, (uint64_t)UPDATERS * ((uint64_t)UPDATES_PER * (UPDATES_PER - 1) / 2));
    free(s);
    nc_metrics_free(m);
}

static void test_histogram_buckets_tile_the_values(void)
{
    /* Every value falls in the bucket whose range holds it; ranges are
     * contiguous and every power of two is an upper edge. */
    uint64_t prev_hi = 0;
    int bad = 0;
    for (unsigned i = 0; i + 1 < NC_HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        nc_hist_bucket_range(i, &lo, &hi);
        if (i > 0 && lo != prev_hi + 1)
            bad++;
        if (nc_hist_bucket_of(lo) != i || nc_hist_bucket_of(hi) != i)
            bad++;
        if (i > 32 && (double)(hi - lo + 1) > (double)lo / 15.0)
            bad++; /* width at most ~1/16 of the value */
        prev_hi = hi;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (unsigned k = 0; k < 48; k++) {
        uint64_t lo, hi;
        nc_hist_bucket_range(nc_hist_bucket_of(1ULL << k), &lo, &hi);
        CU_ASSERT_EQUAL(hi, 1ULL << k);
    }
    CU_ASSERT_EQUAL(nc_hist_bucket_of(0), 0);
    CU_ASSERT_EQUAL(nc_hist_bucket_of(UINT64_MAX), NC_HIST_BUCKETS - 1);
    CU_ASSERT_EQUAL(nc_hist_bucket_of((1ULL << 48) + 1), NC_HIST_BUCKETS - 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_histogram_quantiles_are_within_3_percent(void)
{
    nc_metrics *m = new_metrics();
    nc_hist *h;
    CU_ASSERT_EQUAL_FATAL(nc_metrics_hist(m, "mb_lat", "Lat.", NULL, 0, NULL, &h, NULL), MB_OK);
    enum { N = 200000 };
    uint64_t *vals = malloc(N * sizeof(uint64_t));
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Log-uniform over 1 .. ~1e9: latencies from ns to seconds. */
        double u = (double)(x >> 11) / (double)(1ULL << 53);
        vals[i] = (uint64_t)exp(u * log(1e9)) + 1;
        nc_hist_record(h, vals[i]);
    }
    qsort(vals, N, sizeof(uint64_t), cmp_u64);
    nc_hist_snapshot *s = malloc(sizeof(*s));
    nc_hist_snapshot_get(h, s);
    const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999, 1.0 };
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        size_t rank = (size_t)ceil(qs[i] * N);
        double exact = (double)vals[rank - 1];
        double est = nc_hist_snapshot_quantile(s, qs[i]);
        CU_ASSERT(fabs(est - exact) / exact <= 1.0 / 32 + 1e-9);
    }
    /* Small values are exact. */
    nc_hist_snapshot small = { 0 };
    for (uint64_t v = 0; v <= 32; v++) {
        small.buckets[nc_hist_bucket_of(v)]++;
        small.count++;
    }
    CU_ASSERT_DOUBLE_EQUAL(nc_hist_snapshot_quantile(&small, 0.5), 16, 0);
    CU_ASSERT_DOUBLE_EQUAL(nc_hist_snapshot_quantile(&small, 1.0), 32, 0);
    nc_hist_snapshot empty = { 0 };
    CU_ASSERT_DOUBLE_EQUAL(nc_hist_snapshot_quantile(&empty, 0.5), 0, 0);
    free(s);
    free(vals);
    nc_metrics_free(m);
}

static void test_snapshots_merge(void)
{
    nc_metrics *m = new_metrics();
    nc_hist *a, *b, *all;
    nc_label la[] = { { "node", "a" } }, lb[] = { { "node", "b" } }, lall[] = { { "node", "*" } };
    nc_metrics_hist(m, "mb_lat", "Lat.", la, 1, NULL, &a, NULL);
    nc_metrics_hist(m, "mb_lat", "Lat.", lb, 1, NULL, &b, NULL);
    nc_metrics_hist(m, "mb_lat", "Lat.", lall, 1, NULL, &all, NULL);
    for (uint64_t v = 1; v < 5000; v += 7) {
        nc_hist_record(v % 2 ? a : b, v * 13);
        nc_hist_record(all, v * 13);
    }
    nc_hist_snapshot *sa = malloc(sizeof(*sa)), *sb = malloc(sizeof(*sb)),
                     *sall = malloc(sizeof(*sall));
    nc_hist_snapshot_get(a, sa);
    nc_hist_snapshot_get(b, sb);
    nc_hist_snapshot_get(all, sall);
    nc_hist_snapshot_merge(sa, sb);
    CU_ASSERT_EQUAL(memcmp(sa, sall, sizeof(*sa)), 0);
    free(sa);
    free(sb);
    free(sall);
    nc_metrics_free(m);
}

static double computed_fn(void *arg)
{
    return *(double *)arg;
}

/* A registry with one of everything, for the rendering tests. */
static nc_metrics *sample_metrics(double *computed)
{
    nc_metrics *m = new_metrics();
    nc_counter *c;
    nc_gauge *g;
    nc_hist *h;
    nc_label l1[] = { { "method", "GET" }, { "path", "/v1/\"vars\"\\x\ny" } };
    nc_metrics_counter(m, "mb_http_requests_total", "HTTP requests.\nBy method\\path.", l1, 2, &c,
                       NULL);
    nc_counter_add(c, 3);
    nc_label l2[] = { { "method", "POST" }, { "path", "/v1/vars" } };
    nc_metrics_counter(m, "mb_http_requests_total", NULL, l2, 2, &c, NULL);
    nc_counter_add(c, 1);
    nc_metrics_gauge(m, "mb_agents", "Agents on this node.", NULL, 0, &g, NULL);
    nc_gauge_set(g, 12.5);
    nc_metrics_gauge_fn(m, "mb_registry_entries", "Registry entries.", NULL, 0, computed_fn,
                        computed, NULL);
    nc_hist_options ho = { .unit_scale = 1e-9, .le_min_log2 = 10, .le_max_log2 = 30 };
    nc_label l3[] = { { "route", "set" } };
    nc_metrics_hist(m, "mb_request_seconds", "Request latency.", l3, 1, &ho, &h, NULL);
    nc_hist_record(h, 500);        /* <= 2^10 ns */
    nc_hist_record(h, 1024);       /* == 2^10: le is inclusive */
    nc_hist_record(h, 1025);       /* <= 2^11 */
    nc_hist_record(h, 3000000);    /* ~3 ms */
    nc_hist_record(h, 5000000000); /* 5 s: only in +Inf */
    nc_counter *unused;
    nc_metrics_counter(m, "mb_never_total", "Never incremented.", NULL, 0, &unused, NULL);
    return m;
}

static void test_prometheus_text_is_exact(void)
{
    double computed = 99;
    nc_metrics *m = sample_metrics(&computed);
    char *text;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(nc_metrics_render_prometheus(m, &text, &len), MB_OK);
    CU_ASSERT_EQUAL(strlen(text), len);
    const char *expect[] = {
        "# HELP mb_http_requests_total HTTP requests.\\nBy method\\\\path.\n"
        "# TYPE mb_http_requests_total counter\n"
        "mb_http_requests_total{method=\"GET\",path=\"/v1/\\\"vars\\\"\\\\x\\ny\"} 3\n"
        "mb_http_requests_total{method=\"POST\",path=\"/v1/vars\"} 1\n",
        "# HELP mb_agents Agents on this node.\n# TYPE mb_agents gauge\nmb_agents 12.5\n",
        "# TYPE mb_registry_entries gauge\nmb_registry_entries 99\n",
        "# TYPE mb_request_seconds histogram\n"
        "mb_request_seconds_bucket{route=\"set\",le=\"1.024e-06\"} 2\n"
        "mb_request_seconds_bucket{route=\"set\",le=\"2.048e-06\"} 3\n",
        "mb_request_seconds_bucket{route=\"set\",le=\"0.002097152\"} 3\n"
        "mb_request_seconds_bucket{route=\"set\",le=\"0.004194304\"} 4\n",
        "mb_request_seconds_bucket{route=\"set\",le=\"1.073741824\"} 4\n"
        "mb_request_seconds_bucket{route=\"set\",le=\"+Inf\"} 5\n"
        "mb_request_seconds_sum{route=\"set\"} 5.003002549\n"
        "mb_request_seconds_count{route=\"set\"} 5\n",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(text, expect[i]));
        if (strstr(text, expect[i]) == NULL)
            fprintf(stderr, "\nmissing:\n%s\n--- in:\n%s\n", expect[i], text);
    }
    /* A registered series is exposed from the start, with 0. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE mb_never_total counter\nmb_never_total 0\n"));
    computed = 7;
    free(text);
    CU_ASSERT_EQUAL_FATAL(nc_metrics_render_prometheus(m, &text, NULL), MB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "mb_registry_entries 7\n"));
    free(text);
    nc_metrics_free(m);
}

static void test_promtool_accepts_the_exposition(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\n  SKIP: promtool not installed (Debian package 'prometheus'); "
                        "Prometheus text not validated by promtool\n");
        return;
    }
    double computed = 1;
    nc_metrics *m = sample_metrics(&computed);
    char *text;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(nc_metrics_render_prometheus(m, &text, &len), MB_OK);
    char dir[256], path[300], cmd[700];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "prom"), 0);
    snprintf(path, sizeof(path), "%s/metrics.txt", dir);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s/out.txt 2>&1", path, dir);
    int st = system(cmd);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        snprintf(cmd, sizeof(cmd), "cat %s/out.txt >&2", dir);
        (void)system(cmd);
    }
    /* And promtool does reject a broken exposition (the check is real). */
    f = fopen(path, "w");
    fputs("# TYPE x counter\nx{a=\"1\" 3\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > /dev/null 2>&1", path);
    st = system(cmd);
    CU_ASSERT_FALSE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mb_test_rmtree(dir);
    free(text);
    nc_metrics_free(m);
}

static void test_json_snapshot_has_values_and_quantiles(void)
{
    double computed = 3;
    nc_metrics *m = sample_metrics(&computed);
    char *json = nc_metrics_to_json(m);
    cJSON *j = cJSON_Parse(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *arr = cJSON_GetObjectItem(j, "metrics");
    int found = 0;
    cJSON *f;
    cJSON_ArrayForEach(f, arr)
    {
        const char *name = cJSON_GetObjectItem(f, "name")->valuestring;
        cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "series"), 0);
        if (strcmp(name, "mb_request_seconds") == 0) {
            found++;
            CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(f, "type")->valuestring, "histogram");
            CU_ASSERT_EQUAL(cJSON_GetObjectItem(s0, "count")->valuedouble, 5);
            double p50 = cJSON_GetObjectItem(s0, "p50")->valuedouble;
            CU_ASSERT(fabs(p50 - 1025e-9) / 1025e-9 < 1.0 / 32);
            CU_ASSERT_STRING_EQUAL(
                cJSON_GetObjectItem(cJSON_GetObjectItem(s0, "labels"), "route")->valuestring,
                "set");
        } else if (strcmp(name, "mb_agents") == 0) {
            found++;
            CU_ASSERT_EQUAL(cJSON_GetObjectItem(s0, "value")->valuedouble, 12.5);
        }
    }
    CU_ASSERT_EQUAL(found, 2);
    cJSON_Delete(j);
    free(json);
    nc_metrics_free(m);
}

/* ---- alerts ---- */

struct alert_log {
    int n;
    nc_alert_kind kind[32];
    char rule[32][64];
    char series[32][128];
    double value[32];
    int64_t since[32], at[32];
};

static void alert_cb(void *arg, const nc_alert_event *ev)
{
    struct alert_log *l = arg;
    if (l->n >= 32)
        return;
    l->kind[l->n] = ev->kind;
    snprintf(l->rule[l->n], 64, "%s", ev->rule);
    snprintf(l->series[l->n], 128, "%s", ev->series);
    l->value[l->n] = ev->value;
    l->since[l->n] = ev->since_ms;
    l->at[l->n] = ev->at_ms;
    l->n++;
}

static void test_alert_rule_syntax_errors_are_explained(void)
{
    struct {
        const char *text, *needle;
    } cases[] = {
        { "x: m > ", "rule 1 (x): threshold '' is not a finite number" },
        { "x m > 1", "rule 1 (x): expected ':'" },
        { "x: m ~ 1", "expected a comparison" },
        { "x: m{a=1} > 1", "expected =\"value\"" },
        { "x: m:p75 > 1", "unknown statistic 'p75'" },
        { "x: m > 1 for ever", "'for' needs a duration" },
        { "x: m > 1 soon", "unexpected text after the threshold" },
        { "x: m > 1; x: n < 2", "rule 2 (x): name used twice" },
        { "x: m > nan", "not a finite number" },
        { ": m > 1", "expected a rule name" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mb_error e;
        mb_error_clear(&e);
        CU_ASSERT_EQUAL(nc_alerts_parse_check(cases[i].text, &e), MB_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].needle));
        if (strstr(e.msg, cases[i].needle) == NULL)
            fprintf(stderr, "\n  '%s' gave '%s'\n", cases[i].text, e.msg);
    }
    CU_ASSERT_EQUAL(nc_alerts_parse_check("", NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_alerts_parse_check(" a: m{k=\"v\",j=\"w\"}:p90 >= -1.5e3 for 30s ;\n"
                                          "b: n != 0\n",
                                          NULL),
                    MB_OK);
}

static void test_alert_raises_after_for_duration_and_clears_on_recovery(void)
{
    nc_metrics *m = new_metrics();
    nc_gauge *ga, *gb;
    nc_label la[] = { { "kind", "trainer" } }, lb[] = { { "kind", "optimiser" } };
    nc_metrics_gauge(m, "mb_mailbox_depth", "Depth.", la, 1, &ga, NULL);
    nc_metrics_gauge(m, "mb_mailbox_depth", "Depth.", lb, 1, &gb, NULL);
    struct alert_log log = { 0 };
    nc_alerts *a;
    CU_ASSERT_EQUAL_FATAL(nc_alerts_new(&a, m, alert_cb, &log, NULL), MB_OK);
    CU_ASSERT_EQUAL(
        nc_alerts_set_rules(a, "full: mb_mailbox_depth{kind=\"trainer\"} >= 100 for 30s", 0, NULL),
        MB_OK);
    nc_gauge_set(ga, 150);
    nc_gauge_set(gb, 500); /* not selected by the rule */
    nc_alerts_tick(a, 1000);
    nc_alerts_tick(a, 20000);
    CU_ASSERT_EQUAL(log.n, 0); /* holding, but not for 30 s yet */
    /* A dip before the duration resets the clock. */
    nc_gauge_set(ga, 10);
    nc_alerts_tick(a, 25000);
    nc_gauge_set(ga, 120);
    nc_alerts_tick(a, 26000);
    nc_alerts_tick(a, 55000);
    CU_ASSERT_EQUAL(log.n, 0);
    nc_alerts_tick(a, 56000);
    CU_ASSERT_EQUAL_FATAL(log.n, 1);
    CU_ASSERT_EQUAL(log.kind[0], NC_ALERT_RAISE);
    CU_ASSERT_STRING_EQUAL(log.rule[0], "full");
    CU_ASSERT_STRING_EQUAL(log.series[0], "mb_mailbox_depth{kind=\"trainer\"}");
    CU_ASSERT_EQUAL(log.since[0], 26000);
    CU_ASSERT_EQUAL(log.at[0], 56000);
    CU_ASSERT_EQUAL(log.value[0], 120);
    CU_ASSERT_EQUAL(nc_alerts_active_count(a), 1);
    char *json = nc_alerts_active_json(a);
    cJSON *j = cJSON_Parse(json);
    cJSON *al = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(al, "rule")->valuestring, "full");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(al, "expr")->valuestring,
                           "mb_mailbox_depth{kind=\"trainer\"} >= 100");
    cJSON_Delete(j);
    free(json);
    /* Still holding: no second raise. */
    nc_alerts_tick(a, 90000);
    CU_ASSERT_EQUAL(log.n, 1);
    nc_gauge_set(ga, 99);
    nc_alerts_tick(a, 91000);
    CU_ASSERT_EQUAL_FATAL(log.n, 2);
    CU_ASSERT_EQUAL(log.kind[1], NC_ALERT_CLEAR);
    CU_ASSERT_EQUAL(log.value[1], 99);
    CU_ASSERT_EQUAL(nc_alerts_active_count(a), 0);
    nc_alerts_tick(a, 92000);
    CU_ASSERT_EQUAL(log.n, 2);
    nc_alerts_free(a);
    nc_metrics_free(m);
}

static void test_alert_rules_apply_per_series_and_on_histograms(void)
{
    nc_metrics *m = new_metrics();
    nc_counter *c1, *c2;
    nc_hist *h;
    nc_label l1[] = { { "node", "1" } }, l2[] = { { "node", "2" } };
    nc_metrics_counter(m, "mb_errors_total", "Errors.", l1, 1, &c1, NULL);
    nc_metrics_counter(m, "mb_errors_total", "Errors.", l2, 1, &c2, NULL);
    nc_hist_options ho = { .unit_scale = 1e-9, .le_min_log2 = 10, .le_max_log2 = 30 };
    nc_metrics_hist(m, "mb_apply_seconds", "Apply.", NULL, 0, &ho, &h, NULL);
    struct alert_log log = { 0 };
    nc_alerts *a;
    nc_alerts_new(&a, m, alert_cb, &log, NULL);
    CU_ASSERT_EQUAL(nc_alerts_set_rules(a,
                                        "errs: mb_errors_total > 5; slow: mb_apply_seconds:p99 "
                                        "> 0.5; missing: mb_nothing > 1",
                                        0, NULL),
                    MB_OK);
    nc_counter_add(c2, 6);
    for (int i = 0; i < 98; i++)
        nc_hist_record(h, 1000000); /* 1 ms */
    nc_alerts_tick(a, 1);
    CU_ASSERT_EQUAL_FATAL(log.n, 1);
    CU_ASSERT_STRING_EQUAL(log.series[0], "mb_errors_total{node=\"2\"}");
    for (int i = 0; i < 3; i++)
        nc_hist_record(h, 2000000000); /* 2 s: now above p99 */
    nc_alerts_tick(a, 2);
    CU_ASSERT_EQUAL_FATAL(log.n, 2);
    CU_ASSERT_STRING_EQUAL(log.rule[1], "slow");
    CU_ASSERT(fabs(log.value[1] - 2.0) < 2.0 / 32);

    /* Unchanged rules keep their state; removed ones clear their alerts. */
    CU_ASSERT_EQUAL(nc_alerts_set_rules(a, "errs: mb_errors_total > 5", 3, NULL), MB_OK);
    CU_ASSERT_EQUAL_FATAL(log.n, 3);
    CU_ASSERT_EQUAL(log.kind[2], NC_ALERT_CLEAR);
    CU_ASSERT_STRING_EQUAL(log.rule[2], "slow");
    CU_ASSERT_EQUAL(nc_alerts_active_count(a), 1);
    nc_alerts_tick(a, 4);
    CU_ASSERT_EQUAL(log.n, 3); /* errs did not re-raise */
    /* A bad rule set changes nothing. */
    CU_ASSERT_EQUAL(nc_alerts_set_rules(a, "broken", 5, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_alerts_active_count(a), 1);
    nc_alerts_free(a);
    nc_metrics_free(m);
}

static CU_TestInfo metric_tests[] = {
    { "counter_and_gauge_values", test_counter_and_gauge_values },
    { "registration_errors_are_explained", test_registration_errors_are_explained },
    { "concurrent_updates_are_not_lost", test_concurrent_updates_are_not_lost },
    { "histogram_buckets_tile_the_values", test_histogram_buckets_tile_the_values },
    { "histogram_quantiles_are_within_3_percent", test_histogram_quantiles_are_within_3_percent },
    { "snapshots_merge", test_snapshots_merge },
    { "prometheus_text_is_exact", test_prometheus_text_is_exact },
    { "promtool_accepts_the_exposition", test_promtool_accepts_the_exposition },
    { "json_snapshot_has_values_and_quantiles", test_json_snapshot_has_values_and_quantiles },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo alert_tests[] = {
    { "alert_rule_syntax_errors_are_explained", test_alert_rule_syntax_errors_are_explained },
    { "alert_raises_after_for_duration_and_clears_on_recovery",
      test_alert_raises_after_for_duration_and_clears_on_recovery },
    { "alert_rules_apply_per_series_and_on_histograms",
      test_alert_rules_apply_per_series_and_on_histograms },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "metrics", NULL, NULL, NULL, NULL, metric_tests },
    { "alerts", NULL, NULL, NULL, NULL, alert_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
