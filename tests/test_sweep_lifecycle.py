"""fastfc.sweep's local backend does not outlive its process: the workers exit when the
sweep's process dies (SIGKILL included), and the data directory goes with it (SIGTERM),
or with the next sweep (SIGKILL)."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import fastfc
from fastfc.sweep import _remove_stale_stashes

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and two cores (two worker processes)")

# Liveness bound only: how long a process may take to notice its parent died.
LIVENESS_S = 20

SCRIPT = '''
import os, sys, time
import numpy as np
from fastfc.sweep import sweep

def slow(data, config, seed):
    """Tell the test this worker's pid, then take far longer than the test runs."""
    path = os.path.join(os.environ["MARKS"], str(os.getpid()))
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getppid()))
    os.replace(path + ".tmp", path)
    time.sleep(600)
    return {"best_val_acc": 0.5}

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    data = {"X_train": rng.random((20, 4)).astype(np.float32),
            "y_train": rng.integers(0, 2, 20), "X_val": rng.random((6, 4)).astype(np.float32),
            "y_val": rng.integers(0, 2, 6)}
    sweep({"reg": [0.0, 0.1]}, data, n_jobs=2, results=None, runner=slow,
          return_model=False)
'''


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.1)


def gone(pid):
    """True once pid has exited (a zombie nobody reaped counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def running_sweep(tmp_path):
    """A local sweep in a child process, both workers inside a (long) trial."""
    marks, tmp = tmp_path / "marks", tmp_path / "tmp"
    marks.mkdir()
    tmp.mkdir()
    script = tmp_path / "run_sweep.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MARKS=str(marks), TMPDIR=str(tmp),
               PYTHONPATH=os.pathsep.join(
                   [os.path.dirname(os.path.dirname(fastfc.__file__)),
                    os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=str(tmp_path))
    workers = []
    try:
        wait_for(lambda: len(os.listdir(marks)) == 2 or proc.poll() is not None, 120,
                 "both workers did not start a trial")
        assert proc.poll() is None, "the sweep ended early"
        workers = [int(name) for name in os.listdir(marks)]
        # the workers are the sweep's own children
        assert all((marks / str(pid)).read_text() == str(proc.pid) for pid in workers)
        stashes = [p for p in os.listdir(tmp) if p.startswith(f"fastfc-sweep-{proc.pid}-")]
        assert len(stashes) == 1
        yield proc, workers, tmp / stashes[0]
    finally:
        for pid in [proc.pid, *workers]:  # never leave this test's processes behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(timeout=LIVENESS_S)


def test_sigkilled_sweep_takes_its_workers_along(running_sweep):
    proc, workers, stash = running_sweep
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=LIVENESS_S)
    wait_for(lambda: all(gone(pid) for pid in workers), LIVENESS_S,
             "the workers did not exit after their parent was killed")
    # nothing could remove the data directory: the next local sweep does
    assert stash.exists()
    _remove_stale_stashes(str(stash.parent))
    assert not stash.exists()


def test_sigterm_stops_the_workers_and_removes_the_data_directory(running_sweep):
    proc, workers, stash = running_sweep
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=LIVENESS_S) == -signal.SIGTERM  # still ends as SIGTERM ends it
    assert not stash.exists()
    wait_for(lambda: all(gone(pid) for pid in workers), LIVENESS_S,
             "the workers did not exit after SIGTERM")


def test_stale_directories_of_live_processes_and_other_names_are_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"fastfc-sweep-{dead.pid}-abc"
    live = tmp_path / f"fastfc-sweep-{os.getppid()}-abc"   # our parent is alive
    mine = tmp_path / f"fastfc-sweep-{os.getpid()}-abc"
    other = tmp_path / "fastfc-sweepy-1-abc"
    for d in (stale, live, mine, other):
        d.mkdir()
        (d / "0.npy").write_bytes(b"x")
    if not psutil.pid_exists(dead.pid):
        _remove_stale_stashes(str(tmp_path))
        assert not stale.exists()
    assert live.exists() and mine.exists() and other.exists()


MIDDLE = '''
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(grandchild.pid, flush=True)
time.sleep(600)
'''

WATCHED = '''
import os, sys, time
parent = os.getppid()
from fastfc import sweep
sweep._watch_parent(parent, interval=0.1)   # the fallback, without prctl
open(os.environ["READY"], "w").close()
time.sleep(600)
'''


def test_watchdog_fallback_ends_a_process_whose_parent_died(tmp_path):
    ready = tmp_path / "ready"
    env = dict(os.environ, READY=str(ready), PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastfc.__file__)), os.environ.get("PYTHONPATH", "")]))
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, WATCHED], env=env,
                              stdout=subprocess.PIPE, text=True)
    grandchild = None
    try:
        grandchild = int(middle.stdout.readline())
        wait_for(lambda: ready.exists() or gone(grandchild), 60, "the watchdog did not start")
        assert not gone(grandchild)
        middle.kill()
        middle.wait(timeout=LIVENESS_S)
        wait_for(lambda: gone(grandchild), LIVENESS_S,
                 "the watched process did not exit after its parent died")
    finally:
        for pid in (middle.pid, grandchild):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        middle.wait(timeout=LIVENESS_S)
        middle.stdout.close()
