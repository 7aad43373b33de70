"""The ``fastfc`` command line.

    fastfc --version        print the version
    fastfc info [--json]    version, build flags, BLAS and threads (for bug reports)

Each subcommand is a pair of functions, ``_<name>_arguments(parser)`` that declares
its options and ``cmd_<name>(args) -> int`` that runs it, registered in ``COMMANDS``.
Adding ``train``, ``evaluate``, ``gradcheck``, ``sweep`` or ``bench`` is one more pair
and one more row in that table; :func:`main` needs no change.

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
from typing import Callable, NamedTuple, Optional, Sequence

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

    def error(self, message):
        raise UsageError(" ".join(str(message).split()))


# ------------------------------------------------------------------------------ info

def _info_arguments(parser):
    parser.add_argument("--json", action="store_true",
                        help="print the information as JSON instead of a readable block")


def cmd_info(args):
    """Print fastfc.show_config(): paste the output into a bug report."""
    if args.json:
        print(json.dumps(show_config(mode="dicts"), indent=2, default=str))
    else:
        show_config()
    return 0


# ----------------------------------------------------------------- the command table

def _sweep_arguments(parser):
    from fastfc import sweep
    sweep.add_cli_arguments(parser)


def _sweep_run(args):
    from fastfc import sweep
    return sweep.cli_main(args)


def _bench_arguments(parser):
    parser.add_argument("bench_args", nargs=argparse.REMAINDER,
                        help="options of the benchmark (python -m bench --help), "
                             "e.g. --quick")


def _bench_run(args):
    """Run the benchmark harness of the source tree (bench/ is not part of the wheel)."""
    sys.path.insert(0, os.getcwd())
    try:
        from bench.__main__ import main as bench_main
    except ImportError:
        raise RuntimeError("fastfc bench runs from the project's source tree (its bench/ "
                           "folder is not installed); cd there first") from None
    return bench_main(args.bench_args)


COMMANDS = (
    Command("train", "train a net and write a run directory (metrics, model, pictures)",
            _train.train_arguments, _train.cmd_train),
    Command("evaluate", "accuracy of a saved model on a data split",
            _train.evaluate_arguments, _train.cmd_evaluate),
    Command("gradcheck", "check the gradients of a small random net numerically",
            _train.gradcheck_arguments, _train.cmd_gradcheck),
    Command("sweep", "hyper-parameter sweep on local processes or a Dask cluster",
            _sweep_arguments, _sweep_run),
    Command("bench", "measure fastfc against NumPy, PyTorch and scikit-learn (source tree)",
            _bench_arguments, _bench_run),
    Command("info", "show version, build flags, BLAS and threads (paste into a bug report)",
            _info_arguments, cmd_info),
)


def build_parser():
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


def _fail(message, status):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    names = ", ".join(c.name for c in COMMANDS)
    try:
        args = parser.parse_args(argv)
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
