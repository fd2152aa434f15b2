/* JSON mapping (cJSON) of values, variable specs and variables for the
 * HTTP API. The parsers are defensive: any JSON gives a value or an
 * MB_EINVAL with a message, never a crash. */
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#define JSON_INT_MAX 9007199254740992.0 /* 2^53: exact in a double */

/* ---------------- values -> JSON ---------------- */

/* A number as cJSON 1.7.15 prints it (print_number): "null" when not
 * finite, else "%1.15g" unless that does not read back within DBL_EPSILON,
 * then "%1.17g". Same bytes, so events written through either path are
 * identical on every node (test_var_set_event_is_byte_identical_to_cjson
 * holds the two together). */
static int cjson_number(char *buf, size_t size, double d)
{
    if (isnan(d) || isinf(d))
        return snprintf(buf, size, "null");
    /* Whole numbers below 1e15 (versions, counters): "%1.15g" prints their
     * digits, which this writes without the formatter. */
    if (d == floor(d) && fabs(d) < 1e15 && size >= 18) {
        char tmp[20];
        size_t t = 0;
        uint64_t u = (uint64_t)fabs(d);
        do
            tmp[t++] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        size_t k = 0;
        if (signbit(d))
            buf[k++] = '-';
        while (t > 0)
            buf[k++] = tmp[--t];
        buf[k] = '\0';
        return (int)k;
    }
    int n = snprintf(buf, size, "%1.15g", d);
    char *end = NULL;
    double back = strtod(buf, &end);
    double max = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (end == buf || !(fabs(back - d) <= max * DBL_EPSILON))
        n = snprintf(buf, size, "%1.17g", d);
    return n;
}

/* Whether cJSON would print `s` between quotes as it is (no escapes). */
static int json_plain(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

int cs_var_set_event_json(const char *name, const mb_value *v, uint64_t version,
                          uint64_t prev_version, const char *by, char **out)
{
    *out = NULL;
    char val[48];
    switch (v->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        cjson_number(val, sizeof(val), v->u.f);
        break;
    case MB_VT_BOOL:
        snprintf(val, sizeof(val), "%s", v->u.b ? "true" : "false");
        break;
    default:
        return MB_ENOTSUP;
    }
    if (!json_plain(name) || !json_plain(by))
        return MB_ENOTSUP;
    char ver[32], prev[32];
    cjson_number(ver, sizeof(ver), (double)version);
    cjson_number(prev, sizeof(prev), (double)prev_version);
    size_t len = strlen(name) + strlen(by) + strlen(val) + strlen(ver) + strlen(prev) + 64;
    char *p = malloc(len);
    if (p == NULL)
        return MB_ENOMEM;
    snprintf(p, len,
             "{\"name\":\"%s\",\"value\":%s,\"version\":%s,\"prev_version\":%s,\"by\":\"%s\"}",
             name, val, ver, prev, by);
    *out = p;
    return MB_OK;
}

static cJSON *int_json(int64_t i)
{
    if ((double)i > -JSON_INT_MAX && (double)i < JSON_INT_MAX)
        return cJSON_CreateNumber((double)i);
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)i);
    return cJSON_CreateString(buf);
}

int consensus_value_to_json(const mb_value *v, cJSON **out)
{
    cJSON *j = NULL;
    *out = NULL;
    switch (v->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        j = cJSON_CreateNumber(v->u.f);
        break;
    case MB_VT_INT:
        j = int_json(v->u.i);
        break;
    case MB_VT_BOOL:
        j = cJSON_CreateBool(v->u.b != 0);
        break;
    case MB_VT_CHOICE:
        j = cJSON_CreateString(v->u.choice != NULL ? v->u.choice : "");
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        j = cJSON_CreateDoubleArray(v->u.vec.data, (int)v->u.vec.n);
        if (j == NULL && v->u.vec.n == 0)
            j = cJSON_CreateArray();
        break;
    case MB_VT_TENSOR: {
        j = cJSON_CreateObject();
        if (j == NULL)
            break;
        cJSON *shape = cJSON_AddArrayToObject(j, "shape");
        cJSON *data = cJSON_AddArrayToObject(j, "data");
        if (shape == NULL || data == NULL)
            goto err_nomem;
        for (uint32_t i = 0; i < v->u.tensor.ndim; i++) {
            cJSON *n = cJSON_CreateNumber(v->u.tensor.shape[i]);
            if (n == NULL || !cJSON_AddItemToArray(shape, n)) {
                cJSON_Delete(n);
                goto err_nomem;
            }
        }
        for (uint64_t i = 0; i < v->u.tensor.n; i++) {
            cJSON *n = cJSON_CreateNumber(v->u.tensor.data[i]);
            if (n == NULL || !cJSON_AddItemToArray(data, n)) {
                cJSON_Delete(n);
                goto err_nomem;
            }
        }
        break;
    }
    default:
        return MB_EINVAL;
    }
    if (j == NULL)
        return MB_ENOMEM;
    *out = j;
    return MB_OK;

err_nomem:
    cJSON_Delete(j);
    return MB_ENOMEM;
}

/* ---------------- JSON -> values ---------------- */

/* An int64 from a JSON number (integral, |x| < 2^53) or a decimal string. */
static int json_int(const cJSON *j, int64_t *out)
{
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (!isfinite(d) || d != floor(d) || d <= -JSON_INT_MAX || d >= JSON_INT_MAX)
            return 0;
        *out = (int64_t)d;
        return 1;
    }
    if (cJSON_IsString(j) && j->valuestring != NULL && j->valuestring[0] != '\0') {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(j->valuestring, &end, 10);
        if (errno != 0 || end == NULL || *end != '\0' || strlen(j->valuestring) > 20)
            return 0;
        *out = (int64_t)v;
        return 1;
    }
    return 0;
}

static int json_u32(const cJSON *j, uint32_t *out)
{
    int64_t v;
    if (!json_int(j, &v) || v < 0 || v > (int64_t)UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* Count the items of an array, up to `limit + 1`. */
static size_t array_len(const cJSON *a, size_t limit)
{
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (++n > limit)
            break;
    }
    return n;
}

int consensus_value_from_json(const cJSON *j, mb_vtype type, const char *name, mb_value *out,
                              mb_error *err)
{
    const char *n = name != NULL ? name : "";
    mb_value v = { .type = type };
    memset(out, 0, sizeof(*out));
    if (j == NULL)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": value is missing", n);
    switch (type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        if (!cJSON_IsNumber(j))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value must be a number", n);
        v.u.f = j->valuedouble;
        break;
    case MB_VT_INT:
        if (!json_int(j, &v.u.i))
            return mb_errorf(err, MB_EINVAL,
                             "variable \"%s\": value must be an integer (a decimal string beyond "
                             "2^53)",
                             n);
        break;
    case MB_VT_BOOL:
        if (!cJSON_IsBool(j))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value must be true or false", n);
        v.u.b = cJSON_IsTrue(j) ? 1 : 0;
        break;
    case MB_VT_CHOICE:
        if (!cJSON_IsString(j) || j->valuestring == NULL)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value must be a string", n);
        if (strlen(j->valuestring) > MB_CHOICE_OPTION_MAX)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value longer than %d bytes", n,
                             MB_CHOICE_OPTION_MAX);
        if ((v.u.choice = strdup(j->valuestring)) == NULL)
            return mb_errorf(err, MB_ENOMEM, "variable \"%s\": copy value", n);
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING: {
        if (!cJSON_IsArray(j))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value must be an array of numbers",
                             n);
        size_t len = array_len(j, MB_VEC_MAX_DIM);
        if (len == 0 || len > MB_VEC_MAX_DIM)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": value must have 1..%d elements", n,
                             MB_VEC_MAX_DIM);
        v.u.vec.data = malloc(len * sizeof(double));
        if (v.u.vec.data == NULL)
            return mb_errorf(err, MB_ENOMEM, "variable \"%s\": copy value", n);
        const cJSON *it;
        cJSON_ArrayForEach(it, j)
        {
            if (!cJSON_IsNumber(it)) {
                mb_value_free(&v);
                return mb_errorf(err, MB_EINVAL, "variable \"%s\": element %u is not a number", n,
                                 v.u.vec.n);
            }
            v.u.vec.data[v.u.vec.n++] = it->valuedouble;
        }
        break;
    }
    case MB_VT_TENSOR: {
        const cJSON *shape =
            cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "shape") : NULL;
        const cJSON *data = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "data") : NULL;
        if (!cJSON_IsArray(shape) || !cJSON_IsArray(data))
            return mb_errorf(err, MB_EINVAL,
                             "variable \"%s\": value must be {\"shape\":[..],\"data\":[..]}", n);
        size_t nd = array_len(shape, MB_TENSOR_MAX_NDIM);
        size_t len = array_len(data, MB_TENSOR_MAX_ELEMENTS);
        if (nd == 0 || nd > MB_TENSOR_MAX_NDIM)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": shape must have 1..%d dimensions", n,
                             MB_TENSOR_MAX_NDIM);
        if (len > MB_TENSOR_MAX_ELEMENTS)
            return mb_errorf(err, MB_ECONSTRAINT,
                             "variable \"%s\": value has more than %u elements", n,
                             MB_TENSOR_MAX_ELEMENTS);
        v.u.tensor.shape = malloc(nd * sizeof(uint32_t));
        v.u.tensor.data = malloc((len > 0 ? len : 1) * sizeof(float));
        if (v.u.tensor.shape == NULL || v.u.tensor.data == NULL) {
            mb_value_free(&v);
            return mb_errorf(err, MB_ENOMEM, "variable \"%s\": copy value", n);
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, shape)
        {
            if (!json_u32(it, &v.u.tensor.shape[v.u.tensor.ndim])) {
                mb_value_free(&v);
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": shape entries must be integers >= 0", n);
            }
            v.u.tensor.ndim++;
        }
        cJSON_ArrayForEach(it, data)
        {
            if (!cJSON_IsNumber(it)) {
                mb_value_free(&v);
                return mb_errorf(err, MB_EINVAL, "variable \"%s\": element %llu is not a number", n,
                                 (unsigned long long)v.u.tensor.n);
            }
            v.u.tensor.data[v.u.tensor.n++] = (float)it->valuedouble;
        }
        break;
    }
    default:
        return mb_errorf(err, MB_EINVAL, "variable \"%s\": unknown type", n);
    }
    *out = v;
    return MB_OK;
}

/* ---------------- specs ---------------- */

static const char *policy_name(mb_var_policy p)
{
    return p == MB_POLICY_CONSENSUS ? "consensus" : "direct";
}

int consensus_spec_to_json(const mb_var_spec *s, mb_var_policy policy, cJSON *o)
{
    int ok = cJSON_AddStringToObject(o, "type", mb_vtype_name(s->type)) != NULL;
    switch (s->type) {
    case MB_VT_FLOAT:
        ok = ok && cJSON_AddNumberToObject(o, "min", s->min) &&
             cJSON_AddNumberToObject(o, "max", s->max);
        if (s->log_scale)
            ok = ok && cJSON_AddTrueToObject(o, "log_scale");
        break;
    case MB_VT_INT: {
        cJSON *a = int_json(s->imin), *b = int_json(s->imax);
        ok = ok && a != NULL && cJSON_AddItemToObject(o, "min", a);
        if (!ok)
            cJSON_Delete(a);
        ok = ok && b != NULL && cJSON_AddItemToObject(o, "max", b);
        if (!ok)
            cJSON_Delete(b);
        if (s->step != 0) {
            cJSON *st = int_json(s->step);
            ok = ok && st != NULL && cJSON_AddItemToObject(o, "step", st);
        }
        break;
    }
    case MB_VT_CHOICE: {
        cJSON *opts = cJSON_AddArrayToObject(o, "options");
        ok = ok && opts != NULL;
        for (uint32_t i = 0; ok && i < s->n_options; i++) {
            cJSON *str = cJSON_CreateString(s->options[i]);
            ok = str != NULL && cJSON_AddItemToArray(opts, str);
        }
        if (ok && s->weights != NULL) {
            cJSON *w = cJSON_CreateDoubleArray(s->weights, (int)s->n_options);
            ok = w != NULL && cJSON_AddItemToObject(o, "weights", w);
        }
        break;
    }
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        ok = ok && cJSON_AddNumberToObject(o, "dim", s->dim);
        if (s->unit_norm)
            ok = ok && cJSON_AddTrueToObject(o, "unit_norm");
        if (s->tolerance != 0)
            ok = ok && cJSON_AddNumberToObject(o, "tolerance", s->tolerance);
        break;
    case MB_VT_TENSOR:
        if (s->ndim > 0) {
            cJSON *sh = cJSON_AddArrayToObject(o, "shape");
            ok = ok && sh != NULL;
            for (uint32_t i = 0; ok && i < s->ndim; i++) {
                cJSON *d = cJSON_CreateNumber(s->shape[i]);
                ok = d != NULL && cJSON_AddItemToArray(sh, d);
            }
        }
        if (s->max_elements != 0)
            ok = ok && cJSON_AddNumberToObject(o, "max_elements", (double)s->max_elements);
        break;
    default:
        break;
    }
    ok = ok && cJSON_AddStringToObject(o, "policy", policy_name(policy));
    return ok ? MB_OK : MB_ENOMEM;
}

/* Keys a definition may have, per type (bit i = key i below). */
static const char *const def_keys[] = {
    "name",    "type",    "policy", "value",     "min",       "max",   "log_scale",   "step",
    "options", "weights", "dim",    "unit_norm", "tolerance", "shape", "max_elements"
};
#define K(i) (1u << (i))
static unsigned keys_for(mb_vtype t)
{
    unsigned common = K(0) | K(1) | K(2) | K(3);
    switch (t) {
    case MB_VT_FLOAT:
        return common | K(4) | K(5) | K(6);
    case MB_VT_INT:
        return common | K(4) | K(5) | K(7);
    case MB_VT_CHOICE:
        return common | K(8) | K(9);
    case MB_VT_DISTRIBUTION:
        return common | K(10) | K(12);
    case MB_VT_EMBEDDING:
        return common | K(10) | K(11) | K(12);
    case MB_VT_TENSOR:
        return common | K(13) | K(14);
    default:
        return common;
    }
}

static int json_double(const cJSON *j, double *out)
{
    if (!cJSON_IsNumber(j))
        return 0;
    *out = j->valuedouble;
    return 1;
}

static int json_flag(const cJSON *j, int *out)
{
    if (!cJSON_IsBool(j))
        return 0;
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return 1;
}

static int parse_spec(const cJSON *j, const char *n, mb_var_spec *s, mb_error *err)
{
    const cJSON *f;
#define BAD(field) mb_errorf(err, MB_EINVAL, "variable \"%s\": field \"%s\" is invalid", n, field)
    switch (s->type) {
    case MB_VT_FLOAT:
        if (!json_double(cJSON_GetObjectItemCaseSensitive(j, "min"), &s->min) ||
            !json_double(cJSON_GetObjectItemCaseSensitive(j, "max"), &s->max))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": a float needs numbers min and max",
                             n);
        if ((f = cJSON_GetObjectItemCaseSensitive(j, "log_scale")) && !json_flag(f, &s->log_scale))
            return BAD("log_scale");
        break;
    case MB_VT_INT:
        if (!json_int(cJSON_GetObjectItemCaseSensitive(j, "min"), &s->imin) ||
            !json_int(cJSON_GetObjectItemCaseSensitive(j, "max"), &s->imax))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": an int needs integers min and max",
                             n);
        if ((f = cJSON_GetObjectItemCaseSensitive(j, "step")) && !json_int(f, &s->step))
            return BAD("step");
        break;
    case MB_VT_CHOICE: {
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
        if (!cJSON_IsArray(opts))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": a choice needs an options array", n);
        size_t len = array_len(opts, MB_CHOICE_MAX_OPTIONS);
        if (len == 0 || len > MB_CHOICE_MAX_OPTIONS)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": a choice needs 1..%d options", n,
                             MB_CHOICE_MAX_OPTIONS);
        s->options = calloc(len, sizeof(char *));
        if (s->options == NULL)
            return MB_ENOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, opts)
        {
            if (!cJSON_IsString(it) || it->valuestring == NULL ||
                strlen(it->valuestring) > MB_CHOICE_OPTION_MAX)
                return BAD("options");
            if ((s->options[s->n_options] = strdup(it->valuestring)) == NULL)
                return MB_ENOMEM;
            s->n_options++;
        }
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weights");
        if (w != NULL) {
            if (!cJSON_IsArray(w) || array_len(w, len) != len)
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": weights must be an array as long as options", n);
            s->weights = malloc(len * sizeof(double));
            if (s->weights == NULL)
                return MB_ENOMEM;
            size_t i = 0;
            cJSON_ArrayForEach(it, w)
            {
                if (!json_double(it, &s->weights[i++]))
                    return BAD("weights");
            }
        }
        break;
    }
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        if (!json_u32(cJSON_GetObjectItemCaseSensitive(j, "dim"), &s->dim))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": needs an integer dim", n);
        if ((f = cJSON_GetObjectItemCaseSensitive(j, "unit_norm")) && !json_flag(f, &s->unit_norm))
            return BAD("unit_norm");
        if ((f = cJSON_GetObjectItemCaseSensitive(j, "tolerance")) &&
            !json_double(f, &s->tolerance))
            return BAD("tolerance");
        s->tolerance += 0.0; /* -0 is 0: specs are canonical */
        break;
    case MB_VT_TENSOR: {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
        if (sh != NULL) {
            size_t nd = cJSON_IsArray(sh) ? array_len(sh, MB_TENSOR_MAX_NDIM) : 0;
            if (nd == 0 || nd > MB_TENSOR_MAX_NDIM)
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": shape must be an array of 1..%d integers", n,
                                 MB_TENSOR_MAX_NDIM);
            s->shape = malloc(nd * sizeof(uint32_t));
            if (s->shape == NULL)
                return MB_ENOMEM;
            const cJSON *it;
            cJSON_ArrayForEach(it, sh)
            {
                if (!json_u32(it, &s->shape[s->ndim]))
                    return BAD("shape");
                s->ndim++;
            }
        }
        if ((f = cJSON_GetObjectItemCaseSensitive(j, "max_elements")) != NULL) {
            int64_t m;
            if (!json_int(f, &m) || m < 0)
                return BAD("max_elements");
            s->max_elements = (uint64_t)m;
        }
        break;
    }
    default:
        break;
    }
#undef BAD
    return MB_OK;
}

int consensus_define_from_json(const cJSON *j, consensus_cmd *out, mb_error *err)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE };
    int rc;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(j))
        return mb_errorf(err, MB_EINVAL, "variable definition must be a JSON object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsString(name) || name->valuestring == NULL)
        return mb_errorf(err, MB_EINVAL, "variable definition needs a string \"name\"");
    if ((rc = mb_var_name_check(name->valuestring, err)) != MB_OK)
        return rc;
    const char *n = name->valuestring;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    c.spec.type = cJSON_IsString(type) ? mb_vtype_from_name(type->valuestring) : MB_VT_NONE;
    if (c.spec.type == MB_VT_NONE)
        return mb_errorf(err, MB_EINVAL,
                         "variable \"%s\": \"type\" must be one of float, int, choice, bool, "
                         "probability, distribution, embedding, tensor",
                         n);
    /* Every key known, allowed for the type, and given once. */
    unsigned allowed = keys_for(c.spec.type), seen = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        unsigned k = 0, nk = sizeof(def_keys) / sizeof(def_keys[0]);
        while (k < nk && (it->string == NULL || strcmp(it->string, def_keys[k]) != 0))
            k++;
        if (k == nk || !(allowed & K(k)))
            return mb_errorf(err, MB_EINVAL,
                             "variable \"%s\": field \"%.32s\" does not apply to "
                             "type %s",
                             n, it->string != NULL ? it->string : "", mb_vtype_name(c.spec.type));
        if (seen & K(k))
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": field \"%s\" given twice", n,
                             def_keys[k]);
        seen |= K(k);
    }
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "policy");
    if (pol != NULL) {
        if (cJSON_IsString(pol) && strcmp(pol->valuestring, "direct") == 0)
            c.policy = MB_POLICY_DIRECT;
        else if (cJSON_IsString(pol) && strcmp(pol->valuestring, "consensus") == 0)
            c.policy = MB_POLICY_CONSENSUS;
        else
            return mb_errorf(err, MB_EINVAL,
                             "variable \"%s\": policy must be \"direct\" or \"consensus\"", n);
    }
    if ((c.name = strdup(n)) == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "variable \"%s\": parse definition", n);
        goto fail;
    }
    if ((rc = parse_spec(j, n, &c.spec, err)) != MB_OK) {
        if (rc == MB_ENOMEM)
            mb_errorf(err, rc, "variable \"%s\": parse definition", n);
        goto fail;
    }
    if ((rc = mb_var_spec_check(n, &c.spec, err)) != MB_OK)
        goto fail;
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (val != NULL) {
        if ((rc = consensus_value_from_json(val, c.spec.type, n, &c.value, err)) != MB_OK ||
            (rc = mb_value_validate(n, &c.spec, &c.value, err)) != MB_OK)
            goto fail;
    }
    *out = c;
    return MB_OK;

fail:
    consensus_cmd_free(&c);
    return rc;
}
#undef K

int consensus_var_to_json(const consensus_var *var, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *v = NULL;
    *out = NULL;
    if (o == NULL)
        return MB_ENOMEM;
    if (!cJSON_AddStringToObject(o, "name", var->name) ||
        consensus_spec_to_json(&var->spec, var->policy, o) != MB_OK ||
        consensus_value_to_json(&var->value, &v) != MB_OK)
        goto err_nomem;
    if (!cJSON_AddItemToObject(o, "value", v)) {
        cJSON_Delete(v);
        goto err_nomem;
    }
    if (!cJSON_AddNumberToObject(o, "version", (double)var->version) ||
        !cJSON_AddNumberToObject(o, "created", (double)var->created) ||
        !cJSON_AddStringToObject(o, "changed_by", var->changed_by != NULL ? var->changed_by : ""))
        goto err_nomem;
    *out = o;
    return MB_OK;

err_nomem:
    cJSON_Delete(o);
    return MB_ENOMEM;
}
