"""One validation boundary: Python wrappers validate through fastfc._validation, the
kernels trust them, trusted callers say so with ``check_input=False``, and labels and
indices are checked once per call path."""
import numpy as np
import pytest

from fastfc import Net, Solver, _validation as V
from fastfc._kernels import net as knet


def _data(n=20, d=6, c=3, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d).astype(np.float32), rng.randint(0, c, n)


@pytest.fixture
def range_checks(monkeypatch):
    """Counts the label range checks made in Python (V.as_labels)."""
    calls = []
    original = V.as_labels

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(V, "as_labels", counting)
    return calls


@pytest.mark.parametrize("labels", [lambda y: y.astype(np.intp), lambda y: list(y),
                                    lambda y: y.astype(np.int32), lambda y: y.astype(np.uint8)])
def test_net_checks_labels_once(range_checks, labels):
    """Python checks type and shape; the range is checked by the core on its private copy
    only (no second pass over the labels in Python, whatever their dtype)."""
    X, y = _data()
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    net.train_step(X, labels(y))
    net.loss(X, labels(y))
    assert range_checks == []
    bad = y.copy()
    bad[4] = 3
    with pytest.raises(ValueError, match=r"y\[4\] = 3 is outside \[0, 3\)"):
        net.train_step(X, labels(bad))
    with pytest.raises(ValueError, match=r"y\[4\] = 3 is outside \[0, 3\)"):
        net.loss(X, labels(bad))


def test_solver_fast_path_checks_the_data_set_once(range_checks):
    X, y = _data(50)
    model = Net([6, 7, 3], seed=0)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    num_epochs=1, batch_size=10, print_every=10**6, verbose=False)
    solver.train()
    assert range_checks == []
    bad = y.copy()
    bad[7] = 5
    with pytest.raises(ValueError, match="y_train has the label 5 at index 7"):
        Solver(model, {"X_train": X, "y_train": bad, "X_val": X, "y_val": y})


@pytest.mark.parametrize("y, error, words", [
    (np.array([0, 1.0, 2, 0]), TypeError, "y must hold integer class labels"),
    (np.array([[0, 1], [2, 0]]), ValueError, "y must be 1-dimensional"),
    (np.array([0, 1, 2]), ValueError, "y has 3 labels for 4 samples"),
    (np.array([0, 1, 2, 2**63], dtype=np.uint64), ValueError, "too large"),
    (np.array([0, 1, 2, -1]), ValueError, r"y\[3\] = -1 is outside"),
    (np.array([True, False, True, True]), TypeError, "integer class labels"),
])
def test_bad_labels_are_refused_with_their_name(y, error, words):
    X, _ = _data(4)
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    before = net.params.copy()
    with pytest.raises(error, match=words):
        net.train_step(X, y)
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_check_input_false_computes_the_same_step(rule):
    X, y = _data(40)
    idx = np.random.RandomState(1).randint(0, 40, 16).astype(np.intp)
    a = Net([6, 7, 3], seed=0, dropout_keep_ratio=0.7).set_optimizer(rule)
    b = Net([6, 7, 3], seed=0, dropout_keep_ratio=0.7).set_optimizer(rule)
    yi = y.astype(np.intp)
    for _ in range(3):
        assert a.train_step(X, y[idx], indices=idx) == \
            b.train_step(X, yi[idx], indices=idx, check_input=False)
        assert a.train_step(X[:8], y[:8]) == b.train_step(X[:8], yi[:8], check_input=False)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_check_input_is_keyword_only():
    X, y = _data()
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    with pytest.raises(TypeError):
        net.train_step(X, y, None, False)


def test_validators_return_valid_arrays_unchanged():
    X, y = _data()
    yi = y.astype(np.intp)
    assert V.as_row_batch(X, "X", 6, np.float32) is X
    assert V.as_label_array(yi, "y", 20) is yi
    assert V.as_indices(yi, "indices") is yi
    # anything else is converted (a copy the caller does not hold)
    X64 = V.as_row_batch(X.astype(np.int16), "X", 6, np.float64)
    assert X64.dtype == np.float64 and X64.flags.c_contiguous
    Xt = V.as_row_batch(np.asfortranarray(X), "X", 6, np.float32)
    assert Xt.flags.c_contiguous and np.array_equal(Xt, X)
    assert V.as_label_array(y.astype(np.int8), "y", 20).dtype == np.intp
    assert V.as_label_array(yi[::2], "y", 10).flags.c_contiguous
    with pytest.raises(ValueError, match="X has shape"):
        V.as_row_batch(X, "X", 5, np.float32)
    with pytest.raises(ValueError, match="indices must pick at least one row"):
        V.as_indices(np.array([], dtype=np.intp), "indices")


def test_the_core_trusts_its_caller_except_for_value_ranges():
    """The compiled core documents that it trusts Net (structure checked only in the
    debug build) and keeps the range check of its private copies."""
    assert "trusts" in knet.__doc__ and "debug build" in knet.__doc__
    X, y = _data()
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    bad = y.astype(np.intp)
    bad[2] = 7
    with pytest.raises(ValueError, match=r"y\[2\] = 7"):
        net._core.run(X, bad, None, True, True, True)
    idx = np.array([0, 25], dtype=np.intp)
    with pytest.raises(ValueError, match=r"indices\[1\] = 25"):
        net._core.run(X, y[:2].astype(np.intp), idx, True, True, True)


def test_debug_build_core_checks_what_it_is_given():
    """In the debug build the core re-checks the structure Net guarantees, even for a
    trusted call (a release build trusts it: see NetCore.run)."""
    from fastfc._build_info import BUILD_INFO
    if not BUILD_INFO.get("debug"):
        pytest.skip("release build: the core trusts Net")
    X, y = _data()
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    core = net._core
    with pytest.raises(ValueError, match="labels for"):
        core.run(X, y[:5].astype(np.intp), None, True, True, True, False)
    with pytest.raises(TypeError, match="y must be an intp array"):
        core.run(X, y.astype(np.int32), None, True, True, True, False)
    with pytest.raises(TypeError, match="X must be float32 or float64"):
        core.run(X.astype(np.int32), y.astype(np.intp), None, True, True, True, False)
    bad = y.astype(np.intp)
    bad[0] = 9
    with pytest.raises(ValueError, match=r"y\[0\] = 9"):
        core.run(X, bad, None, True, True, True, False)


def test_solver_checks_the_first_step_and_trusts_the_rest():
    """The Solver's Net steps: the first goes through Net's checks, the later ones pass
    check_input=False (the arrays are the Solver's own), and the run is bit-identical
    to one where every step is checked."""
    X, y = _data(60)
    data = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    seen = []

    class Recording(Net):
        def train_step(self, X, y, indices=None, *, check_input=True):
            seen.append(check_input)
            return super().train_step(X, y, indices, check_input=check_input)

    class AlwaysChecked(Net):
        def train_step(self, X, y, indices=None):
            return super().train_step(X, y, indices)

    runs = []
    for cls in (Recording, AlwaysChecked):
        np.random.seed(0)
        net = cls([6, 8, 3], seed=1)
        solver = Solver(net, data, update_rule="adam", num_epochs=2, batch_size=10,
                        verbose=False)
        solver.train()
        runs.append((solver.loss_history, net.params["W1"].copy()))
    assert seen[0] is True and not any(seen[1:]) and len(seen) == 12
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_trusted_step_still_checks_label_ranges():
    """check_input=False skips the type and shape checks, never the range of the
    labels (the compiled step checks its private copy)."""
    X, y = _data()
    net = Net([6, 7, 3], seed=0).set_optimizer("sgd")
    bad = y.astype(np.intp)
    bad[4] = 3
    with pytest.raises(ValueError, match=r"y\[4\] = 3 is outside \[0, 3\)"):
        net.train_step(X, bad, check_input=False)
