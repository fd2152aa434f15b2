/* Hyperparameter optimisation (public SDK): search spaces, seeded
 * optimisers (random, grid, Sobol, Halton, TPE, CMA-ES, a bandit portfolio
 * of strategies), pruners for objectives that report intermediate values
 * (median, successive halving / ASHA, Hyperband), built-in test functions,
 * and save/restore of an optimiser as a JSON document that is replayed.
 *
 * Everything here is pure: no I/O, no clocks, no global state. Randomness
 * comes only from the seed in the configuration: the same space, config and
 * sequence of calls give the same suggestions, bit for bit.
 *
 * A configuration (one point of the space) is an array of doubles, one per
 * dimension in the order they were added: FLOAT dimensions hold the value,
 * INT dimensions an exactly representable integer, CHOICE dimensions the
 * index of the option (0-based).
 *
 * Objects are not thread-safe; use one optimiser from one thread at a time.
 * See docs/optimisation.md for the algorithms and the saved-state format. */
#ifndef MABEAM_OPTIM_H
#define MABEAM_OPTIM_H

#include <mabeam/error.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Search spaces ---- */

typedef enum mb_optim_dim_type {
    MB_OPTIM_FLOAT = 1,  /* [low, high], optionally log scale (low > 0) */
    MB_OPTIM_INT = 2,    /* low, low+step, ... <= high; log scale needs step 1, low >= 1 */
    MB_OPTIM_CHOICE = 3, /* one of n named options */
} mb_optim_dim_type;

/* Limits that every space respects (also enforced on decoded JSON). */
#define MB_OPTIM_MAX_DIMS    64
#define MB_OPTIM_MAX_CHOICES 256
#define MB_OPTIM_MAX_NAME    64

typedef struct mb_optim_space mb_optim_space;

/* Allocate an empty space into *out; free with mb_optim_space_free(). */
int mb_optim_space_new(mb_optim_space **out, mb_error *err);
void mb_optim_space_free(mb_optim_space *space);

/* Append a dimension. `name` (borrowed, copied) must be non-empty, unique,
 * at most MB_OPTIM_MAX_NAME-1 bytes. Bounds are checked: low < high and finite
 * (equal bounds are allowed for INT), log scale needs low > 0. For INT,
 * high is lowered to the last value reachable by step. For CHOICE,
 * `options` (borrowed, copied) holds `n` distinct non-empty strings. */
int mb_optim_space_add_float(mb_optim_space *space, const char *name, double low, double high,
                             int log_scale, mb_error *err);
int mb_optim_space_add_int(mb_optim_space *space, const char *name, int64_t low, int64_t high,
                           int64_t step, int log_scale, mb_error *err);
int mb_optim_space_add_choice(mb_optim_space *space, const char *name, const char *const *options,
                              size_t n, mb_error *err);

/* Decode a space from JSON text (not necessarily NUL-terminated, `len`
 * bytes, borrowed): an array of objects
 *   {"name":"lr","type":"float","low":1e-5,"high":1,"log":true}
 *   {"name":"layers","type":"int","low":1,"high":8,"step":1}
 *   {"name":"act","type":"choice","options":["relu","tanh"]}
 * Any malformed input returns MB_EINVAL with a message; *out is set only on
 * success and then owned by the caller. */
int mb_optim_space_from_json(const char *json, size_t len, mb_optim_space **out, mb_error *err);

/* Encode a space as the JSON accepted by mb_optim_space_from_json. *out is
 * a malloc'd NUL-terminated string owned by the caller (free()). */
int mb_optim_space_to_json(const mb_optim_space *space, char **out, mb_error *err);

size_t mb_optim_space_ndims(const mb_optim_space *space);
mb_optim_dim_type mb_optim_space_type(const mb_optim_space *space, size_t dim);
/* Borrowed strings, valid while the space lives. NULL when out of range. */
const char *mb_optim_space_name(const mb_optim_space *space, size_t dim);
const char *mb_optim_space_option(const mb_optim_space *space, size_t dim, size_t index);
/* Number of options of a CHOICE dimension, 0 for other types. */
size_t mb_optim_space_noptions(const mb_optim_space *space, size_t dim);

/* MB_OK if `values` (borrowed, ndims doubles) is a valid configuration of
 * the space; otherwise MB_ECONSTRAINT with a message naming the dimension. */
int mb_optim_space_check(const mb_optim_space *space, const double *values, mb_error *err);

/* ---- Strategies and configuration ---- */

typedef enum mb_optim_strategy {
    MB_OPTIM_RANDOM = 1,
    MB_OPTIM_GRID = 2,
    MB_OPTIM_SOBOL = 3,
    MB_OPTIM_HALTON = 4,
    MB_OPTIM_TPE = 5,
    MB_OPTIM_CMAES = 6,
    MB_OPTIM_PORTFOLIO = 7, /* bandit over TPE, CMA-ES, Sobol, random */
} mb_optim_strategy;

typedef enum mb_optim_pruner {
    MB_OPTIM_PRUNE_NONE = 0,
    MB_OPTIM_PRUNE_MEDIAN = 1,
    MB_OPTIM_PRUNE_ASHA = 2, /* asynchronous successive halving */
    MB_OPTIM_PRUNE_HYPERBAND = 3,
} mb_optim_pruner;

typedef enum mb_optim_bandit {
    MB_OPTIM_BANDIT_UCB1 = 1,
    MB_OPTIM_BANDIT_THOMPSON = 2,
} mb_optim_bandit;

typedef struct mb_optim_config {
    mb_optim_strategy strategy;
    uint64_t seed;
    uint32_t max_trials; /* budget: suggest() fails with MB_ERANGE beyond it; must be > 0 */
    int maximize;        /* 0: minimise the objective, 1: maximise it */
    struct {
        uint32_t n_startup_trials; /* random trials before the model is used (10) */
        uint32_t n_ei_candidates;  /* candidates drawn from l(x) per suggestion (24) */
        double gamma;              /* fraction of trials in the "good" set (0.1) */
        uint32_t gamma_max;        /* cap on the size of the good set (25) */
        double prior_weight;       /* weight of the prior component (1.0) */
        int multivariate;          /* 1: joint Parzen estimator (default), 0: independent */
        int magic_clip;            /* 1: Bergstra's lower bound on kernel widths (default) */
    } tpe;
    struct {
        uint32_t popsize; /* 0: min(4 + floor(3 ln D), max(4, max_trials / 25)) */
        double sigma0;    /* initial step in the unit cube (default 0.1; 0 means 0.1) */
        int restarts;     /* 1: IPOP restarts on stagnation (default) */
    } cmaes;
    struct {
        uint32_t points_per_dim; /* grid points for FLOAT/large INT dims (default 5) */
    } grid;
    struct {
        int scramble; /* 1: seeded scrambling (default); 0: the plain sequence */
    } qmc;
    struct {
        mb_optim_bandit algorithm; /* default UCB1 */
        double ucb_c;              /* exploration constant of UCB1 (default 1.0) */
    } portfolio;
    struct {
        mb_optim_pruner kind;
        uint32_t n_startup_trials;        /* median: completed trials before pruning (5) */
        uint64_t n_warmup_steps;          /* median: steps before pruning (0) */
        uint32_t n_min_trials;            /* median: trials with a value at the step (1) */
        uint64_t min_resource;            /* ASHA/Hyperband: first rung's step (1) */
        uint32_t reduction_factor;        /* ASHA/Hyperband: eta (3) */
        uint32_t min_early_stopping_rate; /* ASHA: s (0) */
        uint64_t max_resource;            /* Hyperband: the full budget in steps (81) */
    } pruner;
} mb_optim_config;

/* Fill `cfg` (caller-owned) with the defaults noted above for `strategy`,
 * seed 0 and a budget of 100 trials. */
void mb_optim_config_default(mb_optim_config *cfg, mb_optim_strategy strategy);

/* Names used in JSON and on the command line: "random", "grid", "sobol",
 * "halton", "tpe", "cmaes", "portfolio"; pruners "none", "median", "asha",
 * "hyperband". Parsing an unknown name returns MB_EINVAL. */
const char *mb_optim_strategy_name(mb_optim_strategy s);
int mb_optim_strategy_parse(const char *name, mb_optim_strategy *out, mb_error *err);
const char *mb_optim_pruner_name(mb_optim_pruner p);
int mb_optim_pruner_parse(const char *name, mb_optim_pruner *out, mb_error *err);

/* Decode a configuration from JSON (`len` bytes, borrowed): an object with
 * "strategy" (required), "seed" (decimal string or integer), "max_trials",
 * "maximize", and optional groups "tpe", "cmaes", "grid", "qmc",
 * "portfolio", "pruner" whose keys are the field names above (enums as their
 * names). Absent keys keep the strategy's defaults; malformed input returns
 * MB_EINVAL. The result is validated as mb_optim_new() would. */
int mb_optim_config_from_json(const char *json, size_t len, mb_optim_config *out, mb_error *err);
/* Encode every field; *out is malloc'd and owned by the caller (free()). */
int mb_optim_config_to_json(const mb_optim_config *cfg, char **out, mb_error *err);

/* ---- Optimisers ---- */

typedef enum mb_optim_trial_state {
    MB_OPTIM_RUNNING = 1,
    MB_OPTIM_COMPLETE = 2,
    MB_OPTIM_PRUNED = 3,
    MB_OPTIM_FAILED = 4,
} mb_optim_trial_state;

typedef struct mb_optim mb_optim;

/* Create an optimiser over `space` (borrowed; a copy is kept) with `cfg`
 * (borrowed, copied). Bad configurations (empty space, zero budget, unknown
 * strategy or pruner, a grid too large) return MB_EINVAL with a message. */
int mb_optim_new(const mb_optim_space *space, const mb_optim_config *cfg, mb_optim **out,
                 mb_error *err);
void mb_optim_free(mb_optim *opt);

/* Propose the next trial: its id (0, 1, 2, ... in order of suggestion) into
 * *trial_id and a complete valid configuration into `values` (caller-owned,
 * ndims doubles). MB_ERANGE when the budget or the grid is exhausted. */
int mb_optim_suggest(mb_optim *opt, uint64_t *trial_id, double *values, mb_error *err);

/* Record an intermediate objective value of a running trial at `step`
 * (steps strictly increase per trial). *prune is set to 1 when the pruner
 * stops the trial: the trial is then PRUNED and takes no further reports. */
int mb_optim_report(mb_optim *opt, uint64_t trial_id, uint64_t step, double value, int *prune,
                    mb_error *err);

/* Finish a running trial with its final objective value (finite; report a
 * trial that produced NaN with mb_optim_fail), or as failed. */
int mb_optim_complete(mb_optim *opt, uint64_t trial_id, double value, mb_error *err);
int mb_optim_fail(mb_optim *opt, uint64_t trial_id, mb_error *err);

/* Finish a running trial as PRUNED by a decision taken elsewhere (its
 * intermediate values given with mb_optim_report first; e.g. a replicated
 * study whose state machine runs the pruner). Model-based strategies rank
 * it by its last intermediate value, as a pruned trial of their own. */
int mb_optim_prune(mb_optim *opt, uint64_t trial_id, mb_error *err);

/* The strategy that suggested trial `trial_id`: for a portfolio the arm
 * the bandit chose (TPE, CMA-ES, Sobol or random), else the optimiser's own
 * strategy; 0 for an unknown trial. */
mb_optim_strategy mb_optim_trial_strategy(const mb_optim *opt, uint64_t trial_id);

/* Best completed trial so far: MB_ENOTFOUND when none. `values` may be NULL. */
int mb_optim_best(const mb_optim *opt, uint64_t *trial_id, double *value, double *values);

size_t mb_optim_ntrials(const mb_optim *opt);
/* State of a trial; 0 if unknown. */
mb_optim_trial_state mb_optim_trial_state_of(const mb_optim *opt, uint64_t trial_id);
const mb_optim_space *mb_optim_get_space(const mb_optim *opt);

/* Save the optimiser as JSON (space, configuration and the ordered history
 * of calls). *out is malloc'd, NUL-terminated, owned by the caller (free()). */
int mb_optim_save(const mb_optim *opt, char **out, size_t *len, mb_error *err);

/* Rebuild an optimiser from mb_optim_save() output (`json`, `len` bytes,
 * borrowed) by replaying its history: the next suggestions are identical to
 * those the saved optimiser would have made. Malformed or inconsistent input
 * returns MB_EINVAL or MB_ECORRUPT; *out is set only on success. */
int mb_optim_restore(const char *json, size_t len, mb_optim **out, mb_error *err);

/* ---- Coordinated search over a partitioned space ---- */

/* Several optimisers, one per group of dimensions, each owning its part of
 * the space. They suggest in lockstep: trial k of the whole is trial k of
 * every group optimiser, its configuration the union of their parts, so
 * every evaluated configuration is complete. Every outcome (reports,
 * completion, pruning, failure) is told to every group optimiser with the
 * full configuration's value, so each learns from all trials, seeing only
 * its own coordinates (the others' parts act as noise it averages over).
 * With several groups, group g is seeded from the configuration's seed and
 * g: deterministic per seed. With one group it is exactly mb_optim with
 * the same configuration. */
typedef struct mb_optim_part mb_optim_part;

/* `groups` (borrowed; ndims entries, may be NULL when ngroups <= 1) gives
 * each dimension's group 0..ngroups-1; every group must be non-empty.
 * `space` and `cfg` are borrowed (copied). A grid cannot be partitioned
 * (MB_EINVAL). *out owned by the caller (mb_optim_part_free). */
int mb_optim_part_new(const mb_optim_space *space, const mb_optim_config *cfg,
                      const uint32_t *groups, uint32_t ngroups, mb_optim_part **out, mb_error *err);
void mb_optim_part_free(mb_optim_part *p);
uint32_t mb_optim_part_ngroups(const mb_optim_part *p);
/* As mb_optim_suggest etc. for the whole space (`values`: ndims doubles,
 * caller-owned). A call that fails in one group after another group took
 * it leaves the groups out of step: later calls return MB_ESTATE (rebuild
 * it). mb_optim_part_report never prunes by itself (decide elsewhere and
 * call mb_optim_part_prune). */
int mb_optim_part_suggest(mb_optim_part *p, uint64_t *trial_id, double *values, mb_error *err);
int mb_optim_part_report(mb_optim_part *p, uint64_t trial_id, uint64_t step, double value,
                         mb_error *err);
int mb_optim_part_complete(mb_optim_part *p, uint64_t trial_id, double value, mb_error *err);
int mb_optim_part_prune(mb_optim_part *p, uint64_t trial_id, mb_error *err);
int mb_optim_part_fail(mb_optim_part *p, uint64_t trial_id, mb_error *err);
/* The strategy (a portfolio's arm) group 0 used for the trial. */
mb_optim_strategy mb_optim_part_trial_strategy(const mb_optim_part *p, uint64_t trial_id);
/* Group g's optimiser (borrowed), NULL when out of range. */
const mb_optim *mb_optim_part_group(const mb_optim_part *p, uint32_t g);

/* ---- Pruning decided from recorded learning curves ---- */

/* The intermediate values of one trial (all borrowed): `n` reports with
 * strictly increasing steps and finite values as the objective gave them
 * (not sign-adjusted). `id` places the trial in its Hyperband bracket;
 * `complete` marks a trial that finished with a value (the median
 * pruner's reference set). */
typedef struct mb_optim_curve {
    uint64_t id;
    int complete;
    const uint64_t *steps;
    const double *values;
    size_t n;
} mb_optim_curve;

/* MB_OK when the pruner part of `cfg` is valid (as mb_optim_new checks). */
int mb_optim_pruner_check(const mb_optim_config *cfg, mb_error *err);

/* Should trial `curves[self]` stop after its latest report (its last
 * element)? Decided from `cfg` (pruner, seed, maximize) and the curves of
 * all `n` trials as they stand, with no state of its own: the same
 * decisions an optimiser's pruner makes when it was told the same reports
 * in the same order (median: best value so far worse than the median of
 * the completed trials at that step; ASHA/Hyperband: the rungs are the
 * values every trial of the bracket had when it first reached them). For
 * replicated state machines, where every replica must decide alike.
 * *prune = 1 to stop. MB_EINVAL for a bad configuration or a bad `self`
 * curve (the other curves are trusted to be well formed). */
int mb_optim_prune_decide(const mb_optim_config *cfg, const mb_optim_curve *curves, size_t n,
                          size_t self, int *prune, mb_error *err);

/* ---- Built-in test functions (minimisation) ---- */

typedef enum mb_optim_testfn {
    MB_OPTIM_BRANIN = 1,     /* 2-D, [-5,10]x[0,15], min 0.397887 */
    MB_OPTIM_HARTMANN6 = 2,  /* 6-D, [0,1]^6, min -3.32237 */
    MB_OPTIM_ROSENBROCK = 3, /* N-D, [-5,10]^N, min 0 at (1,...,1) */
    MB_OPTIM_ACKLEY = 4,     /* N-D, [-32.768,32.768]^N, min 0 at 0 */
} mb_optim_testfn;

/* The function's box as a space of FLOAT dims x0..x{n-1}. `ndims` is
 * ignored by Branin and Hartmann-6, and must be 1..MB_OPTIM_MAX_DIMS
 * otherwise. */
int mb_optim_testfn_space(mb_optim_testfn fn, size_t ndims, mb_optim_space **out, mb_error *err);
/* Value at `x` (borrowed, ndims doubles). */
double mb_optim_testfn_eval(mb_optim_testfn fn, size_t ndims, const double *x);
/* Known global minimum value, and one minimiser into `xstar` if not NULL. */
double mb_optim_testfn_optimum(mb_optim_testfn fn, size_t ndims, double *xstar);

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_OPTIM_H */
