/* Typed values of MABEAM variables (public API).
 *
 * A variable has a type (float, int, choice, bool, probability,
 * distribution, embedding, tensor), constraints (mb_var_spec), and a value.
 * mb_value is the in-memory form of one value; the replicated state machine
 * (consensus/) validates values against a variable's constraints and encodes
 * them with protobuf-c for the log and the wire, and the HTTP API maps them
 * to JSON. mb_value_validate() is a pure function: the same check runs
 * before a write is proposed and when it is applied.
 *
 * Ownership: an mb_value owns its heap parts (choice string, vector data,
 * tensor shape and data) and an mb_var_spec owns its option strings,
 * weights and shape. The *_free() functions release them (the struct itself
 * belongs to the caller); the *_copy() functions make deep copies. A
 * `const mb_value *` handed to a callback is borrowed for the duration of the
 * callback. Implemented in consensus/value.c (library mb_consensus). */
#ifndef MABEAM_VALUE_H
#define MABEAM_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mb_vtype {
    MB_VT_NONE = 0,
    MB_VT_FLOAT = 1,        /* double; range [min,max], optional log scale */
    MB_VT_INT = 2,          /* int64; range and step */
    MB_VT_CHOICE = 3,       /* one of a set of option strings */
    MB_VT_BOOL = 4,         /* 0 or 1 */
    MB_VT_PROBABILITY = 5,  /* double in [0,1] */
    MB_VT_DISTRIBUTION = 6, /* vector of doubles >= 0 summing to 1 */
    MB_VT_EMBEDDING = 7,    /* vector of doubles of a fixed dimension */
    MB_VT_TENSOR = 8,       /* shape + float32 data */
} mb_vtype;

typedef struct mb_value {
    mb_vtype type;
    union {
        double f;         /* FLOAT, PROBABILITY */
        int64_t i;        /* INT */
        int b;            /* BOOL */
        char *choice;     /* CHOICE: NUL-terminated option, owned */
        struct {          /* DISTRIBUTION, EMBEDDING */
            double *data; /* owned, n elements */
            uint32_t n;
        } vec;
        struct {             /* TENSOR */
            uint32_t *shape; /* owned, ndim elements */
            uint32_t ndim;
            float *data; /* owned, product(shape) elements */
            uint64_t n;
        } tensor;
    } u;
} mb_value;

/* Hard limits, identical on every node (they are part of the replicated
 * semantics: changing one changes which commands apply). */
#define MB_VAR_NAME_MAX        128        /* bytes; names match [A-Za-z0-9_.:/-]+ */
#define MB_CHOICE_MAX_OPTIONS  1024       /* options of a choice variable */
#define MB_CHOICE_OPTION_MAX   256        /* bytes of one option */
#define MB_VEC_MAX_DIM         65536      /* distribution / embedding dimension */
#define MB_TENSOR_MAX_NDIM     8          /* tensor rank */
#define MB_TENSOR_MAX_ELEMENTS (1u << 20) /* 4 MiB of float32 */
#define MB_DEFAULT_TOLERANCE   1e-6       /* sum / norm tolerance when 0 is given */

/* How a variable may change: DIRECT = the last committed write wins;
 * CONSENSUS = only through a proposal that eligible agents vote on (plain
 * writes are refused with MB_EPERM). */
typedef enum mb_var_policy {
    MB_POLICY_DIRECT = 0,
    MB_POLICY_CONSENSUS = 1,
} mb_var_policy;

/* The type and constraints of a variable. Only the fields of `type` are
 * meaningful; the others must be zero/NULL. */
typedef struct mb_var_spec {
    mb_vtype type;
    /* FLOAT: finite min <= max; log_scale needs min > 0 (a sampling hint). */
    double min, max;
    int log_scale;
    /* INT: imin <= imax, step >= 1 (0 means 1); a value must equal
     * imin + k * step. */
    int64_t imin, imax, step;
    /* CHOICE: 1..MB_CHOICE_MAX_OPTIONS distinct non-empty options (owned);
     * weights NULL or n_options finite non-negative numbers with a positive
     * sum (owned; a sampling hint). */
    char **options;
    double *weights;
    uint32_t n_options;
    /* DISTRIBUTION, EMBEDDING: dimension 1..MB_VEC_MAX_DIM; tolerance of the
     * sum (distribution) or norm (unit_norm embedding), 0 = default. */
    uint32_t dim;
    int unit_norm;
    double tolerance;
    /* TENSOR: ndim == 0 = any shape, else the exact shape (owned);
     * max_elements 0 = MB_TENSOR_MAX_ELEMENTS, else a smaller limit. */
    uint32_t *shape;
    uint32_t ndim;
    uint64_t max_elements;
} mb_var_spec;

/* "float", "int", ... for a type; "none" for anything else. */
const char *mb_vtype_name(mb_vtype t);

/* The type named `name`, or MB_VT_NONE when unknown. `name` is borrowed. */
mb_vtype mb_vtype_from_name(const char *name);

/* Release the heap parts of `v` (NULL is a no-op) and reset it to NONE. */
void mb_value_free(mb_value *v);

/* Deep copy of `src` into `dst` (which is overwritten, not freed first).
 * MB_ENOMEM on allocation failure, leaving `dst` as type NONE. */
int mb_value_copy(mb_value *dst, const mb_value *src);

/* 1 when both values have the same type and the same contents (bitwise for
 * floating point data), 0 otherwise. */
int mb_value_equal(const mb_value *a, const mb_value *b);

/* Release the heap parts of `s` (NULL is a no-op) and zero it. */
void mb_var_spec_free(mb_var_spec *s);

/* Deep copy; `dst` is overwritten. MB_ENOMEM leaves `dst` zeroed. */
int mb_var_spec_copy(mb_var_spec *dst, const mb_var_spec *src);

/* 1 when the specs are identical, 0 otherwise. */
int mb_var_spec_equal(const mb_var_spec *a, const mb_var_spec *b);

/* Check that a spec itself is well formed (MB_EINVAL with a message naming
 * the variable `name` and the bad field otherwise). */
int mb_var_spec_check(const char *name, const mb_var_spec *s, mb_error *err);

/* Check that `name` is a valid variable name (MB_EINVAL otherwise). */
int mb_var_name_check(const char *name, mb_error *err);

/* Validate `v` against `s` for the variable `name` (borrowed, only used in
 * the message). MB_EINVAL when the value has the wrong type or shape or is
 * not a number, MB_ECONSTRAINT when it breaks a constraint; the message
 * says which, e.g. `variable "lr": value 2.5 above max 1.0`. Pure. */
int mb_value_validate(const char *name, const mb_var_spec *s, const mb_value *v, mb_error *err);

/* The value a variable defined without one starts with: FLOAT/INT the
 * minimum (the smallest step at or above 0 when the range contains 0),
 * CHOICE the first option, BOOL false, PROBABILITY 0, DISTRIBUTION uniform,
 * EMBEDDING zeros (e1 when unit_norm), TENSOR zeros of the fixed shape.
 * MB_EINVAL for a tensor without a fixed shape; MB_ENOMEM. `out` is
 * overwritten. */
int mb_value_default(const mb_var_spec *s, mb_value *out);

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_VALUE_H */
