/* CMA-ES (Hansen's (mu/mu_w, lambda) with rank-one and rank-mu updates and
 * cumulative step-size adaptation) in the unit cube of the space, with
 * resample-then-clip bounds handling and optional IPOP restarts.
 * FLOAT and INT dimensions get one coordinate each (INT by equal-width
 * cells, log scale in log space); a CHOICE of up to OPTIM_CMA_ONEHOT
 * options gets one coordinate per option and takes the argmax, larger
 * choices one coordinate cut into cells. A generation is updated as soon
 * as lambda of its trials completed; failed, pruned and late trials are
 * not used, so parallel and failing trials never block it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

#define OPTIM_CMA_ONEHOT 8
#define OPTIM_CMA_MAXD   (MB_OPTIM_MAX_DIMS * OPTIM_CMA_ONEHOT)

struct cma_state {
    uint32_t arm;
    size_t D;
    size_t off[MB_OPTIM_MAX_DIMS], width[MB_OPTIM_MAX_DIMS];
    uint32_t lambda, mu, lambda0;
    double *w; /* mu weights */
    double mueff, cs, ds, cc, c1, cmu, chin, sigma, sigma0;
    double *m, *pc, *ps, *C, *B, *Dv, *tmp, *tmp2;
    uint32_t gen, restart;
    uint64_t seed;
};

static void cma_free(void *state)
{
    struct cma_state *s = state;
    if (s == NULL)
        return;
    free(s->w);
    free(s->m);
    free(s->pc);
    free(s->ps);
    free(s->C);
    free(s->B);
    free(s->Dv);
    free(s->tmp);
    free(s->tmp2);
    free(s);
}

/* Eigen-decomposition of the symmetric D x D matrix A (cyclic Jacobi):
 * columns of V are eigenvectors, ev the eigenvalues. A is destroyed. */
static void jacobi_eigen(double *A, size_t n, double *V, double *ev)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            V[i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0, diag = 0;
        for (size_t i = 0; i < n; i++) {
            diag += A[i * n + i] * A[i * n + i];
            for (size_t j = i + 1; j < n; j++)
                off += A[i * n + j] * A[i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0)
            break;
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++) {
                double apq = A[p * n + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double theta = (A[q * n + q] - A[p * n + p]) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < n; k++) {
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < n; k++) {
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < n; k++) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (size_t i = 0; i < n; i++)
        ev[i] = A[i * n + i];
}

/* (Re)start the search distribution with population lambda around mean m0. */
static int cma_start(struct cma_state *s, uint32_t lambda, const double *m0)
{
    size_t D = s->D;
    lambda = lambda < 2 ? 2 : lambda;
    double *w = malloc((lambda / 2) * sizeof(double));
    if (w == NULL)
        return MB_ENOMEM;
    free(s->w);
    s->w = w;
    s->lambda = lambda;
    s->mu = lambda / 2;
    double sum = 0, sum2 = 0;
    for (uint32_t i = 0; i < s->mu; i++) {
        s->w[i] = log((s->lambda + 1.0) / 2.0) - log(i + 1.0);
        sum += s->w[i];
    }
    for (uint32_t i = 0; i < s->mu; i++) {
        s->w[i] /= sum;
        sum2 += s->w[i] * s->w[i];
    }
    double n = (double)D, me = 1.0 / sum2;
    s->mueff = me;
    s->cs = (me + 2.0) / (n + me + 5.0);
    s->ds = 1.0 + 2.0 * fmax(0.0, sqrt((me - 1.0) / (n + 1.0)) - 1.0) + s->cs;
    s->cc = (4.0 + me / n) / (n + 4.0 + 2.0 * me / n);
    s->c1 = 2.0 / ((n + 1.3) * (n + 1.3) + me);
    s->cmu = fmin(1.0 - s->c1, 2.0 * (me - 2.0 + 1.0 / me) / ((n + 2.0) * (n + 2.0) + me));
    s->chin = sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n));
    s->sigma = s->sigma0;
    for (size_t i = 0; i < D; i++) {
        s->m[i] = m0[i];
        s->pc[i] = s->ps[i] = 0;
        s->Dv[i] = 1.0;
        for (size_t j = 0; j < D; j++)
            s->C[i * D + j] = s->B[i * D + j] = i == j ? 1.0 : 0.0;
    }
    s->gen = 0;
    return MB_OK;
}

static int cma_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    struct cma_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "cmaes");
    s->arm = arm;
    s->seed = o->cfg.seed;
    for (size_t i = 0; i < o->space->n; i++) {
        const struct optim_dim *d = &o->space->dims[i];
        s->off[i] = s->D;
        s->width[i] =
            (d->type == MB_OPTIM_CHOICE && d->nvalues <= OPTIM_CMA_ONEHOT) ? (size_t)d->nvalues : 1;
        s->D += s->width[i];
    }
    size_t D = s->D;
    s->m = calloc(D, sizeof(double));
    s->pc = calloc(D, sizeof(double));
    s->ps = calloc(D, sizeof(double));
    s->Dv = calloc(D, sizeof(double));
    s->tmp = calloc(D, sizeof(double));
    s->tmp2 = calloc(D, sizeof(double));
    s->C = calloc(D * D, sizeof(double));
    s->B = calloc(D * D, sizeof(double));
    s->sigma0 = o->cfg.cmaes.sigma0 > 0 ? o->cfg.cmaes.sigma0 : 0.1;
    s->lambda0 = o->cfg.cmaes.popsize;
    if (s->lambda0 == 0) {
        /* Hansen's 4 + 3 ln D, but small enough for ~25 generations within
         * the budget: small budgets favour more, smaller generations. */
        uint32_t hansen = 4 + (uint32_t)floor(3.0 * log((double)D));
        uint32_t by_budget = o->cfg.max_trials / 25;
        s->lambda0 = hansen < by_budget ? hansen : (by_budget > 4 ? by_budget : 4);
    }
    if (!s->m || !s->pc || !s->ps || !s->Dv || !s->tmp || !s->tmp2 || !s->C || !s->B)
        goto nomem;
    for (size_t i = 0; i < D; i++)
        s->tmp[i] = 0.5;
    if (cma_start(s, s->lambda0, s->tmp) != MB_OK)
        goto nomem;
    *state = s;
    return MB_OK;
nomem:
    cma_free(s);
    return mb_errorf(err, MB_ENOMEM, "cmaes");
}

/* Map an internal vector z in [0,1]^D to a configuration. */
static void cma_decode(const mb_optim *o, const struct cma_state *s, const double *z, double *x)
{
    double u[MB_OPTIM_MAX_DIMS];
    for (size_t i = 0; i < o->space->n; i++) {
        if (s->width[i] == 1) {
            u[i] = z[s->off[i]];
            continue;
        }
        size_t best = 0;
        for (size_t k = 1; k < s->width[i]; k++)
            if (z[s->off[i] + k] > z[s->off[i] + best])
                best = k;
        u[i] = ((double)best + 0.5) / (double)s->width[i];
    }
    optim_space_from_unit(o->space, u, x);
}

static int cma_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                       mb_error *err)
{
    struct cma_state *s = state;
    size_t D = s->D;
    t->aux = malloc(D * sizeof(double));
    if (t->aux == NULL)
        return mb_errorf(err, MB_ENOMEM, "cmaes");
    double *z = s->tmp, *y = t->aux;
    for (int attempt = 0; attempt < 10; attempt++) {
        for (size_t i = 0; i < D; i++)
            z[i] = s->Dv[i] * optim_rng_normal(rng);
        int inside = 1;
        for (size_t i = 0; i < D; i++) {
            double acc = 0;
            for (size_t j = 0; j < D; j++)
                acc += s->B[i * D + j] * z[j];
            y[i] = s->m[i] + s->sigma * acc;
            if (y[i] < 0.0 || y[i] >= 1.0)
                inside = 0;
        }
        if (inside)
            break;
    }
    for (size_t i = 0; i < D; i++)
        y[i] = y[i] < 0.0 ? 0.0 : (y[i] >= 1.0 ? nextafter(1.0, 0.0) : y[i]);
    t->gen = s->gen;
    t->restart = s->restart;
    cma_decode(o, s, y, t->x);
    return MB_OK;
}

static int cmp_trial_value(const void *a, const void *b)
{
    const struct optim_trial *x = *(struct optim_trial *const *)a;
    const struct optim_trial *y = *(struct optim_trial *const *)b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void cma_update(struct cma_state *s, struct optim_trial **sel)
{
    size_t D = s->D;
    double *old = s->tmp, *yw = s->tmp2;
    for (size_t i = 0; i < D; i++) {
        old[i] = s->m[i];
        double acc = 0;
        for (uint32_t k = 0; k < s->mu; k++)
            acc += s->w[k] * sel[k]->aux[i];
        s->m[i] = acc;
        yw[i] = (acc - old[i]) / s->sigma;
    }
    /* C^{-1/2} yw = B diag(1/Dv) B^T yw */
    double bt[OPTIM_CMA_MAXD], cinv[OPTIM_CMA_MAXD];
    for (size_t j = 0; j < D; j++) {
        double acc = 0;
        for (size_t i = 0; i < D; i++)
            acc += s->B[i * D + j] * yw[i];
        bt[j] = acc / s->Dv[j];
    }
    double psn = 0;
    for (size_t i = 0; i < D; i++) {
        double acc = 0;
        for (size_t j = 0; j < D; j++)
            acc += s->B[i * D + j] * bt[j];
        cinv[i] = acc;
        s->ps[i] = (1 - s->cs) * s->ps[i] + sqrt(s->cs * (2 - s->cs) * s->mueff) * cinv[i];
        psn += s->ps[i] * s->ps[i];
    }
    psn = sqrt(psn);
    double n = (double)D;
    double norm = sqrt(1 - pow(1 - s->cs, 2.0 * (s->gen + 1)));
    int hsig = psn / norm / s->chin < 1.4 + 2.0 / (n + 1.0);
    for (size_t i = 0; i < D; i++)
        s->pc[i] =
            (1 - s->cc) * s->pc[i] + (hsig ? sqrt(s->cc * (2 - s->cc) * s->mueff) : 0) * yw[i];
    double a = 1 - s->c1 - s->cmu + (hsig ? 0 : s->c1 * s->cc * (2 - s->cc));
    for (size_t i = 0; i < D; i++)
        for (size_t j = 0; j <= i; j++) {
            double r = 0;
            for (uint32_t k = 0; k < s->mu; k++)
                r += s->w[k] * (sel[k]->aux[i] - old[i]) * (sel[k]->aux[j] - old[j]);
            r /= s->sigma * s->sigma;
            double v = a * s->C[i * D + j] + s->c1 * s->pc[i] * s->pc[j] + s->cmu * r;
            s->C[i * D + j] = s->C[j * D + i] = v;
        }
    s->sigma *= exp((s->cs / s->ds) * (psn / s->chin - 1));
    if (s->sigma > 1.0)
        s->sigma = 1.0;
    double *A = malloc(D * D * sizeof(double));
    if (A != NULL) { /* on OOM keep the previous basis */
        memcpy(A, s->C, D * D * sizeof(double));
        jacobi_eigen(A, D, s->B, s->Dv);
        free(A);
        for (size_t i = 0; i < D; i++)
            s->Dv[i] = sqrt(s->Dv[i] > 1e-300 ? s->Dv[i] : 1e-300);
    }
    s->gen++;
}

static int cma_stalled(const struct cma_state *s, struct optim_trial **sel)
{
    double dmax = 0, dmin = INFINITY;
    for (size_t i = 0; i < s->D; i++) {
        dmax = fmax(dmax, s->Dv[i]);
        dmin = fmin(dmin, s->Dv[i]);
    }
    if (s->sigma * dmax < 1e-6 || dmax > 1e7 * dmin)
        return 1;
    return sel[0]->value == sel[s->lambda - 1]->value; /* flat fitness */
}

static void cma_finished(mb_optim *o, void *state, struct optim_trial *t)
{
    struct cma_state *s = state;
    if (t->state != MB_OPTIM_COMPLETE || t->aux == NULL || t->arm != s->arm || t->gen != s->gen ||
        t->restart != s->restart)
        return;
    struct optim_trial *sel[4096];
    size_t k = 0;
    for (size_t i = 0; i < o->n && k < s->lambda && k < 4096; i++) {
        struct optim_trial *u = &o->trials[i];
        if (u->state == MB_OPTIM_COMPLETE && u->aux != NULL && u->arm == s->arm &&
            u->gen == s->gen && u->restart == s->restart)
            sel[k++] = u;
    }
    if (k < s->lambda && k < 4096)
        return;
    qsort(sel, k, sizeof(sel[0]), cmp_trial_value);
    int stalled = cma_stalled(s, sel);
    cma_update(s, sel);
    if ((stalled || cma_stalled(s, sel)) && o->cfg.cmaes.restarts) {
        optim_rng rng;
        optim_rng_seed(&rng, s->seed, 0xC3A0000ull + s->restart + ((uint64_t)s->arm << 32));
        for (size_t i = 0; i < s->D; i++)
            s->tmp[i] = optim_rng_uniform(&rng);
        uint32_t lambda = s->lambda > 2048 ? 4096 : s->lambda * 2;
        if (cma_start(s, lambda, s->tmp) == MB_OK) /* on OOM: go on without restart */
            s->restart++;
    }
}

const struct optim_strategy_ops optim_cmaes_ops = { cma_init, cma_suggest, cma_finished, cma_free };
