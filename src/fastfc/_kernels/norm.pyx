"""Batch normalisation (per column) and layer normalisation (per row).

Forward passes keep ``xhat`` (the normalised input) and ``inv_std`` for the backward
pass, which uses the closed form of the gradient (one pass for the column sums, one for
dx).  The formulas are written out in csrc/norm_loops.h.
"""
from fastfc._kernels._norm_loops cimport *


cdef void bn_forward_train(const floating* x, Py_ssize_t n, Py_ssize_t d,
                           const floating* gamma, const floating* beta,
                           floating eps, floating momentum,
                           floating* running_mean, floating* running_var,
                           floating* out, floating* xhat, floating* mean,
                           floating* var, floating* inv_std) noexcept nogil:
    """out = gamma * (x - mean) / sqrt(var + eps) + beta with batch stats; updates running stats"""
    if floating is float:
        ffc_bn_forward_train_s(x, n, d, gamma, beta, eps, momentum, running_mean,
                               running_var, out, xhat, mean, var, inv_std)
    else:
        ffc_bn_forward_train_d(x, n, d, gamma, beta, eps, momentum, running_mean,
                               running_var, out, xhat, mean, var, inv_std)


cdef void bn_forward_test(const floating* x, Py_ssize_t n, Py_ssize_t d,
                          const floating* gamma, const floating* beta, floating eps,
                          const floating* running_mean, const floating* running_var,
                          floating* out, floating* xhat, floating* inv_std) noexcept nogil:
    """out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta"""
    if floating is float:
        ffc_bn_forward_test_s(x, n, d, gamma, beta, eps, running_mean, running_var,
                              out, xhat, inv_std)
    else:
        ffc_bn_forward_test_d(x, n, d, gamma, beta, eps, running_mean, running_var,
                              out, xhat, inv_std)


cdef void bn_backward(const floating* dout, const floating* xhat, Py_ssize_t n,
                      Py_ssize_t d, const floating* gamma, const floating* inv_std,
                      floating* dx, floating* dgamma, floating* dbeta) noexcept nogil:
    """dx = gamma * inv_std / n * (n * dout - dbeta - xhat * dgamma)"""
    if floating is float:
        ffc_bn_backward_s(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)
    else:
        ffc_bn_backward_d(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)


cdef void bn_backward_fixed(const floating* dout, const floating* xhat, Py_ssize_t n,
                            Py_ssize_t d, const floating* gamma, const floating* inv_std,
                            floating* dx, floating* dgamma, floating* dbeta) noexcept nogil:
    """dx = dout * gamma * inv_std (statistics held fixed, as in test mode)"""
    if floating is float:
        ffc_bn_backward_fixed_s(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)
    else:
        ffc_bn_backward_fixed_d(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)


cdef void ln_forward(const floating* x, Py_ssize_t n, Py_ssize_t d,
                     const floating* gamma, const floating* beta, floating eps,
                     floating* out, floating* xhat, floating* mean,
                     floating* inv_std) noexcept nogil:
    """out = gamma * (x - x.mean(1)) / sqrt(x.var(1) + eps) + beta"""
    if floating is float:
        ffc_ln_forward_s(x, n, d, gamma, beta, eps, out, xhat, mean, inv_std)
    else:
        ffc_ln_forward_d(x, n, d, gamma, beta, eps, out, xhat, mean, inv_std)


cdef void ln_backward(const floating* dout, const floating* xhat, Py_ssize_t n,
                      Py_ssize_t d, const floating* gamma, const floating* inv_std,
                      floating* dx, floating* dgamma, floating* dbeta) noexcept nogil:
    """dx = inv_std / d * (d * g - g.sum(1) - xhat * (g * xhat).sum(1)), g = dout * gamma"""
    if floating is float:
        ffc_ln_backward_s(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)
    else:
        ffc_ln_backward_d(dout, xhat, n, d, gamma, inv_std, dx, dgamma, dbeta)


# ----------------------------------------------------------------- def twins

def _bn_forward_train(const floating[:, ::1] x, const floating[::1] gamma,
                      const floating[::1] beta, floating eps, floating momentum,
                      floating[::1] running_mean, floating[::1] running_var,
                      floating[:, ::1] out, floating[:, ::1] xhat, floating[::1] mean,
                      floating[::1] var, floating[::1] inv_std):
    """Batch norm in training mode; running stats may be None (not updated)."""
    cdef floating* rm = NULL
    cdef floating* rv = NULL
    if running_mean is not None and running_var is not None:
        rm = &running_mean[0]
        rv = &running_var[0]
    with nogil:
        bn_forward_train(&x[0, 0], x.shape[0], x.shape[1], &gamma[0], &beta[0], eps,
                         momentum, rm, rv, &out[0, 0], &xhat[0, 0], &mean[0], &var[0],
                         &inv_std[0])


def _bn_forward_test(const floating[:, ::1] x, const floating[::1] gamma,
                     const floating[::1] beta, floating eps,
                     const floating[::1] running_mean, const floating[::1] running_var,
                     floating[:, ::1] out, floating[:, ::1] xhat, floating[::1] inv_std):
    """Batch norm in test mode; xhat may be None."""
    cdef floating* xhat_ptr = NULL
    if xhat is not None:
        xhat_ptr = &xhat[0, 0]
    with nogil:
        bn_forward_test(&x[0, 0], x.shape[0], x.shape[1], &gamma[0], &beta[0], eps,
                        &running_mean[0], &running_var[0], &out[0, 0], xhat_ptr,
                        &inv_std[0])


def _bn_backward(const floating[:, ::1] dout, const floating[:, ::1] xhat,
                 const floating[::1] gamma, const floating[::1] inv_std,
                 floating[:, ::1] dx, floating[::1] dgamma, floating[::1] dbeta,
                 bint fixed_stats=False):
    """Batch-norm backward (through the batch statistics unless fixed_stats)."""
    with nogil:
        if fixed_stats:
            bn_backward_fixed(&dout[0, 0], &xhat[0, 0], dout.shape[0], dout.shape[1],
                              &gamma[0], &inv_std[0], &dx[0, 0], &dgamma[0], &dbeta[0])
        else:
            bn_backward(&dout[0, 0], &xhat[0, 0], dout.shape[0], dout.shape[1],
                        &gamma[0], &inv_std[0], &dx[0, 0], &dgamma[0], &dbeta[0])


def _ln_forward(const floating[:, ::1] x, const floating[::1] gamma,
                const floating[::1] beta, floating eps, floating[:, ::1] out,
                floating[:, ::1] xhat, floating[::1] mean, floating[::1] inv_std):
    """Layer norm forward."""
    with nogil:
        ln_forward(&x[0, 0], x.shape[0], x.shape[1], &gamma[0], &beta[0], eps,
                   &out[0, 0], &xhat[0, 0], &mean[0], &inv_std[0])


def _ln_backward(const floating[:, ::1] dout, const floating[:, ::1] xhat,
                 const floating[::1] gamma, const floating[::1] inv_std,
                 floating[:, ::1] dx, floating[::1] dgamma, floating[::1] dbeta):
    """Layer-norm backward."""
    with nogil:
        ln_backward(&dout[0, 0], &xhat[0, 0], dout.shape[0], dout.shape[1], &gamma[0],
                    &inv_std[0], &dx[0, 0], &dgamma[0], &dbeta[0])
