/* Metrics (counters, gauges, log-linear histograms), their registry, the
 * Prometheus text and JSON renderings, and threshold alert rules. See
 * telemetry.h. */
#include "node/core/telemetry.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/core/config.h"

#define CACHE_LINE 64

/* ---- per-thread stripe ------------------------------------------------------ */

static _Atomic unsigned next_stripe;
static _Thread_local int my_stripe = -1;

static inline unsigned stripe_index(void)
{
    if (__builtin_expect(my_stripe < 0, 0))
        my_stripe = (int)(atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) %
                          NC_METRIC_STRIPES);
    return (unsigned)my_stripe;
}

/* ---- series types ------------------------------------------------------------ */

struct counter_cell {
    _Atomic uint64_t v;
    char pad[CACHE_LINE - sizeof(uint64_t)];
};

struct nc_counter {
    struct counter_cell cell[NC_METRIC_STRIPES];
};

struct nc_gauge {
    _Atomic uint64_t bits; /* a double's bit pattern */
};

/* Aligned so that each stripe of a histogram starts on its own line. */
struct hist_stripe {
    _Atomic uint64_t sum;
    _Atomic uint64_t b[NC_HIST_BUCKETS];
} __attribute__((aligned(CACHE_LINE)));

struct nc_hist {
    struct hist_stripe s[NC_METRIC_STRIPES];
};

void nc_counter_add(nc_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->cell[stripe_index()].v, n, memory_order_relaxed);
}

uint64_t nc_counter_value(const nc_counter *c)
{
    uint64_t v = 0;
    for (int i = 0; i < NC_METRIC_STRIPES; i++)
        v += atomic_load_explicit(&((nc_counter *)c)->cell[i].v, memory_order_relaxed);
    return v;
}

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

void nc_gauge_set(nc_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void nc_gauge_add(nc_gauge *g, double delta)
{
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old, dbl_bits(bits_dbl(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

double nc_gauge_value(const nc_gauge *g)
{
    return bits_dbl(atomic_load_explicit(&((nc_gauge *)g)->bits, memory_order_relaxed));
}

/* Bucket 0 holds 0. A value v >= 1 goes to 1 + f(v - 1), where f is the
 * HDR-style map: w < 32 -> w; else 16 * shift + (w >> shift) with
 * shift = msb(w) - 4, so each power of two is split into 16 sub-buckets.
 * Working on v - 1 makes buckets (lo, hi] ranges whose upper edges include
 * every power of two, so `le` bounds at powers of two are exact. */
#define HIST_W_LIMIT (1ULL << 48)

unsigned nc_hist_bucket_of(uint64_t v)
{
    if (v == 0)
        return 0;
    uint64_t w = v - 1;
    if (w < 32)
        return 1 + (unsigned)w;
    if (w >= HIST_W_LIMIT)
        return NC_HIST_BUCKETS - 1;
    unsigned shift = 63 - (unsigned)__builtin_clzll(w) - 4;
    return 1 + 16 * shift + (unsigned)(w >> shift);
}

void nc_hist_bucket_range(unsigned index, uint64_t *lo, uint64_t *hi)
{
    assert(index < NC_HIST_BUCKETS);
    if (index == 0) {
        *lo = *hi = 0;
        return;
    }
    if (index == NC_HIST_BUCKETS - 1) {
        *lo = HIST_W_LIMIT + 1;
        *hi = UINT64_MAX;
        return;
    }
    unsigned i = index - 1;
    if (i < 32) {
        *lo = *hi = (uint64_t)i + 1;
        return;
    }
    unsigned shift = i / 16 - 1;
    uint64_t mant = i - 16 * shift;
    uint64_t wlo = mant << shift;
    *lo = wlo + 1;
    *hi = wlo + (1ULL << shift);
}

void nc_hist_record(nc_hist *h, uint64_t value)
{
    struct hist_stripe *s = &h->s[stripe_index()];
    atomic_fetch_add_explicit(&s->b[nc_hist_bucket_of(value)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum, value, memory_order_relaxed);
}

void nc_hist_snapshot_get(const nc_hist *h, nc_hist_snapshot *out)
{
    nc_hist *hh = (nc_hist *)h;
    memset(out, 0, sizeof(*out));
    for (int st = 0; st < NC_METRIC_STRIPES; st++) {
        out->sum += atomic_load_explicit(&hh->s[st].sum, memory_order_relaxed);
        for (int i = 0; i < NC_HIST_BUCKETS; i++) {
            uint64_t c = atomic_load_explicit(&hh->s[st].b[i], memory_order_relaxed);
            out->buckets[i] += c;
            out->count += c;
        }
    }
}

void nc_hist_snapshot_merge(nc_hist_snapshot *dst, const nc_hist_snapshot *src)
{
    dst->count += src->count;
    dst->sum += src->sum;
    for (int i = 0; i < NC_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

double nc_hist_snapshot_quantile(const nc_hist_snapshot *s, double q)
{
    if (s->count == 0)
        return 0;
    if (!(q >= 0))
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)s->count);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < NC_HIST_BUCKETS; i++) {
        cum += s->buckets[i];
        if (cum >= rank) {
            uint64_t lo, hi;
            nc_hist_bucket_range(i, &lo, &hi);
            if (i == NC_HIST_BUCKETS - 1)
                return (double)lo;
            return ((double)lo + (double)hi) / 2.0;
        }
    }
    return 0;
}

/* ---- registry of families ----------------------------------------------------- */

typedef enum mtype { MT_COUNTER, MT_GAUGE, MT_HIST } mtype;

struct series {
    struct series *next;
    char *values[NC_METRIC_LABELS_MAX]; /* label values, owned */
    nc_counter *counter;
    nc_gauge *gauge;
    nc_hist *hist;
    nc_gauge_fn fn; /* computed gauge */
    void *fn_arg;
};

struct family {
    struct family *next;
    char *name;
    char *help;
    mtype type;
    size_t nlabels;
    char *label_names[NC_METRIC_LABELS_MAX];
    nc_hist_options hopts;
    struct series *series, *series_tail;
};

struct nc_metrics {
    pthread_mutex_t mu; /* families and series lists (not the values) */
    struct family *families, *families_tail;
};

int nc_metrics_new(nc_metrics **out, mb_error *err)
{
    nc_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate metrics registry");
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return mb_errorf(err, MB_ENOMEM, "init metrics mutex");
    }
    *out = m;
    return MB_OK;
}

static void series_free(struct series *s)
{
    for (int i = 0; i < NC_METRIC_LABELS_MAX; i++)
        free(s->values[i]);
    free(s->counter);
    free(s->gauge);
    free(s->hist);
    free(s);
}

static void family_free(struct family *f)
{
    struct series *s = f->series;
    while (s != NULL) {
        struct series *next = s->next;
        series_free(s);
        s = next;
    }
    for (int i = 0; i < NC_METRIC_LABELS_MAX; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void nc_metrics_free(nc_metrics *m)
{
    if (m == NULL)
        return;
    struct family *f = m->families;
    while (f != NULL) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool metric_name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > NC_METRIC_NAME_MAX)
        return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == ':'))
            return false;
    return true;
}

static bool label_name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > NC_METRIC_NAME_MAX)
        return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    if (s[0] == '_' && s[1] == '_')
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return strcmp(s, "le") != 0 && strcmp(s, "quantile") != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lf = strlen(suffix);
    return ls >= lf && strcmp(s + ls - lf, suffix) == 0;
}

static const char *type_name(mtype t)
{
    return t == MT_COUNTER ? "counter" : t == MT_GAUGE ? "gauge" : "histogram";
}

/* Find or create the family and series; on success *out is the series
 * (new ones have no value object yet: the caller attaches it under mu). */
static int series_get_locked(nc_metrics *m, const char *name, const char *help, mtype type,
                             const nc_label *labels, size_t nlabels, const nc_hist_options *hopts,
                             struct series **out, bool *created, mb_error *err)
{
    *created = false;
    if (!metric_name_ok(name))
        return mb_errorf(err, MB_EINVAL, "metric name '%.128s' is not valid", name ? name : "");
    if (type == MT_COUNTER && !ends_with(name, "_total"))
        return mb_errorf(err, MB_EINVAL, "counter '%s' must end in _total", name);
    if (type != MT_COUNTER && ends_with(name, "_total"))
        return mb_errorf(err, MB_EINVAL, "%s '%s' must not end in _total", type_name(type), name);
    if (nlabels > NC_METRIC_LABELS_MAX)
        return mb_errorf(err, MB_EINVAL, "metric '%s': more than %d labels", name,
                         NC_METRIC_LABELS_MAX);
    if (nlabels > 0 && labels == NULL)
        return mb_errorf(err, MB_EINVAL, "metric '%s': labels missing", name);
    for (size_t i = 0; i < nlabels; i++) {
        if (!label_name_ok(labels[i].name))
            return mb_errorf(err, MB_EINVAL, "metric '%s': label name '%.64s' is not valid", name,
                             labels[i].name ? labels[i].name : "");
        if (labels[i].value == NULL || strlen(labels[i].value) > NC_METRIC_VALUE_MAX)
            return mb_errorf(err, MB_EINVAL, "metric '%s': label '%s' value missing or too long",
                             name, labels[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[i].name, labels[j].name) == 0)
                return mb_errorf(err, MB_EINVAL, "metric '%s': label '%s' twice", name,
                                 labels[i].name);
    }
    struct family *f;
    for (f = m->families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f != NULL) {
        if (f->type != type)
            return mb_errorf(err, MB_EINVAL, "metric '%s' is a %s, not a %s", name,
                             type_name(f->type), type_name(type));
        bool same = f->nlabels == nlabels;
        for (size_t i = 0; same && i < nlabels; i++)
            same = strcmp(f->label_names[i], labels[i].name) == 0;
        if (!same)
            return mb_errorf(err, MB_EINVAL,
                             "metric '%s': label names differ from its first "
                             "registration",
                             name);
        if (help != NULL && strcmp(help, f->help) != 0)
            return mb_errorf(err, MB_EINVAL,
                             "metric '%s': help text differs from its first "
                             "registration",
                             name);
        for (struct series *s = f->series; s != NULL; s = s->next) {
            bool eq = true;
            for (size_t i = 0; eq && i < nlabels; i++)
                eq = strcmp(s->values[i], labels[i].value) == 0;
            if (eq) {
                *out = s;
                return MB_OK;
            }
        }
    } else {
        f = calloc(1, sizeof(*f));
        if (f == NULL)
            return mb_errorf(err, MB_ENOMEM, "allocate metric family");
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = type;
        f->nlabels = nlabels;
        bool ok = f->name && f->help;
        for (size_t i = 0; i < nlabels; i++)
            ok = ok && (f->label_names[i] = strdup(labels[i].name)) != NULL;
        if (hopts != NULL)
            f->hopts = *hopts;
        if (f->hopts.unit_scale == 0)
            f->hopts.unit_scale = 1;
        if (hopts == NULL) {
            f->hopts.le_min_log2 = 0;
            f->hopts.le_max_log2 = 30;
        }
        if (f->hopts.le_max_log2 > 47 || f->hopts.le_min_log2 > f->hopts.le_max_log2) {
            family_free(f);
            return mb_errorf(err, MB_EINVAL,
                             "histogram '%s': le range 2^%u..2^%u not valid "
                             "(max 2^47)",
                             name, hopts->le_min_log2, hopts->le_max_log2);
        }
        if (!ok) {
            family_free(f);
            return mb_errorf(err, MB_ENOMEM, "allocate metric family");
        }
        if (m->families_tail)
            m->families_tail->next = f;
        else
            m->families = f;
        m->families_tail = f;
    }
    struct series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate metric series");
    for (size_t i = 0; i < nlabels; i++) {
        if ((s->values[i] = strdup(labels[i].value)) == NULL) {
            series_free(s);
            return mb_errorf(err, MB_ENOMEM, "allocate metric series");
        }
    }
    *out = s;
    *created = true;
    return MB_OK;
}

static void series_link_locked(nc_metrics *m, const char *name, struct series *s)
{
    struct family *f;
    for (f = m->families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    assert(f != NULL);
    if (f->series_tail)
        f->series_tail->next = s;
    else
        f->series = s;
    f->series_tail = s;
}

int nc_metrics_counter(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                       size_t nlabels, nc_counter **out, mb_error *err)
{
    struct series *s = NULL;
    bool created;
    pthread_mutex_lock(&m->mu);
    int rc = series_get_locked(m, name, help, MT_COUNTER, labels, nlabels, NULL, &s, &created, err);
    if (rc == MB_OK && created) {
        s->counter = aligned_alloc(CACHE_LINE, sizeof(nc_counter));
        if (s->counter == NULL) {
            series_free(s);
            rc = mb_errorf(err, MB_ENOMEM, "allocate counter");
        } else {
            for (int i = 0; i < NC_METRIC_STRIPES; i++)
                atomic_init(&s->counter->cell[i].v, 0);
            series_link_locked(m, name, s);
        }
    }
    if (rc == MB_OK)
        *out = s->counter;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int gauge_common(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                        size_t nlabels, nc_gauge_fn fn, void *arg, nc_gauge **out, mb_error *err)
{
    struct series *s = NULL;
    bool created;
    pthread_mutex_lock(&m->mu);
    int rc = series_get_locked(m, name, help, MT_GAUGE, labels, nlabels, NULL, &s, &created, err);
    if (rc == MB_OK && !created && (fn != NULL) != (s->fn != NULL))
        rc = mb_errorf(err, MB_EINVAL, "gauge '%s': series exists as a %s gauge", name,
                       s->fn ? "computed" : "plain");
    else if (rc == MB_OK && !created && fn != NULL)
        rc = mb_errorf(err, MB_EEXIST, "computed gauge '%s': series already registered", name);
    if (rc == MB_OK && created) {
        if (fn != NULL) {
            s->fn = fn;
            s->fn_arg = arg;
            series_link_locked(m, name, s);
        } else if ((s->gauge = calloc(1, sizeof(nc_gauge))) == NULL) {
            series_free(s);
            rc = mb_errorf(err, MB_ENOMEM, "allocate gauge");
        } else {
            atomic_init(&s->gauge->bits, dbl_bits(0.0));
            series_link_locked(m, name, s);
        }
    }
    if (rc == MB_OK && out != NULL)
        *out = s->gauge;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int nc_metrics_gauge(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                     size_t nlabels, nc_gauge **out, mb_error *err)
{
    return gauge_common(m, name, help, labels, nlabels, NULL, NULL, out, err);
}

int nc_metrics_gauge_fn(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                        size_t nlabels, nc_gauge_fn fn, void *arg, mb_error *err)
{
    assert(fn != NULL);
    return gauge_common(m, name, help, labels, nlabels, fn, arg, NULL, err);
}

int nc_metrics_hist(nc_metrics *m, const char *name, const char *help, const nc_label *labels,
                    size_t nlabels, const nc_hist_options *opts, nc_hist **out, mb_error *err)
{
    struct series *s = NULL;
    bool created;
    pthread_mutex_lock(&m->mu);
    int rc = series_get_locked(m, name, help, MT_HIST, labels, nlabels, opts, &s, &created, err);
    if (rc == MB_OK && created) {
        s->hist = aligned_alloc(CACHE_LINE, sizeof(nc_hist));
        if (s->hist == NULL) {
            series_free(s);
            rc = mb_errorf(err, MB_ENOMEM, "allocate histogram");
        } else {
            memset(s->hist, 0, sizeof(nc_hist)); /* atomics: all-zero is 0 */
            series_link_locked(m, name, s);
        }
    }
    if (rc == MB_OK)
        *out = s->hist;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- text buffer --------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
        b->oom = true;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Shortest decimal that reads back as the same double; Prometheus spellings
 * for the special values. */
static void fmt_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* x * scale, computed as x / (1/scale) when 1/scale is an integer (1e-9,
 * 1e-3, ...) so that decimal results come out exact ("5.003002549", not
 * "5.0030025490000005"). */
static double scaled(double x, double scale)
{
    if (scale > 0 && scale < 1) {
        double inv = nearbyint(1.0 / scale);
        if (fabs(inv * scale - 1.0) < 1e-12)
            return x / inv;
    }
    return x * scale;
}

static void buf_double(struct buf *b, double v)
{
    char tmp[40];
    fmt_double(tmp, sizeof(tmp), v);
    buf_str(b, tmp);
}

/* Escape for HELP (\\ and \n) or label values (also \"). */
static void buf_escaped(struct buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            buf_put(b, "\\n", 2);
        else if (quote && *s == '"')
            buf_put(b, "\\\"", 2);
        else
            buf_put(b, s, 1);
    }
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels at all. */
static void buf_labels(struct buf *b, const struct family *f, const struct series *s,
                       const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    buf_put(b, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            buf_put(b, ",", 1);
        buf_str(b, f->label_names[i]);
        buf_put(b, "=\"", 2);
        buf_escaped(b, s->values[i], true);
        buf_put(b, "\"", 1);
    }
    if (le != NULL) {
        if (f->nlabels > 0)
            buf_put(b, ",", 1);
        buf_str(b, "le=\"");
        buf_str(b, le);
        buf_put(b, "\"", 1);
    }
    buf_put(b, "}", 1);
}

static double series_scalar(const struct family *f, const struct series *s)
{
    if (f->type == MT_COUNTER)
        return (double)nc_counter_value(s->counter);
    if (s->fn != NULL)
        return s->fn(s->fn_arg);
    return nc_gauge_value(s->gauge);
}

int nc_metrics_render_prometheus(nc_metrics *m, char **out, size_t *len)
{
    struct buf b = { 0 };
    nc_hist_snapshot *snap = malloc(sizeof(*snap));
    if (snap == NULL)
        return MB_ENOMEM;
    buf_reserve(&b, 4096);
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->families; f != NULL; f = f->next) {
        if (f->series == NULL)
            continue;
        buf_str(&b, "# HELP ");
        buf_str(&b, f->name);
        buf_put(&b, " ", 1);
        buf_escaped(&b, f->help, false);
        buf_str(&b, "\n# TYPE ");
        buf_str(&b, f->name);
        buf_put(&b, " ", 1);
        buf_str(&b, type_name(f->type));
        buf_put(&b, "\n", 1);
        for (const struct series *s = f->series; s != NULL; s = s->next) {
            if (f->type != MT_HIST) {
                buf_str(&b, f->name);
                buf_labels(&b, f, s, NULL);
                buf_put(&b, " ", 1);
                buf_double(&b, series_scalar(f, s));
                buf_put(&b, "\n", 1);
                continue;
            }
            nc_hist_snapshot_get(s->hist, snap);
            unsigned bi = 0;
            uint64_t cum = 0;
            for (unsigned k = f->hopts.le_min_log2; k <= f->hopts.le_max_log2; k++) {
                uint64_t edge = 1ULL << k;
                for (; bi < NC_HIST_BUCKETS; bi++) {
                    uint64_t lo, hi;
                    nc_hist_bucket_range(bi, &lo, &hi);
                    if (hi > edge)
                        break;
                    cum += snap->buckets[bi];
                }
                char le[40];
                fmt_double(le, sizeof(le), scaled((double)edge, f->hopts.unit_scale));
                buf_str(&b, f->name);
                buf_str(&b, "_bucket");
                buf_labels(&b, f, s, le);
                buf_fmt(&b, " %llu\n", (unsigned long long)cum);
            }
            buf_str(&b, f->name);
            buf_str(&b, "_bucket");
            buf_labels(&b, f, s, "+Inf");
            buf_fmt(&b, " %llu\n", (unsigned long long)snap->count);
            buf_str(&b, f->name);
            buf_str(&b, "_sum");
            buf_labels(&b, f, s, NULL);
            buf_put(&b, " ", 1);
            buf_double(&b, scaled((double)snap->sum, f->hopts.unit_scale));
            buf_put(&b, "\n", 1);
            buf_str(&b, f->name);
            buf_str(&b, "_count");
            buf_labels(&b, f, s, NULL);
            buf_fmt(&b, " %llu\n", (unsigned long long)snap->count);
        }
    }
    pthread_mutex_unlock(&m->mu);
    free(snap);
    if (b.oom) {
        free(b.p);
        return MB_ENOMEM;
    }
    if (b.p == NULL) {
        b.p = calloc(1, 1);
        if (b.p == NULL)
            return MB_ENOMEM;
    }
    *out = b.p;
    if (len != NULL)
        *len = b.len;
    return MB_OK;
}

static cJSON *labels_json(const struct family *f, const struct series *s)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o != NULL && i < f->nlabels; i++)
        cJSON_AddStringToObject(o, f->label_names[i], s->values[i]);
    return o;
}

static cJSON *json_number(double v)
{
    /* JSON has no NaN/Inf: cJSON prints them as null, which is what we want. */
    return cJSON_CreateNumber(v);
}

char *nc_metrics_to_json(nc_metrics *m)
{
    nc_hist_snapshot *snap = malloc(sizeof(*snap));
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "metrics") : NULL;
    if (snap == NULL || arr == NULL) {
        free(snap);
        cJSON_Delete(root);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->families; f != NULL; f = f->next) {
        cJSON *fo = cJSON_CreateObject();
        if (fo == NULL)
            break;
        cJSON_AddItemToArray(arr, fo);
        cJSON_AddStringToObject(fo, "name", f->name);
        cJSON_AddStringToObject(fo, "type", type_name(f->type));
        cJSON_AddStringToObject(fo, "help", f->help);
        cJSON *sa = cJSON_AddArrayToObject(fo, "series");
        for (const struct series *s = f->series; sa != NULL && s != NULL; s = s->next) {
            cJSON *so = cJSON_CreateObject();
            if (so == NULL)
                break;
            cJSON_AddItemToArray(sa, so);
            cJSON_AddItemToObject(so, "labels", labels_json(f, s));
            if (f->type != MT_HIST) {
                cJSON_AddItemToObject(so, "value", json_number(series_scalar(f, s)));
                continue;
            }
            double sc = f->hopts.unit_scale;
            nc_hist_snapshot_get(s->hist, snap);
            cJSON_AddNumberToObject(so, "count", (double)snap->count);
            cJSON_AddNumberToObject(so, "sum", scaled((double)snap->sum, sc));
            cJSON_AddNumberToObject(so, "p50", scaled(nc_hist_snapshot_quantile(snap, 0.5), sc));
            cJSON_AddNumberToObject(so, "p90", scaled(nc_hist_snapshot_quantile(snap, 0.9), sc));
            cJSON_AddNumberToObject(so, "p99", scaled(nc_hist_snapshot_quantile(snap, 0.99), sc));
        }
    }
    pthread_mutex_unlock(&m->mu);
    free(snap);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ---- alert rules ------------------------------------------------------------------ */

typedef enum stat_kind { ST_P50, ST_P90, ST_P99, ST_COUNT, ST_SUM, ST_MEAN, ST_NONE } stat_kind;
typedef enum cmp_op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE } cmp_op;

static const char *const stat_names[] = { "p50", "p90", "p99", "count", "sum", "mean" };

#define RULE_NAME_MAX 63
#define RULE_TEXT_MAX 1024
#define RULES_MAX     256

struct rule_instance {
    struct rule_instance *next;
    const struct series *series; /* identity; stable for the metrics' life */
    char *series_text;           /* name{labels} */
    bool holding;                /* condition held at the last tick */
    bool firing;
    int64_t since_ms;
    int64_t raised_ms;
    double value;
};

struct rule {
    char name[RULE_NAME_MAX + 1];
    char text[RULE_TEXT_MAX + 1]; /* normalised text, identity across set_rules */
    char expr[RULE_TEXT_MAX + 1]; /* condition part of text */
    char metric[NC_METRIC_NAME_MAX + 1];
    size_t nmatch;
    char match_name[NC_METRIC_LABELS_MAX][NC_METRIC_NAME_MAX + 1];
    char match_value[NC_METRIC_LABELS_MAX][NC_METRIC_VALUE_MAX + 1];
    stat_kind stat; /* ST_NONE: default (p99 for histograms) */
    cmp_op op;
    double threshold;
    int64_t for_ms;
    struct rule_instance *instances;
};

struct parser {
    const char *s;
    size_t i, n;
};

static void p_ws(struct parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r'))
        p->i++;
}

static size_t p_ident(struct parser *p, char *out, size_t size)
{
    size_t start = p->i;
    if (p->i < p->n && (isalpha((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
        p->i++;
    else
        return 0;
    while (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
        p->i++;
    size_t len = p->i - start;
    if (len >= size)
        return 0;
    memcpy(out, p->s + start, len);
    out[len] = '\0';
    return len;
}

static bool p_eat(struct parser *p, char c)
{
    p_ws(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return true;
    }
    return false;
}

/* Parse one rule from s[0..n) (already split at ';'/newline, trimmed). */
static int rule_parse(const char *s, size_t n, struct rule *r, int index, mb_error *err)
{
    struct parser p = { s, 0, n };
    memset(r, 0, sizeof(*r));
    r->stat = ST_NONE;
    if (n > RULE_TEXT_MAX)
        return mb_errorf(err, MB_EINVAL, "rule %d: longer than %d bytes", index, RULE_TEXT_MAX);
    p_ws(&p);
    if (p_ident(&p, r->name, sizeof(r->name)) == 0)
        return mb_errorf(err, MB_EINVAL, "rule %d: expected a rule name", index);
    if (!p_eat(&p, ':'))
        return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected ':' after the name", index,
                         r->name);
    p_ws(&p);
    size_t expr_start = p.i;
    if (p_ident(&p, r->metric, sizeof(r->metric)) == 0)
        return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected a metric name", index, r->name);
    if (p_eat(&p, '{')) {
        while (!p_eat(&p, '}')) {
            if (r->nmatch == NC_METRIC_LABELS_MAX)
                return mb_errorf(err, MB_EINVAL, "rule %d (%s): more than %d label matchers", index,
                                 r->name, NC_METRIC_LABELS_MAX);
            if (r->nmatch > 0 && !p_eat(&p, ','))
                return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected ',' or '}'", index,
                                 r->name);
            p_ws(&p);
            if (p_ident(&p, r->match_name[r->nmatch], sizeof(r->match_name[0])) == 0)
                return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected a label name", index,
                                 r->name);
            if (!p_eat(&p, '=') || !p_eat(&p, '"'))
                return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected =\"value\"", index,
                                 r->name);
            size_t vlen = 0;
            for (;;) {
                if (p.i >= p.n)
                    return mb_errorf(err, MB_EINVAL, "rule %d (%s): unterminated label value",
                                     index, r->name);
                char c = s[p.i++];
                if (c == '"')
                    break;
                if (c == '\\' && p.i < p.n)
                    c = s[p.i++];
                if (vlen == NC_METRIC_VALUE_MAX)
                    return mb_errorf(err, MB_EINVAL, "rule %d (%s): label value too long", index,
                                     r->name);
                r->match_value[r->nmatch][vlen++] = c;
            }
            r->match_value[r->nmatch][vlen] = '\0';
            r->nmatch++;
        }
    }
    if (p.i < p.n && s[p.i] == ':') {
        p.i++;
        char st[16];
        if (p_ident(&p, st, sizeof(st)) == 0)
            return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected a statistic after ':'", index,
                             r->name);
        int k;
        for (k = 0; k < 6; k++)
            if (strcmp(st, stat_names[k]) == 0)
                break;
        if (k == 6)
            return mb_errorf(err, MB_EINVAL,
                             "rule %d (%s): unknown statistic '%s' (p50 p90 p99 count sum mean)",
                             index, r->name, st);
        r->stat = (stat_kind)k;
    }
    p_ws(&p);
    int op = -1;
    if (p.i + 1 < p.n && s[p.i + 1] == '=') {
        switch (s[p.i]) {
        case '>':
            op = OP_GE;
            break;
        case '<':
            op = OP_LE;
            break;
        case '=':
            op = OP_EQ;
            break;
        case '!':
            op = OP_NE;
            break;
        }
        if (op >= 0)
            p.i += 2;
    }
    if (op < 0 && p.i < p.n && (s[p.i] == '>' || s[p.i] == '<')) {
        op = s[p.i] == '>' ? OP_GT : OP_LT;
        p.i++;
    }
    if (op < 0)
        return mb_errorf(err, MB_EINVAL, "rule %d (%s): expected a comparison (> >= < <= == !=)",
                         index, r->name);
    r->op = (cmp_op)op;
    p_ws(&p);
    char num[64];
    size_t nl = 0;
    while (p.i < p.n && nl + 1 < sizeof(num) &&
           (isalnum((unsigned char)s[p.i]) || s[p.i] == '.' || s[p.i] == '-' || s[p.i] == '+'))
        num[nl++] = s[p.i++];
    num[nl] = '\0';
    char *end;
    r->threshold = nl ? strtod(num, &end) : 0;
    if (nl == 0 || *end != '\0' || !isfinite(r->threshold))
        return mb_errorf(err, MB_EINVAL, "rule %d (%s): threshold '%s' is not a finite number",
                         index, r->name, num);
    size_t expr_end = p.i;
    p_ws(&p);
    if (p.i < p.n) {
        char word[8];
        if (p_ident(&p, word, sizeof(word)) == 0 || strcmp(word, "for") != 0)
            return mb_errorf(err, MB_EINVAL, "rule %d (%s): unexpected text after the threshold",
                             index, r->name);
        p_ws(&p);
        char dur[32];
        size_t dl = 0;
        while (p.i < p.n && dl + 1 < sizeof(dur) && isalnum((unsigned char)s[p.i]))
            dur[dl++] = s[p.i++];
        dur[dl] = '\0';
        p_ws(&p);
        if (nc_config_parse_duration_ms(dur, &r->for_ms) != MB_OK || p.i < p.n)
            return mb_errorf(err, MB_EINVAL,
                             "rule %d (%s): 'for' needs a duration such as 30s or 500ms", index,
                             r->name);
    }
    size_t el = expr_end - expr_start;
    memcpy(r->expr, s + expr_start, el);
    r->expr[el] = '\0';
    memcpy(r->text, s, n);
    r->text[n] = '\0';
    return MB_OK;
}

/* Split `text` into rules; *out is a malloc'd array (caller frees). */
static int rules_parse(const char *text, struct rule **out, size_t *nout, mb_error *err)
{
    *out = NULL;
    *nout = 0;
    if (text == NULL)
        return MB_OK;
    struct rule *rules = NULL;
    size_t n = 0;
    int rc = MB_OK;
    const char *p = text;
    int index = 0;
    while (*p) {
        size_t len = strcspn(p, ";\n");
        const char *a = p, *b = p + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            index++;
            if (n == RULES_MAX) {
                rc = mb_errorf(err, MB_EINVAL, "more than %d alert rules", RULES_MAX);
                goto fail;
            }
            struct rule *nr = realloc(rules, (n + 1) * sizeof(*rules));
            if (nr == NULL) {
                rc = mb_errorf(err, MB_ENOMEM, "allocate alert rules");
                goto fail;
            }
            rules = nr;
            rc = rule_parse(a, (size_t)(b - a), &rules[n], index, err);
            if (rc != MB_OK)
                goto fail;
            for (size_t j = 0; j < n; j++) {
                if (strcmp(rules[j].name, rules[n].name) == 0) {
                    rc = mb_errorf(err, MB_EINVAL, "rule %d (%s): name used twice", index,
                                   rules[n].name);
                    goto fail;
                }
            }
            n++;
        }
        p += len;
        if (*p)
            p++;
    }
    *out = rules;
    *nout = n;
    return MB_OK;
fail:
    free(rules);
    return rc;
}

int nc_alerts_parse_check(const char *text, mb_error *err)
{
    struct rule *rules;
    size_t n;
    int rc = rules_parse(text, &rules, &n, err);
    free(rules);
    return rc;
}

struct pending_event {
    nc_alert_event ev;
    char *rule, *series, *expr; /* owned copies */
};

struct nc_alerts {
    nc_metrics *m;
    nc_alert_cb cb;
    void *cb_arg;
    pthread_mutex_t tick_mu;  /* serialises tick/set_rules and their deliveries */
    pthread_mutex_t state_mu; /* rules and instances */
    struct rule *rules;
    size_t nrules;
    nc_hist_snapshot snap; /* scratch, under tick_mu */
    struct pending_event *events;
    size_t nevents, events_cap;
};

int nc_alerts_new(nc_alerts **out, nc_metrics *m, nc_alert_cb cb, void *arg, mb_error *err)
{
    assert(m != NULL);
    nc_alerts *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate alert engine");
    a->m = m;
    a->cb = cb;
    a->cb_arg = arg;
    if (pthread_mutex_init(&a->tick_mu, NULL) != 0) {
        free(a);
        return mb_errorf(err, MB_ENOMEM, "init alert mutex");
    }
    if (pthread_mutex_init(&a->state_mu, NULL) != 0) {
        pthread_mutex_destroy(&a->tick_mu);
        free(a);
        return mb_errorf(err, MB_ENOMEM, "init alert mutex");
    }
    *out = a;
    return MB_OK;
}

static void instances_free(struct rule_instance *in)
{
    while (in != NULL) {
        struct rule_instance *next = in->next;
        free(in->series_text);
        free(in);
        in = next;
    }
}

static void events_clear(nc_alerts *a)
{
    for (size_t i = 0; i < a->nevents; i++) {
        free(a->events[i].rule);
        free(a->events[i].series);
        free(a->events[i].expr);
    }
    a->nevents = 0;
}

void nc_alerts_free(nc_alerts *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nrules; i++)
        instances_free(a->rules[i].instances);
    free(a->rules);
    events_clear(a);
    free(a->events);
    pthread_mutex_destroy(&a->state_mu);
    pthread_mutex_destroy(&a->tick_mu);
    free(a);
}

/* Queue an event for delivery after the locks are released. Under tick_mu.
 * Out of memory drops the event (the state still changes). */
static void event_push(nc_alerts *a, nc_alert_kind kind, const struct rule *r,
                       const struct rule_instance *in, int64_t now_ms)
{
    if (a->cb == NULL)
        return;
    if (a->nevents == a->events_cap) {
        size_t cap = a->events_cap ? a->events_cap * 2 : 8;
        struct pending_event *ne = realloc(a->events, cap * sizeof(*ne));
        if (ne == NULL)
            return;
        a->events = ne;
        a->events_cap = cap;
    }
    struct pending_event *pe = &a->events[a->nevents];
    pe->rule = strdup(r->name);
    pe->series = strdup(in->series_text);
    pe->expr = strdup(r->expr);
    if (pe->rule == NULL || pe->series == NULL || pe->expr == NULL) {
        free(pe->rule);
        free(pe->series);
        free(pe->expr);
        return;
    }
    pe->ev = (nc_alert_event){ .kind = kind,
                               .rule = pe->rule,
                               .series = pe->series,
                               .expr = pe->expr,
                               .value = in->value,
                               .threshold = r->threshold,
                               .since_ms = in->since_ms,
                               .at_ms = now_ms };
    a->nevents++;
}

static void events_deliver(nc_alerts *a)
{
    for (size_t i = 0; i < a->nevents; i++)
        a->cb(a->cb_arg, &a->events[i].ev);
    events_clear(a);
}

static bool compare(cmp_op op, double v, double t)
{
    switch (op) {
    case OP_GT:
        return v > t;
    case OP_GE:
        return v >= t;
    case OP_LT:
        return v < t;
    case OP_LE:
        return v <= t;
    case OP_EQ:
        return v == t;
    case OP_NE:
        return v != t;
    }
    return false;
}

static bool series_matches(const struct rule *r, const struct family *f, const struct series *s)
{
    for (size_t i = 0; i < r->nmatch; i++) {
        size_t j;
        for (j = 0; j < f->nlabels; j++)
            if (strcmp(f->label_names[j], r->match_name[i]) == 0)
                break;
        if (j == f->nlabels || strcmp(s->values[j], r->match_value[i]) != 0)
            return false;
    }
    return true;
}

static char *series_text(const struct family *f, const struct series *s)
{
    struct buf b = { 0 };
    buf_str(&b, f->name);
    buf_labels(&b, f, s, NULL);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Value of a series for a rule; false if the rule's statistic does not
 * apply to this metric type. Under the metrics mutex and tick_mu. */
static bool rule_value(nc_alerts *a, const struct rule *r, const struct family *f,
                       const struct series *s, double *out)
{
    if (f->type != MT_HIST) {
        if (r->stat != ST_NONE)
            return false;
        *out = series_scalar(f, s);
        return true;
    }
    nc_hist_snapshot_get(s->hist, &a->snap);
    double sc = f->hopts.unit_scale;
    switch (r->stat) {
    case ST_P50:
        *out = nc_hist_snapshot_quantile(&a->snap, 0.5) * sc;
        break;
    case ST_P90:
        *out = nc_hist_snapshot_quantile(&a->snap, 0.9) * sc;
        break;
    case ST_NONE:
    case ST_P99:
        *out = nc_hist_snapshot_quantile(&a->snap, 0.99) * sc;
        break;
    case ST_COUNT:
        *out = (double)a->snap.count;
        break;
    case ST_SUM:
        *out = (double)a->snap.sum * sc;
        break;
    case ST_MEAN:
        *out = a->snap.count ? (double)a->snap.sum * sc / (double)a->snap.count : 0;
        break;
    }
    return true;
}

void nc_alerts_tick(nc_alerts *a, int64_t now_ms)
{
    pthread_mutex_lock(&a->tick_mu);
    pthread_mutex_lock(&a->m->mu);
    pthread_mutex_lock(&a->state_mu);
    for (size_t ri = 0; ri < a->nrules; ri++) {
        struct rule *r = &a->rules[ri];
        const struct family *f;
        for (f = a->m->families; f != NULL; f = f->next)
            if (strcmp(f->name, r->metric) == 0)
                break;
        if (f == NULL)
            continue;
        for (const struct series *s = f->series; s != NULL; s = s->next) {
            if (!series_matches(r, f, s))
                continue;
            double v = 0;
            if (!rule_value(a, r, f, s, &v))
                continue;
            struct rule_instance *in;
            for (in = r->instances; in != NULL; in = in->next)
                if (in->series == s)
                    break;
            bool holds = compare(r->op, v, r->threshold);
            if (in == NULL) {
                if (!holds)
                    continue;
                in = calloc(1, sizeof(*in));
                if (in == NULL || (in->series_text = series_text(f, s)) == NULL) {
                    free(in);
                    continue; /* out of memory: evaluated again next tick */
                }
                in->series = s;
                in->next = r->instances;
                r->instances = in;
            }
            in->value = v;
            if (holds) {
                if (!in->holding) {
                    in->holding = true;
                    in->since_ms = now_ms;
                }
                if (!in->firing && now_ms - in->since_ms >= r->for_ms) {
                    in->firing = true;
                    in->raised_ms = now_ms;
                    event_push(a, NC_ALERT_RAISE, r, in, now_ms);
                }
            } else {
                if (in->firing)
                    event_push(a, NC_ALERT_CLEAR, r, in, now_ms);
                in->firing = false;
                in->holding = false;
            }
        }
        /* Drop idle instances (not holding) to keep the list short. */
        struct rule_instance **pp = &r->instances;
        while (*pp != NULL) {
            struct rule_instance *in = *pp;
            if (!in->holding && !in->firing) {
                *pp = in->next;
                free(in->series_text);
                free(in);
            } else {
                pp = &in->next;
            }
        }
    }
    pthread_mutex_unlock(&a->state_mu);
    pthread_mutex_unlock(&a->m->mu);
    events_deliver(a);
    pthread_mutex_unlock(&a->tick_mu);
}

int nc_alerts_set_rules(nc_alerts *a, const char *text, int64_t now_ms, mb_error *err)
{
    struct rule *rules;
    size_t n;
    int rc = rules_parse(text, &rules, &n, err);
    if (rc != MB_OK)
        return rc;
    pthread_mutex_lock(&a->tick_mu);
    pthread_mutex_lock(&a->state_mu);
    for (size_t i = 0; i < a->nrules; i++) {
        struct rule *old = &a->rules[i];
        struct rule *keep = NULL;
        for (size_t j = 0; j < n; j++)
            if (strcmp(rules[j].name, old->name) == 0 && strcmp(rules[j].text, old->text) == 0)
                keep = &rules[j];
        if (keep != NULL) {
            keep->instances = old->instances;
        } else {
            for (struct rule_instance *in = old->instances; in != NULL; in = in->next)
                if (in->firing)
                    event_push(a, NC_ALERT_CLEAR, old, in, now_ms);
            instances_free(old->instances);
        }
        old->instances = NULL;
    }
    free(a->rules);
    a->rules = rules;
    a->nrules = n;
    pthread_mutex_unlock(&a->state_mu);
    events_deliver(a);
    pthread_mutex_unlock(&a->tick_mu);
    return MB_OK;
}

size_t nc_alerts_active_count(nc_alerts *a)
{
    size_t n = 0;
    pthread_mutex_lock(&a->state_mu);
    for (size_t i = 0; i < a->nrules; i++)
        for (struct rule_instance *in = a->rules[i].instances; in != NULL; in = in->next)
            n += in->firing;
    pthread_mutex_unlock(&a->state_mu);
    return n;
}

char *nc_alerts_active_json(nc_alerts *a)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "alerts") : NULL;
    if (arr == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    pthread_mutex_lock(&a->state_mu);
    for (size_t i = 0; i < a->nrules; i++) {
        const struct rule *r = &a->rules[i];
        for (struct rule_instance *in = r->instances; in != NULL; in = in->next) {
            if (!in->firing)
                continue;
            cJSON *o = cJSON_CreateObject();
            if (o == NULL)
                break;
            cJSON_AddStringToObject(o, "rule", r->name);
            cJSON_AddStringToObject(o, "series", in->series_text);
            cJSON_AddStringToObject(o, "expr", r->expr);
            cJSON_AddNumberToObject(o, "value", in->value);
            cJSON_AddNumberToObject(o, "threshold", r->threshold);
            cJSON_AddNumberToObject(o, "since_ms", (double)in->since_ms);
            cJSON_AddNumberToObject(o, "raised_ms", (double)in->raised_ms);
            cJSON_AddItemToArray(arr, o);
        }
    }
    pthread_mutex_unlock(&a->state_mu);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
