# The C loops of the losses, csrc/losses_loops.h (float: _s, double: _d).
# w: per-sample weights or NULL (unweighted).
from libc.stdint cimport intptr_t

cdef extern from "losses_loops.h" nogil:
    double ffc_softmax_xent_s(const float* scores, const intptr_t* y, const float* w, Py_ssize_t n, Py_ssize_t c, float* dscores)
    double ffc_softmax_xent_d(const double* scores, const intptr_t* y, const double* w, Py_ssize_t n, Py_ssize_t c, double* dscores)
    double ffc_softmax_xent_smooth_s(const float* scores, const intptr_t* y, const float* w, Py_ssize_t n, Py_ssize_t c, double eps, float* dscores)
    double ffc_softmax_xent_smooth_d(const double* scores, const intptr_t* y, const double* w, Py_ssize_t n, Py_ssize_t c, double eps, double* dscores)
    void ffc_softmax_rows_s(const float* scores, Py_ssize_t n, Py_ssize_t c, float* probs)
    void ffc_softmax_rows_d(const double* scores, Py_ssize_t n, Py_ssize_t c, double* probs)
    double ffc_svm_s(const float* scores, const intptr_t* y, const float* w, Py_ssize_t n, Py_ssize_t c, float* dscores)
    double ffc_svm_d(const double* scores, const intptr_t* y, const double* w, Py_ssize_t n, Py_ssize_t c, double* dscores)
    double ffc_mse_s(const float* scores, const float* t, const float* w, Py_ssize_t n, Py_ssize_t d, float* dscores)
    double ffc_mse_d(const double* scores, const double* t, const double* w, Py_ssize_t n, Py_ssize_t d, double* dscores)
