/*
 * optim_loops.h -- the parameter update rules of fastfc/_kernels/optim.pyx: SGD,
 * momentum, Nesterov momentum, RMSProp, Adam, AdamW.  Each is one elementwise pass that can
 * also collect the statistics in ffc_update_stats (loops_common.h).  AdamW is Adam with
 * decoupled weight decay.
 *
 * These loops must give NumPy's results bit for bit: see the fp-contract note below.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_OPTIM_LOOPS_H
#define FASTFC_OPTIM_LOOPS_H

#include "loops_common.h"

#define FFC_TEMPLATE "optim_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_OPTIM_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/* ------------------------------------------------------------------ update rules */
/*
 * No fused multiply-add in the update rules: `mom * v - lr * g` must round both
 * products, as NumPy does.  GCC contracts across statements by default
 * (-ffp-contract=fast), so the section is compiled with contraction off; Clang is told
 * per function (FFC_NO_CONTRACT).  MSVC does not contract by default.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#define FFC_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define FFC_NO_CONTRACT
#endif

/*
 * Every rule takes g = dw + reg * w (reg = 0 leaves dw as it is) and updates w in place.
 * When `stats` is not NULL the same pass also adds (w_old ** 2).sum() to stats->sumsq
 * (the L2 term of the loss, at the weights the loss was computed with) and the number
 * of NaN/inf values in the new w to stats->nonfinite: no extra pass over the weights.
 */
#define FFC_UPDATE_LOOP(BODY)                                                           \
    if (stats == NULL) {                                                                \
        for (ptrdiff_t k = 0; k < size; ++k) { BODY }                                   \
    } else {                                                                            \
        double acc = 0.0;                                                               \
        ptrdiff_t bad = 0;                                                              \
        FFC_PRAGMA_SIMD_REDUCE                                                          \
        for (ptrdiff_t k = 0; k < size; ++k) {                                          \
            const double w_old = (double)w[k];                                          \
            acc += w_old * w_old;                                                       \
            { BODY }                                                                    \
            bad += !(w[k] - w[k] == 0);                                                 \
        }                                                                               \
        stats->sumsq += acc;                                                            \
        stats->nonfinite += bad;                                                        \
    }

/*
 * The coefficients (lr, mom, 1 - b1, ...) arrive already rounded to FFC_REAL: the caller
 * forms them in double from the Python-float hyper-parameters and rounds each once, the
 * way NumPy treats `float32_array * python_float`.  Each loop then evaluates its formula
 * in the order the NumPy reference writes it (one rounding per operation, no fused
 * multiply-add: see FFC_NO_CONTRACT), so float32 results match NumPy's bit for bit.
 */

/* w -= lr * g */
static FFC_HOT void FFC_SUF(ffc_sgd)(FFC_REAL *FFC_RESTRICT w, const FFC_REAL *FFC_RESTRICT dw,
                                    ptrdiff_t size, FFC_REAL lr, FFC_REAL reg,
                                    ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(w[k] -= lr * (dw[k] + reg * w[k]);)
}

/* v = mom * v - lr * g; w += v */
static FFC_HOT void FFC_SUF(ffc_sgd_momentum)(FFC_REAL *FFC_RESTRICT w,
                                             const FFC_REAL *FFC_RESTRICT dw,
                                             FFC_REAL *FFC_RESTRICT v, ptrdiff_t size,
                                             FFC_REAL lr, FFC_REAL mom, FFC_REAL reg,
                                             ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(
        FFC_REAL g = dw[k] + reg * w[k];
        FFC_REAL vk = mom * v[k] - lr * g;
        v[k] = vk;
        w[k] += vk;
    )
}

/* v' = mom * v - lr * g; w = (w + v') + mom * (v' - v); v = v' */
static FFC_HOT void FFC_SUF(ffc_sgd_nesterov)(FFC_REAL *FFC_RESTRICT w,
                                             const FFC_REAL *FFC_RESTRICT dw,
                                             FFC_REAL *FFC_RESTRICT v, ptrdiff_t size,
                                             FFC_REAL lr, FFC_REAL mom, FFC_REAL reg,
                                             ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(
        FFC_REAL g = dw[k] + reg * w[k];
        FFC_REAL v_prev = v[k];
        FFC_REAL vk = mom * v_prev - lr * g;
        v[k] = vk;
        w[k] = w[k] + vk + mom * (vk - v_prev);
    )
}

/* c = dr * c + keep * g**2 (keep = 1 - dr); w -= (lr * g) / (sqrt(c) + eps) */
static FFC_HOT void FFC_SUF(ffc_rmsprop)(FFC_REAL *FFC_RESTRICT w, const FFC_REAL *FFC_RESTRICT dw,
                                        FFC_REAL *FFC_RESTRICT cache, ptrdiff_t size,
                                        FFC_REAL lr, FFC_REAL decay_rate, FFC_REAL keep,
                                        FFC_REAL eps, FFC_REAL reg, ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(
        FFC_REAL g = dw[k] + reg * w[k];
        FFC_REAL c = decay_rate * cache[k] + keep * (g * g);
        cache[k] = c;
        w[k] -= lr * g / (FFC_SQRT(c) + eps);
    )
}

/*
 * Adam (Kingma & Ba, ICLR 2015), step t already incremented by the caller:
 *   m = b1 * m + keep1 * g;  v = b2 * v + keep2 * g**2      (keep_i = 1 - b_i)
 *   w -= (lr * (m / bc1)) / (sqrt(v / bc2) + eps),  bc1 = 1 - b1**t, bc2 = 1 - b2**t
 * The bias corrections divide (as the reference does) rather than multiply by a
 * reciprocal, which would round differently.
 */
static FFC_HOT void FFC_SUF(ffc_adam)(FFC_REAL *FFC_RESTRICT w, const FFC_REAL *FFC_RESTRICT dw,
                                     FFC_REAL *FFC_RESTRICT m, FFC_REAL *FFC_RESTRICT v,
                                     ptrdiff_t size, FFC_REAL lr, FFC_REAL beta1,
                                     FFC_REAL keep1, FFC_REAL beta2, FFC_REAL keep2,
                                     FFC_REAL eps, FFC_REAL reg,
                                     FFC_REAL bc1, FFC_REAL bc2, ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(
        FFC_REAL g = dw[k] + reg * w[k];
        FFC_REAL mk = beta1 * m[k] + keep1 * g;
        FFC_REAL vk = beta2 * v[k] + keep2 * (g * g);
        m[k] = mk;
        v[k] = vk;
        w[k] -= lr * (mk / bc1) / (FFC_SQRT(vk / bc2) + eps);
    )
}

/*
 * AdamW (Loshchilov & Hutter, ICLR 2019): Adam with decoupled weight decay, in the
 * order torch.optim.AdamW applies it -- first w *= shrink (shrink = 1 - lr * wd, formed
 * and rounded by the caller), then the Adam step above on the shrunk w.  The moments
 * see g = dw + reg * w at the weights the gradient was computed with; with wd = 0,
 * shrink is exactly 1 and the result is Adam's bit for bit.
 */
static FFC_HOT void FFC_SUF(ffc_adamw)(FFC_REAL *FFC_RESTRICT w, const FFC_REAL *FFC_RESTRICT dw,
                                      FFC_REAL *FFC_RESTRICT m, FFC_REAL *FFC_RESTRICT v,
                                      ptrdiff_t size, FFC_REAL lr, FFC_REAL beta1,
                                      FFC_REAL keep1, FFC_REAL beta2, FFC_REAL keep2,
                                      FFC_REAL eps, FFC_REAL reg, FFC_REAL bc1,
                                      FFC_REAL bc2, FFC_REAL shrink,
                                      ffc_update_stats *stats)
{
    FFC_NO_CONTRACT
    FFC_UPDATE_LOOP(
        FFC_REAL g = dw[k] + reg * w[k];
        FFC_REAL mk = beta1 * m[k] + keep1 * g;
        FFC_REAL vk = beta2 * v[k] + keep2 * (g * g);
        FFC_REAL wk = w[k] * shrink;
        m[k] = mk;
        v[k] = vk;
        w[k] = wk - lr * (mk / bc1) / (FFC_SQRT(vk / bc2) + eps);
    )
}

/*
 * The running (exponential moving) average of weights: avg = decay * avg + keep * w
 * (keep = 1 - decay, formed in double and rounded once by the caller), one pass.
 */
static FFC_HOT void FFC_SUF(ffc_ema)(FFC_REAL *FFC_RESTRICT avg, const FFC_REAL *FFC_RESTRICT w,
                                    ptrdiff_t size, FFC_REAL decay, FFC_REAL keep)
{
    FFC_NO_CONTRACT
    for (ptrdiff_t k = 0; k < size; ++k)
        avg[k] = decay * avg[k] + keep * w[k];
}

#undef FFC_UPDATE_LOOP
#undef FFC_NO_CONTRACT
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif /* FFC_REAL */
