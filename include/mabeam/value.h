/* Typed values of MABEAM variables (public API).
 *
 * A variable has a type (float, int, choice, bool, probability,
 * distribution, embedding, tensor), constraints, and a value. mb_value is the
 * in-memory form of one value; the replicated state machine (consensus/)
 * validates values against a variable's constraints and encodes them with
 * protobuf-c for the log and the wire, and the HTTP API maps them to JSON.
 *
 * Ownership: an mb_value owns its heap parts (choice string, vector data,
 * tensor shape). mb_value_free() releases them; mb_value_copy() makes a deep
 * copy. A `const mb_value *` handed to a callback is borrowed for the
 * duration of the callback. */
#ifndef MABEAM_VALUE_H
#define MABEAM_VALUE_H

#include <stddef.h>
#include <stdint.h>

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

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_VALUE_H */
