"""Softmax cross-entropy (optionally against label-smoothed targets), multiclass SVM and
mean squared error, one pass per row, no temporaries.

Every loss takes optional per-sample weights ``w`` (NULL: unweighted); the loss is
then the weighted mean ``sum(w_i * l_i) / sum(w_i)`` and each row's gradient is scaled
by ``w_i / sum(w)`` instead of ``1 / n`` (csrc/losses_loops.h).
"""
from libc.stdint cimport intptr_t

from fastfc._kernels._losses_loops cimport *


cdef double softmax_xent(const floating* scores, const intptr_t* y, const floating* w,
                         Py_ssize_t n, Py_ssize_t c, floating* dscores) noexcept nogil:
    """loss = -log softmax(scores)[arange(n), y].mean(); dscores = (p - onehot) / n"""
    if floating is float:
        return ffc_softmax_xent_s(scores, y, w, n, c, dscores)
    else:
        return ffc_softmax_xent_d(scores, y, w, n, c, dscores)


cdef double softmax_xent_smooth(const floating* scores, const intptr_t* y,
                                const floating* w, Py_ssize_t n, Py_ssize_t c,
                                double label_smoothing, floating* dscores) noexcept nogil:
    """q = (1 - eps) onehot(y) + eps / c; loss = -(q * log p).sum(1).mean();
    dscores = (p - q) / n.  label_smoothing = 0 runs softmax_xent itself (same bits)."""
    if label_smoothing == 0:
        return softmax_xent(scores, y, w, n, c, dscores)
    if floating is float:
        return ffc_softmax_xent_smooth_s(scores, y, w, n, c, label_smoothing, dscores)
    else:
        return ffc_softmax_xent_smooth_d(scores, y, w, n, c, label_smoothing, dscores)


cdef double svm_hinge(const floating* scores, const intptr_t* y, const floating* w,
                      Py_ssize_t n, Py_ssize_t c, floating* dscores) noexcept nogil:
    """loss = max(0, s - s[y] + 1) summed over j != y, mean over rows; its gradient"""
    if floating is float:
        return ffc_svm_s(scores, y, w, n, c, dscores)
    else:
        return ffc_svm_d(scores, y, w, n, c, dscores)


cdef double mse(const floating* scores, const floating* t, const floating* w,
                Py_ssize_t n, Py_ssize_t d, floating* dscores) noexcept nogil:
    """loss = 0.5 * ((scores - t) ** 2).sum(1).mean(); dscores = (scores - t) / n"""
    if floating is float:
        return ffc_mse_s(scores, t, w, n, d, dscores)
    else:
        return ffc_mse_d(scores, t, w, n, d, dscores)


cdef void softmax_rows(const floating* scores, Py_ssize_t n, Py_ssize_t c,
                       floating* probs) noexcept nogil:
    """probs = softmax(scores, axis=1)"""
    if floating is float:
        ffc_softmax_rows_s(scores, n, c, probs)
    else:
        ffc_softmax_rows_d(scores, n, c, probs)


# ----------------------------------------------------------------- def twins
# Shapes are trusted: sample_weight, when given, holds n values >= 0 with a positive sum;
# label_smoothing is in [0, 1).

def _softmax_loss(const floating[:, ::1] scores, const intptr_t[::1] y,
                  floating[:, ::1] dscores, const floating[::1] sample_weight=None,
                  double label_smoothing=0.0):
    """Softmax cross-entropy (against label-smoothed targets when label_smoothing > 0);
    writes dscores, returns the (weighted) mean loss."""
    cdef double loss
    cdef const floating* w = NULL
    if sample_weight is not None:
        w = &sample_weight[0]
    with nogil:
        loss = softmax_xent_smooth(&scores[0, 0], &y[0], w, scores.shape[0],
                                   scores.shape[1], label_smoothing, &dscores[0, 0])
    return loss


def _svm_loss(const floating[:, ::1] scores, const intptr_t[::1] y,
              floating[:, ::1] dscores, const floating[::1] sample_weight=None):
    """Multiclass hinge loss; writes dscores, returns the (weighted) mean loss."""
    cdef double loss
    cdef const floating* w = NULL
    if sample_weight is not None:
        w = &sample_weight[0]
    with nogil:
        loss = svm_hinge(&scores[0, 0], &y[0], w, scores.shape[0], scores.shape[1],
                         &dscores[0, 0])
    return loss


def _mse_loss(const floating[:, ::1] scores, const floating[:, ::1] targets,
              floating[:, ::1] dscores, const floating[::1] sample_weight=None):
    """Half squared error summed over outputs; writes dscores, returns the (weighted)
    mean over rows."""
    cdef double loss
    cdef const floating* w = NULL
    if sample_weight is not None:
        w = &sample_weight[0]
    with nogil:
        loss = mse(&scores[0, 0], &targets[0, 0], w, scores.shape[0], scores.shape[1],
                   &dscores[0, 0])
    return loss


def _softmax(const floating[:, ::1] scores, floating[:, ::1] probs):
    """probs = softmax(scores, axis=1)"""
    with nogil:
        softmax_rows(&scores[0, 0], scores.shape[0], scores.shape[1], &probs[0, 0])
