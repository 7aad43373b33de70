"""UCLA's ``nndl/fc_net.py``: TwoLayerNet and FullyConnectedNet with UCLA's signatures.

Both are :mod:`fastfc.classifiers.fc_net`'s nets (same parameters, same draws from
NumPy's global generator, same loss and gradients) with UCLA's argument order, and
dropout given as the probability of dropping a unit (0 = off).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from numpy.typing import DTypeLike

from fastfc import _validation as V
from fastfc.classifiers import fc_net as _fc
from fastfc.nndl import layers as _NL

__all__ = ["TwoLayerNet", "FullyConnectedNet"]


class TwoLayerNet(_fc.TwoLayerNet):
    """affine - relu - affine - softmax, UCLA's signature.

    Parameters
    ----------
    input_dim : int
        D, the number of input features.
    hidden_dims : int
        H, the width of the hidden layer.
    num_classes : int
        C.
    dropout : float
        Accepted and not used, as in UCLA's TwoLayerNet.
    weight_scale : float
        Standard deviation of the Gaussian weight initialisation.
    reg : float
        L2 strength: the loss adds ``0.5 * reg * (sum(W1**2) + sum(W2**2))``.

    Attributes
    ----------
    params : dict
        W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); W1 drawn before W2, biases zero.
    """

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dims: int = 100,
                 num_classes: int = 10, dropout: float = 0, weight_scale: float = 1e-3,
                 reg: float = 0.0) -> None:
        V.check_scalar(dropout, "dropout", low=0.0, high=1.0)
        super().__init__(input_dim=input_dim, hidden_dim=hidden_dims,
                         num_classes=num_classes, weight_scale=weight_scale, reg=reg)


class FullyConnectedNet(_fc.FullyConnectedNet):
    """{affine - [batch norm] - relu - [dropout]} x (L - 1) - affine - softmax, UCLA's
    signature.

    Parameters
    ----------
    hidden_dims : list of int
    input_dim : int
    num_classes : int
    dropout : float in [0, 1)
        Probability of DROPPING each hidden unit; 0 (the default) uses no dropout.
    use_batchnorm : bool
        Batch normalisation after each hidden affine layer.
    reg : float
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over the weights.
    weight_scale : float
    dtype : np.float32 or np.float64
        Parameters and inputs are cast to it.
    seed : int or None
        Makes dropout deterministic (``np.random.seed(seed)`` before every mask).

    Attributes
    ----------
    params : dict
        W1..WL, b1..bL, and gamma_i, beta_i with batch norm.
    dropout_param : dict
        ``{'mode': ..., 'p': dropout}`` (UCLA's meaning of p) when dropout > 0.
    use_batchnorm, use_dropout, bn_params, reg, num_layers, dtype
    """

    _dropout_forward = staticmethod(_NL.dropout_forward)
    _dropout_backward = staticmethod(_NL.dropout_backward)

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32,
                 num_classes: int = 10, dropout: float = 0, use_batchnorm: bool = False,
                 reg: float = 0.0, weight_scale: float = 1e-2, dtype: DTypeLike = np.float32,
                 seed: Optional[int] = None) -> None:
        super().__init__(hidden_dims, input_dim=input_dim, num_classes=num_classes,
                         reg=reg, weight_scale=weight_scale, dtype=dtype, seed=seed,
                         dropout=dropout, use_batchnorm=bool(use_batchnorm))
        self.use_batchnorm = bool(use_batchnorm)
        if self.use_dropout:
            # UCLA stores the drop probability; its dropout layer reads it that way
            self.dropout_param["p"] = dropout
