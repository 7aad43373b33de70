"""Softmax cross-entropy (optionally label-smoothed), multiclass SVM and mean squared error, one pass per row.

Stub of the compiled module fastfc._kernels.losses (def twins of the cdef kernels:
float32 or float64 scores, intp labels or float targets of the scores' dtype,
C-contiguous, shapes trusted).  ``sample_weight`` (n,) of the scores' dtype, >= 0 with a
positive sum, makes the loss the weighted mean ``sum(w * l) / sum(w)``.
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_Labels = npt.NDArray[np.intp]

def _softmax_loss(scores: _Floats, y: _Labels, dscores: _Floats,
                  sample_weight: _Floats | None = None,
                  label_smoothing: float = 0.0) -> float:
    """Softmax cross-entropy (against label-smoothed targets ``(1 - eps) onehot(y) +
    eps / C`` when label_smoothing = eps > 0, eps in [0, 1)); writes dscores, returns
    the (weighted) mean loss."""

def _svm_loss(scores: _Floats, y: _Labels, dscores: _Floats,
              sample_weight: _Floats | None = None) -> float:
    """Multiclass hinge loss; writes dscores, returns the (weighted) mean loss."""

def _mse_loss(scores: _Floats, targets: _Floats, dscores: _Floats,
              sample_weight: _Floats | None = None) -> float:
    """Half squared error summed over outputs; writes dscores, returns the (weighted)
    mean over rows."""

def _softmax(scores: _Floats, probs: _Floats) -> None:
    """probs = softmax(scores, axis=1)"""
