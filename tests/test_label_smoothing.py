"""Label smoothing of the softmax cross-entropy (kernel, layers, Net, FCClassifier).

With ``eps = label_smoothing`` each sample's target is ``q = (1 - eps) * onehot(y) +
eps / C``, its loss ``-sum_k q_k log p_k`` and the gradient of the scores ``(p - q) / N``
(weighted: ``sum(w_i l_i) / sum(w_i)``, rows scaled by ``w_i / sum(w)``), as
``torch.nn.functional.cross_entropy(..., label_smoothing=eps)``.

1. ``fastfc.layers.softmax_loss(..., label_smoothing=eps)`` and its compiled kernel
   against the NumPy formula written here and against PyTorch, in float32 and float64
   (tolerances: conftest's RTOL/ATOL table per dtype; SPEC.md item 4's rel_error < 1e-7
   for the softmax gradient check), weighted and unweighted, edge shapes.
2. eps = 0 is bit-identical to the loss without the argument (and SPEC.md item 4).
3. ``Net(label_smoothing=eps)``: loss and gradients against the course path (the
   functional layers of fastfc.layers / layer_utils) in float64 to 1e-10, the update of
   one SGD ``train_step``, gradient checks, the Solver's recorded loss.
4. The setting travels with the net: save/load, pickle, astype; files of nets without
   smoothing keep their old header; a bad value in a file is refused.
5. ``FCClassifier(label_smoothing=eps)``.
6. Bad values raise ValueError/TypeError naming ``label_smoothing``.
"""
import json
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastfc import Net, Solver
from fastfc import layer_utils as LU
from fastfc import layers as L
from fastfc._kernels import losses as K
from fastfc.checkpoint import CheckpointError
from fastfc.gradient_check import GradientCheck, eval_numerical_gradient, rel_error

SOFTMAX_DX_TOL = 1e-7      # SPEC.md item 4: softmax_loss dx rel_error
EPSILONS = [0.05, 0.1, 0.3, 0.9]


def smoothed_xent(x, y, eps, w=None):
    """The NumPy formula in float64: (loss, dx)."""
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1.0 - eps
    per_row = -(q * logp).sum(axis=1)
    share = np.full(n, 1.0 / n) if w is None else np.asarray(w, np.float64) / np.sum(w)
    loss = float(np.sum(share * per_row))
    dx = (np.exp(logp) - q) * share[:, None]
    return loss, dx


def torch_xent(x, y, eps, w=None):
    """PyTorch's cross-entropy with label smoothing, in float64: (loss, dx)."""
    torch = pytest.importorskip("torch")
    t = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    target = torch.tensor(np.asarray(y, dtype=np.int64))
    if w is None:
        loss = torch.nn.functional.cross_entropy(t, target, label_smoothing=eps)
    else:
        per_row = torch.nn.functional.cross_entropy(t, target, label_smoothing=eps,
                                                    reduction="none")
        wt = torch.tensor(np.asarray(w, dtype=np.float64))
        loss = (wt * per_row).sum() / wt.sum()
    loss.backward()
    return float(loss.detach()), t.grad.numpy()


def scores_and_labels(n, c, seed, dtype=np.float64, scale=2.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((n, c))).astype(dtype), rng.integers(0, c, n)


# ============================================================ 1. kernel and layer values

@pytest.mark.parametrize("eps", EPSILONS)
@pytest.mark.parametrize("n, c", [(1, 1), (1, 5), (7, 2), (50, 10), (13, 100)])
def test_softmax_loss_matches_formula(n, c, eps, dtype, tol):
    x, y = scores_and_labels(n, c, seed=n * 1000 + c, dtype=dtype)
    loss, dx = L.softmax_loss(x, y, label_smoothing=eps)
    assert isinstance(loss, float) and dx.dtype == dtype and dx.shape == (n, c)
    ref_loss, ref_dx = smoothed_xent(x, y, eps)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"], abs=tol["atol"])
    np.testing.assert_allclose(dx, ref_dx, **tol)


@pytest.mark.parametrize("eps", EPSILONS)
@pytest.mark.parametrize("n, c, weighted", [(1, 1, False), (1, 5, False), (7, 2, False),
                                            (50, 10, False), (13, 100, False),
                                            (12, 6, True)])
def test_formula_is_torchs(n, c, weighted, eps):
    """The NumPy formula the kernel is held to equals PyTorch's cross_entropy with
    label_smoothing (float64, same inputs); needs torch (a benchmark peer, not a test
    dependency)."""
    x, y = scores_and_labels(n, c, seed=n * 1000 + c)
    w = np.random.default_rng(4).uniform(0.0, 3.0, n) if weighted else None
    ref_loss, ref_dx = smoothed_xent(x, y, eps, w)
    t_loss, t_dx = torch_xent(x, y, eps, w)
    assert abs(ref_loss - t_loss) <= 1e-12 * max(1.0, abs(t_loss))
    np.testing.assert_allclose(ref_dx, t_dx, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_weighted_smoothed_loss_matches_formula(eps, dtype, tol):
    x, y = scores_and_labels(12, 6, seed=3, dtype=dtype)
    w = np.random.default_rng(4).uniform(0.0, 3.0, 12)
    w[[2, 7]] = 0.0
    loss, dx = L.softmax_loss(x, y, sample_weight=w, label_smoothing=eps)
    ref_loss, ref_dx = smoothed_xent(x, y, eps, w)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"], abs=tol["atol"])
    np.testing.assert_allclose(dx, ref_dx, **tol)
    assert not dx[[2, 7]].any()   # weight 0: no gradient at all


def test_compiled_twin_writes_dscores_in_place_and_may_alias(dtype, tol):
    """The def twin of the cdef kernel: dscores may be the scores buffer itself."""
    x, y = scores_and_labels(9, 4, seed=5, dtype=dtype)
    ref_loss, ref_dx = smoothed_xent(x, y, 0.2)
    dscores = np.empty_like(x)
    loss = K._softmax_loss(x, y.astype(np.intp), dscores, None, 0.2)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"])
    np.testing.assert_allclose(dscores, ref_dx, **tol)
    buf = x.copy()
    loss2 = K._softmax_loss(buf, y.astype(np.intp), buf, None, 0.2)
    assert loss2 == loss
    np.testing.assert_array_equal(buf, dscores)


def test_smoothed_loss_is_the_entropy_of_q_at_its_minimum():
    """-sum q log p is smallest, at the entropy of q, where p = q: the gradient vanishes
    there, and the loss is the same for every label (q is a permutation of itself)."""
    c, eps = 10, 0.1
    q = np.full(c, eps / c)
    q[3] += 1 - eps
    entropy = float(-(q * np.log(q)).sum())
    x = np.log(q)[None, :] + np.array([[0.0], [5.0], [-3.0]])    # shift-invariant
    loss, dx = L.softmax_loss(x, np.array([3, 3, 3]), label_smoothing=eps)
    assert loss == pytest.approx(entropy, rel=1e-12)
    assert np.abs(dx).max() < 1e-15
    # any other scores give a larger loss
    other, _ = L.softmax_loss(x + np.random.default_rng(0).normal(0, 0.1, x.shape),
                              np.array([3, 3, 3]), label_smoothing=eps)
    assert other > entropy
    # the plain cross-entropy at those scores is not the entropy: smoothing changed it
    assert L.softmax_loss(x, np.array([3, 3, 3]))[0] != pytest.approx(entropy, rel=1e-3)


def test_dx_rows_sum_to_zero_and_large_scores_stay_finite(dtype, tol):
    x, y = scores_and_labels(20, 7, seed=6, dtype=dtype, scale=300.0)
    loss, dx = L.softmax_loss(x, y, label_smoothing=0.1)
    assert np.isfinite(loss) and np.isfinite(dx).all()
    np.testing.assert_allclose(dx.astype(np.float64).sum(axis=1), 0.0,
                               atol=20 * np.finfo(dtype).eps)
    ref_loss, ref_dx = smoothed_xent(x, y, 0.1)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"])
    np.testing.assert_allclose(dx, ref_dx, **tol)


def test_non_contiguous_scores_and_integer_labels_of_any_kind():
    x, y = scores_and_labels(8, 12, seed=7)
    xf = np.asfortranarray(x)
    xs = np.ascontiguousarray(np.repeat(x, 2, axis=1))[:, ::2]
    ref = L.softmax_loss(x, y, label_smoothing=0.25)
    for xv, yv in ((xf, y), (xs, y.astype(np.int32)), (x, list(y))):
        loss, dx = L.softmax_loss(xv, yv, label_smoothing=0.25)
        assert loss == ref[0]
        np.testing.assert_array_equal(dx, ref[1])


H = 1e-5


def gradient_matches(f, x, dx, loss):
    """Central differences of ``f`` at x against dx, by the rule of ``fastfc
    gradcheck``: |num - dx| <= 1e-7 (|num| + |dx|) + atol, the 1e-7 of SPEC.md item 4
    (softmax_loss dx) and atol = 10 eps max(1, |loss|) / h, the rounding of the
    centred difference itself.  That rounding (measured 3e-11 to 5e-11 here) is what a
    plain rel_error < 1e-7 measures on the smaller entries of a smoothed or weighted
    dx (~1e-4), where it reached 6e-7 depending on the build's floating-point
    contraction; the relative part still catches any wrong entry of a useful size."""
    num = eval_numerical_gradient(f, x, verbose=False, h=H)
    atol = 10 * np.finfo(np.float64).eps * max(1.0, abs(loss)) / H
    return bool(np.all(np.abs(num - dx) <= SOFTMAX_DX_TOL * (np.abs(num) + np.abs(dx))
                       + atol))


@pytest.mark.parametrize("eps", [0.1, 0.7])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_smoothed_loss_gradient_check(eps, weighted):
    """dx against central differences of the loss value (float64): SPEC.md item 4's
    data, then larger scores (the smoothed part matters more away from uniform p)."""
    np.random.seed(231)
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    w = np.random.uniform(0.2, 2.0, 50) if weighted else None
    x2 = np.random.randn(20, 6)
    y2 = np.random.randint(6, size=20)
    for xv, yv in ((x, y), (x2, y2)):
        wv = None if w is None else w[:len(yv)]
        loss, dx = L.softmax_loss(xv, yv, sample_weight=wv, label_smoothing=eps)
        assert gradient_matches(
            lambda v: L.softmax_loss(v, yv, sample_weight=wv, label_smoothing=eps)[0],
            xv, dx, loss)


def test_gradient_check_catches_the_unsmoothed_gradient():
    """The check above can fail: the plain gradient is not that of the smoothed loss,
    on either data set."""
    np.random.seed(231)
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    x2, y2 = scores_and_labels(10, 5, seed=8, scale=1.0)
    for xv, yv in ((x, y), (x2, y2)):
        loss, plain_dx = L.softmax_loss(xv, yv)
        assert not gradient_matches(
            lambda v: L.softmax_loss(v, yv, label_smoothing=0.1)[0], xv, plain_dx, loss)


# ============================================================ 2. eps = 0 changes nothing

def test_eps_zero_is_bit_identical_and_keeps_spec_value(dtype):
    np.random.seed(231)
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    loss, dx = L.softmax_loss(x, y)
    assert abs(loss - 2.302545844500738) < 1e-10      # SPEC.md item 4
    x = x.astype(dtype)
    w = np.random.uniform(0.1, 1.0, 50)
    for kwargs in ({}, {"sample_weight": w}):
        a = L.softmax_loss(x, y, **kwargs)
        for zero in (0, 0.0, np.float32(0), -0.0):
            b = L.softmax_loss(x, y, label_smoothing=zero, **kwargs)
            assert a[0] == b[0]
            np.testing.assert_array_equal(a[1], b[1])
    # the compiled twin: an explicit 0 is the call without it
    d1, d2 = np.empty_like(x), np.empty_like(x)
    assert K._softmax_loss(x, y.astype(np.intp), d1) == \
        K._softmax_loss(x, y.astype(np.intp), d2, None, 0.0)
    np.testing.assert_array_equal(d1, d2)


def test_smoothing_changes_loss_and_gradient():
    x, y = scores_and_labels(6, 4, seed=9)
    a, da = L.softmax_loss(x, y)
    b, db = L.softmax_loss(x, y, label_smoothing=0.1)
    assert a != b and not np.array_equal(da, db)


@pytest.mark.parametrize("dtype_", [np.float32, np.float64])
def test_net_eps_zero_is_bit_identical(dtype_):
    X, y = scores_and_labels(16, 6, seed=10, dtype=dtype_)
    y = y % 3
    nets = [Net([6, 8, 3], seed=3, dtype=dtype_, dropout_keep_ratio=0.9,
                normalization="batchnorm", **kw).set_optimizer("adam", learning_rate=1e-2)
            for kw in ({}, {"label_smoothing": 0.0})]
    for _ in range(3):
        assert nets[0].train_step(X, y) == nets[1].train_step(X, y)
    for k in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[k], nets[1].params[k])
    assert nets[1].label_smoothing == 0.0


# ============================================================ 3. Net against the course path

def course_loss_and_grads(params, X, y, eps, reg=0.0, normalization=None, w=None):
    """{affine - [norm] - relu} x (L-1) - affine - smoothed softmax with the functional
    layers (fastfc.layers / layer_utils) in float64, train mode."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    n_layers = sum(1 for k in p if k.startswith("W"))
    h = np.asarray(X, dtype=np.float64)
    caches = []
    for i in range(1, n_layers):
        if normalization is None:
            h, cache = LU.affine_relu_forward(h, p[f"W{i}"], p[f"b{i}"])
        else:
            h, cache = LU.affine_norm_relu_forward(h, p[f"W{i}"], p[f"b{i}"],
                                                   p[f"gamma{i}"], p[f"beta{i}"],
                                                   {"mode": "train"}, normalization)
        caches.append(cache)
    scores, cache = L.affine_forward(h, p[f"W{n_layers}"], p[f"b{n_layers}"])
    loss, dout = L.softmax_loss(scores, y, sample_weight=w, label_smoothing=eps)
    loss += 0.5 * reg * sum((p[f"W{i}"] ** 2).sum() for i in range(1, n_layers + 1))
    grads = {}
    dout, grads[f"W{n_layers}"], grads[f"b{n_layers}"] = L.affine_backward(dout, cache)
    for i in range(n_layers - 1, 0, -1):
        if normalization is None:
            dout, grads[f"W{i}"], grads[f"b{i}"] = LU.affine_relu_backward(dout, caches[i - 1])
        else:
            (dout, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"],
             grads[f"beta{i}"]) = LU.affine_norm_relu_backward(dout, caches[i - 1])
    for i in range(1, n_layers + 1):
        grads[f"W{i}"] += reg * p[f"W{i}"]
    return loss, grads


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("eps", [0.1, 0.4])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_net_loss_and_grads_match_course_path(eps, normalization, weighted):
    X, y = scores_and_labels(11, 7, seed=11)
    y = y % 5
    w = np.random.default_rng(12).uniform(0.1, 2.0, 11) if weighted else None
    net = Net([7, 9, 8, 5], normalization=normalization, reg=0.05, seed=4,
              dtype=np.float64, label_smoothing=eps)
    loss, grads = net.loss(X, y, sample_weight=w)
    ref_loss, ref = course_loss_and_grads(net.params, X, y, eps, 0.05, normalization, w)
    assert abs(loss - ref_loss) < 1e-10
    assert set(grads) == set(ref)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
    # and the course path without smoothing is a different function
    plain_loss, _ = course_loss_and_grads(net.params, X, y, 0.0, 0.05, normalization, w)
    assert abs(plain_loss - loss) > 1e-4


def test_net_float32_matches_course_path_at_float32_tolerance():
    X, y = scores_and_labels(10, 6, seed=13, dtype=np.float32)
    y = y % 4
    net = Net([6, 12, 4], seed=5, dtype=np.float32, label_smoothing=0.2)
    loss, grads = net.loss(X, y)
    ref_loss, ref = course_loss_and_grads(net.params, X, y, 0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for k in ref:
        assert grads[k].dtype == np.float32
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("use_indices", [False, True], ids=["batch", "indices"])
def test_net_sgd_train_step_follows_the_smoothed_gradient(use_indices):
    """One fused step: the loss returned is the course path's at the old weights, and
    the new weights are W - lr * grad (reg fused into the update)."""
    X, y = scores_and_labels(20, 7, seed=14)
    y = y % 5
    idx = np.array([3, 0, 19, 7, 7, 11, 4, 15])
    Xb, yb = X[idx], y[idx]
    net = Net([7, 10, 5], seed=6, reg=0.02, dtype=np.float64, label_smoothing=0.15)
    net.set_optimizer("sgd", learning_rate=0.3)
    before = {k: np.array(v, copy=True) for k, v in net.params.items()}
    ref_loss, ref = course_loss_and_grads(before, Xb, yb, 0.15, reg=0.02)
    if use_indices:
        loss = net.train_step(X, yb, indices=idx)
    else:
        loss = net.train_step(Xb, yb)
    assert abs(loss - ref_loss) < 1e-10
    for k in before:
        np.testing.assert_allclose(net.params[k], before[k] - 0.3 * ref[k], rtol=1e-10,
                                   atol=1e-12, err_msg=k)


def test_net_gradient_check_with_smoothing_and_dropout():
    X, y = scores_and_labels(6, 5, seed=15)
    y = y % 4
    net = Net([5, 7, 6, 4], seed=7, dtype=np.float64, dropout_keep_ratio=0.7,
              normalization="batchnorm", label_smoothing=0.2)
    report = GradientCheck(net, verbose=False).run(X, y)
    assert max(report.values()) < 1e-6, report


def test_solver_records_the_smoothed_loss():
    """The Solver's fused path records what train_step returns: the smoothed loss."""
    X, y = scores_and_labels(40, 6, seed=16)
    y = y % 3
    data = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    net = Net([6, 8, 3], seed=8, dtype=np.float64, label_smoothing=0.3)
    first = {k: np.array(v, copy=True) for k, v in net.params.items()}
    np.random.seed(0)
    idx = np.random.choice(40, 10)
    solver = Solver(net, data, update_rule="sgd", optim_config={"learning_rate": 0.1},
                    batch_size=10, num_epochs=1, verbose=False)
    np.random.seed(0)
    solver.train()
    assert solver.loss_history[0] == pytest.approx(
        course_loss_and_grads(first, X[idx], y[idx], 0.3)[0], abs=1e-10)


def test_smoothing_changes_training_and_is_settable_between_steps():
    X, y = scores_and_labels(30, 6, seed=17)
    y = y % 3
    a = Net([6, 8, 3], seed=9, dtype=np.float64).set_optimizer("sgd", learning_rate=0.5)
    b = Net([6, 8, 3], seed=9, dtype=np.float64, label_smoothing=0.2)
    b.set_optimizer("sgd", learning_rate=0.5)
    a.train_step(X, y)
    b.train_step(X, y)
    assert not np.array_equal(a.params["W1"], b.params["W1"])
    # settable: after setting 0, b steps exactly as a plain net from b's weights
    b.label_smoothing = 0
    c = Net([6, 8, 3], seed=9, dtype=np.float64).set_optimizer("sgd", learning_rate=0.5)
    c.params = b.params.copy()
    assert b.train_step(X, y) == c.train_step(X, y)
    np.testing.assert_array_equal(b.params["W2"], c.params["W2"])
    b.label_smoothing = 0.3
    assert b.label_smoothing == 0.3 and "label_smoothing=0.3" in repr(b)
    assert "label_smoothing" not in repr(c)


# ============================================================ 4. the setting travels with the net

def _trained(eps, normalization="batchnorm", dtype=np.float32):
    X, y = scores_and_labels(16, 6, seed=18, dtype=dtype)
    y = y % 3
    net = Net([6, 7, 3], normalization=normalization, seed=0, dtype=dtype,
              label_smoothing=eps)
    net.set_optimizer("adam", learning_rate=1e-2)
    net.train_step(X, y)
    return net, X, y


def test_save_load_round_trip(tmp_path):
    net, X, y = _trained(0.15)
    net.save(tmp_path / "net.npz")
    back = Net.load(tmp_path / "net.npz")
    assert back.label_smoothing == pytest.approx(0.15)
    assert back.loss(X, y)[0] == net.loss(X, y)[0]
    # the loaded net trains exactly as the original
    for n in (net, back):
        n.set_optimizer("sgd", learning_rate=0.1)
    assert net.train_step(X, y) == back.train_step(X, y)
    np.testing.assert_array_equal(net.params["W1"], back.params["W1"])


def _header(path):
    with np.load(path, allow_pickle=False) as data:
        return json.loads(bytes(data["__header__"]).decode())


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__header__"}
        header = json.loads(bytes(data["__header__"]).decode())
    mutate(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_saved_header_names_smoothing_only_when_used(tmp_path):
    smoothed, _, _ = _trained(0.1)
    plain, _, _ = _trained(0.0)
    smoothed.save(tmp_path / "a.npz")
    plain.save(tmp_path / "b.npz")
    assert _header(tmp_path / "a.npz")["net"]["label_smoothing"] == pytest.approx(0.1)
    # a net without smoothing writes the header it always wrote (older versions read it)
    assert "label_smoothing" not in _header(tmp_path / "b.npz")["net"]
    assert Net.load(tmp_path / "b.npz").label_smoothing == 0.0


@pytest.mark.parametrize("value", [1.0, -0.1, 2, "0.1", True, None])
def test_load_refuses_a_bad_smoothing_value(tmp_path, value):
    net, _, _ = _trained(0.1)
    path = tmp_path / "net.npz"
    net.save(path)
    _rewrite(path, lambda h: h["net"].update(label_smoothing=value))
    with pytest.raises(CheckpointError, match="label_smoothing"):
        Net.load(path)


def test_load_refuses_smoothing_with_another_loss(tmp_path):
    net = Net([6, 7, 3], loss="svm", seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    _rewrite(path, lambda h: h["net"].update(label_smoothing=0.1))
    with pytest.raises(CheckpointError, match="label_smoothing"):
        Net.load(path)


def test_pickle_astype_and_old_pickles():
    net, X, y = _trained(0.25, dtype=np.float64)
    back = pickle.loads(pickle.dumps(net))
    assert back.label_smoothing == 0.25
    assert back.loss(X, y)[0] == net.loss(X, y)[0]
    f32 = net.astype(np.float32)
    assert f32.label_smoothing == 0.25
    assert f32.loss(X, y)[0] == pytest.approx(net.loss(X, y)[0], rel=1e-5)
    # the state of a version before label smoothing (no such key) loads as 0
    state = net.__getstate__()
    del state["label_smoothing"]
    old = Net.__new__(Net)
    old.__setstate__(state)
    assert old.label_smoothing == 0.0


# ============================================================ 5. FCClassifier

def test_classifier_passes_label_smoothing_to_the_net():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from fastfc.sklearn import FCClassifier
    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    y = y[:300]
    plain = FCClassifier(hidden_dims=(16,), max_iter=3, random_state=0).fit(X, y)
    smooth = FCClassifier(hidden_dims=(16,), max_iter=3, random_state=0,
                          label_smoothing=0.1).fit(X, y)
    assert FCClassifier().get_params()["label_smoothing"] == 0.0
    assert smooth.get_params()["label_smoothing"] == 0.1
    assert plain.net_.label_smoothing == 0.0 and smooth.net_.label_smoothing == 0.1
    assert not np.array_equal(plain.net_.params["W1"], smooth.net_.params["W1"])
    assert smooth.loss_curve_ != plain.loss_curve_
    # the validation loss is the smoothed loss the net trains on
    est = FCClassifier(hidden_dims=(16,), max_iter=2, random_state=0, early_stopping=True,
                       label_smoothing=0.2, dtype="float64").fit(X, y)
    Xv, yv = X[:40], np.searchsorted(est.classes_, y[:40])
    expect = L.softmax_loss(est.net_.loss(Xv), yv, label_smoothing=0.2)[0] + est._l2()
    assert est._val_loss(Xv, yv, None) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("value, exc", [(1.0, ValueError), (-0.2, ValueError),
                                        (np.nan, ValueError), ("0.1", TypeError),
                                        (True, TypeError)])
def test_classifier_refuses_bad_label_smoothing(value, exc):
    pytest.importorskip("sklearn")
    from fastfc.sklearn import FCClassifier
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = np.arange(20) % 2
    with pytest.raises(exc, match="label_smoothing"):
        FCClassifier(label_smoothing=value, max_iter=1).fit(X, y)


# ============================================================ 6. bad values

@pytest.mark.parametrize("value, exc", [(1.0, ValueError), (1.5, ValueError),
                                        (-1e-3, ValueError), (np.inf, ValueError),
                                        (np.nan, ValueError), ("0.1", TypeError),
                                        (None, TypeError), (True, TypeError),
                                        ([0.1], TypeError)])
def test_bad_values_name_the_argument(value, exc):
    x, y = scores_and_labels(4, 3, seed=19)
    with pytest.raises(exc, match="label_smoothing"):
        L.softmax_loss(x, y, label_smoothing=value)
    with pytest.raises(exc, match="label_smoothing"):
        Net([3, 4, 3], label_smoothing=value)
    net = Net([3, 4, 3], label_smoothing=0.1)
    with pytest.raises(exc, match="label_smoothing"):
        net.label_smoothing = value
    assert net.label_smoothing == 0.1     # unchanged


@pytest.mark.parametrize("loss", ["svm", "mse"])
def test_other_losses_refuse_smoothing(loss):
    with pytest.raises(ValueError, match="label_smoothing.*'softmax'"):
        Net([3, 4, 2], loss=loss, label_smoothing=0.1)
    net = Net([3, 4, 2], loss=loss, label_smoothing=0.0)    # 0 is the default: accepted
    assert net.label_smoothing == 0.0
    with pytest.raises(ValueError, match="label_smoothing"):
        net.label_smoothing = 0.05


@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none()))
def test_any_value_either_works_or_raises(value):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.1, -0.3]])
    y = np.array([2, 0])
    try:
        loss, dx = L.softmax_loss(x, y, label_smoothing=value)
    except (ValueError, TypeError) as exc:
        assert "label_smoothing" in str(exc)
        return
    assert 0.0 <= float(value) < 1.0
    assert np.isfinite(loss) and np.isfinite(dx).all()
    ref_loss, ref_dx = smoothed_xent(x, y, float(value))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
