"""A Net's own compute dtype (``Net(compute_dtype=...)``) and the estimators' option.

The process-wide setting (``fastfc.set_compute_dtype``) is tested in test_gemm.py;
here a net carries its own: its steps compute exactly what they compute under the
process-wide setting of the same name, a net's setting wins over the process-wide one,
it is restored when its step ends (other nets, other threads and the layer functions
are not affected), it is saved and pickled with the net, and bad values are refused
with errors that name the argument.  The bfloat16 tests run on the bf16 GEMM this
machine has (fastfc's AVX512-BF16 one, else MKL's), else on fastfc's portable
micro-kernel: the same arithmetic on any CPU.
"""
import pickle
import threading

import numpy as np
import pytest

import fastfc
from fastfc import Net, _gemm
from fastfc._kernels import blas

from test_gemm import no_bf16_gemm, restore_bf16_gemm


@pytest.fixture(autouse=True)
def restore_compute_dtype():
    old = _gemm._compute_dtype
    yield
    _gemm.set_compute_dtype(old)


@pytest.fixture
def bf16():
    """A bf16 GEMM for the test: auto's choice, else the portable kernel."""
    old = _gemm.get_bf16_gemm()
    try:
        _gemm.set_bf16_gemm("auto")
    except RuntimeError:
        _gemm.set_bf16_gemm("portable")
    yield _gemm.get_bf16_gemm()
    _gemm.set_compute_dtype("float32")
    restore_bf16_gemm(old)


def _data(n=64, d=120, c=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)


def _net(**kw):
    return Net([120, 96, 64, 10], seed=1, reg=1e-3, normalization="batchnorm",
               dropout_keep_ratio=0.9, **kw)


def _run(net, X, y, steps=3):
    net.set_optimizer("adam", learning_rate=1e-3)
    losses = [net.train_step(X, y) for _ in range(steps)]
    return losses, {k: v.copy() for k, v in net.params.items()}


def _same(a, b):
    (la, pa), (lb, pb) = a, b
    assert la == lb
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def test_default_follows_the_process_and_float32_is_float32():
    X, y = _data()
    assert _net().compute_dtype is None
    _same(_run(_net(compute_dtype="float32"), X, y), _run(_net(), X, y))


def test_bf16_net_equals_the_process_wide_bf16(bf16):
    X, y = _data()
    own = _run(_net(compute_dtype="bfloat16"), X, y)
    with fastfc.compute_dtype("bfloat16"):
        process = _run(_net(), X, y)
    _same(own, process)
    # and it is bf16, not float32
    assert own[0] != _run(_net(), X, y)[0]


def test_the_nets_setting_wins_and_is_restored_after_its_step(bf16):
    X, y = _data()
    fp32 = _run(_net(), X, y)
    with fastfc.compute_dtype("bfloat16"):
        _same(_run(_net(compute_dtype="float32"), X, y), fp32)
    bf = _net(compute_dtype="bfloat16")
    bf.set_optimizer("sgd", learning_rate=1e-2)
    bf.train_step(X, y)
    # after a bf16 net's step this thread is back on the process-wide setting
    assert blas._thread_compute(-1) == -1
    _same(_run(_net(), X, y), fp32)
    a, b = _data(8, 16)[0], _data(16, 8)[0]
    np.testing.assert_array_equal(fastfc.layers.affine_forward(a, b, np.zeros(8, np.float32))[0],
                                  a @ b)


def test_threads_keep_their_own_compute_dtype(bf16):
    """A bf16 net stepping in one thread leaves a float32 net in another bit-identical
    to its run alone (the setting is per thread, for the length of a step)."""
    X, y = _data(256, 120)
    alone = _run(_net(), X, y, steps=20)
    out = {}

    def bf16_loop():
        out["bf16"] = _run(_net(compute_dtype="bfloat16"), X, y, steps=20)

    t = threading.Thread(target=bf16_loop)
    t.start()
    mine = _run(_net(), X, y, steps=20)
    t.join()
    _same(mine, alone)
    assert out["bf16"][0] != alone[0]


def test_saved_and_pickled_with_the_net(tmp_path, bf16):
    X, y = _data()
    net = _net(compute_dtype="bfloat16")
    net.set_optimizer("adam", learning_rate=1e-3)
    net.train_step(X, y)
    net.save(tmp_path / "net.npz")
    loaded = Net.load(tmp_path / "net.npz")
    twin = pickle.loads(pickle.dumps(net))
    assert loaded.compute_dtype == twin.compute_dtype == "bfloat16"
    assert all(v.dtype == np.float32 for v in loaded.params.values())
    # resume is exact: the pickled twin (optimiser state included) continues as the net
    a = [net.train_step(X, y) for _ in range(3)]
    b = [twin.train_step(X, y) for _ in range(3)]
    assert a == b
    assert net.astype(np.float64).compute_dtype is None
    assert "compute_dtype='bfloat16'" in repr(net)


def test_a_net_saved_without_the_setting_loads_without_it(tmp_path):
    net = _net()
    net.save(tmp_path / "net.npz")
    assert Net.load(tmp_path / "net.npz").compute_dtype is None
    net.compute_dtype = "float32"
    net.save(tmp_path / "net32.npz")
    assert Net.load(tmp_path / "net32.npz").compute_dtype == "float32"


@pytest.mark.parametrize("bad", ["float16", "bf16", 3, np.float64])
def test_bad_values_name_the_argument(bad):
    with pytest.raises(ValueError, match="compute_dtype must be 'float32' or 'bfloat16'"):
        _net(compute_dtype=bad)
    net = _net()
    with pytest.raises(ValueError, match="compute_dtype"):
        net.compute_dtype = bad
    assert net.compute_dtype is None


def test_bf16_needs_a_float32_net(bf16):
    with pytest.raises(ValueError, match="compute_dtype 'bfloat16' needs a float32 net"):
        Net([4, 3], dtype=np.float64, compute_dtype="bfloat16")


def test_bf16_without_a_bf16_gemm_is_a_clear_error(monkeypatch):
    no_bf16_gemm(monkeypatch)
    with pytest.raises(RuntimeError, match=r"compute_dtype 'bfloat16' cannot run here: no "
                                           r"bfloat16 GEMM.*fastfc\[mkl\]"):
        _net(compute_dtype="bfloat16")


def test_a_bf16_net_loads_on_float32_products_where_bf16_cannot_run(tmp_path, bf16,
                                                                    monkeypatch):
    net = _net(compute_dtype="bfloat16")
    net.save(tmp_path / "net.npz")
    no_bf16_gemm(monkeypatch)
    with pytest.warns(RuntimeWarning, match="saved with compute_dtype 'bfloat16'"):
        loaded = Net.load(tmp_path / "net.npz")
    assert loaded.compute_dtype is None
    for k, v in net.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)


def test_a_file_with_a_bad_compute_dtype_is_refused(tmp_path):
    from fastfc import checkpoint
    net = _net()
    path = net.save(tmp_path / "net.npz")
    arrays, header = checkpoint.load_checkpoint(path)
    header["net"]["compute_dtype"] = "float8"
    checkpoint.save_checkpoint(tmp_path / "bad.npz", arrays, header)
    with pytest.raises(checkpoint.CheckpointError, match="compute_dtype"):
        Net.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------ the estimators

def test_estimator_option_checked():
    sk = pytest.importorskip("sklearn")  # noqa: F841
    from fastfc.sklearn import FCClassifier
    X, y = _data(40, 8, 3)
    with pytest.raises(ValueError, match="compute_dtype must be 'float32' or 'bfloat16'"):
        FCClassifier(hidden_dims=(8,), max_iter=1, compute_dtype="half").fit(X, y)
    clf = FCClassifier(hidden_dims=(8,), max_iter=1, compute_dtype="float32",
                       random_state=0).fit(X, y)
    assert clf.net_.compute_dtype == "float32"


def test_estimator_trains_in_bf16_with_float32_weights(bf16):
    pytest.importorskip("sklearn")
    from fastfc.sklearn import FCClassifier, FCRegressor
    X, y = _data(200, 16, 3)
    X = X.astype(np.float64)            # would train in float64 without compute_dtype
    kw = dict(hidden_dims=(32,), max_iter=3, random_state=0)
    bf = FCClassifier(compute_dtype="bfloat16", **kw).fit(X, y)
    assert bf.net_.compute_dtype == "bfloat16" and bf.net_.dtype is np.float32
    fp = FCClassifier(dtype="float32", **kw).fit(X, y)
    assert bf.loss_curve_ != fp.loss_curve_
    np.testing.assert_allclose(bf.loss_curve_, fp.loss_curve_, rtol=2e-2)
    with pytest.raises(ValueError, match="dtype must be None or 'float32'"):
        FCRegressor(compute_dtype="bfloat16", dtype="float64", **kw).fit(X, y[:, None] * 1.0)


# ------------------------------------------------------------------ operands rounded once

@pytest.mark.parametrize("gather", [False, True])
@pytest.mark.parametrize("kw", [dict(normalization="batchnorm", dropout_keep_ratio=0.8),
                                dict(normalization="layernorm"),
                                dict(activation="swish"),
                                dict(activation="tanh", dropout_keep_ratio=0.7),
                                dict(loss="svm")])
def test_operands_rounded_once_give_the_bits_of_rounding_in_every_product(gather, kw, bf16):
    """A bf16 step rounds each operand once (weights at its start, the minibatch as it
    is gathered, each layer's output and upstream gradient by the loop that writes it --
    activation, dropout, activation backward -- or in a pass after a normalisation's or
    the loss's) -- the same bf16 values every product would round for itself, so the
    same bits as the plain path (every float32 GEMM rounding its own operands)."""
    from fastfc._kernels import net as knet
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 120)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    idx = rng.integers(0, 300, 96)

    def run(preround):
        old = knet._set_preround(preround)
        try:
            net = Net([120, 200, 64, 10], seed=2, reg=1e-3, compute_dtype="bfloat16", **kw)
            net.set_optimizer("adam", learning_rate=1e-3)
            with fastfc.threads(2):
                if gather:
                    losses = [net.train_step(X, y[idx], indices=idx) for _ in range(3)]
                else:
                    losses = [net.train_step(X[idx], y[idx]) for _ in range(3)]
                scores = net.scores(X[:50])
            return losses, {k: v.copy() for k, v in net.params.items()}, scores
        finally:
            knet._set_preround(old)

    once, each = run(True), run(False)
    _same(once[:2], each[:2])
    np.testing.assert_array_equal(once[2], each[2])
    # and both are bf16 (not the float32 step)
    net32 = Net([120, 200, 64, 10], seed=2, reg=1e-3, **kw)
    net32.set_optimizer("adam", learning_rate=1e-3)
    assert net32.train_step(X[idx], y[idx]) != once[0][0]


def test_bf16_workspace_follows_the_capacity(bf16):
    net = _net(compute_dtype="bfloat16")
    X, y = _data(64)
    net.set_optimizer("sgd", learning_rate=1e-2)
    plain = _net()
    plain.set_optimizer("sgd", learning_rate=1e-2)
    plain.train_step(X, y)
    net.train_step(X, y)
    assert net._workspace_bytes() > plain._workspace_bytes()     # the bf16 operands
    X2, y2 = _data(200, seed=1)
    net.train_step(X2, y2)           # a larger batch: the operands grow with it
    twin = _net(compute_dtype="bfloat16")
    twin.set_optimizer("sgd", learning_rate=1e-2)
    twin.train_step(X, y)
    from fastfc._kernels import net as knet
    old = knet._set_preround(False)
    try:
        twin.train_step(X2, y2)
    finally:
        knet._set_preround(old)
    for k, v in net.params.items():
        np.testing.assert_array_equal(twin.params[k], v)


def test_a_bf16_net_whose_gemm_is_gone_steps_in_float32(bf16):
    """Should the bf16 GEMM be unset under a bf16 net (only the kernels' private setter
    can), its steps fall back to float32 products -- the float32 net's bits -- rather
    than call a missing GEMM."""
    X, y = _data()
    net = _net(compute_dtype="bfloat16")
    old = blas.set_bf16_gemm(blas.BF16_NONE)
    try:
        got = _run(net, X, y)
    finally:
        blas.set_bf16_gemm(old)
    _same(got, _run(_net(), X, y))
