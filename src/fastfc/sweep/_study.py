"""The sweep's Optuna study: storage, samplers, pruners, records, resume, export.

Optuna is imported inside the functions only: importing :mod:`fastfc.sweep` does not
import it.
"""
from __future__ import annotations

import csv
import json
import math
import os
import socket
import stat
import warnings
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping, Optional, Union

from fastfc.sweep._space import _plain
from fastfc.sweep._trial import RESULT_FIELDS

if TYPE_CHECKING:
    from fastfc.sweep._trial import Job, Report

SEARCHES = ("grid", "random", "tpe", "cmaes")
PRUNERS = ("median", "asha", "hyperband")
DEFAULT_STUDY_NAME = "fastfc-sweep"

#: Trial user attributes the sweep writes, beside the value and the parameters.
_ATTRS = ("key", "seed", "config", "status", *RESULT_FIELDS, "wall_time", "worker",
          "error", "retryable", "defaults", "retry_of")
_OWNER = "fastfc_owner"


def import_optuna() -> Any:
    """The optuna module, or an ImportError that says how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("fastfc.sweep runs its searches on Optuna, which is not "
                          "installed: pip install 'fastfc[sweep]'") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# ---------------------------------------------------------------------- storage

_BACKEND: list[type] = []


def __getattr__(name: str) -> Any:
    # the journal backend class is made on first use (it subclasses Optuna's); a worker
    # that unpickles a storage holding one finds it here
    if name == "FastJournalFileBackend":
        return _journal_backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _journal_backend_class() -> type:
    """Optuna's journal file backend, with one fsync per finished trial.

    The journal format and lock are Optuna's own (``optuna.load_study`` and
    optuna-dashboard read the file as usual).  Optuna fsyncs every operation, about
    12 ms each on a virtual disk and a dozen per trial; here the data are flushed to the
    operating system at every operation (a killed process loses nothing) and synced to
    the disk when a trial finishes (a machine crash loses at most the unfinished ones).
    """
    if _BACKEND:
        return _BACKEND[0]
    from optuna.storages.journal import JournalFileBackend

    class FastJournalFileBackend(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            durable = any(log.get("op_code") == 6 and log.get("state") in (1, 2, 3)
                          for log in logs)  # SET_TRIAL_STATE_VALUES to a finished state
            while not self._lock.acquire():  # pragma: no cover - acquire blocks or raises
                pass
            try:
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
            finally:
                self._lock.release()

    FastJournalFileBackend.__qualname__ = "FastJournalFileBackend"
    FastJournalFileBackend.__module__ = __name__
    _BACKEND.append(FastJournalFileBackend)
    return FastJournalFileBackend


def _not_a_file(path: str, what: str) -> Optional[ValueError]:
    """The ValueError for ``path`` when it exists and is not a regular file (a device
    such as /dev/zero would be read for ever), else None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return ValueError(f"{what}={path!r} cannot be read: {exc}")
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    return ValueError(f"{what}={path!r} is {kind}")


def check_journal_path(path: str) -> None:
    """ValueError unless ``path`` is a regular file or a path that does not exist yet
    in a folder that does."""
    error = _not_a_file(path, "storage")
    if error is not None:
        raise ValueError(f"{error}: a journal storage must be a regular file (or a path "
                         "that does not exist yet)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"storage={path!r}: the folder {folder!r} does not exist")


def repair_journal(path: str) -> bool:
    """Cut off a last line that a crash left incomplete (or that is not JSON), with a
    warning that names the file and the line; True when the file was changed.

    A damaged line anywhere else is not repaired: opening the study then raises a
    ValueError naming the file (see :func:`open_study`).
    """
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    from optuna.storages.journal import JournalFileSymlinkLock
    lock = JournalFileSymlinkLock(path)
    lock.acquire()
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            tail = min(size, 1 << 16)
            f.seek(size - tail)
            chunk = f.read(tail)
            body = chunk[:-1] if chunk.endswith(b"\n") else chunk
            cut = body.rfind(b"\n") + 1   # start of the last line within the chunk
            last = body[cut:]
            problem = None
            if not chunk.endswith(b"\n"):
                problem = "it is incomplete (a write cut short)"
            else:
                try:
                    json.loads(last.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    problem = f"it is not JSON ({exc})"
            if problem is None:
                return False
            if cut == 0 and tail < size:  # a last line longer than 64 KiB: leave it
                return False
            f.seek(0)
            lineno = f.read(size - tail + cut).count(b"\n") + 1
            f.truncate(size - tail + cut)
    finally:
        lock.release()
    warnings.warn(f"storage journal {path}:{lineno}: the last line was removed because "
                  f"{problem}; it held an operation that never completed (the trial it "
                  "belongs to is re-run if it did not finish)", RuntimeWarning, stacklevel=3)
    return True


def damaged_journal(path: str, exc: BaseException) -> ValueError:
    """The ValueError for a journal Optuna cannot replay, naming its first bad line."""
    where = ""
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    where = f" at line {lineno}"
                    break
    except OSError:
        pass
    return ValueError(f"storage journal {path!r} is damaged{where} ({type(exc).__name__}: "
                      f"{exc}): it is not an Optuna journal, or a line before its end was "
                      "altered; move it aside to start a new study")


class StorageSpec:
    """How a worker process reaches the study's storage (picklable).  A journal
    storage object is reached through its file."""

    def __init__(self, journal: Optional[str] = None, url: Optional[str] = None,
                 storage: Any = None) -> None:
        if storage is not None:
            backend = getattr(storage, "_backend", None)
            path = getattr(backend, "_file_path", None)
            if path is not None and type(backend).__name__ in ("JournalFileBackend",
                                                               "FastJournalFileBackend"):
                journal, storage = path, None
        self.journal, self.url, self.storage = journal, url, storage

    def open(self) -> Any:
        if self.journal is not None:
            from optuna.storages import JournalStorage
            return JournalStorage(_journal_backend_class()(self.journal))
        if self.url is not None:
            return self.url
        return self.storage

    def cache_key(self) -> Any:
        """What identifies the storage across tasks (None: do not keep it).  A journal
        file counts with its inode, so a file removed and made again is read afresh."""
        path = self.journal
        if path is None and self.storage is not None:
            backend = getattr(self.storage, "_backend", None)
            path = getattr(backend, "_file_path", None)  # a JournalStorage object
            if path is None:  # an RDBStorage (maybe inside Optuna's cache)
                return getattr(getattr(self.storage, "_backend", self.storage), "url", None)
        if path is not None:
            try:
                return (path, os.stat(path).st_ino)
            except OSError:
                return None
        return self.url


def resolve_storage(storage: Any, default_journal: Optional[str]
                    ) -> tuple[Any, Optional[StorageSpec], Optional[str]]:
    """``(storage for create_study, StorageSpec or None, journal path or None)``.

    ``storage``: None (the journal file ``default_journal``, or memory when that is None
    too), a path of a journal file, an Optuna storage URL ('sqlite:///sweep.db',
    'postgresql://...') or an Optuna storage object.  The spec is None for a storage in
    memory (which other processes cannot reach).
    """
    optuna = import_optuna()
    if storage is None and default_journal is None:
        return optuna.storages.InMemoryStorage(), None, None
    if storage is None or isinstance(storage, (str, os.PathLike)):
        # (not both None: that case returned above)
        path = os.fspath(storage if storage is not None
                         else default_journal)  # type: ignore[arg-type]
        if "://" in path:
            return path, StorageSpec(url=path), None
        check_journal_path(path)
        repair_journal(path)
        spec = StorageSpec(journal=path)
        try:
            return spec.open(), spec, path
        except (ValueError, KeyError) as exc:
            raise damaged_journal(path, exc) from None
    if isinstance(storage, optuna.storages.BaseStorage):
        if isinstance(storage, optuna.storages.InMemoryStorage):
            return storage, None, None
        return storage, StorageSpec(storage=storage), None
    raise TypeError("storage must be a journal file path, an Optuna storage URL or an "
                    f"optuna.storages.BaseStorage, got {type(storage).__name__}")


def open_study(storage: Any, study_name: str, sampler: Any, pruner: Any,
               journal: Optional[str] = None) -> Any:
    """Create the study, or load it when it exists (maximising validation accuracy)."""
    optuna = import_optuna()
    try:
        study = optuna.create_study(storage=storage, study_name=study_name,
                                    sampler=sampler, pruner=pruner, direction="maximize",
                                    load_if_exists=True)
    except (ValueError, KeyError) as exc:
        if journal is None:
            raise
        raise damaged_journal(journal, exc) from None
    check_direction(study)
    return study


def check_direction(study: Any) -> None:
    import optuna
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"study {study.study_name!r} must have one objective, maximised "
                         "(the sweep's value is the validation accuracy): "
                         "optuna.create_study(direction='maximize')")


# ---------------------------------------------------------------------- samplers, pruners

def make_sampler(search: str, seed: Optional[int]) -> Any:
    """The Optuna sampler of ``search`` (seeded).  Grid search enqueues every point in
    order, so its sampler never draws; it is Optuna's random sampler."""
    optuna = import_optuna()
    samplers = optuna.samplers
    if search in ("grid", "random"):
        return samplers.RandomSampler(seed=seed)
    if search == "tpe":
        return samplers.TPESampler(seed=seed)
    if search == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError as exc:
            raise ImportError("search='cmaes' needs the cmaes package: "
                              "pip install 'fastfc[sweep]'") from exc
        # CMA-ES handles numbers; categorical settings are drawn at random (seeded)
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                     independent_sampler=samplers.RandomSampler(seed=seed))
    raise ValueError(f"search must be one of {', '.join(map(repr, SEARCHES))}, got "
                     f"{search!r}")


def make_pruner(prune: Any, num_epochs: int) -> Any:
    """The Optuna pruner of ``prune``: None (no pruning), 'median', 'asha'
    (successive halving), 'hyperband', or an Optuna pruner object."""
    optuna = import_optuna()
    pruners = optuna.pruners
    if prune is None:
        return pruners.NopPruner()
    if isinstance(prune, pruners.BasePruner):
        return prune
    if prune == "median":
        # a trial below the median of the others at the same epoch stops, once two
        # trials have finished, from its second epoch on
        return pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if prune == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if prune == "hyperband":
        return pruners.HyperbandPruner(min_resource=1, max_resource=max(1, num_epochs),
                                       reduction_factor=3)
    raise ValueError(f"prune must be None, one of {', '.join(map(repr, PRUNERS))} or an "
                     f"optuna.pruners.BasePruner, got {prune!r}")


# ---------------------------------------------------------------------- per-epoch report

_WORKER_STUDIES: dict[tuple[Any, Optional[str]], Any] = {}


class Reporter:
    """Makes the per-epoch ``report`` of a trial: the validation accuracy goes to the
    study as the trial's intermediate value at that epoch, and the pruner says whether
    to stop.  Picklable when built from a :class:`StorageSpec` (worker processes load
    the study once and keep it)."""

    def __init__(self, spec: Optional[StorageSpec] = None, study_name: Optional[str] = None,
                 pruner: Any = None, study: Any = None) -> None:
        self.spec, self.study_name, self.pruner = spec, study_name, pruner
        self._study = study

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "study_name": self.study_name, "pruner": self.pruner,
                "_study": None}

    def study(self) -> Any:
        if self._study is None:
            # (a Reporter built without a study has a spec)
            key = (self.spec.cache_key(), self.study_name)  # type: ignore[union-attr]
            study = _WORKER_STUDIES.get(key) if key[0] is not None else None
            if study is None:
                optuna = import_optuna()
                study = optuna.load_study(
                    study_name=self.study_name,
                    storage=self.spec.open(),  # type: ignore[union-attr]  # as above
                    sampler=optuna.samplers.RandomSampler(), pruner=self.pruner)
                if key[0] is not None:
                    _WORKER_STUDIES[key] = study
            study.pruner = self.pruner  # this sweep's, whatever an earlier one had
            self._study = study
        return self._study

    def __call__(self, job: Job) -> Report:
        import optuna
        trial = optuna.trial.Trial(self.study(), job.trial_id)

        def report(epoch: int, val_acc: float, last: bool) -> bool:
            if not math.isfinite(val_acc):
                return False
            trial.report(float(val_acc), int(epoch))
            return not last and trial.should_prune()

        return report


# ---------------------------------------------------------------------- owners, resume

def _process_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` (Linux: clock ticks since boot), '' when
    unknown, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass
    return ""


def owner_tag() -> str:
    """``host:pid:start`` of this process, written into each trial it runs."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or ''}"


def owner_is_dead(tag: Any) -> bool:
    """True when ``tag`` names a process of this host that no longer runs."""
    try:
        host, pid, start = tag.rsplit(":", 2)
        pid = int(pid)
    except (AttributeError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    now = _process_start(pid)
    return now is None or (bool(start) and bool(now) and now != start)


def fail_dead_trials(study: Any) -> list[int]:
    """Mark FAIL (retryable) the running trials whose sweep process died; returns them.

    Only trials that a sweep of this host started (they carry its owner tag): a trial
    running in another live process, or on another host, is left alone.
    """
    import optuna
    TrialState = optuna.trial.TrialState
    storage = study._storage
    dead = []
    for ft in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = ft.user_attrs.get(_OWNER)
        if tag is None or not owner_is_dead(tag):
            continue
        try:
            storage.set_trial_user_attr(ft._trial_id, "status", "failed")
            storage.set_trial_user_attr(ft._trial_id, "retryable", True)
            storage.set_trial_user_attr(
                ft._trial_id, "error",
                f"the sweep process ({tag}) died while this trial ran")
            storage.set_trial_state_values(ft._trial_id, state=TrialState.FAIL)
        except (RuntimeError, KeyError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another process settled it first
        dead.append(ft.number)
    return dead


def abandon_trial(study: Any, trial_id: int, number: int) -> None:
    """Mark FAIL (retryable) a trial this process started and will not finish."""
    import optuna
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, "status", "failed")
        storage.set_trial_user_attr(trial_id, "retryable", True)
        storage.set_trial_user_attr(trial_id, "error", "the sweep was interrupted while "
                                                       "this trial ran")
        study.tell(number, state=optuna.trial.TrialState.FAIL)
    except Exception:  # noqa: BLE001 - the storage itself may be what failed
        pass


def begin_trial(study: Any, trial: Any, config: Mapping[str, Any], key: str, seed: int,
                retry_of: Optional[int] = None) -> None:
    """Write what a started trial is (configuration, key, seed, owner) into the study."""
    storage = study._storage
    tid = trial._trial_id
    storage.set_trial_user_attr(tid, _OWNER, owner_tag())
    storage.set_trial_user_attr(tid, "key", key)
    storage.set_trial_user_attr(tid, "seed", int(seed))
    storage.set_trial_user_attr(tid, "config", _plain(config))
    if retry_of is not None:
        storage.set_trial_user_attr(tid, "retry_of", int(retry_of))


def finish_trial(study: Any, trial_id: int, number: int, record: Mapping[str, Any]) -> None:
    """Write a trial's record into the study and tell its state: COMPLETE (value: best
    validation accuracy), PRUNED (value: its last reported accuracy) or FAIL."""
    import optuna
    TrialState = optuna.trial.TrialState
    storage = study._storage
    for name, value in record.items():
        if value is None or name in ("key", "seed", "config", "number"):
            continue
        try:
            value = _plain(value)
        except TypeError:  # a custom runner's extra field that JSON cannot hold
            continue
        storage.set_trial_user_attr(trial_id, name, value)
    status = record["status"]
    acc = record.get("best_val_acc")
    if status == "ok" and acc is not None and math.isfinite(acc):
        study.tell(number, float(acc))
    elif status == "pruned":
        study.tell(number, state=TrialState.PRUNED)
    else:
        study.tell(number, state=TrialState.FAIL)


def record_of(ft: Any, encoded: Collection[str] = ()) -> dict[str, Any]:
    """A trial of the study as a record (a dict of plain values)."""
    from fastfc.sweep._space import decode_params
    attrs = ft.user_attrs
    state = ft.state.name
    status = attrs.get("status") or {"COMPLETE": "ok", "PRUNED": "pruned",
                                     "FAIL": "failed"}.get(state, state.lower())
    record = {"number": ft.number, "state": state, "status": status,
              "key": attrs.get("key")}
    for name in RESULT_FIELDS:
        record[name] = attrs.get(name)
    if record["best_val_acc"] is None and state == "COMPLETE":
        record["best_val_acc"] = ft.value
    record.update(wall_time=attrs.get("wall_time"), worker=attrs.get("worker"),
                  seed=attrs.get("seed"))
    config = attrs.get("config")
    if config is None:  # a trial this sweep did not start: its parameters
        config = decode_params(ft.params, encoded)
    record["config"] = config
    record["params"] = {k: _plain(v) for k, v in ft.params.items()}
    record["defaults"] = attrs.get("defaults")
    if status not in ("ok", "pruned") or attrs.get("error"):
        record["error"] = attrs.get("error")
    if attrs.get("retryable"):
        record["retryable"] = True
    if attrs.get("retry_of") is not None:
        record["retry_of"] = attrs["retry_of"]
    for name, value in attrs.items():  # a custom runner's extra fields
        if name not in record and name not in _ATTRS and name != _OWNER:
            record[name] = value
    if ft.intermediate_values:
        record["val_acc_per_epoch"] = [ft.intermediate_values[k]
                                       for k in sorted(ft.intermediate_values)]
    return record


# ---------------------------------------------------------------------- export

def export_trials(records: Iterable[Mapping[str, Any]], path: str) -> str:
    """Write the trial records to ``path``: CSV when it ends with '.csv', JSON lines
    otherwise (one object per trial; ``pandas.read_json(path, lines=True)`` reads it).
    Written to a temporary file first and renamed, so a reader never sees half a file.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if path.lower().endswith(".csv"):
            names = sorted({k for r in records for k in r["config"]})
            columns = ["number", "state", "status", "key", *RESULT_FIELDS, "wall_time",
                       "worker", "seed", *names, "error"]
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(columns)
                for r in records:
                    row = dict(r, **r["config"])
                    writer.writerow([_csv_cell(row.get(c)) for c in columns])
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(_plain(r), allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def check_results_path(path: str) -> None:
    """ValueError unless ``path`` (the summary export) can be written as a file."""
    error = _not_a_file(path, "results")
    if error is not None:
        raise ValueError(f"{error}: the trial summary must be a regular file (or a path "
                         "that does not exist yet); use results=None (fastfc sweep "
                         "--results '') to write none")
