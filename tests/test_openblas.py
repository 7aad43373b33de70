"""The OpenBLAS core-type choice made at import (fastfc/_openblas.py)."""
import numpy as np
import pytest

from fastfc import _openblas


@pytest.fixture
def zen5(monkeypatch):
    flags = {"avx2", "fma"} | _openblas._AVX512
    monkeypatch.setattr(_openblas, "_cpuinfo", lambda: ("AuthenticAMD", 0x1A, flags))
    monkeypatch.setattr(_openblas.sys, "platform", "linux")
    monkeypatch.setattr(_openblas.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("FASTFC_OPENBLAS_CORETYPE", raising=False)


def test_zen5_with_avx512_gets_the_avx512_kernels(zen5):
    assert _openblas._wanted() == "SkylakeX"


def test_the_users_choice_wins(zen5, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert _openblas._wanted() is None
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setenv("FASTFC_OPENBLAS_CORETYPE", "keep")
    assert _openblas._wanted() is None
    monkeypatch.setenv("FASTFC_OPENBLAS_CORETYPE", "Zen")
    assert _openblas._wanted() == "Zen"


@pytest.mark.parametrize("vendor, family, drop", [
    ("AuthenticAMD", 0x19, set()),            # Zen 4: OpenBLAS knows it
    ("GenuineIntel", 6, set()),               # Intel: OpenBLAS knows its AVX-512 parts
    ("AuthenticAMD", 0x1A, {"avx512bw"}),     # missing an extension the kernels use
])
def test_left_alone_elsewhere(zen5, monkeypatch, vendor, family, drop):
    flags = ({"avx2"} | _openblas._AVX512) - drop
    monkeypatch.setattr(_openblas, "_cpuinfo", lambda: (vendor, family, flags))
    assert _openblas._wanted() is None


def test_configure_is_a_no_op_once_blas_is_loaded(zen5):
    import scipy.linalg.cython_blas  # noqa: F401  (already loaded by fastfc's kernels)
    before = _openblas.chosen
    assert _openblas.configure() == before
    assert "OPENBLAS_CORETYPE" not in _openblas.os.environ


def test_kernels_work_whatever_was_chosen():
    from fastfc._kernels import blas
    a = np.random.default_rng(0).standard_normal((50, 40)).astype(np.float32)
    c = np.empty((50, 50), dtype=np.float32)
    blas._gemm(a, a, c, trans_b=True)
    np.testing.assert_allclose(c, a @ a.T, rtol=1e-4, atol=1e-4)
