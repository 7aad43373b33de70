"""Solver: trains a classification model, compatible with the CS231n ``solver.py``.

The Solver draws minibatches, calls ``model.loss`` and applies an update rule from
:mod:`fastfc.optim` to every parameter, checks train and validation accuracy at the
first step, every epoch end and the last step, and leaves the best parameters (by
validation accuracy) in the model.  Everything the reference does it does the same
way -- the same calls on NumPy's global generator, the same printed lines -- so runs
are reproducible across the two.

The Solver imports no model class.  It trains through one of the two model protocols
of :mod:`fastfc._protocols`: a model that owns its optimiser (``train_step``,
``set_optimizer``, ``learning_rate``, ``optimizer_state``, ``nonfinite_params``, such as
``fastfc.Net``) makes each step in one call, minibatch rows gathered straight into its
buffer; a CS231n model (``params``, ``loss``) gets the update rule applied per parameter
by the Solver -- or by the step accelerator the model may offer
(``model.make_solver_step``, e.g. a plain ``FullyConnectedNet``'s fused step).

This loop is the only training loop of fastfc: ``fastfc train`` drives a Solver, and the
scikit-learn estimator trains through a Solver too (with its own sampling generator and
epoch-end report, see :mod:`fastfc.sklearn`).

Where each setting lives (one home each):

* the base learning rate and the other hyper-parameters given: ``optim_config``
  (what schedules start from, what a fresh optimiser is built from);
* the current learning rate and optimiser state: the model's optimiser when it owns one
  (``model.learning_rate``; ``optim_configs`` is then a view derived from it), else
  ``optim_configs[p]`` per parameter (an accelerator's compiled copies are refreshed from
  them before each step and Adam's ``t`` written back after it);
* the learning-rate schedule: a schedule object (:mod:`fastfc.schedules`) built from
  ``lr_decay`` or ``schedule`` when ``train()`` starts.

Beyond the reference:

* schedules as objects (``schedule=`` 'cosine' or any object with ``before_step`` /
  ``after_epoch``, see :mod:`fastfc.schedules`);
* ``random_state``: the minibatches (and accuracy subsamples) can come from a private
  ``np.random.RandomState`` instead of NumPy's global generator;
* a progress bar (tqdm, when installed) -- on by default when ``verbose`` and stdout
  is a terminal;
* early stopping (``patience``), restoring the best parameters;
* a divergence guard (``on_divergence``): a non-finite loss or parameter, or a loss that
  grows over 1000 times its start, is reported once naming the step; by default
  ('continue', the course's behaviour) training goes on, 'stop' ends it and 'raise'
  raises :class:`TrainingDiverged`, the best (finite) parameters restored;
* ``restore_norm_stats``: the best snapshot can hold the batch-norm running statistics;
* Ctrl-C takes effect at a step boundary: training ends with a warning and the best
  parameters, and with ``checkpoint_path`` the exact state of the interrupted run is
  written first, so that ``resume`` continues it bit for bit;
* safe checkpoints (``checkpoint_path``): an atomic ``.npz`` of plain arrays with a JSON
  header holding parameters, optimiser state, histories, epoch and RNG state, and
  :meth:`Solver.resume` to continue a run exactly where the checkpoint left it.
"""
from __future__ import annotations

import contextlib
import copy
import os
import functools
import inspect
import math
import pickle
import signal
import sys
import threading
import warnings
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence, TypeGuard

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastfc import _validation as V
from fastfc import optim
from fastfc._kernels import optim as _kopt
from fastfc._protocols import CourseModel, model_kind
from fastfc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fastfc.schedules import CosineSchedule, ExponentialDecay, schedule_hooks

__all__ = ["Solver", "TrainingDiverged"]


class TrainingDiverged(FloatingPointError):
    """The loss or a parameter became NaN or infinite during training."""


# Use the step accelerator a course model offers (model.make_solver_step; today a plain
# FullyConnectedNet's fused step, fastfc/classifiers/_fused.py).  Tests switch it off to
# compare with the ordinary path.
_FUSE_PLAIN_NETS = True


def _takes_check_input(method: Callable[..., Any]) -> bool:
    """True when a model's ``train_step`` accepts the keyword ``check_input``."""
    try:
        return "check_input" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _updatable_in_place(w: Any, dw: Any) -> bool:
    """True when the compiled rule can update w in place: one float dtype, C order."""
    return (type(w) is np.ndarray and type(dw) is np.ndarray and w.dtype == dw.dtype
            and w.dtype in V.FLOAT_DTYPES and w.shape == dw.shape
            and w.flags.c_contiguous and w.flags.writeable and dw.flags.c_contiguous)


def _all_finite(a: ArrayLike) -> bool:
    """True when every element of a is finite (a cheap sum first, the exact test if needed)."""
    a = np.asarray(a)
    return bool(np.isfinite(a.sum())) or bool(np.isfinite(a).all())


def _as_data(value: ArrayLike, name: str) -> NDArray[Any]:
    """An ndarray view of a data entry (array-likes accepted, object arrays refused)."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be an array (or array-like), got "
                            f"{type(value).__name__}: {exc}") from None
    if value.dtype.hasobject or value.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {value.dtype}")
    return value


def _check_finite_rows(X: NDArray[Any], name: str) -> None:
    """ValueError naming the first row of X that holds a NaN or an infinity."""
    if X.dtype.kind != "f":
        return
    with np.errstate(over="ignore", invalid="ignore"):   # a float32 sum may overflow
        if _all_finite(X):
            return
    bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    raise ValueError(f"{name} contains NaN or inf at row {int(np.flatnonzero(bad)[0])}; "
                     "clean or impute the data before training")


def _known_classes(model: Any) -> Optional[int]:
    """The number of score columns of the model when it can be read without running it."""
    dims = getattr(model, "layer_dims", None)
    if dims is not None:
        try:
            return int(dims[-1])
        except (TypeError, ValueError, IndexError):
            return None
    params = getattr(model, "params", None)
    n = getattr(model, "num_layers", None)
    if isinstance(params, dict) and isinstance(n, int):
        last = params.get(f"W{n}")
        if last is not None and np.ndim(last) == 2:
            return int(np.shape(last)[1])
    if isinstance(params, dict) and set(params) == {"W1", "b1", "W2", "b2"}:
        if np.ndim(params["W2"]) == 2:
            return int(np.shape(params["W2"])[1])
    return None


def _check_labels(y: NDArray[Any], name: str, n_classes: Optional[int]) -> None:
    """ValueError naming the array when integer labels fall outside [0, n_classes)."""
    if y.dtype.kind not in "iu" or y.size == 0:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0:
        i = int(np.argmax(y < 0))
        raise ValueError(f"{name} has the negative label {int(y[i])} at index {i}; labels "
                         "must be class indices 0, 1, ..., C-1")
    if n_classes is not None and high >= n_classes:
        i = int(np.argmax(y >= n_classes))
        raise ValueError(f"{name} has the label {int(y[i])} at index {i}, but the model "
                         f"scores {n_classes} classes (labels 0..{n_classes - 1})")


def _sampling_source(random_state: Any) -> Any:
    """What minibatches are drawn from: NumPy's global generator (the module
    ``np.random``, whose ``choice``/``permutation``/``get_state`` the course calls) or a
    RandomState."""
    if random_state is None:
        return np.random
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(random_state)
    raise TypeError("random_state must be None, an int or a numpy.random.RandomState, got "
                    f"{random_state!r}")


def _sample_weights(value: Any, n: int) -> "NDArray[Any] | None":
    """The optional ``data['sample_weight_train']``: None, or (n,) finite weights >= 0."""
    if value is None:
        return None
    w = _as_data(value, "sample_weight_train")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight_train must have shape ({n},), one weight per "
                         f"training sample, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight_train must hold finite weights >= 0")
    return w


def _r2_score(y: NDArray[Any], pred: ArrayLike) -> float:
    """Coefficient of determination of predictions (N, D) for targets (N, D) or (N,),
    averaged over the outputs (as scikit-learn's r2_score), clipped below at 0 so that
    it is read like an accuracy in [0, 1].  An output whose targets are constant counts
    1 when predicted exactly, else 0."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(y.shape)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    if not np.isfinite(r2).all():
        return 0.0
    return float(max(0.0, r2.mean()))


def _in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


def _has_ipywidgets() -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec("ipywidgets") is not None
    except (ImportError, ValueError):
        return False


_DEFAULTS: dict[str, Any] = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
    # beyond the reference
    "progress": None,
    "patience": None,
    "checkpoint_path": None,
    "schedule": None,
    "time_budget": None,
    "augment": None,
    "shuffle": False,
    "checkpoint_every": 1,
    "on_divergence": "continue",
    "restore_norm_stats": False,
    "random_state": None,
    "warmup": 0.0,
    "ema_decay": None,
    "ema_every": 1,
}

ON_DIVERGENCE = ("continue", "stop", "raise")

# what Solver._check returns when a step boundary is not checked after all
_NO_CHECK = object()

# A finite loss above BLOWUP_FACTOR * max(first loss, 1) counts as divergence
BLOWUP_FACTOR = 1e3


def blowup_limit(first_loss: float) -> float:
    """The loss above which a run has blown up: ``BLOWUP_FACTOR * max(first_loss, 1)``."""
    return BLOWUP_FACTOR * max(float(first_loss), 1.0)

# A first loss above UNSCALED_FACTOR * log(C) (C score columns) suggests unscaled inputs
UNSCALED_FACTOR = 10.0


class Solver:
    """Train a model with minibatch gradient descent (the one training loop of fastfc).

    Parameters
    ----------
    model : object
        ``model.params`` (dict name -> ndarray) and ``model.loss(X, y=None)`` returning
        scores (N, C) without labels and ``(loss, grads)`` with them; with a named
        update rule, a model that also owns its optimiser (``train_step``,
        ``set_optimizer``, ``learning_rate``, ``optimizer_state``,
        ``nonfinite_params``) is trained through it.  See :mod:`fastfc._protocols`.
    data : dict
        'X_train', 'y_train', 'X_val', 'y_val'.  For a regression model (a
        ``Net(loss='mse')``) y holds float targets, (N, D) or (N,) for one output, and
        every "accuracy" below (histories, best model, early stopping) is the
        coefficient of determination R^2 of the predictions, clipped below at 0 (a
        model no better than the targets' mean scores 0).  Optionally
        'sample_weight_train', shape (N_train,): a loss weight >= 0 per training row,
        gathered with the minibatch's rows and passed as ``train_step(...,
        sample_weight=)`` (models that own their optimiser, such as ``fastfc.Net``); a
        minibatch's weights must not all be zero.
    update_rule : str or callable, default 'sgd'
        A rule name in :mod:`fastfc.optim` or a function ``(w, dw, config) -> (next_w, config)``.
    optim_config : dict
        Hyper-parameters given to the rule; every parameter gets its own copy.
    lr_decay : float, default 1.0
        Every learning rate is multiplied by this at each epoch end.
    batch_size : int, default 100
    num_epochs : int, default 10
    num_train_samples : int or None, default 1000
        Training samples used to check training accuracy (None: all).
    num_val_samples : int or None, default None
        Validation samples used to check validation accuracy (None: all).
    checkpoint_name : str or None
        CS231n pickles ``<name>_epoch_<e>.pkl`` at each check (trusted files only:
        loading a pickle runs code).
    print_every : int, default 10
    verbose : bool, default True
    progress : bool or None
        Show a tqdm progress bar; None shows it when ``verbose`` and stdout is a TTY.
    patience : int or None
        Stop when validation accuracy has not improved for this many epochs.
    checkpoint_path : str or None
        Write a safe ``.npz`` checkpoint here at every epoch end (see :meth:`resume`).
    schedule : None, 'cosine' or a schedule object
        'cosine' decays the learning rate to zero along a half cosine, updated every
        step, over the whole run (``num_epochs``) or over ``time_budget``.  An object
        with ``before_step(step, base_lr)`` and/or ``after_epoch(epoch, lr)`` (see
        :mod:`fastfc.schedules`) is called before every step / at every epoch end.
        None: ``lr_decay`` (an :class:`fastfc.schedules.ExponentialDecay`).  With a
        schedule, lr_decay must stay 1.
    time_budget : float or None
        Seconds of training: the run stops cleanly when they are spent (with a final
        accuracy check); ``num_epochs`` is then an upper limit.
    augment : fastfc.augment.Augmenter or None
        Random flips/translations applied to each minibatch as it is gathered.
    shuffle : bool, default False
        Sample minibatches without replacement: a fresh ``np.random.permutation`` of
        the training set each epoch, cut into consecutive batches (the reference
        samples with replacement, ``np.random.choice``, which stays the default).
    checkpoint_every : int, default 1
        Write ``checkpoint_path`` every this many epochs (and at the end).
    on_divergence : {'continue', 'stop', 'raise'}, default 'continue'
        What a diverged step does.  A step diverges when its loss or an updated
        parameter is NaN or infinite, or when its loss exceeds
        ``1000 * max(loss_history[0], 1)`` (a finite blow-up; a large first loss is
        not one).  'continue' (the course's behaviour): training goes on, one
        RuntimeWarning names the first diverged step, and at the end the model holds
        the best parameters found.  'stop': training stops at that step with a
        RuntimeWarning, the best parameters restored.  'raise': :class:`TrainingDiverged`
        naming the step, the best parameters restored.  The best parameters are
        always a finite snapshot; with none (no improving check before divergence)
        the model gets back the parameters it had when ``train()`` began.
    restore_norm_stats : bool, default False
        False (the course): the best epoch's parameters are restored but batch norm
        keeps the last running mean and variance.  True: the best snapshot also holds
        the running statistics and they are restored with the parameters.
    random_state : None, int or numpy.random.RandomState
        Where minibatches (and accuracy subsamples) are drawn: None (the course) calls
        NumPy's global generator (``np.random.choice``, ``np.random.permutation``); an
        int seeds a private RandomState; a RandomState is used (and advanced) as given.
        Checkpoints hold the state of whichever generator is used.
    warmup : float in [0, 1), default 0
        With ``schedule='cosine'``: the fraction of training (of the steps, or of
        ``time_budget``) over which the learning rate rises linearly from 0 to the base
        rate; the cosine decay to 0 then runs over the rest
        (:class:`fastfc.schedules.CosineSchedule`).  Any other schedule refuses a
        warm-up.  0: no warm-up.
    ema_decay : float in (0, 1) or None, default None
        Keep an exponential moving average of the weights (Polyak averaging, as
        timm's ``ModelEma``): after every ``ema_every``-th step, ``avg = d * avg + (1 -
        d) * w`` with ``d = ema_decay ** ema_every``, starting from the weights
        ``train()`` begins with.  It covers every parameter and, for a model with the
        ``ema_arrays`` hook (``fastfc.Net``), the normalisation running statistics too.
        Every accuracy check (train and validation accuracy, the histories, the best
        snapshot, early stopping) measures the averaged weights, while training goes
        on with the raw ones.  When ``train()`` returns, the model holds the averaged
        weights (then, as always, the best snapshot of them over the checks).
        Checkpoints hold the average, so a resumed run is exact.  None: no averaging.
    ema_every : int >= 1, default 1
        Update the average every this many steps (cheaper for a large model), with
        the decay raised to that power.

    Unknown keyword arguments and update rules raise ValueError naming them.

    Calling :meth:`train` again trains ``num_epochs`` more, as the course's loop does
    (the epoch counter and histories keep growing, best_val_acc carries over); after
    :meth:`resume`, :meth:`train` continues the checkpointed run from its next step.
    """

    # a model that owns its optimiser gets a fresh one (from optim_config) when a run
    # starts; the estimator's Solver keeps the one its net already holds
    _fresh_optimizer = True

    def __init__(self, model: CourseModel, data: Mapping[str, ArrayLike],
                 **kwargs: Any) -> None:
        self.model: Any = model
        if not hasattr(model, "params") or not hasattr(model, "loss"):
            raise TypeError("model must have a 'params' dict and a 'loss(X, y=None)' method")
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict, got {type(data).__name__}")
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data is missing {', '.join(missing)}")
        self.X_train = _as_data(data["X_train"], "X_train")
        self.y_train = _as_data(data["y_train"], "y_train")
        self.X_val = _as_data(data["X_val"], "X_val")
        self.y_val = _as_data(data["y_val"], "y_val")
        # a model fitting float targets (Net(loss='mse')) is scored by R^2
        self._regression = getattr(model, "loss_name", None) == "mse"
        for xs, ys in (("X_train", "y_train"), ("X_val", "y_val")):
            X, y = getattr(self, xs), getattr(self, ys)
            if self._regression and y.ndim == 2:
                pass        # (N, D) targets
            elif X.ndim == 0 or y.ndim != 1:
                raise ValueError(f"{xs} must have shape (N, ...) and {ys} shape (N,), got "
                                 f"{X.shape} and {y.shape}")
            if len(X) != len(y):
                raise ValueError(f"{xs} has {len(X)} samples but {ys} has {len(y)} labels")
            if len(X) == 0:
                raise ValueError(f"{xs} is empty")
            _check_finite_rows(X, xs)
        self._n_classes = _known_classes(model)
        for ys in ("y_train", "y_val"):
            _check_labels(getattr(self, ys), ys, self._n_classes)
        # optional per-sample loss weights of the training rows (gathered like y_train)
        self.sample_weight_train = _sample_weights(data.get("sample_weight_train"),
                                                   len(self.X_train))

        unknown = [k for k in kwargs if k not in _DEFAULTS]
        if unknown:
            raise ValueError("Unrecognized arguments %s" % ", ".join('"%s"' % k for k in unknown))
        opts = dict(_DEFAULTS, **kwargs)
        self.update_rule = opts["update_rule"]
        self.optim_config = opts["optim_config"] if opts["optim_config"] is not None else {}
        if not isinstance(self.optim_config, dict):
            raise TypeError("optim_config must be a dict")
        self.lr_decay = V.check_scalar(opts["lr_decay"], "lr_decay", low=0.0)
        self.batch_size = V.check_scalar(opts["batch_size"], "batch_size", low=1, integer=True)
        self.num_epochs = V.check_scalar(opts["num_epochs"], "num_epochs", low=0, integer=True)
        self.num_train_samples = opts["num_train_samples"]
        self.num_val_samples = opts["num_val_samples"]
        for name in ("num_train_samples", "num_val_samples"):
            if getattr(self, name) is not None:
                setattr(self, name, V.check_scalar(getattr(self, name), name, low=1,
                                                   integer=True))
        self.checkpoint_name = opts["checkpoint_name"]
        self.print_every = V.check_scalar(opts["print_every"], "print_every", low=1,
                                          integer=True)
        self.verbose = opts["verbose"]
        self.progress = opts["progress"]
        self.patience = opts["patience"]
        if self.patience is not None:
            self.patience = V.check_scalar(self.patience, "patience", low=1, integer=True)
        self.checkpoint_path = opts["checkpoint_path"]
        self.schedule = opts["schedule"]
        if isinstance(self.schedule, str) or self.schedule is None:
            if self.schedule not in (None, "cosine"):
                raise ValueError("schedule must be None, 'cosine' or a schedule object, "
                                 f"got {self.schedule!r}")
        else:
            schedule_hooks(self.schedule)          # TypeError when it offers no hook
        if self.schedule is not None and self.lr_decay != 1.0:
            raise ValueError(f"schedule={self.schedule!r} replaces lr_decay; leave "
                             "lr_decay at 1.0")
        self.warmup = V.check_scalar(opts["warmup"], "warmup", low=0.0, high=1.0,
                                     high_open=True)
        if self.warmup > 0 and self.schedule != "cosine":
            raise ValueError(f"warmup={self.warmup!r} needs schedule='cosine' (the "
                             "warm-up leads into its cosine decay), got "
                             f"schedule={self.schedule!r}")
        self.ema_decay = opts["ema_decay"]
        if self.ema_decay is not None:
            self.ema_decay = V.check_scalar(self.ema_decay, "ema_decay", low=0.0, high=1.0,
                                            low_open=True, high_open=True)
        self.ema_every = V.check_scalar(opts["ema_every"], "ema_every", low=1,
                                        integer=True)
        self.time_budget = opts["time_budget"]
        if self.time_budget is not None:
            self.time_budget = V.check_scalar(self.time_budget, "time_budget", low=0.0,
                                              low_open=True)
        self.shuffle = bool(opts["shuffle"])
        self.checkpoint_every = V.check_scalar(opts["checkpoint_every"], "checkpoint_every",
                                               low=1, integer=True)
        self.augment = opts["augment"]
        self.on_divergence = opts["on_divergence"]
        if self.on_divergence not in ON_DIVERGENCE:
            raise ValueError("on_divergence must be 'continue', 'stop' or 'raise', got "
                             f"{self.on_divergence!r}")
        self.restore_norm_stats = opts["restore_norm_stats"]
        if not isinstance(self.restore_norm_stats, (bool, np.bool_)):
            raise TypeError("restore_norm_stats must be True or False, got "
                            f"{self.restore_norm_stats!r}")
        self.restore_norm_stats = bool(self.restore_norm_stats)
        if self.augment is not None and not callable(self.augment):
            raise TypeError("augment must be a fastfc.augment.Augmenter (or None)")
        self.random_state = opts["random_state"]
        self._random = _sampling_source(self.random_state)

        if isinstance(self.update_rule, str):
            if self.update_rule not in optim.UPDATE_RULES:
                raise ValueError('Invalid update_rule "%s"' % self.update_rule)
            self.rule_name: Optional[str] = self.update_rule
            self.update_rule = optim.UPDATE_RULES[self.update_rule]
        elif callable(self.update_rule):
            self.rule_name = None
        else:
            raise ValueError('Invalid update_rule "%s"' % (self.update_rule,))
        # which protocol the model is trained through (fastfc._protocols)
        self.fast = model_kind(model, self.rule_name) == "owner"
        if self.sample_weight_train is not None and not self.fast:
            raise ValueError("data['sample_weight_train'] needs a model that owns its "
                             "optimiser and takes train_step(..., sample_weight=) (a "
                             "fastfc.Net with a built-in update rule)")
        if self.schedule is not None and "learning_rate" not in self.optim_config:
            if self.rule_name is None:
                raise ValueError(f"schedule={self.schedule!r} with a custom update rule "
                                 "needs optim_config['learning_rate']")
            self.optim_config = dict(self.optim_config,
                                     learning_rate=optim._SPECS[self.rule_name][0]["learning_rate"])
        self._reset()

    # ------------------------------------------------------------------ state

    def _reset(self) -> None:
        """Set up the book-keeping; called by the constructor, not by users."""
        self.epoch = 0
        self.best_val_acc: float = 0
        self.best_params: dict[str, NDArray[Any]] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.stopped_early = False
        self.interrupted = False
        self._bad_epochs = 0
        self._next_it = 0
        self._fast_ready = False
        self._fused: Any = None       # the model's step accelerator (make_solver_step) or False
        self._resumed = False
        self._loop_done = False  # a train() loop ran to its end (the next one starts anew)
        self._sigint = False     # a Ctrl-C arrived; training stops at the next step boundary
        # running statistics at the best check (restore_norm_stats)
        self._best_norm: dict[str, NDArray[Any]] = {}
        self._start_params: Optional[dict[str, NDArray[Any]]] = None
        self._unscaled_checked = False
        self.diverged_iteration: Optional[int] = None
        self._bar: Any = None
        self._aug_buf: Optional[NDArray[Any]] = None
        self._order: Optional[NDArray[Any]] = None
        self._order_pos = 0
        self._sched = None
        if self.schedule == "cosine" or self.time_budget is not None:
            iterations_per_epoch = max(self.X_train.shape[0] // self.batch_size, 1)
            self._sched = CosineSchedule(
                total_steps=max(self.num_epochs * iterations_per_epoch, 1),
                time_budget=self.time_budget, warmup=self.warmup)
        # the running average of the weights (ema_decay), by array name; made when
        # train() starts
        self._ema: Optional[dict[str, NDArray[Any]]] = None
        self.optim_configs = {}
        for p in self.model.params:
            self.optim_configs[p] = {k: v for k, v in self.optim_config.items()}

    @property
    def optim_configs(self) -> dict[str, dict[str, Any]]:
        """The optimiser config of every parameter (name -> dict).

        On the course path these dicts are the optimiser state itself (the update rule
        reads and returns them).  When the model owns its optimiser they are derived on
        every access from the model's current config (``optim_config``'s keys with the
        model's values, e.g. the decayed learning rate): a view, not a copy that could
        go stale; assigning them then has no effect on training."""
        if self.fast and (self._fast_ready or self._resumed):
            state = self.model.optimizer_state() or {}
            return {p: {k: state.get(k, v) for k, v in config.items()}
                    for p, config in self._optim_configs.items()}
        return self._optim_configs

    @optim_configs.setter
    def optim_configs(self, value: dict[str, dict[str, Any]]) -> None:
        self._optim_configs = value

    def _lr_schedule(self) -> tuple[Any, Any]:
        """The schedule's (before_step, after_epoch) hooks for this train() call.

        Built from ``schedule`` and ``lr_decay`` as they are now (their one home)."""
        if self.schedule is None:
            return schedule_hooks(ExponentialDecay(self.lr_decay))
        if self.schedule == "cosine":
            return schedule_hooks(self._sched)
        return schedule_hooks(self.schedule)

    def _prepare_fast(self) -> None:
        """Hand the update rule to the model (Net) and index-ready training arrays."""
        if self._fast_ready:
            return
        if not self._resumed and self._fresh_optimizer:
            # a fresh run starts a fresh optimiser (resume() has loaded the saved one)
            self.model.set_optimizer(self.rule_name, **copy.deepcopy(self.optim_config))
        X = np.asarray(self.X_train)
        if X.dtype not in V.FLOAT_DTYPES:
            X = X.astype(self._model_dtype())
        self._X_fast = np.ascontiguousarray(X)
        if self._regression:
            dtype = self._model_dtype()
            self._y_fast = np.ascontiguousarray(self.y_train, dtype=dtype)
            self._y_batch = np.empty((self.batch_size,) + self._y_fast.shape[1:], dtype=dtype)
        else:
            # range: checked once by the constructor (_check_labels), per batch by the Net
            self._y_fast = V.as_label_array(self.y_train, "y_train", len(self.y_train))
            self._y_batch = np.empty(self.batch_size, dtype=np.intp)
        # the first step goes through the model's own checks; when its train_step takes
        # check_input (fastfc.Net does), the later ones tell it the input is trusted
        self._train_step = self.model.train_step
        self._trust_next = _takes_check_input(self.model.train_step)
        self._w_fast = self._w_batch = None
        if self.sample_weight_train is not None:
            self._w_fast = np.ascontiguousarray(self.sample_weight_train,
                                                dtype=self._model_dtype())
            self._w_batch = np.empty(self.batch_size, dtype=self._w_fast.dtype)
        self._fast_ready = True

    def _model_dtype(self) -> Any:
        """The float type a model that owns its optimiser computes in (float64 unless
        it says otherwise with a ``dtype`` attribute)."""
        return getattr(self.model, "dtype", np.float64)

    # the current learning rate has one home: the model's optimiser when it owns one,
    # else the per-parameter configs
    def _learning_rates(self) -> list[Any]:
        if self.fast:
            return [self.model.learning_rate]
        return [c.get("learning_rate") for c in self._optim_configs.values()]

    def _set_learning_rate(self, lr: float) -> None:
        if self.fast:
            self._prepare_fast()
            self.model.learning_rate = lr
            return
        for config in self._optim_configs.values():
            config["learning_rate"] = lr

    def _end_epoch_schedule(self, after_epoch: Callable[[int, float], Optional[float]]) -> None:
        """Let the schedule change each learning rate at an epoch end."""
        if self.fast:
            lr = after_epoch(self.epoch, self.model.learning_rate)
            if lr is not None:
                self.model.learning_rate = lr
            return
        for config in self._optim_configs.values():
            lr = after_epoch(self.epoch, config["learning_rate"])
            if lr is not None:
                config["learning_rate"] = lr

    # ------------------------------------------------------------------ one step

    def _step(self) -> None:
        """One gradient step on a minibatch; appends the loss to loss_history."""
        batch_mask = self._next_batch()
        if self.fast:
            self._prepare_fast()
            np.take(self._y_fast, batch_mask, axis=0, out=self._y_batch)
            step = self._train_step
            if self._w_fast is not None:
                np.take(self._w_fast, batch_mask, out=self._w_batch)
                if self.augment is not None:
                    buf = self._augment_buffer(self._model_dtype())
                    self.augment(self._X_fast, batch_mask, out=buf)
                    loss = step(buf, self._y_batch, sample_weight=self._w_batch)
                else:
                    loss = step(self._X_fast, self._y_batch, indices=batch_mask,
                                sample_weight=self._w_batch)
            elif self.augment is not None:
                buf = self._augment_buffer(self._model_dtype())
                self.augment(self._X_fast, batch_mask, out=buf)
                loss = step(buf, self._y_batch)
            else:
                loss = step(self._X_fast, self._y_batch, indices=batch_mask)
            if self._trust_next:
                # the arrays passed the model's checks once; they are the Solver's own
                # (data, batch buffers, sampled indices), so later steps skip the checks
                self._trust_next = False
                self._train_step = functools.partial(self.model.train_step,
                                                     check_input=False)
            self.loss_history.append(loss)
            self._params_finite = not self.model.nonfinite_params
            return
        if self.augment is not None:
            X = np.asarray(self.X_train)
            buf = self._augment_buffer(X.dtype if X.dtype in V.FLOAT_DTYPES else np.float64)
            X_batch = self.augment(X, batch_mask, out=buf).reshape(
                (self.batch_size,) + X.shape[1:])
        elif self._fused is not False:
            X_batch = None          # the fused step gathers the rows itself
        else:
            X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]
        if self._fused is None:
            self._fused = (_FUSE_PLAIN_NETS and self._accelerator()) or False
        if self._fused:
            loss = self._fused.step(self.X_train, batch_mask, y_batch)
            if loss is not None:
                self.loss_history.append(loss)
                if self._fused.nonfinite:
                    self._params_finite = False
                return
        if X_batch is None:
            X_batch = self.X_train[batch_mask]
        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(loss)
        configs = self._optim_configs
        for p, w in self.model.params.items():
            dw = grads[p]
            config = configs[p]
            if self.rule_name is not None and _updatable_in_place(w, dw):
                # same formula as the public rule, without copying w and the state
                config, nonfinite = optim.update_inplace(self.rule_name, w, dw, config,
                                                         return_nonfinite=True)
                configs[p] = config
                if nonfinite:
                    self._params_finite = False
                continue
            next_w, next_config = self.update_rule(w, dw, config)
            self.model.params[p] = next_w
            configs[p] = next_config
            if not _all_finite(next_w):
                self._params_finite = False

    # ------------------------------------------------------------------ weight average

    def _ema_sources(self) -> dict[str, NDArray[Any]]:
        """The model's live arrays that the weight average follows (name -> array): the
        model's ``ema_arrays()`` when it has the hook (fastfc.Net: its flat parameter
        buffer and running statistics), else its ``params``."""
        hook = getattr(self.model, "ema_arrays", None)
        if callable(hook):
            return dict(hook())
        return dict(self.model.params)

    def _ema_start(self) -> None:
        """Start the average from the model's current weights (once per Solver)."""
        if self.ema_decay is not None and self._ema is None:
            self._ema = {k: np.array(v, copy=True, order="C")
                         for k, v in self._ema_sources().items()}

    def _ema_update(self) -> None:
        """avg = d * avg + (1 - d) * w, d = ema_decay ** ema_every: one compiled pass
        per array (NumPy for arrays the kernel cannot take)."""
        decay = self.ema_decay ** self.ema_every
        for name, w in self._ema_sources().items():
            avg = self._ema[name]  # type: ignore[index]  # called only with an average
            if (w.dtype == avg.dtype and w.dtype in V.FLOAT_DTYPES
                    and w.flags.c_contiguous and w.size):
                _kopt.ema_update(avg.reshape(-1), w.reshape(-1), decay)
            else:
                avg *= decay
                avg += (1.0 - decay) * np.asarray(w, dtype=avg.dtype)

    def _ema_load(self) -> None:
        """Copy the average into the model's arrays."""
        if self._ema is not None:
            for name, w in self._ema_sources().items():
                np.copyto(w, self._ema[name])

    @contextlib.contextmanager
    def _averaged(self) -> Any:
        """Within the block the model holds the averaged weights (when there is an
        average); the raw weights are put back after it."""
        if self._ema is None:
            yield
            return
        live = {k: np.array(v, copy=True) for k, v in self._ema_sources().items()}
        self._ema_load()
        try:
            yield
        finally:
            for name, w in self._ema_sources().items():
                np.copyto(w, live[name])

    def _accelerator(self) -> Any:
        """The step accelerator the model offers for this solver, or None."""
        make = getattr(self.model, "make_solver_step", None)
        return make(self) if callable(make) else None

    def _next_batch(self) -> NDArray[Any]:
        """Indices of the next minibatch (with replacement, or from the epoch's shuffle)."""
        num_train = self.X_train.shape[0]
        if not self.shuffle:
            return self._random.choice(num_train, self.batch_size)
        per_epoch = max(num_train // self.batch_size, 1)
        if self._order is None or self._order_pos >= per_epoch:
            self._order = self._random.permutation(num_train)
            self._order_pos = 0
        start = self._order_pos * self.batch_size
        self._order_pos += 1
        batch = self._order[start:start + self.batch_size]
        if len(batch) < self.batch_size:   # fewer samples than one batch
            batch = np.resize(batch, self.batch_size)
        return batch

    def _augment_buffer(self, dtype: DTypeLike) -> NDArray[Any]:
        """The preallocated (batch_size, sample size) minibatch buffer for augmentation."""
        size = int(np.prod(np.shape(self.X_train)[1:]))
        if self._aug_buf is None or self._aug_buf.dtype != dtype:
            self._aug_buf = np.empty((self.batch_size, size), dtype=dtype)
        return self._aug_buf

    # ------------------------------------------------------------------ accuracy

    def check_accuracy(self, X: NDArray[Any], y: NDArray[Any], num_samples: Optional[int] = None,
                       batch_size: int = 100) -> float:
        """Fraction of correct predictions of the model on (X, y).

        With ``num_samples`` (and more samples than that) a subsample is drawn with
        ``np.random.choice(N, num_samples)``; predictions run in batches of batch_size.
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = self._random.choice(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]
        num_batches = N // batch_size
        if N % batch_size != 0:
            num_batches += 1
        if self._regression:
            return _r2_score(y, np.concatenate([
                self.model.loss(X[i * batch_size:(i + 1) * batch_size])
                for i in range(num_batches)]))
        y_pred: Any = []
        for i in range(num_batches):
            start = i * batch_size
            end = (i + 1) * batch_size
            scores = self.model.loss(X[start:end])
            if self._n_classes is None and np.ndim(scores) == 2:
                # the score width, read without any extra call: check the labels now
                self._n_classes = int(np.shape(scores)[1])
                for name in ("y_train", "y_val"):
                    _check_labels(getattr(self, name), name, self._n_classes)
            y_pred.append(np.argmax(scores, axis=1))
        y_pred = np.hstack(y_pred)
        return np.mean(y_pred == y)

    # ------------------------------------------------------------------ output

    def _print(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg)

    def _make_bar(self, total: Optional[int], initial: int) -> Any:
        """A tqdm bar, or None.  Default (progress=None): on when verbose and stdout is a
        terminal, or in a Jupyter kernel with ipywidgets installed.  Never a warning:
        without ipywidgets (or tqdm) the bar falls back to plain text, or is left out."""
        notebook = _in_notebook()
        widgets = notebook and _has_ipywidgets()
        show = self.progress
        if show is None:
            tty = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
            show = bool(self.verbose) and (tty or widgets)
        if not show:
            return None
        kwargs = dict(total=total, initial=initial, unit="step", desc="training", leave=True)
        if widgets:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from tqdm.notebook import tqdm as notebook_tqdm
                    return notebook_tqdm(**kwargs)
            except Exception:
                pass    # fall back to the text bar
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from tqdm.std import tqdm as text_tqdm
                return text_tqdm(dynamic_ncols=True, **kwargs)
        except Exception:
            return None

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self) -> None:
        """The CS231n pickle (when checkpoint_name is set)."""
        if self.checkpoint_name is None:
            return
        checkpoint = {
            "model": self.model,
            "update_rule": self.update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }
        filename = "%s_epoch_%d.pkl" % (self.checkpoint_name, self.epoch)
        if self.verbose:
            self._print('Saving checkpoint to "%s"' % filename)
        with open(filename, "wb") as f:
            pickle.dump(checkpoint, f)

    def _model_extra_state(self) -> dict[str, Any]:
        extra = getattr(self.model, "extra_state", None)
        if extra is not None:
            return dict(extra())
        out = {}
        for i, bn in enumerate(getattr(self.model, "bn_params", None) or []):
            for key in ("running_mean", "running_var"):
                if isinstance(bn, dict) and bn.get(key) is not None:
                    out[f"bn{i}/{key}"] = np.asarray(bn[key])
        return out

    def _load_model_extra_state(self, state: Mapping[str, Any]) -> None:
        loader = getattr(self.model, "load_extra_state", None)
        if loader is not None:
            loader(state)
            return
        for name, value in state.items():
            layer, key = name.split("/", 1)
            self.model.bn_params[int(layer[2:])][key] = np.array(value, copy=True)

    def _optimizer_configs(self) -> Any:
        """The optimiser state to save: per parameter, or the Net's ("__net__")."""
        if not self.fast:
            return self._optim_configs
        if self._fast_ready or self._resumed:
            # after resume() the Net holds the loaded state even before any step
            return {"__net__": self.model.optimizer_state()}
        # no step yet: the state a fresh run would start from
        return {"__net__": copy.deepcopy(self.optim_config)}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the whole training state to ``path`` (an atomic, pickle-free .npz).

        Holds the current parameters, the best ones (and, with restore_norm_stats,
        their running statistics), the optimiser state, the histories, the random
        generator, the schedule, augmentation and shuffle state, and the next step.
        Saving right after :meth:`resume` writes back everything that was loaded.
        """
        arrays = {}
        scalars: dict[str, Any] = {}
        for name, value in self.model.params.items():
            arrays[f"param/{name}"] = np.asarray(value)
        for name, value in self.best_params.items():
            arrays[f"best/{name}"] = np.asarray(value)
        for name, value in self._best_norm.items():
            arrays[f"bestnorm/{name}"] = np.asarray(value)
        for name, value in self._model_extra_state().items():
            arrays[f"model/{name}"] = np.asarray(value)
        for name, value in (self._ema or {}).items():
            arrays[f"ema/{name}"] = value
        for p, config in self._optimizer_configs().items():
            scalars[p] = {}
            for key, value in (config or {}).items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{p}/{key}"] = value
                else:
                    scalars[p][key] = value
        kind, keys, pos, has_gauss, cached = self._random.get_state()
        arrays["rng/keys"] = keys
        if self._order is not None:
            arrays["shuffle/order"] = np.asarray(self._order, dtype=np.int64)
        header = {
            "kind": "solver",
            "model_class": type(self.model).__name__,
            "param_names": list(self.model.params),
            "epoch": self.epoch,
            "next_iteration": self._next_it,
            "best_val_acc": float(self.best_val_acc),
            "bad_epochs": self._bad_epochs,
            "loss_history": [float(v) for v in self.loss_history],
            "train_acc_history": [float(v) for v in self.train_acc_history],
            "val_acc_history": [float(v) for v in self.val_acc_history],
            "optim_scalars": scalars,
            "fast": bool(self.fast),
            "rng": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                    "cached_gaussian": float(cached)},
            "settings": {"update_rule": self.rule_name, "lr_decay": self.lr_decay,
                         "batch_size": self.batch_size, "num_epochs": self.num_epochs},
            "schedule": self._sched.state() if self._sched is not None else None,
            "augment": (self.augment.get_state()
                        if hasattr(self.augment, "get_state") else None),
            "order_pos": int(self._order_pos),
            "diverged_iteration": self.diverged_iteration,
        }
        if self.ema_decay is not None:
            header["ema"] = {"decay": self.ema_decay, "every": self.ema_every}
        return save_checkpoint(path, arrays, header)

    def resume(self, path: str | os.PathLike[str]) -> Solver:
        """Load a checkpoint written by :meth:`save` (or ``checkpoint_path``); returns self.

        The model must have the same parameter names and shapes.  A following
        :meth:`train` continues from the iteration after the checkpoint, so an
        interrupted run that is resumed ends with the same parameters as one that
        was never interrupted.  The whole file is checked before anything is changed:
        a checkpoint that does not fit, or any field of it that is malformed, raises
        :class:`CheckpointError` and leaves the model, the Solver and NumPy's random
        generator as they were.
        """
        arrays, header = load_checkpoint(path)
        plan = self._check_resumable(path, arrays, header)
        saved = self._snapshot_for_rollback()
        try:
            self._apply_checkpoint(plan)
        except Exception as exc:   # not expected after the checks: undo, then report
            self._rollback(saved)
            raise CheckpointError(f"cannot resume from {path!r}: {exc}") from exc
        return self

    def _apply_checkpoint(self, plan: Mapping[str, Any]) -> None:
        for name, value in plan["params"].items():
            self.model.params[name] = value
        self.best_params = plan["best"]
        self._best_norm = plan["bestnorm"]
        self._load_model_extra_state(plan["extra"])
        if plan["fast"]:
            self.model.set_optimizer(self.rule_name, **plan["configs"]["__net__"])
            self._fast_ready = False
            self._resumed = True
        else:
            self.optim_configs = plan["configs"]
        self.epoch = plan["epoch"]
        self._next_it = plan["next_iteration"]
        self._loop_done = False
        self.best_val_acc = plan["best_val_acc"]
        self._bad_epochs = plan["bad_epochs"]
        self.loss_history = plan["loss_history"]
        self.train_acc_history = plan["train_acc_history"]
        self.val_acc_history = plan["val_acc_history"]
        self.diverged_iteration = plan["diverged_iteration"]
        self._ema = plan["ema"]
        self._order = plan["order"]
        self._order_pos = plan["order_pos"]
        if self._sched is not None and plan["schedule"] is not None:
            self._sched.load_state(plan["schedule"])
        if plan["augment"] is not None:
            self.augment.set_state(plan["augment"])
        self._random.set_state(plan["rng"])

    _ROLLBACK_ATTRS = ("best_params", "_best_norm", "_optim_configs", "_fast_ready",
                       "_resumed", "epoch", "_next_it", "_loop_done", "best_val_acc",
                       "_bad_epochs", "loss_history", "train_acc_history",
                       "val_acc_history", "diverged_iteration", "_order", "_order_pos",
                       "_ema")

    def _snapshot_for_rollback(self) -> dict[str, Any]:
        return {
            "attrs": {k: copy.deepcopy(getattr(self, k)) for k in self._ROLLBACK_ATTRS},
            "params": {k: np.array(v, copy=True) for k, v in self.model.params.items()},
            "extra": {k: np.array(v, copy=True) for k, v in self._model_extra_state().items()},
            "net_optim": (copy.deepcopy(self.model.optimizer_state())
                          if self.fast and getattr(self.model, "update_rule", None) else None),
            "sched": self._sched.state() if self._sched is not None else None,
            "augment": (copy.deepcopy(self.augment.get_state())
                        if hasattr(self.augment, "get_state") else None),
            "rng": self._random.get_state(),
        }

    def _rollback(self, saved: Mapping[str, Any]) -> None:
        for k, v in saved["attrs"].items():
            setattr(self, k, v)
        for k, v in saved["params"].items():
            self.model.params[k] = v
        if saved["extra"]:
            self._load_model_extra_state(saved["extra"])
        if saved["net_optim"] is not None:
            self.model.set_optimizer(self.model.update_rule, **saved["net_optim"])
        if saved["sched"] is not None:
            # a saved schedule state implies this Solver has a schedule
            self._sched.load_state(saved["sched"])  # type: ignore[union-attr]
        if saved["augment"] is not None:
            self.augment.set_state(saved["augment"])
        self._random.set_state(saved["rng"])

    def _check_resumable(self, path: object, arrays: Mapping[str, NDArray[Any]],
                         header: Mapping[str, Any]) -> dict[str, Any]:
        """Check every field of a checkpoint against this Solver and model.

        Returns the plan that :meth:`_apply_checkpoint` carries out (converted copies,
        nothing shared with the file's arrays); raises CheckpointError otherwise."""
        def fail(msg: str) -> NoReturn:
            raise CheckpointError(f"cannot resume from {path!r}: {msg}")

        def is_int(v: object) -> TypeGuard[int]:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_real(v: object) -> TypeGuard[float]:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        def count(v: Any, what: str, low: int = 0) -> int:
            if not is_int(v) or v < low:
                fail(f"{what} must be an integer >= {low}, got {v!r}")
            return v

        if header.get("kind") != "solver":
            fail("it holds no Solver state")
        required = ("param_names", "epoch", "next_iteration", "best_val_acc", "loss_history",
                    "train_acc_history", "val_acc_history", "optim_scalars", "fast", "rng")
        missing = [k for k in required if k not in header]
        if missing:
            fail(f"the header lacks {', '.join(missing)}")
        names = list(self.model.params)
        if header["param_names"] != names:
            fail(f"its parameters {header['param_names']} are not the model's {names}")

        # which arrays may be there
        prefixes = ("param/", "best/", "bestnorm/", "model/", "optim/", "ema/")
        for key in arrays:
            if key not in ("rng/keys", "shuffle/order") and not key.startswith(prefixes):
                fail(f"it holds an unexpected array {key!r}")

        def float_array(key: str, shape: Sequence[int], dtype: DTypeLike,
                        finite: bool = True) -> NDArray[Any]:
            if key not in arrays:
                fail(f"it lacks the array {key}")
            a = arrays[key]
            if a.shape != tuple(shape):
                fail(f"{key} has shape {a.shape}, expected {tuple(shape)}")
            if a.dtype.kind not in "fiu" or not np.can_cast(a.dtype, dtype, "same_kind"):
                fail(f"{key} has dtype {a.dtype}, which does not convert to {np.dtype(dtype)}")
            out = np.array(a, dtype=dtype, copy=True)
            if finite and not _all_finite(out):
                fail(f"{key} holds NaN or inf values")
            return out

        plan: dict[str, Any] = {}
        shapes = {n: np.shape(self.model.params[n]) for n in names}
        dtypes = {n: np.asarray(self.model.params[n]).dtype for n in names}
        # non-finite current weights only in a run that recorded its divergence and
        # went on (on_divergence='continue'); the best ones are always finite
        diverged = header.get("diverged_iteration") is not None
        plan["params"] = {n: float_array(f"param/{n}", shapes[n], dtypes[n],
                                         finite=not diverged)
                          for n in names}
        best_names = [k[len("best/"):] for k in arrays if k.startswith("best/")]
        if best_names and sorted(best_names) != sorted(names):
            fail(f"its best parameters {sorted(best_names)} are not the model's {names}")
        plan["best"] = {n: float_array(f"best/{n}", shapes[n], dtypes[n])
                        for n in names if best_names}

        # model state beyond the parameters (running statistics, Net step counters)
        current_extra = self._model_extra_state()
        if getattr(self.model, "extra_state", None) is None:
            # CS231n bn_params: running statistics are created on first use, so a fresh
            # model may not have them yet; they take the shape of gamma
            for i, bn in enumerate(getattr(self.model, "bn_params", None) or []):
                gamma = self.model.params.get(f"gamma{i + 1}")
                if gamma is None:
                    continue
                for key in ("running_mean", "running_var"):
                    if f"model/bn{i}/{key}" in arrays:
                        current_extra.setdefault(f"bn{i}/{key}", np.zeros_like(gamma))
        have = {k[len("model/"):] for k in arrays if k.startswith("model/")}
        if have != set(current_extra):
            lack, extra = set(current_extra) - have, have - set(current_extra)
            fail("its model state does not match the model's: "
                 + (f"lacks {', '.join(sorted(lack))}" if lack else "")
                 + ("; " if lack and extra else "")
                 + (f"has unknown {', '.join(sorted(extra))}" if extra else ""))
        plan["extra"] = {}
        for k, cur in current_extra.items():
            cur = np.asarray(cur)
            a = arrays[f"model/{k}"]
            if a.shape != cur.shape or a.dtype.kind not in "fiu" or (
                    cur.dtype.kind == "f") != (a.dtype.kind == "f"):
                fail(f"model/{k} has shape {a.shape} and dtype {a.dtype}; the model's has "
                     f"{cur.shape} and {cur.dtype}")
            if a.dtype.kind == "f" and not _all_finite(a):
                fail(f"model/{k} holds NaN or inf values")
            if a.dtype.kind in "iu" and a.size and int(a.min()) < 0:
                fail(f"model/{k} holds negative values")
            plan["extra"][k] = np.array(a, dtype=cur.dtype, copy=True)
        plan["bestnorm"] = {}
        for key in arrays:
            if key.startswith("bestnorm/"):
                k = key[len("bestnorm/"):]
                if k not in current_extra or "running_" not in k:
                    fail(f"{key} is not a normalisation statistic of the model")
                cur = np.asarray(current_extra[k])
                plan["bestnorm"][k] = float_array(key, cur.shape, cur.dtype)

        # scalars and histories
        plan["epoch"] = count(header["epoch"], "epoch")
        plan["next_iteration"] = count(header["next_iteration"], "next_iteration")
        plan["bad_epochs"] = count(header.get("bad_epochs", 0), "bad_epochs")
        acc = header["best_val_acc"]
        if not is_real(acc) or not 0.0 <= acc <= 1.0:
            fail(f"best_val_acc must be a number in [0, 1], got {acc!r}")
        plan["best_val_acc"] = acc
        for key in ("loss_history", "train_acc_history", "val_acc_history"):
            h = header[key]
            if not isinstance(h, list) or not all(is_real(v) for v in h):
                fail(f"{key} must be a list of numbers")
            if key != "loss_history" and not all(0.0 <= v <= 1.0 for v in h):
                fail(f"{key} holds values outside [0, 1]")
            plan[key] = list(h)
        if len(plan["train_acc_history"]) != len(plan["val_acc_history"]):
            fail("train_acc_history and val_acc_history differ in length")
        if len(plan["loss_history"]) < plan["next_iteration"]:
            fail(f"loss_history holds {len(plan['loss_history'])} losses but "
                 f"next_iteration is {plan['next_iteration']}")
        div = header.get("diverged_iteration")
        if div is not None:
            count(div, "diverged_iteration", low=1)
        plan["diverged_iteration"] = div
        settings = header.get("settings") or {}
        if not isinstance(settings, dict):
            fail("settings must be a mapping")
        if self.rule_name is not None and settings.get("update_rule") not in (
                None, self.rule_name):
            fail(f"it was trained with update_rule {settings.get('update_rule')!r}, this "
                 f"Solver uses {self.rule_name!r}")

        # the optimiser state
        fast = header["fast"]
        if not isinstance(fast, bool):
            fail(f"fast must be true or false, got {fast!r}")
        if fast and not self.fast:
            fail("it was written by a train_step run (fastfc.Net); resume it with the same "
                 "kind of model and a named update rule")
        if not fast and self.fast:
            fail("it was written by a model.loss run; resume it with the same kind of model")
        plan["fast"] = fast
        scalars = header["optim_scalars"]
        if not isinstance(scalars, dict):
            fail("optim_scalars must be a mapping")
        owners = ["__net__"] if fast else names
        if sorted(scalars) != sorted(owners):
            fail(f"its optimiser state is for {sorted(scalars)}, expected {sorted(owners)}")
        configs = {}
        for p in owners:
            config = scalars[p]
            if not isinstance(config, dict):
                fail(f"the optimiser config of {p} must be a mapping")
            for k, v in config.items():
                if not (is_real(v) or isinstance(v, bool)) or (
                        isinstance(v, float) and not math.isfinite(v)):
                    fail(f"optimiser value {p}/{k} must be a finite number, got {v!r}")
            configs[p] = dict(config)
        for key, value in arrays.items():
            if key.startswith("optim/"):
                parts = key.split("/", 2)
                if len(parts) != 3 or parts[1] not in configs:
                    fail(f"{key} belongs to no parameter")
                if parts[2] in configs[parts[1]]:
                    fail(f"{key} is given twice")
                if value.dtype.kind != "f" or not _all_finite(value):
                    fail(f"{key} must be a finite float array")
                configs[parts[1]][parts[2]] = np.array(value, copy=True)
        if self.rule_name is not None:
            for p, config in configs.items():
                if fast:
                    size = sum(int(np.prod(s)) for s in shapes.values())
                    w = np.zeros(size, dtype=np.dtype(self._model_dtype()))
                    if ("weight_decay" in config and "weight_decay"
                            not in optim.RULES[self.rule_name].defaults):
                        fail("the Net's optimiser state holds weight_decay")
                else:
                    w = np.zeros(shapes[p], dtype=dtypes[p])
                try:
                    optim.prepare_config(self.rule_name, copy.deepcopy(config), w,
                                         copy_states=True)
                except (TypeError, ValueError) as exc:
                    fail(f"the optimiser state of {p} does not fit {self.rule_name}: {exc}")
        plan["configs"] = configs

        # the random generator
        rng = header["rng"]
        if not isinstance(rng, dict):
            fail("rng must be a mapping")
        keys = arrays.get("rng/keys")
        if keys is None:
            fail("it lacks the random generator state")
        if keys.shape != (624,) or keys.dtype != np.uint32:
            fail(f"rng/keys must be 624 uint32 values, got shape {keys.shape} and "
                 f"dtype {keys.dtype}")
        if rng.get("kind") != "MT19937":
            fail(f"rng kind must be 'MT19937', got {rng.get('kind')!r}")
        pos, has_gauss, cached = rng.get("pos"), rng.get("has_gauss"), rng.get("cached_gaussian")
        if not is_int(pos) or not 0 <= pos <= 624:
            fail(f"rng pos must be an integer in [0, 624], got {pos!r}")
        if has_gauss not in (0, 1) or isinstance(has_gauss, bool) or not is_int(has_gauss):
            fail(f"rng has_gauss must be 0 or 1, got {has_gauss!r}")
        if not is_real(cached) or not math.isfinite(cached):
            fail(f"rng cached_gaussian must be a finite number, got {cached!r}")
        plan["rng"] = ("MT19937", np.array(keys, copy=True), pos, has_gauss, float(cached))

        # schedule, augmentation and shuffle state
        sched = header.get("schedule")
        if sched is not None:
            if (not isinstance(sched, dict) or not is_real(sched.get("elapsed"))
                    or not math.isfinite(sched["elapsed"]) or sched["elapsed"] < 0):
                fail(f"schedule state must be {{'elapsed': seconds >= 0}}, got {sched!r}")
            warm = sched.get("warmup", 0.0)
            if not is_real(warm) or (self._sched is not None and warm != self.warmup):
                fail(f"it was trained with warmup {warm!r}, this Solver uses "
                     f"warmup {self.warmup!r}")
        plan["schedule"] = sched

        # the weight average (ema_decay)
        ema_saved = header.get("ema")
        ema_keys = [k[len("ema/"):] for k in arrays if k.startswith("ema/")]
        plan["ema"] = None
        if self.ema_decay is None:
            if ema_saved is not None or ema_keys:
                fail("it holds a weight average (ema_decay); resume it with the same "
                     "ema_decay and ema_every")
        else:
            if not isinstance(ema_saved, dict) or ema_saved.get("decay") != self.ema_decay \
                    or ema_saved.get("every") != self.ema_every:
                fail(f"it was trained with the weight average {ema_saved!r}, this Solver "
                     f"uses ema_decay {self.ema_decay!r} and ema_every {self.ema_every!r}")
            sources = self._ema_sources()
            if ema_keys:
                if sorted(ema_keys) != sorted(sources):
                    fail(f"its weight average holds {sorted(ema_keys)}, expected "
                         f"{sorted(sources)}")
                plan["ema"] = {k: float_array(f"ema/{k}", np.shape(v),
                                              np.asarray(v).dtype, finite=not diverged)
                               for k, v in sources.items()}
            elif plan["loss_history"]:
                fail("it lacks the weight average of its steps")
        aug = header.get("augment")
        plan["augment"] = None
        if aug is not None and hasattr(self.augment, "set_state"):
            trial = copy.deepcopy(self.augment)
            try:
                trial.set_state(aug)
            except Exception as exc:
                fail(f"its augmentation state does not fit: {exc}")
            plan["augment"] = aug
        order = arrays.get("shuffle/order")
        plan["order"] = None
        plan["order_pos"] = count(header.get("order_pos", 0), "order_pos")
        if order is not None:
            n = self.X_train.shape[0]
            if (order.shape != (n,) or order.dtype.kind not in "iu"
                    or not np.array_equal(np.sort(order), np.arange(n))):
                fail(f"shuffle/order must be a permutation of the {n} training samples")
            plan["order"] = order.astype(np.intp)
        return plan

    # ------------------------------------------------------------------ training

    def _restore_best(self) -> None:
        """Put the best (finite) snapshot back into the model, as copies.

        With no snapshot the model keeps its parameters unless they are not finite;
        then it gets back those it had when train() began."""
        if self.best_params:
            self.model.params = {k: np.array(v, copy=True) for k, v in self.best_params.items()}
            if self.restore_norm_stats and self._best_norm:
                self._load_norm_state(self._best_norm)
        elif self._start_params is not None and not self._params_all_finite():
            self.model.params = {k: np.array(v, copy=True)
                                 for k, v in self._start_params.items()}

    def _params_all_finite(self) -> bool:
        return all(_all_finite(v) for v in self.model.params.values())

    def _norm_state(self) -> dict[str, NDArray[Any]]:
        """Copies of the model's normalisation running statistics (name -> array)."""
        return {k: np.array(v, copy=True) for k, v in self._model_extra_state().items()
                if "running_" in k}

    def _load_norm_state(self, state: Mapping[str, ArrayLike]) -> None:
        current = self._model_extra_state()
        current.update({k: np.array(v, copy=True) for k, v in state.items()})
        self._load_model_extra_state(current)

    def _install_sigint(self) -> Any:
        """Make Ctrl-C set a flag that train() reads between steps; returns the old handler.

        Only in the main thread and when Python's default handler is in place (a
        handler of the user's or of another library is left alone)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
                return None

            def on_sigint(signum: int, frame: Any) -> None:
                if self._sigint:   # a second Ctrl-C: stop at once
                    raise KeyboardInterrupt
                self._sigint = True

            return signal.signal(signal.SIGINT, on_sigint)
        except (ValueError, OSError):   # pragma: no cover - no signals here
            return None

    def train(self) -> None:
        """Run optimisation; the model ends with the best parameters found.

        A second call trains ``num_epochs`` more (as the course's loop does); after
        :meth:`resume` the checkpointed run continues from its next step.

        Ctrl-C: while train() runs in the main thread (and SIGINT has Python's default
        handler), a SIGINT only sets a flag; the step under way is completed (with its
        accuracy check and checkpoint, if due) and training stops at that step
        boundary.  With ``checkpoint_path`` the exact state is written then (current
        parameters, optimiser, random generator, histories, schedule, augmentation and
        shuffle state, next step), so ``Solver(...).resume(path).train()`` ends bit for
        bit where an uninterrupted run ends.  The model then holds the best parameters,
        ``interrupted`` is True and one RuntimeWarning says where training stopped.  A
        second Ctrl-C before the step ends interrupts at once; the checkpoint file then
        keeps its last complete state.  The previous handler is put back on return.
        """
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        if self._loop_done:
            # the course's train() runs `for t in range(num_iterations)` again
            self._next_it = 0
            self._bad_epochs = 0
            if self._sched is not None:
                self._sched.load_state({"elapsed": 0.0})
        self._loop_done = False
        self.interrupted = False
        self.stopped_early = False
        self.diverged_iteration = None
        self._sigint = False
        self._start_params = (None if self.best_params else
                              {k: np.array(v, copy=True) for k, v in self.model.params.items()})
        sched = self._sched     # the clock of a time budget (and the cosine's fraction)
        timed = self.time_budget is not None
        self._ema_start()
        ema_every = self.ema_every if self._ema is not None else 0
        base_lr = self.optim_config.get("learning_rate")
        before_step, after_epoch = self._lr_schedule()
        if sched is not None:
            sched.start()
        base = self._blowup_base()
        limit = blowup_limit(base) if base is not None else None
        start = self._next_it
        next_t = start          # the first step not yet done
        at_boundary = True      # no step is half done
        previous_handler = None
        self._bar = self._make_bar(None if timed else num_iterations, start)
        try:
            previous_handler = self._install_sigint()
            for t in range(start, num_iterations):
                if self._sigint:
                    raise KeyboardInterrupt
                if timed and sched.done(t):  # type: ignore[union-attr]  # timed: sched is set
                    # the budget is spent: finish with a check unless one just happened
                    if self._next_it != t:
                        at_boundary = False
                        self._end_of_check(t - 1, False, last_it=True)
                    break
                at_boundary = False
                if before_step is not None:
                    lr = before_step(t, base_lr)
                    if lr is not None:
                        self._set_learning_rate(lr)
                self._params_finite = True
                self._step()
                if ema_every and (t + 1) % ema_every == 0:
                    self._ema_update()
                loss = self.loss_history[-1]
                if limit is None:
                    # loss_history has a loss now, so the base is a float
                    limit = blowup_limit(self._blowup_base())  # type: ignore[arg-type]
                if self.diverged_iteration is None and (
                        not math.isfinite(loss) or not self._params_finite or loss > limit):
                    if self._diverged(t, num_iterations, loss, limit):
                        break
                if self._bar is not None:
                    self._bar.update(1)
                    if t % self.print_every == 0:
                        self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if self.verbose and t % self.print_every == 0:
                    self._print("(Iteration %d / %d) loss: %f"
                                % (t + 1, num_iterations, self.loss_history[-1]))

                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    if after_epoch is not None:
                        self._end_epoch_schedule(after_epoch)

                first_it = t == 0
                last_it = t == num_iterations - 1 or (
                    timed and sched.done(t + 1))  # type: ignore[union-attr]  # as above
                if first_it or last_it or epoch_end:
                    if self._end_of_check(t, epoch_end, last_it):
                        break
                next_t = t + 1
                at_boundary = True
        except KeyboardInterrupt:
            self._interrupted(next_t, num_iterations, at_boundary)
            return
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self._loop_done = True
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        self._ema_load()
        self._restore_best()

    def _interrupted(self, next_t: int, num_iterations: int, at_boundary: bool) -> None:
        """Ctrl-C: write the exact state (when it is at a step boundary), keep the best."""
        self.interrupted = True
        where = (f"after iteration {next_t} / {num_iterations}" if at_boundary
                 else f"during iteration {next_t + 1} / {num_iterations}")
        saved = ""
        if self.checkpoint_path is not None:
            if at_boundary:
                self._next_it = next_t
                self.save(self.checkpoint_path)
                saved = (f"; the exact state was saved to {self.checkpoint_path!r}: "
                         "Solver(...).resume(path).train() continues the run")
            else:
                saved = (f"; it stopped inside a step, so {self.checkpoint_path!r} keeps its "
                         "last complete state")
        self._ema_load()
        self._restore_best()
        held = ("the best parameters found so far" if self.best_params
                else "its current parameters")
        warnings.warn(f"training interrupted {where}; the model holds {held}{saved}",
                      RuntimeWarning, stacklevel=3)

    def _diverged(self, t: int, num_iterations: int, loss: float,
                  limit: Optional[float]) -> bool:
        """Report divergence at step t as on_divergence says; returns True to stop."""
        self.diverged_iteration = t + 1
        lrs = [lr for lr in self._learning_rates() if lr is not None]
        hint = f" (currently {max(lrs):g})" if lrs else ""
        if not math.isfinite(loss):
            what = f"the loss is {loss}"
        elif not self._params_finite:
            what = "its update made parameters NaN or infinite"
        else:
            what = (f"the loss grew to {loss:.4g}, over {BLOWUP_FACTOR:g} times its start "
                    f"({float(self.loss_history[0]):.4g})")
        msg = (f"training diverged at iteration {t + 1} / {num_iterations} "
               f"(epoch {self.epoch}): {what}. Try a smaller learning rate{hint} or scale "
               "the inputs")
        if self.on_divergence == "continue":
            warnings.warn(msg + "; training continues (on_divergence='continue') and the "
                          "model will end with the best parameters found.", RuntimeWarning,
                          stacklevel=3)
            return False
        self._restore_best()
        if self.on_divergence == "stop":
            warnings.warn(msg + "; training stopped (on_divergence='stop') with the best "
                          "parameters so far.", RuntimeWarning, stacklevel=3)
            return True
        raise TrainingDiverged(msg + "; the best parameters so far were kept.")

    def _blowup_base(self) -> Optional[float]:
        """The first loss of the run (the blow-up rule's base), or None before a step."""
        return self.loss_history[0] if self.loss_history else None

    def _end_of_check(self, t: int, epoch_end: bool, last_it: bool = False) -> bool:
        """Accuracy check, bookkeeping and checkpoints; returns True to stop early.

        The check itself (what is measured and printed) is :meth:`_check`; keeping the
        best snapshot, early stopping and the ``checkpoint_path`` saves are here."""
        with self._averaged():      # the check and the best snapshot see the average
            val_acc = self._check(t, epoch_end, last_it)
            if val_acc is _NO_CHECK:
                return False
            # an epoch whose parameters are not finite is never the best one
            improved = self._improved(val_acc)
            if improved:
                self._keep_best(val_acc)
        stop = False
        if epoch_end and self.patience is not None:
            self._bad_epochs = 0 if improved else self._bad_epochs + 1
            if self._bad_epochs >= self.patience:
                self.stopped_early = True
                stop = True
                self._report_early_stop()
        self._next_it = t + 1
        # the last step is saved wherever it falls: with a time budget it can end an
        # epoch early, and a resume must find the spent budget, not the last epoch end
        if self.checkpoint_path is not None and (last_it or epoch_end and (
                stop or self.epoch % self.checkpoint_every == 0)):
            self.save(self.checkpoint_path)
        return stop

    def _improved(self, val_acc: float) -> bool:
        return val_acc > self.best_val_acc and self._params_all_finite()

    def _keep_best(self, val_acc: float) -> None:
        """Snapshot the current parameters (and running statistics) as the best."""
        self.best_val_acc = val_acc
        self.best_params = {}
        for k, v in self.model.params.items():
            self.best_params[k] = v.copy()
        if self.restore_norm_stats:
            self._best_norm = self._norm_state()

    def _report_early_stop(self) -> None:
        if self.verbose:
            self._print("Early stopping: no improvement in validation accuracy "
                        "for %d epochs (best %f)" % (self.patience, self.best_val_acc))

    def _check(self, t: int, epoch_end: bool, last_it: bool) -> Any:
        """Measure train and validation accuracy, record and print them; returns the
        validation accuracy (or _NO_CHECK to skip this check)."""
        train_acc = self.check_accuracy(self.X_train, self.y_train,
                                        num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val,
                                      num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        if self.verbose:
            self._print(("(Epoch %d / %d) train R2: %f; val_R2: %f" if self._regression
                         else "(Epoch %d / %d) train acc: %f; val_acc: %f")
                        % (self.epoch, self.num_epochs, train_acc, val_acc))
        if t == 0 and not self._unscaled_checked:
            self._check_first_loss()
        return val_acc

    def _check_first_loss(self) -> None:
        """Warn once when the first loss is far above log(C): inputs look unscaled."""
        self._unscaled_checked = True
        C = self._n_classes
        if not self.loss_history or C is None or C < 2 or self._regression:
            return
        first = float(self.loss_history[0])
        if math.isfinite(first) and first > UNSCALED_FACTOR * math.log(C):
            warnings.warn(
                f"the first loss is {first:.4g}, over {UNSCALED_FACTOR:g} x log({C}) = "
                f"{UNSCALED_FACTOR * math.log(C):.3g} expected of a fresh model: the inputs "
                "look unscaled. Standardise them (subtract the mean, divide by the standard "
                "deviation) or use a smaller weight_scale.", RuntimeWarning, stacklevel=5)
