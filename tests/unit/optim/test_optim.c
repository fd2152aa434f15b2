/* Tests of the optimisation library (agents/optim/): search spaces and
 * their JSON, configuration errors, every strategy's validity, determinism
 * and convergence, grid enumeration, low-discrepancy properties of Sobol
 * and Halton, pruners on crafted curves, ASHA rungs, Hyperband brackets,
 * the bandit, the trial lifecycle and save/restore by replay. */
#include <math.h>
#include <mabeam/optim.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"
#include "mb_test.h"

static const mb_optim_strategy all_strategies[] = { MB_OPTIM_RANDOM,   MB_OPTIM_GRID,
                                                    MB_OPTIM_SOBOL,    MB_OPTIM_HALTON,
                                                    MB_OPTIM_TPE,      MB_OPTIM_CMAES,
                                                    MB_OPTIM_PORTFOLIO };
#define NSTRATEGIES (sizeof(all_strategies) / sizeof(all_strategies[0]))

/* A space with every kind of dimension: log float, linear float, int with
 * step, log int, a small and a large choice. */
static mb_optim_space *mixed_space(void)
{
    static const char *small[] = { "relu", "tanh", "gelu" };
    static const char *large[12] = { "o0", "o1", "o2", "o3", "o4",  "o5",
                                     "o6", "o7", "o8", "o9", "o10", "o11" };
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "lr", 1e-5, 1e-1, 1, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "dropout", 0.0, 0.5, 0, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_int(sp, "units", 16, 100, 3, 0, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_int(sp, "batch", 1, 1024, 1, 1, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_choice(sp, "act", small, 3, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_choice(sp, "opt", large, 12, NULL) == MB_OK);
    return sp;
}

/* A smooth objective over mixed_space with a unique best configuration. */
static double mixed_objective(const double *x)
{
    double v = pow(log10(x[0]) + 3.0, 2) + pow(x[1] - 0.1, 2) * 4 + pow((x[2] - 61) / 30.0, 2) +
               pow(log2(x[3]) - 5, 2) / 10.0;
    v += x[4] == 2 ? 0.0 : 1.0;
    v += x[5] == 7 ? 0.0 : 0.5;
    return v;
}

static mb_optim *new_optim(const mb_optim_space *sp, mb_optim_strategy s, uint64_t seed,
                           uint32_t budget)
{
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, s);
    cfg.seed = seed;
    cfg.max_trials = budget;
    mb_optim *o = NULL;
    mb_error err;
    int rv = mb_optim_new(sp, &cfg, &o, &err);
    if (rv != MB_OK)
        fprintf(stderr, "mb_optim_new: %s\n", err.msg);
    CU_ASSERT_FATAL(rv == MB_OK);
    return o;
}

/* ---- space ---- */

static void test_space_rejects_contradictory_bounds(void)
{
    mb_optim_space *sp;
    mb_error err;
    const char *dup[] = { "a", "a" };
    const char *empty[] = { "" };
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "x", 1.0, 1.0, 0, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "low < high"));
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "x", 2.0, 1.0, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "x", 0.0, 1.0, 1, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "log scale"));
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "x", NAN, 1.0, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_int(sp, "n", 5, 1, 1, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_int(sp, "n", 1, 5, 0, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_int(sp, "n", 1, 64, 2, 1, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_int(sp, "n", 0, 64, 1, 1, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_choice(sp, "c", dup, 2, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_choice(sp, "c", empty, 1, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_choice(sp, "c", dup, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "", 0, 1, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_space_ndims(sp), 0);
    CU_ASSERT_EQUAL(mb_optim_space_add_float(sp, "x", 0, 1, 0, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_space_add_int(sp, "x", 0, 1, 1, 0, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate"));
    mb_optim_space_free(sp);
}

static void test_int_high_is_lowered_to_last_step(void)
{
    mb_optim_space *sp;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_int(sp, "n", 1, 10, 4, 0, NULL) == MB_OK);
    double ok[1] = { 9 }, off[1] = { 10 }, mid[1] = { 3 };
    CU_ASSERT_EQUAL(mb_optim_space_check(sp, ok, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_space_check(sp, off, NULL), MB_ECONSTRAINT);
    CU_ASSERT_EQUAL(mb_optim_space_check(sp, mid, NULL), MB_ECONSTRAINT);
    mb_optim_space_free(sp);
}

static void test_space_json_round_trip(void)
{
    mb_optim_space *sp = mixed_space(), *back = NULL;
    char *json = NULL, *json2 = NULL;
    CU_ASSERT_FATAL(mb_optim_space_to_json(sp, &json, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_from_json(json, strlen(json), &back, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_to_json(back, &json2, NULL) == MB_OK);
    CU_ASSERT_STRING_EQUAL(json, json2);
    CU_ASSERT_EQUAL(mb_optim_space_ndims(back), 6);
    CU_ASSERT_EQUAL(mb_optim_space_type(back, 3), MB_OPTIM_INT);
    CU_ASSERT_STRING_EQUAL(mb_optim_space_option(back, 4, 1), "tanh");
    CU_ASSERT_EQUAL(mb_optim_space_noptions(back, 5), 12);
    free(json);
    free(json2);
    mb_optim_space_free(sp);
    mb_optim_space_free(back);
}

static void test_space_json_rejects_malformed_input(void)
{
    const char *bad[] = {
        "",
        "{",
        "{}",
        "[]",
        "[1]",
        "[{\"name\":\"x\"}]",
        "[{\"name\":\"x\",\"type\":\"complex\"}]",
        "[{\"name\":\"x\",\"type\":\"float\",\"low\":1}]",
        "[{\"name\":\"x\",\"type\":\"float\",\"low\":1,\"high\":0}]",
        "[{\"name\":\"x\",\"type\":\"float\",\"low\":0,\"high\":1,\"log\":\"yes\"}]",
        "[{\"name\":\"x\",\"type\":\"int\",\"low\":0.5,\"high\":3}]",
        "[{\"name\":\"x\",\"type\":\"int\",\"low\":0,\"high\":1e300}]",
        "[{\"name\":\"x\",\"type\":\"choice\",\"options\":[]}]",
        "[{\"name\":\"x\",\"type\":\"choice\",\"options\":[1,2]}]",
        "[{\"name\":\"x\",\"type\":\"choice\",\"options\":\"ab\"}]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mb_optim_space *sp = NULL;
        mb_error err;
        mb_error_clear(&err);
        CU_ASSERT_EQUAL(mb_optim_space_from_json(bad[i], strlen(bad[i]), &sp, &err), MB_EINVAL);
        CU_ASSERT_PTR_NULL(sp);
        CU_ASSERT(err.msg[0] != '\0');
    }
}

/* ---- configuration ---- */

static void test_new_rejects_empty_space_zero_budget_and_unknown_strategy(void)
{
    mb_optim_space *empty, *sp = mixed_space();
    mb_optim_config cfg;
    mb_optim *o = NULL;
    mb_error err;
    CU_ASSERT_FATAL(mb_optim_space_new(&empty, NULL) == MB_OK);
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    CU_ASSERT_EQUAL(mb_optim_new(empty, &cfg, &o, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
    cfg.max_trials = 0;
    CU_ASSERT_EQUAL(mb_optim_new(sp, &cfg, &o, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "budget"));
    mb_optim_config_default(&cfg, (mb_optim_strategy)99);
    CU_ASSERT_EQUAL(mb_optim_new(sp, &cfg, &o, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "strategy"));
    mb_optim_strategy s;
    CU_ASSERT_EQUAL(mb_optim_strategy_parse("bayes", &s, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bayes"));
    CU_ASSERT_EQUAL(mb_optim_strategy_parse("cmaes", &s, NULL), MB_OK);
    CU_ASSERT_EQUAL(s, MB_OPTIM_CMAES);
    mb_optim_config_default(&cfg, MB_OPTIM_RANDOM);
    cfg.pruner.kind = MB_OPTIM_PRUNE_ASHA;
    cfg.pruner.reduction_factor = 1;
    CU_ASSERT_EQUAL(mb_optim_new(sp, &cfg, &o, &err), MB_EINVAL);
    CU_ASSERT_PTR_NULL(o);
    mb_optim_space_free(empty);
    mb_optim_space_free(sp);
}

static void test_config_json_round_trip_and_errors(void)
{
    mb_optim_config cfg, back;
    mb_optim_config_default(&cfg, MB_OPTIM_PORTFOLIO);
    cfg.seed = UINT64_MAX - 5;
    cfg.tpe.gamma = 0.15;
    cfg.pruner.kind = MB_OPTIM_PRUNE_HYPERBAND;
    cfg.portfolio.algorithm = MB_OPTIM_BANDIT_THOMPSON;
    char *json = NULL;
    CU_ASSERT_FATAL(mb_optim_config_to_json(&cfg, &json, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_config_from_json(json, strlen(json), &back, NULL) == MB_OK);
    CU_ASSERT_EQUAL(memcmp(&cfg, &back, sizeof(cfg)), 0);
    free(json);
    const char *ok = "{\"strategy\":\"tpe\",\"seed\":7,\"tpe\":{\"multivariate\":false}}";
    CU_ASSERT_EQUAL(mb_optim_config_from_json(ok, strlen(ok), &back, NULL), MB_OK);
    CU_ASSERT_EQUAL(back.seed, 7);
    CU_ASSERT_EQUAL(back.tpe.multivariate, 0);
    CU_ASSERT_EQUAL(back.tpe.n_ei_candidates, 24);
    const char *bad[] = { "{\"strategy\":\"nope\"}",
                          "{\"seed\":1}",
                          "{\"strategy\":\"tpe\",\"max_trials\":0}",
                          "{\"strategy\":\"tpe\",\"max_trials\":-3}",
                          "{\"strategy\":\"tpe\",\"seed\":\"12x\"}",
                          "{\"strategy\":\"tpe\",\"pruner\":{\"kind\":\"always\"}}",
                          "{\"strategy\":\"tpe\",\"tpe\":{\"gamma\":2}}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mb_error err;
        CU_ASSERT_EQUAL(mb_optim_config_from_json(bad[i], strlen(bad[i]), &back, &err), MB_EINVAL);
    }
}

/* ---- strategies ---- */

static void test_every_strategy_suggests_only_valid_values(void)
{
    mb_optim_space *sp = mixed_space();
    for (size_t s = 0; s < NSTRATEGIES; s++) {
        mb_optim *o = new_optim(sp, all_strategies[s], 3, 80);
        double x[6];
        int seen_small[3] = { 0 };
        for (int t = 0; t < 80; t++) {
            uint64_t id;
            int rv = mb_optim_suggest(o, &id, x, NULL);
            if (all_strategies[s] == MB_OPTIM_GRID && rv == MB_ERANGE)
                break;
            CU_ASSERT_EQUAL_FATAL(rv, MB_OK);
            CU_ASSERT_EQUAL(id, (uint64_t)t);
            CU_ASSERT_EQUAL(mb_optim_space_check(sp, x, NULL), MB_OK);
            CU_ASSERT(x[0] >= 1e-5 && x[0] <= 1e-1);
            CU_ASSERT(fmod(x[2] - 16, 3) == 0 && x[2] <= 100);
            CU_ASSERT(x[3] == floor(x[3]) && x[3] >= 1 && x[3] <= 1024);
            CU_ASSERT(x[4] == 0 || x[4] == 1 || x[4] == 2);
            CU_ASSERT(x[5] == floor(x[5]) && x[5] >= 0 && x[5] <= 11);
            seen_small[(int)x[4]] = 1;
            CU_ASSERT_EQUAL(mb_optim_complete(o, id, mixed_objective(x), NULL), MB_OK);
        }
        if (all_strategies[s] != MB_OPTIM_GRID)
            CU_ASSERT(seen_small[0] && seen_small[1] && seen_small[2]);
        mb_optim_free(o);
    }
    mb_optim_space_free(sp);
}

static void test_same_seed_gives_same_suggestions_bit_for_bit(void)
{
    mb_optim_space *sp = mixed_space();
    for (size_t s = 0; s < NSTRATEGIES; s++) {
        mb_optim *a = new_optim(sp, all_strategies[s], 42, 60);
        mb_optim *b = new_optim(sp, all_strategies[s], 42, 60);
        mb_optim *c = new_optim(sp, all_strategies[s], 43, 60);
        int differs = 0;
        for (int t = 0; t < 60; t++) {
            double xa[6], xb[6], xc[6];
            uint64_t ia, ib, ic;
            if (mb_optim_suggest(a, &ia, xa, NULL) != MB_OK)
                break;
            CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(b, &ib, xb, NULL), MB_OK);
            CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(c, &ic, xc, NULL), MB_OK);
            CU_ASSERT_EQUAL(memcmp(xa, xb, sizeof(xa)), 0);
            differs |= memcmp(xa, xc, sizeof(xa)) != 0;
            mb_optim_complete(a, ia, mixed_objective(xa), NULL);
            mb_optim_complete(b, ib, mixed_objective(xb), NULL);
            mb_optim_complete(c, ic, mixed_objective(xc), NULL);
        }
        if (all_strategies[s] != MB_OPTIM_GRID) /* the grid is not randomised */
            CU_ASSERT(differs);
        mb_optim_free(a);
        mb_optim_free(b);
        mb_optim_free(c);
    }
    mb_optim_space_free(sp);
}

static void test_grid_enumerates_every_point_exactly_once(void)
{
    mb_optim_space *sp;
    const char *opts[] = { "a", "b", "c" };
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_choice(sp, "c", opts, 3, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_int(sp, "n", 2, 8, 2, 0, NULL) == MB_OK); /* 2,4,6,8 */
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "lr", 1e-4, 1e-1, 1, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_GRID);
    cfg.grid.points_per_dim = 4; /* lr: 1e-4, 1e-3, 1e-2, 1e-1 */
    cfg.max_trials = 1000;
    mb_optim *o;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    int seen[3][4][4] = { { { 0 } } };
    double x[3];
    uint64_t id;
    for (int t = 0; t < 48; t++) {
        CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
        int n = (int)(x[1] - 2) / 2;
        int l = (int)lround(log10(x[2]) + 4);
        CU_ASSERT_FATAL(n >= 0 && n < 4 && l >= 0 && l < 4);
        CU_ASSERT(fabs(x[2] - pow(10, l - 4)) < 1e-12 * x[2] + 1e-18);
        seen[(int)x[0]][n][l]++;
        mb_optim_complete(o, id, 0.0, NULL);
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                CU_ASSERT_EQUAL(seen[a][b][c], 1);
    mb_error err;
    CU_ASSERT_EQUAL(mb_optim_suggest(o, &id, x, &err), MB_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "grid"));
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

static void test_sobol_first_two_dims_are_a_0_m_2_net(void)
{
    for (int scramble = 0; scramble < 2; scramble++) {
        optim_sobol s;
        CU_ASSERT_FATAL(optim_sobol_init(&s, 2, scramble, 77) == MB_OK);
        const int m = 8, n = 1 << m;
        for (int k = 0; k <= m; k++) { /* boxes 2^-k x 2^-(m-k) */
            int *count = calloc((size_t)n, sizeof(int));
            for (int i = 0; i < n; i++) {
                double u[2];
                optim_sobol_point(&s, (uint64_t)i, u);
                int a = (int)(u[0] * (1 << k)), b = (int)(u[1] * (1 << (m - k)));
                count[a * (1 << (m - k)) + b]++;
            }
            for (int i = 0; i < n; i++)
                CU_ASSERT_EQUAL(count[i], 1);
            free(count);
        }
        optim_sobol_free(&s);
    }
}

static void test_halton_each_dim_stratifies_base_power_points(void)
{
    optim_halton h;
    CU_ASSERT_FATAL(optim_halton_init(&h, 4, 1, 5) == MB_OK);
    for (size_t d = 0; d < 4; d++) {
        uint32_t b = h.base[d];
        int n = (int)(b * b * b);
        int *count = calloc((size_t)n, sizeof(int));
        for (int i = 0; i < n; i++) {
            double u[4];
            optim_halton_point(&h, (uint64_t)i, u);
            count[(int)(u[d] * n)]++;
        }
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL(count[i], 1);
        free(count);
    }
    CU_ASSERT_EQUAL(h.base[0], 2);
    CU_ASSERT_EQUAL(h.base[3], 7);
    optim_halton_free(&h);
}

/* Warnock's formula for the L2-star discrepancy (squared) of n points. */
static double l2_star_discrepancy2(const double *p, int n, int d)
{
    double a = pow(1.0 / 3.0, d), b = 0, c = 0;
    for (int i = 0; i < n; i++) {
        double prod = 1;
        for (int k = 0; k < d; k++)
            prod *= (1 - p[i * d + k] * p[i * d + k]) / 2;
        b += prod;
        for (int j = 0; j < n; j++) {
            double q = 1;
            for (int k = 0; k < d; k++)
                q *= 1 - fmax(p[i * d + k], p[j * d + k]);
            c += q;
        }
    }
    return a - 2.0 * b / n + c / ((double)n * n);
}

static void test_sobol_and_halton_have_lower_discrepancy_than_random(void)
{
    enum { N = 128, D = 5 };
    static double pts[N * D];
    optim_sobol s;
    optim_halton h;
    CU_ASSERT_FATAL(optim_sobol_init(&s, D, 1, 9) == MB_OK);
    CU_ASSERT_FATAL(optim_halton_init(&h, D, 1, 9) == MB_OK);
    for (int i = 0; i < N; i++)
        optim_sobol_point(&s, (uint64_t)i, &pts[i * D]);
    double ds = l2_star_discrepancy2(pts, N, D);
    for (int i = 0; i < N; i++)
        optim_halton_point(&h, (uint64_t)i, &pts[i * D]);
    double dh = l2_star_discrepancy2(pts, N, D);
    double dr = 0;
    for (int r = 0; r < 5; r++) {
        optim_rng rng;
        optim_rng_seed(&rng, 1000 + (uint64_t)r, 0);
        for (int i = 0; i < N * D; i++)
            pts[i] = optim_rng_uniform(&rng);
        dr += l2_star_discrepancy2(pts, N, D) / 5;
    }
    CU_ASSERT(ds < 0.5 * dr);
    CU_ASSERT(dh < 0.5 * dr);
    optim_sobol_free(&s);
    optim_halton_free(&h);
}

/* Best value of a run of `budget` trials of strategy s on a test function. */
static double run_testfn(mb_optim_strategy s, mb_optim_testfn fn, size_t ndims, uint32_t budget,
                         uint64_t seed, int multivariate)
{
    mb_optim_space *sp;
    CU_ASSERT_FATAL(mb_optim_testfn_space(fn, ndims, &sp, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, s);
    cfg.seed = seed;
    cfg.max_trials = budget;
    cfg.tpe.multivariate = multivariate;
    mb_optim *o;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    double x[MB_OPTIM_MAX_DIMS], best;
    uint64_t id;
    while (mb_optim_suggest(o, &id, x, NULL) == MB_OK)
        mb_optim_complete(o, id, mb_optim_testfn_eval(fn, ndims, x), NULL);
    CU_ASSERT_FATAL(mb_optim_best(o, NULL, &best, NULL) == MB_OK);
    mb_optim_free(o);
    mb_optim_space_free(sp);
    return best;
}

static void test_testfn_known_optima(void)
{
    double x[10];
    mb_optim_testfn fns[] = { MB_OPTIM_BRANIN, MB_OPTIM_HARTMANN6, MB_OPTIM_ROSENBROCK,
                              MB_OPTIM_ACKLEY };
    for (size_t i = 0; i < 4; i++) {
        double opt = mb_optim_testfn_optimum(fns[i], 10, x);
        CU_ASSERT_DOUBLE_EQUAL(mb_optim_testfn_eval(fns[i], 10, x), opt, 1e-4);
    }
    double y[2] = { -M_PI, 12.275 }; /* Branin's other minima */
    CU_ASSERT_DOUBLE_EQUAL(mb_optim_testfn_eval(MB_OPTIM_BRANIN, 2, y), 0.397887, 1e-5);
}

static void test_random_and_qmc_make_progress_on_branin(void)
{
    /* the function's mean over the box is about 55 */
    CU_ASSERT(run_testfn(MB_OPTIM_RANDOM, MB_OPTIM_BRANIN, 2, 256, 1, 1) < 1.0);
    CU_ASSERT(run_testfn(MB_OPTIM_SOBOL, MB_OPTIM_BRANIN, 2, 256, 1, 1) < 0.6);
    CU_ASSERT(run_testfn(MB_OPTIM_HALTON, MB_OPTIM_BRANIN, 2, 256, 1, 1) < 0.6);
}

static void test_tpe_converges_on_branin_and_hartmann(void)
{
    /* random search reaches 1.02 and -2.62 with these seeds and budgets */
    CU_ASSERT(run_testfn(MB_OPTIM_TPE, MB_OPTIM_BRANIN, 2, 150, 1, 1) < 0.43);
    CU_ASSERT(run_testfn(MB_OPTIM_TPE, MB_OPTIM_BRANIN, 2, 150, 1, 0) < 0.45);
    CU_ASSERT(run_testfn(MB_OPTIM_TPE, MB_OPTIM_HARTMANN6, 6, 200, 1, 1) < -2.95);
}

static void test_cmaes_converges_on_rosenbrock_and_ackley(void)
{
    CU_ASSERT(run_testfn(MB_OPTIM_CMAES, MB_OPTIM_BRANIN, 2, 100, 1, 1) < 0.40);
    CU_ASSERT(run_testfn(MB_OPTIM_CMAES, MB_OPTIM_ROSENBROCK, 4, 1500, 1, 1) < 1e-2);
    CU_ASSERT(run_testfn(MB_OPTIM_CMAES, MB_OPTIM_ACKLEY, 3, 800, 1, 1) < 1e-2);
}

static void test_portfolio_converges_on_branin(void)
{
    CU_ASSERT(run_testfn(MB_OPTIM_PORTFOLIO, MB_OPTIM_BRANIN, 2, 150, 1, 1) < 0.45);
}

/* Each trial of a portfolio names the arm that suggested it; every arm is
 * tried; a plain strategy names itself. */
static void test_trial_strategy_names_the_portfolio_arm(void)
{
    mb_optim_space *sp;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "x", -1, 1, 0, NULL) == MB_OK);
    mb_optim *o = new_optim(sp, MB_OPTIM_PORTFOLIO, 3, 40);
    int seen[8] = { 0 };
    for (int t = 0; t < 40; t++) {
        double x[1];
        uint64_t id;
        CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
        mb_optim_strategy s = mb_optim_trial_strategy(o, id);
        CU_ASSERT(s == MB_OPTIM_TPE || s == MB_OPTIM_CMAES || s == MB_OPTIM_SOBOL ||
                  s == MB_OPTIM_RANDOM);
        if (s < 8)
            seen[s]++;
        mb_optim_complete(o, id, x[0] * x[0], NULL);
    }
    CU_ASSERT(seen[MB_OPTIM_TPE] > 0 && seen[MB_OPTIM_CMAES] > 0 && seen[MB_OPTIM_SOBOL] > 0 &&
              seen[MB_OPTIM_RANDOM] > 0);
    CU_ASSERT_EQUAL(mb_optim_trial_strategy(o, 1000), 0);
    mb_optim_free(o);
    o = new_optim(sp, MB_OPTIM_SOBOL, 3, 5);
    double x[1];
    uint64_t id;
    CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_trial_strategy(o, id), MB_OPTIM_SOBOL);
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

/* TPE's and CMA-ES's categorical handling: they must learn the best option
 * of a 4-way choice, not just wander. */
static void test_model_strategies_learn_the_best_choice(void)
{
    const char *opts[] = { "a", "b", "c", "d" };
    mb_optim_strategy ss[] = { MB_OPTIM_TPE, MB_OPTIM_CMAES };
    for (size_t s = 0; s < 2; s++) {
        mb_optim_space *sp;
        CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
        CU_ASSERT_FATAL(mb_optim_space_add_choice(sp, "c", opts, 4, NULL) == MB_OK);
        CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "x", -1, 1, 0, NULL) == MB_OK);
        mb_optim *o = new_optim(sp, ss[s], 5, 100);
        int late_c = 0;
        for (int t = 0; t < 100; t++) {
            double x[2];
            uint64_t id;
            CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
            if (t >= 60 && x[0] == 2)
                late_c++;
            mb_optim_complete(o, id, (x[0] == 2 ? 0.0 : 1.0) + x[1] * x[1], NULL);
        }
        CU_ASSERT(late_c >= 24); /* 60% of the last 40, against 25% by chance */
        mb_optim_free(o);
        mb_optim_space_free(sp);
    }
}

static void test_maximize_finds_the_maximum(void)
{
    mb_optim_space *sp;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "x", -2, 2, 0, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    cfg.maximize = 1;
    mb_optim *o;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    double x[1], best, bx[1];
    uint64_t id;
    for (int t = 0; t < 60; t++) {
        CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
        mb_optim_complete(o, id, 5 - (x[0] - 1) * (x[0] - 1), NULL);
    }
    CU_ASSERT_EQUAL(mb_optim_best(o, &id, &best, bx), MB_OK);
    CU_ASSERT(best > 4.99 && best <= 5.0);
    CU_ASSERT(fabs(bx[0] - 1) < 0.1);
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

/* ---- lifecycle ---- */

static void test_trial_lifecycle_errors(void)
{
    mb_optim_space *sp = mixed_space();
    mb_optim *o = new_optim(sp, MB_OPTIM_RANDOM, 1, 3);
    double x[6];
    uint64_t a, b, c;
    mb_error err;
    CU_ASSERT_EQUAL(mb_optim_best(o, NULL, NULL, NULL), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(mb_optim_suggest(o, &a, x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_suggest(o, &b, x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_suggest(o, &c, x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_suggest(o, &c, x, &err), MB_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "budget"));
    CU_ASSERT_EQUAL(mb_optim_complete(o, 99, 1.0, NULL), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(mb_optim_complete(o, a, NAN, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_complete(o, a, 2.0, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_complete(o, a, 1.0, NULL), MB_ESTATE);
    CU_ASSERT_EQUAL(mb_optim_fail(o, b, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_report(o, b, 1, 0.5, NULL, NULL), MB_ESTATE);
    CU_ASSERT_EQUAL(mb_optim_report(o, c, 5, 0.5, NULL, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_report(o, c, 5, 0.4, NULL, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_report(o, c, 6, INFINITY, NULL, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, a), MB_OPTIM_COMPLETE);
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, b), MB_OPTIM_FAILED);
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, c), MB_OPTIM_RUNNING);
    uint64_t best_id;
    double best;
    CU_ASSERT_EQUAL(mb_optim_best(o, &best_id, &best, NULL), MB_OK);
    CU_ASSERT_EQUAL(best_id, a);
    CU_ASSERT_EQUAL(best, 2.0);
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

/* ---- pruners ---- */

static mb_optim *pruning_optim(mb_optim_pruner kind, mb_optim_space **sp)
{
    CU_ASSERT_FATAL(mb_optim_space_new(sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(*sp, "x", 0, 1, 0, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_RANDOM);
    cfg.max_trials = 1000;
    cfg.pruner.kind = kind;
    mb_optim *o;
    CU_ASSERT_FATAL(mb_optim_new(*sp, &cfg, &o, NULL) == MB_OK);
    return o;
}

/* Run a trial reporting curve(step) at steps 1..n, stopping when pruned;
 * returns the number of steps reported. */
static int run_curve(mb_optim *o, double offset, int n, int complete)
{
    double x[1];
    uint64_t id;
    CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
    for (int step = 1; step <= n; step++) {
        int prune = 0;
        CU_ASSERT_EQUAL_FATAL(
            mb_optim_report(o, id, (uint64_t)step, offset + 1.0 / step, &prune, NULL), MB_OK);
        if (prune) {
            CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, id), MB_OPTIM_PRUNED);
            CU_ASSERT_EQUAL(mb_optim_report(o, id, (uint64_t)step + 1, 0, NULL, NULL), MB_ESTATE);
            return step;
        }
    }
    if (complete)
        CU_ASSERT_EQUAL(mb_optim_complete(o, id, offset, NULL), MB_OK);
    return n;
}

static void test_median_pruner_stops_curves_worse_than_the_median(void)
{
    mb_optim_space *sp;
    mb_optim *o = pruning_optim(MB_OPTIM_PRUNE_MEDIAN, &sp);
    /* before n_startup_trials (5) completed trials nothing is pruned */
    CU_ASSERT_EQUAL(run_curve(o, 100.0, 10, 1), 10);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(run_curve(o, (double)i, 10, 1), 10);
    /* completed offsets 100,0,1,2,3: median 2 */
    CU_ASSERT_EQUAL(run_curve(o, 50.0, 10, 1), 1);
    CU_ASSERT_EQUAL(run_curve(o, 1.5, 10, 1), 10);
    /* a curve that starts well and then turns bad stops at that step */
    double x[1];
    uint64_t id;
    int prune = -1;
    CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_report(o, id, 1, 0.0, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 0);
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

static void test_asha_promotes_only_the_top_of_each_rung(void)
{
    mb_optim_space *sp;
    mb_optim *o = pruning_optim(MB_OPTIM_PRUNE_ASHA, &sp); /* eta 3, rungs at 1, 3, 9 */
    double x[1];
    uint64_t id[8];
    int prune;
    double step1[] = { 5, 6, 1, 4, 0.5, 7 };
    int want[] = { 0, 1, 0, 1, 0, 1 };
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id[i], x, NULL), MB_OK);
        CU_ASSERT_EQUAL(mb_optim_report(o, id[i], 1, step1[i], &prune, NULL), MB_OK);
        CU_ASSERT_EQUAL(prune, want[i]);
    }
    /* rung 0 now holds 6 values: the best two (0.5, 1) may go on */
    CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id[6], x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_report(o, id[6], 1, 0.9, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 0); /* 7 values, floor(7/3)=2 promotions, 0.9 is 2nd */
    CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id[7], x, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_report(o, id[7], 1, 3.0, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 1);
    /* between rungs nothing is decided; at step 3 trial 0 enters rung 1 */
    CU_ASSERT_EQUAL(mb_optim_report(o, id[0], 2, 99.0, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 0);
    CU_ASSERT_EQUAL(mb_optim_report(o, id[0], 3, 4.0, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 0); /* first in rung 1 */
    CU_ASSERT_EQUAL(mb_optim_report(o, id[2], 3, 4.5, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 1); /* rung 1: {4, 4.5}, one promotion */
    CU_ASSERT_EQUAL(mb_optim_report(o, id[4], 5, 0.1, &prune, NULL), MB_OK);
    CU_ASSERT_EQUAL(prune, 0); /* reached rung 1 past its step: recorded, best */
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

static void test_hyperband_uses_every_bracket_and_spares_the_full_budget_one(void)
{
    mb_optim_space *sp;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "x", 0, 1, 0, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_RANDOM);
    cfg.max_trials = 400;
    cfg.pruner.kind = MB_OPTIM_PRUNE_HYPERBAND; /* min 1, max 81, eta 3: 5 brackets */
    mb_optim *o;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    CU_ASSERT_EQUAL(o->nbrackets, 5);
    int per_bracket[5] = { 0 }, first_stop[5] = { 0 };
    for (int t = 0; t < 400; t++) {
        double x[1];
        uint64_t id;
        CU_ASSERT_EQUAL_FATAL(mb_optim_suggest(o, &id, x, NULL), MB_OK);
        uint32_t b = o->trials[id].bracket;
        CU_ASSERT_FATAL(b < 5);
        per_bracket[b]++;
        for (int step = 1; step <= 81; step++) {
            int prune;
            /* worse trials later: each new trial is the worst so far */
            CU_ASSERT_EQUAL_FATAL(mb_optim_report(o, id, (uint64_t)step, (double)t, &prune, NULL),
                                  MB_OK);
            if (prune) {
                /* never before the bracket's first rung at 3^b */
                CU_ASSERT(step >= (int)pow(3, b));
                if (first_stop[b] == 0)
                    first_stop[b] = step;
                break;
            }
        }
        if (mb_optim_trial_state_of(o, id) == MB_OPTIM_RUNNING)
            mb_optim_complete(o, id, (double)t, NULL);
    }
    for (int b = 0; b < 5; b++)
        CU_ASSERT(per_bracket[b] > 0);
    CU_ASSERT(per_bracket[0] > per_bracket[4]); /* aggressive brackets get more trials */
    CU_ASSERT_EQUAL(first_stop[0], 1);
    CU_ASSERT_EQUAL(first_stop[4], 0); /* the full-budget bracket never stops a trial */
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

/* ---- bandit ---- */

static void test_bandits_try_every_arm_and_favour_the_rewarded_one(void)
{
    mb_optim_bandit algs[] = { MB_OPTIM_BANDIT_UCB1, MB_OPTIM_BANDIT_THOMPSON };
    for (int a = 0; a < 2; a++) {
        optim_bandit_state b;
        optim_bandit_init(&b, algs[a], 4, 1.0);
        optim_rng rng;
        optim_rng_seed(&rng, 3, 0);
        int count[4] = { 0 };
        for (int t = 0; t < 400; t++) {
            uint32_t arm = optim_bandit_select(&b, &rng);
            CU_ASSERT_FATAL(arm < 4);
            count[arm]++;
            /* arm 2 improves 60% of the time, others 10% (deterministic) */
            double p = arm == 2 ? 0.6 : 0.1;
            optim_bandit_update(&b, arm, optim_rng_uniform(&rng) < p ? 1.0 : 0.0);
        }
        for (int k = 0; k < 4; k++)
            CU_ASSERT(count[k] > 0);
        CU_ASSERT(count[2] > 200);
    }
}

/* ---- save / restore ---- */

/* Drive an optimiser through a mixed history: completes, fails, reports
 * (possibly pruned), and trials left running. */
static void drive(mb_optim *o, int n, int base)
{
    for (int t = 0; t < n; t++) {
        double x[6];
        uint64_t id;
        if (mb_optim_suggest(o, &id, x, NULL) != MB_OK)
            return;
        int k = (base + t) % 7;
        if (k == 3) {
            mb_optim_fail(o, id, NULL);
        } else if (k == 5) {
            continue; /* left running */
        } else {
            int prune = 0;
            for (int step = 1; step <= 4 && !prune; step++)
                mb_optim_report(o, id, (uint64_t)step, mixed_objective(x) + 1.0 / step, &prune,
                                NULL);
            if (!prune)
                mb_optim_complete(o, id, mixed_objective(x), NULL);
        }
    }
}

static void test_restore_replays_to_identical_next_suggestions(void)
{
    mb_optim_space *sp = mixed_space();
    mb_optim_pruner pruners[] = { MB_OPTIM_PRUNE_NONE, MB_OPTIM_PRUNE_MEDIAN, MB_OPTIM_PRUNE_ASHA,
                                  MB_OPTIM_PRUNE_HYPERBAND };
    for (size_t s = 0; s < NSTRATEGIES; s++) {
        mb_optim_config cfg;
        mb_optim_config_default(&cfg, all_strategies[s]);
        cfg.seed = 1234567890123ull;
        cfg.max_trials = 200;
        cfg.pruner.kind = pruners[s % 4];
        cfg.pruner.n_startup_trials = 2;
        mb_optim *a, *b = NULL;
        CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &a, NULL) == MB_OK);
        drive(a, 40, 0);
        char *json;
        size_t len;
        mb_error err;
        CU_ASSERT_FATAL(mb_optim_save(a, &json, &len, NULL) == MB_OK);
        int rv = mb_optim_restore(json, len, &b, &err);
        if (rv != MB_OK)
            fprintf(stderr, "restore %s: %s\n", mb_optim_strategy_name(all_strategies[s]), err.msg);
        CU_ASSERT_FATAL(rv == MB_OK);
        CU_ASSERT_EQUAL(mb_optim_ntrials(a), mb_optim_ntrials(b));
        /* both continue identically, including a save of the restored copy */
        drive(a, 30, 40);
        drive(b, 30, 40);
        char *ja, *jb;
        CU_ASSERT_FATAL(mb_optim_save(a, &ja, NULL, NULL) == MB_OK);
        CU_ASSERT_FATAL(mb_optim_save(b, &jb, NULL, NULL) == MB_OK);
        CU_ASSERT_STRING_EQUAL(ja, jb);
        for (size_t i = 0; i < mb_optim_ntrials(a); i++)
            CU_ASSERT_EQUAL(memcmp(a->trials[i].x, b->trials[i].x, 6 * sizeof(double)), 0);
        free(json);
        free(ja);
        free(jb);
        mb_optim_free(a);
        mb_optim_free(b);
    }
    mb_optim_space_free(sp);
}

static void test_restore_rejects_corrupt_documents(void)
{
    mb_optim_space *sp = mixed_space();
    mb_optim *a = new_optim(sp, MB_OPTIM_TPE, 1, 50), *b = NULL;
    drive(a, 12, 0);
    char *json;
    size_t len;
    CU_ASSERT_FATAL(mb_optim_save(a, &json, &len, NULL) == MB_OK);
    mb_error err;
    CU_ASSERT_EQUAL(mb_optim_restore(json, len / 2, &b, &err), MB_EINVAL);
    CU_ASSERT_PTR_NULL(b);
    char *evil = strdup(json);
    char *ev = strstr(evil, "[\"c\",");
    CU_ASSERT_FATAL(ev != NULL);

    ev[5] = '9'; /* complete a trial that never was suggested (or twice) */
    int rv = mb_optim_restore(evil, strlen(evil), &b, &err);
    CU_ASSERT_EQUAL(rv, MB_ECORRUPT);
    CU_ASSERT_PTR_NULL(b);
    char *ver = strstr(evil, "\"version\":1");
    CU_ASSERT_FATAL(ver != NULL);
    ver[10] = '7';
    rv = mb_optim_restore(evil, strlen(evil), &b, &err);
    CU_ASSERT_EQUAL(rv, MB_ENOTSUP);
    if (rv != MB_ENOTSUP)
        fprintf(stderr, "restore: %s\n", err.msg);
    const char *other = "{\"format\":\"something\",\"version\":1,\"events\":[]}";
    CU_ASSERT_EQUAL(mb_optim_restore(other, strlen(other), &b, &err), MB_EINVAL);
    free(evil);
    free(json);
    mb_optim_free(a);
    mb_optim_space_free(sp);
}

static CU_TestInfo space_tests[] = {
    { "space_rejects_contradictory_bounds", test_space_rejects_contradictory_bounds },
    { "int_high_is_lowered_to_last_step", test_int_high_is_lowered_to_last_step },
    { "space_json_round_trip", test_space_json_round_trip },
    { "space_json_rejects_malformed_input", test_space_json_rejects_malformed_input },
    { "new_rejects_empty_space_zero_budget_and_unknown_strategy",
      test_new_rejects_empty_space_zero_budget_and_unknown_strategy },
    { "config_json_round_trip_and_errors", test_config_json_round_trip_and_errors },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo strategy_tests[] = {
    { "every_strategy_suggests_only_valid_values", test_every_strategy_suggests_only_valid_values },
    { "same_seed_gives_same_suggestions_bit_for_bit",
      test_same_seed_gives_same_suggestions_bit_for_bit },
    { "grid_enumerates_every_point_exactly_once", test_grid_enumerates_every_point_exactly_once },
    { "sobol_first_two_dims_are_a_0_m_2_net", test_sobol_first_two_dims_are_a_0_m_2_net },
    { "halton_each_dim_stratifies_base_power_points",
      test_halton_each_dim_stratifies_base_power_points },
    { "sobol_and_halton_have_lower_discrepancy_than_random",
      test_sobol_and_halton_have_lower_discrepancy_than_random },
    { "testfn_known_optima", test_testfn_known_optima },
    { "random_and_qmc_make_progress_on_branin", test_random_and_qmc_make_progress_on_branin },
    { "tpe_converges_on_branin_and_hartmann", test_tpe_converges_on_branin_and_hartmann },
    { "cmaes_converges_on_rosenbrock_and_ackley", test_cmaes_converges_on_rosenbrock_and_ackley },
    { "portfolio_converges_on_branin", test_portfolio_converges_on_branin },
    { "trial_strategy_names_the_portfolio_arm", test_trial_strategy_names_the_portfolio_arm },
    { "model_strategies_learn_the_best_choice", test_model_strategies_learn_the_best_choice },
    { "maximize_finds_the_maximum", test_maximize_finds_the_maximum },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo lifecycle_tests[] = {
    { "trial_lifecycle_errors", test_trial_lifecycle_errors },
    { "median_pruner_stops_curves_worse_than_the_median",
      test_median_pruner_stops_curves_worse_than_the_median },
    { "asha_promotes_only_the_top_of_each_rung", test_asha_promotes_only_the_top_of_each_rung },
    { "hyperband_uses_every_bracket_and_spares_the_full_budget_one",
      test_hyperband_uses_every_bracket_and_spares_the_full_budget_one },
    { "bandits_try_every_arm_and_favour_the_rewarded_one",
      test_bandits_try_every_arm_and_favour_the_rewarded_one },
    { "restore_replays_to_identical_next_suggestions",
      test_restore_replays_to_identical_next_suggestions },
    { "restore_rejects_corrupt_documents", test_restore_rejects_corrupt_documents },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "space", NULL, NULL, NULL, NULL, space_tests },
    { "strategies", NULL, NULL, NULL, NULL, strategy_tests },
    { "lifecycle", NULL, NULL, NULL, NULL, lifecycle_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
