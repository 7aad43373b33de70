"""UCLA's ``nndl/layers.py``: the fastfc layers, with HW4's dropout.

All layers are :mod:`fastfc.layers`' except the dropout pair, where
``dropout_param['p']`` is the probability of DROPPING a unit, as in UCLA's HW4 (CS231n's
``p`` is the probability of keeping one).
"""
from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike, NDArray

from fastfc import _validation as V
from fastfc import layers as _L
from fastfc.layers import *  # noqa: F401,F403  (the CS231n layers, re-exported)

__all__ = list(_L.__all__)


def _keep_param(dropout_param: Any, name: str) -> dict[str, Any]:
    """A copy of a UCLA dropout_param with 'p' turned into CS231n's keep probability."""
    V.check_param_dict(dropout_param, name)
    p = V.check_scalar(V.require_key(dropout_param, "p", name), f"{name}['p']",
                       low=0.0, high=1.0, high_open=True)
    keep = dict(dropout_param)
    keep["p"] = 1 - p       # the same double the reference computes as (1 - p)
    return keep


# (these two replace the CS231n dropout pair imported above)
def dropout_forward(  # type: ignore[no-redef]
        x: ArrayLike, dropout_param: dict[str, Any]) -> tuple[NDArray[Any], Any]:
    """Inverted dropout with UCLA's (HW4) meaning of ``p``.

    Parameters
    ----------
    x : ndarray of any shape, float32 or float64
    dropout_param : dict
        'p': probability of DROPPING each unit, 0 <= p < 1; 'mode': 'train' or 'test';
        optional 'seed': ``np.random.seed(seed)`` is called first, on every call.

    In train mode the kept units are drawn from NumPy's global generator as
    ``np.random.rand(*x.shape) < (1 - p)`` and scaled by ``1 / (1 - p)``; test mode
    returns x.

    Returns
    -------
    out : ndarray shaped like x
    cache : tuple (dropout_param, mask) for :func:`dropout_backward`
    """
    keep = _keep_param(dropout_param, "dropout_param")
    out, (_, mask) = _L.dropout_forward(x, keep)
    return out, (dropout_param, mask)


def dropout_backward(dout: ArrayLike, cache: Any) -> Any:  # type: ignore[no-redef]
    """Backward of :func:`dropout_forward`: ``dout * mask / (1 - p)`` (train), dout (test)."""
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("cache must be the (dropout_param, mask) tuple from dropout_forward")
    dropout_param, mask = cache
    return _L.dropout_backward(dout, (_keep_param(dropout_param, "dropout_param (from cache)"),
                                      mask))
