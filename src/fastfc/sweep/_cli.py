"""``fastfc sweep``: the command line, the final table and the pictures."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable, Optional, Sequence

import numpy as np

from fastfc._defaults import FRONTEND_DEFAULTS
from fastfc.sweep._space import LOG_SCALE, ROUTES, _is_number, parse_setting, parse_space
from fastfc.sweep._study import PRUNERS, SEARCHES


def _load_data(spec: Optional[str]) -> dict[str, Any]:
    """The data of ``--data``: 'digits' (fastfc's embedded split), or an .npz file of
    the Solver's arrays."""
    if spec in (None, "digits"):
        from fastfc.data_utils import load_default_data
        return load_default_data(dtype=np.float32)
    if not os.path.isfile(spec):
        what = "not a regular file" if os.path.exists(spec) else "no such file"
        raise ValueError(f"--data {spec!r}: {what} (give 'digits' or an .npz file "
                         "with X_train, y_train, X_val, y_val)")
    try:
        with np.load(spec, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("it holds one array, not named arrays")
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"--data {spec!r} is not a usable .npz file of X_train, y_train, "
                         f"X_val, y_val: {exc}") from None


def _read_space(text: str) -> dict[str, Any]:
    """The space of ``--space``: inline JSON (starting with '{') or a JSON file."""
    where = "--space"
    if not text.lstrip().startswith("{"):
        where = f"--space {text!r}"
        if not os.path.isfile(text):  # a device such as /dev/zero would never end
            what = "not a regular file" if os.path.exists(text) else "no such file"
            raise ValueError(f"--space {text!r}: {what} (give a JSON file or an inline "
                             "JSON object)")
        try:
            with open(text, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--space {text!r} cannot be read: {exc}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where}: not valid JSON: {exc}") from None
    return parse_space(obj)


def _cli_int(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= low, with a message naming the expectation."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = what
    return parse


def _cli_setting(item: str) -> tuple[str, Any]:
    """An argparse type for ``--set NAME=VALUE``: (name, value parsed for that name)."""
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {item!r}")
    if name not in ROUTES:
        raise argparse.ArgumentTypeError(
            f"unknown setting {name!r} (one of {', '.join(sorted(ROUTES))})")
    try:
        return name, parse_setting(name, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _update_rules() -> list[str]:
    from fastfc._registry import UPDATE_RULES
    return sorted(UPDATE_RULES)


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``fastfc sweep`` to an argparse parser."""
    positive = _cli_int(1, "a positive integer")
    parser.add_argument("--space", required=True,
                        help="JSON file (or inline JSON object) of setting -> list of values "
                             "or {\"loguniform\": [low, high]} and the like")
    parser.add_argument("--data", default="digits",
                        help="'digits' (the embedded default) or an .npz file with X_train, "
                             "y_train, X_val, y_val")
    parser.add_argument("--search", choices=SEARCHES, default="grid",
                        help="grid (every point, in order), random, tpe or cmaes (Optuna's "
                             "samplers, seeded by --seed)")
    parser.add_argument("--n-trials", type=positive, default=None,
                        help="trials the study should hold (random, tpe, cmaes); the first "
                             "n grid points (grid)")
    parser.add_argument("--prune", choices=PRUNERS, default=None,
                        help="stop hopeless trials after an epoch: median, asha (successive "
                             "halving) or hyperband (default: no pruning)")
    parser.add_argument("--backend", choices=("local", "dask"), default="local")
    parser.add_argument("--n-jobs", type=positive, default=None,
                        help="worker processes (default: one per core)")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address (default: a LocalCluster on 127.0.0.1)")
    parser.add_argument("--storage", default=None,
                        help="the Optuna study's storage: a journal file or a storage URL "
                             "such as sqlite:///sweep.db (default: the --results file with "
                             ".journal); the same command again resumes the study")
    parser.add_argument("--study-name", default=None,
                        help="the study's name in the storage (default fastfc-sweep)")
    parser.add_argument("--results", default="sweep.jsonl",
                        help="summary of the trials for pandas: JSON lines, or CSV when it "
                             "ends with .csv; '' writes none")
    parser.add_argument("--seed", type=_cli_int(0, "a non-negative integer"), default=0,
                        help="seed of the sampler (a fixed seed of the trials: "
                             "--set seed=N)")
    parser.add_argument("--num-epochs", "--epochs", dest="num_epochs", type=positive,
                        default=None, metavar="N",
                        help="passes over the training set in every trial (same as "
                             "--set num_epochs=N)")
    parser.add_argument("--batch-size", type=positive, default=None,
                        help=f"default {FRONTEND_DEFAULTS['batch_size']}")
    parser.add_argument("--update-rule", choices=_update_rules(), default=None,
                        help=f"default {FRONTEND_DEFAULTS['update_rule']} at learning rate "
                             f"{FRONTEND_DEFAULTS['learning_rate']:g}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        type=_cli_setting,
                        help="a fixed setting, VALUE read for the setting's type (numbers, "
                             "strings, none, true/false, hidden_dims as 100,50 or [100,50]); "
                             "repeatable")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run again the trials recorded as failed or diverged")
    parser.add_argument("--plot", default=None,
                        help="PNG of val accuracy against each swept setting (default: the "
                             "results file with .png); Optuna's optimisation history, "
                             "parameter importances and parallel coordinates go beside it "
                             "as -history.png, -importances.png, -parallel.png (needs "
                             "matplotlib)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--top", type=positive, default=20, help="rows of the final table")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _fixed_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The fixed settings of the command line, as a dict (ValueError on a clash)."""
    fixed: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for flag, name, value in (("--num-epochs", "num_epochs", args.num_epochs),
                              ("--batch-size", "batch_size", args.batch_size),
                              ("--update-rule", "update_rule", args.update_rule)):
        if value is not None:
            fixed[name] = value
            flags[name] = flag
    for item in args.set:
        name, value = item if isinstance(item, tuple) else _cli_setting(item)
        if name in flags:
            raise ValueError(f"{name} is given both by {flags[name]} and by --set")
        if name in fixed and fixed[name] != value:
            raise ValueError(f"--set gives {name} twice ({fixed[name]!r} and {value!r})")
        fixed[name] = value
        flags[name] = "--set"
    return fixed


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def format_table(trials: Sequence[dict[str, Any]], names: Sequence[str],
                 top: Optional[int] = None) -> str:
    """The final table of a sweep as text: rank, accuracies, loss, time, worker, settings."""
    head = ["#", "trial", "status", "val_acc", "epochs", "train_acc", "loss", "time_s",
            "worker", *names]
    rows = []
    for i, t in enumerate(trials[:top] if top else trials, 1):
        def num(v: Any, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)
        rows.append([str(i), str(t.get("number", "-")), t["status"],
                     num(t.get("best_val_acc"), ".4f"), num(t.get("epochs"), "d"),
                     num(t.get("final_train_acc"), ".4f"), num(t.get("loss_last"), ".4f"),
                     num(t.get("wall_time"), ".2f"), str(t.get("worker") or "-")[-24:],
                     *[_short(t["config"].get(n)) for n in names]])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    failed = [t for t in trials if t["status"] not in ("ok", "pruned")]
    for t in failed[:5]:
        lines.append(f"{t['status']} trial {t.get('number')}: {t.get('error')}")
    return "\n".join(lines)


def _log_ticks(ax: Any, values: Sequence[float]) -> None:
    """A log x axis whose tick labels cannot collide.

    Over two decades or more: labels at powers of ten only (matplotlib's default
    also labels minor ticks when few decades show, ``3x10^-4`` beside ``4x10^-4``, and
    they overlap).  Below two decades: ticks at 1, 2 and 5 times a power of ten inside
    the values' range, or when fewer than two fall there, at the smallest, the
    geometric middle and the largest value; labels in a compact form (``2e-4``).
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    low, high = min(values), max(values)
    if math.log10(high / low) < 2:
        ticks = [m * 10.0 ** k
                 for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for m in (1, 2, 5) if low <= m * 10.0 ** k <= high]
        if len(ticks) < 2:
            ticks = sorted({float(f"{v:.2g}") for v in (low, math.sqrt(low * high), high)})
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(_compact_number))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _compact_number(value: float, _pos: Any = None) -> str:
    """A short label for a log axis: ``2e-4`` for 0.0002, ``4.6e-3`` for 0.0046."""
    mantissa, exponent = f"{value:.1e}".split("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    return f"{mantissa}e{int(exponent)}"


def _sorted_labels(values: Sequence[Any]) -> list[Any]:
    """The distinct values of a categorical axis, in their natural order when they
    compare (``[32] < [64] < [128]``), else as text."""
    distinct = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    try:
        distinct.sort()
    except TypeError:
        distinct.sort(key=_short)
    labels = []
    for v in distinct:
        if _short(v) not in labels:
            labels.append(_short(v))
    return labels


def _sweep_figure(trials: Sequence[dict[str, Any]], names: Sequence[str]) -> Any:
    """The matplotlib Figure of :func:`plot_sweep`, or None (no matplotlib, nothing ok)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    ok = [t for t in trials if t["status"] == "ok" and t.get("best_val_acc") is not None]
    if not ok or not names:
        return None
    fig = Figure(figsize=(4 * len(names), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    acc = [t["best_val_acc"] for t in ok]
    for ax, name in zip(axes, names):
        values = [t["config"].get(name) for t in ok]
        if all(_is_number(v) for v in values):
            ax.scatter(values, acc, alpha=0.8)
            positive = all(v > 0 for v in values)
            if positive and (name in LOG_SCALE or max(values) / min(values) >= 100):
                _log_ticks(ax, values)
        else:
            labels = _sorted_labels(values)
            pos = [labels.index(_short(v)) for v in values]
            ax.scatter(pos, acc, alpha=0.8)
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_xlabel(name)
        ax.set_ylabel("best val accuracy")
        ax.grid(alpha=0.3)
    return fig


def plot_sweep(trials: Sequence[dict[str, Any]], names: Sequence[str],
               path: str) -> Optional[str]:
    """PNG of best val accuracy against each swept setting (a log axis for learning_rate,
    reg, weight_scale and for values spanning two decades or more); returns the path,
    or None without matplotlib or without a successful trial."""
    fig = _sweep_figure(trials, names)
    if fig is None:
        return None
    fig.savefig(path, dpi=100)
    return path


def plot_study(study: Any, stem: str) -> list[str]:
    """PNGs of Optuna's optimisation history, parameter importances and parallel
    coordinates (its matplotlib visualisation): ``<stem>-history.png``,
    ``<stem>-importances.png``, ``<stem>-parallel.png``.  Returns the paths written; a
    picture Optuna cannot draw (too few finished trials, one parameter...) is skipped
    with a line on stderr."""
    import warnings

    try:
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        return []
    written: list[str] = []
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return written
    for suffix, draw in (("history", ovm.plot_optimization_history),
                         ("importances", ovm.plot_param_importances),
                         ("parallel", ovm.plot_parallel_coordinate)):
        path = f"{stem}-{suffix}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's "experimental" notices
                ax = draw(study, target_name="best val accuracy")
            fig: Any = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
        except Exception as exc:  # noqa: BLE001 - a picture is not worth failing the run
            print(f"no {suffix} plot: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written


def cli_main(args: argparse.Namespace) -> int:
    """Run ``fastfc sweep`` from parsed arguments (see :func:`add_cli_arguments`);
    returns the exit status: 0 when at least one trial succeeded."""
    from fastfc.sweep._study import check_results_path
    from fastfc.sweep._sweep import sweep
    space = _read_space(args.space)
    fixed = _fixed_from_args(args)
    results = args.results or None
    if results is not None:
        check_results_path(results)
    plot = None
    if not args.no_plot:
        plot = args.plot
        if plot is None:
            plot = os.path.splitext(results if results else "sweep")[0] + ".png"
        folder = os.path.dirname(os.path.abspath(plot))
        if not os.path.isdir(folder):
            raise ValueError(f"--plot {plot!r}: the folder {folder!r} does not exist")
    data = _load_data(args.data)
    progress: Any = None
    if not args.no_progress:
        bar = sys.stderr.isatty() and _tqdm_available()
        if bar:
            progress = True
        else:
            def progress(record: dict[str, Any], n_done: int, n_total: int) -> None:
                acc = record.get("best_val_acc")
                acc = "-" if acc is None else f"{acc:.4f}"
                settings = " ".join(f"{k}={_short(record['config'].get(k))}" for k in space)
                print(f"[{n_done}/{n_total}] {record['status']:6s} val_acc {acc}  "
                      f"epochs {record.get('epochs')}  {settings}", flush=True)
    study, temporary = _open_cli_study(args, results)
    try:
        trials, _ = sweep(space, data, n_trials=args.n_trials, search=args.search,
                          prune=args.prune, backend=args.backend, n_jobs=args.n_jobs,
                          scheduler=args.scheduler, study=study, results=results,
                          seed=args.seed, retry_failed=args.retry_failed,
                          progress=progress, return_model=False, verbose=True,
                          fixed=fixed)
        names = list(space)
        print(format_table(trials, names, top=args.top))
        if plot is not None:
            if plot_sweep(trials, names, plot):
                print(f"plot: {plot}")
            for path in plot_study(study, os.path.splitext(plot)[0]):
                print(f"plot: {path}")
    finally:
        if temporary is not None:
            os.remove(temporary)
    return 0 if any(t["status"] == "ok" for t in trials) else 1


def _open_cli_study(args: argparse.Namespace, results: Optional[str]
                    ) -> tuple[Any, Optional[str]]:
    """The command's study, opened here so that its pictures can be drawn afterwards:
    ``--storage`` (default: the results file with .journal) and ``--study-name``.
    Without either file the study is kept in memory (one worker) or in a temporary
    journal removed at the end; returns ``(study, temporary journal or None)``."""
    from fastfc.sweep import _study
    _study.import_optuna()
    default = os.path.splitext(results)[0] + ".journal" if results else None
    storage = args.storage or None
    temporary = None
    if storage is None and default is None and (args.backend == "dask" or args.n_jobs != 1):
        import tempfile
        fd, temporary = tempfile.mkstemp(prefix="fastfc-study-", suffix=".journal")
        os.close(fd)
        default = temporary
    try:
        store, _, journal = _study.resolve_storage(storage, default)
        # no pruning unless --prune says so (Optuna's default would be the median pruner)
        study = _study.open_study(store, args.study_name or _study.DEFAULT_STUDY_NAME,
                                  None, _study.make_pruner(None, 1), journal)
    except BaseException:
        if temporary is not None:
            os.remove(temporary)
        raise
    return study, temporary


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fastfc.sweep`` (the same as ``fastfc sweep``)."""
    parser = argparse.ArgumentParser(prog="fastfc sweep",
                                     description="hyper-parameter sweep of fastfc.Net on "
                                                 "Optuna")
    add_cli_arguments(parser)
    return cli_main(parser.parse_args(argv))
