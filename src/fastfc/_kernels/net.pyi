"""The whole-network training step behind fastfc.Net.

Stub of the compiled module fastfc._kernels.net.  ``NetCore`` trusts its caller,
fastfc.net.Net, which owns the arrays and validates every argument (the core checks
their structure in the debug build only, and the range of labels and indices on its
private copies unless told not to).
"""
from typing import Any

import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

class NetCore:
    """Pointers and settings of one Net; see fastfc.net.Net for the public interface."""

    is_float: bool
    capacity: int
    dims: tuple[int, ...]
    dtype: np.dtype[Any]
    learning_rate: float
    reg: float
    label_smoothing: float
    compute: int
    t: int
    step: int
    drop_key: int
    @property
    def nonfinite(self) -> int:
        """NaN or infinite parameters found after the last update (0 when healthy)."""

    def __init__(self, dims: Any, dtype: Any, act: int, alpha: float, norm: int,
                 keep_prob: float, bn_eps: float, bn_momentum: float, loss_kind: int,
                 drop_key: int) -> None: ...
    @property
    def n_params(self) -> int: ...
    def layout(self) -> list[tuple[str, int, tuple[int, ...]]]:
        """[(name, offset, shape)] of every parameter in the flat buffer, in order."""
    def bind(self, params: _Floats, grads: _Floats,
             running: list[tuple[_Floats, _Floats]] | None) -> None:
        """Point the kernels at the flat parameter/gradient buffers and running stats."""
    def set_optimizer(self, rule: int, lr: float, mom: float, decay_rate: float,
                      beta1: float, beta2: float, epsilon: float, counts_steps: bool,
                      t: int, state1: _Floats | None, state2: _Floats | None,
                      weight_decay: float = 0.0) -> None:
        """Select the update rule, its hyper-parameters and flat state buffers
        (weight_decay: the decoupled decay of adamw)."""
    def ensure_capacity(self, n: int) -> None:
        """Allocate the workspaces for minibatches of up to n rows (grow only)."""
    def _allocate(self, cap: int) -> None:
        """(Re)create every workspace for `cap` rows; cap 0 frees them."""
    def shrink(self, n: int) -> None:
        """Bring the workspaces down to n rows (0: free them) if they are larger."""
    @property
    def workspace_bytes(self) -> int:
        """Bytes held by the batch workspaces (not the parameters or optimiser state)."""
    def run(self, X: _Floats, y: npt.NDArray[np.intp] | _Floats | None,
            indices: npt.NDArray[np.intp] | None, train: bool, backward: bool,
            update: bool, sample_weight: _Floats | None = None,
            check: bool = True) -> float:
        """Forward [+ loss, backward, update] on a minibatch; returns the loss.

        The caller guarantees the arrays' types and shapes (checked in the debug build
        only).  Labels (softmax, svm) and indices are copied into the core's own buffers
        (under the GIL) and, with ``check``, range-checked there; the step never reads
        the caller's arrays after that.  Float targets (mse: n * n_outputs values of the
        net's dtype) and sample_weight (n values of the net's dtype) are read in place."""
    def scores(self, n: int) -> _Floats:
        """A view (n, num_classes) of the scores written by the last call."""

def _set_preround(on: bool) -> bool:
    """Whether bf16 steps round each operand once per step; returns the old setting."""
