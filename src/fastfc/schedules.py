"""Learning-rate schedules for the Solver.

A schedule is an object the Solver calls; it never holds a learning rate of its own
(the current rate lives with the optimiser: the model's, or the Solver's per-parameter
configs).  It offers either or both of

``before_step(step, base_lr)``
    called before every step (0-based ``step``) with the run's base learning rate
    (``optim_config['learning_rate']``); returns the rate for that step, or None to
    leave it unchanged;
``after_epoch(epoch, lr)``
    called at every epoch end (``epoch`` counts the epochs done) once per learning
    rate the optimiser holds; returns the new rate, or None to leave it unchanged.

A method the schedule lacks is never called (see :class:`Schedule`, the typing
protocol).  Two schedules ship:

* :class:`ExponentialDecay` -- multiply the rate by ``decay`` at every epoch end (the
  course Solver's ``lr_decay``);
* :class:`CosineSchedule` -- ``lr = base_lr * (1 + cos(pi * f)) / 2`` where ``f`` is the
  fraction of training done, counted either in steps (a fixed number of epochs) or in
  wall-clock seconds (a time budget).  With a time budget, training ends when the budget
  is spent, which is exactly when the learning rate reaches zero.  An optional linear
  warm-up (``warmup``, a fraction of training) first raises the rate from 0 to
  ``base_lr``; the cosine then covers the rest (:func:`warmup_cosine_factor`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

from fastfc import _validation as V

__all__ = ["CosineSchedule", "ExponentialDecay", "Schedule", "cosine_factor",
           "warmup_cosine_factor"]


@runtime_checkable
class Schedule(Protocol):
    """What the Solver calls: ``before_step`` and/or ``after_epoch`` (see the module
    docstring).  Either method may be missing; this protocol names both."""

    def before_step(self, step: int, base_lr: float) -> Optional[float]:
        """The learning rate for step ``step`` (0-based), given the run's base rate;
        None leaves the rate unchanged."""
        ...

    def after_epoch(self, epoch: int, lr: float) -> Optional[float]:
        """The new learning rate after ``epoch`` epochs, given the current one (called
        once per rate the optimiser holds); None leaves it unchanged."""
        ...


def schedule_hooks(schedule: Any) -> tuple[Optional[Callable[[int, float], Optional[float]]],
                                           Optional[Callable[[int, float], Optional[float]]]]:
    """The ``(before_step, after_epoch)`` callables of a schedule (None where absent).

    Raises TypeError naming the argument when the object offers neither."""
    before = getattr(schedule, "before_step", None)
    after = getattr(schedule, "after_epoch", None)
    before = before if callable(before) else None
    after = after if callable(after) else None
    if before is None and after is None:
        raise TypeError("schedule must be None, 'cosine' or an object with a "
                        "before_step(step, base_lr) and/or after_epoch(epoch, lr) method, "
                        f"got {schedule!r}")
    return before, after


class ExponentialDecay:
    """Multiply the learning rate by ``decay`` at every epoch end.

    Parameters
    ----------
    decay : float >= 0
        The factor; 1 leaves the rate unchanged (the rate is still rewritten, as the
        course Solver does).
    """

    def __init__(self, decay: float) -> None:
        self.decay = V.check_scalar(decay, "decay", low=0.0)

    def after_epoch(self, epoch: int, lr: float) -> float:
        """``lr * decay``."""
        return lr * self.decay

    def __repr__(self) -> str:
        return f"ExponentialDecay({self.decay!r})"


def cosine_factor(fraction: float) -> float:
    """(1 + cos(pi * f)) / 2 for f clipped to [0, 1]: 1 at the start, 0 at the end."""
    f = min(max(float(fraction), 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * f))


def warmup_cosine_factor(fraction: float, warmup: float) -> float:
    """The multiplier of a linear warm-up followed by a cosine decay.

    Parameters
    ----------
    fraction : float
        Fraction of training done (clipped to [0, 1]).
    warmup : float in [0, 1)
        Fraction of training spent warming up.

    Returns
    -------
    float
        ``f / warmup`` while ``f < warmup`` (0 at the start, reaching 1 at the end of
        the warm-up), then ``cosine_factor((f - warmup) / (1 - warmup))``: the cosine
        of the remaining fraction, 0 at the end of training.  With ``warmup == 0``
        this is :func:`cosine_factor` itself.
    """
    if warmup <= 0.0:
        return cosine_factor(fraction)
    f = min(max(float(fraction), 0.0), 1.0)
    if f < warmup:
        return f / warmup
    return cosine_factor((f - warmup) / (1.0 - warmup))


class CosineSchedule:
    """Cosine decay to zero over ``total_steps`` steps or ``time_budget`` seconds,
    optionally after a linear warm-up.

    Parameters
    ----------
    total_steps : int or None
        Length of training in steps (used when no time budget is given).
    time_budget : float or None
        Seconds of training; the fraction done is the wall time spent over the budget.
    clock : callable
        Returns seconds (``time.perf_counter`` by default); tests pass a fake clock.
    warmup : float in [0, 1), default 0
        Fraction of training (of the steps, or of the time budget) over which the rate
        rises linearly from 0 (at the first step) to the base rate; the cosine decay
        then runs over the remaining fraction and reaches 0 at the end.  0: no warm-up
        (the plain cosine, bit for bit).
    """

    def __init__(self, total_steps: Optional[int] = None, time_budget: Optional[float] = None,
                 clock: Callable[[], float] = time.perf_counter, warmup: float = 0.0) -> None:
        if total_steps is None and time_budget is None:
            raise ValueError("CosineSchedule needs total_steps or time_budget")
        self.warmup = V.check_scalar(warmup, "warmup", low=0.0, high=1.0, high_open=True)
        self.total_steps = (None if total_steps is None else
                            V.check_scalar(total_steps, "total_steps", low=1, integer=True))
        self.time_budget = (None if time_budget is None else
                            V.check_scalar(time_budget, "time_budget", low=0.0, low_open=True))
        self.clock = clock
        self.elapsed_before = 0.0   # seconds spent in earlier (resumed-from) runs
        self._start: Optional[float] = None

    def start(self) -> None:
        """Start (or restart, after a resume) the clock of a time budget."""
        self._start = self.clock()

    def elapsed(self) -> float:
        """Seconds of training so far, those before a resume included."""
        if self._start is None:
            return self.elapsed_before
        return self.elapsed_before + (self.clock() - self._start)

    def fraction(self, step: int) -> float:
        """Fraction of training done before step ``step`` (0-based)."""
        if self.time_budget is not None:
            return self.elapsed() / self.time_budget
        return step / self.total_steps  # type: ignore[operator]  # set when no time budget

    def factor(self, step: int) -> float:
        """The learning-rate multiplier at ``step``: the warm-up ramp or the cosine at
        the fraction done (:func:`warmup_cosine_factor`)."""
        return warmup_cosine_factor(self.fraction(step), self.warmup)

    def before_step(self, step: int, base_lr: float) -> float:
        """The learning rate of step ``step``: ``base_lr * factor(step)``."""
        if self.warmup:
            return base_lr * warmup_cosine_factor(self.fraction(step), self.warmup)
        return base_lr * cosine_factor(self.fraction(step))   # factor(), one call less

    def done(self, step: int) -> bool:
        """True once the budget (time or steps) is spent."""
        return self.fraction(step) >= 1.0

    def state(self) -> dict[str, float]:
        """The schedule's state for a checkpoint, as a dict of plain data (the warm-up
        fraction too when there is one, so that a resume can check it)."""
        if self.warmup:
            return {"elapsed": self.elapsed(), "warmup": self.warmup}
        return {"elapsed": self.elapsed()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a dict written by :meth:`state` (then :meth:`start` the clock)."""
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self._start = None
