"""A 27-point grid against TPE with ASHA pruning, same trial budget, on a data set.

    PYTHONPATH=src:. python -m bench.sweep_search --data cifar10 [--epochs 10] [--n-jobs 2]

``--data digits``: fastfc's embedded digits split.  ``--data cifar10``: a 10,000-image
subset of CIFAR-10 (the first training batch: 9,000 to train, 1,000 to validate,
standardised per feature), read from ``$FASTFC_DATA`` or ``shared/data``.  Prints, for
each search, the best validation accuracy, the training epochs spent and the wall time.
"""
import argparse
import os
import tempfile
import time

import numpy as np


def cifar_subset():
    from fastfc.data_utils import load_CIFAR10
    root = os.environ.get("FASTFC_DATA") or os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar-10-batches-py")
    if not os.path.isdir(root):
        root = "/work/shared/data/cifar-10-batches-py"
    X, y, _, _ = load_CIFAR10(root, dtype=np.float32)
    X, y = X[:10000].reshape(10000, -1), y[:10000]
    mean, std = X[:9000].mean(axis=0), X[:9000].std(axis=0) + 1e-6
    X = (X - mean) / std
    return {"X_train": X[:9000], "y_train": y[:9000], "X_val": X[9000:], "y_val": y[9000:]}


def digits():
    from fastfc.data_utils import load_default_data
    return load_default_data(dtype=np.float32)


def main(argv=None):
    from fastfc.sweep import choice, loguniform, sweep
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "cifar10"), default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    data = cifar_subset() if args.data == "cifar10" else digits()
    widths = [[128], [256], [512]] if args.data == "cifar10" else [[32], [64], [128]]
    grid = {"hidden_dims": widths, "learning_rate": [3e-4, 1e-3, 3e-3],
            "reg": [1e-4, 1e-3, 1e-2]}
    tpe = {"hidden_dims": choice(widths), "learning_rate": loguniform(1e-4, 1e-2),
           "reg": loguniform(1e-5, 3e-2)}
    fixed = dict(num_epochs=args.epochs, batch_size=100, update_rule="adam")
    print(f"data: {args.data}, {len(data['X_train'])} train / {len(data['X_val'])} val, "
          f"{args.epochs} epochs a trial, n_jobs={args.n_jobs}", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, space, kw in (("grid (27 points)", grid, {}),
                                ("TPE + ASHA (27 trials)", tpe,
                                 dict(search="tpe", prune="asha", n_trials=27))):
            t0 = time.perf_counter()
            trials, _ = sweep(space, data, n_jobs=args.n_jobs, return_model=False,
                              results=os.path.join(folder, f"{len(rows)}.jsonl"), **kw,
                              **fixed)
            wall = time.perf_counter() - t0
            epochs = sum(t["epochs"] or 0 for t in trials)
            best = trials[0]
            rows[name] = (best["best_val_acc"], epochs, wall)
            print(f"{name}: best val acc {best['best_val_acc']:.4f} "
                  f"({best['config']}), {epochs} epochs, "
                  f"{sum(t['status'] == 'pruned' for t in trials)} pruned, {wall:.1f} s",
                  flush=True)
    (g_acc, g_ep, g_wall), (t_acc, t_ep, t_wall) = rows.values()
    print(f"TPE + ASHA against the grid: {100 * (t_acc - g_acc):+.1f} points of val "
          f"accuracy, {100 * t_ep / g_ep:.0f}% of the epochs, {100 * t_wall / g_wall:.0f}% "
          "of the wall time")


if __name__ == "__main__":
    main()
