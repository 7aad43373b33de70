"""One trial: build the Net, train it with the Solver, report each epoch, make a record."""
from __future__ import annotations

import functools
import inspect
import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np

from fastfc._defaults import FRONTEND_ON_DIVERGENCE
from fastfc.sweep._space import _defaults_for, route_config

if TYPE_CHECKING:
    from fastfc.net import Net

#: ``report(epoch, val_acc, last) -> stop?`` (see :func:`run_trial`)
Report = Callable[[int, float, bool], bool]

#: The numeric fields of a trial record (None when the trial did not produce them).
RESULT_FIELDS = ("best_val_acc", "final_train_acc", "loss_first", "loss_last", "loss_min",
                 "n_iterations", "epochs")


def _check_data(data: object) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"data must be a Solver data dict, got {type(data).__name__}")
    missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
    if missing:
        raise ValueError(f"data is missing {', '.join(missing)}")


def _layer_dims(model_kwargs: dict[str, Any], data: Mapping[str, Any]) -> list[int]:
    """[input_dim, *hidden_dims, num_classes], the ends read from data when not given."""
    input_dim = model_kwargs.pop("input_dim", None)
    num_classes = model_kwargs.pop("num_classes", None)
    hidden = model_kwargs.pop("hidden_dims", [100])
    if input_dim is None:
        input_dim = int(np.prod(np.shape(data["X_train"])[1:]))
    if num_classes is None:
        num_classes = int(max(np.max(data["y_train"]), np.max(data["y_val"]))) + 1
    return [input_dim, *hidden, num_classes]


def build_model(data: Mapping[str, Any], config: Mapping[str, Any],
                seed: Optional[int]) -> tuple[Net, dict[str, Any]]:
    """The Net a trial trains, and the Solver keywords (optim_config included).

    Settings missing from ``config`` take the front-end defaults (see the module
    docstring of :mod:`fastfc.sweep`)."""
    from fastfc.net import Net
    config = dict(_defaults_for(config), **config)
    model_kwargs, solver_kwargs, optim_config, _ = route_config(config)
    layer_dims = _layer_dims(model_kwargs, data)
    model = Net(layer_dims, seed=seed, **model_kwargs)
    if solver_kwargs.get("augment") is not None:
        solver_kwargs["augment"] = _augmenter(solver_kwargs["augment"], data, seed)
    return model, dict(solver_kwargs, optim_config=optim_config)


def _augmenter(spec: str, data: Mapping[str, Any], seed: Optional[int]) -> Any:
    """The Augmenter of an ``augment`` spec such as ``'flip,translate=2'``, for the
    images of ``data`` (X_train of shape (N, C, H, W)), seeded by the trial's seed."""
    from fastfc.augment import parse_augment
    shape = np.shape(data["X_train"])
    if len(shape) != 4:
        raise ValueError(f"augment {spec!r} needs images: X_train of shape (N, C, H, W), "
                         f"got shape {shape}")
    return parse_augment(spec, (int(shape[1]), int(shape[2]), int(shape[3])), seed=seed)


@functools.lru_cache(maxsize=None)
def _reporting_solver_class() -> Any:
    """A Solver that calls ``report(epoch, val_acc, last)`` after each epoch's accuracy
    check and stops (as early stopping does: best parameters restored) when it returns
    True.

    The Solver has no public per-epoch hook yet; this wraps its epoch-end check
    (``Solver._end_of_check``), which returns True to stop.
    """
    from fastfc.solver import Solver

    if not hasattr(Solver, "_end_of_check"):  # pragma: no cover - guards a refactor
        raise RuntimeError("fastfc.solver.Solver no longer has _end_of_check: the sweep's "
                           "per-epoch report needs an epoch-end hook")

    class ReportingSolver(Solver):
        report: Optional[Report] = None
        pruned = False

        def _end_of_check(self, t: int, epoch_end: bool, last_it: bool = False) -> bool:
            stop = super()._end_of_check(t, epoch_end, last_it)
            if epoch_end and self.report is not None:
                if self.report(self.epoch, float(self.val_acc_history[-1]),
                               bool(last_it or stop)) and not (last_it or stop):
                    self.pruned = True
                    return True
            return stop

    return ReportingSolver


def run_trial(data: Mapping[str, Any], config: Mapping[str, Any], seed: Optional[int],
              report: Optional[Report] = None) -> dict[str, Any]:
    """Train one configuration; the default ``runner`` of :func:`fastfc.sweep.sweep`.

    Seeds NumPy's global generator with ``seed`` (the Solver's minibatches) and builds
    ``Net(..., seed=seed)``.  The Solver runs with the front ends' divergence rule
    (``on_divergence='raise'``: a diverged trial raises
    :class:`fastfc.solver.TrainingDiverged`) and keeps the best epoch's batch-norm
    statistics with its parameters (``restore_norm_stats``).

    Parameters
    ----------
    report : callable, optional
        ``report(epoch, val_acc, last) -> bool``, called after every epoch with the
        validation accuracy of that epoch (``last``: no epoch follows).  True stops the
        training there: the trial is pruned.

    Returns
    -------
    dict
        best_val_acc, final_train_acc, loss_first, loss_last, loss_min, n_iterations,
        epochs (epochs trained), pruned, stopped_early and model (the Net, holding the
        best parameters).  A custom runner must return at least best_val_acc (and may
        return model, epochs and pruned).
    """
    model, solver_kwargs = build_model(data, config, seed)
    np.random.seed(seed)
    solver = _reporting_solver_class()(
        model, data, verbose=False, progress=False, on_divergence=FRONTEND_ON_DIVERGENCE,
        restore_norm_stats=True, **solver_kwargs)
    solver.report = report
    solver.train()
    if solver.interrupted:  # Ctrl-C: the Solver stopped cleanly; so does the sweep
        raise KeyboardInterrupt
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
        "pruned": bool(solver.pruned),
        "stopped_early": bool(solver.stopped_early),
        "model": model,
    }


def takes_report(runner: Callable[..., Any]) -> bool:
    """True when ``runner`` accepts the ``report`` keyword."""
    try:
        params = inspect.signature(runner).parameters
    except (TypeError, ValueError):
        return False
    return "report" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def worker_name() -> str:
    """Dask worker address inside a Dask task, else host:pid."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker
            return get_worker().address
        except (ValueError, ImportError, AttributeError):
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


class Job:
    """What a worker needs to run one trial (picklable): the Optuna trial's id and number,
    the configuration, its key and seed."""

    __slots__ = ("trial_id", "number", "config", "key", "seed")

    def __init__(self, trial_id: int, number: int, config: dict[str, Any], key: str,
                 seed: Optional[int]) -> None:
        self.trial_id, self.number, self.config = trial_id, number, config
        self.key, self.seed = key, seed

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.trial_id, self.number, self.config, self.key, self.seed)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.trial_id, self.number, self.config, self.key, self.seed = state


def execute(runner: Callable[..., Any], data: Mapping[str, Any], job: Job,
            reporter: Optional[Callable[[Job], Report]] = None,
            blas_threads: Optional[int] = None) -> dict[str, Any]:
    """Run one trial and return its record (with 'model' when the runner gave one).

    ``reporter``, when given, is ``reporter(job) -> report`` (see :func:`run_trial`).
    An exception inside the trial becomes a ``"failed"`` record, a
    :class:`fastfc.solver.TrainingDiverged` a ``"diverged"`` one, a report that said
    stop a ``"pruned"`` one.  NumPy's global generator is restored afterwards (the trial
    may run in the caller's process).
    """
    from fastfc.solver import TrainingDiverged
    t0 = time.perf_counter()
    record: dict[str, Any] = {"key": job.key, "status": "ok"}
    state = np.random.get_state()
    limiter = None
    try:
        if blas_threads:
            from threadpoolctl import threadpool_limits
            limiter = threadpool_limits(limits=blas_threads)
        kwargs: dict[str, Any] = {}
        if reporter is not None and takes_report(runner):
            kwargs["report"] = reporter(job)
        out = dict(runner(data, job.config, job.seed, **kwargs))
        if "best_val_acc" not in out:
            raise ValueError("the runner returned no 'best_val_acc'")
        if out.pop("pruned", False):
            record["status"] = "pruned"
        record.update(out)
    except TrainingDiverged as exc:  # a property of the configuration, not a failure
        record.update(status="diverged", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # the trial failed: record it, keep the sweep going
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        np.random.set_state(state)
    for field in RESULT_FIELDS:
        record.setdefault(field, None)
    record.update(wall_time=time.perf_counter() - t0, worker=worker_name(), seed=job.seed,
                  config=job.config, defaults=_defaults_for(job.config))
    return record


def failed_record(job: Job, error: Optional[str], retryable: bool) -> dict[str, Any]:
    """The record of a trial that produced none itself (its worker died, ...)."""
    record: dict[str, Any] = {"key": job.key, "status": "failed"}
    record.update({f: None for f in RESULT_FIELDS})
    record.update(wall_time=None, worker=None, seed=job.seed, config=job.config,
                  defaults=_defaults_for(job.config), error=error,
                  retryable=bool(retryable))
    return record
