"""``fastfc train``, ``fastfc evaluate`` and ``fastfc gradcheck``.

``train`` builds a :class:`fastfc.Net`, trains it with the :class:`fastfc.Solver` and
writes a run directory::

    RUN/config.json     the resolved settings (what ``--resume RUN`` rebuilds from)
    RUN/solver.npz      the Solver's resumable checkpoint (safe .npz, no pickle)
    RUN/model.npz       the best model (Net.save), what ``fastfc evaluate`` reads
    RUN/metrics.json    final accuracies, histories, timings, settings, versions
    RUN/history.png     loss and accuracy curves
    RUN/weights.png     the first-layer weights as images

Presets bundle settings; explicit options override them.
"""
import json
import os
import platform
import sys
import time
from contextlib import nullcontext

import numpy as np

from fastfc._config import __version__

# ------------------------------------------------------------------ presets

#: settings a preset fills in (options given on the command line win)
PRESETS = {
    "default": {},
    # the course's five-layer net, as a baseline
    "course": dict(hidden=[100, 100, 100, 100, 100], update_rule="adam", lr=1e-3,
                   batch_size=200, epochs=10, weight_scale=5e-2),
    # the CIFAR-10 recipe: fits in 10 minutes on 2 cores, ~65% test accuracy
    "best": dict(dataset="cifar10", hidden=[1024, 512, 256], activation="relu",
                 normalization="batchnorm", dropout_keep=0.8, reg=0.0, init="he",
                 update_rule="adam", lr=1e-3, schedule="cosine", time_budget=540.0,
                 epochs=10000, batch_size=256, shuffle=True, augment="flip,translate=2",
                 standardize=True, dtype="float32", checkpoint_every=10),
}

#: defaults when neither the preset nor the command line sets a value
DEFAULTS = dict(dataset="digits", data=None, hidden=[100], activation="relu",
                normalization=None, dropout_keep=1.0, reg=1e-4, weight_scale=None,
                init=None, update_rule="adam", lr=1e-3, lr_decay=1.0, schedule=None,
                time_budget=None, epochs=50, batch_size=100, shuffle=False, augment=None,
                standardize=False, dtype="float32", threads=None, seed=0,
                print_every=None, checkpoint_every=1, num_test=None)


def _int_list(text):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--hidden takes comma-separated integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ValueError(f"--hidden sizes must be positive, got {text!r}")
    return values


def train_arguments(parser):
    """Options of ``fastfc train`` (all default to None: presets and DEFAULTS fill in)."""
    a = parser.add_argument
    a("--preset", choices=sorted(PRESETS), default="default",
      help="bundle of settings ('best': the CIFAR-10 recipe)")
    a("--dataset", choices=["digits", "cifar10"], help="digits (embedded, default) or cifar10")
    a("--data", metavar="DIR", help="CIFAR-10 directory (default: $FASTFC_DATA)")
    a("--hidden", type=str, metavar="H1,H2,...", help="hidden layer sizes, e.g. 100,100")
    a("--activation", choices=["relu", "leaky_relu", "sigmoid", "tanh", "swish"])
    a("--normalization", choices=["none", "batchnorm", "layernorm"])
    a("--dropout-keep", type=float, metavar="P", help="probability of keeping a unit")
    a("--reg", type=float, help="L2 strength (0.5 * reg * sum W^2)")
    a("--weight-scale", type=float, help="std of the initial weights (default: He init)")
    a("--init", choices=["he", "xavier"])
    a("--update-rule", choices=["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop",
                                "adam"])
    a("--lr", type=float, help="learning rate")
    a("--lr-decay", type=float, help="multiply the learning rate by this every epoch")
    a("--schedule", choices=["none", "cosine"], help="cosine: decay to zero along a cosine")
    a("--time-budget", type=float, metavar="SECONDS",
      help="train for this long (the cosine reaches zero exactly then)")
    a("--epochs", type=int)
    a("--batch-size", type=int)
    a("--shuffle", action="store_const", const=True,
      help="sample each epoch without replacement")
    a("--augment", metavar="SPEC", help="on-the-fly augmentation, e.g. flip,translate=2")
    a("--standardize", action="store_const", const=True,
      help="per-channel standardisation (statistics of the training split)")
    a("--num-test", type=int, help="test images to evaluate (cifar10: up to 10000)")
    a("--dtype", choices=["float32", "float64"])
    a("--threads", type=int, help="BLAS threads (threadpoolctl)")
    a("--seed", type=int)
    a("--print-every", type=int, help="print the loss every this many iterations")
    a("--checkpoint-every", type=int, metavar="EPOCHS")
    a("--out", metavar="DIR", help="run directory (default: runs/<dataset>-<time>)")
    a("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--quiet", action="store_true", help="print only the final summary")


def resolve_settings(args):
    """Settings from DEFAULTS, then the preset, then the options given."""
    settings = dict(DEFAULTS)
    settings.update(PRESETS[args.preset])
    given = {k: v for k, v in vars(args).items() if v is not None and k in DEFAULTS}
    if "hidden" in given:
        given["hidden"] = _int_list(given["hidden"])
    settings.update(given)
    settings["preset"] = args.preset
    if settings["normalization"] == "none":
        settings["normalization"] = None
    if settings["schedule"] == "none":
        settings["schedule"] = None
    if settings["time_budget"] is not None and settings["schedule"] is None \
            and "schedule" not in given and "time_budget" in given:
        settings["schedule"] = "cosine"
    if settings["weight_scale"] is not None and "init" not in given:
        settings["init"] = None
    for key, low in (("epochs", 1), ("batch_size", 1), ("checkpoint_every", 1)):
        if settings[key] < low:
            raise ValueError(f"--{key.replace('_', '-')} must be >= {low}, got {settings[key]}")
    if settings["threads"] is not None and settings["threads"] < 1:
        raise ValueError(f"--threads must be >= 1, got {settings['threads']}")
    return settings


# ------------------------------------------------------------------ data

def load_data(settings):
    """The data dict (six keys) and the image shape (C, H, W) of one sample."""
    from fastfc import data_utils

    dtype = np.dtype(settings["dtype"]).type
    if settings["dataset"] == "digits":
        data = data_utils.load_default_data(dtype=dtype)
        if settings["num_test"] is not None:
            data["X_test"] = data["X_test"][:settings["num_test"]]
            data["y_test"] = data["y_test"][:settings["num_test"]]
        return data, (1, 8, 8)
    num_test = settings["num_test"] or 10000
    data = data_utils.get_CIFAR10_data(
        num_test=num_test, cifar10_dir=settings["data"], dtype=dtype,
        standardize=settings["standardize"])
    return data, (3, 32, 32)


# ------------------------------------------------------------------ train

def _build_net(settings, data):
    from fastfc import Net

    n_features = int(np.prod(data["X_train"].shape[1:]))
    n_classes = int(max(data["y_train"].max(), data["y_val"].max())) + 1
    dims = [n_features] + list(settings["hidden"]) + [n_classes]
    return Net(dims, activation=settings["activation"],
               dropout_keep_ratio=settings["dropout_keep"],
               normalization=settings["normalization"], reg=settings["reg"],
               weight_scale=settings["weight_scale"], init=settings["init"],
               dtype=np.dtype(settings["dtype"]).type, seed=settings["seed"])


def _build_solver(settings, net, data, image_shape, run_dir, progress, verbose):
    from fastfc import Solver
    from fastfc.augment import parse_augment

    iterations = max(len(data["X_train"]) // settings["batch_size"], 1)
    return Solver(
        net, data, update_rule=settings["update_rule"],
        optim_config={"learning_rate": settings["lr"]}, lr_decay=settings["lr_decay"],
        batch_size=settings["batch_size"], num_epochs=settings["epochs"],
        print_every=settings["print_every"] or iterations, verbose=verbose,
        progress=progress, schedule=settings["schedule"],
        time_budget=settings["time_budget"], shuffle=settings["shuffle"],
        augment=parse_augment(settings["augment"], image_shape, seed=settings["seed"]),
        checkpoint_path=os.path.join(run_dir, "solver.npz"),
        checkpoint_every=settings["checkpoint_every"])


def _accuracy(net, X, y, batch_size=1000):
    return float(np.mean(net.predict(X, batch_size=batch_size) == y)) if len(y) else float("nan")


def _versions():
    import scipy

    out = {"fastfc": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "python": platform.python_version(), "machine": platform.machine()}
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture",
                                               "num_threads")}
                       for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # pragma: no cover - informative only
        pass
    return out


def _write_json(path, obj):
    from fastfc.checkpoint import atomic_write

    text = json.dumps(obj, indent=2, default=float).encode("utf-8")
    atomic_write(path, lambda f: f.write(text))


def _threads(settings):
    if settings["threads"] is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(settings["threads"])


def _say(args, msg):
    if not args.quiet:
        print(msg, flush=True)


def cmd_train(args):
    """Train a net; writes the run directory; prints the final accuracies."""
    t_start = time.perf_counter()
    if args.resume:
        run_dir = args.resume
        config_path = os.path.join(run_dir, "config.json")
        if not os.path.exists(config_path):
            raise ValueError(f"--resume {run_dir}: no config.json there (not a run directory)")
        with open(config_path) as f:
            settings = json.load(f)
    else:
        settings = resolve_settings(args)
        run_dir = args.out or os.path.join(
            "runs", f"{settings['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(run_dir, exist_ok=True)
        _write_json(os.path.join(run_dir, "config.json"), settings)

    with _threads(settings):
        t0 = time.perf_counter()
        data, image_shape = load_data(settings)
        t_load = time.perf_counter() - t0
        _say(args, f"data: {settings['dataset']}, {len(data['y_train'])} train / "
                   f"{len(data['y_val'])} val / {len(data['y_test'])} test images, "
                   f"loaded in {t_load:.2f} s")
        np.random.seed(settings["seed"])
        net = _build_net(settings, data)
        _say(args, f"model: {net!r}")
        progress = None if not args.no_progress and not args.quiet else False
        solver = _build_solver(settings, net, data, image_shape, run_dir, progress,
                               verbose=not args.quiet)
        if args.resume:
            checkpoint = os.path.join(run_dir, "solver.npz")
            if not os.path.exists(checkpoint):
                raise ValueError(f"--resume {run_dir}: no solver.npz there yet (the run "
                                 "stopped before its first checkpoint)")
            solver.resume(checkpoint)
            _say(args, f"resumed at epoch {solver.epoch} from {checkpoint}")
        t0 = time.perf_counter()
        solver.train()
        t_train = time.perf_counter() - t0
        solver.save(os.path.join(run_dir, "solver.npz"))

        t0 = time.perf_counter()
        accuracies = {
            "train": _accuracy(net, data["X_train"][:10000], data["y_train"][:10000]),
            "val": _accuracy(net, data["X_val"], data["y_val"]),
            "test": _accuracy(net, data["X_test"], data["y_test"]),
        }
        t_eval = time.perf_counter() - t0

    model_path = net.save(os.path.join(run_dir, "model.npz"), settings=settings,
                          test_accuracy=accuracies["test"])
    pictures = {}
    try:
        from fastfc.vis_utils import plot_history, show_net_weights
        pictures["history"] = plot_history(solver, os.path.join(run_dir, "history.png"))
        pictures["weights"] = show_net_weights(net, os.path.join(run_dir, "weights.png"),
                                               image_shape=image_shape)
    except ImportError as exc:
        _say(args, f"pictures skipped: {exc}")
    t_total = time.perf_counter() - t_start
    metrics = {
        "dataset": settings["dataset"],
        "final_accuracy": accuracies,
        "train_accuracy_samples": int(min(10000, len(data["y_train"]))),
        "test_images": int(len(data["y_test"])),
        "val_images": int(len(data["y_val"])),
        "best_val_acc": float(solver.best_val_acc),
        "epochs": int(solver.epoch),
        "iterations": len(solver.loss_history),
        "stopped_early": bool(solver.stopped_early),
        "interrupted": bool(solver.interrupted),
        "timings": {"load_s": t_load, "train_s": t_train, "eval_s": t_eval,
                    "total_s": t_total},
        "history": {"loss": [float(v) for v in solver.loss_history],
                    "train_acc": [float(v) for v in solver.train_acc_history],
                    "val_acc": [float(v) for v in solver.val_acc_history]},
        "config": settings,
        "versions": _versions(),
        "files": {"model": model_path, **pictures},
    }
    _write_json(os.path.join(run_dir, "metrics.json"), metrics)
    print(f"train acc {accuracies['train']:.4f}  val acc {accuracies['val']:.4f}  "
          f"test acc {accuracies['test']:.4f} ({len(data['y_test'])} images)  "
          f"epochs {solver.epoch}  wall {t_total:.1f} s  -> {run_dir}")
    return 130 if solver.interrupted else 0


# ------------------------------------------------------------------ evaluate

def evaluate_arguments(parser):
    parser.add_argument("checkpoint", help="a model file (RUN/model.npz) or a run directory")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--data", metavar="DIR", help="CIFAR-10 directory (default: as trained)")
    parser.add_argument("--num-test", type=int, help="test images (cifar10: up to 10000)")


def cmd_evaluate(args):
    """Accuracy of a saved model on a split of the data set it was trained on."""
    from fastfc import Net

    path = args.checkpoint
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    net = Net.load(path)
    settings = dict(DEFAULTS)
    settings.update(net.metadata.get("settings", {}))
    if args.data:
        settings["data"] = args.data
    if args.num_test is not None:
        settings["num_test"] = args.num_test
    data, _ = load_data(settings)
    X, y = data[f"X_{args.split}"], data[f"y_{args.split}"]
    acc = _accuracy(net, X, y)
    print(f"{settings['dataset']} {args.split}: accuracy {acc:.4f} on {len(y)} images")
    return 0


# ------------------------------------------------------------------ gradcheck

def gradcheck_arguments(parser):
    parser.add_argument("--hidden", default="7,5", metavar="H1,H2,...")
    parser.add_argument("--activation", default="relu",
                        choices=["relu", "leaky_relu", "sigmoid", "tanh", "swish"])
    parser.add_argument("--normalization", default="none",
                        choices=["none", "batchnorm", "layernorm"])
    parser.add_argument("--dropout-keep", type=float, default=1.0)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--input-dim", type=int, default=6)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)


def cmd_gradcheck(args):
    """GradientCheck of a small random Net; prints the table; fails above 1e-5."""
    from fastfc import GradientCheck, Net

    rng = np.random.default_rng(args.seed)
    dims = [args.input_dim] + _int_list(args.hidden) + [args.classes]
    net = Net(dims, activation=args.activation,
              normalization=None if args.normalization == "none" else args.normalization,
              dropout_keep_ratio=args.dropout_keep, reg=args.reg, seed=args.seed,
              dtype=np.float64)
    X = rng.standard_normal((args.batch, args.input_dim))
    y = rng.integers(0, args.classes, size=args.batch)
    print(f"GradientCheck of {net!r} on {args.batch} random samples (float64)")
    errors = GradientCheck(net, verbose=True).run(X, y)
    worst = max(errors.values())
    print(f"largest relative error {worst:.2e}: {'OK' if worst < 1e-5 else 'TOO LARGE'}")
    return 0 if worst < 1e-5 else 1
