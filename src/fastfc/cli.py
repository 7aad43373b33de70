"""The ``fastfc`` command line.

    fastfc train         train a net, write a run directory (fastfc._cli_train)
    fastfc evaluate      accuracy of a saved model on a data split
    fastfc export        write a saved model as an ONNX graph
    fastfc gradcheck     numerical gradient check of a small random net
    fastfc sweep         hyper-parameter sweep (fastfc.sweep)
    fastfc bench         the benchmark harness of the source tree this fastfc runs from
    fastfc info [--json] version, build flags, BLAS and threads (for bug reports)
    fastfc --version     print the version

Every option is named after the API keyword it sets (``--learning-rate``,
``--num-epochs``, ``--hidden-dims``, ...); the shorter spellings of earlier versions
are kept as aliases.

Each subcommand is a pair of functions, one that declares its options on an argparse
parser and one that runs it from the parsed arguments and returns the exit status,
registered as a row of ``COMMANDS``; :func:`main` knows no command by name.

Bad arguments -- from the parser, or found by a command (``_cli_train.BadOption``:
a value out of range, a bad run directory or config.json) -- print one line to stderr
naming the option and exit with status 2; an error while a command runs prints one
line and exits with status 1 (``--traceback`` shows the full traceback instead).
Ctrl-C exits with status 130.
"""
import argparse
import json
import os
import sys
from typing import Callable, NamedTuple, NoReturn, Optional, Sequence

from fastfc import _cli_train as _train
from fastfc._config import __version__, show_config

PROG = "fastfc"


class Command(NamedTuple):
    """One subcommand: its name, one-line help, option declarations and runner."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad command line (argparse's complaint, as one line)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(" ".join(str(message).split()))


# ------------------------------------------------------------------------------ info

def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the information as JSON instead of a readable block")


def cmd_info(args: argparse.Namespace) -> int:
    """Print fastfc.show_config(): paste the output into a bug report."""
    if args.json:
        print(json.dumps(show_config(mode="dicts"), indent=2, default=str))
    else:
        show_config()
    return 0


# ----------------------------------------------------------------- the command table

def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    from fastfc import sweep
    sweep.add_cli_arguments(parser)


def _sweep_run(args: argparse.Namespace) -> int:
    from fastfc import sweep
    return sweep.cli_main(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "fastfc bench [-h] [HARNESS OPTION ...]"
    parser.description = (
        "Measure fastfc against NumPy, PyTorch and scikit-learn with the benchmark "
        "harness of the source tree this fastfc runs from (bench/, not part of an "
        "installed wheel).  Every option after 'bench' goes to the harness unchanged.")
    parser.epilog = (
        "examples: 'fastfc bench --quick' (under 2 minutes), 'fastfc bench' (the full "
        "run, about 6 minutes, writes bench/RESULTS.md), 'fastfc bench -- --help' (the "
        "harness's own options, as 'python -m bench --help')")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="HARNESS OPTION",
                        help="an option of the harness, e.g. --quick, --workloads W1,W6, "
                             "--rounds 3")


#: the folder of this package; ``fastfc bench`` looks for the harness beside it
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: how to run the harness without a source tree
_BENCH_ELSEWHERE = (
    "the benchmark harness (bench/) is part of the source tree, not of the installed "
    "package, and this fastfc was not imported from a source tree; run it from a "
    "checkout: git clone https://github.com/fastfc/fastfc && cd fastfc && "
    "python setup.py build_ext --inplace && PYTHONPATH=src:. python -m bench")


def source_tree(package_dir: Optional[str] = None) -> Optional[str]:
    """The root of the source tree fastfc was imported from, or None.

    That is the case only when the package folder is ``ROOT/src/fastfc`` and
    ``ROOT/bench`` is a package with a ``__main__.py``; an installed fastfc (in
    site-packages) has no such neighbour.  The working directory plays no part.
    """
    package = os.path.realpath(package_dir or _PACKAGE_DIR)
    src = os.path.dirname(package)
    if os.path.basename(package) != "fastfc" or os.path.basename(src) != "src":
        return None
    root = os.path.dirname(src)
    harness = os.path.join(root, "bench")
    if not all(os.path.isfile(os.path.join(harness, name))
               for name in ("__init__.py", "__main__.py")):
        return None
    return root


def _is_inside(path: Optional[str], folder: str) -> bool:
    if not path:
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _bench_run(args: argparse.Namespace) -> int:
    """Run ``bench.__main__.main`` of the source tree fastfc came from (the harness is
    not in the wheel); never a ``bench`` of the working directory."""
    import importlib

    root = source_tree()
    if root is None:
        raise _train.BadOption(_BENCH_ELSEWHERE)
    harness = os.path.join(root, "bench")
    loaded = sys.modules.get("bench")
    if loaded is not None and not _is_inside(getattr(loaded, "__file__", None), harness):
        raise RuntimeError(f"another module named 'bench' is already imported "
                           f"({getattr(loaded, '__file__', None)}), not {harness}")
    sys.path.insert(0, root)
    try:
        module = importlib.import_module("bench.__main__")
        if not _is_inside(module.__file__, harness):  # pragma: no cover - defensive
            raise RuntimeError(f"bench was imported from {module.__file__}, not {harness}")
        return module.main(args.bench_args)
    finally:
        if root in sys.path:
            sys.path.remove(root)


# ------------------------------------------------------------------------------ export

EXPORT_FORMATS = ("onnx",)


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR",
                        help="a run directory of 'fastfc train' (its model.npz is read) "
                             "or a model file")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                        help="file format (default onnx)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="file to write (default: model.onnx beside the model file)")
    parser.add_argument("--outputs", default=None, metavar="NAMES",
                        help="comma-separated graph outputs among scores, probabilities, "
                             "label (default: scores,probabilities,label for a "
                             "classifier, scores for an mse net)")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset (default: fastfc.onnx.DEFAULT_OPSET)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="float type of the graph (default: the model's)")
    parser.add_argument("--fold-batchnorm", action="store_true",
                        help="fold batch norm into the preceding Gemm")


def cmd_export(args: argparse.Namespace) -> int:
    """Write a saved model's inference pass in another format (ONNX)."""
    from fastfc import Net
    from fastfc import onnx as fonnx

    path = args.run
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    if not os.path.isfile(path):
        raise _train.BadOption(f"RUN_DIR: no model file at {path!r} (give a run directory "
                               "of 'fastfc train' or a model.npz)")
    net = Net.load(path)
    if args.outputs is None:
        outputs: Sequence[str] = (("scores",) if net.loss_name == "mse"
                                  else ("scores", "probabilities", "label"))
    else:
        outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
        bad = [o for o in outputs if o not in fonnx.OUTPUTS]
        if bad or not outputs:
            raise _train.BadOption(f"--outputs must name some of {', '.join(fonnx.OUTPUTS)}, "
                                   f"got {args.outputs!r}")
    if args.opset is not None and args.opset < fonnx.MIN_OPSET:
        raise _train.BadOption(f"--opset must be >= {fonnx.MIN_OPSET}, got {args.opset}")
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(path)), "model.onnx")
    fonnx.export_onnx(net, out, outputs=tuple(outputs), opset=args.opset, dtype=args.dtype,
                      fold_batchnorm=args.fold_batchnorm)
    settings = net.metadata.get("settings", {}) if isinstance(net.metadata, dict) else {}
    print(f"wrote {out}: {net!r} as ONNX (outputs {', '.join(outputs)})")
    preprocess = settings.get("preprocess") if isinstance(settings, dict) else None
    if preprocess:
        print(f"note: the graph takes inputs prepared as in training (--preprocess "
              f"{preprocess}), flattened to {net.layer_dims[0]} features")
    return 0


COMMANDS = (
    Command("train", "train a net and write a run directory (metrics, model, pictures)",
            _train.train_arguments, _train.cmd_train),
    Command("evaluate", "accuracy of a saved model on a data split",
            _train.evaluate_arguments, _train.cmd_evaluate),
    Command("export", "write a saved model as an ONNX graph (for serving outside fastfc)",
            _export_arguments, cmd_export),
    Command("gradcheck", "check the gradients of a small random net numerically",
            _train.gradcheck_arguments, _train.cmd_gradcheck),
    Command("sweep", "hyper-parameter sweep on local processes or a Dask cluster",
            _sweep_arguments, _sweep_run),
    Command("bench", "measure fastfc against NumPy, PyTorch and scikit-learn (source tree)",
            _bench_arguments, _bench_run),
    Command("info", "show version, build flags, BLAS and threads (paste into a bug report)",
            _info_arguments, cmd_info),
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per row of COMMANDS."""
    parser = _Parser(
        prog=PROG,
        description="Fully-connected neural networks on typed Cython kernels over BLAS.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, show the full Python traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=_Parser)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _split_bench(argv: list[str]) -> tuple[list[str], Optional[list[str]]]:
    """(argv, options for the harness): everything after ``bench`` goes to the harness
    untouched (argparse's REMAINDER does not take a leading ``--quick``), except a lone
    ``-h`` / ``--help``, which shows this command's help."""
    if "bench" not in argv:
        return argv, None
    i = argv.index("bench")
    if any(a != "--traceback" for a in argv[:i]) or argv[i + 1:] in (["-h"], ["--help"]):
        return argv, None
    rest = argv[i + 1:]
    return argv[:i + 1], rest[1:] if rest[:1] == ["--"] else rest


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    names = ", ".join(c.name for c in COMMANDS)
    argv, passed_on = _split_bench(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
        if passed_on is not None:
            args.bench_args = passed_on
    except UsageError as exc:
        return _fail(f"{exc} (see '{PROG} --help')", 2)
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        return _fail(f"a command is required (one of: {names}); see '{PROG} --help'", 2)
    try:
        return int(args._run(args) or 0)
    except _train.BadOption as exc:
        if args.traceback:
            raise
        return _fail(" ".join(str(exc).split()), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # `fastfc info | head`: stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if args.traceback:
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return _fail(f"{args.command}: {type(exc).__name__}: {detail}", 1)


if __name__ == "__main__":
    sys.exit(main())
