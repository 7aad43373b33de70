/*
 * norm_loops.h -- batch norm and layer norm, forward and backward
 * (fastfc/_kernels/norm.pyx).  The saved xhat and inv_std of the forward pass are what
 * the backward pass reads.
 */
#ifndef FFC_REAL
/* ---- included by a .pyx: type-independent part, then the loops for float and double */
#ifndef FASTFC_NORM_LOOPS_H
#define FASTFC_NORM_LOOPS_H

#include "loops_common.h"

#define FFC_TEMPLATE "norm_loops.h"
#include "loops_instantiate.h"
#undef FFC_TEMPLATE

#endif /* FASTFC_NORM_LOOPS_H */
#else
/* ---- included by loops_instantiate.h, FFC_REAL = float or double: the loops */

/*
 * Batch norm, training mode (statistics over the n rows of each column):
 *   mean = x.mean(0); var = x.var(0); inv_std = 1 / sqrt(var + eps)
 *   xhat = (x - mean) * inv_std; out = gamma * xhat + beta
 *   running = momentum * running + (1 - momentum) * batch   (skipped when NULL)
 */
static FFC_HOT void FFC_SUF(ffc_bn_forward_train)(
    const FFC_REAL *FFC_RESTRICT x, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT beta,
    FFC_REAL eps, FFC_REAL momentum,
    FFC_REAL *FFC_RESTRICT running_mean, FFC_REAL *FFC_RESTRICT running_var,
    FFC_REAL *FFC_RESTRICT out, FFC_REAL *FFC_RESTRICT xhat,
    FFC_REAL *FFC_RESTRICT mean, FFC_REAL *FFC_RESTRICT var, FFC_REAL *FFC_RESTRICT inv_std)
{
    const FFC_REAL inv_n = (FFC_REAL)1 / (FFC_REAL)n;
    for (ptrdiff_t j = 0; j < d; ++j) mean[j] = 0;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = x + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) mean[j] += row[j];
    }
    for (ptrdiff_t j = 0; j < d; ++j) { mean[j] *= inv_n; var[j] = 0; }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = x + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            FFC_REAL c = row[j] - mean[j];
            var[j] += c * c;
        }
    }
    for (ptrdiff_t j = 0; j < d; ++j) {
        var[j] *= inv_n;
        inv_std[j] = (FFC_REAL)1 / FFC_SQRT(var[j] + eps);
    }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = x + i * d;
        FFC_REAL *hrow = xhat + i * d;
        FFC_REAL *orow = out + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            FFC_REAL h = (row[j] - mean[j]) * inv_std[j];
            hrow[j] = h;
            orow[j] = gamma[j] * h + beta[j];
        }
    }
    if (running_mean != NULL && running_var != NULL) {
        for (ptrdiff_t j = 0; j < d; ++j) {
            running_mean[j] = momentum * running_mean[j] + ((FFC_REAL)1 - momentum) * mean[j];
            running_var[j] = momentum * running_var[j] + ((FFC_REAL)1 - momentum) * var[j];
        }
    }
}

/*
 * Batch norm, test mode: inv_std = 1 / sqrt(running_var + eps);
 *   xhat = (x - running_mean) * inv_std (stored when xhat != NULL); out = gamma * xhat + beta
 */
static FFC_HOT void FFC_SUF(ffc_bn_forward_test)(
    const FFC_REAL *FFC_RESTRICT x, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT beta, FFC_REAL eps,
    const FFC_REAL *FFC_RESTRICT running_mean, const FFC_REAL *FFC_RESTRICT running_var,
    FFC_REAL *FFC_RESTRICT out, FFC_REAL *FFC_RESTRICT xhat, FFC_REAL *FFC_RESTRICT inv_std)
{
    for (ptrdiff_t j = 0; j < d; ++j) inv_std[j] = (FFC_REAL)1 / FFC_SQRT(running_var[j] + eps);
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = x + i * d;
        FFC_REAL *orow = out + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            FFC_REAL h = (row[j] - running_mean[j]) * inv_std[j];
            orow[j] = gamma[j] * h + beta[j];
        }
        if (xhat != NULL) {
            FFC_REAL *hrow = xhat + i * d;
            for (ptrdiff_t j = 0; j < d; ++j) hrow[j] = (row[j] - running_mean[j]) * inv_std[j];
        }
    }
}

/*
 * The parameter gradients of batch norm, either mode: dbeta = dout.sum(0);
 * dgamma = (dout * xhat).sum(0), summed row by row.
 */
static FFC_HOT void FFC_SUF(ffc_bn_param_grads)(
    const FFC_REAL *dout, const FFC_REAL *FFC_RESTRICT xhat, ptrdiff_t n, ptrdiff_t d,
    FFC_REAL *FFC_RESTRICT dgamma, FFC_REAL *FFC_RESTRICT dbeta)
{
    for (ptrdiff_t j = 0; j < d; ++j) { dgamma[j] = 0; dbeta[j] = 0; }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        const FFC_REAL *hrow = xhat + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            dbeta[j] += grow[j];
            dgamma[j] += grow[j] * hrow[j];
        }
    }
}

/*
 * Batch-norm backward through the training-mode statistics (the simplified form):
 *   dbeta = dout.sum(0); dgamma = (dout * xhat).sum(0)
 *   dx = gamma * inv_std / n * (n * dout - dbeta - xhat * dgamma)
 * dx may be dout itself.
 */
static FFC_HOT void FFC_SUF(ffc_bn_backward)(
    const FFC_REAL *dout, const FFC_REAL *FFC_RESTRICT xhat, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT inv_std,
    FFC_REAL *dx, FFC_REAL *FFC_RESTRICT dgamma, FFC_REAL *FFC_RESTRICT dbeta)
{
    FFC_SUF(ffc_bn_param_grads)(dout, xhat, n, d, dgamma, dbeta);
    if (dx == NULL) return;
    const FFC_REAL fn = (FFC_REAL)n;
    const FFC_REAL inv_n = (FFC_REAL)1 / fn;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        const FFC_REAL *hrow = xhat + i * d;
        FFC_REAL *xrow = dx + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            xrow[j] = gamma[j] * inv_std[j] * inv_n
                      * (fn * grow[j] - dbeta[j] - hrow[j] * dgamma[j]);
        }
    }
}

/*
 * Backward of the test-mode (fixed statistics) batch norm, an affine map per column:
 *   dbeta = dout.sum(0); dgamma = (dout * xhat).sum(0); dx = dout * gamma * inv_std
 */
static FFC_HOT void FFC_SUF(ffc_bn_backward_fixed)(
    const FFC_REAL *dout, const FFC_REAL *FFC_RESTRICT xhat, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT inv_std,
    FFC_REAL *dx, FFC_REAL *FFC_RESTRICT dgamma, FFC_REAL *FFC_RESTRICT dbeta)
{
    FFC_SUF(ffc_bn_param_grads)(dout, xhat, n, d, dgamma, dbeta);
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        FFC_REAL *xrow = dx + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) xrow[j] = grow[j] * gamma[j] * inv_std[j];
    }
}

/*
 * Layer norm (statistics over the d columns of each row), same in train and test:
 *   mean = x.mean(1); var = x.var(1); inv_std = 1 / sqrt(var + eps)
 *   xhat = (x - mean[:, None]) * inv_std[:, None]; out = gamma * xhat + beta
 */
static FFC_HOT void FFC_SUF(ffc_ln_forward)(
    const FFC_REAL *FFC_RESTRICT x, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT beta, FFC_REAL eps,
    FFC_REAL *FFC_RESTRICT out, FFC_REAL *FFC_RESTRICT xhat,
    FFC_REAL *FFC_RESTRICT mean, FFC_REAL *FFC_RESTRICT inv_std)
{
    const FFC_REAL inv_d = (FFC_REAL)1 / (FFC_REAL)d;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *row = x + i * d;
        FFC_REAL *hrow = xhat + i * d;
        FFC_REAL *orow = out + i * d;
        FFC_REAL m = 0, v = 0;
        for (ptrdiff_t j = 0; j < d; ++j) m += row[j];
        m *= inv_d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            FFC_REAL c = row[j] - m;
            v += c * c;
        }
        v *= inv_d;
        const FFC_REAL is = (FFC_REAL)1 / FFC_SQRT(v + eps);
        mean[i] = m;
        inv_std[i] = is;
        for (ptrdiff_t j = 0; j < d; ++j) {
            FFC_REAL h = (row[j] - m) * is;
            hrow[j] = h;
            orow[j] = gamma[j] * h + beta[j];
        }
    }
}

/*
 * Layer-norm backward:
 *   dbeta = dout.sum(0); dgamma = (dout * xhat).sum(0); g = dout * gamma
 *   dx = inv_std / d * (d * g - g.sum(1) - xhat * (g * xhat).sum(1))   (per row)
 * dx may be dout itself.
 */
static FFC_HOT void FFC_SUF(ffc_ln_backward)(
    const FFC_REAL *dout, const FFC_REAL *FFC_RESTRICT xhat, ptrdiff_t n, ptrdiff_t d,
    const FFC_REAL *FFC_RESTRICT gamma, const FFC_REAL *FFC_RESTRICT inv_std,
    FFC_REAL *dx, FFC_REAL *FFC_RESTRICT dgamma, FFC_REAL *FFC_RESTRICT dbeta)
{
    const FFC_REAL fd = (FFC_REAL)d;
    for (ptrdiff_t j = 0; j < d; ++j) { dgamma[j] = 0; dbeta[j] = 0; }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        const FFC_REAL *hrow = xhat + i * d;
        FFC_REAL sum_g = 0, sum_gh = 0;
        for (ptrdiff_t j = 0; j < d; ++j) {
            dbeta[j] += grow[j];
            dgamma[j] += grow[j] * hrow[j];
            FFC_REAL g = grow[j] * gamma[j];
            sum_g += g;
            sum_gh += g * hrow[j];
        }
        if (dx == NULL) continue;
        FFC_REAL *xrow = dx + i * d;
        const FFC_REAL scale = inv_std[i] / fd;
        for (ptrdiff_t j = 0; j < d; ++j) {
            xrow[j] = scale * (fd * grow[j] * gamma[j] - sum_g - hrow[j] * sum_gh);
        }
    }
}

#endif /* FFC_REAL */
