"""Hostile files: damaged model and checkpoint files never crash a loader.

Each example starts from a real file (a saved Net, a Solver checkpoint of a Net and of
a FullyConnectedNet) and damages it -- cut short, bytes overwritten, bytes inserted, or
replaced by random bytes -- then loads it.  A loader may accept a file whose damage did
not matter, or refuse it with CheckpointError (or OSError for what the OS refuses);
nothing else may escape, and a refused ``Solver.resume`` leaves the model, the Solver
and NumPy's global generator exactly as they were.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastfc import Net, Solver
from fastfc.checkpoint import CheckpointError
from fastfc.classifiers.fc_net import FullyConnectedNet

ALLOWED = (CheckpointError, OSError)


def _data(seed=0, n=40, d=6, c=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    return {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}


def _net():
    return Net([6, 5, 3], normalization="batchnorm", dtype=np.float64, seed=1)


def _fcn():
    np.random.seed(3)
    return FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Bytes of a saved Net, a Net Solver checkpoint and a FullyConnectedNet one."""
    base = tmp_path_factory.mktemp("originals")
    files = {}
    net = _net()
    net.save(base / "model.npz")
    files["model"] = (base / "model.npz").read_bytes()
    for kind, model in (("net", _net()), ("fcn", _fcn())):
        solver = Solver(model, _data(), update_rule="adam", num_epochs=1, batch_size=10,
                        verbose=False, checkpoint_path=str(base / f"{kind}.npz"))
        solver.train()
        files[kind] = (base / f"{kind}.npz").read_bytes()
    return files


damage = st.one_of(
    st.tuples(st.just("cut"), st.floats(0.0, 1.0)),
    st.tuples(st.just("overwrite"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("insert"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("random"), st.binary(max_size=4096)),
)


def _damaged(data, how):
    kind = how[0]
    if kind == "random":
        return how[1]
    at = int(how[1] * len(data))
    if kind == "cut":
        return data[:at]
    if kind == "overwrite":
        return data[:at] + how[2] + data[at + len(how[2]):]
    return data[:at] + how[2] + data[at:]


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(how=damage)
def test_net_load_of_a_damaged_file_never_crashes(originals, tmp_path, how):
    path = tmp_path / "model.npz"
    path.write_bytes(_damaged(originals["model"], how))
    try:
        net = Net.load(path)
    except ALLOWED:
        return
    # accepted: it must be a working net
    scores = net.loss(np.zeros((2, net.layer_dims[0]), dtype=net.dtype))
    assert scores.shape == (2, net.layer_dims[-1])


def _snapshot(solver):
    model = solver.model
    params = {k: np.array(v, copy=True) for k, v in model.params.items()}
    extra = {k: np.array(v, copy=True) for k, v in solver._model_extra_state().items()}
    return (params, extra, list(solver.loss_history), solver.epoch, solver._next_it,
            np.random.get_state())


def _assert_same(before, after):
    for a, b in zip(before[:2], after[:2]):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert before[2:5] == after[2:5]
    for x, y in zip(before[5], after[5]):
        np.testing.assert_array_equal(x, y)


@FUZZ
@given(kind=st.sampled_from(["net", "fcn"]), how=damage)
def test_solver_resume_of_a_damaged_checkpoint_changes_nothing(originals, tmp_path, kind,
                                                               how):
    path = tmp_path / "solver.npz"
    path.write_bytes(_damaged(originals[kind], how))
    model = _net() if kind == "net" else _fcn()
    solver = Solver(model, _data(), update_rule="adam", num_epochs=2, batch_size=10,
                    verbose=False)
    np.random.seed(7)
    before = _snapshot(solver)
    try:
        solver.resume(str(path))
    except ALLOWED:
        _assert_same(before, _snapshot(solver))
        return
    solver.train()          # accepted: the run must go on
    assert len(solver.loss_history) >= 1


def test_a_zip_claiming_an_unimplemented_version_is_refused(originals, tmp_path):
    # found by the fuzzing above: a central directory that asks for zip version 6.4
    # made zipfile raise NotImplementedError instead of a clear CheckpointError
    data = bytearray(originals["model"])
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 6:at + 8] = (64).to_bytes(2, "little")
        at = data.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a valid .npz"):
        Net.load(path)
