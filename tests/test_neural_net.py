"""Tests of fastfc.classifiers.neural_net (the monolithic TwoLayerNet with train/predict).

Layout of this file:

1. SPEC.md reference value 7 (cs231n variant): scores, loss, gradient checks, training.
2. The ucla variant: shapes, initial draws, loss and gradients against NumPy, training.
3. Both variants and both float dtypes against the NumPy formulas written here.
4. train(): RNG parity with a NumPy re-implementation of the reference loop, the
   true-division epoch rule, the learning-rate decay, verbose output, divergence warning.
5. predict, memory layouts, edge shapes.
6. Argument handling (errors name the argument), hypothesis for bad input.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastfc.classifiers.neural_net import VARIANTS, TwoLayerNet
from fastfc.gradient_check import eval_numerical_gradient, rel_error

VARIANT_NAMES = list(VARIANTS)
L2_SCALE = {"cs231n": 1.0, "ucla": 0.5}
F32_VS_F64 = {"rtol": 1e-5, "atol": 1e-5}


# ----------------------------------------------------------------------------------
# NumPy formulas (the expected values; nothing here calls fastfc)
# ----------------------------------------------------------------------------------

def np_loss(params, X, y=None, reg=0.0, variant="cs231n"):
    """The reference neural_net.py loss, for either variant, in float64."""
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    X = np.asarray(X, dtype=np.float64)
    if variant == "ucla":
        W1, W2 = W1.T, W2.T
    h = np.maximum(0, X.dot(W1) + b1)
    scores = h.dot(W2) + b2
    if y is None:
        return scores
    n = X.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    scale = L2_SCALE[variant]
    loss = -np.log(probs[np.arange(n), y]).mean()
    loss += scale * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    dscores = probs
    dscores[np.arange(n), y] -= 1
    dscores /= n
    dW2 = h.T.dot(dscores) + 2 * scale * reg * W2
    db2 = dscores.sum(axis=0)
    dh = dscores.dot(W2.T)
    dh[h <= 0] = 0
    dW1 = X.T.dot(dh) + 2 * scale * reg * W1
    db1 = dh.sum(axis=0)
    if variant == "ucla":
        dW1, dW2 = dW1.T, dW2.T
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def np_train(params, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95,
             reg=5e-6, num_iters=100, batch_size=200, variant="cs231n"):
    """The reference train() loop on NumPy, updating ``params`` (a dict) in place."""
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train / batch_size, 1)
    loss_history, train_acc_history, val_acc_history = [], [], []
    for it in range(num_iters):
        idx = np.random.choice(num_train, batch_size, replace=True)
        X_batch, y_batch = X[idx], y[idx]
        loss, grads = np_loss(params, X_batch, y_batch, reg, variant)
        loss_history.append(loss)
        for k in params:
            params[k] -= learning_rate * grads[k]
        if it % iterations_per_epoch == 0:
            pred_b = np.argmax(np_loss(params, X_batch, variant=variant), axis=1)
            pred_v = np.argmax(np_loss(params, X_val, variant=variant), axis=1)
            train_acc_history.append((pred_b == y_batch).mean())
            val_acc_history.append((pred_v == y_val).mean())
            learning_rate *= learning_rate_decay
    return {"loss_history": loss_history, "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history}


def toy(variant="cs231n"):
    """The notebook's toy model and data (SPEC reference 7 for cs231n)."""
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, variant=variant)
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    return net, X, y


def blobs(n=60, d=8, c=4, seed=0):
    """Separable-ish random data: class means plus noise."""
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, size=n)
    X = centers[y] + rng.standard_normal((n, d))
    return X, y


# ----------------------------------------------------------------------------------
# 1. SPEC reference value 7
# ----------------------------------------------------------------------------------

REF7_SCORES = np.asarray([
    [-0.81233741, -1.27654624, -0.70335995],
    [-0.17129677, -1.18803311, -0.47310444],
    [-0.51590475, -1.01354314, -0.8504215],
    [-0.15419291, -0.48629638, -0.52901952],
    [-0.00618733, -0.12435261, -0.15226949]])


def test_ref7_init_draws_match_numpy():
    net, _, _ = toy()
    np.random.seed(0)
    w1 = 1e-1 * np.random.randn(4, 10)
    w2 = 1e-1 * np.random.randn(10, 3)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    np.testing.assert_array_equal(net.params["W1"], w1)
    np.testing.assert_array_equal(net.params["W2"], w2)
    np.testing.assert_array_equal(net.params["b1"], np.zeros(10))
    np.testing.assert_array_equal(net.params["b2"], np.zeros(3))
    assert all(v.dtype == np.float64 for v in net.params.values())


def test_ref7_scores():
    net, X, _ = toy()
    scores = net.loss(X)
    assert scores.shape == (5, 3) and scores.dtype == np.float64
    assert np.sum(np.abs(scores - REF7_SCORES)) < 1e-7


def test_ref7_loss():
    net, X, y = toy()
    loss, _ = net.loss(X, y, reg=0.05)
    assert isinstance(loss, float)
    assert abs(loss - 1.30378789133) < 1e-10


@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_ref7_gradient_check(name):
    net, X, y = toy()
    loss, grads = net.loss(X, y, reg=0.05)
    f = lambda _: net.loss(X, y, reg=0.05)[0]  # noqa: E731
    num = eval_numerical_gradient(f, net.params[name], verbose=False)
    assert grads[name].shape == net.params[name].shape
    assert rel_error(num, grads[name]) < 1e-8


def test_ref7_training():
    net, X, y = toy()
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100,
                      verbose=False)
    assert len(stats["loss_history"]) == 100
    assert stats["loss_history"][-1] < 0.2


# ----------------------------------------------------------------------------------
# 2. ucla variant
# ----------------------------------------------------------------------------------

def test_ucla_shapes_and_draws():
    np.random.seed(3)
    net = TwoLayerNet(7, 5, 3, std=0.5, variant="ucla")
    np.random.seed(3)
    w1 = 0.5 * np.random.randn(5, 7)
    w2 = 0.5 * np.random.randn(3, 5)
    assert net.variant == "ucla"
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert {k: v.shape for k, v in net.params.items()} == {
        "W1": (5, 7), "b1": (5,), "W2": (3, 5), "b2": (3,)}
    np.testing.assert_array_equal(net.params["W1"], w1)
    np.testing.assert_array_equal(net.params["W2"], w2)


def test_ucla_loss_uses_half_reg():
    net, X, y = toy("ucla")
    reg = 0.3
    loss, grads = net.loss(X, y, reg=reg)
    want_loss, want_grads = np_loss(net.params, X, y, reg, "ucla")
    assert abs(loss - want_loss) < 1e-10
    for k in want_grads:
        assert rel_error(grads[k], want_grads[k]) < 1e-9, k
    # the penalty is 0.5 * reg * sum(W^2): the difference between two regs shows it
    l0 = net.loss(X, y, reg=0.0)[0]
    penalty = np.sum(net.params["W1"] ** 2) + np.sum(net.params["W2"] ** 2)
    assert abs((loss - l0) - 0.5 * reg * penalty) < 1e-12
    # and its gradient is reg * W
    g0 = net.loss(X, y, reg=0.0)[1]
    np.testing.assert_allclose(grads["W1"] - g0["W1"], reg * net.params["W1"], rtol=1e-9,
                               atol=1e-14)


def test_cs231n_loss_uses_full_reg():
    net, X, y = toy("cs231n")
    reg = 0.3
    loss, grads = net.loss(X, y, reg=reg)
    l0, g0 = net.loss(X, y, reg=0.0)
    penalty = np.sum(net.params["W1"] ** 2) + np.sum(net.params["W2"] ** 2)
    assert abs((loss - l0) - reg * penalty) < 1e-12
    np.testing.assert_allclose(grads["W2"] - g0["W2"], 2 * reg * net.params["W2"],
                               rtol=1e-9, atol=1e-14)


def test_ucla_scores_are_transposed_cs231n_scores():
    net, X, _ = toy("cs231n")
    other = TwoLayerNet(4, 10, 3, variant="ucla")
    other.params = {"W1": net.params["W1"].T.copy(), "b1": net.params["b1"],
                    "W2": net.params["W2"].T.copy(), "b2": net.params["b2"]}
    np.testing.assert_allclose(other.loss(X), net.loss(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reg", [0.0, 0.05, 0.7])
@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_ucla_gradient_check(name, reg):
    net, X, y = toy("ucla")  # non-zero biases are covered by the NumPy comparisons
    _, grads = net.loss(X, y, reg=reg)
    f = lambda _: net.loss(X, y, reg=reg)[0]  # noqa: E731
    num = eval_numerical_gradient(f, net.params[name], verbose=False)
    assert rel_error(num, grads[name]) < 1e-8


def test_ucla_training_decreases_loss():
    net, X, y = toy("ucla")
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100)
    hist = stats["loss_history"]
    assert hist[-1] < 0.2 < hist[0]
    assert stats["train_acc_history"][-1] == 1.0


# ----------------------------------------------------------------------------------
# 3. both variants, both dtypes, against NumPy
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_loss_and_grads_against_numpy(variant, dtype, tol):
    np.random.seed(5)
    net = TwoLayerNet(6, 9, 4, std=0.3, variant=variant)
    net.params["b1"] = np.linspace(-0.2, 0.2, 9)
    net.params["b2"] = np.linspace(-0.1, 0.3, 4)
    net.params = {k: v.astype(dtype) for k, v in net.params.items()}
    X = np.random.randn(13, 6).astype(dtype)
    y = np.random.randint(4, size=13)
    reg = 0.2
    scores = net.loss(X)
    loss, grads = net.loss(X, y, reg=reg)
    want_scores = np_loss(net.params, X, variant=variant)
    want_loss, want_grads = np_loss(net.params, X, y, reg, variant)
    t = tol if np.dtype(dtype) == np.float64 else F32_VS_F64
    assert scores.dtype == dtype and scores.shape == (13, 4)
    np.testing.assert_allclose(scores, want_scores, **t)
    np.testing.assert_allclose(loss, want_loss, **t)
    for k in ("W1", "b1", "W2", "b2"):
        assert grads[k].dtype == dtype and grads[k].shape == net.params[k].shape
        np.testing.assert_allclose(grads[k], want_grads[k], **t)


def test_input_cast_to_params_dtype():
    net, X, y = toy()
    # float32 X with float64 params: computed in float64, same numbers as float64 X
    X32 = X.astype(np.float32)
    assert net.loss(X32).dtype == np.float64
    np.testing.assert_allclose(net.loss(X32), net.loss(X32.astype(np.float64)), rtol=1e-15)
    # integer X is accepted too
    Xi = np.round(X).astype(np.int64)
    np.testing.assert_allclose(net.loss(Xi), np_loss(net.params, Xi), rtol=1e-12)
    # float32 params: everything float32, also under train()
    net.params = {k: v.astype(np.float32) for k, v in net.params.items()}
    assert net.loss(X).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.loss(X, y)[1].values())
    stats = net.train(X, y, X, y, learning_rate=1e-1, num_iters=30)
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert stats["loss_history"][-1] < stats["loss_history"][0]


def test_loss_does_not_modify_inputs():
    net, X, y = toy()
    before = {k: v.copy() for k, v in net.params.items()}
    X0, y0 = X.copy(), y.copy()
    net.loss(X, y, reg=0.1)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


def test_grads_are_fresh_arrays():
    net, X, y = toy()
    _, g1 = net.loss(X, y)
    saved = {k: v.copy() for k, v in g1.items()}
    net.loss(2 * X, y)
    for k in g1:
        np.testing.assert_array_equal(g1[k], saved[k])
        assert not np.shares_memory(g1[k], net.params[k])


# ----------------------------------------------------------------------------------
# 4. train()
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANT_NAMES)
@pytest.mark.parametrize("num_train,batch_size", [(50, 20), (30, 7), (10, 40)])
def test_train_rng_parity_with_numpy_reference(variant, num_train, batch_size):
    X, y = blobs(n=num_train + 15, d=8, c=4, seed=1)
    X_tr, y_tr, X_val, y_val = X[:num_train], y[:num_train], X[num_train:], y[num_train:]
    kwargs = dict(learning_rate=5e-2, learning_rate_decay=0.9, reg=1e-3, num_iters=30,
                  batch_size=batch_size)

    np.random.seed(42)
    net = TwoLayerNet(8, 12, 4, std=1e-1, variant=variant)
    stats = net.train(X_tr, y_tr, X_val, y_val, **kwargs)
    after_fastfc = np.random.rand()  # same number of draws from the global generator

    np.random.seed(42)
    shape = VARIANTS[variant].weight_shape
    params = {"W1": 1e-1 * np.random.randn(*shape(8, 12)), "b1": np.zeros(12),
              "W2": 1e-1 * np.random.randn(*shape(12, 4)), "b2": np.zeros(4)}
    want = np_train(params, X_tr, y_tr, X_val, y_val, variant=variant, **kwargs)
    after_numpy = np.random.rand()

    assert after_fastfc == after_numpy
    assert len(stats["loss_history"]) == 30
    np.testing.assert_allclose(stats["loss_history"], want["loss_history"], rtol=0,
                               atol=1e-10)
    assert stats["train_acc_history"] == want["train_acc_history"]
    assert stats["val_acc_history"] == want["val_acc_history"]
    for k in params:
        np.testing.assert_allclose(net.params[k], params[k], rtol=1e-9, atol=1e-12)


def test_train_draws_exactly_np_random_choice():
    """Each iteration's minibatch is np.random.choice(num_train, batch_size, replace=True)."""
    X, y = blobs(n=40, seed=2)
    seen = []

    class Spy(TwoLayerNet):
        def loss(self, X, y=None, reg=0.0):
            if y is not None:
                seen.append(np.array(X, copy=True))
            return super().loss(X, y, reg)

    np.random.seed(0)
    net = Spy(8, 6, 4)
    np.random.seed(7)
    net.train(X, y, X, y, num_iters=5, batch_size=9)
    np.random.seed(7)
    expected = [X[np.random.choice(40, 9, replace=True)] for _ in range(5)]
    assert len(seen) == 5
    for got, want in zip(seen, expected):
        np.testing.assert_array_equal(got, want)


def epoch_iterations(num_train, batch_size, num_iters):
    ipe = max(num_train / batch_size, 1)
    return [it for it in range(num_iters) if it % ipe == 0]


@pytest.mark.parametrize("num_train,batch_size,num_iters,expected", [
    (250, 200, 10, [0, 5]),           # 1.25 iterations per epoch: true division
    (1000, 200, 12, [0, 5, 10]),      # 5.0
    (100, 200, 4, [0, 1, 2, 3]),      # max(0.5, 1) = 1: every iteration
    (300, 200, 7, [0, 3, 6]),         # 1.5
])
def test_epoch_rule_true_division(num_train, batch_size, num_iters, expected):
    assert epoch_iterations(num_train, batch_size, num_iters) == expected
    # floor division (max(250 // 200, 1) = 1) would record at every iteration
    X, y = blobs(n=num_train, d=5, c=3, seed=3)
    calls = []

    class Spy(TwoLayerNet):
        def loss(self, X, y=None, reg=0.0):
            if y is not None:
                calls.append("step")
            return super().loss(X, y, reg)

        def predict(self, X):
            calls.append("predict")
            return super().predict(X)

    np.random.seed(0)
    net = Spy(5, 4, 3)
    stats = net.train(X, y, X[:20], y[:20], num_iters=num_iters, batch_size=batch_size)
    assert len(stats["train_acc_history"]) == len(expected)
    assert len(stats["val_acc_history"]) == len(expected)
    # the iteration at which each pair of predict calls happened
    it, recorded = -1, []
    for c in calls:
        if c == "step":
            it += 1
        else:
            recorded.append(it)
    assert recorded[::2] == expected and recorded[1::2] == expected


def test_learning_rate_decays_after_the_update():
    """The update of iteration 0 uses the initial rate; the decay comes after it."""
    X, y = blobs(n=400, d=6, c=3, seed=4)

    np.random.seed(0)
    a = TwoLayerNet(6, 5, 3, std=1e-1)
    np.random.seed(1)
    a.train(X, y, X, y, learning_rate=0.5, learning_rate_decay=0.0, num_iters=10,
            batch_size=100)  # 4 iterations per epoch: rate 0 from iteration 1 on

    np.random.seed(0)
    b = TwoLayerNet(6, 5, 3, std=1e-1)
    np.random.seed(1)
    b.train(X, y, X, y, learning_rate=0.5, num_iters=1, batch_size=100)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])

    np.random.seed(0)
    c = TwoLayerNet(6, 5, 3, std=1e-1)
    init = {k: v.copy() for k, v in c.params.items()}
    c.train(X, y, X, y, learning_rate=0.5, num_iters=1, batch_size=100)
    assert not np.array_equal(c.params["W1"], init["W1"])


def test_update_is_in_place():
    net, X, y = toy()
    ids = {k: id(v) for k, v in net.params.items()}
    views = {k: v for k, v in net.params.items()}
    before = {k: v.copy() for k, v in net.params.items()}
    net.train(X, y, X, y, learning_rate=1e-1, num_iters=3)
    assert {k: id(v) for k, v in net.params.items()} == ids
    assert not np.array_equal(views["W2"], before["W2"])


def test_history_types():
    net, X, y = toy()
    stats = net.train(X, y, X, y, num_iters=3)
    assert set(stats) == {"loss_history", "train_acc_history", "val_acc_history"}
    assert all(isinstance(v, float) for v in stats["loss_history"])
    assert all(0.0 <= a <= 1.0 for a in stats["train_acc_history"] + stats["val_acc_history"])


def test_zero_iterations():
    net, X, y = toy()
    before = {k: v.copy() for k, v in net.params.items()}
    stats = net.train(X, y, X, y, num_iters=0)
    assert stats == {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


def test_verbose_prints_every_100_iterations(capsys):
    net, X, y = toy()
    stats = net.train(X, y, X, y, num_iters=201, batch_size=4, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert out == ["iteration %d / %d: loss %f" % (it, 201, stats["loss_history"][it])
                   for it in (0, 100, 200)]
    assert out[0].startswith("iteration 0 / 201: loss ")


def test_not_verbose_prints_nothing(capsys):
    net, X, y = toy()
    net.train(X, y, X, y, num_iters=150)
    assert capsys.readouterr().out == ""


def test_divergence_warns_once_and_keeps_going():
    net, X, y = toy()
    net.params["W2"][0, 0] = np.nan
    with pytest.warns(RuntimeWarning, match="lower the learning rate") as record:
        stats = net.train(X, y, X, y, num_iters=5)
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert len(stats["loss_history"]) == 5
    assert np.isnan(stats["loss_history"][-1])


def test_train_with_noncontiguous_params_normalises_them():
    # toy() re-seeds the global generator, so both trainings draw the same minibatches
    a, X, y = toy()
    a.params["W1"] = np.asfortranarray(a.params["W1"])
    sa = a.train(X, y, X, y, learning_rate=1e-1, num_iters=5)
    b, X, y = toy()
    sb = b.train(X, y, X, y, learning_rate=1e-1, num_iters=5)
    np.testing.assert_array_equal(sa["loss_history"], sb["loss_history"])
    for k in b.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.params["W1"].flags.c_contiguous


# ----------------------------------------------------------------------------------
# 5. predict, layouts, edge shapes
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_predict(variant):
    net, X, y = toy(variant)
    pred = net.predict(X)
    assert pred.shape == (5,)
    assert np.issubdtype(pred.dtype, np.integer)
    np.testing.assert_array_equal(pred, np.argmax(np_loss(net.params, X, variant=variant),
                                                  axis=1))
    assert pred.min() >= 0 and pred.max() < 3


def test_noncontiguous_inputs():
    net, X, y = toy()
    want = net.loss(X, y, reg=0.1)
    for Xv in (np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2],
               np.ascontiguousarray(X[::-1])[::-1]):
        got = net.loss(Xv, y, reg=0.1)
        assert abs(got[0] - want[0]) < 1e-12
        for k in want[1]:
            np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-15)
    ys = np.repeat(y, 2)[::2]
    assert abs(net.loss(X, ys, reg=0.1)[0] - want[0]) < 1e-12


@pytest.mark.parametrize("variant", VARIANT_NAMES)
@pytest.mark.parametrize("n,d,h,c", [(1, 1, 1, 2), (1, 3, 2, 1), (4, 1, 3, 5)])
def test_edge_shapes(variant, n, d, h, c):
    np.random.seed(9)
    net = TwoLayerNet(d, h, c, std=1.0, variant=variant)
    net.params["b1"] += 0.5
    X = np.random.randn(n, d)
    y = np.random.randint(c, size=n)
    loss, grads = net.loss(X, y, reg=0.1)
    want_loss, want_grads = np_loss(net.params, X, y, 0.1, variant)
    assert abs(loss - want_loss) < 1e-12
    for k in grads:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-12, atol=1e-14)
    assert net.predict(X).shape == (n,)


def test_std_zero_gives_zero_weights_and_uniform_loss():
    net = TwoLayerNet(3, 4, 5, std=0.0)
    assert not np.any(net.params["W1"]) and not np.any(net.params["W2"])
    loss, _ = net.loss(np.ones((2, 3)), np.array([0, 4]))
    assert abs(loss - np.log(5)) < 1e-12


def test_default_std_and_repr():
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3)
    np.random.seed(0)
    np.testing.assert_array_equal(net.params["W1"], 1e-4 * np.random.randn(4, 10))
    assert repr(net) == "TwoLayerNet(4, 10, 3, variant='cs231n')"
    assert repr(TwoLayerNet(4, 10, 3, variant="ucla")) == "TwoLayerNet(4, 10, 3, variant='ucla')"


# ----------------------------------------------------------------------------------
# 6. argument handling
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(variant="stanford"), ValueError, "variant"),
    (dict(variant=None), TypeError, "variant"),
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=-3), ValueError, "hidden_size"),
    (dict(output_size=0), ValueError, "output_size"),
    (dict(output_size=2.5), TypeError, "output_size"),
    (dict(input_size="4"), TypeError, "input_size"),
    (dict(std=-1e-3), ValueError, "std"),
    (dict(std=float("nan")), ValueError, "std"),
])
def test_constructor_rejects(kwargs, exc, word):
    args = dict(input_size=4, hidden_size=10, output_size=3)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        TwoLayerNet(**args)


def test_constructor_accepts_numpy_integers():
    net = TwoLayerNet(np.int64(4), np.int32(5), 3.0)
    assert net.params["W2"].shape == (5, 3)


@pytest.mark.parametrize("call,exc,word", [
    (lambda net, X, y: net.loss(X[:, :3]), ValueError, "features"),
    (lambda net, X, y: net.loss(X[:, :3], y), ValueError, "X"),
    (lambda net, X, y: net.loss(X[0]), ValueError, "X"),
    (lambda net, X, y: net.loss(X.reshape(5, 2, 2)), ValueError, "reshape"),
    (lambda net, X, y: net.loss(X[:0]), ValueError, "empty"),
    (lambda net, X, y: net.loss(X + 1j), TypeError, "X"),
    (lambda net, X, y: net.loss(X, y + 1), ValueError, "label 3"),
    (lambda net, X, y: net.loss(X, y - 1), ValueError, "label -1"),
    (lambda net, X, y: net.loss(X, y.astype(float)), TypeError, "y"),
    (lambda net, X, y: net.loss(X, y[:4]), ValueError, "y"),
    (lambda net, X, y: net.loss(X, y, reg=-0.1), ValueError, "reg"),
    (lambda net, X, y: net.loss(X, y, reg=float("inf")), ValueError, "reg"),
    (lambda net, X, y: net.predict(X[:, :2]), ValueError, "features"),
    (lambda net, X, y: net.train(X, y, X, y, learning_rate=-1.0), ValueError, "learning_rate"),
    (lambda net, X, y: net.train(X, y, X, y, learning_rate_decay=-0.5), ValueError,
     "learning_rate_decay"),
    (lambda net, X, y: net.train(X, y, X, y, reg=-1.0), ValueError, "reg"),
    (lambda net, X, y: net.train(X, y, X, y, batch_size=0), ValueError, "batch_size"),
    (lambda net, X, y: net.train(X, y, X, y, batch_size=2.5), TypeError, "batch_size"),
    (lambda net, X, y: net.train(X, y, X, y, num_iters=-1), ValueError, "num_iters"),
    (lambda net, X, y: net.train(X[:, :2], y, X, y), ValueError, "X"),
    (lambda net, X, y: net.train(X, y, X[:, :2], y), ValueError, "X_val"),
    (lambda net, X, y: net.train(X, y[:3], X, y), ValueError, "y"),
    (lambda net, X, y: net.train(X, y, X, y + 3), ValueError, "y_val"),
    (lambda net, X, y: net.train(X, y + 3, X, y), ValueError, "y"),
])
def test_calls_reject(call, exc, word):
    net, X, y = toy()
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(exc, match=word):
        call(net, X, y)
    for k in before:  # nothing was trained before the error
        np.testing.assert_array_equal(net.params[k], before[k])


@pytest.mark.parametrize("change,exc,word", [
    (lambda p: p.pop("b2"), ValueError, "b2"),
    (lambda p: p.__setitem__("W2", np.zeros((3, 10))), ValueError, "W2"),
    (lambda p: p.__setitem__("b1", np.zeros(11)), ValueError, "b1"),
    (lambda p: p.__setitem__("W1", np.zeros(40)), ValueError, "W1"),
    (lambda p: p.__setitem__("b2", np.zeros(3, dtype=np.float32)), TypeError, "b2"),
])
def test_bad_params_are_reported(change, exc, word):
    net, X, y = toy()
    change(net.params)
    with pytest.raises(exc, match=word):
        net.loss(X, y)


@given(
    n=st.integers(0, 4), d=st.integers(0, 6), ndim=st.integers(1, 3),
    label=st.integers(-5, 8), reg=st.floats(allow_nan=True, allow_infinity=True),
)
def test_bad_input_raises_never_crashes(n, d, ndim, label, reg):
    net = TwoLayerNet(4, 3, 3, std=1e-1)
    shape = (n, d) if ndim == 2 else ((n,) if ndim == 1 else (n, d, 2))
    X = np.ones(shape)
    y = np.full(n, label)
    good = ndim == 2 and n > 0 and d == 4 and 0 <= label < 3 and np.isfinite(reg) and reg >= 0
    if good:
        loss, grads = net.loss(X, y, reg=reg)
        assert np.isfinite(loss)
    else:
        with pytest.raises((ValueError, TypeError)):
            net.loss(X, y, reg=reg)
