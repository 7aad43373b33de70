/*
 * Template body of fastfc_loops.h: included once with FFC_REAL = float and once with
 * FFC_REAL = double.  Do not include this file directly.
 *
 * A "NumPy twin" comment above each function gives the formula it computes.
 */

/* Activation codes shared with the Cython side (fastfc/_kernels/dense.pxd). */
#ifndef FFC_ACT_CODES
#define FFC_ACT_CODES
enum {
    FFC_ACT_IDENTITY = 0,
    FFC_ACT_RELU = 1,
    FFC_ACT_LEAKY_RELU = 2,
    FFC_ACT_SIGMOID = 3,
    FFC_ACT_TANH = 4,
    FFC_ACT_SWISH = 5
};
#endif

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

/* s = (a * b).sum()   accumulated in double */
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
static FFC_HOT ptrdiff_t FFC_SUF(ffc_count_nonfinite)(const FFC_REAL *FFC_RESTRICT a, ptrdiff_t size)
{
    ptrdiff_t bad = 0;
    for (ptrdiff_t k = 0; k < size; ++k) bad += !(a[k] - a[k] == 0);
    return bad;
}

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

/* ------------------------------------------------------------------ losses */

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

/* ------------------------------------------------------------------ normalisation */

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
    FFC_SUF(ffc_col_sum)(x, n, d, mean);
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
    for (ptrdiff_t j = 0; j < d; ++j) { dgamma[j] = 0; dbeta[j] = 0; }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        const FFC_REAL *hrow = xhat + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            dbeta[j] += grow[j];
            dgamma[j] += grow[j] * hrow[j];
        }
    }
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
    for (ptrdiff_t j = 0; j < d; ++j) { dgamma[j] = 0; dbeta[j] = 0; }
    for (ptrdiff_t i = 0; i < n; ++i) {
        const FFC_REAL *grow = dout + i * d;
        const FFC_REAL *hrow = xhat + i * d;
        FFC_REAL *xrow = dx + i * d;
        for (ptrdiff_t j = 0; j < d; ++j) {
            dbeta[j] += grow[j];
            dgamma[j] += grow[j] * hrow[j];
        }
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

#undef FFC_UPDATE_LOOP
#undef FFC_NO_CONTRACT
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
