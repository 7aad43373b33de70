"""Tests of fastfc.classifiers.fc_net: TwoLayerNet and FullyConnectedNet.

SPEC reference values 5, 6, 12, 13 and 15 (checked the way the CS231n notebooks do:
``eval_numerical_gradient(..., verbose=False)`` and ``rel_error``), then the contract
around them: the order of calls on NumPy's global generator, parameter names, shapes
and dtypes, train/test modes, the legacy argument spellings, the L2 term and argument
checking.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastfc.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastfc.gradient_check import eval_numerical_gradient, rel_error
from fastfc.solver import Solver

NORMS = [None, "batchnorm", "layernorm"]


def numeric_grads(model, X, y, h=1e-5):
    """{name: numerical gradient} of model.loss(X, y)[0], as the CS231n notebooks do."""
    out = {}
    for name in sorted(model.params):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731
        out[name] = eval_numerical_gradient(f, model.params[name], verbose=False, h=h)
    return out


def spec6_data():
    """np.random.seed(231); X = randn(2, 15); y = randint(10, size=2) (SPEC 6, 12, 13)."""
    np.random.seed(231)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=2)
    return X, y


def spec6_net(**kwargs):
    return FullyConnectedNet([20, 30], input_dim=15, num_classes=10, weight_scale=5e-2,
                             dtype=np.float64, **kwargs)


# ===================================================================== TwoLayerNet (SPEC 5)

def spec5_model():
    """The notebook's TwoLayerNet with the linspace parameters, and its X."""
    N, D, H, C = 3, 5, 50, 7
    np.random.seed(231)
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    return model, X


def test_two_layer_initialisation():
    np.random.seed(231)
    std = 1e-3
    model = TwoLayerNet(input_dim=5, hidden_dim=50, num_classes=7, weight_scale=std)
    p = model.params
    assert set(p) == {"W1", "b1", "W2", "b2"}
    assert p["W1"].shape == (5, 50) and p["b1"].shape == (50,)
    assert p["W2"].shape == (50, 7) and p["b2"].shape == (7,)
    assert abs(p["W1"].std() - std) < std / 10
    assert abs(p["W2"].std() - std) < std / 10
    assert np.all(p["b1"] == 0) and np.all(p["b2"] == 0)


def test_spec5_scores():
    model, X = spec5_model()
    scores = model.loss(X)
    assert scores.shape == (3, 7)
    row0 = np.array([11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434,
                     15.33206765, 16.09215096])
    assert np.abs(scores[0] - row0).sum() < 1e-6
    # the other rows from the NumPy formula
    p = model.params
    expected = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    assert np.abs(scores - expected).sum() < 1e-10


def test_spec5_loss():
    model, X = spec5_model()
    y = np.asarray([0, 5, 1])
    loss, grads = model.loss(X, y)
    assert abs(loss - 3.4702243556) < 1e-10
    assert set(grads) == set(model.params)
    # the notebook's regularised loss: 0.5 * reg * sum(W**2) on top
    model.reg = 1.0
    loss_reg, _ = model.loss(X, y)
    l2 = (model.params["W1"] ** 2).sum() + (model.params["W2"] ** 2).sum()
    assert abs(loss_reg - (loss + 0.5 * l2)) < 1e-10
    assert abs(loss_reg - 26.5948426952) < 1e-10


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_spec5_gradient_check(reg):
    model, X = spec5_model()
    y = np.asarray([0, 5, 1])
    model.reg = reg
    _, grads = model.loss(X, y)
    for name, num in numeric_grads(model, X, y).items():
        assert rel_error(num, grads[name]) < 1e-6, name


def test_two_layer_hidden_dims_spelling():
    np.random.seed(3)
    a = TwoLayerNet(input_dim=4, hidden_dim=6, num_classes=3, weight_scale=0.1)
    np.random.seed(3)
    b = TwoLayerNet(input_dim=4, hidden_dims=6, num_classes=3, weight_scale=0.1)
    assert b.params["W1"].shape == (4, 6) and b.params["W2"].shape == (6, 3)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_two_layer_rng_order():
    np.random.seed(11)
    model = TwoLayerNet(input_dim=4, hidden_dim=6, num_classes=3, weight_scale=0.5)
    after = np.random.randn()
    np.random.seed(11)
    W1 = 0.5 * np.random.randn(4, 6)
    W2 = 0.5 * np.random.randn(6, 3)
    np.testing.assert_array_equal(model.params["W1"], W1)
    np.testing.assert_array_equal(model.params["W2"], W2)
    assert after == np.random.randn()  # no extra draws


def test_two_layer_l2_term():
    np.random.seed(0)
    model = TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=4, weight_scale=0.3)
    X = np.random.randn(5, 6)
    y = np.random.randint(4, size=5)
    loss0, g0 = model.loss(X, y)
    model.reg = 0.37
    loss1, g1 = model.loss(X, y)
    W1, W2 = model.params["W1"], model.params["W2"]
    assert abs((loss1 - loss0) - 0.5 * 0.37 * ((W1**2).sum() + (W2**2).sum())) < 1e-12
    np.testing.assert_allclose(g1["W1"] - g0["W1"], 0.37 * W1, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g1["W2"] - g0["W2"], 0.37 * W2, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(g1["b1"], g0["b1"])
    np.testing.assert_array_equal(g1["b2"], g0["b2"])


@pytest.mark.parametrize("kwargs, exc", [
    ({"input_dim": 0}, ValueError),
    ({"hidden_dim": -3}, ValueError),
    ({"num_classes": 2.5}, TypeError),
    ({"weight_scale": -1.0}, ValueError),
    ({"weight_scale": float("nan")}, ValueError),
    ({"reg": -0.1}, ValueError),
    ({"reg": "0.1"}, TypeError),
])
def test_two_layer_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        TwoLayerNet(**kwargs)


# ================================================================ FullyConnectedNet: SPEC values

def test_spec6_loss_and_gradients():
    X, y = spec6_data()
    for reg in [0, 3.14]:   # the notebook's loop: the second net continues the RNG stream
        model = spec6_net(reg=reg)
        loss, grads = model.loss(X, y)
        if reg == 0:
            assert abs(loss - 2.3004790897684924) < 1e-10
        assert set(grads) == set(model.params)
        for name, num in numeric_grads(model, X, y).items():
            assert rel_error(num, grads[name]) < 1e-4, (reg, name)


def test_spec12_dropout_losses():
    np.random.seed(231)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=2)
    losses = []
    for keep in [1, 0.75]:
        model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, weight_scale=5e-2,
                                  dtype=np.float64, dropout_keep_ratio=keep, seed=123)
        losses.append(model.loss(X, y)[0])
    assert abs(losses[0] - 2.3004790897684924) < 1e-10
    assert abs(losses[1] - 2.302371489704412) < 1e-10


def test_spec12_dropout_gradient_check():
    # with a seed every dropout_forward re-seeds, so the loss is a deterministic function
    X, y = spec6_data()
    model = spec6_net(dropout_keep_ratio=0.75, seed=123)
    _, grads = model.loss(X, y)
    for name, num in numeric_grads(model, X, y).items():
        assert rel_error(num, grads[name]) < 1e-4, name


def test_spec13_batchnorm_loss():
    X, y = spec6_data()
    model = spec6_net(reg=0, normalization="batchnorm")
    loss, grads = model.loss(X, y)
    assert abs(loss - 2.2611955101340957) < 1e-10
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(grads)


@pytest.mark.parametrize("reg", [0.0, 3.14])
@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_normalised_gradient_check(normalization, reg):
    # a batch of 8 (with N=2 batch norm squashes every feature to +-1 and the
    # numerical gradients of W1 drown in rounding).  The data avoid an element whose
    # data gradient nearly cancels reg * W (there, rounding alone gives rel_error ~1e-5).
    rng = np.random.RandomState(0)
    X = rng.randn(8, 15)
    y = rng.randint(10, size=8)
    np.random.seed(7)
    model = spec6_net(reg=reg, normalization=normalization)
    _, grads = model.loss(X, y)
    num = numeric_grads(model, X, y)
    for name in sorted(grads):
        if normalization == "batchnorm" and name in ("b1", "b2"):
            # a bias right before batch norm cancels: its gradient is exactly zero
            assert np.abs(grads[name]).max() < 1e-12, name
            assert np.abs(num[name]).max() < 1e-8, name
            continue
        assert rel_error(num[name], grads[name]) < 1e-5, (name, rel_error(num[name], grads[name]))


def make_overfit_data():
    """50 samples of 64 Gaussian features with 10 random labels (no download)."""
    rng = np.random.RandomState(0)
    X = rng.randn(50, 64)
    y = rng.randint(10, size=50)
    return {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}


@pytest.mark.parametrize("hidden_dims, weight_scale, learning_rate", [
    ([100, 100], 2e-1, 1e-1),
    ([100] * 4, 2e-1, 3e-2),
], ids=["3-layer", "5-layer"])
def test_spec15_overfit_small_data(hidden_dims, weight_scale, learning_rate):
    data = make_overfit_data()
    np.random.seed(231)
    model = FullyConnectedNet(hidden_dims, input_dim=64, num_classes=10,
                              weight_scale=weight_scale)
    solver = Solver(model, data, update_rule="sgd",
                    optim_config={"learning_rate": learning_rate},
                    num_epochs=20, batch_size=25, print_every=10, verbose=False)
    solver.train()
    assert len(solver.train_acc_history) == 21  # first step + 20 epoch ends
    assert max(solver.train_acc_history) == 1.0


# ===================================================================== FullyConnectedNet: contract

@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fc_rng_order_and_params(normalization, dtype):
    dims = [7, 6, 5, 4, 3]
    np.random.seed(42)
    model = FullyConnectedNet(dims[1:-1], input_dim=dims[0], num_classes=dims[-1],
                              weight_scale=0.3, normalization=normalization, dtype=dtype)
    after = np.random.randn()
    np.random.seed(42)
    L = len(dims) - 1
    expected = {f"W{i + 1}": 0.3 * np.random.randn(dims[i], dims[i + 1]) for i in range(L)}
    assert after == np.random.randn()  # exactly the weight draws, nothing else
    names = {f"W{i}" for i in range(1, L + 1)} | {f"b{i}" for i in range(1, L + 1)}
    if normalization is not None:
        names |= {f"gamma{i}" for i in range(1, L)} | {f"beta{i}" for i in range(1, L)}
    assert set(model.params) == names
    assert model.num_layers == L
    for i in range(1, L + 1):
        W, b = model.params[f"W{i}"], model.params[f"b{i}"]
        assert W.dtype == dtype and b.dtype == dtype
        np.testing.assert_array_equal(W, expected[f"W{i}"].astype(dtype))
        assert b.shape == (dims[i],) and np.all(b == 0)
    if normalization is not None:
        for i in range(1, L):
            g, be = model.params[f"gamma{i}"], model.params[f"beta{i}"]
            assert g.shape == be.shape == (dims[i],)
            assert g.dtype == dtype and be.dtype == dtype
            assert np.all(g == 1) and np.all(be == 0)


def test_fc_default_dtype_is_float32_and_inputs_are_cast():
    np.random.seed(0)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, normalization="layernorm")
    assert model.dtype == np.float32
    assert all(v.dtype == np.float32 for v in model.params.values())
    X = np.random.randn(5, 4)                       # float64 in
    y = np.random.randint(3, size=5)
    scores = model.loss(X)
    assert scores.dtype == np.float32 and scores.shape == (5, 3)
    np.testing.assert_array_equal(scores, model.loss(X.astype(np.float32)))
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss)
    assert all(grads[k].dtype == np.float32 and grads[k].shape == model.params[k].shape
               for k in model.params)
    # integer inputs are cast as well
    Xi = np.arange(20).reshape(5, 4) % 3
    np.testing.assert_array_equal(model.loss(Xi), model.loss(Xi.astype(np.float32)))


def test_fc_multidimensional_input():
    np.random.seed(1)
    model = FullyConnectedNet([5], input_dim=12, num_classes=3, dtype=np.float64)
    X = np.random.randn(4, 2, 3, 2)
    y = np.array([0, 1, 2, 1])
    np.testing.assert_array_equal(model.loss(X), model.loss(X.reshape(4, 12)))
    l1, g1 = model.loss(X, y)
    l2, g2 = model.loss(X.reshape(4, 12), y)
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_fc_non_contiguous_input():
    np.random.seed(2)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dtype=np.float64,
                              normalization="batchnorm")
    big = np.random.randn(7, 8)
    X = big[:, ::2]
    y = np.random.randint(3, size=7)
    assert not X.flags.c_contiguous
    l1, g1 = model.loss(X, y)
    l2, g2 = model.loss(np.ascontiguousarray(X), y)
    assert abs(l1 - l2) < 1e-14
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-15)


def test_fc_single_sample_gradient_check():
    np.random.seed(4)
    model = FullyConnectedNet([3], input_dim=1, num_classes=2, weight_scale=0.5,
                              dtype=np.float64, reg=0.1)
    X = np.array([[0.8]])
    y = np.array([1])
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss)
    for name, num in numeric_grads(model, X, y).items():
        assert rel_error(num, grads[name]) < 1e-6, name


def batchnorm_reference_scores(model, X):
    """Test-mode scores of a batch-norm FullyConnectedNet from its running statistics."""
    h = X
    for i in range(1, model.num_layers):
        p, bn = model.params, model.bn_params[i - 1]
        z = h @ p[f"W{i}"] + p[f"b{i}"]
        z = (z - bn["running_mean"]) / np.sqrt(bn["running_var"] + 1e-5)
        h = np.maximum(p[f"gamma{i}"] * z + p[f"beta{i}"], 0)
    n = model.num_layers
    return h @ model.params[f"W{n}"] + model.params[f"b{n}"]


def test_fc_batchnorm_modes():
    np.random.seed(8)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dtype=np.float64,
                              normalization="batchnorm", weight_scale=0.5)
    X = np.random.randn(10, 4)
    y = np.random.randint(3, size=10)
    assert len(model.bn_params) == 2
    model.loss(X, y)
    assert all(bn["mode"] == "train" for bn in model.bn_params)
    z1 = X @ model.params["W1"] + model.params["b1"]
    np.testing.assert_allclose(model.bn_params[0]["running_mean"], 0.1 * z1.mean(axis=0),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.bn_params[0]["running_var"], 0.1 * z1.var(axis=0),
                               rtol=1e-12, atol=1e-15)
    stats = [(bn["running_mean"].copy(), bn["running_var"].copy()) for bn in model.bn_params]
    scores = model.loss(X)          # y is None: test mode, running stats untouched
    assert all(bn["mode"] == "test" for bn in model.bn_params)
    for (m, v), bn in zip(stats, model.bn_params):
        np.testing.assert_array_equal(bn["running_mean"], m)
        np.testing.assert_array_equal(bn["running_var"], v)
    np.testing.assert_allclose(scores, batchnorm_reference_scores(model, X), rtol=1e-10,
                               atol=1e-12)
    model.loss(X, y)
    assert all(bn["mode"] == "train" for bn in model.bn_params)


def test_fc_layernorm_same_in_train_and_test():
    np.random.seed(9)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dtype=np.float64,
                              normalization="layernorm")
    X = np.random.randn(5, 4)
    y = np.random.randint(3, size=5)
    before = model.loss(X)
    model.loss(X, y)
    np.testing.assert_array_equal(model.loss(X), before)


def test_fc_dropout_off_in_test_mode():
    np.random.seed(10)
    drop = FullyConnectedNet([30, 20], input_dim=6, num_classes=4, dtype=np.float64,
                             dropout_keep_ratio=0.5, seed=1)
    np.random.seed(10)
    plain = FullyConnectedNet([30, 20], input_dim=6, num_classes=4, dtype=np.float64)
    X = np.random.randn(5, 6)
    y = np.random.randint(4, size=5)
    np.testing.assert_array_equal(drop.loss(X), plain.loss(X))
    assert drop.dropout_param["mode"] == "test"
    assert drop.use_dropout and not plain.use_dropout
    assert drop.loss(X, y)[0] != plain.loss(X, y)[0]
    assert drop.dropout_param["mode"] == "train"
    assert drop.dropout_param["p"] == 0.5 and drop.dropout_param["seed"] == 1


def test_fc_unseeded_dropout_draws_new_masks():
    np.random.seed(12)
    model = FullyConnectedNet([40], input_dim=6, num_classes=4, dtype=np.float64,
                              dropout_keep_ratio=0.5)
    assert "seed" not in model.dropout_param
    X = np.random.randn(5, 6)
    y = np.random.randint(4, size=5)
    assert model.loss(X, y)[0] != model.loss(X, y)[0]


def test_fc_legacy_dropout_spelling():
    X, y = spec6_data()
    state = np.random.get_state()
    legacy = spec6_net(dropout=0.25, seed=123)
    assert legacy.use_dropout and legacy.dropout_param["p"] == 0.75
    l_legacy = legacy.loss(X, y)[0]
    np.random.set_state(state)
    modern = spec6_net(dropout_keep_ratio=0.75, seed=123)
    assert l_legacy == modern.loss(X, y)[0]
    np.random.set_state(state)
    off = spec6_net(dropout=0)
    assert not off.use_dropout
    assert abs(off.loss(X, y)[0] - 2.3004790897684924) < 1e-10


def test_fc_legacy_use_batchnorm():
    X, y = spec6_data()
    model = spec6_net(use_batchnorm=True)
    assert model.normalization == "batchnorm"
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(model.params)
    assert abs(model.loss(X, y)[0] - 2.2611955101340957) < 1e-10
    X, y = spec6_data()
    plain = spec6_net(use_batchnorm=False)
    assert plain.normalization is None and "gamma1" not in plain.params
    assert abs(plain.loss(X, y)[0] - 2.3004790897684924) < 1e-10


@pytest.mark.parametrize("normalization", NORMS)
def test_fc_l2_term(normalization):
    np.random.seed(13)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dtype=np.float64,
                              normalization=normalization, weight_scale=0.4)
    X = np.random.randn(6, 4)
    y = np.random.randint(3, size=6)
    loss0, g0 = model.loss(X, y)
    r = 0.83
    model.reg = r
    loss1, g1 = model.loss(X, y)
    W = [model.params[f"W{i}"] for i in (1, 2, 3)]
    assert abs((loss1 - loss0) - 0.5 * r * sum((w**2).sum() for w in W)) < 1e-12
    for name in model.params:
        if name.startswith("W"):
            np.testing.assert_allclose(g1[name] - g0[name], r * model.params[name],
                                       rtol=1e-9, atol=1e-13)
        else:   # biases, gamma and beta are not regularised
            np.testing.assert_allclose(g1[name], g0[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs, exc", [
    ({"normalization": "groupnorm"}, ValueError),
    ({"normalization": "BatchNorm"}, ValueError),
    ({"dropout_keep_ratio": 0}, ValueError),
    ({"dropout_keep_ratio": 1.5}, ValueError),
    ({"dropout_keep_ratio": -0.2}, ValueError),
    ({"dropout": 1.0}, ValueError),
    ({"dropout": -0.1}, ValueError),
    ({"reg": -1.0}, ValueError),
    ({"reg": float("inf")}, ValueError),
    ({"weight_scale": -0.1}, ValueError),
    ({"dtype": np.int32}, TypeError),
    ({"dtype": np.float16}, TypeError),
    ({"input_dim": 0}, ValueError),
    ({"num_classes": 0}, ValueError),
    ({"hidden_dims": 5}, TypeError),
    ({"hidden_dims": [4, 0]}, ValueError),
    ({"hidden_dims": [4, -2]}, ValueError),
])
def test_fc_bad_arguments(kwargs, exc):
    args = {"hidden_dims": [4], "input_dim": 3, "num_classes": 2}
    args.update(kwargs)
    with pytest.raises(exc):
        FullyConnectedNet(**args)


@given(keep=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda v: not (0 < v <= 1)), st.text(max_size=3), st.none()))
def test_fc_bad_keep_ratio_never_crashes(keep):
    with pytest.raises((ValueError, TypeError)):
        FullyConnectedNet([4], input_dim=3, num_classes=2, dropout_keep_ratio=keep)


@pytest.mark.parametrize("make_input", [
    lambda: (np.zeros((3, 5)), np.array([0, 1, 2])),            # wrong feature count
    lambda: (np.zeros((3, 4)), np.array([0, 1, 3])),            # label out of range
    lambda: (np.zeros((3, 4)), np.array([0, -1, 2])),           # negative label
    lambda: (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0])),      # float labels
    lambda: (np.zeros((3, 4)), np.array([0, 1])),               # too few labels
    lambda: (np.zeros((3, 4), dtype=complex), np.array([0, 1, 2])),
], ids=["features", "label-high", "label-negative", "float-labels", "label-count",
        "complex-X"])
def test_fc_bad_loss_input(make_input):
    np.random.seed(0)
    model = FullyConnectedNet([5], input_dim=4, num_classes=3)
    X, y = make_input()
    with pytest.raises((ValueError, TypeError)):
        model.loss(X, y)
