"""Worked examples of the seed homework, verified with fastfc.gradient_check.GradientCheck.

Each model follows the CS231n contract (``params`` dict, ``loss(X, y) -> (loss, grads)``)
and carries a hand-derived analytic gradient, written out in its docstring:

1. the tied-weight linear autoencoder   L(W) = 1/(2N) sum_n ||W^T W x_n - x_n||^2;
2. the GP-LVM negative log-likelihood   L(X) = D/2 ln|K| + 1/2 tr(K^-1 Y Y^T) + ND/2 ln 2pi,
   K = RBF(X) + sigma^2 I, differentiated with respect to the latent X (and K);
3. a two-layer Swish network with softmax loss, once on fastfc.layers and once in NumPy.

Each check runs in float64 and must give a max relative error below ``TOL`` for every
name.  Each model also has a deliberately wrong "textbook slip" variant, so that every
check is shown able to fail.  The last section covers the parts of GradientCheck that
tests/test_gradient_check.py does not: the ``loss_and_input_grad`` path, the 'X' row of
the table and of the returned dict, the ValueError when no input gradient exists, and
models that check themselves on a float64 copy via ``astype``.

Tolerance.  With h = 1e-5 the centred difference has truncation error ~ h^2 |f'''| / 6
~ 1e-11 and rounding error ~ eps |L| / h ~ 1e-11 |L|; relative to gradients of order
1e-2 .. 1 this gives relative errors of 1e-10 .. 1e-8 on these small, well-scaled
problems (measured worst case over this file: 7e-9, the W2 of the Swish net; the other
checks are noted by each test).  ``TOL = 1e-7`` leaves a margin of more than 10 for
BLAS/LAPACK rounding differences, while every wrong formula below is off by 0.3 or more.
"""
import numpy as np
import pytest

from fastfc import layers as L
from fastfc.gradient_check import GradientCheck, rel_error

TOL = 1e-7          # max relative error of a correct analytic gradient (see above)
WRONG = 1e-2        # a wrong derivation must be reported at least this far off


def _check(model, X, y=None, **kw):
    """Run a silent GradientCheck and return its {name: max relative error}."""
    return GradientCheck(model, verbose=False, **kw).run(X, y)


def _assert_all_below(errors, tol=TOL):
    for name, err in errors.items():
        assert err < tol, f"{name}: max relative error {err:.3e} >= {tol:.0e}"


def _assert_close(actual, expected, rtol=1e-12):
    """Equal to ``rtol`` relative to the array's scale (entries near 0 included)."""
    expected = np.asarray(expected, dtype=np.float64)
    atol = rtol * max(float(np.max(np.abs(expected))), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# ==================================================================================
# 1. Tied-weight linear autoencoder
# ==================================================================================

class TiedAutoencoder:
    r"""Linear autoencoder with tied weights: encode h = W x, decode x_hat = W^T h.

    params: W of shape (k, d).  loss(X, y=None) with X of shape (N, d), one sample x_n
    per row; the loss is the MEAN over samples (not the sum)::

        r_n = W^T W x_n - x_n                          (residual, shape (d,))
        L   = 1/(2N) sum_n ||r_n||^2

    Gradient with respect to W.  For one sample, dr = (dW^T W + W^T dW) x, so
        dL = r^T dr = r^T dW^T (W x) + (W r)^T dW x
           = <dW, W x r^T> + <dW, W r x^T>            (<A, B> = tr(A^T B))
    hence dL/dW = W (x r^T + r x^T); over the batch, with R the (N, d) matrix of r_n^T:
        dL/dW = (1/N) W (X^T R + R^T X).

    Gradient with respect to the input.  r = (W^T W - I) x, and W^T W - I is symmetric:
        dL/dx_n = (1/N) (W^T W - I)^T r_n = (1/N) (W^T W - I) r_n,
    i.e. dL/dX = (1/N) R (W^T W - I).

    ``input_grad``: 'grads' puts dL/dX under grads['X']; 'method' offers it only through
    ``loss_and_input_grad(X, y)``; None gives no input gradient at all.
    ``wrong``: 'W' uses the slip dL/dW = 2 W x r^T (as if x r^T were symmetric);
    'X' uses the slip dL/dx = (W^T W - I) x (the residual instead of its back-projection).
    """

    def __init__(self, k=3, d=5, seed=0, input_grad="grads", wrong=None):
        rng = np.random.default_rng(seed)
        self.params = {"W": 0.6 * rng.standard_normal((k, d))}
        self.input_grad = input_grad
        self.wrong = wrong

    def _forward_backward(self, X):
        W = self.params["W"]
        X = np.asarray(X, dtype=W.dtype)
        N, d = X.shape
        M = W.T @ W - np.eye(d)            # W^T W - I, symmetric
        R = X @ M                          # rows r_n^T = x_n^T (W^T W - I)^T
        loss = 0.5 * np.sum(R * R) / N
        if self.wrong == "W":
            dW = 2.0 * W @ (X.T @ R) / N
        else:
            dW = W @ (X.T @ R + R.T @ X) / N
        dX = (X if self.wrong == "X" else R) @ M / N
        return loss, {"W": dW}, dX

    def loss(self, X, y=None):
        loss, grads, dX = self._forward_backward(X)
        if self.input_grad == "grads":
            grads["X"] = dX
        return loss, grads

    def __getattr__(self, name):
        # loss_and_input_grad exists only when input_grad == 'method'
        if name == "loss_and_input_grad" and self.__dict__.get("input_grad") == "method":
            def loss_and_input_grad(X, y=None):
                loss, _, dX = self._forward_backward(X)
                return loss, dX
            return loss_and_input_grad
        raise AttributeError(name)


def _ae_data(N=7, d=5, seed=1):
    return np.random.default_rng(seed).standard_normal((N, d))


def test_autoencoder_loss_is_the_mean_half_squared_reconstruction_error():
    model = TiedAutoencoder()
    X = _ae_data()
    W = model.params["W"]
    expected = np.mean([0.5 * np.sum((W.T @ (W @ x) - x) ** 2) for x in X])
    assert model.loss(X)[0] == pytest.approx(expected, rel=1e-13)


def test_autoencoder_gradient_matches_per_sample_formula():
    """The batched dW equals the mean of the per-sample W (x r^T + r x^T)."""
    model = TiedAutoencoder()
    X = _ae_data()
    W = model.params["W"]
    per_sample = []
    for x in X:
        r = W.T @ W @ x - x
        per_sample.append(W @ (np.outer(x, r) + np.outer(r, x)))
    _assert_close(model.loss(X)[1]["W"], np.mean(per_sample, axis=0))


@pytest.mark.parametrize("input_grad", ["grads", "method"])
def test_autoencoder_gradient_check(input_grad):
    # measured: W 2e-10, X 1e-9
    model = TiedAutoencoder(input_grad=input_grad)
    errors = _check(model, _ae_data(), check_input=True)
    assert list(errors) == ["W", "X"]
    _assert_all_below(errors)


@pytest.mark.parametrize("k, d", [(1, 4), (4, 4), (2, 6)])
def test_autoencoder_gradient_check_shapes(k, d):
    """k = 1 (rank one), k = d (square W) and k < d, each with N = 1 and N = 6.
    measured: up to 5e-9 (X, k=2, d=6, N=6)."""
    model = TiedAutoencoder(k=k, d=d, seed=k + d)
    for N in (1, 6):
        _assert_all_below(_check(model, _ae_data(N=N, d=d, seed=N), check_input=True))


@pytest.mark.parametrize("wrong", ["W", "X"])
def test_autoencoder_wrong_derivation_is_caught(wrong):
    model = TiedAutoencoder(wrong=wrong)
    errors = _check(model, _ae_data(), check_input=True)
    assert errors[wrong] > WRONG
    other = "X" if wrong == "W" else "W"
    assert errors[other] < TOL


def test_autoencoder_gradient_vanishes_at_pca_solution_and_along_rotations():
    """Two consequences of the formula that do not involve finite differences.

    * W with orthonormal rows and data inside its row space: r = 0, so dL/dW = 0.
    * L(QW) = L(W) for orthogonal Q, so the gradient is orthogonal to the tangent
      directions A W (A antisymmetric): <dL/dW, A W> = 0.
    """
    rng = np.random.default_rng(3)
    k, d = 2, 5
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    model = TiedAutoencoder(k=k, d=d)
    model.params["W"] = Q.T                       # orthonormal rows
    X = rng.standard_normal((6, k)) @ Q.T         # samples in the row space
    loss, grads = model.loss(X)
    assert loss < 1e-28
    np.testing.assert_allclose(grads["W"], 0.0, atol=1e-14)

    model = TiedAutoencoder(k=3, d=5, seed=4)
    loss, grads = model.loss(_ae_data())
    B = rng.standard_normal((3, 3))
    A = B - B.T
    W = model.params["W"]
    assert abs(np.sum(grads["W"] * (A @ W))) < 1e-12 * np.abs(grads["W"]).sum() * np.abs(A @ W).max()


# ==================================================================================
# 2. GP-LVM: gradient of the log-likelihood with respect to the latent X
# ==================================================================================

class GPLVM:
    r"""Negative log-likelihood of a GP-LVM, as a function of the latent positions X.

    params: X of shape (n, q) (the latent positions).  loss(Y, y=None) with Y of shape
    (n, D) the observed data (fixed).  With the RBF kernel (fixed length-scale l and noise
    sigma^2)::

        k_ij = exp(-||x_i - x_j||^2 / (2 l^2)),      K = k + sigma^2 I
        ln p(Y | X) = -D/2 ln|K| - 1/2 tr(K^-1 Y Y^T) - nD/2 ln 2pi
        L = -ln p(Y | X)

    Step 1, dL/dK (K^-1 symmetric; d ln|K| = tr(K^-1 dK), d K^-1 = -K^-1 dK K^-1):
        G = dL/dK = 1/2 (D K^-1 - K^-1 Y Y^T K^-1)         (symmetric)

    Step 2, chain rule through the RBF: dk_ij = -k_ij (x_i - x_j)^T (dx_i - dx_j) / l^2,
    so with dL = sum_ij G_ij dk_ij, x_m receives one term from row m and one from
    column m, equal by symmetry of G and k:
        dL/dx_m = -(2 / l^2) sum_j G_mj k_mj (x_m - x_j)
    i.e. with A = G * k (elementwise):  dL/dX = -(2 / l^2) (diag(A 1) X - A X).

    ``wrong='X'`` drops the column contribution (factor 1 instead of 2), the usual slip.
    """

    def __init__(self, n=6, q=2, lengthscale=1.1, noise=0.1, seed=0, wrong=None):
        rng = np.random.default_rng(seed)
        self.params = {"X": rng.standard_normal((n, q))}
        self.lengthscale = lengthscale
        self.noise = noise
        self.wrong = wrong

    def kernel(self, X):
        """(RBF matrix k, K = k + sigma^2 I)."""
        sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
        k = np.exp(-sq / (2.0 * self.lengthscale ** 2))
        return k, k + self.noise * np.eye(X.shape[0])

    def loss(self, Y, y=None):
        X = self.params["X"]
        Y = np.asarray(Y, dtype=X.dtype)
        n, D = Y.shape
        k, K = self.kernel(X)
        loss, G = nll_and_dK(K, Y)
        A = G * k
        factor = 1.0 if self.wrong == "X" else 2.0
        dX = -(factor / self.lengthscale ** 2) * (A.sum(axis=1)[:, None] * X - A @ X)
        return loss, {"X": dX}


def nll_and_dK(K, Y):
    """(NLL, dNLL/dK) of Y (n, D) under N(0, K) per column, via np.linalg.solve/slogdet.

    G = 1/2 (D K^-T - K^-T Y Y^T K^-T); for a symmetric K this is
    1/2 (D K^-1 - K^-1 Y Y^T K^-1).  The transposes make the formula hold for entrywise
    (non-symmetric) perturbations of K too, which the check of dL/dK below uses.
    """
    n, D = Y.shape
    sign, logdet = np.linalg.slogdet(K)
    assert sign > 0
    KinvY = np.linalg.solve(K, Y)                       # K^-1 Y
    loss = 0.5 * D * logdet + 0.5 * np.sum(Y * KinvY) + 0.5 * n * D * np.log(2 * np.pi)
    Kinv_T = np.linalg.inv(K).T
    KtinvY = np.linalg.solve(K.T, Y)                    # K^-T Y
    G = 0.5 * (D * Kinv_T - KtinvY @ KtinvY.T)
    return loss, G


class KernelNLL:
    """Step 1 on its own: params {'K': K}, loss(Y) = NLL(K), grads {'K': dL/dK}."""

    def __init__(self, K):
        self.params = {"K": np.array(K, dtype=np.float64)}

    def loss(self, Y, y=None):
        loss, G = nll_and_dK(self.params["K"], np.asarray(Y, dtype=np.float64))
        return loss, {"K": G}


def _gp_data(n=6, D=3, seed=5):
    return np.random.default_rng(seed).standard_normal((n, D))


def test_gplvm_loss_matches_the_gaussian_density():
    """-ln p(Y | X) equals the sum of the D column log-densities of N(0, K)."""
    model = GPLVM()
    Y = _gp_data()
    _, K = model.kernel(model.params["X"])
    n = K.shape[0]
    Kinv = np.linalg.inv(K)
    expected = 0.0
    for col in Y.T:
        expected += 0.5 * col @ Kinv @ col + 0.5 * np.log(np.linalg.det(K)) \
            + 0.5 * n * np.log(2 * np.pi)
    assert model.loss(Y)[0] == pytest.approx(expected, rel=1e-12)


def test_gplvm_dL_dK_gradient_check():
    """Step 1 of the derivation, G = 1/2 (D K^-1 - K^-1 Y Y^T K^-1), checked on K itself."""
    # measured: 1e-9
    gp = GPLVM()
    _, K = gp.kernel(gp.params["X"])
    model = KernelNLL(K)
    Y = _gp_data()
    _assert_all_below(_check(model, Y))
    # at the symmetric K it is the symmetric textbook formula
    Kinv = np.linalg.inv(K)
    textbook = 0.5 * (Y.shape[1] * Kinv - Kinv @ Y @ Y.T @ Kinv)
    _assert_close(model.loss(Y)[1]["K"], textbook, rtol=1e-10)


@pytest.mark.parametrize("n, q, D, lengthscale, noise, seed",
                         [(6, 2, 3, 1.1, 0.1, 0), (5, 1, 4, 0.7, 0.5, 0),
                          (8, 3, 2, 1.5, 0.2, 4)],
                         ids=["n6q2", "n5q1", "n8q3"])
def test_gplvm_gradient_check(n, q, D, lengthscale, noise, seed):
    """Seeds chosen so that no entry of dL/dX is near zero (min/max |entry| > 0.03):
    the relative error of an entry close to 0 is dominated by the rounding of L (~20-50)
    and says nothing about the formula.  measured: 1e-10 .. 1e-9."""
    model = GPLVM(n=n, q=q, lengthscale=lengthscale, noise=noise, seed=seed)
    Y = _gp_data(n=n, D=D, seed=seed + 100)
    dX = model.loss(Y)[1]["X"]
    assert np.abs(dX).min() > 0.03 * np.abs(dX).max()
    errors = _check(model, Y)
    assert list(errors) == ["X"]
    _assert_all_below(errors)


def test_gplvm_wrong_derivation_is_caught():
    errors = _check(GPLVM(wrong="X"), _gp_data())
    assert errors["X"] > WRONG


def test_gplvm_gradient_respects_the_invariances():
    """L depends on X only through pairwise distances: translating or rotating the latent
    space changes nothing, so sum_m dL/dx_m = 0 and X^T dL/dX is symmetric."""
    model = GPLVM(n=7, q=3, seed=2)
    dX = model.loss(_gp_data(n=7))[1]["X"]
    scale = np.abs(dX).max() * np.abs(model.params["X"]).max()
    np.testing.assert_allclose(dX.sum(axis=0), 0.0, atol=1e-13 * np.abs(dX).max() * 7)
    S = model.params["X"].T @ dX
    np.testing.assert_allclose(S, S.T, atol=1e-13 * scale * 7)


# ==================================================================================
# 3. Two-layer Swish network, on fastfc.layers and in NumPy
# ==================================================================================

class SwishNetBase:
    r"""scores = swish(X W1 + b1) W2 + b2; softmax loss (mean) + 0.5 reg (||W1||^2 + ||W2||^2).

    params W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).  ``loss(X)`` returns the scores,
    ``loss(X, y)`` returns (loss, grads); the input gradient is offered under grads['X']
    (``input_grad='grads'``) or through ``loss_and_input_grad`` (``'method'``).
    ``dtype`` (optional attribute, as the CS231n nets have) is the compute dtype.
    """

    def __init__(self, D=5, H=7, C=4, reg=0.3, seed=0, input_grad="grads",
                 dtype=np.float64, wrong=None):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": (0.8 * rng.standard_normal((D, H))).astype(dtype),
            "b1": (0.3 * rng.standard_normal(H)).astype(dtype),
            "W2": (0.8 * rng.standard_normal((H, C))).astype(dtype),
            "b2": (0.3 * rng.standard_normal(C)).astype(dtype),
        }
        self.reg = reg
        self.dtype = dtype
        self.input_grad = input_grad
        self.wrong = wrong
        self.seen_dtypes = set()

    def loss(self, X, y=None):
        X = np.asarray(X).astype(self.dtype)
        p = {k: v.astype(self.dtype) for k, v in self.params.items()}
        self.seen_dtypes.add(np.dtype(self.dtype))
        if y is None:
            return self._scores(X, p)
        loss, grads, dX = self._loss_and_grads(X, y, p)
        loss += 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        grads["W1"] = grads["W1"] + self.reg * p["W1"]
        grads["W2"] = grads["W2"] + self.reg * p["W2"]
        if self.input_grad == "grads":
            grads["X"] = dX
        return loss, grads


class SwishNetLayers(SwishNetBase):
    """Forward and backward with fastfc.layers (compiled kernels)."""

    def _scores(self, X, p):
        h, _ = L.swish_forward(L.affine_forward(X, p["W1"], p["b1"])[0])
        return L.affine_forward(h, p["W2"], p["b2"])[0]

    def _loss_and_grads(self, X, y, p):
        z, cache1 = L.affine_forward(X, p["W1"], p["b1"])
        h, cache2 = L.swish_forward(z)
        scores, cache3 = L.affine_forward(h, p["W2"], p["b2"])
        loss, dscores = L.softmax_loss(scores, y)
        dh, dW2, db2 = L.affine_backward(dscores, cache3)
        dz = L.swish_backward(dh, cache2)
        dX, dW1, db1 = L.affine_backward(dz, cache1)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}, dX


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class SwishNetNumPy(SwishNetBase):
    r"""Forward and backward by hand, in NumPy.

    Forward:  z = X W1 + b1,  s = sigma(z),  h = z s,  scores = h W2 + b2,
              p = softmax(scores),  L = -1/N sum_n ln p[n, y_n].
    Backward: dscores = (p - onehot(y)) / N
              dW2 = h^T dscores,  db2 = sum_n dscores,  dh = dscores W2^T
              swish'(z) = d(z sigma(z))/dz = sigma(z) + z sigma(z) (1 - sigma(z))
              dz = dh * swish'(z)
              dW1 = X^T dz,  db1 = sum_n dz,  dX = dz W1^T
    (plus reg W1, reg W2 from the L2 term, added by the base class).
    ``wrong='b1'`` uses the slip swish'(z) = sigma(z) (1 - sigma(z)) (the sigmoid's).
    """

    def _scores(self, X, p):
        z = X @ p["W1"] + p["b1"]
        return (z * _sigmoid(z)) @ p["W2"] + p["b2"]

    def _loss_and_grads(self, X, y, p):
        N = X.shape[0]
        z = X @ p["W1"] + p["b1"]
        s = _sigmoid(z)
        h = z * s
        scores = h @ p["W2"] + p["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(N), y].mean()
        dscores = np.exp(logp)
        dscores[np.arange(N), y] -= 1.0
        dscores /= N
        dW2 = h.T @ dscores
        db2 = dscores.sum(axis=0)
        dh = dscores @ p["W2"].T
        if self.wrong == "b1":
            dz = dh * s * (1.0 - s)
        else:
            dz = dh * (s + z * s * (1.0 - s))
        dW1 = X.T @ dz
        db1 = dz.sum(axis=0)
        dX = dz @ p["W1"].T
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}, dX

    def loss_and_input_grad(self, X, y):
        X = np.asarray(X).astype(self.dtype)
        p = {k: v.astype(self.dtype) for k, v in self.params.items()}
        loss, _, dX = self._loss_and_grads(X, y, p)
        return loss + 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2)), dX


SWISH_NETS = [SwishNetLayers, SwishNetNumPy]
SWISH_IDS = ["fastfc.layers", "numpy"]


def _swish_data(N=6, D=5, C=4, seed=1, scale=1.5):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((N, D)), rng.integers(0, C, size=N)


def test_swish_derivative_formula():
    """swish'(z) = sigma(z) + z sigma(z)(1 - sigma(z)) against a centred difference."""
    z = np.linspace(-12.0, 12.0, 97)
    h = 1e-5
    numeric = ((z + h) * _sigmoid(z + h) - (z - h) * _sigmoid(z - h)) / (2 * h)
    s = _sigmoid(z)
    assert rel_error(numeric, s + z * s * (1 - s)) < 1e-9


@pytest.mark.parametrize("net", SWISH_NETS, ids=SWISH_IDS)
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_swish_net_gradient_check(net, reg):
    # measured: 7e-10 .. 7e-9
    X, y = _swish_data()
    model = net(reg=reg)
    errors = _check(model, X, y, check_input=True)
    assert list(errors) == ["W1", "b1", "W2", "b2", "X"]
    _assert_all_below(errors)


@pytest.mark.parametrize("net", SWISH_NETS, ids=SWISH_IDS)
def test_swish_net_gradient_check_single_sample(net):
    X, y = _swish_data(N=1, D=3, C=2, seed=7)
    _assert_all_below(_check(net(D=3, H=2, C=2, seed=3), X, y, check_input=True))


@pytest.mark.parametrize("scale", [1.0, 15.0], ids=["moderate", "saturating"])
def test_swish_net_layers_and_numpy_agree(scale):
    """Same params, same data: loss, scores and every gradient equal to 1e-12 (float64).

    scale 15 pushes pre-activations to |z| > 20, where sigma(z) saturates and the
    swish kernel must still agree with the NumPy formula."""
    X, y = _swish_data(N=9, scale=scale)
    a, b = SwishNetLayers(reg=0.2), SwishNetNumPy(reg=0.2)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    z = X @ a.params["W1"] + a.params["b1"]
    if scale > 1:
        assert np.abs(z).max() > 20
    _assert_close(a.loss(X), b.loss(X))
    loss_a, grads_a = a.loss(X, y)
    loss_b, grads_b = b.loss(X, y)
    assert loss_a == pytest.approx(loss_b, rel=1e-12, abs=0)
    assert set(grads_a) == set(grads_b) == {"W1", "b1", "W2", "b2", "X"}
    for name in grads_b:
        assert grads_a[name].dtype == np.float64
        _assert_close(grads_a[name], grads_b[name])
    loss_c, dX_c = b.loss_and_input_grad(X, y)
    assert loss_c == pytest.approx(loss_b, rel=1e-15)
    _assert_close(dX_c, grads_b["X"], rtol=1e-15)


def test_swish_net_wrong_swish_derivative_is_caught():
    """The sigmoid's derivative in place of swish' corrupts W1, b1 and X, not W2, b2."""
    X, y = _swish_data()
    errors = _check(SwishNetNumPy(wrong="b1"), X, y, check_input=True)
    for name in ("W1", "b1", "X"):
        assert errors[name] > WRONG, name
    for name in ("W2", "b2"):
        assert errors[name] < TOL, name


def test_swish_net_float32_on_kernels_is_checked_in_float64():
    """A float32 model built on the kernels: the check switches it (and the kernels) to
    float64, and the model gets its float32 params and dtype back, values unchanged."""
    model = SwishNetLayers(dtype=np.float32)
    before = dict(model.params)
    values = {k: v.copy() for k, v in model.params.items()}
    X, y = _swish_data()
    errors = _check(model, X.astype(np.float32), y, check_input=True)
    _assert_all_below(errors)        # float32 arithmetic would give ~1e-3 here
    assert model.seen_dtypes == {np.dtype(np.float64)}
    assert model.dtype is np.float32
    for name, arr in model.params.items():
        assert arr is before[name]
        assert arr.dtype == np.float32
        np.testing.assert_array_equal(arr, values[name])
    # and the model still computes in float32 afterwards
    loss, grads = model.loss(X.astype(np.float32), y)
    assert all(g.dtype == np.float32 for g in grads.values())


# ==================================================================================
# 4. GradientCheck: what tests/test_gradient_check.py does not cover
# ==================================================================================

def test_input_row_is_printed_with_every_parameter(capsys):
    X, y = _swish_data()
    checker = GradientCheck(SwishNetNumPy(input_grad="method"), check_input=True)
    errors = checker.run(X, y)
    out = capsys.readouterr().out
    assert set(errors) == {"W1", "b1", "W2", "b2", "X"}
    lines = out.strip().splitlines()
    assert "max relative error" in lines[0]
    rows = {line.split()[0]: line.split()[-1] for line in lines[2:]}
    assert list(rows) == ["W1", "b1", "W2", "b2", "X"]
    for name, err in errors.items():
        assert rows[name] == f"{err:.3e}"


def test_input_check_off_returns_parameter_names_only():
    X, y = _swish_data()
    errors = _check(SwishNetLayers(), X, y)      # grads['X'] present but not asked for
    assert list(errors) == ["W1", "b1", "W2", "b2"]


def test_check_input_without_an_input_gradient_raises():
    model = TiedAutoencoder(input_grad=None)
    assert not hasattr(model, "loss_and_input_grad")
    with pytest.raises(ValueError, match="check_input"):
        _check(model, _ae_data(), check_input=True)
    # the parameter itself is fine without check_input
    _assert_all_below(_check(model, _ae_data()))


def test_check_input_without_input_gradient_restores_params():
    model = TiedAutoencoder(input_grad=None)
    W = model.params["W"]
    W0 = W.copy()
    with pytest.raises(ValueError):
        _check(model, _ae_data(), check_input=True)
    assert model.params["W"] is W
    np.testing.assert_array_equal(W, W0)


def test_loss_and_input_grad_wrong_input_gradient_is_reported():
    model = TiedAutoencoder(input_grad="method", wrong="X")
    errors = _check(model, _ae_data(), check_input=True)
    assert errors["X"] > WRONG
    assert errors["W"] < TOL


def test_caller_input_is_not_modified_by_the_input_check():
    X, y = _swish_data()
    X0 = X.copy()
    _check(SwishNetNumPy(), X, y, check_input=True)
    np.testing.assert_array_equal(X, X0)


class CopyableAutoencoder(TiedAutoencoder):
    """Has ``astype(dtype)`` (like fastfc.Net): GradientCheck must check a float64 copy."""

    def __init__(self, dtype=np.float32, **kw):
        super().__init__(**kw)
        self.params["W"] = self.params["W"].astype(dtype)
        self.dtype = dtype
        self.astype_calls = []
        self.loss_calls = 0

    def astype(self, dtype):
        self.astype_calls.append(np.dtype(dtype))
        clone = CopyableAutoencoder.__new__(CopyableAutoencoder)
        clone.__dict__.update(self.__dict__)
        clone.params = {k: v.astype(dtype) for k, v in self.params.items()}
        clone.dtype = np.dtype(dtype).type
        clone.astype_calls = []
        clone.loss_calls = 0
        return clone

    def loss(self, X, y=None):
        self.loss_calls += 1
        return super().loss(X, y)


def test_model_with_astype_is_checked_on_a_float64_copy():
    model = CopyableAutoencoder(dtype=np.float32)
    W = model.params["W"]
    W0 = W.copy()
    errors = _check(model, _ae_data().astype(np.float32), check_input=True)
    _assert_all_below(errors)                     # float32 would give ~1e-3
    assert model.astype_calls == [np.dtype(np.float64)]
    assert model.loss_calls == 0                  # the original was never evaluated
    assert model.params["W"] is W and W.dtype == np.float32
    np.testing.assert_array_equal(W, W0)
    assert model.dtype is np.float32


def test_model_with_astype_wrong_gradient_is_reported():
    model = CopyableAutoencoder(dtype=np.float64, wrong="W")
    errors = _check(model, _ae_data(), check_input=True)
    assert errors["W"] > WRONG
    assert errors["X"] < TOL
