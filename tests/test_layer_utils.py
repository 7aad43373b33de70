"""Tests of fastfc.layer_utils: the affine-ReLU and affine-norm-ReLU sandwich layers.

SPEC reference 3 (affine_relu gradient check), float64 gradient checks of every output
of the backward passes, float32/float64 values against the NumPy formula, the
``affine_bn_relu`` / ``affine_ln_relu`` aliases, layouts and argument errors.
"""
import numpy as np
import pytest

from fastfc import layer_utils as LU
from fastfc.gradient_check import eval_numerical_gradient_array, rel_error

F32_VS_F64 = {"rtol": 1e-5, "atol": 1e-5}


def vs_f64(dtype, tol):
    """Tolerance for a result of ``dtype`` against a float64 NumPy formula."""
    return tol if np.dtype(dtype) == np.float64 else F32_VS_F64


# ----------------------------------------------------------------------------------
# NumPy formulas
# ----------------------------------------------------------------------------------

def np_affine_relu(x, w, b):
    x = np.asarray(x, np.float64)
    a = x.reshape(x.shape[0], -1) @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
    return np.maximum(a, 0.0), a


def np_affine_relu_backward(dout, x, w, b):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    _, a = np_affine_relu(x, w, b)
    da = np.asarray(dout, np.float64) * (a > 0)
    x2 = x.reshape(x.shape[0], -1)
    return (da @ w.T).reshape(x.shape), x2.T @ da, da.sum(axis=0)


def np_normalize_forward(a, eps, axis):
    mu = a.mean(axis=axis, keepdims=True)
    var = ((a - mu) ** 2).mean(axis=axis, keepdims=True)
    return (a - mu) / np.sqrt(var + eps)


def np_normalize_backward(dxhat, a, eps, axis):
    """dx of xhat = (a - mean) / sqrt(var + eps), through the computational graph."""
    n = a.shape[axis]
    mu = a.mean(axis=axis, keepdims=True)
    ac = a - mu
    var = (ac ** 2).mean(axis=axis, keepdims=True)
    std = np.sqrt(var + eps)
    dac = dxhat / std
    dstd = -(dxhat * ac / std ** 2).sum(axis=axis, keepdims=True)
    dvar = 0.5 * dstd / std
    dac = dac + 2.0 * ac * dvar / n
    dmu = -dac.sum(axis=axis, keepdims=True)
    return dac + dmu / n


NORM_AXIS = {"batchnorm": 0, "layernorm": 1}


def np_affine_norm_relu(x, w, b, gamma, beta, eps, normalization):
    """(out, cache) of affine -> batch/layer norm (training statistics) -> ReLU in float64."""
    x = np.asarray(x, np.float64)
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    gamma, beta = np.asarray(gamma, np.float64), np.asarray(beta, np.float64)
    a = x.reshape(x.shape[0], -1) @ w + b
    xhat = np_normalize_forward(a, eps, NORM_AXIS[normalization])
    an = gamma * xhat + beta
    return np.maximum(an, 0.0), (x, w, a, xhat, an, gamma)


def np_affine_norm_relu_backward(dout, cache, eps, normalization):
    x, w, a, xhat, an, gamma = cache
    dan = np.asarray(dout, np.float64) * (an > 0)
    dgamma = (dan * xhat).sum(axis=0)
    dbeta = dan.sum(axis=0)
    da = np_normalize_backward(dan * gamma, a, eps, NORM_AXIS[normalization])
    x2 = x.reshape(x.shape[0], -1)
    return (da @ w.T).reshape(x.shape), x2.T @ da, da.sum(axis=0), dgamma, dbeta


def make_norm_params(normalization, mode="train"):
    return {"mode": mode} if normalization == "batchnorm" else {}


def sandwich_setup(seed, n=6, dims=(2, 3), m=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *dims))
    w = rng.standard_normal((int(np.prod(dims)), m))
    b = rng.standard_normal(m)
    gamma = rng.uniform(0.5, 1.5, m)
    beta = rng.uniform(-0.5, 0.5, m)
    dout = rng.standard_normal((n, m))
    return tuple(a.astype(dtype) for a in (x, w, b, gamma, beta, dout))


def min_abs_preactivation(x, w, b, gamma, beta, normalization):
    """Distance of the ReLU inputs from the kink at 0 (so a gradient check is meaningful)."""
    _, cache = np_affine_norm_relu(x, w, b, gamma, beta, 1e-5, normalization)
    return np.abs(cache[4]).min()


# ==================================================================================
# affine_relu
# ==================================================================================

def test_spec3_affine_relu_gradient_check():
    np.random.seed(231)
    x = np.random.randn(2, 3, 4)
    w = np.random.randn(12, 10)
    b = np.random.randn(10)
    dout = np.random.randn(2, 10)

    out, cache = LU.affine_relu_forward(x, w, b)
    dx, dw, db = LU.affine_relu_backward(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda x: LU.affine_relu_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: LU.affine_relu_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: LU.affine_relu_forward(x, w, b)[0], b, dout)

    assert out.shape == (2, 10)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_affine_relu_cache_structure():
    x, w, b, _, _, _ = sandwich_setup(0)
    out, cache = LU.affine_relu_forward(x, w, b)
    assert isinstance(cache, tuple) and len(cache) == 2
    fc_cache, relu_cache = cache
    assert isinstance(fc_cache, tuple) and len(fc_cache) == 3
    np.testing.assert_allclose(relu_cache, np_affine_relu(x, w, b)[1], rtol=1e-12, atol=1e-14)


def test_affine_relu_dtype_and_values(dtype, tol):
    x, w, b, _, _, dout = sandwich_setup(1, dtype=dtype)
    out, cache = LU.affine_relu_forward(x, w, b)
    want_out, a = np_affine_relu(x, w, b)
    assert out.dtype == dtype and out.shape == want_out.shape
    np.testing.assert_allclose(out, want_out, **vs_f64(dtype, tol))
    assert np.abs(a).min() > 1e-3  # no pre-activation at the kink: the mask is unambiguous

    grads = LU.affine_relu_backward(dout, cache)
    for got, want in zip(grads, np_affine_relu_backward(dout, x, w, b)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **vs_f64(dtype, tol))


@pytest.mark.parametrize("layout", ["fortran", "transposed_view", "step2"])
def test_affine_relu_non_contiguous(layout, dtype, tol):
    x, w, b, _, _, dout = sandwich_setup(2, n=5, dims=(4,), m=3, dtype=dtype)
    if layout == "fortran":
        xs, ws = np.asfortranarray(x), np.asfortranarray(w)
    elif layout == "transposed_view":
        xs, ws = np.ascontiguousarray(x.T).T, np.ascontiguousarray(w.T).T
    else:
        xs = np.repeat(x, 2, axis=1)[:, ::2]
        ws = np.repeat(w, 2, axis=1)[:, ::2]
    assert not xs.flags.c_contiguous and not ws.flags.c_contiguous
    ref_out, ref_cache = LU.affine_relu_forward(x, w, b)
    out, cache = LU.affine_relu_forward(xs, ws, b)
    np.testing.assert_allclose(out, ref_out, **tol)
    for got, want in zip(LU.affine_relu_backward(dout, cache),
                         LU.affine_relu_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, want, **tol)


def test_affine_relu_single_sample_single_feature(dtype, tol):
    x = np.array([[2.0]], dtype=dtype)
    w = np.array([[1.5, -1.0]], dtype=dtype)
    b = np.array([0.5, 0.5], dtype=dtype)
    out, cache = LU.affine_relu_forward(x, w, b)
    np.testing.assert_allclose(out, [[3.5, 0.0]], **tol)
    dx, dw, db = LU.affine_relu_backward(np.array([[1.0, 1.0]], dtype=dtype), cache)
    np.testing.assert_allclose(dx, [[1.5]], **tol)
    np.testing.assert_allclose(dw, [[2.0, 0.0]], **tol)
    np.testing.assert_allclose(db, [1.0, 0.0], **tol)


def test_affine_relu_integer_x_promoted_and_mixed_dtypes_promoted():
    x = np.arange(6).reshape(2, 3)
    w = np.linspace(-1, 1, 6).reshape(3, 2)
    b = np.zeros(2)
    out, _ = LU.affine_relu_forward(x, w, b)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.maximum(x @ w, 0), rtol=1e-12, atol=1e-14)
    out32, _ = LU.affine_relu_forward(x.astype(np.float32), w, b)  # promotes, as NumPy
    assert out32.dtype == np.float64
    with pytest.raises(ValueError, match=r"\bw\b"):
        LU.affine_relu_forward(np.ones((2, 4)), w, b)


# ==================================================================================
# affine_norm_relu and the aliases
# ==================================================================================

NORMS = ["batchnorm", "layernorm"]


@pytest.mark.parametrize("normalization", NORMS)
def test_gradcheck_affine_norm_relu(normalization):
    x, w, b, gamma, beta, dout = sandwich_setup(3)
    assert min_abs_preactivation(x, w, b, gamma, beta, normalization) > 1e-3

    def fwd(x=x, w=w, b=b, gamma=gamma, beta=beta):
        return LU.affine_norm_relu_forward(x, w, b, gamma, beta,
                                           make_norm_params(normalization), normalization)[0]

    _, cache = LU.affine_norm_relu_forward(x, w, b, gamma, beta,
                                           make_norm_params(normalization), normalization)
    dx, dw, db, dgamma, dbeta = LU.affine_norm_relu_backward(dout, cache)

    num = {
        "dx": eval_numerical_gradient_array(lambda v: fwd(x=v), x, dout),
        "dw": eval_numerical_gradient_array(lambda v: fwd(w=v), w, dout),
        "db": eval_numerical_gradient_array(lambda v: fwd(b=v), b, dout),
        "dgamma": eval_numerical_gradient_array(lambda v: fwd(gamma=v), gamma, dout),
        "dbeta": eval_numerical_gradient_array(lambda v: fwd(beta=v), beta, dout),
    }
    ana = {"dx": dx, "dw": dw, "db": db, "dgamma": dgamma, "dbeta": dbeta}
    for name in num:
        assert ana[name].shape == num[name].shape, name
        if normalization == "batchnorm" and name == "db":
            # batch norm removes the bias: both gradients are 0 up to rounding, where a
            # relative error means nothing
            np.testing.assert_allclose(num[name], 0.0, atol=1e-9)
            np.testing.assert_allclose(ana[name], 0.0, atol=1e-12)
        else:
            assert rel_error(num[name], ana[name]) < 1e-8, name


ALIASES = {
    "batchnorm": (LU.affine_bn_relu_forward, LU.affine_bn_relu_backward),
    "layernorm": (LU.affine_ln_relu_forward, LU.affine_ln_relu_backward),
}


@pytest.mark.parametrize("normalization", NORMS)
def test_gradcheck_alias(normalization):
    forward, backward = ALIASES[normalization]
    x, w, b, gamma, beta, dout = sandwich_setup(4, n=5, dims=(4,), m=3)
    assert min_abs_preactivation(x, w, b, gamma, beta, normalization) > 1e-3

    def fwd(x=x, w=w, b=b, gamma=gamma, beta=beta):
        return forward(x, w, b, gamma, beta, make_norm_params(normalization))[0]

    _, cache = forward(x, w, b, gamma, beta, make_norm_params(normalization))
    dx, dw, db, dgamma, dbeta = backward(dout, cache)
    assert rel_error(eval_numerical_gradient_array(lambda v: fwd(x=v), x, dout), dx) < 1e-8
    assert rel_error(eval_numerical_gradient_array(lambda v: fwd(w=v), w, dout), dw) < 1e-8
    db_num = eval_numerical_gradient_array(lambda v: fwd(b=v), b, dout)
    if normalization == "batchnorm":  # the bias cancels: both are 0 up to rounding
        np.testing.assert_allclose(db_num, 0.0, atol=1e-9)
        np.testing.assert_allclose(db, 0.0, atol=1e-12)
    else:
        assert rel_error(db_num, db) < 1e-8
    assert rel_error(eval_numerical_gradient_array(
        lambda v: fwd(gamma=v), gamma, dout), dgamma) < 1e-8
    assert rel_error(eval_numerical_gradient_array(
        lambda v: fwd(beta=v), beta, dout), dbeta) < 1e-8


@pytest.mark.parametrize("normalization", NORMS)
def test_alias_matches_general_form(normalization):
    forward, backward = ALIASES[normalization]
    x, w, b, gamma, beta, dout = sandwich_setup(5)
    out_a, cache_a = forward(x, w, b, gamma, beta, make_norm_params(normalization))
    out_g, cache_g = LU.affine_norm_relu_forward(x, w, b, gamma, beta,
                                                 make_norm_params(normalization), normalization)
    np.testing.assert_array_equal(out_a, out_g)
    grads_a = backward(dout, cache_a)
    grads_g = LU.affine_norm_relu_backward(dout, cache_g)
    assert len(grads_a) == len(grads_g) == 5
    for ga, gg in zip(grads_a, grads_g):
        np.testing.assert_array_equal(ga, gg)


def test_affine_norm_relu_default_is_batchnorm():
    x, w, b, gamma, beta, _ = sandwich_setup(6)
    out_default, _ = LU.affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"})
    want, _ = np_affine_norm_relu(x, w, b, gamma, beta, 1e-5, "batchnorm")
    np.testing.assert_allclose(out_default, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("normalization", NORMS)
def test_affine_norm_relu_dtype_and_values(normalization, dtype, tol):
    x, w, b, gamma, beta, dout = sandwich_setup(7, n=8, dims=(3, 2), m=4, dtype=dtype)
    assert min_abs_preactivation(x, w, b, gamma, beta, normalization) > 1e-3
    out, cache = LU.affine_norm_relu_forward(x, w, b, gamma, beta,
                                             make_norm_params(normalization), normalization)
    want_out, np_cache = np_affine_norm_relu(x, w, b, gamma, beta, 1e-5, normalization)
    assert out.dtype == dtype and out.shape == want_out.shape
    np.testing.assert_allclose(out, want_out, **vs_f64(dtype, tol))

    grads = LU.affine_norm_relu_backward(dout, cache)
    want_grads = np_affine_norm_relu_backward(dout, np_cache, 1e-5, normalization)
    for name, got, want in zip(["dx", "dw", "db", "dgamma", "dbeta"], grads, want_grads):
        assert got.dtype == dtype, name
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=name, **vs_f64(dtype, tol))


def test_affine_bn_relu_updates_running_stats_and_test_mode(dtype, tol):
    x, w, b, gamma, beta, _ = sandwich_setup(8, n=10, dims=(3,), m=4, dtype=dtype)
    bn_param = {"mode": "train", "momentum": 0.5}
    LU.affine_bn_relu_forward(x, w, b, gamma, beta, bn_param)
    a = x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64)
    np.testing.assert_allclose(bn_param["running_mean"], 0.5 * a.mean(axis=0),
                               **vs_f64(dtype, tol))
    np.testing.assert_allclose(bn_param["running_var"], 0.5 * a.var(axis=0),
                               **vs_f64(dtype, tol))
    assert bn_param["running_mean"].dtype == dtype

    bn_param["mode"] = "test"
    rm = bn_param["running_mean"].astype(np.float64)
    rv = bn_param["running_var"].astype(np.float64)
    out, _ = LU.affine_bn_relu_forward(x, w, b, gamma, beta, bn_param)
    want = np.maximum(gamma.astype(np.float64) * (a - rm) / np.sqrt(rv + 1e-5)
                      + beta.astype(np.float64), 0.0)
    np.testing.assert_allclose(out, want, **vs_f64(dtype, tol))


def test_affine_ln_relu_single_sample_is_finite():
    x, w, b, gamma, beta, dout = sandwich_setup(9, n=1, dims=(4,), m=3)
    out, cache = LU.affine_ln_relu_forward(x, w, b, gamma, beta, {})
    want, np_cache = np_affine_norm_relu(x, w, b, gamma, beta, 1e-5, "layernorm")
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)
    grads = LU.affine_ln_relu_backward(dout, cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_affine_ln_relu_single_output_feature_is_finite(dtype):
    x, w, b, gamma, beta, dout = sandwich_setup(10, n=4, dims=(3,), m=1, dtype=dtype)
    out, cache = LU.affine_ln_relu_forward(x, w, b, gamma, beta, {})
    # one feature per row normalises to 0: out = relu(beta)
    np.testing.assert_allclose(out, np.maximum(np.broadcast_to(beta, (4, 1)), 0), atol=1e-6)
    grads = LU.affine_ln_relu_backward(dout, cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("bad", ["groupnorm", None, "BatchNorm"])
def test_affine_norm_relu_unknown_normalization(bad):
    x, w, b, gamma, beta, _ = sandwich_setup(11)
    with pytest.raises(ValueError, match=r"normalization"):
        LU.affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"}, bad)


def test_affine_norm_relu_argument_errors():
    x, w, b, gamma, beta, _ = sandwich_setup(12)
    with pytest.raises(ValueError, match=r"\bgamma\b"):
        LU.affine_bn_relu_forward(x, w, b, np.ones(7), beta, {"mode": "train"})
    with pytest.raises(ValueError, match=r"\bbeta\b"):
        LU.affine_ln_relu_forward(x, w, b, gamma, np.zeros(2), {})
    with pytest.raises(ValueError, match=r"bn_param"):
        LU.affine_bn_relu_forward(x, w, b, gamma, beta, {})
    out, _ = LU.affine_bn_relu_forward(x, w, b, gamma.astype(np.float32), beta,
                                       {"mode": "train"})
    assert out.dtype == np.result_type(x, w, gamma)  # mixed dtypes promote, as NumPy
    _, cache = LU.affine_ln_relu_forward(x, w, b, gamma, beta, {})
    with pytest.raises(ValueError, match=r"\bdout\b"):
        LU.affine_ln_relu_backward(np.ones((x.shape[0], 7)), cache)
