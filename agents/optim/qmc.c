/* Quasi-random sequences: Sobol (primitive polynomials over GF(2) found at
 * init, seeded odd initial direction numbers, optional random linear
 * scrambling plus digital shift) and Halton (prime bases, optional random
 * affine scrambling of every digit). Both scramblings keep the
 * stratification properties of the plain sequences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/optim/optim_int.h"

/* Degree of a GF(2) polynomial stored as bits (bit i = coefficient of x^i). */
static int poly_degree(uint32_t p)
{
    int d = -1;
    while (p) {
        d++;
        p >>= 1;
    }
    return d;
}

/* (a * b) mod p over GF(2), deg(p) = s <= 20. */
static uint32_t poly_mulmod(uint32_t a, uint32_t b, uint32_t p, int s)
{
    uint32_t r = 0;
    while (b) {
        if (b & 1)
            r ^= a;
        b >>= 1;
        a <<= 1;
        if (a & (1u << s))
            a ^= p;
    }
    return r;
}

static uint32_t poly_powmod_x(uint64_t e, uint32_t p, int s)
{
    uint32_t result = 1, base = 2 % (1u << s);
    if (s == 1)
        base = 1; /* x mod (x+1) = 1 */
    while (e) {
        if (e & 1)
            result = poly_mulmod(result, base, p, s);
        base = poly_mulmod(base, base, p, s);
        e >>= 1;
    }
    return result;
}

/* Primitive: x has order exactly 2^s - 1 modulo p. */
static int poly_is_primitive(uint32_t p)
{
    int s = poly_degree(p);
    if (s < 1 || !(p & 1))
        return 0;
    uint64_t order = (1ull << s) - 1;
    if (poly_powmod_x(order, p, s) != 1)
        return 0;
    uint64_t m = order;
    for (uint64_t q = 2; q * q <= m; q++) {
        if (m % q)
            continue;
        while (m % q == 0)
            m /= q;
        if (poly_powmod_x(order / q, p, s) == 1)
            return 0;
    }
    if (m > 1 && poly_powmod_x(order / m, p, s) == 1)
        return 0;
    return 1;
}

/* Parity of the bits of x. */
static uint32_t parity32(uint32_t x)
{
    return (uint32_t)__builtin_parity(x);
}

int optim_sobol_init(optim_sobol *s, size_t dims, int scramble, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->dims = dims;
    s->v = calloc(dims, sizeof(*s->v));
    s->shift = calloc(dims, sizeof(uint32_t));
    if (s->v == NULL || s->shift == NULL) {
        optim_sobol_free(s);
        return MB_ENOMEM;
    }
    optim_rng mrng; /* fixed: initial direction numbers are part of the sequence */
    optim_rng_seed(&mrng, 0x50B01ull, 0);
    uint32_t poly = 1; /* candidate polynomial bits, searched upwards */
    for (size_t j = 0; j < dims; j++) {
        uint32_t *v = s->v[j];
        if (j == 0) {
            for (int k = 0; k < 32; k++)
                v[k] = 1u << (31 - k);
        } else {
            do
                poly++;
            while (!poly_is_primitive(poly));
            int deg = poly_degree(poly);
            uint32_t m[32];
            for (int k = 0; k < deg && k < 32; k++) {
                /* odd m_k < 2^(k+1); m_0 = 1 */
                m[k] = k == 0 ? 1 : (uint32_t)(optim_rng_below(&mrng, 1u << k) * 2 + 1);
            }
            for (int k = deg; k < 32; k++) {
                uint32_t val = m[k - deg] ^ (m[k - deg] << deg);
                for (int i = 1; i < deg; i++)
                    if ((poly >> (deg - i)) & 1)
                        val ^= m[k - i] << i;
                m[k] = val;
            }
            for (int k = 0; k < 32; k++)
                v[k] = m[k] << (31 - k);
        }
        if (scramble) {
            optim_rng rng;
            optim_rng_seed(&rng, seed, 0x5C0B0000ull + j);
            /* lower-triangular binary matrix L (unit diagonal): output digit i
             * (bit 31-i) = parity(row_i & v), row_i covers digits 0..i */
            uint32_t rows[32];
            for (int i = 0; i < 32; i++) {
                uint32_t above = i == 0 ? 0 : (uint32_t)(optim_rng_next(&rng) >> 32);
                uint32_t mask = i == 0 ? 0 : ~((1u << (32 - i)) - 1); /* digits 0..i-1 */
                rows[i] = (above & mask) | (1u << (31 - i));
            }
            for (int k = 0; k < 32; k++) {
                uint32_t out = 0;
                for (int i = 0; i < 32; i++)
                    out |= parity32(rows[i] & v[k]) << (31 - i);
                v[k] = out;
            }
            s->shift[j] = (uint32_t)(optim_rng_next(&rng) >> 32);
        }
    }
    return MB_OK;
}

void optim_sobol_point(const optim_sobol *s, uint64_t index, double *u)
{
    for (size_t j = 0; j < s->dims; j++) {
        uint32_t x = s->shift[j];
        uint64_t n = index;
        for (int k = 0; n != 0 && k < 32; k++, n >>= 1)
            if (n & 1)
                x ^= s->v[j][k];
        u[j] = ((double)x + 0.5) * 0x1.0p-32;
    }
}

void optim_sobol_free(optim_sobol *s)
{
    free(s->v);
    free(s->shift);
    s->v = NULL;
    s->shift = NULL;
}

static uint32_t nth_prime(size_t n)
{
    uint32_t count = 0;
    for (uint32_t c = 2;; c++) {
        int prime = 1;
        for (uint32_t q = 2; q * q <= c; q++)
            if (c % q == 0) {
                prime = 0;
                break;
            }
        if (prime && count++ == n)
            return c;
    }
}

int optim_halton_init(optim_halton *h, size_t dims, int scramble, uint64_t seed)
{
    memset(h, 0, sizeof(*h));
    h->dims = dims;
    h->base = calloc(dims, sizeof(uint32_t));
    h->ndigits = calloc(dims, sizeof(uint32_t));
    h->a = calloc(dims, sizeof(*h->a));
    h->c = calloc(dims, sizeof(*h->c));
    if (!h->base || !h->ndigits || !h->a || !h->c) {
        optim_halton_free(h);
        return MB_ENOMEM;
    }
    for (size_t j = 0; j < dims; j++) {
        uint32_t b = nth_prime(j);
        h->base[j] = b;
        /* enough digits to resolve 2^-52 */
        h->ndigits[j] = (uint32_t)ceil(52.0 * log(2.0) / log((double)b));
        if (h->ndigits[j] > 64)
            h->ndigits[j] = 64;
        optim_rng rng;
        optim_rng_seed(&rng, seed, 0x4A170000ull + j);
        for (uint32_t k = 0; k < 64; k++) {
            h->a[j][k] = scramble ? 1 + (uint32_t)optim_rng_below(&rng, b - 1) : 1;
            h->c[j][k] = scramble ? (uint32_t)optim_rng_below(&rng, b) : 0;
        }
    }
    return MB_OK;
}

void optim_halton_point(const optim_halton *h, uint64_t index, double *u)
{
    for (size_t j = 0; j < h->dims; j++) {
        uint64_t b = h->base[j], n = index;
        double scale = 1.0 / (double)b, x = 0.0;
        for (uint32_t k = 0; k < h->ndigits[j]; k++) {
            uint64_t d = n % b;
            n /= b;
            x += (double)((h->a[j][k] * d + h->c[j][k]) % b) * scale;
            scale /= (double)b;
        }
        u[j] = x < 1.0 ? x : nextafter(1.0, 0.0);
    }
}

void optim_halton_free(optim_halton *h)
{
    free(h->base);
    free(h->ndigits);
    free(h->a);
    free(h->c);
    memset(h, 0, sizeof(*h));
}
