/*
 * fastfc_loops.h -- the elementwise and row-wise loops of fastfc's kernels.
 *
 * Plain C so that the compiler sees `restrict` pointers and simple counted loops it
 * can vectorise.  Every loop exists twice, for float (suffix _s) and double (suffix _d):
 * fastfc_loops_impl.h is the template and is included once per type below.
 *
 * Conventions: matrices are row-major and contiguous, `n` is the number of rows
 * (samples), `d` the number of columns (features).  No loop allocates, raises or
 * checks its arguments: the Python wrappers do that before a kernel is called.
 */
#ifndef FASTFC_LOOPS_H
#define FASTFC_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Function multi-versioning: on x86-64 Linux with GCC, each loop is compiled three times
 * (baseline SSE2, x86-64-v3 = AVX2 + FMA, x86-64-v4 = AVX-512) and the loader picks the
 * best one for the CPU it runs on, so a portable wheel still uses wide vectors.
 * Define FFC_NO_CLONES to build the baseline only.
 * Each kernel module includes this header and calls only some of its loops.  A cloned
 * loop cannot be `inline`, so it is marked `unused` instead: that is exactly what
 * `inline` says of a header function (no warning when a module does not call it), and
 * an uncalled static function is still dropped from the module.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(FFC_NO_CLONES) && (__GNUC__ >= 11)
#define FFC_HOT __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4"), \
                               unused))
#else
#define FFC_HOT inline
#endif

#if defined(_MSC_VER)
#define FFC_RESTRICT __restrict
#else
#define FFC_RESTRICT __restrict__
#endif

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

/* What an update pass can report besides updating (see the update rules). */
typedef struct {
    double sumsq;          /* sum of the squares of the weights before the update */
    ptrdiff_t nonfinite;   /* NaN or infinite weights after the update */
} ffc_update_stats;

/* Vectorised reductions: honoured with -fopenmp-simd (GCC, Clang), ignored otherwise. */
#if defined(_OPENMP) || defined(__clang__) || defined(__GNUC__)
#define FFC_PRAGMA_SIMD_REDUCE _Pragma("omp simd reduction(+:acc, bad)")
#else
#define FFC_PRAGMA_SIMD_REDUCE
#endif

#define FFC_REAL float
#define FFC_SUF(name) name##_s
#define FFC_EXP expf
#define FFC_LOG logf
#define FFC_SQRT sqrtf
#define FFC_TANH tanhf
#include "fastfc_loops_impl.h"
#undef FFC_REAL
#undef FFC_SUF
#undef FFC_EXP
#undef FFC_LOG
#undef FFC_SQRT
#undef FFC_TANH

#define FFC_REAL double
#define FFC_SUF(name) name##_d
#define FFC_EXP exp
#define FFC_LOG log
#define FFC_SQRT sqrt
#define FFC_TANH tanh
#include "fastfc_loops_impl.h"
#undef FFC_REAL
#undef FFC_SUF
#undef FFC_EXP
#undef FFC_LOG
#undef FFC_SQRT
#undef FFC_TANH

#endif /* FASTFC_LOOPS_H */
