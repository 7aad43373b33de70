"""Affine layers, fused bias + activation, activation backward and dropout.

Stub of the compiled module fastfc._kernels.dense.  The underscore functions are the
``def`` twins of the ``cdef`` kernels (float32 or float64 arrays, C-contiguous, shapes
trusted); outputs are written in place.
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

#: activation name -> code taken by _bias_act and _act_backward
ACT_CODES: dict[str, int]

def _affine_forward(x: _Floats, w: _Floats, b: _Floats, out: _Floats) -> None:
    """out = x @ w + b"""

def _affine_backward(dout: _Floats, x: _Floats, w: _Floats, dx: _Floats | None,
                     dw: _Floats, db: _Floats) -> None:
    """dw = x.T @ dout; db = dout.sum(0); dx = dout @ w.T (dx may be None)"""

def _bias_act(kind: int, z: _Floats, b: _Floats | None, out: _Floats,
              alpha: float = 0.01) -> None:
    """z += b (b may be None); out = f(z)"""

def _act_backward(kind: int, z: _Floats | None, y: _Floats, dout: _Floats,
                  alpha: float = 0.01) -> None:
    """dout *= f'(z) in place"""

def _dropout_apply(x: _Floats, mask: npt.NDArray[np.uint8], scale: float,
                   out: _Floats) -> None:
    """out = x * mask * scale"""

def _sum_sq(a: _Floats) -> float:
    """(a ** 2).sum() accumulated in double"""
