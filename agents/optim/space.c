/* Search spaces: construction with bound checks, JSON decode/encode (the
 * decoder takes outside input and is fuzzed), validation of configurations
 * and the map from the unit cube to valid configurations. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

#define OPTIM_INT_LIMIT 9007199254740992.0 /* 2^53: integers exact as doubles */

int mb_optim_space_new(mb_optim_space **out, mb_error *err)
{
    mb_optim_space *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate search space");
    *out = sp;
    return MB_OK;
}

static void dim_clear(struct optim_dim *d)
{
    if (d->options != NULL) {
        for (uint64_t i = 0; i < d->nvalues; i++)
            free(d->options[i]);
        free(d->options);
    }
    d->options = NULL;
}

void mb_optim_space_free(mb_optim_space *sp)
{
    if (sp == NULL)
        return;
    for (size_t i = 0; i < sp->n; i++)
        dim_clear(&sp->dims[i]);
    free(sp->dims);
    free(sp);
}

int optim_grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return MB_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*ptr, ncap * elem);
    if (p == NULL)
        return MB_ENOMEM;
    *ptr = p;
    *cap = ncap;
    return MB_OK;
}

/* Common checks on a new dimension's name; returns a slot or an error. */
static int dim_slot(mb_optim_space *sp, const char *name, struct optim_dim **out, mb_error *err)
{
    if (sp == NULL || name == NULL)
        return mb_errorf(err, MB_EINVAL, "add dimension: NULL space or name");
    size_t len = strlen(name);
    if (len == 0 || len >= MB_OPTIM_MAX_NAME)
        return mb_errorf(err, MB_EINVAL, "add dimension: name must be 1..%d bytes",
                         MB_OPTIM_MAX_NAME - 1);
    if (sp->n >= MB_OPTIM_MAX_DIMS)
        return mb_errorf(err, MB_EINVAL, "add dimension '%s': more than %d dimensions", name,
                         MB_OPTIM_MAX_DIMS);
    for (size_t i = 0; i < sp->n; i++)
        if (strcmp(sp->dims[i].name, name) == 0)
            return mb_errorf(err, MB_EINVAL, "add dimension '%s': duplicate name", name);
    if (optim_grow((void **)&sp->dims, &sp->cap, sp->n + 1, sizeof(*sp->dims)) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "add dimension '%s'", name);
    struct optim_dim *d = &sp->dims[sp->n];
    memset(d, 0, sizeof(*d));
    memcpy(d->name, name, len + 1);
    *out = d;
    return MB_OK;
}

int mb_optim_space_add_float(mb_optim_space *sp, const char *name, double low, double high,
                             int log_scale, mb_error *err)
{
    struct optim_dim *d;
    int rv = dim_slot(sp, name, &d, err);
    if (rv != MB_OK)
        return rv;
    if (!isfinite(low) || !isfinite(high) || !(low < high))
        return mb_errorf(err, MB_EINVAL, "float '%s': need finite low < high (got %g, %g)", name,
                         low, high);
    if (log_scale && !(low > 0.0))
        return mb_errorf(err, MB_EINVAL, "float '%s': log scale needs low > 0 (got %g)", name, low);
    d->type = MB_OPTIM_FLOAT;
    d->low = low;
    d->high = high;
    d->log_scale = log_scale ? 1 : 0;
    sp->n++;
    return MB_OK;
}

int mb_optim_space_add_int(mb_optim_space *sp, const char *name, int64_t low, int64_t high,
                           int64_t step, int log_scale, mb_error *err)
{
    struct optim_dim *d;
    int rv = dim_slot(sp, name, &d, err);
    if (rv != MB_OK)
        return rv;
    if ((double)low < -OPTIM_INT_LIMIT || (double)high > OPTIM_INT_LIMIT || low > high)
        return mb_errorf(err, MB_EINVAL, "int '%s': need low <= high within +-2^53", name);
    if (step < 1 || (double)step > OPTIM_INT_LIMIT)
        return mb_errorf(err, MB_EINVAL, "int '%s': step must be >= 1", name);
    if (log_scale && (low < 1 || step != 1))
        return mb_errorf(err, MB_EINVAL, "int '%s': log scale needs low >= 1 and step 1", name);
    uint64_t count = (uint64_t)(high - low) / (uint64_t)step;
    d->type = MB_OPTIM_INT;
    d->ilow = low;
    d->step = step;
    d->ihigh = low + (int64_t)count * step;
    d->nvalues = count + 1;
    d->low = (double)d->ilow;
    d->high = (double)d->ihigh;
    d->log_scale = log_scale ? 1 : 0;
    sp->n++;
    return MB_OK;
}

int mb_optim_space_add_choice(mb_optim_space *sp, const char *name, const char *const *options,
                              size_t n, mb_error *err)
{
    struct optim_dim *d;
    int rv = dim_slot(sp, name, &d, err);
    if (rv != MB_OK)
        return rv;
    if (options == NULL || n == 0 || n > MB_OPTIM_MAX_CHOICES)
        return mb_errorf(err, MB_EINVAL, "choice '%s': need 1..%d options", name,
                         MB_OPTIM_MAX_CHOICES);
    for (size_t i = 0; i < n; i++) {
        if (options[i] == NULL || options[i][0] == '\0' || strlen(options[i]) >= MB_OPTIM_MAX_NAME)
            return mb_errorf(err, MB_EINVAL, "choice '%s': option %zu empty or too long", name, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(options[i], options[j]) == 0)
                return mb_errorf(err, MB_EINVAL, "choice '%s': duplicate option '%s'", name,
                                 options[i]);
    }
    d->options = calloc(n, sizeof(char *));
    if (d->options == NULL)
        return mb_errorf(err, MB_ENOMEM, "choice '%s'", name);
    d->nvalues = n;
    for (size_t i = 0; i < n; i++) {
        d->options[i] = strdup(options[i]);
        if (d->options[i] == NULL) {
            dim_clear(d);
            return mb_errorf(err, MB_ENOMEM, "choice '%s'", name);
        }
    }
    d->type = MB_OPTIM_CHOICE;
    d->low = 0;
    d->high = (double)(n - 1);
    sp->n++;
    return MB_OK;
}

int optim_space_copy(const mb_optim_space *src, mb_optim_space **out)
{
    mb_optim_space *sp = NULL;
    if (mb_optim_space_new(&sp, NULL) != MB_OK)
        return MB_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        const struct optim_dim *d = &src->dims[i];
        int rv;
        if (d->type == MB_OPTIM_FLOAT)
            rv = mb_optim_space_add_float(sp, d->name, d->low, d->high, d->log_scale, NULL);
        else if (d->type == MB_OPTIM_INT)
            rv =
                mb_optim_space_add_int(sp, d->name, d->ilow, d->ihigh, d->step, d->log_scale, NULL);
        else
            rv = mb_optim_space_add_choice(sp, d->name, (const char *const *)d->options,
                                           (size_t)d->nvalues, NULL);
        if (rv != MB_OK) {
            mb_optim_space_free(sp);
            return rv;
        }
    }
    *out = sp;
    return MB_OK;
}

size_t mb_optim_space_ndims(const mb_optim_space *sp)
{
    return sp ? sp->n : 0;
}

mb_optim_dim_type mb_optim_space_type(const mb_optim_space *sp, size_t dim)
{
    return (sp && dim < sp->n) ? sp->dims[dim].type : 0;
}

const char *mb_optim_space_name(const mb_optim_space *sp, size_t dim)
{
    return (sp && dim < sp->n) ? sp->dims[dim].name : NULL;
}

size_t mb_optim_space_noptions(const mb_optim_space *sp, size_t dim)
{
    if (sp == NULL || dim >= sp->n || sp->dims[dim].type != MB_OPTIM_CHOICE)
        return 0;
    return (size_t)sp->dims[dim].nvalues;
}

const char *mb_optim_space_option(const mb_optim_space *sp, size_t dim, size_t index)
{
    if (index >= mb_optim_space_noptions(sp, dim))
        return NULL;
    return sp->dims[dim].options[index];
}

int mb_optim_space_check(const mb_optim_space *sp, const double *x, mb_error *err)
{
    for (size_t i = 0; i < sp->n; i++) {
        const struct optim_dim *d = &sp->dims[i];
        double v = x[i];
        if (!isfinite(v) || v < d->low || v > d->high)
            return mb_errorf(err, MB_ECONSTRAINT, "'%s' = %g outside [%g, %g]", d->name, v, d->low,
                             d->high);
        if (d->type == MB_OPTIM_CHOICE && v != floor(v))
            return mb_errorf(err, MB_ECONSTRAINT, "'%s' = %g is not an option index", d->name, v);
        if (d->type == MB_OPTIM_INT) {
            if (v != floor(v))
                return mb_errorf(err, MB_ECONSTRAINT, "'%s' = %g is not an integer", d->name, v);
            if (((int64_t)v - d->ilow) % d->step != 0)
                return mb_errorf(err, MB_ECONSTRAINT, "'%s' = %g is off the step %lld", d->name, v,
                                 (long long)d->step);
        }
    }
    return MB_OK;
}

double optim_dim_snap(const struct optim_dim *d, double v)
{
    if (!(v >= d->low))
        v = d->low;
    if (v > d->high)
        v = d->high;
    if (d->type == MB_OPTIM_INT) {
        double k = floor((v - d->low) / (double)d->step + 0.5);
        if (k > (double)(d->nvalues - 1))
            k = (double)(d->nvalues - 1);
        return d->low + k * (double)d->step;
    }
    if (d->type == MB_OPTIM_CHOICE)
        return floor(v + 0.5) > d->high ? d->high : floor(v + 0.5);
    return v;
}

void optim_space_from_unit(const mb_optim_space *sp, const double *u, double *x)
{
    for (size_t i = 0; i < sp->n; i++) {
        const struct optim_dim *d = &sp->dims[i];
        double t = u[i] < 0.0 ? 0.0 : (u[i] >= 1.0 ? nextafter(1.0, 0.0) : u[i]);
        if (d->type == MB_OPTIM_FLOAT) {
            double v;
            if (d->log_scale)
                v = exp(log(d->low) + t * (log(d->high) - log(d->low)));
            else
                v = d->low + t * (d->high - d->low);
            x[i] = v < d->low ? d->low : (v > d->high ? d->high : v);
        } else if (d->type == MB_OPTIM_INT && d->log_scale) {
            double lo = log(d->low - 0.5), hi = log(d->high + 0.5);
            x[i] = optim_dim_snap(d, floor(exp(lo + t * (hi - lo)) + 0.5));
        } else {
            double k = floor(t * (double)d->nvalues);
            if (k > (double)(d->nvalues - 1))
                k = (double)(d->nvalues - 1);
            x[i] = d->type == MB_OPTIM_INT ? d->low + k * (double)d->step : k;
        }
    }
}

/* ---- JSON ---- */

static int json_int64(const cJSON *item, const char *what, const char *name, int64_t *out,
                      mb_error *err)
{
    if (!cJSON_IsNumber(item))
        return mb_errorf(err, MB_EINVAL, "dimension '%s': \"%s\" must be a number", name, what);
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || fabs(v) > OPTIM_INT_LIMIT)
        return mb_errorf(err, MB_EINVAL, "dimension '%s': \"%s\" must be an integer within 2^53",
                         name, what);
    *out = (int64_t)v;
    return MB_OK;
}

static int json_bool(const cJSON *obj, const char *key, int *out, mb_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (item == NULL)
        return MB_OK;
    if (!cJSON_IsBool(item))
        return mb_errorf(err, MB_EINVAL, "\"%s\" must be true or false", key);
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return MB_OK;
}

/* Decode one parsed JSON array of dimensions into a new space. */
int optim_space_from_cjson(const cJSON *arr, mb_optim_space **out, mb_error *err)
{
    if (!cJSON_IsArray(arr))
        return mb_errorf(err, MB_EINVAL, "search space must be a JSON array of dimensions");
    mb_optim_space *sp = NULL;
    int rv = mb_optim_space_new(&sp, err);
    if (rv != MB_OK)
        return rv;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        const cJSON *jname = cJSON_GetObjectItemCaseSensitive(el, "name");
        const cJSON *jtype = cJSON_GetObjectItemCaseSensitive(el, "type");
        if (!cJSON_IsObject(el) || !cJSON_IsString(jname) || !cJSON_IsString(jtype)) {
            rv = mb_errorf(err, MB_EINVAL,
                           "dimension %zu: need an object with string \"name\" "
                           "and \"type\"",
                           sp->n);
            goto fail;
        }
        const char *name = jname->valuestring, *type = jtype->valuestring;
        int log_scale;
        if ((rv = json_bool(el, "log", &log_scale, err)) != MB_OK)
            goto fail;
        if (strcmp(type, "float") == 0) {
            const cJSON *lo = cJSON_GetObjectItemCaseSensitive(el, "low");
            const cJSON *hi = cJSON_GetObjectItemCaseSensitive(el, "high");
            if (!cJSON_IsNumber(lo) || !cJSON_IsNumber(hi)) {
                rv = mb_errorf(err, MB_EINVAL, "float '%s': need numbers \"low\" and \"high\"",
                               name);
                goto fail;
            }
            rv = mb_optim_space_add_float(sp, name, lo->valuedouble, hi->valuedouble, log_scale,
                                          err);
        } else if (strcmp(type, "int") == 0) {
            int64_t lo = 0, hi = 0, step = 1;
            const cJSON *jstep = cJSON_GetObjectItemCaseSensitive(el, "step");
            if ((rv = json_int64(cJSON_GetObjectItemCaseSensitive(el, "low"), "low", name, &lo,
                                 err)) != MB_OK ||
                (rv = json_int64(cJSON_GetObjectItemCaseSensitive(el, "high"), "high", name, &hi,
                                 err)) != MB_OK ||
                (jstep != NULL && (rv = json_int64(jstep, "step", name, &step, err)) != MB_OK))
                goto fail;
            rv = mb_optim_space_add_int(sp, name, lo, hi, step, log_scale, err);
        } else if (strcmp(type, "choice") == 0) {
            const cJSON *opts = cJSON_GetObjectItemCaseSensitive(el, "options");
            const char *names[MB_OPTIM_MAX_CHOICES];
            size_t n = 0;
            const cJSON *o;
            if (!cJSON_IsArray(opts)) {
                rv = mb_errorf(err, MB_EINVAL, "choice '%s': need an array \"options\"", name);
                goto fail;
            }
            cJSON_ArrayForEach(o, opts)
            {
                if (!cJSON_IsString(o) || n == MB_OPTIM_MAX_CHOICES) {
                    rv =
                        mb_errorf(err, MB_EINVAL, "choice '%s': options must be at most %d strings",
                                  name, MB_OPTIM_MAX_CHOICES);
                    goto fail;
                }
                names[n++] = o->valuestring;
            }
            rv = mb_optim_space_add_choice(sp, name, names, n, err);
        } else {
            rv = mb_errorf(err, MB_EINVAL,
                           "dimension '%s': unknown type '%s' (float, int, "
                           "choice)",
                           name, type);
        }
        if (rv != MB_OK)
            goto fail;
    }
    if (sp->n == 0) {
        rv = mb_errorf(err, MB_EINVAL, "search space has no dimensions");
        goto fail;
    }
    *out = sp;
    return MB_OK;
fail:
    mb_optim_space_free(sp);
    return rv;
}

int mb_optim_space_from_json(const char *json, size_t len, mb_optim_space **out, mb_error *err)
{
    if (json == NULL)
        return mb_errorf(err, MB_EINVAL, "search space: NULL text");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return mb_errorf(err, MB_EINVAL, "search space: malformed JSON");
    int rv = optim_space_from_cjson(root, out, err);
    cJSON_Delete(root);
    return rv;
}

/* A number node printed with 17 significant digits, so that doubles
 * survive a round trip bit for bit (cJSON's own printer may use 15). */
cJSON *optim_json_number(double v)
{
    char buf[40];
    if (!isfinite(v))
        return cJSON_CreateNull();
    snprintf(buf, sizeof(buf), "%.17g", v);
    return cJSON_CreateRaw(buf);
}

cJSON *optim_space_to_cjson(const mb_optim_space *sp)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < sp->n; i++) {
        const struct optim_dim *d = &sp->dims[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(arr, o))
            goto fail;
        if (cJSON_AddStringToObject(o, "name", d->name) == NULL)
            goto fail;
        if (d->type == MB_OPTIM_CHOICE) {
            if (cJSON_AddStringToObject(o, "type", "choice") == NULL)
                goto fail;
            cJSON *opts = cJSON_CreateStringArray((const char *const *)d->options, (int)d->nvalues);
            if (opts == NULL)
                goto fail;
            if (!cJSON_AddItemToObject(o, "options", opts)) {
                cJSON_Delete(opts);
                goto fail;
            }
            continue;
        }
        int ok = cJSON_AddStringToObject(o, "type", d->type == MB_OPTIM_FLOAT ? "float" : "int") &&
                 cJSON_AddItemToObject(o, "low", optim_json_number(d->low)) &&
                 cJSON_AddItemToObject(o, "high", optim_json_number(d->high)) &&
                 cJSON_AddBoolToObject(o, "log", d->log_scale);
        if (ok && d->type == MB_OPTIM_INT)
            ok = cJSON_AddItemToObject(o, "step", optim_json_number((double)d->step));
        if (!ok)
            goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

int mb_optim_space_to_json(const mb_optim_space *sp, char **out, mb_error *err)
{
    cJSON *arr = optim_space_to_cjson(sp);
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "encode search space");
    *out = s;
    return MB_OK;
}
