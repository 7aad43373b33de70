/*
 * loops_common.h -- what every csrc/<concern>_loops.h shares: no loops, only the
 * machinery that lets one loop body serve float and double.
 *
 * Each <concern>_loops.h is written once, in terms of
 *     FFC_REAL          the element type (float or double)
 *     FFC_SUF(name)     name##_s for float, name##_d for double
 *     FFC_EXP, FFC_LOG, FFC_SQRT, FFC_TANH   the libm function of that type
 * and instantiates itself for both types through loops_instantiate.h.
 *
 * Conventions of all loops: matrices are row-major and contiguous, `n` counts rows
 * (samples) and `d` columns (features).  A loop never allocates, raises or validates
 * its arguments: the Cython wrapper has done that before calling it.
 */
#ifndef FASTFC_LOOPS_COMMON_H
#define FASTFC_LOOPS_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * FFC_HOT marks a loop.  With GCC >= 11 on x86-64 Linux it asks for three builds of the
 * function (baseline SSE2, x86-64-v3 = AVX2 + FMA, x86-64-v4 = AVX-512), one of which
 * the dynamic loader selects for the running CPU: a portable wheel still gets wide
 * vectors.  FFC_NO_CLONES (or any other compiler) keeps the single baseline build.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(FFC_NO_CLONES) && (__GNUC__ >= 11)
#define FFC_HOT __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define FFC_HOT inline
#endif

#if defined(_MSC_VER)
#define FFC_RESTRICT __restrict
#else
#define FFC_RESTRICT __restrict__
#endif

/*
 * A vectorised sum over a loop with the accumulators `acc` and `bad`; GCC and Clang
 * honour it under -fopenmp-simd, other compilers ignore it.
 */
#if defined(_OPENMP) || defined(__clang__) || defined(__GNUC__)
#define FFC_PRAGMA_SIMD_REDUCE _Pragma("omp simd reduction(+:acc, bad)")
#else
#define FFC_PRAGMA_SIMD_REDUCE
#endif

/*
 * Side results of an update pass (csrc/optim_loops.h), also read by the fused training
 * step (net.pyx), hence declared here rather than with the update rules.
 */
typedef struct {
    double sumsq;          /* sum of the squares of the weights before the update */
    ptrdiff_t nonfinite;   /* NaN or infinite weights after the update */
} ffc_update_stats;

/*
 * bfloat16 of a float32 value: rounded to nearest, ties to even (NumPy formula in
 * tests/test_gemm.py: the top 16 bits of u + 0x7FFF + ((u >> 16) & 1)); a NaN stays a
 * quiet NaN of the same sign (the add could carry it into infinity).  The one rounding
 * of bf16 steps: the GEMM's operand conversion (gemm_dispatch.h) and the loops that
 * write a bf16 copy of their output (dense_loops.h) both use it.
 */
static inline uint16_t ffc_bf16_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x0040u) : r);
}

#endif /* FASTFC_LOOPS_COMMON_H */
