"""Hyper-parameter sweeps: grid or random search, on local processes or a Dask cluster.

>>> from fastfc.sweep import sweep, loguniform
>>> trials, best = sweep({"hidden_dims": [[100], [200]], "learning_rate": [1e-3, 3e-3]},
...                      data, update_rule="adam", num_epochs=10)       # doctest: +SKIP

Every trial builds a :class:`fastfc.Net` and trains it with :class:`fastfc.Solver` on
``data`` (a Solver data dict: X_train, y_train, X_val, y_val).  A setting is named by
its keyword where it goes -- the table :data:`ROUTES` says which place:

* the model (``Net``): hidden_dims, activation, dropout_keep_ratio, normalization, reg,
  weight_scale, init, dtype, alpha, loss, bn_momentum, eps, input_dim, num_classes
  (``hidden_dim`` / ``hidden_size`` give one hidden layer of that width; input_dim and
  num_classes are read from ``data`` when not given);
* the Solver: update_rule, batch_size, num_epochs, lr_decay, num_train_samples,
  num_val_samples, patience, schedule, time_budget, shuffle;
* the update rule's ``optim_config``: learning_rate, momentum, decay_rate, beta1, beta2,
  epsilon;
* ``seed``: the trial's seed (by default it is derived from the trial's configuration;
  sweep over it, ``space={"seed": [0, 1, 2], ...}``, to repeat each configuration --
  the ``seed`` argument of :func:`sweep` itself seeds the random search).

Swept settings go in ``space``; fixed ones are ordinary keyword arguments of
:func:`sweep` (or the dict ``fixed``, the only way to fix ``seed``, since the keyword
``seed`` seeds the random search).  Unknown names raise ValueError naming them.

Every training setting neither swept nor fixed takes fastfc's front-end default
(``fastfc._defaults.FRONTEND_DEFAULTS``, the same as ``fastfc train`` and the
estimators): Adam at learning rate 1e-3, reg 1e-4, batches of 100, one hidden layer of
100 ReLU units -- not the course Solver's plain SGD.  A trial's configuration (and so
its key) holds the settings given; the defaults it ran with are recorded beside it,
under ``"defaults"``, and a recorded trial whose defaults are not today's is run again
on resume.
A trial whose training diverges (NaN/inf, or a loss 1000 times its start) stops there
and is recorded with status ``"diverged"`` and the Solver's message.

Search
------
``search='grid'``: every value of ``space`` is a list of candidates; the trials are the
Cartesian product in the order of ``space`` (``n_trials`` optionally keeps the first n).

``search='random'``: ``n_trials`` configurations drawn with
``np.random.default_rng(seed)``; a value of ``space`` may be

* a distribution of this module: :class:`loguniform`, :class:`uniform`,
  :class:`randint`, :class:`choice` (or any object with ``rvs(random_state=rng)``,
  e.g. a frozen ``scipy.stats`` distribution);
* a list: one of its items, uniformly;
* a ``(low, high)`` tuple of two numbers: log-uniform for learning_rate, reg and
  weight_scale, an integer in [low, high] when both are ints, uniform otherwise.

Trials, results and resume
--------------------------
A trial is identified by :func:`trial_key`, a hash of its whole configuration (sorted
JSON of the swept and fixed settings).  Its seed -- the ``Net`` seed and
``np.random.seed`` for the Solver's minibatches -- is derived from that key, so a
trial gives the same result whichever worker runs it.  Each finished trial is appended
to the JSONL file ``results`` (one complete JSON object per line, flushed and fsynced)::

    {"key", "status": "ok" | "failed" | "diverged", "best_val_acc", "final_train_acc",
     "loss_first", "loss_last", "loss_min", "n_iterations", "wall_time", "worker", "seed",
     "config", "defaults" (the front-end defaults of the settings config does not give),
     "error" (failed and diverged only), "retryable" (failed because a worker was lost)}

A re-run with the same file skips the trials already there; trials that failed because
their worker died are run again, and all failed or diverged trials with
``retry_failed=True``.  A line that is not a well-formed trial record (a truncated last
line left by a crash, or a damaged line anywhere) is skipped with a warning naming its
line number, and every valid record is kept.  ``results`` must be a regular file (or
not exist yet): a device or a FIFO is refused, as it may never end.  The file belongs
to one data set: the key does not cover ``data``.

Backends
--------
``backend='local'``: a pool of ``n_jobs`` worker processes (spawned; default and
maximum: one per core).  The data are written once to a temporary directory and
memory-mapped read-only by every worker at its start-up (one copy in memory, nothing
shipped per trial); each worker limits its BLAS to ``max(1, cores // n_jobs)`` threads
with threadpoolctl, so workers x threads never exceeds the cores.  ``n_jobs=1`` runs the
trials in this process, one after the other.  The workers do not outlive the sweep: each
exits when its parent process dies, even by SIGKILL (Linux: the parent-death signal;
elsewhere a watchdog thread notices the new parent).  The data directory is removed on
every exit path, SIGTERM included: while a local sweep runs in the main thread with
SIGTERM at its default action, a SIGTERM stops the workers, removes the directory and
then terminates the process as it would have.  Directories left by a sweep that was
SIGKILLed are removed by the next local sweep (those whose process is gone).

A worker that dies takes the pool down: the trials that were running are re-run one at
a time in a fresh worker, so the culprit is found; one that keeps killing its worker is
recorded as failed after ``retries`` re-runs (with ``retries=0`` every trial running at
the time is), and every other result is kept.

``backend='dask'``: trials are tasks on a ``dask.distributed`` cluster: ``scheduler`` is
a ``Client``, a scheduler address, or None for a ``LocalCluster`` (``n_jobs`` worker
processes of one thread, on 127.0.0.1, no dashboard) started and closed by the call.
The data are scattered to every worker once.  The embedded LocalCluster's workers limit
their BLAS as the local backend does; the workers of a given cluster keep their own
setting (Dask's nannies start them with one BLAS thread).  A worker lost mid-trial
makes the scheduler run the task elsewhere (up to
``distributed.scheduler.allowed-failures`` times, then the trial is recorded as failed,
retryable); an exception inside a trial is recorded as a failed trial.

The best model
--------------
:func:`sweep` returns ``(trials, best_model)``: every trial of this sweep as a dict
(those read back from ``results`` carry ``"resumed": True``), best validation accuracy
first and failed trials last, and the trained ``Net`` of the best trial (with the
Solver's best parameters).  When that trial was read back from ``results`` instead of
run, it is trained again here -- same configuration, same seed -- to return its model;
``return_model=False`` skips that and returns None.
"""
import argparse
import hashlib
import itertools
import json
import math
import numbers
import os
import signal
import socket
import stat
import sys
import time
import uuid
import warnings
from collections import namedtuple

import numpy as np

from fastfc._defaults import FRONTEND_DEFAULTS, FRONTEND_ON_DIVERGENCE, describe_rule

__all__ = [
    "sweep", "loguniform", "uniform", "randint", "choice", "ROUTES", "route_config",
    "expand_space", "trial_key", "run_trial", "load_results", "add_cli_arguments",
    "cli_main", "SETTING_TYPES", "check_setting", "parse_setting",
]

# ---------------------------------------------------------------------- routing

#: Where each setting goes: 'model' (Net constructor), 'solver' (Solver keyword),
#: 'optim' (optim_config), 'trial' (the trial's seed).
ROUTES = {
    # Net(...)
    "hidden_dims": "model", "hidden_dim": "model", "hidden_size": "model",
    "input_dim": "model", "num_classes": "model", "activation": "model",
    "dropout_keep_ratio": "model", "normalization": "model", "reg": "model",
    "weight_scale": "model", "init": "model", "dtype": "model", "alpha": "model",
    "loss": "model", "bn_momentum": "model", "eps": "model",
    # Solver(...)
    "update_rule": "solver", "batch_size": "solver", "num_epochs": "solver",
    "lr_decay": "solver", "num_train_samples": "solver", "num_val_samples": "solver",
    "patience": "solver", "schedule": "solver", "time_budget": "solver", "shuffle": "solver",
    # optim_config
    "learning_rate": "optim", "momentum": "optim", "decay_rate": "optim",
    "beta1": "optim", "beta2": "optim", "epsilon": "optim",
    # the trial itself
    "seed": "trial",
}

#: The type of each setting's value, checked for fixed settings (and for ``--set``):
#: 'int', 'real', 'bool', 'str', 'dims' (an int or a list of ints), 'any'; a trailing
#: '?' also allows None.
SETTING_TYPES = {
    "hidden_dims": "dims", "hidden_dim": "int", "hidden_size": "int",
    "input_dim": "int", "num_classes": "int", "activation": "str",
    "dropout_keep_ratio": "real", "normalization": "str?", "reg": "real",
    "weight_scale": "real?", "init": "str?", "dtype": "any", "alpha": "real",
    "loss": "str", "bn_momentum": "real", "eps": "real",
    "update_rule": "str", "batch_size": "int", "num_epochs": "int", "lr_decay": "real",
    "num_train_samples": "int?", "num_val_samples": "int?", "patience": "int?",
    "schedule": "str?", "time_budget": "real?", "shuffle": "bool",
    "learning_rate": "real", "momentum": "real", "decay_rate": "real", "beta1": "real",
    "beta2": "real", "epsilon": "real",
    "seed": "int?",
}

_TYPE_WORDS = {"int": "an integer", "real": "a finite number", "bool": "true or false",
               "str": "a string", "dims": "an integer or a list of integers",
               "any": "a value"}


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def check_setting(name, value):
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


def parse_setting(name, text):
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


def _check_names(names, what):
    unknown = [n for n in names if n not in ROUTES]
    if unknown:
        raise ValueError(
            f"unknown {what} {', '.join(map(repr, unknown))}: a sweep takes the keyword "
            f"names of Net, Solver and optim_config: {', '.join(sorted(ROUTES))}")


def route_config(config):
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
    out = {"model": {}, "solver": {}, "optim": {}, "trial": {}}
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


def _defaults_for(names):
    """The front-end defaults of the settings not among ``names`` (JSON-ready values).

    ``hidden_dims`` counts as given when one of its aliases (hidden_dim, hidden_size) is.
    """
    names = set(names)
    out = {}
    for name, value in FRONTEND_DEFAULTS.items():
        if name in names or (name == "hidden_dims" and names & set(_WIDTH_ALIASES)):
            continue
        out[name] = _plain(value)
    return out


def _describe_optimiser(space, fixed):
    """The line a verbose sweep prints about its update rule and learning rate."""
    rule = fixed.get("update_rule", FRONTEND_DEFAULTS["update_rule"])
    lr = fixed.get("learning_rate", FRONTEND_DEFAULTS["learning_rate"])
    if "update_rule" not in space and "learning_rate" not in space:
        return describe_rule(rule, lr)
    rule = "swept" if "update_rule" in space else rule
    lr = "swept" if "learning_rate" in space else f"{lr:g}"
    return f"update rule: {rule}, learning rate {lr}"


# ---------------------------------------------------------------------- distributions

class _Distribution:
    """A random-search distribution: ``sample(rng)`` with a numpy Generator."""

    def sample(self, rng):  # pragma: no cover - abstract
        raise NotImplementedError


class loguniform(_Distribution):
    """``exp(U(log low, log high))``: uniform in orders of magnitude (0 < low < high)."""

    def __init__(self, low, high):
        low, high = float(low), float(high)
        if not (0 < low < high and math.isfinite(high)):
            raise ValueError(f"loguniform needs 0 < low < high, got ({low}, {high})")
        self.low, self.high = low, high

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def __repr__(self):
        return f"loguniform({self.low!r}, {self.high!r})"


class uniform(_Distribution):
    """Uniform on [low, high)."""

    def __init__(self, low, high):
        low, high = float(low), float(high)
        if not (low < high and math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"uniform needs finite low < high, got ({low}, {high})")
        self.low, self.high = low, high

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def __repr__(self):
        return f"uniform({self.low!r}, {self.high!r})"


class randint(_Distribution):
    """A uniform integer in [low, high] (both ends included)."""

    def __init__(self, low, high):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                   for v in (low, high)) or low > high:
            raise ValueError(f"randint needs integers low <= high, got ({low!r}, {high!r})")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def __repr__(self):
        return f"randint({self.low!r}, {self.high!r})"


class choice(_Distribution):
    """One of ``options``, uniformly (also usable as a grid axis)."""

    def __init__(self, options):
        self.options = list(options)
        if not self.options:
            raise ValueError("choice needs at least one option")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def __repr__(self):
        return f"choice({self.options!r})"


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _as_distribution(name, spec):
    """The random-search distribution a value of ``space`` stands for."""
    if isinstance(spec, _Distribution):
        return spec
    if hasattr(spec, "rvs"):
        return _Rvs(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and name not in ("hidden_dims",) \
            and all(_is_number(v) for v in spec):
        low, high = spec
        if name in LOG_SCALE:
            return loguniform(low, high)
        if all(isinstance(v, numbers.Integral) for v in spec):
            return randint(low, high)
        return uniform(low, high)
    if isinstance(spec, (list, tuple)):
        return choice(spec)
    return choice([spec])


class _Rvs(_Distribution):
    def __init__(self, dist):
        self.dist = dist

    def sample(self, rng):
        return _plain(self.dist.rvs(random_state=rng))


# ---------------------------------------------------------------------- configurations

def _plain(value):
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
                    "in a results file: use numbers, strings, None, or lists of them")


def trial_key(config):
    """Stable identity of a trial: sha256 of its sorted JSON, first 16 hex digits."""
    text = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _seed_of(key, config):
    if config.get("seed") is not None:
        return int(config["seed"])
    return int(key[:8], 16) & 0x7FFFFFFF


def expand_space(space, search="grid", n_trials=None, seed=0, fixed=None):
    """The trial configurations of a sweep, in run order (dicts of JSON-ready values).

    See the module docstring for the forms ``space`` takes.  Random search draws
    ``n_trials`` distinct configurations (fewer, with a warning, when the space has
    fewer); grid search keeps the first ``n_trials`` when given.
    """
    if not isinstance(space, dict) or not space:
        raise ValueError("space must be a non-empty dict of setting name -> values")
    fixed = dict(fixed or {})
    _check_names(space, "swept setting(s)")
    _check_names(fixed, "setting(s)")
    both = sorted(set(space) & set(fixed))
    if both:
        raise ValueError(f"{', '.join(both)} given both in space and as fixed settings")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) \
                or n_trials < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    base = {k: _plain(v) for k, v in fixed.items()}
    configs = []
    if search == "grid":
        axes = []
        for name, values in space.items():
            if isinstance(values, choice):
                values = values.options
            elif isinstance(values, _Distribution) or hasattr(values, "rvs"):
                raise ValueError(f"grid search needs a list of values for {name!r}, got "
                                 f"{values!r} (use search='random' for distributions)")
            elif not isinstance(values, (list, tuple)):
                values = [values]
            if len(values) == 0:
                raise ValueError(f"space[{name!r}] is empty")
            axes.append([(name, _plain(v)) for v in values])
        for combo in itertools.product(*axes):
            configs.append(dict(base, **dict(combo)))
            if n_trials is not None and len(configs) == n_trials:
                break
    elif search == "random":
        if n_trials is None:
            raise ValueError("search='random' needs n_trials")
        dists = {name: _as_distribution(name, spec) for name, spec in space.items()}
        rng = np.random.default_rng(seed)
        seen = set()
        for _ in range(100 * n_trials):
            config = dict(base, **{n: _plain(d.sample(rng)) for n, d in dists.items()})
            key = trial_key(config)
            if key not in seen:
                seen.add(key)
                configs.append(config)
                if len(configs) == n_trials:
                    break
        if len(configs) < n_trials:
            warnings.warn(f"the space holds only {len(configs)} distinct configurations; "
                          f"running those instead of {n_trials}", RuntimeWarning, stacklevel=2)
    else:
        raise ValueError(f"search must be 'grid' or 'random', got {search!r}")
    for config in configs:
        route_config(config)  # hidden_dims aliases clash -> ValueError before any run
    return configs


# ---------------------------------------------------------------------- one trial

def _check_data(data):
    if not isinstance(data, dict):
        raise TypeError(f"data must be a Solver data dict, got {type(data).__name__}")
    missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
    if missing:
        raise ValueError(f"data is missing {', '.join(missing)}")


def _layer_dims(model_kwargs, data):
    """[input_dim, *hidden_dims, num_classes], the ends read from data when not given."""
    input_dim = model_kwargs.pop("input_dim", None)
    num_classes = model_kwargs.pop("num_classes", None)
    hidden = model_kwargs.pop("hidden_dims", [100])
    if input_dim is None:
        input_dim = int(np.prod(np.shape(data["X_train"])[1:]))
    if num_classes is None:
        num_classes = int(max(np.max(data["y_train"]), np.max(data["y_val"]))) + 1
    return [input_dim, *hidden, num_classes]


def build_model(data, config, seed):
    """The Net a trial trains, and the Solver keywords (optim_config included).

    Settings missing from ``config`` take the front-end defaults (see the module
    docstring), as they do in :func:`sweep`."""
    from fastfc.net import Net
    config = dict(_defaults_for(config), **config)
    model_kwargs, solver_kwargs, optim_config, _ = route_config(config)
    layer_dims = _layer_dims(model_kwargs, data)
    model = Net(layer_dims, seed=seed, **model_kwargs)
    return model, dict(solver_kwargs, optim_config=optim_config)


def run_trial(data, config, seed):
    """Train one configuration; the default ``runner`` of :func:`sweep`.

    Seeds NumPy's global generator with ``seed`` (the Solver's minibatches) and builds
    ``Net(..., seed=seed)``.  The Solver runs with the front ends' divergence rule
    (``on_divergence='raise'``: a diverged trial raises
    :class:`fastfc.solver.TrainingDiverged`, recorded as ``"diverged"``) and keeps the
    best epoch's batch-norm statistics with its parameters (``restore_norm_stats``).
    Returns a dict: best_val_acc, final_train_acc, loss_first, loss_last, loss_min,
    n_iterations, epochs, stopped_early and model (the Net, holding the best parameters).
    A custom runner must return at least best_val_acc (and may return model).
    """
    from fastfc.solver import Solver
    model, solver_kwargs = build_model(data, config, seed)
    np.random.seed(seed)
    solver = Solver(model, data, verbose=False, progress=False,
                    on_divergence=FRONTEND_ON_DIVERGENCE, restore_norm_stats=True,
                    **solver_kwargs)
    solver.train()
    losses = np.asarray(solver.loss_history, dtype=np.float64)
    finite = losses[np.isfinite(losses)]
    return {
        "best_val_acc": float(solver.best_val_acc),
        "final_train_acc": (float(solver.train_acc_history[-1])
                            if solver.train_acc_history else None),
        "loss_first": float(losses[0]) if losses.size else None,
        "loss_last": float(losses[-1]) if losses.size else None,
        "loss_min": float(finite.min()) if finite.size else None,
        "n_iterations": int(losses.size),
        "epochs": int(solver.epoch),
        "stopped_early": bool(solver.stopped_early),
        "model": model,
    }


def _worker_name():
    """Dask worker address inside a Dask task, else host:pid."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker
            return get_worker().address
        except (ValueError, ImportError, AttributeError):
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


_RESULT_FIELDS = ("best_val_acc", "final_train_acc", "loss_first", "loss_last", "loss_min",
                  "n_iterations")


def _execute(runner, data, key, config, seed, blas_threads=None):
    """Run one trial and return its record (with 'model' when the runner gave one).

    An exception inside the trial becomes a failed record, a
    :class:`fastfc.solver.TrainingDiverged` a diverged one.  NumPy's global generator is
    restored afterwards (the trial may run in the caller's process).
    """
    from fastfc.solver import TrainingDiverged
    t0 = time.perf_counter()
    record = {"key": key, "status": "ok"}
    state = np.random.get_state()
    limiter = None
    try:
        if blas_threads:
            from threadpoolctl import threadpool_limits
            limiter = threadpool_limits(limits=blas_threads)
        out = dict(runner(data, config, seed))
        if "best_val_acc" not in out:
            raise ValueError("the runner returned no 'best_val_acc'")
        record.update(out)
    except TrainingDiverged as exc:  # a property of the configuration, not a failure
        record.update(status="diverged", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # the trial failed: record it, keep the sweep going
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        np.random.set_state(state)
    for field in _RESULT_FIELDS:
        record.setdefault(field, None)
    record.update(wall_time=time.perf_counter() - t0, worker=_worker_name(), seed=seed,
                  config=config, defaults=_defaults_for(config))
    return record


def _failed(job, error, retryable):
    record = {"key": job.key, "status": "failed"}
    record.update({f: None for f in _RESULT_FIELDS})
    record.update(wall_time=None, worker=None, seed=job.seed, config=job.config,
                  defaults=_defaults_for(job.config), error=error,
                  retryable=bool(retryable))
    return record


# ---------------------------------------------------------------------- results file

_STATUSES = ("ok", "failed", "diverged")


def _check_results_path(path):
    """ValueError unless ``path`` is a regular file or does not exist yet.

    A device (``/dev/full`` reads as endless zero bytes, ``/dev/zero`` too), a FIFO or
    a directory would make reading the journal hang or fail half-way."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"results file {path!r} cannot be read: {exc}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise ValueError(f"results={path!r} is {kind}: the results journal must be a "
                         "regular file (or a path that does not exist yet); use "
                         "results=None (fastfc sweep --results '') to keep no journal")


def _record_problem(record):
    """Why ``record`` (parsed JSON) is not a usable trial record, or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    key = record.get("key")
    if not isinstance(key, str) or not key:
        return "no 'key' string"
    if record.get("status") not in _STATUSES:
        return f"status {record.get('status')!r} is not one of {', '.join(_STATUSES)}"
    config = record.get("config")
    if not isinstance(config, dict):
        return "no 'config' object"
    for field in (*_RESULT_FIELDS, "wall_time"):
        value = record.get(field)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            return f"{field} is {value!r}, not a number"
    if record["status"] == "ok" and record.get("best_val_acc") is None:
        return "an 'ok' record without best_val_acc"
    try:
        if trial_key(config) != key:
            return "its key does not match its config"
    except TypeError:
        return "its config holds values that are not settings"
    return None


def load_results(path):
    """The records of a results file by key (the last line of a key wins).

    A line that is not a well-formed trial record -- cut short by a crash, not UTF-8,
    not JSON, or JSON without the fields a record has -- is skipped with a warning that
    names its line number; every valid record is kept.  ``path`` must be a regular file
    (ValueError otherwise); a missing file or None gives no records.
    """
    records = {}
    if path is None:
        return records
    path = os.fspath(path)
    _check_results_path(path)
    if not os.path.exists(path):
        return records
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "not UTF-8 text"
            except ValueError as exc:
                problem = f"not JSON ({exc})"
            else:
                problem = _record_problem(record)
            if problem is not None:
                warnings.warn(f"{path}:{lineno}: skipping a line that is not a complete "
                              f"trial record: {problem}", RuntimeWarning, stacklevel=2)
                continue
            records[record["key"]] = record
    return records


class _ResultsWriter:
    """Appends one JSON object per line, flushed and fsynced after each."""

    def __init__(self, path):
        self.path = path
        self._f = None
        if path is None:
            return
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self._f = open(path, "a+b")
        self._f.seek(0, os.SEEK_END)
        if self._f.tell() > 0:  # finish a line cut short by a crash
            self._f.seek(-1, os.SEEK_END)
            last = self._f.read(1)
            self._f.seek(0, os.SEEK_END)
            if last != b"\n":
                self._f.write(b"\n")

    def write(self, record):
        if self._f is None:
            return
        line = json.dumps(_plain(record), allow_nan=False, separators=(", ", ": "))
        self._f.write(line.encode("utf-8") + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


# ---------------------------------------------------------------------- backends

_Job = namedtuple("_Job", "key config seed")


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_inline(jobs, data, runner, emit):
    for job in jobs:
        emit(_execute(runner, data, job.key, job.config, job.seed))


# local process pool ---------------------------------------------------------------

_WORKER = {}


def _stash_data(data, directory):
    """Write ``data`` to ``directory`` for the workers: arrays as .npy files (mapped
    read-only by every worker, so the pages are shared), anything else pickled."""
    import pickle
    arrays, other = {}, {}
    for i, (name, value) in enumerate(data.items()):
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[name] = f"{i}.npy"
            np.save(os.path.join(directory, arrays[name]), value, allow_pickle=False)
        else:
            other[name] = value
    with open(os.path.join(directory, "manifest.pkl"), "wb") as f:
        pickle.dump({"arrays": arrays, "other": other}, f)


def _load_stash(directory):
    import pickle
    with open(os.path.join(directory, "manifest.pkl"), "rb") as f:
        manifest = pickle.load(f)
    data = {}
    for name, filename in manifest["arrays"].items():
        data[name] = np.load(os.path.join(directory, filename), mmap_mode="r")
    data.update(manifest["other"])
    return data


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _parent_death_signal(signum):
    """Ask Linux to send ``signum`` to this process when its parent dies; True if armed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError, TypeError):
        return False


def _watch_parent(parent, interval=1.0):
    """Daemon thread: end this process once its parent is no longer ``parent``."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="fastfc-parent-watchdog", daemon=True).start()


def _exit_with_parent(parent):
    """Make this worker exit when the sweep's process ``parent`` dies, even by SIGKILL.

    Linux: the parent-death signal (SIGTERM; checked against a parent that died before
    it was armed).  Elsewhere, or when prctl is unavailable: a watchdog thread polling
    ``os.getppid()`` once a second.
    """
    armed = _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)
    if not armed:
        _watch_parent(parent)


def _init_worker(stash, blas_threads, started, parent=None):
    """Pool initializer: tie the worker's life to the parent's, map the data (written
    once by the parent) and limit BLAS threads.

    The data travel through files rather than the initializer's arguments: a worker
    that dies while starting could otherwise leave the parent blocked on a full pipe.
    """
    if parent is not None:
        _exit_with_parent(parent)
    import fastfc.net  # noqa: F401  (loads the kernels and scipy's BLAS first)
    _WORKER["data"] = _load_stash(stash)
    _WORKER["started"] = started
    if blas_threads:
        from threadpoolctl import threadpool_limits
        _WORKER["limits"] = threadpool_limits(limits=blas_threads)


def _local_task(runner, key, config, seed):
    _WORKER["started"].put(key)
    return _execute(runner, _WORKER["data"], key, config, seed)


def _pool_round(jobs, n_workers, ctx, stash, cores, runner, emit):
    """Run ``jobs`` in one fresh pool of ``n_workers`` processes, each with
    ``cores // n_workers`` BLAS threads.  Returns (unfinished, suspects, error): when a
    worker died, the jobs not done and, among them, those that had started."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    blas_threads = max(1, cores // n_workers)
    started = ctx.SimpleQueue()
    done = set()
    error = None
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx,
                               initializer=_init_worker,
                               initargs=(stash, blas_threads, started, os.getpid()))
    try:
        futures = {pool.submit(_local_task, runner, j.key, j.config, j.seed): j
                   for j in jobs}
        for future in as_completed(futures):
            job = futures[future]
            exc = future.exception()
            if exc is None:
                emit(future.result())
                done.add(job.key)
            elif isinstance(exc, BrokenProcessPool):
                error = exc
            else:  # the task could not even be sent or returned (pickling, ...)
                emit(_failed(job, f"{type(exc).__name__}: {exc}", retryable=False))
                done.add(job.key)
    except BaseException:  # Ctrl-C, SIGTERM (see _sigterm_runs_cleanup), a bug
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.terminate()
        for proc in processes:
            proc.join(timeout=5)
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    seen = set()
    while not started.empty():
        seen.add(started.get())
    started.close()
    unfinished = [j for j in jobs if j.key not in done]
    suspects = [j for j in unfinished if j.key in seen]
    return unfinished, suspects, error


_STASH_PREFIX = "fastfc-sweep-"


class _Terminated(BaseException):
    """SIGTERM arrived during a local sweep (raised so that the clean-up code runs)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


class _sigterm_runs_cleanup:
    """Context: a SIGTERM raises :class:`_Terminated` inside the block, so that its
    ``finally`` clauses stop the workers and remove the data directory; on leaving,
    the default action is put back and the signal raised again, so the process still
    ends as SIGTERM ends it.

    Only in the main thread and when SIGTERM is at its default action: a handler of
    the program's own is left alone (the program then decides what SIGTERM does).
    """

    def __enter__(self):
        import threading
        self.installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    signal.signal(signal.SIGTERM, _raise_terminated)
                    self.installed = True
            except (ValueError, OSError, AttributeError):  # pragma: no cover
                pass
        return self

    def __exit__(self, kind, exc, tb):
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if kind is not None and issubclass(kind, _Terminated):
                signal.raise_signal(signal.SIGTERM)  # ends the process
        return False


def _pid_is_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, somebody else's
        return False
    return False


def _remove_stale_stashes(directory=None):
    """Remove the data directories of local sweeps whose process is gone (SIGKILLed).

    Only this user's directories named ``fastfc-sweep-<pid>-*``, and only on POSIX
    (where ``os.kill(pid, 0)`` tests a process without touching it)."""
    import re
    import shutil
    import tempfile

    if os.name != "posix":
        return
    directory = tempfile.gettempdir() if directory is None else directory
    pattern = re.compile(re.escape(_STASH_PREFIX) + r"(\d+)-")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _pid_is_gone(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def _run_local(jobs, data, n_jobs, cores, runner, retries, emit):
    """Process pool with recovery from dead workers (see the module docstring).

    The data directory is named after this process (``fastfc-sweep-<pid>-*``) and
    removed on every way out; SIGTERM included (see :class:`_sigterm_runs_cleanup`)."""
    import multiprocessing
    import shutil
    import tempfile

    ctx = multiprocessing.get_context("spawn")
    _remove_stale_stashes()
    with _sigterm_runs_cleanup():
        stash = tempfile.mkdtemp(prefix=f"{_STASH_PREFIX}{os.getpid()}-")
        try:
            _stash_data(data, stash)
            _recovering_pool(jobs, ctx, stash, n_jobs, cores, runner, retries, emit)
        finally:
            shutil.rmtree(stash, ignore_errors=True)


def _recovering_pool(jobs, ctx, stash, n_jobs, cores, runner, retries, emit):
    queue = list(jobs)
    idle_breaks = 0
    while queue:
        unfinished, suspects, error = _pool_round(
            queue, min(n_jobs, len(queue)), ctx, stash, cores, runner, emit)
        if not unfinished:
            return
        if not suspects:
            # the pool broke before any trial started (e.g. a worker failed to start)
            idle_breaks += 1
            if idle_breaks > retries:
                for job in unfinished:
                    emit(_failed(job, f"worker processes keep dying before running a trial: "
                                      f"{error}", retryable=True))
                return
            queue = unfinished
            continue
        idle_breaks = 0
        suspect_keys = {j.key for j in suspects}
        queue = [j for j in unfinished if j.key not in suspect_keys]
        # the pool broke while these ran: run each alone to find the one that kills
        # its worker; an innocent one just finishes
        for job in suspects:
            for _ in range(retries):
                left, _, error = _pool_round([job], 1, ctx, stash, cores, runner, emit)
                if not left:
                    break
            else:
                emit(_failed(job, f"the worker process died while running this trial "
                                  f"({1 + retries} attempts): {error}", retryable=True))


# dask ---------------------------------------------------------------------------------

def _dask_task(runner, data, key, config, seed, blas_threads):
    return _execute(runner, data, key, config, seed, blas_threads=blas_threads)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: "
                          "pip install 'fastfc[dask]'") from exc
    return distributed


def _local_cluster_options(n_workers):
    """LocalCluster settings of the embedded default: worker processes of one thread,
    no dashboard, and every server (scheduler, its HTTP endpoint, nannies, workers) on
    the loopback interface."""
    return dict(n_workers=n_workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})


def _run_dask(jobs, data, scheduler, n_jobs, runner, retries, emit):
    distributed = _import_distributed()
    cluster = None
    own_client = False
    blas_threads = None
    if isinstance(scheduler, distributed.Client):
        client = scheduler
    elif scheduler is None:
        cluster = distributed.LocalCluster(**_local_cluster_options(n_jobs))
        client = distributed.Client(cluster)
        own_client = True
        blas_threads = max(1, _cpu_count() // n_jobs)
    elif isinstance(scheduler, str):
        client = distributed.Client(scheduler)
        own_client = True
    else:
        raise TypeError("scheduler must be a distributed.Client, a scheduler address or "
                        f"None, got {type(scheduler).__name__}")
    try:
        [data_future] = client.scatter([data], broadcast=True, hash=False)
        tag = uuid.uuid4().hex[:8]
        futures = {}
        for job in jobs:
            future = client.submit(_dask_task, runner, data_future, job.key, job.config,
                                   job.seed, blas_threads, key=f"fastfc-trial-{job.key}-{tag}",
                                   retries=retries, pure=False)
            futures[future] = job
        for future in distributed.as_completed(list(futures)):
            job = futures.pop(future)
            if future.status == "finished":
                try:
                    emit(future.result())
                except Exception as exc:  # the result could not be fetched
                    emit(_failed(job, f"{type(exc).__name__}: {exc}", retryable=True))
            else:
                exc = future.exception()
                lost = type(exc).__name__ == "KilledWorker"
                emit(_failed(job, f"{type(exc).__name__}: {exc}", retryable=lost))
            future.release()
        data_future.release()
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------- the sweep

def _sort_key(record, prefer=None):
    """Succeeded first, by best val accuracy; on a tie the trial ``prefer`` (the one
    whose model is at hand) first."""
    ok = record.get("status") == "ok" and record.get("best_val_acc") is not None
    return (0 if ok else 1, -(record.get("best_val_acc") or 0.0),
            0 if record.get("key") == prefer else 1)


def _progress_bar(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="trial", desc="sweep", dynamic_ncols=True)


def sweep(space, data, *, n_trials=None, search="grid", backend="local", n_jobs=None,
          scheduler=None, results="sweep.jsonl", seed=0, retries=2, retry_failed=False,
          progress=None, return_model=True, runner=None, verbose=False, fixed=None,
          **settings):
    """Train one model per configuration of ``space`` and rank them by validation accuracy.

    Parameters
    ----------
    space : dict
        Swept setting name -> candidate list (grid) or distribution (random); see the
        module docstring for the names and forms.
    data : dict
        Solver data: 'X_train', 'y_train', 'X_val', 'y_val'.
    n_trials : int, optional
        Random search: number of trials (required).  Grid search: keep the first n.
    search : {'grid', 'random'}
    backend : {'local', 'dask'}
    n_jobs : int, optional
        Worker processes (local) or LocalCluster workers (dask without a scheduler);
        default: the number of cores.
    scheduler : distributed.Client or str, optional
        Dask only: a client or a scheduler address; None starts a LocalCluster.
    results : str or None, default 'sweep.jsonl'
        JSONL file the records are appended to and resumed from; None keeps nothing.
    seed : int, default 0
        Seeds the random search.
    retries : int, default 2
        Re-runs of a trial whose worker died (local), or Dask's task retries.
    retry_failed : bool, default False
        Run again the trials recorded as failed in ``results``.
    progress : bool, callable or None
        True: a tqdm bar over the trials; a callable is called as
        ``progress(record, n_done, n_total)`` after each trial; None/False: nothing.
    return_model : bool, default True
        Return the best trial's Net (retraining it when it was read from ``results``).
    runner : callable, optional
        ``runner(data, config, seed) -> dict`` run for each trial instead of
        :func:`run_trial` (module-level, so worker processes can import it).
    verbose : bool, default False
        Print the update rule and learning rate the trials use before they start.
    fixed : dict, optional
        Settings shared by every trial, as a dict: the same as keyword settings, and the
        way to fix the trials' ``seed`` (the keyword ``seed`` seeds the random search).
    **settings
        Settings shared by every trial (input_dim, num_classes, num_epochs, ...).  Each
        training setting neither swept nor given takes its front-end default (see the
        module docstring).

    Returns
    -------
    trials : list of dict
        Every trial's record, best first, failed trials last.
    best_model : fastfc.Net or None
    """
    _check_data(data)
    runner = run_trial if runner is None else runner
    if not callable(runner):
        raise TypeError("runner must be callable (data, config, seed) -> dict")
    if backend not in ("local", "dask"):
        raise ValueError(f"backend must be 'local' or 'dask', got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError("scheduler is only used with backend='dask'")
    cores = _cpu_count()
    if n_jobs is None:
        n_jobs = cores
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if n_jobs > cores and not (backend == "dask" and scheduler is not None):
        warnings.warn(f"n_jobs={n_jobs} is more than the {cores} cores: using {cores} "
                      "workers", RuntimeWarning, stacklevel=2)
        n_jobs = cores
    if isinstance(retries, bool) or not isinstance(retries, numbers.Integral) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed (of the random search) must be a non-negative integer, got "
                         f"{seed!r}; a fixed seed for the trials goes in fixed={{'seed': ...}}")
    if fixed is None:
        fixed = {}
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict of setting name -> value, got "
                        f"{type(fixed).__name__}")
    both = sorted(set(fixed) & set(settings))
    if both:
        raise ValueError(f"{', '.join(both)} given both in fixed and as keywords")
    fixed = dict(fixed, **settings)
    _check_names(fixed, "setting(s)")
    fixed = {name: check_setting(name, value) for name, value in fixed.items()}
    if results is not None:
        results = os.fspath(results)
        _check_results_path(results)
    if backend == "dask":
        _import_distributed()

    configs = expand_space(space, search=search, n_trials=n_trials, seed=seed, fixed=fixed)
    if verbose:
        print(_describe_optimiser(space, fixed), flush=True)
    jobs = []
    for config in configs:
        key = trial_key(config)
        jobs.append(_Job(key, config, _seed_of(key, config)))

    previous = load_results(results)
    done = {}
    to_run = []
    for job in jobs:
        record = previous.get(job.key)
        # a record of other defaults (or of a version before them) ran another trial
        rerun = record is None or record.get("defaults", {}) != _defaults_for(job.config) \
            or (record.get("status") != "ok" and (retry_failed or record.get("retryable")))
        if rerun:
            to_run.append(job)
        else:
            done[job.key] = dict(record, resumed=True)

    bar = _progress_bar(len(to_run)) if progress is True and to_run else None
    callback = progress if callable(progress) else None
    writer = _ResultsWriter(results)
    best = {"acc": None, "key": None, "model": None}
    count = [0]

    def emit(record):
        model = record.pop("model", None)
        writer.write(record)
        done[record["key"]] = record
        ok = record["status"] == "ok" and record["best_val_acc"] is not None
        if ok and (best["acc"] is None or record["best_val_acc"] > best["acc"]):
            best.update(acc=record["best_val_acc"], key=record["key"], model=model)
        count[0] += 1
        if bar is not None:
            bar.update(1)
            if best["acc"] is not None:
                bar.set_postfix(best_val_acc=f"{best['acc']:.4f}", refresh=False)
        if callback is not None:
            callback(record, count[0], len(to_run))

    try:
        if not to_run:
            pass
        elif backend == "dask":
            _run_dask(to_run, data, scheduler, n_jobs, runner, retries, emit)
        elif n_jobs == 1:
            _run_inline(to_run, data, runner, emit)
        else:
            _run_local(to_run, data, n_jobs, cores, runner, retries, emit)
    finally:
        writer.close()
        if bar is not None:
            bar.close()

    trials = [done[job.key] for job in jobs if job.key in done]
    trials.sort(key=lambda r: _sort_key(r, best["key"]))
    best_model = None
    if return_model and trials and _sort_key(trials[0])[0] == 0:
        top = trials[0]
        if top["key"] == best["key"] and best["model"] is not None:
            best_model = best["model"]
        else:  # read back from the results file (or tied with one): train it again here
            job = next(j for j in jobs if j.key == top["key"])
            record = _execute(runner, data, job.key, job.config, job.seed)
            best_model = record.get("model")
    return trials, best_model


# ---------------------------------------------------------------------- command line

_DIST_NAMES = {"loguniform": loguniform, "uniform": uniform, "randint": randint,
               "choice": choice}


def parse_space(obj):
    """A space from its JSON form: lists of candidates, or one-key objects
    ``{"loguniform": [low, high]}``, ``{"uniform": [...]}``, ``{"randint": [...]}``,
    ``{"choice": [...]}`` and ``{"range": [low, high]}`` (the (low, high) tuple form)."""
    if not isinstance(obj, dict):
        raise ValueError("the space must be a JSON object of setting name -> values")
    space = {}
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


def _digits_data():
    """The embedded digits split (fastfc.data_utils.load_default_data when present)."""
    try:
        from fastfc.data_utils import load_default_data
    except ImportError:
        load_default_data = None
    if load_default_data is not None:
        data = load_default_data(dtype=np.float32)
        if isinstance(data, dict) and all(k in data for k in ("X_train", "y_train",
                                                              "X_val", "y_val")):
            return data
    from sklearn.datasets import load_digits  # same split as load_default_data
    digits = load_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    order = np.random.RandomState(0).permutation(len(X))
    X, y = X[order], y[order]
    X -= X[:1257].mean(axis=0)
    X = X.astype(np.float32)
    return {"X_train": X[:1257], "y_train": y[:1257], "X_val": X[1257:1527],
            "y_val": y[1257:1527], "X_test": X[1527:], "y_test": y[1527:]}


def _load_data(spec):
    """The data of ``--data``: 'digits', or an .npz file of the Solver's arrays."""
    if spec in (None, "digits"):
        return _digits_data()
    if not os.path.isfile(spec):
        what = "not a regular file" if os.path.exists(spec) else "no such file"
        raise ValueError(f"--data {spec!r}: {what} (give 'digits' or an .npz file "
                         "with X_train, y_train, X_val, y_val)")
    try:
        with np.load(spec, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("it holds one array, not named arrays")
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"--data {spec!r} is not a usable .npz file of X_train, y_train, "
                         f"X_val, y_val: {exc}") from None


def _read_space(text):
    """The space of ``--space``: inline JSON (starting with '{') or a JSON file."""
    where = "--space"
    if not text.lstrip().startswith("{"):
        where = f"--space {text!r}"
        if not os.path.isfile(text):  # a device such as /dev/zero would never end
            what = "not a regular file" if os.path.exists(text) else "no such file"
            raise ValueError(f"--space {text!r}: {what} (give a JSON file or an inline "
                             "JSON object)")
        try:
            with open(text, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--space {text!r} cannot be read: {exc}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where}: not valid JSON: {exc}") from None
    return parse_space(obj)


def _cli_int(low, what):
    """An argparse type: an integer >= low, with a message naming the expectation."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = what
    return parse


def _cli_setting(item):
    """An argparse type for ``--set NAME=VALUE``: (name, value parsed for that name)."""
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {item!r}")
    if name not in ROUTES:
        raise argparse.ArgumentTypeError(
            f"unknown setting {name!r} (one of {', '.join(sorted(ROUTES))})")
    try:
        return name, parse_setting(name, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _update_rules():
    from fastfc._registry import UPDATE_RULES
    return sorted(UPDATE_RULES)


def add_cli_arguments(parser):
    """Add the options of ``fastfc sweep`` to an argparse parser."""
    positive = _cli_int(1, "a positive integer")
    parser.add_argument("--space", required=True,
                        help="JSON file (or inline JSON object) of setting -> list of values "
                             "or {\"loguniform\": [low, high]} and the like")
    parser.add_argument("--data", default="digits",
                        help="'digits' (the embedded default) or an .npz file with X_train, "
                             "y_train, X_val, y_val")
    parser.add_argument("--search", choices=("grid", "random"), default="grid")
    parser.add_argument("--n-trials", type=positive, default=None)
    parser.add_argument("--backend", choices=("local", "dask"), default="local")
    parser.add_argument("--n-jobs", type=positive, default=None,
                        help="worker processes (default: one per core)")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address (default: a LocalCluster on 127.0.0.1)")
    parser.add_argument("--results", default="sweep.jsonl",
                        help="JSONL results file (a regular file), resumed when it exists; "
                             "'' keeps none")
    parser.add_argument("--seed", type=_cli_int(0, "a non-negative integer"), default=0,
                        help="seed of the random search (a fixed seed of the trials: "
                             "--set seed=N)")
    parser.add_argument("--num-epochs", "--epochs", dest="num_epochs", type=positive,
                        default=None, metavar="N",
                        help="passes over the training set in every trial (same as "
                             "--set num_epochs=N)")
    parser.add_argument("--batch-size", type=positive, default=None,
                        help=f"default {FRONTEND_DEFAULTS['batch_size']}")
    parser.add_argument("--update-rule", choices=_update_rules(), default=None,
                        help=f"default {FRONTEND_DEFAULTS['update_rule']} at learning rate "
                             f"{FRONTEND_DEFAULTS['learning_rate']:g}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        type=_cli_setting,
                        help="a fixed setting, VALUE read for the setting's type (numbers, "
                             "strings, none, true/false, hidden_dims as 100,50 or [100,50]); "
                             "repeatable")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run again the trials recorded as failed or diverged")
    parser.add_argument("--plot", default=None,
                        help="PNG of val accuracy against each swept setting (default: the "
                             "results file with .png; needs matplotlib)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--top", type=positive, default=20, help="rows of the final table")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _fixed_from_args(args):
    """The fixed settings of the command line, as a dict (ValueError on a clash)."""
    fixed = {}
    flags = {}
    for flag, name, value in (("--num-epochs", "num_epochs", args.num_epochs),
                              ("--batch-size", "batch_size", args.batch_size),
                              ("--update-rule", "update_rule", args.update_rule)):
        if value is not None:
            fixed[name] = value
            flags[name] = flag
    for item in args.set:
        name, value = item if isinstance(item, tuple) else _cli_setting(item)
        if name in flags:
            raise ValueError(f"{name} is given both by {flags[name]} and by --set")
        if name in fixed and fixed[name] != value:
            raise ValueError(f"--set gives {name} twice ({fixed[name]!r} and {value!r})")
        fixed[name] = value
        flags[name] = "--set"
    return fixed


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def format_table(trials, names, top=None):
    """The final table of a sweep as text: rank, accuracies, loss, time, worker, settings."""
    head = ["#", "status", "val_acc", "train_acc", "loss", "time_s", "worker", *names]
    rows = []
    for i, t in enumerate(trials[:top] if top else trials, 1):
        def num(v, fmt):
            return "-" if v is None else format(v, fmt)
        rows.append([str(i), t["status"], num(t.get("best_val_acc"), ".4f"),
                     num(t.get("final_train_acc"), ".4f"), num(t.get("loss_last"), ".4f"),
                     num(t.get("wall_time"), ".2f"), str(t.get("worker") or "-")[-24:],
                     *[_short(t["config"].get(n)) for n in names]])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    failed = [t for t in trials if t["status"] != "ok"]
    for t in failed[:5]:
        lines.append(f"{t['status']} {t['key']}: {t.get('error')}")
    return "\n".join(lines)


def _log_ticks(ax, values):
    """A log x axis whose tick labels cannot collide.

    Over two decades or more: labels at powers of ten only (matplotlib's default
    also labels minor ticks when few decades show, ``3x10^-4`` beside ``4x10^-4``, and
    they overlap).  Below two decades: ticks at 1, 2 and 5 times a power of ten inside
    the values' range, or when fewer than two fall there, at the smallest, the
    geometric middle and the largest value; labels in a compact form (``2e-4``).
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    low, high = min(values), max(values)
    if math.log10(high / low) < 2:
        ticks = [m * 10.0 ** k
                 for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for m in (1, 2, 5) if low <= m * 10.0 ** k <= high]
        if len(ticks) < 2:
            ticks = sorted({float(f"{v:.2g}") for v in (low, math.sqrt(low * high), high)})
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(_compact_number))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _compact_number(value, _pos=None):
    """A short label for a log axis: ``2e-4`` for 0.0002, ``4.6e-3`` for 0.0046."""
    mantissa, exponent = f"{value:.1e}".split("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    return f"{mantissa}e{int(exponent)}"


def _sorted_labels(values):
    """The distinct values of a categorical axis, in their natural order when they
    compare (``[32] < [64] < [128]``), else as text."""
    distinct = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    try:
        distinct.sort()
    except TypeError:
        distinct.sort(key=_short)
    labels = []
    for v in distinct:
        if _short(v) not in labels:
            labels.append(_short(v))
    return labels


def _sweep_figure(trials, names):
    """The matplotlib Figure of :func:`plot_sweep`, or None (no matplotlib, nothing ok)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    ok = [t for t in trials if t["status"] == "ok" and t.get("best_val_acc") is not None]
    if not ok or not names:
        return None
    fig = Figure(figsize=(4 * len(names), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    acc = [t["best_val_acc"] for t in ok]
    for ax, name in zip(axes, names):
        values = [t["config"].get(name) for t in ok]
        if all(_is_number(v) for v in values):
            ax.scatter(values, acc, alpha=0.8)
            positive = all(v > 0 for v in values)
            if positive and (name in LOG_SCALE or max(values) / min(values) >= 100):
                _log_ticks(ax, values)
        else:
            labels = _sorted_labels(values)
            pos = [labels.index(_short(v)) for v in values]
            ax.scatter(pos, acc, alpha=0.8)
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_xlabel(name)
        ax.set_ylabel("best val accuracy")
        ax.grid(alpha=0.3)
    return fig


def plot_sweep(trials, names, path):
    """PNG of best val accuracy against each swept setting (a log axis for learning_rate,
    reg, weight_scale and for values spanning two decades or more); returns the path,
    or None without matplotlib or without a successful trial."""
    fig = _sweep_figure(trials, names)
    if fig is None:
        return None
    fig.savefig(path, dpi=100)
    return path


def cli_main(args):
    """Run ``fastfc sweep`` from parsed arguments (see :func:`add_cli_arguments`);
    returns the exit status: 0 when at least one trial succeeded."""
    space = _read_space(args.space)
    fixed = _fixed_from_args(args)
    results = args.results or None
    if results is not None:
        _check_results_path(results)
    plot = None
    if not args.no_plot:
        plot = args.plot
        if plot is None:
            plot = os.path.splitext(results if results else "sweep")[0] + ".png"
        folder = os.path.dirname(os.path.abspath(plot))
        if not os.path.isdir(folder):
            raise ValueError(f"--plot {plot!r}: the folder {folder!r} does not exist")
    data = _load_data(args.data)
    progress = None
    if not args.no_progress:
        bar = sys.stderr.isatty() and _tqdm_available()
        if bar:
            progress = True
        else:
            def progress(record, n_done, n_total):
                acc = record.get("best_val_acc")
                acc = "-" if acc is None else f"{acc:.4f}"
                settings = " ".join(f"{k}={_short(record['config'].get(k))}" for k in space)
                print(f"[{n_done}/{n_total}] {record['status']:6s} val_acc {acc}  {settings}",
                      flush=True)
    trials, _ = sweep(space, data, n_trials=args.n_trials, search=args.search,
                      backend=args.backend, n_jobs=args.n_jobs, scheduler=args.scheduler,
                      results=results, seed=args.seed, retry_failed=args.retry_failed,
                      progress=progress, return_model=False, verbose=True, fixed=fixed)
    names = list(space)
    print(format_table(trials, names, top=args.top))
    if plot is not None and plot_sweep(trials, names, plot):
        print(f"plot: {plot}")
    return 0 if any(t["status"] == "ok" for t in trials) else 1


def _tqdm_available():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    """``python -m fastfc.sweep`` (the same as ``fastfc sweep``)."""
    parser = argparse.ArgumentParser(prog="fastfc sweep",
                                     description="hyper-parameter sweep of fastfc.Net")
    add_cli_arguments(parser)
    return cli_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
