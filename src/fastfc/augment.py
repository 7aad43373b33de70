"""Data augmentation on the fly: random flips and translations of image minibatches.

:class:`Augmenter` draws, per sample, whether to flip it horizontally and by how many
pixels to translate it, from its own seeded generator (NumPy's global generator is not
touched, so the Solver's minibatch draws stay as the reference makes them); the
compiled kernel ``fastfc._kernels.augment.gather_augment`` then gathers the chosen rows
straight into a preallocated buffer, flipped, shifted with zero padding and cast.
"""
from typing import Any, Mapping, Optional

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from fastfc import _validation as V
from fastfc._kernels import augment as _kaug

__all__ = ["Augmenter", "parse_augment"]


class Augmenter:
    """Random horizontal flips and translations, written into a minibatch buffer.

    Parameters
    ----------
    image_shape : tuple (C, H, W)
        Layout of one sample: rows of the data set hold C*H*W values, channel-first.
    flip : bool
        Flip each image left-right with probability 1/2.
    translate : int
        Shift each image by up to this many pixels in each direction (uniform integer
        offsets in [-translate, translate]); uncovered pixels are zero.
    seed : int or None
        Seed of the augmentation generator.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (3, 32, 32), flip: bool = True,
                 translate: int = 0, seed: Optional[int] = None) -> None:
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.image_shape = tuple(V.check_scalar(s, "image_shape", low=1, integer=True)
                                 for s in image_shape)
        self.flip = bool(flip)
        c, h, w = self.image_shape
        self.translate = V.check_scalar(translate, "translate", low=0, high=max(h, w),
                                        integer=True)
        self.rng = np.random.default_rng(seed)

    @property
    def size(self) -> int:
        """Features per sample, ``C * H * W``."""
        c, h, w = self.image_shape
        return c * h * w

    def draw(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The random choices for n samples: (flip uint8 (n,), shift_y, shift_x int32 (n,))."""
        if self.flip:
            flip = self.rng.integers(0, 2, size=n, dtype=np.uint8)
        else:
            flip = np.zeros(n, dtype=np.uint8)
        if self.translate:
            shifts = self.rng.integers(-self.translate, self.translate + 1, size=(2, n),
                                       dtype=np.int32)
        else:
            shifts = np.zeros((2, n), dtype=np.int32)
        return flip, np.ascontiguousarray(shifts[0]), np.ascontiguousarray(shifts[1])

    def __call__(self, X: ArrayLike, indices: ArrayLike, out: Optional[np.ndarray] = None,
                 dtype: Optional[DTypeLike] = None) -> np.ndarray:
        """Gather ``X[indices]`` augmented into ``out`` (allocated when None); returns it.

        X : ndarray (N, C*H*W) or (N, C, H, W), float32 or float64, C-contiguous.
        out : ndarray (>= len(indices), C*H*W), float32 or float64; its first
        len(indices) rows are written.
        """
        X = self._as_rows(X)
        indices = np.ascontiguousarray(indices, dtype=np.intp)
        n = indices.shape[0]
        if n and (indices.min() < 0 or indices.max() >= X.shape[0]):
            raise ValueError(f"indices must lie in [0, {X.shape[0]})")
        if out is None:
            out = np.empty((n, self.size), dtype=dtype or X.dtype)
        else:
            if out.dtype not in V.FLOAT_DTYPES or not out.flags.c_contiguous:
                raise TypeError("out must be a C-contiguous float32 or float64 array")
            out2 = out.reshape(out.shape[0], -1)
            if out2.shape[0] < n or out2.shape[1] != self.size:
                raise ValueError(f"out must have shape (>= {n}, {self.size}), got {out.shape}")
        flip, sy, sx = self.draw(n)
        if n:
            c, h, w = self.image_shape
            _kaug.gather_augment(X, indices, flip, sy, sx, c, h, w,
                                 out.reshape(out.shape[0], -1))
        return out

    def _as_rows(self, X_in: ArrayLike) -> np.ndarray:
        X: np.ndarray = V.as_array(X_in, "X")
        if X.dtype not in V.FLOAT_DTYPES:
            X = X.astype(np.float64)
        X = np.ascontiguousarray(X)
        if X.ndim < 2 or X.size != X.shape[0] * self.size:
            raise ValueError(f"X has shape {X.shape}; rows of {self.image_shape} images "
                             f"({self.size} values) were expected")
        return X.reshape(X.shape[0], self.size)

    def get_state(self) -> Mapping[str, Any]:
        """The generator state (JSON-able), for checkpoints."""
        return self.rng.bit_generator.state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore the random generator's state returned by :meth:`get_state`."""
        self.rng.bit_generator.state = state

    def __repr__(self) -> str:
        return (f"Augmenter(image_shape={self.image_shape}, flip={self.flip}, "
                f"translate={self.translate})")


def parse_augment(spec: Optional[str], image_shape: tuple[int, int, int] = (3, 32, 32),
                  seed: Optional[int] = None) -> Optional[Augmenter]:
    """Build an Augmenter from a CLI spec such as ``'flip,translate=2'`` (None/'' -> None).

    Examples
    --------
    >>> parse_augment("flip,translate=2", image_shape=(1, 8, 8))
    Augmenter(image_shape=(1, 8, 8), flip=True, translate=2)
    >>> parse_augment("none") is None
    True
    """
    if spec is None or spec == "" or spec == "none":
        return None
    flip = False
    translate = 0
    for part in str(spec).split(","):
        part = part.strip()
        if part == "flip":
            flip = True
        elif part.startswith("translate="):
            try:
                translate = int(part.split("=", 1)[1])
            except ValueError:
                raise ValueError(f"augment: translate needs an integer, got {part!r}") from None
        elif part.startswith("translate"):
            raise ValueError(f"augment: write translate=K, got {part!r}")
        elif part:
            raise ValueError(f"augment: unknown item {part!r} (expected flip, translate=K)")
    return Augmenter(image_shape, flip=flip, translate=translate, seed=seed)
