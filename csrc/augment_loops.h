/*
 * augment_loops.h -- the loop behind fastfc/_kernels/augment.pyx: gather minibatch rows
 * by index while flipping and translating each image, cast to the buffer's type.
 * Two sources per target type: float data (_f) and double data (_d).
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_AUGMENT_LOOPS_H
#define FASTFC_AUGMENT_LOOPS_H

#include "loops_common.h"

#define FFC_TEMPLATE "augment_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_AUGMENT_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/*
 * Minibatch gather with augmentation, images stored channel-first (c, h, w) per row:
 * flip left-right (when flip[i]), then translate by (dy[i], dx[i]) with zero padding:
 *   img = x[idx[i]][:, :, ::-1] if flip[i] else x[idx[i]]
 *   out[i, ch, r, q] = img[ch, r - dy[i], q - dx[i]]   (0 outside the image)
 */
#define FFC_AUGMENT_BODY(SRC_T)                                                          \
    const ptrdiff_t plane = h * w, row = c * plane;                                      \
    for (ptrdiff_t i = 0; i < n; ++i) {                                                  \
        const SRC_T *src = x + (ptrdiff_t)idx[i] * row;                                  \
        FFC_REAL *dst = out + i * row;                                                   \
        const ptrdiff_t sy = shift_y[i], sx = shift_x[i];                                \
        const int fl = flip[i] != 0;                                                     \
        for (ptrdiff_t ch = 0; ch < c; ++ch) {                                           \
            for (ptrdiff_t r = 0; r < h; ++r) {                                          \
                FFC_REAL *drow = dst + ch * plane + r * w;                               \
                const ptrdiff_t rs = r - sy;                                             \
                if (rs < 0 || rs >= h) {                                                 \
                    for (ptrdiff_t q = 0; q < w; ++q) drow[q] = 0;                       \
                    continue;                                                            \
                }                                                                        \
                const SRC_T *srow = src + ch * plane + rs * w;                           \
                if (!fl) {                                                               \
                    for (ptrdiff_t q = 0; q < w; ++q) {                                  \
                        ptrdiff_t qs = q - sx;                                           \
                        drow[q] = (qs >= 0 && qs < w) ? (FFC_REAL)srow[qs] : (FFC_REAL)0;\
                    }                                                                    \
                } else {                                                                 \
                    for (ptrdiff_t q = 0; q < w; ++q) {                                  \
                        ptrdiff_t qs = (w - 1 - q) + sx;                                 \
                        drow[q] = (qs >= 0 && qs < w) ? (FFC_REAL)srow[qs] : (FFC_REAL)0;\
                    }                                                                    \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }

static FFC_HOT void FFC_SUF(ffc_augment_f)(const float *FFC_RESTRICT x, const intptr_t *idx,
                                          const uint8_t *flip, const int32_t *shift_y,
                                          const int32_t *shift_x, ptrdiff_t n, ptrdiff_t c,
                                          ptrdiff_t h, ptrdiff_t w, FFC_REAL *FFC_RESTRICT out)
{
    FFC_AUGMENT_BODY(float)
}

static FFC_HOT void FFC_SUF(ffc_augment_d)(const double *FFC_RESTRICT x, const intptr_t *idx,
                                          const uint8_t *flip, const int32_t *shift_y,
                                          const int32_t *shift_x, ptrdiff_t n, ptrdiff_t c,
                                          ptrdiff_t h, ptrdiff_t w, FFC_REAL *FFC_RESTRICT out)
{
    FFC_AUGMENT_BODY(double)
}
#undef FFC_AUGMENT_BODY

#endif /* FFC_REAL */
