"""Tests of fastfc's step-level threading (csrc/fastfc_pool.h, fastfc._kernels.blas).

Inside a Net step fastfc splits the minibatch gather and the optimiser update over its
own pool of threads, and each large GEMM too when the user made OpenBLAS single-threaded
(fastfc never changes OpenBLAS's thread count).  These tests check that the split changes
nothing but the speed: the same losses and parameters as a serial step (to the SPEC's
float tolerances: the split sums the L2 term in a different order), a BLAS thread count
that no other thread ever sees change, threadpoolctl limits honoured, a forked child and
concurrent Python threads that still train, and the switches that turn it off.
"""
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastfc
from fastfc import _openblas, optim
from fastfc._kernels import blas
from fastfc.net import Net

LINUX = sys.platform.startswith("linux")
_openblas.connect()     # what the first Net does; skip conditions below read its result
# big enough that every GEMM of a step is split (m * n * k >= 2**18)
DIMS = [384, 256, 128, 10]
BATCH = 96
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
# Parameters after Adam steps: a split GEMM may round a gradient entry differently, and in
# its first steps Adam turns a gradient near zero into a step of up to the learning rate
# (1e-3 here), so in float32 one entry can move by a fraction of lr (seen: 3.8e-6 with
# SciPy 1.13's OpenBLAS).  5% of lr still catches a wrong slice or a lost update.
PARAM_TOL = {np.float32: dict(rtol=1e-5, atol=5e-5), np.float64: TOL[np.float64]}


@pytest.fixture(autouse=True, scope="module")
def openblas_only():
    """These tests are about SciPy's OpenBLAS and the pool (the task counts below assume
    its products); the other backends' split is tested in tests/test_gemm.py."""
    old = fastfc.set_gemm_backend("openblas")
    yield
    fastfc.set_gemm_backend(old)


def _data(dtype, n=BATCH * 4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, DIMS[0])).astype(dtype), rng.integers(0, DIMS[-1], n)


def _train(dtype, steps=5, rule="adam", **net_kw):
    """Losses and final parameters of `steps` steps on fixed data."""
    X, y = _data(dtype)
    net = Net(DIMS, dtype=dtype, seed=3, reg=1e-3, **net_kw)
    net.set_optimizer(rule, learning_rate=1e-3)
    losses = []
    for s in range(steps):
        idx = np.arange(s * 37, s * 37 + BATCH) % X.shape[0]
        losses.append(net.train_step(X, y[idx], indices=idx))
    return np.array(losses), {k: v.copy() for k, v in net.params.items()}


@pytest.fixture
def pool_state():
    """The fastest explicit set-up (OpenBLAS single-threaded, fastfc's pool of 2: every
    large GEMM is split); the pool switch and both thread counts restored after."""
    before = blas.pool_info()
    with threadpool_limits(limits=1, user_api="blas"), fastfc.threads(2):
        yield
    blas.set_pool(before["enabled"] or not before["thread_control"])


@pytest.fixture
def blas_threaded():
    """OpenBLAS on 2 threads and fastfc's pool following it (the default set-up)."""
    before = blas.pool_info()
    with threadpool_limits(limits=2, user_api="blas"), fastfc.threads(None):
        yield
    blas.set_pool(before["enabled"] or not before["thread_control"])


def _assert_same(a, b, dtype):
    losses_a, params_a = a
    losses_b, params_b = b
    np.testing.assert_allclose(losses_a, losses_b, **TOL[dtype])
    assert params_a.keys() == params_b.keys()
    for k in params_a:
        np.testing.assert_allclose(params_a[k], params_b[k], err_msg=k, **PARAM_TOL[dtype])


# ------------------------------------------------------------------ set-up at first use

@pytest.mark.skipif(not LINUX, reason="the bundled-OpenBLAS lookup is checked on Linux")
def test_connect_finds_scipys_openblas():
    info = blas.pool_info()
    assert info["thread_control"] is True
    assert _openblas.thread_control_library is not None
    assert "openblas" in os.path.basename(_openblas.thread_control_library).lower()
    assert 2 <= info["max_parts"] <= 4


def test_show_config_reports_the_threading_mode():
    cfg = fastfc.show_config(mode="dicts")
    threading_info = cfg["kernels"]["threading"]
    assert threading_info["mode"] in ("pool", "blas")
    assert threading_info["mode"] == ("pool" if blas.pool_info()["enabled"] else "blas")


def test_set_pool_rejects_negative_max_parts():
    with pytest.raises(ValueError, match="max_parts"):
        blas.set_pool(True, max_parts=-1)


# ------------------------------------------------------------------ same numbers

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", ["sgd_momentum", "adam"])
def test_pool_and_serial_steps_agree(pool_state, dtype, rule):
    blas.set_pool(False)
    serial = _train(dtype, rule=rule)
    blas.set_pool(True)
    before = blas.pool_info()["tasks_run"]
    pooled = _train(dtype, rule=rule)
    if blas.pool_info()["thread_control"]:
        # per step: 2 forward + 3 backward GEMMs (those with >= 2**18 multiply-adds;
        # the 10-class layer's are too small) + the update
        assert blas.pool_info()["tasks_run"] - before == 5 * 6
    _assert_same(serial, pooled, dtype)


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_indices", [True, False])
def test_split_gather_and_cast_agree(pool_state, x_dtype, use_indices):
    """A large minibatch is gathered (or cast) by the pool's threads in row blocks."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((700, 1024)).astype(x_dtype)
    y = rng.integers(0, 10, 700)

    def run():
        net = Net([1024, 64, 10], seed=4, reg=1e-3)          # float32: X is cast
        net.set_optimizer("adam", learning_rate=1e-3)
        out = []
        for s in range(3):
            idx = rng_idx[s]
            out.append(net.train_step(X, y[idx], indices=idx) if use_indices
                       else net.train_step(X[idx], y[idx]))
        return np.array(out), {k: v.copy() for k, v in net.params.items()}

    rng_idx = [np.random.default_rng(s).integers(0, 700, 130) for s in range(3)]
    blas.set_pool(False)
    serial = run()
    blas.set_pool(True)
    _assert_same(serial, run(), np.float32)


@pytest.mark.parametrize("net_kw", [dict(normalization="batchnorm"),
                                    dict(normalization="layernorm", dropout_keep_ratio=0.7),
                                    dict(activation="tanh", loss="svm")])
def test_pool_agrees_with_norms_dropout_and_svm(pool_state, net_kw):
    blas.set_pool(False)
    serial = _train(np.float64, **net_kw)
    blas.set_pool(True)
    _assert_same(serial, _train(np.float64, **net_kw), np.float64)


def test_pool_max_parts_one_runs_serially(pool_state):
    blas.set_pool(True, max_parts=1)
    assert blas.pool_info()["max_parts"] == 1
    before = blas.pool_info()["tasks_run"]
    _train(np.float32, steps=2)
    assert blas.pool_info()["tasks_run"] == before


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
def test_steps_never_change_the_blas_thread_count(blas_threaded):
    blas.set_pool(True)
    assert blas.pool_info()["blas_threads"] == 2
    assert fastfc.get_num_threads() == 2
    _train(np.float32, steps=2)
    assert blas.pool_info()["blas_threads"] == 2
    net = Net(DIMS, seed=0)
    net.set_optimizer("sgd")
    X, y = _data(np.float32)
    with pytest.raises(ValueError):
        net.train_step(X, y + 100)
    assert blas.pool_info()["blas_threads"] == 2


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multithreaded_blas_keeps_the_gemms_and_gives_the_same_steps(blas_threaded, dtype):
    """OpenBLAS on 2 threads: the step hands only its update to the pool (one task per
    step: DIMS has ~140k parameters), every GEMM goes whole to OpenBLAS."""
    assert blas.pool_info()["splits_gemm"] is False
    blas.set_pool(False)
    serial = _train(dtype)
    blas.set_pool(True)
    before = blas.pool_info()["tasks_run"]
    pooled = _train(dtype)
    assert blas.pool_info()["tasks_run"] - before == 5
    _assert_same(serial, pooled, dtype)


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
def test_threadpool_limit_of_one_means_no_split_by_default(pool_state):
    """Following OpenBLAS (the default size), a limit of one thread means a serial step."""
    blas.set_pool(True)
    with fastfc.threads(None):
        before = blas.pool_info()["tasks_run"]
        _train(np.float32, steps=2)
        assert blas.pool_info()["tasks_run"] == before
        assert blas.pool_info()["blas_threads"] == 1


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
def test_blas_count_seen_by_another_thread_never_changes_during_training():
    """A thread polling threadpoolctl while another trains ~200 steps sees one count."""
    from threadpoolctl import threadpool_info
    import scipy
    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))

    def scipy_threads():
        return [lib["num_threads"] for lib in threadpool_info()
                if lib.get("user_api") == "blas"
                and os.path.realpath(lib["filepath"]).startswith(scipy_dir)]

    blas.set_pool(True)
    expected = scipy_threads()
    assert expected
    seen, done, errors = set(), threading.Event(), []

    def poll():
        while not done.is_set():
            seen.add(tuple(scipy_threads()))

    def train():
        try:
            X, y = _data(np.float32)
            net = Net(DIMS, seed=2)
            net.set_optimizer("adam", learning_rate=1e-3)
            for s in range(200):
                idx = np.arange(s * 37, s * 37 + BATCH) % X.shape[0]
                net.train_step(X, y[idx], indices=idx)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    poller = threading.Thread(target=poll)
    trainer = threading.Thread(target=train)
    poller.start()
    trainer.start()
    trainer.join(timeout=300)
    done.set()
    poller.join(timeout=60)
    assert not errors, errors
    assert seen == {tuple(expected)}


def test_threads_api_sets_and_restores_the_pool_size():
    old = fastfc.set_num_threads(3)
    try:
        assert fastfc.get_num_threads() == 3 or not blas.pool_info()["enabled"]
        with fastfc.threads(2):
            assert blas.pool_info()["parts"] == 2
        assert blas.pool_info()["parts"] == 3
        assert fastfc.set_num_threads(None) == 3
        assert blas.pool_info()["parts"] == 0
    finally:
        fastfc.set_num_threads(old)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            fastfc.set_num_threads(bad)


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
def test_threads_blas_threads_limits_only_inside_the_block(blas_threaded):
    """The explicit fast set-up: OpenBLAS limited to 1 inside the block (so GEMMs are
    split too), its count back on exit, the same steps as a serial run."""
    blas.set_pool(False)
    serial = _train(np.float32)
    blas.set_pool(True)
    with fastfc.threads(2, blas_threads=1):
        assert blas.pool_info()["blas_threads"] == 1
        assert blas.pool_info()["splits_gemm"] is True
        before = blas.pool_info()["tasks_run"]
        pooled = _train(np.float32)
        assert blas.pool_info()["tasks_run"] - before == 5 * 6
    assert blas.pool_info()["blas_threads"] == 2
    _assert_same(serial, pooled, np.float32)
    with pytest.raises(ValueError, match="blas_threads"):
        with fastfc.threads(2, blas_threads=0):
            pass


@pytest.mark.skipif(not LINUX, reason="thread control is found on Linux")
def test_sleeping_workers_wake_for_the_next_step(pool_state):
    blas.set_pool(True)
    X, y = _data(np.float32)
    net = Net(DIMS, seed=1)
    net.set_optimizer("adam")
    for _ in range(3):
        before = blas.pool_info()["tasks_run"]
        net.train_step(X[:BATCH], y[:BATCH])
        assert blas.pool_info()["tasks_run"] > before
        time.sleep(0.01)     # longer than the workers spin: they sleep on the condvar


def test_custom_gemm_keeps_its_own_threads(pool_state):
    import ctypes
    import scipy.linalg.cython_blas as cb

    def address(name):
        capsule = cb.__pyx_capi__[name]
        ctypes.pythonapi.PyCapsule_GetName.restype = ctypes.c_char_p
        ctypes.pythonapi.PyCapsule_GetName.argtypes = [ctypes.py_object]
        ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
        ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        return ctypes.pythonapi.PyCapsule_GetPointer(
            capsule, ctypes.pythonapi.PyCapsule_GetName(capsule))

    blas.set_pool(True)
    try:
        blas.set_gemm(address("sgemm"), address("dgemm"), name="same-but-custom")
        assert blas.pool_info()["enabled"] is False
        before = blas.pool_info()["tasks_run"]
        _train(np.float32, steps=2)
        assert blas.pool_info()["tasks_run"] == before
    finally:
        blas.use_scipy_blas()
    assert blas.pool_info()["enabled"] is blas.pool_info()["thread_control"]


# ------------------------------------------------------------------ optimiser kernels

@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "sgd_nesterov_momentum",
                                  "rmsprop", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_update_split_over_the_pool_is_exact(pool_state, rule, dtype):
    """The rules are elementwise: slices over the pool give the serial result exactly,
    and the NaN/inf count adds up over the slices."""
    rng = np.random.default_rng(5)
    n = 200_003                          # above the split threshold, not a multiple of 16
    w0 = rng.standard_normal(n).astype(dtype)
    dw = rng.standard_normal(n).astype(dtype)
    dw[[7, n // 2 + 3, n - 1]] = np.nan  # one in each half and the tail
    results = {}
    for pooled in (False, True):
        blas.set_pool(pooled)
        w = w0.copy()
        config = {"learning_rate": 1e-2}
        before = blas.pool_info()["tasks_run"]
        for _ in range(3):
            config, nonfinite = optim.update_inplace(rule, w, dw, config,
                                                     return_nonfinite=True)
        ran = blas.pool_info()["tasks_run"] - before
        results[pooled] = (w, nonfinite, ran)
    np.testing.assert_array_equal(results[False][0], results[True][0])
    assert results[False][1] == results[True][1] == 3
    assert results[False][2] == 0
    if blas.pool_info()["thread_control"]:
        assert results[True][2] == 3


def test_small_update_stays_on_the_calling_thread(pool_state):
    blas.set_pool(True)
    w = np.ones(1000, np.float32)
    before = blas.pool_info()["tasks_run"]
    optim.update_inplace("adam", w, np.ones_like(w), {})
    assert blas.pool_info()["tasks_run"] == before


# ------------------------------------------------------------------ concurrency

def test_two_python_threads_train_at_once(pool_state):
    """One thread owns the pool, the other runs serially; neither blocks or corrupts."""
    blas.set_pool(False)
    expected = _train(np.float64, steps=8)
    blas.set_pool(True)
    results, errors = [None] * 3, []

    def work(i):
        try:
            results[i] = _train(np.float64, steps=8)
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a training thread hung"
    assert not errors, errors
    for r in results:
        _assert_same(expected, r, np.float64)


def _child_step(queue):
    queue.put(float(_train(np.float32, steps=2)[0][-1]))


@pytest.mark.skipif(not LINUX, reason="fork start method")
def test_forked_child_trains_after_the_parent_used_the_pool(pool_state):
    blas.set_pool(True)
    expected = float(_train(np.float32, steps=2)[0][-1])   # workers now exist
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_step, args=(queue,))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in a step")
    assert child.exitcode == 0
    np.testing.assert_allclose(queue.get(timeout=10), expected, **TOL[np.float32])


# ------------------------------------------------------------------ environment switch

def _run(code, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=120)


def test_fastfc_threading_blas_turns_the_pool_off():
    out = _run("import fastfc; from fastfc._kernels import blas; fastfc.Net([4, 2]); "
               "print(blas.pool_info()['enabled'], fastfc.get_num_threads())",
               FASTFC_THREADING="blas")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False 1"


def test_fastfc_threading_bad_value_warns():
    out = _run("import warnings; warnings.simplefilter('always'); import fastfc; "
               "fastfc.get_num_threads()", FASTFC_THREADING="openmp")
    assert out.returncode == 0, out.stderr
    assert "FASTFC_THREADING must be 'pool' or 'blas', got 'openmp'" in out.stderr
