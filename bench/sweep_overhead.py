"""Per-trial overhead of fastfc.sweep on trivial trials (no training), per backend.

    PYTHONPATH=src:. python -m bench.sweep_overhead [--trials 200]

A trial's runner returns at once, so what is timed is the sweep's own work: the sampler
(random search), the study's journal (ask, the trial's attributes, tell), shipping the
trial to a worker and its record back.  Each backend's start-up (spawning the pool,
starting the LocalCluster, scattering the data) is reported apart: the per-trial figure
is measured from the first trial's end to the last one's.
"""
import argparse
import os
import tempfile
import time

import numpy as np


def nothing(data, config, seed):
    """A trial that trains nothing."""
    return {"best_val_acc": 0.5, "epochs": 0}


def measure(backend, n_jobs, n_trials, folder):
    from fastfc.sweep import loguniform, sweep
    rng = np.random.default_rng(0)
    data = {"X_train": rng.random((20, 4)), "y_train": rng.integers(0, 2, 20),
            "X_val": rng.random((6, 4)), "y_val": rng.integers(0, 2, 6)}
    ends = []
    t0 = time.perf_counter()
    sweep({"learning_rate": loguniform(1e-5, 1e-1), "reg": loguniform(1e-6, 1e-2)}, data,
          search="random", n_trials=n_trials, backend=backend, n_jobs=n_jobs,
          results=os.path.join(folder, f"{backend}-{n_jobs}.jsonl"), runner=nothing,
          return_model=False, progress=lambda *_: ends.append(time.perf_counter()))
    total = time.perf_counter() - t0
    steady = (ends[-1] - ends[0]) / (len(ends) - 1)
    return total, ends[0] - t0, steady


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args(argv)
    rows = [("local", 1), ("local", 2), ("dask", 2)]
    print(f"{'backend':<8} {'n_jobs':>6} {'trials':>6} {'total s':>8} {'start-up s':>10} "
          f"{'ms/trial':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for backend, n_jobs in rows:
            total, first, steady = measure(backend, n_jobs, args.trials, folder)
            print(f"{backend:<8} {n_jobs:>6} {args.trials:>6} {total:>8.2f} {first:>10.2f} "
                  f"{1000 * steady:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
