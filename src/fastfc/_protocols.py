"""The model protocols the Solver trains through.

:class:`fastfc.Solver` imports no model class: it talks to a model through one of the
two protocols below, and everything it learns about a model it learns from them.

``CourseModel`` -- the CS231n contract
    ``params`` (a dict name -> ndarray) and ``loss(X, y=None)`` returning scores
    ``(N, C)`` without labels and ``(loss, grads)`` with them.  The Solver keeps one
    optimiser config per parameter (``solver.optim_configs``) and applies the update
    rule itself.

``OptimizerOwningModel`` -- a model that owns its optimiser (``fastfc.Net``)
    A course model that also takes whole training steps: ``set_optimizer(rule,
    **config)`` chooses the update rule, ``train_step(X, y, indices=None)`` makes one
    step and returns its loss, ``learning_rate`` is the current rate (read and written
    by schedules), ``nonfinite_params`` reports the parameters the last step made NaN or
    infinite, and ``optimizer_state()`` returns the config, state arrays and step count
    that ``set_optimizer(rule, **state)`` loads back (checkpoints and resume).  The
    Solver uses this protocol when the model offers a callable ``train_step`` and the
    update rule is named.

Optional hooks, looked up on either kind of model:

``extra_state()`` / ``load_extra_state(state)``
    Arrays beyond ``params`` that a checkpoint must hold to resume exactly (running
    statistics, step counters): a dict name -> array, names containing ``running_`` for
    normalisation statistics.  Without them the Solver reads the CS231n ``bn_params``.
``make_solver_step(solver)``
    A step accelerator for this Solver, or None.  The accelerator's
    ``step(X_train, batch_mask, y_batch)`` makes the whole step (loss, gradients, update
    of ``model.params`` and of ``solver.optim_configs``) and returns the loss, or None
    when this step must take the ordinary path; its ``nonfinite`` is true when the step
    made parameters NaN or infinite.  It must give what the ordinary path gives.  Today
    :class:`fastfc.classifiers.fc_net.FullyConnectedNet` offers one
    (:mod:`fastfc.classifiers._fused`).
``ema_arrays()``
    The model's own (live, writable) arrays that the Solver's weight average
    (``ema_decay``) follows, name -> array: ``fastfc.Net`` gives its flat parameter
    buffer and its normalisation running statistics, so that one compiled pass over
    each updates the average.  The Solver writes the averaged values into them for its
    accuracy checks and puts the raw ones back.  Without the hook the average covers
    ``params``.

The protocols are :func:`typing.runtime_checkable`, so ``isinstance(model,
OptimizerOwningModel)`` tells which path a model takes (attributes only, as Python's
protocols check them).
"""
from typing import Any, Dict, Mapping, Optional, Protocol, runtime_checkable

import numpy as np

__all__ = ["CourseModel", "OptimizerOwningModel", "StepAccelerator", "model_kind"]


@runtime_checkable
class CourseModel(Protocol):
    """A CS231n model: parameters and a loss with gradients."""

    params: Dict[str, np.ndarray]

    def loss(self, X: np.ndarray, y: Optional[np.ndarray] = None) -> Any:
        """Scores (N, C) when ``y`` is None, else ``(loss, grads)``."""
        ...


@runtime_checkable
class OptimizerOwningModel(CourseModel, Protocol):
    """A model that owns its optimiser and makes a whole step in one call."""

    learning_rate: float
    nonfinite_params: int

    def set_optimizer(self, update_rule: str, **config: Any) -> Any:
        """Choose the update rule; ``config`` holds its hyper-parameters and, when
        loading a saved state, its state arrays and step count."""
        ...

    def train_step(self, X: np.ndarray, y: np.ndarray,
                   indices: Optional[np.ndarray] = None) -> float:
        """One step on the minibatch (``X[indices]`` when given); returns the loss."""
        ...

    def optimizer_state(self) -> Optional[Mapping[str, Any]]:
        """The optimiser's config, state arrays and step count (what set_optimizer
        loads back), or None before set_optimizer."""
        ...


@runtime_checkable
class StepAccelerator(Protocol):
    """What ``model.make_solver_step(solver)`` returns."""

    nonfinite: Any

    def step(self, X_train: np.ndarray, batch_mask: np.ndarray,
             y_batch: np.ndarray) -> Optional[float]:
        """The step's loss, or None when the ordinary path must take this step."""
        ...


def model_kind(model: object, rule_name: Optional[str]) -> str:
    """'owner' when the Solver trains ``model`` through its own optimiser, else 'course'.

    A model owns its optimiser for the Solver when it offers a callable ``train_step``
    and the update rule is named (a custom rule function needs the course path)."""
    if rule_name is not None and callable(getattr(model, "train_step", None)):
        return "owner"
    return "course"
