"""The compiled kernels' ``def`` twins against NumPy formulas, the BLAS switch, and the
release of the GIL.

Expected values are computed in float64 from the (possibly float32) inputs; float32
results are compared with the float32 tolerances of conftest (absolute tolerances are
scaled by the size of the sums involved where a result can cancel to ~0).
"""
import ctypes
import sys
import threading
import time

import numpy as np
import pytest

from fastfc._kernels import blas, dense, losses, norm
from fastfc._kernels import optim as kopt


def close(actual, expected, tol, scale=1.0):
    """assert_allclose with the dtype tolerance; ``scale`` widens the absolute part."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=tol["rtol"], atol=tol["atol"] * scale)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ================================================================= blas

GEMM_SHAPES = [(1, 1, 1), (5, 1, 3), (1, 4, 6), (3, 4, 1), (7, 5, 3), (6, 8, 11), (2, 9, 4)]


@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("m, n, k", GEMM_SHAPES, ids=lambda v: str(v))
def test_gemm(trans_a, trans_b, m, n, k, dtype, tol):
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a = randn(rng, (k, m) if trans_a else (m, k), dtype)
    b = randn(rng, (n, k) if trans_b else (k, n), dtype)
    op_a = a.T.astype(np.float64) if trans_a else a.astype(np.float64)
    op_b = b.T.astype(np.float64) if trans_b else b.astype(np.float64)

    c = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 must ignore c's old contents
    blas._gemm(a, b, c, trans_a, trans_b)
    assert c.dtype == dtype
    close(c, op_a @ op_b, tol, scale=k)

    c0 = randn(rng, (m, n), dtype)
    c = c0.copy()
    blas._gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, alpha=-0.5, beta=2.0)
    close(c, -0.5 * (op_a @ op_b) + 2.0 * c0.astype(np.float64), tol, scale=k)

    c = c0.copy()
    blas._gemm(a, b, c, trans_a, trans_b, 0.0, 1.0)  # alpha 0, beta 1: c unchanged
    close(c, c0.astype(np.float64), tol)


def test_gemm_inputs_untouched(dtype):
    rng = np.random.default_rng(0)
    a, b = randn(rng, (4, 3), dtype), randn(rng, (3, 5), dtype)
    a0, b0 = a.copy(), b.copy()
    c = np.zeros((4, 5), dtype)
    blas._gemm(a, b, c)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


FUSED = {np.float32: "float", np.float64: "double"}


def _specialised(fn, dtype):
    """The float or double specialisation of a fused def twin."""
    return fn[FUSED[dtype]]


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_axpy(n, dtype, tol):
    """Called as documented, ``_axpy(alpha, x, y)`` with a Python float alpha."""
    rng = np.random.default_rng(n)
    x, y = randn(rng, n, dtype), randn(rng, n, dtype)
    x0 = x.copy()
    y1 = y.copy()
    blas._axpy(0.75, x, y1)
    assert y1.dtype == dtype
    close(y1, y.astype(np.float64) + 0.75 * x.astype(np.float64), tol, scale=2)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_scal(n, dtype, tol):
    """Called as documented, ``_scal(alpha, x)`` with a Python float alpha."""
    rng = np.random.default_rng(n)
    x = randn(rng, n, dtype)
    x1 = x.copy()
    blas._scal(-3.0, x1)
    close(x1, -3.0 * x.astype(np.float64), tol)
    x2 = x.copy()
    blas._scal(0.0, x2)
    np.testing.assert_array_equal(x2, 0)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_axpy_scal_kernels_by_specialisation(n, dtype, tol):
    """The float/double kernels themselves, reached through the fused index."""
    rng = np.random.default_rng(n)
    x, y = randn(rng, n, dtype), randn(rng, n, dtype)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    y1 = y.copy()
    _specialised(blas._axpy, dtype)(0.75, x, y1)
    close(y1, y64 + 0.75 * x64, tol, scale=2)
    x1 = x.copy()
    _specialised(blas._scal, dtype)(-3.0, x1)
    close(x1, -3.0 * x64, tol)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_dot(n, dtype, tol):
    rng = np.random.default_rng(n)
    x, y = randn(rng, n, dtype), randn(rng, n, dtype)
    d = blas._dot(x, y)
    expected = x.astype(np.float64) @ y.astype(np.float64)
    assert d == pytest.approx(expected, rel=tol["rtol"] * 10, abs=tol["atol"] * n)


def test_twins_reject_bad_buffers():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match="dtype mismatch"):
        blas._gemm(a, np.ones((4, 2), np.float32), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        blas._gemm(np.ones((3, 8))[:, ::2], np.ones((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        blas._axpy(1.0, np.ones(10)[::2], np.ones(5))
    with pytest.raises((ValueError, TypeError)):
        blas._dot(np.ones(3, dtype=np.int64), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="contiguous"):
        dense._affine_forward(np.asfortranarray(np.ones((3, 4))), np.ones((4, 2)),
                              np.ones(2), np.zeros((3, 2)))


# ================================================================= dense

@pytest.mark.parametrize("n, d, m", [(1, 1, 1), (1, 5, 3), (4, 1, 2), (6, 7, 1), (8, 5, 9)])
def test_affine_forward(n, d, m, dtype, tol):
    rng = np.random.default_rng(n + d + m)
    x, w, b = randn(rng, (n, d), dtype), randn(rng, (d, m), dtype), randn(rng, m, dtype)
    out = np.full((n, m), np.nan, dtype=dtype)
    dense._affine_forward(x, w, b, out)
    close(out, x.astype(np.float64) @ w.astype(np.float64) + b, tol, scale=d + 1)


@pytest.mark.parametrize("n, d, m", [(1, 1, 1), (1, 5, 3), (4, 1, 2), (6, 7, 1), (8, 5, 9)])
@pytest.mark.parametrize("with_dx", [True, False], ids=["dx", "no_dx"])
def test_affine_backward(n, d, m, with_dx, dtype, tol):
    rng = np.random.default_rng(10 * n + d + m)
    x, w = randn(rng, (n, d), dtype), randn(rng, (d, m), dtype)
    dout = randn(rng, (n, m), dtype)
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, dout))
    dw = np.full((d, m), np.nan, dtype=dtype)
    db = np.full(m, np.nan, dtype=dtype)
    dx = np.full((n, d), np.nan, dtype=dtype) if with_dx else None
    dense._affine_backward(dout, x, w, dx, dw, db)
    close(dw, x64.T @ g64, tol, scale=n)
    close(db, g64.sum(axis=0), tol, scale=n)
    if with_dx:
        close(dx, g64 @ w64.T, tol, scale=m)


def _act(kind, z, alpha=0.01):
    """f(z) in float64."""
    if kind == "identity":
        return z
    if kind == "relu":
        return np.maximum(z, 0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    if kind == "swish":
        return z / (1 + np.exp(-z))
    raise AssertionError(kind)


def _act_grad(kind, z, alpha=0.01):
    """f'(z) in float64, written from z (not from y as the kernel does)."""
    s = 1 / (1 + np.exp(-z))
    return {
        "identity": np.ones_like(z),
        "relu": (z > 0).astype(np.float64),
        "leaky_relu": np.where(z > 0, 1.0, alpha),
        "sigmoid": s * (1 - s),
        "tanh": 1 - np.tanh(z) ** 2,
        "swish": s + z * s * (1 - s),
    }[kind]


def test_act_codes_cover_the_documented_kinds():
    assert dense.ACT_CODES == {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3,
                               "tanh": 4, "swish": 5}


def _pre_activation(rng, shape, dtype):
    """Values away from the ReLU kink (so that float32 rounding of z + b cannot flip it)."""
    z = rng.standard_normal(shape) * 2
    z = np.where(np.abs(z) < 0.05, 0.5, z)
    return z.astype(dtype)


@pytest.mark.parametrize("kind", sorted(dense.ACT_CODES))
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (4, 7)])
def test_bias_act(kind, with_bias, shape, dtype, tol):
    rng = np.random.default_rng(sum(shape))
    code = dense.ACT_CODES[kind]
    z0 = _pre_activation(rng, shape, dtype)
    b = (0.01 * rng.standard_normal(shape[1])).astype(dtype) if with_bias else None
    pre = z0.astype(np.float64) + (b.astype(np.float64) if with_bias else 0.0)
    expected = _act(kind, pre)

    # separate output buffer
    z = z0.copy()
    out = np.full(shape, np.nan, dtype=dtype)
    dense._bias_act(code, z, b, out)
    close(out, expected, tol, scale=2)
    if kind == "swish":
        # swish keeps z + b for the backward pass
        close(z, pre, tol, scale=2)

    # in place (every kind but swish)
    if kind != "swish":
        z = z0.copy()
        dense._bias_act(code, z, b, z)
        close(z, expected, tol, scale=2)


def test_bias_act_leaky_slope(dtype, tol):
    rng = np.random.default_rng(3)
    z0 = _pre_activation(rng, (3, 4), dtype)
    z = z0.copy()
    dense._bias_act(dense.ACT_CODES["leaky_relu"], z, None, z, 0.2)
    close(z, _act("leaky_relu", z0.astype(np.float64), alpha=0.2), tol)
    # the slope is ignored by the other kinds
    z = z0.copy()
    dense._bias_act(dense.ACT_CODES["relu"], z, None, z, 0.2)
    close(z, np.maximum(z0.astype(np.float64), 0), tol)


@pytest.mark.parametrize("kind", sorted(dense.ACT_CODES))
@pytest.mark.parametrize("size", [1, 2, 33])
def test_act_backward(kind, size, dtype, tol):
    rng = np.random.default_rng(size)
    z = _pre_activation(rng, size, dtype)
    z64 = z.astype(np.float64)
    y = _act(kind, z64).astype(dtype)
    dout0 = randn(rng, size, dtype)
    expected = dout0.astype(np.float64) * _act_grad(kind, z64)

    dout = dout0.copy()
    dense._act_backward(dense.ACT_CODES[kind], z, y, dout)
    close(dout, expected, tol, scale=2)

    if kind != "swish":  # z is only read for swish
        dout = dout0.copy()
        dense._act_backward(dense.ACT_CODES[kind], None, y, dout)
        close(dout, expected, tol, scale=2)


def test_act_backward_leaky_slope(dtype, tol):
    rng = np.random.default_rng(4)
    z = _pre_activation(rng, 20, dtype)
    y = _act("leaky_relu", z.astype(np.float64), alpha=0.3).astype(dtype)
    dout0 = randn(rng, 20, dtype)
    dout = dout0.copy()
    dense._act_backward(dense.ACT_CODES["leaky_relu"], None, y, dout, 0.3)
    close(dout, dout0 * np.where(z > 0, 1.0, 0.3), tol)


def test_act_backward_matches_numerical_derivative():
    """Independent of the closed forms: centred differences of the forward kernel."""
    rng = np.random.default_rng(5)
    z = _pre_activation(rng, (1, 25), np.float64)
    h = 1e-6
    for kind, code in dense.ACT_CODES.items():
        fp, fm = z + h, z - h
        op, om = np.empty_like(z), np.empty_like(z)
        dense._bias_act(code, fp, None, op)
        dense._bias_act(code, fm, None, om)
        numeric = (op - om) / (2 * h)
        y = np.empty_like(z)
        zz = z.copy()
        dense._bias_act(code, zz, None, y)
        dout = np.ones(z.size)
        dense._act_backward(code, z.ravel(), y.ravel(), dout)
        np.testing.assert_allclose(dout, numeric.ravel(), rtol=1e-6, atol=1e-8, err_msg=kind)


@pytest.mark.parametrize("size", [1, 5, 64])
def test_dropout_apply(size, dtype, tol):
    rng = np.random.default_rng(size)
    x = randn(rng, size, dtype)
    mask = (rng.random(size) < 0.6).astype(np.uint8)
    out = np.full(size, np.nan, dtype=dtype)
    dense._dropout_apply(x, mask, 1 / 0.6, out)
    close(out, x.astype(np.float64) * mask / 0.6, tol)
    assert np.all(out[mask == 0] == 0)
    # in place
    x2 = x.copy()
    dense._dropout_apply(x2, mask, 2.0, x2)
    close(x2, x.astype(np.float64) * mask * 2.0, tol)


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_sum_sq(size, dtype):
    rng = np.random.default_rng(size)
    a = randn(rng, size, dtype)
    r = dense._sum_sq(a)
    assert isinstance(r, float)
    # accumulated in double: exact up to double rounding even for float32 input
    assert r == pytest.approx(np.sum(a.astype(np.float64) ** 2), rel=1e-12)


# ================================================================= losses

def _softmax64(s):
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def _softmax_ref(scores, y):
    s = scores.astype(np.float64)
    n = s.shape[0]
    shifted = s - s.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()
    d = np.exp(log_probs)
    d[np.arange(n), y] -= 1
    return loss, d / n


def _svm_ref(scores, y):
    s = scores.astype(np.float64)
    n = s.shape[0]
    correct = s[np.arange(n), y][:, None]
    margins = np.maximum(0, s - correct + 1)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    d = (margins > 0).astype(np.float64)
    d[np.arange(n), y] = -d.sum(axis=1)
    return loss, d / n


LOSS_SHAPES = [(1, 1), (1, 4), (6, 1), (7, 5), (50, 10)]


@pytest.mark.parametrize("n, c", LOSS_SHAPES)
@pytest.mark.parametrize("which", ["softmax", "svm"])
@pytest.mark.parametrize("in_place", [False, True], ids=["out", "inplace"])
def test_losses(n, c, which, in_place, dtype, tol):
    rng = np.random.default_rng(n * c)
    scores = (rng.standard_normal((n, c)) * 2).astype(dtype)
    if which == "svm":
        # keep margins away from the hinge so float32 rounding cannot flip one
        m = scores.astype(np.float64)
        scores = np.round(m * 4) / 4 + 0.1 * (np.arange(c) % 2)
        scores = scores.astype(dtype)
    y = rng.integers(0, c, size=n).astype(np.intp)
    kernel = losses._softmax_loss if which == "softmax" else losses._svm_loss
    expected_loss, expected_d = (_softmax_ref if which == "softmax" else _svm_ref)(scores, y)

    if in_place:
        buf = scores.copy()
        loss = kernel(buf, y, buf)
        dscores = buf
    else:
        s0 = scores.copy()
        dscores = np.full((n, c), np.nan, dtype=dtype)
        loss = kernel(scores, y, dscores)
        np.testing.assert_array_equal(scores, s0)
    assert isinstance(loss, float)
    assert loss == pytest.approx(expected_loss, rel=tol["rtol"] * 10, abs=tol["atol"] * 10)
    close(dscores, expected_d, tol)


def test_losses_spec_reference_values():
    """SPEC 4: np.random.seed(231); x = 0.001 randn(50, 10); y = randint(10, size=50)."""
    np.random.seed(231)
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50).astype(np.intp)
    d = np.empty_like(x)
    assert abs(losses._svm_loss(x, y, d) - 8.999602749096233) < 1e-10
    assert abs(losses._softmax_loss(x, y, d) - 2.302545844500738) < 1e-10


def test_softmax_loss_large_scores_are_stable(dtype):
    scores = np.array([[1000.0, 0.0, -1000.0], [-500.0, 500.0, 499.0]], dtype=dtype)
    y = np.array([0, 2], dtype=np.intp)
    d = np.empty_like(scores)
    loss = losses._softmax_loss(scores, y, d)
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    assert loss == pytest.approx((0.0 + (1.0 + np.log1p(np.exp(-1.0)))) / 2, rel=1e-5)


@pytest.mark.parametrize("n, c", LOSS_SHAPES)
def test_softmax_rows(n, c, dtype, tol):
    rng = np.random.default_rng(n + c)
    scores = (rng.standard_normal((n, c)) * 3).astype(dtype)
    probs = np.full((n, c), np.nan, dtype=dtype)
    losses._softmax(scores, probs)
    close(probs.sum(axis=1), np.ones(n), tol, scale=c)
    close(probs, _softmax64(scores.astype(np.float64)), tol)
    assert np.all(probs >= 0)
    # in place, and with huge values
    big = (scores.astype(np.float64) * 1000).astype(dtype)
    losses._softmax(big, big)
    assert np.all(np.isfinite(big))
    close(big.sum(axis=1), np.ones(n), tol, scale=c)


# ================================================================= norm

def _bn_ref(x, gamma, beta, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, xhat, mean, var, inv_std


NORM_SHAPES = [(1, 1), (2, 1), (1, 5), (8, 3), (16, 7)]


@pytest.mark.parametrize("n, d", NORM_SHAPES)
@pytest.mark.parametrize("running", [True, False], ids=["running", "no_running"])
def test_bn_forward_train(n, d, running, dtype, tol):
    rng = np.random.default_rng(n * d)
    x = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    gamma = randn(rng, d, dtype)
    beta = randn(rng, d, dtype)
    eps, momentum = 1e-5, 0.8
    rm0 = randn(rng, d, dtype)
    rv0 = rng.uniform(0.5, 2, d).astype(dtype)
    rm, rv = (rm0.copy(), rv0.copy()) if running else (None, None)
    out, xhat = (np.full((n, d), np.nan, dtype) for _ in range(2))
    mean, var, inv_std = (np.full(d, np.nan, dtype) for _ in range(3))
    norm._bn_forward_train(x, gamma, beta, eps, momentum, rm, rv, out, xhat, mean, var,
                           inv_std)
    e_out, e_xhat, e_mean, e_var, e_inv = _bn_ref(x, gamma.astype(np.float64),
                                                  beta.astype(np.float64), eps)
    scale = max(1.0, float(np.abs(x).max()))
    close(mean, e_mean, tol, scale)
    close(var, e_var, tol, scale**2)
    close(inv_std, e_inv, tol)
    # float32 errors in xhat grow with inv_std when the variance is small
    s = 1.0 if dtype == np.float64 else 10.0 * max(1.0, float(e_inv.max()))
    close(xhat, e_xhat, tol, s * scale)
    close(out, e_out, tol, s * scale * max(1.0, float(np.abs(gamma).max())))
    if running:
        close(rm, momentum * rm0.astype(np.float64) + (1 - momentum) * e_mean, tol, scale)
        close(rv, momentum * rv0.astype(np.float64) + (1 - momentum) * e_var, tol, scale**2)


def test_bn_forward_train_normalises_columns(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 10.0]).astype(dtype)
    d = 3
    out, xhat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = (np.empty(d, dtype) for _ in range(3))
    gamma = np.array([1.0, 2.0, 3.0], dtype)
    beta = np.array([11.0, 12.0, 13.0], dtype)
    norm._bn_forward_train(x, gamma, beta, 1e-5, 0.9, None, None, out, xhat, mean, var,
                           inv_std)
    atol = 1e-4 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(out.mean(axis=0), [11, 12, 13], atol=atol)
    # std is gamma * sqrt(var / (var + eps)): just below gamma
    x64 = x.astype(np.float64)
    expected_std = gamma * np.sqrt(x64.var(axis=0) / (x64.var(axis=0) + 1e-5))
    np.testing.assert_allclose(out.std(axis=0), expected_std, atol=atol, rtol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), [1, 2, 3], rtol=1e-3)


@pytest.mark.parametrize("n, d", NORM_SHAPES)
@pytest.mark.parametrize("with_xhat", [True, False], ids=["xhat", "no_xhat"])
def test_bn_forward_test(n, d, with_xhat, dtype, tol):
    rng = np.random.default_rng(n + d)
    x = randn(rng, (n, d), dtype)
    gamma, beta = randn(rng, d, dtype), randn(rng, d, dtype)
    rm = randn(rng, d, dtype)
    rv = rng.uniform(0.5, 2, d).astype(dtype)
    eps = 1e-3
    out = np.full((n, d), np.nan, dtype)
    xhat = np.full((n, d), np.nan, dtype) if with_xhat else None
    inv_std = np.full(d, np.nan, dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    norm._bn_forward_test(x, gamma, beta, eps, rm, rv, out, xhat, inv_std)
    e_inv = 1 / np.sqrt(rv.astype(np.float64) + eps)
    e_xhat = (x.astype(np.float64) - rm) * e_inv
    close(inv_std, e_inv, tol)
    close(out, gamma.astype(np.float64) * e_xhat + beta, tol, scale=10)
    if with_xhat:
        close(xhat, e_xhat, tol, scale=10)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)


def _bn_backward_ref(dout, xhat, gamma, inv_std):
    """The CS231n closed form (float64)."""
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


@pytest.mark.parametrize("n, d", [(2, 1), (1, 4), (8, 3), (16, 7)])
@pytest.mark.parametrize("fixed", [False, True], ids=["batch_stats", "fixed_stats"])
def test_bn_backward(n, d, fixed, dtype, tol):
    rng = np.random.default_rng(n * 7 + d)
    x = randn(rng, (n, d), dtype)
    gamma = randn(rng, d, dtype)
    out, xhat = np.empty((n, d), dtype), np.empty((n, d), dtype)
    mean, var, inv_std = (np.empty(d, dtype) for _ in range(3))
    norm._bn_forward_train(x, gamma, np.zeros(d, dtype), 1e-5, 0.9, None, None, out, xhat,
                           mean, var, inv_std)
    dout = randn(rng, (n, d), dtype)
    g64, h64 = dout.astype(np.float64), xhat.astype(np.float64)
    gam64, inv64 = gamma.astype(np.float64), inv_std.astype(np.float64)
    dx, dgamma, dbeta = (np.full(s, np.nan, dtype) for s in ((n, d), d, d))
    norm._bn_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, fixed)
    close(dbeta, g64.sum(axis=0), tol, scale=n)
    close(dgamma, (g64 * h64).sum(axis=0), tol, scale=n)
    if fixed:
        expected_dx = g64 * gam64 * inv64
    else:
        expected_dx = _bn_backward_ref(g64, h64, gam64, inv64)[0]
    scale = n * max(1.0, float(np.abs(gam64 * inv64).max()))
    close(dx, expected_dx, tol, scale=scale * (10 if dtype == np.float32 else 1))


def test_bn_backward_in_place_dx_is_dout(dtype, tol):
    """dx may be dout itself (documented in the C loops)."""
    rng = np.random.default_rng(9)
    n, d = 6, 4
    x = randn(rng, (n, d), dtype)
    gamma = randn(rng, d, dtype)
    out, xhat = np.empty((n, d), dtype), np.empty((n, d), dtype)
    mean, var, inv_std = (np.empty(d, dtype) for _ in range(3))
    norm._bn_forward_train(x, gamma, np.zeros(d, dtype), 1e-5, 0.9, None, None, out, xhat,
                           mean, var, inv_std)
    dout = randn(rng, (n, d), dtype)
    ref_dx, dgamma, dbeta = np.empty_like(dout), np.empty(d, dtype), np.empty(d, dtype)
    norm._bn_backward(dout, xhat, gamma, inv_std, ref_dx, dgamma, dbeta)
    for fixed in (False, True):
        buf = dout.copy()
        expected = np.empty_like(dout)
        norm._bn_backward(dout, xhat, gamma, inv_std, expected, dgamma, dbeta, fixed)
        norm._bn_backward(buf, xhat, gamma, inv_std, buf, dgamma, dbeta, fixed)
        close(buf, expected.astype(np.float64), tol)


def test_ln_backward_in_place_dx_is_dout(dtype, tol):
    """dx may be dout itself (documented in the C loops)."""
    rng = np.random.default_rng(10)
    n, d = 5, 6
    x = randn(rng, (n, d), dtype)
    gamma, beta = randn(rng, d, dtype), randn(rng, d, dtype)
    out, xhat = np.empty((n, d), dtype), np.empty((n, d), dtype)
    mean, inv_std = np.empty(n, dtype), np.empty(n, dtype)
    norm._ln_forward(x, gamma, beta, 1e-5, out, xhat, mean, inv_std)
    dout = randn(rng, (n, d), dtype)
    expected, dgamma, dbeta = np.empty_like(dout), np.empty(d, dtype), np.empty(d, dtype)
    norm._ln_backward(dout, xhat, gamma, inv_std, expected, dgamma, dbeta)
    buf = dout.copy()
    dgamma2, dbeta2 = np.empty(d, dtype), np.empty(d, dtype)
    norm._ln_backward(buf, xhat, gamma, inv_std, buf, dgamma2, dbeta2)
    close(buf, expected.astype(np.float64), tol)
    close(dgamma2, dgamma.astype(np.float64), tol)
    close(dbeta2, dbeta.astype(np.float64), tol)


def _bn_loss(x, gamma, beta, dout, eps=1e-5):
    n, d = x.shape
    out, xhat = np.empty((n, d)), np.empty((n, d))
    mean, var, inv_std = np.empty(d), np.empty(d), np.empty(d)
    norm._bn_forward_train(np.ascontiguousarray(x), gamma, beta, eps, 0.9, None, None,
                           out, xhat, mean, var, inv_std)
    return float(np.sum(out * dout)), xhat, inv_std


def _ln_loss(x, gamma, beta, dout, eps=1e-5):
    n, d = x.shape
    out, xhat = np.empty((n, d)), np.empty((n, d))
    mean, inv_std = np.empty(n), np.empty(n)
    norm._ln_forward(np.ascontiguousarray(x), gamma, beta, eps, out, xhat, mean, inv_std)
    return float(np.sum(out * dout)), xhat, inv_std


def _numeric(f, a, h=1e-5):
    grad = np.zeros_like(a)
    for ix in np.ndindex(*a.shape):
        old = a[ix]
        a[ix] = old + h
        fp = f()
        a[ix] = old - h
        fm = f()
        a[ix] = old
        grad[ix] = (fp - fm) / (2 * h)
    return grad


@pytest.mark.parametrize("which", ["bn", "ln"])
def test_norm_backward_matches_numerical_gradient(which):
    """float64: the backward kernels are the gradient of sum(forward * dout)."""
    rng = np.random.default_rng(11)
    n, d = 5, 4
    x = rng.standard_normal((n, d)) * 2 + 1
    gamma = rng.standard_normal(d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    loss = _bn_loss if which == "bn" else _ln_loss
    _, xhat, inv_std = loss(x, gamma, beta, dout)
    dx, dgamma, dbeta = np.empty((n, d)), np.empty(d), np.empty(d)
    if which == "bn":
        norm._bn_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)
    else:
        norm._ln_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)
    num_dx = _numeric(lambda: loss(x, gamma, beta, dout)[0], x)
    num_dgamma = _numeric(lambda: loss(x, gamma, beta, dout)[0], gamma)
    num_dbeta = _numeric(lambda: loss(x, gamma, beta, dout)[0], beta)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma, num_dgamma, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta, num_dbeta, rtol=1e-6, atol=1e-8)


def _ln_ref(x, gamma, beta, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=1)
    inv_std = 1 / np.sqrt(x.var(axis=1) + eps)
    xhat = (x - mean[:, None]) * inv_std[:, None]
    return gamma * xhat + beta, xhat, mean, inv_std


@pytest.mark.parametrize("n, d", [(1, 1), (1, 5), (3, 2), (8, 3), (7, 16)])
def test_ln_forward(n, d, dtype, tol):
    rng = np.random.default_rng(n * 3 + d)
    x = (rng.standard_normal((n, d)) * 2 - 1).astype(dtype)
    gamma, beta = randn(rng, d, dtype), randn(rng, d, dtype)
    eps = 1e-5
    out, xhat = (np.full((n, d), np.nan, dtype) for _ in range(2))
    mean, inv_std = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
    norm._ln_forward(x, gamma, beta, eps, out, xhat, mean, inv_std)
    e_out, e_xhat, e_mean, e_inv = _ln_ref(x, gamma.astype(np.float64),
                                           beta.astype(np.float64), eps)
    scale = max(1.0, float(np.abs(x).max()))
    close(mean, e_mean, tol, scale)
    close(inv_std, e_inv, tol)
    s = 1.0 if dtype == np.float64 else 10.0 * max(1.0, float(e_inv.max()))
    close(xhat, e_xhat, tol, s * scale)
    close(out, e_out, tol, s * scale * max(1.0, float(np.abs(gamma).max())))


@pytest.mark.parametrize("n, d", [(1, 2), (3, 2), (8, 3), (7, 16)])
def test_ln_backward(n, d, dtype, tol):
    rng = np.random.default_rng(n * 5 + d)
    x = randn(rng, (n, d), dtype)
    gamma, beta = randn(rng, d, dtype), randn(rng, d, dtype)
    out, xhat = np.empty((n, d), dtype), np.empty((n, d), dtype)
    mean, inv_std = np.empty(n, dtype), np.empty(n, dtype)
    norm._ln_forward(x, gamma, beta, 1e-5, out, xhat, mean, inv_std)
    dout = randn(rng, (n, d), dtype)
    g64, h64 = dout.astype(np.float64), xhat.astype(np.float64)
    gam64, inv64 = gamma.astype(np.float64), inv_std.astype(np.float64)
    dx, dgamma, dbeta = (np.full(s, np.nan, dtype) for s in ((n, d), d, d))
    norm._ln_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)
    close(dbeta, g64.sum(axis=0), tol, scale=n)
    close(dgamma, (g64 * h64).sum(axis=0), tol, scale=n)
    g = g64 * gam64
    expected_dx = inv64[:, None] / d * (
        d * g - g.sum(axis=1, keepdims=True) - h64 * (g * h64).sum(axis=1, keepdims=True))
    scale = d * max(1.0, float(inv64.max())) * max(1.0, float(np.abs(gam64).max()))
    close(dx, expected_dx, tol, scale=scale * (10 if dtype == np.float32 else 1))


# ================================================================= optim twins

def test_optim_twins(dtype, tol):
    rng = np.random.default_rng(12)
    size = 17
    w0, dw = randn(rng, size, dtype), randn(rng, size, dtype)
    w64, g64 = w0.astype(np.float64), dw.astype(np.float64)
    reg = 0.1
    gr = g64 + reg * w64

    w = w0.copy()
    kopt._sgd(w, dw, 0.1)
    close(w, w64 - 0.1 * g64, tol)
    w = w0.copy()
    kopt._sgd(w, dw, 0.1, reg)
    close(w, w64 - 0.1 * gr, tol)

    v0 = randn(rng, size, dtype)
    w, v = w0.copy(), v0.copy()
    kopt._sgd_momentum(w, dw, v, 0.05, 0.9, reg)
    ev = 0.9 * v0.astype(np.float64) - 0.05 * gr
    close(v, ev, tol)
    close(w, w64 + ev, tol)

    w, v = w0.copy(), v0.copy()
    kopt._sgd_nesterov_momentum(w, dw, v, 0.05, 0.9, reg)
    close(v, ev, tol)
    close(w, w64 + ev + 0.9 * (ev - v0.astype(np.float64)), tol, scale=2)

    c0 = rng.uniform(0.1, 1.0, size).astype(dtype)
    w, c = w0.copy(), c0.copy()
    kopt._rmsprop(w, dw, c, 0.01, 0.9, 1e-8, reg)
    ec = 0.9 * c0.astype(np.float64) + 0.1 * gr**2
    close(c, ec, tol)
    close(w, w64 - 0.01 * gr / (np.sqrt(ec) + 1e-8), tol)

    m0 = randn(rng, size, dtype)
    a0 = rng.uniform(0.1, 1.0, size).astype(dtype)
    w, m, a = w0.copy(), m0.copy(), a0.copy()
    t = 4  # already incremented by the caller
    kopt._adam(w, dw, m, a, 0.01, 0.9, 0.99, 1e-8, t, reg)
    em = 0.9 * m0.astype(np.float64) + 0.1 * gr
    ea = 0.99 * a0.astype(np.float64) + 0.01 * gr**2
    close(m, em, tol)
    close(a, ea, tol)
    close(w, w64 - 0.01 * (em / (1 - 0.9**t)) / (np.sqrt(ea / (1 - 0.99**t)) + 1e-8), tol)

    # reg defaults to 0
    w, m, a = w0.copy(), np.zeros(size, dtype), np.zeros(size, dtype)
    kopt._adam(w, dw, m, a, 0.01, 0.9, 0.999, 1e-8, 1)
    close(w, w64 - 0.01 * g64 / (np.abs(g64) + 1e-8), tol)

    # adamw: the weights shrink by 1 - lr * wd, then Adam's step (the moments see gr)
    w, m, a = w0.copy(), m0.copy(), a0.copy()
    kopt._adamw(w, dw, m, a, 0.01, 0.9, 0.99, 1e-8, t, 0.5, reg)
    close(m, em, tol)
    close(a, ea, tol)
    close(w, w64 * (1 - 0.01 * 0.5)
          - 0.01 * (em / (1 - 0.9**t)) / (np.sqrt(ea / (1 - 0.99**t)) + 1e-8), tol)


def test_optim_twins_single_element(dtype, tol):
    w = np.array([0.5], dtype)
    dw = np.array([-2.0], dtype)
    v = np.array([0.1], dtype)
    kopt._sgd_momentum(w, dw, v, 0.1, 0.5)
    close(v, [0.5 * 0.1 + 0.2], tol)
    close(w, [0.5 + 0.25], tol)


# ================================================================= BLAS switch

def _capsule_address(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    assert address
    return address


def _scipy_gemm_addresses():
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    return _capsule_address(capi["sgemm"]), _capsule_address(capi["dgemm"])


def _gemm_check(dtype):
    rng = np.random.default_rng(0)
    a, b = randn(rng, (5, 3), dtype), randn(rng, (4, 3), dtype)
    c = np.zeros((5, 4), dtype)
    blas._gemm(a, b, c, False, True, 2.0, 0.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, 2 * a.astype(np.float64) @ b.T.astype(np.float64),
                               rtol=tol, atol=tol)
    out = np.zeros((5, 3), dtype)
    dense._affine_forward(a, np.eye(3, dtype=dtype), np.ones(3, dtype), out)
    np.testing.assert_allclose(out, a.astype(np.float64) + 1, rtol=tol, atol=tol)


def test_backend_default():
    assert blas.backend() == "scipy"


def test_set_gemm_with_scipy_addresses():
    s_addr, d_addr = _scipy_gemm_addresses()
    try:
        blas.set_gemm(s_addr, d_addr, "scipy-capsule")
        assert blas.backend() == "scipy-capsule"
        _gemm_check(np.float32)
        _gemm_check(np.float64)
        blas.set_gemm(s_addr, d_addr)
        assert blas.backend() == "custom"
    finally:
        blas.use_scipy_blas()
    assert blas.backend() == "scipy"
    _gemm_check(np.float32)
    _gemm_check(np.float64)


def test_set_gemm_routes_every_gemm_through_the_given_functions():
    """A ctypes wrapper around scipy's gemm counts the calls the kernels make."""
    s_addr, d_addr = _scipy_gemm_addresses()
    args = [ctypes.c_void_p] * 13
    real = {"s": ctypes.CFUNCTYPE(None, *args)(s_addr),
            "d": ctypes.CFUNCTYPE(None, *args)(d_addr)}
    calls = []

    def make(prefix):
        def wrapper(*a):
            calls.append(prefix)
            real[prefix](*a)
        return ctypes.CFUNCTYPE(None, *args)(wrapper)

    s_cb, d_cb = make("s"), make("d")
    s_cb_addr = ctypes.cast(s_cb, ctypes.c_void_p).value
    d_cb_addr = ctypes.cast(d_cb, ctypes.c_void_p).value
    try:
        blas.set_gemm(s_cb_addr, d_cb_addr, "counting")
        assert blas.backend() == "counting"
        _gemm_check(np.float32)
        assert calls == ["s", "s"]
        _gemm_check(np.float64)
        assert calls == ["s", "s", "d", "d"]
        # affine_backward: dw and dx, two GEMMs
        x, w, dout = np.ones((3, 2)), np.ones((2, 4)), np.ones((3, 4))
        dx, dw, db = np.empty((3, 2)), np.empty((2, 4)), np.empty(4)
        dense._affine_backward(dout, x, w, dx, dw, db)
        assert calls[4:] == ["d", "d"]
        np.testing.assert_allclose(dw, 3.0)
        np.testing.assert_allclose(dx, 4.0)
    finally:
        blas.use_scipy_blas()
    calls.clear()
    _gemm_check(np.float64)
    assert calls == []
    assert blas.backend() == "scipy"


def test_set_gemm_rejects_null():
    with pytest.raises(ValueError):
        blas.set_gemm(0, 0)
    s_addr, d_addr = _scipy_gemm_addresses()
    with pytest.raises(ValueError):
        blas.set_gemm(s_addr, 0)
    with pytest.raises(ValueError):
        blas.set_gemm(0, d_addr)
    assert blas.backend() == "scipy"
    _gemm_check(np.float64)


# ================================================================= GIL

def _runs_without_gil(kernel, max_tries=100):
    """True if a Python thread makes progress while ``kernel()`` runs in this thread.

    The switch interval is raised to 5 s, so a thread that holds the GIL is never
    pre-empted within a call; the counting thread sleeps between increments, so it
    never holds the GIL for long.  A kernel that holds the GIL therefore sees the counter
    unchanged on every try; one that releases it sees it move (the counting thread only
    needs to wake up once during the call).  Nothing depends on how long a call takes.
    """
    counter = [0]
    started = threading.Event()
    done = threading.Event()

    def count():
        while not done.is_set():
            counter[0] += 1
            started.set()
            time.sleep(0.0001)

    old = sys.getswitchinterval()
    thread = threading.Thread(target=count, daemon=True)
    progressed = False
    try:
        sys.setswitchinterval(5.0)
        thread.start()
        started.wait()
        for _ in range(max_tries):
            before = counter[0]
            kernel()
            if counter[0] != before:
                progressed = True
                break
    finally:
        done.set()
        thread.join()
        sys.setswitchinterval(old)
    return progressed


def test_gemm_releases_the_gil():
    rng = np.random.default_rng(0)
    n = 600
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    c = np.empty((n, n))
    assert _runs_without_gil(lambda: blas._gemm(a, b, c))
    np.testing.assert_allclose(c, a @ b, rtol=1e-10, atol=1e-10)


def test_elementwise_kernels_release_the_gil():
    rng = np.random.default_rng(1)
    big = rng.standard_normal(2_000_000)
    assert _runs_without_gil(lambda: dense._sum_sq(big))
    scores = rng.standard_normal((20_000, 50))
    probs = np.empty_like(scores)
    assert _runs_without_gil(lambda: losses._softmax(scores, probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_python_loop_holding_the_gil_is_detected():
    """Control for the helper: pure-Python work that holds the GIL shows no progress."""
    def busy():
        s = 0
        for i in range(20_000):
            s += i
        return s

    assert not _runs_without_gil(busy, max_tries=5)


def test_gemm_in_two_threads():
    rng = np.random.default_rng(2)
    n = 300
    inputs = [(rng.standard_normal((n, n)), rng.standard_normal((n, n))) for _ in range(2)]
    outputs = [np.empty((n, n)) for _ in range(2)]
    errors = []

    def work(i):
        try:
            for _ in range(3):
                blas._gemm(inputs[i][0], inputs[i][1], outputs[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (a, b), c in zip(inputs, outputs):
        np.testing.assert_allclose(c, a @ b, rtol=1e-10, atol=1e-10)
