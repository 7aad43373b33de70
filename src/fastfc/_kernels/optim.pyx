"""In-place update loops for sgd, sgd_momentum, sgd_nesterov_momentum, rmsprop and adam.

The equations (g = dw + reg * w):

* sgd:       w -= lr * g
* momentum:  v = mom * v - lr * g;  w += v
* nesterov:  v' = mom * v - lr * g;  w += v' + mom * (v' - v);  v = v'
* rmsprop:   c = dr * c + (1 - dr) * g**2;  w -= lr * g / (sqrt(c) + eps)
* adam:      Kingma & Ba (ICLR 2015): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g**2;
             w -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)
"""
from libc.math cimport pow

from fastfc._kernels._loops cimport *


cdef void sgd_step(floating* w, const floating* dw, Py_ssize_t size,
                   floating lr, floating reg, ffc_update_stats* stats) noexcept nogil:
    """w -= lr * (dw + reg * w)"""
    if floating is float:
        ffc_sgd_s(w, dw, size, lr, reg, stats)
    else:
        ffc_sgd_d(w, dw, size, lr, reg, stats)


cdef void momentum_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        floating lr, floating mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil:
    """v = mom * v - lr * g; w += v"""
    if floating is float:
        ffc_sgd_momentum_s(w, dw, v, size, lr, mom, reg, stats)
    else:
        ffc_sgd_momentum_d(w, dw, v, size, lr, mom, reg, stats)


cdef void nesterov_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        floating lr, floating mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil:
    """v' = mom * v - lr * g; w += v' + mom * (v' - v)"""
    if floating is float:
        ffc_sgd_nesterov_s(w, dw, v, size, lr, mom, reg, stats)
    else:
        ffc_sgd_nesterov_d(w, dw, v, size, lr, mom, reg, stats)


cdef void rmsprop_step(floating* w, const floating* dw, floating* cache, Py_ssize_t size,
                       floating lr, floating decay_rate, floating eps,
                       floating reg, ffc_update_stats* stats) noexcept nogil:
    """c = dr * c + (1 - dr) * g**2; w -= lr * g / (sqrt(c) + eps)"""
    if floating is float:
        ffc_rmsprop_s(w, dw, cache, size, lr, decay_rate, eps, reg, stats)
    else:
        ffc_rmsprop_d(w, dw, cache, size, lr, decay_rate, eps, reg, stats)


cdef void adam_step(floating* w, const floating* dw, floating* m, floating* v,
                    Py_ssize_t size, floating lr, floating beta1, floating beta2,
                    floating eps, floating reg, long long t,
                    ffc_update_stats* stats) noexcept nogil:
    """Adam step number t (t >= 1, already incremented)."""
    # bias corrections in double: 1 - beta**t loses digits for small t in float32
    cdef double bc1 = 1.0 - pow(<double>beta1, <double>t)
    cdef double bc2 = 1.0 - pow(<double>beta2, <double>t)
    if floating is float:
        ffc_adam_s(w, dw, m, v, size, lr, beta1, beta2, eps, reg, <float>bc1, <float>bc2, stats)
    else:
        ffc_adam_d(w, dw, m, v, size, lr, beta1, beta2, eps, reg, bc1, bc2, stats)


# ----------------------------------------------------------------- def twins
# Each twin updates w in place and returns the number of NaN/inf values in the new w
# (counted in the same pass), which the Solver uses as its divergence guard.

def _sgd(floating[::1] w, const floating[::1] dw, floating lr, floating reg=0):
    cdef ffc_update_stats st
    st.sumsq = 0
    st.nonfinite = 0
    with nogil:
        sgd_step(&w[0], &dw[0], w.shape[0], lr, reg, &st)
    return st.nonfinite


def _sgd_momentum(floating[::1] w, const floating[::1] dw, floating[::1] v,
                  floating lr, floating mom, floating reg=0):
    cdef ffc_update_stats st
    st.sumsq = 0
    st.nonfinite = 0
    with nogil:
        momentum_step(&w[0], &dw[0], &v[0], w.shape[0], lr, mom, reg, &st)
    return st.nonfinite


def _sgd_nesterov_momentum(floating[::1] w, const floating[::1] dw, floating[::1] v,
                           floating lr, floating mom, floating reg=0):
    cdef ffc_update_stats st
    st.sumsq = 0
    st.nonfinite = 0
    with nogil:
        nesterov_step(&w[0], &dw[0], &v[0], w.shape[0], lr, mom, reg, &st)
    return st.nonfinite


def _rmsprop(floating[::1] w, const floating[::1] dw, floating[::1] cache,
             floating lr, floating decay_rate, floating eps, floating reg=0):
    cdef ffc_update_stats st
    st.sumsq = 0
    st.nonfinite = 0
    with nogil:
        rmsprop_step(&w[0], &dw[0], &cache[0], w.shape[0], lr, decay_rate, eps, reg, &st)
    return st.nonfinite


def _adam(floating[::1] w, const floating[::1] dw, floating[::1] m, floating[::1] v,
          floating lr, floating beta1, floating beta2, floating eps, long long t,
          floating reg=0):
    cdef ffc_update_stats st
    st.sumsq = 0
    st.nonfinite = 0
    with nogil:
        adam_step(&w[0], &dw[0], &m[0], &v[0], w.shape[0], lr, beta1, beta2, eps,
                  reg, t, &st)
    return st.nonfinite
