"""UCLA's ``nndl/neural_net.py``: the monolithic two-layer net in UCLA's layout.

:class:`fastfc.classifiers.neural_net.TwoLayerNet` with ``variant='ucla'`` by default:
W1 of shape (H, D), W2 (C, H), the L2 term ``0.5 * reg * sum(W**2)``, and ``train()``
with UCLA's default ``reg=1e-5`` and its progress line
``'iteration {} / {}: loss {}'.format(it, num_iters, loss)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fastfc.classifiers import neural_net as _nn

__all__ = ["TwoLayerNet"]


class TwoLayerNet(_nn.TwoLayerNet):
    """Two-layer net (input - affine - ReLU - affine - softmax), UCLA's layout by default.

    Parameters are those of :class:`fastfc.classifiers.neural_net.TwoLayerNet`; only the
    default ``variant`` ('ucla') and ``train``'s default ``reg`` (1e-5) differ.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4,
                 variant: str = "ucla") -> None:
        super().__init__(input_size, hidden_size, output_size, std=std, variant=variant)

    def train(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
              learning_rate: float = 1e-3, learning_rate_decay: float = 0.95,
              reg: float = 1e-5, num_iters: int = 100, batch_size: int = 200,
              verbose: bool = False) -> dict[str, list[Any]]:
        """Minibatch SGD, as :meth:`fastfc.classifiers.neural_net.TwoLayerNet.train`,
        with UCLA's default ``reg=1e-5``."""
        return super().train(X, y, X_val, y_val, learning_rate=learning_rate,
                             learning_rate_decay=learning_rate_decay, reg=reg,
                             num_iters=num_iters, batch_size=batch_size, verbose=verbose)
