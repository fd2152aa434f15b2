/* Tree-structured Parzen Estimator (Bergstra et al. 2011), with Optuna-like
 * defaults: random start-up trials, a "good" set of min(ceil(gamma n),
 * gamma_max) trials, Parzen mixtures with a prior component and magic
 * clipping of kernel widths, n_ei_candidates drawn from l(x) and the one
 * maximising log l(x) - log g(x) kept. Multivariate mode uses one joint
 * mixture (one component per trial); independent mode one per dimension.
 * FLOAT (log in log space) and log-INT use truncated normals, linear INT a
 * discretised truncated normal (mass of each step's cell), CHOICE a
 * categorical kernel that keeps prior mass on every option. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

#define LOG_SQRT_2PI 0.91893853320467274178

/* Transformed bounds of a numeric dimension. */
struct tdim {
    const struct optim_dim *d;
    size_t index;    /* in the space */
    int categorical; /* CHOICE */
    int discrete;    /* linear INT: kernel mass over [y-half, y+half] */
    int logint;      /* log INT: continuous in log space, rounded */
    double low, high, half;
    size_t nc; /* options of a CHOICE */
};

/* A Parzen mixture over `nd` dimensions with m components (last = prior). */
struct parzen {
    size_t m, nd;
    double *logw, *cumw;           /* m */
    double *mu, *isig, *sig, *cst; /* m*nd; cst = -log sigma - log sqrt(2pi) - log Z */
    double **logp;                 /* per dim: m*nc for CHOICE, else NULL */
};

static double ndtr(double z)
{
    return 0.5 * erfc(-z * 0.70710678118654752440);
}

/* log(Phi(b) - Phi(a)) for a < b, accurate in both tails. */
static double log_ndtr_diff(double a, double b)
{
    double p;
    if (a >= 0)
        p = 0.5 * (erfc(a * 0.70710678118654752440) - erfc(b * 0.70710678118654752440));
    else if (b <= 0)
        p = 0.5 * (erfc(-b * 0.70710678118654752440) - erfc(-a * 0.70710678118654752440));
    else
        p = 1.0 - ndtr(a) - ndtr(-b);
    return log(p > 1e-300 ? p : 1e-300);
}

static double tdim_transform(const struct tdim *t, double x)
{
    return (t->d->log_scale && !t->categorical) ? log(x) : x;
}

static void tdim_setup(struct tdim *t, const struct optim_dim *d, size_t index)
{
    memset(t, 0, sizeof(*t));
    t->d = d;
    t->index = index;
    if (d->type == MB_OPTIM_CHOICE) {
        t->categorical = 1;
        t->nc = (size_t)d->nvalues;
    } else if (d->type == MB_OPTIM_INT && d->log_scale) {
        t->logint = 1;
        t->low = log(d->low - 0.5);
        t->high = log(d->high + 0.5);
    } else if (d->type == MB_OPTIM_INT) {
        t->discrete = 1;
        t->half = 0.5 * (double)d->step;
        t->low = d->low - t->half;
        t->high = d->high + t->half;
    } else {
        t->low = d->log_scale ? log(d->low) : d->low;
        t->high = d->log_scale ? log(d->high) : d->high;
    }
}

static void parzen_free(struct parzen *p)
{
    if (p->logp != NULL)
        for (size_t j = 0; j < p->nd; j++)
            free(p->logp[j]);
    free(p->logp);
    free(p->logw);
    free(p->cumw);
    free(p->mu);
    free(p->isig);
    free(p->sig);
    free(p->cst);
    memset(p, 0, sizeof(*p));
}

/* Optuna's default trial weights: flat for fewer than 25 observations,
 * otherwise a ramp from 1/n up to 1 for all but the 25 most recent. */
static double default_weight(size_t i, size_t n)
{
    if (n < 25 || i >= n - 25)
        return 1.0;
    size_t nr = n - 25;
    return nr == 1 ? 1.0 / (double)n
                   : 1.0 / (double)n + (1.0 - 1.0 / (double)n) * (double)i / (double)(nr - 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Build the mixture of `obs` (n trials, in id order) over dims `td`.
 * `univariate` selects neighbour-distance widths (independent mode),
 * otherwise Scott-like widths shrinking with n (multivariate mode). */
static int parzen_build(struct parzen *p, const struct tdim *td, size_t nd, size_t ndims_total,
                        struct optim_trial **obs, size_t n, const mb_optim_config *cfg,
                        int univariate)
{
    size_t m = n + 1;
    memset(p, 0, sizeof(*p));
    p->m = m;
    p->nd = nd;
    p->logw = malloc(m * sizeof(double));
    p->cumw = malloc(m * sizeof(double));
    p->mu = malloc(m * nd * sizeof(double));
    p->isig = malloc(m * nd * sizeof(double));
    p->sig = malloc(m * nd * sizeof(double));
    p->cst = malloc(m * nd * sizeof(double));
    p->logp = calloc(nd, sizeof(double *));
    double *sorted = malloc((m + 2) * sizeof(double));
    if (!p->logw || !p->cumw || !p->mu || !p->isig || !p->sig || !p->cst || !p->logp || !sorted)
        goto nomem;
    double pw = cfg->tpe.prior_weight, wsum = pw;
    for (size_t i = 0; i < n; i++)
        wsum += default_weight(i, n);
    double acc = 0;
    for (size_t i = 0; i < m; i++) {
        double w = (i < n ? default_weight(i, n) : pw) / wsum;
        p->logw[i] = log(w);
        acc += w;
        p->cumw[i] = acc;
    }
    p->cumw[m - 1] = 1.0;
    for (size_t j = 0; j < nd; j++) {
        const struct tdim *t = &td[j];
        if (t->categorical) {
            size_t nc = t->nc;
            double *lp = malloc(m * nc * sizeof(double));
            if (lp == NULL)
                goto nomem;
            p->logp[j] = lp;
            double base = pw / (double)m;
            for (size_t i = 0; i < m; i++) {
                if (i == n) { /* prior: uniform */
                    for (size_t c = 0; c < nc; c++)
                        lp[i * nc + c] = -log((double)nc);
                    continue;
                }
                size_t obs_c = (size_t)obs[i]->x[t->index];
                double tot = base * (double)nc + 1.0;
                for (size_t c = 0; c < nc; c++)
                    lp[i * nc + c] = log((base + (c == obs_c ? 1.0 : 0.0)) / tot);
            }
            continue;
        }
        double range = t->high - t->low;
        double *mu = p->mu + 0, *sig = p->sig;
        for (size_t i = 0; i < n; i++)
            mu[i * nd + j] = tdim_transform(t, obs[i]->x[t->index]);
        double prior_mu = 0.5 * (t->low + t->high);
        mu[n * nd + j] = prior_mu;
        if (!univariate) {
            double s =
                0.2 * pow((double)(n > 1 ? n : 1), -1.0 / ((double)ndims_total + 4.0)) * range;
            for (size_t i = 0; i < n; i++)
                sig[i * nd + j] = s;
        } else {
            /* widths from neighbour distances among the sorted means (with the
             * prior mean) and the bounds; ends use their inner gap */
            for (size_t i = 0; i < m; i++)
                sorted[i + 1] = mu[i * nd + j];
            qsort(sorted + 1, m, sizeof(double), cmp_double);
            sorted[0] = t->low;
            sorted[m + 1] = t->high;
            for (size_t i = 0; i < n; i++) {
                double y = mu[i * nd + j];
                size_t lo = 1, hi = m; /* find y among sorted[1..m] */
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (sorted[mid] < y)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                double left = sorted[lo] - sorted[lo - 1], right = sorted[lo + 1] - sorted[lo];
                if (m + 2 >= 4 && lo == 1)
                    left = right = sorted[2] - sorted[1];
                if (m + 2 >= 4 && lo == m)
                    left = right = sorted[m] - sorted[m - 1];
                sig[i * nd + j] = left > right ? left : right;
            }
        }
        sig[n * nd + j] = range;
        double minsig = cfg->tpe.magic_clip ? range / fmin(100.0, 1.0 + (double)m) : 1e-12 * range;
        for (size_t i = 0; i < m; i++) {
            double s = sig[i * nd + j];
            s = s < minsig ? minsig : (s > range ? range : s);
            if (!(s > 0))
                s = range > 0 ? range : 1.0;
            double u = mu[i * nd + j];
            sig[i * nd + j] = s;
            p->isig[i * nd + j] = 1.0 / s;
            p->cst[i * nd + j] =
                -log(s) - LOG_SQRT_2PI - log_ndtr_diff((t->low - u) / s, (t->high - u) / s);
        }
    }
    free(sorted);
    return MB_OK;
nomem:
    free(sorted);
    parzen_free(p);
    return MB_ENOMEM;
}

/* Log density of component i in dimension j at transformed value y. */
static double comp_logpdf(const struct parzen *p, const struct tdim *t, size_t i, size_t j,
                          double y)
{
    size_t k = i * p->nd + j;
    if (t->categorical)
        return p->logp[j][i * t->nc + (size_t)y];
    double u = p->mu[k], is = p->isig[k];
    if (t->discrete) {
        /* cst holds -log s - log sqrt(2pi) - log Z: undo the density terms */
        double logz = -p->cst[k] - log(p->sig[k]) - LOG_SQRT_2PI;
        return log_ndtr_diff((y - t->half - u) * is, (y + t->half - u) * is) - logz;
    }
    double z = (y - u) * is;
    return -0.5 * z * z + p->cst[k];
}

/* log sum_i w_i prod_j p_ij(y_j) over the mixture; `tmp` has m doubles. */
static double mixture_logpdf(const struct parzen *p, const struct tdim *td, const double *y,
                             double *tmp)
{
    double mx = -INFINITY;
    for (size_t i = 0; i < p->m; i++) {
        double s = p->logw[i];
        for (size_t j = 0; j < p->nd; j++)
            s += comp_logpdf(p, &td[j], i, j, y[j]);
        tmp[i] = s;
        if (s > mx)
            mx = s;
    }
    double acc = 0;
    for (size_t i = 0; i < p->m; i++)
        acc += exp(tmp[i] - mx);
    return mx + log(acc);
}

static size_t pick_component(const struct parzen *p, optim_rng *rng)
{
    double r = optim_rng_uniform(rng);
    size_t lo = 0, hi = p->m - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->cumw[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Draw dimension j from component i; returns the transformed value of a
 * valid configuration value, which goes to *x. */
static double comp_sample(const struct parzen *p, const struct tdim *t, size_t i, size_t j,
                          optim_rng *rng, double *x)
{
    if (t->categorical) {
        double r = optim_rng_uniform(rng), acc = 0;
        size_t c = 0;
        for (; c + 1 < t->nc; c++) {
            acc += exp(p->logp[j][i * t->nc + c]);
            if (r < acc)
                break;
        }
        *x = (double)c;
        return (double)c;
    }
    size_t k = i * p->nd + j;
    double y = p->mu[k];
    int ok = 0;
    for (int tries = 0; tries < 100 && !ok; tries++) {
        y = p->mu[k] + p->sig[k] * optim_rng_normal(rng);
        ok = y >= t->low && y <= t->high;
    }
    if (!ok)
        y = t->low + optim_rng_uniform(rng) * (t->high - t->low);
    if (t->discrete || t->d->type == MB_OPTIM_INT) {
        double v = t->logint ? floor(exp(y) + 0.5) : y;
        *x = optim_dim_snap(t->d, v);
        return t->logint ? log(*x) : *x;
    }
    double v = t->d->log_scale ? exp(y) : y;
    *x = optim_dim_snap(t->d, v);
    return t->d->log_scale ? log(*x) : *x;
}

struct tpe_state {
    int unused;
};

static int tpe_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    *state = calloc(1, sizeof(struct tpe_state));
    return *state ? MB_OK : mb_errorf(err, MB_ENOMEM, "tpe");
}

static void tpe_free(void *state)
{
    free(state);
}

/* Order: completed by value, then pruned by (deepest step, best last value). */
static int cmp_rank(const void *a, const void *b)
{
    const struct optim_trial *x = *(struct optim_trial *const *)a;
    const struct optim_trial *y = *(struct optim_trial *const *)b;
    int xc = x->state == MB_OPTIM_COMPLETE, yc = y->state == MB_OPTIM_COMPLETE;
    if (xc != yc)
        return yc - xc;
    if (xc) {
        if (x->value != y->value)
            return x->value < y->value ? -1 : 1;
    } else {
        uint64_t xs = x->nint ? x->steps[x->nint - 1] : 0, ys = y->nint ? y->steps[y->nint - 1] : 0;
        if (xs != ys)
            return xs > ys ? -1 : 1;
        double xv = x->nint ? x->ivals[x->nint - 1] : INFINITY;
        double yv = y->nint ? y->ivals[y->nint - 1] : INFINITY;
        if (xv != yv)
            return xv < yv ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_id(const void *a, const void *b)
{
    const struct optim_trial *x = *(struct optim_trial *const *)a;
    const struct optim_trial *y = *(struct optim_trial *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Sample n_ei candidates of dims td[0..nd) from l, keep the best by
 * log l - log g, and write it into x. */
static int tpe_sample_block(mb_optim *o, const struct tdim *td, size_t nd,
                            struct optim_trial **below, size_t nb, struct optim_trial **above,
                            size_t na, int univariate, optim_rng *rng, double *x)
{
    struct parzen l, g;
    size_t D = o->space->n;
    if (parzen_build(&l, td, nd, D, below, nb, &o->cfg, univariate) != MB_OK)
        return MB_ENOMEM;
    if (parzen_build(&g, td, nd, D, above, na, &o->cfg, univariate) != MB_OK) {
        parzen_free(&l);
        return MB_ENOMEM;
    }
    double *tmp = malloc((l.m > g.m ? l.m : g.m) * sizeof(double));
    if (tmp == NULL) {
        parzen_free(&l);
        parzen_free(&g);
        return MB_ENOMEM;
    }
    double y[MB_OPTIM_MAX_DIMS], cx[MB_OPTIM_MAX_DIMS], best = -INFINITY;
    for (uint32_t c = 0; c < o->cfg.tpe.n_ei_candidates; c++) {
        size_t comp = pick_component(&l, rng);
        for (size_t j = 0; j < nd; j++)
            y[j] = comp_sample(&l, &td[j], comp, j, rng, &cx[j]);
        double score = mixture_logpdf(&l, td, y, tmp) - mixture_logpdf(&g, td, y, tmp);
        if (c == 0 || score > best) {
            best = score;
            for (size_t j = 0; j < nd; j++)
                x[td[j].index] = cx[j];
        }
    }
    free(tmp);
    parzen_free(&l);
    parzen_free(&g);
    return MB_OK;
}

static int tpe_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                       mb_error *err)
{
    size_t nobs = 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->trials[i].state == MB_OPTIM_COMPLETE || o->trials[i].state == MB_OPTIM_PRUNED)
            nobs++;
    if (nobs < o->cfg.tpe.n_startup_trials || nobs == 0)
        return optim_random_ops.suggest(o, NULL, t, rng, err);
    struct optim_trial **ranked = malloc(nobs * sizeof(*ranked));
    if (ranked == NULL)
        return mb_errorf(err, MB_ENOMEM, "tpe");
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->trials[i].state == MB_OPTIM_COMPLETE || o->trials[i].state == MB_OPTIM_PRUNED)
            ranked[k++] = &o->trials[i];
    qsort(ranked, nobs, sizeof(*ranked), cmp_rank);
    size_t nb = (size_t)ceil(o->cfg.tpe.gamma * (double)nobs);
    if (nb > o->cfg.tpe.gamma_max)
        nb = o->cfg.tpe.gamma_max;
    if (nb < 1)
        nb = 1;
    if (nb > nobs)
        nb = nobs;
    struct optim_trial **below = ranked, **above = ranked + nb;
    size_t na = nobs - nb;
    qsort(below, nb, sizeof(*ranked), cmp_id);
    qsort(above, na, sizeof(*ranked), cmp_id);
    struct tdim td[MB_OPTIM_MAX_DIMS];
    size_t D = o->space->n;
    for (size_t j = 0; j < D; j++)
        tdim_setup(&td[j], &o->space->dims[j], j);
    int rv = MB_OK;
    if (o->cfg.tpe.multivariate) {
        rv = tpe_sample_block(o, td, D, below, nb, above, na, 0, rng, t->x);
    } else {
        for (size_t j = 0; j < D && rv == MB_OK; j++)
            rv = tpe_sample_block(o, &td[j], 1, below, nb, above, na, 1, rng, t->x);
    }
    free(ranked);
    return rv == MB_OK ? MB_OK : mb_errorf(err, rv, "tpe");
}

const struct optim_strategy_ops optim_tpe_ops = { tpe_init, tpe_suggest, NULL, tpe_free };
