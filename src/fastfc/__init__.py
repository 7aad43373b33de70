"""fastfc: fully-connected neural networks on typed Cython kernels over BLAS.

A drop-in replacement for the CS231n fully-connected-net code base: change
``cs231n.`` to ``fastfc.`` in an import and the same calls give the same numbers.
"""
from fastfc._config import __version__
from fastfc import layers, layer_utils, optim, gradient_check
from fastfc.gradient_check import GradientCheck, rel_error

__all__ = [
    "__version__",
    "layers",
    "layer_utils",
    "optim",
    "gradient_check",
    "GradientCheck",
    "rel_error",
]
