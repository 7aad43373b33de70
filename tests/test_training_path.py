"""One training path: the Solver's model protocol, the estimator and the CLI on its loop,
and one home for every learning rate and optimiser state.

* ``fastfc/solver.py`` names no model class; a model of the user's own that follows a
  protocol of ``fastfc._protocols`` trains through it (owning its optimiser, or the
  course contract with an optional step accelerator);
* ``FCClassifier`` and ``fastfc train`` run the Solver's loop (no second loop);
* a learning rate changed in its home is what every reader sees (no stale copy, also
  across save / resume).
"""
import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import fastfc.solver as solver_module
from fastfc import Net, Solver
from fastfc._protocols import CourseModel, OptimizerOwningModel, StepAccelerator
from fastfc.classifiers.fc_net import FullyConnectedNet

SRC = Path(solver_module.__file__).resolve().parent


def _data(n=200, d=6, c=3, seed=0):
    rng = np.random.RandomState(seed)
    R = rng.randn(d, c)
    X = rng.randn(n, d)
    y = np.argmax(X @ R, axis=1)
    return dict(X_train=X[:150], y_train=y[:150], X_val=X[150:], y_val=y[150:])


# ---------------------------------------------------------------- no model class

def test_solver_module_imports_and_names_no_model_class():
    tree = ast.parse((SRC / "solver.py").read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
            modules.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    for forbidden in ("fastfc.net", "fastfc.classifiers", "fastfc._fused", "fastfc.nndl"):
        assert not any(m == forbidden or m.startswith(forbidden + ".") for m in modules), \
            sorted(modules)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"Net", "FullyConnectedNet", "TwoLayerNet", "FusedStep", "_flat",
                        "_layout", "_core"}
    # the fused step lives beside the model it accelerates
    assert not (SRC / "_fused.py").exists()
    assert (SRC / "classifiers" / "_fused.py").exists()


def test_fastfc_models_follow_the_protocols():
    np.random.seed(0)
    net = Net([4, 3], seed=0)
    fcn = FullyConnectedNet([3], input_dim=4, num_classes=2)
    assert isinstance(net, OptimizerOwningModel)
    assert isinstance(fcn, CourseModel) and not isinstance(fcn, OptimizerOwningModel)
    s = Solver(fcn, dict(X_train=np.zeros((4, 4)), y_train=np.zeros(4, int),
                         X_val=np.zeros((2, 4)), y_val=np.zeros(2, int)),
               update_rule="adam", verbose=False)
    assert isinstance(fcn.make_solver_step(s), StepAccelerator)


# ---------------------------------------------------------------- user models

class SoftmaxOwner:
    """A softmax regression of the user's, owning a plain SGD optimiser (NumPy only)."""

    def __init__(self, d, c, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W": 0.01 * rng.randn(d, c), "b": np.zeros(c)}
        self.learning_rate = None
        self.nonfinite_params = 0
        self.steps = 0

    def _loss(self, X, y):
        scores = X @ self.params["W"] + self.params["b"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        p[np.arange(len(y)), y] -= 1
        p /= len(y)
        return loss, {"W": X.T @ p, "b": p.sum(axis=0)}

    def loss(self, X, y=None):
        if y is None:
            return X @ self.params["W"] + self.params["b"]
        return self._loss(X, y)

    def set_optimizer(self, update_rule, **config):
        assert update_rule == "sgd"
        self.learning_rate = config.get("learning_rate", 1e-2)
        return self

    def optimizer_state(self):
        return {"learning_rate": self.learning_rate}

    def train_step(self, X, y, indices=None):
        if indices is not None:
            X = X[indices]
        loss, grads = self._loss(X, y)
        for k, g in grads.items():
            self.params[k] -= self.learning_rate * g
        self.nonfinite_params = sum(int((~np.isfinite(v)).sum())
                                    for v in self.params.values())
        self.steps += 1
        return loss


class SoftmaxCourse(SoftmaxOwner):
    """The same model under the course contract only (no train_step)."""
    train_step = None


def test_a_users_optimizer_owning_model_trains_through_the_solver():
    data = _data()
    owner = SoftmaxOwner(6, 3)
    assert isinstance(owner, OptimizerOwningModel)
    s = Solver(owner, data, update_rule="sgd", optim_config={"learning_rate": 0.5},
               lr_decay=0.9, batch_size=25, num_epochs=3, verbose=False)
    np.random.seed(4)
    s.train()
    assert s.fast and owner.steps == 3 * (150 // 25) == len(s.loss_history)
    assert owner.learning_rate == pytest.approx(0.5 * 0.9 ** 3, rel=1e-15)
    assert s.optim_configs["W"]["learning_rate"] == owner.learning_rate
    # the same arithmetic on the course path (the Solver applies sgd): the same run
    course = SoftmaxCourse(6, 3)
    c = Solver(course, data, update_rule="sgd", optim_config={"learning_rate": 0.5},
               lr_decay=0.9, batch_size=25, num_epochs=3, verbose=False)
    np.random.seed(4)
    c.train()
    assert not c.fast
    np.testing.assert_allclose(s.loss_history, c.loss_history, rtol=1e-12)
    assert s.val_acc_history == c.val_acc_history
    for k in owner.params:
        np.testing.assert_allclose(owner.params[k], course.params[k], rtol=1e-12)


class Poisoned(SoftmaxOwner):
    """Its fourth step leaves a NaN in W but returns a finite loss."""

    def train_step(self, X, y, indices=None):
        loss = super().train_step(X, y, indices)
        if self.steps == 4:
            self.params["W"][0, 0] = np.nan
            self.nonfinite_params = 1
        return loss


def test_a_users_model_reports_non_finite_parameters_to_the_guard():
    owner = Poisoned(6, 3)
    s = Solver(owner, _data(), update_rule="sgd", optim_config={"learning_rate": 0.1},
               batch_size=25, num_epochs=2, verbose=False, on_divergence="raise")
    np.random.seed(0)
    with pytest.raises(solver_module.TrainingDiverged,
                       match="iteration 4 .*made parameters NaN or infinite"):
        s.train()
    assert s.diverged_iteration == 4
    assert all(np.isfinite(v).all() for v in owner.params.values())


class Accelerated(SoftmaxCourse):
    """A course model offering a step accelerator that takes every other step."""

    def make_solver_step(self, solver):
        model = self

        class Step:
            nonfinite = 0
            calls = []

            def step(self, X_train, batch_mask, y_batch):
                self.calls.append(len(solver.loss_history))
                if len(solver.loss_history) % 2:
                    return None                    # the ordinary path takes this one
                loss, grads = model._loss(X_train[batch_mask], y_batch)
                for k, g in grads.items():
                    model.params[k] -= solver.optim_configs[k]["learning_rate"] * g
                return loss
        return Step()


def test_a_course_models_step_accelerator_is_used_through_the_hook():
    data = _data()
    kw = dict(update_rule="sgd", optim_config={"learning_rate": 0.3}, batch_size=25,
              num_epochs=2, verbose=False)
    fast = Accelerated(6, 3)
    s = Solver(fast, data, **kw)
    np.random.seed(1)
    s.train()
    assert len(s._fused.calls) == len(s.loss_history) == 12
    plain = SoftmaxCourse(6, 3)
    p = Solver(plain, data, **kw)
    np.random.seed(1)
    p.train()
    np.testing.assert_allclose(s.loss_history, p.loss_history, rtol=1e-12)
    # switched off, the hook is never asked
    solver_module._FUSE_PLAIN_NETS = False
    try:
        off = Solver(Accelerated(6, 3), data, **kw)
        np.random.seed(1)
        off.train()
        assert off._fused is False
    finally:
        solver_module._FUSE_PLAIN_NETS = True


# ---------------------------------------------------------------- sampling source

def test_random_state_draws_minibatches_from_a_private_generator():
    data = _data()

    def run(**kw):
        net = Net([6, 5, 3], seed=0, dtype=np.float64)
        s = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                   batch_size=20, num_epochs=2, num_train_samples=50, verbose=False, **kw)
        s.train()
        return s

    np.random.seed(11)
    glob = run()
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    private = run(random_state=np.random.RandomState(11))
    assert np.array_equal(np.random.get_state()[1], before)   # global one untouched
    assert private.loss_history == glob.loss_history
    assert private.train_acc_history == glob.train_acc_history
    assert run(random_state=11).loss_history == glob.loss_history
    with pytest.raises(TypeError, match="random_state"):
        Solver(Net([6, 3], seed=0), data, random_state="seed")


def test_random_state_is_checkpointed_and_resumed(tmp_path):
    data = _data()

    def make(rs):
        net = Net([6, 5, 3], seed=0, dtype=np.float64)
        return Solver(net, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                      batch_size=20, num_epochs=4, verbose=False, random_state=rs,
                      checkpoint_path=str(tmp_path / "ck.npz"), checkpoint_every=2)

    whole = make(np.random.RandomState(3))
    whole.train()
    half = make(np.random.RandomState(3))
    half.num_epochs = 2
    half.train()
    resumed = make(np.random.RandomState(99)).resume(str(tmp_path / "ck.npz"))
    resumed.train()
    assert resumed.loss_history == whole.loss_history


# ---------------------------------------------------------------- the estimator

def test_the_estimator_trains_through_the_solvers_loop(monkeypatch):
    pytest.importorskip("sklearn")
    from fastfc import sklearn as fsk

    calls = []
    train = Solver.train

    def spy(self):
        calls.append(type(self))
        return train(self)
    monkeypatch.setattr(Solver, "train", spy)
    X, y = _data()["X_train"], _data()["y_train"]
    clf = fsk.FCClassifier(hidden_dims=(5,), num_epochs=2, batch_size=30, random_state=0)
    clf.fit(X, y)
    clf.partial_fit(X, y)
    assert len(calls) == 2 and all(issubclass(c, Solver) for c in calls)
    assert clf.t_ == 3 * (150 // 30) and clf.n_iter_ == 3
    # the estimator has no loop of its own: it never calls train_step itself
    source = inspect.getsource(fsk)
    assert "train_step(" not in source.replace("Net.train_step", "")


def test_estimator_early_stopping_with_batch_norm_restores_the_best_epoch():
    """The estimator's former loop wrote the best running statistics into the Net's
    read-only views and failed; through the Solver they are loaded back."""
    pytest.importorskip("sklearn")
    from fastfc.sklearn import FCClassifier

    d = _data(n=400)
    clf = FCClassifier(hidden_dims=(8,), normalization="batchnorm", early_stopping=True,
                       patience=2, num_epochs=25, batch_size=20, learning_rate=3e-2,
                       random_state=0, dtype="float64")
    clf.fit(d["X_train"], d["y_train"])
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ == len(clf.validation_scores_) == len(clf.loss_curve_)


def test_the_cli_trains_through_the_solver():
    source = (SRC / "_cli_train.py").read_text(encoding="utf-8")
    assert "Solver(" in source and "solver.train()" in source
    assert "train_step(" not in source and "for t in range" not in source


# ---------------------------------------------------------------- one home per value

def test_a_nets_learning_rate_and_step_count_have_one_home():
    net = Net([6, 5, 3], seed=0)
    net.set_optimizer("adam", learning_rate=1e-2)
    net.learning_rate = 3e-3
    assert net.optim_config["learning_rate"] == net.optimizer_state()["learning_rate"] == 3e-3
    X = np.random.RandomState(0).randn(10, 6).astype(net.dtype)
    for _ in range(3):
        net.train_step(X, np.arange(10) % 3)
    assert net.optim_config["t"] == net.optimizer_state()["t"] == 3
    assert "learning_rate" not in net._optim_config or net._optim_config is None


def test_a_net_solvers_learning_rate_is_the_nets(tmp_path):
    data = _data()
    net = Net([6, 5, 3], seed=0, dtype=np.float64)
    s = Solver(net, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.1},
               lr_decay=0.5, batch_size=30, num_epochs=2, verbose=False)
    np.random.seed(0)
    s.train()
    assert net.learning_rate == 0.025
    assert s.optim_config["learning_rate"] == 0.1          # the base rate, as given
    assert {c["learning_rate"] for c in s.optim_configs.values()} == {0.025}
    net.learning_rate = 0.007                               # changed in its home ...
    assert {c["learning_rate"] for c in s.optim_configs.values()} == {0.007}
    assert s._learning_rates() == [0.007]                   # ... seen everywhere
    path = str(tmp_path / "s.npz")
    s.save(path)
    other = Net([6, 5, 3], seed=1, dtype=np.float64)
    r = Solver(other, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.1},
               lr_decay=0.5, batch_size=30, num_epochs=4, verbose=False).resume(path)
    assert other.learning_rate == 0.007
    assert {c["learning_rate"] for c in r.optim_configs.values()} == {0.007}
    r.train()                                               # two more epochs, decayed
    assert other.learning_rate == 0.007 * 0.25
    assert {c["learning_rate"] for c in r.optim_configs.values()} == {0.007 * 0.25}


def test_the_fused_steps_rate_and_t_live_in_the_configs():
    data = _data()
    np.random.seed(0)
    model = FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64)
    s = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
               batch_size=30, verbose=False)
    np.random.seed(1)
    for _ in range(3):
        s._step()
    fused = s._fused
    assert fused and not hasattr(fused, "lr") and not hasattr(fused, "t")
    for c in s.optim_configs.values():
        c["learning_rate"] = 4e-3
        c["t"] = 10
    s._step()
    assert fused.net.learning_rate == 4e-3
    assert {c["t"] for c in s.optim_configs.values()} == {11}


def test_ctrl_c_ends_an_estimator_fit_at_a_step_boundary(monkeypatch):
    """The estimator shares the Solver's Ctrl-C handling: the step under way is
    finished, the fit ends with one warning, and the estimator is usable."""
    pytest.importorskip("sklearn")
    import signal
    import warnings

    from fastfc.sklearn import FCClassifier

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs Python's own SIGINT handler")
    inner = Net.train_step
    count = [0]

    def train_step(self, X, y, indices=None):
        loss = inner(self, X, y, indices)
        count[0] += 1
        if count[0] == 7:
            signal.raise_signal(signal.SIGINT)
        return loss
    monkeypatch.setattr(Net, "train_step", train_step)
    d = _data()
    clf = FCClassifier(hidden_dims=(5,), num_epochs=5, batch_size=30, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(d["X_train"], d["y_train"])
    assert [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert clf.t_ == 7 and clf.n_iter_ == 1 and len(clf.loss_curve_) == 1
    assert clf.predict(d["X_val"]).shape == (50,)
