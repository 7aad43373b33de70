"""UCLA's ``nndl/optim.py``: the fastfc update rules, keeping state under UCLA's names.

The rules and their formulas are :mod:`fastfc.optim`'s.  Starting from an empty config,
rmsprop keeps its cache as ``config['a']`` and adam its first and second moments as
``config['v']`` and ``config['a']`` (and the step as ``config['t']``), as UCLA's code
does; sgd_momentum and sgd_nesterov_momentum use ``'velocity'`` as CS231n does.
"""
from __future__ import annotations

from typing import Any, Optional

from numpy.typing import ArrayLike, NDArray

from fastfc import _registry
from fastfc import optim as _optim

_Result = tuple[NDArray[Any], dict[str, Any]]   # (next_w, config)

__all__ = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam"]


def _with_ucla_state(config: Any, keys: tuple[str, ...]) -> Any:
    """config (a new dict when None) with UCLA's state keys present, so that fastfc.optim
    reads and writes the state under those names (None entries start at zero)."""
    if config is None:
        config = {}
    if isinstance(config, dict):
        for key in keys:
            config.setdefault(key, None)
    return config       # a non-dict is left for fastfc.optim to refuse


def _ucla_rule(name: str, w: ArrayLike, dw: ArrayLike, config: Optional[dict[str, Any]]
               ) -> _Result:
    """fastfc.optim's rule ``name`` with the state under UCLA's names (its registry row's
    ``ucla_state``) and, for a rule that counts steps, ``t`` present from the start."""
    spec = _registry.UPDATE_RULES[name]
    if spec.ucla_state != spec.state:
        config = _with_ucla_state(config, spec.ucla_state)
    if spec.counts_steps and isinstance(config, dict):
        config.setdefault("t", 0)
    return _optim.UPDATE_RULES[name](w, dw, config)


def sgd(w: ArrayLike, dw: ArrayLike,
        config: Optional[dict[str, Any]] = None) -> _Result:
    """Vanilla SGD: ``next_w = w - learning_rate * dw`` (learning_rate 1e-2)."""
    return _ucla_rule("sgd", w, dw, config)


def sgd_momentum(w: ArrayLike, dw: ArrayLike,
                 config: Optional[dict[str, Any]] = None) -> _Result:
    """SGD with momentum: ``v = momentum * v - lr * dw; next_w = w + v``.

    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    return _ucla_rule("sgd_momentum", w, dw, config)


def sgd_nesterov_momentum(w: ArrayLike, dw: ArrayLike,
                          config: Optional[dict[str, Any]] = None) -> _Result:
    """Nesterov momentum: ``v' = momentum * v - lr * dw; next_w = w + v' + momentum * (v' - v)``.

    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    return _ucla_rule("sgd_nesterov_momentum", w, dw, config)


def rmsprop(w: ArrayLike, dw: ArrayLike,
            config: Optional[dict[str, Any]] = None) -> _Result:
    """RMSProp: ``a = dr * a + (1 - dr) * dw**2; next_w = w - lr * dw / (sqrt(a) + eps)``.

    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), a (zeros like w).
    """
    return _ucla_rule("rmsprop", w, dw, config)


def adam(w: ArrayLike, dw: ArrayLike,
         config: Optional[dict[str, Any]] = None) -> _Result:
    """Adam (Kingma & Ba, ICLR 2015) with UCLA's names: v first moment, a second.

    ``t += 1; v = b1 * v + (1 - b1) * dw; a = b2 * a + (1 - b2) * dw**2;
    next_w = w - lr * (v / (1 - b1**t)) / (sqrt(a / (1 - b2**t)) + eps)``

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    v and a (zeros like w), t (0).
    """
    return _ucla_rule("adam", w, dw, config)
