/*
 * dense_loops.h -- the elementwise loops of the affine layers (fastfc/_kernels/dense.pyx):
 * bias rows, column sums, activations forward and backward, dropout scaling.
 * The matrix products themselves are BLAS calls (blas.pyx).  The fused training step
 * (net.pyx) includes this header too.
 *
 * Above each loop, a NumPy expression gives what it computes.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_DENSE_LOOPS_H
#define FASTFC_DENSE_LOOPS_H

#include "loops_common.h"

/* Activation codes: the `code` of each row of fastfc._registry.ALL_ACTIVATIONS (also
 * fastfc._kernels.dense.ACT_CODES; tests/test_registry.py checks they agree). */
enum {
    FFC_ACT_IDENTITY = 0,
    FFC_ACT_RELU = 1,
    FFC_ACT_LEAKY_RELU = 2,
    FFC_ACT_SIGMOID = 3,
    FFC_ACT_TANH = 4,
    FFC_ACT_SWISH = 5
};

#define FFC_TEMPLATE "dense_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

/* ------------------------------------------------------------------ bf16 copies */

/*
 * The loops of a bf16 step (net.pyx) that also write a bfloat16 copy of their float32
 * output, the operand of the next products: each block of the output is rounded
 * (ffc_bf16_of) right after the loop wrote it, while it is in L1 -- a row of an
 * activation, FFC_R16_CHUNK values of a flat loop.  The float32 output is the same as
 * the plain loop's; r16 has the output's layout.
 */
#define FFC_R16_CHUNK 2048

static FFC_HOT void ffc_bf16_copy(const float *FFC_RESTRICT x, uint16_t *FFC_RESTRICT r16,
                                  ptrdiff_t count)
{
    for (ptrdiff_t k = 0; k < count; ++k) r16[k] = ffc_bf16_of(x[k]);
}

/* ffc_bias_act_inplace_s, and r16 = bf16(a) */
static inline void ffc_bias_act_r16(int kind, float *a, const float *b, ptrdiff_t n,
                                    ptrdiff_t d, float alpha, uint16_t *r16)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        ffc_bias_act_inplace_s(kind, a + i * d, b, 1, d, alpha);
        ffc_bf16_copy(a + i * d, r16 + i * d, d);
    }
}

/* ffc_bias_swish_s, and r16 = bf16(out) */
static inline void ffc_bias_swish_r16(float *z, const float *b, float *out, ptrdiff_t n,
                                      ptrdiff_t d, uint16_t *r16)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        ffc_bias_swish_s(z + i * d, b, out + i * d, 1, d);
        ffc_bf16_copy(out + i * d, r16 + i * d, d);
    }
}

/* ffc_act_backward_s, and r16 = bf16(dout) */
static inline void ffc_act_backward_r16(int kind, const float *z, const float *y,
                                        float *dout, ptrdiff_t size, float alpha,
                                        uint16_t *r16)
{
    for (ptrdiff_t k = 0; k < size; k += FFC_R16_CHUNK) {
        ptrdiff_t c = size - k < FFC_R16_CHUNK ? size - k : FFC_R16_CHUNK;
        ffc_act_backward_s(kind, z != NULL ? z + k : NULL, y + k, dout + k, c, alpha);
        ffc_bf16_copy(dout + k, r16 + k, c);
    }
}

/* ffc_dropout_apply_s, and r16 = bf16(out) */
static inline void ffc_dropout_apply_r16(const float *x, const uint8_t *mask, float scale,
                                         float *out, ptrdiff_t size, uint16_t *r16)
{
    for (ptrdiff_t k = 0; k < size; k += FFC_R16_CHUNK) {
        ptrdiff_t c = size - k < FFC_R16_CHUNK ? size - k : FFC_R16_CHUNK;
        ffc_dropout_apply_s(x + k, mask + k, scale, out + k, c);
        ffc_bf16_copy(out + k, r16 + k, c);
    }
}

#endif /* FASTFC_DENSE_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/* ------------------------------------------------------------------ bias and rows */

/* out[i, :] = b */
static FFC_HOT void FFC_SUF(ffc_fill_rows)(FFC_REAL *FFC_RESTRICT out,
                                          const FFC_REAL *FFC_RESTRICT b,
                                          ptrdiff_t n, ptrdiff_t d)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        FFC_REAL *row = out + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) row[j] = b[j];
    }
}

/* s = a.sum(axis=0)   (a of shape (n, d)) */
static FFC_HOT void FFC_SUF(ffc_col_sum)(const FFC_REAL *FFC_RESTRICT a,
                                        ptrdiff_t n, ptrdiff_t d,
                                        FFC_REAL *FFC_RESTRICT s)
{
    for (ptrdiff_t j = 0; j < d; ++j) s[j] = 0;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = a + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) s[j] += row[j];
    }
}

/* (a ** 2).sum(), accumulated in double */
static FFC_HOT double FFC_SUF(ffc_sum_sq)(const FFC_REAL *FFC_RESTRICT a, ptrdiff_t size)
{
    double acc = 0.0;
    ptrdiff_t bad = 0;   /* unused; FFC_PRAGMA_SIMD_REDUCE names both accumulators */
    FFC_PRAGMA_SIMD_REDUCE
    for (ptrdiff_t k = 0; k < size; ++k) acc += (double)a[k] * (double)a[k];
    (void)bad;
    return acc;
}

/* number of elements of a that are NaN or infinite */
/* ------------------------------------------------------------------ activations */

/* One element of each activation; `alpha` is the leaky-ReLU slope. */
static inline FFC_REAL FFC_SUF(ffc_sigmoid1)(FFC_REAL v)
{
    return (FFC_REAL)1 / ((FFC_REAL)1 + FFC_EXP(-v));
}

/* a = f(a + b) in place; b may be NULL (no bias).  Not for swish: see ffc_bias_swish. */
static FFC_HOT void FFC_SUF(ffc_bias_act_inplace)(int kind, FFC_REAL *FFC_RESTRICT a,
                                                 const FFC_REAL *FFC_RESTRICT b,
                                                 ptrdiff_t n, ptrdiff_t d, FFC_REAL alpha)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        FFC_REAL *row = a + i * d;
        if (b != NULL) {
            for (ptrdiff_t j = 0; j < d; ++j) row[j] += b[j];
        }
        switch (kind) {
        case FFC_ACT_RELU:
            /* np.maximum(0, a): NaN stays NaN */
            for (ptrdiff_t j = 0; j < d; ++j) row[j] = row[j] < 0 ? (FFC_REAL)0 : row[j];
            break;
        case FFC_ACT_LEAKY_RELU:
            /* np.where(a > 0, a, alpha * a) */
            for (ptrdiff_t j = 0; j < d; ++j) row[j] = row[j] < 0 ? alpha * row[j] : row[j];
            break;
        case FFC_ACT_SIGMOID:
            /* 1 / (1 + np.exp(-a)) */
            for (ptrdiff_t j = 0; j < d; ++j) row[j] = FFC_SUF(ffc_sigmoid1)(row[j]);
            break;
        case FFC_ACT_TANH:
            for (ptrdiff_t j = 0; j < d; ++j) row[j] = FFC_TANH(row[j]);
            break;
        default: /* identity */
            break;
        }
    }
}

/* z = z + b (b may be NULL); out = z * sigmoid(z).  z is kept for the backward pass. */
static FFC_HOT void FFC_SUF(ffc_bias_swish)(FFC_REAL *FFC_RESTRICT z,
                                           const FFC_REAL *FFC_RESTRICT b,
                                           FFC_REAL *FFC_RESTRICT out,
                                           ptrdiff_t n, ptrdiff_t d)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        FFC_REAL *zr = z + i * d;
        FFC_REAL *orow = out + i * d;
        if (b != NULL) {
            for (ptrdiff_t j = 0; j < d; ++j) zr[j] += b[j];
        }
        for (ptrdiff_t j = 0; j < d; ++j) orow[j] = zr[j] * FFC_SUF(ffc_sigmoid1)(zr[j]);
    }
}

/*
 * dout = dout * f'(z) in place, written with the forward output y = f(z) where it can be:
 *   relu:       dout * (y > 0)
 *   leaky_relu: dout * where(y > 0, 1, alpha)          (alpha >= 0, so y > 0 iff z > 0)
 *   sigmoid:    dout * y * (1 - y)
 *   tanh:       dout * (1 - y**2)
 *   swish:      dout * (y + s * (1 - y)),  s = sigmoid(z)
 * z is only read for swish and may be NULL otherwise.
 */
static FFC_HOT void FFC_SUF(ffc_act_backward)(int kind, const FFC_REAL *FFC_RESTRICT z,
                                             const FFC_REAL *FFC_RESTRICT y,
                                             FFC_REAL *FFC_RESTRICT dout,
                                             ptrdiff_t size, FFC_REAL alpha)
{
    ptrdiff_t k;
    switch (kind) {
    case FFC_ACT_RELU:
        for (k = 0; k < size; ++k) dout[k] = y[k] > 0 ? dout[k] : (FFC_REAL)0;
        break;
    case FFC_ACT_LEAKY_RELU:
        for (k = 0; k < size; ++k) dout[k] = y[k] > 0 ? dout[k] : alpha * dout[k];
        break;
    case FFC_ACT_SIGMOID:
        for (k = 0; k < size; ++k) dout[k] *= y[k] * ((FFC_REAL)1 - y[k]);
        break;
    case FFC_ACT_TANH:
        for (k = 0; k < size; ++k) dout[k] *= (FFC_REAL)1 - y[k] * y[k];
        break;
    case FFC_ACT_SWISH:
        for (k = 0; k < size; ++k) {
            FFC_REAL s = FFC_SUF(ffc_sigmoid1)(z[k]);
            dout[k] *= y[k] + s * ((FFC_REAL)1 - y[k]);
        }
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ dropout */

/* out = x * mask * scale   (mask of 0/1 bytes, scale = 1 / p); out may be x */
static FFC_HOT void FFC_SUF(ffc_dropout_apply)(const FFC_REAL *x, const uint8_t *FFC_RESTRICT mask,
                                              FFC_REAL scale, FFC_REAL *out, ptrdiff_t size)
{
    for (ptrdiff_t k = 0; k < size; ++k) out[k] = mask[k] ? x[k] * scale : (FFC_REAL)0;
}

#endif /* FFC_REAL */
