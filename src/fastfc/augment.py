"""Data augmentation on the fly: random flips, translations and cutout of image minibatches.

:class:`Augmenter` draws, per sample, whether to flip it horizontally, by how many
pixels to translate it and (with cutout) where to centre the erased square, from its
own seeded generator (NumPy's global generator is not touched, so the Solver's
minibatch draws stay as the reference makes them); the compiled kernel
``fastfc._kernels.augment.gather_augment`` then gathers the chosen rows straight into a
preallocated buffer, flipped, shifted (the uncovered border filled with zeros, the
mirror image or the edge pixels), cut out and cast, in one pass.
"""
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from fastfc import _validation as V
from fastfc._kernels import augment as _kaug

__all__ = ["Augmenter", "AugmentDraws", "PAD_MODES", "parse_augment", "predict_flip_average"]

#: The padding modes of the translation: what fills the pixels a shift uncovers.
#: 'zero' (value 0), 'reflect' (the mirror image about the border pixels, which are not
#: repeated: numpy.pad's 'reflect') and 'edge' (the border pixel repeated).
PAD_MODES = ("zero", "reflect", "edge")
_PAD_CODES = {name: _kaug.PAD_CODES[name] for name in PAD_MODES}


class AugmentDraws(NamedTuple):
    """The random choices of one minibatch, one entry per sample (see :meth:`Augmenter.draw_all`).

    ``cut_y``/``cut_x`` (the cutout centres) are None when the Augmenter has no cutout.
    """

    flip: np.ndarray      # uint8 (n,): 1 flips the image left-right
    shift_y: np.ndarray   # int32 (n,): rows moved down (negative: up)
    shift_x: np.ndarray   # int32 (n,): columns moved right (negative: left)
    cut_y: Optional[np.ndarray] = None  # int32 (n,) in [0, H): row of the cutout centre
    cut_x: Optional[np.ndarray] = None  # int32 (n,) in [0, W): column of the cutout centre


class Augmenter:
    """Random horizontal flips, translations and cutout, written into a minibatch buffer.

    Parameters
    ----------
    image_shape : tuple (C, H, W)
        Layout of one sample: rows of the data set hold C*H*W values, channel-first.
    flip : bool
        Flip each image left-right with probability 1/2.
    translate : int
        Shift each image by up to this many pixels in each direction (uniform integer
        offsets in [-translate, translate]) -- a random crop of the padded image.
    seed : int or None
        Seed of the augmentation generator.
    pad : {'zero', 'reflect', 'edge'}, keyword-only
        What fills the pixels a translation uncovers (see :data:`PAD_MODES`): zeros
        (default; the mean after standardisation), the image mirrored about its border
        pixels (numpy.pad's 'reflect', repeated when the shift exceeds the image) or the
        border pixels repeated.
    cutout : int, keyword-only
        Cutout (DeVries & Taylor, 2017): after the flip and the translation, set a
        ``cutout`` x ``cutout`` square of every channel to 0.  Its centre (cy, cx) is
        uniform over the H x W pixels; it covers rows ``cy - cutout // 2`` to
        ``cy - cutout // 2 + cutout - 1`` (columns alike), clipped at the borders, so
        that near an edge less is erased.  0 (default) turns cutout off.

    Notes
    -----
    Per minibatch of n samples the generator draws, in this order: n flips (when
    ``flip``), 2n shifts (when ``translate``), then n cutout rows and n cutout columns
    (when ``cutout``).  Flips and translations therefore consume the same random
    numbers as an Augmenter without cutout, and ``pad`` draws nothing.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (3, 32, 32), flip: bool = True,
                 translate: int = 0, seed: Optional[int] = None, *, pad: str = "zero",
                 cutout: int = 0) -> None:
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.image_shape = tuple(V.check_scalar(s, "image_shape", low=1, integer=True)
                                 for s in image_shape)
        self.flip = bool(flip)
        c, h, w = self.image_shape
        self.translate = V.check_scalar(translate, "translate", low=0, high=max(h, w),
                                        integer=True)
        if not isinstance(pad, str) or pad not in _PAD_CODES:
            raise ValueError(f"pad must be one of {', '.join(map(repr, PAD_MODES))}, "
                             f"got {pad!r}")
        self.pad = pad
        self.cutout = V.check_scalar(cutout, "cutout", low=0, high=max(h, w), integer=True)
        self.rng = np.random.default_rng(seed)

    @property
    def size(self) -> int:
        """Features per sample, ``C * H * W``."""
        c, h, w = self.image_shape
        return c * h * w

    def draw(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The flip and shift choices for n samples: (flip uint8 (n,), shift_y, shift_x int32 (n,)).

        These are the first draws of a minibatch; with cutout, :meth:`draw_cutout`
        follows (:meth:`draw_all` makes both, as a call does).
        """
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

    def draw_cutout(self, n: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The cutout centres for n samples, (cut_y, cut_x) int32 (n,); None without cutout.

        Rows are uniform in [0, H), then columns in [0, W); nothing is drawn when
        ``cutout`` is 0.
        """
        if not self.cutout:
            return None
        c, h, w = self.image_shape
        cy = self.rng.integers(0, h, size=n, dtype=np.int32)
        cx = self.rng.integers(0, w, size=n, dtype=np.int32)
        return cy, cx

    def draw_all(self, n: int) -> AugmentDraws:
        """Every random choice of a minibatch of n samples, drawn as a call draws them."""
        flip, sy, sx = self.draw(n)
        cut = self.draw_cutout(n)
        if cut is None:
            return AugmentDraws(flip, sy, sx)
        return AugmentDraws(flip, sy, sx, cut[0], cut[1])

    def apply(self, X: ArrayLike, indices: ArrayLike, draws: AugmentDraws,
              out: Optional[np.ndarray] = None,
              dtype: Optional[DTypeLike] = None) -> np.ndarray:
        """Gather ``X[indices]`` augmented with the given choices (no random draw); returns it.

        As a call, with the choices ``draws`` (from :meth:`draw_all`, or made up: arrays
        of len(indices)) instead of fresh ones; this Augmenter's ``pad`` and ``cutout``
        apply.  A call is ``apply(X, indices, draw_all(len(indices)))``.
        """
        X, idx, out = self._prepare(X, indices, out, dtype)
        self._gather(X, idx, self._check_draws(draws, idx.shape[0]), out)
        return out

    def __call__(self, X: ArrayLike, indices: ArrayLike, out: Optional[np.ndarray] = None,
                 dtype: Optional[DTypeLike] = None) -> np.ndarray:
        """Gather ``X[indices]`` augmented into ``out`` (allocated when None); returns it.

        X : ndarray (N, C*H*W) or (N, C, H, W), float32 or float64, C-contiguous.
        out : ndarray (>= len(indices), C*H*W), float32 or float64; its first
        len(indices) rows are written.
        """
        X, idx, out = self._prepare(X, indices, out, dtype)
        self._gather(X, idx, self.draw_all(idx.shape[0]), out)
        return out

    def _prepare(self, X_in: ArrayLike, indices_in: ArrayLike, out: Optional[np.ndarray],
                 dtype: Optional[DTypeLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checked rows, indices and output buffer of a call (before any draw)."""
        X = self._as_rows(X_in)
        indices = np.ascontiguousarray(indices_in, dtype=np.intp)
        if indices.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {indices.shape}")
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
        return X, indices, out

    def _check_draws(self, draws: AugmentDraws, n: int) -> AugmentDraws:
        """Draws given to :meth:`apply` as contiguous arrays of n, in range."""
        if not isinstance(draws, tuple) or len(draws) not in (3, 5):
            raise TypeError("draws must be an AugmentDraws (flip, shift_y, shift_x"
                            "[, cut_y, cut_x])")
        c, h, w = self.image_shape
        names = AugmentDraws._fields
        arrays: list[Optional[np.ndarray]] = []
        for k, a in enumerate(draws):
            if a is None:
                if k < 3:
                    raise ValueError(f"draws.{names[k]} must be {n} integers, got None")
                arrays.append(None)
                continue
            a = np.asarray(a)
            if a.shape != (n,) or a.dtype.kind not in "biu":
                raise ValueError(f"draws.{names[k]} must be {n} integers, got "
                                 f"{a.dtype} array of shape {a.shape}")
            arrays.append(np.ascontiguousarray(a, dtype=np.uint8 if k == 0 else np.int32))
        arrays += [None] * (5 - len(arrays))
        bounds = {"cut_y": h, "cut_x": w}
        for k, name in enumerate(names[3:], 3):
            a = arrays[k]
            if a is not None and n and (a.min() < 0 or a.max() >= bounds[name]):
                raise ValueError(f"draws.{name} must lie in [0, {bounds[name]})")
        if self.cutout and (arrays[3] is None or arrays[4] is None):
            raise ValueError("draws.cut_y and draws.cut_x are needed: this Augmenter "
                             f"has cutout={self.cutout}")
        flip, sy, sx, cy, cx = arrays
        assert flip is not None and sy is not None and sx is not None  # checked above
        return AugmentDraws(flip, sy, sx, cy, cx)

    def _gather(self, X: np.ndarray, indices: np.ndarray, draws: AugmentDraws,
                out: np.ndarray) -> None:
        if not indices.shape[0]:
            return
        c, h, w = self.image_shape
        _kaug.gather_augment(X, indices, draws.flip, draws.shift_y, draws.shift_x, c, h, w,
                             out.reshape(out.shape[0], -1), _PAD_CODES[self.pad],
                             self.cutout, draws.cut_y, draws.cut_x)

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
        extra = f", pad={self.pad!r}" if self.pad != "zero" else ""
        extra += f", cutout={self.cutout}" if self.cutout else ""
        return (f"Augmenter(image_shape={self.image_shape}, flip={self.flip}, "
                f"translate={self.translate}{extra})")


def _int_item(part: str, key: str) -> int:
    """The integer K of a spec item ``key=K``."""
    value = part.split("=", 1)[1].strip()
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"augment: {key} needs an integer, got {part!r}") from None


def parse_augment(spec: Optional[str], image_shape: tuple[int, int, int] = (3, 32, 32),
                  seed: Optional[int] = None) -> Optional[Augmenter]:
    """Build an Augmenter from a CLI spec such as ``'flip,translate=4,pad=reflect,cutout=8'``.

    Comma-separated items, each at most once: ``flip``, ``translate=K`` (pixels),
    ``pad=zero|reflect|edge`` (the padding of the translation; no effect without one),
    ``cutout=K`` (side of the erased square); None, '' and 'none' give None (no
    augmentation).

    Examples
    --------
    >>> parse_augment("flip,translate=2", image_shape=(1, 8, 8))
    Augmenter(image_shape=(1, 8, 8), flip=True, translate=2)
    >>> parse_augment("flip,translate=4,pad=reflect,cutout=8")
    Augmenter(image_shape=(3, 32, 32), flip=True, translate=4, pad='reflect', cutout=8)
    >>> parse_augment("none") is None
    True
    """
    if spec is None or spec == "" or spec == "none":
        return None
    if not isinstance(spec, str):
        raise TypeError(f"augment: the spec must be a string, got {type(spec).__name__}")
    flip = False
    translate = 0
    pad = "zero"
    cutout = 0
    seen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key = part.split("=", 1)[0].strip()
        if key in seen:
            raise ValueError(f"augment: {key} is given twice in {spec!r}")
        if key == "flip":
            if part != "flip":
                raise ValueError(f"augment: flip takes no value, got {part!r}")
            flip = True
        elif key in ("translate", "cutout", "pad"):
            if "=" not in part:
                what = "zero|reflect|edge" if key == "pad" else "K"
                raise ValueError(f"augment: write {key}={what}, got {part!r}")
            if key == "translate":
                translate = _int_item(part, key)
            elif key == "cutout":
                cutout = _int_item(part, key)
            else:
                pad = part.split("=", 1)[1].strip()
                if pad not in PAD_MODES:
                    raise ValueError(f"augment: pad must be one of {', '.join(PAD_MODES)}, "
                                     f"got {part!r}")
        else:
            raise ValueError(f"augment: unknown item {part!r} (expected flip, translate=K, "
                             "pad=zero|reflect|edge, cutout=K)")
        seen.add(key)
    try:
        return Augmenter(image_shape, flip=flip, translate=translate, seed=seed, pad=pad,
                         cutout=cutout)
    except ValueError as exc:
        raise ValueError(f"augment: {exc}") from None


def predict_flip_average(model: Any, X: ArrayLike, image_shape: tuple[int, int, int],
                         batch_size: int = 1000) -> np.ndarray:
    """Class predictions averaged over each image and its mirror image (test-time
    augmentation).

    The class probabilities (softmax of ``model.scores``) of every image and of its
    left-right flip are averaged, and the most probable class is returned.  Worth it for
    data whose classes survive a mirror image (CIFAR-10; not handwritten digits), and
    for a model trained with flips.

    Parameters
    ----------
    model : object with ``scores(X) -> (N, C)`` (a :class:`fastfc.Net`)
    X : array (N, C*H*W) or (N, C, H, W)
        Images, channel-first rows.
    image_shape : tuple (C, H, W)
    batch_size : int >= 1
        Images scored at a time.

    Returns
    -------
    ndarray (N,) int64

    Examples
    --------
    >>> import numpy as np
    >>> from fastfc import Net
    >>> net = Net([12, 5, 3], seed=0)
    >>> X = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    >>> predict_flip_average(net, X, (3, 2, 2)).shape
    (4,)
    """
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    c, h, w = (V.check_scalar(s, "image_shape", low=1, integer=True) for s in image_shape)
    batch_size = V.check_scalar(batch_size, "batch_size", low=1, integer=True)
    X = V.as_array(X, "X")
    if X.ndim < 2 or X.size != X.shape[0] * c * h * w:
        raise ValueError(f"X has shape {X.shape}; rows of {(c, h, w)} images "
                         f"({c * h * w} values) were expected")
    from fastfc.layers import softmax

    images = X.reshape(X.shape[0], c, h, w)
    out = np.empty(X.shape[0], dtype=np.int64)
    for lo in range(0, X.shape[0], batch_size):
        chunk = images[lo:lo + batch_size]
        plain, mirrored = (
            softmax(np.asarray(model.scores(np.ascontiguousarray(view).reshape(len(view), -1)),
                               dtype=np.float64))
            for view in (chunk, chunk[..., ::-1]))
        out[lo:lo + batch_size] = np.argmax(plain + mirrored, axis=1)
    return out
