"""Pictures: image grids (NumPy only) and, with the ``plot`` extra, PNG plots.

:func:`visualize_grid`, :func:`vis_grid` and :func:`vis_nn` are the CS231n helpers.
:func:`plot_history` and :func:`show_net_weights` write PNG files with matplotlib's Agg
renderer directly -- no pyplot, no global state, no display -- so they work headless
(servers, CI, worker processes).  matplotlib is imported only when they are called.
"""
import math
import os
from collections.abc import Mapping
from math import ceil, sqrt
from typing import IO, Any, Callable, Optional, Sequence, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from fastfc import _validation as V

__all__ = ["visualize_grid", "vis_grid", "vis_nn", "plot_history", "show_net_weights"]

# where a picture goes: a path, or a binary file object
_Target = Union[str, "os.PathLike[str]", IO[bytes]]


def _rescale(img: np.ndarray, ubound: float) -> np.ndarray:
    low, high = float(np.min(img)), float(np.max(img))
    if high == low:
        return np.zeros_like(img, dtype=np.float64)
    return ubound * (img - low) / (high - low)


def visualize_grid(Xs: ArrayLike, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Tile a batch of images into one grid image.

    Parameters
    ----------
    Xs : ndarray of shape (N, H, W, C)
    ubound : float
        Each image is rescaled to [0, ubound] (a constant image becomes 0).
    padding : int
        Blank pixels between neighbouring tiles.

    Returns
    -------
    grid : ndarray of shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C), float64,
        with G = ceil(sqrt(N)) tiles per side, filled row by row.

    Examples
    --------
    >>> grid = visualize_grid(np.random.rand(5, 4, 4, 3), padding=1)
    >>> grid.shape    # 3 x 3 tiles of 4 x 4 pixels, 1 pixel apart
    (14, 14, 3)
    """
    arr: np.ndarray = V.as_array(Xs, "Xs")
    if arr.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"Xs must hold at least one non-empty image, got shape {arr.shape}")
    padding = V.check_scalar(padding, "padding", low=0, integer=True)
    ubound = V.check_scalar(ubound, "ubound")
    N, H, W, C = arr.shape
    grid_size = int(ceil(sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    for k in range(N):
        row, col = divmod(k, grid_size)
        y0 = row * (H + padding)
        x0 = col * (W + padding)
        grid[y0:y0 + H, x0:x0 + W] = _rescale(arr[k], ubound)
    return grid


def vis_grid(Xs: ArrayLike) -> np.ndarray:
    """Tile images (N, H, W, C) into a square grid with one-pixel gaps, values unscaled."""
    arr: np.ndarray = V.as_array(Xs, "Xs")
    if arr.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {arr.shape}")
    N, H, W, C = arr.shape
    A = int(ceil(sqrt(N)))
    G = np.ones((A * H + A, A * W + A, C), arr.dtype)
    G *= np.min(arr)
    for k in range(N):
        y, x = divmod(k, A)
        G[y * H + y:(y + 1) * H + y, x * W + x:(x + 1) * W + x, :] = arr[k]
    maxg, ming = G.max(), G.min()
    return (G - ming) / (maxg - ming) if maxg > ming else np.zeros_like(G, dtype=float)


def vis_nn(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Stack a 2-d list of (H, W, C) images into one grid image, values unscaled."""
    N = len(rows)
    D = len(rows[0])
    H, W, C = rows[0][0].shape
    Xs = rows[0][0]
    G = np.ones((N * H + N, D * W + D, C), Xs.dtype)
    for y in range(N):
        for x in range(D):
            G[y * H + y:(y + 1) * H + y, x * W + x:(x + 1) * W + x, :] = rows[y][x]
    maxg, ming = G.max(), G.min()
    return (G - ming) / (maxg - ming) if maxg > ming else np.zeros_like(G, dtype=float)


# --------------------------------------------------------------------------- PNG plots

_PLOT_EXTRA = 'pip install "fastfc[plot]"'
_HISTORY_KEYS = ("loss_history", "train_acc_history", "val_acc_history")
# input width -> (C, H, W) of the images a first layer sees
_KNOWN_IMAGES = {3 * 32 * 32: (3, 32, 32), 8 * 8: (1, 8, 8), 28 * 28: (1, 28, 28)}


def _matplotlib(caller: str) -> tuple[Any, Any]:
    try:
        import matplotlib  # noqa: F401  (the extra itself, even if submodules are cached)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib: {_PLOT_EXTRA}") from exc
    return Figure, FigureCanvasAgg


def _out_path(path: _Target, name: str = "path") -> Union[str, IO[bytes]]:
    if hasattr(path, "write"):
        return cast(IO[bytes], path)
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a file path or a binary file object, got "
                        f"{type(path).__name__}") from None


def _write(out: Union[str, IO[bytes]], write: Callable[[Any], Any]) -> None:
    """Call ``write(file_object)`` on a file object as given, or atomically for a path:
    a temporary file in the same directory renamed over the target, so a crash never
    leaves half a PNG and a symbolic link at the path is replaced, not written through."""
    if hasattr(out, "write"):
        write(out)
        return
    from fastfc.checkpoint import atomic_write
    atomic_write(out, write)


def _history(source: Any, key: str) -> np.ndarray:
    if isinstance(source, Mapping):
        values = source.get(key)
    else:
        values = getattr(source, key, None)
    if values is None:
        return np.empty(0)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{key} must be a sequence of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{key} must be 1-dimensional, got shape {arr.shape}")
    return arr


def plot_history(solver_or_histories: Any, path: _Target, *, title: Optional[str] = None,
                 dpi: int = 100) -> _Target:
    """Write a PNG of the training curves: loss per iteration, train/val accuracy per epoch.

    Parameters
    ----------
    solver_or_histories : Solver or dict
        Anything with ``loss_history``, ``train_acc_history`` and ``val_acc_history`` as
        attributes (a :class:`fastfc.Solver` after ``train()``) or keys (the dict
        ``neural_net.TwoLayerNet.train`` returns).  Missing or empty histories leave
        their panel empty; non-finite losses are left out of the plot.  The best
        check -- the first with the highest validation accuracy, whose parameters a
        Solver keeps -- is marked with a star, a dashed line and a legend entry.
    path : str, os.PathLike or binary file object
        Where the PNG goes (always PNG, whatever the extension).  A path is written
        atomically (a temporary file renamed over it; a symbolic link there is
        replaced, its target left alone).
    title : str, optional
        A title above both panels.
    dpi : int
        The figure is 8 x 7 inches: 800 x 700 pixels at the default 100 dpi.

    Returns
    -------
    path, as given.

    Needs matplotlib (``pip install "fastfc[plot]"``).
    """
    Figure, FigureCanvasAgg = _matplotlib("plot_history")
    from matplotlib.ticker import MaxNLocator
    if not any((k in solver_or_histories) if isinstance(solver_or_histories, Mapping)
               else hasattr(solver_or_histories, k) for k in _HISTORY_KEYS):
        raise TypeError("solver_or_histories must be a Solver or a dict with "
                        f"{', '.join(map(repr, _HISTORY_KEYS))}, got "
                        f"{type(solver_or_histories).__name__}")
    loss, train_acc, val_acc = (_history(solver_or_histories, k) for k in _HISTORY_KEYS)
    if not (loss.size or train_acc.size or val_acc.size):
        raise ValueError("nothing to plot: the loss and accuracy histories are empty "
                         "(train first)")
    dpi = V.check_scalar(dpi, "dpi", low=1, integer=True)
    out = _out_path(path)

    fig = Figure(figsize=(8, 7), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(2, 1)

    it = np.arange(1, loss.size + 1)
    finite = np.isfinite(loss)
    ax_loss.plot(it[finite], loss[finite], "o", markersize=2, alpha=0.4, label="minibatch loss")
    window = max(loss.size // 50, 5)
    if finite.all() and loss.size >= 2 * window:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(it[window - 1:], smooth, "-", linewidth=1.5,
                     label=f"mean of {window}")
    if not finite.all():
        bad = int(np.argmin(finite)) + 1
        ax_loss.axvline(bad, color="red", linestyle=":", linewidth=1,
                        label=f"non-finite from iteration {bad}")
    ax_loss.set_title("Training loss")
    ax_loss.set_xlabel("Iteration")
    ax_loss.set_ylabel("Loss")
    if loss.size:
        ax_loss.legend(loc="upper right")

    for values, label in ((train_acc, "train"), (val_acc, "val")):
        if values.size:
            ax_acc.plot(np.arange(values.size), values, "-o", markersize=4, label=label)
    best = _best_check(val_acc)
    if best is not None:
        # the check whose parameters a Solver keeps: the first with the highest val acc
        ax_acc.axvline(best, color="tab:green", linestyle="--", linewidth=1, zorder=1)
        ax_acc.plot([best], [val_acc[best]], marker="*", markersize=14, color="tab:green",
                    linestyle="none", zorder=3,
                    label=f"best: val {val_acc[best]:.3f} at epoch {best}")
    ax_acc.set_title("Classification accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_xlabel("Epoch")
    ax_acc.set_ylabel("Accuracy")
    if train_acc.size or val_acc.size:
        ax_acc.legend(loc="lower right")
    ax_acc.grid(True, alpha=0.3)

    if title is not None:
        fig.suptitle(str(title))
    fig.tight_layout()
    _write(out, lambda f: fig.savefig(f, format="png", dpi=dpi))
    return path


def _best_check(val_acc: np.ndarray) -> Optional[int]:
    """Index of the first highest finite validation accuracy (the check a Solver keeps),
    or None when there is none."""
    finite = np.isfinite(val_acc)
    if not finite.any():
        return None
    return int(np.argmax(np.where(finite, val_acc, -np.inf)))


def _first_layer(model: Any) -> np.ndarray:
    params = model if isinstance(model, Mapping) else getattr(model, "params", None)
    if not isinstance(params, Mapping) or "W1" not in params:
        raise TypeError("model must have params['W1'] (a fastfc or CS231n model, or its "
                        f"params dict), got {type(model).__name__}")
    W1 = V.as_array(params["W1"], "params['W1']")
    if W1.ndim != 2:
        raise ValueError(f"params['W1'] must be 2-dimensional, got shape {W1.shape}")
    if getattr(model, "variant", None) == "ucla":  # neural_net.TwoLayerNet: W1 is (H, D)
        W1 = W1.T
    return np.asarray(W1, dtype=np.float64)


def _infer_image_shape(D: int) -> tuple[int, int, int]:
    if D in _KNOWN_IMAGES:
        return _KNOWN_IMAGES[D]
    side = math.isqrt(D)
    if side * side == D:
        return (1, side, side)
    side = math.isqrt(D // 3)
    if D % 3 == 0 and side * side == D // 3:
        return (3, side, side)
    raise ValueError(f"cannot tell the image shape of {D} input features: pass "
                     "image_shape=(C, H, W)")


#: show_net_weights draws at most this many units by default: 100 tiles of 32 x 32 stay
#: readable on a screen, 1,024 do not
MAX_UNITS = 100
_TITLE_PX = 28


def show_net_weights(model: Any, path: _Target, *,
                     image_shape: Optional[tuple[int, int, int]] = None,
                     channels_last: bool = False, padding: int = 3, min_size: int = 512,
                     max_units: Optional[int] = MAX_UNITS) -> _Target:
    """Write the first-layer weights as a PNG grid of images, one tile per hidden unit.

    Parameters
    ----------
    model : object with ``params['W1']`` of shape (D, H), or that params dict
        (``neural_net.TwoLayerNet(variant='ucla')`` keeps W1 as (H, D); that is handled).
    path : str, os.PathLike or binary file object
        Where the PNG goes (always PNG, whatever the extension).  A path is written
        atomically (a symbolic link there is replaced, its target left alone).
    image_shape : (C, H, W), optional
        The layout of one input row.  Default: (3, 32, 32) for D = 3072 (CIFAR-10),
        (1, 8, 8) for 64 (digits), (1, 28, 28) for 784, else a square grey or RGB
        image when D allows.  C must be 1 or 3.
    channels_last : bool
        Rows are (H, W, C)-ordered -- images flattened from NHWC, as in the CS231n
        assignment-1 notebooks -- instead of the channel-first order of
        ``get_CIFAR10_data`` / ``load_default_data`` data.
    padding : int
        Black pixels between tiles (:func:`visualize_grid`).
    min_size : int
        The grid is enlarged by a whole factor (nearest neighbour) until its longer side
        reaches this many pixels; each tile is rescaled to 0..255 on its own.
    max_units : int or None, default 100
        Draw only the first this many hidden units (None: all).  When units are left
        out, a title strip above the grid says so ("first 100 of 1024 hidden units").

    Returns
    -------
    path, as given.  The image is (gh * k) x (gw * k) pixels, where (gh, gw) is the
    size of ``visualize_grid(tiles, padding=padding)`` and k = max(1, ceil(min_size /
    max(gh, gw))) -- plus a title strip of 28 pixels on top when units are left out.

    Needs matplotlib (``pip install "fastfc[plot]"``).
    """
    _matplotlib("show_net_weights")
    from matplotlib.image import imsave

    W1 = _first_layer(model)
    D, n_hidden = W1.shape
    if image_shape is None:
        C, H, W = _infer_image_shape(D)
    else:
        try:
            C, H, W = (V.check_scalar(s, "image_shape", low=1, integer=True)
                       for s in image_shape)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"image_shape must be three positive integers (C, H, W), "
                            f"got {image_shape!r}") from None
        if C * H * W != D:
            raise ValueError(f"image_shape {(C, H, W)} holds {C * H * W} values but W1 has "
                             f"{D} input features")
    if C not in (1, 3):
        raise ValueError(f"image_shape must have 1 (grey) or 3 (RGB) channels, got {C}")
    min_size = V.check_scalar(min_size, "min_size", low=1, integer=True)
    shown = n_hidden
    if max_units is not None:
        shown = min(n_hidden, V.check_scalar(max_units, "max_units", low=1, integer=True))
    out = _out_path(path)

    W1 = W1[:, :shown]
    if channels_last:
        tiles = W1.reshape(H, W, C, shown).transpose(3, 0, 1, 2)
    else:
        tiles = W1.reshape(C, H, W, shown).transpose(3, 1, 2, 0)
    grid = visualize_grid(tiles, padding=padding)  # (gh, gw, C) in [0, 255]
    k = max(1, -(-min_size // max(grid.shape[:2])))
    img = np.clip(np.rint(grid), 0, 255).astype(np.uint8)
    img = np.repeat(np.repeat(img, k, axis=0), k, axis=1)
    if C == 1:  # grey as RGB, exactly (a colormap would re-quantise the levels)
        img = np.repeat(img, 3, axis=2)
    if shown < n_hidden:
        img = _with_title(img, f"first {shown} of {n_hidden} hidden units")
    _write(out, lambda f: imsave(f, img, format="png"))
    return path


def _with_title(img: np.ndarray, text: str) -> np.ndarray:
    """img (H, W, 3) uint8 with a white strip of _TITLE_PX pixels on top holding text."""
    Figure, FigureCanvasAgg = _matplotlib("show_net_weights")
    h, w = img.shape[:2]
    dpi = 100
    fig = Figure(figsize=(w / dpi, _TITLE_PX / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
    canvas.draw()
    strip = np.asarray(canvas.buffer_rgba())[:, :, :3]
    return np.concatenate([strip[:_TITLE_PX, :w], img], axis=0)
