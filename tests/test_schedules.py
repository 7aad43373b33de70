"""Learning-rate schedules: cosine over steps and over a wall-clock budget."""
import math

import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc.classifiers.fc_net import FullyConnectedNet
from fastfc.schedules import CosineSchedule, cosine_factor


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_cosine_factor_endpoints_and_midpoint():
    assert cosine_factor(0) == 1.0
    assert cosine_factor(1) == 0.0
    assert cosine_factor(0.5) == pytest.approx(0.5)
    assert cosine_factor(-1) == 1.0 and cosine_factor(2) == 0.0
    for f in np.linspace(0, 1, 11):
        assert cosine_factor(f) == pytest.approx(0.5 * (1 + math.cos(math.pi * f)))


def test_cosine_over_steps():
    s = CosineSchedule(total_steps=10)
    assert s.factor(0) == 1.0
    assert s.factor(5) == pytest.approx(0.5)
    assert not s.done(9) and s.done(10)


def test_cosine_over_a_time_budget_reaches_zero_exactly_when_spent():
    clock = FakeClock()
    s = CosineSchedule(time_budget=100.0, clock=clock)
    s.start()
    assert s.factor(0) == 1.0
    clock.now = 50.0
    assert s.factor(123) == pytest.approx(0.5)
    assert not s.done(0)
    clock.now = 100.0
    assert s.factor(0) == 0.0 and s.done(0)


def test_time_budget_state_survives_a_resume():
    clock = FakeClock()
    s = CosineSchedule(time_budget=10.0, clock=clock)
    s.start()
    clock.now = 4.0
    state = s.state()
    clock2 = FakeClock()
    s2 = CosineSchedule(time_budget=10.0, clock=clock2)
    s2.load_state(state)
    s2.start()
    clock2.now = 1.0
    assert s2.elapsed() == pytest.approx(5.0)
    assert s2.fraction(0) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [{}, {"total_steps": 0}, {"time_budget": 0},
                                    {"time_budget": -1}])
def test_bad_schedules(kwargs):
    with pytest.raises((ValueError, TypeError)):
        CosineSchedule(**kwargs)


def _data(n=200, d=10, c=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = rng.randint(c, size=n)
    return dict(X_train=X[:150], y_train=y[:150], X_val=X[150:], y_val=y[150:])


@pytest.mark.parametrize("make", [
    lambda: Net([10, 8, 3], seed=0, dtype=np.float64),
    lambda: FullyConnectedNet([8], input_dim=10, num_classes=3, dtype=np.float64),
], ids=["net", "fc_net"])
def test_solver_cosine_learning_rate_follows_the_formula(make):
    data = _data()
    np.random.seed(0)
    model = make()
    seen = []
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.2},
                    num_epochs=3, batch_size=30, verbose=False, schedule="cosine")
    step = solver._step

    def spy():
        seen.append(solver._learning_rates()[0])
        step()
    solver._step = spy
    solver.train()
    total = 3 * (150 // 30)
    want = [0.2 * 0.5 * (1 + math.cos(math.pi * t / total)) for t in range(total)]
    np.testing.assert_allclose(seen, want, rtol=1e-12)


def test_solver_time_budget_stops_and_ends_with_a_check(monkeypatch):
    data = _data()
    clock = FakeClock()
    monkeypatch.setattr("fastfc.schedules.time.perf_counter", clock)
    np.random.seed(0)
    model = Net([10, 8, 3], seed=0, dtype=np.float64)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.1},
                    num_epochs=1000, batch_size=30, verbose=False, schedule="cosine",
                    time_budget=10.0)
    solver._sched.clock = clock
    step = solver._step
    lrs = []

    def timed_step():
        lrs.append(model.learning_rate)
        step()
        clock.now += 1.0          # each step "takes" one second
    solver._step = timed_step
    solver.train()
    assert len(solver.loss_history) == 10           # 10 one-second steps fit the budget
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    # the first step, every epoch end (5 steps per epoch) and the final step were checked
    assert len(solver.val_acc_history) == 3
    assert solver.epoch == 2


def test_cosine_rejects_lr_decay():
    with pytest.raises(ValueError, match="lr_decay"):
        Solver(Net([10, 3], seed=0), _data(), schedule="cosine", lr_decay=0.9)
    with pytest.raises(ValueError, match="schedule"):
        Solver(Net([10, 3], seed=0), _data(), schedule="linear")


# ---------------------------------------------------------------- schedule objects

def _lrs_seen(solver, model_lr):
    """Train, recording the learning rate each step runs with."""
    seen = []
    step = solver._step

    def recording_step():
        seen.append(model_lr())
        step()
    solver._step = recording_step
    solver.train()
    return seen


def test_exponential_decay_object_is_lr_decay():
    """schedule=ExponentialDecay(d) trains bit for bit as lr_decay=d (which builds it)."""
    from fastfc.schedules import ExponentialDecay

    def run(**kw):
        np.random.seed(0)
        model = Net([10, 8, 3], seed=0, dtype=np.float64)
        s = Solver(model, _data(), update_rule="adam", optim_config={"learning_rate": 0.01},
                   num_epochs=3, batch_size=30, verbose=False, **kw)
        s.train()
        return s, model

    (a, ma), (b, mb) = run(lr_decay=0.7), run(schedule=ExponentialDecay(0.7))
    assert a.loss_history == b.loss_history
    assert ma.learning_rate == mb.learning_rate == 0.01 * 0.7 * 0.7 * 0.7
    for k in ma.params:
        np.testing.assert_array_equal(ma.params[k], mb.params[k])
    assert ExponentialDecay(0.5).after_epoch(3, 0.25) == 0.125
    with pytest.raises(ValueError, match="decay"):
        ExponentialDecay(-0.5)


class Warmup:
    """A custom per-step schedule: linear warm-up over `n` steps, then the base rate."""

    def __init__(self, n):
        self.n = n
        self.calls = []

    def before_step(self, step, base_lr):
        self.calls.append(step)
        return base_lr * min(1.0, (step + 1) / self.n)


class Halve:
    """A custom per-epoch schedule: halve every second epoch, else leave it."""

    def after_epoch(self, epoch, lr):
        return lr / 2 if epoch % 2 == 0 else None


def test_a_custom_per_step_schedule_drives_a_net():
    np.random.seed(0)
    model = Net([10, 8, 3], seed=0, dtype=np.float64)
    warm = Warmup(4)
    s = Solver(model, _data(), update_rule="sgd", optim_config={"learning_rate": 0.2},
               num_epochs=2, batch_size=30, verbose=False, schedule=warm)
    seen = _lrs_seen(s, lambda: model.learning_rate)
    total = 2 * (150 // 30)
    assert warm.calls == list(range(total))
    assert seen == [0.2 * min(1.0, (t + 1) / 4) for t in range(total)]


def test_a_custom_per_epoch_schedule_drives_the_course_path():
    np.random.seed(0)
    model = FullyConnectedNet([8], input_dim=10, num_classes=3, dtype=np.float64)
    s = Solver(model, _data(), update_rule="sgd_momentum",
               optim_config={"learning_rate": 0.08}, num_epochs=4, batch_size=30,
               verbose=False, schedule=Halve())
    seen = _lrs_seen(s, lambda: s.optim_configs["W1"].get("learning_rate", 0.08))
    per_epoch = 150 // 30
    # epochs 2 and 4 end halved; the first epoch's steps see the base rate
    want = [0.08] * (2 * per_epoch) + [0.04] * (2 * per_epoch)
    assert seen == want
    assert {c["learning_rate"] for c in s.optim_configs.values()} == {0.02}


def test_schedule_objects_are_checked():
    data = _data()
    with pytest.raises(TypeError, match="before_step.*after_epoch"):
        Solver(Net([10, 3], seed=0), data, schedule=object())
    with pytest.raises(ValueError, match="lr_decay"):
        Solver(Net([10, 3], seed=0), data, schedule=Halve(), lr_decay=0.5)
    from fastfc import optim
    with pytest.raises(ValueError, match="learning_rate"):
        Solver(Net([10, 3], seed=0), data, update_rule=optim.sgd, schedule=Warmup(2))
