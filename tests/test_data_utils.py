"""Tests of fastfc.data_utils on small CIFAR-format pickles written to a temp dir.

The expected values come from the CS231n reference code, written out below on the same
raw arrays; the real CIFAR-10 is never needed.
"""
import os
import pickle
import sys

import numpy as np
import pytest

from fastfc import data_utils as du
from fastfc.data_utils import (DataError, DataNotFoundError, get_CIFAR10_data,
                               load_CIFAR10, load_CIFAR_batch, load_default_data)

TRAIN_N = 12          # images per training batch (the real batches hold 10,000)
TEST_N = 16
SPLIT = dict(num_training=40, num_validation=10, num_test=8)
SIX_KEYS = ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]


def write_batch(path, data, labels, protocol=2, bytes_keys=False, extra=True):
    d = {"data": data, "labels": labels}
    if extra:
        d["batch_label"] = "a test batch"
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=protocol)


def make_cifar(directory, seed=0, train_rows=None, test_rows=None):
    """Write data_batch_1..5 and test_batch; returns the raw uint8 rows and labels."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    if train_rows is None:
        train_rows = rng.integers(0, 256, size=(5 * TRAIN_N, 3072), dtype=np.uint8)
    if test_rows is None:
        test_rows = rng.integers(0, 256, size=(TEST_N, 3072), dtype=np.uint8)
    ytr = rng.integers(0, 10, size=train_rows.shape[0])
    yte = rng.integers(0, 10, size=test_rows.shape[0])
    per = train_rows.shape[0] // 5
    for i in range(5):
        sl = slice(i * per, (i + 1) * per)
        write_batch(directory / f"data_batch_{i + 1}", train_rows[sl], [int(v) for v in ytr[sl]])
    write_batch(directory / "test_batch", test_rows, [int(v) for v in yte])
    return {"Xtr": train_rows, "ytr": ytr, "Xte": test_rows, "yte": yte}


@pytest.fixture
def cifar(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    return d, make_cifar(d)


# ---- the CS231n reference, on raw arrays -------------------------------------------

def ref_batch(rows, labels):
    X = rows.reshape(rows.shape[0], 3, 32, 32).transpose(0, 2, 3, 1).astype("float")
    return X, np.array(labels)


def ref_get_data(raw, num_training, num_validation, num_test, subtract_mean=True):
    X_train, y_train = ref_batch(raw["Xtr"], list(raw["ytr"]))
    X_test, y_test = ref_batch(raw["Xte"], list(raw["yte"]))
    mask = list(range(num_training, num_training + num_validation))
    X_val, y_val = X_train[mask], y_train[mask]
    mask = list(range(num_training))
    X_train, y_train = X_train[mask], y_train[mask]
    mask = list(range(num_test))
    X_test, y_test = X_test[mask], y_test[mask]
    if subtract_mean:
        mean_image = np.mean(X_train, axis=0)
        X_train -= mean_image
        X_val -= mean_image
        X_test -= mean_image
    X_train = X_train.transpose(0, 3, 1, 2).copy()
    X_val = X_val.transpose(0, 3, 1, 2).copy()
    X_test = X_test.transpose(0, 3, 1, 2).copy()
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val,
            "X_test": X_test, "y_test": y_test}


# ---- load_CIFAR_batch / load_CIFAR10 -----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_load_batch_is_reference_nhwc(cifar, dtype):
    d, raw = cifar
    X, Y = load_CIFAR_batch(d / "data_batch_2", dtype=dtype)
    Xr, Yr = ref_batch(raw["Xtr"][TRAIN_N:2 * TRAIN_N], list(raw["ytr"][TRAIN_N:2 * TRAIN_N]))
    assert X.shape == (TRAIN_N, 32, 32, 3) and X.dtype == dtype
    np.testing.assert_array_equal(X, Xr)  # uint8 values are exact in both dtypes
    assert Y.dtype == np.int64
    np.testing.assert_array_equal(Y, Yr)


def test_load_batch_default_is_float64(cifar):
    d, _ = cifar
    X, _ = load_CIFAR_batch(str(d / "test_batch"))
    assert X.dtype == np.float64 and X.shape == (TEST_N, 32, 32, 3)


@pytest.mark.parametrize("protocol, bytes_keys", [(0, False), (2, True), (4, False),
                                                  (5, True)])
def test_load_batch_accepts_pickle_variants(tmp_path, protocol, bytes_keys):
    rows = np.arange(3 * 3072).reshape(3, 3072) % 256
    write_batch(tmp_path / "b", rows.astype(np.uint8), np.array([0, 9, 4]),
                protocol=protocol, bytes_keys=bytes_keys, extra=False)
    X, Y = load_CIFAR_batch(tmp_path / "b")
    np.testing.assert_array_equal(X, ref_batch(rows, [0, 9, 4])[0])
    np.testing.assert_array_equal(Y, [0, 9, 4])


def test_load_batch_accepts_wider_integer_pixels(tmp_path):
    rows = np.arange(2 * 3072).reshape(2, 3072) % 256
    write_batch(tmp_path / "b", rows.astype(np.int64), [1, 2])
    X, _ = load_CIFAR_batch(tmp_path / "b")
    np.testing.assert_array_equal(X, ref_batch(rows, [1, 2])[0])


def test_load_CIFAR10_concatenates_in_order(cifar):
    d, raw = cifar
    Xtr, Ytr, Xte, Yte = load_CIFAR10(d)
    np.testing.assert_array_equal(Xtr, ref_batch(raw["Xtr"], [])[0])
    np.testing.assert_array_equal(Ytr, raw["ytr"])
    np.testing.assert_array_equal(Xte, ref_batch(raw["Xte"], [])[0])
    np.testing.assert_array_equal(Yte, raw["yte"])
    assert Xtr.dtype == np.float64 and Xtr.flags.c_contiguous


def test_load_CIFAR10_float32_and_env(cifar, monkeypatch):
    d, raw = cifar
    monkeypatch.setenv("FASTFC_DATA", str(d))
    Xtr, Ytr, Xte, Yte = load_CIFAR10(dtype=np.float32)
    assert Xtr.dtype == np.float32 and Xte.dtype == np.float32
    np.testing.assert_array_equal(Xtr, ref_batch(raw["Xtr"], [])[0].astype(np.float32))


# ---- get_CIFAR10_data --------------------------------------------------------------

@pytest.mark.parametrize("subtract_mean", [True, False])
def test_get_data_equals_reference_bit_for_bit(cifar, subtract_mean):
    d, raw = cifar
    got = get_CIFAR10_data(SPLIT["num_training"], SPLIT["num_validation"],
                           SPLIT["num_test"], subtract_mean, cifar10_dir=d)
    want = ref_get_data(raw, **SPLIT, subtract_mean=subtract_mean)
    assert list(got) == SIX_KEYS
    for k in SIX_KEYS:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert got["X_train"].shape == (40, 3, 32, 32)
    assert got["X_val"].shape == (10, 3, 32, 32) and got["X_test"].shape == (8, 3, 32, 32)


def test_get_data_reads_FASTFC_DATA_and_parent_folder(cifar, monkeypatch):
    d, raw = cifar
    monkeypatch.setenv("FASTFC_DATA", str(d.parent))  # the folder holding cifar-10-batches-py
    got = get_CIFAR10_data(**SPLIT)
    np.testing.assert_array_equal(got["X_val"], ref_get_data(raw, **SPLIT)["X_val"])


def test_get_data_argument_beats_env(cifar, tmp_path, monkeypatch):
    d, _ = cifar
    monkeypatch.setenv("FASTFC_DATA", str(tmp_path / "nowhere"))
    assert get_CIFAR10_data(**SPLIT, cifar10_dir=d)["X_train"].shape[0] == 40


def test_mean_comes_from_training_split_only(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 50, size=(5 * TRAIN_N, 3072), dtype=np.uint8)
    train[40:50] = 250                      # the validation images: far from the train mean
    test = np.full((TEST_N, 3072), 200, dtype=np.uint8)
    d = tmp_path / "c"
    make_cifar(d, train_rows=train, test_rows=test)
    got = get_CIFAR10_data(**SPLIT, cifar10_dir=d, return_stats=True)
    mean = train[:40].astype(np.float64).mean(axis=0)
    np.testing.assert_array_equal(got["mean"], mean.reshape(3, 32, 32))
    np.testing.assert_allclose(got["X_train"].mean(axis=0), 0, atol=1e-12)
    want_val = np.broadcast_to((250 - mean).reshape(3, 32, 32), (10, 3, 32, 32))
    np.testing.assert_array_equal(got["X_val"], want_val)
    np.testing.assert_array_equal(got["X_test"][0], (200 - mean).reshape(3, 32, 32))


def test_float32_is_the_float64_result_rounded_once(cifar):
    d, _ = cifar
    g64 = get_CIFAR10_data(**SPLIT, cifar10_dir=d)
    g32 = get_CIFAR10_data(**SPLIT, cifar10_dir=d, dtype=np.float32)
    for k in ("X_train", "X_val", "X_test"):
        assert g32[k].dtype == np.float32 and g32[k].flags.c_contiguous
        np.testing.assert_array_equal(g32[k], g64[k].astype(np.float32))
    for k in ("y_train", "y_val", "y_test"):
        assert g32[k].dtype == np.int64
        np.testing.assert_array_equal(g32[k], g64[k])


def test_flatten_gives_channel_major_rows(cifar):
    d, _ = cifar
    img = get_CIFAR10_data(**SPLIT, cifar10_dir=d)
    flat = get_CIFAR10_data(**SPLIT, cifar10_dir=d, flatten=True, return_stats=True)
    for k in ("X_train", "X_val", "X_test"):
        assert flat[k].shape == (img[k].shape[0], 3072)
        np.testing.assert_array_equal(flat[k], img[k].reshape(img[k].shape[0], -1))
    assert flat["mean"].shape == (3072,)


def test_num_test_takes_the_whole_test_batch(cifar):
    d, raw = cifar
    got = get_CIFAR10_data(40, 10, TEST_N, cifar10_dir=d, subtract_mean=False)
    assert got["X_test"].shape == (TEST_N, 3, 32, 32)
    np.testing.assert_array_equal(got["X_test"].reshape(TEST_N, -1), raw["Xte"])
    np.testing.assert_array_equal(got["y_test"], raw["yte"])


def test_num_test_zero_does_not_need_the_test_batch(cifar):
    d, _ = cifar
    os.remove(d / "test_batch")
    got = get_CIFAR10_data(40, 10, 0, cifar10_dir=d)
    assert got["X_test"].shape == (0, 3, 32, 32) and got["y_test"].shape == (0,)


def test_reads_only_the_batches_the_split_needs(cifar):
    d, raw = cifar
    (d / "data_batch_3").write_bytes(b"not a pickle at all")
    got = get_CIFAR10_data(2 * TRAIN_N - 3, 3, 4, cifar10_dir=d)   # batches 1 and 2
    assert got["X_val"].shape[0] == 3
    with pytest.raises(DataError, match="data_batch_3"):
        get_CIFAR10_data(2 * TRAIN_N, 1, 4, cifar10_dir=d)


def test_split_larger_than_the_data_names_the_sizes(cifar):
    d, _ = cifar
    with pytest.raises(DataError, match=r"60 images") as exc:
        get_CIFAR10_data(55, 10, 1, cifar10_dir=d)
    assert str(d) in str(exc.value)
    with pytest.raises(DataError, match=r"test_batch.*16 images.*num_test = 17"):
        get_CIFAR10_data(40, 10, 17, cifar10_dir=d)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standardize_uses_training_split_statistics_only(tmp_path, dtype):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, size=(5 * TRAIN_N, 3072), dtype=np.uint8)
    train[:, :1024] //= 4                   # channels with different statistics
    train[40:50] = 255                      # validation images: a leak would move the stats
    test = np.zeros((TEST_N, 3072), dtype=np.uint8)
    d = tmp_path / "c"
    make_cifar(d, train_rows=train, test_rows=test)
    got = get_CIFAR10_data(**SPLIT, cifar10_dir=d, standardize=True, dtype=dtype,
                           return_stats=True)
    chans = train[:40].reshape(40, 3, 1024).astype(np.float64)
    mean_c, std_c = chans.mean(axis=(0, 2)), chans.std(axis=(0, 2))
    np.testing.assert_allclose(got["mean"][:, 0, 0], mean_c, rtol=1e-13)
    np.testing.assert_allclose(got["std"][:, 0, 0], std_c, rtol=1e-13)
    assert got["mean"].shape == got["std"].shape == (3, 32, 32)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    Xtr = got["X_train"].astype(np.float64)
    np.testing.assert_allclose(Xtr.mean(axis=(0, 2, 3)), 0, atol=10 * rtol)
    np.testing.assert_allclose(Xtr.std(axis=(0, 2, 3)), 1, rtol=10 * rtol)
    want_val = (train[40:50].reshape(10, 3, 32, 32) - mean_c[:, None, None]) / std_c[:, None, None]
    np.testing.assert_allclose(got["X_val"], want_val, rtol=rtol)
    np.testing.assert_allclose(got["X_test"], np.broadcast_to(
        -mean_c[:, None, None] / std_c[:, None, None], (8, 3, 32, 32)), rtol=rtol)
    assert got["X_val"].dtype == dtype


def test_standardize_constant_channel_divides_by_one(tmp_path):
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, size=(5 * TRAIN_N, 3072), dtype=np.uint8)
    train[:, 1024:2048] = 7                 # green is constant
    d = tmp_path / "c"
    make_cifar(d, train_rows=train)
    got = get_CIFAR10_data(**SPLIT, cifar10_dir=d, standardize=True, return_stats=True)
    assert np.isfinite(got["X_train"]).all()
    assert got["std"][1, 0, 0] == 1.0
    np.testing.assert_array_equal(got["X_train"][:, 1], 0.0)


@pytest.mark.parametrize("opts", [dict(), dict(subtract_mean=False), dict(standardize=True),
                                  dict(standardize=True, flatten=True)])
def test_stats_repeat_the_transform_and_keys_are_exact(cifar, opts):
    d, raw = cifar
    plain = get_CIFAR10_data(**SPLIT, cifar10_dir=d, **opts)
    assert list(plain) == SIX_KEYS
    got = get_CIFAR10_data(**SPLIT, cifar10_dir=d, return_stats=True, **opts)
    assert list(got) == SIX_KEYS + ["mean", "std"]
    shape = got["X_test"].shape
    redo = (raw["Xte"][:8].astype(np.float64).reshape(shape) - got["mean"]) / got["std"]
    np.testing.assert_allclose(redo, got["X_test"], rtol=1e-12, atol=1e-12)


# ---- errors ------------------------------------------------------------------------

def test_missing_directory(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(DataNotFoundError) as exc:
        get_CIFAR10_data(cifar10_dir=missing)
    assert str(missing) in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, ValueError)


def test_no_directory_and_no_env_says_what_to_do(monkeypatch):
    monkeypatch.delenv("FASTFC_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="FASTFC_DATA") as exc:
        get_CIFAR10_data()
    assert "cifar10_dir" in str(exc.value)
    with pytest.raises(DataNotFoundError, match="FASTFC_DATA"):
        load_CIFAR10()


def test_env_pointing_nowhere_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFC_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataNotFoundError, match=r"gone.*FASTFC_DATA"):
        load_CIFAR10()


@pytest.mark.parametrize("name", ["data_batch_4", "test_batch"])
def test_missing_file_is_named_with_its_directory(cifar, name):
    d, _ = cifar
    os.remove(d / name)
    for call in (lambda: load_CIFAR10(d), lambda: get_CIFAR10_data(**SPLIT, cifar10_dir=d)):
        with pytest.raises(DataNotFoundError) as exc:
            call()
        assert name in str(exc.value) and str(d) in str(exc.value)
    with pytest.raises(FileNotFoundError, match=name):
        load_CIFAR_batch(d / name)


def _corrupt(path, kind):
    rows = np.zeros((4, 3072), np.uint8)
    if kind == "wrong keys":
        with open(path, "wb") as f:
            pickle.dump({"pixels": rows, "labels": [0, 1, 2, 3]}, f, protocol=2)
    elif kind == "cifar-100 keys":
        with open(path, "wb") as f:
            pickle.dump({"data": rows, "fine_labels": [0, 1, 2, 3]}, f, protocol=2)
    elif kind == "wrong row size":
        write_batch(path, np.zeros((4, 3000), np.uint8), [0, 1, 2, 3])
    elif kind == "images not rows":
        write_batch(path, np.zeros((4, 3, 32, 32), np.uint8), [0, 1, 2, 3])
    elif kind == "label count":
        write_batch(path, rows, [0, 1, 2])
    elif kind == "label too big":
        write_batch(path, rows, [0, 1, 10, 3])
    elif kind == "label negative":
        write_batch(path, rows, [0, -1, 2, 3])
    elif kind == "float labels":
        write_batch(path, rows, [0.0, 1.5, 2.0, 3.0])
    elif kind == "float pixels":
        write_batch(path, rows.astype(np.float64), [0, 1, 2, 3])
    elif kind == "pixel 256":
        write_batch(path, np.full((4, 3072), 256, np.int32), [0, 1, 2, 3])
    elif kind == "no images":
        write_batch(path, np.zeros((0, 3072), np.uint8), [])
    elif kind == "not a dict":
        with open(path, "wb") as f:
            pickle.dump([rows, [0, 1, 2, 3]], f, protocol=2)
    elif kind == "truncated":
        write_batch(path, np.ones((40, 3072), np.uint8), [0] * 40)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x00\x01 this is not a pickle" * 10)
    elif kind == "directory":
        os.remove(path)
        os.mkdir(path)


MALFORMED = {
    "wrong keys": r"no 'data' entry.*'pixels'",
    "cifar-100 keys": r"no 'labels' entry.*'fine_labels'",
    "wrong row size": r"shape \(N, 3072\).*\(4, 3000\)",
    "images not rows": r"shape \(N, 3072\).*\(4, 3, 32, 32\)",
    "label count": r"one label per image \(4\), got 3",
    "label too big": r"label 10, outside \[0, 10\)",
    "label negative": r"label -1, outside \[0, 10\)",
    "float labels": r"'labels' must be integers",
    "float pixels": r"uint8 pixel values, got dtype float64",
    "pixel 256": r"pixel value 256",
    "no images": r"no images",
    "not a dict": r"holds a list, not the dict",
    "truncated": r"truncated",
    "empty file": r"truncated or empty",
    "garbage": r"not a readable pickle",
    "directory": r"is a directory",
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_batch_names_directory_file_and_problem(cifar, kind):
    d, _ = cifar
    _corrupt(d / "data_batch_2", kind)
    for call in (lambda: load_CIFAR10(d), lambda: get_CIFAR10_data(**SPLIT, cifar10_dir=d),
                 lambda: load_CIFAR_batch(d / "data_batch_2")):
        with pytest.raises(DataError, match=MALFORMED[kind]) as exc:
            call()
        msg = str(exc.value)
        assert "'data_batch_2'" in msg and str(d) in msg, msg


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_cannot_run_code(tmp_path):
    target = tmp_path / "pwned"
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({"data": _Evil(str(target)), "labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match=r"refers to (builtins|io)\.open"):
        load_CIFAR_batch(tmp_path / "data_batch_1")
    assert not target.exists()


@pytest.mark.parametrize("kwargs, err, pattern", [
    (dict(num_training=0), ValueError, "num_training"),
    (dict(num_validation=-1), ValueError, "num_validation"),
    (dict(num_test=2.5), TypeError, "num_test"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(cifar10_dir=123), TypeError, "cifar10_dir"),
])
def test_bad_arguments(cifar, kwargs, err, pattern):
    d, _ = cifar
    kwargs = {"cifar10_dir": d, **kwargs}
    with pytest.raises(err, match=pattern):
        get_CIFAR10_data(**kwargs)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
    assert issubclass(DataNotFoundError, DataError)
    assert issubclass(DataNotFoundError, FileNotFoundError)


# ---- load_default_data -------------------------------------------------------------

def _digits():
    from sklearn.datasets import load_digits
    dg = load_digits()
    return dg.data.astype(np.float64), dg.target.astype(np.int64)


def test_default_data_is_the_documented_split():
    X, y = _digits()
    state = np.random.get_state()
    got = load_default_data()
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    assert list(got) == SIX_KEYS
    order = np.random.RandomState(0).permutation(1797)
    idx = {"train": order[:1257], "val": order[1257:1527], "test": order[1527:]}
    mean = (X[idx["train"]] / 16).mean(axis=0)
    for split, sizes in (("train", 1257), ("val", 270), ("test", 270)):
        assert got[f"X_{split}"].shape == (sizes, 64)
        assert got[f"X_{split}"].dtype == np.float64
        np.testing.assert_allclose(got[f"X_{split}"], X[idx[split]] / 16 - mean,
                                   rtol=0, atol=1e-15)
        np.testing.assert_array_equal(got[f"y_{split}"], y[idx[split]])
        assert got[f"y_{split}"].dtype == np.int64
    np.testing.assert_allclose(got["X_train"].mean(axis=0), 0, atol=1e-14)
    assert abs(got["X_val"].mean()) > 1e-6   # not re-centred on its own mean


def test_default_data_partitions_the_digits_without_overlap():
    X, y = _digits()
    got = load_default_data(return_stats=True)
    rebuilt = []
    for split in ("train", "val", "test"):
        raw = np.rint(got[f"X_{split}"] * got["std"] + got["mean"])
        rebuilt.append(np.column_stack([raw, got[f"y_{split}"]]))
    rebuilt = np.concatenate(rebuilt)
    full = np.column_stack([X, y])
    # the same multiset of (image, label) rows: every digit used exactly once
    assert rebuilt.shape == full.shape
    np.testing.assert_array_equal(np.unique(rebuilt, axis=0, return_counts=True)[1],
                                  np.unique(full, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(rebuilt, axis=0), np.unique(full, axis=0))


def test_default_data_is_deterministic_and_has_options():
    a, b = load_default_data(), load_default_data()
    for k in SIX_KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    f32 = load_default_data(np.float32)
    assert f32["X_train"].dtype == np.float32
    np.testing.assert_array_equal(f32["X_val"], a["X_val"].astype(np.float32))
    img = load_default_data(flatten=False)
    assert img["X_train"].shape == (1257, 1, 8, 8)
    np.testing.assert_array_equal(img["X_test"].reshape(270, 64), a["X_test"])
    raw = load_default_data(scale=False, subtract_mean=False)
    assert raw["X_train"].max() == 16 and raw["X_train"].min() == 0
    np.testing.assert_array_equal(raw["y_train"], a["y_train"])


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "fastfc\[data\]"'):
        load_default_data()


def test_module_exports():
    for name in ("load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data",
                 "load_default_data", "DataError", "DataNotFoundError"):
        assert name in du.__all__ and callable(getattr(du, name))
