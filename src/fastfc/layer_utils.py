"""Sandwich layers: common layer sequences as one forward/backward pair.

Compatible with the CS231n ``layer_utils.py``: ``affine_relu_forward(x, w, b)`` returns
``(out, (fc_cache, relu_cache))`` and its backward returns ``(dx, dw, db)``.
"""
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from fastfc import _registry
from fastfc import layers as L
# The course's layer_utils.py starts with ``from .layers import *``, so notebooks that do
# ``from cs231n.layer_utils import *`` get the layer functions as well: so does this one.
from fastfc.layers import *  # noqa: F401,F403  (re-exported, see __all__)

__all__ = [
    "affine_relu_forward", "affine_relu_backward",
    "affine_norm_relu_forward", "affine_norm_relu_backward",
    "affine_bn_relu_forward", "affine_bn_relu_backward",
    "affine_ln_relu_forward", "affine_ln_relu_backward",
] + list(L.__all__)

#: forward and backward layer of each normalisation of fastfc._registry
_NORMS = {name: (getattr(L, f"{name}_forward"), getattr(L, f"{name}_backward"))
          for name in _registry.NORMALIZATIONS if name is not None}


def affine_relu_forward(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, Any]:
    """affine -> ReLU.  Returns (out, (fc_cache, relu_cache)).

    Examples
    --------
    >>> out, cache = affine_relu_forward(np.array([[1.0, -2.0]]), np.eye(2), np.zeros(2))
    >>> out
    array([[1., 0.]])
    """
    a, fc_cache = L.affine_forward(x, w, b)
    out, relu_cache = L.relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: ArrayLike, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`affine_relu_forward`; returns (dx, dw, db)."""
    fc_cache, relu_cache = cache
    da = L.relu_backward(dout, relu_cache)
    return L.affine_backward(da, fc_cache)


def _norm_pair(normalization: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    try:
        return _NORMS[normalization]
    except (KeyError, TypeError):
        raise ValueError(
            f"normalization must be {_registry.choices(_NORMS)}, got {normalization!r}"
        ) from None


def affine_norm_relu_forward(x: ArrayLike, w: ArrayLike, b: ArrayLike, gamma: ArrayLike,
                             beta: ArrayLike, norm_param: dict[str, Any],
                             normalization: str = "batchnorm") -> tuple[np.ndarray, Any]:
    """affine -> batch norm or layer norm -> ReLU.

    ``norm_param`` is the bn_param / ln_param dict of the normalisation layer.
    Returns (out, (fc_cache, norm_cache, relu_cache, normalization)).
    """
    forward, _ = _norm_pair(normalization)
    a, fc_cache = L.affine_forward(x, w, b)
    an, norm_cache = forward(a, gamma, beta, norm_param)
    out, relu_cache = L.relu_forward(an)
    return out, (fc_cache, norm_cache, relu_cache, normalization)


def affine_norm_relu_backward(dout: ArrayLike, cache: Any) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_norm_relu_forward`; returns (dx, dw, db, dgamma, dbeta)."""
    fc_cache, norm_cache, relu_cache, normalization = cache
    _, backward = _norm_pair(normalization)
    dan = L.relu_backward(dout, relu_cache)
    da, dgamma, dbeta = backward(dan, norm_cache)
    dx, dw, db = L.affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_bn_relu_forward(x: ArrayLike, w: ArrayLike, b: ArrayLike, gamma: ArrayLike,
                           beta: ArrayLike, bn_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """affine -> batch norm -> ReLU (the name used by several course solutions)."""
    return affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")


def affine_bn_relu_backward(dout: ArrayLike, cache: Any) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_bn_relu_forward`; returns (dx, dw, db, dgamma, dbeta)."""
    return affine_norm_relu_backward(dout, cache)


def affine_ln_relu_forward(x: ArrayLike, w: ArrayLike, b: ArrayLike, gamma: ArrayLike,
                           beta: ArrayLike, ln_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """affine -> layer norm -> ReLU."""
    return affine_norm_relu_forward(x, w, b, gamma, beta, ln_param, "layernorm")


def affine_ln_relu_backward(dout: ArrayLike, cache: Any) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_ln_relu_forward`; returns (dx, dw, db, dgamma, dbeta)."""
    return affine_norm_relu_backward(dout, cache)
