"""Solver: Ctrl-C at a step boundary with an exact checkpoint (issue 15.4), save right
after resume (16.5), all-or-nothing resume (16.7), train() called again (14.5)."""
import copy
import json
import math
import signal
import warnings

import numpy as np
import pytest

import fastfc.solver as solver_module
from fastfc import Net, Solver
from fastfc.augment import Augmenter
from fastfc.classifiers.fc_net import FullyConnectedNet
from fastfc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

from test_checkpoint import (CASES, PER_EPOCH, RESUME_KW, assert_same_end, make_data,
                             make_fcn, make_net, params_of)

TOTAL = RESUME_KW["num_epochs"] * PER_EPOCH


@pytest.fixture
def data():
    return make_data()


@pytest.fixture(autouse=True)
def default_sigint():
    """Every test starts and must end with Python's own SIGINT handler."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def sigint_in_model_at_step(model, k, twice=False):
    """A real SIGINT raised inside the k-th training call (1-based): after the forward
    and backward pass, before the parameters are updated (model.loss) or before the
    loss is appended (Net.train_step).  Patches the model, so FullyConnectedNet takes
    the per-layer path."""
    name = "train_step" if isinstance(model, Net) else "loss"
    inner = getattr(model, name)
    count = [0]

    def wrapped(X, y=None, *args, **kwargs):
        out = inner(X, y, *args, **kwargs)
        if y is not None:
            count[0] += 1
            if count[0] == k:
                signal.raise_signal(signal.SIGINT)
                if twice:
                    signal.raise_signal(signal.SIGINT)
        return out

    setattr(model, name, wrapped)


def sigint_in_solver_step_at(solver, k):
    """A real SIGINT right after the k-th step's update (the fused path stays on)."""
    inner = solver._step
    count = [0]

    def wrapped():
        inner()
        count[0] += 1
        if count[0] == k:
            signal.raise_signal(signal.SIGINT)

    solver._step = wrapped


def uninterrupted(make, kw, data, path=None):
    model = make()
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(3)
    s.train()
    return s, model


def resumed(make, kw, data, path):
    model = make()
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(999)
    s.resume(path).train()
    return s, model


KINDS = {
    # name: (make, extra kwargs, how to interrupt)
    "fcn-per-layer-adam": (lambda: make_fcn(), dict(update_rule="adam",
                                                    optim_config={"learning_rate": 5e-3}),
                           "model"),
    "fcn-fused-sgd_momentum": (lambda: make_fcn(), dict(update_rule="sgd_momentum",
                                                        optim_config={"learning_rate": 0.02}),
                               "solver"),
    "fcn32-batchnorm-dropout-adam": (CASES["fcn32-batchnorm-dropout-adam"][0],
                                     CASES["fcn32-batchnorm-dropout-adam"][1], "model"),
    "net-adam": (lambda: make_net(), dict(update_rule="adam",
                                          optim_config={"learning_rate": 5e-3}), "model"),
    "net32-batchnorm-dropout-adam": (CASES["net32-batchnorm-dropout-adam"][0],
                                     CASES["net32-batchnorm-dropout-adam"][1], "model"),
    "net-shuffle-cosine-augment": (
        lambda: make_net(), dict(update_rule="rmsprop", optim_config={"learning_rate": 2e-3},
                                 shuffle=True, schedule="cosine", lr_decay=1.0,
                                 augment=Augmenter((1, 3, 4), flip=True, translate=1, seed=4)),
        "model"),
}


@pytest.mark.parametrize("k", [3, 2 * PER_EPOCH + 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_sigint_mid_step_then_resume_is_exact(tmp_path, data, kind, k):
    make, extra, how = KINDS[kind]
    kw = dict(RESUME_KW, **extra)
    a, model_a = uninterrupted(make, copy.deepcopy(kw), data)

    path = tmp_path / "ck.npz"
    model = make()
    s = Solver(model, data, checkpoint_path=path, **copy.deepcopy(kw))
    if how == "model":
        sigint_in_model_at_step(model, k)
    else:
        sigint_in_solver_step_at(s, k)
    live = {}
    save = s.save

    def spy_save(p):
        live.update(params_of(model))      # the weights at the moment of the save
        return save(p)

    s.save = spy_save
    np.random.seed(3)
    with pytest.warns(RuntimeWarning, match=r"interrupted after iteration %d / %d" % (k, TOTAL)):
        s.train()
    assert s.interrupted
    # the step that was under way when Ctrl-C came was completed, then training stopped
    assert len(s.loss_history) == k
    arrays, head = load_checkpoint(path)
    assert head["next_iteration"] == k
    assert len(head["loss_history"]) == k
    for name, v in live.items():      # the current weights, not the best ones
        assert np.array_equal(arrays[f"param/{name}"], v), name
    # the model holds the best parameters, as before
    if s.best_params:
        for name, v in s.best_params.items():
            assert np.array_equal(params_of(model)[name], v), name

    b, model_b = resumed(make, copy.deepcopy(kw), data, path)
    assert_same_end(a, model_a, b, model_b)
    assert len(b.loss_history) == TOTAL


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, data):
    path = tmp_path / "ck.npz"
    model = make_fcn()
    sigint_in_model_at_step(model, PER_EPOCH + 2, twice=True)
    s = Solver(model, data, checkpoint_path=path, **RESUME_KW)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning, match="during iteration") as record:
        s.train()
    assert s.interrupted
    assert len(s.loss_history) == PER_EPOCH + 1       # the step was abandoned
    head = load_checkpoint(path)[1]
    assert head["next_iteration"] == PER_EPOCH         # the epoch-1 checkpoint is kept
    assert "keeps its last complete state" in str(record[0].message)


def test_a_users_sigint_handler_is_left_alone(data):
    seen = []

    def mine(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        model = make_fcn()
        sigint_in_model_at_step(model, 3)
        s = Solver(model, data, **RESUME_KW)
        np.random.seed(3)
        s.train()
        assert seen == [signal.SIGINT] and not s.interrupted
        assert len(s.loss_history) == TOTAL
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigint_without_checkpoint_path_warns_once(data, capsys):
    model = make_fcn()
    sigint_in_model_at_step(model, 4)
    s = Solver(model, data, **RESUME_KW)
    np.random.seed(3)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s.train()
    assert [str(w.message).count("interrupted") for w in record] == [1]
    assert len(s.loss_history) == 4
    assert "Traceback" not in capsys.readouterr().err


# ----------------------------------------------------------------- save after resume

@pytest.mark.parametrize("case", ["net64-sgd_momentum", "net32-batchnorm-dropout-adam",
                                  "fcn64-sgd_momentum"])
def test_save_right_after_resume_writes_what_was_loaded(tmp_path, data, case):
    make, rule_kw = CASES[case]
    kw = dict(RESUME_KW, **rule_kw)
    a, model_a = uninterrupted(make, kw, data)

    path = tmp_path / "ck.npz"
    model = make()
    sigint_in_model_at_step(model, PER_EPOCH + 2)
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        s.train()

    # resume and save before any step (what `fastfc train --resume` does on a run
    # with nothing left to train), twice over
    again = tmp_path / "again.npz"
    Solver(make(), data, **kw).resume(path).save(again)
    arrays0, head0 = load_checkpoint(path)
    arrays1, head1 = load_checkpoint(again)
    assert sorted(arrays0) == sorted(arrays1)
    for key in arrays0:
        assert np.array_equal(arrays0[key], arrays1[key]), key
    assert head0 == head1

    b, model_b = resumed(make, kw, data, again)
    assert_same_end(a, model_a, b, model_b)


def test_net_solver_saved_before_any_step_resumes_on_the_net_path(tmp_path, data):
    kw = dict(RESUME_KW, update_rule="adam", optim_config={"learning_rate": 5e-3})
    a, model_a = uninterrupted(make_net, kw, data)
    path = tmp_path / "ck.npz"
    model = make_net()
    np.random.seed(3)
    Solver(model, data, **kw).save(path)
    assert load_checkpoint(path)[1]["fast"] is True
    b, model_b = resumed(make_net, kw, data, path)
    assert_same_end(a, model_a, b, model_b)


# ----------------------------------------------------------------- all-or-nothing resume

def _rewrite(src, dst, arrays=None, header=None):
    a, h = load_checkpoint(src)
    if arrays:
        arrays(a)
    if header:
        header(h)
    h.pop("format", None)
    h.pop("version", None)
    save_checkpoint(dst, a, h)


def _set(d, key, value):
    d[key] = value


CORRUPTIONS = {
    "param-name": dict(header=lambda h: h["param_names"].reverse()),
    "param-shape": dict(arrays=lambda a: _set(a, "param/W1", a["param/W1"][:, :-1])),
    "param-dtype": dict(arrays=lambda a: _set(a, "param/W1", a["param/W1"].astype(complex))),
    "param-nan": dict(arrays=lambda a: a["param/b2"].__setitem__(0, np.nan)),
    "best-inf": dict(arrays=lambda a: a["best/W2"].__setitem__((0, 0), np.inf)),
    "best-missing-one": dict(arrays=lambda a: a.pop("best/b1")),
    "optim-key": dict(header=lambda h: h["optim_scalars"]["W1"].__setitem__("momentum2", 0.9)),
    "optim-shape": dict(arrays=lambda a: _set(a, "optim/W1/velocity",
                                              a["optim/W1/velocity"][:-1])),
    "optim-range": dict(header=lambda h: h["optim_scalars"]["b1"].__setitem__("momentum", 7.0)),
    "optim-missing-param": dict(header=lambda h: h["optim_scalars"].pop("b3")),
    "epoch-type": dict(header=lambda h: _set(h, "epoch", "2")),
    "next-iteration-negative": dict(header=lambda h: _set(h, "next_iteration", -1)),
    "best-acc-range": dict(header=lambda h: _set(h, "best_val_acc", 3.0)),
    "history-type": dict(header=lambda h: h["loss_history"].__setitem__(1, "x")),
    "history-lengths": dict(header=lambda h: h["val_acc_history"].pop()),
    "history-short": dict(header=lambda h: _set(h, "loss_history", h["loss_history"][:2])),
    "rng-keys-shape": dict(arrays=lambda a: _set(a, "rng/keys", a["rng/keys"][:600])),
    "rng-keys-dtype": dict(arrays=lambda a: _set(a, "rng/keys", a["rng/keys"].astype(np.int64))),
    "rng-pos": dict(header=lambda h: h["rng"].__setitem__("pos", 700)),
    "rng-kind": dict(header=lambda h: h["rng"].__setitem__("kind", "PCG64")),
    "schedule": dict(header=lambda h: _set(h, "schedule", {"elapsed": -3})),
    "rule": dict(header=lambda h: h["settings"].__setitem__("update_rule", "adam")),
    "unknown-array": dict(arrays=lambda a: _set(a, "extra/thing", np.zeros(3))),
    "bn-shape": dict(arrays=lambda a: _set(a, "model/bn0/running_mean", np.zeros(3))),
}


@pytest.fixture
def bn_checkpoint(tmp_path, data):
    """A mid-run checkpoint of a batch-norm FullyConnectedNet trained with momentum."""
    path = tmp_path / "ck.npz"
    kw = dict(RESUME_KW, update_rule="sgd_momentum", optim_config={"learning_rate": 0.02},
              schedule="cosine", lr_decay=1.0)
    model = make_fcn(normalization="batchnorm")
    sigint_in_model_at_step(model, PER_EPOCH + 2)
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        s.train()
    return path, kw


def _state_of(solver, model):
    return (copy.deepcopy(params_of(model)),
            copy.deepcopy([{k: np.array(v) for k, v in bn.items() if isinstance(v, np.ndarray)}
                           for bn in model.bn_params]),
            copy.deepcopy(solver.optim_configs), list(solver.loss_history),
            list(solver.val_acc_history), solver.epoch, solver._next_it,
            np.random.get_state())


def _assert_same_state(x, y):
    px, bx, cx, lx, vx, ex, nx, rx = x
    py, by, cy, ly, vy, ey, ny, ry = y
    assert px.keys() == py.keys() and all(np.array_equal(px[k], py[k]) for k in px)
    assert len(bx) == len(by)
    for u, v in zip(bx, by):
        assert u.keys() == v.keys() and all(np.array_equal(u[k], v[k]) for k in u)
    assert cx.keys() == cy.keys()
    for k in cx:
        assert cx[k].keys() == cy[k].keys()
        for key in cx[k]:
            assert np.array_equal(cx[k][key], cy[k][key]), (k, key)
    assert (lx, vx, ex, nx) == (ly, vy, ey, ny)
    assert rx[0] == ry[0] and np.array_equal(rx[1], ry[1]) and rx[2:] == ry[2:]


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_checkpoint_changes_nothing(tmp_path, data, bn_checkpoint, corruption):
    path, kw = bn_checkpoint
    bad = tmp_path / "bad.npz"
    _rewrite(path, bad, **CORRUPTIONS[corruption])
    # a solver part-way through its own run: a failed resume must leave all of it
    model = make_fcn(normalization="batchnorm")
    s = Solver(model, data, **dict(kw, num_epochs=1))
    np.random.seed(5)
    s.train()
    np.random.seed(77)
    before = _state_of(s, model)
    with pytest.raises(CheckpointError):
        s.resume(bad)
    _assert_same_state(before, _state_of(s, model))


def test_the_uncorrupted_checkpoint_resumes(tmp_path, data, bn_checkpoint):
    path, kw = bn_checkpoint
    good = tmp_path / "good.npz"
    _rewrite(path, good)
    Solver(make_fcn(normalization="batchnorm"), data, **kw).resume(good).train()


def test_net_checkpoint_with_a_bad_optimiser_state_changes_nothing(tmp_path, data):
    path = tmp_path / "ck.npz"
    kw = dict(RESUME_KW, update_rule="adam", optim_config={"learning_rate": 5e-3})
    model = make_net()
    sigint_in_model_at_step(model, 3)
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        s.train()
    for name, change in [("flat-size", dict(arrays=lambda a: _set(a, "optim/__net__/m",
                                                                   a["optim/__net__/m"][:-1]))),
                         ("beta", dict(header=lambda h: h["optim_scalars"]["__net__"]
                                       .__setitem__("beta1", 1.5))),
                         ("step", dict(arrays=lambda a: _set(a, "model/step", np.zeros(2))))]:
        bad = tmp_path / f"{name}.npz"
        _rewrite(path, bad, **change)
        model2 = make_net()
        s2 = Solver(model2, data, **kw)
        before = params_of(model2)
        rng = np.random.get_state()
        with pytest.raises(CheckpointError):
            s2.resume(bad)
        assert all(np.array_equal(before[k], v) for k, v in params_of(model2).items())
        assert np.array_equal(np.random.get_state()[1], rng[1])
        assert s2.loss_history == [] and s2._next_it == 0


# ----------------------------------------------------------------- train() again

def course_loop_lines(num_epochs, per_epoch, print_every, epoch0, calls):
    """The lines the course's train() prints over successive calls (its loop logic)."""
    lines = []
    epoch = epoch0
    total = num_epochs * per_epoch
    for _ in range(calls):
        for t in range(total):
            if t % print_every == 0:
                lines.append(("it", t + 1, total))
            if (t + 1) % per_epoch == 0:
                epoch += 1
            if t == 0 or t == total - 1 or (t + 1) % per_epoch == 0:
                lines.append(("ep", epoch, num_epochs))
    return lines


def parse(out):
    lines = []
    for line in out.splitlines():
        if line.startswith("(Iteration"):
            a, b = line.split(")")[0][len("(Iteration "):].split(" / ")
            lines.append(("it", int(a), int(b)))
        elif line.startswith("(Epoch"):
            a, b = line.split(")")[0][len("(Epoch "):].split(" / ")
            lines.append(("ep", int(a), int(b)))
    return lines


@pytest.mark.parametrize("make,fuse", [(make_fcn, True), (make_fcn, False), (make_net, True)],
                         ids=["fcn-fused", "fcn-per-layer", "net"])
def test_train_again_trains_num_epochs_more(data, capsys, monkeypatch, make, fuse):
    from test_solver import ReferenceSolver
    monkeypatch.setattr(solver_module, "_FUSE_PLAIN_NETS", fuse)
    kw = dict(RESUME_KW, verbose=True, print_every=3, num_epochs=2,
              optim_config={"learning_rate": 0.05})
    model = make()
    s = Solver(model, data, **kw)
    np.random.seed(3)
    s.train()
    s.train()
    out = capsys.readouterr().out
    assert parse(out) == course_loop_lines(2, PER_EPOCH, 3, 0, 2)
    assert len(s.loss_history) == 2 * 2 * PER_EPOCH
    assert len(s.val_acc_history) == 2 * (2 + 1)
    assert s.epoch == 4

    # the course's Solver, called twice, draws and prints the same
    if make is make_fcn:
        ref_model = make()
        ref = ReferenceSolver(ref_model, data, **kw)
        np.random.seed(3)
        ref.train()
        ref.train()
        assert capsys.readouterr().out == out
        assert [float(v) for v in ref.loss_history] == [float(v) for v in s.loss_history] \
            or np.allclose(ref.loss_history, s.loss_history, rtol=1e-10, atol=0)
        assert ref.val_acc_history == s.val_acc_history
        assert ref.best_val_acc == s.best_val_acc


def test_resume_then_train_continues_then_train_again(tmp_path, data):
    """After resume(), train() finishes the checkpointed run; a further train() trains
    num_epochs more."""
    kw = dict(RESUME_KW, update_rule="sgd_momentum", optim_config={"learning_rate": 0.02})
    path = tmp_path / "ck.npz"
    model = make_fcn()
    sigint_in_model_at_step(model, 7)
    s = Solver(model, data, checkpoint_path=path, **kw)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning):
        s.train()
    r = Solver(make_fcn(), data, **kw).resume(path)
    r.train()
    assert len(r.loss_history) == TOTAL
    r.train()
    assert len(r.loss_history) == 2 * TOTAL
    assert r.epoch == 2 * RESUME_KW["num_epochs"]


def test_time_budget_run_saves_its_last_step_and_resumes_to_nothing(tmp_path):
    # the budget can run out mid-epoch, after the last epoch-end checkpoint: the last
    # step is checkpointed too, so a resume finds the budget spent and trains nothing
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    y = rng.integers(0, 3, 50)
    data = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    path = str(tmp_path / "run.npz")

    def solver_with_fake_clock():
        np.random.seed(0)
        model = FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64)
        solver = Solver(model, data, update_rule="adam", batch_size=5, num_epochs=5,
                        time_budget=1.05, verbose=False, checkpoint_path=path)
        # 0.1 s per step taken: the budget is spent after step 11, one step into epoch 2
        solver._sched.clock = lambda: 0.1 * len(solver.loss_history)
        return solver

    solver = solver_with_fake_clock()
    solver.train()
    assert len(solver.loss_history) == 11
    resumed = solver_with_fake_clock().resume(path)
    assert resumed._next_it == 11
    resumed.train()
    assert len(resumed.loss_history) == 11
