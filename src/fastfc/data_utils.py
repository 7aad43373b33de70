"""Data sets: CIFAR-10 from its python-pickle batches, and the embedded default (digits).

Compatible with the CS231n ``data_utils.py``: :func:`load_CIFAR_batch`,
:func:`load_CIFAR10` and :func:`get_CIFAR10_data` take the same positional arguments and
return the same numbers (float64 by default).  The CIFAR-10 directory is the standard
``cifar-10-batches-py`` folder (``data_batch_1`` ... ``data_batch_5``, ``test_batch``),
given as an argument or by the ``FASTFC_DATA`` environment variable; when that points at
the folder's parent, the ``cifar-10-batches-py`` inside it is used.  Nothing is
downloaded.

Beyond the reference:

* ``dtype=np.float32`` converts the uint8 pixels once, straight into the output (the
  49,000 training images then take 600 MB instead of 1.2 GB);
* ``flatten=True`` gives (N, 3072) rows, ``standardize=True`` per-channel standardisation
  with statistics from the training split only, ``num_test`` up to the full 10,000;
* ``whiten='zca'``: ZCA whitening (:class:`ZCAWhitening`, fitted on the training split
  only) after the normalisation;
* files are checked: a missing, truncated or malformed batch raises :class:`DataError`
  (a ``ValueError``; :class:`DataNotFoundError` is also a ``FileNotFoundError``) naming
  the directory, the file and what is wrong;
* unpickling only admits the NumPy array constructors a CIFAR batch needs, so a
  tampered file cannot run code;
* :func:`load_default_data`: scikit-learn's bundled 8x8 digits, split deterministically
  -- real images with no download (extra ``data``);
* :func:`load_regression_data`: scikit-learn's bundled diabetes data (442 patients, 10
  features, one real-valued target), split deterministically -- the embedded data set
  for regression (``Net(loss='mse')``, ``fastfc train --dataset diabetes``).
"""
import math
import os
import pickle
from typing import IO, Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import DTypeLike

from fastfc import _validation as V

__all__ = [
    "DATA_ENV",
    "DataError",
    "DataNotFoundError",
    "load_pickle",
    "load_CIFAR_batch",
    "load_CIFAR10",
    "get_CIFAR10_data",
    "load_default_data",
    "load_regression_data",
    "ZCAWhitening",
]

#: The environment variable naming the CIFAR-10 directory when no argument does.
DATA_ENV = "FASTFC_DATA"
_CIFAR_SUBDIR = "cifar-10-batches-py"
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILE = "test_batch"
_CHANNELS, _HEIGHT, _WIDTH = 3, 32, 32
_ROW = _CHANNELS * _HEIGHT * _WIDTH
_N_CLASSES = 10
_MAX_BATCH_ROWS = 10000  # every CIFAR-10 batch file holds exactly 10,000 images
_LAYOUT_HINT = (
    "expected the CIFAR-10 python-pickle layout (the cifar-10-batches-py folder of "
    "cifar-10-python.tar.gz): data_batch_1 ... data_batch_5 and test_batch"
)
_CHUNK_ROWS = 1024  # rows converted per block (a float64 block is then 25 MB)


class DataError(ValueError):
    """A data file or directory is missing or malformed."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data directory or file does not exist (also a ``FileNotFoundError``)."""


# --------------------------------------------------------------------------- reading

# The globals a pickled CIFAR batch refers to (NumPy 1.x and 2.x names, protocols 0-5).
# Each is handed to the unpickler wrapped (see _BatchUnpickler.find_class): the pickle
# decides the arguments, so every constructor that could allocate an amount of memory
# named by an argument (bytearray(3_000_000_000), ndarray(shape)) is bounded first.
_ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("codecs", "encode"),
    ("builtins", "bytes"),
    ("__builtin__", "bytes"),
    ("builtins", "bytearray"),
    ("__builtin__", "bytearray"),
})

# The largest array a constructor may be asked for before its data arrives: NumPy's own
# pickles construct an empty array and fill it from the bytes in the file (BUILD), so
# every legitimate request here is for zero elements.
_MAX_CONSTRUCTED_BYTES = 0


class _UnpickleRefused(pickle.UnpicklingError):
    pass


class _NdarrayMarker:
    """Stands for numpy.ndarray inside a batch pickle: usable only as the type argument
    of _reconstruct, never called (``ndarray(shape)`` would allocate what the file says)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_NdarrayMarker":
        raise _UnpickleRefused("it calls numpy.ndarray directly (an allocation of a size "
                               "the file chooses); NumPy's own pickles never do")


def _reconstruct_guarded(subtype: Any, shape: Any, dtype: Any, *rest: Any) -> np.ndarray:
    """numpy's _reconstruct for an empty ndarray only (what ndarray.__reduce__ writes)."""
    if subtype is not _NdarrayMarker:
        raise _UnpickleRefused("it reconstructs an array of a type other than numpy.ndarray")
    try:
        dims = tuple(int(n) for n in (shape if isinstance(shape, tuple) else (shape,)))
        dt = np.dtype(dtype)
    except Exception:
        raise _UnpickleRefused("it reconstructs an array with an invalid shape or dtype") from None
    size = math.prod(dims) * dt.itemsize
    if any(n < 0 for n in dims) or size > _MAX_CONSTRUCTED_BYTES:
        raise _UnpickleRefused(
            f"it asks for an array of shape {dims} before its data (NumPy's pickles "
            "start from an empty array)")
    return np.ndarray.__new__(np.ndarray, dims, dt)


def _bytes_guarded(kind: type) -> Callable[..., Any]:
    """bytes / bytearray from bytes-like or str content only, never from a size."""
    def build(*args: Any) -> Any:
        if args and not isinstance(args[0], (bytes, bytearray, str)):
            raise _UnpickleRefused(
                f"it calls {kind.__name__}() with a {type(args[0]).__name__}, not with "
                "content (a size would allocate what the file says)")
        return kind(*args)
    return build


def _encode_guarded(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """_codecs.encode for text with the latin-1 codec (how protocol 2 stores bytes)."""
    if not isinstance(obj, str) or str(encoding).lower().replace("_", "-") not in (
            "latin1", "latin-1", "iso-8859-1"):
        raise _UnpickleRefused(f"it encodes with the {encoding!r} codec; NumPy's pickles "
                               "only use 'latin1'")
    return obj.encode("latin-1", errors)


def _scalar_guarded(dtype: Any, *args: Any) -> Any:
    """numpy's scalar(): bounded by the bytes passed (NumPy checks their length)."""
    if args and not isinstance(args[0], (bytes, str)) and np.dtype(dtype) != np.dtype(object):
        raise _UnpickleRefused("it builds a NumPy scalar from something other than bytes")
    return _scalar(dtype, *args)


try:  # NumPy 2
    from numpy._core.multiarray import scalar as _scalar
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import scalar as _scalar  # type: ignore[no-redef]

_GUARDED = {
    "ndarray": _NdarrayMarker,
    "_reconstruct": _reconstruct_guarded,
    "scalar": _scalar_guarded,
    "encode": _encode_guarded,
    "bytes": _bytes_guarded(bytes),
    "bytearray": _bytes_guarded(bytearray),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy's array constructors (pickles can run code),
    each wrapped so that the file cannot choose the size of an allocation."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            # np.dtype and _frombuffer (a view on bytes already read) allocate nothing
            # the file sizes; the others are replaced by their bounded versions
            return _GUARDED.get(name) or super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"it refers to {module}.{name}, which a CIFAR-10 batch never needs; fastfc "
            "only unpickles NumPy arrays, lists, dicts and strings")


def load_pickle(f: IO[bytes]) -> Any:
    """Load one pickled object from the open binary file ``f`` (the course's helper).

    As the course's ``load_pickle`` on Python 3, Python 2 strings are decoded as latin-1.
    Unlike it, only NumPy arrays, numbers, strings, lists and dicts are admitted: a
    pickle that refers to anything else (and so could run code) raises
    ``pickle.UnpicklingError``, as does one that asks for an allocation of a size of its
    own choosing.
    """
    return _BatchUnpickler(f, encoding="latin1").load()


def _where(path: str) -> str:
    directory, name = os.path.split(os.path.abspath(path))
    return f"CIFAR-10 file {name!r} in {directory}"


def _unpickle(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            obj = load_pickle(f)
    except FileNotFoundError:
        raise DataNotFoundError(f"{_where(path)} does not exist; {_LAYOUT_HINT}") from None
    except IsADirectoryError:
        raise DataError(f"{_where(path)} is a directory, not a pickled batch") from None
    except OSError as exc:
        raise DataError(f"{_where(path)} cannot be read: {exc.strerror or exc}") from None
    except _UnpickleRefused as exc:
        raise DataError(f"{_where(path)} is refused: {exc}; expected a CIFAR-10 batch "
                        f"(a dict with 'data': uint8 array (N, {_ROW}), N <= "
                        f"{_MAX_BATCH_ROWS}, and 'labels': N labels in [0, {_N_CLASSES}))"
                        ) from None
    except (EOFError, pickle.UnpicklingError) as exc:
        detail = str(exc) or "unexpected end of file"
        if isinstance(exc, EOFError) or "truncated" in detail or "ran out" in detail.lower():
            detail = f"the file is truncated or empty ({detail})"
        raise DataError(f"{_where(path)} is not a readable pickle: {detail}") from None
    except Exception as exc:  # corrupt streams raise ValueError, KeyError, TypeError, ...
        raise DataError(
            f"{_where(path)} is not a readable pickle (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}") from None
    return obj


def _entry(batch: dict[Any, Any], key: str) -> Any:
    """batch[key] under a str key (Python 2 pickles) or a bytes key (Python 3 ones)."""
    if key in batch:
        return batch[key]
    return batch.get(key.encode("ascii"))


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch as (uint8 rows (N, 3072) in channel-major order, int64 labels (N,))."""
    batch = _unpickle(path)
    where = _where(path)
    if not isinstance(batch, dict):
        raise DataError(f"{where} holds a {type(batch).__name__}, not the dict of a "
                        "CIFAR-10 batch")
    data, labels = _entry(batch, "data"), _entry(batch, "labels")
    if data is None or labels is None:
        keys = sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in batch)
        missing = [k for k, v in (("data", data), ("labels", labels)) if v is None]
        raise DataError(f"{where} has no {' or '.join(map(repr, missing))} entry (keys: "
                        f"{', '.join(map(repr, keys)) or 'none'}); a CIFAR-10 batch has "
                        "'data' and 'labels'")
    # Check the declared layout before anything is converted or copied: a CIFAR-10
    # batch is a uint8 array (N, 3072) with N <= 10,000 and N labels in [0, 10).
    if not isinstance(data, np.ndarray):
        raise DataError(f"{where}: 'data' must be a NumPy uint8 array of shape (N, {_ROW}), "
                        f"N <= {_MAX_BATCH_ROWS}; got a {type(data).__name__}")
    if data.ndim != 2 or data.shape[1] != _ROW:
        raise DataError(f"{where}: 'data' must have shape (N, {_ROW}) -- one 3x32x32 "
                        f"image per row -- but has shape {data.shape}")
    n = data.shape[0]
    if n == 0:
        raise DataError(f"{where}: 'data' holds no images")
    if n > _MAX_BATCH_ROWS:
        raise DataError(f"{where}: 'data' declares {n} images, but a CIFAR-10 batch file "
                        f"holds at most {_MAX_BATCH_ROWS} (expected shape (N, {_ROW}), "
                        f"N <= {_MAX_BATCH_ROWS})")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise DataError(f"{where}: 'labels' must be a list of {n} class labels in "
                        f"[0, {_N_CLASSES}), one per image; got a {type(labels).__name__}")
    if isinstance(labels, np.ndarray) and labels.ndim != 1:
        raise DataError(f"{where}: 'labels' must hold one label per image ({n}), "
                        f"got shape {labels.shape}")
    if len(labels) != n:
        raise DataError(f"{where}: 'labels' must hold one label per image ({n}), "
                        f"got {len(labels)}")
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu":
            raise DataError(f"{where}: 'data' must hold uint8 pixel values, got dtype "
                            f"{data.dtype}")
        lo, hi = int(data.min()), int(data.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: 'data' holds the pixel value "
                            f"{lo if lo < 0 else hi}, outside [0, 255]")
    data = np.ascontiguousarray(data, dtype=np.uint8)
    try:
        y = np.asarray(labels)
    except Exception as exc:
        raise DataError(f"{where}: 'labels' is not a list of class labels ({exc})") from None
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{where}: 'labels' must hold one label per image ({n}), "
                        f"got {y.shape[0] if y.ndim == 1 else f'shape {y.shape}'}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: 'labels' must be integers, got dtype {y.dtype}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= _N_CLASSES:
        raise DataError(f"{where}: 'labels' holds the label {lo if lo < 0 else hi}, "
                        f"outside [0, {_N_CLASSES})")
    return data, y.astype(np.int64)


def _resolve_dir(directory: Optional[Union[str, "os.PathLike[str]"]], argname: str) -> str:
    """The CIFAR-10 folder from the argument or $FASTFC_DATA, checked to exist."""
    if directory is None:
        env = os.environ.get(DATA_ENV, "")
        if not env:
            raise DataNotFoundError(
                f"no CIFAR-10 directory: pass {argname}=... or set the {DATA_ENV} "
                f"environment variable to the {_CIFAR_SUBDIR} folder; {_LAYOUT_HINT}")
        directory, source = env, f"from ${DATA_ENV}"
    else:
        try:
            directory = os.fspath(directory)
        except TypeError:
            raise TypeError(f"{argname} must be a path (str or os.PathLike), got "
                            f"{type(directory).__name__}") from None
        source = f"given as {argname}"
    directory = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(directory):
        raise DataNotFoundError(f"CIFAR-10 directory {directory} ({source}) does not exist "
                                "or is not a directory")
    nested = os.path.join(directory, _CIFAR_SUBDIR)
    if not os.path.exists(os.path.join(directory, _TRAIN_FILES[0])) and os.path.isdir(nested):
        directory = nested
    return directory


def _check_files(directory: str, names: Sequence[str]) -> None:
    missing = [n for n in names if not os.path.exists(os.path.join(directory, n))]
    if missing:
        raise DataNotFoundError(
            f"CIFAR-10 directory {directory} is missing {', '.join(map(repr, missing))}; "
            f"{_LAYOUT_HINT}")


def _nhwc(rows: np.ndarray, dtype: DTypeLike, out: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 rows (N, 3072) channel-major -> (N, 32, 32, 3) of dtype, C-contiguous."""
    n = rows.shape[0]
    # transpose in uint8 (cheap), then convert contiguous memory once
    hwc = np.empty((n, _HEIGHT * _WIDTH, _CHANNELS), dtype=np.uint8)
    chw = rows.reshape(n, _CHANNELS, _HEIGHT * _WIDTH)
    for c in range(_CHANNELS):
        hwc[:, :, c] = chw[:, c, :]
    if out is None:
        out = np.empty((n, _HEIGHT, _WIDTH, _CHANNELS), dtype=dtype)
    out.reshape(n, -1)[...] = hwc.reshape(n, -1)
    return out


def _transform(rows: np.ndarray, dtype: DTypeLike, shift: Optional[np.ndarray] = None,
               scale: Optional[np.ndarray] = None) -> np.ndarray:
    """(rows - shift) / scale computed in float64, rounded once to dtype.

    rows: uint8 (N, F); shift, scale: float64 broadcasting against one row, or None.
    """
    out = np.empty(rows.shape, dtype=dtype)
    if shift is None and scale is None:
        out[...] = rows
        return out
    if scale is None and shift is not None:   # (both None returned above)
        # the ufunc computes uint8 - float64 in float64 and rounds into out, in blocks
        np.subtract(rows, shift, out=out)
        return out
    for start in range(0, rows.shape[0], _CHUNK_ROWS):
        block = rows[start:start + _CHUNK_ROWS].astype(np.float64)
        if shift is not None:
            block -= shift
        if scale is not None:
            block /= scale
        out[start:start + _CHUNK_ROWS] = block
    return out


# --------------------------------------------------------------------------- ZCA

_ZCA_BLOCK_ROWS = 8192  # rows centred and multiplied per GEMM (a float32 block: 100 MB)


class ZCAWhitening:
    """ZCA whitening: decorrelate the features while staying close to the input.

    Fitted on data ``X`` (n, d) with mean ``m`` and covariance ``C = (X - m)^T (X - m) /
    n = U diag(s) U^T``, the transform is

        ``Z = (X - m) @ W``,   ``W = U diag(1 / sqrt(s + epsilon)) U^T``

    ``W`` is symmetric -- the whitening matrix of all those that make the covariance
    (nearly) the identity whose output is closest to its input (Bell & Sejnowski, 1997),
    which for images is a set of local centre-surround filters, so whitened images
    stay images (translations and flips still make sense on them).  The whitened
    training data has covariance ``U diag(s / (s + epsilon)) U^T``: the identity on
    directions of variance much larger than ``epsilon``, while those of variance below
    it (for images: fine, noisy detail) are damped rather than blown up.

    Parameters
    ----------
    epsilon : float > 0
        Regularisation, in units of the input's variance: on per-channel standardised
        images (every feature of variance about 1) 0.1 keeps the main structure and
        damps the fine noise; smaller values whiten harder.
    n_fit : int >= 2 or None
        Fit on this many rows of X only, evenly spaced through it (deterministic), to
        save time on large data; None (default) uses every row.
    dtype : np.float32, np.float64 or None
        Arithmetic of the covariance GEMM, the eigendecomposition and the transform
        GEMM; None (default) follows the data: float32 data in float32 (about twice as
        fast; accurate enough for ``epsilon`` above about 1e-5 of the largest variance),
        anything else in float64.  The mean is always accumulated in float64 and the
        blockwise covariances are summed in float64.

    Attributes
    ----------
    mean_ : ndarray (d,), float64
        The feature means of the fitted data.
    matrix_ : ndarray (d, d), dtype
        The symmetric whitening matrix ``W``.
    components_ : ndarray (d, d), dtype
        The principal axes, one per row (rows of ``U^T``), by decreasing variance.
    explained_variance_ : ndarray (d,), dtype
        The variances ``s`` along them (the eigenvalues of the covariance, negative
        round-off clipped to 0), decreasing.
    n_samples_fit_ : int
        Rows the fit used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4))
    >>> Z = ZCAWhitening(epsilon=1e-8).fit_transform(X)
    >>> bool(np.allclose(np.cov(Z, rowvar=False, bias=True), np.eye(4), atol=1e-6))
    True
    """

    def __init__(self, epsilon: float = 0.1, n_fit: Optional[int] = None,
                 dtype: Optional[DTypeLike] = None) -> None:
        self.epsilon = V.check_scalar(epsilon, "epsilon", low=0.0, low_open=True)
        self.n_fit = (None if n_fit is None
                      else V.check_scalar(n_fit, "n_fit", low=2, integer=True))
        self.dtype = None if dtype is None else V.check_float_dtype(dtype)

    def _rows(self, X_in: Any, name: str = "X") -> np.ndarray:
        X: np.ndarray = V.as_array(X_in, name)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got "
                             f"shape {X.shape}")
        return X

    def fit(self, X: Any) -> "ZCAWhitening":
        """Learn the mean and the whitening matrix from X (n_samples, n_features).

        Returns the fitted object.  Raises ValueError when X has fewer than 2 rows or
        non-finite values.
        """
        import scipy.linalg

        X = self._rows(X)
        n, d = X.shape
        if n < 2 or d < 1:
            raise ValueError(f"X must have at least 2 rows and 1 feature to fit ZCA "
                             f"whitening, got shape {X.shape}")
        if self.n_fit is not None and self.n_fit < n:
            X = X[np.arange(self.n_fit) * n // self.n_fit]
            n = X.shape[0]
        dtype = self.dtype or (np.dtype(np.float32) if X.dtype == np.float32
                               else np.dtype(np.float64))
        mean = X.mean(axis=0, dtype=np.float64)
        if not np.all(np.isfinite(mean)):
            raise ValueError("X holds NaN or infinite values; ZCA whitening needs finite "
                             "data")
        mean_c = mean.astype(dtype)
        cov = np.zeros((d, d), dtype=np.float64)
        block = np.empty((min(n, _ZCA_BLOCK_ROWS), d), dtype=dtype)
        prod = np.empty((d, d), dtype=dtype)
        for start in range(0, n, _ZCA_BLOCK_ROWS):
            b = block[:min(_ZCA_BLOCK_ROWS, n - start)]
            np.subtract(X[start:start + b.shape[0]], mean_c, out=b, casting="unsafe")
            np.matmul(b.T, b, out=prod)          # the GEMM: d x d from a block of rows
            cov += prod
        cov /= n
        if not np.all(np.isfinite(cov)):
            raise ValueError("the covariance of X overflowed (values too large for "
                             f"{dtype}); scale the data first")
        s, U = scipy.linalg.eigh(cov.astype(dtype, copy=False), overwrite_a=True,
                                 check_finite=False, driver="evd")
        s = np.maximum(s[::-1], 0).astype(dtype)     # decreasing
        U = np.ascontiguousarray(U[:, ::-1])
        scale = (1.0 / np.sqrt(s.astype(np.float64) + self.epsilon)).astype(dtype)
        W = (U * scale) @ U.T
        self.matrix_ = (W + W.T) * dtype.type(0.5)    # symmetric to the last bit
        self.mean_ = mean
        self.components_ = U.T.copy()
        self.explained_variance_ = s
        self.n_samples_fit_ = n
        self.n_features_in_ = d
        return self

    def _check_fitted(self, X_in: Any, name: str = "X") -> np.ndarray:
        if not hasattr(self, "matrix_"):
            raise RuntimeError("this ZCAWhitening is not fitted yet: call fit(X) first")
        X = self._rows(X_in, name)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features per row but the whitening "
                             f"was fitted on {self.n_features_in_}")
        return X

    def transform(self, X: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``(X - mean_) @ matrix_`` for X (n, n_features), by blocks of rows.

        The result has X's dtype when float32 or float64, else float64 (or is written
        into ``out``, a C-contiguous float array of X's shape, which must not overlap
        X).  The arithmetic is in the fit's dtype.
        """
        X = self._check_fitted(X)
        W = self.matrix_
        if out is None:
            out = np.empty(X.shape, dtype=X.dtype if X.dtype in V.FLOAT_DTYPES
                           else np.float64)
        elif (not isinstance(out, np.ndarray) or out.shape != X.shape
              or out.dtype not in V.FLOAT_DTYPES or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous float32 or float64 array of "
                             f"shape {X.shape}")
        elif np.shares_memory(out, X):
            raise ValueError("out must not overlap X")
        n = X.shape[0]
        mean_c = self.mean_.astype(W.dtype)
        block = np.empty((min(n, _ZCA_BLOCK_ROWS), X.shape[1]), dtype=W.dtype)
        direct = out.dtype == W.dtype
        for start in range(0, n, _ZCA_BLOCK_ROWS):
            b = block[:min(_ZCA_BLOCK_ROWS, n - start)]
            np.subtract(X[start:start + b.shape[0]], mean_c, out=b, casting="unsafe")
            if direct:
                np.matmul(b, W, out=out[start:start + b.shape[0]])   # one GEMM per block
            else:
                out[start:start + b.shape[0]] = b @ W
        return out

    def fit_transform(self, X: Any) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Undo :meth:`transform`: ``Z @ inv(matrix_) + mean_`` (float64).

        ``inv(W) = U diag(sqrt(s + epsilon)) U^T`` is exact, whatever epsilon.
        """
        Z = self._check_fitted(Z, "Z")
        U = self.components_.T.astype(np.float64)
        s = self.explained_variance_.astype(np.float64)
        W_inv = (U * np.sqrt(s + self.epsilon)) @ U.T
        return Z.astype(np.float64) @ W_inv + self.mean_

    def __repr__(self) -> str:
        return (f"ZCAWhitening(epsilon={self.epsilon!r}, n_fit={self.n_fit!r}"
                + (f", dtype={self.dtype.name!r})" if self.dtype is not None else ")"))


# --------------------------------------------------------------------------- CIFAR-10

def load_CIFAR_batch(filename: Union[str, "os.PathLike[str]"],
                     dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file.

    Parameters
    ----------
    filename : str or os.PathLike
        A pickled batch (``data_batch_1`` ... ``test_batch``).
    dtype : np.float64 (default, as the reference) or np.float32

    Returns
    -------
    X : ndarray of shape (N, 32, 32, 3), dtype, pixel values 0..255
    Y : ndarray of shape (N,), int64, labels in [0, 10)

    N is read from the file (10,000 in the real batches).  Raises :class:`DataError`
    naming the file when it is missing, truncated or not a CIFAR-10 batch.
    """
    dtype = V.check_float_dtype(dtype)
    rows, y = _read_batch(os.fspath(filename))
    return _nhwc(rows, dtype), y


def load_CIFAR10(
        ROOT: Optional[Union[str, "os.PathLike[str]"]] = None, dtype: DTypeLike = np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10.

    Parameters
    ----------
    ROOT : str or os.PathLike, optional
        The ``cifar-10-batches-py`` folder; default ``$FASTFC_DATA``.
    dtype : np.float64 (default, as the reference) or np.float32

    Returns
    -------
    Xtr : ndarray of shape (50000, 32, 32, 3), dtype -- data_batch_1 ... data_batch_5
    Ytr : ndarray of shape (50000,), int64
    Xte : ndarray of shape (10000, 32, 32, 3), dtype -- test_batch
    Yte : ndarray of shape (10000,), int64
    """
    dtype = V.check_float_dtype(dtype)
    root = _resolve_dir(ROOT, "ROOT")
    _check_files(root, _TRAIN_FILES + (_TEST_FILE,))
    batches = [_read_batch(os.path.join(root, name)) for name in _TRAIN_FILES]
    total = sum(rows.shape[0] for rows, _ in batches)
    Xtr = np.empty((total, _HEIGHT, _WIDTH, _CHANNELS), dtype=dtype)
    start = 0
    for rows, _ in batches:
        _nhwc(rows, dtype, out=Xtr[start:start + rows.shape[0]])
        start += rows.shape[0]
    Ytr = np.concatenate([y for _, y in batches])
    del batches
    Xte, Yte = load_CIFAR_batch(os.path.join(root, _TEST_FILE), dtype=dtype)
    return Xtr, Ytr, Xte, Yte


def _channel_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and population std of uint8 rows (N, 3072)."""
    chw = rows.reshape(rows.shape[0], _CHANNELS, -1)
    count = chw.shape[0] * chw.shape[2]
    mean, std = np.empty(_CHANNELS), np.empty(_CHANNELS)
    for c in range(_CHANNELS):
        v = chw[:, c, :]
        s1 = int(v.sum(dtype=np.int64))
        s2 = int(np.einsum("ij,ij->", v, v, dtype=np.int64))
        mean[c] = s1 / count
        std[c] = math.sqrt((count * s2 - s1 * s1) / (count * count))  # exact integers
    return mean, std


def get_CIFAR10_data(num_training: int = 49000, num_validation: int = 1000,
                     num_test: int = 1000, subtract_mean: bool = True, *,
                     cifar10_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                     dtype: DTypeLike = np.float64, flatten: bool = False,
                     standardize: bool = False,
                     return_stats: bool = False, whiten: Optional[str] = None,
                     zca_epsilon: float = 0.1,
                     zca_n_fit: Optional[int] = None) -> dict[str, np.ndarray]:
    """CIFAR-10 split into train / validation / test, normalised, channel-first.

    As the CS231n reference: the first ``num_training`` training images form X_train,
    the next ``num_validation`` form X_val, the first ``num_test`` test images X_test;
    with ``subtract_mean`` the mean image of X_train is subtracted from all three.  The
    float64 output equals the reference's bit for bit.

    Parameters
    ----------
    num_training : int >= 1
    num_validation, num_test : int >= 0
        ``num_training + num_validation <= 50000``, ``num_test <= 10000``.
    subtract_mean : bool
        Subtract the training split's mean image.
    cifar10_dir : str or os.PathLike, optional, keyword-only
        The ``cifar-10-batches-py`` folder (or its parent); default ``$FASTFC_DATA``.
    dtype : np.float64 (default) or np.float32
        Values are computed in float64 and rounded once to ``dtype``.
    flatten : bool
        X arrays of shape (N, 3072) (channel-major rows: a reshape of the channel-first
        images) instead of (N, 3, 32, 32).
    standardize : bool
        Per-channel standardisation instead of the mean-image subtraction: each channel
        minus its mean, divided by its (population) standard deviation, both computed on
        the training split only and applied to all three splits.  A constant channel
        is divided by 1.
    return_stats : bool
        Also return 'mean' and 'std' (float64, broadcasting against ``X_train[0]``) so
        that ``(X_raw - d['mean']) / d['std']`` repeats the transform on new images;
        'mean' is 0 and 'std' 1 where nothing was subtracted or divided.
    whiten : None, 'none' or 'zca'
        ``'zca'``: after the normalisation above, ZCA-whiten the images
        (:class:`ZCAWhitening`), fitted on X_train only and applied to all three
        splits.  With ``standardize=True`` (advised: ``zca_epsilon`` is then in units
        of a standardised pixel's variance) the images are standardised per channel
        first, then whitened; with ``subtract_mean`` only, the mean image is subtracted
        first (the whitening centres again, so this changes nothing but rounding);
        with neither, raw pixel values 0..255 are whitened (scale ``zca_epsilon``
        accordingly, by 255**2).  The arithmetic is in ``dtype``.  None (default) and
        'none' leave the data as the options above make it, bit for bit.
    zca_epsilon : float > 0
        The whitening's regularisation (see :class:`ZCAWhitening`).
    zca_n_fit : int >= 2 or None
        Fit the whitening on this many evenly spaced training rows (faster); None: all.

    Returns
    -------
    dict with 'X_train' (num_training, 3, 32, 32), 'y_train' (num_training,), 'X_val',
    'y_val', 'X_test', 'y_test' -- X of ``dtype``, y int64 -- plus 'mean' and 'std'
    when ``return_stats``, and with whitening also 'zca_mean' (3072,) and 'zca_matrix'
    (3072, 3072): a new raw image ``x`` becomes
    ``(((x - d['mean']) / d['std']).reshape(-1, 3072) - d['zca_mean']) @ d['zca_matrix']``.

    Only the training batches the split needs are read.
    """
    num_training = V.check_scalar(num_training, "num_training", low=1, integer=True)
    num_validation = V.check_scalar(num_validation, "num_validation", low=0, integer=True)
    num_test = V.check_scalar(num_test, "num_test", low=0, integer=True)
    dtype = V.check_float_dtype(dtype)
    if whiten is not None and (not isinstance(whiten, str) or whiten not in ("none", "zca")):
        raise ValueError(f"whiten must be None, 'none' or 'zca', got {whiten!r}")
    whitening = ZCAWhitening(zca_epsilon, n_fit=zca_n_fit, dtype=dtype)  # checks them
    zca = whitening if whiten == "zca" else None
    root = _resolve_dir(cifar10_dir, "cifar10_dir")
    _check_files(root, _TRAIN_FILES + ((_TEST_FILE,) if num_test else ()))

    need = num_training + num_validation
    rows, labels, have = [], [], 0
    for name in _TRAIN_FILES:
        if have >= need:
            break
        r, y = _read_batch(os.path.join(root, name))
        rows.append(r)
        labels.append(y)
        have += r.shape[0]
    if have < need:
        raise DataError(f"CIFAR-10 directory {root}: num_training + num_validation = {need} "
                        f"but the training batches hold only {have} images")
    train_rows = rows[0] if len(rows) == 1 else np.concatenate(rows)
    train_y = labels[0] if len(labels) == 1 else np.concatenate(labels)
    del rows, labels
    if num_test:
        test_rows, test_y = _read_batch(os.path.join(root, _TEST_FILE))
        if test_rows.shape[0] < num_test:
            raise DataError(f"CIFAR-10 file {_TEST_FILE!r} in {root} holds "
                            f"{test_rows.shape[0]} images, fewer than num_test = {num_test}")
    else:
        test_rows, test_y = np.empty((0, _ROW), np.uint8), np.empty(0, np.int64)

    splits = {
        "train": (train_rows[:num_training], train_y[:num_training]),
        "val": (train_rows[num_training:need], train_y[num_training:need]),
        "test": (test_rows[:num_test], test_y[:num_test]),
    }
    shift = scale = None
    if standardize:
        mean_c, std_c = _channel_stats(splits["train"][0])
        std_c[std_c == 0] = 1.0
        shift = np.repeat(mean_c, _HEIGHT * _WIDTH)
        scale = np.repeat(std_c, _HEIGHT * _WIDTH)
    elif subtract_mean:
        # the reference sums float64 pixels: integers below 2**53, so the sum is exact
        # and this mean is bit for bit the reference's np.mean(X_train, axis=0)
        shift = splits["train"][0].sum(axis=0, dtype=np.int64) / num_training

    shape = (-1, _ROW) if flatten else (-1, _CHANNELS, _HEIGHT, _WIDTH)
    data = {}
    for split, (x, y) in splits.items():
        data[f"X_{split}"] = _transform(x, dtype, shift, scale)
        data[f"y_{split}"] = y.copy()
    if zca is not None:
        zca.fit(data["X_train"])
        for split in splits:
            data[f"X_{split}"] = zca.transform(data[f"X_{split}"])
    for split in splits:
        data[f"X_{split}"] = data[f"X_{split}"].reshape(shape)
    if return_stats:
        stat_shape = shape[1:]
        data["mean"] = (np.zeros(_ROW) if shift is None else shift).reshape(stat_shape)
        data["std"] = (np.ones(_ROW) if scale is None else scale).reshape(stat_shape)
        if zca is not None:
            data["zca_mean"] = zca.mean_
            data["zca_matrix"] = zca.matrix_
    return data


# --------------------------------------------------------------------------- digits

DIGITS_SPLIT = (1257, 270, 270)  # train / val / test sizes of load_default_data


def _fixed_split(n: int, n_train: int, n_val: int) -> dict[str, np.ndarray]:
    """Row indices of a fixed train / val / test split of n rows: a permutation by
    ``np.random.RandomState(0)`` (NumPy's global generator is not touched) cut into
    n_train, n_val and the rest."""
    order = np.random.RandomState(0).permutation(n)
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}


def load_default_data(dtype: DTypeLike = np.float64, *, flatten: bool = True,
                      scale: bool = True, subtract_mean: bool = True,
                      return_stats: bool = False) -> dict[str, np.ndarray]:
    """The embedded default data set: scikit-learn's bundled 8x8 digits, split.

    1,797 real handwritten digits (10 classes, 64 pixels valued 0..16) shipped with
    scikit-learn -- nothing is downloaded.  The split is fixed: the images are shuffled
    by ``np.random.RandomState(0).permutation(1797)`` (NumPy's global generator is not
    touched) and cut into 1,257 train, 270 validation and 270 test images.

    Parameters
    ----------
    dtype : np.float64 (default) or np.float32
    flatten : bool, keyword-only
        Rows of 64 features (default) or channel-first images (N, 1, 8, 8).
    scale : bool
        Divide the pixels by 16, to [0, 1] (so default weight scales and learning rates
        train well).
    subtract_mean : bool
        Subtract the training split's mean image (after scaling) from all three splits.
    return_stats : bool
        Also return 'mean' and 'std' as :func:`get_CIFAR10_data` does ('std' is the
        scaling divisor: 16 or 1).

    Returns
    -------
    dict with 'X_train' (1257, 64), 'y_train' (1257,), 'X_val' (270, 64), 'y_val',
    'X_test' (270, 64), 'y_test' -- X of ``dtype``, y int64.

    Needs scikit-learn (``pip install "fastfc[data]"``).

    Examples
    --------
    >>> data = load_default_data(np.float32)
    >>> data["X_train"].shape, data["X_train"].dtype, data["y_test"].shape
    ((1257, 64), dtype('float32'), (270,))
    """
    dtype = V.check_float_dtype(dtype)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "load_default_data needs scikit-learn, whose bundled digits it loads: "
            'pip install "fastfc[data]"') from exc
    digits = load_digits()
    X = np.asarray(digits.data, dtype=np.float64)
    y = np.asarray(digits.target, dtype=np.int64)
    n_train, n_val, n_test = DIGITS_SPLIT
    if X.shape != (n_train + n_val + n_test, 64):
        raise DataError(f"scikit-learn's digits have shape {X.shape}, expected "
                        f"({n_train + n_val + n_test}, 64)")
    parts = _fixed_split(X.shape[0], n_train, n_val)
    divisor = 16.0 if scale else 1.0
    X = X / divisor
    mean = X[parts["train"]].mean(axis=0) if subtract_mean else np.zeros(X.shape[1])
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    data = {}
    for split, idx in parts.items():
        data[f"X_{split}"] = (X[idx] - mean).astype(dtype).reshape(shape)
        data[f"y_{split}"] = y[idx]
    if return_stats:
        # in raw pixel units: (X_raw - mean) / std repeats the transform
        data["mean"] = (mean * divisor).reshape(shape[1:])
        data["std"] = np.full(64, divisor).reshape(shape[1:])
    return data


#: train / validation / test sizes of :func:`load_regression_data`
DIABETES_SPLIT = (310, 66, 66)


def load_regression_data(dtype: DTypeLike = np.float64, *, standardize: bool = True,
                         return_stats: bool = False) -> Any:
    """The embedded regression data set: scikit-learn's bundled diabetes data, split.

    442 patients, 10 features (age, sex, body-mass index, blood pressure and six blood
    serum measurements) and one target, a measure of disease progression one year
    later (25 to 346), shipped with scikit-learn -- nothing is downloaded.  The split is
    fixed: the rows are shuffled by ``np.random.RandomState(0).permutation(442)`` (NumPy's
    global generator is not touched) and cut into 310 train, 66 validation and 66 test
    rows.

    Parameters
    ----------
    dtype : np.float64 (default) or np.float32
    standardize : bool, keyword-only
        Standardise every feature and the target with the training split's mean and
        standard deviation (default), so that a fresh net's mean squared error starts
        near 0.5 and the default learning rates train well.  False gives the raw values.
    return_stats : bool
        Also return 'X_mean', 'X_std', 'y_mean', 'y_std' (the raw target is
        ``y * y_std + y_mean``).

    Returns
    -------
    dict with 'X_train' (310, 10), 'y_train' (310, 1), 'X_val' (66, 10), 'y_val' (66, 1),
    'X_test' (66, 10), 'y_test' (66, 1), all of ``dtype`` (targets as one-column
    matrices, the shape ``Net(loss='mse')`` takes).

    Needs scikit-learn (``pip install "fastfc[data]"``).
    """
    dtype = V.check_float_dtype(dtype)
    try:
        from sklearn.datasets import load_diabetes
    except ImportError as exc:
        raise ImportError(
            "load_regression_data needs scikit-learn, whose bundled diabetes data it "
            'loads: pip install "fastfc[data]"') from exc
    diabetes = load_diabetes(scaled=False)
    X = np.asarray(diabetes.data, dtype=np.float64)
    y = np.asarray(diabetes.target, dtype=np.float64).reshape(-1, 1)
    n_train, n_val, n_test = DIABETES_SPLIT
    if X.shape != (n_train + n_val + n_test, 10) or y.shape[0] != X.shape[0]:
        raise DataError(f"scikit-learn's diabetes data have shape {X.shape}, expected "
                        f"({n_train + n_val + n_test}, 10)")
    parts = _fixed_split(X.shape[0], n_train, n_val)
    if standardize:
        x_mean, x_std = X[parts["train"]].mean(axis=0), X[parts["train"]].std(axis=0)
        y_mean, y_std = y[parts["train"]].mean(axis=0), y[parts["train"]].std(axis=0)
        x_std[x_std == 0] = 1.0
    else:
        x_mean, x_std = np.zeros(X.shape[1]), np.ones(X.shape[1])
        y_mean, y_std = np.zeros(1), np.ones(1)
    data = {}
    for split, idx in parts.items():
        data[f"X_{split}"] = ((X[idx] - x_mean) / x_std).astype(dtype)
        data[f"y_{split}"] = ((y[idx] - y_mean) / y_std).astype(dtype)
    if return_stats:
        data.update(X_mean=x_mean, X_std=x_std, y_mean=y_mean, y_std=y_std)
    return data
