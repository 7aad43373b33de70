"""Tests of fastfc.Net, the fused fully-connected network.

* parity with FullyConnectedNet (same draws, same loss and gradients to 1e-10 in float64,
  same Solver run), and the SPEC 6 / 13 values through Net;
* gradients: GradientCheck for every activation x normalisation x dropout, and a NumPy
  forward/backward written here;
* train_step: the loss, the update of every rule of fastfc.optim, the learning rate,
  gathering by indices, no per-step allocation;
* dropout masks, the params contract, pickling and astype, initialisation, bad input.
"""
import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastfc import optim
from fastfc.classifiers.fc_net import FullyConnectedNet
from fastfc.gradient_check import GradientCheck
from fastfc.net import Net
from fastfc.solver import Solver

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "swish"]
NORMS = [None, "batchnorm", "layernorm"]
RULES = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam", "adamw"]

# Non-default hyper-parameters, so that a swapped or ignored key shows.
HYPER = {
    "sgd": {"learning_rate": 0.1},
    "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.8},
    "sgd_nesterov_momentum": {"learning_rate": 0.05, "momentum": 0.7},
    "rmsprop": {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-6},
    "adam": {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6},
    "adamw": {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6,
              "weight_decay": 0.2},
}


def data(n, d, c, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, size=n)


def param_copy(net):
    return {k: np.array(v, copy=True) for k, v in net.params.items()}


# ===================================================================== NumPy reference

def _act(kind, a, alpha=0.01):
    """(f(a), f'(a))"""
    if kind == "relu":
        return np.maximum(a, 0), (a > 0).astype(a.dtype)
    if kind == "leaky_relu":
        return np.where(a > 0, a, alpha * a), np.where(a > 0, 1.0, alpha)
    s = 1 / (1 + np.exp(-a))
    if kind == "sigmoid":
        return s, s * (1 - s)
    if kind == "tanh":
        t = np.tanh(a)
        return t, 1 - t**2
    if kind == "swish":
        return a * s, s + a * s * (1 - s)
    raise AssertionError(kind)


def reference_loss_and_grads(params, X, y, activation, normalization, reg, eps=1e-5,
                             alpha=0.01):
    """{affine - [norm] - act} x (L-1) - affine - softmax in float64 NumPy (no dropout)."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    L = sum(1 for k in p if k.startswith("W"))
    h = np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
    N = h.shape[0]
    caches = []
    for i in range(1, L):
        z = h @ p[f"W{i}"] + p[f"b{i}"]
        norm_cache = None
        if normalization is not None:
            axis = 0 if normalization == "batchnorm" else 1
            mu = z.mean(axis=axis, keepdims=True)
            inv_std = 1 / np.sqrt(z.var(axis=axis, keepdims=True) + eps)
            xhat = (z - mu) * inv_std
            a = p[f"gamma{i}"] * xhat + p[f"beta{i}"]
            norm_cache = (xhat, inv_std, axis)
        else:
            a = z
        out, dact = _act(activation, a, alpha)
        caches.append((h, dact, norm_cache))
        h = out
    scores = h @ p[f"W{L}"] + p[f"b{L}"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    loss += 0.5 * reg * sum((p[f"W{i}"] ** 2).sum() for i in range(1, L + 1))
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads = {f"W{L}": h.T @ dscores + reg * p[f"W{L}"], f"b{L}": dscores.sum(axis=0)}
    dh = dscores @ p[f"W{L}"].T
    for i in range(L - 1, 0, -1):
        h_in, dact, norm_cache = caches[i - 1]
        da = dh * dact
        if norm_cache is not None:
            xhat, inv_std, axis = norm_cache
            grads[f"gamma{i}"] = (da * xhat).sum(axis=0)
            grads[f"beta{i}"] = da.sum(axis=0)
            dxhat = da * p[f"gamma{i}"]
            m = xhat.shape[axis]
            dz = inv_std / m * (m * dxhat - dxhat.sum(axis=axis, keepdims=True)
                                - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True))
        else:
            dz = da
        grads[f"W{i}"] = h_in.T @ dz + reg * p[f"W{i}"]
        grads[f"b{i}"] = dz.sum(axis=0)
        dh = dz @ p[f"W{i}"].T
    return loss, grads


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_grads_match_numpy_reference(activation, normalization, dtype):
    X, y = data(9, 8, 4, seed=1, dtype=dtype)
    net = Net([8, 7, 6, 4], activation=activation, normalization=normalization, reg=0.05,
              seed=2, dtype=dtype)
    # non-trivial gamma and beta
    for name in net.params:
        if name.startswith(("gamma", "beta")):
            net.params[name] = np.linspace(0.5, 1.5, net.params[name].size) \
                + (name.startswith("beta") * 0.3)
    loss, grads = net.loss(X, y)
    ref_loss, ref = reference_loss_and_grads(net.params, X, y, activation, normalization,
                                             0.05)
    assert set(grads) == set(ref) == set(net.params)
    if dtype == np.float64:
        rtol, atol = 1e-10, 1e-12
    else:
        rtol, atol = 1e-4, 1e-5
    assert loss == pytest.approx(ref_loss, rel=rtol)
    for k in ref:
        assert grads[k].dtype == dtype and grads[k].shape == net.params[k].shape
        np.testing.assert_allclose(grads[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


def test_leaky_relu_slope():
    X, y = data(7, 5, 3, seed=23)
    net = Net([5, 8, 3], activation="leaky_relu", alpha=0.2, seed=1, dtype=np.float64)
    loss, grads = net.loss(X, y)
    ref_loss, ref = reference_loss_and_grads(net.params, X, y, "leaky_relu", None, 0.0,
                                             alpha=0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12)


def test_single_sample_single_feature():
    X = np.array([[0.7]])
    y = np.array([2])
    net = Net([1, 3, 3], activation="tanh", weight_scale=0.8, dtype=np.float64, seed=0)
    loss, grads = net.loss(X, y)
    ref_loss, ref = reference_loss_and_grads(net.params, X, y, "tanh", None, 0.0)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-14)
    assert net.loss(X).shape == (1, 3)


# ================================================================ parity with FullyConnectedNet

def build_pair(hidden, D, C, s, reg, normalization, seed=17):
    np.random.seed(seed)
    fcn = FullyConnectedNet(hidden, input_dim=D, num_classes=C, weight_scale=s,
                            dtype=np.float64, reg=reg, normalization=normalization)
    np.random.seed(seed)
    net = Net([D, *hidden, C], weight_scale=s, dtype=np.float64, reg=reg,
              normalization=normalization)
    return fcn, net


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("hidden", [[10, 8], [9]], ids=["3-layer", "2-layer"])
def test_parity_with_fully_connected_net(hidden, normalization, reg):
    D, C = 12, 5
    fcn, net = build_pair(hidden, D, C, 0.2, reg, normalization)
    assert list(net.params) == list(fcn.params)   # W1, b1[, gamma1, beta1], W2, ...
    for k in fcn.params:
        np.testing.assert_array_equal(net.params[k], fcn.params[k], err_msg=k)
    X, y = data(9, D, C, seed=3)
    for _ in range(2):   # twice: batch norm running statistics move
        l_f, g_f = fcn.loss(X, y)
        l_n, g_n = net.loss(X, y)
        assert abs(l_f - l_n) < 1e-10
        for k in g_f:
            np.testing.assert_allclose(g_n[k], g_f[k], rtol=1e-10, atol=1e-10, err_msg=k)
    if normalization == "batchnorm":
        for bn_f, bn_n in zip(fcn.bn_params, net.bn_params):
            np.testing.assert_allclose(bn_n["running_mean"], bn_f["running_mean"],
                                       rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(bn_n["running_var"], bn_f["running_var"],
                                       rtol=1e-10, atol=1e-12)
    X_test, _ = data(6, D, C, seed=4)
    np.testing.assert_allclose(net.loss(X_test), fcn.loss(X_test), rtol=1e-10, atol=1e-10)


def test_parity_single_affine_layer():
    fcn, net = build_pair([], 6, 3, 0.5, 0.1, None)
    X, y = data(5, 6, 3)
    l_f, g_f = fcn.loss(X, y)
    l_n, g_n = net.loss(X, y)
    assert set(g_n) == {"W1", "b1"}
    assert abs(l_f - l_n) < 1e-10
    for k in g_f:
        np.testing.assert_allclose(g_n[k], g_f[k], rtol=1e-10, atol=1e-10)


def test_spec_values_through_net():
    for normalization, expected in [(None, 2.3004790897684924),
                                    ("batchnorm", 2.2611955101340957)]:
        np.random.seed(231)
        X = np.random.randn(2, 15)
        y = np.random.randint(10, size=2)
        net = Net([15, 20, 30, 10], weight_scale=5e-2, dtype=np.float64,
                  normalization=normalization)
        assert abs(net.loss(X, y)[0] - expected) < 1e-10


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_solver_parity(normalization):
    D, C = 12, 4
    rng = np.random.default_rng(5)
    dset = {"X_train": rng.standard_normal((60, D)), "y_train": rng.integers(0, C, 60),
            "X_val": rng.standard_normal((20, D)), "y_val": rng.integers(0, C, 20)}
    fcn, net = build_pair([16, 10], D, C, 0.2, 0.05, normalization)
    kwargs = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, lr_decay=0.8,
                  num_epochs=3, batch_size=15, verbose=False)
    np.random.seed(99)
    s_f = Solver(fcn, dset, **kwargs)
    s_f.train()
    np.random.seed(99)
    s_n = Solver(net, dset, **kwargs)
    s_n.train()
    assert s_n.fast is True and s_f.fast is False
    assert len(s_n.loss_history) == len(s_f.loss_history) == 12
    np.testing.assert_allclose(s_n.loss_history, s_f.loss_history, rtol=1e-10, atol=1e-10)
    assert s_n.train_acc_history == s_f.train_acc_history
    assert s_n.val_acc_history == s_f.val_acc_history
    for k in fcn.params:
        np.testing.assert_allclose(net.params[k], fcn.params[k], rtol=1e-10, atol=1e-10,
                                   err_msg=k)
    assert net.learning_rate == pytest.approx(1e-2 * 0.8**3, rel=1e-12)


def test_solver_parity_over_two_runs():
    """Each Solver brings its own optim_config (CS231n: a fresh copy per parameter), also
    when the model was trained before with the same rule."""
    D, C = 8, 3
    rng = np.random.default_rng(6)
    dset = {"X_train": rng.standard_normal((40, D)), "y_train": rng.integers(0, C, 40),
            "X_val": rng.standard_normal((10, D)), "y_val": rng.integers(0, C, 10)}
    fcn, net = build_pair([12], D, C, 0.3, 0.0, None)
    for lr in (1e-2, 5e-2):
        kwargs = dict(update_rule="adam", optim_config={"learning_rate": lr}, num_epochs=2,
                      batch_size=10, verbose=False)
        np.random.seed(7)
        Solver(fcn, dset, **kwargs).train()
        np.random.seed(7)
        solver = Solver(net, dset, **kwargs)
        solver.train()
        assert solver.fast is True
        assert net.learning_rate == pytest.approx(lr, rel=1e-12)
        for k in fcn.params:
            np.testing.assert_allclose(net.params[k], fcn.params[k], rtol=1e-10, atol=1e-10,
                                       err_msg=f"lr={lr} {k}")


# ===================================================================== GradientCheck

@pytest.mark.parametrize("keep", [1, 0.7], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_check(activation, normalization, keep):
    X, y = data(10, 6, 4, seed=0)
    net = Net([6, 7, 5, 4], activation=activation, normalization=normalization,
              dropout_keep_ratio=keep, seed=1, reg=0.1)
    assert net.dtype == np.float32
    before = param_copy(net)
    errors = GradientCheck(net, verbose=False).run(X, y)
    assert set(errors) == set(net.params)
    for name, err in errors.items():
        if normalization == "batchnorm" and name in ("b1", "b2"):
            continue   # exactly zero gradient, checked below
        assert err < 1e-5, (name, err)
    if normalization == "batchnorm":
        # a bias right before batch norm cancels: its gradient is zero, and the
        # numerical one is rounding noise (so rel_error is meaningless there)
        _, grads = net.astype(np.float64).loss(X, y)
        assert np.abs(grads["b1"]).max() < 1e-12 and np.abs(grads["b2"]).max() < 1e-12
    # the check runs on a float64 copy: the net itself is untouched
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)
        assert net.params[k].dtype == np.float32


# ===================================================================== train_step

@pytest.mark.parametrize("rule", RULES)
def test_train_step_matches_fastfc_optim(rule, dtype, tol):
    X, y = data(12, 8, 4, seed=6, dtype=dtype)
    net = Net([8, 9, 7, 4], normalization="layernorm", reg=0.05, seed=0, dtype=dtype)
    net.set_optimizer(rule, **HYPER[rule])
    assert net.update_rule == rule
    configs = {k: dict(HYPER[rule]) for k in net.params}
    for _ in range(3):
        before = param_copy(net)
        loss_ref, grads = net.loss(X, y)      # grads include reg * W
        loss = net.train_step(X, y)
        assert loss == pytest.approx(loss_ref, rel=tol["rtol"])
        for k in before:
            expected, configs[k] = getattr(optim, rule)(before[k], grads[k], configs[k])
            assert net.params[k].dtype == dtype
            np.testing.assert_allclose(net.params[k], expected, err_msg=k, **tol)


def test_train_step_loss_equals_loss_before(dtype):
    X, y = data(16, 10, 5, seed=7, dtype=dtype)
    for normalization in NORMS:
        net = Net([10, 12, 5], normalization=normalization, reg=0.02, seed=3, dtype=dtype)
        net.set_optimizer("sgd_momentum", learning_rate=0.05)
        for _ in range(3):
            expected, _ = net.loss(X, y)
            # the update pass sums the L2 term in another order: equal to rounding
            assert net.train_step(X, y) == pytest.approx(expected, rel=1e-12, abs=0)


def test_learning_rate_is_adjustable(dtype, tol):
    X, y = data(8, 5, 3, seed=8, dtype=dtype)
    net = Net([5, 6, 3], seed=0, dtype=dtype)
    net.set_optimizer("sgd", learning_rate=0.1)
    assert net.learning_rate == pytest.approx(0.1)
    net.learning_rate = 0.025
    assert net.learning_rate == pytest.approx(0.025)
    assert net.optim_config["learning_rate"] == pytest.approx(0.025)
    before = param_copy(net)
    _, grads = net.loss(X, y)
    net.train_step(X, y)
    for k in before:
        np.testing.assert_allclose(net.params[k], before[k] - 0.025 * grads[k], **tol)
    with pytest.raises(ValueError):
        net.learning_rate = -1.0


def test_adam_state_after_steps():
    X, y = data(8, 5, 3, seed=9)
    net = Net([5, 6, 3], seed=0, dtype=np.float64)
    net.set_optimizer("adam", learning_rate=1e-3)
    for _ in range(4):
        net.train_step(X, y)
    state = net.optimizer_state()
    assert state["t"] == 4
    assert state["learning_rate"] == pytest.approx(1e-3)
    assert {"m", "v", "beta1", "beta2", "epsilon"} <= set(state)


def test_train_step_requires_optimizer():
    X, y = data(4, 5, 3)
    net = Net([5, 6, 3], seed=0)
    with pytest.raises((RuntimeError, ValueError)):
        net.train_step(X, y)


@pytest.mark.parametrize("rule, config", [
    ("lamb", {}),
    ("sgd", {"momentum": 0.9}),
    ("adam", {"learning_rate": -1.0}),
    ("sgd", {"weight_decay": 0.1}),
])
def test_set_optimizer_bad_arguments(rule, config):
    net = Net([5, 6, 3], seed=0)
    with pytest.raises((ValueError, TypeError)):
        net.set_optimizer(rule, **config)


def test_train_step_with_indices(dtype):
    X_all, y_all = data(100, 7, 4, seed=10, dtype=np.float64)
    idx = np.random.default_rng(11).integers(0, 100, size=16)
    a = Net([7, 9, 4], normalization="batchnorm", seed=4, dtype=dtype)
    b = Net([7, 9, 4], normalization="batchnorm", seed=4, dtype=dtype)
    for net in (a, b):
        net.set_optimizer("rmsprop", learning_rate=1e-2)
    for _ in range(3):
        loss_a = a.train_step(X_all, y_all[idx], indices=idx)   # float64 rows gathered
        loss_b = b.train_step(X_all[idx].astype(dtype), y_all[idx])
        assert loss_a == loss_b
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    for (ma, va), (mb, vb) in zip(a.running_stats, b.running_stats):
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(va, vb)


@pytest.mark.parametrize("net_dtype, x_dtype", [(np.float32, np.float64),
                                               (np.float64, np.float32)])
def test_input_cast_to_net_dtype(net_dtype, x_dtype):
    X, y = data(10, 6, 3, seed=12, dtype=x_dtype)
    a = Net([6, 8, 3], seed=5, dtype=net_dtype)
    b = Net([6, 8, 3], seed=5, dtype=net_dtype)
    scores = a.loss(X)
    assert scores.dtype == net_dtype
    np.testing.assert_array_equal(scores, b.loss(X.astype(net_dtype)))
    for net in (a, b):
        net.set_optimizer("sgd", learning_rate=0.1)
    assert a.train_step(X, y) == b.train_step(X.astype(net_dtype), y)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_bad_indices():
    X, y = data(10, 6, 3)
    net = Net([6, 8, 3], seed=5).set_optimizer("sgd")
    with pytest.raises(ValueError):
        net.train_step(X, y[:2], indices=np.array([0, 10]))
    with pytest.raises(ValueError):
        net.train_step(X, y[:2], indices=np.array([-1, 3]))
    with pytest.raises(ValueError):
        net.train_step(X, y[:3], indices=np.array([0, 1]))
    with pytest.raises(ValueError):
        net.train_step(X, y[:4], indices=np.array([[0, 1], [2, 3]]))
    before = param_copy(net)
    # float indices are not row numbers (X[[0.7, 1.9]] raises in NumPy too)
    with pytest.raises((TypeError, ValueError, IndexError)):
        net.train_step(X, y[:2], indices=np.array([0.7, 1.9]))
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


# ===================================================================== no per-step allocation

@pytest.mark.parametrize("normalization, keep", [(None, 1), ("batchnorm", 0.5),
                                                 ("layernorm", 1)])
def test_no_allocation_per_step(normalization, keep):
    N = 128
    net = Net([100, 64, 32, 16], normalization=normalization, dropout_keep_ratio=keep,
              seed=0).set_optimizer("adam", learning_rate=1e-3)
    X, y = data(N, 100, 16, seed=13, dtype=np.float32)
    X_all, _ = data(500, 100, 16, seed=14, dtype=np.float64)
    idx = np.random.default_rng(15).integers(0, 500, size=N)
    y = y.astype(np.intp)
    for _ in range(5):   # warm-up: workspaces are created here
        net.train_step(X, y)
        net.train_step(X_all, y, indices=idx)
    capacity = net._core.capacity
    smallest_buffer = N * 16 * 4      # the scores: any per-step array is at least this
    tracemalloc.start()
    try:
        # tracemalloc sees NumPy data buffers (else this test could not fail)
        base, _ = tracemalloc.get_traced_memory()
        probe = np.empty(smallest_buffer // 4, dtype=np.float32)
        assert tracemalloc.get_traced_memory()[0] - base >= smallest_buffer
        del probe
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(100):
            net.train_step(X, y)
        cur, peak = tracemalloc.get_traced_memory()
        for _ in range(100):               # the Solver's path: rows gathered by index
            net.train_step(X_all, y, indices=idx)
        cur2, peak2 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cur - base <= 0 and cur2 - base <= 0
    assert peak - base < 1024 and peak2 - base < 1024
    assert net._core.capacity == capacity


def test_workspace_capacity():
    net = Net([6, 8, 3], seed=0).set_optimizer("sgd")
    X, y = data(32, 6, 3, dtype=np.float32)
    net.train_step(X, y)
    cap = net._core.capacity
    assert cap >= 32
    for _ in range(5):
        net.train_step(X, y)
        net.loss(X, y)
        net.loss(X)
    net.train_step(X[:10], y[:10])     # smaller batches reuse the buffers
    assert net._core.capacity == cap
    net.train_step(np.concatenate([X, X]), np.concatenate([y, y]))
    assert net._core.capacity >= 64


# ===================================================================== dropout

def hidden_output(net, X, y):
    """The first hidden layer's output after dropout of a [D, H, C] net, from the grads
    of one sample: dW2 = a1.T @ dscores and db2 = dscores (reg must be 0)."""
    assert X.shape[0] == 1 and net.reg == 0
    _, grads = net.loss(X, y)
    c = int(np.argmax(np.abs(grads["b2"])))
    return grads["W2"][:, c] / grads["b2"][c]


def test_dropout_mask_fraction_and_scaling():
    keep, H = 0.6, 4000
    net = Net([20, H, 3], activation="sigmoid", dropout_keep_ratio=keep, seed=0,
              dtype=np.float64)
    X, y = data(1, 20, 3, seed=16)
    a1 = hidden_output(net, X, y)
    y1 = 1 / (1 + np.exp(-(X @ net.params["W1"] + net.params["b1"])))[0]  # never 0
    dropped = np.abs(a1) < 1e-12
    assert abs(dropped.mean() - (1 - keep)) < 0.03
    np.testing.assert_allclose(a1[~dropped], y1[~dropped] / keep, rtol=1e-8)
    # test mode: no dropout at all
    no_drop = Net([20, H, 3], activation="sigmoid", seed=0, dtype=np.float64)
    no_drop.params = net.params
    np.testing.assert_array_equal(net.loss(X), no_drop.loss(X))


def test_dropout_masks_fixed_within_a_step_and_new_after():
    X, y = data(6, 10, 4, seed=17)
    net = Net([10, 50, 40, 4], dropout_keep_ratio=0.5, seed=3, dtype=np.float64)
    l1, g1 = net.loss(X, y)
    l2, g2 = net.loss(X, y)
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])
    net.set_optimizer("sgd", learning_rate=0.0)   # a step that leaves the params alone
    before = param_copy(net)
    assert net.train_step(X, y) == l1           # the step uses this step's masks
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])
    l3, g3 = net.loss(X, y)
    assert l3 != l1
    assert not np.array_equal(g3["W2"], g1["W2"])


def test_dropout_masks_change_every_step():
    keep, H = 0.5, 2000
    net = Net([8, H, 3], activation="sigmoid", dropout_keep_ratio=keep, seed=1,
              dtype=np.float64).set_optimizer("sgd", learning_rate=0.0)
    X, y = data(1, 8, 3, seed=18)
    masks = []
    for _ in range(3):
        masks.append(np.abs(hidden_output(net, X, y)) > 1e-12)
        net.train_step(X, y)
    for m in masks:
        assert abs(m.mean() - keep) < 0.05
    # independent masks agree on about keep**2 + (1 - keep)**2 of the units
    for i in range(2):
        assert abs((masks[i] == masks[i + 1]).mean() - 0.5) < 0.05


def test_dropout_reproducible_with_seed():
    X, y = data(6, 10, 4, seed=19)
    a = Net([10, 30, 4], dropout_keep_ratio=0.7, seed=11)
    b = Net([10, 30, 4], dropout_keep_ratio=0.7, seed=11)
    c = Net([10, 30, 4], dropout_keep_ratio=0.7, seed=12)
    c.params = a.params
    assert a.loss(X, y)[0] == b.loss(X, y)[0]
    assert a.loss(X, y)[0] != c.loss(X, y)[0]


# ===================================================================== params contract

def test_params_names_order_and_shapes():
    net = Net([5, 6, 4, 3], normalization="batchnorm", seed=0)
    assert isinstance(net.params, dict)
    assert list(net.params) == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2",
                                "beta2", "W3", "b3"]
    shapes = {"W1": (5, 6), "b1": (6,), "gamma1": (6,), "beta1": (6,), "W2": (6, 4),
              "b2": (4,), "gamma2": (4,), "beta2": (4,), "W3": (4, 3), "b3": (3,)}
    for k, shape in shapes.items():
        assert net.params[k].shape == shape and net.params[k].dtype == np.float32
    assert np.all(net.params["gamma1"] == 1) and np.all(net.params["beta2"] == 0)
    assert np.all(net.params["b3"] == 0)
    plain = Net([5, 6, 3], seed=0, dtype=np.float64)
    assert list(plain.params) == ["W1", "b1", "W2", "b2"]
    assert plain.params["W1"].dtype == np.float64


def test_params_assignment_copies_into_storage():
    X, y = data(5, 4, 3, seed=20)
    net = Net([4, 6, 3], seed=0, dtype=np.float64)
    W1 = net.params["W1"]
    new = np.random.default_rng(0).standard_normal((4, 6))
    net.params["W1"] = new
    assert net.params["W1"] is W1
    np.testing.assert_array_equal(W1, new)
    new[0, 0] = 100.0                       # the net holds a copy
    assert W1[0, 0] != 100.0
    # the compiled step reads the new values
    ref, _ = reference_loss_and_grads(net.params, X, y, "relu", None, 0.0)
    assert net.loss(X, y)[0] == pytest.approx(ref, rel=1e-12)
    # in-place edits of the views are seen too (GradientCheck relies on it)
    loss0 = net.loss(X, y)[0]
    net.params["W2"][0, 0] += 0.5
    assert net.loss(X, y)[0] != loss0
    # assigning casts into the net's dtype
    f32 = Net([4, 6, 3], seed=0)
    f32.params["W1"] = new
    assert f32.params["W1"].dtype == np.float32
    np.testing.assert_array_equal(f32.params["W1"], new.astype(np.float32))


def test_params_wholesale_assignment():
    a = Net([4, 6, 3], seed=0)
    b = Net([4, 6, 3], seed=1)
    views = {k: b.params[k] for k in b.params}
    b.params = a.params.copy()       # what the Solver does with its best params
    for k in a.params:
        assert b.params[k] is views[k]
        np.testing.assert_array_equal(b.params[k], a.params[k])
    with pytest.raises(ValueError):
        b.params = {"W1": a.params["W1"]}


def test_params_bad_assignment():
    net = Net([4, 6, 3], seed=0)
    with pytest.raises(ValueError):
        net.params["W1"] = np.zeros((6, 4))
    with pytest.raises(ValueError):
        net.params["b1"] = np.zeros(7)
    with pytest.raises(KeyError):
        net.params["W9"] = np.zeros((4, 6))
    with pytest.raises(KeyError):
        net.params["gamma1"] = np.ones(6)
    with pytest.raises(TypeError):
        net.params["W1"] = np.zeros((4, 6), dtype=complex)


# ===================================================================== pickle and astype

def trained_net():
    X, y = data(12, 6, 3, seed=21)
    net = Net([6, 9, 7, 3], normalization="batchnorm", dropout_keep_ratio=0.8, reg=0.01,
              seed=5).set_optimizer("adam", learning_rate=1e-2, beta1=0.85)
    for _ in range(3):
        net.train_step(X, y)
    return net, X, y


def test_pickle_round_trip():
    net, X, y = trained_net()
    clone = pickle.loads(pickle.dumps(net))
    assert clone is not net and clone.dtype == np.float32
    assert list(clone.params) == list(net.params)
    for k in net.params:
        np.testing.assert_array_equal(clone.params[k], net.params[k])
    for (m1, v1), (m2, v2) in zip(net.running_stats, clone.running_stats):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(v1, v2)
    s1, s2 = net.optimizer_state(), clone.optimizer_state()
    assert s1["t"] == s2["t"] == 3 and s2["beta1"] == 0.85
    assert s1["learning_rate"] == s2["learning_rate"] and clone.reg == net.reg
    np.testing.assert_array_equal(s1["m"], s2["m"])
    np.testing.assert_array_equal(s1["v"], s2["v"])
    np.testing.assert_array_equal(clone.loss(X), net.loss(X))
    assert clone.train_step(X, y) == net.train_step(X, y)
    for k in net.params:
        np.testing.assert_array_equal(clone.params[k], net.params[k])
    # independent storage
    clone.params["W1"] = np.zeros((6, 9))
    assert np.any(net.params["W1"] != 0)


def test_astype_float64_copy():
    net, X, y = trained_net()
    copy64 = net.astype(np.float64)
    assert copy64.dtype == np.float64 and net.dtype == np.float32
    for k in net.params:
        assert copy64.params[k].dtype == np.float64
        np.testing.assert_array_equal(copy64.params[k], net.params[k].astype(np.float64))
    for (m1, _), (m2, _) in zip(net.running_stats, copy64.running_stats):
        assert m2.dtype == np.float64
        np.testing.assert_array_equal(m2, m1.astype(np.float64))
    assert copy64.optimizer_state()["m"].dtype == np.float64
    assert copy64.loss(X, y)[0] == pytest.approx(net.loss(X, y)[0], rel=1e-5)
    np.testing.assert_allclose(copy64.loss(X), net.loss(X), rtol=1e-4, atol=1e-5)
    copy64.params["W1"] = np.zeros((6, 9))
    assert np.any(net.params["W1"] != 0)


# ===================================================================== init and seed

def test_init_he_and_xavier():
    he = Net([2000, 1000, 10], init="he", seed=0)
    xavier = Net([2000, 1000, 10], init="xavier", seed=0)
    assert he.params["W1"].std() == pytest.approx(np.sqrt(2 / 2000), rel=0.01)
    assert he.params["W2"].std() == pytest.approx(np.sqrt(2 / 1000), rel=0.05)
    assert xavier.params["W1"].std() == pytest.approx(np.sqrt(2 / 3000), rel=0.01)
    assert abs(he.params["W1"].mean()) < 1e-3
    assert np.all(he.params["b1"] == 0) and np.all(xavier.params["b2"] == 0)


def test_default_init_depends_on_activation():
    dims = [50, 40, 5]
    np.testing.assert_array_equal(Net(dims, seed=3).params["W1"],
                                  Net(dims, init="he", seed=3).params["W1"])
    np.testing.assert_array_equal(Net(dims, activation="tanh", seed=3).params["W1"],
                                  Net(dims, init="xavier", seed=3).params["W1"])


def test_weight_scale_draws_from_global_rng_in_order():
    np.random.seed(8)
    net = Net([5, 4, 3], weight_scale=0.3, dtype=np.float64)
    after = np.random.randn()
    np.random.seed(8)
    np.testing.assert_array_equal(net.params["W1"], 0.3 * np.random.randn(5, 4))
    np.testing.assert_array_equal(net.params["W2"], 0.3 * np.random.randn(4, 3))
    assert after == np.random.randn()     # the weight draws and nothing else


def test_seed_is_reproducible_and_leaves_global_rng_alone():
    dims = [6, 8, 3]
    np.random.seed(1)
    a = Net(dims, seed=7)
    after_a = np.random.randn()
    np.random.seed(1)
    expected = np.random.randn()
    assert after_a == expected        # seeded construction draws nothing globally
    np.random.seed(12345)
    b = Net(dims, seed=7)
    c = Net(dims, seed=8)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


# ===================================================================== Solver

def test_net_overfits_small_data_with_solver():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 64)
    y = rng.randint(10, size=50)
    dset = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    np.random.seed(231)
    net = Net([64, 100, 100, 10], weight_scale=2e-1)
    solver = Solver(net, dset, update_rule="sgd", optim_config={"learning_rate": 1e-1},
                    num_epochs=20, batch_size=25, verbose=False)
    solver.train()
    assert solver.fast is True
    assert max(solver.train_acc_history) == 1.0


# ===================================================================== bad input

@pytest.mark.parametrize("make", [
    lambda: (np.zeros((4, 5)), np.array([0, 1, 2, 0])),           # 5 features, net has 6
    lambda: (np.zeros((4, 6)), np.array([0, 1, 3, 0])),           # label 3 of 3 classes
    lambda: (np.zeros((4, 6)), np.array([0, -1, 2, 0])),
    lambda: (np.zeros((4, 6)), np.array([0.0, 1.0, 2.0, 0.0])),   # float labels
    lambda: (np.zeros((4, 6)), np.array([0, 1, 2])),              # label count
    lambda: (np.zeros((0, 6)), np.array([], dtype=int)),          # empty
    lambda: (np.zeros(6), np.array([0])),                         # 1-d X
    lambda: (np.zeros((4, 6), dtype=complex), np.array([0, 1, 2, 0])),
    lambda: (np.array([["a"] * 6] * 4), np.array([0, 1, 2, 0])),
], ids=["features", "label-high", "label-negative", "float-labels", "label-count",
        "empty", "1d", "complex", "strings"])
def test_bad_input(make):
    net = Net([6, 5, 3], seed=0).set_optimizer("sgd")
    X, y = make()
    before = param_copy(net)
    with pytest.raises((ValueError, TypeError)):
        net.loss(X, y)
    with pytest.raises((ValueError, TypeError)):
        net.train_step(X, y)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


@pytest.mark.parametrize("kwargs, exc", [
    ({"activation": "gelu"}, ValueError),
    ({"normalization": "groupnorm"}, ValueError),
    ({"init": "glorot"}, ValueError),
    ({"init": "he", "weight_scale": 0.1}, ValueError),
    ({"dropout_keep_ratio": 0}, ValueError),
    ({"dropout_keep_ratio": 1.01}, ValueError),
    ({"dropout_keep_ratio": float("nan")}, ValueError),
    ({"reg": -0.5}, ValueError),
    ({"weight_scale": -1.0}, ValueError),
    ({"dtype": np.int64}, TypeError),
    ({"seed": -1}, ValueError),
    ({"seed": 1.5}, TypeError),
    ({"layer_dims": [6]}, ValueError),
    ({"layer_dims": [6, 0, 3]}, ValueError),
    ({"layer_dims": [6, -4, 3]}, ValueError),
    ({"layer_dims": [6, 4.5, 3]}, (ValueError, TypeError)),
    ({"layer_dims": 6}, TypeError),
    ({"layer_dims": ["a", 3]}, TypeError),
])
def test_bad_constructor_arguments(kwargs, exc):
    args = {"layer_dims": [6, 5, 3]}
    args.update(kwargs)
    with pytest.raises(exc):
        Net(**args)


def test_negative_reg_after_construction():
    net = Net([6, 5, 3], seed=0)
    with pytest.raises(ValueError):
        net.reg = -1e-3


@pytest.mark.parametrize("layout", ["strided", "fortran", "3d", "byteswapped", "unaligned"])
def test_input_layouts(layout, dtype):
    """Any memory layout of a float X gives the result of its C-contiguous copy."""
    rng = np.random.default_rng(22)
    base = rng.standard_normal((8, 12)).astype(dtype)
    y = rng.integers(0, 3, size=8)
    if layout == "strided":
        X = base[:, ::2]
    elif layout == "fortran":
        X = np.asfortranarray(base[:, :6])
    elif layout == "3d":
        X = base[:, :6].reshape(8, 2, 3)
    elif layout == "byteswapped":      # non-native byte order, e.g. read from a file
        X = base[:, :6].astype(np.dtype(dtype).newbyteorder(">"))
    else:                              # float data at an odd address
        raw = np.zeros(base[:, :6].nbytes + 1, dtype=np.uint8)
        X = np.frombuffer(raw.data, dtype=dtype, count=48, offset=1).reshape(8, 6)
        X[...] = base[:, :6]
        assert not X.flags.aligned
    contiguous = np.ascontiguousarray(X).reshape(8, 6)
    a = Net([6, 7, 3], normalization="layernorm", seed=2, dtype=dtype).set_optimizer("sgd")
    b = Net([6, 7, 3], normalization="layernorm", seed=2, dtype=dtype).set_optimizer("sgd")
    np.testing.assert_array_equal(a.loss(X), b.loss(contiguous))
    la, ga = a.loss(X, y)
    lb, gb = b.loss(contiguous, y)
    assert la == lb
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k])
    assert a.train_step(X, y) == b.train_step(contiguous, y)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


DTYPES = [np.float32, np.float64, np.int64, np.int8, np.bool_, np.complex128, np.float16]


@given(n=st.integers(0, 4), shape_tail=st.sampled_from([(6,), (5,), (7,), (2, 3), (3, 3), ()]),
       dtype=st.sampled_from(DTYPES),
       labels=st.lists(st.integers(-2, 4), min_size=0, max_size=5),
       label_dtype=st.sampled_from([np.int64, np.int32, np.uint8, np.float64]))
def test_loss_input_never_crashes(n, shape_tail, dtype, labels, label_dtype):
    net = Net([6, 5, 3], seed=0).set_optimizer("sgd", learning_rate=0.0)
    X = np.ones((n, *shape_tail), dtype=dtype)
    y = np.array(labels).astype(label_dtype) if labels else np.array([], dtype=label_dtype)
    valid = (n >= 1 and int(np.prod(shape_tail)) == 6 and len(shape_tail) >= 1
             and np.dtype(dtype).kind in "fiub" and len(labels) == n
             and np.dtype(label_dtype).kind in "iu" and all(0 <= v < 3 for v in labels))
    if valid:
        loss, grads = net.loss(X, y)
        assert np.isfinite(loss) and set(grads) == set(net.params)
        assert net.train_step(X, y) == loss
    else:
        before = param_copy(net)
        with pytest.raises((ValueError, TypeError)):
            net.loss(X, y)
        with pytest.raises((ValueError, TypeError)):
            net.train_step(X, y)
        for k in before:
            np.testing.assert_array_equal(net.params[k], before[k])


def test_save_and_load_round_trip(tmp_path):
    net = Net([6, 5, 4, 3], normalization="batchnorm", dropout_keep_ratio=0.8,
              activation="tanh", reg=0.01, seed=3)
    X = np.random.default_rng(0).standard_normal((8, 6))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    net.set_optimizer("adam", learning_rate=1e-2)
    for _ in range(3):
        net.train_step(X.astype(np.float32), y)
    path = net.save(tmp_path / "net.npz", epochs=3)
    state = np.random.get_state()
    loaded = Net.load(path)
    after = np.random.get_state()
    assert state[2] == after[2] and np.array_equal(state[1], after[1])  # global RNG untouched
    assert loaded.metadata == {"epochs": 3}
    assert loaded.layer_dims == net.layer_dims and loaded.activation == "tanh"
    assert loaded.reg == pytest.approx(0.01)
    for k in net.params:
        np.testing.assert_array_equal(loaded.params[k], net.params[k])
    np.testing.assert_array_equal(loaded.loss(X), net.loss(X))


def test_load_rejects_other_files(tmp_path):
    from fastfc.checkpoint import CheckpointError, save_checkpoint
    path = save_checkpoint(tmp_path / "x.npz", {"a": np.zeros(2)}, {"kind": "solver"})
    with pytest.raises(CheckpointError):
        Net.load(path)
    with pytest.raises(CheckpointError):
        Net.load(tmp_path / "missing.npz")
