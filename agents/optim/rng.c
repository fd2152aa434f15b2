/* The seeded random source of the optimisation library: xoshiro256**
 * seeded through splitmix64, with uniform, normal, gamma and beta draws.
 * No global state: every caller owns its generator. */
#include <math.h>

#include "agents/optim/optim_int.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t optim_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xD1B54A32D192ED03ull);
    return splitmix64(&x);
}

void optim_rng_seed(optim_rng *rng, uint64_t seed, uint64_t stream)
{
    uint64_t x = optim_mix(seed, stream);
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t optim_rng_next(optim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double optim_rng_uniform(optim_rng *rng)
{
    return (double)(optim_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t optim_rng_below(optim_rng *rng, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = optim_rng_next(rng);
    } while (r >= limit);
    return r % n;
}

double optim_rng_normal(optim_rng *rng)
{
    for (;;) {
        double a = 2.0 * optim_rng_uniform(rng) - 1.0;
        double b = 2.0 * optim_rng_uniform(rng) - 1.0;
        double s = a * a + b * b;
        if (s > 0.0 && s < 1.0)
            return a * sqrt(-2.0 * log(s) / s);
    }
}

double optim_rng_gamma(optim_rng *rng, double shape)
{
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = optim_rng_normal(rng);
        double v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = optim_rng_uniform(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double optim_rng_beta(optim_rng *rng, double a, double b)
{
    double x = optim_rng_gamma(rng, a);
    double y = optim_rng_gamma(rng, b);
    return x / (x + y);
}
