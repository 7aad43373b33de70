"""Tests of fastfc.optim: SPEC reference values, the NumPy formulas, state handling,
weight decay, in-place updates, layouts and argument checking."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfc import Net, optim
from fastfc.gradient_check import rel_error

RULES = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam", "adamw"]

# Non-default hyper-parameters used by the formula tests (so that the defaults cannot
# hide a swapped or ignored key).
HYPER = {
    "sgd": {"learning_rate": 0.1},
    "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.8},
    "sgd_nesterov_momentum": {"learning_rate": 0.05, "momentum": 0.7},
    "rmsprop": {"learning_rate": 0.03, "decay_rate": 0.9, "epsilon": 1e-6},
    "adam": {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6},
    "adamw": {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6,
              "weight_decay": 0.3},
}

# SPEC table: the defaults filled into config.
DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "sgd_nesterov_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "adamw": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
              "weight_decay": 1e-2},
}
STATE_KEYS = {
    "sgd": (),
    "sgd_momentum": ("velocity",),
    "sgd_nesterov_momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v"),
    "adamw": ("m", "v"),
}
#: the rules whose extra weight_decay is an L2 term added to dw (adamw's is decoupled)
COUPLED = [rule for rule in RULES if rule != "adamw"]
COUNTS_STEPS = ("adam", "adamw")


# ----------------------------------------------------------------- NumPy formulas

def ref_step(rule, w, dw, config):
    """One step of ``rule`` in float64 NumPy, CS231n form.

    ``config`` holds the hyper-parameters and (optionally) the state under the CS231n
    names; missing state starts at zero.  Returns (next_w, new_state dict).
    """
    w = np.asarray(w, dtype=np.float64)
    l2 = 0.0 if rule == "adamw" else config.get("weight_decay", 0.0)
    g = np.asarray(dw, dtype=np.float64) + l2 * w
    lr = config["learning_rate"]
    zeros = np.zeros_like(w)
    if rule == "sgd":
        return w - lr * g, {}
    if rule == "sgd_momentum":
        v = np.asarray(config.get("velocity", zeros), dtype=np.float64)
        v = config["momentum"] * v - lr * g
        return w + v, {"velocity": v}
    if rule == "sgd_nesterov_momentum":
        v_prev = np.asarray(config.get("velocity", zeros), dtype=np.float64)
        v = config["momentum"] * v_prev - lr * g
        return w + v + config["momentum"] * (v - v_prev), {"velocity": v}
    if rule == "rmsprop":
        c = np.asarray(config.get("cache", zeros), dtype=np.float64)
        dr = config["decay_rate"]
        c = dr * c + (1 - dr) * g**2
        return w - lr * g / (np.sqrt(c) + config["epsilon"]), {"cache": c}
    if rule in COUNTS_STEPS:
        if rule == "adamw":     # decoupled weight decay first
            w = w * (1 - lr * config["weight_decay"])
        b1, b2 = config["beta1"], config["beta2"]
        t = config.get("t", 0) + 1
        m = np.asarray(config.get("m", zeros), dtype=np.float64)
        v = np.asarray(config.get("v", zeros), dtype=np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mt = m / (1 - b1**t)
        vt = v / (1 - b2**t)
        return w - lr * mt / (np.sqrt(vt) + config["epsilon"]), {"m": m, "v": v, "t": t}
    raise AssertionError(rule)


def _wdw(rng, dtype, shape=(4, 5)):
    w = rng.standard_normal(shape).astype(dtype)
    dw = rng.standard_normal(shape).astype(dtype)
    return w, dw


def _initial_state(rule, rng, dtype, shape=(4, 5)):
    """Non-zero state arrays (positive caches / second moments) for ``rule``."""
    state = {}
    for key in STATE_KEYS[rule]:
        if key in ("cache",) or (rule in COUNTS_STEPS and key == "v"):
            state[key] = rng.uniform(0.1, 1.0, shape).astype(dtype)
        else:
            state[key] = rng.standard_normal(shape).astype(dtype)
    if rule in COUNTS_STEPS:
        state["t"] = 3
    return state


# ----------------------------------------------------------------- SPEC references 8-10

def _spec_arrays():
    w = np.linspace(-0.4, 0.6, num=20).reshape(4, 5)
    dw = np.linspace(-0.6, 0.4, num=20).reshape(4, 5)
    v = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    return w, dw, v


def test_sgd_momentum_spec_reference():
    w, dw, v = _spec_arrays()
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, config = optim.sgd_momentum(w, dw, config=config)
    expected_next_w = np.asarray([
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
        [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
        [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]])
    expected_velocity = np.asarray([
        [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
        [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
        [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
        [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])
    assert rel_error(next_w, expected_next_w) < 1e-8
    assert rel_error(config["velocity"], expected_velocity) < 1e-8


def test_rmsprop_spec_reference():
    w, dw, _ = _spec_arrays()
    cache = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    config = {"learning_rate": 1e-2, "cache": cache}
    next_w, config = optim.rmsprop(w, dw, config=config)
    expected_next_w = np.asarray([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.asarray([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    assert rel_error(next_w, expected_next_w) < 1e-7
    assert rel_error(config["cache"], expected_cache) < 1e-7


def test_sgd_nesterov_momentum_spec_reference():
    w, dw, v = _spec_arrays()
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, _ = optim.sgd_nesterov_momentum(w, dw, config=config)
    expected_next_w = np.asarray([
        [0.08714, 0.15246105, 0.21778211, 0.28310316, 0.34842421],
        [0.41374526, 0.47906632, 0.54438737, 0.60970842, 0.67502947],
        [0.74035053, 0.80567158, 0.87099263, 0.93631368, 1.00163474],
        [1.06695579, 1.13227684, 1.19759789, 1.26291895, 1.32824]])
    # SPEC item 10: < 2e-8 (the 8-decimal values are rounded: element (0, 2) is
    # 0.2177821052631578 exactly, printed 0.21778211, a relative error of 1.09e-8 alone);
    # and the exact formula to machine precision.
    assert rel_error(next_w, expected_next_w) < 2e-8
    v_new = 0.9 * v - 1e-3 * dw
    assert rel_error(next_w, w + v_new + 0.9 * (v_new - v)) < 1e-14


# ----------------------------------------------------------------- single rules

def test_sgd_formula():
    rng = np.random.default_rng(1)
    w, dw = _wdw(rng, np.float64)
    next_w, config = optim.sgd(w, dw, {"learning_rate": 0.25})
    np.testing.assert_allclose(next_w, w - 0.25 * dw, rtol=1e-14, atol=1e-15)
    assert config == {"learning_rate": 0.25}


def test_adam_one_step_from_zero_state():
    rng = np.random.default_rng(2)
    w, dw = _wdw(rng, np.float64)
    hyper = dict(HYPER["adam"])
    next_w, config = optim.adam(w, dw, dict(hyper))
    exp_w, exp_state = ref_step("adam", w, dw, hyper)
    np.testing.assert_allclose(next_w, exp_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["m"], exp_state["m"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["v"], exp_state["v"], rtol=1e-12, atol=1e-14)
    assert config["t"] == 1
    # first step: m_hat = g and v_hat = g**2, so the step is lr * g / (|g| + eps)
    np.testing.assert_allclose(
        next_w, w - hyper["learning_rate"] * dw / (np.abs(dw) + hyper["epsilon"]),
        rtol=1e-12, atol=1e-14)


def test_adam_with_given_state():
    rng = np.random.default_rng(3)
    w, dw = _wdw(rng, np.float64)
    m0 = rng.standard_normal(w.shape)
    v0 = rng.uniform(0.1, 1.0, w.shape)
    hyper = dict(HYPER["adam"])
    config = dict(hyper, m=m0.copy(), v=v0.copy(), t=5)
    next_w, config = optim.adam(w, dw, config)
    exp_w, exp_state = ref_step("adam", w, dw, dict(hyper, m=m0, v=v0, t=5))
    assert config["t"] == 6
    np.testing.assert_allclose(next_w, exp_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["m"], exp_state["m"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["v"], exp_state["v"], rtol=1e-12, atol=1e-14)


def test_adam_multi_step():
    rng = np.random.default_rng(4)
    w, _ = _wdw(rng, np.float64)
    hyper = dict(HYPER["adam"])
    config = dict(hyper)
    ref_w, ref_cfg = w.copy(), dict(hyper)
    cur = w
    for step in range(1, 6):
        dw = rng.standard_normal(w.shape)
        cur, config = optim.adam(cur, dw, config)
        ref_w, state = ref_step("adam", ref_w, dw, ref_cfg)
        ref_cfg.update(state)
        assert config["t"] == step
        np.testing.assert_allclose(cur, ref_w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(config["m"], ref_cfg["m"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(config["v"], ref_cfg["v"], rtol=1e-12, atol=1e-14)


def test_adam_ucla_state_names():
    """UCLA: 'v' is the first moment, 'a' the second (recognised by 'a')."""
    rng = np.random.default_rng(5)
    w, dw = _wdw(rng, np.float64)
    first = rng.standard_normal(w.shape)
    second = rng.uniform(0.1, 1.0, w.shape)
    hyper = dict(HYPER["adam"])
    config = dict(hyper, v=first.copy(), a=second.copy(), t=2)
    next_w, config = optim.adam(w, dw, config)
    exp_w, exp_state = ref_step("adam", w, dw, dict(hyper, m=first, v=second, t=2))
    np.testing.assert_allclose(next_w, exp_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["v"], exp_state["m"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["a"], exp_state["v"], rtol=1e-12, atol=1e-14)
    assert config["t"] == 3
    assert "m" not in config


def test_adam_ucla_first_step_with_zero_state():
    """UCLA's code creates 'v' and 'a' as zeros; the result equals the CS231n first step."""
    rng = np.random.default_rng(6)
    w, dw = _wdw(rng, np.float64)
    hyper = dict(HYPER["adam"])
    ucla = dict(hyper, v=np.zeros_like(w), a=np.zeros_like(w), t=0)
    next_ucla, ucla = optim.adam(w, dw, ucla)
    next_cs, cs = optim.adam(w, dw, dict(hyper))
    np.testing.assert_allclose(next_ucla, next_cs, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ucla["v"], cs["m"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ucla["a"], cs["v"], rtol=1e-14, atol=1e-15)
    assert set(ucla) == set(hyper) | {"v", "a", "t"}


def test_rmsprop_ucla_cache_name():
    rng = np.random.default_rng(7)
    w, dw = _wdw(rng, np.float64)
    cache = rng.uniform(0.1, 1.0, w.shape)
    hyper = dict(HYPER["rmsprop"])
    config = dict(hyper, a=cache.copy())
    next_w, config = optim.rmsprop(w, dw, config)
    exp_w, exp_state = ref_step("rmsprop", w, dw, dict(hyper, cache=cache))
    np.testing.assert_allclose(next_w, exp_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(config["a"], exp_state["cache"], rtol=1e-12, atol=1e-14)
    assert "cache" not in config


# ----------------------------------------------------------------- defaults

@pytest.mark.parametrize("rule", RULES)
def test_defaults_filled_into_config(rule):
    rng = np.random.default_rng(8)
    w, dw = _wdw(rng, np.float64)
    next_w, config = getattr(optim, rule)(w, dw)
    expected_keys = set(DEFAULTS[rule]) | set(STATE_KEYS[rule]) | (
        {"t"} if rule in COUNTS_STEPS else set())
    assert set(config) == expected_keys
    for key, value in DEFAULTS[rule].items():
        assert config[key] == value, key
    exp_w, exp_state = ref_step(rule, w, dw, dict(DEFAULTS[rule]))
    np.testing.assert_allclose(next_w, exp_w, rtol=1e-12, atol=1e-14)
    for key in STATE_KEYS[rule]:
        np.testing.assert_allclose(config[key], exp_state[key], rtol=1e-12, atol=1e-14)
    if rule in COUNTS_STEPS:
        assert config["t"] == 1


@pytest.mark.parametrize("rule", RULES)
def test_partial_config_keeps_given_values(rule):
    rng = np.random.default_rng(9)
    w, dw = _wdw(rng, np.float64)
    config = {"learning_rate": 0.123}
    out_w, out_config = getattr(optim, rule)(w, dw, config)
    assert out_config is config  # the caller's dict is filled, as in the reference code
    assert config["learning_rate"] == 0.123
    for key, value in DEFAULTS[rule].items():
        if key != "learning_rate":
            assert config[key] == value
    exp_w, _ = ref_step(rule, w, dw, dict(DEFAULTS[rule], learning_rate=0.123))
    np.testing.assert_allclose(out_w, exp_w, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- every rule x dtype

@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_formula(rule, dtype, tol):
    rng = np.random.default_rng(10)
    w, dw = _wdw(rng, dtype)
    state = _initial_state(rule, rng, dtype)
    w0, dw0 = w.copy(), dw.copy()
    config = dict(HYPER[rule], **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in state.items()})
    next_w, config = getattr(optim, rule)(w, dw, config)

    assert next_w.dtype == dtype
    assert next_w.shape == w.shape
    assert next_w is not w
    # the caller's arrays are untouched
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)

    exp_w, exp_state = ref_step(rule, w0, dw0, dict(HYPER[rule], **state))
    np.testing.assert_allclose(next_w, exp_w, **tol)
    for key in STATE_KEYS[rule]:
        assert isinstance(config[key], np.ndarray)
        assert config[key].shape == w.shape
        assert config[key].dtype == dtype
        np.testing.assert_allclose(config[key], exp_state[key], **tol)
    if rule in COUNTS_STEPS:
        assert config["t"] == state["t"] + 1


@pytest.mark.parametrize("rule", RULES)
def test_rule_repeated_steps(rule, dtype, tol):
    rng = np.random.default_rng(11)
    w, _ = _wdw(rng, dtype)
    config = dict(HYPER[rule])
    ref_w, ref_cfg = w.astype(np.float64), dict(HYPER[rule])
    cur = w
    for _ in range(4):
        dw = rng.standard_normal(w.shape).astype(dtype)
        cur, config = getattr(optim, rule)(cur, dw, config)
        ref_w, state = ref_step(rule, ref_w, dw, ref_cfg)
        ref_cfg.update(state)
        assert cur.dtype == dtype
        np.testing.assert_allclose(cur, ref_w, **tol)
        for key in STATE_KEYS[rule]:
            np.testing.assert_allclose(config[key], ref_cfg[key], **tol)
    if rule in COUNTS_STEPS:
        assert config["t"] == 4


@pytest.mark.parametrize("rule", RULES)
def test_edge_shapes(rule, dtype, tol):
    """A scalar-like (1,) weight and a 3-d weight go through the flat kernels."""
    rng = np.random.default_rng(12)
    for shape in [(1,), (1, 1), (2, 3, 4)]:
        w, dw = _wdw(rng, dtype, shape)
        next_w, config = getattr(optim, rule)(w, dw, dict(HYPER[rule]))
        exp_w, _ = ref_step(rule, w, dw, dict(HYPER[rule]))
        assert next_w.shape == shape
        np.testing.assert_allclose(next_w, exp_w, **tol)


# ----------------------------------------------------------------- weight decay

@pytest.mark.parametrize("rule", COUPLED)
def test_weight_decay(rule, dtype, tol):
    """The L2 term of every rule but adamw (whose decoupled decay test_adamw.py covers)."""
    rng = np.random.default_rng(13)
    w, dw = _wdw(rng, dtype)
    wd = 0.3
    state = _initial_state(rule, rng, dtype)

    def cfg(**extra):
        return dict(HYPER[rule], **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                    for k, v in state.items()}, **extra)

    decayed_w, decayed_cfg = getattr(optim, rule)(w, dw, cfg(weight_decay=wd))
    plain_w, plain_cfg = getattr(optim, rule)(w, (dw + dtype(wd) * w).astype(dtype), cfg())
    np.testing.assert_allclose(decayed_w, plain_w, **tol)
    for key in STATE_KEYS[rule]:
        np.testing.assert_allclose(decayed_cfg[key], plain_cfg[key], **tol)
    exp_w, _ = ref_step(rule, w, dw, dict(HYPER[rule], weight_decay=wd, **state))
    np.testing.assert_allclose(decayed_w, exp_w, **tol)
    assert decayed_cfg["weight_decay"] == wd


# ----------------------------------------------------------------- update_inplace

@pytest.mark.parametrize("rule", RULES)
def test_update_inplace_matches_public_rule(rule, dtype, tol):
    rng = np.random.default_rng(14)
    w, dw = _wdw(rng, dtype)
    state = _initial_state(rule, rng, dtype)
    public_w, public_cfg = getattr(optim, rule)(
        w, dw, dict(HYPER[rule], **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                    for k, v in state.items()}))
    buf = w.copy()
    address = buf.__array_interface__["data"][0]
    config = dict(HYPER[rule], **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in state.items()})
    returned = optim.update_inplace(rule, buf, dw, config)
    assert returned is config
    assert buf.__array_interface__["data"][0] == address
    np.testing.assert_allclose(buf, public_w, **tol)
    assert not np.array_equal(buf, w)
    for key in STATE_KEYS[rule]:
        np.testing.assert_allclose(config[key], public_cfg[key], **tol)
    if rule in COUNTS_STEPS:
        assert config["t"] == public_cfg["t"] == state["t"] + 1


def test_update_inplace_repeated_steps_match_public_rule():
    rng = np.random.default_rng(15)
    w, _ = _wdw(rng, np.float64)
    buf = w.copy()
    cfg_inplace, cfg_public = dict(HYPER["adam"]), dict(HYPER["adam"])
    cur = w
    for _ in range(3):
        dw = rng.standard_normal(w.shape)
        optim.update_inplace("adam", buf, dw, cfg_inplace)
        cur, cfg_public = optim.adam(cur, dw, cfg_public)
    np.testing.assert_allclose(buf, cur, rtol=1e-14, atol=1e-15)
    assert cfg_inplace["t"] == cfg_public["t"] == 3


# ----------------------------------------------------------------- layouts

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layout", ["strided", "fortran"])
def test_non_contiguous_inputs(rule, layout, dtype, tol):
    rng = np.random.default_rng(16)
    w, dw = _wdw(rng, dtype)
    state = _initial_state(rule, rng, dtype)
    expected_w, expected_cfg = getattr(optim, rule)(
        w, dw, dict(HYPER[rule], **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                    for k, v in state.items()}))

    def relayout(a):
        if layout == "fortran":
            out = np.asfortranarray(a)
            assert not out.flags.c_contiguous
            return out
        big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), dtype=a.dtype)
        big[::2, ::3] = a
        out = big[::2, ::3]
        assert not out.flags.c_contiguous and not out.flags.f_contiguous
        return out

    w_nc, dw_nc = relayout(w), relayout(dw)
    w_nc0 = w_nc.copy()
    config = dict(HYPER[rule], **{k: (relayout(v) if isinstance(v, np.ndarray) else v)
                                  for k, v in state.items()})
    next_w, config = getattr(optim, rule)(w_nc, dw_nc, config)
    assert next_w.shape == w.shape
    assert next_w.dtype == dtype
    np.testing.assert_allclose(next_w, expected_w, **tol)
    np.testing.assert_array_equal(w_nc, w_nc0)
    for key in STATE_KEYS[rule]:
        np.testing.assert_allclose(config[key], expected_cfg[key], **tol)


# ----------------------------------------------------------------- bad arguments

W = np.linspace(-0.4, 0.6, num=20).reshape(4, 5)
DW = np.linspace(-0.6, 0.4, num=20).reshape(4, 5)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("value, exc", [
    (-1e-3, ValueError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    ("0.01", TypeError),
    (None, TypeError),
    (1j, TypeError),
])
def test_bad_learning_rate(rule, value, exc):
    with pytest.raises(exc, match="learning_rate"):
        getattr(optim, rule)(W, DW, {"learning_rate": value})


@pytest.mark.parametrize("key, value", [
    ("beta1", 1.0), ("beta1", 1.5), ("beta2", 1.0), ("beta1", -0.1),
    ("epsilon", -1e-8), ("t", -1),
])
def test_bad_adam_hyper_parameters(key, value):
    with pytest.raises(ValueError, match=key):
        optim.adam(W, DW, {key: value})


def test_adam_non_integer_t():
    with pytest.raises(TypeError, match="'t'"):
        optim.adam(W, DW, {"t": 1.5})


@pytest.mark.parametrize("rule, key, value", [
    ("sgd_momentum", "momentum", 1.5),
    ("sgd_momentum", "momentum", -0.5),
    ("sgd_nesterov_momentum", "momentum", float("nan")),
    ("rmsprop", "decay_rate", 2.0),
    ("rmsprop", "epsilon", -1.0),
])
def test_bad_other_hyper_parameters(rule, key, value):
    with pytest.raises(ValueError, match=key):
        getattr(optim, rule)(W, DW, {key: value})


@pytest.mark.parametrize("rule", RULES)
def test_negative_weight_decay(rule):
    with pytest.raises(ValueError, match="weight_decay"):
        getattr(optim, rule)(W, DW, {"weight_decay": -0.1})


@pytest.mark.parametrize("rule", RULES)
def test_unknown_config_key_is_ignored(rule):
    """As in the course code, a key the rule does not use changes nothing."""
    want, _ = getattr(optim, rule)(W, DW, {})
    got, config = getattr(optim, rule)(W, DW, {"learnin_rate": 0.1})
    np.testing.assert_array_equal(got, want)
    assert config["learnin_rate"] == 0.1


@pytest.mark.parametrize("rule", ["sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam"])
def test_state_of_wrong_shape(rule):
    key = STATE_KEYS[rule][0]
    with pytest.raises(ValueError, match=key):
        getattr(optim, rule)(W, DW, {key: np.zeros((5, 4))})


def test_ucla_state_of_wrong_shape():
    with pytest.raises(ValueError, match="'a'"):
        optim.rmsprop(W, DW, {"a": np.zeros(20)})
    with pytest.raises(ValueError, match="'a'"):
        optim.adam(W, DW, {"v": np.zeros_like(W), "a": np.zeros((4, 4))})


@pytest.mark.parametrize("rule", RULES)
def test_dw_shape_mismatch(rule):
    with pytest.raises(ValueError, match="dw"):
        getattr(optim, rule)(W, DW.reshape(5, 4))
    with pytest.raises(ValueError, match="dw"):
        getattr(optim, rule)(W, DW.ravel())


@pytest.mark.parametrize("rule", RULES)
def test_mixed_float_dtypes(rule):
    """float32 w with float64 dw promotes to float64, as NumPy does."""
    next_w, _ = getattr(optim, rule)(W.astype(np.float32), DW)
    assert next_w.dtype == np.float64


@pytest.mark.parametrize("rule", RULES)
def test_config_not_a_dict(rule):
    with pytest.raises(TypeError, match="config"):
        getattr(optim, rule)(W, DW, [("learning_rate", 0.1)])


@pytest.mark.parametrize("rule", RULES)
def test_bad_array_arguments(rule):
    with pytest.raises(TypeError, match="w"):
        getattr(optim, rule)(np.array(["a", "b"]), np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="dw"):
        getattr(optim, rule)(W, W.astype(np.complex128))


_WEIRD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**20, max_value=10**20),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.floats(-1, 1), max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(rule=st.sampled_from(RULES),
       key=st.sampled_from(["learning_rate", "momentum", "decay_rate", "epsilon",
                            "beta1", "beta2", "t", "weight_decay", "bogus"]),
       value=_WEIRD)
def test_arbitrary_config_values_never_crash(rule, key, value):
    """Any value either works or raises ValueError/TypeError."""
    try:
        next_w, _ = getattr(optim, rule)(W, DW, {key: value})
    except (ValueError, TypeError):
        # a key the rule does not use is ignored, never refused (issue 14 item 7)
        assert key in DEFAULTS[rule] or key in ("t", "weight_decay")
        return
    assert next_w.shape == W.shape and next_w.dtype == W.dtype


@settings(max_examples=60, deadline=None)
@given(rule=st.sampled_from(RULES),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
       kind=st.sampled_from(["f4", "f8", "i8", "b1", "c16", "U1", "O"]))
def test_arbitrary_dw_never_crashes(rule, shape, kind):
    dw = np.zeros(shape, dtype=kind)
    try:
        next_w, _ = getattr(optim, rule)(W, dw)
    except (ValueError, TypeError):
        return
    # only a numeric dw of w's shape may be accepted
    assert dw.shape == W.shape and dw.dtype.kind in "fiub"
    assert next_w.shape == W.shape


def test_learning_rate_zero_is_identity():
    for rule in RULES:
        next_w, _ = getattr(optim, rule)(W, DW, {"learning_rate": 0.0})
        np.testing.assert_array_equal(next_w, W)


def test_rmsprop_float32_decay_rate_close_to_one():
    """1 - decay_rate is taken in double: in float32, 1 - 0.99999 keeps 3 digits."""
    w = np.array([0.12573022], np.float32)
    dw = np.array([0.34558418], np.float32)
    next_w, _ = optim.rmsprop(w, dw, {"decay_rate": 0.99999})
    cache = (1 - 0.99999) * np.float64(dw[0]) ** 2
    want = np.float64(w[0]) - 1e-2 * np.float64(dw[0]) / (np.sqrt(cache) + 1e-8)
    assert abs(next_w[0] - want) < 1e-5 * abs(want)


# ----------------------------------------------------------------- NumPy's own rounding
# The course code runs its formulas on the arrays' own dtype with the hyper-parameters
# as Python floats.  Under NumPy 2 (NEP 50) a Python float is a weak scalar: in
# ``(1 - beta2) * g`` the coefficient is formed in double, rounded once to float32 and
# multiplied in float32.  These references are the course formulas evaluated by NumPy
# in the arrays' dtype; the compiled rules must reproduce them to the last few ulps.

def numpy_course_step(rule, w, dw, config):
    """One step of ``rule`` computed by NumPy in w's dtype, the CS231n way."""
    lr = config["learning_rate"]
    if rule == "sgd":
        return w - lr * dw, {}
    if rule == "sgd_momentum":
        v = config["momentum"] * config["velocity"] - lr * dw
        return w + v, {"velocity": v}
    if rule == "sgd_nesterov_momentum":
        v_prev = config["velocity"]
        v = config["momentum"] * v_prev - lr * dw
        return w + v + config["momentum"] * (v - v_prev), {"velocity": v}
    if rule == "rmsprop":
        dr = config["decay_rate"]
        c = dr * config["cache"] + (1 - dr) * dw**2
        return w - lr * dw / (np.sqrt(c) + config["epsilon"]), {"cache": c}
    if rule in COUNTS_STEPS:
        b1, b2 = config["beta1"], config["beta2"]
        t = config["t"] + 1
        if rule == "adamw":     # decoupled weight decay, torch.optim.AdamW's order
            w = w * (1 - lr * config["weight_decay"])
        m = b1 * config["m"] + (1 - b1) * dw
        mt = m / (1 - b1**t)
        v = b2 * config["v"] + (1 - b2) * (dw**2)
        vt = v / (1 - b2**t)
        return w - lr * mt / (np.sqrt(vt) + config["epsilon"]), {"m": m, "v": v, "t": t}
    raise AssertionError(rule)


def _course_state(rule, w):
    zeros = np.zeros_like(w)
    state = {key: zeros.copy() for key in STATE_KEYS[rule]}
    if rule in COUNTS_STEPS:
        state["t"] = 0
    return state


# ulps of tolerance: the reference and the kernels run the same IEEE operations (+, -, *,
# /, sqrt: all correctly rounded) in the same order with the same rounded coefficients,
# and no fused multiply-add, so they agree exactly.
def _assert_ulps(actual, expected, max_ulps=0):
    assert actual.dtype == expected.dtype
    spacing = np.spacing(np.abs(expected).astype(expected.dtype))
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = float(np.max(diff / spacing.astype(np.float64)))
    assert worst <= max_ulps, f"{worst} ulps off"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("defaults", [True, False], ids=["defaults", "custom"])
def test_rule_matches_numpy_rounding(rule, dtype, defaults):
    """One and several steps equal NumPy's float32/float64 evaluation of the formula."""
    rng = np.random.default_rng(14)
    w = rng.standard_normal((37, 29)).astype(dtype)
    hyper = dict(DEFAULTS[rule] if defaults else HYPER[rule])
    config = dict(hyper)
    ref = dict(hyper, **_course_state(rule, w))
    for step in range(6):
        dw = (rng.standard_normal(w.shape) * 10.0 ** rng.integers(-3, 2, w.shape)).astype(dtype)
        next_w, config = getattr(optim, rule)(w, dw, config)
        want_w, state = numpy_course_step(rule, w, dw, ref)
        ref.update(state)
        _assert_ulps(next_w, want_w)
        for key in STATE_KEYS[rule]:
            _assert_ulps(config[key], ref[key])
        w = want_w


def test_adam_float32_second_moment_coefficient():
    """1 - beta2 is formed in double: float32(1 - 0.999), not 1 - float32(0.999)."""
    w = np.ones(4, np.float32)
    dw = np.full(4, 2.0, np.float32)
    _, config = optim.adam(w, dw, {})
    want = np.float32(1 - 0.999) * np.float32(4.0)
    assert config["v"][0] == want
    assert config["m"][0] == np.float32(1 - 0.9) * np.float32(2.0)


@pytest.mark.parametrize("rule", ["rmsprop", "adam"])
def test_epsilon_must_be_positive(rule):
    # epsilon = 0 turns a parameter whose gradient is 0 into 0 / 0 = NaN
    w = np.ones(4)
    with pytest.raises(ValueError, match="epsilon"):
        getattr(optim, rule)(w, np.zeros(4), {"epsilon": 0.0})
    net = Net([3, 2], seed=0)
    with pytest.raises(ValueError, match="epsilon"):
        net.set_optimizer(rule, epsilon=0.0)
