/*
 * net_loops.h -- loops that only the fused training step (fastfc/_kernels/net.pyx) calls:
 * the counter-based dropout masks and the plain minibatch gather.  net.pyx also
 * includes dense_loops.h for the layer loops it runs itself.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_NET_LOOPS_H
#define FASTFC_NET_LOOPS_H

#include "loops_common.h"

/*
 * Counter-based random bits for dropout masks: element k of a mask is a hash of
 * (k, key1, key2), where the keys come from (seed, step, layer).  Masks are thus
 * reproducible from the step number alone (no generator state to save), and a
 * forward pass repeated at the same step draws the same mask.
 */
static inline uint32_t ffc_hash32(uint32_t x)
{
    /* "lowbias32" integer finaliser (C. Wellons) */
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline uint64_t ffc_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* mask[k] = uniform(k) < p, with p given as threshold = round(p * 2**24) */
static FFC_HOT void ffc_dropout_mask(uint8_t *FFC_RESTRICT mask, ptrdiff_t size,
                                    uint32_t threshold, uint64_t key)
{
    const uint32_t k1 = (uint32_t)key, k2 = (uint32_t)(key >> 32);
    for (ptrdiff_t k = 0; k < size; ++k) {
        uint32_t h = ffc_hash32(ffc_hash32((uint32_t)k ^ k1) + k2);
        mask[k] = (uint8_t)((h >> 8) < threshold);
    }
}

#define FFC_TEMPLATE "net_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_NET_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/* rows of x gathered by index, cast to this type: out[i, :] = x[idx[i], :]
   (idx NULL: out[i, :] = x[i, :], a plain cast) */
#define FFC_GATHER_BODY(SRC_T)                                                           \
    for (ptrdiff_t i = 0; i < n; ++i) {                                                  \
        const SRC_T *src = x + (idx != NULL ? (ptrdiff_t)idx[i] : i) * d;                \
        FFC_REAL *dst = out + i * d;                                                     \
        for (ptrdiff_t j = 0; j < d; ++j) dst[j] = (FFC_REAL)src[j];                     \
    }

static FFC_HOT void FFC_SUF(ffc_gather_rows_f)(const float *FFC_RESTRICT x, const intptr_t *idx,
                                               ptrdiff_t n, ptrdiff_t d,
                                               FFC_REAL *FFC_RESTRICT out)
{
    FFC_GATHER_BODY(float)
}

static FFC_HOT void FFC_SUF(ffc_gather_rows_d)(const double *FFC_RESTRICT x, const intptr_t *idx,
                                               ptrdiff_t n, ptrdiff_t d,
                                               FFC_REAL *FFC_RESTRICT out)
{
    FFC_GATHER_BODY(double)
}
#undef FFC_GATHER_BODY

#endif /* FFC_REAL */
