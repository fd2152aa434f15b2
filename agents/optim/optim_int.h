/* Internal interface of the optimisation library (agents/optim/): the
 * seeded random generator, the space internals, trials, the strategy
 * vtable, pruners, quasi-random sequences and the bandit. Only this module
 * and its unit tests include it; everyone else uses <mabeam/optim.h>. */
#ifndef MB_OPTIM_INT_H
#define MB_OPTIM_INT_H

#include <mabeam/optim.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Random source: xoshiro256** seeded by splitmix64 ---- */

typedef struct optim_rng {
    uint64_t s[4];
} optim_rng;

/* Seed from a 64-bit seed and a stream number (e.g. a trial id). */
void optim_rng_seed(optim_rng *rng, uint64_t seed, uint64_t stream);
uint64_t optim_rng_next(optim_rng *rng);
/* Uniform in [0,1) with 53 random bits. */
double optim_rng_uniform(optim_rng *rng);
/* Uniform integer in [0,n), n > 0, without modulo bias. */
uint64_t optim_rng_below(optim_rng *rng, uint64_t n);
/* Standard normal (Marsaglia polar method). */
double optim_rng_normal(optim_rng *rng);
/* Gamma(shape, 1) for shape >= 1 (Marsaglia-Tsang), and Beta(a, b). */
double optim_rng_gamma(optim_rng *rng, double shape);
double optim_rng_beta(optim_rng *rng, double a, double b);
/* A 64-bit mix of two words (splitmix64 finaliser), for derived seeds. */
uint64_t optim_mix(uint64_t a, uint64_t b);

/* ---- Space ---- */

struct optim_dim {
    char name[MB_OPTIM_MAX_NAME];
    mb_optim_dim_type type;
    int log_scale;
    double low, high; /* FLOAT bounds; INT bounds as doubles */
    int64_t ilow, ihigh, step;
    uint64_t nvalues; /* INT: number of valid values; CHOICE: number of options */
    char **options;   /* CHOICE: owned strings */
};

struct mb_optim_space {
    struct optim_dim *dims;
    size_t n, cap;
};

int optim_space_copy(const mb_optim_space *src, mb_optim_space **out);
/* Map a point of the unit cube (each u in [0,1)) to a valid configuration:
 * FLOAT linear or log-linear, INT and CHOICE by equal-width cells (so each
 * valid value is equally likely under uniform u). */
void optim_space_from_unit(const mb_optim_space *sp, const double *u, double *x);
/* Snap a value of one dimension to the nearest valid value. */
double optim_dim_snap(const struct optim_dim *d, double v);

/* JSON helpers (cJSON trees; the caller owns what is returned). */
struct cJSON;
int optim_space_from_cjson(const struct cJSON *arr, mb_optim_space **out, mb_error *err);
struct cJSON *optim_space_to_cjson(const mb_optim_space *sp);
/* A number printed with 17 significant digits (exact round trip). */
struct cJSON *optim_json_number(double v);

/* ---- Trials ---- */

struct optim_trial {
    uint64_t id;
    mb_optim_trial_state state;
    double value; /* final objective, sign-adjusted (minimise) when COMPLETE */
    double *x;    /* ndims public values, owned */
    double *aux;  /* strategy-private vector (CMA-ES sample), owned or NULL */
    uint32_t arm; /* portfolio arm that suggested it (or 0) */
    uint32_t gen; /* CMA-ES generation tag */
    uint32_t restart;
    /* intermediate values, sign-adjusted, steps strictly increasing */
    uint64_t *steps;
    double *ivals;
    size_t nint, capint;
    uint32_t bracket;   /* Hyperband bracket */
    uint32_t next_rung; /* ASHA: next rung to reach */
};

/* ---- Strategies ---- */

struct optim;
struct optim_strategy_ops {
    /* Create the private state; `arm` is its portfolio arm (0 otherwise). */
    int (*init)(struct mb_optim *o, uint32_t arm, void **state, mb_error *err);
    /* Fill t->x with a valid configuration using `rng` (seeded per trial). */
    int (*suggest)(struct mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                   mb_error *err);
    /* A trial finished (COMPLETE, PRUNED or FAILED); may be NULL. */
    void (*finished)(struct mb_optim *o, void *state, struct optim_trial *t);
    void (*free)(void *state);
};

extern const struct optim_strategy_ops optim_random_ops, optim_grid_ops, optim_sobol_ops,
    optim_halton_ops, optim_tpe_ops, optim_cmaes_ops, optim_portfolio_ops;

const struct optim_strategy_ops *optim_strategy_ops_for(mb_optim_strategy s);

enum optim_event_kind {
    OPTIM_EV_SUGGEST = 's',
    OPTIM_EV_REPORT = 'r',
    OPTIM_EV_COMPLETE = 'c',
    OPTIM_EV_FAIL = 'f',
    OPTIM_EV_PRUNE = 'p' /* pruned by a decision taken outside (mb_optim_prune) */
};

struct optim_event {
    char kind;
    uint64_t trial;
    uint64_t step;
    double value; /* as given by the caller (not sign-adjusted) */
};

struct optim_rung {
    double *vals;
    size_t n, cap;
};

struct mb_optim {
    mb_optim_space *space;
    mb_optim_config cfg;
    const struct optim_strategy_ops *ops;
    void *st;
    struct optim_trial *trials;
    size_t n, cap;
    size_t ncomplete;
    struct optim_event *ev;
    size_t nev, capev;
    /* pruner state: rungs[bracket * OPTIM_MAX_RUNGS + rung] */
    uint32_t nbrackets;
    struct optim_rung *rungs;
    uint64_t *bracket_weight;
};

#define OPTIM_MAX_RUNGS 32

/* ---- Pruners ---- */

/* Validate the pruner part of `cfg` and allocate its state in `o`. */
int optim_pruner_init(struct mb_optim *o, mb_error *err);
void optim_pruner_free(struct mb_optim *o);
/* Called after t's latest intermediate value was recorded; 1 = prune. */
int optim_pruner_decide(struct mb_optim *o, struct optim_trial *t);
/* Assign a new trial to its Hyperband bracket. */
void optim_pruner_new_trial(struct mb_optim *o, struct optim_trial *t);
/* Interpolated percentile q in [0,100] of `v` (sorted in place), n > 0. */
double optim_percentile(double *v, size_t n, double q);

/* ---- Quasi-random sequences ---- */

typedef struct optim_sobol {
    size_t dims;
    uint32_t (*v)[32]; /* direction numbers per dim (scrambled), owned */
    uint32_t *shift;   /* digital shift per dim, owned */
} optim_sobol;

int optim_sobol_init(optim_sobol *s, size_t dims, int scramble, uint64_t seed);
void optim_sobol_point(const optim_sobol *s, uint64_t index, double *u);
void optim_sobol_free(optim_sobol *s);

typedef struct optim_halton {
    size_t dims;
    uint32_t *base;    /* prime per dim */
    uint32_t *ndigits; /* digits used per dim */
    uint32_t (*a)[64]; /* affine digit scrambling per dim and digit: d -> (a d + c) mod b */
    uint32_t (*c)[64];
} optim_halton;

int optim_halton_init(optim_halton *h, size_t dims, int scramble, uint64_t seed);
void optim_halton_point(const optim_halton *h, uint64_t index, double *u);
void optim_halton_free(optim_halton *h);

/* ---- Bandit over arms (pure) ---- */

typedef struct optim_bandit_state {
    mb_optim_bandit algorithm;
    double ucb_c;
    uint32_t narms;
    uint64_t pulls[8];
    double reward[8]; /* sum of rewards in [0,1] */
} optim_bandit_state;

void optim_bandit_init(optim_bandit_state *b, mb_optim_bandit algorithm, uint32_t narms,
                       double ucb_c);
uint32_t optim_bandit_select(const optim_bandit_state *b, optim_rng *rng);
void optim_bandit_update(optim_bandit_state *b, uint32_t arm, double reward);

/* ---- Helpers shared by strategies ---- */

/* Trials that count as observations (COMPLETE), as pointers, in id order. */
size_t optim_completed(struct mb_optim *o, struct optim_trial ***out);
int optim_grow(void **ptr, size_t *cap, size_t need, size_t elem);

#endif /* MB_OPTIM_INT_H */
