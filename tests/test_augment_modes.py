"""Augmentation modes: padding of the translation (zero, reflect, edge) and cutout,
against a NumPy reference with fixed draws; spec parsing; random streams; checkpoints."""
import numpy as np
import pytest

from fastfc.augment import PAD_MODES, AugmentDraws, Augmenter, parse_augment

NP_PAD = {"zero": "constant", "reflect": "reflect", "edge": "edge"}


def numpy_reference(img, flip, dy, dx, pad="zero", cutout=0, cy=0, cx=0):
    """Flip, translate reading numpy.pad's padded image, then zero the cutout square."""
    c, h, w = img.shape
    if flip:
        img = img[:, :, ::-1]
    py, px = abs(dy), abs(dx)
    padded = np.pad(img, ((0, 0), (py, py), (px, px)), mode=NP_PAD[pad])
    out = padded[:, py - dy:py - dy + h, px - dx:px - dx + w].copy()
    if cutout:
        y0, x0 = cy - cutout // 2, cx - cutout // 2
        out[:, max(y0, 0):max(y0 + cutout, 0), max(x0, 0):max(x0 + cutout, 0)] = 0
    return out


def random_draws(rng, n, shape, translate, cut=True):
    c, h, w = shape
    return AugmentDraws(
        rng.integers(0, 2, n).astype(np.uint8),
        rng.integers(-translate, translate + 1, n).astype(np.int32),
        rng.integers(-translate, translate + 1, n).astype(np.int32),
        rng.integers(0, h, n).astype(np.int32) if cut else None,
        rng.integers(0, w, n).astype(np.int32) if cut else None)


@pytest.mark.parametrize("pad", PAD_MODES)
@pytest.mark.parametrize("cutout", [0, 1, 3, 4])
@pytest.mark.parametrize("shape", [(3, 6, 7), (1, 5, 5), (2, 1, 4), (2, 4, 1)])
def test_modes_match_numpy_reference(pad, cutout, shape):
    rng = np.random.default_rng(hash((pad, cutout, shape)) % 2**32)
    X = rng.standard_normal((7,) + shape)
    idx = rng.integers(0, 7, 40)
    translate = max(shape[1:])  # shifts as large as the image: repeated reflections
    aug = Augmenter(shape, flip=True, translate=translate, pad=pad, cutout=cutout)
    draws = random_draws(rng, len(idx), shape, translate, cut=bool(cutout))
    out = aug.apply(X, idx, draws)
    for i, k in enumerate(idx):
        want = numpy_reference(X[k], draws.flip[i], draws.shift_y[i], draws.shift_x[i], pad,
                               cutout, draws.cut_y[i] if cutout else 0,
                               draws.cut_x[i] if cutout else 0)
        np.testing.assert_array_equal(out[i].reshape(shape), want)


@pytest.mark.parametrize("src", [np.float32, np.float64])
@pytest.mark.parametrize("dst", [np.float32, np.float64])
def test_all_dtype_pairs_on_cifar_shape(src, dst):
    rng = np.random.default_rng(5)
    shape = (3, 32, 32)
    X = rng.standard_normal((9, 3072)).astype(src)
    idx = np.array([8, 0, 3, 3, 1, 7, 2, 4, 5, 6, 0])
    aug = Augmenter(shape, flip=True, translate=4, seed=11, pad="reflect", cutout=8)
    out = aug(X, idx, dtype=dst)
    draws = Augmenter(shape, flip=True, translate=4, seed=11, cutout=8).draw_all(len(idx))
    assert out.dtype == dst
    for i, k in enumerate(idx):
        want = numpy_reference(X[k].reshape(shape), draws.flip[i], draws.shift_y[i],
                               draws.shift_x[i], "reflect", 8, draws.cut_y[i],
                               draws.cut_x[i]).astype(dst)
        np.testing.assert_array_equal(out[i].reshape(shape), want)


def test_reflect_and_edge_values_by_hand():
    img = np.arange(4.0).reshape(1, 1, 4)          # one row: 0 1 2 3
    X = img.reshape(1, 4)
    for pad, dx, want in [("reflect", 2, [2, 1, 0, 1]), ("reflect", -2, [2, 3, 2, 1]),
                          ("edge", 2, [0, 0, 0, 1]), ("edge", -3, [3, 3, 3, 3]),
                          ("zero", 1, [0, 0, 1, 2]), ("reflect", 4, [2, 3, 2, 1])]:
        aug = Augmenter((1, 1, 4), flip=False, translate=4, pad=pad)
        draws = AugmentDraws(np.zeros(1, np.uint8), np.zeros(1, np.int32),
                             np.array([dx], np.int32))
        np.testing.assert_array_equal(aug.apply(X, [0], draws)[0], want, err_msg=pad)


def test_cutout_square_by_hand_and_clipped_at_the_corner():
    X = np.ones((1, 2 * 5 * 6))
    aug = Augmenter((2, 5, 6), flip=False, translate=0, cutout=3)
    zero = np.zeros(1, np.int32)
    out = aug.apply(X, [0], AugmentDraws(np.zeros(1, np.uint8), zero, zero,
                                         np.array([2], np.int32), np.array([3], np.int32)))
    img = out.reshape(2, 5, 6)
    want = np.ones((5, 6))
    want[1:4, 2:5] = 0
    np.testing.assert_array_equal(img[0], want)
    np.testing.assert_array_equal(img[1], want)
    # centre in the corner: only the part inside the image is erased (2 x 2 of 3 x 3)
    out = aug.apply(X, [0], AugmentDraws(np.zeros(1, np.uint8), zero, zero,
                                         np.array([0], np.int32), np.array([0], np.int32)))
    assert (out == 0).sum() == 2 * 4
    assert np.all(out.reshape(2, 5, 6)[:, :2, :2] == 0)


def test_cutout_even_size_erases_exactly_that_square_inside():
    X = np.ones((1, 10 * 10))
    aug = Augmenter((1, 10, 10), flip=False, translate=0, cutout=4, seed=0)
    for _ in range(50):
        state = aug.get_state()
        cy, cx = aug.draw_all(1)[3:]
        aug.set_state(state)
        out = aug(X, [0]).reshape(10, 10)
        y0, x0 = cy[0] - 2, cx[0] - 2
        rows = min(y0 + 4, 10) - max(y0, 0)
        cols = min(x0 + 4, 10) - max(x0, 0)
        assert (out == 0).sum() == rows * cols
        if 2 <= cy[0] <= 8 and 2 <= cx[0] <= 8:
            assert rows * cols == 16


def test_existing_streams_are_unchanged_by_pad_and_cutout():
    """pad draws nothing; cutout draws after the flips and shifts of each minibatch."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3, 8, 8))
    idx = rng.integers(0, 20, 16)
    base = Augmenter((3, 8, 8), flip=True, translate=2, seed=3)
    padded = Augmenter((3, 8, 8), flip=True, translate=2, seed=3, pad="reflect")
    for _ in range(3):
        f0, y0, x0 = base.draw(16)
        d = padded.draw_all(16)
        assert d.cut_y is None and d.cut_x is None
        for got, want in zip(d[:3], (f0, y0, x0)):
            np.testing.assert_array_equal(got, want)
    # with cutout, a minibatch's flips and shifts are the ones drawn without it
    f0, y0, x0 = Augmenter((3, 8, 8), flip=True, translate=2, seed=3).draw(16)
    d = Augmenter((3, 8, 8), flip=True, translate=2, seed=3, cutout=3).draw_all(16)
    for got, want in zip(d[:3], (f0, y0, x0)):
        np.testing.assert_array_equal(got, want)
    # zero padding without cutout: outputs identical to the default Augmenter
    a = Augmenter((3, 8, 8), flip=True, translate=2, seed=9)(X, idx)
    b = Augmenter((3, 8, 8), flip=True, translate=2, seed=9, pad="zero", cutout=0)(X, idx)
    np.testing.assert_array_equal(a, b)


def test_cutout_draw_order_in_the_stream():
    aug = Augmenter((3, 8, 8), flip=True, translate=2, seed=5, cutout=2)
    d = aug.draw_all(10)
    g = np.random.default_rng(5)
    np.testing.assert_array_equal(d.flip, g.integers(0, 2, size=10, dtype=np.uint8))
    sh = g.integers(-2, 3, size=(2, 10), dtype=np.int32)
    np.testing.assert_array_equal(d.shift_y, sh[0])
    np.testing.assert_array_equal(d.shift_x, sh[1])
    np.testing.assert_array_equal(d.cut_y, g.integers(0, 8, size=10, dtype=np.int32))
    np.testing.assert_array_equal(d.cut_x, g.integers(0, 8, size=10, dtype=np.int32))


def test_call_equals_apply_of_draw_all():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 3 * 6 * 6)).astype(np.float32)
    idx = rng.integers(0, 12, 9)
    a = Augmenter((3, 6, 6), flip=True, translate=3, seed=2, pad="edge", cutout=4)
    b = Augmenter((3, 6, 6), flip=True, translate=3, seed=2, pad="edge", cutout=4)
    np.testing.assert_array_equal(a(X, idx), b.apply(X, idx, b.draw_all(len(idx))))


@pytest.mark.parametrize("pad", PAD_MODES)
def test_state_round_trip_is_exact(pad):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 3 * 8 * 8))
    aug = Augmenter((3, 8, 8), flip=True, translate=3, seed=4, pad=pad, cutout=5)
    aug(X, np.arange(10))
    state = aug.get_state()
    first = [aug(X, rng.integers(0, 30, 8)) for _ in range(3)]
    fresh = Augmenter((3, 8, 8), flip=True, translate=3, seed=99, pad=pad, cutout=5)
    fresh.set_state(state)
    rng = np.random.default_rng(2)
    rng.standard_normal((30, 3 * 8 * 8))
    second = [fresh(X, rng.integers(0, 30, 8)) for _ in range(3)]
    for p, q in zip(first, second):
        np.testing.assert_array_equal(p, q)


def test_writes_only_the_first_rows_of_the_buffer():
    X = np.random.default_rng(3).standard_normal((5, 3, 4, 4)).astype(np.float32)
    buf = np.full((8, 48), np.nan, dtype=np.float32)
    out = Augmenter((3, 4, 4), translate=2, seed=0, pad="reflect", cutout=2)(X, [0, 1, 2],
                                                                             out=buf)
    assert out is buf
    assert np.isfinite(buf[:3]).all() and np.isnan(buf[3:]).all()


def test_parse_full_spec():
    a = parse_augment("flip,translate=4,pad=reflect,cutout=8", seed=0)
    assert (a.flip, a.translate, a.pad, a.cutout, a.image_shape) == (
        True, 4, "reflect", 8, (3, 32, 32))
    b = parse_augment(" cutout=2 , pad=edge,translate=1 ", image_shape=(1, 8, 8))
    assert (b.flip, b.translate, b.pad, b.cutout) == (False, 1, "edge", 2)
    assert parse_augment("cutout=6").translate == 0
    assert parse_augment("flip,translate=2").pad == "zero"
    assert parse_augment("flip,translate=2").cutout == 0
    assert repr(a) == ("Augmenter(image_shape=(3, 32, 32), flip=True, translate=4, "
                       "pad='reflect', cutout=8)")


@pytest.mark.parametrize("bad, match", [
    ("pad=wrap", "pad must be one of"),
    ("pad", "write pad=zero"),
    ("cutout", "write cutout=K"),
    ("cutout=x", "cutout needs an integer"),
    ("cutout=-1", "cutout must be >= 0"),
    ("cutout=33", "cutout must be <= 32"),
    ("translate=2,translate=3", "given twice"),
    ("flip=yes", "flip takes no value"),
    ("blur=2", "unknown item 'blur=2'"),
])
def test_parse_errors_name_the_item(bad, match):
    with pytest.raises(ValueError, match="augment: .*" + match):
        parse_augment(bad)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(pad="wrap"), ValueError),
    (dict(pad=None), ValueError),
    (dict(cutout=-1), ValueError),
    (dict(cutout=9), ValueError),
    (dict(cutout=2.5), TypeError),
])
def test_bad_settings(kwargs, exc):
    with pytest.raises(exc):
        Augmenter((3, 8, 8), **kwargs)


def test_bad_draws_for_apply():
    aug = Augmenter((1, 4, 4), translate=1, cutout=2)
    X = np.zeros((3, 16))
    z = np.zeros(2, np.int32)
    f = np.zeros(2, np.uint8)
    with pytest.raises(ValueError, match="cut_y and draws.cut_x are needed"):
        aug.apply(X, [0, 1], AugmentDraws(f, z, z))
    with pytest.raises(ValueError, match="draws.shift_x must be 2 integers"):
        aug.apply(X, [0, 1], AugmentDraws(f, z, np.zeros(3, np.int32), z, z))
    with pytest.raises(ValueError, match=r"draws.cut_x must lie in \[0, 4\)"):
        aug.apply(X, [0, 1], AugmentDraws(f, z, z, z, np.array([0, 4], np.int32)))
    with pytest.raises(ValueError, match="draws.flip must be 2 integers, got None"):
        aug.apply(X, [0, 1], AugmentDraws(None, z, z, z, z))
    with pytest.raises(TypeError, match="AugmentDraws"):
        aug.apply(X, [0, 1], (f, z))
