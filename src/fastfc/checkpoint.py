"""Checkpoints that are safe to write and safe to load.

A checkpoint is a ``.npz`` file of plain arrays plus one JSON header (stored as the
bytes of the array ``__header__``).  Loading uses ``allow_pickle=False``, so a
checkpoint from a stranger cannot run code; writing goes to a temporary file in the
same directory that is then renamed over the target, so a run killed mid-write
leaves the previous checkpoint intact.
"""
import json
import os
import tempfile

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "atomic_write"]

HEADER_KEY = "__header__"
FORMAT = "fastfc-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, or not a fastfc checkpoint."""


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_checkpoint(path, arrays, header):
    """Write ``arrays`` (dict of name -> ndarray) and ``header`` (JSON-able dict) atomically.

    Names may contain '/' to group entries.  Object arrays are refused.
    """
    payload = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"checkpoint entry {name!r} is an object array; only plain "
                            "numeric arrays can be stored")
        payload[name] = arr
    head = dict(_jsonable(header), format=FORMAT, version=VERSION)
    payload[HEADER_KEY] = np.frombuffer(json.dumps(head).encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`; returns (arrays, header)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if HEADER_KEY not in data.files:
                raise CheckpointError(f"{path!r} is not a fastfc checkpoint (no header)")
            raw = data[HEADER_KEY]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise CheckpointError(f"{path!r} has a malformed header")
            header = json.loads(bytes(raw).decode("utf-8"))
            arrays = {k: data[k] for k in data.files if k != HEADER_KEY}
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a fastfc checkpoint")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path!r} has no valid format version")
    if version > VERSION:
        raise CheckpointError(f"{path!r} was written by a newer fastfc (format version "
                              f"{header.get('version')})")
    return arrays, header
