"""Linear learning-rate warm-up into the cosine schedule: the factor, the Solver's
``warmup`` keyword (steps and time budget), bad values, and exact resume."""
import copy
import math

import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc.checkpoint import CheckpointError
from fastfc.classifiers.fc_net import FullyConnectedNet
from fastfc.schedules import CosineSchedule, ExponentialDecay, cosine_factor, \
    warmup_cosine_factor

from test_checkpoint import PER_EPOCH, assert_same_end, make_data, make_net
from test_schedules import _data
from test_solver_resume import resumed, sigint_in_model_at_step, uninterrupted


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def expected(f, warmup):
    if f < warmup:
        return f / warmup
    return 0.5 * (1 + math.cos(math.pi * (f - warmup) / (1 - warmup)))


def test_factor_ramps_linearly_then_follows_the_cosine_of_the_rest():
    assert warmup_cosine_factor(0.0, 0.2) == 0.0
    assert warmup_cosine_factor(0.1, 0.2) == pytest.approx(0.5)
    assert warmup_cosine_factor(0.2, 0.2) == 1.0        # the peak at the end of warm-up
    assert warmup_cosine_factor(0.6, 0.2) == pytest.approx(0.5)
    assert warmup_cosine_factor(1.0, 0.2) == 0.0
    assert warmup_cosine_factor(2.0, 0.2) == 0.0 and warmup_cosine_factor(-1, 0.2) == 0.0
    for f in np.linspace(0, 1, 41):
        assert warmup_cosine_factor(f, 0.3) == pytest.approx(expected(f, 0.3), abs=1e-15)


def test_zero_warmup_is_the_plain_cosine_bit_for_bit():
    for f in np.linspace(-0.5, 1.5, 57):
        assert warmup_cosine_factor(f, 0.0) == cosine_factor(f)
    plain, warm0 = CosineSchedule(total_steps=37), CosineSchedule(total_steps=37, warmup=0.0)
    for step in range(40):
        assert plain.before_step(step, 0.3) == warm0.before_step(step, 0.3)
    assert warm0.state() == {"elapsed": 0.0}


def test_schedule_over_steps():
    s = CosineSchedule(total_steps=100, warmup=0.1)
    assert s.factor(0) == 0.0
    assert s.factor(5) == pytest.approx(0.5)
    assert s.factor(10) == 1.0
    assert s.factor(55) == pytest.approx(0.5)
    assert s.before_step(55, 0.4) == pytest.approx(0.2)
    assert s.before_step(100, 0.4) == 0.0 and s.done(100)


def test_schedule_over_a_time_budget():
    clock = FakeClock()
    s = CosineSchedule(time_budget=50.0, clock=clock, warmup=0.2)
    s.start()
    assert s.before_step(0, 1.0) == 0.0
    clock.now = 5.0
    assert s.before_step(123, 1.0) == pytest.approx(0.5)
    clock.now = 10.0
    assert s.before_step(0, 1.0) == pytest.approx(1.0)
    clock.now = 30.0
    assert s.before_step(0, 1.0) == pytest.approx(0.5)
    clock.now = 50.0
    assert s.before_step(0, 1.0) == 0.0 and s.done(0)
    assert s.state() == {"elapsed": 50.0, "warmup": 0.2}


@pytest.mark.parametrize("bad, exc", [(1.0, ValueError), (-0.1, ValueError),
                                      (float("nan"), ValueError), ("x", TypeError)])
def test_bad_warmup_raises_naming_it(bad, exc):
    with pytest.raises(exc, match="warmup"):
        CosineSchedule(total_steps=10, warmup=bad)
    with pytest.raises(exc, match="warmup"):
        Solver(Net([10, 3], seed=0), _data(), schedule="cosine", warmup=bad)


@pytest.mark.parametrize("schedule", [None, ExponentialDecay(0.9)])
def test_warmup_needs_the_cosine_schedule(schedule):
    with pytest.raises(ValueError, match="warmup=0.1 needs schedule='cosine'"):
        Solver(Net([10, 3], seed=0), _data(), schedule=schedule, warmup=0.1)
    with pytest.raises(ValueError, match="schedule='cosine'"):
        Solver(Net([10, 3], seed=0), _data(), time_budget=5.0, warmup=0.1)
    Solver(Net([10, 3], seed=0), _data(), schedule=schedule, warmup=0.0)   # allowed


@pytest.mark.parametrize("make", [
    lambda: Net([10, 8, 3], seed=0, dtype=np.float64),
    lambda: FullyConnectedNet([8], input_dim=10, num_classes=3, dtype=np.float64),
], ids=["net", "fc_net"])
def test_solver_learning_rate_follows_warmup_then_cosine(make):
    data = _data()
    np.random.seed(0)
    model = make()
    seen = []
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 0.02},
                    num_epochs=4, batch_size=30, verbose=False, schedule="cosine",
                    warmup=0.25)
    step = solver._step

    def spy():
        seen.append(solver._learning_rates()[0])
        step()
    solver._step = spy
    solver.train()
    total = 4 * (150 // 30)
    want = [0.02 * expected(t / total, 0.25) for t in range(total)]
    np.testing.assert_allclose(seen, want, rtol=1e-12, atol=1e-18)
    assert seen[0] == 0.0 and max(seen) == pytest.approx(0.02)


def test_solver_warmup_over_a_time_budget(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("fastfc.schedules.time.perf_counter", clock)
    model = Net([10, 8, 3], seed=0, dtype=np.float64)
    solver = Solver(model, _data(), update_rule="sgd", optim_config={"learning_rate": 0.1},
                    num_epochs=1000, batch_size=30, verbose=False, schedule="cosine",
                    time_budget=10.0, warmup=0.2, random_state=0)
    solver._sched.clock = clock
    step = solver._step
    lrs = []

    def timed_step():
        lrs.append(model.learning_rate)
        step()
        clock.now += 1.0
    solver._step = timed_step
    solver.train()
    assert len(lrs) == 10
    np.testing.assert_allclose(lrs, [0.1 * expected(t / 10, 0.2) for t in range(10)],
                               rtol=1e-12, atol=1e-18)


KW = dict(batch_size=25, num_epochs=4, num_train_samples=50, num_val_samples=30,
          verbose=False, update_rule="adam", optim_config={"learning_rate": 5e-3},
          schedule="cosine", warmup=0.3, shuffle=True)


@pytest.mark.parametrize("k", [2, PER_EPOCH + 1])
def test_interrupt_and_resume_with_warmup_is_exact(tmp_path, k):
    data = make_data()
    a, model_a = uninterrupted(make_net, copy.deepcopy(KW), data)
    path = tmp_path / "ck.npz"
    model = make_net()
    s = Solver(model, data, checkpoint_path=path, **copy.deepcopy(KW))
    sigint_in_model_at_step(model, k)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        s.train()
    b, model_b = resumed(make_net, copy.deepcopy(KW), data, path)
    assert_same_end(a, model_a, b, model_b)


def test_resume_refuses_another_warmup(tmp_path):
    data = make_data()
    path = tmp_path / "ck.npz"
    s = Solver(make_net(), data, **copy.deepcopy(KW))
    s.train()
    s.save(path)
    other = dict(KW, warmup=0.1)
    with pytest.raises(CheckpointError, match="warmup"):
        Solver(make_net(), data, **other).resume(path)
    Solver(make_net(), data, **copy.deepcopy(KW)).resume(path)      # the same: fine
