"""Where trials run: this process, a local process pool, or a Dask cluster.

Every backend takes ``next_job()`` (the next :class:`~fastfc.sweep._trial.Job`, or None
when the sweep needs no more) and ``finish(job, record)`` (tells the study), both
called in this process only: the study's sampler sees every result before it draws the
next trial, and the workers only train and report their epochs.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from types import TracebackType
from typing import Any, Callable, Literal, Mapping, Optional

import numpy as np

from fastfc.sweep._trial import Job, execute, failed_record

_NextJob = Callable[[], Optional[Job]]                 # the next trial to run, or None
_Finish = Callable[[Job, dict[str, Any]], None]        # takes a trial's record

def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_inline(next_job: _NextJob, finish: _Finish,
               data: Mapping[str, Any], runner: Callable[..., Any], reporter: Any) -> None:
    """The trials one after the other in this process."""
    while True:
        job = next_job()
        if job is None:
            return
        finish(job, execute(runner, data, job, reporter))


# local process pool ---------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _stash_data(data: Mapping[str, Any], directory: str) -> None:
    """Write ``data`` to ``directory`` for the workers: arrays as .npy files (mapped
    read-only by every worker, so the pages are shared), anything else pickled."""
    import pickle
    arrays: dict[str, str] = {}
    other: dict[str, Any] = {}
    for i, (name, value) in enumerate(data.items()):
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[name] = f"{i}.npy"
            np.save(os.path.join(directory, arrays[name]), value, allow_pickle=False)
        else:
            other[name] = value
    with open(os.path.join(directory, "manifest.pkl"), "wb") as f:
        pickle.dump({"arrays": arrays, "other": other}, f)


def _load_stash(directory: str) -> dict[str, Any]:
    import pickle
    with open(os.path.join(directory, "manifest.pkl"), "rb") as f:
        manifest = pickle.load(f)
    data: dict[str, Any] = {}
    for name, filename in manifest["arrays"].items():
        data[name] = np.load(os.path.join(directory, filename), mmap_mode="r")
    data.update(manifest["other"])
    return data


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; True if armed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError, TypeError):
        return False


def _watch_parent(parent: int, interval: float = 1.0) -> None:
    """Daemon thread: end this process once its parent is no longer ``parent``."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="fastfc-parent-watchdog", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Make this worker exit when the sweep's process ``parent`` dies, even by SIGKILL.

    Linux: the parent-death signal (SIGTERM; checked against a parent that died before
    it was armed).  Elsewhere, or when prctl is unavailable: a watchdog thread polling
    ``os.getppid()`` once a second.
    """
    armed = _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)
    if not armed:
        _watch_parent(parent)


def _init_worker(stash: str, blas_threads: Optional[int], parent: Optional[int] = None) -> None:
    """Pool initializer: tie the worker's life to the parent's, map the data (written
    once by the parent) and limit BLAS threads.

    The data travel through files rather than the initializer's arguments: a worker
    that dies while starting could otherwise leave the parent blocked on a full pipe.
    """
    if parent is not None:
        _exit_with_parent(parent)
    import fastfc.net  # noqa: F401  (loads the kernels and scipy's BLAS first)
    _WORKER["data"] = _load_stash(stash)
    if blas_threads:
        from threadpoolctl import threadpool_limits
        _WORKER["limits"] = threadpool_limits(limits=blas_threads)


def _local_task(runner: Callable[..., Any], reporter: Any, job: Job) -> dict[str, Any]:
    return execute(runner, _WORKER["data"], job, reporter)


def _new_pool(n_workers: int, ctx: Any, stash: str, cores: int) -> Any:
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx,
                               initializer=_init_worker,
                               initargs=(stash, max(1, cores // n_workers), os.getpid()))


def _stop_pool(pool: Any) -> None:
    """Shut ``pool`` down now: cancel what waits, terminate the workers."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _pool_round(next_job: _NextJob, finish: _Finish, n_workers: int,
                ctx: Any, stash: str, cores: int, runner: Callable[..., Any], reporter: Any
                ) -> tuple[list[Job], list[Job], Optional[BaseException]]:
    """Keep ``n_workers`` trials running in one pool until the sweep needs no more
    (returns ``([], [], None)``) or a worker dies (returns the trials that were
    running, one that could not be sent, and the error)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(n_workers, ctx, stash, cores)
    in_flight: dict[Any, Job] = {}
    lost: list[Job] = []
    unsent: list[Job] = []
    broken: Optional[BaseException] = None
    try:
        while True:
            while broken is None and len(in_flight) < n_workers:
                job = next_job()
                if job is None:
                    break
                try:
                    in_flight[pool.submit(_local_task, runner, reporter, job)] = job
                except BrokenProcessPool as exc:  # a worker died since the last wait
                    broken = exc
                    unsent.append(job)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                job = in_flight.pop(future)
                # (mypy: the name is also an except clause's, above)
                exc = future.exception()  # type: ignore[misc]
                if exc is None:
                    finish(job, future.result())
                elif isinstance(exc, BrokenProcessPool):
                    broken = exc
                    lost.append(job)
                else:  # the task could not even be sent or returned (pickling, ...)
                    finish(job, failed_record(job, f"{type(exc).__name__}: {exc}",
                                              retryable=False))
            if broken is not None:
                lost += list(in_flight.values())
                break
    except BaseException:  # Ctrl-C, SIGTERM (see _sigterm_runs_cleanup), a bug
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    return lost, unsent, broken


def _alone(job: Job, ctx: Any, stash: str, cores: int, runner: Callable[..., Any], reporter: Any
           ) -> tuple[Optional[dict[str, Any]], Optional[BaseException]]:
    """Run ``job`` in a pool of its own: (record, None), or (None, error) when its
    worker died."""
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(1, ctx, stash, cores)
    try:
        future = pool.submit(_local_task, runner, reporter, job)
        try:
            return future.result(), None
        except BrokenProcessPool as exc:
            return None, exc
        except Exception as exc:  # noqa: BLE001 - sending or returning failed
            return failed_record(job, f"{type(exc).__name__}: {exc}", retryable=False), None
    except BaseException:
        _stop_pool(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_local(next_job: _NextJob, finish: _Finish, data: Mapping[str, Any],
              runner: Callable[..., Any], reporter: Any, n_jobs: int, cores: int,
              retries: int) -> None:
    """A pool of ``n_jobs`` spawned worker processes (see the module docstring of
    :mod:`fastfc.sweep`).  A worker that dies breaks the pool: each trial that was
    running is run again alone in a fresh worker, so the one that kills its worker is
    found, and recorded as failed after ``retries`` re-runs; then a fresh pool goes on.

    The data directory is named after this process (``fastfc-sweep-<pid>-*``) and
    removed on every way out, SIGTERM included (see :class:`_sigterm_runs_cleanup`)."""
    import multiprocessing
    import shutil
    import tempfile

    ctx = multiprocessing.get_context("spawn")
    _remove_stale_stashes()
    with _sigterm_runs_cleanup():
        stash = tempfile.mkdtemp(prefix=f"{_STASH_PREFIX}{os.getpid()}-")
        try:
            _stash_data(data, stash)
            backlog: list[Job] = []

            def next_or_backlog() -> Optional[Job]:
                return backlog.pop(0) if backlog else next_job()

            while True:
                lost, unsent, error = _pool_round(next_or_backlog, finish, n_jobs, ctx,
                                                  stash, cores, runner, reporter)
                if error is None:
                    return
                backlog += unsent  # never started: the next pool runs it
                for job in lost:
                    for _ in range(retries):
                        record, error = _alone(job, ctx, stash, cores, runner, reporter)
                        if record is not None:
                            finish(job, record)
                            break
                    else:
                        finish(job, failed_record(
                            job, f"the worker process died while running this trial "
                                 f"({1 + retries} attempts): {error}", retryable=True))
        finally:
            shutil.rmtree(stash, ignore_errors=True)


_STASH_PREFIX = "fastfc-sweep-"


class _Terminated(BaseException):
    """SIGTERM arrived during a local sweep (raised so that the clean-up code runs)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


class _sigterm_runs_cleanup:
    """Context: a SIGTERM raises :class:`_Terminated` inside the block, so that its
    ``finally`` clauses stop the workers and remove the data directory; on leaving,
    the default action is put back and the signal raised again, so the process still
    ends as SIGTERM ends it.

    Only in the main thread and when SIGTERM is at its default action: a handler of
    the program's own is left alone (the program then decides what SIGTERM does).
    """

    def __enter__(self) -> _sigterm_runs_cleanup:
        import threading
        self.installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    signal.signal(signal.SIGTERM, _raise_terminated)
                    self.installed = True
            except (ValueError, OSError, AttributeError):  # pragma: no cover
                pass
        return self

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Literal[False]:
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if kind is not None and issubclass(kind, _Terminated):
                signal.raise_signal(signal.SIGTERM)  # ends the process
        return False


def _pid_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, somebody else's
        return False
    return False


def _remove_stale_stashes(directory: Optional[str] = None) -> None:
    """Remove the data directories of local sweeps whose process is gone (SIGKILLed).

    Only this user's directories named ``fastfc-sweep-<pid>-*``, and only on POSIX
    (where ``os.kill(pid, 0)`` tests a process without touching it)."""
    import re
    import shutil
    import tempfile

    if os.name != "posix":
        return
    directory = tempfile.gettempdir() if directory is None else directory
    pattern = re.compile(re.escape(_STASH_PREFIX) + r"(\d+)-")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _pid_is_gone(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


# dask ---------------------------------------------------------------------------------

def _dask_task(runner: Callable[..., Any], reporter: Any, data: Mapping[str, Any], job: Job,
               blas_threads: Optional[int]) -> dict[str, Any]:
    return execute(runner, data, job, reporter, blas_threads=blas_threads)


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: "
                          "pip install 'fastfc[dask]'") from exc
    return distributed


def _local_cluster_options(n_workers: int) -> dict[str, Any]:
    """LocalCluster settings of the embedded default: worker processes of one thread,
    no dashboard, and every server (scheduler, its HTTP endpoint, nannies, workers) on
    the loopback interface."""
    return dict(n_workers=n_workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})


def run_dask(next_job: _NextJob, finish: _Finish, data: Mapping[str, Any],
             runner: Callable[..., Any], reporter: Any, scheduler: Any, n_jobs: int,
             retries: int) -> None:
    """Trials as Dask tasks, two per worker thread of the cluster at a time; the data
    scattered to every worker once."""
    distributed = import_distributed()
    cluster = None
    own_client = False
    blas_threads = None
    if isinstance(scheduler, distributed.Client):
        client = scheduler
    elif scheduler is None:
        cluster = distributed.LocalCluster(**_local_cluster_options(n_jobs))
        client = distributed.Client(cluster)
        own_client = True
        blas_threads = max(1, _cpu_count() // n_jobs)
    elif isinstance(scheduler, str):
        client = distributed.Client(scheduler)
        own_client = True
    else:
        raise TypeError("scheduler must be a distributed.Client, a scheduler address or "
                        f"None, got {type(scheduler).__name__}")
    try:
        # two trials queued per worker thread: the next one waits on the worker while
        # this process tells the study the last result (the scheduler's round trip
        # is hidden), and the sampler still sees all but the latest few results
        slots = 2 * max(1, sum(client.nthreads().values()))
        [data_future] = client.scatter([data], broadcast=True, hash=False)
        tag = uuid.uuid4().hex[:8]
        in_flight: dict[Any, Job] = {}
        pending = distributed.as_completed()

        def submit() -> bool:
            job = next_job()
            if job is None:
                return False
            future = client.submit(_dask_task, runner, reporter, data_future, job,
                                   blas_threads, key=f"fastfc-trial-{job.number}-{tag}",
                                   retries=retries, pure=False)
            in_flight[future] = job
            pending.add(future)
            return True

        while len(in_flight) < slots and submit():
            pass
        for future in pending:
            job = in_flight.pop(future)
            if future.status == "finished":
                try:
                    finish(job, future.result())
                except Exception as exc:  # noqa: BLE001 - the result could not be fetched
                    finish(job, failed_record(job, f"{type(exc).__name__}: {exc}",
                                              retryable=True))
            else:
                # (mypy: the name is also an except clause's, above)
                exc = future.exception()  # type: ignore[misc]
                lost = type(exc).__name__ == "KilledWorker"
                finish(job, failed_record(job, f"{type(exc).__name__}: {exc}",
                                          retryable=lost))
            future.release()
            while len(in_flight) < slots and submit():
                pass
        data_future.release()
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
