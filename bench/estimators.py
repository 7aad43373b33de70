"""``python -m bench.estimators``: FCClassifier / FCRegressor against scikit-learn's MLP.

    python -m bench.estimators            # every data set, 5-fold CV (several minutes)
    python -m bench.estimators --quick    # 3 folds, the synthetic sets at 20k rows
    python -m bench.estimators --datasets digits,diabetes --out table.md

Side by side, on the same folds and with the same preprocessing:

* FCClassifier vs MLPClassifier on digits, breast cancer, wine and
  ``make_classification`` 100k x 100;
* FCRegressor vs MLPRegressor on diabetes and ``make_regression`` 100k x 100.

Both estimators get one hidden layer of 100 units (``--hidden``), their defaults
otherwise (Adam at 1e-3, ``max_iter=200`` with ``tol`` / ``n_iter_no_change``
stopping), and the inputs standardised by a ``StandardScaler`` in the pipeline; the
regression targets are standardised too (``TransformedTargetRegressor``), R^2 being
measured on the original scale.  Folds: ``StratifiedKFold`` / ``KFold`` (5, shuffled,
seed 0).  Reported per data set: the median test accuracy or R^2 over the folds, the
median fit time (the whole pipeline's ``fit``) and the median number of epochs.  Both
libraries follow the input's dtype (float64 here; ``--float32`` casts X first).  Both
run with the same thread budget (``--threads``, default 1: BLAS and OpenMP pools through
threadpoolctl, and fastfc's own pool), so that neither oversubscribes a shared machine.

Run from the project root (``PYTHONPATH=src:.`` for an in-place build).  Timings are
wall-clock on whatever else the machine is doing: the header records the load average.
"""
import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

CLASSIFICATION = ("digits", "breast_cancer", "wine", "make_classification")
REGRESSION = ("diabetes", "make_regression")
DATASETS = CLASSIFICATION + REGRESSION


def load(name, big_rows):
    """(X, y, task) of one data set; the synthetic ones have ``big_rows`` rows."""
    from sklearn import datasets as D

    if name == "digits":
        X, y = D.load_digits(return_X_y=True)
    elif name == "breast_cancer":
        X, y = D.load_breast_cancer(return_X_y=True)
    elif name == "wine":
        X, y = D.load_wine(return_X_y=True)
    elif name == "make_classification":
        X, y = D.make_classification(n_samples=big_rows, n_features=100, n_informative=40,
                                     n_redundant=20, n_classes=5, n_clusters_per_class=2,
                                     class_sep=1.0, flip_y=0.01, random_state=0)
    elif name == "diabetes":
        X, y = D.load_diabetes(return_X_y=True)
    elif name == "make_regression":
        X, y = D.make_regression(n_samples=big_rows, n_features=100, n_informative=50,
                                 noise=10.0, random_state=0)
        # a smooth non-linearity, so that a hidden layer has something to find
        y = y + 0.5 * np.abs(X[:, 0] * X[:, 1]) * y.std() / 3
    else:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    task = "classification" if name in CLASSIFICATION else "regression"
    return np.ascontiguousarray(X, dtype=np.float64), y, task


def make_models(task, hidden, seed):
    """{library: unfitted pipeline} for a task, the same preprocessing on both sides."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastfc.sklearn import FCClassifier, FCRegressor

    if task == "classification":
        return {"fastfc": make_pipeline(StandardScaler(),
                                        FCClassifier(hidden_dims=hidden, random_state=seed)),
                "sklearn": make_pipeline(StandardScaler(),
                                         MLPClassifier(hidden_layer_sizes=hidden,
                                                       random_state=seed))}

    def target_scaled(model):
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), model),
                                          transformer=StandardScaler())
    return {"fastfc": target_scaled(FCRegressor(hidden_dims=hidden, random_state=seed)),
            "sklearn": target_scaled(MLPRegressor(hidden_layer_sizes=hidden,
                                                  random_state=seed))}


def epochs_of(model):
    """n_iter_ of the estimator inside a fitted pipeline."""
    inner = getattr(model, "regressor_", model)
    return inner.steps[-1][1].n_iter_


def run_dataset(name, folds, big_rows, hidden, float32, threads=1, seed=0):
    import contextlib

    from sklearn.model_selection import KFold, StratifiedKFold

    import fastfc

    X, y, task = load(name, big_rows)
    if float32:
        X = X.astype(np.float32)
    split = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=folds, shuffle=True, random_state=seed)
    rows = {lib: {"score": [], "fit_s": [], "epochs": []} for lib in ("fastfc", "sklearn")}
    for fold, (train, test) in enumerate(split.split(X, y)):
        for lib, model in make_models(task, hidden, seed).items():
            # fastfc's own pool gets the same thread budget as the BLAS of both
            pool = fastfc.threads(threads) if lib == "fastfc" else contextlib.nullcontext()
            with warnings.catch_warnings(), pool:
                warnings.simplefilter("ignore")   # ConvergenceWarning at max_iter
                start = time.perf_counter()
                model.fit(X[train], y[train])
                elapsed = time.perf_counter() - start
                score = model.score(X[test], y[test])
            rows[lib]["score"].append(float(score))
            rows[lib]["fit_s"].append(elapsed)
            rows[lib]["epochs"].append(epochs_of(model))
            print(f"  {name} fold {fold + 1}/{folds} {lib}: {score:.4f} in {elapsed:.2f} s, "
                  f"{epochs_of(model)} epochs", file=sys.stderr, flush=True)
    med = {lib: {k: statistics.median(v) for k, v in r.items()} for lib, r in rows.items()}
    return {"name": name, "task": task, "shape": X.shape, "median": med, "raw": rows}


def render(results, folds, header):
    lines = [header, "",
             f"| data set | n x d | metric | FCClassifier/FCRegressor | MLP | difference "
             f"| fastfc fit s | MLP fit s | MLP / fastfc time | epochs fastfc / MLP |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f, s = r["median"]["fastfc"], r["median"]["sklearn"]
        metric = "accuracy" if r["task"] == "classification" else "R2"
        lines.append(
            f"| {r['name']} | {r['shape'][0]} x {r['shape'][1]} | {metric} "
            f"| {f['score']:.4f} | {s['score']:.4f} | {f['score'] - s['score']:+.4f} "
            f"| {f['fit_s']:.2f} | {s['fit_s']:.2f} | {s['fit_s'] / f['fit_s']:.2f}x "
            f"| {f['epochs']:g} / {s['epochs']:g} |")
    lines.append("")
    lines.append(f"Medians over {folds}-fold cross-validation (test folds); fit time is the "
                 "whole pipeline's fit.")
    return "\n".join(lines)


def machine_line():
    import sklearn

    import fastfc
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"Machine: {cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
            f"numpy {np.__version__}; scikit-learn {sklearn.__version__}; fastfc "
            f"{fastfc.__version__}; load average {load:.2f} at start")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.estimators", description=__doc__
                                .split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="3 folds and 20k-row synthetic sets (a few minutes at most)")
    p.add_argument("--datasets", default=None,
                   help="comma-separated subset of " + ",".join(DATASETS))
    p.add_argument("--folds", type=int, default=None, help="CV folds (default 5; quick 3)")
    p.add_argument("--rows", type=int, default=None,
                   help="rows of the synthetic sets (default 100000; quick 20000)")
    p.add_argument("--hidden", default="100",
                   help="hidden layer widths, comma-separated (default 100)")
    p.add_argument("--float32", action="store_true", help="cast X to float32 for both")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for both libraries: BLAS and OpenMP pools (threadpoolctl) "
                        "and fastfc's own pool (default 1: a fair, load-robust comparison)")
    p.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = p.parse_args(argv)
    names = DATASETS if args.datasets is None else tuple(
        n.strip() for n in args.datasets.split(",") if n.strip())
    bad = [n for n in names if n not in DATASETS]
    if bad:
        p.error(f"unknown data set(s) {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    folds = args.folds or (3 if args.quick else 5)
    rows = args.rows or (20000 if args.quick else 100000)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    header = machine_line()
    results = []
    from threadpoolctl import threadpool_limits
    limits = threadpool_limits(args.threads)
    for name in names:
        start = time.perf_counter()
        results.append(run_dataset(name, folds, rows, hidden, args.float32, args.threads))
        m = results[-1]["median"]
        print(f"{name}: fastfc {m['fastfc']['score']:.4f} in {m['fastfc']['fit_s']:.2f} s, "
              f"MLP {m['sklearn']['score']:.4f} in {m['sklearn']['fit_s']:.2f} s "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    limits.restore_original_limits()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = render(results, folds, f"{header}, {load:.2f} at end; hidden {hidden}; "
                  f"{args.threads} thread(s) each"
                  f"{'; float32 inputs' if args.float32 else ''}")
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
