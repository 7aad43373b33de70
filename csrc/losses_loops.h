/*
 * losses_loops.h -- the losses of fastfc/_kernels/losses.pyx: softmax cross-entropy,
 * plain softmax, multiclass SVM (classification) and mean squared error (regression).
 * Each loss returns its value (in double) and writes the gradient with respect to the
 * scores.
 *
 * Per-sample weights.  Every loss takes an optional weight vector w (NULL: unweighted).
 * With per-sample losses l_i the loss is then the weighted mean
 *     L = sum_i w_i l_i / sum_i w_i,     dL/ds_i = (w_i / sum_i w_i) dl_i/ds_i,
 * which is the plain mean when every w_i is equal.  The caller guarantees w_i >= 0 and
 * sum_i w_i > 0.  With w NULL each loop runs exactly the operations it ran before
 * weights existed (scale 1/n), so unweighted results are bit-for-bit unchanged.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_LOSSES_LOOPS_H
#define FASTFC_LOSSES_LOOPS_H

#include "loops_common.h"

/* sum of the n weights, accumulated in double (the normaliser of a weighted loss) */
static inline double ffc_weight_sum_s(const float *w, ptrdiff_t n)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < n; ++i) total += (double)w[i];
    return total;
}

static inline double ffc_weight_sum_d(const double *w, ptrdiff_t n)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < n; ++i) total += w[i];
    return total;
}

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
 * (weighted: the mean and the 1/n as in the header).  dscores may be the scores buffer
 * itself.  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_softmax_xent)(const FFC_REAL *scores, const intptr_t *y,
                                               const FFC_REAL *w, ptrdiff_t n, ptrdiff_t c,
                                               FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    const double wsum = w != NULL ? FFC_SUF(ffc_weight_sum)(w, n) : (double)n;
    for (ptrdiff_t i = 0; i < n; ++i) {
        /* this row's share of the mean: 1/n, or w_i / sum(w) */
        const FFC_REAL g = w != NULL ? (FFC_REAL)((double)w[i] / wsum) : inv_n;
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
        const double li = (double)FFC_LOG(total) - (double)shifted_y;
        if (w != NULL) loss += (double)w[i] * li;
        else loss += li;
        const FFC_REAL scale = g / total;
        for (ptrdiff_t j = 0; j < c; ++j) drow[j] *= scale;
        drow[y[i]] -= g;
    }
    return loss / wsum;
}

/*
 * Softmax cross-entropy against label-smoothed targets, row by row:
 *   q = (1 - eps) * onehot(y) + eps / c
 *   loss = -(q * log p).sum(1).mean() = (log(total) - (q * shifted).sum(1)).mean()
 *   dscores = (p - q) / n
 * with shifted = s - s.max(1) and total = exp(shifted).sum(1), since q sums to 1
 * (weighted: the mean and the 1/n as in the header).  eps = 0 gives the plain loss,
 * but callers run ffc_softmax_xent then, whose rounding the unsmoothed results keep.
 * dscores may be the scores buffer itself.  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_softmax_xent_smooth)(const FFC_REAL *scores,
                                                      const intptr_t *y, const FFC_REAL *w,
                                                      ptrdiff_t n, ptrdiff_t c, double eps,
                                                      FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    const double wsum = w != NULL ? FFC_SUF(ffc_weight_sum)(w, n) : (double)n;
    const double q_off = eps / (double)c;     /* every class's share of eps */
    const double q_on = 1.0 - eps;            /* the true class's extra share */
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL g = w != NULL ? (FFC_REAL)((double)w[i] / wsum) : inv_n;
        const FFC_REAL *row = scores + i * c;
        FFC_REAL *drow = dscores + i * c;
        FFC_REAL mx = row[0];
        for (ptrdiff_t j = 1; j < c; ++j) mx = row[j] > mx ? row[j] : mx;
        const FFC_REAL shifted_y = row[y[i]] - mx;
        FFC_REAL total = 0;
        double shifted_sum = 0.0;
        for (ptrdiff_t j = 0; j < c; ++j) {
            const FFC_REAL shifted = row[j] - mx;
            FFC_REAL e = FFC_EXP(shifted);
            drow[j] = e;
            total += e;
            shifted_sum += (double)shifted;
        }
        /* -(q * log p).sum() = log(total) - (1 - eps) shifted_y - eps/c sum(shifted) */
        const double li = (double)FFC_LOG(total) - q_on * (double)shifted_y
                          - q_off * shifted_sum;
        if (w != NULL) loss += (double)w[i] * li;
        else loss += li;
        const FFC_REAL scale = g / total;
        const FFC_REAL off = g * (FFC_REAL)q_off;
        for (ptrdiff_t j = 0; j < c; ++j) drow[j] = drow[j] * scale - off;
        drow[y[i]] -= g * (FFC_REAL)q_on;
    }
    return loss / wsum;
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
 * (weighted: the mean and the 1/n as in the header).  dscores may be the scores buffer
 * itself.  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_svm)(const FFC_REAL *scores, const intptr_t *y,
                                      const FFC_REAL *w, ptrdiff_t n, ptrdiff_t c,
                                      FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    const double wsum = w != NULL ? FFC_SUF(ffc_weight_sum)(w, n) : (double)n;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = scores + i * c;
        FFC_REAL *drow = dscores + i * c;
        const ptrdiff_t yi = (ptrdiff_t)y[i];
        const FFC_REAL sy = row[yi];
        const FFC_REAL g = w != NULL ? (FFC_REAL)((double)w[i] / wsum) : inv_n;
        double li = 0.0;
        ptrdiff_t positive = 0;
        for (ptrdiff_t j = 0; j < c; ++j) {
            FFC_REAL margin = row[j] - sy + (FFC_REAL)1;
            if (j != yi && margin > 0) {
                if (w != NULL) li += (double)margin;
                else loss += (double)margin;
                drow[j] = g;
                ++positive;
            } else {
                drow[j] = 0;
            }
        }
        if (w != NULL) loss += (double)w[i] * li;
        drow[yi] = -(FFC_REAL)positive * g;
    }
    return loss / wsum;
}

/*
 * Mean squared error over d outputs, row by row:
 *   loss = 0.5 * ((s - t) ** 2).sum() / n;  dscores = (s - t) / n
 * (weighted: the mean and the 1/n as in the header).  dscores may be the scores buffer
 * itself (not the targets).  Returns the loss.
 */
static FFC_HOT double FFC_SUF(ffc_mse)(const FFC_REAL *scores, const FFC_REAL *t,
                                      const FFC_REAL *w, ptrdiff_t n, ptrdiff_t d,
                                      FFC_REAL *dscores)
{
    double loss = 0.0;
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    const double wsum = w != NULL ? FFC_SUF(ffc_weight_sum)(w, n) : (double)n;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = scores + i * d;
        const FFC_REAL *trow = t + i * d;
        FFC_REAL *drow = dscores + i * d;
        const FFC_REAL g = w != NULL ? (FFC_REAL)((double)w[i] / wsum) : inv_n;
        double li = 0.0;
        for (ptrdiff_t j = 0; j < d; ++j) {
            const FFC_REAL diff = row[j] - trow[j];
            li += (double)diff * (double)diff;
            drow[j] = diff * g;
        }
        loss += w != NULL ? (double)w[i] * li : li;
    }
    return 0.5 * loss / wsum;
}

#endif /* FFC_REAL */
