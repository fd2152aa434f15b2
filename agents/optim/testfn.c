/* Built-in test functions with known optima (Branin, Hartmann-6,
 * Rosenbrock-N, Ackley-N), used by the tests and the benchmarks. */
#include <math.h>
#include <stdio.h>

#include "agents/optim/optim_int.h"

static const double H6_A[4][6] = { { 10, 3, 17, 3.5, 1.7, 8 },
                                   { 0.05, 10, 17, 0.1, 8, 14 },
                                   { 3, 3.5, 1.7, 10, 17, 8 },
                                   { 17, 8, 0.05, 10, 0.1, 14 } };
static const double H6_P[4][6] = { { 0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886 },
                                   { 0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991 },
                                   { 0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650 },
                                   { 0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381 } };
static const double H6_ALPHA[4] = { 1.0, 1.2, 3.0, 3.2 };
static const double H6_XSTAR[6] = { 0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573 };

static size_t fn_dims(mb_optim_testfn fn, size_t ndims)
{
    return fn == MB_OPTIM_BRANIN ? 2 : fn == MB_OPTIM_HARTMANN6 ? 6 : ndims;
}

int mb_optim_testfn_space(mb_optim_testfn fn, size_t ndims, mb_optim_space **out, mb_error *err)
{
    double lo, hi;
    switch (fn) {
    case MB_OPTIM_BRANIN:
    case MB_OPTIM_HARTMANN6:
        lo = 0, hi = 1;
        break;
    case MB_OPTIM_ROSENBROCK:
        lo = -5, hi = 10;
        break;
    case MB_OPTIM_ACKLEY:
        lo = -32.768, hi = 32.768;
        break;
    default:
        return mb_errorf(err, MB_EINVAL, "unknown test function %d", (int)fn);
    }
    size_t n = fn_dims(fn, ndims);
    if (n < 1 || n > MB_OPTIM_MAX_DIMS)
        return mb_errorf(err, MB_EINVAL, "test function: ndims must be 1..%d", MB_OPTIM_MAX_DIMS);
    mb_optim_space *sp = NULL;
    int rv = mb_optim_space_new(&sp, err);
    for (size_t i = 0; rv == MB_OK && i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "x%zu", i);
        if (fn == MB_OPTIM_BRANIN)
            rv = i == 0 ? mb_optim_space_add_float(sp, name, -5, 10, 0, err)
                        : mb_optim_space_add_float(sp, name, 0, 15, 0, err);
        else
            rv = mb_optim_space_add_float(sp, name, lo, hi, 0, err);
    }
    if (rv != MB_OK) {
        mb_optim_space_free(sp);
        return rv;
    }
    *out = sp;
    return MB_OK;
}

double mb_optim_testfn_eval(mb_optim_testfn fn, size_t ndims, const double *x)
{
    switch (fn) {
    case MB_OPTIM_BRANIN: {
        const double a = 1, b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, r = 6, s = 10,
                     t = 1 / (8 * M_PI);
        double u = x[1] - b * x[0] * x[0] + c * x[0] - r;
        return a * u * u + s * (1 - t) * cos(x[0]) + s;
    }
    case MB_OPTIM_HARTMANN6: {
        double sum = 0;
        for (int i = 0; i < 4; i++) {
            double inner = 0;
            for (int j = 0; j < 6; j++)
                inner += H6_A[i][j] * (x[j] - H6_P[i][j]) * (x[j] - H6_P[i][j]);
            sum += H6_ALPHA[i] * exp(-inner);
        }
        return -sum;
    }
    case MB_OPTIM_ROSENBROCK: {
        double sum = 0;
        for (size_t i = 0; i + 1 < ndims; i++) {
            double u = x[i + 1] - x[i] * x[i], v = 1 - x[i];
            sum += 100 * u * u + v * v;
        }
        return sum;
    }
    case MB_OPTIM_ACKLEY: {
        double s1 = 0, s2 = 0, n = (double)ndims;
        for (size_t i = 0; i < ndims; i++) {
            s1 += x[i] * x[i];
            s2 += cos(2 * M_PI * x[i]);
        }
        return -20 * exp(-0.2 * sqrt(s1 / n)) - exp(s2 / n) + 20 + M_E;
    }
    }
    return NAN;
}

double mb_optim_testfn_optimum(mb_optim_testfn fn, size_t ndims, double *xstar)
{
    switch (fn) {
    case MB_OPTIM_BRANIN:
        if (xstar != NULL) {
            xstar[0] = M_PI;
            xstar[1] = 2.275;
        }
        return 0.39788735772973816;
    case MB_OPTIM_HARTMANN6:
        for (int i = 0; xstar != NULL && i < 6; i++)
            xstar[i] = H6_XSTAR[i];
        return -3.32236801141551;
    case MB_OPTIM_ROSENBROCK:
    case MB_OPTIM_ACKLEY:
        for (size_t i = 0; xstar != NULL && i < ndims; i++)
            xstar[i] = fn == MB_OPTIM_ROSENBROCK ? 1.0 : 0.0;
        return 0.0;
    }
    return NAN;
}
