"""Solver: on_divergence (non-finite and finite blow-up), restore_norm_stats, and the
kept parameters being a finite copy (issues 14.6, 15.5, 15.7, 16.6)."""
import math
import re
import warnings

import numpy as np
import pytest

from fastfc import Solver, TrainingDiverged
import fastfc.solver as solver_module

from test_solver import (ITERS_PER_EPOCH, ReferenceSolver, assert_params_equal, make_data,
                         make_fcn, make_net, nan_loss_at_step, params_of)

KW = dict(optim_config={"learning_rate": 0.05}, batch_size=25, num_epochs=3, verbose=False)
TOTAL = 3 * ITERS_PER_EPOCH


@pytest.fixture
def data():
    return make_data()


def diverged_warnings(record):
    return [w for w in record if issubclass(w.category, RuntimeWarning)
            and "diverged" in str(w.message)]


def same_history(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def blowup_at_step(model, k, factor=5000.0):
    """The k-th training loss (1-based) is reported as factor x the first one (finite);
    gradients are untouched.  Patches ``loss`` (so the ordinary path runs)."""
    inner = model.loss
    seen = []

    def wrapped(X, y=None):
        out = inner(X, y)
        if y is None:
            return out
        seen.append(float(out[0]))
        if len(seen) == k:
            return seen[0] * factor, out[1]
        return out

    model.loss = wrapped


# ----------------------------------------------------------------- on_divergence

def test_default_is_continue_like_the_course(data):
    """A NaN loss does not stop the course's Solver: same histories and parameters,
    plus exactly one RuntimeWarning naming the step."""
    ref_model = make_fcn()
    nan_loss_at_step(ref_model, 14)
    np.random.seed(2)
    ref = ReferenceSolver(ref_model, data, **KW)
    ref.train()

    model = make_fcn()
    nan_loss_at_step(model, 14)
    np.random.seed(2)
    s = Solver(model, data, **KW)
    assert s.on_divergence == "continue"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s.train()
    div = diverged_warnings(record)
    assert len(div) == 1
    msg = str(div[0].message)
    assert re.search(r"\biteration 14\b", msg) and "learning rate" in msg
    assert s.diverged_iteration == 14
    assert len(s.loss_history) == TOTAL and math.isnan(s.loss_history[13])
    assert same_history(s.loss_history, ref.loss_history)
    assert s.val_acc_history == ref.val_acc_history
    assert_params_equal(params_of(model), params_of(ref_model))


@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_continue_with_nan_params_finishes_with_a_finite_snapshot(data, make):
    model = make()
    s = Solver(model, data, optim_config={"learning_rate": 1e30}, batch_size=25,
               num_epochs=3, verbose=False)
    np.random.seed(2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s.train()
    assert len(diverged_warnings(record)) == 1
    assert len(s.loss_history) == TOTAL          # the run went on to the end
    assert not np.isfinite(s.loss_history[-1])
    assert all(np.isfinite(v).all() for v in model.params.values())
    if s.best_params:
        assert_params_equal(params_of(model), s.best_params)
    assert all(np.isfinite(v).all() for v in s.best_params.values())


@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_stop_ends_at_the_step_with_the_best_params(data, make):
    model = make()
    nan_loss_at_step(model, 14)
    s = Solver(model, data, on_divergence="stop", **KW)
    np.random.seed(2)
    with pytest.warns(RuntimeWarning, match=r"diverged at iteration 14\b") as record:
        s.train()
    assert len(diverged_warnings(record)) == 1
    assert "smaller learning rate" in str(diverged_warnings(record)[0].message)
    assert len(s.loss_history) == 14
    assert len(s.val_acc_history) == 2
    assert s.best_params
    assert_params_equal(params_of(model), s.best_params)


def test_stop_before_any_best_restores_the_starting_params(data):
    model = make_fcn()
    start = params_of(model)
    s = Solver(model, data, optim_config={"learning_rate": 1e30}, batch_size=25,
               num_epochs=3, verbose=False, on_divergence="stop")
    np.random.seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s.train()
    assert all(np.isfinite(v).all() for v in model.params.values())
    if not s.best_params:
        assert_params_equal(params_of(model), start)


def test_bad_on_divergence_raises(data):
    with pytest.raises(ValueError, match="on_divergence"):
        Solver(make_fcn(), data, on_divergence="ignore")


# ----------------------------------------------------------------- finite blow-up

@pytest.mark.parametrize("mode", ["continue", "stop", "raise"])
def test_finite_blowup_is_divergence(data, mode):
    model = make_fcn()
    blowup_at_step(model, 12)
    s = Solver(model, data, on_divergence=mode, **KW)
    np.random.seed(2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if mode == "raise":
            with pytest.raises(TrainingDiverged, match=r"iteration 12\b.*grew") as info:
                s.train()
            assert "learning rate" in str(info.value)
        else:
            s.train()
    assert s.diverged_iteration == 12
    assert np.isfinite(s.loss_history[11])
    if mode == "continue":
        assert len(diverged_warnings(record)) == 1      # warned once, went on
        assert len(s.loss_history) == TOTAL
    elif mode == "stop":
        assert len(diverged_warnings(record)) == 1
        assert len(s.loss_history) == 12
    assert_params_equal(params_of(model), s.best_params)


def test_blowup_rule_threshold(data):
    """Exactly above BLOWUP_FACTOR x max(first loss, 1) counts; at or below does not."""
    assert solver_module.BLOWUP_FACTOR == 1e3
    for factor, tripped in [(999.0, False), (1001.0, True)]:
        model = make_fcn()
        blowup_at_step(model, 5, factor=factor)
        s = Solver(model, data, on_divergence="raise", **KW)
        np.random.seed(2)
        first = []
        if tripped:
            with pytest.raises(TrainingDiverged):
                s.train()
        else:
            s.train()
            assert s.diverged_iteration is None


def test_lr_100_sgd_blowup_is_caught(data):
    """The issue's case: plain SGD at lr 100 drives the loss up by orders of magnitude
    (finite for a while); it must not end quietly."""
    model = make_fcn()
    s = Solver(model, data, optim_config={"learning_rate": 100.0}, batch_size=25,
               num_epochs=3, verbose=False, on_divergence="raise")
    np.random.seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged):
            s.train()


@pytest.mark.parametrize("rule,lr", [("sgd", 0.05), ("sgd", 0.3), ("sgd_momentum", 0.05),
                                     ("sgd_nesterov_momentum", 0.05), ("rmsprop", 1e-3),
                                     ("adam", 1e-3), ("adam", 1e-2)])
def test_normal_noisy_runs_never_trip(data, rule, lr):
    for make in (make_fcn, make_net):
        s = Solver(make(), data, update_rule=rule, optim_config={"learning_rate": lr},
                   batch_size=5, num_epochs=4, verbose=False, on_divergence="raise")
        np.random.seed(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            s.train()
        assert s.diverged_iteration is None


def test_a_big_first_loss_is_not_a_blowup(data):
    big = dict(data, X_train=data["X_train"] * 3000.0, X_val=data["X_val"] * 3000.0)
    s = Solver(make_fcn(), big, optim_config={"learning_rate": 1e-5}, batch_size=25,
               num_epochs=2, verbose=False, on_divergence="raise")
    np.random.seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the unscaled-input advice
        s.train()
    assert s.loss_history[0] > 100
    assert s.diverged_iteration is None


# ----------------------------------------------------------------- restore_norm_stats

def _run_recording(make, data, restore, seed=2, **kw):
    """Train, recording the running statistics at every check and at each new best."""
    model = make(normalization="batchnorm")
    s = Solver(model, data, restore_norm_stats=restore,
               **dict(dict(KW, num_epochs=6, optim_config={"learning_rate": 0.3}), **kw))
    at_best, last = {}, {}
    inner = s._end_of_check

    def spy(*args, **kwargs):
        before = s.best_val_acc
        out = inner(*args, **kwargs)
        stats = {f"{i}/{k}": np.array(bn[k], copy=True)
                 for i, bn in enumerate(model.bn_params) for k in ("running_mean",
                                                                    "running_var")}
        last.clear()
        last.update(stats)
        if s.best_val_acc > before:
            at_best.clear()
            at_best.update(stats)
        return out

    s._end_of_check = spy
    np.random.seed(seed)
    s.train()
    final = {f"{i}/{k}": np.array(bn[k], copy=True)
             for i, bn in enumerate(model.bn_params) for k in ("running_mean", "running_var")}
    return s, at_best, last, final


@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_restore_norm_stats(data, make):
    s, at_best, last, final = _run_recording(make, data, True)
    assert at_best and any(not np.array_equal(at_best[k], last[k]) for k in last), \
        "the best check must not be the last one for this test to mean anything"
    for k in at_best:
        assert np.array_equal(final[k], at_best[k]), k
    # the parameters are those of the best check too
    assert_params_equal(params_of(s.model), s.best_params)

    s, at_best, last, final = _run_recording(make, data, False)
    for k in last:
        assert np.array_equal(final[k], last[k]), k      # the course keeps the last stats


def test_restore_norm_stats_must_be_a_bool(data):
    with pytest.raises(TypeError, match="restore_norm_stats"):
        Solver(make_fcn(), data, restore_norm_stats="yes")


# ----------------------------------------------------------------- kept params are copies

@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_best_params_are_not_aliased_by_a_second_train(data, make):
    model = make()
    s = Solver(model, data, **KW)
    snapshots = []
    inner = s._end_of_check

    def spy(*args, **kwargs):
        before = s.best_val_acc
        out = inner(*args, **kwargs)
        if s.best_val_acc > before:
            snapshots.append(params_of(model))
        return out

    s._end_of_check = spy
    np.random.seed(2)
    s.train()
    s.train()
    assert len(s.loss_history) == 2 * TOTAL
    # best_params change only by a new snapshot, never with the live weights
    assert_params_equal(s.best_params, snapshots[-1])
    assert_params_equal(params_of(model), snapshots[-1])
    for k in s.best_params:
        assert not np.shares_memory(s.best_params[k], model.params[k])


def test_divergence_after_restore_keeps_a_finite_snapshot(data):
    """The issue: after a second train(), the guard 'kept' NaN weights because
    best_params aliased the live ones."""
    model = make_fcn()
    s = Solver(model, data, **KW)
    np.random.seed(2)
    s.train()
    kept = {k: v.copy() for k, v in s.best_params.items()}
    s.optim_configs = {p: dict(c, learning_rate=1e30) for p, c in s.optim_configs.items()}
    s.on_divergence = "raise"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged):
            s.train()
    assert all(np.isfinite(v).all() for v in s.best_params.values())
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert_params_equal(s.best_params, kept)
    assert_params_equal(params_of(model), kept)
