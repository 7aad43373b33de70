r"""
A worked derivation: the GP-LVM gradient
========================================

A Gaussian-process latent variable model explains observed data Y (n points, D
dimensions) by latent positions X (n points, q dimensions).  With an RBF kernel of
length-scale :math:`\ell` and noise :math:`\sigma^2`,

.. math::

   k_{ij} = \exp\!\Big(-\frac{\lVert x_i - x_j\rVert^2}{2\ell^2}\Big), \qquad
   K = k + \sigma^2 I, \qquad
   L(X) = \frac{D}{2}\ln\lvert K\rvert + \frac12 \operatorname{tr}(K^{-1} Y Y^\top)
          + \frac{nD}{2}\ln 2\pi ,

the negative log-likelihood.  Its gradient takes two steps of the chain rule:

1. through the Gaussian density, with :math:`d\ln|K| = \operatorname{tr}(K^{-1}dK)`
   and :math:`dK^{-1} = -K^{-1}\,dK\,K^{-1}`:
   :math:`G = \partial L/\partial K = \tfrac12 (D K^{-1} - K^{-1} Y Y^\top K^{-1})`;
2. through the kernel, :math:`dk_{ij} = -k_{ij}(x_i - x_j)^\top(dx_i - dx_j)/\ell^2`;
   point m appears in row m and in column m of K, which contribute equally, so with
   :math:`A = G \odot k`:
   :math:`\partial L/\partial X = -\frac{2}{\ell^2}\big(\operatorname{diag}(A\mathbf 1)X - AX\big)`.

Forgetting the column contribution (a factor 1 instead of 2) is the classic slip;
:class:`~fastfc.gradient_check.GradientCheck` tells the two apart.  The model follows
the CS231n contract, with the latent X as its only "parameter".
"""

import numpy as np

from fastfc.gradient_check import GradientCheck


class GPLVM:
    """Negative log-likelihood of Y as a function of the latent positions X."""

    def __init__(self, n, q, lengthscale=1.1, noise=0.1, seed=0, slip=False):
        self.params = {"X": np.random.default_rng(seed).standard_normal((n, q))}
        self.lengthscale, self.noise, self.slip = lengthscale, noise, slip

    def loss(self, Y, y=None):
        X = self.params["X"]
        n, D = Y.shape
        sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
        k = np.exp(-sq / (2 * self.lengthscale ** 2))
        K = k + self.noise * np.eye(n)
        _, logdet = np.linalg.slogdet(K)
        Kinv = np.linalg.inv(K)
        KinvY = Kinv @ Y
        loss = 0.5 * D * logdet + 0.5 * np.sum(Y * KinvY) + 0.5 * n * D * np.log(2 * np.pi)
        G = 0.5 * (D * Kinv - KinvY @ KinvY.T)             # step 1: dL/dK
        A = G * k                                          # step 2: through the RBF
        factor = 1.0 if self.slip else 2.0
        dX = -(factor / self.lengthscale ** 2) * (A.sum(axis=1)[:, None] * X - A @ X)
        return loss, {"X": dX}


Y = np.random.default_rng(100).standard_normal((6, 3))

print("the derivation above:")
good = GradientCheck(GPLVM(6, 2)).run(Y, None)
print("\nthe slip (row contribution only):")
bad = GradientCheck(GPLVM(6, 2, slip=True)).run(Y, None)
print(f"\n{good['X']:.1e} against {bad['X']:.1e}")

# %%
# A second check that costs nothing: L depends on X only through distances, so moving
# all latent points together does not change it -- the gradient rows sum to zero.

_, grads = GPLVM(6, 2).loss(Y)
print("sum of the gradient rows:", np.round(grads["X"].sum(axis=0), 12))
