"""Checkpoints that are safe to write and safe to load.

A checkpoint is a ``.npz`` file of plain arrays plus one JSON header (stored as the
bytes of the array ``__header__``).  Loading never unpickles (a checkpoint from a
stranger cannot run code) and reads every member's declared dtype and shape before
reading its data: object arrays are refused, and an array whose declared size does not
match the bytes the file really holds is refused before anything is allocated.
Writing goes to a temporary file in the same directory (``.<name>.tmp-<random>.part``)
that is then renamed over the target, so a run killed mid-write leaves the previous
checkpoint intact; temporary files such a kill left behind are removed by the next
write to the same target.
"""
import glob
import json
import math
import os
import tempfile
import zipfile
from typing import IO, Any, Callable, Mapping, Optional, Union

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "atomic_write"]

# a file-system path as the functions here accept it
_PathLike = Union[str, "os.PathLike[str]"]

HEADER_KEY = "__header__"
FORMAT = "fastfc-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, or not a fastfc checkpoint."""


def _temp_prefix(path: str) -> str:
    return "." + os.path.basename(path) + ".tmp-"


_TEMP_SUFFIX = ".part"


def atomic_write(path: _PathLike, write: Callable[[IO[bytes]], Any]) -> str:
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``.

    The temporary file sits next to ``path`` and is named ``.<name>.tmp-<random>.part``;
    the rename replaces whatever directory entry ``path`` is (a symbolic link planted
    there is replaced, never written through).  Temporary files of this naming for the
    same target that are older than this write (left by a killed writer) are removed.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    prefix = _temp_prefix(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_TEMP_SUFFIX, dir=directory)
    try:
        started = os.fstat(fd).st_mtime
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    _remove_stale_temps(directory, prefix, started)
    return target


def _remove_stale_temps(directory: str, prefix: str, started: float) -> None:
    """Remove ``<prefix>*.part`` regular files last modified before ``started``."""
    pattern = os.path.join(glob.escape(directory), glob.escape(prefix) + "*" + _TEMP_SUFFIX)
    for name in glob.glob(pattern):     # the pattern starts with '.': dot files match
        try:
            st = os.lstat(name)
            if not os.path.isfile(name) or os.path.islink(name):
                continue
            if st.st_mtime < started:
                os.unlink(name)
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_checkpoint(path: _PathLike, arrays: Mapping[str, Any],
                    header: Mapping[str, Any]) -> str:
    """Write ``arrays`` (dict of name -> ndarray) and ``header`` (JSON-able dict) atomically.

    Names may contain '/' to group entries.  Object arrays are refused.  Returns the
    path written.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> _ = save_checkpoint(path, {"w": np.arange(3.0)}, {"epoch": 2})
    >>> arrays, header = load_checkpoint(path)
    >>> arrays["w"], header["epoch"]
    (array([0., 1., 2.]), 2)
    """
    payload: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"checkpoint entry {name!r} is an object array; only plain "
                            "numeric arrays can be stored")
        payload[name] = arr
    head = dict(_jsonable(header), format=FORMAT, version=VERSION)
    payload[HEADER_KEY] = np.frombuffer(json.dumps(head).encode("utf-8"), dtype=np.uint8)
    # (numpy's stub reads the ** of savez as its allow_pickle keyword)
    return atomic_write(path, lambda f: np.savez(f, **payload))  # type: ignore[arg-type]


# deflate cannot expand data more than about 1032 times
_MAX_DEFLATE_RATIO = 1100


def _check_members(path: str) -> dict[str, tuple[int, ...]]:
    """Read each member's .npy header and refuse what np.load must not be asked to read.

    Every member must be a ``.npy`` of a plain (non-object) dtype whose declared shape x
    itemsize is exactly the data the member holds, so that no array larger than the
    file's own bytes is ever allocated.  Returns {entry name without .npy: shape}."""
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:      # BadZipFile, OSError, NotImplementedError (a damaged
        # header can claim a zip version or feature zipfile does not implement), ...
        raise CheckpointError(f"cannot read checkpoint {path!r}: not a valid .npz "
                              f"({exc})") from None
    with zf:
        seen: set[str] = set()
        for info in zf.infolist():
            name = info.filename
            if name in seen:
                raise CheckpointError(f"{path!r} holds the entry {name!r} twice")
            seen.add(name)
            if not name.endswith(".npy"):
                raise CheckpointError(f"{path!r} holds {name!r}, which is not an array")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size:
                    raise CheckpointError(f"{path!r}: the entry {name!r} is damaged")
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 4096:
                    raise CheckpointError(f"{path!r}: the entry {name!r} claims more data "
                                          "than it can hold")
            else:
                raise CheckpointError(f"{path!r}: the entry {name!r} uses an unsupported "
                                      "compression")
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"unsupported .npy format version {version}")
                    offset = f.tell()
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(f"{path!r}: the entry {name!r} has no valid array "
                                      f"header ({_clean(exc)})") from None
            if dtype.hasobject:
                raise CheckpointError(f"{path!r}: the entry {name!r} holds Python objects; "
                                      "a fastfc checkpoint holds plain numbers only")
            nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
            if offset + nbytes != info.file_size:
                raise CheckpointError(
                    f"{path!r}: the entry {name!r} declares shape {tuple(shape)} of "
                    f"{dtype} ({nbytes} bytes) but holds {info.file_size - offset} bytes")
            shapes[name[:-len(".npy")]] = tuple(int(n) for n in shape)
    return shapes


def _clean(exc: BaseException) -> str:
    """An error text that never advises loading pickles."""
    text = str(exc)
    if "pickle" in text.lower():
        return "it holds Python objects, which fastfc never loads"
    return text


def _check_header(path: str, header: Any) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a fastfc checkpoint")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path!r} has no valid format version")
    if version > VERSION:
        raise CheckpointError(f"{path!r} was written by a newer fastfc (format version "
                              f"{header.get('version')})")
    if version != VERSION:
        raise CheckpointError(f"{path!r} has an unknown format version {version}")


def load_checkpoint(
        path: _PathLike,
        expect: Optional[Callable[[dict[str, Any]], Mapping[str, Any]]] = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns (arrays, header).

    ``expect``, when given, is called with the header before any array is read and
    returns {name: shape} of exactly the arrays the file must hold (or raises
    CheckpointError): a file whose entries differ is refused without reading them, so
    what a loader allocates is bounded by what its header describes.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path!r} is a directory")
    shapes = _check_members(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if HEADER_KEY not in data.files:
                raise CheckpointError(f"{path!r} is not a fastfc checkpoint (no header)")
            raw = data[HEADER_KEY]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise CheckpointError(f"{path!r} has a malformed header")
            header = json.loads(bytes(raw).decode("utf-8"))
            _check_header(path, header)
            if expect is not None:
                _check_expected(path, expect(header),
                                {k: v for k, v in shapes.items() if k != HEADER_KEY})
            arrays = {k: data[k] for k in data.files if k != HEADER_KEY}
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {_clean(exc)}") from None
    return arrays, header


def _check_expected(path: str, expected: Mapping[str, Any],
                    shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a file whose array entries are not exactly ``expected`` (name -> shape)."""
    if set(shapes) != set(expected):
        lacking = sorted(set(expected) - set(shapes))
        extra = sorted(set(shapes) - set(expected))
        raise CheckpointError(
            f"{path!r}: its arrays do not match its header"
            + (f"; missing {', '.join(lacking[:5])}" if lacking else "")
            + (f"; unexpected {', '.join(extra[:5])}" if extra else ""))
    for name, shape in expected.items():
        if shapes[name] != tuple(shape):
            raise CheckpointError(f"{path!r}: {name} has shape {shapes[name]}, its header "
                                  f"implies {tuple(shape)}")
