"""Net under misuse: no crash, no corruption, no silent loss (issue 16).

* threads sharing one Net: every call holds the Net's lock, so the result is that of
  some serial order (and a workspace is never reallocated under a running step);
* attributes that expose the core's buffers are read-only views, or copy into them;
* labels and indices changed by another thread during a step: the step reads its own
  copy, checked after it was taken;
* bad arguments to every public method: ValueError/TypeError, never garbage;
* hostile model files: refused by Net.load before any allocation they would imply;
* the step-level pool: no pool for small work, a concurrent BLAS thread limit survives;
* one large evaluation does not leave a large workspace behind.

The thread, attribute and label tests also run under AddressSanitizer (.ci/asan.sh).
"""
import ctypes
import io
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfc import _openblas
from fastfc._kernels import blas
from fastfc.checkpoint import CheckpointError, save_checkpoint
from fastfc import net as net_module
from fastfc.net import Net


def _data(n, d, c, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n).astype(np.intp)


def _join(threads, timeout=120):
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"


# ------------------------------------------------------------------ 1. one Net, many threads

def test_threads_sharing_one_net_give_a_serial_result():
    """Four threads step one Net with the same batch while others evaluate it with
    batches that grow its workspace; the steps commute, so the parameters must equal
    those of the same number of serial steps, and no step may be lost."""
    X, y = _data(32, 20, 5, seed=1)
    X_big, y_big = _data(3000, 20, 5, seed=2)
    kw = dict(normalization="batchnorm", seed=4, reg=1e-3)
    net = Net([20, 48, 5], **kw).set_optimizer("sgd_momentum", learning_rate=1e-2)
    steps_per_thread, n_threads = 40, 4
    errors = []

    def stepper():
        try:
            for _ in range(steps_per_thread):
                net.train_step(X, y)
        except BaseException as exc:   # reported below
            errors.append(exc)

    def meddler(i):
        try:
            rng = np.random.default_rng(i)
            for _ in range(30):
                n = int(rng.integers(1, 3000))
                net.loss(X_big[:n])                    # test mode: no state change
                net.loss(X_big[:n], y_big[:n])         # gradients: no parameter change
                net.predict(X_big[:n], batch_size=int(rng.integers(1, 2000)))
                net.optimizer_state()
                net._extra_state()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stepper) for _ in range(n_threads)]
    threads += [threading.Thread(target=meddler, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    _join(threads)
    assert not errors, errors

    serial = Net([20, 48, 5], **kw).set_optimizer("sgd_momentum", learning_rate=1e-2)
    for _ in range(steps_per_thread * n_threads):
        serial.train_step(X, y)
    assert int(net._extra_state()["step"]) == steps_per_thread * n_threads
    for k in serial.params:
        np.testing.assert_allclose(net.params[k], serial.params[k], rtol=1e-6, atol=1e-7,
                                   err_msg=k)
    # (the running statistics differ: loss(X, y) runs batch norm in training mode)
    for m, v in net.running_stats:
        assert np.all(np.isfinite(m)) and np.all(v >= 0)


def test_adam_step_count_under_threads():
    X, y = _data(16, 10, 3, seed=3)
    net = Net([10, 12, 3], seed=0).set_optimizer("adam", learning_rate=1e-3)
    threads = [threading.Thread(target=lambda: [net.train_step(X, y) for _ in range(50)])
               for _ in range(4)]
    for t in threads:
        t.start()
    _join(threads)
    assert net.optimizer_state()["t"] == 200


def test_calls_on_one_net_wait_for_each_other():
    X, y = _data(8, 6, 3)
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    done = threading.Event()

    def step():
        net.train_step(X, y)
        done.set()

    with net._lock:                  # another call in progress
        t = threading.Thread(target=step)
        t.start()
        assert not done.wait(0.2)    # blocked, not refused, not run alongside
    _join([t])
    assert done.is_set()


def test_the_lock_is_per_net():
    X, y = _data(8, 6, 3)
    a = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    b = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    with a._lock:
        t = threading.Thread(target=lambda: [b.train_step(X, y), b.loss(X), b.predict(X)])
        t.start()
        _join([t], timeout=60)       # b never waits for a


# ------------------------------------------------------------------ 2. attributes

def test_running_stats_entries_cannot_be_swapped_or_written():
    X, y = _data(16, 6, 3)
    net = Net([6, 7, 5, 3], normalization="batchnorm", seed=0).set_optimizer("sgd")
    net.train_step(X, y)
    with pytest.raises(TypeError):
        net.running_stats[0] = (np.zeros(7, np.float32), np.ones(7, np.float32))
    mean, var = net.running_stats[0]
    with pytest.raises(ValueError):
        mean[...] = 0
    with pytest.raises(ValueError):
        net.bn_params[0]["running_var"][...] = 0
    before = [np.array(a) for pair in net.running_stats for a in pair]
    net.bn_params[0]["running_mean"] = np.full(7, 5.0)   # a fresh dict: no effect
    for _ in range(3):
        net.train_step(X, y)
    after = [np.array(a) for pair in net.running_stats for a in pair]
    assert all(np.all(np.isfinite(a)) for a in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_running_stats_round_trip_through_extra_state():
    X, y = _data(16, 6, 3)
    net = Net([6, 7, 3], normalization="batchnorm", seed=0).set_optimizer("sgd")
    net.train_step(X, y)
    saved = net._extra_state()
    net.train_step(X, y)
    net._load_extra_state(saved)
    np.testing.assert_array_equal(net.running_stats[0][0], saved["running_mean1"])
    assert int(net._extra_state()["step"]) == 1
    with pytest.raises(ValueError):
        net._load_extra_state(dict(saved, running_var1=np.ones(3)))


def test_params_update_and_ior_copy_into_the_flat_buffer():
    X, y = _data(8, 6, 3)
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    flat_views = {k: v for k, v in net.params.items()}
    new_w = np.full((6, 7), 0.25)
    net.params |= {"W1": new_w}
    assert net.params["W1"] is flat_views["W1"]
    np.testing.assert_array_equal(net.params["W1"], new_w.astype(np.float32))
    net.params.update(b1=np.ones(7))
    np.testing.assert_array_equal(net.params["b1"], 1)
    # the compiled step sees the new values
    ref = Net([6, 7, 3], seed=0)
    ref.params = {k: np.array(v) for k, v in net.params.items()}
    np.testing.assert_array_equal(ref.loss(X), net.loss(X))
    # all checked before any copy
    with pytest.raises(ValueError):
        net.params.update({"b1": np.zeros(7), "W2": np.zeros((2, 2))})
    np.testing.assert_array_equal(net.params["b1"], 1)
    with pytest.raises(KeyError):
        net.params |= {"W9": np.zeros(1)}


@pytest.mark.parametrize("call", [lambda p: p.popitem(), lambda p: p.clear(),
                                  lambda p: p.pop("W1"), lambda p: p.__delitem__("W1")])
def test_params_entries_cannot_be_removed(call):
    net = Net([6, 7, 3], seed=0)
    with pytest.raises(TypeError):
        call(net.params)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]


def test_optimizer_state_arrays_are_read_only_views():
    X, y = _data(8, 6, 3)
    net = Net([6, 7, 3], seed=0).set_optimizer("adam", learning_rate=1e-2)
    net.train_step(X, y)
    state = net.optimizer_state()
    with pytest.raises(ValueError):
        state["m"][...] = 0
    with pytest.raises(ValueError):
        net.optim_config["v"][...] = 0
    net.optim_config["m"] = np.zeros(3)          # a fresh dict: no effect
    assert net.optimizer_state()["m"].shape == state["m"].shape
    # giving the state back makes the Net copy it
    other = Net([6, 7, 3], seed=0).set_optimizer("adam", **state)
    other.params = {k: np.array(v) for k, v in net.params.items()}
    assert not np.shares_memory(other.optimizer_state()["m"], state["m"])
    assert other.train_step(X, y) == net.train_step(X, y)


# ------------------------------------------------------------------ 3. labels and indices

BAD = 2**40


def _race(step, mutate, restore, rounds=300):
    """Run `step` repeatedly while another thread keeps corrupting its input."""
    stop = threading.Event()

    def mutator():
        while not stop.is_set():
            mutate()

    t = threading.Thread(target=mutator)
    t.start()
    refused = 0
    try:
        for _ in range(rounds):
            restore()
            try:
                loss = step()
            except ValueError:
                refused += 1
            else:
                assert np.isfinite(loss)
    finally:
        stop.set()
        _join([t])
    return refused


def test_labels_changed_during_a_step_are_never_read_out_of_bounds():
    X, y = _data(64, 128, 10, seed=5)
    net = Net([128, 128, 10], seed=0).set_optimizer("sgd", learning_rate=1e-3)
    y0 = y.copy()

    def mutate():
        y[3] = BAD
        y[3] = -BAD

    _race(lambda: net.train_step(X, y), mutate, lambda: np.copyto(y, y0))
    _race(lambda: net.loss(X, y)[0], mutate, lambda: np.copyto(y, y0))
    assert all(np.all(np.isfinite(v)) for v in net.params.values())


def test_indices_changed_during_a_step_are_never_read_out_of_bounds():
    # a large gather, and a late row changed: the copy of X's rows takes long enough
    # for the other thread to run while it goes on
    X, y = _data(9000, 256, 10, seed=6)
    net = Net([256, 16, 10], seed=0).set_optimizer("sgd", learning_rate=1e-3)
    idx = np.arange(8192, dtype=np.intp)
    idx0 = idx.copy()
    yb = y[:8192].copy()

    def mutate():
        idx[8000] = BAD
        idx[8000] = -BAD

    _race(lambda: net.train_step(X, yb, indices=idx), mutate, lambda: np.copyto(idx, idx0),
          rounds=80)
    assert all(np.all(np.isfinite(v)) for v in net.params.values())


# ------------------------------------------------------------------ 4. arguments

@pytest.mark.parametrize("batch_size", [-1, 0, 1.5, "10", None, True, np.nan, [10]])
def test_predict_batch_size_is_checked(batch_size):
    X, _ = _data(10, 6, 3)
    net = Net([6, 7, 3], seed=0)
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        net.predict(X, batch_size=batch_size)


def test_predict_any_valid_batch_size_agrees():
    X, _ = _data(37, 6, 3)
    net = Net([6, 7, 3], seed=0)
    full = np.argmax(net.loss(X), axis=1)
    for bs in (1, 5, 36, 37, 1000, np.int64(7)):
        np.testing.assert_array_equal(net.predict(X, batch_size=bs), full)


@pytest.mark.parametrize("dtype", [np.int32, "int8", np.float16, "complex128", object, "nope",
                                   3])
def test_astype_refuses_non_float_dtypes(dtype):
    net = Net([6, 7, 3], seed=0)
    with pytest.raises(TypeError, match="dtype"):
        net.astype(dtype)


@pytest.mark.parametrize("indices", [np.array([], dtype=np.intp), np.array([0.5, 1.0]),
                                     np.array([[0, 1]]), np.array([0, 10**6]),
                                     np.array([-1, 0]), np.array([True, False]),
                                     np.array([2**63], dtype=np.uint64), "ab"])
def test_train_step_indices_are_checked(indices):
    X, y = _data(20, 6, 3)
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    n = 2 if np.ndim(indices) else 1
    with pytest.raises((ValueError, TypeError), match="indices"):
        net.train_step(X, y[:n], indices=indices)


def test_save_and_load_arguments_are_checked(tmp_path):
    net = Net([6, 7, 3], seed=0)
    for path in (None, 3, ["a"]):
        with pytest.raises(TypeError, match="path"):
            net.save(path)
        with pytest.raises(TypeError, match="path"):
            Net.load(path)
    with pytest.raises(TypeError, match="metadata"):
        net.save(tmp_path / "m.npz", note=object())
    with pytest.raises(TypeError, match="metadata"):
        net.save(tmp_path / "m.npz", score=float("nan"))
    assert not (tmp_path / "m.npz").exists()
    net.save(tmp_path / "m.npz", score=np.float32(0.5), tags=["a", 1])
    assert Net.load(tmp_path / "m.npz").metadata == {"score": 0.5, "tags": ["a", 1]}


_bad_scalar = st.one_of(st.none(), st.text(max_size=3), st.just(np.nan), st.just(np.inf),
                        st.floats(max_value=-1e-300, allow_nan=False),
                        st.lists(st.integers(), max_size=2), st.just(object()))


@given(batch_size=st.one_of(_bad_scalar, st.integers(max_value=0),
                            st.floats(allow_nan=True).filter(lambda f: not f.is_integer()
                                                             if np.isfinite(f) else True)))
@settings(max_examples=60)
def test_fuzz_predict_batch_size(batch_size):
    net = Net([4, 5, 3], seed=0)
    X = np.ones((9, 4), np.float32)
    with pytest.raises((ValueError, TypeError)):
        net.predict(X, batch_size=batch_size)


@given(lr=_bad_scalar, reg=_bad_scalar)
@settings(max_examples=60)
def test_fuzz_learning_rate_and_reg(lr, reg):
    net = Net([4, 5, 3], seed=0).set_optimizer("sgd", learning_rate=0.1)
    with pytest.raises((ValueError, TypeError)):
        net.learning_rate = lr
    with pytest.raises((ValueError, TypeError)):
        net.reg = reg
    assert net.learning_rate == 0.1 and net.reg == 0.0


@given(rule=st.one_of(st.text(max_size=8), st.none(), st.integers(), st.lists(st.text())),
       lr=st.one_of(_bad_scalar, st.floats(0, 1)))
@settings(max_examples=60)
def test_fuzz_set_optimizer(rule, lr):
    net = Net([4, 5, 3], seed=0)
    with pytest.raises((ValueError, TypeError)):
        net.set_optimizer(rule, learning_rate=lr)


@given(idx=st.lists(st.integers(-2**70, 2**70), min_size=0, max_size=6)
       .filter(lambda v: not v or min(v) < 0 or max(v) >= 9),
       y_len=st.integers(0, 7))
@settings(max_examples=100)
def test_fuzz_train_step_indices_and_labels(idx, y_len):
    net = Net([4, 5, 3], seed=0).set_optimizer("sgd")
    X = np.ones((9, 4), np.float32)
    try:
        indices = np.array(idx)
    except OverflowError:
        return
    with pytest.raises((ValueError, TypeError, OverflowError)):
        net.train_step(X, np.zeros(y_len, np.intp), indices=indices)


@given(labels=st.lists(st.integers(-2**70, 2**70), min_size=1, max_size=5)
       .filter(lambda v: min(v) < 0 or max(v) >= 3))
@settings(max_examples=100)
def test_fuzz_loss_labels(labels):
    net = Net([4, 5, 3], seed=0).set_optimizer("sgd")
    X = np.ones((len(labels), 4), np.float32)
    try:
        y = np.array(labels)
    except OverflowError:
        return
    with pytest.raises((ValueError, TypeError)):
        net.loss(X, y)
    with pytest.raises((ValueError, TypeError)):
        net.train_step(X, y)


# ------------------------------------------------------------------ 8. hostile model files

def _net_file(tmp_path, name="net.npz", mutate_header=None, mutate_arrays=None,
              normalization="batchnorm"):
    """A real saved Net, then altered (header and/or arrays) and written back."""
    net = Net([6, 7, 3], normalization=normalization, seed=0).set_optimizer("sgd")
    X, y = _data(16, 6, 3)
    net.train_step(X, y)
    path = tmp_path / name
    net.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__header__"}
        header = json.loads(bytes(data["__header__"]).decode())
    if mutate_header:
        mutate_header(header)
    if mutate_arrays:
        mutate_arrays(arrays)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


@pytest.fixture
def no_net_construction(monkeypatch):
    """Call it (after the file is written) to fail the test if Net.load gets as far as
    building a Net."""
    class Built(BaseException):
        pass

    def refuse(self, *args, **kwargs):
        raise Built(f"Net.__init__ called with {args}")
    return lambda: monkeypatch.setattr(Net, "__init__", refuse)


@pytest.mark.parametrize("dims", [[6, 400_000_000, 3], [6, 7, 2**31 - 1], [2**30, 7, 3],
                                  [6] + [7] * 5000 + [3]])
def test_load_refuses_huge_layer_dims_before_building(tmp_path, dims, no_net_construction):
    path = _net_file(tmp_path, mutate_header=lambda h: h["net"].update(layer_dims=dims))
    assert path.stat().st_size < 64 * 1024
    no_net_construction()
    with pytest.raises(CheckpointError):
        Net.load(path)


def test_load_refuses_huge_dims_in_bounded_memory(tmp_path):
    """The same in a fresh process, measuring its peak memory (no monkeypatch)."""
    path = _net_file(tmp_path, mutate_header=lambda h: h["net"].update(
        layer_dims=[6, 100_000_000, 3]))
    code = (
        "import resource, sys\n"
        "from fastfc.net import Net\n"
        "from fastfc.checkpoint import CheckpointError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    Net.load(sys.argv[1])\n"
        "except CheckpointError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('loaded')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) < 200 * 1024      # KiB on Linux


@pytest.mark.parametrize("mutate", [
    lambda a: a["param/W1"].__setitem__((0, 0), np.nan),
    lambda a: a["param/b2"].__setitem__(1, np.inf),
    lambda a: a["model/running_mean1"].__setitem__(2, np.nan),
], ids=["nan-weight", "inf-bias", "nan-running-mean"])
def test_load_refuses_nonfinite_values(tmp_path, mutate, no_net_construction):
    path = _net_file(tmp_path, mutate_arrays=mutate)
    no_net_construction()
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        Net.load(path)


def test_load_refuses_negative_running_variance(tmp_path, no_net_construction):
    path = _net_file(tmp_path, mutate_arrays=lambda a: a["model/running_var1"].__setitem__(
        0, -1.0))
    no_net_construction()
    with pytest.raises(CheckpointError, match="negative"):
        Net.load(path)


@pytest.mark.parametrize("change", [
    {"version": 0}, {"version": -1}, {"version": 99}, {"version": "1"}, {"version": True},
    {"net_format": 2}, {"net_format": "1"}])
def test_load_refuses_unknown_versions(tmp_path, change, no_net_construction):
    path = _net_file(tmp_path, mutate_header=lambda h: h.update(change))
    no_net_construction()
    with pytest.raises(CheckpointError):
        Net.load(path)


@pytest.mark.parametrize("mutate", [
    lambda a: a.pop("param/W2"),
    lambda a: a.update({"param/W1": np.zeros((7, 6), np.float32)}),
    lambda a: a.update({"param/extra": np.zeros(2, np.float32)}),
    lambda a: a.pop("model/running_var1"),
    lambda a: a.update({"param/W1": np.zeros((6, 7), np.int64)}),
    lambda a: a.update({"model/step": np.array(-1)}),
], ids=["missing", "transposed", "extra", "no-var", "int-weights", "negative-step"])
def test_load_refuses_arrays_that_do_not_match_layer_dims(tmp_path, mutate,
                                                          no_net_construction):
    path = _net_file(tmp_path, mutate_arrays=mutate)
    no_net_construction()
    with pytest.raises(CheckpointError):
        Net.load(path)


@pytest.mark.parametrize("change", [
    lambda n: n.update(layer_dims=[6, True, 3]), lambda n: n.update(layer_dims="673"),
    lambda n: n.update(layer_dims=[6, -7, 3]), lambda n: n.update(layer_dims=[6.0, 7, 3]),
    lambda n: n.update(normalization=["batchnorm"]), lambda n: n.update(dtype="int8"),
    lambda n: n.update(evil=1), lambda n: n.pop("reg")])
def test_load_refuses_bad_settings(tmp_path, change, no_net_construction):
    path = _net_file(tmp_path, mutate_header=lambda h: change(h["net"]))
    no_net_construction()
    with pytest.raises(CheckpointError):
        Net.load(path)


def test_load_of_pickled_data_does_not_suggest_allow_pickle(tmp_path):
    path = tmp_path / "evil.npz"
    header = {"format": "fastfc-checkpoint", "version": 1, "kind": "net", "net": {}}
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **{"param/W1": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError) as info:
        Net.load(path)
    assert "allow_pickle" not in str(info.value)


def test_load_still_round_trips(tmp_path):
    for norm in (None, "batchnorm", "layernorm"):
        path = _net_file(tmp_path, name=f"{norm}.npz", normalization=norm)
        net = Net.load(path)
        assert net.normalization == norm


# ------------------------------------------------------------------ 12. the pool

class _FakeThreadControl:
    """Stand-in for OpenBLAS's get_num_threads reporting `threads` (the kernels only
    read it); fastfc's pool is sized `parts` meanwhile."""

    GET = ctypes.CFUNCTYPE(ctypes.c_int)

    def __init__(self, threads=2, parts=0):
        self.threads = threads
        self.parts = parts
        self.reads = 0
        self._get = self.GET(self._read)

    def _read(self):
        self.reads += 1
        return self.threads

    def __enter__(self):
        blas.set_thread_control(ctypes.cast(self._get, ctypes.c_void_p).value)
        self._was = blas.pool_info()["enabled"]
        self._parts = blas.set_parts(self.parts)
        blas.set_pool(True)
        return self

    def __exit__(self, *exc):
        blas.set_thread_control(0)
        _openblas._connected = False
        _openblas.connect()
        blas.set_parts(self._parts)
        blas.set_pool(self._was)


LARGE = ([384, 256, 128, 10], 96)      # every GEMM above the split threshold
SMALL = ([32, 16, 4], 16)


def _train(dims, batch, dtype=np.float64, steps=4, rule="adam"):
    X, y = _data(batch * 2, dims[0], dims[-1], seed=9, dtype=dtype)
    net = Net(dims, dtype=dtype, seed=3, reg=1e-3).set_optimizer(rule, learning_rate=1e-3)
    losses = [net.train_step(X[s:s + batch], y[s:s + batch]) for s in range(steps)]
    return np.array(losses), {k: v.copy() for k, v in net.params.items()}


def test_step_splits_gemms_only_when_the_blas_reports_one_thread():
    """The step reads the BLAS's thread count (never sets it): at 1 a large step splits
    its GEMMs over the pool as well as its update; at 2 only the update."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):   # the real OpenBLAS stays serial
        tasks = {}
        for threads in (1, 2):
            with _FakeThreadControl(threads, parts=2) as ctl:
                before = blas.pool_info()["tasks_run"]
                _train(*LARGE, steps=1)
                tasks[threads] = blas.pool_info()["tasks_run"] - before
                assert ctl.reads > 0
        assert tasks[2] == 1             # the update (~140k parameters)
        assert tasks[1] > tasks[2]       # + the large GEMMs


def test_small_steps_hand_nothing_to_the_pool():
    """A small step hands no task to the pool's workers (they are not woken)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        with _FakeThreadControl(1, parts=2):
            before = blas.pool_info()["tasks_run"]
            _train(*SMALL, steps=5)
            assert blas.pool_info()["tasks_run"] == before
            _train(*LARGE, steps=1)
            assert blas.pool_info()["tasks_run"] > before


@pytest.mark.parametrize("dims_batch", [SMALL, LARGE], ids=["small", "large"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_on_and_off_agree(dims_batch, dtype):
    was = blas.pool_info()["enabled"]
    try:
        blas.set_pool(False)
        serial = _train(*dims_batch, dtype=dtype)
        blas.set_pool(True)
        pooled = _train(*dims_batch, dtype=dtype)
    finally:
        blas.set_pool(was)
    tol = dict(rtol=1e-5, atol=5e-5) if dtype == np.float32 else dict(rtol=1e-12,
                                                                      atol=1e-13)
    np.testing.assert_allclose(serial[0], pooled[0], **tol)
    for k in serial[1]:
        np.testing.assert_allclose(serial[1][k], pooled[1][k], err_msg=k, **tol)


def test_fastfc_threading_blas_gives_the_same_steps():
    code = ("import numpy as np, sys; sys.path.insert(0, 'tests')\n"
            "from test_net_safety import _train, LARGE, SMALL\n"
            "print(repr([float(v) for d in (SMALL, LARGE) for v in _train(*d)[0]]))\n")
    runs = {}
    for mode in ("pool", "blas"):
        env = dict(__import__("os").environ, FASTFC_THREADING=mode)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        runs[mode] = np.array(eval(res.stdout.strip()))
    np.testing.assert_allclose(runs["pool"], runs["blas"], rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ 13. workspaces

def test_large_evaluation_gives_its_workspace_back():
    X, y = _data(200, 30, 10, seed=11)
    X_big, y_big = _data(20_000, 30, 10, seed=12)
    net = Net([30, 64, 10], normalization="batchnorm", seed=0).set_optimizer("sgd")
    net.train_step(X, y)
    capacity, size = net._core.capacity, net._workspace_bytes()
    scores = net.loss(X_big)
    assert net._core.capacity == capacity and net._workspace_bytes() == size
    # chunked scores: the rows an unchunked evaluation gives
    for lo, hi in ((0, 150), (1000, 1200), (19_900, 20_000)):
        np.testing.assert_allclose(scores[lo:hi], net.loss(X_big[lo:hi]), rtol=1e-5,
                                   atol=1e-6)
    # (loss(X, y) below runs batch norm in training mode: running stats change)
    loss, grads = net.loss(X_big, y_big)
    assert net._core.capacity == capacity and net._workspace_bytes() == size
    net.predict(X_big, batch_size=5000)
    assert net._core.capacity == capacity and net._workspace_bytes() == size
    # the gradient is of the whole batch
    ref = Net([30, 64, 10], normalization="batchnorm", seed=0)
    ref.params = {k: np.array(v) for k, v in net.params.items()}
    ref._load_extra_state(net._extra_state())
    loss_ref, grads_ref = ref.loss(X_big, y_big)
    assert loss == loss_ref
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_ref[k])


def test_untrained_net_keeps_at_most_one_chunk():
    X_big, _ = _data(5000, 30, 10, seed=12)
    net = Net([30, 64, 10], seed=0)
    net.loss(X_big)
    assert net._core.capacity <= net_module.EVAL_CHUNK


def test_load_reads_no_array_the_header_does_not_describe(tmp_path, monkeypatch):
    # a file whose W1 entry is far larger than its header's layer_dims imply is refused
    # before any array is read: only the header entry is ever loaded (a compressed entry
    # of zeros could otherwise expand to gigabytes before the shapes are compared)
    import zipfile

    from fastfc import checkpoint as ckpt

    good = tmp_path / "good.npz"
    Net([3, 2], seed=0).save(good)
    hostile = tmp_path / "hostile.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w",
                                                       zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == "param/W1.npy":
                buf = io.BytesIO()
                np.save(buf, np.zeros((4000, 2), dtype=np.float32))
                dst.writestr(info.filename, buf.getvalue())
            else:
                dst.writestr(info.filename, src.read(info.filename))
    read = []
    original = np.lib.npyio.NpzFile.__getitem__

    def recording(self, key):
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", recording)
    with pytest.raises(CheckpointError, match="W1"):
        Net.load(hostile)
    assert read == [ckpt.HEADER_KEY]
    read.clear()
    Net.load(good)                 # the intact file reads every entry
    assert len(read) > 1
