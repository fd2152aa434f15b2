/* node/core telemetry: counters, gauges and histograms with labels, a
 * registry of metric families, the Prometheus text exposition (format
 * 0.0.4) for /metrics, a JSON snapshot for `mabeam status`, and threshold
 * alert rules evaluated on an injected clock.
 *
 * Hot path: nc_counter_add, nc_gauge_set/add and nc_hist_record are
 * lock-free (relaxed atomics). Counters and histograms are striped over
 * NC_METRIC_STRIPES cache lines picked per thread, so worker threads that
 * record on the same series rarely share a cache line.
 *
 * Histograms record unsigned integers (e.g. nanoseconds, bytes) into
 * log-linear buckets: values up to 32 are exact, above that a bucket spans
 * 1/16 of its power of two, so a quantile is within 3.2% of the true value
 * (bucket midpoint; relative error <= 1/32). Buckets are (lo, hi] ranges
 * whose upper edges include every power of two. Snapshots are mergeable. In
 * Prometheus they are exposed as `histogram` with le bounds at powers of
 * two (exact, since those are bucket edges), scaled to base units by the
 * histogram's `unit_scale` (e.g. 1e-9 for ns -> seconds).
 *
 * Series handles are stable until nc_metrics_free; registration takes a
 * mutex and is meant for start-up, not the hot path. */
#ifndef NC_TELEMETRY_H
#define NC_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NC_METRIC_LABELS_MAX 4 /* label pairs per series */
#define NC_METRIC_NAME_MAX   127
#define NC_METRIC_VALUE_MAX  127 /* bytes of a label value */
#define NC_METRIC_STRIPES    4
#define NC_HIST_BUCKETS      722 /* values > 2^48 land in the last bucket */

typedef struct nc_metrics nc_metrics;
typedef struct nc_counter nc_counter;
typedef struct nc_gauge nc_gauge;
typedef struct nc_hist nc_hist;

/* A label pair; strings are borrowed during registration calls. */
typedef struct nc_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not "__..."; "le" and
                          "quantile" are reserved */
    const char *value; /* any UTF-8 text, escaped on output */
} nc_label;

/* A registry of metric families, owned by the caller. Errors: MB_ENOMEM. */
int nc_metrics_new(nc_metrics **out, mb_error *err);
/* Free the registry and every series handle it gave out. NULL: no-op. */
void nc_metrics_free(nc_metrics *m);

/* Get or create a series. A family is identified by `name`
 * ([a-zA-Z_:][a-zA-Z0-9_:]*; counters must end in "_total"); the first
 * call fixes its type, help text and label names (in order); later calls
 * must repeat them (help may be NULL then) and return the existing series
 * for the same label values. `help` and labels are borrowed.
 * Errors: MB_EINVAL (bad name or label, type or label-name mismatch, with a
 * message), MB_ENOMEM. */
int nc_metrics_counter(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                       size_t nlabels, nc_counter **out, mb_error *err);
int nc_metrics_gauge(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                     size_t nlabels, nc_gauge **out, mb_error *err);

/* A gauge computed at read time (e.g. registry size, RSS): `fn(arg)` is
 * called under the metrics mutex from the rendering/alert thread; it must
 * not call the metrics registry. `arg` is borrowed for the registry's life. */
typedef double (*nc_gauge_fn)(void *arg);
int nc_metrics_gauge_fn(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                        size_t nlabels, nc_gauge_fn fn, void *arg, mb_error *err);

typedef struct nc_hist_options {
    double unit_scale;    /* rendered value = recorded value * unit_scale
                             (1e-9: record ns, expose seconds); 0 means 1 */
    unsigned le_min_log2; /* smallest le bound = 2^le_min_log2 recorded units */
    unsigned le_max_log2; /* largest finite le bound (<= 47); then +Inf */
} nc_hist_options;
/* `opts` NULL: scale 1, le from 2^0 to 2^30. The options of a family are
 * fixed by its first registration. */
int nc_metrics_hist(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                    size_t nlabels, const nc_hist_options *opts, nc_hist **out, mb_error *err);

/* Hot-path updates (lock-free, any thread). */
void nc_counter_add(nc_counter *c, uint64_t n);
static inline void nc_counter_inc(nc_counter *c)
{
    nc_counter_add(c, 1);
}
uint64_t nc_counter_value(const nc_counter *c);

void nc_gauge_set(nc_gauge *g, double v);
void nc_gauge_add(nc_gauge *g, double delta);
double nc_gauge_value(const nc_gauge *g);

void nc_hist_record(nc_hist *h, uint64_t value);

/* A histogram's counts at one moment; plain data, mergeable. */
typedef struct nc_hist_snapshot {
    uint64_t count;
    uint64_t sum; /* wraps after 2^64 recorded units in total */
    uint64_t buckets[NC_HIST_BUCKETS];
} nc_hist_snapshot;

void nc_hist_snapshot_get(const nc_hist *h, nc_hist_snapshot *out);
/* dst += src (e.g. the same metric from several nodes). */
void nc_hist_snapshot_merge(nc_hist_snapshot *dst, const nc_hist_snapshot *src);
/* The q-quantile (0 <= q <= 1) in recorded units: midpoint of the bucket
 * holding the ceil(q*count)-th smallest value (exact below 32). 0 if empty. */
double nc_hist_snapshot_quantile(const nc_hist_snapshot *s, double q);
/* Bucket index of a value and the inclusive value range of a bucket. */
unsigned nc_hist_bucket_of(uint64_t value);
void nc_hist_bucket_range(unsigned index, uint64_t *lo, uint64_t *hi);

/* Prometheus text exposition format 0.0.4 of every family (HELP, TYPE,
 * samples; histograms with cumulative _bucket{le=...}, _sum, _count).
 * *out is malloc'd (caller frees), *len its length without the NUL.
 * Errors: MB_ENOMEM. */
int nc_metrics_render_prometheus(nc_metrics *m, char **out, size_t *len);

/* JSON snapshot: {"metrics":[{"name":..,"type":"counter|gauge|histogram",
 * "help":..,"series":[{"labels":{..},"value":v} or
 * {"labels":{..},"count":n,"sum":s,"p50":..,"p90":..,"p99":..}]}]}
 * with histogram values in base units (unit_scale applied). malloc'd;
 * NULL if out of memory. */
char *nc_metrics_to_json(nc_metrics *m);

/* ---- Alerts --------------------------------------------------------------
 *
 * Rule text (the alert_rules config key): rules separated by ';' or
 * newlines, each
 *     NAME ':' SELECTOR OP THRESHOLD [ 'for' DURATION ]
 *   NAME      [a-zA-Z_][a-zA-Z0-9_]*, unique
 *   SELECTOR  metric_name [ '{' label '=' "value" {',' ...} '}' ] [ ':' STAT ]
 *             STAT (histograms only, default p99): p50 p90 p99 count sum mean
 *   OP        > >= < <= == !=
 *   THRESHOLD a number (histogram stats in base units, after unit_scale)
 *   DURATION  as the config's duration type (e.g. 30s, 500ms); default 0
 * e.g.  high_latency: mb_http_request_seconds:p99 > 0.5 for 30s;
 *       full_mailbox: mb_mailbox_depth{kind="trainer"} >= 1000
 * A rule applies separately to every series of the metric that matches the
 * label selector (a subset of its labels). A series whose condition holds
 * continuously for the rule's duration raises an alert; when the condition
 * stops holding, the alert clears. A metric not (yet) registered simply has
 * no series. */

typedef struct nc_alerts nc_alerts;

typedef enum nc_alert_kind {
    NC_ALERT_RAISE = 0,
    NC_ALERT_CLEAR = 1,
} nc_alert_kind;

/* Delivered to the callback; all strings borrowed for the call. */
typedef struct nc_alert_event {
    nc_alert_kind kind;
    const char *rule;   /* rule name */
    const char *series; /* e.g. mb_mailbox_depth{kind="trainer"} */
    const char *expr;   /* the rule's condition as text */
    double value;       /* value at this tick */
    double threshold;
    int64_t since_ms; /* when the condition started holding */
    int64_t at_ms;    /* the tick's clock */
} nc_alert_event;

/* Called from nc_alerts_tick / nc_alerts_set_rules on the caller's thread,
 * with no alerts lock held; must not call nc_alerts_* of the same engine. */
typedef void (*nc_alert_cb)(void *arg, const nc_alert_event *ev);

/* An alert engine over `m` (borrowed; must outlive the engine). `cb` may
 * be NULL. Errors: MB_ENOMEM. */
int nc_alerts_new(nc_alerts **out, nc_metrics *m, nc_alert_cb cb, void *arg, mb_error *err);
/* Free the engine (no callbacks are made). NULL is a no-op. */
void nc_alerts_free(nc_alerts *a);

/* Check rule text without side effects; the config's validator.
 * Errors: MB_EINVAL with "rule N (name): ..." in err. */
int nc_alerts_parse_check(const char *text, mb_error *err);

/* Replace the rule set by `text` (all or nothing). Rules whose name and
 * text are unchanged keep their state; active alerts of removed or changed
 * rules are cleared through the callback (at time `now_ms`).
 * Errors: MB_EINVAL (parse), MB_ENOMEM. */
int nc_alerts_set_rules(nc_alerts *a, const char *text, int64_t now_ms, mb_error *err);

/* Evaluate every rule at time `now_ms` (any monotonic clock in ms, e.g.
 * uv_now); raises and clears go to the callback, in rule order. */
void nc_alerts_tick(nc_alerts *a, int64_t now_ms);

/* Active (raised) alerts as JSON: {"alerts":[{"rule":..,"series":..,
 * "expr":..,"value":..,"threshold":..,"since_ms":..,"raised_ms":..}]}.
 * malloc'd; NULL if out of memory. */
char *nc_alerts_active_json(nc_alerts *a);
size_t nc_alerts_active_count(nc_alerts *a);

#ifdef __cplusplus
}
#endif

#endif /* NC_TELEMETRY_H */
