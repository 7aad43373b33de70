"""
Checking gradients: layers, nets and your own models
====================================================

Three tools of :mod:`fastfc.gradient_check`:

* :func:`~fastfc.gradient_check.eval_numerical_gradient_array`, the course's
  centred-difference check of one layer;
* :class:`~fastfc.gradient_check.GradientCheck`, which checks every parameter of any
  model with the CS231n contract (``params`` and ``loss(X, y) -> (loss, grads)``), in
  float64, and prints a table;
* the same class on a model you derived by hand -- here a tied-weight linear
  autoencoder, with a deliberately wrong variant to show that the check can fail.
"""

import numpy as np

from fastfc import FullyConnectedNet, GradientCheck, Net, layers
from fastfc.gradient_check import eval_numerical_gradient_array, rel_error

# %%
# One layer, the course's way
# ---------------------------
# The numerical gradient of ``sum(out * dout)`` with respect to ``x`` is ``dx``.

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 5))
w = rng.standard_normal((5, 3))
b = rng.standard_normal(3)
dout = rng.standard_normal((4, 3))

out, cache = layers.affine_forward(x, w, b)
dx, dw, db = layers.affine_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda x: layers.affine_forward(x, w, b)[0], x, dout)
print(f"affine_backward dx: relative error {rel_error(dx, dx_num):.2e}")

dout_x = rng.standard_normal(x.shape)
out, cache = layers.swish_forward(x)
dx_num = eval_numerical_gradient_array(lambda x: layers.swish_forward(x)[0], x, dout_x)
dx = layers.swish_backward(dout_x, cache)
print(f"swish_backward dx:  relative error {rel_error(dx, dx_num):.2e}")

# %%
# Whole models
# ------------
# A course net with batch norm, and a fast :class:`~fastfc.net.Net` (which the check
# copies to float64 with ``astype``).

X = rng.standard_normal((6, 8))
y = rng.integers(0, 4, size=6)
np.random.seed(0)
model = FullyConnectedNet([7, 5], input_dim=8, num_classes=4, normalization="batchnorm",
                          reg=0.1, dtype=np.float64)
errors = GradientCheck(model).run(X, y)

net = Net([8, 7, 5, 4], activation="swish", normalization="layernorm", reg=0.1, seed=0)
errors = GradientCheck(net).run(X, y)

# %%
# A model of your own: the tied-weight linear autoencoder
# --------------------------------------------------------
# Encode ``h = W x``, decode ``x_hat = W^T h``, loss the mean half squared
# reconstruction error over the N rows of X:
#
# .. math::
#
#    L(W) = \frac{1}{2N} \sum_n \lVert W^\top W x_n - x_n \rVert^2 .
#
# With the residual :math:`r_n = (W^\top W - I) x_n`, the differential of one term is
# :math:`r^\top (dW^\top W + W^\top dW) x`, which gives
#
# .. math::
#
#    \frac{\partial L}{\partial W} = \frac{1}{N} W (X^\top R + R^\top X),
#    \qquad
#    \frac{\partial L}{\partial X} = \frac{1}{N} R (W^\top W - I),
#
# where R stacks the residuals as rows.  The input gradient goes in ``grads['X']``, and
# ``check_input=True`` checks it too.


class TiedAutoencoder:
    """Linear autoencoder with tied weights; ``slip=True`` uses a wrong dL/dW."""

    def __init__(self, k, d, seed=0, slip=False):
        self.params = {"W": 0.6 * np.random.default_rng(seed).standard_normal((k, d))}
        self.slip = slip

    def loss(self, X, y=None):
        W = self.params["W"]
        N, d = X.shape
        M = W.T @ W - np.eye(d)
        R = X @ M                                   # residuals, one per row
        loss = 0.5 * np.sum(R * R) / N
        if self.slip:                               # "x r^T is symmetric" -- it is not
            dW = 2.0 * W @ (X.T @ R) / N
        else:
            dW = W @ (X.T @ R + R.T @ X) / N
        return loss, {"W": dW, "X": R @ M / N}


X = rng.standard_normal((7, 5))
print("correct derivation:")
GradientCheck(TiedAutoencoder(3, 5), check_input=True).run(X, None)
print("\nthe slip:")
errors = GradientCheck(TiedAutoencoder(3, 5, slip=True), check_input=True).run(X, None)
assert errors["W"] > 1e-2          # the check catches it
