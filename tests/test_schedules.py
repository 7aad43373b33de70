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
