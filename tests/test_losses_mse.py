"""Mean squared error and per-sample weights in the losses (kernels, layers, Net).

1. ``fastfc.layers.mse_loss`` against the NumPy formula (float32 and float64), edge
   shapes, central-difference gradient checks in float64.
2. ``sample_weight`` in softmax_loss / svm_loss / mse_loss: the weighted mean
   ``sum(w_i l_i) / sum(w_i)``, integer weights equal repeated rows, gradient checks,
   all-ones weights equal the unweighted path.
3. ``Net(loss='mse')``: loss and gradients (GradientCheck), training, gathering by
   ``indices``, predict, save/load and pickle; weights through ``Net.train_step`` and
   ``Net.loss``.
4. The tied-weight autoencoder of the worked examples written on ``mse_loss``.
5. Bad input: clear exceptions naming the argument.

Tolerances.  The loss layers' gradient checks use SPEC.md's loss tolerances (rel_error
< 1e-8 for svm_loss, 1e-7 for softmax_loss, item 4): 1e-8 unweighted -- the MSE is
quadratic in x, so its centred differences carry only rounding (measured 1e-10) -- and
1e-7 with weights, whose small entries (w_i / sum(w) times a small residual) make the
same rounding a larger relative error (measured up to 6e-8).  Whole-net checks use the
rule of ``fastfc gradcheck``: |numeric - analytic| <= rtol (|numeric| + |analytic|) +
atol with rtol 1e-7 for one weight layer, 10x per further layer, and atol the rounding
of the difference itself, 10 eps max(1, |loss|) / h (it matters where a gradient is ~0,
e.g. the biases in front of batch norm).  float32 results are compared with the float64
formula to rtol 1e-5.
"""
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfc import Net
from fastfc import layers as L
from fastfc.gradient_check import GradientCheck, eval_numerical_gradient, rel_error

LOSS_TOL = 1e-8          # SPEC.md item 4 (svm_loss dx)
WEIGHTED_TOL = 1e-7      # SPEC.md item 4 (softmax_loss dx)
F32 = {"rtol": 1e-5, "atol": 1e-6}
H = 1e-5


def net_tol(n_layers):
    return min(1e-5, 1e-7 * 10.0 ** (n_layers - 1))


def assert_net_gradients(net, X, y, sample_weight=None):
    """Every parameter of a float64 net against centred differences (the rule of
    ``fastfc gradcheck``, see the module docstring)."""
    loss, grads = net.loss(X, y, sample_weight=sample_weight)
    grads = {k: np.array(v, copy=True) for k, v in grads.items()}
    rtol = net_tol(net.num_layers)
    atol = 10 * np.finfo(np.float64).eps * max(1.0, abs(loss)) / H
    for name, param in net.params.items():
        num = eval_numerical_gradient(
            lambda _: float(net.loss(X, y, sample_weight=sample_weight)[0]), param,
            verbose=False, h=H)
        worst = np.max(np.abs(num - grads[name])
                       / (rtol * (np.abs(num) + np.abs(grads[name])) + atol))
        assert worst <= 1.0, (name, worst, rel_error(num, grads[name]))


# ----------------------------------------------------------------------------------
# NumPy formulas
# ----------------------------------------------------------------------------------

def np_mse(x, y, w=None):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).reshape(x.shape)
    n = x.shape[0]
    w = np.ones(n) if w is None else np.asarray(w, np.float64)
    per_row = 0.5 * ((x - y) ** 2).sum(axis=1)
    return (w * per_row).sum() / w.sum(), (x - y) * (w / w.sum())[:, None]


def np_softmax_rows(x, y):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    l = -np.log(p[np.arange(len(y)), y])
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    return l, d


def np_svm_rows(x, y):
    x = np.asarray(x, np.float64)
    n = len(y)
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1)
    margins[np.arange(n), y] = 0
    d = (margins > 0).astype(np.float64)
    d[np.arange(n), y] = -d.sum(axis=1)
    return margins.sum(axis=1), d


def np_weighted(rows, x, y, w):
    """Weighted mean loss and its gradient from per-row losses and gradients."""
    l, d = rows(x, y)
    w = np.asarray(w, np.float64)
    return (w * l).sum() / w.sum(), d * (w / w.sum())[:, None]


LOSSES = {"softmax": (L.softmax_loss, np_softmax_rows), "svm": (L.svm_loss, np_svm_rows)}


# ----------------------------------------------------------------------------------
# 1. mse_loss
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, d", [(1, 1), (1, 4), (7, 1), (6, 3), (50, 10)])
def test_mse_loss_matches_formula(n, d, dtype):
    rng = np.random.default_rng(n * 10 + d)
    x = rng.standard_normal((n, d)).astype(dtype)
    y = rng.standard_normal((n, d)).astype(dtype)
    loss, dx = L.mse_loss(x, y)
    want_loss, want_dx = np_mse(x, y)
    assert dx.dtype == dtype and dx.shape == (n, d)
    tol = {"rtol": 1e-12, "atol": 1e-15} if dtype == np.float64 else F32
    np.testing.assert_allclose(loss, want_loss, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)


def test_mse_loss_is_half_squared_error_averaged_over_the_batch_only():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([[1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    # row 0: 0.5 * 4 = 2; row 1: 0.5 * 3 = 1.5; mean over 2 rows (not 6 entries)
    loss, dx = L.mse_loss(x, y)
    assert loss == 1.75
    np.testing.assert_array_equal(dx, (x - y) / 2)


def test_mse_loss_targets_of_one_output_may_be_1d(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 1)).astype(dtype)
    y = rng.standard_normal(5)
    a = L.mse_loss(x, y)
    b = L.mse_loss(x, y.reshape(5, 1))
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_mse_loss_layouts_and_target_dtype_follow_x():
    rng = np.random.default_rng(2)
    x = np.asfortranarray(rng.standard_normal((6, 4)))
    y = rng.standard_normal((4, 6)).T            # a transposed view
    loss, dx = L.mse_loss(x, y)
    want_loss, want_dx = np_mse(x, y)
    assert abs(loss - want_loss) < 1e-12
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12)
    # float32 x with float64 targets computes in float32
    loss32, dx32 = L.mse_loss(x.astype(np.float32), y)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(loss32, want_loss, rtol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_loss_gradient_check(weighted):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 4))
    y = rng.standard_normal((9, 4))
    w = rng.uniform(0.0, 3.0, 9) if weighted else None
    loss, dx = L.mse_loss(x, y, sample_weight=w)
    tol = WEIGHTED_TOL if weighted else LOSS_TOL
    dx_num = eval_numerical_gradient(lambda x: L.mse_loss(x, y, sample_weight=w)[0], x,
                                     verbose=False)
    assert rel_error(dx_num, dx) < tol
    # and with respect to the targets: d loss / d y = -dx
    dy_num = eval_numerical_gradient(lambda y: L.mse_loss(x, y, sample_weight=w)[0], y,
                                     verbose=False)
    assert rel_error(dy_num, -dx) < tol


def test_mse_loss_zero_at_the_targets_and_wrong_gradient_caught():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3))
    loss, dx = L.mse_loss(x, x.copy())
    assert loss == 0.0 and not dx.any()
    # a gradient off by the factor 2 (forgetting the 1/2) is far from the numerical one
    y = rng.standard_normal((5, 3))
    dx_num = eval_numerical_gradient(lambda x: L.mse_loss(x, y)[0], x, verbose=False)
    assert rel_error(dx_num, 2 * L.mse_loss(x, y)[1]) > 0.1


# ----------------------------------------------------------------------------------
# 2. sample_weight in the three losses
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_weighted_classification_loss_matches_formula(name, dtype):
    fn, rows = LOSSES[name]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 5)).astype(dtype)
    y = rng.integers(0, 5, 12)
    w = rng.uniform(0.0, 2.0, 12).astype(dtype)
    loss, dx = fn(x, y, sample_weight=w)
    want_loss, want_dx = np_weighted(rows, x, y, w)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else F32
    np.testing.assert_allclose(loss, want_loss, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)


def test_weighted_mse_matches_formula(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((12, 3)).astype(dtype)
    y = rng.standard_normal((12, 3)).astype(dtype)
    w = rng.uniform(0.0, 2.0, 12)
    loss, dx = L.mse_loss(x, y, sample_weight=w)
    want_loss, want_dx = np_mse(x, y, w.astype(dtype))
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else F32
    np.testing.assert_allclose(loss, want_loss, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)


@pytest.mark.parametrize("name", ["softmax", "svm", "mse"])
def test_integer_weights_equal_repeated_rows(name):
    rng = np.random.default_rng(7)
    n, c = 8, 4
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, n) if name != "mse" else rng.standard_normal((n, c))
    w = np.array([0, 1, 2, 3, 1, 0, 4, 1])
    fn = {"softmax": L.softmax_loss, "svm": L.svm_loss, "mse": L.mse_loss}[name]
    loss_w, dx_w = fn(x, y, sample_weight=w)
    rep = np.repeat(np.arange(n), w)
    loss_r, dx_r = fn(x[rep], y[rep])
    assert abs(loss_w - loss_r) < 1e-12
    # the repeated rows' gradients add up to the weighted row's gradient
    summed = np.zeros_like(dx_w)
    np.add.at(summed, rep, dx_r)
    np.testing.assert_allclose(dx_w, summed, rtol=1e-12, atol=1e-15)
    assert not dx_w[w == 0].any()


@pytest.mark.parametrize("name", ["softmax", "svm", "mse"])
def test_weighted_loss_gradient_check(name):
    rng = np.random.default_rng(8)
    x = 0.5 * rng.standard_normal((10, 6))
    y = rng.integers(0, 6, 10) if name != "mse" else rng.standard_normal((10, 6))
    w = rng.uniform(0.1, 3.0, 10)
    fn = {"softmax": L.softmax_loss, "svm": L.svm_loss, "mse": L.mse_loss}[name]
    _, dx = fn(x, y, sample_weight=w)
    dx_num = eval_numerical_gradient(lambda x: fn(x, y, sample_weight=w)[0], x,
                                     verbose=False)
    assert rel_error(dx_num, dx) < WEIGHTED_TOL


@pytest.mark.parametrize("name", ["softmax", "svm", "mse"])
def test_weights_are_normalised_by_their_sum(name):
    """Scaling all weights changes nothing; equal weights give the unweighted loss."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 3))
    y = rng.integers(0, 3, 7) if name != "mse" else rng.standard_normal((7, 3))
    fn = {"softmax": L.softmax_loss, "svm": L.svm_loss, "mse": L.mse_loss}[name]
    w = rng.uniform(0.5, 2.0, 7)
    a, b = fn(x, y, sample_weight=w), fn(x, y, sample_weight=1000.0 * w)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-13)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-13)
    plain, equal = fn(x, y), fn(x, y, sample_weight=np.full(7, 0.3))
    np.testing.assert_allclose(plain[0], equal[0], rtol=1e-13)
    np.testing.assert_allclose(plain[1], equal[1], rtol=1e-13)


@pytest.mark.parametrize("name", ["softmax", "mse"])
def test_unit_weights_are_bit_identical_to_unweighted(name, dtype):
    """With w = 1 every scale is the correctly rounded 1/n, as on the unweighted path."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((13, 5)).astype(dtype)
    y = rng.integers(0, 5, 13) if name != "mse" else rng.standard_normal((13, 5))
    fn = {"softmax": L.softmax_loss, "mse": L.mse_loss}[name]
    a, b = fn(x, y), fn(x, y, sample_weight=np.ones(13))
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


# ----------------------------------------------------------------------------------
# 3. Net(loss='mse') and weights through the Net
# ----------------------------------------------------------------------------------

def _reg_data(n=9, d_in=5, d_out=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d_in)).astype(dtype),
            rng.standard_normal((n, d_out)).astype(dtype))


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "swish"])
def test_net_mse_loss_is_mse_of_its_outputs_and_gradients_check(normalization, activation):
    X, Y = _reg_data()
    net = Net([5, 7, 6, 3], activation=activation, normalization=normalization,
              loss="mse", reg=0.1, seed=1, dtype=np.float64)
    loss, grads = net.loss(X, Y)
    # the data loss is the MSE of the train-mode outputs (no dropout here; batch norm
    # in train mode differs from loss(X), so compare the norm-free net only)
    if normalization is None:
        sumsq = sum((net.params[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
        assert abs(loss - (np_mse(net.loss(X), Y)[0] + 0.5 * 0.1 * sumsq)) < 1e-12
    assert_net_gradients(net, X, Y)
    if normalization is None:
        # and through GradientCheck (which runs on a float64 copy of a float32 net)
        errors = GradientCheck(net.astype(np.float32), verbose=False).run(X, Y)
        assert set(errors) == set(net.params)
        assert max(errors.values()) < net_tol(3)


def test_net_mse_gradient_check_catches_a_wrong_gradient():
    X, Y = _reg_data()
    net = Net([5, 4, 3], loss="mse", seed=2, dtype=np.float64)

    class Wrong:
        params = net.params

        def astype(self, dtype):
            return self

        def loss(self, X, y=None):
            loss, grads = net.loss(X, y)
            grads["W2"] = 2 * grads["W2"]       # the slip of dropping the 1/2
            return loss, grads

    errors = GradientCheck(Wrong(), verbose=False).run(X, Y)
    assert errors["W2"] > 0.1 and errors["W1"] < net_tol(2)


def test_net_mse_trains_and_predicts_outputs(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 4)).astype(dtype)
    A = rng.standard_normal((4, 2))
    Y = np.tanh(X @ A).astype(dtype)
    net = Net([4, 16, 2], activation="tanh", loss="mse", seed=0, dtype=dtype)
    net.set_optimizer("adam", learning_rate=1e-2)
    first = net.loss(X, Y)[0]
    for _ in range(300):
        last = net.train_step(X, Y)
    assert last < 0.1 * first
    pred = net.predict(X)
    assert pred.shape == (64, 2) and pred.dtype == dtype
    np.testing.assert_array_equal(pred, net.loss(X))
    assert np_mse(pred, Y)[0] < 0.1 * first


def test_net_mse_float32_agrees_with_float64():
    X, Y = _reg_data(dtype=np.float64)
    net64 = Net([5, 8, 3], loss="mse", seed=4, dtype=np.float64)
    net32 = net64.astype(np.float32)
    l64, g64 = net64.loss(X, Y)
    l32, g32 = net32.loss(X.astype(np.float32), Y.astype(np.float32))
    assert abs(l32 - l64) < 1e-5 * max(1.0, abs(l64))
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-5)


def test_net_mse_train_step_with_indices_gathers_targets_like_rows():
    X, Y = _reg_data(n=20, dtype=np.float32)
    idx = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    a = Net([5, 6, 3], loss="mse", seed=5)
    b = Net([5, 6, 3], loss="mse", seed=5)
    for net in (a, b):
        net.set_optimizer("sgd_momentum", learning_rate=0.05)
    for _ in range(3):
        la = a.train_step(X, Y[idx], indices=idx)
        lb = b.train_step(X[idx], Y[idx])
        assert la == lb
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_net_mse_one_output_takes_1d_targets_and_integer_targets():
    X, Y = _reg_data(d_out=1)
    net = Net([5, 4, 1], loss="mse", seed=6, dtype=np.float64)
    assert net.loss(X, Y[:, 0])[0] == net.loss(X, Y)[0]
    Yi = np.arange(9).reshape(9, 1)
    assert net.loss(X, Yi)[0] == net.loss(X, Yi.astype(np.float64))[0]


def test_net_mse_save_load_and_pickle(tmp_path):
    X, Y = _reg_data()
    net = Net([5, 4, 3], loss="mse", normalization="batchnorm", seed=7, dtype=np.float64)
    net.set_optimizer("adam", learning_rate=1e-2)
    for _ in range(5):
        net.train_step(X, Y)
    path = net.save(tmp_path / "m.npz")
    pred = net.predict(X)
    for other in (Net.load(path), pickle.loads(pickle.dumps(net))):
        assert other.loss_name == "mse"
        np.testing.assert_array_equal(other.predict(X), pred)


@pytest.mark.parametrize("loss", ["softmax", "svm", "mse"])
def test_net_weighted_loss_gradient_check(loss):
    X, Y = _reg_data(n=8)
    y = np.random.default_rng(1).integers(0, 3, 8) if loss != "mse" else Y
    w = np.random.default_rng(2).uniform(0.2, 2.0, 8)
    net = Net([5, 6, 3], activation="tanh", normalization="layernorm", loss=loss,
              reg=0.05, seed=8, dtype=np.float64)
    assert_net_gradients(net, X, y, sample_weight=w)


@pytest.mark.parametrize("loss", ["softmax", "svm", "mse"])
def test_net_weighted_loss_equals_repeated_rows(loss):
    X, Y = _reg_data(n=8)
    y = np.random.default_rng(1).integers(0, 3, 8) if loss != "mse" else Y
    w = np.array([1, 0, 3, 2, 1, 1, 0, 2])
    rep = np.repeat(np.arange(8), w)
    net = Net([5, 6, 3], loss=loss, seed=9, dtype=np.float64)
    lw, gw = net.loss(X, y, sample_weight=w)
    gw = {k: v.copy() for k, v in gw.items()}
    lr, gr = net.loss(X[rep], y[rep])
    assert abs(lw - lr) < 1e-12
    for k in gw:
        np.testing.assert_allclose(gw[k], gr[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", ["softmax", "svm", "mse"])
def test_net_train_step_sample_weight(loss):
    """Weighted steps follow the weighted gradient: with indices the weights are given
    gathered, like the labels; integer weights match repeated rows."""
    X, Y = _reg_data(n=16, dtype=np.float64)
    y = np.random.default_rng(1).integers(0, 3, 16) if loss != "mse" else Y
    idx = np.array([0, 5, 7, 2, 9, 11])
    w = np.array([2.0, 1.0, 0.0, 3.0, 1.0, 1.0])
    rep = np.repeat(idx, w.astype(int))
    a = Net([5, 6, 3], loss=loss, seed=10, dtype=np.float64)
    b = Net([5, 6, 3], loss=loss, seed=10, dtype=np.float64)
    for net in (a, b):
        net.set_optimizer("sgd", learning_rate=0.1)
    for _ in range(3):
        la = a.train_step(X, y[idx], indices=idx, sample_weight=w)
        lb = b.train_step(X[rep], y[rep])
        assert abs(la - lb) < 1e-12
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_net_unit_weights_are_bit_identical(loss, dtype):
    X, Y = _reg_data(n=10, dtype=dtype)
    y = np.random.default_rng(1).integers(0, 3, 10) if loss != "mse" else Y
    a = Net([5, 6, 3], loss=loss, seed=11, dtype=dtype, dropout_keep_ratio=0.8)
    b = Net([5, 6, 3], loss=loss, seed=11, dtype=dtype, dropout_keep_ratio=0.8)
    for net in (a, b):
        net.set_optimizer("adam", learning_rate=1e-2)
    for _ in range(4):
        assert a.train_step(X, y) == b.train_step(X, y, sample_weight=np.ones(10))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_zero_weight_samples_do_not_move_the_net():
    """A step whose only weighted sample is row 0 equals a step on row 0 alone."""
    X, Y = _reg_data(n=6)
    w = np.zeros(6)
    w[0] = 2.5
    a = Net([5, 4, 3], loss="mse", seed=12, dtype=np.float64)
    b = Net([5, 4, 3], loss="mse", seed=12, dtype=np.float64)
    for net in (a, b):
        net.set_optimizer("sgd", learning_rate=0.1)
    a.train_step(X, Y, sample_weight=w)
    b.train_step(X[:1], Y[:1])
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------
# 4. The tied-weight autoencoder of the worked examples, on mse_loss
# ----------------------------------------------------------------------------------

class MSEAutoencoder:
    r"""x_hat = W^T W x, loss = mse_loss(X_hat, X) = 1/(2N) sum_n ||W^T W x_n - x_n||^2.

    With G = dL/dX_hat from mse_loss (= R / N) and X_hat = X W^T W:
    dL/dW = W (X^T G + G^T X); dL/dX = G (W^T W - I) (the target X also moves).
    """

    def __init__(self, k=3, d=5, seed=0):
        self.params = {"W": 0.6 * np.random.default_rng(seed).standard_normal((k, d))}

    def loss(self, X, y=None):
        W = self.params["W"]
        X = np.asarray(X, dtype=W.dtype)
        M = W.T @ W
        loss, G = L.mse_loss(X @ M, X)
        dX = G @ (M - np.eye(M.shape[0]))
        return loss, {"W": W @ (X.T @ G + G.T @ X), "X": dX}


def test_autoencoder_on_mse_loss_matches_the_worked_example_formula():
    X = np.random.default_rng(1).standard_normal((7, 5))
    model = MSEAutoencoder()
    W = model.params["W"]
    expected = np.mean([0.5 * np.sum((W.T @ (W @ x) - x) ** 2) for x in X])
    assert model.loss(X)[0] == pytest.approx(expected, rel=1e-13)


def test_autoencoder_on_mse_loss_gradient_check():
    model = MSEAutoencoder()
    errors = GradientCheck(model, verbose=False, check_input=True).run(
        np.random.default_rng(1).standard_normal((7, 5)), None)
    assert list(errors) == ["W", "X"]
    assert max(errors.values()) < 1e-7


# ----------------------------------------------------------------------------------
# 5. Bad input
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("y, exc, words", [
    (np.zeros((4, 2)), ValueError, "y must have the shape of x"),
    (np.zeros(4), ValueError, "y must have the shape of x"),
    (np.zeros((3, 3)), ValueError, "y must have the shape of x"),
    (np.array(["a"] * 12).reshape(4, 3), TypeError, "y must be a numeric array"),
    (np.zeros((4, 3), complex), TypeError, "y must be real-valued"),
])
def test_mse_loss_bad_targets(y, exc, words):
    with pytest.raises(exc, match=words):
        L.mse_loss(np.zeros((4, 3)), y)


@pytest.mark.parametrize("fn", [L.softmax_loss, L.svm_loss, L.mse_loss])
@pytest.mark.parametrize("w, words", [
    (np.ones(3), r"sample_weight must have shape \(4,\)"),
    (np.ones((4, 1)), r"sample_weight must have shape \(4,\)"),
    (np.array([1.0, -1.0, 1.0, 1.0]), "sample_weight must be >= 0"),
    (np.array([1.0, np.nan, 1.0, 1.0]), "sample_weight must hold finite"),
    (np.zeros(4), "sample_weight must have a positive sum"),
])
def test_bad_sample_weight(fn, w, words):
    x = np.zeros((4, 3))
    y = np.zeros((4, 3)) if fn is L.mse_loss else np.zeros(4, int)
    with pytest.raises(ValueError, match=words):
        fn(x, y, sample_weight=w)


def test_sample_weight_must_be_numeric():
    with pytest.raises(TypeError, match="sample_weight"):
        L.softmax_loss(np.zeros((2, 3)), [0, 1], sample_weight=["a", "b"])


@pytest.mark.parametrize("y, words", [
    (np.zeros(6), r"y must hold the regression targets, shape \(6, 3\)"),
    (np.zeros((6, 2)), r"y must hold the regression targets, shape \(6, 3\)"),
    (np.zeros((5, 3)), r"y must hold the regression targets, shape \(6, 3\)"),
])
def test_net_mse_bad_targets(y, words):
    net = Net([4, 5, 3], loss="mse", seed=0)
    net.set_optimizer("sgd")
    X = np.zeros((6, 4), np.float32)
    with pytest.raises(ValueError, match=words):
        net.loss(X, y)
    with pytest.raises(ValueError, match=words):
        net.train_step(X, y)
    with pytest.raises(TypeError, match="y must be a numeric array"):
        net.train_step(X, np.array(["x"] * 18).reshape(6, 3))


def test_net_bad_sample_weight():
    net = Net([4, 5, 3], seed=0)
    net.set_optimizer("sgd")
    X = np.zeros((6, 4), np.float32)
    y = np.zeros(6, int)
    for w, words in ((np.ones(5), r"sample_weight must have shape \(6,\)"),
                     (-np.ones(6), "sample_weight must be >= 0"),
                     (np.full(6, np.inf), "sample_weight must hold finite"),
                     (np.zeros(6), "sample_weight must have a positive sum"),
                     (np.full(6, 1e-60), "sample_weight must have a positive sum")):
        with pytest.raises(ValueError, match=words):
            net.train_step(X, y, sample_weight=w)
        with pytest.raises(ValueError, match=words):
            net.loss(X, y, sample_weight=w)
    # with indices the weights are one per picked row
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(2,\)"):
        net.train_step(X, y[:2], indices=[0, 1], sample_weight=np.ones(6))


def test_net_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be 'softmax', 'svm' or 'mse'"):
        Net([3, 2], loss="mae")


def test_net_core_refuses_targets_of_the_wrong_kind():
    """In the debug build the compiled step checks the targets and weights it is given
    even when the wrapper is bypassed (a release build trusts Net, which checks them:
    see the tests above)."""
    from fastfc._build_info import BUILD_INFO
    if not BUILD_INFO.get("debug"):
        pytest.skip("release build: the core trusts Net (CI runs this in the debug build)")
    net = Net([4, 3], loss="mse", seed=0)
    X = np.zeros((2, 4), np.float32)
    with pytest.raises(TypeError, match="y must hold float32 targets"):
        net._core.run(X, np.zeros((2, 3)), None, True, True, False)
    with pytest.raises(ValueError, match="y has 4 values for 2 samples of 3 outputs"):
        net._core.run(X, np.zeros(4, np.float32), None, True, True, False)
    with pytest.raises(TypeError, match="sample_weight must hold float32"):
        net._core.run(X, np.zeros((2, 3), np.float32), None, True, True, False,
                      np.ones(2))
    with pytest.raises(ValueError, match="sample_weight has 3 values for 2 samples"):
        net._core.run(X, np.zeros((2, 3), np.float32), None, True, True, False,
                      np.ones(3, np.float32))


_ARRAYS = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=7),
    st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=0, max_size=4),
             max_size=5),
    st.sampled_from([np.zeros((3, 2)), np.zeros((3, 2), np.float32), np.ones((2, 3)),
                     np.zeros((3, 2), complex), np.array([["a", "b"]] * 3),
                     np.zeros((3, 2), object), np.zeros((0, 2)), np.ones(3),
                     np.arange(6).reshape(3, 2), np.ones((3, 2, 1))]),
)


@settings(max_examples=150)
@given(x=_ARRAYS, y=_ARRAYS, w=_ARRAYS)
def test_mse_loss_bad_input_raises_never_crashes(x, y, w):
    """Any combination either computes a finite-shaped result or raises ValueError /
    TypeError naming x, y or sample_weight."""
    try:
        loss, dx = L.mse_loss(x, y, sample_weight=w)
    except (ValueError, TypeError) as exc:
        assert any(name in str(exc) for name in ("x", "y", "sample_weight")), exc
    else:
        assert dx.shape == np.shape(x) and np.ndim(loss) == 0


@settings(max_examples=100)
@given(y=_ARRAYS, w=_ARRAYS)
def test_net_mse_bad_input_raises_never_crashes(y, w):
    net = Net([4, 3, 2], loss="mse", seed=0)
    net.set_optimizer("sgd")
    X = np.ones((3, 4), np.float32)
    for call in (lambda: net.loss(X, y, sample_weight=w),
                 lambda: net.train_step(X, y, sample_weight=w)):
        try:
            call()
        except (ValueError, TypeError) as exc:
            assert "y" in str(exc) or "sample_weight" in str(exc), exc
