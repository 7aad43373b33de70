"""The settings a sweep takes, where each goes, and the search space as Optuna sees it.

Nothing here imports Optuna at module level: the distributions below are plain
descriptions that :func:`optuna_distribution` turns into Optuna's when a sweep starts.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
from typing import Any, Collection, Iterable, Mapping, Optional, Sequence

import numpy as np

from fastfc import _registry
from fastfc._defaults import FRONTEND_DEFAULTS, describe_rule

# ---------------------------------------------------------------------- routing

#: Where each setting goes: 'model' (Net constructor), 'solver' (Solver keyword),
#: 'optim' (optim_config), 'trial' (the trial's seed).
ROUTES = {
    # Net(...)
    "hidden_dims": "model", "hidden_dim": "model", "hidden_size": "model",
    "input_dim": "model", "num_classes": "model", "activation": "model",
    "dropout_keep_ratio": "model", "normalization": "model", "reg": "model",
    "weight_scale": "model", "init": "model", "dtype": "model", "alpha": "model",
    "loss": "model", "bn_momentum": "model", "eps": "model", "label_smoothing": "model",
    # Solver(...)
    "update_rule": "solver", "batch_size": "solver", "num_epochs": "solver",
    "lr_decay": "solver", "num_train_samples": "solver", "num_val_samples": "solver",
    "patience": "solver", "schedule": "solver", "time_budget": "solver", "shuffle": "solver",
    "augment": "solver", "warmup": "solver", "ema_decay": "solver", "ema_every": "solver",
    # the trial itself
    "seed": "trial",
    # optim_config: every hyper-parameter of a rule of the registry
    **{key: "optim" for rule in _registry.UPDATE_RULES.values() for key in rule.defaults},
}

#: The type of each setting's value, checked for fixed settings (and for ``--set``):
#: 'int', 'real', 'bool', 'str', 'dims' (an int or a list of ints), 'any'; a trailing
#: '?' also allows None.
SETTING_TYPES = {
    "hidden_dims": "dims", "hidden_dim": "int", "hidden_size": "int",
    "input_dim": "int", "num_classes": "int", "activation": "str",
    "dropout_keep_ratio": "real", "normalization": "str?", "reg": "real",
    "weight_scale": "real?", "init": "str?", "dtype": "any", "alpha": "real",
    "loss": "str", "bn_momentum": "real", "eps": "real", "label_smoothing": "real",
    "update_rule": "str", "batch_size": "int", "num_epochs": "int", "lr_decay": "real",
    "num_train_samples": "int?", "num_val_samples": "int?", "patience": "int?",
    "schedule": "str?", "time_budget": "real?", "shuffle": "bool", "augment": "str?",
    "warmup": "real", "ema_decay": "real?", "ema_every": "int",
    "seed": "int?",
    **{key: "real" for rule in _registry.UPDATE_RULES.values() for key in rule.defaults},
}

_TYPE_WORDS = {"int": "an integer", "real": "a finite number", "bool": "true or false",
               "str": "a string", "dims": "an integer or a list of integers",
               "any": "a value"}


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def check_setting(name: str, value: Any) -> Any:
    """``value`` as the type setting ``name`` takes (see :data:`SETTING_TYPES`), else a
    TypeError naming the setting and the expectation.  Integral floats (``100.0``)
    are accepted where an integer is expected."""
    _check_names([name], "setting")
    kind = SETTING_TYPES[name]
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        if optional or kind == "any":
            return None
    elif kind == "any":
        return value
    elif kind == "int" or kind == "dims":
        if kind == "dims" and isinstance(value, (list, tuple)):
            if all(_is_int(v) for v in value):
                return [int(v) for v in value]
        else:
            if _is_int(value):
                return int(value)
            if _is_number(value) and math.isfinite(value) and float(value).is_integer():
                return int(value)
    elif kind == "real":
        if _is_number(value) and math.isfinite(value):
            return value
    elif kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif isinstance(value, str):  # kind == "str"
        return value
    want = _TYPE_WORDS[kind] + (" or None" if optional else "")
    raise TypeError(f"setting {name!r} takes {want}, got {value!r} "
                    f"({type(value).__name__})")


def parse_setting(name: str, text: str) -> Any:
    """The value of ``--set NAME=TEXT``: parsed for the type ``name`` takes.

    Numbers and JSON lists are read as JSON; a string setting takes the text as it is
    (JSON quotes optional); ``none``/``null`` give None where None is allowed;
    ``true``/``false`` (also ``yes``/``no``, ``1``/``0``) for booleans; ``hidden_dims``
    also takes ``100,50``.  Raises ValueError naming the setting on a bad value.
    """
    _check_names([name], "setting")
    kind = SETTING_TYPES[name]
    raw = text.strip()
    if kind.endswith("?") and raw.lower() in ("none", "null", ""):
        return None
    kind = kind.rstrip("?")
    if kind in ("str", "any"):
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            try:
                return json.loads(raw)
            except ValueError:
                pass
        return raw
    if kind == "bool":
        words = {"true": True, "yes": True, "1": True, "false": False, "no": False,
                 "0": False}
        if raw.lower() in words:
            return words[raw.lower()]
        raise ValueError(f"--set {name}={text}: {name} takes true or false")
    if kind == "dims" and "," in raw and not raw.startswith("["):
        raw = "[" + raw + "]"
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    try:
        return check_setting(name, value)
    except TypeError:
        want = _TYPE_WORDS[kind] + (" or none" if SETTING_TYPES[name].endswith("?") else "")
        raise ValueError(f"--set {name}={text}: {name} takes {want}") from None


#: (low, high) tuples of these names mean log-uniform in random search.
LOG_SCALE = ("learning_rate", "reg", "weight_scale")

_WIDTH_ALIASES = ("hidden_dim", "hidden_size")


def _check_names(names: Iterable[str], what: str) -> None:
    unknown = [n for n in names if n not in ROUTES]
    if unknown:
        raise ValueError(
            f"unknown {what} {', '.join(map(repr, unknown))}: a sweep takes the keyword "
            f"names of Net, Solver and optim_config: {', '.join(sorted(ROUTES))}")


def route_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any],
                                                   dict[str, Any], Optional[int]]:
    """Split a trial configuration by destination.

    Returns
    -------
    model_kwargs : dict
        Net keywords; ``hidden_dims`` (list of int, from hidden_dims / hidden_dim /
        hidden_size), ``input_dim`` and ``num_classes`` stay in it when given.
    solver_kwargs : dict
    optim_config : dict
    seed : int or None
        The configuration's own seed, if it has one.
    """
    _check_names(config, "setting(s)")
    out: dict[str, dict[str, Any]] = {"model": {}, "solver": {}, "optim": {}, "trial": {}}
    for name, value in config.items():
        out[ROUTES[name]][name] = value
    model = out["model"]
    widths = [n for n in ("hidden_dims", *_WIDTH_ALIASES) if n in model]
    if len(widths) > 1:
        raise ValueError(f"give one of {', '.join(widths)}, not several")
    for alias in _WIDTH_ALIASES:
        if alias in model:
            model["hidden_dims"] = [model.pop(alias)]
    if "hidden_dims" in model:
        dims = model["hidden_dims"]
        model["hidden_dims"] = [dims] if isinstance(dims, numbers.Integral) else list(dims)
    return model, out["solver"], out["optim"], out["trial"].get("seed")


def _defaults_for(names: Iterable[str]) -> dict[str, Any]:
    """The front-end defaults of the settings not among ``names`` (JSON-ready values).

    ``hidden_dims`` counts as given when one of its aliases (hidden_dim, hidden_size) is.
    """
    names = set(names)
    out: dict[str, Any] = {}
    for name, value in FRONTEND_DEFAULTS.items():
        if name in names or (name == "hidden_dims" and names & set(_WIDTH_ALIASES)):
            continue
        out[name] = _plain(value)
    return out


def _describe_optimiser(space: Mapping[str, Any], fixed: Mapping[str, Any]) -> str:
    """The line a verbose sweep prints about its update rule and learning rate."""
    rule = fixed.get("update_rule", FRONTEND_DEFAULTS["update_rule"])
    lr = fixed.get("learning_rate", FRONTEND_DEFAULTS["learning_rate"])
    if "update_rule" not in space and "learning_rate" not in space:
        return describe_rule(rule, lr)
    rule = "swept" if "update_rule" in space else rule
    lr = "swept" if "learning_rate" in space else f"{lr:g}"
    return f"update rule: {rule}, learning rate {lr}"


# ---------------------------------------------------------------------- values

def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a setting: numpy scalars to Python, tuples to lists,
    dtypes to their names, non-finite floats to None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, np.dtype):
        return value.name
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"setting value {value!r} ({type(value).__name__}) cannot be stored "
                    "in a study: use numbers, strings, None, or lists of them")


def trial_key(config: Mapping[str, Any]) -> str:
    """Stable identity of a configuration: sha256 of its sorted JSON, first 16 hex digits."""
    text = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seed_of(key: str, config: Mapping[str, Any]) -> int:
    """The trial's seed: ``config['seed']`` when given, else derived from its key (so a
    configuration trains the same wherever it runs)."""
    if config.get("seed") is not None:
        return int(config["seed"])
    return int(key[:8], 16) & 0x7FFFFFFF


# ---------------------------------------------------------------------- distributions

class _Distribution:
    """A search-space description that becomes an Optuna distribution."""

    def to_optuna(self) -> Any:  # pragma: no cover - abstract
        """The Optuna distribution this description stands for."""
        raise NotImplementedError


class loguniform(_Distribution):
    """Uniform in orders of magnitude on [low, high] (0 < low < high): Optuna's
    ``FloatDistribution(low, high, log=True)``."""

    def __init__(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not (0 < low < high and math.isfinite(high)):
            raise ValueError(f"loguniform needs 0 < low < high, got ({low}, {high})")
        self.low, self.high = low, high

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution
        return FloatDistribution(self.low, self.high, log=True)

    def __repr__(self) -> str:
        return f"loguniform({self.low!r}, {self.high!r})"


class uniform(_Distribution):
    """Uniform on [low, high]: ``FloatDistribution(low, high)``."""

    def __init__(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not (low < high and math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"uniform needs finite low < high, got ({low}, {high})")
        self.low, self.high = low, high

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution
        return FloatDistribution(self.low, self.high)

    def __repr__(self) -> str:
        return f"uniform({self.low!r}, {self.high!r})"


class randint(_Distribution):
    """An integer in [low, high], both ends included: ``IntDistribution(low, high)``."""

    def __init__(self, low: int, high: int) -> None:
        if not all(_is_int(v) for v in (low, high)) or low > high:
            raise ValueError(f"randint needs integers low <= high, got ({low!r}, {high!r})")
        self.low, self.high = int(low), int(high)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution
        return IntDistribution(self.low, self.high)

    def __repr__(self) -> str:
        return f"randint({self.low!r}, {self.high!r})"


class choice(_Distribution):
    """One of ``options`` (also a grid axis): Optuna's ``CategoricalDistribution``."""

    def __init__(self, options: Iterable[Any]) -> None:
        self.options = list(options)
        if not self.options:
            raise ValueError("choice needs at least one option")

    def to_optuna(self) -> Any:
        return _categorical(self.options)[0]

    def __repr__(self) -> str:
        return f"choice({self.options!r})"


_SCALARS = (type(None), bool, int, float, str)


def _categorical(options: Iterable[Any]) -> tuple[Any, bool]:
    """``(CategoricalDistribution, encoded)``.  Optuna's choices are None, bool, int,
    float or str: when one option is anything else (``hidden_dims`` lists) every option
    is stored as its JSON text and ``encoded`` is True."""
    from optuna.distributions import CategoricalDistribution
    plain: list[Any] = []
    for option in options:
        option = _plain(option)
        if option not in plain:
            plain.append(option)
    encoded = not all(isinstance(o, _SCALARS) for o in plain)
    if encoded:
        plain = [json.dumps(o) for o in plain]
    return CategoricalDistribution(plain), encoded


def _is_optuna_distribution(spec: object) -> bool:
    return type(spec).__module__.startswith("optuna.distributions")


def optuna_space(space: Mapping[str, Any], search: str) -> tuple[dict[str, Any], set[str]]:
    """The Optuna distributions of ``space`` and the names whose values are JSON text.

    Grid search: every value is a list of candidates (a :class:`choice`, or one value);
    the other searches also take :class:`loguniform`, :class:`uniform`,
    :class:`randint`, Optuna distributions and ``(low, high)`` tuples of numbers.
    """
    dists: dict[str, Any] = {}
    encoded: set[str] = set()
    for name, spec in space.items():
        if search == "grid":
            if isinstance(spec, choice):
                spec = spec.options
            elif isinstance(spec, _Distribution) or _is_optuna_distribution(spec) \
                    or hasattr(spec, "rvs"):
                raise ValueError(f"grid search needs a list of values for {name!r}, got "
                                 f"{spec!r} (use search='random' or 'tpe' for distributions)")
            elif not isinstance(spec, (list, tuple)):
                spec = [spec]
            if len(spec) == 0:
                raise ValueError(f"space[{name!r}] is empty")
            dists[name], is_encoded = _categorical(spec)
        else:
            dists[name], is_encoded = _as_distribution(name, spec)
        if is_encoded:
            encoded.add(name)
    return dists, encoded


def _as_distribution(name: str, spec: Any) -> tuple[Any, bool]:
    if isinstance(spec, choice):
        return _categorical(spec.options)
    if isinstance(spec, _Distribution):
        return spec.to_optuna(), False
    if _is_optuna_distribution(spec):
        return spec, False
    if hasattr(spec, "rvs"):
        raise TypeError(f"space[{name!r}]: scipy.stats distributions are not supported; "
                        "use loguniform, uniform, randint or choice from fastfc.sweep, or "
                        "an Optuna distribution")
    if isinstance(spec, tuple) and len(spec) == 2 and name != "hidden_dims" \
            and all(_is_number(v) for v in spec):
        low, high = spec
        if name in LOG_SCALE:
            return loguniform(low, high).to_optuna(), False
        if all(_is_int(v) for v in spec):
            return randint(low, high).to_optuna(), False
        return uniform(low, high).to_optuna(), False
    if isinstance(spec, (list, tuple)):
        if len(spec) == 0:
            raise ValueError(f"space[{name!r}] is empty")
        return _categorical(spec)
    return _categorical([spec])


def decode_params(params: Mapping[str, Any], encoded: Collection[str]) -> dict[str, Any]:
    """Trial parameters as settings: JSON text back to lists for the ``encoded`` names."""
    return {name: (json.loads(value) if name in encoded else _plain(value))
            for name, value in params.items()}


def grid_configs(space: Mapping[str, Any], fixed: Optional[Mapping[str, Any]] = None,
                 n_trials: Optional[int] = None) -> list[dict[str, Any]]:
    """The grid's configurations in run order: the Cartesian product of the candidates
    in the order of ``space`` (the first ``n_trials`` when given), fixed settings added."""
    dists, encoded = optuna_space(space, "grid")
    base = {k: _plain(v) for k, v in (fixed or {}).items()}
    configs = []
    axes = [[(name, value) for value in dist.choices] for name, dist in dists.items()]
    for combo in itertools.product(*axes):
        configs.append(dict(base, **decode_params(dict(combo), encoded)))
        if n_trials is not None and len(configs) == n_trials:
            break
    return configs


def check_space(space: Any, fixed: Mapping[str, Any]) -> None:
    """ValueError unless ``space`` is a non-empty dict of known names not also fixed."""
    if not isinstance(space, dict) or not space:
        raise ValueError("space must be a non-empty dict of setting name -> values")
    _check_names(space, "swept setting(s)")
    both = sorted(set(space) & set(fixed))
    if both:
        raise ValueError(f"{', '.join(both)} given both in space and as fixed settings")


_DIST_NAMES: dict[str, type[_Distribution]] = {"loguniform": loguniform, "uniform": uniform,
                                               "randint": randint, "choice": choice}


def parse_space(obj: Any) -> dict[str, Any]:
    """A space from its JSON form: lists of candidates, or one-key objects
    ``{"loguniform": [low, high]}``, ``{"uniform": [...]}``, ``{"randint": [...]}``,
    ``{"choice": [...]}`` and ``{"range": [low, high]}`` (the (low, high) tuple form)."""
    if not isinstance(obj, dict):
        raise ValueError("the space must be a JSON object of setting name -> values")
    space: dict[str, Any] = {}
    for name, spec in obj.items():
        if isinstance(spec, dict):
            if len(spec) != 1:
                raise ValueError(f"space[{name!r}]: a distribution is an object with one "
                                 f"key ({', '.join([*_DIST_NAMES, 'range'])}), got {spec}")
            (kind, args), = spec.items()
            if not isinstance(args, list):
                raise ValueError(f"space[{name!r}]: {{{kind!r}: ...}} takes a list of "
                                 f"arguments, got {args!r}")
            if kind == "range":
                space[name] = tuple(args)
            elif kind == "choice":
                space[name] = choice(args)
            elif kind in _DIST_NAMES:
                try:
                    space[name] = _DIST_NAMES[kind](*args)
                except TypeError:
                    raise ValueError(f"space[{name!r}]: {kind} takes [low, high], got "
                                     f"{args!r}") from None
            else:
                raise ValueError(f"space[{name!r}]: unknown distribution {kind!r}")
        else:
            space[name] = spec
    return space
