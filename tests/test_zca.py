"""ZCA whitening: the formula against NumPy, identity covariance, the CIFAR-10 option."""
import pickle

import numpy as np
import pytest

from fastfc.data_utils import ZCAWhitening, get_CIFAR10_data


def correlated(n=400, d=6, seed=0, dtype=np.float64):
    """Correlated features with a nonzero mean (a well-conditioned mixing)."""
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.4 * rng.standard_normal((d, d))
    X = rng.standard_normal((n, d)) @ mix + rng.standard_normal(d) * 3
    return X.astype(dtype)


def numpy_zca(X, eps):
    """W = U diag(1 / sqrt(s + eps)) U^T from NumPy's eigh of the population covariance."""
    mean = X.mean(axis=0)
    C = (X - mean).T @ (X - mean) / X.shape[0]
    s, U = np.linalg.eigh(C)
    return mean, (U / np.sqrt(np.maximum(s, 0) + eps)) @ U.T, s


@pytest.mark.parametrize("eps", [1e-6, 0.1, 3.0])
def test_matrix_is_the_formula(eps):
    X = correlated()
    z = ZCAWhitening(epsilon=eps).fit(X)
    mean, W, s = numpy_zca(X, eps)
    np.testing.assert_allclose(z.mean_, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z.matrix_, W, rtol=1e-9, atol=1e-9 * np.abs(W).max())
    np.testing.assert_allclose(z.explained_variance_, s[::-1], rtol=1e-9, atol=1e-12)
    # components_ are orthonormal rows diagonalising the covariance
    U = z.components_.T
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(U @ np.diag(z.explained_variance_) @ U.T,
                               np.cov(X, rowvar=False, bias=True), atol=1e-10)


def test_whitened_training_data_has_the_regularised_identity_covariance():
    X = correlated(n=1000, d=8, seed=1)
    for eps in (1e-9, 0.5):
        z = ZCAWhitening(epsilon=eps)
        Z = z.fit_transform(X)
        U, s = z.components_.T, z.explained_variance_
        np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
        cov = np.cov(Z, rowvar=False, bias=True)
        np.testing.assert_allclose(cov, (U * (s / (s + eps))) @ U.T, atol=1e-10)
        if eps < 1e-6:
            np.testing.assert_allclose(cov, np.eye(8), atol=1e-6 / s.min())
        else:
            assert np.all(np.diag(cov) < 1 - 1e-3)   # damped, not whitened fully


def test_transform_is_centred_product_and_applies_to_new_data():
    X = correlated(seed=2)
    Y = correlated(n=50, seed=3)
    z = ZCAWhitening(epsilon=0.01).fit(X)
    mean, W, _ = numpy_zca(X, 0.01)
    np.testing.assert_allclose(z.transform(Y), (Y - mean) @ W, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(z.transform(X), z.fit_transform(X), rtol=0, atol=0)
    np.testing.assert_allclose(z.inverse_transform(z.transform(Y)), Y, atol=1e-9)


def test_matrix_is_exactly_symmetric_and_the_fit_deterministic():
    X = correlated(n=300, d=20, seed=4, dtype=np.float32)
    a = ZCAWhitening(epsilon=0.1).fit(X)
    b = ZCAWhitening(epsilon=0.1).fit(X)
    assert a.matrix_.dtype == np.float32
    np.testing.assert_array_equal(a.matrix_, a.matrix_.T)
    np.testing.assert_array_equal(a.matrix_, b.matrix_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_float32_agrees_with_float64():
    X = correlated(n=2000, d=30, seed=5)
    z64 = ZCAWhitening(epsilon=0.05).fit(X)
    z32 = ZCAWhitening(epsilon=0.05).fit(X.astype(np.float32))
    Z32 = z32.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, z64.transform(X), rtol=1e-3, atol=1e-3)
    # dtype=float64 on float32 data: float64 arithmetic, float32 output
    z = ZCAWhitening(epsilon=0.05, dtype=np.float64).fit(X.astype(np.float32))
    assert z.matrix_.dtype == np.float64


def test_blocks_of_rows_give_the_same_result(monkeypatch):
    from fastfc import data_utils
    X = correlated(n=1000, d=5, seed=6)
    whole = ZCAWhitening(epsilon=0.1).fit(X)
    Z = whole.transform(X)
    monkeypatch.setattr(data_utils, "_ZCA_BLOCK_ROWS", 64)
    blocked = ZCAWhitening(epsilon=0.1).fit(X)
    np.testing.assert_allclose(blocked.matrix_, whole.matrix_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked.transform(X), Z, rtol=1e-10, atol=1e-12)


def test_n_fit_uses_evenly_spaced_rows():
    X = correlated(n=1000, d=5, seed=7)
    z = ZCAWhitening(epsilon=0.1, n_fit=100).fit(X)
    assert z.n_samples_fit_ == 100
    mean, W, _ = numpy_zca(X[np.arange(100) * 10], 0.1)
    np.testing.assert_allclose(z.matrix_, W, rtol=1e-9, atol=1e-9)
    assert ZCAWhitening(epsilon=0.1, n_fit=5000).fit(X).n_samples_fit_ == 1000


def test_out_buffer_and_integer_input():
    X = np.random.default_rng(8).integers(0, 256, size=(200, 4)).astype(np.uint8)
    z = ZCAWhitening(epsilon=1.0).fit(X)
    Z = z.transform(X)
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z, (X - X.mean(0)) @ numpy_zca(X.astype(float), 1.0)[1],
                               rtol=1e-9, atol=1e-9)
    out = np.empty((200, 4), np.float32)
    assert z.transform(X, out=out) is out
    np.testing.assert_allclose(out, Z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(epsilon=0), ValueError, "epsilon must be > 0"),
    (dict(epsilon=-1.0), ValueError, "epsilon must be > 0"),
    (dict(epsilon=float("nan")), ValueError, "epsilon must be finite"),
    (dict(epsilon="a"), TypeError, "epsilon must be a real number"),
    (dict(n_fit=1), ValueError, "n_fit must be >= 2"),
    (dict(n_fit=2.5), TypeError, "n_fit must be an integer"),
    (dict(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
])
def test_bad_settings(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ZCAWhitening(**kwargs)


def test_bad_data():
    z = ZCAWhitening()
    with pytest.raises(ValueError, match="2-D"):
        z.fit(np.zeros(10))
    with pytest.raises(ValueError, match="at least 2 rows"):
        z.fit(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        z.fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]))
    with pytest.raises(TypeError, match="numeric"):
        z.fit(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        z.transform(np.zeros((2, 3)))
    z.fit(correlated(d=3))
    with pytest.raises(ValueError, match="has 4 features per row but .* fitted on 3"):
        z.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="out must be"):
        z.transform(np.zeros((2, 3)), out=np.zeros((3, 3)))
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="overlap"):
        z.transform(X, out=X)


# ---- get_CIFAR10_data(whiten='zca') on a small synthetic CIFAR directory --------------

def write_cifar(directory, rng, per_batch=40, test_n=30):
    directory.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test_n)]:
        rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(directory / name, "wb") as f:
            pickle.dump({"data": rows, "labels": [int(v) for v in rng.integers(0, 10, n)]}, f)


class SpyZCA(ZCAWhitening):
    """Records how get_CIFAR10_data uses the whitening; a cheap fixed matrix instead of
    an eigendecomposition of 3072 x 3072 (the real fit is checked once, below)."""

    made = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fitted_on = None
        SpyZCA.made.append(self)

    def fit(self, X):
        self.fitted_on = X.copy()
        d = X.shape[1]
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        rng = np.random.default_rng(0)
        self.matrix_ = (np.eye(d) + 0.01 * rng.standard_normal((d, d))).astype(X.dtype)
        self.n_features_in_ = d
        return self


@pytest.fixture
def spy(monkeypatch):
    from fastfc import data_utils
    SpyZCA.made = []
    monkeypatch.setattr(data_utils, "ZCAWhitening", SpyZCA)
    return SpyZCA


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory):
    d = tmp_path_factory.mktemp("zca") / "cifar-10-batches-py"
    write_cifar(d, np.random.default_rng(0))
    return d


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("flatten", [True, False])
def test_cifar_zca_wiring(small_cifar, spy, dtype, flatten):
    """Fitted on the standardised training split only, applied to all three splits."""
    kw = dict(num_training=150, num_validation=20, num_test=25, cifar10_dir=small_cifar,
              dtype=dtype, flatten=flatten, standardize=True)
    plain = get_CIFAR10_data(**kw)
    data = get_CIFAR10_data(**kw, whiten="zca", zca_epsilon=0.2, zca_n_fit=77,
                            return_stats=True)
    z = spy.made[-1]
    assert (z.epsilon, z.n_fit, z.dtype) == (0.2, 77, np.dtype(dtype))
    np.testing.assert_array_equal(z.fitted_on, plain["X_train"].reshape(150, -1))
    for split in ("train", "val", "test"):
        X, P = data[f"X_{split}"], plain[f"X_{split}"]
        assert X.dtype == dtype and X.shape == P.shape
        want = (P.reshape(P.shape[0], -1) - z.mean_.astype(dtype)) @ z.matrix_
        np.testing.assert_array_equal(X.reshape(P.shape[0], -1), want)
        np.testing.assert_array_equal(data[f"y_{split}"], plain[f"y_{split}"])
    assert data["zca_matrix"] is z.matrix_ and data["zca_mean"] is z.mean_


@pytest.mark.parametrize("whiten", ["zca", None])
@pytest.mark.parametrize("subtract_mean, standardize", [(True, False), (False, False),
                                                         (True, True)])
def test_cifar_zca_follows_every_normalisation(small_cifar, spy, whiten, subtract_mean,
                                               standardize):
    kw = dict(num_training=100, num_validation=10, num_test=10, cifar10_dir=small_cifar,
              subtract_mean=subtract_mean, standardize=standardize, flatten=True)
    plain = get_CIFAR10_data(**kw)
    data = get_CIFAR10_data(**kw, whiten=whiten)
    if whiten is None:
        for k in plain:
            np.testing.assert_array_equal(plain[k], data[k])
    else:
        np.testing.assert_array_equal(spy.made[-1].fitted_on, plain["X_train"])


def test_cifar_whiten_off_is_bit_identical(small_cifar):
    kw = dict(num_training=100, num_validation=10, num_test=10, cifar10_dir=small_cifar,
              standardize=True, return_stats=True)
    a = get_CIFAR10_data(**kw)
    for off in (None, "none"):
        b = get_CIFAR10_data(**kw, whiten=off, zca_epsilon=5.0, zca_n_fit=3)
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.slow
def test_cifar_zca_real_fit_whitens(small_cifar):
    """One real 3072 x 3072 fit: W^2 (C + eps I) = I (on probe vectors), and the stats
    repeat the transform."""
    eps = 0.5
    kw = dict(num_training=150, num_validation=20, num_test=25, cifar10_dir=small_cifar,
              dtype=np.float32, flatten=True, standardize=True)
    plain = get_CIFAR10_data(**kw)
    data = get_CIFAR10_data(**kw, whiten="zca", zca_epsilon=eps, return_stats=True)
    W = data["zca_matrix"].astype(np.float64)
    np.testing.assert_array_equal(data["zca_matrix"], data["zca_matrix"].T)
    X = plain["X_train"].astype(np.float64)
    Xc = X - X.mean(axis=0)
    C = Xc.T @ Xc / X.shape[0]
    V = np.random.default_rng(1).standard_normal((3072, 16))   # probe vectors
    np.testing.assert_allclose(W @ (W @ (C @ V + eps * V)), V, atol=2e-3)
    # the returned stats repeat the whole transform on raw images
    raw = get_CIFAR10_data(**{**kw, "standardize": False}, subtract_mean=False)["X_test"]
    again = ((raw.astype(np.float64) - data["mean"]) / data["std"] - data["zca_mean"]) @ W
    np.testing.assert_allclose(again, data["X_test"], rtol=2e-3, atol=2e-3)


def test_cifar_bad_whiten_options(small_cifar):
    kw = dict(num_training=120, num_validation=10, num_test=10, cifar10_dir=small_cifar)
    with pytest.raises(ValueError, match="whiten must be None, 'none' or 'zca'"):
        get_CIFAR10_data(**kw, whiten="pca")
    with pytest.raises(ValueError, match="whiten must be"):
        get_CIFAR10_data(**kw, whiten=True)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        get_CIFAR10_data(**kw, whiten="zca", zca_epsilon=0)
    with pytest.raises(ValueError, match="n_fit must be >= 2"):
        get_CIFAR10_data(**kw, zca_n_fit=1)
