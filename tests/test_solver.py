"""Tests of fastfc.solver.Solver.

Every SPEC behaviour is checked against a faithful copy of the CS231n ``solver.py``
(:class:`ReferenceSolver` below, NumPy only) run on the same seeded model and data:
loss and accuracy histories, printed lines and final parameters must agree.  Then the
additions: the Net fast path, the tqdm progress bar, early stopping, the divergence
guard, Ctrl-C and argument checking.  Safe checkpoints and resume are in
test_checkpoint.py.
"""
import io
import os
import pickle
import re
import sys
import warnings

import numpy as np
import pytest
import tqdm
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfc import FullyConnectedNet, Net, Solver, TrainingDiverged, optim

D, C, HIDDEN = 20, 5, [16, 12]


# ----------------------------------------------------------------- the CS231n reference

class ReferenceSolver:
    """The CS231n ``Solver`` (assignment 2), line for line.

    Only one liberty: ``update_rule`` may also be a callable (the original looks the
    name up with ``getattr(optim, name)``).  The update rules themselves are the ones
    the original imports, ``optim.<rule>``.
    """

    def __init__(self, model, data, **kwargs):
        self.model = model
        self.X_train = data["X_train"]
        self.y_train = data["y_train"]
        self.X_val = data["X_val"]
        self.y_val = data["y_val"]

        self.update_rule = kwargs.pop("update_rule", "sgd")
        self.optim_config = kwargs.pop("optim_config", {})
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = kwargs.pop("batch_size", 100)
        self.num_epochs = kwargs.pop("num_epochs", 10)
        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)

        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = kwargs.pop("print_every", 10)
        self.verbose = kwargs.pop("verbose", True)

        if len(kwargs) > 0:
            extra = ", ".join('"%s"' % k for k in list(kwargs.keys()))
            raise ValueError("Unrecognized arguments %s" % extra)

        if not callable(self.update_rule):
            if not hasattr(optim, self.update_rule):
                raise ValueError('Invalid update_rule "%s"' % self.update_rule)
            self.update_rule = getattr(optim, self.update_rule)

        self._reset()

    def _reset(self):
        self.epoch = 0
        self.best_val_acc = 0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []

        self.optim_configs = {}
        for p in self.model.params:
            d = {k: v for k, v in self.optim_config.items()}
            self.optim_configs[p] = d

    def _step(self):
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(loss)

        for p, w in self.model.params.items():
            dw = grads[p]
            config = self.optim_configs[p]
            next_w, next_config = self.update_rule(w, dw, config)
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self):
        if self.checkpoint_name is None:
            return
        checkpoint = {
            "model": self.model,
            "update_rule": self.update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }
        filename = "%s_epoch_%d.pkl" % (self.checkpoint_name, self.epoch)
        if self.verbose:
            print('Saving checkpoint to "%s"' % filename)
        with open(filename, "wb") as f:
            pickle.dump(checkpoint, f)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]

        num_batches = N // batch_size
        if N % batch_size != 0:
            num_batches += 1
        y_pred = []
        for i in range(num_batches):
            start = i * batch_size
            end = (i + 1) * batch_size
            scores = self.model.loss(X[start:end])
            y_pred.append(np.argmax(scores, axis=1))
        y_pred = np.hstack(y_pred)
        acc = np.mean(y_pred == y)
        return acc

    def train(self):
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch

        for t in range(num_iterations):
            self._step()

            if self.verbose and t % self.print_every == 0:
                print("(Iteration %d / %d) loss: %f"
                      % (t + 1, num_iterations, self.loss_history[-1]))

            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for k in self.optim_configs:
                    self.optim_configs[k]["learning_rate"] *= self.lr_decay

            first_it = t == 0
            last_it = t == num_iterations - 1
            if first_it or last_it or epoch_end:
                train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                num_samples=self.num_train_samples)
                val_acc = self.check_accuracy(self.X_val, self.y_val,
                                              num_samples=self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()

                if self.verbose:
                    print("(Epoch %d / %d) train acc: %f; val_acc: %f"
                          % (self.epoch, self.num_epochs, train_acc, val_acc))

                if val_acc > self.best_val_acc:
                    self.best_val_acc = val_acc
                    self.best_params = {}
                    for k, v in self.model.params.items():
                        self.best_params[k] = v.copy()

        self.model.params = self.best_params


# ----------------------------------------------------------------- helpers

def make_data(n_train=230, n_val=70, dim=D, n_classes=C, seed=0, dtype=np.float64):
    """Gaussian blobs around one centre per class: learnable, but not in one step.

    Uses its own RandomState so that NumPy's global generator is left alone."""
    rs = np.random.RandomState(seed)
    centres = rs.randn(n_classes, dim)

    def draw(n):
        y = rs.randint(n_classes, size=n)
        return (centres[y] + 1.5 * rs.randn(n, dim)).astype(dtype), y

    X_train, y_train = draw(n_train)
    X_val, y_val = draw(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def make_fcn(seed=1, dtype=np.float64, hidden=HIDDEN, **kwargs):
    np.random.seed(seed)
    return FullyConnectedNet(hidden, input_dim=D, num_classes=C, weight_scale=0.1,
                             dtype=dtype, **kwargs)


def make_net(seed=1, dtype=np.float64, hidden=HIDDEN, **kwargs):
    """A Net whose initial weights equal make_fcn's (same draws on the global generator)."""
    np.random.seed(seed)
    return Net([D, *hidden, C], weight_scale=0.1, dtype=dtype, **kwargs)


def run(solver_cls, model, data, rng_seed=2, **kwargs):
    """Seed NumPy's global generator, build the solver and train it."""
    np.random.seed(rng_seed)
    solver = solver_cls(model, data, **kwargs)
    solver.train()
    return solver


def params_of(model):
    return {k: np.array(v, copy=True) for k, v in model.params.items()}


def assert_params_equal(a, b, rtol=0.0, atol=0.0):
    assert list(a) == list(b)
    for k in a:
        if rtol == 0 and atol == 0:
            assert np.array_equal(a[k], b[k]), k
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def assert_same_run(fast, ref, params_rtol=1e-12):
    """Histories equal exactly, parameters to params_rtol."""
    assert len(fast.loss_history) == len(ref.loss_history)
    assert [float(v) for v in fast.loss_history] == [float(v) for v in ref.loss_history]
    assert [float(v) for v in fast.train_acc_history] == [float(v) for v in
                                                         ref.train_acc_history]
    assert [float(v) for v in fast.val_acc_history] == [float(v) for v in ref.val_acc_history]
    assert fast.best_val_acc == ref.best_val_acc
    assert fast.epoch == ref.epoch
    assert_params_equal(params_of(fast.model), params_of(ref.model), rtol=params_rtol,
                        atol=params_rtol)


def np_sgd_momentum(w, dw, config=None):
    """sgd_momentum written in NumPy, CS231n form (used as a callable update_rule)."""
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def raise_at_step(model, k, exc):
    """Make the k-th training call (1-based) of the model raise ``exc``.

    Patches ``train_step`` for a Net (the solver's fast path) and ``loss`` otherwise;
    prediction calls (y None) are not counted."""
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


def nan_loss_at_step(model, k):
    """Make the k-th training call return a NaN loss (gradients stay finite)."""
    name = "train_step" if isinstance(model, Net) else "loss"
    inner = getattr(model, name)
    count = [0]

    def wrapped(X, y=None, *args, **kwargs):
        out = inner(X, y, *args, **kwargs)
        if y is not None:
            count[0] += 1
            if count[0] == k:
                return np.nan if name == "train_step" else (np.nan, out[1])
        return out

    setattr(model, name, wrapped)


# Settings shared by the comparison runs: 230 training samples in batches of 25 give
# 9 iterations per epoch with a remainder; the training check draws 150 of 230 samples
# (two prediction batches, 100 + 50), the validation check 50 of 70.
RUN = dict(batch_size=25, num_epochs=3, num_train_samples=150, num_val_samples=50,
           print_every=4, lr_decay=0.9)
ITERS_PER_EPOCH = 230 // 25

ITER_LINE = re.compile(r"^\(Iteration (\d+) / (\d+)\) loss: \d+\.\d{6}$")
EPOCH_LINE = re.compile(r"^\(Epoch (\d+) / (\d+)\) train acc: \d\.\d{6}; val_acc: \d\.\d{6}$")


@pytest.fixture
def data():
    return make_data()


# ----------------------------------------------------------------- reference agreement

@pytest.mark.parametrize("rule,config", [
    ("sgd", {"learning_rate": 0.05}),
    ("sgd_momentum", {"learning_rate": 0.02, "momentum": 0.8}),
    ("rmsprop", {"learning_rate": 3e-3}),
    ("adam", {"learning_rate": 5e-3}),
], ids=["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_matches_reference_solver(data, capsys, rule, config):
    ref = run(ReferenceSolver, make_fcn(), data, update_rule=rule, optim_config=config, **RUN)
    ref_out = capsys.readouterr().out
    fast = run(Solver, make_fcn(), data, update_rule=rule, optim_config=config, **RUN)
    out = capsys.readouterr().out

    assert max(ref.val_acc_history) > 0  # else the reference ends with params == {}
    assert fast.loss_history[-1] < fast.loss_history[0]  # it did train
    assert_same_run(fast, ref)
    assert out == ref_out

    # The printed lines themselves: iterations 1, 5, 9, ... and one check per epoch
    # plus the first step.
    lines = out.splitlines()
    total = RUN["num_epochs"] * ITERS_PER_EPOCH
    iters = [int(ITER_LINE.match(l).group(1)) for l in lines if l.startswith("(Iteration")]
    assert iters == list(range(1, total + 1, RUN["print_every"]))
    epochs = [int(EPOCH_LINE.match(l).group(1)) for l in lines if l.startswith("(Epoch")]
    assert epochs == [0, 1, 2, 3]
    assert all(ITER_LINE.match(l) or EPOCH_LINE.match(l) for l in lines)


def test_matches_reference_with_callable_update_rule(data, capsys):
    cfg = {"learning_rate": 0.02, "momentum": 0.7}
    ref = run(ReferenceSolver, make_fcn(), data, update_rule=np_sgd_momentum,
              optim_config=cfg, **RUN)
    ref_out = capsys.readouterr().out
    fast = run(Solver, make_fcn(), data, update_rule=np_sgd_momentum, optim_config=cfg, **RUN)
    out = capsys.readouterr().out
    assert_same_run(fast, ref)
    assert out == ref_out
    assert not fast.fast
    # the callable's own state is what the solver keeps per parameter
    for p, w in fast.model.params.items():
        assert fast.optim_configs[p]["velocity"].shape == w.shape


def test_matches_reference_with_dropout_and_batchnorm(data, capsys):
    """The seeded dropout re-seeds the global generator inside model.loss; the solver's
    sampling must interleave with it exactly as the reference's does."""
    kw = dict(dtype=np.float32, normalization="batchnorm", dropout_keep_ratio=0.8, seed=5)
    ref = run(ReferenceSolver, make_fcn(**kw), data, update_rule="adam",
              optim_config={"learning_rate": 5e-3}, **RUN)
    ref_out = capsys.readouterr().out
    fast = run(Solver, make_fcn(**kw), data, update_rule="adam",
               optim_config={"learning_rate": 5e-3}, **RUN)
    out = capsys.readouterr().out
    assert_same_run(fast, ref, params_rtol=0)
    assert out == ref_out
    for a, b in zip(fast.model.bn_params, ref.model.bn_params):
        assert np.array_equal(a["running_mean"], b["running_mean"])
        assert np.array_equal(a["running_var"], b["running_var"])


def test_defaults_match_the_spec(data, capsys):
    """Solver(model, data) with no kwargs behaves as the reference given the SPEC's
    defaults explicitly (1100 samples: 11 iterations per epoch of 100, 10 epochs, the
    training check subsampled to 1000)."""
    big = make_data(n_train=1100, n_val=60, seed=3)
    spec_defaults = dict(update_rule="sgd", optim_config={}, lr_decay=1.0, batch_size=100,
                         num_epochs=10, num_train_samples=1000, num_val_samples=None,
                         checkpoint_name=None, print_every=10, verbose=True)
    ref = run(ReferenceSolver, make_fcn(), big, **spec_defaults)
    ref_out = capsys.readouterr().out
    fast = run(Solver, make_fcn(), big)
    out = capsys.readouterr().out
    assert_same_run(fast, ref)
    assert out == ref_out
    assert len(fast.loss_history) == 110
    assert sum(l.startswith("(Iteration") for l in out.splitlines()) == 11


def test_default_attributes(data):
    s = Solver(make_fcn(), data)
    assert s.update_rule is optim.sgd
    assert s.optim_config == {}
    assert s.lr_decay == 1.0
    assert s.batch_size == 100
    assert s.num_epochs == 10
    assert s.num_train_samples == 1000
    assert s.num_val_samples is None
    assert s.checkpoint_name is None
    assert s.print_every == 10
    assert s.verbose is True
    # beyond the reference: all off by default
    assert s.patience is None
    assert s.progress is None
    assert s.checkpoint_path is None
    # book-keeping after construction
    assert s.epoch == 0 and s.best_val_acc == 0 and s.best_params == {}
    assert s.loss_history == [] and s.train_acc_history == [] and s.val_acc_history == []
    assert set(s.optim_configs) == set(s.model.params)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop",
                                  "adam"])
def test_update_rule_names_resolve_to_optim(data, name):
    s = Solver(make_fcn(), data, update_rule=name)
    assert s.update_rule is getattr(optim, name)


def test_unknown_kwargs_raise_naming_them(data):
    with pytest.raises(ValueError, match="Unrecognized") as info:
        Solver(make_fcn(), data, learning_rate=0.1, num_epoch=3)
    assert "learning_rate" in str(info.value)
    assert "num_epoch" in str(info.value)


@pytest.mark.parametrize("rule", ["sgd_nope", "Adam", ""])
def test_unknown_update_rule_raises_naming_it(data, rule):
    with pytest.raises(ValueError, match="Invalid update_rule") as info:
        Solver(make_fcn(), data, update_rule=rule)
    assert '"%s"' % rule in str(info.value)


# ----------------------------------------------------------------- epochs and decay

@pytest.mark.parametrize("n_train,batch_size,per_epoch", [
    (50, 100, 1), (99, 100, 1), (100, 100, 1), (199, 100, 1), (200, 100, 2), (250, 100, 2),
    (7, 3, 2), (1, 1, 1),
])
def test_iterations_per_epoch(n_train, batch_size, per_epoch):
    d = make_data(n_train=n_train, n_val=10, seed=4)
    s = run(Solver, make_fcn(), d, batch_size=batch_size, num_epochs=3, verbose=False)
    total = 3 * per_epoch
    assert len(s.loss_history) == total
    assert s.epoch == 3
    checks = {0, total - 1} | {t for t in range(total) if (t + 1) % per_epoch == 0}
    assert len(s.train_acc_history) == len(s.val_acc_history) == len(checks)


def test_zero_epochs_trains_nothing(data):
    model = make_fcn()
    before = params_of(model)
    s = run(Solver, model, data, num_epochs=0, verbose=False)
    assert s.loss_history == [] and s.val_acc_history == []
    assert_params_equal(params_of(model), before)


def test_lr_decay_every_epoch_end_for_every_param(data):
    """A recording update rule sees lr0 * decay**e during epoch e, for every param."""
    seen = []

    def recording_sgd(w, dw, config):
        seen.append(config["learning_rate"])
        return optim.sgd(w, dw, config)

    lr0, decay, epochs = 0.04, 0.5, 3
    user_config = {"learning_rate": lr0}
    s = run(Solver, make_fcn(), data, update_rule=recording_sgd, optim_config=user_config,
            lr_decay=decay, batch_size=25, num_epochs=epochs, verbose=False)
    n_params = len(s.model.params)
    assert len(seen) == epochs * ITERS_PER_EPOCH * n_params
    per_step = np.array(seen).reshape(epochs, ITERS_PER_EPOCH, n_params)
    for e in range(epochs):
        np.testing.assert_allclose(per_step[e], lr0 * decay ** e, rtol=1e-15)
    for config in s.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(lr0 * decay ** epochs, rel=1e-15)
    # every parameter has its own copy; the caller's dict is not touched
    assert user_config == {"learning_rate": lr0}
    assert len({id(c) for c in s.optim_configs.values()}) == n_params


def test_per_param_configs_are_independent_copies(data):
    def tagging_sgd(w, dw, config):
        config["calls"] = config.get("calls", 0) + 1
        return optim.sgd(w, dw, {"learning_rate": config["learning_rate"]})[0], config

    shared = {"learning_rate": 0.01}
    s = run(Solver, make_fcn(), data, update_rule=tagging_sgd, optim_config=shared,
            batch_size=25, num_epochs=1, verbose=False)
    assert [c["calls"] for c in s.optim_configs.values()] == [ITERS_PER_EPOCH] * len(
        s.model.params)
    assert "calls" not in shared


# ----------------------------------------------------------------- check_accuracy

class LinearSpy:
    """A linear model that records the batches check_accuracy predicts on."""

    def __init__(self, W):
        self.params = {"W": W}
        self.batches = []

    def loss(self, X, y=None):
        assert y is None
        self.batches.append(np.array(X, copy=True))
        return X @ self.params["W"]


@pytest.fixture
def spy_setup():
    rs = np.random.RandomState(9)
    X = rs.randn(250, 6)
    W = rs.randn(6, 4)
    y = rs.randint(4, size=250)
    spy = LinearSpy(W)
    solver = Solver(spy, {"X_train": X, "y_train": y, "X_val": X, "y_val": y})
    return solver, spy, X, y, W


def test_check_accuracy_subsamples_with_choice_and_batches(spy_setup):
    solver, spy, X, y, W = spy_setup
    np.random.seed(11)
    mask = np.random.choice(250, 120)
    expected = np.mean(np.argmax(X[mask] @ W, axis=1) == y[mask])
    after = np.random.rand()

    np.random.seed(11)
    acc = solver.check_accuracy(X, y, num_samples=120, batch_size=50)
    assert acc == expected
    assert np.random.rand() == after  # exactly one choice() draw, nothing else
    assert [b.shape[0] for b in spy.batches] == [50, 50, 20]
    assert np.array_equal(np.concatenate(spy.batches), X[mask])


@pytest.mark.parametrize("num_samples", [None, 250, 1000])
def test_check_accuracy_uses_everything_without_drawing(spy_setup, num_samples):
    solver, spy, X, y, W = spy_setup
    np.random.seed(12)
    after = np.random.rand()
    np.random.seed(12)
    acc = solver.check_accuracy(X, y, num_samples=num_samples)
    assert np.random.rand() == after
    assert acc == np.mean(np.argmax(X @ W, axis=1) == y)
    assert [b.shape[0] for b in spy.batches] == [100, 100, 50]
    assert np.array_equal(np.concatenate(spy.batches), X)


@pytest.mark.parametrize("n,batch_size,sizes", [(1, 100, [1]), (100, 100, [100]),
                                                (101, 100, [100, 1]), (7, 3, [3, 3, 1])])
def test_check_accuracy_batch_edges(spy_setup, n, batch_size, sizes):
    solver, spy, X, y, W = spy_setup
    acc = solver.check_accuracy(X[:n], y[:n], batch_size=batch_size)
    assert [b.shape[0] for b in spy.batches] == sizes
    assert acc == np.mean(np.argmax(X[:n] @ W, axis=1) == y[:n])


# ----------------------------------------------------------------- CS231n pickles

def test_checkpoint_name_pickles_match_reference(data, tmp_path, monkeypatch, capsys):
    kw = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.02},
              batch_size=50, num_epochs=2, checkpoint_name="run", num_train_samples=100)
    (tmp_path / "ref").mkdir()
    (tmp_path / "fast").mkdir()
    monkeypatch.chdir(tmp_path / "ref")
    ref = run(ReferenceSolver, make_fcn(), data, **kw)
    ref_out = capsys.readouterr().out
    monkeypatch.chdir(tmp_path / "fast")
    fast = run(Solver, make_fcn(), data, **kw)
    out = capsys.readouterr().out
    assert out == ref_out
    assert_same_run(fast, ref)

    # checks at the first step (epoch 0) and at the ends of epochs 1 and 2
    names = ["run_epoch_0.pkl", "run_epoch_1.pkl", "run_epoch_2.pkl"]
    assert sorted(os.listdir(tmp_path / "fast")) == names
    assert 'Saving checkpoint to "run_epoch_1.pkl"' in out.splitlines()
    spec_keys = {"model", "update_rule", "lr_decay", "optim_config", "batch_size",
                 "num_train_samples", "num_val_samples", "epoch", "loss_history",
                 "train_acc_history", "val_acc_history"}
    for epoch, name in enumerate(names):
        with open(tmp_path / "fast" / name, "rb") as f:
            ck = pickle.load(f)
        with open(tmp_path / "ref" / name, "rb") as f:
            ref_ck = pickle.load(f)
        assert set(ck) == spec_keys
        assert ck["epoch"] == epoch
        assert ck["update_rule"] is optim.sgd_momentum
        assert ck["batch_size"] == 50 and ck["lr_decay"] == 1.0
        assert ck["num_train_samples"] == 100 and ck["num_val_samples"] is None
        assert ck["optim_config"] == {"learning_rate": 0.02}
        for key in ("loss_history", "train_acc_history", "val_acc_history"):
            assert [float(v) for v in ck[key]] == [float(v) for v in ref_ck[key]]
        assert isinstance(ck["model"], FullyConnectedNet)
        assert_params_equal(params_of(ck["model"]), params_of(ref_ck["model"]))


def test_no_pickles_without_checkpoint_name(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(Solver, make_fcn(), data, batch_size=50, num_epochs=2, verbose=False)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------- the Net fast path

def test_fast_path_is_chosen_for_net_with_a_named_rule(data):
    assert Solver(make_net(), data).fast is True
    assert Solver(make_net(), data, update_rule="adam").fast is True
    assert Solver(make_fcn(), data).fast is False
    assert Solver(make_net(), data, update_rule=np_sgd_momentum).fast is False


@pytest.mark.parametrize("rule,config", [
    ("sgd", {"learning_rate": 0.05}),
    ("sgd_momentum", {"learning_rate": 0.02, "momentum": 0.8}),
    ("sgd_nesterov_momentum", {"learning_rate": 0.02}),
    ("rmsprop", {"learning_rate": 3e-3}),
    ("adam", {"learning_rate": 5e-3}),
], ids=["sgd", "sgd_momentum", "nesterov", "rmsprop", "adam"])
def test_net_matches_fully_connected_net(data, capsys, rule, config):
    ref = run(Solver, make_fcn(), data, update_rule=rule, optim_config=config, **RUN)
    ref_out = capsys.readouterr().out
    net = make_net()
    fast = run(Solver, net, data, update_rule=rule, optim_config=config, **RUN)
    out = capsys.readouterr().out
    assert fast.fast
    assert len(fast.loss_history) == len(ref.loss_history)
    np.testing.assert_allclose(fast.loss_history, ref.loss_history, rtol=1e-10, atol=1e-12)
    assert fast.train_acc_history == ref.train_acc_history
    assert fast.val_acc_history == ref.val_acc_history
    assert fast.best_val_acc == ref.best_val_acc
    assert_params_equal(params_of(net), params_of(ref.model), rtol=1e-10, atol=1e-10)
    # same lines, same count (loss values agree to far more than 6 decimals)
    assert out.splitlines() == ref_out.splitlines()
    # lr decay reached the Net: one factor per epoch end
    assert net.learning_rate == pytest.approx(config["learning_rate"] * 0.9 ** 3, rel=1e-12)


def test_net_with_reg_matches_fully_connected_net(data):
    """Net fuses L2 into the update; the result must equal the gradient + reg*W path."""
    cfg = {"learning_rate": 0.05}
    ref = run(Solver, make_fcn(reg=0.05), data, optim_config=cfg, verbose=False, **RUN)
    net = make_net(reg=0.05)
    fast = run(Solver, net, data, optim_config=cfg, verbose=False, **RUN)
    np.testing.assert_allclose(fast.loss_history, ref.loss_history, rtol=1e-10)
    assert fast.val_acc_history == ref.val_acc_history
    assert_params_equal(params_of(net), params_of(ref.model), rtol=1e-10, atol=1e-10)


def test_net_with_callable_rule_matches_fully_connected_net(data):
    cfg = {"learning_rate": 0.02, "momentum": 0.7}
    ref = run(Solver, make_fcn(), data, update_rule=np_sgd_momentum, optim_config=cfg,
              verbose=False, **RUN)
    net = make_net()
    fast = run(Solver, net, data, update_rule=np_sgd_momentum, optim_config=cfg,
               verbose=False, **RUN)
    assert not fast.fast
    np.testing.assert_allclose(fast.loss_history, ref.loss_history, rtol=1e-10)
    assert_params_equal(params_of(net), params_of(ref.model), rtol=1e-10, atol=1e-10)


def test_net_ends_with_best_params(data):
    net = make_net()
    s = run(Solver, net, data, optim_config={"learning_rate": 0.05}, verbose=False,
            **dict(RUN, num_val_samples=None))
    assert_params_equal(params_of(net), s.best_params)
    assert s.check_accuracy(data["X_val"], data["y_val"]) == s.best_val_acc


# ----------------------------------------------------------------- progress bar

BAR_KW = dict(optim_config={"learning_rate": 0.05}, batch_size=50, num_epochs=2,
              print_every=2)


def _reference_stdout(data, capsys):
    run(ReferenceSolver, make_fcn(), data, **BAR_KW)
    return capsys.readouterr().out


def test_progress_bar_on_stderr_and_lines_intact(data, capsys):
    ref_out = _reference_stdout(data, capsys)
    s = run(Solver, make_fcn(), data, progress=True, **BAR_KW)
    captured = capsys.readouterr()
    total = len(s.loss_history)
    assert f"{total}/{total}" in captured.err  # the bar ran to the end on stderr
    assert "training" in captured.err
    assert captured.out == ref_out  # every CS231n line complete, nothing else
    assert "\r" not in captured.out and "%|" not in captured.out


def test_progress_bar_never_breaks_lines_on_a_shared_terminal(data, capsys, monkeypatch):
    """In a terminal the bar and the prints share one screen: every CS231n line must
    still show whole on its own line (the bar is cleared first, then redrawn)."""
    ref_lines = _reference_stdout(data, capsys).splitlines()
    term = io.StringIO()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)
    run(Solver, make_fcn(), data, progress=True, **BAR_KW)
    monkeypatch.undo()
    text = term.getvalue()
    assert "training" in text  # the bar was there
    # what a terminal shows on each line: the text after the last carriage return
    shown = [segment.split("\r")[-1].rstrip() for segment in text.split("\n")]
    assert [l for l in shown if l.startswith("(")] == ref_lines
    glued = [seg for seg in text.split("\n")
             if ("(Iteration" in seg or "(Epoch" in seg)
             and not seg.split("\r")[-1].startswith("(")]
    assert glued == []


def test_progress_bar_capfd(data, capfd):
    run(ReferenceSolver, make_fcn(), data, **BAR_KW)
    ref_out = capfd.readouterr().out
    s = run(Solver, make_fcn(), data, progress=True, **BAR_KW)
    captured = capfd.readouterr()
    total = len(s.loss_history)
    assert f"{total}/{total}" in captured.err
    assert captured.out == ref_out


@pytest.mark.parametrize("kw", [dict(progress=False), dict(progress=None),
                                dict(progress=False, verbose=False),
                                dict(progress=None, verbose=False)],
                         ids=["off", "default-not-tty", "off-quiet", "default-quiet"])
def test_no_progress_bar(data, capsys, kw):
    ref_out = _reference_stdout(data, capsys) if kw.get("verbose", True) else ""
    run(Solver, make_fcn(), data, **dict(BAR_KW, **kw))
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ref_out


def test_progress_default_on_for_a_tty(data, capsys, monkeypatch):
    ref_out = _reference_stdout(data, capsys)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    s = run(Solver, make_fcn(), data, **BAR_KW)
    captured = capsys.readouterr()
    total = len(s.loss_history)
    assert f"{total}/{total}" in captured.err
    assert captured.out == ref_out


def test_progress_default_off_for_a_quiet_tty(data, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    run(Solver, make_fcn(), data, verbose=False, **BAR_KW)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_closed_when_interrupted(data, capsys):
    model = make_fcn()
    raise_at_step(model, 3, KeyboardInterrupt)
    with pytest.warns(RuntimeWarning):
        run(Solver, model, data, progress=True, **BAR_KW)
    err = capsys.readouterr().err
    assert "2/" in err  # the bar was drawn and closed at the step that was reached
    assert len(tqdm.tqdm._instances) == 0


# ----------------------------------------------------------------- early stopping

def test_early_stopping_with_zero_learning_rate(data):
    model = make_fcn()
    initial = params_of(model)
    s = run(Solver, model, data, optim_config={"learning_rate": 0.0}, patience=2,
            batch_size=25, num_epochs=10, verbose=False)
    assert s.val_acc_history[0] > 0
    assert s.stopped_early is True
    assert s.epoch == 2
    assert len(s.loss_history) == 2 * ITERS_PER_EPOCH
    assert len(s.val_acc_history) == len(s.train_acc_history) == 3  # first step, 2 epochs
    assert_params_equal(params_of(model), s.best_params)
    assert_params_equal(params_of(model), initial)


def test_no_early_stopping_by_default(data):
    s = run(Solver, make_fcn(), data, optim_config={"learning_rate": 0.0}, batch_size=25,
            num_epochs=4, verbose=False)
    assert s.stopped_early is False
    assert s.epoch == 4 and len(s.loss_history) == 4 * ITERS_PER_EPOCH


def test_early_stopping_restores_the_best_params(data, capsys):
    """Learn during epoch 1, then wreck the weights: training stops two epochs later
    and the model holds the epoch-1 weights."""
    steps = [0]

    def learn_then_wreck(w, dw, config):
        steps[0] += 1
        return (optim.sgd(w, dw, config)[0] if steps[0] <= ITERS_PER_EPOCH * n_params
                else np.zeros_like(w)), config

    model = make_fcn()
    n_params = len(model.params)
    s = Solver(model, data, update_rule=learn_then_wreck, optim_config={"learning_rate": 0.2},
               patience=2, batch_size=25, num_epochs=10, print_every=1000)
    np.random.seed(2)
    s.train()
    out = capsys.readouterr().out
    assert s.val_acc_history[1] > s.val_acc_history[0], "precondition: epoch 1 learned"
    assert s.stopped_early
    assert s.epoch == 3
    assert len(s.val_acc_history) == 4
    assert max(s.val_acc_history[2:]) < s.val_acc_history[1]
    assert s.best_val_acc == s.val_acc_history[1]
    assert_params_equal(params_of(model), s.best_params)
    assert all(np.any(v != 0) for k, v in model.params.items() if k.startswith("W"))
    assert s.check_accuracy(data["X_val"], data["y_val"]) == s.best_val_acc
    # the CS231n lines come out as usual up to the stop
    epochs = [l for l in out.splitlines() if l.startswith("(Epoch")]
    assert [int(EPOCH_LINE.match(l).group(1)) for l in epochs] == [0, 1, 2, 3]


def test_early_stopping_on_the_net_path(data):
    net = make_net()
    s = run(Solver, net, data, optim_config={"learning_rate": 0.0}, patience=3,
            batch_size=25, num_epochs=10, verbose=False)
    assert s.fast and s.stopped_early
    assert s.epoch == 3 and len(s.loss_history) == 3 * ITERS_PER_EPOCH
    assert_params_equal(params_of(net), s.best_params)


# ----------------------------------------------------------------- divergence guard

def test_training_diverged_is_a_floating_point_error():
    assert issubclass(TrainingDiverged, FloatingPointError)


@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_nan_loss_stops_with_the_step_and_best_params(data, make):
    model = make()
    nan_loss_at_step(model, 14)  # epoch 2 (9 steps per epoch), after two checks
    s = Solver(model, data, optim_config={"learning_rate": 0.05}, batch_size=25,
               num_epochs=3, verbose=False, on_divergence="raise")
    np.random.seed(2)
    with pytest.raises(TrainingDiverged) as info:
        s.train()
    msg = str(info.value)
    assert re.search(r"\biteration 14\b", msg), msg
    assert "learning rate" in msg
    assert len(s.loss_history) == 14
    assert len(s.val_acc_history) == 2
    assert s.best_params
    assert_params_equal(params_of(model), s.best_params)
    assert all(np.isfinite(v).all() for v in model.params.values())


@pytest.mark.parametrize("make,dtype,lr", [(make_fcn, np.float64, 1e30),
                                           (make_fcn, np.float32, 1e20),
                                           (make_net, np.float32, 1e30),
                                           (make_net, np.float64, 1e300)],
                         ids=["fcn64", "fcn32", "net32", "net64"])
def test_huge_learning_rate_diverges(data, make, dtype, lr):
    model = make(dtype=dtype)
    s = Solver(model, data, optim_config={"learning_rate": lr}, batch_size=25, num_epochs=3,
               verbose=False, on_divergence="raise")
    np.random.seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy overflow on the way up
        with pytest.raises(TrainingDiverged) as info:
            s.train()
    msg = str(info.value)
    n = len(s.loss_history)
    limit = 1e3 * max(s.loss_history[0], 1)
    # a non-finite loss or a finite blow-up (over 1000 times the first loss) ends it
    assert not np.isfinite(s.loss_history[-1]) or s.loss_history[-1] > limit
    assert all(np.isfinite(s.loss_history[:-1]))
    assert all(v <= limit for v in s.loss_history[:-1])
    assert re.search(r"\biteration %d\b" % n, msg), msg
    assert "learning rate" in msg
    assert_params_equal(params_of(model), s.best_params)
    assert all(np.isfinite(v).all() for v in model.params.values())


class NanRule:
    """sgd, except that training step ``k`` (1-based) writes NaN into param ``target``.

    ``names`` is the model's parameter order (the solver updates them in that order)."""

    def __init__(self, k, target, names):
        self.k = k
        self.index = list(names).index(target)
        self.n_params = len(names)
        self.calls = 0

    def __call__(self, w, dw, config):
        self.calls += 1
        next_w, config = optim.sgd(w, dw, config)
        step, index = divmod(self.calls - 1, self.n_params)
        if step + 1 == self.k and index == self.index:
            next_w = np.full_like(next_w, np.nan)
        return next_w, config


def test_non_finite_param_stops_at_that_step(data):
    """The issue: 'a non-finite loss or parameter stops training with an error that
    names the step'.  Step 14 writes NaN into b2 (a hidden bias); its loss is finite."""
    model = make_fcn()
    rule = NanRule(14, "b2", model.params)
    s = Solver(model, data, update_rule=rule, optim_config={"learning_rate": 0.05},
               batch_size=25, num_epochs=3, verbose=False, on_divergence="raise")
    np.random.seed(2)
    with pytest.raises(TrainingDiverged) as info:
        s.train()
    msg = str(info.value)
    assert re.search(r"\biteration 14\b", msg), msg
    assert "learning rate" in msg
    assert all(np.isfinite(s.loss_history))
    assert_params_equal(params_of(model), s.best_params)
    assert all(np.isfinite(v).all() for v in model.params.values())


def test_non_finite_param_at_the_last_step_is_caught(data):
    """A parameter that turns NaN on the very last step must not end training quietly
    (the final check then predicts on NaN scores)."""
    model = make_fcn()
    total = 3 * ITERS_PER_EPOCH
    rule = NanRule(total, "b3", model.params)
    s = Solver(model, data, update_rule=rule, optim_config={"learning_rate": 0.05},
               batch_size=25, num_epochs=3, verbose=False, on_divergence="raise")
    np.random.seed(2)
    with pytest.raises(TrainingDiverged) as info:
        s.train()
    assert re.search(r"\biteration %d\b" % total, str(info.value))
    assert all(np.isfinite(v).all() for v in model.params.values())


# ----------------------------------------------------------------- Ctrl-C

@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_keyboard_interrupt_returns_with_best_params(data, make):
    model = make()
    raise_at_step(model, 14, KeyboardInterrupt)
    s = Solver(model, data, optim_config={"learning_rate": 0.05}, batch_size=25,
               num_epochs=3, verbose=False)
    np.random.seed(2)
    with pytest.warns(RuntimeWarning, match="interrupt"):
        result = s.train()
    assert result is None
    assert s.interrupted is True
    assert len(s.loss_history) == 13
    assert len(s.val_acc_history) == 2
    assert s.best_params
    assert_params_equal(params_of(model), s.best_params)


def test_keyboard_interrupt_before_any_check_keeps_valid_weights(data):
    model = make_fcn()
    initial = params_of(model)
    raise_at_step(model, 1, KeyboardInterrupt)
    s = Solver(model, data, verbose=False)
    with pytest.warns(RuntimeWarning):
        s.train()
    assert s.interrupted
    assert s.loss_history == []
    assert_params_equal(params_of(model), initial)


def test_not_interrupted_by_default(data):
    s = run(Solver, make_fcn(), data, batch_size=50, num_epochs=1, verbose=False)
    assert s.interrupted is False and s.stopped_early is False


def test_other_exceptions_propagate(data):
    model = make_fcn()
    raise_at_step(model, 3, MemoryError)
    s = Solver(model, data, batch_size=25, num_epochs=1, verbose=False)
    with pytest.raises(MemoryError):
        s.train()
    assert s.interrupted is False


# ----------------------------------------------------------------- bad input

def test_data_must_be_a_dict():
    d = make_data()
    with pytest.raises(TypeError):
        Solver(make_fcn(), list(d.values()))
    with pytest.raises(TypeError):
        Solver(make_fcn(), None)


@pytest.mark.parametrize("key", ["X_train", "y_train", "X_val", "y_val"])
def test_data_missing_a_key(key):
    d = make_data()
    del d[key]
    with pytest.raises(ValueError, match=key):
        Solver(make_fcn(), d)


@pytest.mark.parametrize("xs,ys", [("X_train", "y_train"), ("X_val", "y_val")])
def test_data_length_mismatch(xs, ys):
    d = make_data()
    d[ys] = d[ys][:-1]
    with pytest.raises(ValueError, match=xs):
        Solver(make_fcn(), d)


def test_model_without_params_or_loss(data):
    class NoLoss:
        params = {}

    with pytest.raises(TypeError):
        Solver(NoLoss(), data)
    with pytest.raises(TypeError):
        Solver(object(), data)


@pytest.mark.parametrize("kw", [
    dict(batch_size=0), dict(batch_size=-3), dict(batch_size=2.5), dict(batch_size="10"),
    dict(lr_decay=-0.1), dict(lr_decay=float("nan")), dict(lr_decay=float("inf")),
    dict(num_epochs=-1), dict(print_every=0), dict(patience=0), dict(patience=-2),
    dict(optim_config=[("learning_rate", 0.1)]), dict(update_rule=3),
    dict(update_rule=None),
], ids=lambda kw: "-".join(f"{k}={v!r}" for k, v in kw.items()))
def test_bad_settings_raise(data, kw):
    with pytest.raises((ValueError, TypeError)):
        Solver(make_fcn(), data, **kw)


_MODEL = []


def _shared_model():
    """One model for the hypothesis tests (the constructor only reads its params)."""
    if not _MODEL:
        _MODEL.append(make_fcn())
    return _MODEL[0]


_bad_batch = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda v: not (v >= 1 and float(v).is_integer())),
    st.text(max_size=3), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(_bad_batch)
def test_bad_batch_size_never_crashes(value):
    with pytest.raises((ValueError, TypeError)):
        Solver(_shared_model(), make_data(n_train=20, n_val=5), batch_size=value)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")),
                 st.just(float("inf")), st.text(max_size=2), st.none(), st.booleans()))
def test_bad_lr_decay_never_crashes(value):
    with pytest.raises((ValueError, TypeError)):
        Solver(_shared_model(), make_data(n_train=20, n_val=5), lr_decay=value)


def test_shuffle_visits_every_sample_once_per_epoch():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 5)
    y = rng.randint(3, size=60)
    data = dict(X_train=X, y_train=y, X_val=X[:10], y_val=y[:10])
    np.random.seed(0)
    model = FullyConnectedNet([4], input_dim=5, num_classes=3, dtype=np.float64)
    solver = Solver(model, data, num_epochs=2, batch_size=20, verbose=False, shuffle=True)
    seen = []
    next_batch = solver._next_batch

    def spy():
        batch = next_batch()
        seen.append(batch.copy())
        return batch
    solver._next_batch = spy
    solver.train()
    assert len(seen) == 6
    for epoch in range(2):
        batches = np.concatenate(seen[3 * epoch:3 * epoch + 3])
        assert sorted(batches.tolist()) == list(range(60))


def test_checkpoint_every_writes_fewer_checkpoints(tmp_path, monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    y = rng.randint(3, size=40)
    data = dict(X_train=X, y_train=y, X_val=X[:10], y_val=y[:10])
    model = FullyConnectedNet([4], input_dim=5, num_classes=3, dtype=np.float64)
    solver = Solver(model, data, num_epochs=5, batch_size=20, verbose=False,
                    checkpoint_path=str(tmp_path / "c.npz"), checkpoint_every=2)
    saved = []
    save = solver.save
    monkeypatch.setattr(solver, "save", lambda path: saved.append(solver.epoch) or save(path))
    solver.train()
    assert saved == [2, 4, 5]
