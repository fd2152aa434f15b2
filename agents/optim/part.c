/* Coordinated search over a partitioned space (mb_optim_part, see
 * <mabeam/optim.h>): one optimiser per group of dimensions, each over the
 * subspace of its group. Every trial is suggested by all of them in
 * lockstep (trial k of every group optimiser is trial k of the whole), so
 * each evaluated configuration is complete, and each group optimiser is
 * told the outcome of every trial (the value of the full configuration,
 * with its own group's coordinates): each learns from all results. Group
 * g's seed is derived from the configuration's seed and g, so the whole is
 * deterministic per seed. */
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

struct mb_optim_part {
    uint32_t ngroups;
    size_t ndims;
    uint32_t *group_of;  /* ndims */
    mb_optim **opt;      /* ngroups */
    size_t **dims;       /* per group: its dimensions of the full space */
    size_t *ndims_group; /* per group */
    int broken;          /* a lockstep call failed half-way: unusable */
};

void mb_optim_part_free(mb_optim_part *p)
{
    if (p == NULL)
        return;
    for (uint32_t g = 0; g < p->ngroups; g++) {
        if (p->opt != NULL)
            mb_optim_free(p->opt[g]);
        if (p->dims != NULL)
            free(p->dims[g]);
    }
    free(p->opt);
    free(p->dims);
    free(p->ndims_group);
    free(p->group_of);
    free(p);
}

static int subspace(const mb_optim_space *sp, const size_t *dims, size_t n, mb_optim_space **out)
{
    mb_optim_space *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->dims = calloc(n, sizeof(*s->dims))) == NULL) {
        free(s);
        return MB_ENOMEM;
    }
    s->cap = n;
    for (size_t i = 0; i < n; i++) {
        const struct optim_dim *d = &sp->dims[dims[i]];
        struct optim_dim *e = &s->dims[s->n];
        *e = *d;
        e->options = NULL;
        if (d->type == MB_OPTIM_CHOICE) {
            e->options = calloc(d->nvalues, sizeof(char *));
            for (uint64_t k = 0; e->options != NULL && k < d->nvalues; k++)
                if ((e->options[k] = strdup(d->options[k])) == NULL) {
                    for (uint64_t j = 0; j < k; j++)
                        free(e->options[j]);
                    free(e->options);
                    e->options = NULL;
                }
            if (e->options == NULL) {
                mb_optim_space_free(s);
                return MB_ENOMEM;
            }
        }
        s->n++;
    }
    *out = s;
    return MB_OK;
}

int mb_optim_part_new(const mb_optim_space *space, const mb_optim_config *cfg,
                      const uint32_t *groups, uint32_t ngroups, mb_optim_part **out, mb_error *err)
{
    if (space == NULL || cfg == NULL || out == NULL || (ngroups > 1 && groups == NULL))
        return mb_errorf(err, MB_EINVAL, "partitioned optimiser: NULL argument");
    if (ngroups == 0)
        ngroups = 1;
    if (ngroups > space->n)
        return mb_errorf(err, MB_EINVAL, "partitioned optimiser: %u groups for %zu dimensions",
                         ngroups, space->n);
    if (ngroups > 1 && cfg->strategy == MB_OPTIM_GRID)
        return mb_errorf(err, MB_EINVAL,
                         "partitioned optimiser: a grid covers the whole space (use one group)");
    mb_optim_part *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return mb_errorf(err, MB_ENOMEM, "partitioned optimiser");
    p->ngroups = ngroups;
    p->ndims = space->n;
    int rv = MB_OK;
    p->group_of = calloc(space->n, sizeof(uint32_t));
    p->opt = calloc(ngroups, sizeof(*p->opt));
    p->dims = calloc(ngroups, sizeof(*p->dims));
    p->ndims_group = calloc(ngroups, sizeof(size_t));
    if (p->group_of == NULL || p->opt == NULL || p->dims == NULL || p->ndims_group == NULL) {
        rv = mb_errorf(err, MB_ENOMEM, "partitioned optimiser");
        goto fail;
    }
    for (size_t i = 0; i < space->n; i++) {
        p->group_of[i] = ngroups > 1 ? groups[i] : 0;
        if (p->group_of[i] >= ngroups) {
            rv = mb_errorf(err, MB_EINVAL, "partitioned optimiser: dimension %zu in group %u of %u",
                           i, p->group_of[i], ngroups);
            goto fail;
        }
        p->ndims_group[p->group_of[i]]++;
    }
    for (uint32_t g = 0; g < ngroups; g++) {
        if (p->ndims_group[g] == 0) {
            rv = mb_errorf(err, MB_EINVAL, "partitioned optimiser: group %u is empty", g);
            goto fail;
        }
        if ((p->dims[g] = malloc(p->ndims_group[g] * sizeof(size_t))) == NULL) {
            rv = mb_errorf(err, MB_ENOMEM, "partitioned optimiser");
            goto fail;
        }
        size_t k = 0;
        for (size_t i = 0; i < space->n; i++)
            if (p->group_of[i] == g)
                p->dims[g][k++] = i;
        mb_optim_space *sub = NULL;
        if (subspace(space, p->dims[g], k, &sub) != MB_OK) {
            rv = mb_errorf(err, MB_ENOMEM, "partitioned optimiser");
            goto fail;
        }
        mb_optim_config c = *cfg;
        /* One group: exactly the plain optimiser (same seed). */
        if (ngroups > 1)
            c.seed = optim_mix(cfg->seed ^ 0x7061727469ull, g);
        rv = mb_optim_new(sub, &c, &p->opt[g], err);
        mb_optim_space_free(sub);
        if (rv != MB_OK)
            goto fail;
    }
    *out = p;
    return MB_OK;
fail:
    mb_optim_part_free(p);
    return rv;
}

uint32_t mb_optim_part_ngroups(const mb_optim_part *p)
{
    return p != NULL ? p->ngroups : 0;
}

int mb_optim_part_suggest(mb_optim_part *p, uint64_t *trial_id, double *values, mb_error *err)
{
    if (p == NULL || trial_id == NULL || values == NULL)
        return mb_errorf(err, MB_EINVAL, "suggest: NULL argument");
    if (p->broken)
        return mb_errorf(err, MB_ESTATE, "suggest: the partitioned optimiser is out of step");
    double x[MB_OPTIM_MAX_DIMS];
    uint64_t id0 = 0;
    for (uint32_t g = 0; g < p->ngroups; g++) {
        uint64_t id;
        int rv = mb_optim_suggest(p->opt[g], &id, x, err);
        if (rv == MB_OK && g > 0 && id != id0)
            rv = mb_errorf(err, MB_EINTERNAL, "suggest: group %u at trial %llu, group 0 at %llu", g,
                           (unsigned long long)id, (unsigned long long)id0);
        if (rv != MB_OK) {
            if (g > 0)
                p->broken = 1; /* earlier groups hold a trial the others lack */
            return rv;
        }
        id0 = id;
        for (size_t k = 0; k < p->ndims_group[g]; k++)
            values[p->dims[g][k]] = x[k];
    }
    *trial_id = id0;
    return MB_OK;
}

/* Apply one call to every group; a failure after the first group leaves
 * the groups out of step. */
#define EACH_GROUP(p, call)                                                                        \
    do {                                                                                           \
        if ((p) == NULL)                                                                           \
            return mb_errorf(err, MB_EINVAL, "NULL partitioned optimiser");                        \
        if ((p)->broken)                                                                           \
            return mb_errorf(err, MB_ESTATE, "the partitioned optimiser is out of step");          \
        for (uint32_t g = 0; g < (p)->ngroups; g++) {                                              \
            mb_optim *o = (p)->opt[g];                                                             \
            int rv_ = (call);                                                                      \
            if (rv_ != MB_OK) {                                                                    \
                if (g > 0)                                                                         \
                    (p)->broken = 1;                                                               \
                return rv_;                                                                        \
            }                                                                                      \
        }                                                                                          \
        return MB_OK;                                                                              \
    } while (0)

int mb_optim_part_report(mb_optim_part *p, uint64_t trial_id, uint64_t step, double value,
                         mb_error *err)
{
    EACH_GROUP(p, mb_optim_report(o, trial_id, step, value, NULL, err));
}

int mb_optim_part_complete(mb_optim_part *p, uint64_t trial_id, double value, mb_error *err)
{
    EACH_GROUP(p, mb_optim_complete(o, trial_id, value, err));
}

int mb_optim_part_prune(mb_optim_part *p, uint64_t trial_id, mb_error *err)
{
    EACH_GROUP(p, mb_optim_prune(o, trial_id, err));
}

int mb_optim_part_fail(mb_optim_part *p, uint64_t trial_id, mb_error *err)
{
    EACH_GROUP(p, mb_optim_fail(o, trial_id, err));
}

mb_optim_strategy mb_optim_part_trial_strategy(const mb_optim_part *p, uint64_t trial_id)
{
    return p != NULL ? mb_optim_trial_strategy(p->opt[0], trial_id) : 0;
}

const mb_optim *mb_optim_part_group(const mb_optim_part *p, uint32_t g)
{
    return p != NULL && g < p->ngroups ? p->opt[g] : NULL;
}
