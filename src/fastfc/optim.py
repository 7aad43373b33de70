"""First-order update rules, compatible with the CS231n ``optim.py`` (plus AdamW).

Every rule has the form ``rule(w, dw, config=None) -> (next_w, config)``:

* ``w`` : ndarray, the current weights (float32 or float64, any shape);
* ``dw`` : ndarray shaped like w, the gradient of the loss with respect to w;
* ``config`` : dict of hyper-parameters and state (moments, caches).  Missing keys are
  filled with their defaults (the dict is updated, as in the reference code) and state
  arrays are updated in place.

The caller's ``w`` and ``dw`` are never modified: ``next_w`` is a new array.  The update
loops themselves are compiled (``fastfc._kernels.optim``); :func:`update_inplace` runs
them on ``w`` directly for the trusted callers (Solver, Net) that own their buffers.

Beyond the reference, every rule accepts ``weight_decay`` (default 0): the gradient
becomes ``dw + weight_decay * w`` (L2 regularisation fused into the update).  The
exception is ``adamw``, whose ``weight_decay`` (default 0.01) is its own, decoupled
hyper-parameter: every step first shrinks the weights, ``w *= 1 - learning_rate *
weight_decay``, then takes Adam's step (Loshchilov & Hutter, ICLR 2019; the formula of
``torch.optim.AdamW``); the gradient is left as it is.

As in the reference, a rule ignores the config keys it does not use (``sgd`` with a
``'momentum'`` key simply does plain SGD; no warning is given).  The keys it uses are
checked: out-of-range or non-numeric values raise ValueError/TypeError naming the key.
w and dw of different float dtypes promote as NumPy does (float32 with float64 gives a
float64 next_w).

UCLA's state names are accepted too (``ucla_state`` of the rule's row, e.g. the cache
as ``'a'``, or Adam's moments as ``'v'`` and ``'a'``), recognised by the presence of
``'a'``.

The rules are the rows of ``fastfc._registry.UPDATE_RULES``: :data:`UPDATE_RULES` maps
each name to its function, which is also a function of this module
(``fastfc.optim.<name>``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastfc import _registry
from fastfc import _validation as V
from fastfc import _openblas
from fastfc._kernels import optim as _k

#: every rule's row (defaults, ranges, state names, step counter), by name
RULES = _registry.UPDATE_RULES
# the ranges as plain dicts: prepare_config unpacks one per hyper-parameter and step,
# and ** on a dict is quicker than on the registry's read-only mappings
_RANGES: dict[str, dict[str, dict[str, Any]]] = {
    name: {key: dict(bounds) for key, bounds in spec.ranges.items()}
    for name, spec in RULES.items()}

# name -> (hyper-parameter defaults, range of each, state keys): the registry's rows in
# the layout older code reads by index
_SPECS = {name: (spec.defaults, spec.ranges, spec.state) for name, spec in RULES.items()}

_EXTRA_KEYS = {"weight_decay"}


def _state_keys(spec: _registry.UpdateRule, config: Mapping[str, Any]) -> tuple[str, ...]:
    """The state array names this config uses (UCLA's spellings when 'a' is present)."""
    if "a" in config:
        return spec.ucla_state
    return spec.state


def prepare_config(rule: str, config: Optional[dict[str, Any]], w: NDArray[Any],
                   copy_states: bool = False, ignore_unknown: bool = False
                   ) -> tuple[dict[str, Any], dict[str, float], list[NDArray[Any]]]:
    """Fill defaults into ``config``, check every value and make the state arrays usable.

    Returns (config, hyper, states): ``hyper`` is a dict of validated floats, ``states``
    the list of state arrays (C-contiguous, w's dtype and shape) stored in ``config``.
    With ``copy_states`` the arrays found in config are copied first, so that an array
    the caller still holds is not changed (the reference code rebinds, never mutates).
    With ``ignore_unknown`` keys the rule does not use are ignored (the public rules);
    otherwise they raise ValueError (fastfc.Net).
    """
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    spec = RULES[rule]
    defaults, ranges = spec.defaults, _RANGES[rule]
    state_keys = _state_keys(spec, config)
    # The public rules (ignore_unknown=True) leave the keys they do not use alone,
    # silently, as the course code does: one optim_config dict is commonly shared
    # between rules (a 'momentum' key passed to sgd).  No warning: the course prints
    # none, and a warning per step and parameter would be noise.  The values of the
    # keys a rule uses are always checked below.  fastfc.Net's set_optimizer keeps the
    # strict check (ignore_unknown=False): its keyword arguments are its own API.
    if not ignore_unknown:
        allowed = (set(defaults) | set(state_keys) | _EXTRA_KEYS
                   | ({"t"} if spec.counts_steps else set()))
        unknown = sorted(set(config) - allowed, key=str)
        if unknown:
            raise ValueError(
                f"unknown config key(s) for {rule}: {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(allowed))}"
            )
    value: Any      # a default below, a config entry further down
    for key, value in defaults.items():
        config.setdefault(key, value)
    hyper = {key: V.check_scalar(config[key], f"config[{key!r}]", **ranges[key])
             for key in defaults}
    if "weight_decay" in defaults:
        # decoupled (adamw): checked above as the rule's own hyper-parameter; no L2 term
        hyper["reg"] = 0.0
    else:
        hyper["weight_decay"] = hyper["reg"] = V.check_scalar(
            config.get("weight_decay", 0.0), "config['weight_decay']", low=0.0)
    if spec.counts_steps:
        config.setdefault("t", 0)
        hyper["t"] = V.check_scalar(config["t"], "config['t']", low=0, high=2**53,
                                    integer=True)
    states: list[NDArray[Any]] = []
    for key in state_keys:
        value = config.get(key)
        if value is None:
            state = np.zeros(w.shape, dtype=w.dtype)
        else:
            state = V.as_array(value, f"config[{key!r}]")
            if state.shape != w.shape:
                raise ValueError(
                    f"config[{key!r}] has shape {state.shape} but w has shape {w.shape}"
                )
            if copy_states:
                state = np.array(state, dtype=w.dtype, order="C", copy=True)
            elif state.dtype != w.dtype or not state.flags.c_contiguous:
                state = np.ascontiguousarray(state, dtype=w.dtype)
        config[key] = state
        states.append(state)
    return config, hyper, states


def kernel_args(hyper: Mapping[str, Any]
                ) -> tuple[float, float, float, float, float, float, int, float]:
    """The hyper-parameters of a rule in the order the compiled kernels take them:
    (learning_rate, momentum, decay_rate, beta1, beta2, epsilon, t, weight_decay); a
    rule's kernel ignores those it does not use (0 here).  weight_decay is the decoupled
    one (adamw); the L2 term (``hyper['reg']``) is passed separately."""
    get = hyper.get
    return (hyper["learning_rate"], get("momentum", 0.0), get("decay_rate", 0.0),
            get("beta1", 0.0), get("beta2", 0.0), get("epsilon", 0.0), get("t", 0),
            get("weight_decay", 0.0))


def _run(rule: str, w: NDArray[Any], dw: NDArray[Any], hyper: Mapping[str, float],
         states: Sequence[NDArray[Any]]) -> int:
    """Run the compiled update of ``rule`` on w in place (w, dw, states contiguous);
    returns the number of NaN/inf values in the updated w."""
    if not _openblas._connected:
        _openblas.connect()     # a large update may use fastfc's pool (set up once)
    flat = [s.reshape(-1) for s in states] + [None] * (2 - len(states))
    return _k._update(RULES[rule].code, w.reshape(-1), dw.reshape(-1), flat[0], flat[1],
                      *kernel_args(hyper), hyper["reg"])


def _check_w_dw(w: ArrayLike, dw: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    dtype, (w, dw) = V.float_args(w=w, dw=dw)
    w = V.as_float(w, "w", dtype)
    dw = V.as_float(dw, "dw", dtype, shape=w.shape)
    return w, dw


def _apply(rule: str, w: Any, dw: Any, config: Optional[dict[str, Any]],
           inplace: bool) -> tuple[NDArray[Any], dict[str, Any], int]:
    if inplace:
        next_w = w
    else:
        w, dw = _check_w_dw(w, dw)
        next_w = np.array(w, copy=True)
    config, hyper, states = prepare_config(rule, config, next_w, copy_states=not inplace,
                                           ignore_unknown=True)
    if RULES[rule].counts_steps:
        hyper["t"] += 1
        config["t"] = hyper["t"]
    nonfinite = _run(rule, next_w, dw, hyper, states)
    return next_w, config, nonfinite


def update_inplace(rule: str, w: NDArray[Any], dw: NDArray[Any],
                   config: Optional[dict[str, Any]], return_nonfinite: bool = False) -> Any:
    """Update ``w`` in place with the named rule; for callers that own w.

    ``w`` and ``dw`` must be C-contiguous arrays of one float dtype and one shape (not
    re-checked).  ``config`` is filled and validated as by the public rules.
    Returns config, or (config, number of NaN/inf values in the updated w) with
    ``return_nonfinite`` (counted in the update's own pass).
    """
    _, config, nonfinite = _apply(rule, w, dw, config, inplace=True)
    return (config, nonfinite) if return_nonfinite else config


def _describe(spec: _registry.UpdateRule) -> str:
    """The docstring of a rule's public function, from its row."""
    config = [f"{key} ({value:g})" for key, value in spec.defaults.items()]
    config += [f"{key} (zeros like w)" for key in spec.state]
    if spec.counts_steps:
        config.append("t (0)")
    l2 = ("" if "weight_decay" in spec.defaults else
          "; weight_decay (0) adds ``weight_decay * w`` to dw")
    return (f"The {spec.name} update rule: ``{spec.formula}``.\n\n"
            f"config: {', '.join(config)}{l2}.\n"
            "Returns (next_w, config); w and dw are not modified.\n")


class UpdateRuleFunction(Protocol):
    """The type of every public rule: ``rule(w, dw, config=None) -> (next_w, config)``."""

    __name__: str

    def __call__(self, w: ArrayLike, dw: ArrayLike, config: Optional[dict[str, Any]] = None
                 ) -> tuple[NDArray[Any], dict[str, Any]]: ...


def _public_rule(spec: _registry.UpdateRule) -> UpdateRuleFunction:
    """The CS231n-style function ``(w, dw, config=None) -> (next_w, config)`` of a rule."""
    name = spec.name

    def rule(w: ArrayLike, dw: ArrayLike, config: Optional[dict[str, Any]] = None
             ) -> tuple[NDArray[Any], dict[str, Any]]:
        return _apply(name, w, dw, config, inplace=False)[:2]

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = _describe(spec)
    return rule


#: The update rules by name, as the Solver's ``update_rule`` strings select them (one
#: per row of ``fastfc._registry.UPDATE_RULES``).
UPDATE_RULES: dict[str, UpdateRuleFunction] = {name: _public_rule(spec)
                                               for name, spec in RULES.items()}

# each rule is a function of this module too, as in the course's optim.py
globals().update(UPDATE_RULES)

if TYPE_CHECKING:
    # for type checkers only: the names added above are rules (fastfc.optim.<name>)
    def __getattr__(name: str) -> UpdateRuleFunction: ...

__all__ = [*UPDATE_RULES, "UPDATE_RULES", "update_inplace"]
