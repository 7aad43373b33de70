"""Tests of the safe checkpoints: fastfc.checkpoint (atomic_write, save_checkpoint,
load_checkpoint) and the Solver's ``checkpoint_path`` / ``resume``.

A checkpoint is an ``.npz`` of plain arrays with a JSON header.  Loading must never
unpickle anything (a crafted file would otherwise run code), writing must never leave a
half-written file or a stray temporary file behind, and a run that is interrupted and
resumed from its last checkpoint must end with exactly the parameters of a run that was
never interrupted.
"""
import copy
import json
import os
import pickle
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastfc.checkpoint as checkpoint_mod
import fastfc.solver as solver_mod
from fastfc import FullyConnectedNet, Net, Solver
from fastfc.checkpoint import CheckpointError, atomic_write, load_checkpoint, save_checkpoint

D, C, HIDDEN = 12, 4, [16, 10]
N_TRAIN, BATCH = 100, 20  # 5 iterations per epoch
PER_EPOCH = N_TRAIN // BATCH


# ----------------------------------------------------------------- helpers

def make_data(n_train=N_TRAIN, n_val=40, seed=0):
    """Learnable Gaussian blobs from a private RandomState (the global one is untouched)."""
    rs = np.random.RandomState(seed)
    centres = 1.5 * rs.randn(C, D)

    def draw(n):
        y = rs.randint(C, size=n)
        return centres[y] + rs.randn(n, D), y

    X_train, y_train = draw(n_train)
    X_val, y_val = draw(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def make_fcn(seed=1, dtype=np.float64, hidden=HIDDEN, **kwargs):
    np.random.seed(seed)
    return FullyConnectedNet(hidden, input_dim=D, num_classes=C, weight_scale=0.1,
                             dtype=dtype, **kwargs)


def make_net(seed=1, dtype=np.float64, hidden=HIDDEN, **kwargs):
    np.random.seed(seed)
    return Net([D, *hidden, C], weight_scale=0.1, dtype=dtype, **kwargs)


def params_of(model):
    return {k: np.array(v, copy=True) for k, v in model.params.items()}


def raise_at_step(model, k, exc=KeyboardInterrupt):
    """The k-th training call (1-based) of the model raises ``exc`` -- a Ctrl-C arriving
    in the middle of a step.  Patches ``train_step`` on a Net (the Solver's fast path),
    ``loss`` otherwise; prediction calls are not counted."""
    name = "train_step" if isinstance(model, Net) else "loss"
    inner = getattr(model, name)
    count = [0]

    def wrapped(X, y=None, *args, **kwargs):
        if y is not None:
            count[0] += 1
            if count[0] == k:
                raise exc()
        return inner(X, y, *args, **kwargs)

    setattr(model, name, wrapped)
    return count


class MarkerPayload:
    """Unpickling this creates the file ``marker`` (stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def listdir(path):
    return sorted(os.listdir(path))


@pytest.fixture
def data():
    return make_data()


# ----------------------------------------------------------------- save / load

def test_round_trip_keeps_arrays_dtypes_and_header(tmp_path):
    path = tmp_path / "ck.npz"
    arrays = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "group/b": np.array([1, -2, 3], dtype=np.int64),
        "group/sub/c": np.array(7, dtype=np.uint64),
        "d": np.linspace(0, 1, 5),
        "e": np.zeros((0, 4)),
        "f": np.array([True, False]),
    }
    header = {"epoch": 3, "hist": [1.5, np.float64(2.25)], "n": np.int64(4),
              "nested": {"x": [np.float32(0.5)], "s": "text"}, "none": None}
    assert save_checkpoint(path, arrays, header) is not None
    loaded, head = load_checkpoint(path)
    assert set(loaded) == set(arrays)
    for k, v in arrays.items():
        assert loaded[k].dtype == v.dtype, k
        assert loaded[k].shape == v.shape, k
        assert np.array_equal(loaded[k], v), k
    assert head["epoch"] == 3 and head["hist"] == [1.5, 2.25] and head["n"] == 4
    assert head["nested"] == {"x": [0.5], "s": "text"} and head["none"] is None
    # plain .npz: every entry loads without pickle; the header is UTF-8 JSON bytes
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        raw = {k: npz[k] for k in npz.files}
    assert files == set(arrays) | {"__header__"}
    assert raw["__header__"].dtype == np.uint8
    assert json.loads(raw["__header__"].tobytes().decode("utf-8"))["epoch"] == 3
    assert listdir(tmp_path) == ["ck.npz"]


def test_save_accepts_str_and_pathlike(tmp_path):
    save_checkpoint(str(tmp_path / "s.npz"), {"a": np.ones(2)}, {})
    save_checkpoint(tmp_path / "p.npz", {"a": np.ones(2)}, {})
    assert np.array_equal(load_checkpoint(str(tmp_path / "p.npz"))[0]["a"], np.ones(2))
    assert listdir(tmp_path) == ["p.npz", "s.npz"]


@pytest.mark.parametrize("bad", [
    np.array([{"a": 1}], dtype=object),
    np.array([1, "x"], dtype=object),
    np.array([(1, None)], dtype=[("i", int), ("o", object)]),
], ids=["object", "mixed-object", "struct-with-object"])
def test_save_refuses_object_arrays(tmp_path, bad):
    path = tmp_path / "ck.npz"
    with pytest.raises((TypeError, ValueError)):
        save_checkpoint(path, {"fine": np.ones(3), "bad": bad}, {"epoch": 1})
    assert listdir(tmp_path) == []


def test_save_refuses_object_arrays_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.ones(3)}, {"epoch": 1})
    before = path.read_bytes()
    with pytest.raises((TypeError, ValueError)):
        save_checkpoint(path, {"w": np.array([None], dtype=object)}, {"epoch": 2})
    assert path.read_bytes() == before
    assert listdir(tmp_path) == ["ck.npz"]


# ----------------------------------------------------------------- atomic_write

def test_atomic_write_goes_through_a_temp_file_in_the_same_directory(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")
    seen = {}

    def write(f):
        f.write(b"new")
        seen["target_during_write"] = path.read_bytes()
        seen["dir_during_write"] = listdir(tmp_path)
        f.write(b" contents")

    atomic_write(path, write)
    assert path.read_bytes() == b"new contents"
    assert seen["target_during_write"] == b"old contents"  # the target is never opened
    # the data went to a second file next to the target (same filesystem: the rename
    # is atomic), which is gone afterwards
    others = [n for n in seen["dir_during_write"] if n != "out.bin"]
    assert len(others) == 1 and "out.bin" in seen["dir_during_write"]
    assert listdir(tmp_path) == ["out.bin"]


def test_atomic_write_replaces_by_rename(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    renames = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renames.append((os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    atomic_write(path, lambda f: f.write(b"new"))
    monkeypatch.undo()
    assert len(renames) == 1
    src, dst = renames[0]
    assert os.path.abspath(dst) == str(path)
    assert os.path.dirname(os.path.abspath(src)) == str(tmp_path) and src != dst
    assert path.read_bytes() == b"new"


@pytest.mark.parametrize("exc", [RuntimeError, OSError, KeyboardInterrupt, SystemExit],
                         ids=lambda e: e.__name__)
def test_exception_inside_write_keeps_the_previous_file(tmp_path, exc):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.arange(4.0)}, {"epoch": 1})
    before = path.read_bytes()

    def write(f):
        f.write(b"PK\x03\x04 half a zip")
        raise exc("disk full")

    with pytest.raises(exc):
        atomic_write(path, write)
    assert path.read_bytes() == before
    assert listdir(tmp_path) == ["ck.npz"]
    arrays, header = load_checkpoint(path)
    assert header["epoch"] == 1 and np.array_equal(arrays["w"], np.arange(4.0))


def test_exception_inside_first_write_leaves_nothing(tmp_path):
    def write(f):
        f.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new.npz", write)
    assert listdir(tmp_path) == []


def test_failed_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.ones(2)}, {"epoch": 1})
    before = path.read_bytes()

    def no_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(path, {"w": np.zeros(2)}, {"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert listdir(tmp_path) == ["ck.npz"]


def test_atomic_write_creates_the_directory(tmp_path):
    path = tmp_path / "a" / "b" / "ck.npz"
    save_checkpoint(path, {"w": np.ones(2)}, {"epoch": 0})
    assert load_checkpoint(path)[1]["epoch"] == 0
    assert listdir(path.parent) == ["ck.npz"]


# ----------------------------------------------------------------- loading bad files

def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_load_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


@pytest.fixture
def valid_file(tmp_path):
    path = tmp_path / "valid.npz"
    save_checkpoint(path, {"w": np.random.RandomState(0).randn(30, 20),
                           "b": np.arange(20)}, {"epoch": 4})
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_load_truncated_file(tmp_path, valid_file, fraction):
    raw = valid_file.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_load_truncated_by_one_byte(tmp_path, valid_file):
    raw = valid_file.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:-1])
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_load_garbage_and_directories(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError):
        load_checkpoint(junk)
    text = tmp_path / "text.npz"
    text.write_text("epoch = 3\n")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


def test_load_npz_without_header(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.ones(3))
    with pytest.raises(CheckpointError, match="not a fastfc checkpoint"):
        load_checkpoint(path)


def test_load_plain_npy(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.ones(3))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def _npz_with_header(path, header_bytes, **arrays):
    np.savez(path, __header__=np.frombuffer(header_bytes, dtype=np.uint8), **arrays)
    return path


@pytest.mark.parametrize("header", [
    b'{"format": "something-else", "version": 1}',
    b'{"version": 1}',
    b'{"format": "fastfc-checkpoint", "version": 99}',
], ids=["other-format", "no-format", "newer-version"])
def test_load_foreign_or_newer_header(tmp_path, header):
    path = _npz_with_header(tmp_path / "h.npz", header, a=np.ones(2))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.parametrize("header", [
    b"not json", b"\xff\xfe\x00", b"", b'{"format": "fastfc-checkpoint"',
    b"[1, 2, 3]", b'"fastfc-checkpoint"', b"42", b"null",
    b'{"format": "fastfc-checkpoint", "version": "1"}',
    b'{"format": "fastfc-checkpoint", "version": null}',
], ids=["not-json", "not-utf8", "empty", "cut-json", "json-list", "json-string",
        "json-number", "json-null", "version-string", "version-null"])
def test_load_malformed_header(tmp_path, header):
    """A stranger's file with a malformed header is a CheckpointError, not a crash."""
    path = _npz_with_header(tmp_path / "h.npz", header, a=np.ones(2))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(header=_json, with_format=st.booleans(), version=st.one_of(st.none(), _json))
def test_load_any_json_header_never_crashes(header, with_format, version):
    """Whatever JSON the header holds, load_checkpoint returns or raises CheckpointError."""
    if with_format and isinstance(header, dict):
        header = dict(header, format="fastfc-checkpoint")
        if version is not None:
            header["version"] = version
    with tempfile.TemporaryDirectory() as tmp:
        path = _npz_with_header(os.path.join(tmp, "h.npz"), json.dumps(header).encode(),
                                a=np.ones(2))
        try:
            arrays, head = load_checkpoint(path)
        except CheckpointError:
            return
        assert isinstance(head, dict) and head.get("format") == "fastfc-checkpoint"
        assert np.array_equal(arrays["a"], np.ones(2))


# ----------------------------------------------------------------- never unpickle

def test_marker_payload_is_live(tmp_path):
    """Sanity check of the attack: unpickling the payload does create the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(MarkerPayload(marker)))
    assert marker.exists()


def _raw_pickle(path, marker):
    with open(path, "wb") as f:
        pickle.dump({"__header__": MarkerPayload(marker)}, f)


def _npz_object_entry(path, marker):
    header = json.dumps({"format": "fastfc-checkpoint", "version": 1, "kind": "solver"})
    np.savez(path, __header__=np.frombuffer(header.encode(), dtype=np.uint8),
             evil=np.array([MarkerPayload(marker)], dtype=object))


def _npz_object_header(path, marker):
    np.savez(path, __header__=np.array([MarkerPayload(marker)], dtype=object))


def _npy_object(path, marker):
    with open(path, "wb") as f:
        np.save(f, np.array([MarkerPayload(marker)], dtype=object), allow_pickle=True)


def _npz_object_first(path, marker):
    """The object entry comes before the header in the zip."""
    header = json.dumps({"format": "fastfc-checkpoint", "version": 1})
    np.savez(path, aaa=np.array([MarkerPayload(marker)], dtype=object),
             __header__=np.frombuffer(header.encode(), dtype=np.uint8))


CRAFTED = [_raw_pickle, _npz_object_entry, _npz_object_header, _npy_object,
           _npz_object_first]


@pytest.mark.parametrize("craft", CRAFTED, ids=lambda f: f.__name__.strip("_"))
def test_load_never_unpickles(tmp_path, craft):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    craft(path, marker)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("craft", CRAFTED, ids=lambda f: f.__name__.strip("_"))
def test_resume_never_unpickles(tmp_path, data, craft):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    craft(path, marker)
    solver = Solver(make_fcn(), data, verbose=False)
    with pytest.raises(CheckpointError):
        solver.resume(path)
    assert not marker.exists()


def test_the_attack_works_on_a_pickle_loader(tmp_path):
    """The crafted npz does run code when loaded the unsafe way (so the tests above
    would notice a loader that allowed pickles)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    _npz_object_entry(path, marker)
    with np.load(path, allow_pickle=True) as npz:
        npz["evil"]
    assert marker.exists()


# ----------------------------------------------------------------- checkpoint_path

RESUME_KW = dict(batch_size=BATCH, num_epochs=4, lr_decay=0.9, num_train_samples=50,
                 num_val_samples=30, verbose=False)


class SaveSpy:
    """Wraps fastfc.solver.save_checkpoint: at every checkpoint the Solver writes, keeps
    what was written, the RNG state and the directory listing at that moment, and what
    ``on_save()`` returns (the test's own snapshot of the model and optimiser)."""

    def __init__(self, real):
        self.real = real
        self.records = []
        self.on_save = lambda: None

    def __call__(self, path, arrays, header):
        out = self.real(path, arrays, header)
        loaded, head = load_checkpoint(path)
        self.records.append({
            "arrays": loaded, "header": head, "rng": np.random.get_state(),
            "dir": listdir(os.path.dirname(os.path.abspath(path))),
            "snapshot": self.on_save(),
        })
        return out


@pytest.fixture
def spy_saves(monkeypatch):
    spy = SaveSpy(solver_mod.save_checkpoint)
    monkeypatch.setattr(solver_mod, "save_checkpoint", spy)
    return spy


def test_checkpoint_written_at_every_epoch_end(tmp_path, data, spy_saves):
    path = tmp_path / "run" / "ck.npz"
    model = make_fcn()
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 5e-3},
                    checkpoint_path=str(path), **RESUME_KW)
    spy_saves.on_save = lambda: (params_of(model), copy.deepcopy(solver.optim_configs))
    np.random.seed(3)
    solver.train()

    records = spy_saves.records
    assert [r["header"]["epoch"] for r in records] == [1, 2, 3, 4]
    for e, rec in enumerate(records, start=1):
        params, configs = rec["snapshot"]
        head, arrays = rec["header"], rec["arrays"]
        n = e * PER_EPOCH
        assert head["loss_history"] == [float(v) for v in solver.loss_history[:n]]
        checks = e + 1  # the first step and every epoch end so far
        assert head["train_acc_history"] == [float(v) for v in
                                              solver.train_acc_history[:checks]]
        assert head["val_acc_history"] == [float(v) for v in solver.val_acc_history[:checks]]
        for name, value in params.items():
            assert np.array_equal(arrays[f"param/{name}"], value), (e, name)
        # adam's state for every parameter: the moments as arrays, t as a number
        for name, config in configs.items():
            assert np.array_equal(arrays[f"optim/{name}/m"], config["m"])
            assert np.array_equal(arrays[f"optim/{name}/v"], config["v"])
            assert head["optim_scalars"][name]["t"] == config["t"] == n
            assert head["optim_scalars"][name]["learning_rate"] == config["learning_rate"]
        # the RNG state at the moment of writing
        kind, keys, pos, has_gauss, cached = rec["rng"]
        assert np.array_equal(arrays["rng/keys"], keys)
        assert head["rng"]["pos"] == pos and head["rng"]["kind"] == kind
        # atomic: only the checkpoint in its directory, never a temp file
        assert rec["dir"] == ["ck.npz"]
    assert listdir(path.parent) == ["ck.npz"]


def test_net_checkpoint_holds_the_fused_optimiser_state(tmp_path, data, spy_saves):
    path = tmp_path / "net.npz"
    net = make_net(dtype=np.float32, normalization="batchnorm", dropout_keep_ratio=0.7,
                   seed=5)
    solver = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 5e-3},
                    checkpoint_path=path, **RESUME_KW)
    assert solver.fast
    spy_saves.on_save = lambda: (params_of(net), copy.deepcopy(net.optimizer_state()),
                                 [np.array(a) for pair in net.running_stats for a in pair])
    np.random.seed(3)
    solver.train()
    assert [r["header"]["epoch"] for r in spy_saves.records] == [1, 2, 3, 4]
    for e, rec in enumerate(spy_saves.records, start=1):
        params, state, stats = rec["snapshot"]
        arrays, head = rec["arrays"], rec["header"]
        for name, value in params.items():
            assert np.array_equal(arrays[f"param/{name}"], value), (e, name)
        optim_arrays = {k.rsplit("/", 1)[-1]: v for k, v in arrays.items()
                        if k.startswith("optim/")}
        moments = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        assert set(moments) <= set(optim_arrays) and len(moments) == 2
        for key, value in moments.items():
            assert np.array_equal(optim_arrays[key], value), (e, key)
        saved_stats = [v for k, v in arrays.items() if "running_" in k]
        assert len(saved_stats) == len(stats) == 4
        for value in stats:
            assert any(np.array_equal(value, v) for v in saved_stats)
        assert len(head["loss_history"]) == e * PER_EPOCH


def test_checkpoint_file_is_plain_npz(tmp_path, data):
    path = tmp_path / "ck.npz"
    model = make_fcn(dtype=np.float32, normalization="batchnorm")
    np.random.seed(3)
    solver = Solver(model, data, update_rule="sgd_momentum", checkpoint_path=path,
                    **RESUME_KW)
    solver.train()
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    assert "__header__" in entries
    for k, v in entries.items():
        assert not v.dtype.hasobject, k
    header = json.loads(entries["__header__"].tobytes().decode("utf-8"))
    assert header["epoch"] == 4
    assert header["loss_history"] == [float(v) for v in solver.loss_history]
    assert header["train_acc_history"] == [float(v) for v in solver.train_acc_history]
    assert header["val_acc_history"] == [float(v) for v in solver.val_acc_history]
    assert len(header["loss_history"]) == 4 * PER_EPOCH
    # batch-norm running statistics travel with the parameters
    for i, bn in enumerate(model.bn_params):
        assert any(np.array_equal(v, bn["running_mean"]) for k, v in entries.items()
                   if "running_mean" in k), i
    assert listdir(tmp_path) == ["ck.npz"]


def test_no_checkpoint_path_writes_nothing(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(3)
    Solver(make_fcn(), data, **RESUME_KW).train()
    assert listdir(tmp_path) == []


def test_ctrl_c_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, data,
                                                                 monkeypatch):
    path = tmp_path / "ck.npz"
    real_savez = np.savez
    calls = [0]

    def savez_interrupted_on_second_write(f, **arrays):
        calls[0] += 1
        if calls[0] == 2:
            f.write(b"PK\x03\x04 partial")
            raise KeyboardInterrupt
        return real_savez(f, **arrays)

    monkeypatch.setattr(checkpoint_mod.np, "savez", savez_interrupted_on_second_write)
    solver = Solver(make_fcn(), data, checkpoint_path=path, **RESUME_KW)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        solver.train()
    monkeypatch.undo()
    assert solver.interrupted
    assert listdir(tmp_path) == ["ck.npz"]
    arrays, header = load_checkpoint(path)
    assert header["epoch"] == 1
    assert len(header["loss_history"]) == PER_EPOCH


# ----------------------------------------------------------------- resume

CASES = {
    "fcn32-batchnorm-dropout-adam": (
        lambda: make_fcn(dtype=np.float32, normalization="batchnorm",
                         dropout_keep_ratio=0.7, seed=5),
        dict(update_rule="adam", optim_config={"learning_rate": 5e-3})),
    "net32-batchnorm-dropout-adam": (
        lambda: make_net(dtype=np.float32, normalization="batchnorm",
                         dropout_keep_ratio=0.7, seed=5),
        dict(update_rule="adam", optim_config={"learning_rate": 5e-3})),
    "fcn64-sgd_momentum": (
        lambda: make_fcn(dtype=np.float64),
        dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.02,
                                                      "momentum": 0.8})),
    "net64-sgd_momentum": (
        lambda: make_net(dtype=np.float64),
        dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.02,
                                                      "momentum": 0.8})),
    "fcn32-layernorm-rmsprop": (
        lambda: make_fcn(dtype=np.float32, normalization="layernorm"),
        dict(update_rule="rmsprop", optim_config={"learning_rate": 2e-3})),
    "net64-layernorm-nesterov": (
        lambda: make_net(dtype=np.float64, normalization="layernorm"),
        dict(update_rule="sgd_nesterov_momentum", optim_config={"learning_rate": 0.02})),
}


def _uninterrupted(make, rule_kw, data, path):
    model = make()
    solver = Solver(model, data, checkpoint_path=path, **rule_kw, **RESUME_KW)
    np.random.seed(3)
    solver.train()
    return solver, model


def _interrupted(make, rule_kw, data, path, at_step):
    model = make()
    raise_at_step(model, at_step)
    solver = Solver(model, data, checkpoint_path=path, **rule_kw, **RESUME_KW)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        solver.train()
    assert solver.interrupted
    return solver, model


def _resumed(make, rule_kw, data, path, interrupt_at=None):
    model = make()
    if interrupt_at is not None:
        raise_at_step(model, interrupt_at)
    solver = Solver(model, data, checkpoint_path=path, **rule_kw, **RESUME_KW)
    np.random.seed(12345)  # whatever the state before, resume restores the saved one
    assert solver.resume(path) is solver
    if interrupt_at is None:
        solver.train()
    else:
        with pytest.warns(RuntimeWarning):
            solver.train()
    return solver, model


def _running_stats(model):
    if isinstance(model, Net):
        return [a for pair in model.running_stats for a in pair]
    return [bn[k] for bn in getattr(model, "bn_params", []) for k in
            ("running_mean", "running_var") if k in bn]


def assert_same_end(a, model_a, b, model_b):
    pa, pb = params_of(model_a), params_of(model_b)
    assert list(pa) == list(pb)
    for k in pa:
        assert pa[k].dtype == pb[k].dtype, k
        assert np.array_equal(pa[k], pb[k]), k
    assert [float(v) for v in a.loss_history] == [float(v) for v in b.loss_history]
    assert [float(v) for v in a.train_acc_history] == [float(v) for v in b.train_acc_history]
    assert [float(v) for v in a.val_acc_history] == [float(v) for v in b.val_acc_history]
    assert a.best_val_acc == b.best_val_acc
    assert a.epoch == b.epoch
    for x, y in zip(_running_stats(model_a), _running_stats(model_b), strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, data, case):
    """The issue's 'done when': interrupt after a checkpoint, resume, same parameters."""
    make, rule_kw = CASES[case]
    a, model_a = _uninterrupted(make, rule_kw, data, tmp_path / "a.npz")

    path = tmp_path / "b.npz"
    at_step = 2 * PER_EPOCH + 3  # inside epoch 3, after the epoch-2 checkpoint
    stopped, model_stopped = _interrupted(make, rule_kw, data, path, at_step)
    assert len(stopped.loss_history) == at_step - 1
    assert load_checkpoint(path)[1]["epoch"] == 2
    # the checkpoint resumed from is a genuine mid-run state: its current weights are
    # not the final ones of the uninterrupted run
    mid, _ = load_checkpoint(path)
    end, _ = load_checkpoint(tmp_path / "a.npz")
    assert any(not np.array_equal(mid[k], end[k]) for k in end if k.startswith("param/"))

    b, model_b = _resumed(make, rule_kw, data, path)
    assert not b.interrupted
    assert_same_end(a, model_a, b, model_b)
    assert len(b.loss_history) == 4 * PER_EPOCH
    assert listdir(tmp_path) == ["a.npz", "b.npz"]
    # both runs' last checkpoints agree too
    arrays_a, head_a = load_checkpoint(tmp_path / "a.npz")
    arrays_b, head_b = load_checkpoint(path)
    assert head_a["epoch"] == head_b["epoch"] == 4
    for k in arrays_a:
        if k.startswith("param/") or k.startswith("best/"):
            assert np.array_equal(arrays_a[k], arrays_b[k]), k


@pytest.mark.parametrize("case", ["fcn32-batchnorm-dropout-adam",
                                  "net32-batchnorm-dropout-adam"])
def test_interrupted_twice(tmp_path, data, case):
    make, rule_kw = CASES[case]
    a, model_a = _uninterrupted(make, rule_kw, data, tmp_path / "a.npz")
    path = tmp_path / "b.npz"
    _interrupted(make, rule_kw, data, path, PER_EPOCH + 2)  # checkpoint of epoch 1
    assert load_checkpoint(path)[1]["epoch"] == 1
    # the resumed run starts at step PER_EPOCH + 1; its 2 * PER_EPOCH + 1-th own call
    # is global step 3 * PER_EPOCH + 1, after the epoch-3 checkpoint
    _resumed(make, rule_kw, data, path, interrupt_at=2 * PER_EPOCH + 1)
    assert load_checkpoint(path)[1]["epoch"] == 3
    b, model_b = _resumed(make, rule_kw, data, path)
    assert_same_end(a, model_a, b, model_b)


def test_resume_from_the_last_checkpoint_trains_no_further(tmp_path, data):
    make, rule_kw = CASES["fcn64-sgd_momentum"]
    path = tmp_path / "ck.npz"
    a, model_a = _uninterrupted(make, rule_kw, data, path)
    arrays, head = load_checkpoint(path)
    model = make()
    solver = Solver(model, data, **rule_kw, **RESUME_KW).resume(path)
    solver.train()
    assert solver.loss_history == head["loss_history"]
    assert len(solver.loss_history) == 4 * PER_EPOCH
    # the model ends with the best parameters, as the first run did
    for k, v in params_of(model_a).items():
        assert np.array_equal(params_of(model)[k], v), k


def test_resume_restores_the_rng_state(tmp_path, data):
    make, rule_kw = CASES["fcn64-sgd_momentum"]
    path = tmp_path / "ck.npz"
    _uninterrupted(make, rule_kw, data, path)
    arrays, head = load_checkpoint(path)
    np.random.seed(999)
    Solver(make(), data, **rule_kw, **RESUME_KW).resume(path)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    assert np.array_equal(keys, arrays["rng/keys"])
    assert pos == head["rng"]["pos"] and kind == head["rng"]["kind"]


# ----------------------------------------------------------------- resume rejects

@pytest.fixture
def fcn_checkpoint(tmp_path, data):
    path = tmp_path / "ck.npz"
    make, rule_kw = CASES["fcn64-sgd_momentum"]
    _uninterrupted(make, rule_kw, data, path)
    return path


@pytest.mark.parametrize("other", [
    lambda: make_fcn(hidden=[16, 11]),           # same names, one shape differs
    lambda: make_fcn(hidden=[16]),               # fewer layers
    lambda: make_fcn(hidden=[16, 10, 8]),        # more layers
    lambda: make_fcn(normalization="batchnorm"),  # extra gamma/beta
], ids=["shape", "fewer", "more", "extra-params"])
def test_resume_rejects_other_architectures(fcn_checkpoint, data, other):
    solver = Solver(other(), data, update_rule="sgd_momentum", **RESUME_KW)
    with pytest.raises(CheckpointError):
        solver.resume(fcn_checkpoint)


@pytest.mark.parametrize("other", [
    lambda: make_fcn(hidden=[16, 11]),
    lambda: make_fcn(hidden=[16]),
], ids=["shape", "names"])
def test_failed_resume_leaves_the_model_untouched(fcn_checkpoint, data, other):
    """A rejected checkpoint must not leave the model half-loaded (W1 from the file,
    the rest from before): the caller may well catch the error and go on training."""
    model = other()
    before = params_of(model)
    solver = Solver(model, data, update_rule="sgd_momentum", **RESUME_KW)
    with pytest.raises(CheckpointError):
        solver.resume(fcn_checkpoint)
    for k, v in params_of(model).items():
        assert np.array_equal(before[k], v), k


def test_resume_rejects_a_train_step_checkpoint_on_the_slow_path(tmp_path, data):
    make, rule_kw = CASES["net64-sgd_momentum"]
    path = tmp_path / "net.npz"
    _uninterrupted(make, rule_kw, data, path)
    with pytest.raises(CheckpointError):
        Solver(make_fcn(), data, **rule_kw, **RESUME_KW).resume(path)


def test_resume_rejects_a_slow_path_checkpoint_on_the_net_path(fcn_checkpoint, data):
    """The reverse direction: a FullyConnectedNet run's checkpoint holds per-parameter
    optimiser configs the Net's fused optimiser cannot take over."""
    solver = Solver(make_net(), data, update_rule="sgd_momentum", **RESUME_KW)
    assert solver.fast
    with pytest.raises(CheckpointError):
        solver.resume(fcn_checkpoint)


def test_resume_rejects_a_non_solver_checkpoint(tmp_path, data):
    path = tmp_path / "other.npz"
    save_checkpoint(path, {"param/W1": np.ones((D, 16))}, {"epoch": 1})
    with pytest.raises(CheckpointError):
        Solver(make_fcn(), data, **RESUME_KW).resume(path)


@pytest.mark.parametrize("drop", ["array:param/W2", "array:rng/keys", "header:loss_history"])
def test_resume_rejects_an_incomplete_checkpoint(fcn_checkpoint, data, drop):
    """A checkpoint with a missing entry is a CheckpointError (a ValueError), not a
    KeyError from deep inside resume."""
    arrays, header = load_checkpoint(fcn_checkpoint)
    where, key = drop.split(":", 1)
    if where == "array":
        del arrays[key]
    else:
        del header[key]
    save_checkpoint(fcn_checkpoint, arrays, header)
    make, rule_kw = CASES["fcn64-sgd_momentum"]
    with pytest.raises(CheckpointError):
        Solver(make(), data, **rule_kw, **RESUME_KW).resume(fcn_checkpoint)


def test_cs231n_pickles_and_npz_checkpoints_together(tmp_path, data, monkeypatch):
    """checkpoint_name keeps writing the CS231n pickles; checkpoint_path the safe npz."""
    monkeypatch.chdir(tmp_path)
    np.random.seed(3)
    Solver(make_fcn(), data, checkpoint_name="cs", checkpoint_path="safe.npz",
           **dict(RESUME_KW, num_epochs=2)).train()
    assert listdir(tmp_path) == ["cs_epoch_0.pkl", "cs_epoch_1.pkl", "cs_epoch_2.pkl",
                                 "safe.npz"]
    with open("cs_epoch_2.pkl", "rb") as f:
        assert pickle.load(f)["epoch"] == 2
    assert load_checkpoint("safe.npz")[1]["epoch"] == 2


# ----------------------------------------------------------------- hostile files (16.8-10)

import io as _io
import tracemalloc
import zipfile


def _npy_bytes(shape, dtype, data=b"", version=(1, 0)):
    """A .npy member whose header declares ``shape``/``dtype`` followed by ``data``."""
    buf = _io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(shape)}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, header)
    else:
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue() + data


def _hostile_npz(path, members, header=None):
    if header is None:
        header = {"format": "fastfc-checkpoint", "version": 1}
    raw = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("__header__.npy", _npy_bytes((len(raw),), np.uint8, raw))
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def test_load_never_allocates_a_declared_huge_array(tmp_path):
    """A 1 KB file declaring a 400 MB array must fail before allocating it."""
    path = _hostile_npz(tmp_path / "bomb.npz",
                        {"w.npy": _npy_bytes((50_000_000,), np.float64, b"\0" * 64)})
    assert os.path.getsize(path) < 2000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="declares shape"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_load_refuses_an_array_with_more_bytes_than_declared(tmp_path):
    path = _hostile_npz(tmp_path / "x.npz",
                        {"w.npy": _npy_bytes((2,), np.float64, b"\0" * 24)})
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_load_refuses_object_dtype_without_advising_pickles(tmp_path):
    path = _hostile_npz(tmp_path / "obj.npz", {"w.npy": _npy_bytes((1,), object, b"\0" * 8)})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "allow_pickle" not in str(info.value)
    assert "objects" in str(info.value)


def test_load_refuses_a_non_array_member(tmp_path):
    path = _hostile_npz(tmp_path / "x.npz", {"script.py": b"print(1)"})
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.parametrize("version", [0, -1, 2, 99])
def test_load_refuses_unknown_format_versions(tmp_path, version):
    path = _hostile_npz(tmp_path / "v.npz",
                        {"w.npy": _npy_bytes((1,), np.float64, b"\0" * 8)},
                        header={"format": "fastfc-checkpoint", "version": version})
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(path)


def test_load_still_reads_a_valid_handmade_file(tmp_path):
    data = np.arange(3.0)
    path = _hostile_npz(tmp_path / "ok.npz",
                        {"w.npy": _npy_bytes((3,), np.float64, data.tobytes()),
                         "v.npy": _npy_bytes((1,), np.int32, b"\1\0\0\0", version=(2, 0))})
    arrays, header = load_checkpoint(path)
    assert np.array_equal(arrays["w"], data) and arrays["v"].tolist() == [1]


def test_atomic_write_replaces_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    path = tmp_path / "ck.npz"
    os.symlink(victim, path)
    save_checkpoint(path, {"w": np.ones(2)}, {"epoch": 1})
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(path) and os.path.isfile(path)
    assert load_checkpoint(path)[1]["epoch"] == 1


def test_atomic_write_removes_its_own_stale_temp_files(tmp_path):
    path = tmp_path / "ck.npz"
    time_ago = 3600
    stale = tmp_path / ".ck.npz.tmp-killed1.part"
    stale.write_bytes(b"half")
    other_target = tmp_path / ".other.npz.tmp-killed2.part"
    other_target.write_bytes(b"half")
    not_ours = tmp_path / "ck.npz.tmp-x.part"
    not_ours.write_bytes(b"x")
    fresh = tmp_path / ".ck.npz.tmp-inflight.part"
    fresh.write_bytes(b"being written")
    now = os.path.getmtime(stale)
    for p in (stale, other_target, not_ours):
        os.utime(p, (now - time_ago, now - time_ago))
    os.utime(fresh, (now + 3600, now + 3600))   # newer than this write: someone else's
    save_checkpoint(path, {"w": np.ones(2)}, {"epoch": 1})
    names = listdir(tmp_path)
    assert ".ck.npz.tmp-killed1.part" not in names
    assert ".other.npz.tmp-killed2.part" in names      # another target's: left alone
    assert "ck.npz.tmp-x.part" in names                # not fastfc's naming
    assert ".ck.npz.tmp-inflight.part" in names
    assert "ck.npz" in names


def test_atomic_write_temp_file_is_named_after_the_target(tmp_path):
    path = tmp_path / "plot.png"
    seen = []
    atomic_write(path, lambda f: seen.extend(listdir(tmp_path)))
    assert len(seen) == 1
    assert seen[0].startswith(".plot.png.tmp-") and seen[0].endswith(".part")
