"""fastfc: fully-connected neural networks on typed Cython kernels over BLAS.

A drop-in replacement for the CS231n fully-connected-net code base: change
``cs231n.`` to ``fastfc.`` in an import and the same calls give the same numbers.
``Net`` is the fast model (one compiled call per training step), ``Solver`` trains
either kind.

Importing fastfc sets no environment variable, starts no thread and loads no library
itself; fastfc's thread pool is set up by the first Net (see :func:`threads`).
"""
from fastfc._config import __version__
from fastfc._config import show_config
from fastfc._threads import get_num_threads, set_num_threads, threads
from fastfc._gemm import compute_dtype, get_gemm_backend, set_compute_dtype, set_gemm_backend
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
