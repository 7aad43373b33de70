"""Augmentation: flips and translations against a NumPy formula, buffers, determinism."""
import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc.augment import Augmenter, parse_augment


def numpy_augment(img, flip, dy, dx):
    """Flip left-right (when asked), then translate by (dy, dx) with zero padding."""
    if flip:
        img = img[:, :, ::-1]
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * abs(dy) + 2, w + 2 * abs(dx) + 2), dtype=img.dtype)
    oy, ox = abs(dy) + 1, abs(dx) + 1
    padded[:, oy:oy + h, ox:ox + w] = img
    return padded[:, oy - dy:oy - dy + h, ox - dx:ox - dx + w]


@pytest.mark.parametrize("src_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 4, 4), (2, 1, 3)])
def test_matches_numpy_formula(src_dtype, out_dtype, shape):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6,) + shape).astype(src_dtype)
    idx = np.array([5, 0, 3, 3, 1, 2, 4, 0])
    aug = Augmenter(shape, flip=True, translate=2, seed=7)
    out = aug(X, idx, dtype=out_dtype)
    flip, sy, sx = Augmenter(shape, flip=True, translate=2, seed=7).draw(len(idx))
    assert out.dtype == out_dtype and out.shape == (len(idx), int(np.prod(shape)))
    for i, k in enumerate(idx):
        want = numpy_augment(X[k].astype(np.float64), flip[i], sy[i], sx[i])
        np.testing.assert_allclose(out[i].reshape(shape), want, rtol=1e-6, atol=1e-6)


def test_translation_beyond_the_image_gives_zeros():
    X = np.ones((1, 1, 3, 3))
    aug = Augmenter((1, 3, 3), flip=False, translate=3, seed=0)
    flip, sy, sx = aug.draw(1)
    assert not flip[0]
    # force a full shift through the kernel by drawing until one is maximal
    aug = Augmenter((1, 3, 3), flip=False, translate=3, seed=0)
    for _ in range(200):
        state = aug.get_state()
        f, dy, dx = aug.draw(1)
        if abs(dy[0]) == 3 or abs(dx[0]) == 3:
            aug.set_state(state)
            out = aug(X, [0])
            assert np.all(out == 0)
            return
    pytest.fail("no maximal shift drawn in 200 tries")


def test_same_seed_same_batch_and_different_seed_differs():
    X = np.random.default_rng(1).standard_normal((10, 3, 8, 8))
    idx = np.arange(10)
    a = Augmenter((3, 8, 8), flip=True, translate=2, seed=3)(X, idx)
    b = Augmenter((3, 8, 8), flip=True, translate=2, seed=3)(X, idx)
    c = Augmenter((3, 8, 8), flip=True, translate=2, seed=4)(X, idx)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_no_augmentation_is_a_gather():
    X = np.random.default_rng(2).standard_normal((5, 12))
    out = Augmenter((3, 2, 2), flip=False, translate=0)(X, [4, 1, 1])
    np.testing.assert_array_equal(out, X[[4, 1, 1]])


def test_writes_into_the_given_buffer_without_allocating_it():
    X = np.random.default_rng(3).standard_normal((5, 3, 4, 4)).astype(np.float32)
    buf = np.full((8, 48), np.nan, dtype=np.float32)
    out = Augmenter((3, 4, 4), flip=True, translate=1, seed=0)(X, [0, 1, 2], out=buf)
    assert out is buf
    assert np.isfinite(buf[:3]).all() and np.isnan(buf[3:]).all()


def test_flip_probability_and_shift_range():
    aug = Augmenter((1, 4, 4), flip=True, translate=2, seed=0)
    flip, sy, sx = aug.draw(20000)
    assert 0.47 < flip.mean() < 0.53
    assert sy.min() == -2 and sy.max() == 2 and sx.min() == -2 and sx.max() == 2


@pytest.mark.parametrize("bad", [
    dict(image_shape=(3, 4)),
    dict(image_shape=(3, 0, 4)),
    dict(translate=-1),
    dict(translate=1.5),
])
def test_bad_settings(bad):
    kwargs = dict(image_shape=(3, 4, 4), flip=True, translate=1)
    kwargs.update(bad)
    with pytest.raises((ValueError, TypeError)):
        Augmenter(**kwargs)


def test_bad_calls():
    aug = Augmenter((3, 4, 4), flip=True, translate=1)
    X = np.zeros((4, 48))
    with pytest.raises(ValueError, match="indices"):
        aug(X, [0, 4])
    with pytest.raises(ValueError, match="X has shape"):
        aug(np.zeros((4, 47)), [0])
    with pytest.raises(ValueError, match="out must have shape"):
        aug(X, [0, 1], out=np.zeros((1, 48)))
    with pytest.raises(TypeError, match="out"):
        aug(X, [0], out=np.zeros((1, 48), dtype=np.int32))


def test_parse_augment():
    a = parse_augment("flip,translate=2", image_shape=(3, 8, 8), seed=0)
    assert a.flip and a.translate == 2 and a.image_shape == (3, 8, 8)
    assert parse_augment(None) is None and parse_augment("") is None
    assert parse_augment("translate=1").flip is False
    for bad in ("flop", "translate=x", "translate"):
        with pytest.raises(ValueError, match="augment"):
            parse_augment(bad)


def test_solver_uses_augmentation_on_both_paths():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 3, 4, 4)
    y = rng.randint(3, size=120)
    data = dict(X_train=X[:100], y_train=y[:100], X_val=X[100:], y_val=y[100:])
    results = []
    for make in (lambda: Net([48, 16, 3], seed=0, dtype=np.float64),):
        for augment in (None, Augmenter((3, 4, 4), flip=True, translate=1, seed=0)):
            np.random.seed(0)
            model = make()
            s = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.1},
                       num_epochs=2, batch_size=20, verbose=False, augment=augment)
            s.train()
            results.append(np.array(s.loss_history))
    # augmentation changes what the net sees, so the losses differ
    assert not np.allclose(results[0], results[1])
