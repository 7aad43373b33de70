"""Shared fixtures: the float dtypes, their tolerances, and hypothesis profiles."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Relative-error tolerances per dtype for results that go through a kernel and are
# compared with a NumPy formula computed in the same dtype (SPEC.md gives the float64
# reference tolerances; float32 carries about 7 significant digits).
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-14}

settings.register_profile(
    "ci", max_examples=300, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """Each kernel test runs once per float dtype."""
    return request.param


@pytest.fixture
def tol(dtype):
    """dict(rtol=..., atol=...) for np.testing.assert_allclose at this dtype."""
    return {"rtol": RTOL[dtype], "atol": ATOL[dtype]}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _private_gemm_cache(tmp_path_factory):
    """The GEMM route cache of a test run lives in a temporary folder: tests neither read
    the user's timings (~/.cache/fastfc) nor leave theirs behind."""
    if "FASTFC_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["FASTFC_CACHE_DIR"] = str(tmp_path_factory.mktemp("fastfc-cache"))
    try:
        yield
    finally:
        os.environ.pop("FASTFC_CACHE_DIR", None)
