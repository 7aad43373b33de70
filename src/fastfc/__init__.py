"""fastfc: fully-connected neural networks on typed Cython kernels over BLAS.

A drop-in replacement for the CS231n fully-connected-net code base: change
``cs231n.`` to ``fastfc.`` in an import and the same calls give the same numbers.
``Net`` is the fast model (one compiled call per training step), ``Solver`` trains
either kind.

Importing fastfc sets no environment variable, starts no thread and loads no library
itself; fastfc's thread pool is set up by the first Net (see :func:`threads`).

The other public submodules (``fastfc.vis_utils``, ``fastfc.augment``, ``fastfc.sweep``,
``fastfc.sklearn``, ...) are imported on first attribute access (PEP 562), so
``import fastfc`` stays cheap and imports no optional dependency, while
``fastfc.vis_utils.plot_history(...)`` works without a separate import.
"""
import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from fastfc._config import __version__
from fastfc._config import show_config
from fastfc._threads import get_num_threads, set_num_threads, threads
from fastfc._gemm import (compute_dtype, get_bf16_gemm, get_gemm_backend, set_bf16_gemm,
                          set_compute_dtype, set_gemm_backend)
from fastfc import layers, layer_utils, optim, gradient_check
from fastfc.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastfc.gradient_check import GradientCheck, rel_error
from fastfc.net import Net
from fastfc.solver import Solver, TrainingDiverged

__all__ = [
    "__version__",
    "show_config",
    "get_num_threads",
    "set_num_threads",
    "threads",
    "set_gemm_backend",
    "get_gemm_backend",
    "set_compute_dtype",
    "compute_dtype",
    "set_bf16_gemm",
    "get_bf16_gemm",
    "Net",
    "Solver",
    "TrainingDiverged",
    "FullyConnectedNet",
    "TwoLayerNet",
    "GradientCheck",
    "rel_error",
    "layers",
    "layer_utils",
    "optim",
    "gradient_check",
]

#: public submodules not imported by ``import fastfc``; ``fastfc.<name>`` imports one
#: on first use (those imported above are plain attributes already)
_LAZY_SUBMODULES = (
    "augment",
    "checkpoint",
    "classifiers",
    "cli",
    "data_utils",
    "net",
    "nndl",
    "onnx",
    "schedules",
    "sklearn",
    "solver",
    "sweep",
    "vis_utils",
)

if _TYPE_CHECKING:  # let type checkers see the lazily imported submodules
    from fastfc import (augment, checkpoint, classifiers, cli, data_utils,  # noqa: F401
                        nndl, onnx, schedules, sklearn, sweep, vis_utils)


def __getattr__(name: str) -> object:
    """Import the public submodule ``fastfc.<name>`` on first access (PEP 562).

    Parameters
    ----------
    name : str
        The attribute asked for.

    Returns
    -------
    module
        The submodule, which the import also binds as an attribute of the package, so
        this function runs once per submodule.

    Raises
    ------
    AttributeError
        When ``name`` is not a public submodule of fastfc.
    """
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The package's attributes, including the submodules not imported yet."""
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))

