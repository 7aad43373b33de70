"""Exponential moving average of the weights (Solver's ema_decay / ema_every): the
compiled kernel, the average the Solver keeps (Net and course models), the checks that
use it, the model's weights at the end, checkpoints and bad arguments."""
import copy

import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc._kernels import optim as kopt
from fastfc.checkpoint import CheckpointError
from fastfc.classifiers.fc_net import FullyConnectedNet

from test_checkpoint import PER_EPOCH, assert_same_end, make_data, make_fcn, make_net
from test_solver_resume import resumed, sigint_in_model_at_step, uninterrupted


# ------------------------------------------------------------------ the kernel

@pytest.mark.parametrize("n", [1, 17, 70000])       # 70000: split over the pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_numpy_bit_for_bit(dtype, n):
    rng = np.random.RandomState(n)
    avg = rng.randn(n).astype(dtype)
    ref = avg.copy()
    for decay in (0.9, 0.999, 0.5 ** 3):
        w = rng.randn(n).astype(dtype)
        kopt.ema_update(avg, w, decay)
        ref = decay * ref + (1 - decay) * w
        assert ref.dtype == dtype
        np.testing.assert_array_equal(avg, ref)


def test_kernel_checks_lengths_and_types():
    with pytest.raises(ValueError, match="avg has 3 values but w has 4"):
        kopt.ema_update(np.zeros(3), np.zeros(4), 0.9)
    with pytest.raises((TypeError, ValueError)):
        kopt.ema_update(np.zeros(3), np.zeros(3, dtype=np.float32), 0.9)
    kopt.ema_update(np.zeros(0), np.zeros(0), 0.9)        # empty: nothing to do


# ------------------------------------------------------------------ the Solver

def _data(n=200, d=10, c=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = rng.randint(c, size=n)
    return dict(X_train=X[:150], y_train=y[:150], X_val=X[150:], y_val=y[150:])


MAKERS = {
    "net-batchnorm": lambda: Net([10, 12, 3], seed=0, dtype=np.float64,
                                 normalization="batchnorm", dropout_keep_ratio=0.9),
    "net32": lambda: Net([10, 12, 3], seed=0, dtype=np.float32),
    "fcn": lambda: (np.random.seed(0), FullyConnectedNet(
        [12], input_dim=10, num_classes=3, dtype=np.float64))[1],
}


def _sources(model):
    """The arrays the average follows, copied (Net: flat buffer and running stats)."""
    if hasattr(model, "ema_arrays"):
        return {k: v.copy() for k, v in model.ema_arrays().items()}
    return {k: np.array(v, copy=True) for k, v in model.params.items()}


def _run(make, every=1, decay=None, **extra):
    """Train; returns (solver, model, the raw weights after each step)."""
    model = make()
    kw = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, num_epochs=3,
              batch_size=30, verbose=False, random_state=0, num_train_samples=None)
    kw.update(extra)
    if decay is not None:
        kw.update(ema_decay=decay, ema_every=every)
    solver = Solver(model, _data(), **kw)
    raw = [_sources(model)]
    step = solver._step

    def spy():
        step()
        raw.append(_sources(model))
    solver._step = spy
    solver.train()
    return solver, model, raw


def _reference(raw, decay, every):
    avg = {k: v.copy() for k, v in raw[0].items()}
    for t in range(1, len(raw)):
        if t % every == 0:
            d = decay ** every
            for k in avg:
                avg[k] = d * avg[k] + (1 - d) * raw[t][k]
    return avg


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("kind", list(MAKERS))
def test_average_is_the_formula_and_training_is_unchanged(kind, every):
    plain, _, raw_plain = _run(MAKERS[kind])
    solver, model, raw = _run(MAKERS[kind], decay=0.8, every=every)
    # the raw trajectory does not depend on the averaging (the checks put it back)
    assert plain.loss_history == solver.loss_history
    for a, b in zip(raw_plain, raw):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    want = _reference(raw, 0.8, every)
    assert sorted(solver._ema) == sorted(want)
    tol = 1e-6 if model.params["W1"].dtype == np.float32 else 1e-13
    for k in want:
        np.testing.assert_allclose(solver._ema[k], want[k], rtol=tol, atol=tol)
        assert not np.array_equal(solver._ema[k], raw[-1][k]) or k.startswith("running")


@pytest.mark.parametrize("kind", list(MAKERS))
def test_checks_and_best_snapshot_use_the_average(kind):
    model = MAKERS[kind]()
    solver = Solver(model, _data(), update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=3, batch_size=30, verbose=False, random_state=0,
                    ema_decay=0.7)
    seen = []
    check = solver._check
    keep = solver._keep_best

    def spy_check(t, epoch_end, last_it):
        # during a check the model holds the average
        for k, v in _sources(model).items():
            np.testing.assert_array_equal(v, solver._ema[k])
        acc = check(t, epoch_end, last_it)
        # the validation accuracy is the average's, computed here independently
        twin = copy.deepcopy(model)
        scores = twin.loss(solver.X_val)
        assert acc == np.mean(np.argmax(scores, axis=1) == solver.y_val)
        return acc

    def spy_keep(val_acc):
        keep(val_acc)
        for k, v in solver.best_params.items():
            np.testing.assert_array_equal(v, model.params[k])

    def spy_step():
        step()
        seen.append(_sources(model))

    step = solver._step
    solver._step = spy_step
    solver._check = spy_check
    solver._keep_best = spy_keep
    before_check = {}

    end_check = solver._end_of_check

    def spy_end(t, epoch_end, last_it=False):
        before_check.update(_sources(model))
        out = end_check(t, epoch_end, last_it)
        # after the check the raw weights are back
        for k, v in _sources(model).items():
            np.testing.assert_array_equal(v, before_check[k])
        return out
    solver._end_of_check = spy_end
    solver.train()
    assert len(solver.val_acc_history) >= 3


@pytest.mark.parametrize("kind", list(MAKERS))
def test_model_ends_with_the_average(kind):
    solver, model, _ = _run(MAKERS[kind], decay=0.8)
    # the best snapshot (of averaged weights) is in the model, and for a Net the
    # running statistics are the averaged ones too
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(model.params[k], v)
    if hasattr(model, "ema_arrays"):
        for k, v in model.ema_arrays().items():
            if k.startswith("running"):
                np.testing.assert_array_equal(v, solver._ema[k])


def test_without_checks_improving_the_model_holds_the_final_average():
    model = Net([10, 12, 3], seed=0, dtype=np.float64)
    solver = Solver(model, _data(), update_rule="sgd", optim_config={"learning_rate": 0.0},
                    num_epochs=2, batch_size=30, verbose=False, random_state=0,
                    ema_decay=0.5)
    solver.best_val_acc = 1.0          # nothing can improve on it: no best snapshot
    solver.train()
    assert not solver.best_params
    np.testing.assert_array_equal(model.ema_arrays()["flat"], solver._ema["flat"])


@pytest.mark.parametrize("bad, exc", [(0.0, ValueError), (1.0, ValueError), (-0.5, ValueError),
                                      (float("nan"), ValueError), ("x", TypeError)])
def test_bad_ema_decay_raises_naming_it(bad, exc):
    with pytest.raises(exc, match="ema_decay"):
        Solver(Net([10, 3], seed=0), _data(), ema_decay=bad)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (1.5, (TypeError, ValueError)),
                                      ("2", TypeError)])
def test_bad_ema_every_raises_naming_it(bad, exc):
    with pytest.raises(exc, match="ema_every"):
        Solver(Net([10, 3], seed=0), _data(), ema_decay=0.9, ema_every=bad)


# ------------------------------------------------------------------ checkpoints

RESUME = dict(batch_size=25, num_epochs=4, lr_decay=0.9, num_train_samples=50,
              num_val_samples=30, verbose=False, ema_decay=0.9, ema_every=2)

KINDS = {
    "net-adam": (lambda: make_net(), dict(update_rule="adam",
                                          optim_config={"learning_rate": 5e-3})),
    "net32-batchnorm-dropout": (
        lambda: make_net(dtype=np.float32, normalization="batchnorm",
                         dropout_keep_ratio=0.8),
        dict(update_rule="adamw", optim_config={"learning_rate": 5e-3})),
    "fcn-adam": (lambda: make_fcn(), dict(update_rule="adam",
                                          optim_config={"learning_rate": 5e-3})),
}


@pytest.mark.parametrize("k", [3, PER_EPOCH + 3])
@pytest.mark.parametrize("kind", list(KINDS))
def test_interrupt_and_resume_with_ema_is_exact(tmp_path, kind, k):
    make, extra = KINDS[kind]
    kw = dict(RESUME, **extra)
    data = make_data()
    a, model_a = uninterrupted(make, copy.deepcopy(kw), data)
    path = tmp_path / "ck.npz"
    model = make()
    s = Solver(model, data, checkpoint_path=path, **copy.deepcopy(kw))
    sigint_in_model_at_step(model, k)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        s.train()
    b, model_b = resumed(make, copy.deepcopy(kw), data, path)
    assert_same_end(a, model_a, b, model_b)
    assert sorted(a._ema) == sorted(b._ema)
    for name in a._ema:
        np.testing.assert_array_equal(a._ema[name], b._ema[name])


def test_resume_refuses_a_different_average(tmp_path):
    data = make_data()
    kw = dict(RESUME, update_rule="adam", optim_config={"learning_rate": 5e-3})
    s = Solver(make_net(), data, **copy.deepcopy(kw))
    s.train()
    path = tmp_path / "ck.npz"
    s.save(path)
    without = {k: v for k, v in kw.items() if not k.startswith("ema")}
    with pytest.raises(CheckpointError, match="weight average"):
        Solver(make_net(), data, **copy.deepcopy(without)).resume(path)
    with pytest.raises(CheckpointError, match="weight average"):
        Solver(make_net(), data, **dict(copy.deepcopy(kw), ema_decay=0.5)).resume(path)
    plain = Solver(make_net(), data, **copy.deepcopy(without))
    plain.train()
    plain.save(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="weight average"):
        Solver(make_net(), data, **copy.deepcopy(kw)).resume(tmp_path / "plain.npz")
    Solver(make_net(), data, **copy.deepcopy(kw)).resume(path)     # the same: fine
