"""Tests of the PNG writers in fastfc.vis_utils: plot_history and show_net_weights."""
import io
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastfc.classifiers.neural_net import TwoLayerNet as MonolithicTwoLayerNet
from fastfc.vis_utils import plot_history, show_net_weights, visualize_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    """(width, height) from the IHDR chunk, after checking the PNG framing."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert zlib.crc32(data[12:29]) == int.from_bytes(data[29:33], "big")  # IHDR intact
    assert data[-8:-4] == b"IEND"                                          # file complete
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def read_png(path):
    from matplotlib.image import imread
    return imread(path)  # float in [0, 1], (H, W, C)


def histories(n=300, checks=6, seed=0):
    rng = np.random.default_rng(seed)
    loss = 2.3 * np.exp(-np.arange(n) / 100) + 0.1 * rng.random(n)
    acc = np.linspace(0.1, 0.9, checks)
    return {"loss_history": list(loss), "train_acc_history": list(acc),
            "val_acc_history": list(acc - 0.05)}


# ---- plot_history -----------------------------------------------------------------

def test_plot_history_from_a_trained_solver(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int)
    data = {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}
    np.random.seed(0)
    model = TwoLayerNet(input_dim=5, hidden_dim=8, num_classes=2, weight_scale=1e-1)
    solver = Solver(model, data, num_epochs=4, batch_size=10, verbose=False,
                    optim_config={"learning_rate": 1e-1})
    solver.train()
    path = tmp_path / "history.png"
    assert plot_history(solver, path) == path
    data = path.read_bytes()
    assert png_size(data) == (800, 700)
    assert len(data) > 5_000


def test_plot_history_from_a_dict_and_dpi(tmp_path):
    path = str(tmp_path / "h.png")
    assert plot_history(histories(), path, title="a run", dpi=50) == path
    data = open(path, "rb").read()
    assert png_size(data) == (400, 350)
    assert len(data) > 5_000


def _coloured(img):
    """Number of clearly coloured (non-grey) pixels: the curves, not text or frames."""
    rgb = img[:, :, :3]
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())


def test_plot_history_draws_the_curves(tmp_path):
    full = tmp_path / "full.png"
    plot_history(histories(), full)
    loss_only = tmp_path / "loss.png"
    plot_history({"loss_history": histories()["loss_history"]}, loss_only)
    acc_only = tmp_path / "acc.png"
    h = histories()
    plot_history({"train_acc_history": h["train_acc_history"],
                  "val_acc_history": h["val_acc_history"]}, acc_only)
    a, b, c = read_png(full), read_png(loss_only), read_png(acc_only)
    half = a.shape[0] // 2
    top, bottom = slice(0, half), slice(half, None)
    assert _coloured(a[top]) > 1000 and _coloured(a[bottom]) > 1000
    assert _coloured(b[top]) > 1000 and _coloured(b[bottom]) == 0
    assert _coloured(c[top]) == 0 and _coloured(c[bottom]) > 1000


def test_plot_history_from_neural_net_train(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, 50)
    np.random.seed(0)
    net = MonolithicTwoLayerNet(4, 10, 3, std=1e-1)
    stats = net.train(X, y, X, y, learning_rate=1e-1, num_iters=60, batch_size=10)
    buf = io.BytesIO()
    assert plot_history(stats, buf) is buf
    assert png_size(buf.getvalue()) == (800, 700)


def test_plot_history_with_non_finite_losses(tmp_path):
    h = histories()
    h["loss_history"][200:] = [float("nan")] * 99 + [float("inf")]
    path = tmp_path / "nan.png"
    plot_history(h, path)
    assert png_size(path.read_bytes()) == (800, 700)


@pytest.mark.parametrize("bad, err, pattern", [
    ({"loss_history": [], "train_acc_history": [], "val_acc_history": []}, ValueError,
     "nothing to plot"),
    (42, TypeError, "Solver or a dict"),
    ({"losses": [1, 2]}, TypeError, "Solver or a dict"),
    ({"loss_history": ["a", "b"]}, TypeError, "loss_history"),
    ({"loss_history": [[1, 2], [3, 4]]}, ValueError, "1-dimensional"),
])
def test_plot_history_bad_input(tmp_path, bad, err, pattern):
    path = tmp_path / "x.png"
    with pytest.raises(err, match=pattern):
        plot_history(bad, path)
    assert not path.exists()


def test_plot_history_bad_path():
    with pytest.raises(TypeError, match="path"):
        plot_history(histories(), 3.5)


# ---- show_net_weights -------------------------------------------------------------

def grid_px(n_hidden, side, padding=3):
    G = int(np.ceil(np.sqrt(n_hidden)))
    return G * side + (G - 1) * padding


@pytest.mark.parametrize("model_factory, n_hidden, side", [
    (lambda: FullyConnectedNet([25], weight_scale=1e-2), 25, 32),          # CIFAR: 3072
    (lambda: TwoLayerNet(input_dim=64, hidden_dim=50), 50, 8),             # digits: 64
    (lambda: Net([784, 16, 10], seed=0), 16, 28),                          # MNIST: 784
    (lambda: MonolithicTwoLayerNet(64, 36, 10, std=1e-1, variant="ucla"), 36, 8),
])
def test_show_net_weights_png(tmp_path, model_factory, n_hidden, side):
    np.random.seed(0)
    model = model_factory()
    path = tmp_path / "w.png"
    assert show_net_weights(model, path) == path
    data = path.read_bytes()
    g = grid_px(n_hidden, side)
    k = -(-512 // g)
    assert png_size(data) == (g * k, g * k)
    assert len(data) > 5_000


def _tile(img, j, n_hidden, side, k, padding=3):
    G = int(np.ceil(np.sqrt(n_hidden)))
    r, c = divmod(j, G)
    y0, x0 = r * (side + padding) * k, c * (side + padding) * k
    return img[y0:y0 + side * k:k, x0:x0 + side * k:k, :3]   # one pixel per input pixel


def test_show_net_weights_layout_is_channel_first(tmp_path):
    # unit 0 sees only red; unit 1 is a top-to-bottom ramp in every channel
    W = np.zeros((3, 32, 32, 4))
    W[0, :, :, 0] = 1.0
    W[:, :, :, 1] = np.arange(32)[None, :, None]
    W[:, :, :, 2] = np.arange(32)[None, None, :]
    W[2, :16, :, 3] = 1.0
    params = {"W1": W.reshape(3072, 4)}
    path = tmp_path / "w.png"
    show_net_weights(params, path)
    img = read_png(path)
    k = img.shape[0] // grid_px(4, 32)
    t0, t1, t2, t3 = (_tile(img, j, 4, 32, k) for j in range(4))
    np.testing.assert_allclose(t0.reshape(-1, 3), np.tile([1.0, 0, 0], (1024, 1)), atol=1 / 255)
    assert t1[0, 0].max() < 0.01 and t1[-1, 0].min() > 0.99       # dark top, bright bottom
    np.testing.assert_allclose(t1[:, 0, 0], np.arange(32) / 31, atol=1 / 255)
    np.testing.assert_allclose(t2[0, :, 0], np.arange(32) / 31, atol=1 / 255)
    np.testing.assert_allclose(t3[:16].reshape(-1, 3), np.tile([0, 0, 1.0], (512, 1)), atol=1 / 255)
    np.testing.assert_allclose(t3[16:], 0, atol=1 / 255)

    # the same pictures from NHWC-flattened rows with channels_last=True
    path2 = tmp_path / "w2.png"
    show_net_weights({"W1": W.transpose(1, 2, 0, 3).reshape(3072, 4)}, path2,
                     channels_last=True)
    np.testing.assert_array_equal(read_png(path2), img)


def test_show_net_weights_is_visualize_grid_upscaled(tmp_path):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 9))
    path = tmp_path / "w.png"
    show_net_weights({"W1": W}, path, padding=2, min_size=100)
    img = read_png(path)
    grid = visualize_grid(W.reshape(1, 8, 8, 9).transpose(3, 1, 2, 0), padding=2)
    k = -(-100 // grid.shape[0])
    assert img.shape[:2] == (grid.shape[0] * k, grid.shape[1] * k)
    want = np.rint(grid[:, :, 0]) / 255
    np.testing.assert_allclose(img[::k, ::k, 0], want, atol=1e-6)


def test_show_net_weights_image_shape_and_file_object(tmp_path):
    W = np.random.default_rng(0).standard_normal((3 * 4 * 6, 5))
    buf = io.BytesIO()
    show_net_weights({"W1": W}, buf, image_shape=(3, 4, 6), min_size=1, padding=1)
    g = 3 * 6 + 2, 3 * 4 + 2  # width, height of a 3x3 grid of 4x6 tiles
    assert png_size(buf.getvalue()) == g


@pytest.mark.parametrize("model, kwargs, err, pattern", [
    ({"W1": np.zeros((10, 4))}, {}, ValueError, "image_shape"),
    ({"W1": np.zeros((64, 4))}, {"image_shape": (1, 8, 9)}, ValueError, "72 values"),
    ({"W1": np.zeros((64, 4))}, {"image_shape": (4, 4, 4)}, ValueError, "1 \\(grey\\) or 3"),
    ({"W1": np.zeros((64, 4))}, {"image_shape": (1, 8)}, ValueError, "image_shape"),
    ({"W1": np.zeros((64, 4))}, {"image_shape": (1, 8.5, 8)}, TypeError, "image_shape"),
    ({"W2": np.zeros((64, 4))}, {}, TypeError, "W1"),
    (object(), {}, TypeError, "W1"),
    ({"W1": np.zeros(64)}, {}, ValueError, "2-dimensional"),
])
def test_show_net_weights_bad_input(tmp_path, model, kwargs, err, pattern):
    path = tmp_path / "x.png"
    with pytest.raises(err, match=pattern):
        show_net_weights(model, path, **kwargs)
    assert not path.exists()


# ---- the plot extra ---------------------------------------------------------------

def test_missing_matplotlib_names_the_plot_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fastfc\[plot\]"'):
        plot_history(histories(), tmp_path / "h.png")
    with pytest.raises(ImportError, match=r'pip install "fastfc\[plot\]"'):
        show_net_weights({"W1": np.zeros((64, 4))}, tmp_path / "w.png")


def test_headless_and_no_pyplot(tmp_path):
    # a fresh interpreter with no display and an interactive backend requested: the
    # writers must not touch pyplot or the backend machinery
    script = f"""
import sys, numpy as np
import fastfc.vis_utils as vu
vu.plot_history({{"loss_history": [3, 2, 1], "train_acc_history": [.1, .5],
                 "val_acc_history": [.1, .4]}}, {str(tmp_path / 'h.png')!r})
vu.show_net_weights({{"W1": np.random.rand(64, 4)}}, {str(tmp_path / 'w.png')!r})
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    import fastfc
    # the child must import the same fastfc as this process (installed or in place)
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastfc.__file__)))
    env["PYTHONPATH"] = where + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    for name in ("h.png", "w.png"):
        png_size((tmp_path / name).read_bytes())


# ---- best epoch, readable subsets, atomic writes ------------------------------------

def _green(img):
    """Pixels in matplotlib's tab:green (#2ca02c): the best-epoch mark and nothing else."""
    rgb = img[:, :, :3]
    return int((np.abs(rgb - np.array([0x2c, 0xa0, 0x2c]) / 255).max(axis=-1) < 0.05).sum())


def test_plot_history_marks_the_best_epoch(tmp_path):
    h = histories(checks=6)
    h["val_acc_history"] = [0.1, 0.5, 0.8, 0.7, 0.8, 0.6]   # best: the first 0.8, epoch 2
    path = tmp_path / "h.png"
    plot_history(h, path)
    assert _green(read_png(path)) > 100
    from fastfc.vis_utils import _best_check
    assert _best_check(np.array(h["val_acc_history"])) == 2
    assert _best_check(np.array([np.nan, 0.2, 0.2])) == 1
    assert _best_check(np.array([])) is None
    # no validation history, no mark
    plot_history({"loss_history": h["loss_history"]}, path)
    assert _green(read_png(path)) == 0


def test_show_net_weights_draws_the_first_100_units_of_a_wide_net(tmp_path):
    W = np.random.default_rng(0).standard_normal((3072, 1024))
    wide, first = tmp_path / "wide.png", tmp_path / "first.png"
    show_net_weights({"W1": W}, wide)
    show_net_weights({"W1": W[:, :100]}, first)
    img, ref = read_png(wide), read_png(first)
    # the same grid of the first 100 units, under a title strip that says so
    assert img.shape[0] == ref.shape[0] + 28 and img.shape[1] == ref.shape[1]
    np.testing.assert_array_equal(img[28:], ref)
    assert (img[:28, :, :3] < 0.5).any()            # the title's text
    everything = tmp_path / "all.png"
    show_net_weights({"W1": W[:, :144]}, everything, max_units=None, min_size=1)
    g = grid_px(144, 32)
    assert png_size(everything.read_bytes()) == (g, g)
    with pytest.raises(ValueError, match="max_units"):
        show_net_weights({"W1": W}, tmp_path / "x.png", max_units=0)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_pngs_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    for name, draw in (("h.png", lambda p: plot_history(histories(), p)),
                       ("w.png", lambda p: show_net_weights({"W1": np.ones((64, 4))}, p))):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious")
        link = tmp_path / name
        os.symlink(victim, link)
        draw(link)
        assert victim.read_text() == "precious"
        assert not os.path.islink(link)
        png_size(link.read_bytes())
