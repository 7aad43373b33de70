/*
 * augment_loops.h -- the loop behind fastfc/_kernels/augment.pyx: gather minibatch rows
 * by index while flipping, translating (zero, reflect or edge padding) and cutting out a
 * square of each image, cast to the buffer's type.
 * Two sources per target type: float data (_f) and double data (_d).
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_AUGMENT_LOOPS_H
#define FASTFC_AUGMENT_LOOPS_H

#include "loops_common.h"

/* padding modes of the translation (fastfc.augment.PAD_MODES keeps the same numbers) */
#define FFC_PAD_ZERO 0
#define FFC_PAD_REFLECT 1
#define FFC_PAD_EDGE 2

/*
 * Where coordinate j of a padded axis of length n reads from: j itself inside [0, n);
 * outside, -1 (zero padding), the nearest end (edge) or the mirror image about the end
 * pixels without repeating them (reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...),
 * repeated as often as needed -- numpy.pad's 'constant', 'edge' and 'reflect'.
 */
static inline ptrdiff_t ffc_pad_index(ptrdiff_t j, ptrdiff_t n, int mode)
{
    if (j >= 0 && j < n) return j;
    if (mode == FFC_PAD_EDGE) return j < 0 ? 0 : n - 1;
    if (mode == FFC_PAD_REFLECT) {
        if (n == 1) return 0;
        const ptrdiff_t period = 2 * (n - 1);
        ptrdiff_t m = j % period;
        if (m < 0) m += period;
        return m < n ? m : period - m;
    }
    return -1;
}

#define FFC_TEMPLATE "augment_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_AUGMENT_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/*
 * Minibatch gather with augmentation, images stored channel-first (c, h, w) per row:
 * flip left-right (when flip[i]), translate by (dy[i], dx[i]) reading the padded image
 * (pad_mode: zero, reflect or edge), then, when cut_y is not NULL and cutout > 0, zero
 * the cutout x cutout square whose top-left corner is (cut_y[i] - cutout/2,
 * cut_x[i] - cutout/2), clipped at the borders, in every channel:
 *   img = x[idx[i]][:, :, ::-1] if flip[i] else x[idx[i]]
 *   out[i, ch, r, q] = pad(img)[ch, r - dy[i], q - dx[i]]
 *   out[i, :, y0:y1, x0:x1] = 0
 * In every row the columns whose source lies inside the image, [max(0, dx), min(w, w + dx)),
 * are a straight (or, flipped, reversed) copy; only the |dx| others go through
 * ffc_pad_index.
 */
#define FFC_AUGMENT_BODY(SRC_T)                                                          \
    const ptrdiff_t plane = h * w, row = c * plane;                                      \
    const int cut = cut_y != NULL && cut_x != NULL && cutout > 0;                        \
    for (ptrdiff_t i = 0; i < n; ++i) {                                                  \
        const SRC_T *src = x + (ptrdiff_t)idx[i] * row;                                  \
        FFC_REAL *dst = out + i * row;                                                   \
        const ptrdiff_t sy = shift_y[i], sx = shift_x[i];                                \
        const int fl = flip[i] != 0;                                                     \
        const ptrdiff_t qlo = sx > 0 ? (sx < w ? sx : w) : 0;                            \
        const ptrdiff_t qhi = sx < 0 ? (w + sx > 0 ? w + sx : 0) : w;                    \
        ptrdiff_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;                                        \
        if (cut) {                                                                       \
            y0 = (ptrdiff_t)cut_y[i] - cutout / 2; y1 = y0 + cutout;                     \
            x0 = (ptrdiff_t)cut_x[i] - cutout / 2; x1 = x0 + cutout;                     \
            if (y0 < 0) y0 = 0;                                                          \
            if (y1 > h) y1 = h;                                                          \
            if (x0 < 0) x0 = 0;                                                          \
            if (x1 > w) x1 = w;                                                          \
            if (x1 < x0) x1 = x0;                                                        \
        }                                                                                \
        for (ptrdiff_t ch = 0; ch < c; ++ch) {                                           \
            for (ptrdiff_t r = 0; r < h; ++r) {                                          \
                FFC_REAL *drow = dst + ch * plane + r * w;                               \
                const ptrdiff_t rs = ffc_pad_index(r - sy, h, pad_mode);                 \
                if (rs < 0) {                                                            \
                    for (ptrdiff_t q = 0; q < w; ++q) drow[q] = 0;                       \
                    continue;                                                            \
                }                                                                        \
                const SRC_T *srow = src + ch * plane + rs * w;                           \
                for (ptrdiff_t q = 0; q < qlo; ++q) {                                    \
                    ptrdiff_t qs = ffc_pad_index(q - sx, w, pad_mode);                   \
                    if (fl && qs >= 0) qs = w - 1 - qs;                                  \
                    drow[q] = qs >= 0 ? (FFC_REAL)srow[qs] : (FFC_REAL)0;                \
                }                                                                        \
                if (!fl) {                                                               \
                    for (ptrdiff_t q = qlo; q < qhi; ++q)                                \
                        drow[q] = (FFC_REAL)srow[q - sx];                                \
                } else {                                                                 \
                    for (ptrdiff_t q = qlo; q < qhi; ++q)                                \
                        drow[q] = (FFC_REAL)srow[(w - 1 + sx) - q];                      \
                }                                                                        \
                for (ptrdiff_t q = qhi; q < w; ++q) {                                    \
                    ptrdiff_t qs = ffc_pad_index(q - sx, w, pad_mode);                   \
                    if (fl && qs >= 0) qs = w - 1 - qs;                                  \
                    drow[q] = qs >= 0 ? (FFC_REAL)srow[qs] : (FFC_REAL)0;                \
                }                                                                        \
                if (r >= y0 && r < y1)                                                   \
                    for (ptrdiff_t q = x0; q < x1; ++q) drow[q] = 0;                     \
            }                                                                            \
        }                                                                                \
    }

static FFC_HOT void FFC_SUF(ffc_augment_f)(const float *FFC_RESTRICT x, const intptr_t *idx,
                                          const uint8_t *flip, const int32_t *shift_y,
                                          const int32_t *shift_x, const int32_t *cut_y,
                                          const int32_t *cut_x, ptrdiff_t n, ptrdiff_t c,
                                          ptrdiff_t h, ptrdiff_t w, int pad_mode,
                                          ptrdiff_t cutout, FFC_REAL *FFC_RESTRICT out)
{
    FFC_AUGMENT_BODY(float)
}

static FFC_HOT void FFC_SUF(ffc_augment_d)(const double *FFC_RESTRICT x, const intptr_t *idx,
                                          const uint8_t *flip, const int32_t *shift_y,
                                          const int32_t *shift_x, const int32_t *cut_y,
                                          const int32_t *cut_x, ptrdiff_t n, ptrdiff_t c,
                                          ptrdiff_t h, ptrdiff_t w, int pad_mode,
                                          ptrdiff_t cutout, FFC_REAL *FFC_RESTRICT out)
{
    FFC_AUGMENT_BODY(double)
}
#undef FFC_AUGMENT_BODY

#endif /* FFC_REAL */
