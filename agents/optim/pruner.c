/* Pruners for trials that report intermediate values: median (prune when
 * the trial's best value so far is worse than the median of completed
 * trials at the same step), asynchronous successive halving (rungs at
 * min_resource * eta^(s+k); a trial goes on only if it is in the top 1/eta
 * of the values recorded at its rung) and Hyperband (several ASHA brackets
 * with early-stopping rates 0..n-1; each trial is assigned a bracket by a
 * seeded hash weighted by the bracket's number of configurations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double optim_percentile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof(double), cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= n)
        return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

#define MAX_BRACKETS 16

/* Validate the pruner part of `c`; the number of brackets into *nb (0 for
 * none and median, 1 for ASHA). */
static int pruner_check(const mb_optim_config *c, uint32_t *nb, mb_error *err)
{
    *nb = 0;
    if (c->pruner.kind == MB_OPTIM_PRUNE_NONE)
        return MB_OK;
    if (c->pruner.kind == MB_OPTIM_PRUNE_MEDIAN) {
        if (c->pruner.n_min_trials < 1)
            return mb_errorf(err, MB_EINVAL, "pruner.n_min_trials must be >= 1");
        return MB_OK;
    }
    if (c->pruner.kind != MB_OPTIM_PRUNE_ASHA && c->pruner.kind != MB_OPTIM_PRUNE_HYPERBAND)
        return mb_errorf(err, MB_EINVAL, "unknown pruner %d", (int)c->pruner.kind);
    if (c->pruner.reduction_factor < 2 || c->pruner.reduction_factor > 1000)
        return mb_errorf(err, MB_EINVAL, "pruner.reduction_factor must be 2..1000");
    if (c->pruner.min_resource < 1)
        return mb_errorf(err, MB_EINVAL, "pruner.min_resource must be >= 1");
    *nb = 1;
    if (c->pruner.kind == MB_OPTIM_PRUNE_ASHA) {
        if (c->pruner.min_early_stopping_rate >= OPTIM_MAX_RUNGS)
            return mb_errorf(err, MB_EINVAL, "pruner.min_early_stopping_rate must be < %d",
                             OPTIM_MAX_RUNGS);
    } else {
        if (c->pruner.max_resource < c->pruner.min_resource)
            return mb_errorf(err, MB_EINVAL, "pruner.max_resource must be >= min_resource");
        double r = (double)c->pruner.max_resource / (double)c->pruner.min_resource;
        *nb = (uint32_t)floor(log(r) / log((double)c->pruner.reduction_factor) + 1e-9) + 1;
        if (*nb > MAX_BRACKETS)
            *nb = MAX_BRACKETS;
    }
    return MB_OK;
}

/* Hyperband: bracket b (early-stopping rate b) starts
 * ceil(nb / (nb - b) * eta^(nb-1-b)) configurations per round. */
static void bracket_weights(const mb_optim_config *c, uint32_t nb, uint64_t *w)
{
    for (uint32_t b = 0; b < nb; b++) {
        double x = ceil((double)nb / (double)(nb - b) *
                        pow((double)c->pruner.reduction_factor, (double)(nb - 1 - b)));
        w[b] = (uint64_t)(x < 1e12 ? x : 1e12);
    }
}

/* The Hyperband bracket of trial `id`: a seeded hash weighted by the
 * brackets' sizes (0 for other pruners). */
static uint32_t bracket_of(const mb_optim_config *c, uint32_t nb, const uint64_t *w, uint64_t id)
{
    if (c->pruner.kind != MB_OPTIM_PRUNE_HYPERBAND || nb < 2)
        return 0;
    uint64_t total = 0;
    for (uint32_t b = 0; b < nb; b++)
        total += w[b];
    uint64_t h = optim_mix(c->seed ^ 0x4879706572ull, id) % total;
    for (uint32_t b = 0; b < nb; b++) {
        if (h < w[b])
            return b;
        h -= w[b];
    }
    return 0;
}

int optim_pruner_init(mb_optim *o, mb_error *err)
{
    const mb_optim_config *c = &o->cfg;
    uint32_t nb;
    o->nbrackets = 0;
    int rv = pruner_check(c, &nb, err);
    if (rv != MB_OK || nb == 0)
        return rv;
    o->nbrackets = nb;
    o->rungs = calloc((size_t)nb * OPTIM_MAX_RUNGS, sizeof(*o->rungs));
    o->bracket_weight = calloc(nb, sizeof(uint64_t));
    if (o->rungs == NULL || o->bracket_weight == NULL) {
        optim_pruner_free(o);
        return mb_errorf(err, MB_ENOMEM, "pruner");
    }
    bracket_weights(c, nb, o->bracket_weight);
    return MB_OK;
}

void optim_pruner_free(mb_optim *o)
{
    if (o->rungs != NULL)
        for (size_t i = 0; i < (size_t)o->nbrackets * OPTIM_MAX_RUNGS; i++)
            free(o->rungs[i].vals);
    free(o->rungs);
    free(o->bracket_weight);
    o->rungs = NULL;
    o->bracket_weight = NULL;
}

void optim_pruner_new_trial(mb_optim *o, struct optim_trial *t)
{
    t->next_rung = 0;
    t->bracket = bracket_of(&o->cfg, o->nbrackets, o->bracket_weight, t->id);
}

/* Value of a trial at exactly `step`, if it reported one. */
static int value_at(const struct optim_trial *t, uint64_t step, double *out)
{
    size_t lo = 0, hi = t->nint;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->steps[mid] < step)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->nint && t->steps[lo] == step) {
        *out = t->ivals[lo];
        return 1;
    }
    return 0;
}

static int median_decide(mb_optim *o, struct optim_trial *t)
{
    const mb_optim_config *c = &o->cfg;
    uint64_t step = t->steps[t->nint - 1];
    if (o->ncomplete < c->pruner.n_startup_trials || step < c->pruner.n_warmup_steps)
        return 0;
    double *v = malloc(o->ncomplete * sizeof(double) + 1);
    if (v == NULL)
        return 0; /* out of memory: never prune on a guess */
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        const struct optim_trial *u = &o->trials[i];
        if (u->state == MB_OPTIM_COMPLETE && value_at(u, step, &v[n]))
            n++;
    }
    int prune = 0;
    if (n >= c->pruner.n_min_trials && n > 0) {
        double med = optim_percentile(v, n, 50.0);
        double best = t->ivals[0];
        for (size_t i = 1; i < t->nint; i++)
            best = fmin(best, t->ivals[i]);
        prune = best > med;
    }
    free(v);
    return prune;
}

/* Promotable: among the values recorded at the rung (this one included),
 * `value` is within the best floor(n/eta) (at least the best one). */
static int promotable(double value, const struct optim_rung *r, uint32_t eta)
{
    size_t k = r->n / eta; /* number of promotions the rung allows */
    if (k == 0)
        k = 1;
    size_t better = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->vals[i] < value)
            better++;
    return better < k;
}

static int asha_decide(mb_optim *o, struct optim_trial *t)
{
    const mb_optim_config *c = &o->cfg;
    uint64_t step = t->steps[t->nint - 1];
    double value = t->ivals[t->nint - 1];
    uint32_t eta = c->pruner.reduction_factor;
    uint32_t s =
        c->pruner.kind == MB_OPTIM_PRUNE_HYPERBAND ? t->bracket : c->pruner.min_early_stopping_rate;
    while (t->next_rung < OPTIM_MAX_RUNGS) {
        double need = (double)c->pruner.min_resource * pow((double)eta, (double)(s + t->next_rung));
        if ((double)step < need)
            return 0;
        if (c->pruner.kind == MB_OPTIM_PRUNE_HYPERBAND && need >= (double)c->pruner.max_resource)
            return 0; /* reached the full budget: never stopped */
        struct optim_rung *r = &o->rungs[(size_t)t->bracket * OPTIM_MAX_RUNGS + t->next_rung];
        if (optim_grow((void **)&r->vals, &r->cap, r->n + 1, sizeof(double)) != MB_OK)
            return 0;
        r->vals[r->n++] = value;
        t->next_rung++;
        if (!promotable(value, r, eta))
            return 1;
    }
    return 0;
}

int optim_pruner_decide(mb_optim *o, struct optim_trial *t)
{
    switch (o->cfg.pruner.kind) {
    case MB_OPTIM_PRUNE_MEDIAN:
        return median_decide(o, t);
    case MB_OPTIM_PRUNE_ASHA:
    case MB_OPTIM_PRUNE_HYPERBAND:
        return asha_decide(o, t);
    default:
        return 0;
    }
}

/* ---- Stateless decisions (mb_optim_prune_decide) ---- */

int mb_optim_pruner_check(const mb_optim_config *cfg, mb_error *err)
{
    uint32_t nb;
    if (cfg == NULL)
        return mb_errorf(err, MB_EINVAL, "pruner: NULL configuration");
    return pruner_check(cfg, &nb, err);
}

/* Sign-adjusted (minimised) value. */
static double adj(const mb_optim_config *c, double v)
{
    return c->maximize ? -v : v;
}

static int curve_value_at(const mb_optim_curve *u, uint64_t step, double *out)
{
    size_t lo = 0, hi = u->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (u->steps[mid] < step)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < u->n && u->steps[lo] == step) {
        *out = u->values[lo];
        return 1;
    }
    return 0;
}

/* The first value of `u` at a step >= `need`, if any. */
static int curve_first_from(const mb_optim_curve *u, uint64_t need, double *out)
{
    size_t lo = 0, hi = u->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (u->steps[mid] < need)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < u->n) {
        *out = u->values[lo];
        return 1;
    }
    return 0;
}

static int median_stateless(const mb_optim_config *c, const mb_optim_curve *cv, size_t n,
                            size_t self, int *prune, mb_error *err)
{
    const mb_optim_curve *t = &cv[self];
    uint64_t step = t->steps[t->n - 1];
    size_t ncomplete = 0;
    for (size_t i = 0; i < n; i++)
        ncomplete += i != self && cv[i].complete;
    if (ncomplete < c->pruner.n_startup_trials || step < c->pruner.n_warmup_steps || ncomplete == 0)
        return MB_OK;
    double *v = malloc(ncomplete * sizeof(double));
    if (v == NULL)
        return mb_errorf(err, MB_ENOMEM, "pruner");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i != self && cv[i].complete && curve_value_at(&cv[i], step, &v[k]))
            v[k] = adj(c, v[k]), k++;
    if (k >= c->pruner.n_min_trials && k > 0) {
        double med = optim_percentile(v, k, 50.0);
        double best = adj(c, t->values[0]);
        for (size_t i = 1; i < t->n; i++)
            best = fmin(best, adj(c, t->values[i]));
        *prune = best > med;
    }
    free(v);
    return MB_OK;
}

static int asha_stateless(const mb_optim_config *c, uint32_t nb, const mb_optim_curve *cv, size_t n,
                          size_t self, int *prune, mb_error *err)
{
    uint64_t w[MAX_BRACKETS];
    bracket_weights(c, nb, w);
    const mb_optim_curve *t = &cv[self];
    uint64_t step = t->steps[t->n - 1];
    int has_prev = t->n > 1;
    uint64_t prev = has_prev ? t->steps[t->n - 2] : 0;
    double value = adj(c, t->values[t->n - 1]);
    uint32_t eta = c->pruner.reduction_factor;
    uint32_t bracket = bracket_of(c, nb, w, t->id);
    uint32_t s =
        c->pruner.kind == MB_OPTIM_PRUNE_HYPERBAND ? bracket : c->pruner.min_early_stopping_rate;
    double *vals = malloc((n + 1) * sizeof(double));
    if (vals == NULL)
        return mb_errorf(err, MB_ENOMEM, "pruner");
    for (uint32_t k = 0; k < OPTIM_MAX_RUNGS; k++) {
        double need = (double)c->pruner.min_resource * pow((double)eta, (double)(s + k));
        if ((double)step < need)
            break;
        if (c->pruner.kind == MB_OPTIM_PRUNE_HYPERBAND && need >= (double)c->pruner.max_resource)
            break; /* reached the full budget: never stopped */
        if (has_prev && (double)prev >= need)
            continue; /* passed this rung at an earlier report */
        /* The rung as recorded so far: every trial of the bracket that
         * reached it, with its value when it did; then this one. */
        uint64_t ineed = (uint64_t)need;
        struct optim_rung r = { .vals = vals, .n = 0, .cap = n + 1 };
        for (size_t i = 0; i < n; i++) {
            if (i == self || cv[i].n == 0 || cv[i].steps[cv[i].n - 1] < ineed)
                continue;
            if (c->pruner.kind == MB_OPTIM_PRUNE_HYPERBAND &&
                bracket_of(c, nb, w, cv[i].id) != bracket)
                continue;
            double x;
            if (curve_first_from(&cv[i], ineed, &x))
                vals[r.n++] = adj(c, x);
        }
        vals[r.n++] = value;
        if (!promotable(value, &r, eta)) {
            *prune = 1;
            break;
        }
    }
    free(vals);
    return MB_OK;
}

int mb_optim_prune_decide(const mb_optim_config *cfg, const mb_optim_curve *curves, size_t n,
                          size_t self, int *prune, mb_error *err)
{
    uint32_t nb;
    if (cfg == NULL || curves == NULL || prune == NULL || self >= n)
        return mb_errorf(err, MB_EINVAL, "prune decision: bad argument");
    *prune = 0;
    int rv = pruner_check(cfg, &nb, err);
    if (rv != MB_OK)
        return rv;
    const mb_optim_curve *t = &curves[self];
    if (t->n == 0 || t->complete)
        return MB_OK;
    for (size_t k = 0; k < t->n; k++)
        if ((k > 0 && t->steps[k] <= t->steps[k - 1]) || !isfinite(t->values[k]))
            return mb_errorf(err, MB_EINVAL,
                             "prune decision: steps that do not increase or a value that is not "
                             "finite");
    switch (cfg->pruner.kind) {
    case MB_OPTIM_PRUNE_MEDIAN:
        return median_stateless(cfg, curves, n, self, prune, err);
    case MB_OPTIM_PRUNE_ASHA:
    case MB_OPTIM_PRUNE_HYPERBAND:
        return asha_stateless(cfg, nb, curves, n, self, prune, err);
    default:
        return MB_OK;
    }
}
