"""Minibatch gathering with on-the-fly flip, translation (zero, reflect or edge padding)
and cutout into a preallocated buffer.

Stub of the compiled module fastfc._kernels.augment.
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

PAD_CODES: dict[str, int]

def gather_augment(x: _Floats, idx: npt.NDArray[np.intp], flip: npt.NDArray[np.uint8],
                   shift_y: npt.NDArray[np.int32], shift_x: npt.NDArray[np.int32],
                   c: int, h: int, w: int, out: _Floats, pad_mode: int = 0,
                   cutout: int = 0, cut_y: npt.NDArray[np.int32] | None = None,
                   cut_x: npt.NDArray[np.int32] | None = None) -> None:
    """out[i] = cutout(shift(flip(x[idx[i]]))) for i < len(idx); shapes checked by the caller."""
