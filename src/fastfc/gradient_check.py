"""Numerical gradients by centred differences, compatible with CS231n ``gradient_check.py``.

All functions perturb ``x`` in place, one element at a time, and restore it afterwards.
Use float64 inputs: with float32 the differences drown in rounding.

Beyond the reference, :class:`GradientCheck` checks every parameter of a model that
follows the CS231n contract (``model.params`` dict and ``model.loss(X, y) -> (loss,
grads)``) and reports the largest relative error per parameter.
"""
from random import randrange
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fastfc._validation import as_array as _as_array

__all__ = [
    "rel_error",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net",
    "grad_check_sparse",
    "GradientCheck",
]


def rel_error(x: ArrayLike, y: ArrayLike) -> float:
    """Largest relative error ``max |x - y| / max(1e-8, |x| + |y|)``.

    Examples
    --------
    >>> round(rel_error([1.0, 2.0], [1.0, 2.000004]), 9)    # 4e-6 / (2 + 2.000004)
    1e-06
    """
    a = _as_array(x, "x").astype(np.float64)
    b = _as_array(y, "y").astype(np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _each_index(x: np.ndarray) -> Iterator[tuple[int, ...]]:
    """The multi-indices of x in the order the course's ``np.nditer`` loop visits them.

    ``np.nditer(x, flags=['multi_index'])`` walks x in memory order (order='K'), not
    row-major order: for a transposed or Fortran-ordered x the elements come column by
    column.  The order decides the order of the verbose lines and which random draws an
    ``f`` that uses the random generator sees, so it is kept.  (Read-only iteration: the
    loops write through ``x[ix]``; empty arrays give no indices.)
    """
    it = np.nditer(x, flags=["multi_index", "zerosize_ok", "refs_ok"], op_flags=["readonly"])
    while not it.finished:
        yield it.multi_index
        it.iternext()


def eval_numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray,
                            verbose: bool = True, h: float = 0.00001) -> np.ndarray:
    """Gradient of a scalar function ``f(x)`` at x: ``(f(x + h) - f(x - h)) / 2h`` per element.

    ``f`` is called once at x first (as the reference does), then twice per element.
    Prints ``index, value`` per element when verbose.

    Examples
    --------
    >>> x = np.array([1.0, -2.0])
    >>> eval_numerical_gradient(lambda x: np.sum(x ** 2), x, verbose=False).round(6)
    array([ 2., -4.])
    """
    f(x)
    grad = np.zeros_like(x)
    for ix in _each_index(x):
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)
        x[ix] = oldval - h
        fxmh = f(x)
        x[ix] = oldval
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f: Callable[[np.ndarray], ArrayLike], x: np.ndarray,
                                  df: ArrayLike, h: float = 1e-5) -> np.ndarray:
    """Gradient of ``sum(f(x) * df)`` at x, for an array-valued f with upstream gradient df."""
    grad = np.zeros_like(x)
    for ix in _each_index(x):
        oldval = x[ix]
        x[ix] = oldval + h
        pos = np.array(f(x), copy=True)
        x[ix] = oldval - h
        neg = np.array(f(x), copy=True)
        x[ix] = oldval
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def eval_numerical_gradient_blobs(f: Callable[..., Any], inputs: Sequence[Any], output: Any,
                                  h: float = 1e-5) -> list[np.ndarray]:
    """Numerical gradients for functions on blobs (objects with ``.vals`` and ``.diffs``).

    ``f(*inputs, output)`` writes into ``output.vals``; the gradient of
    ``sum(output.vals * output.diffs)`` is returned for each input blob, in order.
    """
    numeric_diffs = []
    for input_blob in inputs:
        diff = np.zeros_like(input_blob.diffs)
        for idx in _each_index(input_blob.vals):
            orig = input_blob.vals[idx]
            input_blob.vals[idx] = orig + h
            f(*(tuple(inputs) + (output,)))
            pos = np.copy(output.vals)
            input_blob.vals[idx] = orig - h
            f(*(tuple(inputs) + (output,)))
            neg = np.copy(output.vals)
            input_blob.vals[idx] = orig
            diff[idx] = np.sum((pos - neg) * output.diffs) / (2.0 * h)
        numeric_diffs.append(diff)
    return numeric_diffs


def eval_numerical_gradient_net(net: Any, inputs: Sequence[Any], output: Any,
                                h: float = 1e-5) -> list[np.ndarray]:
    """:func:`eval_numerical_gradient_blobs` for a net object with a ``forward`` method."""
    return eval_numerical_gradient_blobs(lambda *args: net.forward(), inputs, output, h=h)


def grad_check_sparse(f: Callable[[np.ndarray], Any], x: np.ndarray, analytic_grad: np.ndarray,
                      num_checks: int = 10, h: float = 1e-5) -> None:
    """Compare numerical and analytic gradients at ``num_checks`` random elements.

    Elements are drawn with Python's ``random.randrange`` (as the reference does);
    one line is printed per check.
    """
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)
        x[ix] = oldval - h
        fxmh = f(x)
        x[ix] = oldval
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        denom = abs(grad_numerical) + abs(grad_analytic)
        rel = abs(grad_numerical - grad_analytic) / denom if denom > 0 else 0.0
        print("numerical: %f analytic: %f, relative error: %e"
              % (grad_numerical, grad_analytic, rel))


class GradientCheck:
    """Check every parameter gradient of a model against centred differences.

    Parameters
    ----------
    model : object
        Follows the CS231n model contract: ``model.params`` (dict name -> ndarray) and
        ``model.loss(X, y) -> (loss, grads)`` with ``grads`` keyed like ``params``.
    h : float
        Step of the centred difference.
    check_input : bool
        Also check the gradient with respect to the input X; the model must then return
        it as ``grads['X']`` or offer ``model.loss_and_input_grad(X, y)``.
    max_checks : int or None
        Check at most this many elements per parameter (chosen with ``seed``); None
        checks every element.
    seed : int
        Seed of the generator that picks the elements when ``max_checks`` is set.
    verbose : bool
        Print the table when :meth:`run` ends.

    The check runs in float64: a model with an ``astype(dtype)`` method (fastfc.Net)
    is checked on a float64 copy; otherwise the parameters (and a ``dtype`` attribute,
    as the CS231n nets have) are switched to float64 for the check and restored
    afterwards.
    """

    def __init__(self, model: Any, h: float = 1e-5, check_input: bool = False,
                 max_checks: Optional[int] = None, seed: Optional[int] = 0,
                 verbose: bool = True) -> None:
        if not hasattr(model, "params") or not hasattr(model, "loss"):
            raise TypeError("model must have a 'params' dict and a 'loss(X, y)' method")
        self.model = model
        self.h = float(h)
        self.check_input = bool(check_input)
        self.max_checks = max_checks
        self.seed = seed
        self.verbose = verbose
        self.errors_: Optional[dict[str, float]] = None

    def _indices(self, shape: tuple[int, ...],
                 rng: np.random.Generator) -> list[tuple[Any, ...]]:
        size = int(np.prod(shape))
        if self.max_checks is None or self.max_checks >= size:
            return list(np.ndindex(*shape))
        flat = rng.choice(size, self.max_checks, replace=False)
        return [np.unravel_index(k, shape) for k in flat]

    def _numeric(self, f: Callable[[], float], x: np.ndarray,
                 rng: np.random.Generator) -> tuple[list[tuple[Any, ...]], np.ndarray]:
        """(indices, numerical gradient values) of scalar f at x (perturbed in place)."""
        idx = self._indices(x.shape, rng)
        values = np.empty(len(idx))
        for k, ix in enumerate(idx):
            old = x[ix]
            x[ix] = old + self.h
            fp = f()
            x[ix] = old - self.h
            fm = f()
            x[ix] = old
            values[k] = (fp - fm) / (2 * self.h)
        return idx, values

    def run(self, X: ArrayLike, y: Any) -> dict[str, float]:
        """Check the gradients at (X, y); returns {name: max relative error}."""
        rng = np.random.default_rng(self.seed)
        X = np.array(X, dtype=np.float64, copy=True)
        if callable(getattr(self.model, "astype", None)):
            # models that can copy themselves (fastfc.Net) are checked on a float64 copy
            errors = self._check(self.model.astype(np.float64), X, y, rng)
        else:
            errors = self._check_in_float64(X, y, rng)
        self.errors_ = errors
        if self.verbose:
            print(self.report())
        return errors

    def _check_in_float64(self, X: np.ndarray, y: Any,
                          rng: np.random.Generator) -> dict[str, float]:
        """Cast the model's params (and dtype) to float64 for the check, then restore."""
        model = self.model
        saved_params = dict(model.params)
        had_dtype = hasattr(model, "dtype")
        saved_dtype = getattr(model, "dtype", None)
        try:
            for k, v in saved_params.items():
                model.params[k] = np.array(v, dtype=np.float64, copy=True)
            if had_dtype:
                model.dtype = np.float64
            return self._check(model, X, y, rng)
        finally:
            model.params.clear()
            model.params.update(saved_params)
            if had_dtype:
                model.dtype = saved_dtype

    def _check(self, model: Any, X: np.ndarray, y: Any,
               rng: np.random.Generator) -> dict[str, float]:
        if self.check_input and "X" in model.params:
            raise ValueError("check_input=True reports the input gradient as 'X', but the "
                             "model has a parameter named 'X'")
        _, grads = model.loss(X, y)
        # models may reuse their gradient buffers on the next call: keep a copy
        grads = {k: np.array(v, copy=True) for k, v in grads.items()}
        errors = {}
        for name in model.params:
            param = model.params[name]
            if name not in grads:
                raise ValueError(f"model.loss returned no gradient for {name!r}")
            if np.shape(grads[name]) != np.shape(param):
                raise ValueError(f"the gradient of {name!r} has shape {np.shape(grads[name])} "
                                 f"but the parameter has shape {np.shape(param)}")
            idx, num = self._numeric(lambda: float(model.loss(X, y)[0]), param, rng)
            ana = np.array([grads[name][ix] for ix in idx])
            errors[name] = rel_error(num, ana)
        if self.check_input:
            dX = grads.get("X")
            if dX is None and hasattr(model, "loss_and_input_grad"):
                dX = model.loss_and_input_grad(X, y)[1]
            if dX is None:
                raise ValueError("check_input=True needs grads['X'] or "
                                 "model.loss_and_input_grad(X, y)")
            if np.shape(dX) != X.shape:
                raise ValueError(f"the input gradient has shape {np.shape(dX)} but X has "
                                 f"shape {X.shape}")
            idx, num = self._numeric(lambda: float(model.loss(X, y)[0]), X, rng)
            errors["X"] = rel_error(num, [np.asarray(dX)[ix] for ix in idx])
        return errors

    def report(self) -> str:
        """The last run's errors as a text table (name, shape, max relative error)."""
        if self.errors_ is None:
            return "GradientCheck: not run yet"
        width = max(len("parameter"), *(len(k) for k in self.errors_))
        lines = [f"{'parameter':<{width}}  max relative error",
                 f"{'-' * width}  ------------------"]
        lines += [f"{k:<{width}}  {v:.3e}" for k, v in self.errors_.items()]
        return "\n".join(lines)
