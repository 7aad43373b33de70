"""Batch normalisation and layer normalisation, forward and backward.

Stub of the compiled module fastfc._kernels.norm (def twins of the cdef kernels:
float32 or float64 arrays, C-contiguous, shapes trusted; outputs written in place).
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def _bn_forward_train(x: _Floats, gamma: _Floats, beta: _Floats, eps: float,
                      momentum: float, running_mean: _Floats | None,
                      running_var: _Floats | None, out: _Floats, xhat: _Floats,
                      mean: _Floats, var: _Floats, inv_std: _Floats) -> None:
    """Batch norm in training mode; running stats may be None (not updated)."""

def _bn_forward_test(x: _Floats, gamma: _Floats, beta: _Floats, eps: float,
                     running_mean: _Floats, running_var: _Floats, out: _Floats,
                     xhat: _Floats | None, inv_std: _Floats) -> None:
    """Batch norm in test mode; xhat may be None."""

def _bn_backward(dout: _Floats, xhat: _Floats, gamma: _Floats, inv_std: _Floats,
                 dx: _Floats, dgamma: _Floats, dbeta: _Floats,
                 fixed_stats: bool = False) -> None:
    """Batch-norm backward (through the batch statistics unless fixed_stats)."""

def _ln_forward(x: _Floats, gamma: _Floats, beta: _Floats, eps: float, out: _Floats,
                xhat: _Floats, mean: _Floats, inv_std: _Floats) -> None:
    """Layer norm forward."""

def _ln_backward(dout: _Floats, xhat: _Floats, gamma: _Floats, inv_std: _Floats,
                 dx: _Floats, dgamma: _Floats, dbeta: _Floats) -> None:
    """Layer-norm backward."""
