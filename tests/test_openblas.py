"""SciPy's OpenBLAS seen from fastfc (fastfc/_openblas.py): nothing happens at import,
the core-type hint is only a hint, the thread count is read, never written."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastfc import _openblas


@pytest.fixture
def zen5(monkeypatch):
    """A Zen 5 CPU with every AVX-512 extension, on Linux x86-64, no user setting."""
    flags = {"avx2", "fma"} | _openblas._AVX512
    monkeypatch.setattr(_openblas, "_cpuinfo", lambda: ("AuthenticAMD", 0x1A, flags))
    monkeypatch.setattr(_openblas.sys, "platform", "linux")
    monkeypatch.setattr(_openblas.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)


def test_zen5_gets_the_skylakex_hint(zen5):
    assert _openblas.suggested_coretype() == "SkylakeX"


def test_the_users_coretype_wins(zen5, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert _openblas.suggested_coretype() is None


@pytest.mark.parametrize("vendor, family, drop", [
    ("AuthenticAMD", 0x19, set()),            # Zen 4: OpenBLAS knows it
    ("GenuineIntel", 6, set()),               # Intel: OpenBLAS knows its AVX-512 parts
    ("AuthenticAMD", 0x1A, {"avx512bw"}),     # missing an extension the kernels use
])
def test_no_hint_elsewhere(zen5, monkeypatch, vendor, family, drop):
    flags = ({"avx2"} | _openblas._AVX512) - drop
    monkeypatch.setattr(_openblas, "_cpuinfo", lambda: (vendor, family, flags))
    assert _openblas.suggested_coretype() is None


def test_show_config_prints_the_hint_and_sets_nothing(zen5):
    import fastfc
    import threadpoolctl  # noqa: F401  (sets KMP_DUPLICATE_LIB_OK at its own import)
    before = dict(os.environ)
    cfg = fastfc.show_config(mode="dicts")
    assert cfg["blas"]["coretype_suggested"] == "SkylakeX"
    assert cfg["blas"]["coretype_env"] is None
    assert dict(os.environ) == before


_IMPORT_PROBE = """
import json, os, sys, threading
env, threads = dict(os.environ), threading.active_count()
import fastfc
from fastfc import _openblas
from fastfc._kernels import blas
print(json.dumps({"env_same": dict(os.environ) == env,
                  "threads_before": threads, "threads_after": threading.active_count(),
                  "handle": _openblas._handle is None,
                  "connected": _openblas._connected,
                  "thread_control": blas.pool_info()["thread_control"]}))
"""


@pytest.mark.parametrize("zen5_env", [False, True])
def test_import_changes_nothing(zen5_env):
    """`import fastfc` leaves os.environ alone, starts no thread, opens no library."""
    import json
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("FASTFC_THREADING", None)
    if zen5_env:
        env["FASTFC_OPENBLAS_CORETYPE"] = "SkylakeX"    # the old switch: ignored now
    res = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["env_same"] is True
    assert out["threads_after"] == out["threads_before"]
    assert out["handle"] is True and out["connected"] is False
    assert out["thread_control"] is False


def test_kernels_work():
    from fastfc._kernels import blas
    a = np.random.default_rng(0).standard_normal((50, 40)).astype(np.float32)
    c = np.empty((50, 50), dtype=np.float32)
    blas._gemm(a, a, c, trans_b=True)
    np.testing.assert_allclose(c, a @ a.T, rtol=1e-4, atol=1e-4)
