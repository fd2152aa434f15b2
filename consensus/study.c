/* Replicated studies and trials (piece "studies"): the studies table of the
 * state machine, the checks and effects of the STUDY_* and TRIAL_*
 * commands, their protobuf codec, snapshot records and JSON mapping.
 * Pure like sm.c: no I/O, no clock. Semantics: docs/studies.md. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/optim.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#define STRATEGY_NAME_MAX 32
#define SLEEP_MS_MAX      3600000

static const char *const strategy_names[] = { "random", "grid",  "sobol",    "halton",
                                              "tpe",    "cmaes", "portfolio" };
static const char *const trial_status_names[] = { "suggested", "running", "completed", "pruned",
                                                  "failed" };
static const char *const study_status_names[] = { "running", "stopped", "finished" };
static const char *const on_finish_names[] = { "none", "write", "propose" };
static const char *const objective_kind_names[] = { "", "builtin", "command", "python" };

const char *consensus_trial_status_name(consensus_trial_status s)
{
    return (unsigned)s <= CONSENSUS_TRIAL_FAILED ? trial_status_names[s] : "unknown";
}

const char *consensus_study_status_name(consensus_study_status s)
{
    return (unsigned)s <= CONSENSUS_STUDY_FINISHED ? study_status_names[s] : "unknown";
}

/* ---------------- memory ---------------- */

static void strv_free(char **v, uint32_t n)
{
    if (v != NULL)
        for (uint32_t i = 0; i < n; i++)
            free(v[i]);
    free(v);
}

void consensus_study_def_free(consensus_study_def *d)
{
    if (d == NULL)
        return;
    free(d->id);
    if (d->params != NULL)
        for (uint32_t i = 0; i < d->n_params; i++) {
            free(d->params[i].name);
            mb_var_spec_free(&d->params[i].spec);
        }
    free(d->params);
    free(d->objective);
    strv_free(d->argv, d->argc);
    free(d->strategy);
    free(d->bandit);
    strv_free(d->propose_caps, d->n_propose_caps);
    memset(d, 0, sizeof(*d));
}

static void trial_free(consensus_trial *t)
{
    if (t == NULL)
        return;
    free(t->params);
    free(t->strategy);
    free(t->suggested_by);
    free(t->evaluator);
    free(t->report_steps);
    free(t->report_values);
    free(t->error);
    free(t);
}

static void study_free(consensus_study *st)
{
    if (st == NULL)
        return;
    consensus_study_def_free(&st->def);
    free(st->reason);
    for (uint32_t i = 0; i < st->n_trials; i++)
        trial_free(st->trials[i]);
    free(st->trials);
    free(st);
}

void cs_studies_free(cs_studies *t)
{
    for (size_t i = 0; i < t->n; i++)
        study_free(t->items[i]);
    free(t->items);
    memset(t, 0, sizeof(*t));
}

void cs_study_cmd_free(consensus_study_cmd *s)
{
    if (s == NULL)
        return;
    consensus_study_def_free(&s->def);
    free(s->study_id);
    free(s->reason);
    free(s->params);
    free(s->strategy);
    free(s->evaluator);
    free(s->error);
    free(s);
}

static int def_copy(consensus_study_def *dst, const consensus_study_def *src)
{
    int ok = 1;
    *dst = *src;
    dst->id = cs_strdup_or_null(src->id, &ok);
    dst->objective = cs_strdup_or_null(src->objective, &ok);
    dst->strategy = cs_strdup_or_null(src->strategy, &ok);
    dst->bandit = cs_strdup_or_null(src->bandit, &ok);
    dst->params = NULL;
    dst->argv = NULL;
    dst->propose_caps = NULL;
    uint32_t np = dst->n_params, na = dst->argc, nc = dst->n_propose_caps;
    dst->n_params = dst->argc = dst->n_propose_caps = 0;
    if (np > 0 && (dst->params = calloc(np, sizeof(*dst->params))) == NULL)
        ok = 0;
    for (uint32_t i = 0; ok && i < np; i++) {
        dst->n_params++;
        dst->params[i].name = cs_strdup_or_null(src->params[i].name, &ok);
        dst->params[i].from_variable = src->params[i].from_variable;
        dst->params[i].group = src->params[i].group;
        if (mb_var_spec_copy(&dst->params[i].spec, &src->params[i].spec) != MB_OK)
            ok = 0;
    }
    if (ok && na > 0 && (dst->argv = calloc(na, sizeof(char *))) == NULL)
        ok = 0;
    for (uint32_t i = 0; ok && i < na; i++) {
        dst->argc++;
        dst->argv[i] = cs_strdup_or_null(src->argv[i], &ok);
    }
    if (ok && nc > 0 && (dst->propose_caps = calloc(nc, sizeof(char *))) == NULL)
        ok = 0;
    for (uint32_t i = 0; ok && i < nc; i++) {
        dst->n_propose_caps++;
        dst->propose_caps[i] = cs_strdup_or_null(src->propose_caps[i], &ok);
    }
    if (!ok) {
        consensus_study_def_free(dst);
        return MB_ENOMEM;
    }
    return MB_OK;
}

/* ---------------- table ---------------- */

int cs_study_find(const cs_studies *t, const char *id, size_t *pos)
{
    return cs_str_find((void *const *)t->items, t->n, offsetof(consensus_study, def.id), id, pos);
}

const consensus_trial *consensus_study_trial(const consensus_study *st, uint32_t number)
{
    if (st == NULL || number == 0 || number > st->n_trials)
        return NULL;
    return st->trials[number - 1];
}

/* ---------------- spaces and values ---------------- */

static int searchable(const mb_var_spec *s)
{
    return s->type == MB_VT_FLOAT || s->type == MB_VT_INT || s->type == MB_VT_CHOICE ||
           s->type == MB_VT_BOOL || s->type == MB_VT_PROBABILITY;
}

/* The parts of a spec the optimisers need beyond mb_var_spec_check. */
static int param_spec_check(const consensus_study_param *p, mb_error *err)
{
    const mb_var_spec *s = &p->spec;
    int rc = mb_var_spec_check(p->name, s, err);
    if (rc != MB_OK)
        return rc;
    if (!searchable(s))
        return mb_errorf(err, MB_EINVAL,
                         "parameter \"%s\": a %s cannot be searched (float, int, choice, bool, "
                         "probability only)",
                         p->name, mb_vtype_name(s->type));
    if (s->type == MB_VT_FLOAT && !(s->min < s->max))
        return mb_errorf(err, MB_EINVAL, "parameter \"%s\": empty range (min must be below max)",
                         p->name);
    if (s->type == MB_VT_INT && s->log_scale && (s->imin < 1 || s->step > 1))
        return mb_errorf(err, MB_EINVAL, "parameter \"%s\": log scale needs min >= 1 and step 1",
                         p->name);
    if (s->type == MB_VT_CHOICE && s->n_options > 256)
        return mb_errorf(err, MB_EINVAL, "parameter \"%s\": more than 256 options", p->name);
    return MB_OK;
}

/* A value of `p` in the optim encoding. */
static int param_value_check(const consensus_study_param *p, double x, mb_error *err)
{
    const mb_var_spec *s = &p->spec;
    if (!isfinite(x))
        return mb_errorf(err, MB_EINVAL, "parameter \"%s\": value is not a finite number", p->name);
    switch (s->type) {
    case MB_VT_FLOAT:
        if (x < s->min || x > s->max)
            return mb_errorf(err, MB_ECONSTRAINT, "parameter \"%s\": %g outside [%g, %g]", p->name,
                             x, s->min, s->max);
        return MB_OK;
    case MB_VT_PROBABILITY:
        if (x < 0 || x > 1)
            return mb_errorf(err, MB_ECONSTRAINT, "parameter \"%s\": %g outside [0, 1]", p->name,
                             x);
        return MB_OK;
    case MB_VT_INT: {
        int64_t step = s->step > 0 ? s->step : 1;
        if (x != floor(x) || x < (double)s->imin || x > (double)s->imax ||
            ((int64_t)x - s->imin) % step != 0)
            return mb_errorf(err, MB_ECONSTRAINT,
                             "parameter \"%s\": %g is not a value of the range", p->name, x);
        return MB_OK;
    }
    case MB_VT_CHOICE:
        if (x != floor(x) || x < 0 || x >= (double)s->n_options)
            return mb_errorf(err, MB_ECONSTRAINT, "parameter \"%s\": option index %g out of range",
                             p->name, x);
        return MB_OK;
    case MB_VT_BOOL:
        if (x != 0 && x != 1)
            return mb_errorf(err, MB_ECONSTRAINT, "parameter \"%s\": a bool is 0 or 1", p->name);
        return MB_OK;
    default:
        return mb_errorf(err, MB_EINVAL, "parameter \"%s\" has no searchable type", p->name);
    }
}

/* The variable value of a parameter value (checked). */
static int param_to_value(const consensus_study_param *p, double x, mb_value *out)
{
    memset(out, 0, sizeof(*out));
    out->type = p->spec.type;
    switch (p->spec.type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        out->u.f = x;
        return MB_OK;
    case MB_VT_INT:
        out->u.i = (int64_t)x;
        return MB_OK;
    case MB_VT_BOOL:
        out->u.b = x != 0;
        return MB_OK;
    case MB_VT_CHOICE:
        out->u.choice = strdup(p->spec.options[(size_t)x]);
        if (out->u.choice == NULL) {
            out->type = MB_VT_NONE;
            return MB_ENOMEM;
        }
        return MB_OK;
    default:
        out->type = MB_VT_NONE;
        return MB_EINVAL;
    }
}

cJSON *consensus_study_param_json(const consensus_study_param *p, double x)
{
    switch (p->spec.type) {
    case MB_VT_CHOICE:
        if (x >= 0 && x < (double)p->spec.n_options)
            return cJSON_CreateString(p->spec.options[(size_t)x]);
        return cJSON_CreateNull();
    case MB_VT_BOOL:
        return cJSON_CreateBool(x != 0);
    default:
        return cJSON_CreateNumber(x);
    }
}

/* ---------------- checks ---------------- */

static int strategy_known(const char *s)
{
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(strategy_names) / sizeof(strategy_names[0]); i++)
        if (strcmp(s, strategy_names[i]) == 0)
            return 1;
    return 0;
}

/* A builtin objective: branin (2 dims), hartmann6 (6), rosenbrock (>= 2),
 * ackley and sphere (>= 1) over numeric parameters, or sleep:MS (any). */
static int builtin_check(const consensus_study_def *d, mb_error *err)
{
    const char *o = d->objective;
    if (o == NULL || o[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "study \"%s\": builtin objective without a name", d->id);
    if (strncmp(o, "sleep:", 6) == 0) {
        char *end = NULL;
        long ms = strtol(o + 6, &end, 10);
        if (o[6] < '0' || o[6] > '9' || end == NULL || *end != '\0' || ms < 0 || ms > SLEEP_MS_MAX)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": objective sleep:MS needs 0..%d ms",
                             d->id, SLEEP_MS_MAX);
        return MB_OK;
    }
    uint32_t need_min, need_max;
    if (strcmp(o, "branin") == 0)
        need_min = need_max = 2;
    else if (strcmp(o, "hartmann6") == 0)
        need_min = need_max = 6;
    else if (strcmp(o, "rosenbrock") == 0)
        need_min = 2, need_max = CONSENSUS_STUDY_MAX_PARAMS;
    else if (strcmp(o, "ackley") == 0 || strcmp(o, "sphere") == 0)
        need_min = 1, need_max = CONSENSUS_STUDY_MAX_PARAMS;
    else
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": unknown builtin objective \"%.64s\" (branin, hartmann6, "
                         "rosenbrock, ackley, sphere, sleep:MS)",
                         d->id, o);
    if (d->n_params < need_min || d->n_params > need_max)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": objective %s needs %u to %u parameters",
                         d->id, o, need_min, need_max);
    for (uint32_t i = 0; i < d->n_params; i++) {
        mb_vtype t = d->params[i].spec.type;
        if (t == MB_VT_CHOICE || t == MB_VT_BOOL)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": objective %s needs numeric parameters",
                             d->id, o);
    }
    return MB_OK;
}

/* ---- studyfeat: pruner and on_finish propose settings ---- */

/* The optimiser configuration whose pruner part is the study's. */
static void pruner_config(const consensus_study_def *d, mb_optim_config *cfg)
{
    mb_optim_config_default(cfg, MB_OPTIM_RANDOM);
    cfg->seed = d->seed;
    cfg->maximize = d->maximize;
    cfg->pruner.kind = (mb_optim_pruner)d->pruner.kind;
    cfg->pruner.n_startup_trials = d->pruner.n_startup_trials;
    cfg->pruner.n_warmup_steps = d->pruner.n_warmup_steps;
    cfg->pruner.n_min_trials = d->pruner.n_min_trials;
    cfg->pruner.min_resource = d->pruner.min_resource;
    cfg->pruner.reduction_factor = d->pruner.reduction_factor;
    cfg->pruner.min_early_stopping_rate = d->pruner.min_early_stopping_rate;
    cfg->pruner.max_resource = d->pruner.max_resource;
}

static int studyfeat_def_check(const consensus_study_def *d, mb_error *err)
{
    int rc;
    if (d->pruner.kind != MB_OPTIM_PRUNE_NONE) {
        mb_optim_config cfg;
        pruner_config(d, &cfg);
        mb_error e;
        if ((rc = mb_optim_pruner_check(&cfg, &e)) != MB_OK)
            return mb_errorf(err, rc, "study \"%s\": %s", d->id, e.msg);
        if (d->objective_kind == CONSENSUS_OBJECTIVE_BUILTIN)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": a builtin objective reports no intermediate values: "
                             "it cannot be pruned",
                             d->id);
    }
    if (d->on_finish != CONSENSUS_ON_FINISH_PROPOSE) {
        if (d->n_propose_caps > 0 || d->propose_rule != CONSENSUS_RULE_MAJORITY)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": \"propose\" settings need on_finish propose", d->id);
        return MB_OK;
    }
    if (d->propose_rule != CONSENSUS_RULE_MAJORITY &&
        d->propose_rule != CONSENSUS_RULE_SUPERMAJORITY &&
        d->propose_rule != CONSENSUS_RULE_UNANIMOUS)
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": propose rule is majority, supermajority or unanimous",
                         d->id);
    if (d->propose_rule == CONSENSUS_RULE_SUPERMAJORITY
            ? !(d->propose_fraction > 0.5 && d->propose_fraction <= 1.0)
            : d->propose_fraction != 0)
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": propose fraction is in (0.5, 1], for supermajority only",
                         d->id);
    if (d->n_propose_caps == 0 || d->n_propose_caps > CONSENSUS_STUDY_MAX_CAPS)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": propose needs 1 to %d voter capabilities",
                         d->id, CONSENSUS_STUDY_MAX_CAPS);
    for (uint32_t i = 0; i < d->n_propose_caps; i++)
        if ((rc = cs_ident_check("capability", d->propose_caps[i], err)) != MB_OK)
            return rc;
    return MB_OK;
}

/* The checks of a definition that do not depend on the state. Params whose
 * spec type is NONE (from a variable, not yet resolved) skip spec checks. */
static int def_check(const consensus_study_def *d, mb_error *err)
{
    int rc;
    if ((rc = cs_ident_check("study id", d->id, err)) != MB_OK)
        return rc;
    if (d->n_params == 0)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": the search space is empty", d->id);
    if (d->n_params > CONSENSUS_STUDY_MAX_PARAMS)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": more than %d parameters", d->id,
                         CONSENSUS_STUDY_MAX_PARAMS);
    for (uint32_t i = 0; i < d->n_params; i++) {
        const consensus_study_param *p = &d->params[i];
        if (p->name == NULL || mb_var_name_check(p->name, err) != MB_OK || strlen(p->name) > 63)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": parameter %u has a bad name", d->id,
                             i + 1);
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(d->params[k].name, p->name) == 0)
                return mb_errorf(err, MB_EINVAL, "study \"%s\": parameter \"%s\" given twice",
                                 d->id, p->name);
        if (p->spec.type != MB_VT_NONE && (rc = param_spec_check(p, err)) != MB_OK)
            return rc;
        if (d->n_groups == 0 ? p->group != 0 : p->group >= d->n_groups)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": parameter \"%s\" in no valid group",
                             d->id, p->name);
        if (d->on_finish != CONSENSUS_ON_FINISH_NONE && !p->from_variable &&
            p->spec.type != MB_VT_NONE)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": on_finish %s needs variables, but \"%s\" is an inline "
                             "parameter",
                             d->id, on_finish_names[d->on_finish], p->name);
    }
    if (d->n_groups == 1 || d->n_groups > d->n_params)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": a partition needs 2 to %u groups", d->id,
                         d->n_params);
    for (uint32_t g = 0; g < d->n_groups; g++) {
        uint32_t k = 0;
        while (k < d->n_params && d->params[k].group != g)
            k++;
        if (k == d->n_params)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": partition group %u is empty", d->id,
                             g + 1);
    }
    switch (d->objective_kind) {
    case CONSENSUS_OBJECTIVE_BUILTIN:
        if (d->argc != 0)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": a builtin objective takes no argv",
                             d->id);
        /* Spec-dependent checks wait for resolved specs. */
        for (uint32_t i = 0; i < d->n_params; i++)
            if (d->params[i].spec.type == MB_VT_NONE)
                goto builtin_later;
        if ((rc = builtin_check(d, err)) != MB_OK)
            return rc;
    builtin_later:
        break;
    case CONSENSUS_OBJECTIVE_COMMAND:
        if (d->argc == 0 || d->argc > CONSENSUS_STUDY_MAX_ARGS || d->objective != NULL)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": a command objective needs 1 to %d "
                             "arguments",
                             d->id, CONSENSUS_STUDY_MAX_ARGS);
        for (uint32_t i = 0; i < d->argc; i++)
            if (d->argv[i] == NULL || (i == 0 && d->argv[i][0] == '\0') ||
                strnlen(d->argv[i], CONSENSUS_STUDY_ARG_MAX + 1) > CONSENSUS_STUDY_ARG_MAX)
                return mb_errorf(err, MB_EINVAL, "study \"%s\": command argument %u is bad", d->id,
                                 i + 1);
        break;
    case CONSENSUS_OBJECTIVE_PYTHON:
        if (d->argc != 0 || d->objective == NULL || d->objective[0] == '\0' ||
            strnlen(d->objective, CONSENSUS_STUDY_ARG_MAX + 1) > CONSENSUS_STUDY_ARG_MAX)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": a python objective needs a script",
                             d->id);
        break;
    default:
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": unknown objective (builtin:NAME, command:ARGV, "
                         "python:SCRIPT)",
                         d->id);
    }
    if (!strategy_known(d->strategy))
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": unknown strategy \"%.32s\" (random, grid, sobol, halton, "
                         "tpe, cmaes, portfolio)",
                         d->id, d->strategy != NULL ? d->strategy : "");
    if (d->bandit != NULL &&
        (strcmp(d->strategy, "portfolio") != 0 ||
         (strcmp(d->bandit, "ucb") != 0 && strcmp(d->bandit, "thompson") != 0)))
        return mb_errorf(err, MB_EINVAL,
                         "study \"%s\": bandit is \"ucb\" or \"thompson\", for a portfolio only",
                         d->id);
    if (d->max_trials == 0 && d->time_budget_ms == 0)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": the budget is zero (give trials or time)",
                         d->id);
    if (d->max_trials > CONSENSUS_STUDY_MAX_TRIALS)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": more than %d trials", d->id,
                         CONSENSUS_STUDY_MAX_TRIALS);
    if ((d->time_budget_ms > 0) != (d->deadline_ms > 0) || d->deadline_ms < 0)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": a time budget needs a deadline", d->id);
    if (d->parallelism == 0 || d->parallelism > CONSENSUS_STUDY_MAX_PARALLEL)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": parallelism must be 1 to %d", d->id,
                         CONSENSUS_STUDY_MAX_PARALLEL);
    if ((unsigned)d->on_finish > CONSENSUS_ON_FINISH_PROPOSE)
        return mb_errorf(err, MB_EINVAL, "study \"%s\": unknown on_finish", d->id);
    if ((rc = studyfeat_def_check(d, err)) != MB_OK)
        return rc;
    return MB_OK;
}

/* The spec of each parameter: its own, or the variable's (resolved into
 * `out`, a copy owned by the caller, when `out` is not NULL). */
static int resolve_params(const consensus_sm *sm, const consensus_study_def *d,
                          consensus_study_def *out, mb_error *err)
{
    int rc;
    for (uint32_t i = 0; i < d->n_params; i++) {
        const consensus_study_param *p = &d->params[i];
        if (p->spec.type != MB_VT_NONE && !p->from_variable)
            continue;
        const consensus_var *v = consensus_sm_var_get(sm, p->name);
        if (v == NULL)
            return mb_errorf(err, MB_ENOTFOUND,
                             "study \"%s\": parameter \"%s\" has no spec and no such variable",
                             d->id, p->name);
        consensus_study_param tmp = { .name = p->name, .spec = v->spec };
        if ((rc = param_spec_check(&tmp, err)) != MB_OK)
            return rc;
        if (d->on_finish == CONSENSUS_ON_FINISH_WRITE && v->policy != MB_POLICY_DIRECT)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": on_finish write, but variable \"%s\" changes by "
                             "consensus (use propose)",
                             d->id, p->name);
        if (d->on_finish == CONSENSUS_ON_FINISH_PROPOSE && v->policy != MB_POLICY_CONSENSUS)
            return mb_errorf(err, MB_EINVAL,
                             "study \"%s\": on_finish propose, but variable \"%s\" changes "
                             "directly (use write)",
                             d->id, p->name);
        if (out != NULL) {
            mb_var_spec_free(&out->params[i].spec);
            if (mb_var_spec_copy(&out->params[i].spec, &v->spec) != MB_OK)
                return MB_ENOMEM;
            out->params[i].from_variable = 1;
        }
    }
    return MB_OK;
}

static int study_lookup(const cs_studies *t, const char *id, size_t *pos, mb_error *err)
{
    int rc = cs_ident_check("study id", id, err);
    if (rc != MB_OK)
        return rc;
    if (!cs_study_find(t, id, pos))
        return mb_errorf(err, MB_ENOTFOUND, "study \"%s\" not found", id);
    return MB_OK;
}

/* The running trial a REPORT/FINISH names, checked against its evaluator
 * and generation: a stale evaluator's result is refused. */
static int trial_of_evaluator(const consensus_study *st, const consensus_study_cmd *s,
                              mb_error *err)
{
    const consensus_trial *tr = consensus_study_trial(st, s->number);
    if (tr == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "study \"%s\": no trial %u", st->def.id, s->number);
    if (tr->status != CONSENSUS_TRIAL_RUNNING)
        return mb_errorf(err, MB_ESTATE, "study \"%s\": trial %u is %s, not running", st->def.id,
                         s->number, consensus_trial_status_name(tr->status));
    if (s->evaluator == NULL || strcmp(s->evaluator, tr->evaluator) != 0 ||
        s->generation != tr->generation)
        return mb_errorf(err, MB_ESTATE,
                         "study \"%s\": trial %u is run by %s generation %llu, not by this "
                         "(stale) evaluator",
                         st->def.id, s->number, tr->evaluator, (unsigned long long)tr->generation);
    return MB_OK;
}

int cs_study_check(const consensus_sm *sm, const cs_studies *t, const consensus_cmd *c,
                   mb_error *err)
{
    const consensus_study_cmd *s = c->study;
    size_t pos;
    int rc;
    if (s == NULL)
        return mb_errorf(err, MB_EINVAL, "study command without its study part");
    if (c->kind == CONSENSUS_CMD_STUDY_CREATE) {
        if ((rc = def_check(&s->def, err)) != MB_OK)
            return rc;
        if (cs_study_find(t, s->def.id, &pos))
            return mb_errorf(err, MB_EEXIST, "study \"%s\" already exists", s->def.id);
        if (t->n >= CONSENSUS_STUDY_MAX_STUDIES)
            return mb_errorf(err, MB_ENOSPC, "too many studies (%d)", CONSENSUS_STUDY_MAX_STUDIES);
        if ((rc = resolve_params(sm, &s->def, NULL, err)) != MB_OK)
            return rc;
        if (s->def.objective_kind == CONSENSUS_OBJECTIVE_BUILTIN) {
            /* Now with every spec known. */
            consensus_study_def tmp;
            if (def_copy(&tmp, &s->def) != MB_OK)
                return MB_ENOMEM;
            rc = resolve_params(sm, &s->def, &tmp, err);
            if (rc == MB_OK)
                rc = builtin_check(&tmp, err);
            consensus_study_def_free(&tmp);
            return rc;
        }
        return MB_OK;
    }
    if ((rc = study_lookup(t, s->study_id, &pos, err)) != MB_OK)
        return rc;
    const consensus_study *st = t->items[pos];
    switch (c->kind) {
    case CONSENSUS_CMD_STUDY_STOP:
    case CONSENSUS_CMD_STUDY_FINISH:
        if (st->status != CONSENSUS_STUDY_RUNNING)
            return mb_errorf(err, MB_ESTATE, "study \"%s\" is already %s", st->def.id,
                             consensus_study_status_name(st->status));
        if (s->reason != NULL && strlen(s->reason) > CONSENSUS_TRIAL_ERROR_MAX)
            return mb_errorf(err, MB_EINVAL, "reason longer than %d bytes",
                             CONSENSUS_TRIAL_ERROR_MAX);
        return MB_OK;
    case CONSENSUS_CMD_TRIAL_SUGGEST:
        if (st->status != CONSENSUS_STUDY_RUNNING)
            return mb_errorf(err, MB_ESTATE, "study \"%s\" is %s: no new trials", st->def.id,
                             consensus_study_status_name(st->status));
        if ((st->def.max_trials > 0 && st->n_trials >= st->def.max_trials) ||
            st->n_trials >= CONSENSUS_STUDY_MAX_TRIALS)
            return mb_errorf(err, MB_ERANGE, "study \"%s\": trial budget of %u used up", st->def.id,
                             st->def.max_trials);
        if (st->n_pending - st->n_running >= st->def.parallelism)
            return mb_errorf(err, MB_ESTATE,
                             "study \"%s\": %u trials already waiting (parallelism)", st->def.id,
                             st->n_pending - st->n_running);
        if (s->number != 0 && s->number != st->n_trials + 1)
            return mb_errorf(err, MB_ECONFLICT, "study \"%s\": next trial is %u, not %u",
                             st->def.id, st->n_trials + 1, s->number);
        if (s->basis > st->n_done)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": basis %u above %u finished trials",
                             st->def.id, s->basis, st->n_done);
        if (s->n_params != st->def.n_params)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": a trial needs %u parameters, got %u",
                             st->def.id, st->def.n_params, s->n_params);
        for (uint32_t i = 0; i < s->n_params; i++)
            if ((rc = param_value_check(&st->def.params[i], s->params[i], err)) != MB_OK)
                return rc;
        if (s->strategy != NULL && strnlen(s->strategy, STRATEGY_NAME_MAX + 1) > STRATEGY_NAME_MAX)
            return mb_errorf(err, MB_EINVAL, "strategy name longer than %d bytes",
                             STRATEGY_NAME_MAX);
        if (st->def.n_groups == 0 ? s->group != 0 : s->group >= st->def.n_groups)
            return mb_errorf(err, MB_EINVAL, "study \"%s\": no partition group %u", st->def.id,
                             s->group + 1);
        return MB_OK;
    case CONSENSUS_CMD_TRIAL_START: {
        if (st->status != CONSENSUS_STUDY_RUNNING)
            return mb_errorf(err, MB_ESTATE, "study \"%s\" is %s: no trial starts", st->def.id,
                             consensus_study_status_name(st->status));
        const consensus_trial *tr = consensus_study_trial(st, s->number);
        if (tr == NULL)
            return mb_errorf(err, MB_ENOTFOUND, "study \"%s\": no trial %u", st->def.id, s->number);
        if (tr->status != CONSENSUS_TRIAL_SUGGESTED)
            return mb_errorf(err, MB_ESTATE, "study \"%s\": trial %u is %s, not waiting",
                             st->def.id, s->number, consensus_trial_status_name(tr->status));
        if (st->n_running >= st->def.parallelism)
            return mb_errorf(err, MB_ESTATE,
                             "study \"%s\": %u trials already running (parallelism)", st->def.id,
                             st->n_running);
        if ((rc = cs_ident_check("evaluator", s->evaluator, err)) != MB_OK)
            return rc;
        if (s->generation == 0)
            return mb_errorf(err, MB_EINVAL, "evaluator generation is 0");
        const consensus_node *n = consensus_sm_node_get(sm, s->node);
        if (n == NULL || n->status != CONSENSUS_NODE_UP)
            return mb_errorf(err, MB_ESTATE, "evaluator node %llu is not up",
                             (unsigned long long)s->node);
        const consensus_agent *a = consensus_sm_agent_get(sm, s->evaluator);
        if (a != NULL &&
            (a->generation != s->generation || a->node != s->node ||
             a->status == CONSENSUS_AGENT_CRASHED || a->status == CONSENSUS_AGENT_STOPPED))
            return mb_errorf(
                err, MB_ESTATE, "evaluator %s generation %llu on node %llu is not the placed one",
                s->evaluator, (unsigned long long)s->generation, (unsigned long long)s->node);
        return MB_OK;
    }
    case CONSENSUS_CMD_TRIAL_REPORT: {
        if ((rc = trial_of_evaluator(st, s, err)) != MB_OK)
            return rc;
        const consensus_trial *tr = st->trials[s->number - 1];
        if (!isfinite(s->value))
            return mb_errorf(err, MB_EINVAL, "intermediate value is not a finite number");
        if (tr->n_reports >= CONSENSUS_TRIAL_MAX_REPORTS)
            return mb_errorf(err, MB_ENOSPC, "trial %u has %d reports already", s->number,
                             CONSENSUS_TRIAL_MAX_REPORTS);
        if (tr->n_reports > 0 && s->step <= tr->report_steps[tr->n_reports - 1])
            return mb_errorf(err, MB_EINVAL, "report step %llu does not increase",
                             (unsigned long long)s->step);
        return MB_OK;
    }
    case CONSENSUS_CMD_TRIAL_FINISH:
        if ((rc = trial_of_evaluator(st, s, err)) != MB_OK)
            return rc;
        if (s->status == CONSENSUS_TRIAL_FAILED) {
            if (s->error == NULL || s->error[0] == '\0' ||
                strlen(s->error) > CONSENSUS_TRIAL_ERROR_MAX)
                return mb_errorf(err, MB_EINVAL, "a failed trial needs an error of 1 to %d bytes",
                                 CONSENSUS_TRIAL_ERROR_MAX);
        } else if (s->status == CONSENSUS_TRIAL_COMPLETED || s->status == CONSENSUS_TRIAL_PRUNED) {
            if (!isfinite(s->value))
                return mb_errorf(err, MB_EINVAL,
                                 "objective value is not a finite number (report a failure)");
            if (s->error != NULL)
                return mb_errorf(err, MB_EINVAL, "only a failed trial has an error");
        } else {
            return mb_errorf(err, MB_EINVAL, "a trial finishes completed, pruned or failed");
        }
        return MB_OK;
    case CONSENSUS_CMD_TRIAL_REQUEUE: {
        const consensus_trial *tr = consensus_study_trial(st, s->number);
        if (tr == NULL)
            return mb_errorf(err, MB_ENOTFOUND, "study \"%s\": no trial %u", st->def.id, s->number);
        if (tr->status != CONSENSUS_TRIAL_RUNNING)
            return mb_errorf(err, MB_ESTATE, "study \"%s\": trial %u is %s, not running",
                             st->def.id, s->number, consensus_trial_status_name(tr->status));
        if (s->reason == NULL || s->reason[0] == '\0' ||
            strlen(s->reason) > CONSENSUS_TRIAL_ERROR_MAX)
            return mb_errorf(err, MB_EINVAL, "a re-queue needs a reason of 1 to %d bytes",
                             CONSENSUS_TRIAL_ERROR_MAX);
        /* studyagents: a conditional re-queue names the claim it ends. */
        if (s->evaluator != NULL &&
            (tr->evaluator == NULL || strcmp(s->evaluator, tr->evaluator) != 0 ||
             s->generation != tr->generation))
            return mb_errorf(
                err, MB_ESTATE,
                "study \"%s\": trial %u no longer runs on evaluator %s generation %llu", st->def.id,
                s->number, s->evaluator, (unsigned long long)s->generation);
        return MB_OK;
    }
    default:
        return mb_errorf(err, MB_EINVAL, "unknown study command %d", (int)c->kind);
    }
}

/* ---------------- JSON of state ---------------- */

static int add_u64(cJSON *o, const char *k, uint64_t v)
{
    return cJSON_AddNumberToObject(o, k, (double)v) != NULL;
}

static cJSON *params_json(const consensus_study *st, const double *x)
{
    cJSON *o = cJSON_CreateObject();
    for (uint32_t i = 0; o != NULL && i < st->def.n_params; i++) {
        cJSON *v = consensus_study_param_json(&st->def.params[i], x[i]);
        if (v == NULL || !cJSON_AddItemToObject(o, st->def.params[i].name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

int consensus_trial_to_json(const consensus_study *st, const consensus_trial *t, cJSON **out)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    ok = ok && cJSON_AddStringToObject(o, "study", st->def.id) && add_u64(o, "number", t->number);
    ok = ok && cJSON_AddStringToObject(o, "status", consensus_trial_status_name(t->status));
    cJSON *p = ok ? params_json(st, t->params) : NULL;
    ok = ok && p != NULL && cJSON_AddItemToObject(o, "params", p);
    if (!ok)
        cJSON_Delete(p);
    ok = ok && cJSON_AddStringToObject(o, "strategy", t->strategy != NULL ? t->strategy : "");
    if (st->def.n_groups > 0)
        ok = ok && add_u64(o, "group", t->group + 1);
    ok = ok &&
         cJSON_AddStringToObject(o, "suggested_by", t->suggested_by != NULL ? t->suggested_by : "");
    if (t->evaluator != NULL)
        ok = ok && cJSON_AddStringToObject(o, "evaluator", t->evaluator) &&
             add_u64(o, "generation", t->generation) && add_u64(o, "node", t->node);
    if (t->has_value)
        ok = ok && cJSON_AddNumberToObject(o, "value", t->value);
    if (t->n_reports > 0) {
        cJSON *r = cJSON_AddArrayToObject(o, "reports");
        ok = ok && r != NULL;
        for (uint32_t i = 0; ok && i < t->n_reports; i++) {
            cJSON *e = cJSON_CreateArray();
            ok = e != NULL && cJSON_AddItemToArray(r, e) &&
                 cJSON_AddItemToArray(e, cJSON_CreateNumber((double)t->report_steps[i])) &&
                 cJSON_AddItemToArray(e, cJSON_CreateNumber(t->report_values[i]));
        }
    }
    if (t->error != NULL)
        ok = ok && cJSON_AddStringToObject(o, "error", t->error);
    ok = ok && add_u64(o, "requeues", t->requeues) && add_u64(o, "suggested", t->suggested) &&
         add_u64(o, "started", t->started) && add_u64(o, "finished", t->finished);
    if (!ok) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    *out = o;
    return MB_OK;
}

/* studyfeat: "pruner" and "propose" of a definition; 0 on ENOMEM. */
static int studyfeat_def_json(const consensus_study_def *d, cJSON *o)
{
    if (d->pruner.kind != 0) {
        const consensus_study_pruner *p = &d->pruner;
        cJSON *q = cJSON_AddObjectToObject(o, "pruner");
        if (q == NULL ||
            !cJSON_AddStringToObject(q, "kind", mb_optim_pruner_name((mb_optim_pruner)p->kind)))
            return 0;
        if (p->kind == MB_OPTIM_PRUNE_MEDIAN) {
            if (!add_u64(q, "n_startup_trials", p->n_startup_trials) ||
                !add_u64(q, "n_warmup_steps", p->n_warmup_steps) ||
                !add_u64(q, "n_min_trials", p->n_min_trials))
                return 0;
        } else if (!add_u64(q, "min_resource", p->min_resource) ||
                   !add_u64(q, "reduction_factor", p->reduction_factor) ||
                   (p->kind == MB_OPTIM_PRUNE_ASHA &&
                    !add_u64(q, "min_early_stopping_rate", p->min_early_stopping_rate)) ||
                   (p->kind == MB_OPTIM_PRUNE_HYPERBAND &&
                    !add_u64(q, "max_resource", p->max_resource))) {
            return 0;
        }
    }
    if (d->on_finish == CONSENSUS_ON_FINISH_PROPOSE) {
        cJSON *q = cJSON_AddObjectToObject(o, "propose");
        cJSON *caps = q != NULL ? cJSON_AddArrayToObject(q, "caps") : NULL;
        if (caps == NULL ||
            !cJSON_AddStringToObject(q, "rule", consensus_rule_name(d->propose_rule)))
            return 0;
        if (d->propose_rule == CONSENSUS_RULE_SUPERMAJORITY &&
            !cJSON_AddNumberToObject(q, "fraction", d->propose_fraction))
            return 0;
        for (uint32_t i = 0; i < d->n_propose_caps; i++)
            if (!cJSON_AddItemToArray(caps, cJSON_CreateString(d->propose_caps[i])))
                return 0;
    }
    return 1;
}

static cJSON *def_json(const consensus_study *st)
{
    const consensus_study_def *d = &st->def;
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && cJSON_AddStringToObject(o, "id", d->id);
    cJSON *space = ok ? cJSON_AddArrayToObject(o, "space") : NULL;
    ok = ok && space != NULL;
    for (uint32_t i = 0; ok && i < d->n_params; i++) {
        cJSON *p = cJSON_CreateObject();
        ok = p != NULL && cJSON_AddItemToArray(space, p) &&
             cJSON_AddStringToObject(p, "name", d->params[i].name) &&
             consensus_spec_to_json(&d->params[i].spec, MB_POLICY_DIRECT, p) == MB_OK &&
             cJSON_AddBoolToObject(p, "variable", d->params[i].from_variable);
        if (ok)
            cJSON_DeleteItemFromObject(p, "policy");
    }
    char buf[CONSENSUS_STUDY_ARG_MAX + 16];
    if (d->objective_kind == CONSENSUS_OBJECTIVE_COMMAND) {
        cJSON *a = cJSON_CreateObject(), *argv = a ? cJSON_AddArrayToObject(a, "command") : NULL;
        ok = ok && a != NULL && cJSON_AddItemToObject(o, "objective", a) && argv != NULL;
        if (!ok && a != NULL && cJSON_GetObjectItem(o, "objective") != a)
            cJSON_Delete(a);
        for (uint32_t i = 0; ok && i < d->argc; i++)
            ok = cJSON_AddItemToArray(argv, cJSON_CreateString(d->argv[i]));
    } else {
        snprintf(buf, sizeof(buf), "%s:%s", objective_kind_names[d->objective_kind],
                 d->objective != NULL ? d->objective : "");
        ok = ok && cJSON_AddStringToObject(o, "objective", buf);
    }
    ok = ok && cJSON_AddStringToObject(o, "direction", d->maximize ? "maximize" : "minimize") &&
         cJSON_AddStringToObject(o, "strategy", d->strategy);
    if (d->bandit != NULL)
        ok = ok && cJSON_AddStringToObject(o, "bandit", d->bandit);
    cJSON *b = ok ? cJSON_AddObjectToObject(o, "budget") : NULL;
    ok = ok && b != NULL && add_u64(b, "trials", d->max_trials) &&
         add_u64(b, "time_ms", d->time_budget_ms) &&
         cJSON_AddNumberToObject(b, "deadline_ms", (double)d->deadline_ms);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)d->seed);
    ok = ok && add_u64(o, "parallelism", d->parallelism) &&
         cJSON_AddStringToObject(o, "seed", buf) &&
         cJSON_AddStringToObject(o, "on_finish", on_finish_names[d->on_finish]) &&
         add_u64(o, "trial_timeout_ms", d->trial_timeout_ms);
    if (ok && d->n_groups > 0) {
        cJSON *part = cJSON_AddArrayToObject(o, "partition");
        ok = part != NULL;
        for (uint32_t g = 0; ok && g < d->n_groups; g++) {
            cJSON *grp = cJSON_CreateArray();
            ok = grp != NULL && cJSON_AddItemToArray(part, grp);
            for (uint32_t i = 0; ok && i < d->n_params; i++)
                if (d->params[i].group == g)
                    ok = cJSON_AddItemToArray(grp, cJSON_CreateString(d->params[i].name));
        }
    }
    if (ok)
        ok = studyfeat_def_json(d, o);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int consensus_study_to_json(const consensus_study *st, int with_trials, cJSON **out)
{
    cJSON *o = def_json(st);
    int ok = o != NULL;
    ok = ok && cJSON_AddStringToObject(o, "status", consensus_study_status_name(st->status));
    if (st->reason != NULL)
        ok = ok && cJSON_AddStringToObject(o, "reason", st->reason);
    ok = ok && add_u64(o, "created", st->created) && add_u64(o, "finished", st->finished);
    uint32_t count[5] = { 0 }, requeues = 0;
    for (uint32_t i = 0; i < st->n_trials; i++) {
        count[st->trials[i]->status]++;
        requeues += st->trials[i]->requeues;
    }
    cJSON *c = ok ? cJSON_AddObjectToObject(o, "trials_by_status") : NULL;
    ok = ok && c != NULL && add_u64(c, "total", st->n_trials);
    for (int s = 0; ok && s < 5; s++)
        ok = add_u64(c, trial_status_names[s], count[s]);
    ok = ok && add_u64(c, "requeues", requeues);
    if (ok && st->best > 0) {
        const consensus_trial *bt = st->trials[st->best - 1];
        cJSON *b = cJSON_AddObjectToObject(o, "best");
        cJSON *p = b != NULL ? params_json(st, bt->params) : NULL;
        ok = b != NULL && add_u64(b, "number", bt->number) &&
             cJSON_AddNumberToObject(b, "value", bt->value) && p != NULL &&
             cJSON_AddItemToObject(b, "params", p);
        if (!ok)
            cJSON_Delete(p);
    }
    /* Allocation of trials between strategies (a portfolio's arms). */
    cJSON *al = ok ? cJSON_AddObjectToObject(o, "allocation") : NULL;
    ok = ok && al != NULL;
    for (uint32_t i = 0; ok && i < st->n_trials; i++) {
        const consensus_trial *t = st->trials[i];
        const char *name = t->strategy != NULL && t->strategy[0] ? t->strategy : "unknown";
        cJSON *e = cJSON_GetObjectItemCaseSensitive(al, name);
        if (e == NULL) {
            e = cJSON_AddObjectToObject(al, name);
            ok = e != NULL && add_u64(e, "trials", 0) && add_u64(e, "completed", 0);
        }
        if (!ok)
            break;
        cJSON *n = cJSON_GetObjectItem(e, "trials");
        cJSON_SetNumberValue(n, n->valuedouble + 1);
        if (t->status == CONSENSUS_TRIAL_COMPLETED) {
            n = cJSON_GetObjectItem(e, "completed");
            cJSON_SetNumberValue(n, n->valuedouble + 1);
            cJSON *bv = cJSON_GetObjectItem(e, "best");
            if (bv == NULL)
                ok = cJSON_AddNumberToObject(e, "best", t->value) != NULL;
            else if (st->def.maximize ? t->value > bv->valuedouble : t->value < bv->valuedouble)
                cJSON_SetNumberValue(bv, t->value);
        }
    }
    if (ok && with_trials) {
        cJSON *arr = cJSON_AddArrayToObject(o, "trials");
        ok = arr != NULL;
        for (uint32_t i = 0; ok && i < st->n_trials; i++) {
            cJSON *t = NULL;
            ok = consensus_trial_to_json(st, st->trials[i], &t) == MB_OK &&
                 cJSON_AddItemToArray(arr, t);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    *out = o;
    return MB_OK;
}

/* ---------------- execution ---------------- */

static int trial_event(consensus_effects *fx, const char *type, const consensus_study *st,
                       const consensus_trial *t, uint64_t index)
{
    cJSON *o = NULL;
    int rc = consensus_trial_to_json(st, t, &o);
    if (rc != MB_OK)
        return rc;
    return cs_sm_event(fx, type, st->def.id, o, index);
}

static int better(const consensus_study *st, double a, double b)
{
    return st->def.maximize ? a > b : a < b;
}

/* Write the best configuration to the variables (on_finish write). A
 * variable deleted, redefined with another spec or switched to consensus
 * since the study was created is skipped (and named in the event). */
static int on_finish_write(consensus_sm *sm, uint64_t index, const consensus_study *st, cJSON *ev,
                           consensus_effects *fx)
{
    if (st->best == 0)
        return MB_OK;
    const consensus_trial *bt = st->trials[st->best - 1];
    cJSON *skipped = cJSON_AddArrayToObject(ev, "skipped");
    if (skipped == NULL)
        return MB_ENOMEM;
    for (uint32_t i = 0; i < st->def.n_params; i++) {
        const consensus_study_param *p = &st->def.params[i];
        const consensus_var *v = consensus_sm_var_get(sm, p->name);
        mb_value val;
        mb_error e;
        if (v == NULL || v->policy != MB_POLICY_DIRECT || !mb_var_spec_equal(&v->spec, &p->spec)) {
            if (!cJSON_AddItemToArray(skipped, cJSON_CreateString(p->name)))
                return MB_ENOMEM;
            continue;
        }
        int rc = param_to_value(p, bt->params[i], &val);
        if (rc == MB_OK && mb_value_validate(p->name, &v->spec, &val, &e) == MB_OK)
            rc = cs_sm_var_write(sm, index, p->name, &val, st->def.id, fx);
        mb_value_free(&val);
        if (rc != MB_OK)
            return rc;
    }
    return MB_OK;
}

/* studyfeat: on_finish propose. Each parameter's best value is opened as
 * a proposal on its variable, in this apply: voters are the agents placed
 * or running with all of propose_caps (resolved from this state, so every
 * replica opens the same), rule and fraction from the definition, no
 * deadline. Ids are decimal, 2^51 + 64 * index + k (k the parameter's
 * position), so that agents, which see proposals as numbers, tell apart
 * the proposals opened by one entry. The event lists "proposals"
 * ({variable, id}) and "not_proposed" ({variable, error}: a variable
 * deleted or changed, one already open, no eligible voter). */
static int on_finish_propose(consensus_sm *sm, uint64_t index, const consensus_study *st, cJSON *ev,
                             consensus_effects *fx)
{
    if (st->best == 0)
        return MB_OK;
    const consensus_trial *bt = st->trials[st->best - 1];
    const consensus_study_def *d = &st->def;
    cJSON *opened = cJSON_AddArrayToObject(ev, "proposals");
    cJSON *refused = cJSON_AddArrayToObject(ev, "not_proposed");
    size_t na = consensus_sm_agent_count(sm);
    char **voters = calloc(na > 0 ? na : 1, sizeof(char *));
    int rc = opened != NULL && refused != NULL && voters != NULL ? MB_OK : MB_ENOMEM;
    uint32_t nv = 0;
    for (size_t i = 0; rc == MB_OK && i < na && nv < CONSENSUS_MAX_VOTERS; i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->status != CONSENSUS_AGENT_PLACED && a->status != CONSENSUS_AGENT_RUNNING)
            continue;
        uint32_t have = 0;
        for (uint32_t c = 0; c < d->n_propose_caps; c++)
            for (uint32_t k = 0; k < a->n_caps; k++)
                if (strcmp(a->caps[k], d->propose_caps[c]) == 0) {
                    have++;
                    break;
                }
        if (have == d->n_propose_caps)
            voters[nv++] = a->id;
    }
    for (uint32_t i = 0; rc == MB_OK && i < d->n_params; i++) {
        const consensus_study_param *p = &d->params[i];
        char id[32];
        snprintf(id, sizeof(id), "%llu",
                 (unsigned long long)((1ull << 51) + 64 * index + (uint64_t)i));
        consensus_cmd c;
        memset(&c, 0, sizeof(c));
        c.kind = CONSENSUS_CMD_PROPOSAL_OPEN;
        c.proposal_id = id;
        c.name = p->name;
        c.by = d->id;
        c.rule = d->propose_rule;
        c.fraction = d->propose_fraction;
        c.voters = voters;
        c.n_voters = nv;
        mb_error e = { 0 };
        const consensus_var *v = consensus_sm_var_get(sm, p->name);
        if (v == NULL || !mb_var_spec_equal(&v->spec, &p->spec))
            rc = mb_errorf(&e, MB_ESTATE, "variable deleted or redefined since the study began");
        else if ((rc = param_to_value(p, bt->params[i], &c.value)) == MB_OK)
            rc = cs_sm_proposal_open(sm, index, &c, fx, &e);
        mb_value_free(&c.value);
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(rc == MB_OK ? opened : refused, o)) {
            cJSON_Delete(o);
            rc = MB_ENOMEM;
            break;
        }
        if (!cJSON_AddStringToObject(o, "variable", p->name) ||
            !(rc == MB_OK ? cJSON_AddStringToObject(o, "id", id) != NULL
                          : cJSON_AddStringToObject(o, "error", e.msg) != NULL)) {
            rc = MB_ENOMEM;
            break;
        }
        if (rc != MB_ENOMEM)
            rc = MB_OK; /* a refused proposal does not stop the others */
    }
    free(voters);
    return rc;
}

static int study_end(consensus_sm *sm, uint64_t index, consensus_study *st,
                     consensus_study_status status, const char *reason, consensus_effects *fx)
{
    int ok = 1;
    char *r = cs_strdup_or_null(reason != NULL ? reason : "", &ok);
    if (!ok)
        return MB_ENOMEM;
    free(st->reason);
    st->reason = r;
    st->status = status;
    st->finished = index;
    cJSON *ev = NULL;
    int rc = consensus_study_to_json(st, 0, &ev);
    if (rc == MB_OK && status == CONSENSUS_STUDY_FINISHED &&
        st->def.on_finish == CONSENSUS_ON_FINISH_WRITE)
        rc = on_finish_write(sm, index, st, ev, fx);
    if (rc == MB_OK && status == CONSENSUS_STUDY_FINISHED &&
        st->def.on_finish == CONSENSUS_ON_FINISH_PROPOSE)
        rc = on_finish_propose(sm, index, st, ev, fx);
    if (rc != MB_OK) {
        cJSON_Delete(ev);
        return rc;
    }
    return cs_sm_event(fx, status == CONSENSUS_STUDY_FINISHED ? "study.finish" : "study.stop",
                       st->def.id, ev, index);
}

static void trial_requeue(consensus_study *st, consensus_trial *t, char *reason)
{
    st->n_running--;
    free(t->evaluator);
    t->evaluator = NULL;
    t->generation = t->node = 0;
    t->started = 0;
    t->status = CONSENSUS_TRIAL_SUGGESTED;
    t->requeues++;
    free(t->error);
    t->error = reason;
    free(t->report_steps);
    free(t->report_values);
    t->report_steps = NULL;
    t->report_values = NULL;
    t->n_reports = 0;
}

static int exec_create(consensus_sm *sm, cs_studies *t, uint64_t index, const consensus_cmd *c,
                       consensus_effects *fx)
{
    size_t pos;
    cs_study_find(t, c->study->def.id, &pos);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        consensus_study **items = realloc(t->items, cap * sizeof(*items));
        if (items == NULL)
            return MB_ENOMEM;
        t->items = items;
        t->cap = cap;
    }
    consensus_study *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return MB_ENOMEM;
    mb_error e;
    int rc = def_copy(&st->def, &c->study->def);
    if (rc == MB_OK)
        rc = resolve_params(sm, &c->study->def, &st->def, &e);
    st->created = index;
    st->status = CONSENSUS_STUDY_RUNNING;
    cJSON *ev = NULL;
    if (rc == MB_OK && (rc = consensus_study_to_json(st, 0, &ev)) == MB_OK)
        rc = cs_sm_event(fx, "study.create", st->def.id, ev, index);
    if (rc != MB_OK) {
        study_free(st);
        return rc;
    }
    memmove(&t->items[pos + 1], &t->items[pos], (t->n - pos) * sizeof(*t->items));
    t->items[pos] = st;
    t->n++;
    return MB_OK;
}

static int exec_suggest(consensus_study *st, uint64_t index, const consensus_cmd *c,
                        consensus_result *res, consensus_effects *fx)
{
    const consensus_study_cmd *s = c->study;
    if (st->n_trials == st->cap_trials) {
        uint32_t cap = st->cap_trials ? st->cap_trials * 2 : 16;
        consensus_trial **tr = realloc(st->trials, cap * sizeof(*tr));
        if (tr == NULL)
            return MB_ENOMEM;
        st->trials = tr;
        st->cap_trials = cap;
    }
    consensus_trial *t = calloc(1, sizeof(*t));
    int ok = t != NULL;
    if (ok && (t->params = malloc(s->n_params * sizeof(double))) == NULL)
        ok = 0;
    if (!ok) {
        trial_free(t);
        return MB_ENOMEM;
    }
    memcpy(t->params, s->params, s->n_params * sizeof(double));
    t->number = st->n_trials + 1;
    t->strategy = cs_strdup_or_null(s->strategy != NULL ? s->strategy : "", &ok);
    t->suggested_by = cs_strdup_or_null(c->by != NULL ? c->by : "", &ok);
    t->group = s->group;
    t->basis = s->basis;
    t->status = CONSENSUS_TRIAL_SUGGESTED;
    t->suggested = index;
    int rc = ok ? trial_event(fx, "trial.suggest", st, t, index) : MB_ENOMEM;
    if (rc != MB_OK) {
        trial_free(t);
        return rc;
    }
    st->trials[st->n_trials++] = t;
    st->n_pending++;
    snprintf(res->msg, sizeof(res->msg), "trial %u", t->number);
    return MB_OK;
}

/* studyfeat: after a report of running trial `t`, run the study's pruner
 * on the replicated learning curves (the same state on every replica, so
 * the same decision); a pruned trial finishes here as PRUNED with its
 * last reported value ("trial.prune", with the step), and its evaluator,
 * whose later results are refused, stops it. */
static int trial_maybe_prune(consensus_sm *sm, consensus_study *st, consensus_trial *t,
                             uint64_t index, consensus_effects *fx)
{
    mb_optim_curve *cv = malloc(st->n_trials * sizeof(*cv));
    if (cv == NULL)
        return MB_ENOMEM;
    for (uint32_t i = 0; i < st->n_trials; i++) {
        const consensus_trial *u = st->trials[i];
        cv[i] = (mb_optim_curve){ .id = u->number - 1,
                                  .complete = u->status == CONSENSUS_TRIAL_COMPLETED,
                                  .steps = u->report_steps,
                                  .values = u->report_values,
                                  .n = u->n_reports };
    }
    mb_optim_config cfg;
    pruner_config(&st->def, &cfg);
    int prune = 0;
    int rc = mb_optim_prune_decide(&cfg, cv, st->n_trials, t->number - 1, &prune, NULL);
    free(cv);
    if (rc == MB_ENOMEM)
        return rc;
    if (rc != MB_OK || !prune)
        return MB_OK; /* checked at create: cannot fail otherwise */
    consensus_trial next = *t;
    next.status = CONSENSUS_TRIAL_PRUNED;
    next.has_value = 1;
    next.value = t->report_values[t->n_reports - 1];
    next.finished = index;
    cJSON *o = NULL;
    if ((rc = consensus_trial_to_json(st, &next, &o)) != MB_OK)
        return rc;
    if (!add_u64(o, "step", t->report_steps[t->n_reports - 1]) ||
        !cJSON_AddStringToObject(o, "pruner", mb_optim_pruner_name(cfg.pruner.kind))) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    if ((rc = cs_sm_event(fx, "trial.prune", st->def.id, o, index)) != MB_OK)
        return rc;
    *t = next;
    st->n_pending--;
    st->n_running--;
    st->n_done++;
    if (st->status == CONSENSUS_STUDY_RUNNING && st->def.max_trials > 0 &&
        st->n_done >= st->def.max_trials)
        return study_end(sm, index, st, CONSENSUS_STUDY_FINISHED, "trial budget used up", fx);
    return MB_OK;
}

static int exec_trial(consensus_sm *sm, consensus_study *st, uint64_t index, const consensus_cmd *c,
                      consensus_effects *fx)
{
    const consensus_study_cmd *s = c->study;
    consensus_trial *t = st->trials[s->number - 1];
    int ok = 1, rc;
    switch (c->kind) {
    case CONSENSUS_CMD_TRIAL_START: {
        char *ev = cs_strdup_or_null(s->evaluator, &ok);
        if (!ok)
            return MB_ENOMEM;
        consensus_trial next = *t;
        next.status = CONSENSUS_TRIAL_RUNNING;
        next.evaluator = ev;
        next.generation = s->generation;
        next.node = s->node;
        next.started = index;
        if ((rc = trial_event(fx, "trial.start", st, &next, index)) != MB_OK) {
            free(ev);
            return rc;
        }
        free(t->evaluator);
        *t = next;
        st->n_running++;
        return MB_OK;
    }
    case CONSENSUS_CMD_TRIAL_REPORT: {
        uint64_t *steps = realloc(t->report_steps, (t->n_reports + 1) * sizeof(uint64_t));
        if (steps == NULL)
            return MB_ENOMEM;
        t->report_steps = steps;
        double *vals = realloc(t->report_values, (t->n_reports + 1) * sizeof(double));
        if (vals == NULL)
            return MB_ENOMEM;
        t->report_values = vals;
        steps[t->n_reports] = s->step;
        vals[t->n_reports] = s->value;
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddStringToObject(o, "study", st->def.id) ||
            !add_u64(o, "number", t->number) || !add_u64(o, "step", s->step) ||
            !cJSON_AddNumberToObject(o, "value", s->value) ||
            !cJSON_AddStringToObject(o, "evaluator", t->evaluator)) {
            cJSON_Delete(o);
            return MB_ENOMEM;
        }
        if ((rc = cs_sm_event(fx, "trial.report", st->def.id, o, index)) != MB_OK)
            return rc;
        t->n_reports++;
        return st->def.pruner.kind != 0 ? trial_maybe_prune(sm, st, t, index, fx) : MB_OK;
    }
    case CONSENSUS_CMD_TRIAL_FINISH: {
        char *error = cs_strdup_or_null(s->error, &ok);
        if (!ok)
            return MB_ENOMEM;
        consensus_trial next = *t;
        next.status = s->status;
        next.has_value = s->status != CONSENSUS_TRIAL_FAILED;
        next.value = next.has_value ? s->value : 0;
        next.error = error;
        next.finished = index;
        static const char *const types[] = { "", "", "trial.complete", "trial.prune",
                                             "trial.fail" };
        if ((rc = trial_event(fx, types[s->status], st, &next, index)) != MB_OK) {
            free(error);
            return rc;
        }
        free(t->error);
        *t = next;
        st->n_pending--;
        st->n_running--;
        st->n_done++;
        if (t->status == CONSENSUS_TRIAL_COMPLETED &&
            (st->best == 0 || better(st, t->value, st->trials[st->best - 1]->value)))
            st->best = t->number;
        if (st->status == CONSENSUS_STUDY_RUNNING && st->def.max_trials > 0 &&
            st->n_done >= st->def.max_trials)
            return study_end(sm, index, st, CONSENSUS_STUDY_FINISHED, "trial budget used up", fx);
        return MB_OK;
    }
    case CONSENSUS_CMD_TRIAL_REQUEUE: {
        char *reason = cs_strdup_or_null(s->reason, &ok);
        if (!ok)
            return MB_ENOMEM;
        consensus_trial next = *t;
        next.status = CONSENSUS_TRIAL_SUGGESTED;
        next.error = reason;
        next.requeues++;
        if ((rc = trial_event(fx, "trial.requeue", st, &next, index)) != MB_OK) {
            free(reason);
            return rc;
        }
        trial_requeue(st, t, reason);
        return MB_OK;
    }
    default:
        return MB_EINTERNAL;
    }
}

int cs_study_exec(consensus_sm *sm, cs_studies *t, uint64_t index, const consensus_cmd *c,
                  consensus_result *res, consensus_effects *fx)
{
    int rc;
    if (c->kind == CONSENSUS_CMD_STUDY_CREATE) {
        rc = exec_create(sm, t, index, c, fx);
    } else {
        size_t pos;
        cs_study_find(t, c->study->study_id, &pos);
        consensus_study *st = t->items[pos];
        switch (c->kind) {
        case CONSENSUS_CMD_STUDY_STOP:
            rc = study_end(sm, index, st, CONSENSUS_STUDY_STOPPED,
                           c->study->reason != NULL ? c->study->reason : "stopped", fx);
            break;
        case CONSENSUS_CMD_STUDY_FINISH:
            rc = study_end(sm, index, st, CONSENSUS_STUDY_FINISHED,
                           c->study->reason != NULL ? c->study->reason : "time budget used up", fx);
            break;
        case CONSENSUS_CMD_TRIAL_SUGGEST:
            rc = exec_suggest(st, index, c, res, fx);
            break;
        default:
            rc = exec_trial(sm, st, index, c, fx);
            break;
        }
    }
    if (rc == MB_OK)
        res->version = index;
    return rc;
}

int cs_studies_evaluator_gone(cs_studies *t, uint64_t index, const char *agent, uint64_t fence,
                              uint64_t node, const char *why, consensus_effects *fx)
{
    for (size_t i = 0; i < t->n; i++) {
        consensus_study *st = t->items[i];
        if (st->n_pending == 0)
            continue;
        for (uint32_t k = 0; k < st->n_trials; k++) {
            consensus_trial *tr = st->trials[k];
            if (tr->status != CONSENSUS_TRIAL_RUNNING)
                continue;
            if (agent != NULL ? (strcmp(tr->evaluator, agent) != 0 || tr->generation >= fence)
                              : tr->node != node)
                continue;
            char reason[CONSENSUS_ID_MAX + 96];
            if (agent != NULL)
                snprintf(reason, sizeof(reason), "evaluator %s %s", tr->evaluator, why);
            else
                snprintf(reason, sizeof(reason), "evaluator node %llu %s", (unsigned long long)node,
                         why);
            char *r = strdup(reason);
            if (r == NULL)
                return MB_ENOMEM;
            trial_requeue(st, tr, r);
            int rc = trial_event(fx, "trial.requeue", st, tr, index);
            if (rc != MB_OK)
                return rc;
        }
    }
    return MB_OK;
}

/* ---------------- codec ---------------- */

typedef struct def_pb {
    Mabeam__StudyDef d;
    Mabeam__StudyPruner pruner;
    Mabeam__StudyParam *p;
    Mabeam__StudyParam **pp;
    Mabeam__VarSpec *spec;
} def_pb;

static int def_to_pb(const consensus_study_def *d, int with_flags, def_pb *out)
{
    mabeam__study_def__init(&out->d);
    uint32_t n = d->n_params;
    out->p = calloc(n + 1, sizeof(*out->p));
    out->pp = calloc(n + 1, sizeof(*out->pp));
    out->spec = calloc(n + 1, sizeof(*out->spec));
    if (out->p == NULL || out->pp == NULL || out->spec == NULL)
        return MB_ENOMEM;
    Mabeam__StudyDef *m = &out->d;
    m->id = d->id;
    for (uint32_t i = 0; i < n; i++) {
        mabeam__study_param__init(&out->p[i]);
        out->p[i].name = d->params[i].name;
        if (d->params[i].spec.type != MB_VT_NONE) {
            cs_spec_to_pb(&d->params[i].spec, &out->spec[i]);
            out->p[i].spec = &out->spec[i];
        }
        out->p[i].has_group = d->params[i].group != 0;
        out->p[i].group = d->params[i].group;
        out->p[i].has_from_variable = with_flags && d->params[i].from_variable;
        out->p[i].from_variable = d->params[i].from_variable != 0;
        out->pp[i] = &out->p[i];
    }
    m->n_params = n;
    m->params = out->pp;
    m->has_objective_kind = 1;
    m->objective_kind = (uint32_t)d->objective_kind;
    m->objective = d->objective;
    m->n_argv = d->argc;
    m->argv = d->argv;
    m->has_maximize = 1;
    m->maximize = d->maximize != 0;
    m->strategy = d->strategy;
    m->bandit = d->bandit;
    m->has_max_trials = m->has_time_budget_ms = m->has_deadline_ms = m->has_parallelism = 1;
    m->max_trials = d->max_trials;
    m->time_budget_ms = d->time_budget_ms;
    m->deadline_ms = d->deadline_ms;
    m->parallelism = d->parallelism;
    m->has_seed = m->has_on_finish = m->has_n_groups = m->has_trial_timeout_ms = 1;
    m->seed = d->seed;
    m->on_finish = (uint32_t)d->on_finish;
    m->n_groups = d->n_groups;
    m->trial_timeout_ms = d->trial_timeout_ms;
    /* studyfeat */
    if (d->pruner.kind != 0) {
        Mabeam__StudyPruner *q = &out->pruner;
        mabeam__study_pruner__init(q);
        q->has_kind = q->has_n_startup_trials = q->has_n_warmup_steps = q->has_n_min_trials = 1;
        q->has_min_resource = q->has_reduction_factor = q->has_min_early_stopping_rate = 1;
        q->has_max_resource = 1;
        q->kind = d->pruner.kind;
        q->n_startup_trials = d->pruner.n_startup_trials;
        q->n_warmup_steps = d->pruner.n_warmup_steps;
        q->n_min_trials = d->pruner.n_min_trials;
        q->min_resource = d->pruner.min_resource;
        q->reduction_factor = d->pruner.reduction_factor;
        q->min_early_stopping_rate = d->pruner.min_early_stopping_rate;
        q->max_resource = d->pruner.max_resource;
        m->pruner = q;
    }
    m->has_propose_rule = d->propose_rule != 0;
    m->propose_rule = (uint32_t)d->propose_rule;
    m->has_propose_fraction = d->propose_fraction != 0;
    m->propose_fraction = d->propose_fraction;
    m->n_propose_caps = d->n_propose_caps;
    m->propose_caps = d->propose_caps;
    return MB_OK;
}

static void def_pb_free(def_pb *p)
{
    free(p->p);
    free(p->pp);
    free(p->spec);
}

/* Shape of a definition from protobuf (semantics are checked at apply). */
static int def_from_pb(const Mabeam__StudyDef *m, consensus_study_def *d, mb_error *err)
{
    int ok = 1, rc;
    memset(d, 0, sizeof(*d));
    if (m == NULL)
        return mb_errorf(err, MB_EPROTO, "study command without a definition");
    if (m->n_params > CONSENSUS_STUDY_MAX_PARAMS || m->n_argv > CONSENSUS_STUDY_MAX_ARGS ||
        m->n_propose_caps > CONSENSUS_STUDY_MAX_CAPS)
        return mb_errorf(err, MB_EPROTO, "study definition too large");
    if (m->propose_rule > CONSENSUS_RULE_BYZANTINE ||
        (m->pruner != NULL && m->pruner->kind > MB_OPTIM_PRUNE_HYPERBAND))
        return mb_errorf(err, MB_EPROTO, "study definition has an unknown enum");
    if (m->objective_kind > CONSENSUS_OBJECTIVE_PYTHON || m->on_finish > 2)
        return mb_errorf(err, MB_EPROTO, "study definition has an unknown enum");
    d->id = cs_strdup_or_null(m->id, &ok);
    d->objective_kind = (consensus_objective_kind)m->objective_kind;
    d->objective = cs_strdup_or_null(m->objective, &ok);
    d->maximize = m->maximize ? 1 : 0;
    d->strategy = cs_strdup_or_null(m->strategy, &ok);
    d->bandit = cs_strdup_or_null(m->bandit, &ok);
    d->max_trials = m->max_trials;
    d->time_budget_ms = m->time_budget_ms;
    d->deadline_ms = m->deadline_ms;
    d->parallelism = m->parallelism;
    d->seed = m->seed;
    d->on_finish = (consensus_on_finish)m->on_finish;
    d->n_groups = m->n_groups;
    d->trial_timeout_ms = m->trial_timeout_ms;
    if (m->pruner != NULL) { /* studyfeat */
        d->pruner.kind = m->pruner->kind;
        d->pruner.n_startup_trials = m->pruner->n_startup_trials;
        d->pruner.n_warmup_steps = m->pruner->n_warmup_steps;
        d->pruner.n_min_trials = m->pruner->n_min_trials;
        d->pruner.min_resource = m->pruner->min_resource;
        d->pruner.reduction_factor = m->pruner->reduction_factor;
        d->pruner.min_early_stopping_rate = m->pruner->min_early_stopping_rate;
        d->pruner.max_resource = m->pruner->max_resource;
    }
    d->propose_rule = (consensus_rule)m->propose_rule;
    d->propose_fraction = m->propose_fraction;
    if (ok && m->n_propose_caps > 0 &&
        (d->propose_caps = calloc(m->n_propose_caps, sizeof(char *))) == NULL)
        ok = 0;
    for (size_t i = 0; ok && i < m->n_propose_caps; i++)
        d->propose_caps[d->n_propose_caps++] = cs_strdup_or_null(m->propose_caps[i], &ok);
    /* Logs and snapshots from before on_finish propose was carried out
     * have no voter capabilities: the default, on every replica alike. */
    if (ok && d->on_finish == CONSENSUS_ON_FINISH_PROPOSE && m->n_propose_caps == 0) {
        if ((d->propose_caps = calloc(1, sizeof(char *))) == NULL ||
            (d->propose_caps[0] = strdup("voter")) == NULL)
            ok = 0;
        else
            d->n_propose_caps = 1;
    }
    if (ok && m->n_params > 0 && (d->params = calloc(m->n_params, sizeof(*d->params))) == NULL)
        ok = 0;
    for (size_t i = 0; ok && i < m->n_params; i++) {
        const Mabeam__StudyParam *p = m->params[i];
        consensus_study_param *q = &d->params[d->n_params++];
        q->name = cs_strdup_or_null(p->name, &ok);
        q->group = p->group;
        q->from_variable = p->from_variable ? 1 : 0;
        if (p->spec != NULL && (rc = cs_spec_from_pb(p->spec, &q->spec, err)) != MB_OK) {
            consensus_study_def_free(d);
            return rc;
        }
    }
    if (ok && m->n_argv > 0 && (d->argv = calloc(m->n_argv, sizeof(char *))) == NULL)
        ok = 0;
    for (size_t i = 0; ok && i < m->n_argv; i++)
        d->argv[d->argc++] = cs_strdup_or_null(m->argv[i], &ok);
    if (!ok) {
        consensus_study_def_free(d);
        return mb_errorf(err, MB_ENOMEM, "decode study definition");
    }
    return MB_OK;
}

int cs_study_cmd_pack(const consensus_cmd *cmd, Mabeam__Command *c, void *(*alloc_fn)(size_t),
                      void **buf, size_t *len, mb_error *err)
{
    const consensus_study_cmd *s = cmd->study;
    Mabeam__StudyCreate sc = MABEAM__STUDY_CREATE__INIT;
    Mabeam__StudyStop ss = MABEAM__STUDY_STOP__INIT;
    Mabeam__TrialSuggest ts = MABEAM__TRIAL_SUGGEST__INIT;
    Mabeam__TrialStart tst = MABEAM__TRIAL_START__INIT;
    Mabeam__TrialReport tr = MABEAM__TRIAL_REPORT__INIT;
    Mabeam__TrialFinish tf = MABEAM__TRIAL_FINISH__INIT;
    Mabeam__TrialRequeue tq = MABEAM__TRIAL_REQUEUE__INIT;
    def_pb dp = { 0 };
    int rc = MB_OK;
    if (s == NULL)
        return mb_errorf(err, MB_EINVAL, "study command without its study part");
    switch (cmd->kind) {
    case CONSENSUS_CMD_STUDY_CREATE:
        if ((rc = def_to_pb(&s->def, 0, &dp)) != MB_OK)
            goto out;
        sc.def = &dp.d;
        c->body_case = MABEAM__COMMAND__BODY_STUDY_CREATE;
        c->study_create = &sc;
        break;
    case CONSENSUS_CMD_STUDY_STOP:
    case CONSENSUS_CMD_STUDY_FINISH:
        ss.id = s->study_id;
        ss.reason = s->reason;
        if (cmd->kind == CONSENSUS_CMD_STUDY_STOP) {
            c->body_case = MABEAM__COMMAND__BODY_STUDY_STOP;
            c->study_stop = &ss;
        } else {
            c->body_case = MABEAM__COMMAND__BODY_STUDY_FINISH;
            c->study_finish = &ss;
        }
        break;
    case CONSENSUS_CMD_TRIAL_SUGGEST:
        ts.study = s->study_id;
        ts.n_params = s->n_params;
        ts.params = s->params;
        ts.strategy = s->strategy;
        ts.has_group = ts.has_basis = ts.has_number = 1;
        ts.group = s->group;
        ts.basis = s->basis;
        ts.number = s->number;
        c->body_case = MABEAM__COMMAND__BODY_TRIAL_SUGGEST;
        c->trial_suggest = &ts;
        break;
    case CONSENSUS_CMD_TRIAL_START:
        tst.study = s->study_id;
        tst.has_number = tst.has_generation = tst.has_node = 1;
        tst.number = s->number;
        tst.evaluator = s->evaluator;
        tst.generation = s->generation;
        tst.node = s->node;
        c->body_case = MABEAM__COMMAND__BODY_TRIAL_START;
        c->trial_start = &tst;
        break;
    case CONSENSUS_CMD_TRIAL_REPORT:
        tr.study = s->study_id;
        tr.has_number = tr.has_generation = tr.has_step = tr.has_value = 1;
        tr.number = s->number;
        tr.evaluator = s->evaluator;
        tr.generation = s->generation;
        tr.step = s->step;
        tr.value = s->value;
        c->body_case = MABEAM__COMMAND__BODY_TRIAL_REPORT;
        c->trial_report = &tr;
        break;
    case CONSENSUS_CMD_TRIAL_FINISH:
        tf.study = s->study_id;
        tf.has_number = tf.has_generation = tf.has_status = tf.has_value = 1;
        tf.number = s->number;
        tf.evaluator = s->evaluator;
        tf.generation = s->generation;
        tf.status = (uint32_t)s->status;
        tf.value = s->value;
        tf.error = s->error;
        c->body_case = MABEAM__COMMAND__BODY_TRIAL_FINISH;
        c->trial_finish = &tf;
        break;
    case CONSENSUS_CMD_TRIAL_REQUEUE:
        tq.study = s->study_id;
        tq.has_number = 1;
        tq.number = s->number;
        tq.reason = s->reason;
        tq.evaluator = s->evaluator; /* studyagents: conditional re-queue */
        tq.has_generation = s->evaluator != NULL;
        tq.generation = s->generation;
        c->body_case = MABEAM__COMMAND__BODY_TRIAL_REQUEUE;
        c->trial_requeue = &tq;
        break;
    default:
        rc = mb_errorf(err, MB_EINVAL, "unknown command kind %d", (int)cmd->kind);
        goto out;
    }
    size_t n = mabeam__command__get_packed_size(c);
    uint8_t *b = alloc_fn(n > 0 ? n : 1);
    if (b == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "encode command of %zu bytes", n);
        goto out;
    }
    mabeam__command__pack(c, b);
    *buf = b;
    *len = n;
out:
    def_pb_free(&dp);
    if (rc == MB_ENOMEM && err != NULL && err->msg[0] == '\0')
        mb_errorf(err, rc, "encode study command");
    return rc;
}

int cs_study_cmd_decode(const Mabeam__Command *c, consensus_cmd *d, mb_error *err)
{
    int ok = 1, rc = MB_OK;
    consensus_study_cmd *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "decode study command");
    switch (c->body_case) {
    case MABEAM__COMMAND__BODY_STUDY_CREATE:
        d->kind = CONSENSUS_CMD_STUDY_CREATE;
        rc = def_from_pb(c->study_create->def, &s->def, err);
        break;
    case MABEAM__COMMAND__BODY_STUDY_STOP:
    case MABEAM__COMMAND__BODY_STUDY_FINISH: {
        const Mabeam__StudyStop *m =
            c->body_case == MABEAM__COMMAND__BODY_STUDY_STOP ? c->study_stop : c->study_finish;
        d->kind = c->body_case == MABEAM__COMMAND__BODY_STUDY_STOP ? CONSENSUS_CMD_STUDY_STOP
                                                                   : CONSENSUS_CMD_STUDY_FINISH;
        s->study_id = cs_strdup_or_null(m->id, &ok);
        s->reason = cs_strdup_or_null(m->reason, &ok);
        break;
    }
    case MABEAM__COMMAND__BODY_TRIAL_SUGGEST: {
        const Mabeam__TrialSuggest *m = c->trial_suggest;
        d->kind = CONSENSUS_CMD_TRIAL_SUGGEST;
        if (m->n_params > CONSENSUS_STUDY_MAX_PARAMS) {
            rc = mb_errorf(err, MB_EPROTO, "trial with %zu parameters", m->n_params);
            break;
        }
        s->study_id = cs_strdup_or_null(m->study, &ok);
        s->strategy = cs_strdup_or_null(m->strategy, &ok);
        s->group = m->group;
        s->basis = m->basis;
        s->number = m->number;
        s->n_params = (uint32_t)m->n_params;
        if (m->n_params > 0) {
            if ((s->params = malloc(m->n_params * sizeof(double))) == NULL)
                ok = 0;
            else
                memcpy(s->params, m->params, m->n_params * sizeof(double));
        }
        break;
    }
    case MABEAM__COMMAND__BODY_TRIAL_START: {
        const Mabeam__TrialStart *m = c->trial_start;
        d->kind = CONSENSUS_CMD_TRIAL_START;
        s->study_id = cs_strdup_or_null(m->study, &ok);
        s->number = m->number;
        s->evaluator = cs_strdup_or_null(m->evaluator, &ok);
        s->generation = m->generation;
        s->node = m->node;
        break;
    }
    case MABEAM__COMMAND__BODY_TRIAL_REPORT: {
        const Mabeam__TrialReport *m = c->trial_report;
        d->kind = CONSENSUS_CMD_TRIAL_REPORT;
        s->study_id = cs_strdup_or_null(m->study, &ok);
        s->number = m->number;
        s->evaluator = cs_strdup_or_null(m->evaluator, &ok);
        s->generation = m->generation;
        s->step = m->step;
        s->value = m->value;
        break;
    }
    case MABEAM__COMMAND__BODY_TRIAL_FINISH: {
        const Mabeam__TrialFinish *m = c->trial_finish;
        d->kind = CONSENSUS_CMD_TRIAL_FINISH;
        if (m->status < CONSENSUS_TRIAL_COMPLETED || m->status > CONSENSUS_TRIAL_FAILED) {
            rc = mb_errorf(err, MB_EPROTO, "trial finish status %u unknown", m->status);
            break;
        }
        s->study_id = cs_strdup_or_null(m->study, &ok);
        s->number = m->number;
        s->evaluator = cs_strdup_or_null(m->evaluator, &ok);
        s->generation = m->generation;
        s->status = (consensus_trial_status)m->status;
        s->value = m->value;
        s->error = cs_strdup_or_null(m->error, &ok);
        break;
    }
    case MABEAM__COMMAND__BODY_TRIAL_REQUEUE: {
        const Mabeam__TrialRequeue *m = c->trial_requeue;
        d->kind = CONSENSUS_CMD_TRIAL_REQUEUE;
        s->study_id = cs_strdup_or_null(m->study, &ok);
        s->number = m->number;
        s->reason = cs_strdup_or_null(m->reason, &ok);
        s->evaluator = cs_strdup_or_null(m->evaluator, &ok); /* studyagents */
        s->generation = m->generation;
        break;
    }
    default:
        cs_study_cmd_free(s);
        return MB_ENOTSUP;
    }
    if (rc == MB_OK && !ok)
        rc = mb_errorf(err, MB_ENOMEM, "decode study command");
    if (rc != MB_OK) {
        cs_study_cmd_free(s);
        return rc;
    }
    d->study = s;
    return MB_OK;
}

/* ---------------- snapshot ---------------- */

typedef struct studies_pb {
    Mabeam__Study *st;
    Mabeam__Study **stp;
    def_pb *defs;
    Mabeam__Trial *tr;
    Mabeam__Trial **trp;
    size_t n;
} studies_pb;

void cs_studies_pb_free(void *scratch)
{
    studies_pb *p = scratch;
    if (p == NULL)
        return;
    for (size_t i = 0; p->defs != NULL && i < p->n; i++)
        def_pb_free(&p->defs[i]);
    free(p->st);
    free(p->stp);
    free(p->defs);
    free(p->tr);
    free(p->trp);
    free(p);
}

int cs_studies_to_pb(const cs_studies *t, Mabeam__Snapshot *s, void **scratch)
{
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += t->items[i]->n_trials;
    studies_pb *p = calloc(1, sizeof(*p));
    *scratch = p;
    if (p == NULL)
        return MB_ENOMEM;
    p->n = t->n;
    p->st = calloc(t->n + 1, sizeof(*p->st));
    p->stp = calloc(t->n + 1, sizeof(*p->stp));
    p->defs = calloc(t->n + 1, sizeof(*p->defs));
    p->tr = calloc(total + 1, sizeof(*p->tr));
    p->trp = calloc(total + 1, sizeof(*p->trp));
    if (!p->st || !p->stp || !p->defs || !p->tr || !p->trp)
        return MB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const consensus_study *st = t->items[i];
        Mabeam__Study *m = &p->st[i];
        mabeam__study__init(m);
        if (def_to_pb(&st->def, 1, &p->defs[i]) != MB_OK)
            return MB_ENOMEM;
        m->def = &p->defs[i].d;
        m->has_status = m->has_created = m->has_finished = 1;
        m->status = (uint32_t)st->status;
        m->reason = st->reason;
        m->created = st->created;
        m->finished = st->finished;
        m->n_trials = st->n_trials;
        m->trials = &p->trp[k];
        for (uint32_t j = 0; j < st->n_trials; j++, k++) {
            const consensus_trial *tr = st->trials[j];
            Mabeam__Trial *q = &p->tr[k];
            mabeam__trial__init(q);
            q->has_number = q->has_group = q->has_status = q->has_generation = q->has_node = 1;
            q->number = tr->number;
            q->n_params = st->def.n_params;
            q->params = tr->params;
            q->strategy = tr->strategy;
            q->group = tr->group;
            q->suggested_by = tr->suggested_by;
            q->status = (uint32_t)tr->status;
            q->evaluator = tr->evaluator;
            q->generation = tr->generation;
            q->node = tr->node;
            q->has_value = tr->has_value;
            q->value = tr->value;
            q->n_report_steps = q->n_report_values = tr->n_reports;
            q->report_steps = tr->report_steps;
            q->report_values = tr->report_values;
            q->error = tr->error;
            q->has_requeues = q->has_suggested = q->has_started = q->has_finished = 1;
            q->requeues = tr->requeues;
            q->suggested = tr->suggested;
            q->started = tr->started;
            q->finished = tr->finished;
            q->has_basis = 1;
            q->basis = tr->basis;
            p->trp[k] = q;
        }
        p->stp[i] = m;
    }
    s->n_studies = t->n;
    s->studies = p->stp;
    return MB_OK;
}

static int restore_trial(consensus_study *st, const Mabeam__Trial *q, uint64_t applied,
                         mb_error *err)
{
    mb_error e;
    if (!q->has_number || q->number != st->n_trials + 1 || q->n_params != st->def.n_params ||
        !q->has_status || q->status > CONSENSUS_TRIAL_FAILED || q->strategy == NULL ||
        strlen(q->strategy) > STRATEGY_NAME_MAX || q->suggested_by == NULL ||
        strlen(q->suggested_by) > CONSENSUS_ID_MAX ||
        (st->def.n_groups == 0 ? q->group != 0 : q->group >= st->def.n_groups) ||
        q->n_report_steps != q->n_report_values ||
        q->n_report_steps > CONSENSUS_TRIAL_MAX_REPORTS || q->basis > st->n_done ||
        !q->has_suggested || q->suggested == 0 || q->suggested > applied || q->started > applied ||
        q->finished > applied ||
        (q->error != NULL && strlen(q->error) > CONSENSUS_TRIAL_ERROR_MAX) ||
        (q->status == CONSENSUS_TRIAL_RUNNING) != (q->started != 0 && q->finished == 0) ||
        (q->status >= CONSENSUS_TRIAL_COMPLETED) != (q->finished != 0) ||
        (q->status != CONSENSUS_TRIAL_SUGGESTED &&
         (cs_ident_check("evaluator", q->evaluator, &e) != MB_OK || q->generation == 0)) ||
        (q->status == CONSENSUS_TRIAL_SUGGESTED && q->evaluator != NULL) ||
        q->has_value !=
            (q->status == CONSENSUS_TRIAL_COMPLETED || q->status == CONSENSUS_TRIAL_PRUNED) ||
        (q->has_value && !isfinite(q->value)))
        return mb_errorf(err, MB_ECORRUPT, "snapshot: study \"%s\" trial %zu has bad fields",
                         st->def.id, (size_t)st->n_trials + 1);
    for (size_t i = 0; i < q->n_params; i++)
        if (param_value_check(&st->def.params[i], q->params[i], &e) != MB_OK)
            return mb_errorf(err, MB_ECORRUPT, "snapshot: study \"%s\" trial %u: %s", st->def.id,
                             q->number, e.msg);
    for (size_t i = 0; i < q->n_report_steps; i++)
        if ((i > 0 && q->report_steps[i] <= q->report_steps[i - 1]) ||
            !isfinite(q->report_values[i]))
            return mb_errorf(err, MB_ECORRUPT, "snapshot: trial reports out of order");
    consensus_trial *t = calloc(1, sizeof(*t));
    int ok = t != NULL;
    if (ok) {
        t->number = q->number;
        t->params = malloc((q->n_params + 1) * sizeof(double));
        t->report_steps = malloc((q->n_report_steps + 1) * sizeof(uint64_t));
        t->report_values = malloc((q->n_report_steps + 1) * sizeof(double));
        ok = t->params && t->report_steps && t->report_values;
    }
    if (ok) {
        memcpy(t->params, q->params, q->n_params * sizeof(double));
        if (q->n_report_steps > 0) {
            memcpy(t->report_steps, q->report_steps, q->n_report_steps * sizeof(uint64_t));
            memcpy(t->report_values, q->report_values, q->n_report_steps * sizeof(double));
        }
        t->n_reports = (uint32_t)q->n_report_steps;
        t->strategy = cs_strdup_or_null(q->strategy, &ok);
        t->group = q->group;
        t->suggested_by = cs_strdup_or_null(q->suggested_by, &ok);
        t->status = (consensus_trial_status)q->status;
        t->evaluator = cs_strdup_or_null(q->evaluator, &ok);
        t->generation = q->generation;
        t->node = q->node;
        t->has_value = q->has_value;
        t->value = q->value;
        t->error = cs_strdup_or_null(q->error, &ok);
        t->requeues = q->requeues;
        t->suggested = q->suggested;
        t->started = q->started;
        t->finished = q->finished;
        t->basis = q->basis;
    }
    if (ok && st->n_trials == st->cap_trials) {
        uint32_t cap = st->cap_trials ? st->cap_trials * 2 : 16;
        consensus_trial **tr = realloc(st->trials, cap * sizeof(*tr));
        if (tr == NULL)
            ok = 0;
        else {
            st->trials = tr;
            st->cap_trials = cap;
        }
    }
    if (!ok) {
        trial_free(t);
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    st->trials[st->n_trials++] = t;
    if (t->status <= CONSENSUS_TRIAL_RUNNING)
        st->n_pending++;
    if (t->status == CONSENSUS_TRIAL_RUNNING)
        st->n_running++;
    else
        st->n_done++;
    if (t->status == CONSENSUS_TRIAL_COMPLETED &&
        (st->best == 0 || better(st, t->value, st->trials[st->best - 1]->value)))
        st->best = t->number;
    return MB_OK;
}

int cs_studies_restore(const consensus_sm *sm, cs_studies *t, const Mabeam__Snapshot *s,
                       uint64_t applied, mb_error *err)
{
    (void)sm;
    mb_error e;
    if (s->n_studies > CONSENSUS_STUDY_MAX_STUDIES)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: too many studies");
    if (s->n_studies > 0 && (t->items = calloc(s->n_studies, sizeof(*t->items))) == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    t->cap = s->n_studies;
    for (size_t i = 0; i < s->n_studies; i++) {
        const Mabeam__Study *m = s->studies[i];
        consensus_study *st = calloc(1, sizeof(*st));
        if (st == NULL)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
        int rc = def_from_pb(m->def, &st->def, &e);
        if (rc == MB_OK) {
            for (uint32_t k = 0; k < st->def.n_params; k++)
                if (st->def.params[k].spec.type == MB_VT_NONE)
                    rc = mb_errorf(&e, MB_ECORRUPT, "parameter without a spec");
        }
        if (rc == MB_OK)
            rc = def_check(&st->def, &e);
        if (rc == MB_OK && st->def.objective_kind == CONSENSUS_OBJECTIVE_BUILTIN)
            rc = builtin_check(&st->def, &e);
        if (rc != MB_OK) {
            study_free(st);
            return mb_errorf(err, rc == MB_ENOMEM ? MB_ENOMEM : MB_ECORRUPT, "snapshot: %s", e.msg);
        }
        if (t->n > 0 && strcmp(t->items[t->n - 1]->def.id, st->def.id) >= 0) {
            study_free(st);
            return mb_errorf(err, MB_ECORRUPT, "snapshot: studies out of order");
        }
        t->items[t->n++] = st;
        int ok = 1;
        if (!m->has_status || m->status > CONSENSUS_STUDY_FINISHED || !m->has_created ||
            m->created == 0 || m->created > applied || m->finished > applied ||
            (m->status == CONSENSUS_STUDY_RUNNING) != (m->finished == 0) ||
            (m->status == CONSENSUS_STUDY_RUNNING) != (m->reason == NULL) ||
            (m->reason != NULL && strlen(m->reason) > CONSENSUS_TRIAL_ERROR_MAX) ||
            m->n_trials > CONSENSUS_STUDY_MAX_TRIALS ||
            (st->def.max_trials > 0 && m->n_trials > st->def.max_trials))
            return mb_errorf(err, MB_ECORRUPT, "snapshot: study \"%s\" has bad fields", st->def.id);
        st->status = (consensus_study_status)m->status;
        st->reason = cs_strdup_or_null(m->reason, &ok);
        st->created = m->created;
        st->finished = m->finished;
        if (!ok)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
        for (size_t k = 0; k < m->n_trials; k++)
            if ((rc = restore_trial(st, m->trials[k], applied, err)) != MB_OK)
                return rc;
        if (st->n_running > st->def.parallelism ||
            st->n_pending - st->n_running > st->def.parallelism)
            return mb_errorf(err, MB_ECORRUPT, "snapshot: study \"%s\" over its parallelism",
                             st->def.id);
    }
    return MB_OK;
}

/* ---------------- JSON -> create command ---------------- */

static int json_uint(const cJSON *j, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < 0 ||
        j->valuedouble > max || j->valuedouble != floor(j->valuedouble))
        return 0;
    *out = (uint64_t)j->valuedouble;
    return 1;
}

/* Split "a b  c" on spaces into argv (no quoting: use the array form). */
static int split_words(const char *s, consensus_study_def *d)
{
    const char *p = s;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        const char *e = p;
        while (*e != '\0' && *e != ' ' && *e != '\t')
            e++;
        if (d->argc >= CONSENSUS_STUDY_MAX_ARGS)
            return MB_EINVAL;
        char **v = realloc(d->argv, (d->argc + 1) * sizeof(char *));
        if (v == NULL)
            return MB_ENOMEM;
        d->argv = v;
        if ((d->argv[d->argc] = strndup(p, (size_t)(e - p))) == NULL)
            return MB_ENOMEM;
        d->argc++;
        p = e;
    }
    return MB_OK;
}

static int parse_objective(const cJSON *o, consensus_study_def *d, mb_error *err)
{
    if (cJSON_IsObject(o)) {
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(o, "command");
        if (!cJSON_IsArray(cmd) || cJSON_GetArraySize(cmd) > CONSENSUS_STUDY_MAX_ARGS)
            return mb_errorf(err, MB_EINVAL, "objective: {\"command\": [argv...]} expected");
        d->objective_kind = CONSENSUS_OBJECTIVE_COMMAND;
        int n = cJSON_GetArraySize(cmd);
        if (n > 0 && (d->argv = calloc((size_t)n, sizeof(char *))) == NULL)
            return MB_ENOMEM;
        const cJSON *a;
        cJSON_ArrayForEach(a, cmd)
        {
            if (!cJSON_IsString(a))
                return mb_errorf(err, MB_EINVAL, "objective: command arguments are strings");
            if ((d->argv[d->argc++] = strdup(a->valuestring)) == NULL)
                return MB_ENOMEM;
        }
        return MB_OK;
    }
    if (!cJSON_IsString(o))
        return mb_errorf(err, MB_EINVAL,
                         "objective: \"builtin:NAME\", \"command:ARGV\" or \"python:SCRIPT\"");
    const char *s = o->valuestring;
    const char *colon = strchr(s, ':');
    size_t kl = colon != NULL ? (size_t)(colon - s) : 0;
    if (colon != NULL && kl == 7 && strncmp(s, "builtin", 7) == 0) {
        d->objective_kind = CONSENSUS_OBJECTIVE_BUILTIN;
        return (d->objective = strdup(colon + 1)) != NULL ? MB_OK : MB_ENOMEM;
    }
    if (colon != NULL && kl == 6 && strncmp(s, "python", 6) == 0) {
        d->objective_kind = CONSENSUS_OBJECTIVE_PYTHON;
        return (d->objective = strdup(colon + 1)) != NULL ? MB_OK : MB_ENOMEM;
    }
    if (colon != NULL && kl == 7 && strncmp(s, "command", 7) == 0) {
        d->objective_kind = CONSENSUS_OBJECTIVE_COMMAND;
        int rc = split_words(colon + 1, d);
        if (rc == MB_EINVAL)
            return mb_errorf(err, rc, "objective: more than %d arguments",
                             CONSENSUS_STUDY_MAX_ARGS);
        return rc;
    }
    return mb_errorf(err, MB_EINVAL,
                     "objective \"%.64s\" unknown: \"builtin:NAME\", \"command:ARGV\" or "
                     "\"python:SCRIPT\"",
                     s);
}

static int parse_space(const cJSON *space, consensus_study_def *d, mb_error *err)
{
    if (!cJSON_IsArray(space))
        return mb_errorf(err, MB_EINVAL, "space: an array of variable names or specs expected");
    int n = cJSON_GetArraySize(space);
    if (n > CONSENSUS_STUDY_MAX_PARAMS)
        return mb_errorf(err, MB_EINVAL, "space: more than %d parameters",
                         CONSENSUS_STUDY_MAX_PARAMS);
    if (n > 0 && (d->params = calloc((size_t)n, sizeof(*d->params))) == NULL)
        return MB_ENOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, space)
    {
        consensus_study_param *p = &d->params[d->n_params];
        const cJSON *var = cJSON_GetObjectItemCaseSensitive(it, "variable");
        if (cJSON_IsString(it) || cJSON_IsString(var)) {
            p->name = strdup(cJSON_IsString(it) ? it->valuestring : var->valuestring);
            if (p->name == NULL)
                return MB_ENOMEM;
            p->from_variable = 1;
            d->n_params++;
            continue;
        }
        if (!cJSON_IsObject(it))
            return mb_errorf(err, MB_EINVAL, "space: item %u is not a name or a spec",
                             d->n_params + 1);
        consensus_cmd def;
        int rc = consensus_define_from_json(it, &def, err);
        if (rc != MB_OK)
            return rc;
        p->name = def.name;
        p->spec = def.spec;
        def.name = NULL;
        memset(&def.spec, 0, sizeof(def.spec));
        consensus_cmd_free(&def);
        d->n_params++;
    }
    return MB_OK;
}

static int parse_partition(const cJSON *part, consensus_study_def *d, mb_error *err)
{
    if (!cJSON_IsArray(part) || cJSON_GetArraySize(part) > CONSENSUS_STUDY_MAX_PARAMS)
        return mb_errorf(err, MB_EINVAL, "partition: an array of arrays of parameter names");
    uint8_t seen[CONSENSUS_STUDY_MAX_PARAMS] = { 0 };
    const cJSON *grp;
    uint32_t g = 0;
    cJSON_ArrayForEach(grp, part)
    {
        if (!cJSON_IsArray(grp))
            return mb_errorf(err, MB_EINVAL, "partition: group %u is not an array", g + 1);
        const cJSON *nm;
        cJSON_ArrayForEach(nm, grp)
        {
            uint32_t k = 0;
            while (cJSON_IsString(nm) && k < d->n_params &&
                   strcmp(d->params[k].name, nm->valuestring) != 0)
                k++;
            if (!cJSON_IsString(nm) || k == d->n_params)
                return mb_errorf(err, MB_EINVAL,
                                 "partition: group %u names no parameter of "
                                 "the space",
                                 g + 1);
            if (seen[k])
                return mb_errorf(err, MB_EINVAL, "partition: \"%s\" is in two groups",
                                 d->params[k].name);
            seen[k] = 1;
            d->params[k].group = g;
        }
        g++;
    }
    for (uint32_t k = 0; k < d->n_params; k++)
        if (!seen[k])
            return mb_errorf(err, MB_EINVAL, "partition: \"%s\" is in no group", d->params[k].name);
    d->n_groups = g;
    return MB_OK;
}

/* studyfeat: "pruner": "median" | {"kind": "asha", "min_resource": 1, ...}
 * (absent settings take mb_optim_config_default's values) and
 * "propose": {"rule": "majority", "fraction": 0.75, "caps": ["voter"]}. */
static int studyfeat_parse(const cJSON *j, consensus_study_def *d, mb_error *err)
{
    static const struct {
        const char *key;
        int wide;
        size_t off;
    } pf[] = {
        { "n_startup_trials", 0, offsetof(consensus_study_pruner, n_startup_trials) },
        { "n_warmup_steps", 1, offsetof(consensus_study_pruner, n_warmup_steps) },
        { "n_min_trials", 0, offsetof(consensus_study_pruner, n_min_trials) },
        { "min_resource", 1, offsetof(consensus_study_pruner, min_resource) },
        { "reduction_factor", 0, offsetof(consensus_study_pruner, reduction_factor) },
        { "min_early_stopping_rate", 0, offsetof(consensus_study_pruner, min_early_stopping_rate) },
        { "max_resource", 1, offsetof(consensus_study_pruner, max_resource) },
    };
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "pruner");
    if (f != NULL) {
        const cJSON *kind = cJSON_IsObject(f) ? cJSON_GetObjectItemCaseSensitive(f, "kind") : f;
        mb_optim_pruner k;
        if (!cJSON_IsString(kind) || mb_optim_pruner_parse(kind->valuestring, &k, NULL) != MB_OK)
            return mb_errorf(err, MB_EINVAL,
                             "study: pruner is \"none\", \"median\", \"asha\", \"hyperband\" or "
                             "{\"kind\": ..., settings}");
        mb_optim_config cfg;
        mb_optim_config_default(&cfg, MB_OPTIM_RANDOM);
        consensus_study_pruner *p = &d->pruner;
        p->kind = (uint32_t)k;
        p->n_startup_trials = cfg.pruner.n_startup_trials;
        p->n_warmup_steps = cfg.pruner.n_warmup_steps;
        p->n_min_trials = cfg.pruner.n_min_trials;
        p->min_resource = cfg.pruner.min_resource;
        p->reduction_factor = cfg.pruner.reduction_factor;
        p->min_early_stopping_rate = cfg.pruner.min_early_stopping_rate;
        p->max_resource = cfg.pruner.max_resource;
        const cJSON *it, *settings = cJSON_IsObject(f) ? f : NULL;
        cJSON_ArrayForEach(it, settings)
        {
            size_t i = 0;
            while (i < sizeof(pf) / sizeof(pf[0]) && strcmp(pf[i].key, it->string) != 0)
                i++;
            if (strcmp(it->string, "kind") == 0)
                continue;
            uint64_t u;
            if (i == sizeof(pf) / sizeof(pf[0]) ||
                !json_uint(it, pf[i].wide ? 9007199254740992.0 : 4294967295.0, &u))
                return mb_errorf(err, MB_EINVAL,
                                 "study: pruner setting \"%.64s\" unknown or not an unsigned "
                                 "integer",
                                 it->string);
            if (pf[i].wide)
                *(uint64_t *)((char *)p + pf[i].off) = u;
            else
                *(uint32_t *)((char *)p + pf[i].off) = (uint32_t)u;
        }
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "propose");
    if (f == NULL) {
        if (d->on_finish == CONSENSUS_ON_FINISH_PROPOSE) { /* default: majority of "voter"s */
            if ((d->propose_caps = calloc(1, sizeof(char *))) == NULL ||
                (d->propose_caps[0] = strdup("voter")) == NULL)
                return MB_ENOMEM;
            d->n_propose_caps = 1;
        }
        return MB_OK;
    }
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(f, "rule");
    const cJSON *frac = cJSON_GetObjectItemCaseSensitive(f, "fraction");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(f, "caps");
    if (!cJSON_IsObject(f) || (rule != NULL && !cJSON_IsString(rule)) ||
        (frac != NULL && !cJSON_IsNumber(frac)) ||
        (caps != NULL &&
         (!cJSON_IsArray(caps) || cJSON_GetArraySize(caps) > CONSENSUS_STUDY_MAX_CAPS)) ||
        cJSON_GetArraySize(f) != (rule != NULL) + (frac != NULL) + (caps != NULL))
        return mb_errorf(err, MB_EINVAL,
                         "study: propose is {\"rule\": \"majority\"|\"supermajority\"|"
                         "\"unanimous\", \"fraction\": F, \"caps\": [up to %d capabilities]}",
                         CONSENSUS_STUDY_MAX_CAPS);
    if (rule != NULL && consensus_rule_parse(rule->valuestring, &d->propose_rule) != MB_OK)
        return mb_errorf(err, MB_EINVAL, "study: unknown propose rule \"%.32s\"",
                         rule->valuestring);
    if (frac != NULL)
        d->propose_fraction = frac->valuedouble;
    int n = caps != NULL ? cJSON_GetArraySize(caps) : 1;
    if (n > 0 && (d->propose_caps = calloc((size_t)n, sizeof(char *))) == NULL)
        return MB_ENOMEM;
    if (caps == NULL) {
        if ((d->propose_caps[0] = strdup("voter")) == NULL)
            return MB_ENOMEM;
        d->n_propose_caps = 1;
        return MB_OK;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, caps)
    {
        if (!cJSON_IsString(c))
            return mb_errorf(err, MB_EINVAL, "study: propose caps are strings");
        if ((d->propose_caps[d->n_propose_caps] = strdup(c->valuestring)) == NULL)
            return MB_ENOMEM;
        d->n_propose_caps++;
    }
    return MB_OK;
}

int consensus_study_from_json(const cJSON *j, int64_t now_ms, consensus_cmd *out, mb_error *err)
{
    static const char *const keys[] = { "id",       "space",     "objective", "direction",
                                        "strategy", "bandit",    "budget",    "parallelism",
                                        "seed",     "on_finish", "partition", "trial_timeout_s",
                                        "pruner",   "propose" };
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(j))
        return mb_errorf(err, MB_EINVAL, "a study is a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        size_t k = 0;
        while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k], it->string) != 0)
            k++;
        if (k == sizeof(keys) / sizeof(keys[0]))
            return mb_errorf(err, MB_EINVAL, "study: unknown field \"%.64s\"", it->string);
    }
    consensus_study_cmd *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    consensus_study_def *d = &s->def;
    int rc = MB_OK;
    uint64_t u = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!cJSON_IsString(f)) {
        rc = mb_errorf(err, MB_EINVAL, "study: \"id\" (a string) is required");
        goto fail;
    }
    if ((d->id = strdup(f->valuestring)) == NULL)
        goto nomem;
    if ((rc = parse_space(cJSON_GetObjectItemCaseSensitive(j, "space"), d, err)) != MB_OK)
        goto fail;
    if ((rc = parse_objective(cJSON_GetObjectItemCaseSensitive(j, "objective"), d, err)) != MB_OK)
        goto fail;
    f = cJSON_GetObjectItemCaseSensitive(j, "direction");
    if (f != NULL) {
        if (!cJSON_IsString(f) ||
            (strcmp(f->valuestring, "minimize") != 0 && strcmp(f->valuestring, "maximize") != 0)) {
            rc = mb_errorf(err, MB_EINVAL, "study: direction is \"minimize\" or \"maximize\"");
            goto fail;
        }
        d->maximize = strcmp(f->valuestring, "maximize") == 0;
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "strategy");
    if ((d->strategy = strdup(cJSON_IsString(f) ? f->valuestring : "tpe")) == NULL)
        goto nomem;
    if (f != NULL && !cJSON_IsString(f)) {
        rc = mb_errorf(err, MB_EINVAL, "study: strategy is a name");
        goto fail;
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "bandit");
    if (f != NULL && (!cJSON_IsString(f) || (d->bandit = strdup(f->valuestring)) == NULL)) {
        rc = mb_errorf(err, cJSON_IsString(f) ? MB_ENOMEM : MB_EINVAL, "study: bad bandit");
        goto fail;
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "budget");
    if (f != NULL) {
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(f, "trials");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(f, "seconds");
        if (!cJSON_IsObject(f) || (tr != NULL && !json_uint(tr, CONSENSUS_STUDY_MAX_TRIALS, &u)) ||
            (sec != NULL && (!cJSON_IsNumber(sec) || !(sec->valuedouble >= 0) ||
                             sec->valuedouble > 365.0 * 86400))) {
            rc = mb_errorf(err, MB_EINVAL,
                           "study: budget is {\"trials\": N, \"seconds\": S} (N <= %d)",
                           CONSENSUS_STUDY_MAX_TRIALS);
            goto fail;
        }
        if (tr != NULL)
            d->max_trials = (uint32_t)u;
        if (sec != NULL) {
            d->time_budget_ms = (uint64_t)(sec->valuedouble * 1000.0);
            if (d->time_budget_ms > 0)
                d->deadline_ms = now_ms + (int64_t)d->time_budget_ms;
        }
    }
    d->parallelism = 1;
    f = cJSON_GetObjectItemCaseSensitive(j, "parallelism");
    if (f != NULL) {
        if (!json_uint(f, CONSENSUS_STUDY_MAX_PARALLEL, &u)) {
            rc = mb_errorf(err, MB_EINVAL, "study: parallelism is 1 to %d",
                           CONSENSUS_STUDY_MAX_PARALLEL);
            goto fail;
        }
        d->parallelism = (uint32_t)u;
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (f != NULL) {
        char *end = NULL;
        if (cJSON_IsString(f) && f->valuestring[0] >= '0' && f->valuestring[0] <= '9')
            d->seed = strtoull(f->valuestring, &end, 10);
        if (!(json_uint(f, 9007199254740992.0, &d->seed) || (end != NULL && *end == '\0'))) {
            rc = mb_errorf(err, MB_EINVAL, "study: seed is an unsigned integer (or its string)");
            goto fail;
        }
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "on_finish");
    if (f != NULL) {
        uint32_t k = 0;
        while (cJSON_IsString(f) && k < 3 && strcmp(on_finish_names[k], f->valuestring) != 0)
            k++;
        if (!cJSON_IsString(f) || k == 3) {
            rc = mb_errorf(err, MB_EINVAL, "study: on_finish is none, write or propose");
            goto fail;
        }
        d->on_finish = (consensus_on_finish)k;
    }
    f = cJSON_GetObjectItemCaseSensitive(j, "partition");
    if (f != NULL && (rc = parse_partition(f, d, err)) != MB_OK)
        goto fail;
    f = cJSON_GetObjectItemCaseSensitive(j, "trial_timeout_s");
    if (f != NULL) {
        if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0) || f->valuedouble > 86400.0 * 30) {
            rc = mb_errorf(err, MB_EINVAL, "study: trial_timeout_s is 0 to 30 days");
            goto fail;
        }
        d->trial_timeout_ms = (uint64_t)(f->valuedouble * 1000.0);
    }
    if ((rc = studyfeat_parse(j, d, err)) != MB_OK)
        goto fail;
    /* At the API only: logs written before partitioned search existed may
     * hold a partitioned grid (its optimiser ignores the partition). */
    if (d->n_groups > 1 && strcmp(d->strategy, "grid") == 0) {
        rc = mb_errorf(err, MB_EINVAL,
                       "study \"%s\": a grid covers the whole space: no partition with it", d->id);
        goto fail;
    }
    if ((rc = def_check(d, err)) != MB_OK)
        goto fail;
    out->kind = CONSENSUS_CMD_STUDY_CREATE;
    out->study = s;
    return MB_OK;
nomem:
    rc = mb_errorf(err, MB_ENOMEM, "parse study");
fail:
    if (rc == MB_ENOMEM && err != NULL && err->msg[0] == '\0')
        mb_errorf(err, rc, "parse study");
    cs_study_cmd_free(s);
    return rc;
}
