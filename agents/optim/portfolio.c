/* The bandit allocator (UCB1 or Thompson sampling with Beta posteriors over
 * Bernoulli rewards) and the portfolio strategy built on it: each
 * suggestion is delegated to one arm (TPE, CMA-ES, Sobol, random); when a
 * trial completes, its arm is rewarded 1 if it improved on the best value
 * seen before, else 0. All arms share the history of completed trials. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

void optim_bandit_init(optim_bandit_state *b, mb_optim_bandit algorithm, uint32_t narms,
                       double ucb_c)
{
    memset(b, 0, sizeof(*b));
    b->algorithm = algorithm;
    b->narms = narms > 8 ? 8 : narms;
    b->ucb_c = ucb_c;
}

uint32_t optim_bandit_select(const optim_bandit_state *b, optim_rng *rng)
{
    uint32_t best = 0;
    double best_score = -INFINITY;
    uint64_t total = 0;
    for (uint32_t a = 0; a < b->narms; a++)
        total += b->pulls[a];
    for (uint32_t a = 0; a < b->narms; a++) {
        double score;
        if (b->algorithm == MB_OPTIM_BANDIT_THOMPSON) {
            double wins = b->reward[a], losses = (double)b->pulls[a] - b->reward[a];
            score = optim_rng_beta(rng, 1.0 + wins, 1.0 + (losses > 0 ? losses : 0));
        } else {
            if (b->pulls[a] == 0)
                return a; /* every arm once first */
            double mean = b->reward[a] / (double)b->pulls[a];
            score = mean + b->ucb_c * sqrt(2.0 * log((double)total) / (double)b->pulls[a]);
        }
        if (score > best_score) {
            best_score = score;
            best = a;
        }
    }
    return best;
}

void optim_bandit_update(optim_bandit_state *b, uint32_t arm, double reward)
{
    if (arm >= b->narms)
        return;
    b->pulls[arm]++;
    b->reward[arm] += reward < 0 ? 0 : (reward > 1 ? 1 : reward);
}

/* ---- portfolio strategy ---- */

#define PORTFOLIO_ARMS 4
static const struct optim_strategy_ops *const *portfolio_arm_ops(void)
{
    static const struct optim_strategy_ops *const arms[PORTFOLIO_ARMS] = {
        &optim_tpe_ops, &optim_cmaes_ops, &optim_sobol_ops, &optim_random_ops
    };
    return arms;
}

struct portfolio_state {
    optim_bandit_state bandit;
    void *sub[PORTFOLIO_ARMS];
    double best;
    int have_best;
};

static void portfolio_free(void *state)
{
    struct portfolio_state *p = state;
    const struct optim_strategy_ops *const *arms = portfolio_arm_ops();
    for (uint32_t a = 0; a < PORTFOLIO_ARMS; a++)
        if (p->sub[a] != NULL)
            arms[a]->free(p->sub[a]);
    free(p);
}

static int portfolio_init(mb_optim *o, uint32_t arm, void **state, mb_error *err)
{
    struct portfolio_state *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return mb_errorf(err, MB_ENOMEM, "portfolio");
    const struct optim_strategy_ops *const *arms = portfolio_arm_ops();
    optim_bandit_init(&p->bandit, o->cfg.portfolio.algorithm, PORTFOLIO_ARMS,
                      o->cfg.portfolio.ucb_c);
    for (uint32_t a = 0; a < PORTFOLIO_ARMS; a++) {
        int rv = arms[a]->init(o, a + 1, &p->sub[a], err);
        if (rv != MB_OK) {
            portfolio_free(p);
            return rv;
        }
    }
    *state = p;
    return MB_OK;
}

static int portfolio_suggest(mb_optim *o, void *state, struct optim_trial *t, optim_rng *rng,
                             mb_error *err)
{
    struct portfolio_state *p = state;
    const struct optim_strategy_ops *const *arms = portfolio_arm_ops();
    uint32_t a = optim_bandit_select(&p->bandit, rng);
    t->arm = a + 1;
    return arms[a]->suggest(o, p->sub[a], t, rng, err);
}

static void portfolio_finished(mb_optim *o, void *state, struct optim_trial *t)
{
    struct portfolio_state *p = state;
    const struct optim_strategy_ops *const *arms = portfolio_arm_ops();
    if (t->arm < 1 || t->arm > PORTFOLIO_ARMS)
        return;
    if (t->state == MB_OPTIM_COMPLETE) {
        int improved = !p->have_best || t->value < p->best;
        optim_bandit_update(&p->bandit, t->arm - 1, improved ? 1.0 : 0.0);
        if (improved) {
            p->best = t->value;
            p->have_best = 1;
        }
    } else {
        optim_bandit_update(&p->bandit, t->arm - 1, 0.0);
    }
    for (uint32_t a = 0; a < PORTFOLIO_ARMS; a++)
        if (arms[a]->finished != NULL)
            arms[a]->finished(o, p->sub[a], t);
}

const struct optim_strategy_ops optim_portfolio_ops = { portfolio_init, portfolio_suggest,
                                                        portfolio_finished, portfolio_free };

mb_optim_strategy mb_optim_trial_strategy(const mb_optim *o, uint64_t trial_id)
{
    static const mb_optim_strategy arm_strategy[PORTFOLIO_ARMS] = { MB_OPTIM_TPE, MB_OPTIM_CMAES,
                                                                    MB_OPTIM_SOBOL,
                                                                    MB_OPTIM_RANDOM };
    if (o == NULL || trial_id >= o->n)
        return 0;
    if (o->cfg.strategy != MB_OPTIM_PORTFOLIO)
        return o->cfg.strategy;
    uint32_t arm = o->trials[trial_id].arm;
    return arm >= 1 && arm <= PORTFOLIO_ARMS ? arm_strategy[arm - 1] : MB_OPTIM_PORTFOLIO;
}
