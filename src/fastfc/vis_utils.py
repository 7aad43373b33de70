"""Pictures: image grids (NumPy only) and, with the ``plot`` extra, PNG plots."""
from math import ceil, sqrt

import numpy as np

from fastfc import _validation as V

__all__ = ["visualize_grid", "vis_grid", "vis_nn"]


def _rescale(img, ubound):
    low, high = float(np.min(img)), float(np.max(img))
    if high == low:
        return np.zeros_like(img, dtype=np.float64)
    return ubound * (img - low) / (high - low)


def visualize_grid(Xs, ubound=255.0, padding=1):
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
    """
    Xs = V.as_array(Xs, "Xs")
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {Xs.shape}")
    if Xs.shape[0] == 0:
        raise ValueError("Xs must hold at least one image")
    padding = V.check_scalar(padding, "padding", low=0, integer=True)
    ubound = V.check_scalar(ubound, "ubound")
    N, H, W, C = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    for k in range(N):
        row, col = divmod(k, grid_size)
        y0 = row * (H + padding)
        x0 = col * (W + padding)
        grid[y0:y0 + H, x0:x0 + W] = _rescale(Xs[k], ubound)
    return grid


def vis_grid(Xs):
    """Tile images (N, H, W, C) into a square grid with one-pixel gaps, values unscaled."""
    Xs = V.as_array(Xs, "Xs")
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {Xs.shape}")
    N, H, W, C = Xs.shape
    A = int(ceil(sqrt(N)))
    G = np.ones((A * H + A, A * W + A, C), Xs.dtype)
    G *= np.min(Xs)
    for k in range(N):
        y, x = divmod(k, A)
        G[y * H + y:(y + 1) * H + y, x * W + x:(x + 1) * W + x, :] = Xs[k]
    maxg, ming = G.max(), G.min()
    return (G - ming) / (maxg - ming) if maxg > ming else np.zeros_like(G, dtype=float)


def vis_nn(rows):
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
