"""Softmax cross-entropy and multiclass SVM, one pass per row.

Stub of the compiled module fastfc._kernels.losses (def twins of the cdef kernels:
float32 or float64 scores, intp labels, C-contiguous, shapes trusted).
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_Labels = npt.NDArray[np.intp]

def _softmax_loss(scores: _Floats, y: _Labels, dscores: _Floats) -> float:
    """Softmax cross-entropy; writes dscores, returns the mean loss."""

def _svm_loss(scores: _Floats, y: _Labels, dscores: _Floats) -> float:
    """Multiclass hinge loss; writes dscores, returns the mean loss."""

def _softmax(scores: _Floats, probs: _Floats) -> None:
    """probs = softmax(scores, axis=1)"""
