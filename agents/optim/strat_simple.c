/* The model-free strategies: uniform random, exhaustive grid, and the
 * scrambled Sobol and Halton sequences mapped through the unit cube. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

/* ---- random ---- */

static int random_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    *state = NULL;
    return MB_OK;
}

static int random_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                          mb_error *err)
{
    double u[MB_OPTIM_MAX_DIMS];
    for (size_t i = 0; i < o->space->n; i++)
        u[i] = optim_rng_uniform(rng);
    optim_space_from_unit(o->space, u, t->x);
    return MB_OK;
}

static void nothing_free(void *state)
{
}

const struct optim_strategy_ops optim_random_ops = { random_init, random_suggest, NULL,
                                                     nothing_free };

/* ---- grid ---- */

struct grid_state {
    double *vals[MB_OPTIM_MAX_DIMS];
    size_t count[MB_OPTIM_MAX_DIMS];
    uint64_t total, next;
};

static void grid_free(void *state)
{
    struct grid_state *g = state;
    for (size_t i = 0; i < MB_OPTIM_MAX_DIMS; i++)
        free(g->vals[i]);
    free(g);
}

/* Grid values of one dimension, increasing and distinct, into g->vals[i]. */
static int grid_dim(struct grid_state *g, size_t i, const struct optim_dim *d, uint32_t points)
{
    size_t n = d->type == MB_OPTIM_FLOAT ? points
               : (d->nvalues <= points)  ? (size_t)d->nvalues
                                         : points;
    double *v = calloc(n, sizeof(double));
    if (v == NULL)
        return MB_ENOMEM;
    size_t k = 0;
    if (d->type != MB_OPTIM_FLOAT && d->nvalues <= points) {
        for (; k < n; k++)
            v[k] = d->type == MB_OPTIM_INT ? d->low + (double)k * (double)d->step : (double)k;
    } else {
        int logs = d->log_scale;
        double lo = logs ? log(d->low) : d->low, hi = logs ? log(d->high) : d->high;
        for (size_t j = 0; j < n; j++) {
            double t = n == 1 ? 0.5 : (double)j / (double)(n - 1);
            double x = lo + t * (hi - lo);
            x = logs ? exp(x) : x;
            if (j == n - 1 && n > 1)
                x = d->high;
            if (j == 0 && n > 1)
                x = d->low;
            x = optim_dim_snap(d, x);
            if (k == 0 || x > v[k - 1])
                v[k++] = x;
        }
    }
    g->vals[i] = v;
    g->count[i] = k;
    return MB_OK;
}

static int grid_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    struct grid_state *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return mb_errorf(err, MB_ENOMEM, "grid");
    g->total = 1;
    for (size_t i = 0; i < o->space->n; i++) {
        if (grid_dim(g, i, &o->space->dims[i], o->cfg.grid.points_per_dim) != MB_OK) {
            grid_free(g);
            return mb_errorf(err, MB_ENOMEM, "grid");
        }
        if (g->total > (UINT64_C(1) << 53) / g->count[i]) {
            grid_free(g);
            return mb_errorf(err, MB_EINVAL, "grid: more than 2^53 points");
        }
        g->total *= g->count[i];
    }
    *state = g;
    return MB_OK;
}

static int grid_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                        mb_error *err)
{
    struct grid_state *g = state;
    if (g->next >= g->total)
        return mb_errorf(err, MB_ERANGE, "grid: all %llu points suggested",
                         (unsigned long long)g->total);
    uint64_t idx = g->next++;
    for (size_t i = o->space->n; i-- > 0;) { /* first dimension varies slowest */
        t->x[i] = g->vals[i][idx % g->count[i]];
        idx /= g->count[i];
    }
    return MB_OK;
}

const struct optim_strategy_ops optim_grid_ops = { grid_init, grid_suggest, NULL, grid_free };

/* ---- Sobol and Halton ---- */

struct qmc_state {
    int halton;
    optim_sobol sobol;
    optim_halton hal;
    uint64_t next;
};

static void qmc_free(void *state)
{
    struct qmc_state *q = state;
    if (q->halton)
        optim_halton_free(&q->hal);
    else
        optim_sobol_free(&q->sobol);
    free(q);
}

static int qmc_init_kind(mb_optim *o, int halton, void **state, mb_error *err)
{
    struct qmc_state *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return mb_errorf(err, MB_ENOMEM, "qmc");
    q->halton = halton;
    int rv = halton ? optim_halton_init(&q->hal, o->space->n, o->cfg.qmc.scramble, o->cfg.seed)
                    : optim_sobol_init(&q->sobol, o->space->n, o->cfg.qmc.scramble, o->cfg.seed);
    if (rv != MB_OK) {
        free(q);
        return mb_errorf(err, rv, "qmc");
    }
    *state = q;
    return MB_OK;
}

static int sobol_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    return qmc_init_kind(o, 0, state, err);
}

static int halton_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    return qmc_init_kind(o, 1, state, err);
}

static int qmc_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                       mb_error *err)
{
    struct qmc_state *q = state;
    double u[MB_OPTIM_MAX_DIMS];
    if (q->halton)
        optim_halton_point(&q->hal, q->next++, u);
    else
        optim_sobol_point(&q->sobol, q->next++, u);
    optim_space_from_unit(o->space, u, t->x);
    return MB_OK;
}

const struct optim_strategy_ops optim_sobol_ops = { sobol_init, qmc_suggest, NULL, qmc_free };
const struct optim_strategy_ops optim_halton_ops = { halton_init, qmc_suggest, NULL, qmc_free };
