"""Compatibility with the course code (issue 14 items 3, 4, 7, 8, 9, 10; issue 16 item 8).

Expected values come from the NumPy formulas of the course code, written out here, or
from the course notebooks' own reference values.  (Item 2, the float32 update
coefficients, is tested in test_optim.py; item 11 there too.)
"""
import inspect
import pickle
import warnings

import numpy as np
import pytest

from fastfc import data_utils, gradient_check, layers, layer_utils, optim
from fastfc.classifiers import fc_net, neural_net
from fastfc.data_utils import DataError, load_CIFAR_batch
from fastfc.gradient_check import rel_error


# ====================================================================== item 3: UCLA train()

def _toy_problem(variant_cls, **kwargs):
    np.random.seed(0)
    net = variant_cls(4, 10, 3, std=1e-1, **kwargs)
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    return net, X, y


def _train(net, X, y, **kwargs):
    params = {k: v.copy() for k, v in net.params.items()}
    np.random.seed(7)
    stats = net.train(X, y, X, y, learning_rate=1e-1, num_iters=3, **kwargs)
    net.params = params
    return stats["loss_history"]


def test_ucla_train_default_reg_is_1e_5():
    net, X, y = _toy_problem(neural_net.TwoLayerNet, variant="ucla")
    default = _train(net, X, y)
    assert default == _train(net, X, y, reg=1e-5)
    assert default != _train(net, X, y, reg=5e-6)


def test_cs231n_train_default_reg_is_still_5e_6():
    assert inspect.signature(neural_net.TwoLayerNet.train).parameters["reg"].default == 5e-6
    net, X, y = _toy_problem(neural_net.TwoLayerNet)
    default = _train(net, X, y)
    assert default == _train(net, X, y, reg=5e-6)
    assert default != _train(net, X, y, reg=1e-5)


def test_ucla_train_prints_full_float_with_format(capsys):
    net, X, y = _toy_problem(neural_net.TwoLayerNet, variant="ucla")
    np.random.seed(3)
    stats = net.train(X, y, X, y, learning_rate=1e-1, num_iters=201, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    loss = stats["loss_history"]
    assert lines == ["iteration {} / {}: loss {}".format(it, 201, loss[it])
                     for it in (0, 100, 200)]
    assert len(lines[0].split("loss ")[1]) > 8      # full repr, not %f's 6 decimals


def test_cs231n_train_prints_percent_f(capsys):
    net, X, y = _toy_problem(neural_net.TwoLayerNet)
    np.random.seed(3)
    stats = net.train(X, y, X, y, learning_rate=1e-1, num_iters=101, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    loss = stats["loss_history"]
    assert lines == ["iteration %d / %d: loss %f" % (it, 101, loss[it]) for it in (0, 100)]


def test_nndl_neural_net_defaults_to_ucla():
    from fastfc.nndl import neural_net as nndl_nn
    net, X, y = _toy_problem(nndl_nn.TwoLayerNet)
    assert net.variant == "ucla"
    assert net.params["W1"].shape == (10, 4) and net.params["W2"].shape == (3, 10)
    assert inspect.signature(nndl_nn.TwoLayerNet.train).parameters["reg"].default == 1e-5
    ref, _, _ = _toy_problem(neural_net.TwoLayerNet, variant="ucla")
    np.testing.assert_array_equal(net.loss(X), ref.loss(X))
    assert _train(net, X, y) == _train(ref, X, y, reg=1e-5)


# ====================================================================== items 4 + 10: nndl

def test_nndl_dropout_p_is_the_drop_probability():
    from fastfc.nndl import layers as NL
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    for p in [0.25, 0.4, 0.7]:
        out, cache = NL.dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
        np.random.seed(123)
        mask = (np.random.rand(*x.shape) < (1 - p)) / (1 - p)     # UCLA's HW4 formula
        np.testing.assert_array_equal(out, x * mask)
        assert abs((out == 0).mean() - p) < 0.01
        dout = np.random.randn(*x.shape)
        np.testing.assert_array_equal(NL.dropout_backward(dout, cache), dout * mask)
        out_test, cache = NL.dropout_forward(x, {"mode": "test", "p": p})
        np.testing.assert_array_equal(out_test, x)
        np.testing.assert_array_equal(NL.dropout_backward(dout, cache), dout)


def test_nndl_dropout_without_seed_draws_from_global_generator():
    from fastfc.nndl import layers as NL
    x = np.arange(1.0, 13.0).reshape(3, 4)
    np.random.seed(5)
    out, _ = NL.dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(5)
    np.testing.assert_array_equal(out, x * ((np.random.rand(3, 4) < 0.5) / 0.5))


def test_nndl_dropout_rejects_bad_p():
    from fastfc.nndl import layers as NL
    with pytest.raises(ValueError, match=r"dropout_param\['p'\]"):
        NL.dropout_forward(np.ones(3), {"mode": "train", "p": 1.0})
    with pytest.raises(ValueError, match="dropout_param"):
        NL.dropout_forward(np.ones(3), {"mode": "train"})


def test_nndl_layers_and_layer_utils_export_everything():
    from fastfc.nndl import layer_utils as NLU
    from fastfc.nndl import layers as NL
    for name in layers.__all__:
        assert hasattr(NL, name)
    ns = {}
    exec("from fastfc.nndl.layer_utils import *", ns)
    assert ns["dropout_forward"] is NL.dropout_forward          # UCLA's, not CS231n's
    assert ns["affine_relu_forward"] is layer_utils.affine_relu_forward
    assert ns["affine_forward"] is layers.affine_forward
    assert NLU.dropout_forward is NL.dropout_forward


def test_layer_utils_star_import_brings_the_layers():
    ns = {}
    exec("from fastfc.layer_utils import *", ns)
    for name in ("affine_forward", "relu_backward", "softmax_loss", "svm_loss",
                 "dropout_forward", "batchnorm_forward", "affine_relu_forward"):
        assert name in ns, name
    assert ns["dropout_forward"] is layers.dropout_forward


W = np.linspace(-0.4, 0.6, num=20).reshape(4, 5)
DW = np.linspace(-0.6, 0.4, num=20).reshape(4, 5)


def test_nndl_optim_state_names_from_empty_config():
    from fastfc.nndl import optim as NO
    config = {}
    _, config = NO.rmsprop(W, DW, config)
    assert "a" in config and "cache" not in config
    np.testing.assert_allclose(config["a"], 0.01 * DW**2, rtol=1e-15)
    _, config = NO.adam(W, DW, None)
    assert {"v", "a", "t"} <= set(config) and "m" not in config
    assert config["t"] == 1
    np.testing.assert_allclose(config["v"], 0.1 * DW, rtol=1e-15)      # first moment
    np.testing.assert_allclose(config["a"], 0.001 * DW**2, rtol=1e-12)  # second moment
    for rule in ("sgd_momentum", "sgd_nesterov_momentum"):
        _, config = getattr(NO, rule)(W, DW, {})
        assert "velocity" in config


def test_nndl_adam_ucla_notebook_reference():
    """UCLA HW4's Adam check (v: first moment, a: second, t = 5)."""
    from fastfc.nndl import optim as NO
    v = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    a = np.linspace(0.7, 0.5, num=20).reshape(4, 5)
    config = {"learning_rate": 1e-2, "v": v, "a": a, "t": 5}
    next_w, _ = NO.adam(W, DW, config=config)
    expected_next_w = np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_a = np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_v = np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    assert rel_error(expected_next_w, next_w) < 2e-7
    assert rel_error(expected_a, config["a"]) < 1e-8
    assert rel_error(expected_v, config["v"]) < 1e-8
    assert config["t"] == 6


def _positional_names(func):
    return [p for p in inspect.signature(func).parameters if p != "self"]


def test_nndl_fc_net_signatures_match_ucla():
    from fastfc.nndl import fc_net as nfc
    assert _positional_names(nfc.TwoLayerNet.__init__) == [
        "input_dim", "hidden_dims", "num_classes", "dropout", "weight_scale", "reg"]
    assert _positional_names(nfc.FullyConnectedNet.__init__) == [
        "hidden_dims", "input_dim", "num_classes", "dropout", "use_batchnorm", "reg",
        "weight_scale", "dtype", "seed"]
    sig = inspect.signature(nfc.FullyConnectedNet.__init__).parameters
    assert sig["dropout"].default == 0 and sig["use_batchnorm"].default is False
    assert sig["weight_scale"].default == 1e-2 and sig["dtype"].default is np.float32


def test_nndl_two_layer_net_positional_and_dropout_unused():
    from fastfc.nndl import fc_net as nfc
    np.random.seed(0)
    net = nfc.TwoLayerNet(6, 8, 3, 0.5, 1e-1, 0.2)       # UCLA's positional order
    np.random.seed(0)
    ref = fc_net.TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=3, weight_scale=1e-1,
                             reg=0.2)
    for k in ref.params:
        np.testing.assert_array_equal(net.params[k], ref.params[k])
    X, y = np.random.randn(4, 6), np.array([0, 2, 1, 2])
    state = np.random.get_state()
    loss, grads = net.loss(X, y)
    assert np.random.get_state()[2] == state[2]          # no dropout draws
    ref_loss, ref_grads = ref.loss(X, y)
    assert loss == ref_loss
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref_grads[k])


def test_nndl_fully_connected_net_dropout_is_drop_probability():
    from fastfc.nndl import fc_net as nfc
    np.random.seed(231)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=2)
    np.random.seed(0)
    net = nfc.FullyConnectedNet([20, 30], 15, 10, 0.25, False, 0.0, 5e-2, np.float64, 123)
    assert net.dropout_param["p"] == 0.25 and net.use_dropout and not net.use_batchnorm
    np.random.seed(0)
    ref = fc_net.FullyConnectedNet([20, 30], input_dim=15, num_classes=10,
                                   dropout_keep_ratio=0.75, weight_scale=5e-2,
                                   dtype=np.float64, seed=123)
    loss, grads = net.loss(X, y)
    ref_loss, ref_grads = ref.loss(X, y)
    assert loss == ref_loss
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref_grads[k])
    np.testing.assert_array_equal(net.loss(X), ref.loss(X))
    # dropout=0 (the default) means no dropout at all
    off = nfc.FullyConnectedNet([20, 30], input_dim=15, num_classes=10, dtype=np.float64)
    assert not off.use_dropout


def test_nndl_fully_connected_net_batchnorm_matches_spec_13():
    from fastfc.nndl import fc_net as nfc
    np.random.seed(231)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=2)
    net = nfc.FullyConnectedNet([20, 30], input_dim=15, num_classes=10, weight_scale=5e-2,
                                dtype=np.float64, use_batchnorm=True)
    assert "gamma1" in net.params and net.use_batchnorm
    assert abs(net.loss(X, y)[0] - 2.2611955101340957) < 1e-10


def test_nndl_reexports():
    from fastfc import solver
    from fastfc.nndl import data_utils as ndu
    from fastfc.nndl import gradient_check as ngc
    from fastfc.nndl import solver as nsolver
    assert nsolver.Solver is solver.Solver
    assert ngc.eval_numerical_gradient is gradient_check.eval_numerical_gradient
    assert ndu.get_CIFAR10_data is data_utils.get_CIFAR10_data
    assert ndu.load_pickle is data_utils.load_pickle


def test_nndl_layer_tests_print_the_notebook_lines(capsys):
    from fastfc.nndl import layer_tests
    np.random.seed(0)
    layer_tests.affine_forward_test()
    layer_tests.relu_forward_test()
    layer_tests.relu_backward_test()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "If affine_forward function is working, difference should be less than 1e-9:"
    assert float(out[1].split(": ")[1]) < 1e-9
    assert float(out[3].split(": ")[1]) < 5e-8
    assert out[4] == "If relu_forward function is working, error should be less than 1e-9:"
    assert float(out[5].split(": ")[1]) < 1e-9


# ====================================================================== item 7: unused keys

@pytest.mark.parametrize("rule,extra", [
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"beta1": "not even a number", "velocity": np.zeros(3)}),
    ("sgd_momentum", {"decay_rate": 0.99, "cache": None}),
    ("rmsprop", {"momentum": 0.9, "t": 4}),
    ("adam", {"momentum": 0.9, "velocity": np.zeros(7)}),
    ("sgd_nesterov_momentum", {"learnin_rate": 5.0}),
])
def test_update_rules_ignore_unused_keys_without_warning(rule, extra):
    func = getattr(optim, rule)
    want, want_config = func(W, DW, {"learning_rate": 1e-2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, config = func(W, DW, dict({"learning_rate": 1e-2}, **extra))
    np.testing.assert_array_equal(got, want)
    for key in extra:
        assert config[key] is extra[key]         # left as given


@pytest.mark.parametrize("rule,key,value", [
    ("sgd", "learning_rate", -1.0),
    ("sgd_momentum", "momentum", 1.5),
    ("rmsprop", "decay_rate", "0.9"),
    ("adam", "beta2", 1.0),
])
def test_update_rules_still_check_the_keys_they_use(rule, key, value):
    with pytest.raises((ValueError, TypeError), match=key):
        getattr(optim, rule)(W, DW, {key: value})


def test_net_set_optimizer_stays_strict():
    from fastfc import Net
    net = Net([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="momentum"):
        net.set_optimizer("sgd", learning_rate=0.1, momentum=0.9)


# ====================================================================== item 8: mixed dtypes

def test_affine_forward_mixed_dtypes_promote_like_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2)).astype(np.float32)
    w = rng.standard_normal((4, 5))
    b = rng.standard_normal(5)
    out, cache = layers.affine_forward(x, w, b)
    assert out.dtype == np.result_type(x, w, b) == np.float64
    np.testing.assert_allclose(out, x.reshape(3, -1).astype(np.float64) @ w + b, rtol=1e-13)
    dout = rng.standard_normal((3, 5))
    dx, dw, db = layers.affine_backward(dout, cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    np.testing.assert_allclose(dw, x.reshape(3, -1).astype(np.float64).T @ dout, rtol=1e-12)


def test_float32_stays_float32():
    x = np.ones((2, 3), np.float32)
    out, _ = layers.affine_forward(x, np.ones((3, 4), np.float32), np.ones(4, np.float32))
    assert out.dtype == np.float32
    out, _ = layer_utils.affine_relu_forward(x, np.ones((3, 4), np.float32),
                                             np.ones(4, np.float32))
    assert out.dtype == np.float32
    next_w, _ = optim.adam(x, x, {})
    assert next_w.dtype == np.float32


def test_layers_with_float16_and_float64_promote():
    x = np.ones((2, 3), np.float16)
    out, _ = layers.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    assert out.dtype == np.float64
    out, _ = layers.layernorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), {})
    assert out.dtype == np.float32       # float16 computes as float32


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "sgd_nesterov_momentum",
                                  "rmsprop", "adam"])
def test_update_rules_mixed_dtypes_follow_numpy(rule):
    w32 = W.astype(np.float32)
    next_w, config = getattr(optim, rule)(w32, DW, {})
    assert next_w.dtype == np.float64
    want, _ = getattr(optim, rule)(w32.astype(np.float64), DW, {})
    np.testing.assert_array_equal(next_w, want)


def test_fully_connected_net_with_a_float64_param_replaced():
    np.random.seed(1)
    net = fc_net.FullyConnectedNet([6, 5], input_dim=4, num_classes=3, weight_scale=1e-1)
    X = np.random.randn(3, 4)
    y = np.array([0, 2, 1])
    net.params["W1"] = net.params["W1"].astype(np.float64)
    loss, grads = net.loss(X, y)
    assert np.isfinite(loss)
    assert grads["W1"].dtype == np.float64
    # float64 from the first layer on, as NumPy would compute it
    ref = {k: v.astype(np.float64) for k, v in net.params.items()}
    h1 = np.maximum(X.astype(np.float32).astype(np.float64) @ ref["W1"] + ref["b1"], 0)
    h2 = np.maximum(h1 @ ref["W2"] + ref["b2"], 0)
    np.testing.assert_allclose(net.loss(X), h2 @ ref["W3"] + ref["b3"], rtol=1e-6)


def test_two_layer_net_with_a_float64_param_replaced():
    np.random.seed(2)
    net = fc_net.TwoLayerNet(input_dim=4, hidden_dim=6, num_classes=3, weight_scale=1e-1)
    net.params = {k: v.astype(np.float32) for k, v in net.params.items()}
    net.params["W2"] = net.params["W2"].astype(np.float64)
    X, y = np.random.randn(3, 4).astype(np.float32), np.array([0, 2, 1])
    loss, grads = net.loss(X, y)
    assert np.isfinite(loss) and grads["W2"].dtype == np.float64


# ====================================================================== item 9: nditer order

def _recording_f(base, visited):
    def f(x):
        changed = np.argwhere(x != base)
        if len(changed):
            ix = tuple(int(i) for i in changed[0])
            if not visited or visited[-1] != ix:
                visited.append(ix)
        return np.sum(x * x)
    return f


MEMORY_ORDER = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


@pytest.mark.parametrize("make", [lambda a: a.T, lambda a: np.asfortranarray(a.T)],
                         ids=["transposed", "fortran"])
def test_eval_numerical_gradient_visits_in_memory_order(make, capsys):
    x = make(np.arange(1.0, 7.0).reshape(2, 3))          # shape (3, 2), column-major
    base = x.copy()
    visited = []
    grad = gradient_check.eval_numerical_gradient(_recording_f(base, visited), x,
                                                  verbose=True)
    assert visited == MEMORY_ORDER
    np.testing.assert_allclose(grad, 2 * base, rtol=1e-8)
    np.testing.assert_array_equal(x, base)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(")")[0] + ")" for line in lines] == [str(ix) for ix in MEMORY_ORDER]


def test_eval_numerical_gradient_array_visits_in_memory_order():
    x = np.arange(1.0, 7.0).reshape(2, 3).T
    base = x.copy()
    visited = []
    record = _recording_f(base, visited)
    grad = gradient_check.eval_numerical_gradient_array(lambda a: np.array([record(a)]), x,
                                                        np.ones(1))
    assert visited == MEMORY_ORDER
    np.testing.assert_allclose(grad, 2 * base, rtol=1e-8)


def test_random_draws_follow_the_visit_order():
    """An f that draws random numbers sees them in nditer's order, as in the course."""
    x = np.zeros((2, 3), order="F")
    draws = {}

    def f(a):
        value = np.random.rand()
        changed = np.argwhere(a != 0)
        if len(changed):
            draws.setdefault(tuple(int(i) for i in changed[0]), value)
        return 0.0

    np.random.seed(0)
    gradient_check.eval_numerical_gradient(f, x, verbose=False)
    np.random.seed(0)
    expected = {}
    np.random.rand()                                      # the first f(x) call
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        expected[it.multi_index] = np.random.rand()
        np.random.rand()
        it.iternext()
    assert draws == expected


# ====================================================================== 16.8: CIFAR bounds

class _Call:
    """Pickles as a call of ``func(*args)`` -- without making the call while pickling."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _write(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def _refused(path, *words):
    with pytest.raises(DataError) as exc:
        load_CIFAR_batch(path)
    msg = str(exc.value)
    assert path.name in msg, msg
    assert "allow_pickle" not in msg
    for word in words:
        assert word in msg, msg
    return msg


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("kind", [bytearray, bytes])
def test_pickle_cannot_allocate_by_size(tmp_path, kind, protocol):
    """bytearray(2**40) in 36 bytes of pickle must not be called."""
    path = _write(tmp_path / "data_batch_1", _Call(kind, 2**40), protocol)
    assert path.stat().st_size < 60
    _refused(path, kind.__name__)
    path = _write(tmp_path / "data_batch_2", {"data": _Call(kind, 2**40), "labels": [0]},
                  protocol)
    _refused(path, kind.__name__)


def test_pickle_cannot_call_ndarray_with_a_shape(tmp_path):
    path = _write(tmp_path / "test_batch",
                  {"data": _Call(np.ndarray, (10**6, 3072), "u1"), "labels": [0]})
    _refused(path, "ndarray")


def test_pickle_cannot_reconstruct_a_large_empty_array(tmp_path):
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover
        from numpy.core.multiarray import _reconstruct
    path = _write(tmp_path / "data_batch_3",
                  {"data": _Call(_reconstruct, np.ndarray, (10**6, 3072), b"B"),
                   "labels": [0]})
    _refused(path, "(1000000, 3072)")


def test_batch_with_more_than_10000_images_is_refused(tmp_path):
    rows = np.zeros((10001, 3072), np.uint8)
    path = _write(tmp_path / "data_batch_4", {"data": rows, "labels": [0] * 10001})
    _refused(path, "10001", "10000", "3072")


def test_batch_labels_checked_before_conversion(tmp_path):
    rows = np.zeros((3, 3072), np.uint8)
    path = _write(tmp_path / "data_batch_5", {"data": rows, "labels": 7})
    _refused(path, "labels", "3")
    path = _write(tmp_path / "data_batch_5", {"data": [[0] * 3072], "labels": [0]})
    _refused(path, "'data'", "uint8")


def test_real_layouts_still_load(tmp_path):
    rows = (np.arange(2 * 3072) % 256).astype(np.uint8).reshape(2, 3072)
    for protocol in (2, 4, 5):
        path = _write(tmp_path / f"b{protocol}", {"data": rows, "labels": [3, 9],
                                                  "batch_label": "x"}, protocol)
        X, Y = load_CIFAR_batch(path)
        np.testing.assert_array_equal(
            X, rows.reshape(2, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64))
        np.testing.assert_array_equal(Y, [3, 9])


def test_load_pickle_like_the_course(tmp_path):
    obj = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, 2],
           "name": "batch", b"raw": b"\x00\xff"}
    path = _write(tmp_path / "p", obj)
    with open(path, "rb") as f:
        got = data_utils.load_pickle(f)
    np.testing.assert_array_equal(got["data"], obj["data"])
    assert got["labels"] == [1, 2] and got["name"] == "batch" and got[b"raw"] == b"\x00\xff"
    path = _write(tmp_path / "q", _Call(print, "hello"))
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match="print"):
        data_utils.load_pickle(f)
