"""Tests of the GEMM dispatch (fastfc._gemm, csrc/gemm_dispatch.h, fastfc._kernels.blas).

Backends: SciPy's OpenBLAS (always), MKL (the ``fastfc[mkl]`` extra: its tests run when
it is installed and are skipped, saying so, when not), a private OpenBLAS
(scipy-openblas32, when installed).  Covered: forced and auto selection, the on-disk
cache (written, read back, corrupt, stale), a missing MKL, bfloat16 rounding against a
NumPy formula, bf16 products and Net steps against float32 with stated tolerances,
resume exactness with bf16, and thread counts other threads see.

Tolerances of bfloat16.  bf16 keeps 8 significant bits: rounding an operand moves it by
at most 2**-8 relative.  A product of two rounded operands is thus within about
2 * 2**-8 = 0.8% of the float32 one, entry by entry, before cancellation in the sum;
compared as norms of whole matrices (where the independent errors average) the bound
below is 1%.
Against the float64 product of the *rounded* operands only float32 accumulation
differs: 1e-5 relative to the norm.
"""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastfc
from fastfc import _gemm, _openblas
from fastfc._kernels import blas
from fastfc.net import Net

_openblas.connect()


def _mkl_installed():
    try:
        _gemm._load("mkl")
        return True
    except (ImportError, OSError):
        return False


HAVE_MKL = _mkl_installed()
needs_mkl = pytest.mark.skipif(not HAVE_MKL, reason="MKL not installed (pip install 'fastfc[mkl]')")
HAVE_NATIVE_BF16 = blas.native_bf16()
#: the bf16 GEMMs a test runs on: fastfc's portable micro-kernel everywhere, its
#: AVX512-BF16 one and MKL's where this machine has them
BF16_GEMMS = ["portable", "native", "mkl"]


def restore_bf16_gemm(old):
    """Put the bf16 GEMM back to `old` (None: none chosen yet)."""
    if old is None:
        blas.set_bf16_gemm(blas.BF16_NONE)
        _gemm._bf16_gemm = None
    else:
        _gemm.set_bf16_gemm(old)


@pytest.fixture
def bf16_gemm(request):
    """The bf16 GEMM named by the test's parameter, for the test (skipped, saying why,
    where this machine cannot run it)."""
    name = request.param
    if name == "native" and not HAVE_NATIVE_BF16:
        pytest.skip("this CPU has no AVX512-BF16 (fastfc's native bf16 GEMM)")
    if name == "mkl" and not HAVE_MKL:
        pytest.skip("MKL not installed (pip install 'fastfc[mkl]')")
    old = _gemm.get_bf16_gemm()
    _gemm.set_bf16_gemm(name)
    yield name
    _gemm.set_compute_dtype("float32")
    restore_bf16_gemm(old)


def with_bf16_gemms(test):
    """Run `test` on every bf16 GEMM (see bf16_gemm)."""
    return pytest.mark.parametrize("bf16_gemm", BF16_GEMMS, indirect=True)(test)
try:
    import scipy_openblas32  # noqa: F401
    HAVE_PRIVATE = True
except ImportError:
    HAVE_PRIVATE = False


@pytest.fixture(autouse=True)
def restore_mode(tmp_path, monkeypatch):
    """Each test starts from the mode it found and a private cache directory."""
    monkeypatch.setenv("FASTFC_CACHE_DIR", str(tmp_path / "cache"))
    mode = _gemm._mode_name
    dtype = _gemm._compute_dtype
    yield
    _gemm.set_compute_dtype("float32")
    _gemm.set_gemm_backend(mode)
    if dtype != "float32":
        _gemm.set_compute_dtype(dtype)


def _operands(m, n, k, ta, tb, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _product(a, b, ta, tb, alpha=1.0, beta=0.0, c=None):
    m = a.shape[1] if ta else a.shape[0]
    n = b.shape[0] if tb else b.shape[1]
    out = np.zeros((m, n), a.dtype) if c is None else c.copy()
    blas._gemm(a, b, out, ta, tb, a.dtype.type(alpha), a.dtype.type(beta))
    return out


def _expected(a, b, ta, tb):
    a64 = a.astype(np.float64).T if ta else a.astype(np.float64)
    b64 = b.astype(np.float64).T if tb else b.astype(np.float64)
    return a64 @ b64


def _sgd_net(d_in, hidden, n=256):
    """A float32 net [d_in, hidden, 10] on plain SGD and a minibatch of n rows for it."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    y = rng.integers(0, 10, n)
    net = Net([d_in, hidden, 10], seed=0)
    net.set_optimizer("sgd", learning_rate=1e-3)
    return net, X, y


def _rel(x, y):
    return np.linalg.norm(np.asarray(x, np.float64) - y) / np.linalg.norm(y)


# ------------------------------------------------------------------ forced modes

def test_modes_and_bad_names():
    assert _gemm.get_gemm_backend() in _gemm.MODES
    old = fastfc.set_gemm_backend("openblas")
    assert fastfc.get_gemm_backend() == "openblas"
    assert blas.get_mode() == 0
    fastfc.set_gemm_backend(old)
    for bad in ("cuda", "", None, 3):
        with pytest.raises(ValueError, match="name must be one of"):
            fastfc.set_gemm_backend(bad)


def test_openblas_mode_is_the_old_path_bit_for_bit():
    """Forced openblas calls SciPy's OpenBLAS exactly as before the dispatch existed;
    float64 in auto does too (it never leaves OpenBLAS)."""
    a, b = _operands(70, 50, 300, False, True, np.float64)
    fastfc.set_gemm_backend("openblas")
    forced = _product(a, b, False, True)
    fastfc.set_gemm_backend("auto")
    auto = _product(a, b, False, True)
    np.testing.assert_array_equal(forced, auto)
    np.testing.assert_allclose(forced, _expected(a, b, False, True), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("backend", ["mkl", "openblas-private"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_forced_backend_products(backend, dtype, ta, tb):
    if backend == "mkl" and not HAVE_MKL:
        pytest.skip("MKL not installed")
    if backend == "openblas-private" and not HAVE_PRIVATE:
        pytest.skip("scipy-openblas32 not installed")
    fastfc.set_gemm_backend(backend)
    a, b = _operands(37, 29, 41, ta, tb, dtype)
    c0 = np.random.default_rng(1).standard_normal((37, 29)).astype(dtype)
    got = _product(a, b, ta, tb, alpha=0.5, beta=2.0, c=c0)
    want = 0.5 * _expected(a, b, ta, tb) + 2.0 * c0
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)


@needs_mkl
def test_mkl_net_steps_match_openblas_and_split_matches_serial():
    """A Net trained on MKL (products split over fastfc's pool) follows the OpenBLAS
    run to float32 tolerance, and the pooled run matches a serial one."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 384)).astype(np.float32)
    y = rng.integers(0, 10, 128)

    def run(backend, threads):
        fastfc.set_gemm_backend(backend)
        net = Net([384, 256, 128, 10], seed=3, reg=1e-3)
        net.set_optimizer("sgd", learning_rate=1e-2)
        with fastfc.threads(threads):
            losses = [net.train_step(X, y) for _ in range(4)]
        return np.array(losses), net.params["W1"].copy()

    ref = run("openblas", 1)
    serial = run("mkl", 1)
    pooled = run("mkl", 2)
    np.testing.assert_allclose(serial[0], ref[0], rtol=1e-5)
    np.testing.assert_allclose(serial[1], ref[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pooled[0], serial[0], rtol=1e-5)
    np.testing.assert_allclose(pooled[1], serial[1], rtol=1e-4, atol=1e-6)


@needs_mkl
@pytest.mark.parametrize("bf16", [False, True])
def test_mkl_products_split_over_the_pool(bf16):
    """Inside a step (the pool owned) an MKL product is split over fastfc's threads, even
    with OpenBLAS on its own threads, and gives the serial product's numbers."""
    fastfc.set_gemm_backend("mkl")
    a, b = _operands(256, 192, 300, False, True, np.float32)
    with fastfc.compute_dtype("bfloat16" if bf16 else "float32"):
        serial = _product(a, b, False, True)
        out = np.zeros_like(serial)
        with fastfc.threads(2):
            before = blas.pool_info()["tasks_run"]
            blas._gemm_step(a, b, out, False, True)
            split = blas.pool_info()["tasks_run"] - before
    if blas.pool_info()["thread_control"]:
        assert split >= 1
    np.testing.assert_allclose(out, serial, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ auto and the cache

@needs_mkl
def test_auto_times_each_shape_once_and_caches_it(tmp_path):
    fastfc.set_gemm_backend("auto")
    assert blas.get_mode() == -1
    assert blas.routes() == []                      # an empty cache directory
    a, b = _operands(64, 96, 128, True, False, np.float32)
    first = _product(a, b, True, False)
    routes = blas.routes()
    assert len(routes) == 1 and routes[0][:3] == (64, 96, 128)
    assert routes[0][3] == blas.route_flags(True, False, 1)
    assert blas.routes_timed() == 1
    np.testing.assert_array_equal(_product(a, b, True, False), first)   # same route
    assert len(blas.routes()) == 1
    # float64 and tiny float32 products are not timed
    _product(*_operands(64, 96, 128, False, False, np.float64), False, False)
    _product(*_operands(4, 4, 4, False, False, np.float32), False, False)
    assert len(blas.routes()) == 1
    path = _gemm.save_cache()
    assert path == _gemm.cache_path() and path.startswith(str(tmp_path))
    data = json.load(open(path))
    assert data["routes"] == [[64, 96, 128, routes[0][3], _gemm.BACKENDS[routes[0][4]]]]
    assert data["key"]["cpu"] == _gemm._cpu()[0]
    # a new session reads the choice back and times nothing: the same numbers
    fastfc.set_gemm_backend("auto")
    assert blas.routes() == routes and blas.routes_timed() == 0
    assert _gemm.gemm_info()["cache"]["status"] == "read 1 routes"
    np.testing.assert_array_equal(_product(a, b, True, False), first)
    assert blas.routes_timed() == 0


@needs_mkl
@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe garbage", b"[]", b"null"])
def test_corrupt_cache_is_ignored_and_rewritten(content):
    fastfc.set_gemm_backend("openblas")
    path = _gemm.cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    fastfc.set_gemm_backend("auto")
    assert blas.routes() == []
    assert _gemm.gemm_info()["cache"]["status"].startswith("ignored")
    _product(*_operands(64, 64, 64, False, False, np.float32), False, False)
    assert _gemm.save_cache() == path
    assert len(json.load(open(path))["routes"]) == 1


@needs_mkl
@pytest.mark.parametrize("bad", ["stale", "backend", "negative", "short", "bool"])
def test_stale_or_bad_entries_are_ignored(bad):
    fastfc.set_gemm_backend("auto")
    path = _gemm.cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"format": 1, "key": _gemm._cache_key(), "routes": [[64, 64, 64, 4, "mkl"]]}
    if bad == "stale":
        data["key"] = dict(data["key"], cpu="another CPU")
    elif bad == "backend":
        data["routes"][0][4] = "cuda"
    elif bad == "negative":
        data["routes"][0][0] = -1
    elif bad == "short":
        data["routes"][0] = data["routes"][0][:4]
    else:
        data["routes"][0][1] = True
    with open(path, "w") as f:
        json.dump(data, f)
    fastfc.set_gemm_backend("auto")
    assert blas.routes() == []
    assert _gemm.gemm_info()["cache"]["status"].startswith("ignored")


@needs_mkl
def test_auto_in_a_net_is_deterministic_given_the_cache():
    """Two processes with the same cache give the same float32 training run."""
    code = ("import numpy as np, fastfc\n"
            "rng = np.random.default_rng(0)\n"
            "X = rng.standard_normal((64, 300)).astype(np.float32); y = rng.integers(0, 10, 64)\n"
            "net = fastfc.Net([300, 200, 10], seed=1)\n"
            "net.set_optimizer('adam', learning_rate=1e-3)\n"
            "print(repr([float(net.train_step(X, y)) for _ in range(3)]))\n"
            "from fastfc._kernels import blas; print(blas.routes_timed())\n")
    env = dict(os.environ, FASTFC_GEMM="auto",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120) for _ in range(2)]
    for o in outs:
        assert o.returncode == 0, o.stderr
    first, second = (o.stdout.split("\n") for o in outs)
    assert int(first[1]) > 0 and int(second[1]) == 0     # the second run only read the cache
    assert first[0] == second[0]


@needs_mkl
@pytest.mark.parametrize("scipy_threads", [1, 2])
def test_auto_keeps_scipys_own_threads_out_of_a_pooled_step(scipy_threads):
    """In a step split over fastfc's pool, a multi-threaded SciPy OpenBLAS is not a
    candidate (its spinning workers and the pool would slow each other; flag bit 2
    records that); limited to one thread it runs under the pool and competes."""
    from threadpoolctl import threadpool_limits
    fastfc.set_gemm_backend("auto")
    net, X, y = _sgd_net(512, 256)
    with threadpool_limits(limits=scipy_threads, user_api="blas"), fastfc.threads(2):
        if fastfc.get_num_threads() < 2:
            pytest.skip("fastfc's pool is off (FASTFC_THREADING=blas)")
        net.train_step(X, y)
    pooled = [r for r in blas.routes() if r[3] >> 3 >= 2]
    assert pooled, blas.routes()
    for m, n, k, flags, backend in pooled:
        no_scipy = bool(flags & 4)
        assert no_scipy == (scipy_threads > 1), (m, n, k, flags)
        if no_scipy:
            assert _gemm.BACKENDS[backend] != "openblas"
    info = _gemm.gemm_info()
    assert {r[5] for r in info["routes"]} >= {2}       # parts decoded from bit 3


@pytest.mark.skipif(not (HAVE_MKL or HAVE_PRIVATE),
                    reason="auto has SciPy's OpenBLAS alone: no MKL, no scipy-openblas32")
def test_auto_routes_a_step_that_finds_the_pool_busy_as_a_pooled_one():
    """A float32 step under auto whose pool another thread's step owns runs its products
    whole, on the backends the pooled step's routes name: no route of its own (which
    could name a backend that rounds differently), the same bits as with the pool."""
    fastfc.set_gemm_backend("auto")
    blas.clear_routes()

    def run(busy):
        net, X, y = _sgd_net(512, 256)
        with fastfc.threads(2):
            if fastfc.get_num_threads() < 2:
                pytest.skip("fastfc's pool is off (FASTFC_THREADING=blas)")
            if busy:
                assert blas._hold_pool(True)     # "another step" owns the pool
            try:
                losses = [net.train_step(X, y) for _ in range(3)]
            finally:
                if busy:
                    blas._hold_pool(False)
        return losses, {k: v.copy() for k, v in net.params.items()}

    pooled = run(False)
    routes = blas.routes()
    assert routes and all(r[3] >> 3 == 2 for r in routes), routes
    busy = run(True)
    assert blas.routes() == routes              # the busy step added no route
    assert busy[0] == pooled[0]
    for k, v in pooled[1].items():
        np.testing.assert_array_equal(busy[1][k], v)


@needs_mkl
def test_show_config_says_who_runs_the_gemms(capsys):
    fastfc.set_gemm_backend("mkl")
    with fastfc.threads(2):
        if fastfc.get_num_threads() < 2:
            pytest.skip("fastfc's pool is off (FASTFC_THREADING=blas)")
        fastfc.show_config()
    out = capsys.readouterr().out
    assert "splits its GEMMs (mkl, one thread per part)" in out, out


@pytest.mark.skipif(not HAVE_PRIVATE, reason="no scipy-openblas32 (pip install 'fastfc[openblas]')")
def test_private_openblas_goes_back_to_one_thread_after_a_threadpoolctl_limit():
    """threadpoolctl limits reach every OpenBLAS in the process, fastfc's private copy
    included; a step puts that copy back on one thread (two per call under the pool
    oversubscribe the cores), and the results are those of one thread."""
    from threadpoolctl import threadpool_info, threadpool_limits
    fastfc.set_gemm_backend("openblas-private")
    path = os.path.realpath(_gemm._libs["openblas-private"]["path"])

    def private_threads():
        return [p["num_threads"] for p in threadpool_info()
                if os.path.realpath(p["filepath"]) == path]

    assert private_threads() == [1]
    runs = []
    for limit in (None, 2):
        net, X, y = _sgd_net(512, 256)
        with threadpool_limits(limits=limit):
            if limit is not None:
                assert private_threads() == [2]
            with fastfc.threads(2):
                runs.append([net.train_step(X, y) for _ in range(3)])
            assert private_threads() == [1]
    assert runs[0] == runs[1]


# ------------------------------------------------------------------ a missing MKL

def _no_private():
    raise ImportError("the private OpenBLAS needs the scipy-openblas32 wheel")


def test_missing_mkl(monkeypatch):
    with monkeypatch.context() as mp:      # undone before the mode is restored
        mp.setattr(_gemm, "_mkl_candidates", lambda: [])
        mp.setattr(_gemm, "_libs", {})
        # and no private OpenBLAS either: auto then has SciPy's OpenBLAS alone
        mp.setitem(_gemm._LOADERS, "openblas-private", _no_private)
        _gemm.set_compute_dtype("float32")
        _gemm.set_gemm_backend("openblas")      # MKL's slot may stay filled: use mode 0
        with pytest.raises(ImportError, match=r"pip install 'fastfc\[mkl\]'"):
            fastfc.set_gemm_backend("mkl")
        mp.setattr(blas, "native_bf16", lambda: False)     # nor AVX512-BF16
        mp.setattr(_gemm, "_bf16_gemm", None)
        with pytest.raises(RuntimeError, match="bfloat16.*MKL"):
            fastfc.set_compute_dtype("bfloat16")
        assert fastfc.get_gemm_backend() == "openblas"
        fastfc.set_gemm_backend("auto")         # auto without MKL: OpenBLAS only
        assert blas.get_mode() == 0
        info = _gemm.gemm_info()
        assert info["backends"]["mkl"]["loaded"] is False
        assert "not found" in info["backends"]["mkl"]["why"]
        assert info["bf16"]["available"] is False


def test_env_forcing_a_missing_mkl_warns_and_uses_openblas():
    code = ("import warnings, fastfc\n"
            "from fastfc import _gemm\n"
            "_gemm._mkl_candidates = lambda: []\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    print(fastfc.get_gemm_backend()); print(w[0].message if w else '')\n")
    env = dict(os.environ, FASTFC_GEMM="mkl", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    mode, message = out.stdout.splitlines()[:2]
    assert mode == "openblas"
    assert "FASTFC_GEMM=mkl" in message and "not found" in message


def test_env_bad_value_warns():
    code = "import fastfc\nprint(fastfc.get_gemm_backend())\n"
    env = dict(os.environ, FASTFC_GEMM="cuda", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "openblas"         # the default
    assert "FASTFC_GEMM must be one of" in out.stderr and "using 'openblas'" in out.stderr


def test_default_mode_is_scipys_openblas_and_auto_is_opt_in():
    """Unset FASTFC_GEMM: every product on SciPy's OpenBLAS, whatever else is installed
    (auto's float32 results depend on which backend won the timing: see fastfc._gemm)."""
    code = "import fastfc, numpy as np\nprint(fastfc.get_gemm_backend())\n"
    env = {k: v for k, v in os.environ.items() if k != "FASTFC_GEMM"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "openblas"


_ALONE_CODE = """
import hashlib, sys
import numpy as np
import fastfc
from fastfc import _gemm
if sys.argv[1] == "alone":     # neither extra installed: SciPy's OpenBLAS is all there is
    def _missing():
        raise ImportError("not installed")
    _gemm._mkl_candidates = lambda: []
    _gemm._LOADERS["openblas-private"] = _missing
from fastfc._kernels import blas
from fastfc.net import Net
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 300)).astype(np.float32)
y = rng.integers(0, 10, 256)
net = Net([300, 200, 10], seed=0)
net.set_optimizer("adam", learning_rate=1e-3)
with fastfc.threads(2):
    losses = [net.train_step(X, y) for _ in range(3)]
digest = hashlib.sha256(np.concatenate([v.ravel() for v in net.params.values()]).tobytes())
print(fastfc.get_gemm_backend(), blas.get_mode(), len(blas.routes()))
print(repr(losses), digest.hexdigest())
fastfc.show_config()
"""


def test_auto_without_extras_is_scipys_openblas_exactly(tmp_path):
    """With no other backend installed, auto times nothing, writes no cache and steps
    bit for bit as openblas (the default)."""
    runs = {}
    for label, mode in (("alone", "auto"), ("default", None)):
        env = {k: v for k, v in os.environ.items() if k != "FASTFC_GEMM"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["FASTFC_CACHE_DIR"] = str(tmp_path / label)
        if mode is not None:
            env["FASTFC_GEMM"] = mode
        out = subprocess.run([sys.executable, "-c", _ALONE_CODE, label], capture_output=True,
                             text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        runs[label] = out.stdout.splitlines()
    assert runs["alone"][0] == "auto 0 0"         # auto, kernels on mode 0, no route
    assert runs["default"][0] == "openblas 0 0"
    assert runs["alone"][1] == runs["default"][1]  # the same losses and parameters, bitwise
    assert not (tmp_path / "alone").exists() or not any((tmp_path / "alone").iterdir())
    assert any("only backend installed" in line for line in runs["alone"])


def test_import_loads_no_backend():
    code = ("import fastfc, sys\n"
            "maps = open('/proc/self/maps').read() if sys.platform == 'linux' else ''\n"
            "print('libmkl_rt' in maps, 'fastfc._kernels.blas' in sys.modules)\n")
    env = dict(os.environ, FASTFC_GEMM="mkl", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "False"


# ------------------------------------------------------------------ bfloat16

def _bf16_numpy(x):
    """bf16 bits by the formula: top 16 bits of u + 0x7FFF + ((u >> 16) & 1); NaN quiet."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def _bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _round_bf16(x):
    return _bf16_to_f32(_bf16_numpy(x)).reshape(np.shape(x))


def test_bf16_rounding_against_numpy_formula():
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan,
                        np.finfo(np.float32).max, -np.finfo(np.float32).max,
                        np.finfo(np.float32).tiny, 1e-45, -1e-45,
                        # exact ties: 1 + 2**-8 (to even: down), 1 + 3 * 2**-8 (up)
                        1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20],
                       dtype=np.float32)
    x = np.concatenate([special, rng.standard_normal(10_000).astype(np.float32) * 1e3,
                        rng.integers(0, 2**32, 10_000, dtype=np.uint64)
                        .astype(np.uint32).view(np.float32)])
    out = np.empty(x.shape, np.uint16)
    blas._bf16_round(x, out)
    np.testing.assert_array_equal(out, _bf16_numpy(x))
    back = _bf16_to_f32(out)
    assert back[2] == 1.0 and back[13] == 1.0 and back[14] == 1 + 4 * 2.0**-8
    assert back[15] == 1 + 2 * 2.0**-8          # above the tie: up
    assert np.isinf(back[8]) and back[8] > 0     # float32 max rounds up to infinity
    assert np.isnan(back[6]) and np.isnan(back[7])
    assert np.signbit(back[1])
    finite = np.isfinite(x) & np.isfinite(back) & (np.abs(x) > 1e-30)
    assert np.max(np.abs(back[finite] / x[finite] - 1)) <= 2.0**-8


def test_bf16_rounding_matches_ml_dtypes_when_installed():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32) * 7
    out = np.empty(x.shape, np.uint16)
    blas._bf16_round(x, out)
    np.testing.assert_array_equal(out, x.astype(ml_dtypes.bfloat16).view(np.uint16))


@with_bf16_gemms
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_bf16_products(ta, tb, bf16_gemm):
    a, b = _operands(150, 70, 300, ta, tb, np.float32)
    with fastfc.compute_dtype("bfloat16"):
        got = _product(a, b, ta, tb)
        with fastfc.threads(2):      # outside a step: serial, same numbers
            again = _product(a, b, ta, tb)
    np.testing.assert_array_equal(got, again)
    exact = _expected(_round_bf16(a), _round_bf16(b), ta, tb)   # rounded operands, float64
    assert _rel(got, exact) < 1e-5                # only float32 accumulation differs
    full = _expected(a, b, ta, tb)
    assert 1e-4 < _rel(got, full) < 1e-2          # bf16 shows, within 8 bits' error
    # float64 products never change
    a64, b64 = _operands(40, 30, 20, ta, tb, np.float64)
    with fastfc.compute_dtype("bfloat16"):
        np.testing.assert_allclose(_product(a64, b64, ta, tb), _expected(a64, b64, ta, tb),
                                   rtol=1e-12, atol=1e-12)


def test_bf16_rejects_bad_dtype():
    with pytest.raises(ValueError, match="'float32' or 'bfloat16'"):
        fastfc.set_compute_dtype("float16")


def no_bf16_gemm(mp):
    """As on a machine with neither MKL nor AVX512-BF16 (mp: a monkeypatch context)."""
    def no_mkl(name):
        raise ImportError("MKL was not found (install it with: pip install 'fastfc[mkl]')")
    mp.setattr(_gemm, "_load", no_mkl)
    mp.setattr(blas, "native_bf16", lambda: False)
    mp.setattr(_gemm, "_bf16_gemm", None)


def test_bf16_unavailable_is_a_clear_error(monkeypatch):
    old = _gemm.get_bf16_gemm()
    with monkeypatch.context() as mp:      # undone before the mode is restored
        no_bf16_gemm(mp)
        with pytest.raises(RuntimeError, match=r"dtype 'bfloat16' cannot run here: no "
                                               r"bfloat16 GEMM.*AVX512-BF16.*fastfc\[mkl\]"):
            fastfc.set_compute_dtype("bfloat16")
        assert _gemm._compute_dtype == "float32"
        with pytest.raises(RuntimeError, match="needs a CPU with AVX512-BF16"):
            _gemm.set_bf16_gemm("native")
        with pytest.raises(RuntimeError, match="MKL's bfloat16 GEMM is not available"):
            _gemm.set_bf16_gemm("mkl")
    restore_bf16_gemm(old)


@pytest.mark.parametrize("native,intel,mkl,want", [
    (True, None, True, "native"),       # AMD Zen 4: MKL would emulate
    (True, "AMX", True, "mkl"),         # Intel with AMX: MKL uses it
    (True, "AMX", False, "native"),     # ... unless MKL is missing
    (False, None, True, "mkl"),         # no AVX512-BF16: MKL's emulation
])
def test_auto_picks_the_bf16_gemm(monkeypatch, native, intel, mkl, want):
    old = _gemm.get_bf16_gemm()
    with monkeypatch.context() as mp:
        if not mkl:
            no_bf16_gemm(mp)
        elif not HAVE_MKL:
            pytest.skip("MKL not installed (pip install 'fastfc[mkl]')")
        mp.setattr(blas, "native_bf16", lambda: native)
        mp.setattr(_gemm, "bf16_accelerated", lambda: intel)
        mp.setattr(blas, "set_bf16_gemm", lambda which: 0)     # record the choice only
        assert _gemm._select_bf16("auto") == want
    restore_bf16_gemm(old)


def test_bf16_gemm_setter_checks_its_argument(monkeypatch):
    with pytest.raises(ValueError, match="name must be one of auto, mkl, native, portable"):
        _gemm.set_bf16_gemm("amx")
    old = _gemm.get_bf16_gemm()
    monkeypatch.setenv("FASTFC_BF16_GEMM", "fast")
    with pytest.warns(RuntimeWarning, match="FASTFC_BF16_GEMM must be one of"):
        assert _gemm._env_bf16() == "auto"
    monkeypatch.setenv("FASTFC_BF16_GEMM", "portable")
    assert _gemm._env_bf16() == "portable"
    with pytest.raises(ValueError, match="which must be one of"):
        blas.set_bf16_gemm(7)
    restore_bf16_gemm(old)


def _bits(x):
    return _bf16_numpy(x).reshape(np.shape(x))


@pytest.mark.parametrize("which", ["portable", "native"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k,alpha,beta", [
    (1, 1, 1, 1.0, 0.0),
    (13, 33, 3, 0.5, 1.0),          # one row and one column past a tile, odd k
    (12, 32, 256, 1.0, -2.0),       # one tile, one block of k
    (25, 70, 513, 0.5, 0.0),        # three blocks of k, the last one element
    (200, 45, 600, 1.0, 1.0),       # two blocks of rows (192 per block)
    (3, 2050, 5, 2.0, 0.0),         # two blocks of columns (2048 per block)
    (4, 5, 0, 1.0, 3.0),            # k = 0: C = beta * C
])
def test_fastfcs_bf16_gemm_against_numpy(which, ta, tb, m, n, k, alpha, beta):
    """fastfc's own bf16 GEMM (csrc/bf16_gemm.h) on shapes that cross every edge of its
    tiles and blocks, all four transposes, against the float64 product of the same bf16
    operands: only float32 accumulation differs (1e-5 of the norm).  beta = 0 never reads
    C (NaN there stays out).  The AVX512-BF16 micro-kernel agrees with the portable one
    to float32 rounding: the portable one adds the products in VDPBF16PS's documented
    order (the odd product of a pair, then the even one, each add rounded once), and on
    the AMD Zen 4 development machine the two gave the same bits; the tolerance leaves a
    CPU room to round inside the instruction differently."""
    if which == "native" and not HAVE_NATIVE_BF16:
        pytest.skip("this CPU has no AVX512-BF16 (fastfc's native bf16 GEMM)")
    rng = np.random.default_rng(m * 1000 + n + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    if beta == 0.0:
        c0[0, 0] = np.nan
    c = c0.copy()
    code = blas.BF16_NATIVE if which == "native" else blas.BF16_PORTABLE
    blas._sbgemm(_bits(a), _bits(b), c, ta, tb, alpha, beta, code)
    ra, rb = _round_bf16(a).astype(np.float64), _round_bf16(b).astype(np.float64)
    want = alpha * ((ra.T if ta else ra) @ (rb.T if tb else rb))
    if beta != 0.0:
        want += beta * c0
    assert np.isfinite(c).all()
    assert np.linalg.norm(c - want) <= 1e-5 * max(np.linalg.norm(want), 1e-30)
    if which == "native":
        portable = c0.copy()
        blas._sbgemm(_bits(a), _bits(b), portable, ta, tb, alpha, beta, blas.BF16_PORTABLE)
        assert np.linalg.norm(c - portable) <= 1e-6 * max(np.linalg.norm(portable), 1e-30)


def test_fastfcs_bf16_gemm_checks_shapes():
    a, b = np.zeros((3, 4), np.uint16), np.zeros((5, 6), np.uint16)
    with pytest.raises(ValueError, match="agree on k"):
        blas._sbgemm(a, b, np.zeros((3, 6), np.float32))
    with pytest.raises(ValueError, match="c's columns"):
        blas._sbgemm(a, b.T.copy(), np.zeros((3, 6), np.float32))


def test_bf16_gemms_give_the_same_net_steps(monkeypatch):
    """A pooled bf16 Net step on fastfc's AVX512-BF16 GEMM agrees with the portable
    kernel's (the pool's split only partitions C; see the test above for why not bit for
    bit on every CPU), and on MKL's within bf16 noise."""
    runs = {}
    old = _gemm.get_bf16_gemm()
    for name in BF16_GEMMS:
        if (name == "native" and not HAVE_NATIVE_BF16) or (name == "mkl" and not HAVE_MKL):
            continue
        _gemm.set_bf16_gemm(name)
        net, X, y = _sgd_net(300, 256)
        with fastfc.threads(2), fastfc.compute_dtype("bfloat16"):
            runs[name] = ([net.train_step(X, y) for _ in range(3)], net.params["W1"].copy())
    restore_bf16_gemm(old)
    if "native" in runs:
        np.testing.assert_allclose(runs["native"][0], runs["portable"][0], rtol=1e-5)
        np.testing.assert_allclose(runs["native"][1], runs["portable"][1], rtol=1e-4,
                                   atol=1e-6)
    if "mkl" in runs:
        np.testing.assert_allclose(runs["mkl"][0], runs["portable"][0], rtol=1e-3)


def _bf16_net(seed=3, normalization="batchnorm"):
    """A net whose parameters and inputs are bf16 numbers (first GEMMs exact in bf16)."""
    net = Net([200, 128, 64, 10], seed=seed, reg=1e-3, normalization=normalization)
    net.params = {k: _round_bf16(v) for k, v in net.params.items()}
    rng = np.random.default_rng(seed)
    X = _round_bf16(rng.standard_normal((64, 200)).astype(np.float32))
    return net, X, rng.integers(0, 10, 64)


@with_bf16_gemms
def test_bf16_net_gradients_against_float32(bf16_gemm):
    """Loss and gradients of a bf16 step against float32 on the same bf16-valued inputs
    and weights: the loss within 1%, each gradient's relative norm error within 3% (the
    hidden activations and upstream gradients are rounded: 2**-8 each at most, through
    two layers).  No batch norm here: it makes the biases before it have a gradient of
    zero, which only rounding noise fills (their relative error means nothing)."""
    net, X, y = _bf16_net(normalization=None)
    loss32, grads32 = net.loss(X, y)
    with fastfc.compute_dtype("bfloat16"):
        loss16, grads16 = net.loss(X, y)
    assert abs(loss16 - loss32) <= 1e-2 * abs(loss32)
    for k in grads32:
        err = _rel(grads16[k], grads32[k].astype(np.float64))
        assert err < 3e-2, (k, err)
    # and it is not float32 in disguise
    assert any(not np.array_equal(grads16[k], grads32[k]) for k in grads32 if k.startswith("W"))


@with_bf16_gemms
def test_bf16_training_keeps_float32_masters_and_resumes_exactly(tmp_path, bf16_gemm):
    net, X, y = _bf16_net()
    net.set_optimizer("sgd_momentum", learning_rate=1e-2)
    with fastfc.compute_dtype("bfloat16"):
        for _ in range(3):
            net.train_step(X, y)
        assert all(v.dtype == np.float32 for v in net.params.values())
        # masters are float32: an update smaller than bf16's spacing is kept
        assert any(not np.array_equal(v, _round_bf16(v)) for v in net.params.values())
        net.save(tmp_path / "net.npz")
        twin = Net.load(tmp_path / "net.npz")
        for k, v in net.params.items():
            np.testing.assert_array_equal(twin.params[k], v)
        net.set_optimizer("sgd", learning_rate=1e-2)
        twin.set_optimizer("sgd", learning_rate=1e-2)
        a = [net.train_step(X, y) for _ in range(3)]
        b = [twin.train_step(X, y) for _ in range(3)]
    assert a == b
    for k, v in net.params.items():
        np.testing.assert_array_equal(twin.params[k], v)


# ------------------------------------------------------------------ threads

@needs_mkl
def test_thread_counts_seen_by_others_do_not_change():
    """A pooled MKL step leaves OpenBLAS's count and MKL's process-wide count alone, as
    seen from another thread while the step runs and after it."""
    from threadpoolctl import threadpool_info
    mkl = _gemm._libs["mkl"]["handle"]
    mkl.MKL_Get_Max_Threads.restype = int

    def counts():
        return ([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
                 and "openblas" in lib["internal_api"]], mkl.MKL_Get_Max_Threads())

    before = counts()
    fastfc.set_gemm_backend("mkl")
    net, X, y = _sgd_net(1024, 512)
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(mkl.MKL_Get_Max_Threads())

    w = threading.Thread(target=watch)
    w.start()
    try:
        with fastfc.threads(2):
            for _ in range(5):
                net.train_step(X, y)
            with fastfc.compute_dtype("bfloat16"):
                for _ in range(3):
                    net.train_step(X, y)
    finally:
        stop.set()
        w.join()
    assert counts() == before
    assert seen and set(seen) == {before[1]}
    if _gemm._libs["mkl"]["threading"] == "sequential" and sys.platform == "linux":
        # MKL's sequential layer: not its OpenMP runtime beside OpenBLAS's threads
        maps = open("/proc/self/maps").read()
        assert "libmkl_sequential" in maps
        assert "libiomp5" not in maps      # (libgomp may come from torch or sklearn)


# ------------------------------------------------------------------ reporting and CLI

def test_show_config_lists_backends(capsys):
    cfg = fastfc.show_config(mode="dicts")
    g = cfg["kernels"]["gemm"]
    assert g["mode"] == _gemm._mode_name
    assert g["backends"]["openblas"]["loaded"] is True
    assert "OpenBLAS" in g["backends"]["openblas"]["version"]
    assert g["backends"]["mkl"]["loaded"] is HAVE_MKL
    assert g["bf16"]["cpu_isa"] == _gemm.bf16_isa()
    assert (g["bf16"]["gemm"], g["bf16"]["accelerated"]) == _gemm._bf16_plan()
    assert g["bf16"]["accelerated"] in (None, "AVX512-BF16", g["bf16"]["cpu_isa"])
    if HAVE_NATIVE_BF16 and _gemm.bf16_accelerated() is None:   # fastfc's own is used
        assert g["bf16"]["gemm"] == "native" and g["bf16"]["accelerated"] == "AVX512-BF16"
    fastfc.show_config()
    text = capsys.readouterr().out
    assert "GEMM backends" in text and "bfloat16" in text


def test_cli_gemm_options():
    from argparse import Namespace
    from fastfc import _cli_train
    _cli_train._gemm_options(Namespace(gemm="openblas", compute_dtype=None))
    assert fastfc.get_gemm_backend() == "openblas"
    if not HAVE_MKL and not HAVE_NATIVE_BF16:
        with pytest.raises(_cli_train.BadOption, match="bfloat16"):
            _cli_train._gemm_options(Namespace(gemm=None, compute_dtype="bfloat16"))
    elif not HAVE_MKL:
        _cli_train._gemm_options(Namespace(gemm=None, compute_dtype="bfloat16"))
        assert _gemm._compute_dtype == "bfloat16" and _gemm.get_bf16_gemm() == "native"
    else:
        _cli_train._gemm_options(Namespace(gemm="mkl", compute_dtype="bfloat16"))
        assert _gemm._compute_dtype == "bfloat16"
