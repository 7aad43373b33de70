"""Tests of fastfc.layers.

Layout of this file:

1. SPEC.md reference values (one test each).
2. Central-difference gradient checks in float64 for every backward pass.
3. float32 / float64 via the ``dtype`` fixture: output dtype and values against the NumPy
   formula (written here, evaluated in float64); batch-norm running statistics.
4. Memory layouts (Fortran order, steps, transposed and negative-stride views) and edge
   shapes (N = 1, D = 1).
5. Argument handling: integer promotion, mixed float dtypes, shape errors (with the
   argument named in the message), hypothesis for bad input.
6. Softmax max-subtraction with huge scores; softmax rows sum to one.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastfc import layers as L
from fastfc.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)

# A float32 result compared with the float64 NumPy formula (evaluated on the same,
# float32-rounded inputs) carries float32 rounding of every intermediate.
F32_VS_F64 = {"rtol": 1e-5, "atol": 1e-5}


def vs_f64(dtype, tol):
    """Tolerance for a result of ``dtype`` against a float64 NumPy formula."""
    return tol if np.dtype(dtype) == np.float64 else F32_VS_F64


# ----------------------------------------------------------------------------------
# NumPy formulas (the expected values; nothing here calls fastfc)
# ----------------------------------------------------------------------------------

def np_affine(x, w, b):
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1) @ np.asarray(w, np.float64) + np.asarray(b, np.float64)


def np_affine_backward(dout, x, w):
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    x2 = x.reshape(x.shape[0], -1)
    return (dout @ w.T).reshape(x.shape), x2.T @ dout, dout.sum(axis=0)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# name -> (forward(x), backward(dout, cache), f(z), f'(z)), all NumPy on float64
ACTIVATIONS = {
    "relu": (
        L.relu_forward, L.relu_backward,
        lambda z: np.maximum(z, 0.0),
        lambda z: (z > 0).astype(np.float64),
    ),
    "leaky_relu": (
        L.leaky_relu_forward, L.leaky_relu_backward,
        lambda z: np.where(z > 0, z, 0.01 * z),
        lambda z: np.where(z > 0, 1.0, 0.01),
    ),
    "leaky_relu_alpha0.2": (
        lambda x: L.leaky_relu_forward(x, alpha=0.2), L.leaky_relu_backward,
        lambda z: np.where(z > 0, z, 0.2 * z),
        lambda z: np.where(z > 0, 1.0, 0.2),
    ),
    "leaky_relu_alpha_dict0.3": (
        lambda x: L.leaky_relu_forward(x, {"alpha": 0.3}), L.leaky_relu_backward,
        lambda z: np.where(z > 0, z, 0.3 * z),
        lambda z: np.where(z > 0, 1.0, 0.3),
    ),
    "sigmoid": (
        L.sigmoid_forward, L.sigmoid_backward,
        np_sigmoid,
        lambda z: np_sigmoid(z) * (1.0 - np_sigmoid(z)),
    ),
    "tanh": (
        L.tanh_forward, L.tanh_backward,
        np.tanh,
        lambda z: 1.0 - np.tanh(z) ** 2,
    ),
    "swish": (
        L.swish_forward, L.swish_backward,
        lambda z: z * np_sigmoid(z),
        lambda z: np_sigmoid(z) + z * np_sigmoid(z) * (1.0 - np_sigmoid(z)),
    ),
}
ACT_NAMES = list(ACTIVATIONS)


def away_from_kinks(rng, shape, low=0.05, high=2.0):
    """Random values with |v| in [low, high]: no element near the ReLU kink at 0."""
    mag = rng.uniform(low, high, size=shape)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return mag * sign


def np_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    s = x - x.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def np_softmax_loss(x, y):
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    s = x - x.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1.0
    return loss, dx / n


def np_svm_loss(x, y):
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    correct = x[np.arange(n), y][:, None]
    margins = np.maximum(0.0, x - correct + 1.0)
    margins[np.arange(n), y] = 0.0
    loss = margins.sum() / n
    dx = (margins > 0).astype(np.float64)
    dx[np.arange(n), y] = -dx.sum(axis=1)
    return loss, dx / n


def np_normalize(x, eps, axis):
    """(xhat, mean, var) with statistics along ``axis`` (biased variance)."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    return (x - mu) / np.sqrt(var + eps), mu, var


def np_normalize_backward(dxhat, x, eps, axis):
    """dx of xhat = (x - mean) / sqrt(var + eps), through the computational graph."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=axis, keepdims=True)
    std = np.sqrt(var + eps)
    dxc = dxhat / std
    dstd = -(dxhat * xc / std ** 2).sum(axis=axis, keepdims=True)
    dvar = 0.5 * dstd / std
    dxc = dxc + 2.0 * xc * dvar / n
    dmu = -dxc.sum(axis=axis, keepdims=True)
    return dxc + dmu / n


# ----------------------------------------------------------------------------------
# Layout helpers
# ----------------------------------------------------------------------------------

LAYOUTS = ["fortran", "step2", "transposed_view", "negative_stride"]


def relayout(a, layout):
    """An array equal to ``a`` whose memory is laid out as ``layout`` (never C order)."""
    a = np.asarray(a)
    if layout == "fortran":
        out = np.asfortranarray(a)
    elif layout == "step2":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        out = big[..., ::2]
    elif layout == "transposed_view":
        out = np.ascontiguousarray(a.T).T
    elif layout == "negative_stride":
        out = np.ascontiguousarray(a[::-1])[::-1]
    else:  # pragma: no cover
        raise AssertionError(layout)
    assert not out.flags.c_contiguous, "relayout must produce a non-C-contiguous array"
    np.testing.assert_array_equal(out, a)
    return out


# ==================================================================================
# 1. SPEC reference values
# ==================================================================================

def test_spec1_affine_forward_reference():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)

    out, _ = L.affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297],
                            [3.25553199, 3.5141327, 3.77273342]])
    assert out.shape == (2, 3)
    assert rel_error(out, correct_out) < 1e-8


def test_spec2_relu_forward_reference():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = L.relu_forward(x)
    correct_out = np.array([[0., 0., 0., 0.],
                            [0., 0., 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    assert rel_error(out, correct_out) < 5e-8


def test_spec3_affine_backward_gradient_check():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)

    dx_num = eval_numerical_gradient_array(lambda x: L.affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: L.affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: L.affine_forward(x, w, b)[0], b, dout)

    _, cache = L.affine_forward(x, w, b)
    dx, dw, db = L.affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_spec3_relu_backward_gradient_check():
    np.random.seed(231)
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)

    dx_num = eval_numerical_gradient_array(lambda x: L.relu_forward(x)[0], x, dout)
    _, cache = L.relu_forward(x)
    dx = L.relu_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-11


def test_spec4_svm_then_softmax_loss_reference():
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)

    dx_num = eval_numerical_gradient(lambda x: L.svm_loss(x, y)[0], x, verbose=False)
    loss, dx = L.svm_loss(x, y)
    assert abs(loss - 8.999602749096233) < 1e-10
    assert rel_error(dx_num, dx) < 1e-8

    # the SAME x, y
    dx_num = eval_numerical_gradient(lambda x: L.softmax_loss(x, y)[0], x, verbose=False)
    loss, dx = L.softmax_loss(x, y)
    assert abs(loss - 2.302545844500738) < 1e-10
    assert rel_error(dx_num, dx) < 1e-7


def test_spec11_dropout_reference():
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    assert x.mean() == pytest.approx(10.000207878477502, rel=1e-12)

    expected = [
        (0.25, 10.014059116977283, 0.749784),
        (0.4, 9.977917658761159, 0.600796),
        (0.7, 9.987811912159426, 0.30074),
    ]
    for p, mean_train, frac_zero in expected:
        out, _ = L.dropout_forward(x, {"mode": "train", "p": p})
        out_test, _ = L.dropout_forward(x, {"mode": "test", "p": p})
        assert out.mean() == pytest.approx(mean_train, rel=1e-12, abs=0), p
        assert (out == 0).mean() == frac_zero, p
        np.testing.assert_array_equal(out_test, x)


def _spec14_setup():
    np.random.seed(231)
    N, D1, D2, D3 = 200, 50, 60, 3
    X = np.random.randn(N, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    return np.maximum(0, X.dot(W1)).dot(W2)


def test_spec14_batchnorm_forward_reference():
    a = _spec14_setup()
    assert rel_error(a.mean(axis=0), [-2.3814598, -13.18038246, 1.91780462]) < 1e-7

    D3 = a.shape[1]
    a_norm, _ = L.batchnorm_forward(a, np.ones(D3), np.zeros(D3), {"mode": "train"})
    np.testing.assert_allclose(a_norm.mean(axis=0), np.zeros(D3), atol=1e-7)
    np.testing.assert_allclose(a_norm.std(axis=0), np.ones(D3), atol=1e-7)

    gamma = np.asarray([1.0, 2.0, 3.0])
    beta = np.asarray([11.0, 12.0, 13.0])
    a_norm, _ = L.batchnorm_forward(a, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(a_norm.mean(axis=0), beta, atol=1e-7)
    np.testing.assert_allclose(a_norm.std(axis=0), gamma, atol=1e-7)


def _spec14_backward_setup():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    return x, gamma, beta, dout


@pytest.mark.parametrize("backward", [L.batchnorm_backward, L.batchnorm_backward_alt],
                         ids=["batchnorm_backward", "batchnorm_backward_alt"])
def test_spec14_batchnorm_backward_numeric(backward):
    x, gamma, beta, dout = _spec14_backward_setup()
    bn_param = {"mode": "train"}
    fx = lambda x: L.batchnorm_forward(x, gamma, beta, bn_param)[0]  # noqa: E731
    fg = lambda a: L.batchnorm_forward(x, a, beta, bn_param)[0]  # noqa: E731
    fb = lambda b: L.batchnorm_forward(x, gamma, b, bn_param)[0]  # noqa: E731
    dx_num = eval_numerical_gradient_array(fx, x, dout)
    da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

    _, cache = L.batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(da_num, dgamma) < 1e-8
    assert rel_error(db_num, dbeta) < 1e-8


def test_spec14_batchnorm_backward_and_alt_agree():
    np.random.seed(231)
    N, D = 100, 500
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    _, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx1, dgamma1, dbeta1 = L.batchnorm_backward(dout, cache)
    dx2, dgamma2, dbeta2 = L.batchnorm_backward_alt(dout, cache)
    assert rel_error(dx1, dx2) < 1e-10
    assert rel_error(dgamma1, dgamma2) < 1e-12
    assert rel_error(dbeta1, dbeta2) < 1e-12
    # and both against the computational-graph formula
    xhat, _, _ = np_normalize(x, 1e-5, axis=0)
    assert rel_error(dx1, np_normalize_backward(dout * gamma, x, 1e-5, axis=0)) < 1e-8
    assert rel_error(dgamma1, (dout * xhat).sum(axis=0)) < 1e-10
    assert rel_error(dbeta1, dout.sum(axis=0)) < 1e-12


# ==================================================================================
# 2. Gradient checks, float64
# ==================================================================================

def test_gradcheck_affine_4d_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2, 3))
    w = rng.standard_normal((12, 4))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((3, 4))
    _, cache = L.affine_forward(x, w, b)
    dx, dw, db = L.affine_backward(dout, cache)
    assert rel_error(eval_numerical_gradient_array(
        lambda x: L.affine_forward(x, w, b)[0], x, dout), dx) < 1e-8
    assert rel_error(eval_numerical_gradient_array(
        lambda w: L.affine_forward(x, w, b)[0], w, dout), dw) < 1e-8
    assert rel_error(eval_numerical_gradient_array(
        lambda b: L.affine_forward(x, w, b)[0], b, dout), db) < 1e-8


@pytest.mark.parametrize("name", ACT_NAMES)
def test_gradcheck_activation(name):
    forward, backward, _, _ = ACTIVATIONS[name]
    rng = np.random.default_rng(2)
    x = away_from_kinks(rng, (6, 7))
    dout = rng.standard_normal(x.shape)
    _, cache = forward(x)
    dx = backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x)[0], x, dout)
    assert dx.shape == x.shape
    assert rel_error(dx_num, dx) < 1e-8


def test_gradcheck_dropout_train_with_seed():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
    _, cache = L.dropout_forward(x, dropout_param)
    dx = L.dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(
        lambda xx: L.dropout_forward(xx, dropout_param)[0], x, dout)
    assert rel_error(dx_num, dx) < 1e-10
    # some units dropped and some kept, so the check is not trivial
    assert 0 < (dx == 0).sum() < dx.size


def test_gradcheck_dropout_test_mode():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    dout = rng.standard_normal(x.shape)
    dropout_param = {"mode": "test", "p": 0.3}
    _, cache = L.dropout_forward(x, dropout_param)
    dx = L.dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(
        lambda xx: L.dropout_forward(xx, dropout_param)[0], x, dout)
    assert rel_error(dx_num, dx) < 1e-10
    np.testing.assert_array_equal(dx, dout)


def _norm_setup(seed, n=6, d=5):
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal((n, d)) + 2
    gamma = rng.standard_normal(d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    return x, gamma, beta, dout


@pytest.mark.parametrize("kind", ["batchnorm_train", "batchnorm_test", "layernorm"])
def test_gradcheck_normalization(kind):
    x, gamma, beta, dout = _norm_setup(4)
    if kind == "layernorm":
        param = {}
        forward, backward = L.layernorm_forward, L.layernorm_backward
    else:
        forward, backward = L.batchnorm_forward, L.batchnorm_backward
        if kind == "batchnorm_test":
            d = x.shape[1]
            param = {"mode": "test", "running_mean": np.linspace(-1, 1, d),
                     "running_var": np.linspace(0.5, 2.0, d)}
        else:
            param = {"mode": "train"}
    fx = lambda x: forward(x, gamma, beta, param)[0]  # noqa: E731
    fg = lambda g: forward(x, g, beta, param)[0]  # noqa: E731
    fb = lambda b: forward(x, gamma, b, param)[0]  # noqa: E731
    dx_num = eval_numerical_gradient_array(fx, x, dout)
    dg_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

    _, cache = forward(x, gamma, beta, param)
    dx, dgamma, dbeta = backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(dg_num, dgamma) < 1e-8
    assert rel_error(db_num, dbeta) < 1e-8


@pytest.mark.parametrize("loss_fn", [L.softmax_loss, L.svm_loss], ids=["softmax", "svm"])
def test_gradcheck_losses(loss_fn):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 5))
    y = rng.integers(5, size=7)
    loss, dx = loss_fn(x, y)
    dx_num = eval_numerical_gradient(lambda x: loss_fn(x, y)[0], x, verbose=False)
    assert np.isfinite(loss)
    assert rel_error(dx_num, dx) < 1e-8


# ==================================================================================
# 3. dtypes and values against the NumPy formula
# ==================================================================================

def test_affine_dtype_and_values(dtype, tol):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 3, 4)).astype(dtype)
    w = rng.standard_normal((12, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    dout = rng.standard_normal((5, 6)).astype(dtype)

    out, cache = L.affine_forward(x, w, b)
    assert out.dtype == dtype and out.shape == (5, 6)
    np.testing.assert_allclose(out, np_affine(x, w, b), **vs_f64(dtype, tol))

    dx, dw, db = L.affine_backward(dout, cache)
    ex_dx, ex_dw, ex_db = np_affine_backward(dout, x, w)
    for got, want in ((dx, ex_dx), (dw, ex_dw), (db, ex_db)):
        assert got.dtype == dtype
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **vs_f64(dtype, tol))


@pytest.mark.parametrize("name", ACT_NAMES)
def test_activation_dtype_and_values(name, dtype, tol):
    forward, backward, f, fprime = ACTIVATIONS[name]
    rng = np.random.default_rng(11)
    x = away_from_kinks(rng, (3, 4, 5), low=0.01, high=4.0).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    x64 = x.astype(np.float64)

    out, cache = forward(x)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out, f(x64), **vs_f64(dtype, tol))

    dx = backward(dout, cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, dout.astype(np.float64) * fprime(x64), **vs_f64(dtype, tol))


def test_relu_backward_is_zero_at_zero_and_below(dtype):
    x = np.array([[-2.0, -0.0, 0.0, 1e-30, 3.0]], dtype=dtype)
    out, cache = L.relu_forward(x)
    dx = L.relu_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(dx, np.array([[0, 0, 0, 1, 1]], dtype=dtype))


@pytest.mark.parametrize("loss_name", ["softmax", "svm"])
def test_loss_dtype_and_values(loss_name, dtype, tol):
    loss_fn, np_loss = {"softmax": (L.softmax_loss, np_softmax_loss),
                        "svm": (L.svm_loss, np_svm_loss)}[loss_name]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((9, 6)).astype(dtype)
    y = rng.integers(6, size=9)
    loss, dx = loss_fn(x, y)
    want_loss, want_dx = np_loss(x, y)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert np.ndim(loss) == 0
    np.testing.assert_allclose(loss, want_loss, **vs_f64(dtype, tol))
    np.testing.assert_allclose(dx, want_dx, **vs_f64(dtype, tol))


def test_softmax_dtype_values_and_row_sums(dtype, tol):
    rng = np.random.default_rng(13)
    x = (3 * rng.standard_normal((8, 7))).astype(dtype)
    probs = L.softmax(x)
    assert probs.dtype == dtype and probs.shape == x.shape
    np.testing.assert_allclose(probs, np_softmax(x), **vs_f64(dtype, tol))
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(8), **vs_f64(dtype, tol))
    assert np.all(probs > 0)


@pytest.mark.parametrize("p", [0.3, 0.75, 1.0])
def test_dropout_dtype_and_values(p, dtype, tol):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((20, 30)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = L.dropout_forward(x, {"mode": "train", "p": p, "seed": 7})
    # the mask as SPEC defines it: np.random.seed(seed); rand(*x.shape) < p
    np.random.seed(7)
    mask = np.random.rand(*x.shape) < p
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out, x.astype(np.float64) * mask / p, **vs_f64(dtype, tol))
    np.testing.assert_array_equal(out == 0, ~mask)

    dx = L.dropout_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dout.astype(np.float64) * mask / p, **vs_f64(dtype, tol))

    out_test, cache_test = L.dropout_forward(x, {"mode": "test", "p": p})
    assert out_test.dtype == dtype
    np.testing.assert_array_equal(out_test, x)
    dx_test = L.dropout_backward(dout, cache_test)
    assert dx_test.dtype == dtype
    np.testing.assert_array_equal(dx_test, dout)


def test_dropout_without_seed_draws_from_global_generator():
    x = np.ones((4, 50))
    np.random.seed(99)
    out1, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5})
    out2, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(99)
    m1 = np.random.rand(*x.shape) < 0.5
    m2 = np.random.rand(*x.shape) < 0.5
    np.testing.assert_array_equal(out1, m1 / 0.5)
    np.testing.assert_array_equal(out2, m2 / 0.5)


def test_batchnorm_train_dtype_and_values(dtype, tol):
    x, gamma, beta, dout = _norm_setup(15, n=8, d=5)
    x, gamma, beta, dout = (a.astype(dtype) for a in (x, gamma, beta, dout))
    eps = 1e-4
    out, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    xhat, _, _ = np_normalize(x, eps, axis=0)
    g64, b64 = gamma.astype(np.float64), beta.astype(np.float64)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out, g64 * xhat + b64, **vs_f64(dtype, tol))

    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
    d64 = dout.astype(np.float64)
    for got in (dx, dgamma, dbeta):
        assert got.dtype == dtype
    np.testing.assert_allclose(dbeta, d64.sum(axis=0), **vs_f64(dtype, tol))
    np.testing.assert_allclose(dgamma, (d64 * xhat).sum(axis=0), **vs_f64(dtype, tol))
    np.testing.assert_allclose(dx, np_normalize_backward(d64 * g64, x, eps, axis=0),
                               **vs_f64(dtype, tol))


def test_batchnorm_running_stats_created_updated_in_place_and_used_in_test(dtype, tol):
    rng = np.random.default_rng(16)
    d = 4
    x1 = (2 * rng.standard_normal((10, d)) + 1).astype(dtype)
    x2 = (3 * rng.standard_normal((12, d)) - 2).astype(dtype)
    x3 = rng.standard_normal((5, d)).astype(dtype)
    gamma = rng.standard_normal(d).astype(dtype)
    beta = rng.standard_normal(d).astype(dtype)
    tl = vs_f64(dtype, tol)
    mom = 0.8
    bn_param = {"mode": "train", "momentum": mom}

    # first use: created as zeros, then one update
    L.batchnorm_forward(x1, gamma, beta, bn_param)
    rm, rv = bn_param["running_mean"], bn_param["running_var"]
    assert isinstance(rm, np.ndarray) and isinstance(rv, np.ndarray)
    assert rm.shape == (d,) and rv.shape == (d,)
    assert rm.dtype == dtype and rv.dtype == dtype
    x1_64, x2_64 = x1.astype(np.float64), x2.astype(np.float64)
    want_rm = (1 - mom) * x1_64.mean(axis=0)
    want_rv = (1 - mom) * x1_64.var(axis=0)
    np.testing.assert_allclose(rm, want_rm, **tl)
    np.testing.assert_allclose(rv, want_rv, **tl)

    # second call: the same arrays are updated in place
    L.batchnorm_forward(x2, gamma, beta, bn_param)
    assert bn_param["running_mean"] is rm and bn_param["running_var"] is rv
    want_rm = mom * want_rm + (1 - mom) * x2_64.mean(axis=0)
    want_rv = mom * want_rv + (1 - mom) * x2_64.var(axis=0)
    np.testing.assert_allclose(rm, want_rm, **tl)
    np.testing.assert_allclose(rv, want_rv, **tl)

    # test mode: normalises with the running statistics and leaves them alone
    bn_param["mode"] = "test"
    rm_before, rv_before = rm.copy(), rv.copy()
    out, _ = L.batchnorm_forward(x3, gamma, beta, bn_param)
    assert out.dtype == dtype
    want = (gamma.astype(np.float64) * (x3.astype(np.float64) - rm_before.astype(np.float64))
            / np.sqrt(rv_before.astype(np.float64) + 1e-5) + beta.astype(np.float64))
    np.testing.assert_allclose(out, want, **tl)
    np.testing.assert_array_equal(bn_param["running_mean"], rm_before)
    np.testing.assert_array_equal(bn_param["running_var"], rv_before)


def test_batchnorm_default_momentum_and_caller_arrays_updated_in_place():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((6, 3)) + 5
    rm0 = np.array([1.0, -1.0, 0.5])
    rv0 = np.array([2.0, 1.0, 0.5])
    rm, rv = rm0.copy(), rv0.copy()
    bn_param = {"mode": "train", "running_mean": rm, "running_var": rv}
    L.batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    assert bn_param["running_mean"] is rm and bn_param["running_var"] is rv
    np.testing.assert_allclose(rm, 0.9 * rm0 + 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 * rv0 + 0.1 * x.var(axis=0), rtol=1e-12)


def test_batchnorm_test_mode_without_running_stats_uses_zeros():
    x = np.array([[1.0, -2.0], [3.0, 4.0]])
    bn_param = {"mode": "test"}
    out, _ = L.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    np.testing.assert_allclose(out, x / np.sqrt(0.0 + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(bn_param["running_mean"], np.zeros(2))
    np.testing.assert_array_equal(bn_param["running_var"], np.zeros(2))


def test_layernorm_dtype_values_and_same_in_train_and_test(dtype, tol):
    x, _, _, dout = _norm_setup(18, n=5, d=8)
    rng = np.random.default_rng(19)
    gamma = rng.standard_normal(8).astype(dtype)
    beta = rng.standard_normal(8).astype(dtype)
    x, dout = x.astype(dtype), dout.astype(dtype)
    tl = vs_f64(dtype, tol)

    out, cache = L.layernorm_forward(x, gamma, beta, {})
    xhat, _, _ = np_normalize(x, 1e-5, axis=1)
    g64, b64 = gamma.astype(np.float64), beta.astype(np.float64)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out, g64 * xhat + b64, **tl)

    out_train, _ = L.layernorm_forward(x, gamma, beta, {"mode": "train"})
    out_test, _ = L.layernorm_forward(x, gamma, beta, {"mode": "test"})
    np.testing.assert_array_equal(out_train, out)
    np.testing.assert_array_equal(out_test, out)

    dx, dgamma, dbeta = L.layernorm_backward(dout, cache)
    d64 = dout.astype(np.float64)
    for got in (dx, dgamma, dbeta):
        assert got.dtype == dtype
    np.testing.assert_allclose(dbeta, d64.sum(axis=0), **tl)
    np.testing.assert_allclose(dgamma, (d64 * xhat).sum(axis=0), **tl)
    np.testing.assert_allclose(dx, np_normalize_backward(d64 * g64, x, 1e-5, axis=1), **tl)


def test_layernorm_eps_is_used():
    x = np.array([[1.0, 2.0, 4.0]])
    out, _ = L.layernorm_forward(x, np.ones(3), np.zeros(3), {"eps": 0.5})
    want = (x - x.mean()) / np.sqrt(x.var() + 0.5)
    np.testing.assert_allclose(out, want, rtol=1e-12)


# ==================================================================================
# 4. Layouts and edge shapes
# ==================================================================================

@pytest.mark.parametrize("layout", LAYOUTS)
def test_affine_layouts(layout, dtype, tol):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    w = rng.standard_normal((15, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    dout = rng.standard_normal((4, 6)).astype(dtype)

    ref_out, ref_cache = L.affine_forward(x, w, b)
    ref_grads = L.affine_backward(dout, ref_cache)

    b_strided = np.zeros(2 * b.size, dtype=dtype)[::2]
    b_strided[:] = b
    out, cache = L.affine_forward(relayout(x, layout), relayout(w, layout), b_strided)
    grads = L.affine_backward(relayout(dout, layout), cache)
    np.testing.assert_allclose(out, ref_out, **tol)
    np.testing.assert_allclose(out, np_affine(x, w, b), **vs_f64(dtype, tol))
    for got, want in zip(grads, ref_grads):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    assert grads[0].shape == x.shape


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "swish"])
def test_activation_layouts(name, layout, dtype, tol):
    forward, backward, f, fprime = ACTIVATIONS[name]
    rng = np.random.default_rng(21)
    x = away_from_kinks(rng, (5, 6)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    ref_out, ref_cache = forward(x)
    ref_dx = backward(dout, ref_cache)
    out, cache = forward(relayout(x, layout))
    dx = backward(relayout(dout, layout), cache)
    np.testing.assert_allclose(out, ref_out, **tol)
    np.testing.assert_allclose(dx, ref_dx, **tol)
    np.testing.assert_allclose(out, f(x.astype(np.float64)), **vs_f64(dtype, tol))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("loss_name", ["softmax", "svm"])
def test_loss_and_softmax_layouts(loss_name, layout, dtype, tol):
    loss_fn, np_loss = {"softmax": (L.softmax_loss, np_softmax_loss),
                        "svm": (L.svm_loss, np_svm_loss)}[loss_name]
    rng = np.random.default_rng(22)
    x = rng.standard_normal((6, 4)).astype(dtype)
    y = rng.integers(4, size=6)
    ref_loss, ref_dx = loss_fn(x, y)
    y_strided = np.repeat(y, 2)[::2]
    loss, dx = loss_fn(relayout(x, layout), y_strided)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"], abs=tol["atol"])
    np.testing.assert_allclose(dx, ref_dx, **tol)
    want_loss, want_dx = np_loss(x, y)
    np.testing.assert_allclose(dx, want_dx, **vs_f64(dtype, tol))
    np.testing.assert_allclose(L.softmax(relayout(x, layout)), L.softmax(x), **tol)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_normalization_layouts(norm, layout, dtype, tol):
    forward, backward, param = {
        "batchnorm": (L.batchnorm_forward, L.batchnorm_backward, lambda: {"mode": "train"}),
        "layernorm": (L.layernorm_forward, L.layernorm_backward, lambda: {}),
    }[norm]
    x, gamma, beta, dout = _norm_setup(23, n=7, d=5)
    x, gamma, beta, dout = (a.astype(dtype) for a in (x, gamma, beta, dout))
    ref_out, ref_cache = forward(x, gamma, beta, param())
    ref_grads = backward(dout, ref_cache)
    out, cache = forward(relayout(x, layout), gamma[::-1].copy()[::-1], beta, param())
    grads = backward(relayout(dout, layout), cache)
    np.testing.assert_allclose(out, ref_out, **tol)
    for got, want in zip(grads, ref_grads):
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dropout_layouts(layout, dtype):
    rng = np.random.default_rng(24)
    x = rng.standard_normal((8, 9)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    param = {"mode": "train", "p": 0.5, "seed": 3}
    ref_out, ref_cache = L.dropout_forward(x, param)
    ref_dx = L.dropout_backward(dout, ref_cache)
    out, cache = L.dropout_forward(relayout(x, layout), param)
    dx = L.dropout_backward(relayout(dout, layout), cache)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(dx, ref_dx)


def test_batchnorm_non_contiguous_running_stats_still_tracked():
    rng = np.random.default_rng(25)
    x = rng.standard_normal((6, 3))
    rm = np.zeros(6)[::2]
    rv = np.ones(6)[::2]
    bn_param = {"mode": "train", "running_mean": rm, "running_var": rv}
    L.batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-12)


def test_affine_single_element(dtype, tol):
    x = np.array([[2.0]], dtype=dtype)
    w = np.array([[-3.0]], dtype=dtype)
    b = np.array([0.5], dtype=dtype)
    out, cache = L.affine_forward(x, w, b)
    assert out.shape == (1, 1) and out.dtype == dtype
    np.testing.assert_allclose(out, [[-5.5]], **tol)
    dx, dw, db = L.affine_backward(np.array([[2.0]], dtype=dtype), cache)
    np.testing.assert_allclose(dx, [[-6.0]], **tol)
    np.testing.assert_allclose(dw, [[4.0]], **tol)
    np.testing.assert_allclose(db, [2.0], **tol)


def test_affine_single_sample_and_single_output(dtype, tol):
    rng = np.random.default_rng(26)
    x = rng.standard_normal((1, 2, 3)).astype(dtype)
    w = rng.standard_normal((6, 1)).astype(dtype)
    b = rng.standard_normal(1).astype(dtype)
    dout = rng.standard_normal((1, 1)).astype(dtype)
    out, cache = L.affine_forward(x, w, b)
    assert out.shape == (1, 1)
    np.testing.assert_allclose(out, np_affine(x, w, b), **vs_f64(dtype, tol))
    dx, dw, db = L.affine_backward(dout, cache)
    for got, want in zip((dx, dw, db), np_affine_backward(dout, x, w)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **vs_f64(dtype, tol))


def test_gradcheck_affine_single_sample():
    rng = np.random.default_rng(27)
    x = rng.standard_normal((1, 4))
    w = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    dout = rng.standard_normal((1, 3))
    _, cache = L.affine_forward(x, w, b)
    dx, dw, db = L.affine_backward(dout, cache)
    assert rel_error(eval_numerical_gradient_array(
        lambda x: L.affine_forward(x, w, b)[0], x, dout), dx) < 1e-8
    assert rel_error(eval_numerical_gradient_array(
        lambda w: L.affine_forward(x, w, b)[0], w, dout), dw) < 1e-8


@pytest.mark.parametrize("loss_name", ["softmax", "svm"])
def test_losses_single_row(loss_name, dtype, tol):
    loss_fn, np_loss = {"softmax": (L.softmax_loss, np_softmax_loss),
                        "svm": (L.svm_loss, np_svm_loss)}[loss_name]
    x = np.array([[0.5, -1.0, 2.0, 0.1]], dtype=dtype)
    y = np.array([2])
    loss, dx = loss_fn(x, y)
    want_loss, want_dx = np_loss(x, y)
    assert dx.shape == (1, 4)
    np.testing.assert_allclose(loss, want_loss, **vs_f64(dtype, tol))
    np.testing.assert_allclose(dx, want_dx, **vs_f64(dtype, tol))


def test_softmax_loss_single_class():
    loss, dx = L.softmax_loss(np.array([[3.0], [-1.0]]), np.array([0, 0]))
    assert loss == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(dx, np.zeros((2, 1)), atol=1e-15)
    np.testing.assert_allclose(L.softmax(np.array([[3.0], [-7.0]])), np.ones((2, 1)))


def test_batchnorm_single_feature(dtype, tol):
    x = np.array([[1.0], [2.0], [4.0], [-3.0]], dtype=dtype)
    gamma, beta = np.array([2.0], dtype=dtype), np.array([0.5], dtype=dtype)
    out, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    xhat, _, _ = np_normalize(x, 1e-5, axis=0)
    assert out.shape == (4, 1) and out.dtype == dtype
    np.testing.assert_allclose(out, 2.0 * xhat + 0.5, **vs_f64(dtype, tol))
    dout = np.array([[1.0], [-1.0], [0.5], [2.0]], dtype=dtype)
    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
    want_dx = np_normalize_backward(dout.astype(np.float64) * 2.0, x, 1e-5, axis=0)
    np.testing.assert_allclose(dx, want_dx, **vs_f64(dtype, tol))
    np.testing.assert_allclose(dbeta, [2.5], **vs_f64(dtype, tol))


def test_gradcheck_batchnorm_single_feature():
    rng = np.random.default_rng(28)
    x = rng.standard_normal((5, 1))
    gamma, beta = np.array([1.5]), np.array([-0.2])
    dout = rng.standard_normal((5, 1))
    _, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(
        lambda x: L.batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], x, dout)
    assert rel_error(dx_num, dx) < 1e-8


def test_batchnorm_single_sample_is_finite():
    x = np.array([[1.0, -2.0, 3.0]])
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])
    out, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    # a batch of one has zero variance: xhat = 0, out = beta
    np.testing.assert_allclose(out, beta[None], atol=1e-12)
    dx, dgamma, dbeta = L.batchnorm_backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx, np.zeros_like(x), atol=1e-12)
    np.testing.assert_allclose(dbeta, np.ones(3))


def test_layernorm_single_feature_is_finite(dtype):
    x = np.array([[1.0], [5.0], [-3.0]], dtype=dtype)
    gamma, beta = np.array([2.0], dtype=dtype), np.array([0.25], dtype=dtype)
    out, cache = L.layernorm_forward(x, gamma, beta, {})
    assert out.dtype == dtype
    assert np.all(np.isfinite(out))
    # one feature per row: xhat = 0, out = beta
    np.testing.assert_allclose(out, np.full((3, 1), 0.25), atol=1e-6)
    dx, dgamma, dbeta = L.layernorm_backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dgamma))
    np.testing.assert_allclose(dx, np.zeros_like(x), atol=1e-6)
    np.testing.assert_allclose(dbeta, [3.0], atol=1e-6)


def test_layernorm_single_sample(dtype, tol):
    x = np.array([[1.0, 2.0, 4.0, -1.0]], dtype=dtype)
    gamma = np.array([1.0, 0.5, 2.0, 1.5], dtype=dtype)
    beta = np.zeros(4, dtype=dtype)
    out, _ = L.layernorm_forward(x, gamma, beta, {})
    xhat, _, _ = np_normalize(x, 1e-5, axis=1)
    np.testing.assert_allclose(out, gamma.astype(np.float64) * xhat, **vs_f64(dtype, tol))


def test_relu_single_element():
    out, cache = L.relu_forward(np.array([[-1.5]]))
    np.testing.assert_array_equal(out, [[0.0]])
    np.testing.assert_array_equal(L.relu_backward(np.array([[4.0]]), cache), [[0.0]])


# ==================================================================================
# 5. Argument handling
# ==================================================================================

def test_affine_integer_x_promoted_to_float64():
    x = np.arange(6).reshape(2, 3)
    w = np.linspace(-1, 1, 12).reshape(3, 4)
    b = np.array([0.5, 0.0, -0.5, 1.0])
    out, cache = L.affine_forward(x, w, b)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, x.astype(np.float64) @ w + b, rtol=1e-12)
    dx, dw, db = L.affine_backward(np.ones((2, 4)), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    np.testing.assert_allclose(dw, x.T.astype(np.float64) @ np.ones((2, 4)), rtol=1e-12)


def test_affine_all_integer_arguments_give_float64():
    out, _ = L.affine_forward(np.array([[1, 2]]), np.array([[1], [3]]), np.array([1]))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[8.0]])


@pytest.mark.parametrize("name", ACT_NAMES)
def test_activation_integer_input_promoted_to_float64(name):
    forward, _, f, _ = ACTIVATIONS[name]
    x = np.array([[-2, -1, 1, 3]])
    out, _ = forward(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, f(x.astype(np.float64)), rtol=1e-12)


def test_other_layers_integer_input_promoted_to_float64():
    x = np.array([[1, 2, 7], [3, -4, 0]])
    y = np.array([0, 2])
    assert L.softmax_loss(x, y)[1].dtype == np.float64
    assert L.svm_loss(x, y)[1].dtype == np.float64
    assert L.softmax(x).dtype == np.float64
    out, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 1})
    assert out.dtype == np.float64
    out, _ = L.dropout_forward(x, {"mode": "test", "p": 0.5})
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x)
    out, _ = L.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np_normalize(x, 1e-5, axis=0)[0], rtol=1e-12, atol=1e-14)
    out, _ = L.layernorm_forward(x, np.ones(3), np.zeros(3), {})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np_normalize(x, 1e-5, axis=1)[0], rtol=1e-12, atol=1e-14)


MIXED_DTYPE_CALLS = {
    "affine_x32_w64": lambda: L.affine_forward(
        np.ones((2, 3), np.float32), np.ones((3, 4), np.float64), np.ones(4, np.float32)),
    "affine_b64": lambda: L.affine_forward(
        np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones(4, np.float64)),
    "affine_backward_dout64": lambda: L.affine_backward(
        np.ones((2, 4), np.float64),
        L.affine_forward(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
                         np.ones(4, np.float32))[1]),
    "batchnorm_gamma64": lambda: L.batchnorm_forward(
        np.ones((2, 3), np.float32), np.ones(3, np.float64), np.zeros(3, np.float32),
        {"mode": "train"}),
    "layernorm_beta64": lambda: L.layernorm_forward(
        np.ones((2, 3), np.float32), np.ones(3, np.float32), np.zeros(3, np.float64), {}),
    "batchnorm_backward_dout64": lambda: L.batchnorm_backward(
        np.ones((2, 3), np.float64),
        L.batchnorm_forward(np.ones((2, 3), np.float32), np.ones(3, np.float32),
                            np.zeros(3, np.float32), {"mode": "train"})[1]),
    "relu_backward_dout32": lambda: L.relu_backward(
        np.ones((2, 3), np.float32), L.relu_forward(np.ones((2, 3), np.float64))[1]),
}


@pytest.mark.parametrize("call", list(MIXED_DTYPE_CALLS.values()), ids=list(MIXED_DTYPE_CALLS))
def test_mixed_float_dtypes_promote_to_float64(call):
    """float32 mixed with float64 computes in float64, as NumPy (and the course) does."""
    result = call()
    arrays = [a for a in (result if isinstance(result, tuple) else (result,))
              if isinstance(a, np.ndarray)]
    assert arrays and all(a.dtype == np.float64 for a in arrays)


def _x_w_b(n=2, d=3, m=4):
    return np.ones((n, d)), np.ones((d, m)), np.ones(m)


SHAPE_ERRORS = {
    "affine_w_rows": (lambda: L.affine_forward(np.ones((2, 3)), np.ones((4, 5)), np.ones(5)),
                      r"\bw\b.*\(4, 5\).*3 features"),
    "affine_w_1d": (lambda: L.affine_forward(np.ones((2, 3)), np.ones(3), np.ones(1)),
                    r"\bw\b.*2-dimensional"),
    "affine_x_1d": (lambda: L.affine_forward(np.ones(3), np.ones((3, 2)), np.ones(2)),
                    r"\bx\b.*at least 2"),
    "affine_b": (lambda: L.affine_forward(*_x_w_b()[:2], np.ones(5)), r"\bb\b.*\(4,\)"),
    "affine_backward_dout": (
        lambda: L.affine_backward(np.ones((2, 5)), L.affine_forward(*_x_w_b())[1]),
        r"\bdout\b.*\(2, 4\)"),
    "relu_backward_dout": (
        lambda: L.relu_backward(np.ones((3, 2)), L.relu_forward(np.ones((2, 3)))[1]),
        r"\bdout\b"),
    "sigmoid_backward_dout": (
        lambda: L.sigmoid_backward(np.ones(6), L.sigmoid_forward(np.ones((2, 3)))[1]),
        r"\bdout\b"),
    "softmax_x_1d": (lambda: L.softmax_loss(np.ones(3), np.array([0])), r"\bx\b.*2-dim"),
    "softmax_y_length": (lambda: L.softmax_loss(np.ones((2, 3)), np.array([0, 1, 2])),
                         r"\by\b.*3 labels.*2 rows"),
    "svm_y_2d": (lambda: L.svm_loss(np.ones((2, 3)), np.array([[0], [1]])), r"\by\b"),
    "svm_y_range": (lambda: L.svm_loss(np.ones((2, 3)), np.array([0, 3])),
                    r"\by\b.*label 3"),
    "softmax_y_negative": (lambda: L.softmax_loss(np.ones((2, 3)), np.array([-1, 0])),
                           r"\by\b.*label -1"),
    "batchnorm_gamma": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(4), np.zeros(3),
                                                    {"mode": "train"}), r"\bgamma\b"),
    "batchnorm_beta": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(2),
                                                   {"mode": "train"}), r"\bbeta\b"),
    "batchnorm_x_3d": (lambda: L.batchnorm_forward(np.ones((2, 3, 1)), np.ones(3),
                                                   np.zeros(3), {"mode": "train"}), r"\bx\b"),
    "batchnorm_running_mean": (
        lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3),
                                    {"mode": "train", "running_mean": np.zeros(4)}),
        r"running_mean"),
    "layernorm_gamma": (lambda: L.layernorm_forward(np.ones((2, 3)), np.ones(2), np.zeros(3),
                                                    {}), r"\bgamma\b"),
    "layernorm_backward_dout": (
        lambda: L.layernorm_backward(np.ones((3, 3)), L.layernorm_forward(
            np.ones((2, 3)), np.ones(3), np.zeros(3), {})[1]), r"\bdout\b"),
    "dropout_backward_dout": (
        lambda: L.dropout_backward(np.ones((3, 3)), L.dropout_forward(
            np.ones((2, 3)), {"mode": "train", "p": 0.5, "seed": 0})[1]), r"\bdout\b"),
    "empty_x": (lambda: L.relu_forward(np.ones((0, 3))), r"\bx\b.*empty"),
}


@pytest.mark.parametrize("call,match", list(SHAPE_ERRORS.values()), ids=list(SHAPE_ERRORS))
def test_shape_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


PARAM_ERRORS = {
    "dropout_missing_p": (lambda: L.dropout_forward(np.ones(3), {"mode": "train"}),
                          ValueError, r"dropout_param.*'p'"),
    "dropout_p_zero": (lambda: L.dropout_forward(np.ones(3), {"mode": "train", "p": 0.0}),
                       ValueError, r"dropout_param\['p'\]"),
    "dropout_p_above_one": (lambda: L.dropout_forward(np.ones(3), {"mode": "train", "p": 1.5}),
                            ValueError, r"dropout_param\['p'\]"),
    "dropout_bad_mode": (lambda: L.dropout_forward(np.ones(3), {"mode": "eval", "p": 0.5}),
                         ValueError, r"dropout_param\['mode'\]"),
    "dropout_param_not_dict": (lambda: L.dropout_forward(np.ones(3), 0.5),
                               TypeError, r"dropout_param"),
    "bn_missing_mode": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3),
                                                    {}), ValueError, r"bn_param.*'mode'"),
    "bn_bad_mode": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3),
                                                {"mode": "predict"}),
                    ValueError, r"bn_param\['mode'\]"),
    "bn_negative_eps": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3),
                                                    {"mode": "train", "eps": -1.0}),
                        ValueError, r"bn_param\['eps'\]"),
    "bn_nan_momentum": (lambda: L.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3),
                                                    {"mode": "train", "momentum": np.nan}),
                        ValueError, r"bn_param\['momentum'\]"),
    "leaky_negative_alpha": (lambda: L.leaky_relu_forward(np.ones(3), alpha=-0.1),
                             ValueError, r"alpha"),
    "float_labels": (lambda: L.softmax_loss(np.ones((2, 3)), np.array([0.0, 1.0])),
                     TypeError, r"\by\b.*integer"),
    "complex_x": (lambda: L.relu_forward(np.ones(3, dtype=complex)), TypeError, r"\bx\b"),
    "string_x": (lambda: L.affine_forward(np.array([["a"]]), np.ones((1, 1)), np.ones(1)),
                 TypeError, r"\bx\b"),
    "bad_cache": (lambda: L.affine_backward(np.ones((2, 2)), None), TypeError, r"cache"),
    "bn_cache_to_layernorm": (
        lambda: L.layernorm_backward(np.ones((2, 3)), L.batchnorm_forward(
            np.ones((2, 3)), np.ones(3), np.zeros(3), {"mode": "train"})[1]),
        TypeError, r"cache"),
}


@pytest.mark.parametrize("call,exc,match", list(PARAM_ERRORS.values()), ids=list(PARAM_ERRORS))
def test_parameter_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@given(n=st.integers(1, 5), d=st.integers(1, 6), m=st.integers(1, 5), extra=st.integers(1, 4))
def test_hypothesis_affine_w_mismatch_raises_value_error(n, d, m, extra):
    x = np.ones((n, d))
    w = np.ones((d + extra, m))
    with pytest.raises(ValueError, match=r"\bw\b has shape"):
        L.affine_forward(x, w, np.ones(m))


@given(n=st.integers(1, 5), c=st.integers(1, 6), data=st.data())
def test_hypothesis_labels_out_of_range_raise_value_error(n, c, data):
    bad = data.draw(st.one_of(st.integers(-100, -1), st.integers(c, c + 100)))
    pos = data.draw(st.integers(0, n - 1))
    y = np.zeros(n, dtype=np.int64)
    y[pos] = bad
    for loss_fn in (L.softmax_loss, L.svm_loss):
        with pytest.raises(ValueError, match=r"\by\b holds the label"):
            loss_fn(np.zeros((n, c)), y)


@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       kind=st.sampled_from(["relu", "sigmoid", "tanh", "swish", "leaky_relu"]))
def test_hypothesis_activation_backward_shape_mismatch(shape, kind):
    forward, backward, _, _ = ACTIVATIONS[kind]
    _, cache = forward(np.ones((2, 3)))
    dout = np.ones(shape)
    assume(dout.shape != (2, 3))
    with pytest.raises(ValueError, match=r"\bdout\b"):
        backward(dout, cache)


# ==================================================================================
# 6. Numerical stability of softmax, and probabilities
# ==================================================================================

def test_softmax_loss_huge_scores_finite(dtype):
    rng = np.random.default_rng(30)
    x = (1e4 * rng.standard_normal((6, 5))).astype(dtype)
    y = rng.integers(5, size=6)
    loss, dx = L.softmax_loss(x, y)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(dx))
    want_loss, want_dx = np_softmax_loss(x, y)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx.sum(axis=1), np.zeros(6), atol=1e-6)


def test_softmax_loss_huge_equal_scores():
    x = np.full((3, 4), 1e4)
    loss, dx = L.softmax_loss(x, np.array([0, 1, 3]))
    assert loss == pytest.approx(np.log(4.0), rel=1e-12)
    want = np.full((3, 4), 0.25 / 3)
    want[[0, 1, 2], [0, 1, 3]] -= 1.0 / 3
    np.testing.assert_allclose(dx, want, rtol=1e-12)


def test_softmax_probabilities_sum_to_one(dtype):
    rng = np.random.default_rng(31)
    x = np.concatenate([rng.standard_normal((5, 9)), 1e4 * rng.standard_normal((3, 9)),
                        np.full((1, 9), -1e4)]).astype(dtype)
    probs = L.softmax(x)
    assert probs.dtype == dtype
    assert np.all(np.isfinite(probs))
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(x.shape[0]),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(probs, np_softmax(x), rtol=1e-5, atol=1e-6)
