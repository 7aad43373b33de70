"""fastfc: fully-connected neural networks on typed Cython kernels over BLAS.

A drop-in replacement for the CS231n fully-connected-net code base: change
``cs231n.`` to ``fastfc.`` in an import and the same calls give the same numbers.
``Net`` is the fast model (one compiled call per training step), ``Solver`` trains
either kind.
"""
from fastfc import _openblas

_openblas.configure()   # before anything loads SciPy's BLAS; see fastfc/_openblas.py

from fastfc._config import __version__  # noqa: E402
from fastfc._config import show_config  # noqa: E402
from fastfc import layers, layer_utils, optim, gradient_check
from fastfc.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastfc.gradient_check import GradientCheck, rel_error
from fastfc.net import Net
from fastfc.solver import Solver, TrainingDiverged

_openblas.connect_thread_control()   # fastfc's own threads in a Net step

__all__ = [
    "__version__",
    "show_config",
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
