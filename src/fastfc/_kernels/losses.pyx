"""Softmax cross-entropy and multiclass SVM, one pass per row, no temporaries."""
from libc.stdint cimport intptr_t

from fastfc._kernels._losses_loops cimport *


cdef double softmax_xent(const floating* scores, const intptr_t* y, Py_ssize_t n,
                         Py_ssize_t c, floating* dscores) noexcept nogil:
    """loss = -log softmax(scores)[arange(n), y].mean(); dscores = (p - onehot) / n"""
    if floating is float:
        return ffc_softmax_xent_s(scores, y, n, c, dscores)
    else:
        return ffc_softmax_xent_d(scores, y, n, c, dscores)


cdef double svm_hinge(const floating* scores, const intptr_t* y, Py_ssize_t n,
                      Py_ssize_t c, floating* dscores) noexcept nogil:
    """loss = max(0, s - s[y] + 1) summed over j != y, mean over rows; its gradient"""
    if floating is float:
        return ffc_svm_s(scores, y, n, c, dscores)
    else:
        return ffc_svm_d(scores, y, n, c, dscores)


cdef void softmax_rows(const floating* scores, Py_ssize_t n, Py_ssize_t c,
                       floating* probs) noexcept nogil:
    """probs = softmax(scores, axis=1)"""
    if floating is float:
        ffc_softmax_rows_s(scores, n, c, probs)
    else:
        ffc_softmax_rows_d(scores, n, c, probs)


# ----------------------------------------------------------------- def twins

def _softmax_loss(const floating[:, ::1] scores, const intptr_t[::1] y,
                  floating[:, ::1] dscores):
    """Softmax cross-entropy; writes dscores, returns the mean loss."""
    cdef double loss
    with nogil:
        loss = softmax_xent(&scores[0, 0], &y[0], scores.shape[0], scores.shape[1],
                            &dscores[0, 0])
    return loss


def _svm_loss(const floating[:, ::1] scores, const intptr_t[::1] y,
              floating[:, ::1] dscores):
    """Multiclass hinge loss; writes dscores, returns the mean loss."""
    cdef double loss
    with nogil:
        loss = svm_hinge(&scores[0, 0], &y[0], scores.shape[0], scores.shape[1],
                         &dscores[0, 0])
    return loss


def _softmax(const floating[:, ::1] scores, floating[:, ::1] probs):
    """probs = softmax(scores, axis=1)"""
    with nogil:
        softmax_rows(&scores[0, 0], scores.shape[0], scores.shape[1], &probs[0, 0])
