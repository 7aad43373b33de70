"""AdamW: the compiled rule against a NumPy reference and torch.optim.AdamW, inside Net,
and its argument checks."""
import copy

import numpy as np
import pytest

from fastfc import Net, Solver, optim
from fastfc._kernels import optim as kopt

from test_checkpoint import PER_EPOCH, RESUME_KW, assert_same_end, make_data, make_net
from test_solver_resume import resumed, sigint_in_model_at_step, uninterrupted


def rel_error(x, y):
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def reference_adamw(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=1e-2, reg=0.0):
    """The formula, one NumPy operation at a time (step t already incremented)."""
    g = dw + reg * w
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    w = w * (1 - lr * weight_decay)
    w = w - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return w, m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_numpy_reference_bit_for_bit(dtype):
    rng = np.random.RandomState(0)
    w = rng.randn(1000).astype(dtype)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    rw, rm, rv = w.copy(), m.copy(), v.copy()
    hyper = dict(lr=3e-3, beta1=0.85, beta2=0.995, eps=1e-7, weight_decay=0.05)
    for t in range(1, 6):
        dw = rng.randn(1000).astype(dtype)
        bad = kopt._adamw(w, dw, m, v, hyper["lr"], hyper["beta1"], hyper["beta2"],
                          hyper["eps"], t, hyper["weight_decay"], 0.01)
        assert bad == 0
        rw, rm, rv = reference_adamw(rw, dw, rm, rv, t, reg=0.01, **hyper)
        assert rw.dtype == dtype
        np.testing.assert_array_equal(w, rw)
        np.testing.assert_array_equal(m, rm)
        np.testing.assert_array_equal(v, rv)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_public_rule_over_several_steps(dtype, tol):
    rng = np.random.RandomState(1)
    w = rng.randn(4, 5).astype(dtype)
    config = {"learning_rate": 1e-2, "weight_decay": 0.1}
    rw, rm, rv = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 8):
        dw = rng.randn(4, 5).astype(dtype)
        w_before = w.copy()
        w, config = optim.adamw(w, dw, config)
        np.testing.assert_array_equal(w_before, w_before)   # the input is not changed
        rw, rm, rv = reference_adamw(rw, dw, rm, rv, t, lr=1e-2, weight_decay=0.1)
        assert config["t"] == t
        assert rel_error(w, rw) < tol
        assert rel_error(config["m"], rm) < tol
        assert rel_error(config["v"], rv) < tol


def test_weight_decay_is_decoupled_not_l2():
    """With a zero gradient Adam does nothing; AdamW shrinks w by 1 - lr * wd."""
    w = np.linspace(-1, 1, 7)
    next_w, _ = optim.adamw(w, np.zeros_like(w), {"learning_rate": 0.1, "weight_decay": 0.5})
    np.testing.assert_array_equal(next_w, w * (1 - 0.1 * 0.5))
    same, _ = optim.adam(w, np.zeros_like(w), {"learning_rate": 0.1})
    np.testing.assert_array_equal(same, w)


def test_defaults_are_torchs():
    _, config = optim.adamw(np.ones(3), np.ones(3))
    assert config["learning_rate"] == 1e-3
    assert config["beta1"] == 0.9 and config["beta2"] == 0.999
    assert config["epsilon"] == 1e-8 and config["weight_decay"] == 1e-2
    assert config["t"] == 1
    assert "adamw" in optim.UPDATE_RULES


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_matches_torch_adamw(dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(2)
    w0 = rng.randn(50, 30).astype(dtype)
    grads = [rng.randn(50, 30).astype(dtype) for _ in range(10)]
    hyper = dict(lr=5e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.2)
    p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.AdamW([p], **hyper)
    w = w0.copy()
    config = {"learning_rate": 5e-3, "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8,
              "weight_decay": 0.2}
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        w, config = optim.adamw(w, g, config)
    assert rel_error(w, p.detach().numpy()) < tol
    # torch forms m by lerp (m + (1 - b1) * (g - m)): the same value rounded otherwise,
    # which near m = 0 is a relative difference of a few float32 ulps of g
    state = opt.state[p]
    atol = 1e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(config["m"], state["exp_avg"].numpy(), rtol=tol, atol=atol)
    np.testing.assert_allclose(config["v"], state["exp_avg_sq"].numpy(), rtol=tol, atol=atol)


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_net_with_zero_weight_decay_is_adam_bit_for_bit(normalization, dtype):
    rng = np.random.RandomState(3)
    X = rng.randn(40, 12)
    y = rng.randint(0, 4, 40)
    nets = []
    for rule, extra in (("adam", {}), ("adamw", {"weight_decay": 0.0})):
        net = Net([12, 16, 8, 4], normalization=normalization, dtype=dtype, seed=0,
                  reg=1e-3, dropout_keep_ratio=0.8)
        net.set_optimizer(rule, learning_rate=1e-2, **extra)
        for i in range(6):
            net.train_step(X[i * 5:i * 5 + 20], y[i * 5:i * 5 + 20])
        nets.append(net)
    for name in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[name], nets[1].params[name])
    np.testing.assert_array_equal(nets[0].optim_config["m"], nets[1].optim_config["m"])
    assert nets[1].optim_config["t"] == 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_net_matches_public_rule_on_the_flat_buffer(dtype):
    """Net's compiled adamw step equals fastfc.optim.adamw on every parameter (the
    decay reaches weights, biases and batch-norm gamma/beta; reg only the weights)."""
    rng = np.random.RandomState(4)
    X = rng.randn(20, 6)
    y = rng.randint(0, 3, 20)
    net = Net([6, 7, 3], normalization="batchnorm", dtype=dtype, seed=1, reg=0.0)
    net.set_optimizer("adamw", learning_rate=1e-2, weight_decay=0.3)
    configs = {}
    for _ in range(3):
        before = {k: v.copy() for k, v in net.params.items()}
        _, grads = net.loss(X, y)
        net.train_step(X, y)
        for name, w in before.items():
            expected, configs[name] = optim.adamw(
                w, grads[name], configs.get(name, {"learning_rate": 1e-2,
                                                   "weight_decay": 0.3}))
            np.testing.assert_array_equal(net.params[name], expected, err_msg=name)


def test_net_weight_decay_shrinks_biases_too():
    net = Net([3, 4, 2], seed=0, dtype=np.float64)
    net.params["b1"] = np.ones(4)
    net.set_optimizer("adamw", learning_rate=0.1, weight_decay=1.0)
    X = np.zeros((2, 3))        # zero input: b1's gradient is the only signal
    net.train_step(X, np.array([0, 1]))
    assert not np.allclose(net.params["b1"], 1.0)


@pytest.mark.parametrize("bad, exc", [(-0.1, ValueError), (float("nan"), ValueError),
                                      ("x", TypeError), (float("inf"), ValueError)])
def test_bad_weight_decay_raises_naming_it(bad, exc):
    with pytest.raises(exc, match="weight_decay"):
        optim.adamw(np.ones(3), np.ones(3), {"weight_decay": bad})
    net = Net([3, 4, 2], seed=0)
    with pytest.raises(exc, match="weight_decay"):
        net.set_optimizer("adamw", weight_decay=bad)


def test_weight_decay_still_refused_by_the_coupled_rules_in_net():
    net = Net([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="reg"):
        net.set_optimizer("adam", weight_decay=0.1)


@pytest.mark.parametrize("k", [3, PER_EPOCH + 2])
def test_solver_interrupt_and_resume_with_adamw_is_exact(tmp_path, k):
    """The Net's adamw state (m, v, t and its weight_decay) survives a checkpoint."""
    data = make_data()
    kw = dict(RESUME_KW, update_rule="adamw",
              optim_config={"learning_rate": 5e-3, "weight_decay": 0.05})
    a, model_a = uninterrupted(make_net, copy.deepcopy(kw), data)
    path = tmp_path / "ck.npz"
    model = make_net()
    s = Solver(model, data, checkpoint_path=path, **copy.deepcopy(kw))
    sigint_in_model_at_step(model, k)
    np.random.seed(3)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        s.train()
    b, model_b = resumed(make_net, copy.deepcopy(kw), data, path)
    assert model_b.optim_config["weight_decay"] == 0.05
    assert_same_end(a, model_a, b, model_b)
