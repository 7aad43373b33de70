"""Tests of the Solver's fused step for a plain FullyConnectedNet (fastfc/_fused.py).

The fused step must give what the ordinary step (model.loss + the rule per parameter)
gives: the same loss history, parameters, optimiser state and accuracies (float64 to
1e-10 relative, float32 to 1e-5), draw the same minibatches, keep model.params and the
state arrays in optim_configs usable by the user, pick up arrays put in their place,
and step aside for everything it does not compute (dropout, normalisation, custom
rules, per-parameter hyper-parameters, a patched loss).
"""
import numpy as np
import pytest

import fastfc.solver as solver_module
from fastfc import optim
from fastfc.classifiers.fc_net import FullyConnectedNet
from fastfc.solver import Solver

RULES = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam", "adamw"]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3, 4, 4))
    y = rng.integers(0, 7, 300)
    return {"X_train": X[:240], "y_train": y[:240], "X_val": X[240:], "y_val": y[240:]}


def make_model(dtype=np.float64, **kw):
    np.random.seed(1)
    kw.setdefault("reg", 0.01)
    return FullyConnectedNet([20, 15], input_dim=48, num_classes=7, weight_scale=0.1,
                             dtype=dtype, **kw)


def train(data, fused, model=None, rule="adam", dtype=np.float64, during=None, **kw):
    """Train with the fused step on or off; `during(solver, it)` runs before each step."""
    solver_module._FUSE_PLAIN_NETS = fused
    try:
        model = model if model is not None else make_model(dtype)
        kw.setdefault("optim_config", {"learning_rate": 1e-2})
        s = Solver(model, data, update_rule=rule, batch_size=30, num_epochs=3,
                   lr_decay=0.9, verbose=False, **kw)
        np.random.seed(7)
        if during is None:
            s.train()
        else:
            for it in range(20):
                during(s, it)
                s._step()
        return s
    finally:
        solver_module._FUSE_PLAIN_NETS = True


def assert_same_run(a, b, dtype=np.float64):
    tol = TOL[dtype]
    np.testing.assert_allclose(a.loss_history, b.loss_history, **tol)
    assert a.train_acc_history == b.train_acc_history
    assert a.val_acc_history == b.val_acc_history
    assert a.model.params.keys() == b.model.params.keys()
    for k in a.model.params:
        np.testing.assert_allclose(a.model.params[k], b.model.params[k], err_msg=k, **tol)
        ca, cb = a.optim_configs[k], b.optim_configs[k]
        assert ca.keys() == cb.keys(), k
        for key in ca:
            if isinstance(ca[key], np.ndarray):
                np.testing.assert_allclose(ca[key], cb[key], err_msg=f"{k} {key}", **tol)
            else:
                assert ca[key] == pytest.approx(cb[key], rel=1e-12), (k, key)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rule", RULES)
def test_fused_run_equals_the_ordinary_run(data, rule, dtype):
    plain = train(data, False, rule=rule, dtype=dtype)
    fused = train(data, True, rule=rule, dtype=dtype)
    assert plain._fused is False and fused._fused
    assert_same_run(plain, fused, dtype)


def test_params_and_state_are_views_of_the_net(data):
    s = train(data, True, during=lambda s, it: None)   # steps only (train() ends by
    net = s._fused.net                                  # restoring best_params copies)
    for k, w in s.model.params.items():
        assert np.shares_memory(w, net._flat), k
        for key in ("m", "v"):
            assert np.shares_memory(s.optim_configs[k][key], s._fused.state_flat[0]) or \
                np.shares_memory(s.optim_configs[k][key], s._fused.state_flat[1])
        assert s.optim_configs[k]["t"] == len(s.loss_history)
    # the views are what the model computes with: its loss matches the Net's
    X = data["X_val"]
    np.testing.assert_allclose(s.model.loss(X), net.loss(X.reshape(len(X), -1)), rtol=1e-12)


def test_cosine_schedule_and_best_params(data):
    kw = dict(schedule="cosine", lr_decay=1.0)

    def run(fused):
        solver_module._FUSE_PLAIN_NETS = fused
        try:
            s = Solver(make_model(), data, update_rule="adam", batch_size=30, num_epochs=3,
                       verbose=False, optim_config={"learning_rate": 1e-2}, **kw)
            np.random.seed(3)
            s.train()
            return s
        finally:
            solver_module._FUSE_PLAIN_NETS = True

    plain, fused = run(False), run(True)
    assert fused._fused
    assert_same_run(plain, fused)
    for k in plain.best_params:
        np.testing.assert_allclose(plain.best_params[k], fused.best_params[k], rtol=1e-10)


def test_arrays_put_in_place_are_picked_up(data):
    """A parameter or a state array replaced between steps is used from then on."""
    def during(s, it):
        if it == 5:
            s.model.params["W2"] = s.model.params["W2"] * 0.5
        if it == 9:
            s.optim_configs["W1"]["m"] = np.ones_like(s.model.params["W1"])
            s.model.params["b1"][...] = 0.25          # in place, on the shared array

    plain = train(data, False, during=during)
    fused = train(data, True, during=during)
    assert_same_run(plain, fused)


def test_per_parameter_learning_rates_take_the_ordinary_path(data):
    def during(s, it):
        if it == 4:
            s.optim_configs["W2"]["learning_rate"] = 1e-3
        if it == 12:       # equal again: fused again, continuing from the same state
            s.optim_configs["W2"]["learning_rate"] = s.optim_configs["W1"]["learning_rate"]

    plain = train(data, False, during=during)
    fused = train(data, True, during=during)
    assert_same_run(plain, fused)


def test_config_errors_match_the_ordinary_path(data):
    for fused in (False, True):
        with pytest.raises(ValueError, match="learning_rate"):
            train(data, fused, optim_config={"learning_rate": -1.0})


@pytest.mark.parametrize("kw", [dict(dropout_keep_ratio=0.5), dict(normalization="batchnorm"),
                                dict(normalization="layernorm")])
def test_not_used_for_what_the_net_computes_differently(data, kw):
    s = train(data, True, model=make_model(**kw))
    assert s._fused is False


def test_not_used_for_a_custom_rule_or_a_subclass(data):
    s = train(data, True, rule=optim.adam)
    assert s._fused is False

    class Mine(FullyConnectedNet):
        pass

    np.random.seed(1)
    model = Mine([20], input_dim=48, num_classes=7, weight_scale=0.1)
    assert train(data, True, model=model)._fused is False


def test_a_patched_loss_is_called(data):
    model = make_model()
    calls = []
    inner = model.loss

    def loss(X, y=None):
        if y is not None:
            calls.append(1)
        return inner(X, y)

    model.loss = loss
    s = train(data, True, model=model)
    assert len(calls) == len(s.loss_history) > 0


@pytest.mark.parametrize("rule", RULES)
def test_empty_optim_config_uses_each_rules_default_on_both_paths(data, rule):
    """Issue 14.1: with no learning_rate the fused step trained adam at 1e-2 (sgd's
    default) instead of adam's 1e-3.  Both paths must train at the rule's own default,
    which is what an explicit learning_rate = that default gives."""
    default_lr = optim._SPECS[rule][0]["learning_rate"]
    plain = train(data, False, rule=rule, optim_config={})
    fused = train(data, True, rule=rule, optim_config={})
    explicit = train(data, False, rule=rule, optim_config={"learning_rate": default_lr})
    assert plain._fused is False and fused._fused
    assert_same_run(plain, fused)
    assert_same_run(explicit, fused)
    # lr_decay=0.9 over 3 epochs, from the rule's default
    for config in fused.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(default_lr * 0.9 ** 3, rel=1e-12)
