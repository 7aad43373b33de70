/*
 * losses_loops.h -- the classifier losses of fastfc/_kernels/losses.pyx: softmax
 * cross-entropy, plain softmax, multiclass SVM.  Each loss returns its value (in double)
 * and writes the gradient with respect to the scores.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_LOSSES_LOOPS_H
#define FASTFC_LOSSES_LOOPS_H

#include "loops_common.h"

#define FFC_TEMPLATE "losses_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_LOSSES_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/*
 * Softmax cross-entropy, row by row, in one pass over the scores:
 *   shifted = s - s.max(1); p = exp(shifted) / exp(shifted).sum(1)
 *   loss = -log(p[arange(n), y]).mean();  dscores = (p - onehot(y)) / n
 * dscores may be the scores buffer itself.  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_softmax_xent)(const FFC_REAL *scores, const intptr_t *y,
                                               ptrdiff_t n, ptrdiff_t c, FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = scores + i * c;
        FFC_REAL *drow = dscores + i * c;
        FFC_REAL mx = row[0];
        for (ptrdiff_t j = 1; j < c; ++j) mx = row[j] > mx ? row[j] : mx;
        const FFC_REAL shifted_y = row[y[i]] - mx;
        FFC_REAL total = 0;
        for (ptrdiff_t j = 0; j < c; ++j) {
            FFC_REAL e = FFC_EXP(row[j] - mx);
            drow[j] = e;
            total += e;
        }
        loss += (double)FFC_LOG(total) - (double)shifted_y;
        const FFC_REAL scale = inv_n / total;
        for (ptrdiff_t j = 0; j < c; ++j) drow[j] *= scale;
        drow[y[i]] -= inv_n;
    }
    return loss / (double)n;
}

/* p = softmax(s, axis=1), max-subtracted; p may be s */
static FFC_HOT void FFC_SUF(ffc_softmax_rows)(const FFC_REAL *scores, ptrdiff_t n, ptrdiff_t c,
                                             FFC_REAL *probs)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = scores + i * c;
        FFC_REAL *prow = probs + i * c;
        FFC_REAL mx = row[0];
        for (ptrdiff_t j = 1; j < c; ++j) mx = row[j] > mx ? row[j] : mx;
        FFC_REAL total = 0;
        for (ptrdiff_t j = 0; j < c; ++j) {
            FFC_REAL e = FFC_EXP(row[j] - mx);
            prow[j] = e;
            total += e;
        }
        const FFC_REAL inv = (FFC_REAL)1 / total;
        for (ptrdiff_t j = 0; j < c; ++j) prow[j] *= inv;
    }
}

/*
 * Multiclass SVM (hinge, margin 1), row by row:
 *   margins = max(0, s - s[y] + 1), margins[y] = 0; loss = margins.sum() / n
 *   dscores = (margins > 0) / n, dscores[y] = -(margins > 0).sum(1) / n
 * dscores may be the scores buffer itself.  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_svm)(const FFC_REAL *scores, const intptr_t *y,
                                      ptrdiff_t n, ptrdiff_t c, FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = scores + i * c;
        FFC_REAL *drow = dscores + i * c;
        const ptrdiff_t yi = (ptrdiff_t)y[i];
        const FFC_REAL sy = row[yi];
        ptrdiff_t positive = 0;
        for (ptrdiff_t j = 0; j < c; ++j) {
            FFC_REAL margin = row[j] - sy + (FFC_REAL)1;
            if (j != yi && margin > 0) {
                loss += (double)margin;
                drow[j] = inv_n;
                ++positive;
            } else {
                drow[j] = 0;
            }
        }
        drow[yi] = -(FFC_REAL)positive * inv_n;
    }
    return loss / (double)n;
}

#endif /* FFC_REAL */
