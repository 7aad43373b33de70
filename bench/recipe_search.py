"""The search behind ``fastfc train --preset best`` (CIFAR-10), in three stages.

    PYTHONPATH=src:. python -m bench.recipe_search subset  [--out DIR]
    PYTHONPATH=src:. python -m bench.recipe_search sweep   [--out DIR] [--n-trials 240]
    PYTHONPATH=src:. python -m bench.recipe_search ablate  [--out DIR] [--budget 300]
    PYTHONPATH=src:. python -m bench.recipe_search leave-one-out [--out DIR] [--budget 300]

``subset`` writes DIR/cifar_sub10k.npz: the first 10,000 training images (standardised
per channel with the statistics of the whole training split) to train on and 4,000
others to validate on, as images (N, 3, 32, 32).

``sweep`` runs stage 1 with ``fastfc sweep``: pruned TPE (median pruner) over width and
depth, batch size, learning rate, AdamW's weight decay, dropout, label smoothing,
warm-up and augmentation, each trial a 12-second cosine run on the subset, two worker
processes of one thread each.  The study is resumable (its journal is DIR/study.journal).

``ablate`` runs stage 2: the preset as it was before this search (Adam, per-channel
standardisation, no label smoothing) on the whole training split with one change at a
time, each a ``--budget``-second run on one thread, two runs side by side, and prints a
table of test accuracy (plain and with flip test-time augmentation).
``leave-one-out`` runs stage 3 the same way: the chosen recipe, then without one of its
changes at a time.

CIFAR-10 is read from ``$FASTFC_DATA``.  Results of the runs that chose the preset are
in ``bench/recipe/RESULTS.md``.
"""
import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: stage 1's search space (``fastfc sweep --space``)
SPACE = {
    "hidden_dims": [[1024, 512, 256], [1024, 1024, 512], [1536, 768, 384], [1024, 512],
                    [2048, 512, 256], [1024, 512, 256, 128]],
    "batch_size": [128, 256, 512],
    "learning_rate": {"loguniform": [3e-4, 4e-3]},
    "weight_decay": {"loguniform": [1e-5, 0.2]},
    "dropout_keep_ratio": {"uniform": [0.5, 1.0]},
    "label_smoothing": {"uniform": [0.0, 0.25]},
    "warmup": {"uniform": [0.0, 0.2]},
    "augment": ["flip", "flip,translate=1", "flip,translate=2", "flip,translate=3",
                "flip,translate=4"],
}
#: stage 1's fixed settings
FIXED = ["update_rule=adamw", "schedule=cosine", "time_budget=12", "num_epochs=1000",
         "shuffle=true", "normalization=batchnorm", "init=he", "dtype=float32"]

#: stage 2: one change at a time to the preset before this search
ABLATIONS = {
    "base": [],
    "ls": ["--label-smoothing", "0.1"],
    "adamw": ["--update-rule", "adamw", "--weight-decay", "0.05"],
    "warm": ["--warmup", "0.03"],
    "ema": ["--ema-decay", "0.999", "--ema-every", "4"],
    "cutout": ["--augment", "flip,translate=2,cutout=8"],
    "reflect4": ["--augment", "flip,translate=4,pad=reflect"],
    "keep07": ["--dropout-keep-ratio", "0.7"],
    "bs128": ["--batch-size", "128"],
    "zca": ["--preprocess", "zca", "--zca-epsilon", "0.5"],
    "sweepbest": ["--hidden-dims", "1024,512", "--batch-size", "128", "--update-rule",
                  "adamw", "--weight-decay", "1e-5", "--learning-rate", "8e-4",
                  "--warmup", "0.15", "--dropout-keep-ratio", "0.97", "--augment", "flip",
                  "--label-smoothing", "0.02"],
}


#: stage 3: the chosen recipe (``--preset best``) without one of its changes at a time
LEAVE_ONE_OUT = {
    "final300": [],
    "final300-zca": ["--preprocess", "standardize"],
    "final300-adamw": ["--update-rule", "adam"],
    "final300-ls": ["--label-smoothing", "0"],
}


def make_subset(out):
    from fastfc.data_utils import get_CIFAR10_data
    d = get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=0,
                         dtype=np.float32, standardize=True, subtract_mean=False)
    X, y = d["X_train"], d["y_train"]
    path = os.path.join(out, "cifar_sub10k.npz")
    np.savez(path, X_train=X[:10000], y_train=y[:10000],
             X_val=np.concatenate([X[46000:], d["X_val"]]),
             y_val=np.concatenate([y[46000:], d["y_val"]]))
    return path


def run_sweep(out, n_trials):
    data = os.path.join(out, "cifar_sub10k.npz")
    if not os.path.exists(data):
        make_subset(out)
    cmd = [sys.executable, "-m", "fastfc", "sweep", "--space", json.dumps(SPACE),
           "--data", data, "--search", "tpe", "--n-trials", str(n_trials), "--prune",
           "median", "--n-jobs", "2", "--seed", "0", "--no-progress", "--top", "20",
           "--results", os.path.join(out, "study.jsonl")]
    for item in FIXED:
        cmd += ["--set", item]
    return subprocess.call(cmd)


def _train(out, name, budget, extra):
    run = os.path.join(out, name)
    cmd = [sys.executable, "-m", "fastfc", "train", "--dataset", "cifar10", "--preset",
           "best", "--time-budget", str(budget), "--threads", "1", "--no-progress",
           "--quiet", "--out", run, *extra]
    subprocess.run(cmd, check=True)
    return name, tta_accuracies(run)


def tta_accuracies(run):
    """Test accuracy of a run's model, plain and averaged over flips."""
    from fastfc import Net, _cli_train as T
    from fastfc.augment import predict_flip_average
    net = Net.load(os.path.join(run, "model.npz"))
    settings = T._upgrade(net.metadata["settings"])
    data, shape = T.load_data(dict(T.DEFAULTS, **settings))
    X, y = data["X_test"], data["y_test"]
    return {"test": float(np.mean(net.predict(X) == y)),
            "test_tta": float(np.mean(predict_flip_average(net, X, shape) == y)),
            "epochs": json.load(open(os.path.join(run, "metrics.json")))["epochs"]}


def ablate(out, budget, runs, old_preset):
    """Train ``runs`` (name -> extra options) two at a time; print the table.

    ``old_preset``: the runs change the preset as it was before the search (stage 2),
    else the chosen one (stage 3)."""
    def old(extra):
        return ["--update-rule", "adam", "--label-smoothing", "0", "--preprocess",
                "standardize", "--tta", "none", *extra] if old_preset else extra

    with ThreadPoolExecutor(2) as pool:
        results = dict(pool.map(lambda kv: _train(out, kv[0], budget, old(kv[1])),
                                runs.items()))
    first = next(iter(results.values()))["test_tta"]
    print("| run | change | epochs | test | test, flip TTA | vs first (TTA) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {' '.join(runs[name]) or '-'} | {r['epochs']} | "
              f"{r['test']:.4f} | {r['test_tta']:.4f} | "
              f"{100 * (r['test_tta'] - first):+.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["subset", "sweep", "ablate", "leave-one-out"])
    parser.add_argument("--out", default="recipe-search")
    parser.add_argument("--n-trials", type=int, default=240)
    parser.add_argument("--budget", type=float, default=300.0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.stage == "subset":
        print(make_subset(args.out))
    elif args.stage == "sweep":
        return run_sweep(args.out, args.n_trials)
    elif args.stage == "ablate":
        ablate(args.out, args.budget, ABLATIONS, old_preset=True)
    else:
        ablate(args.out, args.budget, LEAVE_ONE_OUT, old_preset=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
