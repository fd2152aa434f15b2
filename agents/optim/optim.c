/* The optimiser object: configuration (defaults, validation, JSON), trial
 * bookkeeping and its lifecycle (RUNNING -> COMPLETE | PRUNED | FAILED),
 * dispatch to the strategy and the pruner, and save/restore by replaying
 * the recorded history of calls. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

/* ---- Names ---- */

static const char *const strategy_names[] = { NULL,     "random", "grid",  "sobol",
                                              "halton", "tpe",    "cmaes", "portfolio" };
static const char *const pruner_names[] = { "none", "median", "asha", "hyperband" };
static const char *const bandit_names[] = { NULL, "ucb1", "thompson" };

const char *mb_optim_strategy_name(mb_optim_strategy s)
{
    return (s >= MB_OPTIM_RANDOM && s <= MB_OPTIM_PORTFOLIO) ? strategy_names[s] : "unknown";
}

int mb_optim_strategy_parse(const char *name, mb_optim_strategy *out, mb_error *err)
{
    for (int i = MB_OPTIM_RANDOM; name != NULL && i <= MB_OPTIM_PORTFOLIO; i++)
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (mb_optim_strategy)i;
            return MB_OK;
        }
    return mb_errorf(err, MB_EINVAL,
                     "unknown strategy '%s' (random, grid, sobol, halton, tpe, "
                     "cmaes, portfolio)",
                     name ? name : "(null)");
}

const char *mb_optim_pruner_name(mb_optim_pruner p)
{
    return (p <= MB_OPTIM_PRUNE_HYPERBAND) ? pruner_names[p] : "unknown";
}

int mb_optim_pruner_parse(const char *name, mb_optim_pruner *out, mb_error *err)
{
    for (int i = 0; name != NULL && i <= MB_OPTIM_PRUNE_HYPERBAND; i++)
        if (strcmp(name, pruner_names[i]) == 0) {
            *out = (mb_optim_pruner)i;
            return MB_OK;
        }
    return mb_errorf(err, MB_EINVAL, "unknown pruner '%s' (none, median, asha, hyperband)",
                     name ? name : "(null)");
}

const struct optim_strategy_ops *optim_strategy_ops_for(mb_optim_strategy s)
{
    switch (s) {
    case MB_OPTIM_RANDOM:
        return &optim_random_ops;
    case MB_OPTIM_GRID:
        return &optim_grid_ops;
    case MB_OPTIM_SOBOL:
        return &optim_sobol_ops;
    case MB_OPTIM_HALTON:
        return &optim_halton_ops;
    case MB_OPTIM_TPE:
        return &optim_tpe_ops;
    case MB_OPTIM_CMAES:
        return &optim_cmaes_ops;
    case MB_OPTIM_PORTFOLIO:
        return &optim_portfolio_ops;
    }
    return NULL;
}

/* ---- Configuration ---- */

void mb_optim_config_default(mb_optim_config *cfg, mb_optim_strategy strategy)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->strategy = strategy;
    cfg->max_trials = 100;
    cfg->tpe.n_startup_trials = 10;
    cfg->tpe.n_ei_candidates = 24;
    cfg->tpe.gamma = 0.1;
    cfg->tpe.gamma_max = 25;
    cfg->tpe.prior_weight = 1.0;
    cfg->tpe.multivariate = 1;
    cfg->tpe.magic_clip = 1;
    cfg->cmaes.sigma0 = 0.1;
    cfg->cmaes.restarts = 1;
    cfg->grid.points_per_dim = 5;
    cfg->qmc.scramble = 1;
    cfg->portfolio.algorithm = MB_OPTIM_BANDIT_UCB1;
    cfg->portfolio.ucb_c = 1.0;
    cfg->pruner.kind = MB_OPTIM_PRUNE_NONE;
    cfg->pruner.n_startup_trials = 5;
    cfg->pruner.n_min_trials = 1;
    cfg->pruner.min_resource = 1;
    cfg->pruner.reduction_factor = 3;
    cfg->pruner.max_resource = 81;
}

static int config_check(const mb_optim_config *c, mb_error *err)
{
    if (optim_strategy_ops_for(c->strategy) == NULL)
        return mb_errorf(err, MB_EINVAL, "unknown strategy %d", (int)c->strategy);
    if (c->max_trials == 0)
        return mb_errorf(err, MB_EINVAL, "budget: max_trials must be > 0");
    if (c->tpe.n_ei_candidates < 1 || c->tpe.n_ei_candidates > 4096)
        return mb_errorf(err, MB_EINVAL, "tpe.n_ei_candidates must be 1..4096");
    if (!(c->tpe.gamma > 0.0 && c->tpe.gamma <= 1.0) || c->tpe.gamma_max < 1)
        return mb_errorf(err, MB_EINVAL, "tpe.gamma must be in (0,1] and gamma_max >= 1");
    if (!(c->tpe.prior_weight > 0.0 && c->tpe.prior_weight < 1e6))
        return mb_errorf(err, MB_EINVAL, "tpe.prior_weight must be in (0, 1e6)");
    if (!(c->cmaes.sigma0 >= 0.0 && c->cmaes.sigma0 <= 1.0) || c->cmaes.popsize > 100000)
        return mb_errorf(err, MB_EINVAL, "cmaes.sigma0 must be in [0,1], popsize <= 100000");
    if (c->grid.points_per_dim < 1 || c->grid.points_per_dim > 1000000)
        return mb_errorf(err, MB_EINVAL, "grid.points_per_dim must be 1..1000000");
    if (c->portfolio.algorithm != MB_OPTIM_BANDIT_UCB1 &&
        c->portfolio.algorithm != MB_OPTIM_BANDIT_THOMPSON)
        return mb_errorf(err, MB_EINVAL, "portfolio.algorithm must be ucb1 or thompson");
    if (!(c->portfolio.ucb_c >= 0.0 && c->portfolio.ucb_c < 1e6))
        return mb_errorf(err, MB_EINVAL, "portfolio.ucb_c must be in [0, 1e6)");
    if (c->pruner.kind > MB_OPTIM_PRUNE_HYPERBAND)
        return mb_errorf(err, MB_EINVAL, "unknown pruner %d", (int)c->pruner.kind);
    return MB_OK;
}

enum { F_U32, F_U64, F_DBL, F_BOOL };
struct cfg_field {
    const char *group, *key;
    int type;
    size_t off;
};
#define CF(g, k, t, member)                                                                        \
    {                                                                                              \
        g, k, t, offsetof(mb_optim_config, member)                                                 \
    }
static const struct cfg_field cfg_fields[] = {
    CF(NULL, "max_trials", F_U32, max_trials),
    CF(NULL, "maximize", F_BOOL, maximize),
    CF("tpe", "n_startup_trials", F_U32, tpe.n_startup_trials),
    CF("tpe", "n_ei_candidates", F_U32, tpe.n_ei_candidates),
    CF("tpe", "gamma", F_DBL, tpe.gamma),
    CF("tpe", "gamma_max", F_U32, tpe.gamma_max),
    CF("tpe", "prior_weight", F_DBL, tpe.prior_weight),
    CF("tpe", "multivariate", F_BOOL, tpe.multivariate),
    CF("tpe", "magic_clip", F_BOOL, tpe.magic_clip),
    CF("cmaes", "popsize", F_U32, cmaes.popsize),
    CF("cmaes", "sigma0", F_DBL, cmaes.sigma0),
    CF("cmaes", "restarts", F_BOOL, cmaes.restarts),
    CF("grid", "points_per_dim", F_U32, grid.points_per_dim),
    CF("qmc", "scramble", F_BOOL, qmc.scramble),
    CF("portfolio", "ucb_c", F_DBL, portfolio.ucb_c),
    CF("pruner", "n_startup_trials", F_U32, pruner.n_startup_trials),
    CF("pruner", "n_warmup_steps", F_U64, pruner.n_warmup_steps),
    CF("pruner", "n_min_trials", F_U32, pruner.n_min_trials),
    CF("pruner", "min_resource", F_U64, pruner.min_resource),
    CF("pruner", "reduction_factor", F_U32, pruner.reduction_factor),
    CF("pruner", "min_early_stopping_rate", F_U32, pruner.min_early_stopping_rate),
    CF("pruner", "max_resource", F_U64, pruner.max_resource),
};
#define NFIELDS (sizeof(cfg_fields) / sizeof(cfg_fields[0]))

static int field_decode(const struct cfg_field *f, const cJSON *item, mb_optim_config *c,
                        mb_error *err)
{
    char *p = (char *)c + f->off;
    const char *g = f->group ? f->group : "config";
    if (f->type == F_BOOL) {
        if (!cJSON_IsBool(item))
            return mb_errorf(err, MB_EINVAL, "%s.%s must be true or false", g, f->key);
        *(int *)p = cJSON_IsTrue(item) ? 1 : 0;
        return MB_OK;
    }
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return mb_errorf(err, MB_EINVAL, "%s.%s must be a number", g, f->key);
    double v = item->valuedouble;
    if (f->type == F_DBL) {
        *(double *)p = v;
        return MB_OK;
    }
    double max = f->type == F_U32 ? 4294967295.0 : 9007199254740992.0;
    if (v < 0 || v > max || v != floor(v))
        return mb_errorf(err, MB_EINVAL, "%s.%s must be an integer in [0, %.0f]", g, f->key, max);
    if (f->type == F_U32)
        *(uint32_t *)p = (uint32_t)v;
    else
        *(uint64_t *)p = (uint64_t)v;
    return MB_OK;
}

static int config_from_cjson(const cJSON *root, mb_optim_config *out, mb_error *err)
{
    if (!cJSON_IsObject(root))
        return mb_errorf(err, MB_EINVAL, "config must be a JSON object");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(root, "strategy");
    mb_optim_strategy strategy = MB_OPTIM_RANDOM;
    if (!cJSON_IsString(js))
        return mb_errorf(err, MB_EINVAL, "config: \"strategy\" must be a string");
    int rv = mb_optim_strategy_parse(js->valuestring, &strategy, err);
    if (rv != MB_OK)
        return rv;
    mb_optim_config c;
    mb_optim_config_default(&c, strategy);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (cJSON_IsString(seed)) {
        const char *s = seed->valuestring;
        char *end;
        if (s[0] < '0' || s[0] > '9' || strlen(s) > 20)
            return mb_errorf(err, MB_EINVAL, "config: \"seed\" must be a decimal integer");
        c.seed = strtoull(s, &end, 10);
        if (*end != '\0')
            return mb_errorf(err, MB_EINVAL, "config: \"seed\" must be a decimal integer");
    } else if (cJSON_IsNumber(seed)) {
        double v = seed->valuedouble;
        if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
            return mb_errorf(err, MB_EINVAL, "config: numeric \"seed\" must be in [0, 2^53]");
        c.seed = (uint64_t)v;
    } else if (seed != NULL) {
        return mb_errorf(err, MB_EINVAL, "config: \"seed\" must be a string or a number");
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct cfg_field *f = &cfg_fields[i];
        const cJSON *obj = root;
        if (f->group != NULL) {
            obj = cJSON_GetObjectItemCaseSensitive(root, f->group);
            if (obj == NULL)
                continue;
            if (!cJSON_IsObject(obj))
                return mb_errorf(err, MB_EINVAL, "config: \"%s\" must be an object", f->group);
        }
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, f->key);
        if (item != NULL && (rv = field_decode(f, item, &c, err)) != MB_OK)
            return rv;
    }
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "pruner");
    const cJSON *kind = pr ? cJSON_GetObjectItemCaseSensitive(pr, "kind") : NULL;
    if (kind != NULL) {
        if (!cJSON_IsString(kind))
            return mb_errorf(err, MB_EINVAL, "config: pruner.kind must be a string");
        if ((rv = mb_optim_pruner_parse(kind->valuestring, &c.pruner.kind, err)) != MB_OK)
            return rv;
    }
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(root, "portfolio");
    const cJSON *alg = pf ? cJSON_GetObjectItemCaseSensitive(pf, "algorithm") : NULL;
    if (alg != NULL) {
        if (!cJSON_IsString(alg) ||
            (strcmp(alg->valuestring, "ucb1") != 0 && strcmp(alg->valuestring, "thompson") != 0))
            return mb_errorf(err, MB_EINVAL,
                             "config: portfolio.algorithm must be \"ucb1\" or "
                             "\"thompson\"");
        c.portfolio.algorithm =
            strcmp(alg->valuestring, "ucb1") == 0 ? MB_OPTIM_BANDIT_UCB1 : MB_OPTIM_BANDIT_THOMPSON;
    }
    if ((rv = config_check(&c, err)) != MB_OK)
        return rv;
    *out = c;
    return MB_OK;
}

int mb_optim_config_from_json(const char *json, size_t len, mb_optim_config *out, mb_error *err)
{
    if (json == NULL)
        return mb_errorf(err, MB_EINVAL, "config: NULL text");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return mb_errorf(err, MB_EINVAL, "config: malformed JSON");
    int rv = config_from_cjson(root, out, err);
    cJSON_Delete(root);
    return rv;
}

static cJSON *config_to_cjson(const mb_optim_config *c)
{
    cJSON *root = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)c->seed);
    if (root == NULL ||
        !cJSON_AddStringToObject(root, "strategy", mb_optim_strategy_name(c->strategy)) ||
        !cJSON_AddStringToObject(root, "seed", seed))
        goto fail;
    const char *groups[] = { "tpe", "cmaes", "grid", "qmc", "portfolio", "pruner" };
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (!cJSON_AddObjectToObject(root, groups[i]))
            goto fail;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct cfg_field *f = &cfg_fields[i];
        cJSON *obj = f->group ? cJSON_GetObjectItemCaseSensitive(root, f->group) : root;
        const char *p = (const char *)c + f->off;
        cJSON *item;
        if (f->type == F_BOOL)
            item = cJSON_CreateBool(*(const int *)p);
        else if (f->type == F_DBL)
            item = optim_json_number(*(const double *)p);
        else if (f->type == F_U32)
            item = optim_json_number((double)*(const uint32_t *)p);
        else
            item = optim_json_number((double)*(const uint64_t *)p);
        if (item == NULL || !cJSON_AddItemToObject(obj, f->key, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "pruner");
    cJSON *pf = cJSON_GetObjectItemCaseSensitive(root, "portfolio");
    int alg = c->portfolio.algorithm == MB_OPTIM_BANDIT_THOMPSON ? 2 : 1;
    if (!cJSON_AddStringToObject(pr, "kind", mb_optim_pruner_name(c->pruner.kind)) ||
        !cJSON_AddStringToObject(pf, "algorithm", bandit_names[alg]))
        goto fail;
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

int mb_optim_config_to_json(const mb_optim_config *cfg, char **out, mb_error *err)
{
    cJSON *root = config_to_cjson(cfg);
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "encode optimiser config");
    *out = s;
    return MB_OK;
}

/* ---- Optimiser ---- */

int mb_optim_new(const mb_optim_space *space, const mb_optim_config *cfg, mb_optim **out,
                 mb_error *err)
{
    if (space == NULL || cfg == NULL || out == NULL)
        return mb_errorf(err, MB_EINVAL, "create optimiser: NULL argument");
    if (space->n == 0)
        return mb_errorf(err, MB_EINVAL, "create optimiser: the search space is empty");
    int rv = config_check(cfg, err);
    if (rv != MB_OK)
        return rv;
    mb_optim *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return mb_errorf(err, MB_ENOMEM, "create optimiser");
    o->cfg = *cfg;
    o->ops = optim_strategy_ops_for(cfg->strategy);
    if (optim_space_copy(space, &o->space) != MB_OK) {
        rv = mb_errorf(err, MB_ENOMEM, "create optimiser: copy space");
        goto fail_space;
    }
    if ((rv = optim_pruner_init(o, err)) != MB_OK)
        goto fail_pruner;
    if ((rv = o->ops->init(o, 0, &o->st, err)) != MB_OK)
        goto fail_strategy;
    *out = o;
    return MB_OK;
fail_strategy:
    optim_pruner_free(o);
fail_pruner:
    mb_optim_space_free(o->space);
fail_space:
    free(o);
    return rv;
}

void mb_optim_free(mb_optim *o)
{
    if (o == NULL)
        return;
    if (o->st != NULL)
        o->ops->free(o->st);
    for (size_t i = 0; i < o->n; i++) {
        free(o->trials[i].x);
        free(o->trials[i].aux);
        free(o->trials[i].steps);
        free(o->trials[i].ivals);
    }
    free(o->trials);
    free(o->ev);
    optim_pruner_free(o);
    mb_optim_space_free(o->space);
    free(o);
}

static int log_event(mb_optim *o, char kind, uint64_t trial, uint64_t step, double value)
{
    if (optim_grow((void **)&o->ev, &o->capev, o->nev + 1, sizeof(*o->ev)) != MB_OK)
        return MB_ENOMEM;
    o->ev[o->nev++] = (struct optim_event){ kind, trial, step, value };
    return MB_OK;
}

size_t optim_completed(mb_optim *o, struct optim_trial ***out)
{
    struct optim_trial **v = malloc((o->ncomplete ? o->ncomplete : 1) * sizeof(*v));
    size_t k = 0;
    *out = v;
    if (v == NULL)
        return 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->trials[i].state == MB_OPTIM_COMPLETE)
            v[k++] = &o->trials[i];
    return k;
}

int mb_optim_suggest(mb_optim *o, uint64_t *trial_id, double *values, mb_error *err)
{
    if (o == NULL || trial_id == NULL || values == NULL)
        return mb_errorf(err, MB_EINVAL, "suggest: NULL argument");
    if (o->n >= o->cfg.max_trials)
        return mb_errorf(err, MB_ERANGE, "suggest: budget of %u trials exhausted",
                         o->cfg.max_trials);
    if (optim_grow((void **)&o->trials, &o->cap, o->n + 1, sizeof(*o->trials)) != MB_OK ||
        optim_grow((void **)&o->ev, &o->capev, o->nev + 1, sizeof(*o->ev)) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "suggest");
    struct optim_trial *t = &o->trials[o->n];
    memset(t, 0, sizeof(*t));
    t->id = o->n;
    t->state = MB_OPTIM_RUNNING;
    t->x = calloc(o->space->n, sizeof(double));
    if (t->x == NULL)
        return mb_errorf(err, MB_ENOMEM, "suggest");
    optim_rng rng;
    optim_rng_seed(&rng, o->cfg.seed, t->id);
    optim_pruner_new_trial(o, t);
    int rv = o->ops->suggest(o, o->st, t, &rng, err);
    if (rv == MB_OK && mb_optim_space_check(o->space, t->x, NULL) != MB_OK)
        rv = mb_errorf(err, MB_EINTERNAL, "suggest: strategy %s produced an invalid point",
                       mb_optim_strategy_name(o->cfg.strategy));
    if (rv != MB_OK) {
        free(t->x);
        free(t->aux);
        return rv;
    }
    o->n++;
    log_event(o, OPTIM_EV_SUGGEST, t->id, 0, 0.0); /* capacity reserved above */
    memcpy(values, t->x, o->space->n * sizeof(double));
    *trial_id = t->id;
    return MB_OK;
}

static int running_trial(mb_optim *o, uint64_t id, const char *what, struct optim_trial **out,
                         mb_error *err)
{
    if (o == NULL)
        return mb_errorf(err, MB_EINVAL, "%s: NULL optimiser", what);
    if (id >= o->n)
        return mb_errorf(err, MB_ENOTFOUND, "%s: no trial %llu", what, (unsigned long long)id);
    if (o->trials[id].state != MB_OPTIM_RUNNING)
        return mb_errorf(err, MB_ESTATE, "%s: trial %llu is not running", what,
                         (unsigned long long)id);
    *out = &o->trials[id];
    return MB_OK;
}

static void finish(mb_optim *o, struct optim_trial *t, mb_optim_trial_state state)
{
    t->state = state;
    if (state == MB_OPTIM_COMPLETE)
        o->ncomplete++;
    if (o->ops->finished != NULL)
        o->ops->finished(o, o->st, t);
}

int mb_optim_report(mb_optim *o, uint64_t trial_id, uint64_t step, double value, int *prune,
                    mb_error *err)
{
    struct optim_trial *t = NULL;
    int rv = running_trial(o, trial_id, "report", &t, err);
    if (rv != MB_OK)
        return rv;
    if (!isfinite(value))
        return mb_errorf(err, MB_EINVAL, "report: trial %llu value is not finite",
                         (unsigned long long)trial_id);
    if (t->nint > 0 && step <= t->steps[t->nint - 1])
        return mb_errorf(err, MB_EINVAL, "report: trial %llu step %llu not after step %llu",
                         (unsigned long long)trial_id, (unsigned long long)step,
                         (unsigned long long)t->steps[t->nint - 1]);
    size_t cap = t->capint;
    if (optim_grow((void **)&t->steps, &cap, t->nint + 1, sizeof(uint64_t)) != MB_OK ||
        optim_grow((void **)&t->ivals, &t->capint, t->nint + 1, sizeof(double)) != MB_OK ||
        log_event(o, OPTIM_EV_REPORT, trial_id, step, value) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "report");
    t->steps[t->nint] = step;
    t->ivals[t->nint] = o->cfg.maximize ? -value : value;
    t->nint++;
    int p = optim_pruner_decide(o, t);
    if (p)
        finish(o, t, MB_OPTIM_PRUNED);
    if (prune != NULL)
        *prune = p;
    return MB_OK;
}

int mb_optim_complete(mb_optim *o, uint64_t trial_id, double value, mb_error *err)
{
    struct optim_trial *t = NULL;
    int rv = running_trial(o, trial_id, "complete", &t, err);
    if (rv != MB_OK)
        return rv;
    if (!isfinite(value))
        return mb_errorf(err, MB_EINVAL, "complete: trial %llu value is not finite (use fail)",
                         (unsigned long long)trial_id);
    if (log_event(o, OPTIM_EV_COMPLETE, trial_id, 0, value) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "complete");
    t->value = o->cfg.maximize ? -value : value;
    finish(o, t, MB_OPTIM_COMPLETE);
    return MB_OK;
}

int mb_optim_prune(mb_optim *o, uint64_t trial_id, mb_error *err)
{
    struct optim_trial *t = NULL;
    int rv = running_trial(o, trial_id, "prune", &t, err);
    if (rv != MB_OK)
        return rv;
    if (log_event(o, OPTIM_EV_PRUNE, trial_id, 0, 0.0) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "prune");
    finish(o, t, MB_OPTIM_PRUNED);
    return MB_OK;
}

int mb_optim_fail(mb_optim *o, uint64_t trial_id, mb_error *err)
{
    struct optim_trial *t = NULL;
    int rv = running_trial(o, trial_id, "fail", &t, err);
    if (rv != MB_OK)
        return rv;
    if (log_event(o, OPTIM_EV_FAIL, trial_id, 0, 0.0) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "fail");
    finish(o, t, MB_OPTIM_FAILED);
    return MB_OK;
}

int mb_optim_best(const mb_optim *o, uint64_t *trial_id, double *value, double *values)
{
    const struct optim_trial *best = NULL;
    for (size_t i = 0; o != NULL && i < o->n; i++) {
        const struct optim_trial *t = &o->trials[i];
        if (t->state == MB_OPTIM_COMPLETE && (best == NULL || t->value < best->value))
            best = t;
    }
    if (best == NULL)
        return MB_ENOTFOUND;
    if (trial_id != NULL)
        *trial_id = best->id;
    if (value != NULL)
        *value = o->cfg.maximize ? -best->value : best->value;
    if (values != NULL)
        memcpy(values, best->x, o->space->n * sizeof(double));
    return MB_OK;
}

size_t mb_optim_ntrials(const mb_optim *o)
{
    return o ? o->n : 0;
}

mb_optim_trial_state mb_optim_trial_state_of(const mb_optim *o, uint64_t id)
{
    return (o && id < o->n) ? o->trials[id].state : 0;
}

const mb_optim_space *mb_optim_get_space(const mb_optim *o)
{
    return o ? o->space : NULL;
}

/* ---- Save / restore ---- */

int mb_optim_save(const mb_optim *o, char **out, size_t *len, mb_error *err)
{
    if (o == NULL || out == NULL)
        return mb_errorf(err, MB_EINVAL, "save: NULL argument");
    cJSON *root = cJSON_CreateObject();
    cJSON *events = NULL;
    if (root == NULL || !cJSON_AddStringToObject(root, "format", "mabeam-optim") ||
        !cJSON_AddNumberToObject(root, "version", 1))
        goto fail;
    cJSON *sp = optim_space_to_cjson(o->space);
    if (sp == NULL || !cJSON_AddItemToObject(root, "space", sp)) {
        cJSON_Delete(sp);
        goto fail;
    }
    cJSON *cfg = config_to_cjson(&o->cfg);
    if (cfg == NULL || !cJSON_AddItemToObject(root, "config", cfg)) {
        cJSON_Delete(cfg);
        goto fail;
    }
    if ((events = cJSON_AddArrayToObject(root, "events")) == NULL)
        goto fail;
    for (size_t i = 0; i < o->nev; i++) {
        const struct optim_event *e = &o->ev[i];
        char kind[2] = { e->kind, 0 };
        cJSON *a = cJSON_CreateArray();
        if (a == NULL || !cJSON_AddItemToArray(events, a))
            goto fail_item;
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(kind)) ||
            !cJSON_AddItemToArray(a, optim_json_number((double)e->trial)))
            goto fail;
        if (e->kind == OPTIM_EV_REPORT &&
            !cJSON_AddItemToArray(a, optim_json_number((double)e->step)))
            goto fail;
        if ((e->kind == OPTIM_EV_REPORT || e->kind == OPTIM_EV_COMPLETE) &&
            !cJSON_AddItemToArray(a, optim_json_number(e->value)))
            goto fail;
        continue;
    fail_item:
        cJSON_Delete(a);
        goto fail;
    }
    char *s = cJSON_PrintUnformatted(root);
    if (s == NULL)
        goto fail;
    cJSON_Delete(root);
    *out = s;
    if (len != NULL)
        *len = strlen(s);
    return MB_OK;
fail:
    cJSON_Delete(root);
    return mb_errorf(err, MB_ENOMEM, "save optimiser");
}

static int event_u64(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int replay_event(mb_optim *o, const cJSON *a, size_t i, mb_error *err)
{
    int n = cJSON_GetArraySize(a);
    const cJSON *k = cJSON_GetArrayItem(a, 0);
    uint64_t trial, step = 0, got;
    double value = 0;
    if (!cJSON_IsArray(a) || !cJSON_IsString(k) || strlen(k->valuestring) != 1 ||
        event_u64(cJSON_GetArrayItem(a, 1), &trial) != 0)
        return mb_errorf(err, MB_EINVAL, "restore: event %zu malformed", i);
    char kind = k->valuestring[0];
    int want = kind == OPTIM_EV_REPORT ? 4 : kind == OPTIM_EV_COMPLETE ? 3 : 2;
    if (n != want)
        return mb_errorf(err, MB_EINVAL, "restore: event %zu has %d fields, want %d", i, n, want);
    if (kind == OPTIM_EV_REPORT && event_u64(cJSON_GetArrayItem(a, 2), &step) != 0)
        return mb_errorf(err, MB_EINVAL, "restore: event %zu bad step", i);
    if (kind == OPTIM_EV_REPORT || kind == OPTIM_EV_COMPLETE) {
        const cJSON *v = cJSON_GetArrayItem(a, n - 1);
        if (!cJSON_IsNumber(v))
            return mb_errorf(err, MB_EINVAL, "restore: event %zu bad value", i);
        value = v->valuedouble;
    }
    mb_error e2;
    int rv;
    switch (kind) {
    case OPTIM_EV_SUGGEST: {
        double x[MB_OPTIM_MAX_DIMS];
        rv = mb_optim_suggest(o, &got, x, &e2);
        if (rv == MB_OK && got != trial)
            return mb_errorf(err, MB_ECORRUPT,
                             "restore: event %zu suggests trial %llu, "
                             "replay gave %llu",
                             i, (unsigned long long)trial, (unsigned long long)got);
        break;
    }
    case OPTIM_EV_REPORT:
        rv = mb_optim_report(o, trial, step, value, NULL, &e2);
        break;
    case OPTIM_EV_COMPLETE:
        rv = mb_optim_complete(o, trial, value, &e2);
        break;
    case OPTIM_EV_FAIL:
        rv = mb_optim_fail(o, trial, &e2);
        break;
    case OPTIM_EV_PRUNE:
        rv = mb_optim_prune(o, trial, &e2);
        break;
    default:
        return mb_errorf(err, MB_EINVAL, "restore: event %zu unknown kind '%c'", i, kind);
    }
    if (rv == MB_ENOMEM)
        return mb_errorf(err, MB_ENOMEM, "restore: event %zu", i);
    if (rv != MB_OK)
        return mb_errorf(err, MB_ECORRUPT, "restore: event %zu does not replay: %s", i, e2.msg);
    return MB_OK;
}

int mb_optim_restore(const char *json, size_t len, mb_optim **out, mb_error *err)
{
    if (json == NULL || out == NULL)
        return mb_errorf(err, MB_EINVAL, "restore: NULL argument");
    mb_optim_space *sp = NULL;
    mb_optim *o = NULL;
    mb_optim_config cfg;
    int rv;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return mb_errorf(err, MB_EINVAL, "restore: malformed JSON");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "events");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "mabeam-optim") != 0 ||
        !cJSON_IsNumber(ver) || !cJSON_IsArray(events)) {
        rv = mb_errorf(err, MB_EINVAL, "restore: not a mabeam-optim document");
        goto done;
    }
    if (ver->valuedouble != 1) {
        rv = mb_errorf(err, MB_ENOTSUP, "restore: unsupported version %g", ver->valuedouble);
        goto done;
    }
    if ((rv = config_from_cjson(cJSON_GetObjectItemCaseSensitive(root, "config"), &cfg, err)) !=
            MB_OK ||
        (rv = optim_space_from_cjson(cJSON_GetObjectItemCaseSensitive(root, "space"), &sp, err)) !=
            MB_OK ||
        (rv = mb_optim_new(sp, &cfg, &o, err)) != MB_OK)
        goto done;
    size_t i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, events)
    {
        if ((rv = replay_event(o, a, i++, err)) != MB_OK)
            goto done;
    }
    *out = o;
    o = NULL;
done:
    mb_optim_free(o);
    mb_optim_space_free(sp);
    cJSON_Delete(root);
    return rv;
}
