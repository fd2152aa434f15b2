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

int optim_pruner_init(mb_optim *o, mb_error *err)
{
    const mb_optim_config *c = &o->cfg;
    o->nbrackets = 0;
    if (c->pruner.kind == MB_OPTIM_PRUNE_NONE)
        return MB_OK;
    if (c->pruner.kind == MB_OPTIM_PRUNE_MEDIAN) {
        if (c->pruner.n_min_trials < 1)
            return mb_errorf(err, MB_EINVAL, "pruner.n_min_trials must be >= 1");
        return MB_OK;
    }
    if (c->pruner.reduction_factor < 2 || c->pruner.reduction_factor > 1000)
        return mb_errorf(err, MB_EINVAL, "pruner.reduction_factor must be 2..1000");
    if (c->pruner.min_resource < 1)
        return mb_errorf(err, MB_EINVAL, "pruner.min_resource must be >= 1");
    uint32_t nb = 1;
    if (c->pruner.kind == MB_OPTIM_PRUNE_ASHA) {
        if (c->pruner.min_early_stopping_rate >= OPTIM_MAX_RUNGS)
            return mb_errorf(err, MB_EINVAL, "pruner.min_early_stopping_rate must be < %d",
                             OPTIM_MAX_RUNGS);
    } else {
        if (c->pruner.max_resource < c->pruner.min_resource)
            return mb_errorf(err, MB_EINVAL, "pruner.max_resource must be >= min_resource");
        double r = (double)c->pruner.max_resource / (double)c->pruner.min_resource;
        nb = (uint32_t)floor(log(r) / log((double)c->pruner.reduction_factor) + 1e-9) + 1;
        if (nb > 16)
            nb = 16;
    }
    o->nbrackets = nb;
    o->rungs = calloc((size_t)nb * OPTIM_MAX_RUNGS, sizeof(*o->rungs));
    o->bracket_weight = calloc(nb, sizeof(uint64_t));
    if (o->rungs == NULL || o->bracket_weight == NULL) {
        optim_pruner_free(o);
        return mb_errorf(err, MB_ENOMEM, "pruner");
    }
    /* Hyperband: bracket b (early-stopping rate b) starts
     * ceil(nb / (nb - b) * eta^(nb-1-b)) configurations per round. */
    for (uint32_t b = 0; b < nb; b++) {
        double w = ceil((double)nb / (double)(nb - b) *
                        pow((double)c->pruner.reduction_factor, (double)(nb - 1 - b)));
        o->bracket_weight[b] = (uint64_t)(w < 1e12 ? w : 1e12);
    }
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
    t->bracket = 0;
    t->next_rung = 0;
    if (o->cfg.pruner.kind != MB_OPTIM_PRUNE_HYPERBAND || o->nbrackets < 2)
        return;
    uint64_t total = 0;
    for (uint32_t b = 0; b < o->nbrackets; b++)
        total += o->bracket_weight[b];
    uint64_t h = optim_mix(o->cfg.seed ^ 0x4879706572ull, t->id) % total;
    for (uint32_t b = 0; b < o->nbrackets; b++) {
        if (h < o->bracket_weight[b]) {
            t->bracket = b;
            return;
        }
        h -= o->bracket_weight[b];
    }
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
