"""Affine layers, fused bias + activation, activation backward and dropout.

Activation codes (``ACT_CODES``): identity 0, relu 1, leaky_relu 2, sigmoid 3, tanh 4,
swish 5.  Every ``cdef`` kernel below has a ``def`` twin with a leading underscore that
the tests call; the twins take contiguous memoryviews and trust their shapes.
"""
from libc.stdint cimport uint8_t

from fastfc._kernels.blas cimport gemm
from fastfc._kernels._dense_loops cimport *

ACT_CODES = {
    "identity": FFC_ACT_IDENTITY,
    "relu": FFC_ACT_RELU,
    "leaky_relu": FFC_ACT_LEAKY_RELU,
    "sigmoid": FFC_ACT_SIGMOID,
    "tanh": FFC_ACT_TANH,
    "swish": FFC_ACT_SWISH,
}


cdef void affine_forward(const floating* x, const floating* w, const floating* b,
                         floating* out, int n, int d, int m) noexcept nogil:
    """out = x @ w + b, with x (n, d), w (d, m), b (m,); the bias is folded into GEMM."""
    if floating is float:
        ffc_fill_rows_s(out, b, n, m)
    else:
        ffc_fill_rows_d(out, b, n, m)
    # out = x @ w + out
    gemm(False, False, n, m, d, <floating>1, x, d, w, m, <floating>1, out, m)


cdef inline void _copy(const floating* src, floating* dst, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(size):
        dst[k] = src[k]


cdef void affine_backward(const floating* dout, const floating* x, const floating* w,
                          floating* dx, floating* dw, floating* db,
                          int n, int d, int m) noexcept nogil:
    """dw = x.T @ dout; db = dout.sum(0); dx = dout @ w.T (skipped when dx is NULL)."""
    # dw = x.T @ dout            (d, m) = (d, n) @ (n, m)
    gemm(True, False, d, m, n, <floating>1, x, d, dout, m, <floating>0, dw, m)
    # db = dout.sum(axis=0)
    if floating is float:
        ffc_col_sum_s(dout, n, m, db)
    else:
        ffc_col_sum_d(dout, n, m, db)
    if dx != NULL:
        # dx = dout @ w.T        (n, d) = (n, m) @ (m, d)
        gemm(False, True, n, d, m, <floating>1, dout, m, w, m, <floating>0, dx, d)


cdef void act_backward(int kind, const floating* z, const floating* y, floating* dout,
                       Py_ssize_t size, floating alpha) noexcept nogil:
    """dout *= f'(z), in place, from the forward output y (and z for swish)."""
    if floating is float:
        ffc_act_backward_s(kind, z, y, dout, size, alpha)
    else:
        ffc_act_backward_d(kind, z, y, dout, size, alpha)


# ----------------------------------------------------------------- def twins

def _affine_forward(const floating[:, ::1] x, const floating[:, ::1] w,
                    const floating[::1] b, floating[:, ::1] out):
    """out = x @ w + b"""
    with nogil:
        affine_forward(&x[0, 0], &w[0, 0], &b[0], &out[0, 0],
                       x.shape[0], x.shape[1], w.shape[1])


def _affine_backward(const floating[:, ::1] dout, const floating[:, ::1] x,
                     const floating[:, ::1] w, floating[:, ::1] dx,
                     floating[:, ::1] dw, floating[::1] db):
    """dw = x.T @ dout; db = dout.sum(0); dx = dout @ w.T (dx may be None)."""
    cdef floating* dx_ptr = NULL
    if dx is not None:
        dx_ptr = &dx[0, 0]
    with nogil:
        affine_backward(&dout[0, 0], &x[0, 0], &w[0, 0], dx_ptr, &dw[0, 0], &db[0],
                        x.shape[0], x.shape[1], w.shape[1])


def _bias_act(int kind, floating[:, ::1] z, const floating[::1] b, floating[:, ::1] out,
              floating alpha=0.01):
    """z += b (b may be None); out = f(z).  out may be z except for swish."""
    cdef const floating* b_ptr = NULL
    cdef Py_ssize_t n = z.shape[0], d = z.shape[1]
    if b is not None:
        b_ptr = &b[0]
    with nogil:
        if kind == FFC_ACT_SWISH:
            if floating is float:
                ffc_bias_swish_s(&z[0, 0], b_ptr, &out[0, 0], n, d)
            else:
                ffc_bias_swish_d(&z[0, 0], b_ptr, &out[0, 0], n, d)
        else:
            if floating is float:
                ffc_bias_act_inplace_s(kind, &z[0, 0], b_ptr, n, d, alpha)
            else:
                ffc_bias_act_inplace_d(kind, &z[0, 0], b_ptr, n, d, alpha)
            if &out[0, 0] != &z[0, 0]:
                _copy(&z[0, 0], &out[0, 0], n * d)


def _act_backward(int kind, z, const floating[::1] y, floating[::1] dout,
                  floating alpha=0.01):
    """dout *= f'(z) in place (z is read for swish only and may be None otherwise)."""
    # z is an untyped argument so that None does not steer the fused-type dispatch
    cdef const floating[::1] zv
    cdef const floating* z_ptr = NULL
    if z is not None:
        zv = z
        z_ptr = &zv[0]
    with nogil:
        act_backward(kind, z_ptr, &y[0], &dout[0], y.shape[0], alpha)


def _dropout_apply(const floating[::1] x, const uint8_t[::1] mask, floating scale,
                   floating[::1] out):
    """out = x * mask * scale"""
    with nogil:
        if floating is float:
            ffc_dropout_apply_s(&x[0], &mask[0], scale, &out[0], x.shape[0])
        else:
            ffc_dropout_apply_d(&x[0], &mask[0], scale, &out[0], x.shape[0])


def _sum_sq(const floating[::1] a):
    """(a ** 2).sum() accumulated in double"""
    cdef double r
    with nogil:
        if floating is float:
            r = ffc_sum_sq_s(&a[0], a.shape[0])
        else:
            r = ffc_sum_sq_d(&a[0], a.shape[0])
    return r
