/* Tests of the optimisation library's pieces for replicated studies:
 * stateless pruning decisions (mb_optim_prune_decide) that match an
 * optimiser's own pruner, trials pruned by an outside decision
 * (mb_optim_prune, also through save/restore), and the partitioned
 * coordinated search (mb_optim_part): complete configurations, one group
 * being the plain optimiser, determinism per seed, every group learning
 * from every trial. */
#include <math.h>
#include <mabeam/optim.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"

#define NTRIALS 60
#define NSTEPS  12

/* A deterministic pseudo-random stream for the test's own curves. */
static double lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

typedef struct curve_buf {
    uint64_t steps[NSTEPS];
    double values[NSTEPS];
} curve_buf;

/* Feed NTRIALS learning curves, 4 trials running at once with their
 * reports interleaved, both to an optimiser with `pruner` and to the
 * stateless decision; every decision must agree. Returns the number of
 * pruned trials. */
static int compare_pruner(mb_optim_pruner pruner, int maximize, uint64_t seed)
{
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_space_new(&sp, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_space_add_float(sp, "x", 0, 1, 0, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_RANDOM);
    cfg.seed = seed;
    cfg.maximize = maximize;
    cfg.max_trials = NTRIALS;
    cfg.pruner.kind = pruner;
    cfg.pruner.n_startup_trials = 3;
    cfg.pruner.max_resource = 9;
    mb_optim *o = NULL;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    static curve_buf buf[NTRIALS];
    mb_optim_curve cv[NTRIALS];
    double offset[NTRIALS];
    int step_of[NTRIALS];
    memset(cv, 0, sizeof(cv));
    uint64_t rs = seed * 7919 + 1;
    int pruned = 0, started = 0, running[4], nrun = 0;
    while (started < NTRIALS || nrun > 0) {
        while (nrun < 4 && started < NTRIALS) {
            double x[1];
            uint64_t id;
            CU_ASSERT_FATAL(mb_optim_suggest(o, &id, x, NULL) == MB_OK);
            CU_ASSERT_FATAL(id == (uint64_t)started);
            cv[started] = (mb_optim_curve){ .id = id,
                                            .steps = buf[started].steps,
                                            .values = buf[started].values };
            offset[started] = lcg(&rs) * 10.0;
            step_of[started] = 0;
            running[nrun++] = started++;
        }
        int k = (int)(lcg(&rs) * nrun);
        int t = running[k];
        int step = ++step_of[t];
        double v = offset[t] + 5.0 / step + lcg(&rs);
        if (maximize)
            v = -v;
        buf[t].steps[cv[t].n] = (uint64_t)step;
        buf[t].values[cv[t].n] = v;
        cv[t].n++;
        int want = -1, got = -1;
        CU_ASSERT_FATAL(mb_optim_report(o, (uint64_t)t, (uint64_t)step, v, &want, NULL) == MB_OK);
        CU_ASSERT_FATAL(mb_optim_prune_decide(&cfg, cv, (size_t)started, (size_t)t, &got, NULL) ==
                        MB_OK);
        CU_ASSERT_EQUAL(got, want);
        if (want || step == NSTEPS) {
            if (want) {
                pruned++;
            } else {
                CU_ASSERT_FATAL(mb_optim_complete(o, (uint64_t)t, v, NULL) == MB_OK);
                cv[t].complete = 1;
            }
            running[k] = running[--nrun];
        }
    }
    mb_optim_free(o);
    mb_optim_space_free(sp);
    return pruned;
}

static void test_stateless_decisions_match_the_optimisers_pruner(void)
{
    static const mb_optim_pruner kinds[] = { MB_OPTIM_PRUNE_MEDIAN, MB_OPTIM_PRUNE_ASHA,
                                             MB_OPTIM_PRUNE_HYPERBAND };
    for (size_t i = 0; i < 3; i++)
        for (int maximize = 0; maximize < 2; maximize++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                CU_ASSERT(compare_pruner(kinds[i], maximize, seed) > 0);
    /* no pruner: never */
    CU_ASSERT_EQUAL(compare_pruner(MB_OPTIM_PRUNE_NONE, 0, 1), 0);
}

static void test_stateless_decision_rejects_bad_input(void)
{
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    cfg.pruner.kind = MB_OPTIM_PRUNE_ASHA;
    cfg.pruner.reduction_factor = 1;
    uint64_t steps[2] = { 2, 1 };
    double vals[2] = { 1, 2 };
    mb_optim_curve c = { .id = 0, .steps = steps, .values = vals, .n = 1 };
    int p = -1;
    mb_error e;
    CU_ASSERT_EQUAL(mb_optim_prune_decide(&cfg, &c, 1, 0, &p, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_pruner_check(&cfg, NULL), MB_EINVAL);
    cfg.pruner.reduction_factor = 3;
    CU_ASSERT_EQUAL(mb_optim_pruner_check(&cfg, NULL), MB_OK);
    CU_ASSERT_EQUAL(mb_optim_prune_decide(&cfg, &c, 1, 1, &p, &e), MB_EINVAL);
    c.n = 2; /* steps do not increase */
    CU_ASSERT_EQUAL(mb_optim_prune_decide(&cfg, &c, 1, 0, &p, &e), MB_EINVAL);
    vals[0] = NAN;
    c.n = 1;
    CU_ASSERT_EQUAL(mb_optim_prune_decide(&cfg, &c, 1, 0, &p, &e), MB_EINVAL);
}

static void test_outside_prune_marks_the_trial_and_survives_restore(void)
{
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_testfn_space(MB_OPTIM_BRANIN, 2, &sp, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    cfg.seed = 5;
    cfg.tpe.n_startup_trials = 3;
    mb_optim *o = NULL;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    for (int i = 0; i < 8; i++) {
        double x[2];
        uint64_t id;
        CU_ASSERT_FATAL(mb_optim_suggest(o, &id, x, NULL) == MB_OK);
        double v = mb_optim_testfn_eval(MB_OPTIM_BRANIN, 2, x);
        CU_ASSERT_FATAL(mb_optim_report(o, id, 1, v + 1, NULL, NULL) == MB_OK);
        int rc = i % 3 == 1 ? mb_optim_prune(o, id, NULL) : mb_optim_complete(o, id, v, NULL);
        CU_ASSERT_FATAL(rc == MB_OK);
    }
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, 1), MB_OPTIM_PRUNED);
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, 2), MB_OPTIM_COMPLETE);
    CU_ASSERT_EQUAL(mb_optim_prune(o, 1, NULL), MB_ESTATE);
    CU_ASSERT_EQUAL(mb_optim_prune(o, 99, NULL), MB_ENOTFOUND);
    char *doc = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(mb_optim_save(o, &doc, &len, NULL) == MB_OK);
    mb_optim *r = NULL;
    CU_ASSERT_FATAL(mb_optim_restore(doc, len, &r, NULL) == MB_OK);
    CU_ASSERT_EQUAL(mb_optim_trial_state_of(r, 4), MB_OPTIM_PRUNED);
    double a[2], b[2];
    uint64_t ia, ib;
    CU_ASSERT_FATAL(mb_optim_suggest(o, &ia, a, NULL) == MB_OK);
    CU_ASSERT_FATAL(mb_optim_suggest(r, &ib, b, NULL) == MB_OK);
    CU_ASSERT_EQUAL(ia, ib);
    CU_ASSERT(memcmp(a, b, sizeof(a)) == 0);
    free(doc);
    mb_optim_free(r);
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

/* Run `n` trials of Hartmann-6 through a partitioned optimiser; the
 * suggestions into `xs` (n x 6), the best value returned. */
static double run_part(mb_optim_strategy strat, uint64_t seed, const uint32_t *groups, uint32_t ng,
                       int n, double *xs)
{
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_testfn_space(MB_OPTIM_HARTMANN6, 6, &sp, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, strat);
    cfg.seed = seed;
    cfg.max_trials = (uint32_t)n;
    mb_optim_part *p = NULL;
    CU_ASSERT_FATAL(mb_optim_part_new(sp, &cfg, groups, ng, &p, NULL) == MB_OK);
    CU_ASSERT_EQUAL(mb_optim_part_ngroups(p), ng > 0 ? ng : 1);
    double best = INFINITY;
    for (int i = 0; i < n; i++) {
        uint64_t id;
        double *x = &xs[i * 6];
        CU_ASSERT_FATAL(mb_optim_part_suggest(p, &id, x, NULL) == MB_OK);
        CU_ASSERT_EQUAL(id, (uint64_t)i);
        CU_ASSERT_EQUAL(mb_optim_space_check(sp, x, NULL), MB_OK);
        double v = mb_optim_testfn_eval(MB_OPTIM_HARTMANN6, 6, x);
        if (i % 7 == 3) {
            CU_ASSERT_FATAL(mb_optim_part_fail(p, id, NULL) == MB_OK);
            continue;
        }
        CU_ASSERT_FATAL(mb_optim_part_complete(p, id, v, NULL) == MB_OK);
        best = fmin(best, v);
    }
    double x[6];
    uint64_t id;
    CU_ASSERT_EQUAL(mb_optim_part_suggest(p, &id, x, NULL), MB_ERANGE);
    /* every group optimiser saw every trial and its outcome */
    for (uint32_t g = 0; g < mb_optim_part_ngroups(p); g++) {
        const mb_optim *o = mb_optim_part_group(p, g);
        CU_ASSERT_EQUAL(mb_optim_ntrials(o), (size_t)n);
        CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, 3), MB_OPTIM_FAILED);
        CU_ASSERT_EQUAL(mb_optim_trial_state_of(o, 4), MB_OPTIM_COMPLETE);
    }
    CU_ASSERT_PTR_NULL(mb_optim_part_group(p, 9));
    mb_optim_part_free(p);
    mb_optim_space_free(sp);
    return best;
}

static void test_one_group_is_the_plain_optimiser(void)
{
    enum { N = 40 };
    static double xs[N * 6];
    run_part(MB_OPTIM_TPE, 11, NULL, 1, N, xs);
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_testfn_space(MB_OPTIM_HARTMANN6, 6, &sp, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    cfg.seed = 11;
    cfg.max_trials = N;
    mb_optim *o = NULL;
    CU_ASSERT_FATAL(mb_optim_new(sp, &cfg, &o, NULL) == MB_OK);
    for (int i = 0; i < N; i++) {
        double x[6];
        uint64_t id;
        CU_ASSERT_FATAL(mb_optim_suggest(o, &id, x, NULL) == MB_OK);
        CU_ASSERT(memcmp(x, &xs[i * 6], sizeof(x)) == 0);
        if (i % 7 == 3)
            mb_optim_fail(o, id, NULL);
        else
            mb_optim_complete(o, id, mb_optim_testfn_eval(MB_OPTIM_HARTMANN6, 6, x), NULL);
    }
    mb_optim_free(o);
    mb_optim_space_free(sp);
}

static void test_partitioned_search_is_complete_deterministic_and_learns(void)
{
    enum { N = 120 };
    static double a[N * 6], b[N * 6], c[N * 6];
    static const uint32_t two[6] = { 0, 0, 0, 1, 1, 1 }, three[6] = { 0, 1, 2, 0, 1, 2 };
    static const mb_optim_strategy strats[] = { MB_OPTIM_TPE, MB_OPTIM_CMAES, MB_OPTIM_RANDOM };
    for (size_t s = 0; s < 3; s++) {
        double best = run_part(strats[s], 3, two, 2, N, a);
        run_part(strats[s], 3, two, 2, N, b);
        CU_ASSERT(memcmp(a, b, sizeof(a)) == 0); /* same seed, same trials */
        run_part(strats[s], 4, two, 2, N, c);
        CU_ASSERT(memcmp(a, c, sizeof(a)) != 0);
        run_part(strats[s], 3, three, 3, N, c);
        CU_ASSERT(memcmp(a, c, sizeof(a)) != 0);
        /* learning, not only sampling: well below a random point's mean (~-0.26) */
        if (strats[s] != MB_OPTIM_RANDOM)
            CU_ASSERT(best < -2.0);
    }
}

static void test_partition_rejects_bad_groups_and_grids(void)
{
    mb_optim_space *sp = NULL;
    CU_ASSERT_FATAL(mb_optim_testfn_space(MB_OPTIM_BRANIN, 2, &sp, NULL) == MB_OK);
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    mb_optim_part *p = NULL;
    mb_error e;
    uint32_t empty[2] = { 0, 0 }, out[2] = { 0, 5 }, ok[2] = { 1, 0 };
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, empty, 2, &p, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, out, 2, &p, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, ok, 3, &p, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, NULL, 2, &p, &e), MB_EINVAL);
    CU_ASSERT_PTR_NULL(p);
    mb_optim_config_default(&cfg, MB_OPTIM_GRID);
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, ok, 2, &p, &e), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_optim_part_new(sp, &cfg, NULL, 1, &p, &e), MB_OK);
    mb_optim_part_free(p);
    mb_optim_space_free(sp);
}

static CU_TestInfo prune_tests[] = {
    { "stateless_decisions_match_the_optimisers_pruner",
      test_stateless_decisions_match_the_optimisers_pruner },
    { "stateless_decision_rejects_bad_input", test_stateless_decision_rejects_bad_input },
    { "outside_prune_marks_the_trial_and_survives_restore",
      test_outside_prune_marks_the_trial_and_survives_restore },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo part_tests[] = {
    { "one_group_is_the_plain_optimiser", test_one_group_is_the_plain_optimiser },
    { "partitioned_search_is_complete_deterministic_and_learns",
      test_partitioned_search_is_complete_deterministic_and_learns },
    { "partition_rejects_bad_groups_and_grids", test_partition_rejects_bad_groups_and_grids },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "prune", NULL, NULL, NULL, NULL, prune_tests },
    { "partition", NULL, NULL, NULL, NULL, part_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
