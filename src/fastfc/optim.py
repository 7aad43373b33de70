"""First-order update rules, compatible with the CS231n ``optim.py``.

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
becomes ``dw + weight_decay * w`` (L2 regularisation fused into the update).

As in the reference, a rule ignores the config keys it does not use (``sgd`` with a
``'momentum'`` key simply does plain SGD; no warning is given).  The keys it uses are
checked: out-of-range or non-numeric values raise ValueError/TypeError naming the key.
w and dw of different float dtypes promote as NumPy does (float32 with float64 gives a
float64 next_w).

UCLA's state names are accepted too: rmsprop's cache as ``'a'``; adam's first moment
as ``'v'`` and second moment as ``'a'`` (recognised by the presence of ``'a'``).
"""
import numpy as np

from fastfc import _validation as V
from fastfc import _openblas
from fastfc._kernels import optim as _k

__all__ = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam",
           "UPDATE_RULES", "update_inplace"]

_UNIT = dict(low=0.0, high=1.0)
_UNIT_OPEN = dict(low=0.0, high=1.0, high_open=True)
_NONNEG = dict(low=0.0)
# epsilon > 0: with 0, a parameter whose gradient is 0 becomes 0 / 0 = NaN
_POSITIVE = dict(low=0.0, low_open=True)

# name -> (hyper-parameter defaults, range of each, state keys)
_SPECS = {
    "sgd": ({"learning_rate": 1e-2}, {"learning_rate": _NONNEG}, ()),
    "sgd_momentum": (
        {"learning_rate": 1e-2, "momentum": 0.9},
        {"learning_rate": _NONNEG, "momentum": _UNIT},
        ("velocity",),
    ),
    "sgd_nesterov_momentum": (
        {"learning_rate": 1e-2, "momentum": 0.9},
        {"learning_rate": _NONNEG, "momentum": _UNIT},
        ("velocity",),
    ),
    "rmsprop": (
        {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
        {"learning_rate": _NONNEG, "decay_rate": _UNIT, "epsilon": _POSITIVE},
        ("cache",),
    ),
    "adam": (
        {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
        {"learning_rate": _NONNEG, "beta1": _UNIT_OPEN, "beta2": _UNIT_OPEN,
         "epsilon": _POSITIVE},
        ("m", "v"),
    ),
}

_EXTRA_KEYS = {"weight_decay"}


def _state_keys(rule, config):
    """The state array names this config uses (UCLA spellings when 'a' is present)."""
    if "a" in config:
        if rule == "rmsprop":
            return ("a",)
        if rule == "adam":
            return ("v", "a")
    return _SPECS[rule][2]


def prepare_config(rule, config, w, copy_states=False, ignore_unknown=False):
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
    defaults, ranges, _ = _SPECS[rule]
    state_keys = _state_keys(rule, config)
    # The public rules (ignore_unknown=True) leave the keys they do not use alone,
    # silently, as the course code does: one optim_config dict is commonly shared
    # between rules (a 'momentum' key passed to sgd).  No warning: the course prints
    # none, and a warning per step and parameter would be noise.  The values of the
    # keys a rule uses are always checked below.  fastfc.Net's set_optimizer keeps the
    # strict check (ignore_unknown=False): its keyword arguments are its own API.
    if not ignore_unknown:
        allowed = (set(defaults) | set(state_keys) | _EXTRA_KEYS
                   | ({"t"} if rule == "adam" else set()))
        unknown = sorted(set(config) - allowed, key=str)
        if unknown:
            raise ValueError(
                f"unknown config key(s) for {rule}: {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(allowed))}"
            )
    for key, value in defaults.items():
        config.setdefault(key, value)
    hyper = {key: V.check_scalar(config[key], f"config[{key!r}]", **ranges[key])
             for key in defaults}
    hyper["weight_decay"] = V.check_scalar(config.get("weight_decay", 0.0),
                                           "config['weight_decay']", low=0.0)
    if rule == "adam":
        config.setdefault("t", 0)
        hyper["t"] = V.check_scalar(config["t"], "config['t']", low=0, high=2**53,
                                    integer=True)
    states = []
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


# rule -> compiled in-place update on flat views: (w, dw, states, hyper) -> None
_KERNELS = {
    "sgd": lambda w, dw, s, h: _k._sgd(w, dw, h["learning_rate"], h["weight_decay"]),
    "sgd_momentum": lambda w, dw, s, h: _k._sgd_momentum(
        w, dw, s[0], h["learning_rate"], h["momentum"], h["weight_decay"]),
    "sgd_nesterov_momentum": lambda w, dw, s, h: _k._sgd_nesterov_momentum(
        w, dw, s[0], h["learning_rate"], h["momentum"], h["weight_decay"]),
    "rmsprop": lambda w, dw, s, h: _k._rmsprop(
        w, dw, s[0], h["learning_rate"], h["decay_rate"], h["epsilon"], h["weight_decay"]),
    "adam": lambda w, dw, s, h: _k._adam(
        w, dw, s[0], s[1], h["learning_rate"], h["beta1"], h["beta2"], h["epsilon"],
        h["t"], h["weight_decay"]),
}


def _run(rule, w, dw, hyper, states):
    """Run the compiled update of ``rule`` on w in place (w, dw, states contiguous);
    returns the number of NaN/inf values in the updated w."""
    if not _openblas._connected:
        _openblas.connect()     # a large update may use fastfc's pool (set up once)
    return _KERNELS[rule](w.reshape(-1), dw.reshape(-1), [s.reshape(-1) for s in states],
                          hyper)


def _check_w_dw(w, dw):
    dtype, (w, dw) = V.float_args(w=w, dw=dw)
    w = V.as_float(w, "w", dtype)
    dw = V.as_float(dw, "dw", dtype, shape=w.shape)
    return w, dw


def _apply(rule, w, dw, config, inplace):
    if inplace:
        next_w = w
    else:
        w, dw = _check_w_dw(w, dw)
        next_w = np.array(w, copy=True)
    config, hyper, states = prepare_config(rule, config, next_w, copy_states=not inplace,
                                           ignore_unknown=True)
    if rule == "adam":
        hyper["t"] += 1
        config["t"] = hyper["t"]
    nonfinite = _run(rule, next_w, dw, hyper, states)
    return next_w, config, nonfinite


def update_inplace(rule, w, dw, config, return_nonfinite=False):
    """Update ``w`` in place with the named rule; for callers that own w.

    ``w`` and ``dw`` must be C-contiguous arrays of one float dtype and one shape (not
    re-checked).  ``config`` is filled and validated as by the public rules.
    Returns config, or (config, number of NaN/inf values in the updated w) with
    ``return_nonfinite`` (counted in the update's own pass).
    """
    _, config, nonfinite = _apply(rule, w, dw, config, inplace=True)
    return (config, nonfinite) if return_nonfinite else config


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    config: learning_rate (1e-2).
    """
    return _apply("sgd", w, dw, config, inplace=False)[:2]


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - learning_rate * dw; next_w = w + v``.

    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    return _apply("sgd_momentum", w, dw, config, inplace=False)[:2]


def sgd_nesterov_momentum(w, dw, config=None):
    """Nesterov momentum: ``v' = momentum * v - lr * dw; next_w = w + v' + momentum * (v' - v)``.

    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    return _apply("sgd_nesterov_momentum", w, dw, config, inplace=False)[:2]


def rmsprop(w, dw, config=None):
    """RMSProp: ``cache = dr * cache + (1 - dr) * dw**2; next_w = w - lr * dw / (sqrt(cache) + eps)``.

    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (zeros).
    """
    return _apply("rmsprop", w, dw, config, inplace=False)[:2]


def adam(w, dw, config=None):
    """Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015).

    ``t += 1; m = b1 * m + (1 - b1) * dw; v = b2 * v + (1 - b2) * dw**2;
    next_w = w - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m and v (zeros like w), t (0).
    """
    return _apply("adam", w, dw, config, inplace=False)[:2]


#: The update rules by name, as the Solver's ``update_rule`` strings select them.
UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "sgd_nesterov_momentum": sgd_nesterov_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}
