/* Variable values and specs: ownership helpers, the spec check and the pure
 * value validator shared by proposers and the state machine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/value.h>

/* Declared in consensus/internal.h too; this file stays free of protobuf so
 * that it builds alone as mb_value. */
void cs_fmt_double(char *buf, size_t size, double x);

static const char *const vtype_names[] = {
    [MB_VT_NONE] = "none",
    [MB_VT_FLOAT] = "float",
    [MB_VT_INT] = "int",
    [MB_VT_CHOICE] = "choice",
    [MB_VT_BOOL] = "bool",
    [MB_VT_PROBABILITY] = "probability",
    [MB_VT_DISTRIBUTION] = "distribution",
    [MB_VT_EMBEDDING] = "embedding",
    [MB_VT_TENSOR] = "tensor",
};

const char *mb_vtype_name(mb_vtype t)
{
    if ((unsigned)t > MB_VT_TENSOR)
        return "none";
    return vtype_names[t];
}

mb_vtype mb_vtype_from_name(const char *name)
{
    if (name == NULL)
        return MB_VT_NONE;
    for (unsigned t = MB_VT_FLOAT; t <= MB_VT_TENSOR; t++)
        if (strcmp(name, vtype_names[t]) == 0)
            return (mb_vtype)t;
    return MB_VT_NONE;
}

void cs_fmt_double(char *buf, size_t size, double x)
{
    if (isnan(x)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, size, x > 0 ? "inf" : "-inf");
        return;
    }
    /* The shortest representation that reads back as the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    if (strpbrk(buf, ".eEn") == NULL && strlen(buf) + 3 <= size)
        strcat(buf, ".0");
}

void mb_value_free(mb_value *v)
{
    if (v == NULL)
        return;
    switch (v->type) {
    case MB_VT_CHOICE:
        free(v->u.choice);
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        free(v->u.vec.data);
        break;
    case MB_VT_TENSOR:
        free(v->u.tensor.shape);
        free(v->u.tensor.data);
        break;
    default:
        break;
    }
    memset(v, 0, sizeof(*v));
}

static void *dup_mem(const void *src, size_t size)
{
    if (size == 0)
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        memcpy(p, src, size);
    return p;
}

int mb_value_copy(mb_value *dst, const mb_value *src)
{
    memset(dst, 0, sizeof(*dst));
    mb_value tmp = *src;
    switch (src->type) {
    case MB_VT_CHOICE:
        if (src->u.choice != NULL && (tmp.u.choice = strdup(src->u.choice)) == NULL)
            return MB_ENOMEM;
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        tmp.u.vec.data = dup_mem(src->u.vec.data, (size_t)src->u.vec.n * sizeof(double));
        if (src->u.vec.n > 0 && tmp.u.vec.data == NULL)
            return MB_ENOMEM;
        break;
    case MB_VT_TENSOR:
        tmp.u.tensor.shape =
            dup_mem(src->u.tensor.shape, (size_t)src->u.tensor.ndim * sizeof(uint32_t));
        tmp.u.tensor.data = dup_mem(src->u.tensor.data, (size_t)src->u.tensor.n * sizeof(float));
        if ((src->u.tensor.ndim > 0 && tmp.u.tensor.shape == NULL) ||
            (src->u.tensor.n > 0 && tmp.u.tensor.data == NULL)) {
            free(tmp.u.tensor.shape);
            free(tmp.u.tensor.data);
            return MB_ENOMEM;
        }
        break;
    default:
        break;
    }
    *dst = tmp;
    return MB_OK;
}

static int mem_equal(const void *a, const void *b, size_t size)
{
    return size == 0 || (a != NULL && b != NULL && memcmp(a, b, size) == 0);
}

int mb_value_equal(const mb_value *a, const mb_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MB_VT_NONE:
        return 1;
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case MB_VT_INT:
        return a->u.i == b->u.i;
    case MB_VT_BOOL:
        return a->u.b == b->u.b;
    case MB_VT_CHOICE:
        if (a->u.choice == NULL || b->u.choice == NULL)
            return a->u.choice == b->u.choice;
        return strcmp(a->u.choice, b->u.choice) == 0;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        return a->u.vec.n == b->u.vec.n &&
               mem_equal(a->u.vec.data, b->u.vec.data, (size_t)a->u.vec.n * sizeof(double));
    case MB_VT_TENSOR:
        return a->u.tensor.ndim == b->u.tensor.ndim && a->u.tensor.n == b->u.tensor.n &&
               mem_equal(a->u.tensor.shape, b->u.tensor.shape,
                         (size_t)a->u.tensor.ndim * sizeof(uint32_t)) &&
               mem_equal(a->u.tensor.data, b->u.tensor.data, (size_t)a->u.tensor.n * sizeof(float));
    }
    return 0;
}

void mb_var_spec_free(mb_var_spec *s)
{
    if (s == NULL)
        return;
    if (s->options != NULL)
        for (uint32_t i = 0; i < s->n_options; i++)
            free(s->options[i]);
    free(s->options);
    free(s->weights);
    free(s->shape);
    memset(s, 0, sizeof(*s));
}

int mb_var_spec_copy(mb_var_spec *dst, const mb_var_spec *src)
{
    *dst = *src;
    dst->options = NULL;
    dst->weights = NULL;
    dst->shape = NULL;
    if (src->n_options > 0 && src->options != NULL) {
        dst->options = calloc(src->n_options, sizeof(char *));
        if (dst->options == NULL)
            goto err_nomem;
        for (uint32_t i = 0; i < src->n_options; i++)
            if (src->options[i] != NULL && (dst->options[i] = strdup(src->options[i])) == NULL)
                goto err_nomem;
    }
    if (src->weights != NULL) {
        dst->weights = dup_mem(src->weights, (size_t)src->n_options * sizeof(double));
        if (src->n_options > 0 && dst->weights == NULL)
            goto err_nomem;
    }
    if (src->ndim > 0 && src->shape != NULL) {
        dst->shape = dup_mem(src->shape, (size_t)src->ndim * sizeof(uint32_t));
        if (dst->shape == NULL)
            goto err_nomem;
    }
    return MB_OK;

err_nomem:
    mb_var_spec_free(dst);
    return MB_ENOMEM;
}

int mb_var_spec_equal(const mb_var_spec *a, const mb_var_spec *b)
{
    if (a->type != b->type || memcmp(&a->min, &b->min, sizeof(double)) != 0 ||
        memcmp(&a->max, &b->max, sizeof(double)) != 0 || a->log_scale != b->log_scale ||
        a->imin != b->imin || a->imax != b->imax || a->step != b->step ||
        a->n_options != b->n_options || a->dim != b->dim || a->unit_norm != b->unit_norm ||
        memcmp(&a->tolerance, &b->tolerance, sizeof(double)) != 0 || a->ndim != b->ndim ||
        a->max_elements != b->max_elements)
        return 0;
    if ((a->weights == NULL) != (b->weights == NULL))
        return 0;
    for (uint32_t i = 0; i < a->n_options; i++) {
        if (a->options == NULL || b->options == NULL || a->options[i] == NULL ||
            b->options[i] == NULL || strcmp(a->options[i], b->options[i]) != 0)
            return 0;
        if (a->weights != NULL && memcmp(&a->weights[i], &b->weights[i], sizeof(double)) != 0)
            return 0;
    }
    return mem_equal(a->shape, b->shape, (size_t)a->ndim * sizeof(uint32_t));
}

int mb_var_name_check(const char *name, mb_error *err)
{
    if (name == NULL || name[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "variable name is empty");
    size_t len = strnlen(name, MB_VAR_NAME_MAX + 1);
    if (len > MB_VAR_NAME_MAX)
        return mb_errorf(err, MB_EINVAL, "variable name longer than %d bytes", MB_VAR_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
            return mb_errorf(err, MB_EINVAL,
                             "variable name \"%.*s\": character %zu is not one of "
                             "[A-Za-z0-9_.:/-]",
                             (int)len, name, i);
    }
    return MB_OK;
}

/* Effective defaults. */
static double spec_tolerance(const mb_var_spec *s)
{
    return s->tolerance > 0 ? s->tolerance : MB_DEFAULT_TOLERANCE;
}

static uint64_t spec_max_elements(const mb_var_spec *s)
{
    return s->max_elements > 0 ? s->max_elements : MB_TENSOR_MAX_ELEMENTS;
}

/* Product of a shape; 0 when a dimension is 0, UINT64_MAX on overflow past
 * the hard element limit. */
static uint64_t shape_product(const uint32_t *shape, uint32_t ndim)
{
    uint64_t p = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        p *= shape[i];
        if (p > MB_TENSOR_MAX_ELEMENTS)
            return UINT64_MAX;
    }
    return p;
}

int mb_var_spec_check(const char *name, const mb_var_spec *s, mb_error *err)
{
    const char *n = name != NULL ? name : "";
    int floaty = s->type == MB_VT_FLOAT;
    int inty = s->type == MB_VT_INT;
    int choicy = s->type == MB_VT_CHOICE;
    int vecy = s->type == MB_VT_DISTRIBUTION || s->type == MB_VT_EMBEDDING;
    int tensy = s->type == MB_VT_TENSOR;

    if (s->type < MB_VT_FLOAT || s->type > MB_VT_TENSOR)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": unknown type %d", n, (int)s->type);
    /* Fields of other types must be unset so that equal specs are equal. */
    if ((!floaty && (s->min != 0 || s->max != 0 || s->log_scale != 0)) ||
        (!inty && (s->imin != 0 || s->imax != 0 || s->step != 0)) ||
        (!choicy && (s->options != NULL || s->weights != NULL || s->n_options != 0)) ||
        (!vecy && (s->dim != 0 || s->tolerance != 0)) ||
        (s->type != MB_VT_EMBEDDING && s->unit_norm != 0) ||
        (!tensy && (s->shape != NULL || s->ndim != 0 || s->max_elements != 0)))
        return mb_errorf(err, MB_EINVAL,
                         "variable \"%s\": constraint given that type %s does not have", n,
                         mb_vtype_name(s->type));
    if (s->log_scale != 0 && s->log_scale != 1)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": log_scale must be 0 or 1", n);
    if (s->unit_norm != 0 && s->unit_norm != 1)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": unit_norm must be 0 or 1", n);

    char a[40], b[40];
    switch (s->type) {
    case MB_VT_FLOAT:
        if (!isfinite(s->min) || !isfinite(s->max))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": min and max must be finite", n);
        if (s->min > s->max) {
            cs_fmt_double(a, sizeof(a), s->min);
            cs_fmt_double(b, sizeof(b), s->max);
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": min %s above max %s", n, a, b);
        }
        if (s->log_scale && s->min <= 0)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": log scale needs min > 0", n);
        break;
    case MB_VT_INT:
        if (s->imin > s->imax)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": min %lld above max %lld", n,
                             (long long)s->imin, (long long)s->imax);
        if (s->step < 0)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": step %lld is negative", n,
                             (long long)s->step);
        break;
    case MB_VT_CHOICE:
        if (s->n_options == 0 || s->options == NULL)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": a choice needs options", n);
        if (s->n_options > MB_CHOICE_MAX_OPTIONS)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": more than %d options", n,
                             MB_CHOICE_MAX_OPTIONS);
        for (uint32_t i = 0; i < s->n_options; i++) {
            const char *o = s->options[i];
            if (o == NULL || o[0] == '\0' ||
                strnlen(o, MB_CHOICE_OPTION_MAX + 1) > MB_CHOICE_OPTION_MAX)
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": option %u is empty or longer than %d bytes", n,
                                 i, MB_CHOICE_OPTION_MAX);
            for (uint32_t j = 0; j < i; j++)
                if (strcmp(s->options[j], o) == 0)
                    return mb_errorf(err, MB_EINVAL, "variable \"%s\": option \"%s\" repeated", n,
                                     o);
        }
        if (s->weights != NULL) {
            double sum = 0;
            for (uint32_t i = 0; i < s->n_options; i++) {
                if (!isfinite(s->weights[i]) || s->weights[i] < 0)
                    return mb_errorf(err, MB_EINVAL,
                                     "variable \"%s\": weight %u must be a finite number >= 0", n,
                                     i);
                sum += s->weights[i];
            }
            if (!(sum > 0) || !isfinite(sum))
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": weights must have a positive sum", n);
        }
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        if (s->dim == 0 || s->dim > MB_VEC_MAX_DIM)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": dimension must be 1..%d", n,
                             MB_VEC_MAX_DIM);
        if (!isfinite(s->tolerance) || s->tolerance < 0 || s->tolerance > 0.1)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": tolerance must be in [0, 0.1]", n);
        break;
    case MB_VT_TENSOR:
        if (s->max_elements > MB_TENSOR_MAX_ELEMENTS)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": max_elements above the limit %u", n,
                             MB_TENSOR_MAX_ELEMENTS);
        if (s->ndim > MB_TENSOR_MAX_NDIM || (s->ndim > 0 && s->shape == NULL))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": shape must have 0..%d dimensions", n,
                             MB_TENSOR_MAX_NDIM);
        if (s->ndim > 0) {
            uint64_t p = shape_product(s->shape, s->ndim);
            if (p == 0)
                return mb_errorf(err, MB_EINVAL, "variable \"%s\": shape has a zero dimension", n);
            if (p > spec_max_elements(s))
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": shape has more elements than the limit %llu", n,
                                 (unsigned long long)spec_max_elements(s));
        }
        break;
    default:
        break;
    }
    return MB_OK;
}

static void fmt_shape(char *buf, size_t size, const uint32_t *shape, uint32_t ndim)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (uint32_t i = 0; i < ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%u", i ? "," : "", shape[i]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

static int check_vec(const char *n, const mb_var_spec *s, const mb_value *v, mb_error *err)
{
    char a[40], b[40];
    if (v->u.vec.n != s->dim)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value has %u elements, expected %u", n,
                         v->u.vec.n, s->dim);
    if (v->u.vec.n > 0 && v->u.vec.data == NULL)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value has no data", n);
    double acc = 0;
    for (uint32_t i = 0; i < v->u.vec.n; i++) {
        double x = v->u.vec.data[i];
        if (!isfinite(x))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": element %u is not a finite number",
                             n, i);
        if (s->type == MB_VT_DISTRIBUTION) {
            if (x < 0) {
                cs_fmt_double(a, sizeof(a), x);
                return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": element %u is %s, below 0",
                                 n, i, a);
            }
            acc += x;
        } else {
            acc += x * x;
        }
    }
    double tol = spec_tolerance(s);
    if (s->type == MB_VT_DISTRIBUTION && fabs(acc - 1.0) > tol) {
        cs_fmt_double(a, sizeof(a), acc);
        cs_fmt_double(b, sizeof(b), tol);
        return mb_errorf(err, MB_ECONSTRAINT,
                         "variable \"%s\": elements sum to %s, not 1 within tolerance %s", n, a, b);
    }
    if (s->type == MB_VT_EMBEDDING && s->unit_norm && fabs(sqrt(acc) - 1.0) > tol) {
        cs_fmt_double(a, sizeof(a), sqrt(acc));
        cs_fmt_double(b, sizeof(b), tol);
        return mb_errorf(err, MB_ECONSTRAINT,
                         "variable \"%s\": norm is %s, not 1 within tolerance %s", n, a, b);
    }
    return MB_OK;
}

static int check_tensor(const char *n, const mb_var_spec *s, const mb_value *v, mb_error *err)
{
    const uint32_t nd = v->u.tensor.ndim;
    if (nd == 0 || nd > MB_TENSOR_MAX_NDIM || v->u.tensor.shape == NULL)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value shape must have 1..%d dimensions",
                         n, MB_TENSOR_MAX_NDIM);
    uint64_t p = shape_product(v->u.tensor.shape, nd);
    if (p == 0)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value shape has a zero dimension", n);
    if (s->ndim > 0 &&
        (s->ndim != nd || memcmp(s->shape, v->u.tensor.shape, nd * sizeof(uint32_t)))) {
        char a[128], b[128];
        fmt_shape(a, sizeof(a), v->u.tensor.shape, nd);
        fmt_shape(b, sizeof(b), s->shape, s->ndim);
        return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": value shape %s, expected %s", n, a,
                         b);
    }
    if (p == UINT64_MAX || p > spec_max_elements(s))
        return mb_errorf(err, MB_ECONSTRAINT,
                         "variable \"%s\": value has more elements than the size limit %llu", n,
                         (unsigned long long)spec_max_elements(s));
    if (v->u.tensor.n != p || v->u.tensor.data == NULL)
        return mb_errorf(err, MB_EINVAL,
                         "variable \"%s\": value has %llu elements but its shape needs %llu", n,
                         (unsigned long long)v->u.tensor.n, (unsigned long long)p);
    for (uint64_t i = 0; i < p; i++)
        if (!isfinite(v->u.tensor.data[i]))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": element %llu is not a finite number",
                             n, (unsigned long long)i);
    return MB_OK;
}

int mb_value_validate(const char *name, const mb_var_spec *s, const mb_value *v, mb_error *err)
{
    const char *n = name != NULL ? name : "";
    char a[40], b[40];
    if (v->type != s->type)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value of type %s, expected %s", n,
                         mb_vtype_name(v->type), mb_vtype_name(s->type));
    switch (s->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY: {
        double lo = s->type == MB_VT_FLOAT ? s->min : 0.0;
        double hi = s->type == MB_VT_FLOAT ? s->max : 1.0;
        if (isfinite(v->u.f) && v->u.f >= lo && v->u.f <= hi)
            return MB_OK; /* the common case: no number formatted */
        cs_fmt_double(a, sizeof(a), v->u.f);
        if (!isfinite(v->u.f))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value %s is not a finite number", n,
                             a);
        if (v->u.f < lo) {
            cs_fmt_double(b, sizeof(b), lo);
            return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": value %s below min %s", n, a,
                             b);
        }
        if (v->u.f > hi) {
            cs_fmt_double(b, sizeof(b), hi);
            return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": value %s above max %s", n, a,
                             b);
        }
        return MB_OK;
    }
    case MB_VT_INT: {
        long long x = (long long)v->u.i;
        if (v->u.i < s->imin)
            return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": value %lld below min %lld", n,
                             x, (long long)s->imin);
        if (v->u.i > s->imax)
            return mb_errorf(err, MB_ECONSTRAINT, "variable \"%s\": value %lld above max %lld", n,
                             x, (long long)s->imax);
        uint64_t step = s->step > 0 ? (uint64_t)s->step : 1;
        uint64_t diff = (uint64_t)v->u.i - (uint64_t)s->imin;
        if (diff % step != 0)
            return mb_errorf(err, MB_ECONSTRAINT,
                             "variable \"%s\": value %lld not on step %llu from min %lld", n, x,
                             (unsigned long long)step, (long long)s->imin);
        return MB_OK;
    }
    case MB_VT_CHOICE:
        if (v->u.choice == NULL)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": choice value is missing", n);
        for (uint32_t i = 0; i < s->n_options; i++)
            if (strcmp(s->options[i], v->u.choice) == 0)
                return MB_OK;
        return mb_errorf(err, MB_ECONSTRAINT,
                         "variable \"%s\": value \"%.64s\" is not one of the options", n,
                         v->u.choice);
    case MB_VT_BOOL:
        if (v->u.b != 0 && v->u.b != 1)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": bool value must be 0 or 1", n);
        return MB_OK;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        return check_vec(n, s, v, err);
    case MB_VT_TENSOR:
        return check_tensor(n, s, v, err);
    default:
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": unknown type", n);
    }
}

int mb_value_default(const mb_var_spec *s, mb_value *out)
{
    memset(out, 0, sizeof(*out));
    mb_value v = { .type = s->type };
    switch (s->type) {
    case MB_VT_FLOAT:
        v.u.f = (s->min <= 0 && s->max >= 0) ? 0.0 : s->min;
        break;
    case MB_VT_INT: {
        v.u.i = s->imin;
        if (s->imin < 0 && s->imax >= 0) {
            uint64_t step = s->step > 0 ? (uint64_t)s->step : 1;
            uint64_t dist = (uint64_t)0 - (uint64_t)s->imin; /* |imin| */
            uint64_t k = (dist + step - 1) / step;           /* ceil */
            uint64_t off = k * step;
            if (k <= dist && off / step == k && off - dist <= (uint64_t)s->imax)
                v.u.i = (int64_t)(off - dist);
        }
        break;
    }
    case MB_VT_CHOICE:
        if (s->n_options == 0 || (v.u.choice = strdup(s->options[0])) == NULL)
            return s->n_options == 0 ? MB_EINVAL : MB_ENOMEM;
        break;
    case MB_VT_BOOL:
    case MB_VT_PROBABILITY:
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        if (s->dim == 0)
            return MB_EINVAL;
        v.u.vec.n = s->dim;
        v.u.vec.data = calloc(s->dim, sizeof(double));
        if (v.u.vec.data == NULL)
            return MB_ENOMEM;
        for (uint32_t i = 0; i < s->dim; i++)
            v.u.vec.data[i] = s->type == MB_VT_DISTRIBUTION ? 1.0 / s->dim : 0.0;
        if (s->type == MB_VT_EMBEDDING && s->unit_norm)
            v.u.vec.data[0] = 1.0;
        break;
    case MB_VT_TENSOR: {
        if (s->ndim == 0)
            return MB_EINVAL;
        uint64_t p = shape_product(s->shape, s->ndim);
        if (p == 0 || p == UINT64_MAX)
            return MB_EINVAL;
        v.u.tensor.ndim = s->ndim;
        v.u.tensor.n = p;
        v.u.tensor.shape = dup_mem(s->shape, s->ndim * sizeof(uint32_t));
        v.u.tensor.data = calloc((size_t)p, sizeof(float));
        if (v.u.tensor.shape == NULL || v.u.tensor.data == NULL) {
            mb_value_free(&v);
            return MB_ENOMEM;
        }
        break;
    }
    default:
        return MB_EINVAL;
    }
    *out = v;
    return MB_OK;
}
