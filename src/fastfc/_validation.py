"""Argument checks shared by the public wrappers: the one validation boundary.

The compiled kernels trust their callers (they check their arguments only in the debug
build, ``FASTFC_CYTHON_DEBUG=1``), so everything that could make them read or write out
of bounds -- shapes, dtypes, contiguity, label ranges -- is checked here first, once per
call.  Messages name the argument and say what was expected.

A wrapper that is called by fastfc's own code with arguments that are already known to
be valid takes an explicit ``check_input=False`` (``Net.train_step``) or is an explicit
trusted entry point (``fastfc.optim.update_inplace``); no wrapper decides from an
argument's dtype whether to check it.

One check lives in a kernel on purpose: ``Net``'s labels and row indices are range-checked
by its compiled core on the private copy the step reads (``_kernels/net.pyx``), because
another thread may change the caller's array after any check made here.  The functions
below check their type and shape (:func:`as_label_array`, :func:`as_indices`).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Literal, Optional, Sequence, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = FLOAT_DTYPES
_INTP = np.dtype(np.intp)
_INT32_MAX = 2**31 - 1


def _describe(a: object) -> str:
    return f"{type(a).__name__} with dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__


def as_array(value: ArrayLike, name: str) -> NDArray[Any]:
    """``np.asarray(value)`` that refuses complex, object, string and other non-real data."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real-valued, got a complex array ({arr.dtype})")
    if kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, got {_describe(arr)}")
    return arr


def float_dtype_of(*named: tuple[str, NDArray[Any]],
                   promote: bool = True) -> np.dtype[Any]:
    """The float dtype NumPy would compute in for the float arrays among ``(name, array)``.

    Mixed float dtypes promote as NumPy promotes them (``np.result_type``: float32 with
    float64 gives float64), as the course code does when it mixes them.  The result is
    then mapped onto the two dtypes the kernels have: float16 computes as float32 and
    anything wider than float64 as float64.  Integer and bool arrays do not vote;
    returns float64 when no array is float.  With ``promote=False`` a float32/float64
    mix raises TypeError naming both arrays instead (for callers that update the arrays
    in place and so cannot work on promoted copies).
    """
    floats = [(name, arr.dtype) for name, arr in named if arr.dtype.kind == "f"]
    if not floats:
        return np.dtype(np.float64)
    if not promote:
        kinds = {dt.itemsize <= 4 for _, dt in floats}
        if len(kinds) > 1:
            first = floats[0]
            other = next(f for f in floats if (f[1].itemsize <= 4) != (first[1].itemsize <= 4))
            raise TypeError(
                f"{other[0]} is {other[1]} but {first[0]} is {first[1]}: "
                "pass arrays of one float dtype (cast with .astype(np.float32) or "
                ".astype(np.float64))"
            )
    common = np.result_type(*(dt for _, dt in floats))
    return np.dtype(np.float32) if common.itemsize <= 4 else np.dtype(np.float64)


def as_float(arr: NDArray[Any], name: str, dtype: DTypeLike, ndim: Optional[int] = None,
             min_ndim: Optional[int] = None,
             shape: Optional[Sequence[Optional[int]]] = None) -> NDArray[Any]:
    """C-contiguous array of ``dtype`` (copying only when needed), with checks.

    ``arr`` must already have passed :func:`as_array`.  ``shape`` may hold None for
    "any size" in a dimension.
    """
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}"
        )
    if shape is not None:
        if arr.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(arr.shape, shape)
        ):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + (
                ",)" if len(shape) == 1 else ")"
            )
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if any(s > _INT32_MAX for s in arr.shape):
        raise ValueError(f"{name} has a dimension larger than 2**31 - 1: {arr.shape}")
    return np.asarray(arr, dtype=dtype, order="C")  # keeps 0-d arrays 0-d


def float_args(*, promote: bool = True,
               **arrays: ArrayLike) -> tuple[np.dtype[Any], list[NDArray[Any]]]:
    """Check several arrays and find their common float dtype (:func:`float_dtype_of`).

    Returns (dtype, list of the arrays as NumPy arrays, not yet cast).

    Keyword order is kept.  Use :func:`as_float` afterwards for shape checks.
    """
    named = [(name, as_array(value, name)) for name, value in arrays.items()]
    dtype = float_dtype_of(*named, promote=promote)
    return dtype, [arr for _, arr in named]


def _label_vector(y: ArrayLike, name: str, n_samples: int, per: str) -> NDArray[Any]:
    """``np.asarray(y)`` checked to be a vector of n_samples integers (``per`` ends the
    message about a wrong length)."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class labels, got {_describe(arr)}"
            + (" (cast with .astype(int) if the values are whole numbers)"
               if arr.dtype.kind == "f" else "")
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional of length {n_samples}, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels {per}")
    return arr


def as_labels(y: ArrayLike, name: str, n_samples: int,
              n_classes: int) -> NDArray[np.intp]:
    """Integer labels of shape (n_samples,) in [0, n_classes) as a C-contiguous intp array."""
    arr = _label_vector(y, name, n_samples, f"but the scores have {n_samples} rows")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{name} holds the label {bad}, outside [0, {n_classes}) for {n_classes} classes"
        )
    return np.ascontiguousarray(arr, dtype=np.intp)


def as_label_array(y: ArrayLike, name: str, n_samples: int) -> NDArray[np.intp]:
    """Integer labels of shape (n_samples,) as a C-contiguous intp array (no copy when
    ``y`` is one already).  Their range is not checked here: see the module docstring."""
    if type(y) is np.ndarray:
        dt = y.dtype
        if ((dt is _INTP or dt == _INTP) and y.shape == (n_samples,)
                and y.flags.c_contiguous):
            return y
    arr = _label_vector(y, name, n_samples, f"for {n_samples} samples")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.intp).max:
        raise ValueError(f"{name} holds the label {arr.max()}, too large for a class index")
    return np.ascontiguousarray(arr, dtype=np.intp)


def as_indices(indices: ArrayLike, name: str) -> NDArray[np.intp]:
    """Row indices: a non-empty 1-D C-contiguous intp array (no copy when ``indices`` is
    one already).  Their range is checked where the rows are read (module docstring)."""
    if not (type(indices) is np.ndarray and indices.ndim == 1
            and (indices.dtype is _INTP or indices.dtype == _INTP)
            and indices.flags.c_contiguous):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers, got {indices.dtype}")
        if indices.ndim != 1:
            raise ValueError(f"{name} must be 1-dimensional, got shape {indices.shape}")
        if indices.size and (indices.max() > np.iinfo(np.intp).max):
            raise ValueError(f"{name} holds values too large for a row index")
        indices = np.ascontiguousarray(indices, dtype=np.intp)
    if indices.shape[0] == 0:
        raise ValueError(f"{name} must pick at least one row")
    return indices


def as_row_batch(X: ArrayLike, name: str, n_features: int,
                 dtype: DTypeLike) -> NDArray[np.floating[Any]]:
    """A batch of samples with ``n_features`` values each, shape (N, n_features) or
    (N, d1, ...), N >= 1: float32/float64 C-contiguous as given (no copy), other numeric
    data cast to ``dtype``."""
    if type(X) is np.ndarray:
        shape = X.shape
        if len(shape) >= 2 and shape[0] and X.size == shape[0] * n_features:
            dt = X.dtype
            if dt is _F32 or dt is _F64 or dt in FLOAT_DTYPES:
                flags = X.flags
                if flags.c_contiguous and flags.aligned:
                    return X
    X = as_array(X, name)
    if X.dtype not in FLOAT_DTYPES:   # ints, float16, byte-swapped floats
        X = X.astype(dtype)
    X = np.require(X, requirements=("C", "A"))
    if X.ndim < 2:
        raise ValueError(f"{name} must have shape (N, {n_features}) or (N, d1, ...), "
                         f"got {X.shape}")
    if X.shape[0] == 0 or X.size != X.shape[0] * n_features:
        raise ValueError(f"{name} has shape {X.shape} but the net takes "
                         f"{n_features} features per sample")
    return X


@overload
def check_scalar(value: Any, name: str, *, low: Optional[float] = None,
                 high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False, integer: Literal[False] = False) -> float: ...
@overload
def check_scalar(value: Any, name: str, *, low: Optional[float] = None,
                 high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False, integer: Literal[True]) -> int: ...
@overload
def check_scalar(value: Any, name: str, *, low: Optional[float] = None,
                 high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False, integer: bool) -> float: ...
def check_scalar(value: Any, name: str, *, low: Optional[float] = None,
                 high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False) -> float:
    """A finite real number within [low, high] (ends open when asked); returns it as float/int."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if integer:
        if not isinstance(value, numbers.Integral):
            if not math.isfinite(float(value)) or not float(value).is_integer():
                raise TypeError(f"{name} must be an integer, got {value!r}")
        value = int(value)  # type: ignore[call-overload]  # typeshed: numbers.Real has no __int__
    else:
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} is too large to be a float: {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_float_dtype(value: DTypeLike, name: str = "dtype") -> np.dtype[Any]:
    """``np.dtype(value)`` when it is float32 or float64, else a TypeError naming ``name``."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def check_mode(value: object, name: str,
               choices: Sequence[str] = ("train", "test")) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_param_dict(param: object, name: str) -> dict[Any, Any]:
    if not isinstance(param, dict):
        raise TypeError(f"{name} must be a dict, got {type(param).__name__}")
    return param


def require_key(param: dict[Any, Any], key: str, name: str) -> Any:
    if key not in param:
        raise ValueError(f"{name} is missing the key {key!r}")
    return param[key]
