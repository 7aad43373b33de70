"""Tests of fastfc.vis_utils.visualize_grid."""
import math

import numpy as np
import pytest

from fastfc.vis_utils import visualize_grid


def _tile(grid, k, G, H, W, padding):
    row, col = divmod(k, G)
    y0, x0 = row * (H + padding), col * (W + padding)
    return grid[y0:y0 + H, x0:x0 + W]


def _tile_mask(shape, N, G, H, W, padding):
    """True on pixels covered by one of the N tiles."""
    mask = np.zeros(shape[:2], dtype=bool)
    for k in range(N):
        row, col = divmod(k, G)
        y0, x0 = row * (H + padding), col * (W + padding)
        mask[y0:y0 + H, x0:x0 + W] = True
    return mask


@pytest.mark.parametrize("N, H, W, C, padding", [
    (1, 4, 5, 3, 1),
    (2, 3, 3, 1, 1),
    (4, 2, 3, 3, 2),
    (5, 3, 2, 3, 0),
    (10, 4, 4, 3, 3),
    (17, 2, 2, 2, 1),
])
def test_shape_and_tiles(N, H, W, C, padding):
    rng = np.random.default_rng(N)
    Xs = rng.standard_normal((N, H, W, C)) * 7 + 3
    ubound = 255.0
    grid = visualize_grid(Xs, ubound=ubound, padding=padding)
    G = math.ceil(math.sqrt(N))
    assert grid.shape == (G * H + (G - 1) * padding, G * W + (G - 1) * padding, C)
    assert np.all(np.isfinite(grid))
    for k in range(N):
        tile = _tile(grid, k, G, H, W, padding)
        img = Xs[k]
        expected = ubound * (img - img.min()) / (img.max() - img.min())
        np.testing.assert_allclose(tile, expected, rtol=1e-12, atol=1e-10)
        assert tile.min() == pytest.approx(0.0, abs=1e-10)
        assert tile.max() == pytest.approx(ubound, rel=1e-12)
    # padding pixels and the unused tile slots are zero
    mask = _tile_mask(grid.shape, N, G, H, W, padding)
    assert np.all(grid[~mask] == 0)


def test_padding_pixels_are_zero_between_tiles():
    Xs = np.random.default_rng(0).uniform(1, 2, (4, 3, 3, 1))
    grid = visualize_grid(Xs, ubound=1.0, padding=2)
    assert grid.shape == (8, 8, 1)
    assert np.all(grid[3:5, :, :] == 0)
    assert np.all(grid[:, 3:5, :] == 0)


def test_ubound_scales_each_tile_separately():
    Xs = np.stack([np.arange(12.0).reshape(2, 2, 3), 100 + 5 * np.arange(12.0).reshape(2, 2, 3)])
    grid = visualize_grid(Xs, ubound=10.0, padding=1)
    # both images are affine in the same pattern, so both tiles are identical
    t0 = grid[0:2, 0:2]
    t1 = grid[0:2, 3:5]
    np.testing.assert_allclose(t0, np.arange(12.0).reshape(2, 2, 3) * 10.0 / 11.0, rtol=1e-12)
    np.testing.assert_allclose(t1, t0, rtol=1e-12)
    assert grid.shape == (5, 5, 3)
    assert np.all(grid[3:, :] == 0)


def test_constant_image_gives_zeros():
    Xs = np.full((3, 2, 2, 3), 4.2)
    Xs[1] = np.arange(12.0).reshape(2, 2, 3)
    grid = visualize_grid(Xs)
    assert not np.any(np.isnan(grid))
    G, H, W, padding = 2, 2, 2, 1
    np.testing.assert_array_equal(_tile(grid, 0, G, H, W, padding), 0.0)
    np.testing.assert_array_equal(_tile(grid, 2, G, H, W, padding), 0.0)
    assert _tile(grid, 1, G, H, W, padding).max() == pytest.approx(255.0)


def test_single_image():
    img = np.random.default_rng(1).standard_normal((1, 5, 4, 3))
    grid = visualize_grid(img, ubound=1.0, padding=3)
    assert grid.shape == (5, 4, 3)
    expected = (img[0] - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(grid, expected, rtol=1e-12, atol=1e-14)


def test_single_pixel_images():
    Xs = np.arange(4.0).reshape(4, 1, 1, 1)
    grid = visualize_grid(Xs, padding=1)
    # each 1x1 image is constant -> zeros; no NaN
    assert grid.shape == (3, 3, 1)
    np.testing.assert_array_equal(grid, 0.0)


def test_float32_and_integer_input():
    rng = np.random.default_rng(2)
    Xs = rng.integers(0, 256, size=(3, 4, 4, 3)).astype(np.uint8)
    Xs[:, 0, 0, 0] = 0
    Xs[:, 0, 0, 1] = 255
    grid = visualize_grid(Xs)
    # uint8 arithmetic must not wrap: a 0..255 image maps onto itself
    np.testing.assert_allclose(_tile(grid, 0, 2, 4, 4, 1), Xs[0].astype(np.float64), rtol=1e-12)
    grid32 = visualize_grid(Xs.astype(np.float32) / 255)
    np.testing.assert_allclose(grid32, grid, rtol=1e-5, atol=1e-4)


def test_input_not_modified():
    Xs = np.random.default_rng(3).standard_normal((3, 2, 2, 3))
    X0 = Xs.copy()
    visualize_grid(Xs)
    np.testing.assert_array_equal(Xs, X0)


@pytest.mark.parametrize("shape", [(4, 4, 3), (2, 4, 4, 3, 1), (5,), ()])
def test_bad_ndim(shape):
    with pytest.raises(ValueError, match="Xs"):
        visualize_grid(np.zeros(shape))


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        visualize_grid(np.zeros((2, 2, 2, 1)), padding=-1)
    with pytest.raises(TypeError, match="padding"):
        visualize_grid(np.zeros((2, 2, 2, 1)), padding=1.5)
    with pytest.raises(TypeError, match="Xs"):
        visualize_grid(np.array([[[["a"]]]]))
