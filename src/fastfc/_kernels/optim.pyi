"""In-place update rules: sgd, momentum, Nesterov momentum, RMSProp, Adam, AdamW;
the running average of weights.

Stub of the compiled module fastfc._kernels.optim (def twins of the cdef kernels:
flat float32 or float64 arrays, C-contiguous, updated in place; ``reg`` adds the
L2 term ``reg * w`` to the gradient).  Hyper-parameters are taken as Python floats
(double); coefficients such as ``1 - beta2`` are formed in double and rounded once to
the arrays' dtype, as NumPy does for ``float32_array * python_float``.
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def _sgd(w: _Floats, dw: _Floats, lr: float, reg: float = 0) -> int:
    """w -= lr * (dw + reg * w); returns the count of NaN/inf values in the new w"""

def _sgd_momentum(w: _Floats, dw: _Floats, v: _Floats, lr: float, mom: float,
                  reg: float = 0) -> int:
    """v = mom * v - lr * g; w += v"""

def _sgd_nesterov_momentum(w: _Floats, dw: _Floats, v: _Floats, lr: float,
                           mom: float, reg: float = 0) -> int:
    """v_new = mom * v - lr * g; w += -mom * v + (1 + mom) * v_new"""

def _rmsprop(w: _Floats, dw: _Floats, cache: _Floats, lr: float, decay_rate: float,
             eps: float, reg: float = 0) -> int:
    """cache = decay * cache + (1 - decay) * g**2; w -= lr * g / (sqrt(cache) + eps)"""

def _adam(w: _Floats, dw: _Floats, m: _Floats, v: _Floats, lr: float, beta1: float,
          beta2: float, eps: float, t: int, reg: float = 0) -> int:
    """Adam (Kingma & Ba, ICLR 2015) with bias correction at step t."""

def _adamw(w: _Floats, dw: _Floats, m: _Floats, v: _Floats, lr: float, beta1: float,
           beta2: float, eps: float, t: int, weight_decay: float, reg: float = 0) -> int:
    """AdamW (Loshchilov & Hutter): w *= 1 - lr * weight_decay, then Adam's step t."""

def ema_update(avg: _Floats, w: _Floats, decay: float) -> None:
    """avg = decay * avg + (1 - decay) * w in place (flat arrays of one dtype and length)."""

def _update(rule: int, w: _Floats, dw: _Floats, s1: _Floats | None, s2: _Floats | None,
            lr: float, mom: float, decay_rate: float, beta1: float, beta2: float,
            epsilon: float, t: int, weight_decay: float = 0, reg: float = 0) -> int:
    """Update w in place with the rule of code ``rule`` (fastfc._registry.UPDATE_RULES);
    s1, s2: its state arrays or None.  Returns the count of NaN/inf values in the new w."""
