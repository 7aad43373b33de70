"""Bad input must raise ValueError or TypeError that names the argument; good input on odd
shapes and memory layouts must match the NumPy formula.

The compiled kernels skip bounds checks, so the Python wrappers are all that stands between
a wrong shape, dtype or hyper-parameter and an out-of-bounds read or write.  For every
public call, hypothesis generates bad input, and each case must raise ValueError or
TypeError with a non-empty message that names the offending argument. Anything else is a
failure: another exception type (IndexError, KeyError, AttributeError, ZeroDivisionError,
OverflowError, ...), a returned result, a crash or a hang.

The second half feeds *good* input with random shapes, both float dtypes and
non-contiguous, Fortran-ordered and reversed views, and compares with NumPy computed in
float64. This catches silent wrong answers, such as a kernel that trusts a stride it
should not.

Every hypothesis test counts the examples it runs in ``EXAMPLES``; the last test of the
file prints the totals (at 300 examples per test under the 'ci' profile).
Run the crash hunt with ``python -X faulthandler -m pytest tests/test_bad_input.py``.
"""
import functools
import math
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastfc import layer_utils as LU
from fastfc import layers as L
from fastfc import optim as O
from fastfc.gradient_check import rel_error
from fastfc.vis_utils import visualize_grid

# ====================================================================== bookkeeping

#: test name -> number of hypothesis examples it ran (printed by the last test)
EXAMPLES = {}


def counted(test):
    """Count the examples a hypothesis test runs (apply below ``@given``)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        EXAMPLES[test.__name__] = EXAMPLES.get(test.__name__, 0) + 1
        return test(*args, **kwargs)

    return wrapper


def _show(value, limit=160):
    """Short repr of one argument: arrays by dtype, shape and strides, plus values if small."""
    if isinstance(value, np.ndarray):
        body = np.array2string(value, threshold=12, edgeitems=2) if value.size <= 12 else "..."
        return (f"ndarray(shape={value.shape}, dtype={value.dtype}, strides={value.strides}, "
                f"c_contiguous={value.flags.c_contiguous}, {body})")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_show(v, 80)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v, 80) for v in value) + ("," if len(value) == 1 else "") + ")"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _call_text(func, args, kwargs):
    parts = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items()]
    return f"{getattr(func, '__name__', func)}({', '.join(parts)})"


def expect_rejected(func, *args, names=(), **kwargs):
    """Call ``func(*args, **kwargs)``; it must raise ValueError or TypeError.

    The message must be non-empty and, when ``names`` is given, contain at least one of
    them (case-insensitive), i.e. name the bad argument. Fails with the input repr when
    anything else happens: another exception type, or no exception at all.
    """
    try:
        result = func(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if not message.strip():
            pytest.fail(f"{_call_text(func, args, kwargs)} raised {type(exc).__name__} "
                        "with an empty message")
        if names and not any(n.lower() in message.lower() for n in names):
            pytest.fail(f"{_call_text(func, args, kwargs)} raised {type(exc).__name__}: "
                        f"{message!r}, which names none of {names}")
        return exc
    except Exception as exc:  # noqa: BLE001 - any other type is the failure we look for
        pytest.fail(f"{_call_text(func, args, kwargs)} raised {type(exc).__name__}: {exc} "
                    "(expected ValueError or TypeError)", pytrace=False)
    pytest.fail(f"{_call_text(func, args, kwargs)} returned {_show(result)} "
                "instead of raising ValueError or TypeError", pytrace=False)


#: one bad call: label, function, positional and keyword arguments, names the message
#: must mention (any one of them)
Case = namedtuple("Case", "label func args kwargs names")


def case(label, func, *args, names=(), **kwargs):
    return Case(label, func, args, kwargs, tuple(names))


def run_case(c):
    expect_rejected(c.func, *c.args, names=c.names, **c.kwargs)


# ====================================================================== strategies

FLOAT_DTYPES = (np.float32, np.float64)
float_dtypes = st.sampled_from(FLOAT_DTYPES)
seeds = st.integers(0, 2**32 - 1)
small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def randn(shape, dtype=np.float64, seed=0, scale=1.0):
    """Reproducible standard-normal array (values matter little for bad input)."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def other_than(draw, value, low=1, span=4):
    """An integer in [low, value + span] other than ``value`` (constructive, no filtering)."""
    r = draw(st.integers(low, value + span - 1))
    return r + 1 if r >= value else r


def other_shape(draw, shape, min_side=0):
    """A shape (ndim 0..3) different from ``shape``."""
    new = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=min_side, max_side=4))
    return new + (1,) if new == tuple(shape) else new


def empty_shape(draw, shape):
    """``shape`` with one axis set to 0."""
    shape = list(shape)
    shape[draw(st.integers(0, len(shape) - 1))] = 0
    return tuple(shape)


@st.composite
def mismatched_float_dtypes(draw):
    """(dtype_a, dtype_b): float16 or float32 with float64, in either order."""
    small = draw(st.sampled_from([np.float16, np.float32]))
    return (small, np.float64) if draw(st.booleans()) else (np.float64, small)


def other_float_class(draw, dtype):
    """A float dtype that does not mix with ``dtype`` (float32 class vs float64)."""
    if np.dtype(dtype) == np.float64:
        return draw(st.sampled_from([np.float32, np.float16]))
    return np.float64


NON_REAL_KINDS = ("complex64", "complex128", "object", "str", "bytes", "datetime64",
                  "timedelta64", "None", "text", "dict", "ragged")


def make_non_real(kind, shape):
    if kind.startswith("complex"):
        return np.full(shape, 0.5 + 0.25j, dtype=kind)
    if kind == "object":
        return np.full(shape, 0.5, dtype=object)
    if kind == "str":
        return np.full(shape, "0.5")
    if kind == "bytes":
        return np.full(shape, b"0.5")
    if kind in ("datetime64", "timedelta64"):
        return np.zeros(shape, dtype=f"{kind}[s]")
    return {"None": None, "text": "not an array", "dict": {"x": 0.5},
            "ragged": [[1.0, 2.0], [3.0]]}[kind]


def non_real(shape, allow_none=True):
    """Array-likes that are not real numeric arrays (complex, object, strings, None, ...)."""
    kinds = [k for k in NON_REAL_KINDS if allow_none or k != "None"]
    return st.sampled_from(kinds).map(lambda k: make_non_real(k, tuple(shape)))


NOT_A_NUMBER = st.sampled_from([
    None, "0.1", "abc", b"0.5", [0.1], (0.5,), {"v": 0.1}, 1j, 0.5 + 0j,
    np.complex128(0.5), True, False, np.bool_(True), np.array([0.1, 0.2]), object(),
])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf]).flatmap(
    lambda v: st.sampled_from([v, np.float64(v), np.float32(v), np.array(v)]))


def _finite(**kw):
    return st.floats(allow_nan=False, allow_infinity=False, **kw)


def out_of_range(low=None, high=None, low_open=False, high_open=False):
    """Scalars a check ``low <(=) value <(=) high, finite, real`` must refuse.

    Numbers are kept within float range (huge Python ints have their own test).
    """
    parts = [NOT_A_NUMBER, NON_FINITE]
    if low is not None:
        below = _finite(max_value=low, exclude_max=not low_open)
        max_int = int(low) if (low_open and float(low).is_integer()) else math.ceil(low) - 1
        parts += [below, below.map(np.float64), st.integers(-2**62, max_int)]
    if high is not None:
        above = _finite(min_value=high, exclude_min=not high_open)
        min_int = int(high) if (high_open and float(high).is_integer()) else math.floor(high) + 1
        parts += [above, above.map(np.float64), st.integers(min_int, 2**62)]
    return st.one_of(*parts)


BAD_MODES = st.one_of(
    st.text(max_size=8).map(lambda s: s + "!" if s in ("train", "test") else s),
    st.sampled_from([None, 1, 0.5, "Train", "TEST", " train", "test ", b"train", ["train"],
                     ("test",)]),
)

NOT_A_DICT = st.sampled_from([None, [("mode", "train"), ("p", 0.5)], "train", 0.5,
                              ("train", 0.5), {"train"}, np.array([0.5])])

NONNEG = dict(low=0.0)
UNIT = dict(low=0.0, high=1.0)
UNIT_OPEN = dict(low=0.0, high=1.0, high_open=True)

#: rule -> (function, hyper-parameters and their ranges, state-array names) from SPEC.md
RULES = {
    "sgd": (O.sgd, {"learning_rate": NONNEG, "weight_decay": NONNEG}, ()),
    "sgd_momentum": (O.sgd_momentum,
                     {"learning_rate": NONNEG, "momentum": UNIT, "weight_decay": NONNEG},
                     ("velocity",)),
    "sgd_nesterov_momentum": (O.sgd_nesterov_momentum,
                              {"learning_rate": NONNEG, "momentum": UNIT,
                               "weight_decay": NONNEG},
                              ("velocity",)),
    "rmsprop": (O.rmsprop,
                {"learning_rate": NONNEG, "decay_rate": UNIT, "epsilon": NONNEG,
                 "weight_decay": NONNEG},
                ("cache", "a")),
    "adam": (O.adam,
             {"learning_rate": NONNEG, "beta1": UNIT_OPEN, "beta2": UNIT_OPEN,
              "epsilon": NONNEG, "weight_decay": NONNEG},
             ("m", "v", "a")),
}
ALLOWED_KEYS = {name: set(hyper) | set(states) | ({"t"} if name == "adam" else set())
                for name, (_, hyper, states) in RULES.items()}
rule_names = st.sampled_from(sorted(RULES))


def _act_pairs(alpha):
    return {
        "relu": (L.relu_forward, L.relu_backward),
        "leaky_relu": (lambda x: L.leaky_relu_forward(x, alpha), L.leaky_relu_backward),
        "sigmoid": (L.sigmoid_forward, L.sigmoid_backward),
        "tanh": (L.tanh_forward, L.tanh_backward),
        "swish": (L.swish_forward, L.swish_backward),
    }


ACT_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh", "swish")
TUPLE_CACHE_ACTS = ("leaky_relu", "swish")


# ====================================================================== bad input: affine

@st.composite
def affine_forward_bad_shapes(draw):
    dtype = draw(float_dtypes)
    seed = draw(seeds)
    n = draw(st.integers(1, 4))
    dims = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    d, m = math.prod(dims), draw(st.integers(1, 4))
    xs, ws, bs = (n, *dims), (d, m), (m,)
    kind = draw(st.sampled_from(["w_rows", "w_ndim", "b_len", "b_ndim", "x_ndim",
                                 "empty_x", "empty_w"]))
    names = {"w_rows": "w", "w_ndim": "w", "b_len": "b", "b_ndim": "b", "x_ndim": "x",
             "empty_x": "x", "empty_w": "w"}[kind]
    if kind == "w_rows":
        ws = (other_than(draw, d), m)
    elif kind == "w_ndim":
        ws = draw(st.sampled_from([(d,), (d * m,), (d, m, 1), (1, d, m), ()]))
    elif kind == "b_len":
        bs = (other_than(draw, m, low=0),)
    elif kind == "b_ndim":
        bs = draw(st.sampled_from([(1, m), (m, 1), (), (m, m)]))
    elif kind == "x_ndim":
        xs = draw(st.sampled_from([(n * d,), (d,), ()]))
    elif kind == "empty_x":
        xs = empty_shape(draw, xs)
    else:
        ws, bs = draw(st.sampled_from([((d, 0), (0,)), ((0, m), (m,))]))
    x, w, b = (randn(s, dtype, seed + i) for i, s in enumerate((xs, ws, bs)))
    return case(kind, L.affine_forward, x, w, b, names=(names,))


@given(affine_forward_bad_shapes())
@counted
def test_affine_forward_bad_shapes(c):
    run_case(c)


@st.composite
def affine_forward_bad_dtypes(draw):
    n, d, m = (draw(st.integers(1, 4)) for _ in range(3))
    shapes = {"x": (n, d), "w": (d, m), "b": (m,)}
    which = draw(st.sampled_from(["x", "w", "b"]))
    seed = draw(seeds)
    # (mixed float dtypes promote as in NumPy: not bad input; see test_compat.py)
    dtype = draw(float_dtypes)
    args = {k: randn(s, dtype, seed) for k, s in shapes.items()}
    args[which] = draw(non_real(shapes[which]))
    label = "non_real"
    return case(label, L.affine_forward, args["x"], args["w"], args["b"], names=(which,))


@given(affine_forward_bad_dtypes())
@counted
def test_affine_forward_bad_dtypes(c):
    run_case(c)


@st.composite
def affine_backward_bad(draw):
    dtype = draw(float_dtypes)
    seed = draw(seeds)
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dims = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    x = randn((n, *dims), dtype, seed)
    w = randn((math.prod(dims), m), dtype, seed + 1)
    _, cache = L.affine_forward(x, w, randn(m, dtype, seed + 2))
    kind = draw(st.sampled_from(["dout_shape", "dout_ndim", "dout_empty", "dout_non_real",
                                 "cache"]))
    if kind == "cache":
        bad_cache = draw(st.sampled_from([None, 5, "cache", cache[:2], cache + (cache[2],),
                                          {"x": cache[0]}]))
        return case(kind, L.affine_backward, randn((n, m), dtype, seed), bad_cache,
                    names=("cache",))
    if kind == "dout_shape":
        shape = draw(st.sampled_from([(other_than(draw, n), m), (n, other_than(draw, m))]))
        dout = randn(shape, dtype, seed)
    elif kind == "dout_ndim":
        dout = randn(draw(st.sampled_from([(n * m,), (n, m, 1), (1, n, m), ()])), dtype, seed)
    elif kind == "dout_empty":
        dout = randn(empty_shape(draw, (n, m)), dtype, seed)
    else:
        dout = draw(non_real((n, m)))
    return case(kind, L.affine_backward, dout, cache, names=("dout",))


@given(affine_backward_bad())
@counted
def test_affine_backward_bad_dout_or_cache(c):
    run_case(c)


# ====================================================================== bad input: activations

@st.composite
def activation_forward_bad(draw):
    name = draw(st.sampled_from(ACT_NAMES + ("dropout_test", "dropout_train")))
    shape = draw(small_shapes)
    if name == "leaky_relu" and draw(st.booleans()):
        alpha = draw(out_of_range(low=0.0))
        # alpha may itself be a dict {'alpha': value} (other keys are ignored by design)
        if isinstance(alpha, dict) or draw(st.booleans()):
            alpha = {"alpha": alpha}
        return case("alpha", L.leaky_relu_forward, randn(shape, seed=draw(seeds)), alpha,
                    names=("alpha",))
    if draw(st.booleans()):
        x = draw(non_real(shape))
    else:
        x = randn(empty_shape(draw, shape), draw(float_dtypes))
    if name.startswith("dropout"):
        param = {"mode": name[len("dropout_"):], "p": 0.5}
        return case(name, L.dropout_forward, x, param, names=("x",))
    return case(name, _act_pairs(0.01)[name][0], x, names=("x",))


@given(activation_forward_bad())
@counted
def test_activation_and_dropout_forward_bad_x(c):
    run_case(c)


@st.composite
def activation_backward_bad(draw):
    name = draw(st.sampled_from(ACT_NAMES))
    dtype = draw(float_dtypes)
    shape = draw(small_shapes)
    seed = draw(seeds)
    forward, backward = _act_pairs(draw(st.floats(0, 1)))[name]
    _, cache = forward(randn(shape, dtype, seed))
    kind = draw(st.sampled_from(["dout_shape", "dout_non_real", "dout_empty", "cache"]))
    if kind == "cache":
        if name in TUPLE_CACHE_ACTS:
            bad = draw(st.sampled_from([None, "cache", cache[:1], cache[0], cache + cache]))
        else:
            bad = draw(non_real(shape))
        return case(kind, backward, randn(shape, dtype, seed), bad, names=("cache",))
    if kind == "dout_shape":
        dout = randn(other_shape(draw, shape, min_side=1), dtype, seed)
    elif kind == "dout_non_real":
        dout = draw(non_real(shape))
    else:
        dout = randn(empty_shape(draw, shape), dtype, seed)
    return case(f"{name}:{kind}", backward, dout, cache, names=("dout",))


@given(activation_backward_bad())
@counted
def test_activation_backward_bad_dout_or_cache(c):
    run_case(c)


# ====================================================================== bad input: losses

LOSSES = {"softmax_loss": L.softmax_loss, "svm_loss": L.svm_loss}


@st.composite
def loss_bad_scores(draw):
    name = draw(st.sampled_from(["softmax_loss", "svm_loss", "softmax"]))
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dtype = draw(float_dtypes)
    kind = draw(st.sampled_from(["1d", "3d", "0d", "empty", "non_real"]))
    if kind == "non_real":
        x = draw(non_real((n, c)))
    else:
        shape = {"1d": (c,), "3d": draw(st.sampled_from([(n, c, 1), (1, n, c), (n, 1, c)])),
                 "0d": (), "empty": draw(st.sampled_from([(0, c), (n, 0), (0, 0)]))}[kind]
        x = randn(shape, dtype, draw(seeds))
    if name == "softmax":
        return case(kind, L.softmax, x, names=("x",))
    return case(kind, LOSSES[name], x, np.arange(n) % c, names=("x",))


@given(loss_bad_scores())
@counted
def test_losses_bad_scores(c):
    run_case(c)


@st.composite
def loss_bad_labels(draw):
    loss = draw(st.sampled_from(sorted(LOSSES)))
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x = randn((n, c), draw(float_dtypes), draw(seeds))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    i = draw(st.integers(0, n - 1))
    kind = draw(st.sampled_from(["too_big", "negative", "float", "bool", "length", "ndim",
                                 "non_real"]))
    if kind == "too_big":
        big = c + draw(st.one_of(st.integers(0, 100), st.integers(0, 2**31 - 100)))
        small_ok = [np.int8, np.uint8, np.int16] if big <= 127 else []
        y = y.astype(draw(st.sampled_from(small_ok + [np.int32, np.int64, np.uint32,
                                                      np.uint64, np.intp])))
        y[i] = big
    elif kind == "negative":
        neg = -draw(st.one_of(st.integers(1, 128), st.integers(1, 2**31)))
        y = y.astype(np.int8 if neg >= -128 else draw(st.sampled_from([np.int32, np.int64])))
        y[i] = neg
    elif kind == "float":
        y = y.astype(draw(st.sampled_from([np.float16, np.float32, np.float64])))
    elif kind == "bool":
        y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    elif kind == "length":
        y = np.arange(other_than(draw, n, low=0)) % c
    elif kind == "ndim":
        y = draw(st.sampled_from([y[:, None], y[None, :], np.stack([y, y], axis=1)]))
    else:
        y = draw(non_real((n,)))
    return case(f"{loss}:{kind}", LOSSES[loss], x, y, names=("y",))


@given(loss_bad_labels())
@counted
def test_losses_bad_labels(c):
    run_case(c)


# ====================================================================== bad input: dropout

@st.composite
def dropout_bad_param(draw):
    x = randn(draw(small_shapes), draw(float_dtypes), draw(seeds))
    param = {"mode": draw(st.sampled_from(["train", "test"])),
             "p": draw(st.floats(0, 1, exclude_min=True))}
    kind = draw(st.sampled_from(["p", "no_p", "mode", "no_mode", "not_dict"]))
    if kind == "p":
        param["p"] = draw(out_of_range(low=0.0, high=1.0, low_open=True))
        names = ("'p'",)
    elif kind == "no_p":
        del param["p"]
        names = ("'p'",)
    elif kind == "mode":
        param["mode"] = draw(BAD_MODES)
        names = ("'mode'",)
    elif kind == "no_mode":
        del param["mode"]
        names = ("'mode'",)
    else:
        param = draw(NOT_A_DICT)
        names = ("dropout_param",)
    return case(kind, L.dropout_forward, x, param, names=names)


@given(dropout_bad_param())
@counted
def test_dropout_forward_bad_param(c):
    run_case(c)


BAD_SEEDS = st.one_of(
    st.integers(-2**63, -1), st.integers(2**32, 2**64),
    _finite(min_value=0.01, max_value=0.99).flatmap(
        lambda f: st.integers(0, 10**6).map(lambda k: k + f)),
    st.sampled_from([math.nan, math.inf, "seed", "12", b"1", 1j]),
)


@given(x=small_shapes.map(randn), seed=BAD_SEEDS, mode=st.sampled_from(["train", "test"]))
@counted
def test_dropout_forward_bad_seed(x, seed, mode):
    expect_rejected(L.dropout_forward, x, {"mode": mode, "p": 0.5, "seed": seed},
                    names=("seed",))


@st.composite
def dropout_backward_bad(draw):
    dtype = draw(float_dtypes)
    shape = draw(small_shapes)
    _, cache = L.dropout_forward(randn(shape, dtype, draw(seeds)),
                                 {"mode": "train", "p": 0.5, "seed": 0})
    kind = draw(st.sampled_from(["dout_shape", "dout_non_real", "dout_empty", "cache",
                                 "cache_p", "cache_mode"]))
    dout = randn(shape, dtype, 1)
    if kind == "dout_shape":
        # 0-d dout is left out: it broadcasts against a (1,) mask, as in the reference
        bad_shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        bad_shape = bad_shape + (1,) if bad_shape == shape else bad_shape
        return case(kind, L.dropout_backward, randn(bad_shape, dtype), cache, names=("dout",))
    if kind == "dout_non_real":
        return case(kind, L.dropout_backward, draw(non_real(shape)), cache, names=("dout",))
    if kind == "dout_empty":
        return case(kind, L.dropout_backward, randn(empty_shape(draw, shape), dtype), cache,
                    names=("dout",))
    if kind == "cache":
        bad = draw(st.sampled_from([None, "cache", cache[:1], cache[1], cache + cache]))
        return case(kind, L.dropout_backward, dout, bad, names=("cache",))
    param = dict(cache[0])
    if kind == "cache_p":
        param["p"] = draw(out_of_range(low=0.0, high=1.0, low_open=True))
        names = ("'p'",)
    else:
        param["mode"] = draw(BAD_MODES)
        names = ("'mode'",)
    if draw(st.booleans()):
        return case(kind, L.dropout_backward, dout, (draw(NOT_A_DICT), cache[1]),
                    names=("dropout_param",))
    return case(kind, L.dropout_backward, dout, (param, cache[1]), names=names)


@given(dropout_backward_bad())
@counted
def test_dropout_backward_bad(c):
    run_case(c)


# ====================================================================== bad input: normalisation

def _bad_vector_shape(draw, d):
    return draw(st.sampled_from([(other_than(draw, d, low=0),), (d, 1), (1, d), (), (d, d)]))


@st.composite
def norm_forward_bad(draw, kind_of_norm):
    dtype = draw(float_dtypes)
    seed = draw(seeds)
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    arrays = {"x": randn((n, d), dtype, seed), "gamma": randn(d, dtype, seed + 1),
              "beta": randn(d, dtype, seed + 2)}
    kinds = ["gamma_shape", "beta_shape", "x_ndim", "x_empty", "eps", "non_real", "not_dict"]
    if kind_of_norm == "batchnorm":
        param = {"mode": draw(st.sampled_from(["train", "test"]))}
        kinds += ["mode", "no_mode", "momentum", "running_mean", "running_var"]
        func, param_name = L.batchnorm_forward, "bn_param"
    else:
        param = draw(st.sampled_from([{}, {"mode": "train"}, {"eps": 1e-3}]))
        func, param_name = L.layernorm_forward, "ln_param"
    kind = draw(st.sampled_from(kinds))
    names = ()
    if kind in ("gamma_shape", "beta_shape"):
        which = kind[:-len("_shape")]
        arrays[which] = randn(_bad_vector_shape(draw, d), dtype, seed)
        names = (which,)
    elif kind == "x_ndim":
        arrays["x"] = randn(draw(st.sampled_from([(d,), (n, d, 1), (1, n, d), ()])), dtype)
        names = ("x",)
    elif kind == "x_empty":
        arrays["x"] = randn(draw(st.sampled_from([(0, d), (n, 0)])), dtype)
        names = ("x",)
    elif kind == "eps":
        param["eps"] = draw(out_of_range(low=0.0))
        names = ("eps",)
    elif kind == "momentum":
        param["momentum"] = draw(out_of_range(low=0.0, high=1.0))
        names = ("momentum",)
    elif kind == "mode":
        param["mode"] = draw(BAD_MODES)
        names = ("mode",)
    elif kind == "no_mode":
        del param["mode"]
        names = ("mode",)
    elif kind in ("running_mean", "running_var"):
        if draw(st.booleans()):
            param[kind] = randn(_bad_vector_shape(draw, d), dtype)
        else:
            param[kind] = draw(non_real((d,), allow_none=False))
        names = (kind,)
    elif kind == "non_real":
        which = draw(st.sampled_from(sorted(arrays)))
        arrays[which] = draw(non_real(arrays[which].shape))
        names = (which,)
    else:
        param = draw(NOT_A_DICT)
        names = (param_name,)
    return case(kind, func, arrays["x"], arrays["gamma"], arrays["beta"], param, names=names)


@given(norm_forward_bad("batchnorm"))
@counted
def test_batchnorm_forward_bad(c):
    run_case(c)


@given(norm_forward_bad("layernorm"))
@counted
def test_layernorm_forward_bad(c):
    run_case(c)


NORM_BACKWARD = {"batchnorm_backward": ("batchnorm", L.batchnorm_backward),
                 "batchnorm_backward_alt": ("batchnorm", L.batchnorm_backward_alt),
                 "layernorm_backward": ("layernorm", L.layernorm_backward)}


def _norm_forward(kind, x, gamma, beta, mode="train"):
    if kind == "batchnorm":
        return L.batchnorm_forward(x, gamma, beta, {"mode": mode})
    return L.layernorm_forward(x, gamma, beta, {})


@st.composite
def norm_backward_bad(draw):
    name = draw(st.sampled_from(sorted(NORM_BACKWARD)))
    kind_of_norm, backward = NORM_BACKWARD[name]
    dtype = draw(float_dtypes)
    seed = draw(seeds)
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x, gamma, beta = randn((n, d), dtype, seed), randn(d, dtype, seed + 1), randn(d, dtype)
    _, cache = _norm_forward(kind_of_norm, x, gamma, beta,
                             draw(st.sampled_from(["train", "test"])))
    kind = draw(st.sampled_from(["dout_shape", "dout_non_real", "dout_empty", "cache"]))
    dout = randn((n, d), dtype, seed + 3)
    if kind == "cache":
        other = "layernorm" if kind_of_norm == "batchnorm" else "batchnorm"
        bad = draw(st.sampled_from([None, "cache", cache[:4], cache + cache, list(cache)[0],
                                    _norm_forward(other, x, gamma, beta)[1]]))
        return case(kind, backward, dout, bad, names=("cache",))
    if kind == "dout_shape":
        dout = randn(other_shape(draw, (n, d), 1), dtype)
    elif kind == "dout_non_real":
        dout = draw(non_real((n, d)))
    else:
        dout = randn(empty_shape(draw, (n, d)), dtype)
    return case(f"{name}:{kind}", backward, dout, cache, names=("dout",))


@given(norm_backward_bad())
@counted
def test_norm_backward_bad(c):
    run_case(c)


# ====================================================================== bad input: sandwiches

BAD_NORMALIZATION = st.one_of(
    st.text(max_size=12).map(lambda s: s + "?" if s in ("batchnorm", "layernorm") else s),
    st.sampled_from([None, 0, 1.5, "BatchNorm", "batch_norm", "layer_norm", "bn", "ln",
                     b"batchnorm", ["batchnorm"], ("layernorm",), {"batchnorm": 1}]),
)


def _sandwich_inputs(dtype, seed, n=3, d=4, m=5):
    return (randn((n, d), dtype, seed), randn((d, m), dtype, seed + 1),
            randn(m, dtype, seed + 2), randn(m, dtype, seed + 3), randn(m, dtype, seed + 4))


@given(normalization=BAD_NORMALIZATION, direction=st.sampled_from(["forward", "backward"]),
       good=st.sampled_from(["batchnorm", "layernorm"]), dtype=float_dtypes, seed=seeds)
@counted
def test_sandwich_bad_normalization(normalization, direction, good, dtype, seed):
    x, w, b, gamma, beta = _sandwich_inputs(dtype, seed)
    if direction == "forward":
        expect_rejected(LU.affine_norm_relu_forward, x, w, b, gamma, beta, {"mode": "train"},
                        normalization, names=("normalization",))
    else:
        out, cache = LU.affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"}, good)
        expect_rejected(LU.affine_norm_relu_backward, np.ones_like(out),
                        cache[:3] + (normalization,), names=("normalization",))


SANDWICHES = {
    "affine_relu": lambda x, w, b, g, be, p: LU.affine_relu_forward(x, w, b),
    "affine_bn_relu": LU.affine_bn_relu_forward,
    "affine_ln_relu": LU.affine_ln_relu_forward,
    "affine_norm_relu(batchnorm)": lambda *a: LU.affine_norm_relu_forward(*a, "batchnorm"),
    "affine_norm_relu(layernorm)": lambda *a: LU.affine_norm_relu_forward(*a, "layernorm"),
}
SANDWICH_BACKWARD = {"affine_relu": LU.affine_relu_backward}


@st.composite
def sandwich_bad_arrays(draw):
    name = draw(st.sampled_from(sorted(SANDWICHES)))
    forward = SANDWICHES[name]
    dtype = draw(float_dtypes)
    n, d, m = (draw(st.integers(1, 4)) for _ in range(3))
    x, w, b, gamma, beta = _sandwich_inputs(dtype, draw(seeds), n, d, m)
    param = {"mode": "train"}
    kinds = ["w_rows", "b_len", "dout_shape", "dout_non_real"]
    if name != "affine_relu":
        kinds += ["gamma_len", "beta_len", "param"]
    kind = draw(st.sampled_from(kinds))
    if kind.startswith("dout"):
        _, cache = forward(x, w, b, gamma, beta, param)
        backward = SANDWICH_BACKWARD.get(name, LU.affine_norm_relu_backward)
        dout = (randn(other_shape(draw, (n, m), 1), dtype) if kind == "dout_shape"
                else draw(non_real((n, m))))
        return case(f"{name}:{kind}", backward, dout, cache, names=("dout",))
    if kind == "w_rows":
        w, names = randn((other_than(draw, d), m), dtype), ("w",)
    elif kind == "b_len":
        b, names = randn(other_than(draw, m, low=0), dtype), ("b",)
    elif kind == "gamma_len":
        gamma, names = randn(other_than(draw, m, low=0), dtype), ("gamma",)
    elif kind == "beta_len":
        beta, names = randn(other_than(draw, m, low=0), dtype), ("beta",)
    else:
        param, names = draw(NOT_A_DICT), ("bn_param", "ln_param")
    return case(f"{name}:{kind}", forward, x, w, b, gamma, beta, param, names=names)


@given(sandwich_bad_arrays())
@counted
def test_sandwich_bad_arrays(c):
    run_case(c)


# ====================================================================== bad input: optim

def _w_dw(draw):
    dtype = draw(float_dtypes)
    shape = draw(small_shapes)
    seed = draw(seeds)
    return randn(shape, dtype, seed), randn(shape, dtype, seed + 1)


@st.composite
def optim_bad_hyper(draw):
    rule = draw(rule_names)
    func, hyper, _ = RULES[rule]
    key = draw(st.sampled_from(sorted(hyper)))
    w, dw = _w_dw(draw)
    config = {key: draw(out_of_range(**hyper[key]))}
    return case(f"{rule}:{key}", func, w, dw, config, names=(key,))


@given(optim_bad_hyper())
@counted
def test_optim_bad_hyperparameter(c):
    run_case(c)


@st.composite
def optim_bad_config(draw):
    # Config keys a rule does not use are ignored, as in the course code (issue 14
    # item 7, tested in test_compat.py); a config that is not a dict is still refused.
    rule = draw(rule_names)
    func = RULES[rule][0]
    w, dw = _w_dw(draw)
    return case(f"{rule}:not_dict", func, w, dw, draw(NOT_A_DICT.filter(
        lambda v: v is not None)), names=("config",))


@given(optim_bad_config())
@counted
def test_optim_unknown_key_or_non_dict_config(c):
    run_case(c)


@st.composite
def optim_bad_state(draw):
    rule = draw(st.sampled_from([r for r in sorted(RULES) if RULES[r][2]]))
    func, _, states = RULES[rule]
    key = draw(st.sampled_from(states))
    w, dw = _w_dw(draw)
    if draw(st.booleans()):
        state = randn(other_shape(draw, w.shape), w.dtype)
    else:
        state = draw(non_real(w.shape, allow_none=False))
    return case(f"{rule}:{key}", func, w, dw, {key: state}, names=(f"'{key}'",))


@given(optim_bad_state())
@counted
def test_optim_bad_state_array(c):
    run_case(c)


@st.composite
def optim_bad_w_dw(draw):
    rule = draw(rule_names)
    func = RULES[rule][0]
    w, dw = _w_dw(draw)
    config = draw(st.sampled_from([None, {}]))
    kind = draw(st.sampled_from(["dw_shape", "w_non_real", "dw_non_real", "empty"]))
    if kind == "dw_shape":
        dw, names = randn(other_shape(draw, w.shape), w.dtype), ("dw",)
    elif kind == "w_non_real":
        w, names = draw(non_real(w.shape)), ("w",)
    elif kind == "dw_non_real":
        dw, names = draw(non_real(w.shape)), ("dw",)
    else:
        shape = empty_shape(draw, w.shape)
        w, dw, names = randn(shape, w.dtype), randn(shape, w.dtype), ("w",)
    return case(f"{rule}:{kind}", func, w, dw, config, names=names)


@given(optim_bad_w_dw())
@counted
def test_optim_bad_w_or_dw(c):
    run_case(c)


BAD_T = st.one_of(
    st.integers(-2**62, -1),
    _finite(min_value=0.01, max_value=0.99).flatmap(
        lambda f: st.integers(-10**6, 10**6).map(lambda k: k + f)),
    NON_FINITE, NOT_A_NUMBER,
)


@given(t=BAD_T, wdw=small_shapes.map(lambda s: (randn(s), randn(s, seed=1))))
@counted
def test_adam_bad_t(t, wdw):
    expect_rejected(O.adam, wdw[0], wdw[1], {"t": t}, names=("'t'",))


# ====================================================================== bad input: helpers

@st.composite
def visualize_grid_bad(draw):
    kind = draw(st.sampled_from(["ndim", "no_images", "padding", "ubound", "non_real"]))
    xs = randn(draw(hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=3)),
               seed=draw(seeds))
    kwargs, names = {}, ("Xs",)
    if kind == "ndim":
        xs = randn(draw(st.one_of(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
                                  hnp.array_shapes(min_dims=5, max_dims=5, max_side=2))))
    elif kind == "no_images":
        xs = np.zeros((0,) + xs.shape[1:])
    elif kind == "padding":
        kwargs["padding"] = draw(st.one_of(
            st.integers(-2**62, -1), NON_FINITE, NOT_A_NUMBER,
            _finite(min_value=0.01, max_value=0.99).flatmap(
                lambda f: st.integers(0, 20).map(lambda k: k + f))))
        names = ("padding",)
    elif kind == "ubound":
        kwargs["ubound"] = draw(st.one_of(NON_FINITE, NOT_A_NUMBER))
        names = ("ubound",)
    else:
        xs = draw(non_real(xs.shape))
    return case(kind, visualize_grid, xs, names=names, **kwargs)


@given(visualize_grid_bad())
@counted
def test_visualize_grid_bad(c):
    run_case(c)


@given(shape=hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=3),
       axis=st.integers(1, 3))
@counted
def test_visualize_grid_empty_images(shape, axis):
    """N >= 1 images of height, width or channels 0: empty input, must name Xs."""
    shape = list(shape)
    shape[axis] = 0
    expect_rejected(visualize_grid, np.zeros(shape), names=("Xs",))


@st.composite
def rel_error_unusable(draw):
    kind = draw(st.sampled_from(["shapes", "empty", "strings", "dict"]))
    if kind == "shapes":
        a, b = draw(st.integers(2, 6)), draw(st.integers(2, 6))
        b = b + 1 if b == a else b
        tail = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
        x, y = randn((a,) + tail), randn((b,) + tail)
    elif kind == "empty":
        x = y = np.zeros(draw(st.sampled_from([(0,), (0, 3), (2, 0)])))
    elif kind == "strings":
        x, y = np.full(3, "abc"), np.ones(3)
    else:
        x, y = {"a": 1.0}, np.ones(1)
    if draw(st.booleans()):
        x, y = y, x
    return case(kind, rel_error, x, y)


@given(rel_error_unusable())
@counted
def test_rel_error_rejects_unusable_input(c):
    run_case(c)


@given(shape=small_shapes, seed=seeds, imag=_finite(min_value=0.5, max_value=4),
       kind=st.sampled_from(["complex_x", "complex_y", "none_x", "none_y"]))
@counted
def test_rel_error_non_real_input(shape, seed, imag, kind):
    """rel_error must refuse None; complex input must be refused or handled like the
    reference (``np.abs`` of the complex difference), never silently made real."""
    x, y = randn(shape, seed=seed), randn(shape, seed=seed + 1)
    if kind.startswith("none"):
        args = (None, y) if kind == "none_x" else (x, None)
        expect_rejected(rel_error, *args)
        return
    if kind == "complex_x":
        x = x + 1j * imag
    else:
        y = y + 1j * imag
    try:
        got = rel_error(x, y)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    want = np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))
    assert np.isclose(got, want, rtol=1e-12), (
        f"rel_error on complex input returned {got!r}; the reference formula gives {want!r}")


# ====================================================================== bad input: huge ints

HUGE_INT = st.one_of(st.integers(2**1024, 2**1100), st.integers(-2**1100, -2**1024))
HUGE_T = st.one_of(st.integers(2**63 - 1, 2**70), st.integers(2**1024, 2**1030),
                   _finite(min_value=2.0**63, max_value=1e300))
_V = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
_G = np.ones(3)


def _huge_cases():
    cases = [
        ("dropout p", lambda v: L.dropout_forward(_V, {"mode": "train", "p": v}), ("'p'",)),
        ("leaky_relu alpha", lambda v: L.leaky_relu_forward(_V, v), ("alpha",)),
        ("batchnorm eps", lambda v: L.batchnorm_forward(_V, _G, _G, {"mode": "train",
                                                                     "eps": v}), ("eps",)),
        ("batchnorm momentum", lambda v: L.batchnorm_forward(
            _V, _G, _G, {"mode": "train", "momentum": v}), ("momentum",)),
        ("layernorm eps", lambda v: L.layernorm_forward(_V, _G, _G, {"eps": v}), ("eps",)),
        ("visualize_grid ubound", lambda v: visualize_grid(np.ones((2, 2, 2, 1)), ubound=v),
         ("ubound",)),
    ]
    for rule, (func, hyper, _) in sorted(RULES.items()):
        for key in sorted(hyper):
            cases.append((f"{rule} {key}",
                          functools.partial(lambda f, k, v: f(_V, _V, {k: v}), func, key),
                          (key,)))
    return [(label, call, names, HUGE_INT) for label, call, names in cases] + [
        ("adam t", lambda v: O.adam(_V, _V, {"t": v}), ("'t'",), HUGE_T)]


@st.composite
def huge_number_case(draw):
    label, call, names, values = draw(st.sampled_from(_huge_cases()))
    value = draw(values)
    call.__name__ = label
    return case(label, call, value, names=names)


@given(huge_number_case())
@counted
def test_scalars_beyond_float_or_c_long_range(c):
    """Hyper-parameters that are integers too large for a double (or a C long for adam's
    step count t) are bad input too: ValueError or TypeError, never OverflowError."""
    run_case(c)


# ====================================================================== good input: helpers

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}
LAYOUTS = ("C", "F", "strided", "reversed")
layouts = st.sampled_from(LAYOUTS)


def with_layout(a, layout):
    """The values of ``a`` in another memory layout (views for 'strided' and 'reversed')."""
    a = np.asarray(a)
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        fill = np.nan if a.dtype.kind == "f" else 0
        big = np.full(tuple(2 * s + 1 for s in a.shape), fill, dtype=a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    flip = tuple(slice(None, None, -1) for _ in a.shape)
    return a[flip].copy()[flip]


def assert_close(actual, expected, dtype, scale=0.0, what="result"):
    """|actual - expected| <= tol(dtype) * (|expected| + scale), elementwise.

    ``expected`` is computed in float64; ``scale`` is the size of the terms that were
    summed (so that cancellation does not demand more than the dtype can give).
    """
    tol = TOL[np.dtype(dtype)]
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}")
    a = actual.astype(np.float64)
    same = (a == expected) | (np.isnan(a) & np.isnan(expected))
    bound = tol * (np.abs(expected) + scale) + np.finfo(dtype).tiny
    ok = same | (np.abs(a - expected) <= bound)
    if not ok.all():
        i = tuple(int(k) for k in np.argwhere(~ok)[0])
        limit = np.broadcast_to(bound, a.shape)[i]
        raise AssertionError(
            f"{what}: {int((~ok).sum())} of {a.size} elements differ from NumPy; first at "
            f"{i}: got {a[i]!r}, expected {expected[i]!r} (tolerance {limit:.3g})")


def assert_unchanged(originals, arrays, what="input"):
    for k, (before, after) in enumerate(zip(originals, arrays)):
        np.testing.assert_array_equal(after, before, err_msg=f"{what} #{k} was modified")


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ====================================================================== good input: properties

@given(dtype=float_dtypes, n=st.integers(1, 5),
       dims=st.lists(st.integers(1, 4), min_size=1, max_size=3), m=st.integers(1, 5),
       lay=st.tuples(layouts, layouts, layouts, layouts), seed=seeds)
@counted
def test_affine_forward_backward_match_numpy(dtype, n, dims, m, lay, seed):
    d = math.prod(dims)
    x = with_layout(randn((n, *dims), dtype, seed), lay[0])
    w = with_layout(randn((d, m), dtype, seed + 1), lay[1])
    b = with_layout(randn(m, dtype, seed + 2), lay[2])
    dout = with_layout(randn((n, m), dtype, seed + 3), lay[3])
    originals = [a.copy() for a in (x, w, b, dout)]

    out, cache = L.affine_forward(x, w, b)
    x2, w2 = f64(x).reshape(n, d), f64(w)
    assert out.dtype == dtype
    assert_close(out, x2 @ w2 + f64(b), dtype, np.abs(x2) @ np.abs(w2) + np.abs(f64(b)), "out")

    dx, dw, db = L.affine_backward(dout, cache)
    g = f64(dout)
    assert dx.shape == x.shape and dx.dtype == dtype and dw.dtype == dtype
    assert_close(dx, (g @ w2.T).reshape(x.shape), dtype,
                 (np.abs(g) @ np.abs(w2.T)).reshape(x.shape), "dx")
    assert_close(dw, x2.T @ g, dtype, np.abs(x2.T) @ np.abs(g), "dw")
    assert_close(db, g.sum(0), dtype, np.abs(g).sum(0), "db")
    assert_unchanged(originals, (x, w, b, dout))


def _act_reference(name, x, alpha, dout):
    x, dout = f64(x), f64(dout)
    s = 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0), dout * (x > 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x), dout * np.where(x > 0, 1.0, alpha)
    if name == "sigmoid":
        return s, dout * s * (1 - s)
    if name == "tanh":
        t = np.tanh(x)
        return t, dout * (1 - t * t)
    y = x * s
    return y, dout * (y + s * (1 - y))


@st.composite
def activation_inputs(draw):
    dtype = draw(float_dtypes)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(-30, 30, width=32)))
    return dtype, with_layout(x, draw(layouts))


@given(name=st.sampled_from(ACT_NAMES), xin=activation_inputs(), alpha=st.floats(0, 1),
       dout_layout=layouts, seed=seeds)
@counted
def test_activations_match_numpy(name, xin, alpha, dout_layout, seed):
    dtype, x = xin
    dout = with_layout(randn(x.shape, dtype, seed), dout_layout)
    originals = [x.copy(), dout.copy()]
    forward, backward = _act_pairs(alpha)[name]
    a32 = float(np.asarray(alpha, dtype=dtype))
    want_out, want_dx = _act_reference(name, x, a32, dout)

    out, cache = forward(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert_close(out, want_out, dtype, 1.0, f"{name} out")
    dx = backward(dout, cache)
    assert dx.dtype == dtype
    assert_close(dx, want_dx, dtype, np.abs(f64(dout)), f"{name} dx")
    assert_unchanged(originals, (x, dout))


@st.composite
def loss_inputs(draw):
    dtype = draw(float_dtypes)
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x = draw(hnp.arrays(dtype, (n, c), elements=st.floats(-30, 30, width=32)))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    y = y.astype(draw(st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.uint32,
                                       np.int64, np.uint64, np.intp])))
    return dtype, with_layout(x, draw(layouts)), with_layout(y, draw(layouts))


@given(inputs=loss_inputs())
@counted
def test_losses_match_numpy(inputs):
    dtype, x, y = inputs
    n, c = x.shape
    rows = np.arange(n)
    originals = [x.copy(), y.copy()]

    s = f64(x)
    shifted = s - s.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    onehot = np.zeros((n, c))
    onehot[rows, y] = 1
    loss, dx = L.softmax_loss(x, y)
    assert dx.dtype == dtype
    assert_close(loss, -logp[rows, y].mean(), dtype, 1.0, "softmax loss")
    assert_close(dx, (np.exp(logp) - onehot) / n, dtype, 1.0 / n, "softmax dx")
    assert_close(L.softmax(x), np.exp(logp), dtype, 1e-6, "softmax probs")

    # margins in the input dtype, as the kernel forms them, so that > 0 agrees
    margins = np.maximum(x - x[rows, y][:, None] + dtype(1), 0)
    margins[rows, y] = 0
    positive = margins > 0
    want_dx = positive / n
    want_dx[rows, y] = -positive.sum(1) / n
    loss, dx = L.svm_loss(x, y)
    assert dx.dtype == dtype
    assert_close(loss, f64(margins).sum() / n, dtype, 1.0, "svm loss")
    assert_close(dx, want_dx, dtype, 1.0 / n, "svm dx")
    assert_unchanged(originals, (x, y))


@given(kind=st.sampled_from(["batchnorm", "layernorm"]), mode=st.sampled_from(["train", "test"]),
       dtype=float_dtypes, n=st.integers(1, 6), d=st.integers(1, 6),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), momentum=st.floats(0, 1),
       running=st.sampled_from(["none", "C", "strided", "other_dtype"]),
       lay=st.tuples(layouts, layouts, layouts, layouts), seed=seeds)
@counted
def test_norm_layers_match_numpy(kind, mode, dtype, n, d, eps, momentum, running, lay, seed):
    x = with_layout(randn((n, d), dtype, seed, scale=2.0) + 1.0, lay[0])
    gamma = with_layout(randn(d, dtype, seed + 1), lay[1])
    beta = with_layout(randn(d, dtype, seed + 2), lay[2])
    dout = with_layout(randn((n, d), dtype, seed + 3), lay[3])
    originals = [a.copy() for a in (x, gamma, beta, dout)]
    X, G, B, DO = f64(x), f64(gamma), f64(beta), f64(dout)

    if kind == "layernorm":
        mu, var = X.mean(1, keepdims=True), X.var(1, keepdims=True)
        inv = 1.0 / np.sqrt(var + eps)
        xhat = (X - mu) * inv
        out, cache = L.layernorm_forward(x, gamma, beta, {"eps": eps})
        dxhat = DO * G
        want_dx = inv / d * (d * dxhat - dxhat.sum(1, keepdims=True)
                             - xhat * (dxhat * xhat).sum(1, keepdims=True))
    else:
        param = {"mode": mode, "eps": eps, "momentum": momentum}
        rm0 = randn(d, np.float64, seed + 4)
        rv0 = np.abs(randn(d, np.float64, seed + 5)) + 0.1
        if running != "none" or mode == "test":
            rdtype = {np.float32: np.float64, np.float64: np.float32}[dtype] \
                if running == "other_dtype" else dtype
            rm0, rv0 = rm0.astype(rdtype), rv0.astype(rdtype)
            lay_r = "strided" if running == "strided" else "C"
            # copies: the running stats may be updated in place
            param["running_mean"] = with_layout(rm0.copy(), lay_r)
            param["running_var"] = with_layout(rv0.copy(), lay_r)
        else:
            rm0, rv0 = np.zeros(d), np.zeros(d)
        if mode == "train":
            mu, var = X.mean(0), X.var(0)
        else:
            mu, var = f64(rm0), f64(rv0)
        inv = 1.0 / np.sqrt(var + eps)
        xhat = (X - mu) * inv
        out, cache = L.batchnorm_forward(x, gamma, beta, param)
        if mode == "train":
            want_dx = G * inv / n * (n * DO - DO.sum(0) - xhat * (DO * xhat).sum(0))
            scale_r = np.abs(f64(rm0)) + np.abs(mu)
            assert_close(param["running_mean"], momentum * f64(rm0) + (1 - momentum) * mu,
                         dtype, scale_r, "running_mean")
            assert_close(param["running_var"], momentum * f64(rv0) + (1 - momentum) * var,
                         dtype, np.abs(f64(rv0)) + var, "running_var")
        else:
            want_dx = DO * G * inv
    # float32 statistics lose about eps32 * |x| * inv_std; scale the tolerance with it
    cond = 1.0 + np.abs(X).max() * inv.max() * (np.abs(G).max() + 1.0)
    assert out.dtype == dtype
    assert_close(out, G * xhat + B, dtype, cond * 4, f"{kind} out")
    dx, dgamma, dbeta = (L.batchnorm_backward if kind == "batchnorm"
                         else L.layernorm_backward)(dout, cache)
    size = n if kind == "batchnorm" else d
    assert_close(dbeta, DO.sum(0), dtype, np.abs(DO).sum(0), "dbeta")
    assert_close(dgamma, (DO * xhat).sum(0), dtype, cond * np.abs(DO).sum(0), "dgamma")
    assert_close(dx, want_dx, dtype, cond * size * np.abs(DO).max() * inv.max() * 4, "dx")
    assert_unchanged(originals, (x, gamma, beta, dout))


def _optim_reference(rule, w, dw, cfg, states):
    """next_w and new state arrays by the SPEC.md formulas, in float64."""
    lr = cfg.get("learning_rate", 1e-3 if rule == "adam" else 1e-2)
    wd = cfg.get("weight_decay", 0.0)
    g = dw + wd * w
    if rule == "sgd":
        return w - lr * g, {}, np.abs(w) + np.abs(lr * g)
    if rule in ("sgd_momentum", "sgd_nesterov_momentum"):
        mom, v0 = cfg.get("momentum", 0.9), states.get("velocity", np.zeros_like(w))
        v = mom * v0 - lr * g
        step = v if rule == "sgd_momentum" else v + mom * (v - v0)
        size = np.abs(v0) + np.abs(lr * g)
        return w + step, {"velocity": v}, np.abs(w) + 3 * size
    if rule == "rmsprop":
        dr, eps, c0 = cfg.get("decay_rate", 0.99), cfg.get("epsilon", 1e-8), states.get(
            "cache", np.zeros_like(w))
        c = dr * c0 + (1 - dr) * g * g
        step = lr * g / (np.sqrt(c) + eps)
        return w - step, {"cache": c}, np.abs(w) + np.abs(step)
    b1, b2, eps = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999), cfg.get("epsilon", 1e-8)
    t = cfg.get("t", 0) + 1
    m0, v0 = states.get("m", np.zeros_like(w)), states.get("v", np.zeros_like(w))
    m = b1 * m0 + (1 - b1) * g
    v = b2 * v0 + (1 - b2) * g * g
    step = lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w - step, {"m": m, "v": v}, np.abs(w) + np.abs(step) * (1 + np.abs(m0) + np.abs(g))


@st.composite
def optim_inputs(draw):
    rule = draw(rule_names)
    dtype = draw(float_dtypes)
    shape = draw(small_shapes)
    seed = draw(seeds)
    w = randn(shape, dtype, seed)
    dw = randn(shape, dtype, seed + 1)
    cfg = {}
    options = {"learning_rate": st.floats(0, 1), "weight_decay": st.floats(0, 0.1),
               "momentum": st.floats(0, 1), "decay_rate": st.floats(0, 1),
               "epsilon": st.sampled_from([1e-8, 1e-6, 1e-3]),
               "beta1": st.floats(0, 0.99), "beta2": st.floats(0, 0.999),
               "t": st.integers(0, 1000)}
    for key in sorted(RULES[rule][1]) + (["t"] if rule == "adam" else []):
        if draw(st.booleans()):
            cfg[key] = draw(options[key])
    w = with_layout(w, draw(layouts))
    dw = with_layout(dw, draw(layouts))
    states = {}
    for key in RULES[rule][2]:
        if key == "a" or not draw(st.booleans()):
            continue
        state = randn(shape, dtype, seed + 2 + len(states))
        if key in ("cache", "v"):
            state = np.abs(state)
        states[key] = with_layout(state, draw(layouts))
    # state arrays that alias w, dw or each other: the reference rebinds, so this is legal
    alias = draw(st.sampled_from(["none", "w", "dw", "each_other"]))
    signed = [k for k in states if k in ("velocity", "m")]
    if alias in ("w", "dw") and signed:
        states[signed[0]] = w if alias == "w" else dw
    elif alias == "each_other" and len(states) == 2:
        states["m"] = states["v"]
    return rule, dtype, w, dw, cfg, states


@given(inputs=optim_inputs())
@counted
def test_optim_rules_match_numpy(inputs):
    rule, dtype, w, dw, cfg, states = inputs
    originals = [w.copy(), dw.copy()]
    states64 = {k: f64(v) for k, v in states.items()}
    want_w, want_states, scale = _optim_reference(rule, f64(w), f64(dw), cfg, states64)
    config = dict(cfg, **states)
    next_w, config = RULES[rule][0](w, dw, config)
    assert next_w.dtype == dtype and next_w.shape == w.shape
    assert_close(next_w, want_w, dtype, scale, f"{rule} next_w")
    for key, want in want_states.items():
        assert_close(config[key], want, dtype, np.abs(want) + scale, f"{rule} config[{key!r}]")
    if rule == "adam":
        assert config["t"] == cfg.get("t", 0) + 1
    assert_unchanged(originals, (w, dw), "w/dw")


@given(shape=small_shapes, dtype=float_dtypes, layout=layouts, seed=seeds,
       p=st.one_of(st.floats(0, 1, exclude_min=True), st.just(1.0), st.just(5e-324)))
@counted
def test_dropout_matches_numpy_and_rng_order(shape, dtype, layout, seed, p):
    x = with_layout(randn(shape, dtype, seed), layout)
    dout = randn(shape, dtype, seed + 1)
    original = x.copy()
    np.random.seed(seed)
    mask = np.random.rand(*shape) < p
    want_next = np.random.rand()
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.where(mask, f64(x) / p, 0.0)
        want_dx = np.where(mask, f64(dout) / p, 0.0)

    out, cache = L.dropout_forward(x, {"mode": "train", "p": p, "seed": seed})
    assert np.random.rand() == want_next, "dropout_forward consumed the global RNG differently"
    assert out.dtype == dtype
    assert_close(out, want, dtype, 0.0, "dropout out")
    assert_close(L.dropout_backward(dout, cache), want_dx, dtype, 0.0, "dropout dx")
    out_test, _ = L.dropout_forward(x, {"mode": "test", "p": p})
    np.testing.assert_array_equal(out_test, x)
    assert_unchanged([original], [x])


ZERO_D_CALLS = {
    "relu_forward": (lambda v: L.relu_forward(v)[0], lambda v: max(v, 0.0)),
    "leaky_relu_forward": (lambda v: L.leaky_relu_forward(v)[0],
                           lambda v: v if v > 0 else 0.01 * v),
    "sigmoid_forward": (lambda v: L.sigmoid_forward(v)[0], lambda v: 1 / (1 + math.exp(-v))),
    "tanh_forward": (lambda v: L.tanh_forward(v)[0], math.tanh),
    "swish_forward": (lambda v: L.swish_forward(v)[0], lambda v: v / (1 + math.exp(-v))),
    "dropout_forward(test)": (lambda v: L.dropout_forward(v, {"mode": "test", "p": 0.5})[0],
                              lambda v: v),
    "dropout_forward(p=1)": (lambda v: L.dropout_forward(v, {"mode": "train", "p": 1.0})[0],
                             lambda v: v),
    "sgd": (lambda v: O.sgd(v, np.float64(1.0), {"learning_rate": 0.5})[0],
            lambda v: v - 0.5),
    "sgd_momentum": (lambda v: O.sgd_momentum(v, np.float64(1.0), {"learning_rate": 0.5})[0],
                     lambda v: v - 0.5),
    "rmsprop": (lambda v: O.rmsprop(v, np.float64(0.0))[0], lambda v: v),
    "adam": (lambda v: O.adam(v, np.float64(0.0))[0], lambda v: v),
}


@given(name=st.sampled_from(sorted(ZERO_D_CALLS)),
       value=_finite(min_value=-10, max_value=10),
       wrap=st.sampled_from([np.float64, np.array]))
@counted
def test_zero_dimensional_input_keeps_its_shape(name, value, wrap):
    """A 0-d array (or NumPy scalar) is a valid array of any shape: the result must be
    0-d too (as in the NumPy reference code) with the right value, not (1,) or an error."""
    func, formula = ZERO_D_CALLS[name]
    x = wrap(value)
    try:
        out = func(x)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{name} on the 0-d input {x!r} raised {type(exc).__name__}: {exc}")
    out = np.asarray(out)
    assert out.shape == (), f"{name} turned a 0-d input into shape {out.shape}"
    assert math.isclose(float(out), formula(value), rel_tol=1e-12, abs_tol=1e-300)


@given(dtype=float_dtypes, n=st.integers(1, 6), d=st.integers(1, 6),
       momentum=st.floats(0, 1, exclude_max=True), seed=seeds)
@counted
def test_batchnorm_same_array_for_running_mean_and_var(dtype, n, d, momentum, seed):
    """``z = np.zeros(D); bn_param = {'running_mean': z, 'running_var': z}`` is legal: the
    reference rebinds both names, so each running stat must follow its own formula (or the
    call must refuse the aliasing with ValueError/TypeError) -- never a mix of the two."""
    x = randn((n, d), dtype, seed) + 1.0
    shared = np.abs(randn(d, dtype, seed + 1))
    start = f64(shared).copy()
    param = {"mode": "train", "momentum": momentum, "running_mean": shared,
             "running_var": shared}
    try:
        L.batchnorm_forward(x, np.ones(d, dtype), np.zeros(d, dtype), param)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    X = f64(x)
    assert_close(param["running_mean"], momentum * start + (1 - momentum) * X.mean(0), dtype,
                 start + np.abs(X.mean(0)), "running_mean")
    assert_close(param["running_var"], momentum * start + (1 - momentum) * X.var(0), dtype,
                 start + X.var(0), "running_var")


# ====================================================================== example count

def test_zz_report_example_count(capsys):
    """Print how many hypothesis examples each test above ran (run last, file order)."""
    if not EXAMPLES:
        pytest.skip("no hypothesis test ran in this session")
    total = sum(EXAMPLES.values())
    width = max(map(len, EXAMPLES))
    lines = [f"  {name:<{width}}  {count:6d}" for name, count in EXAMPLES.items()]
    with capsys.disabled():
        print(f"\n[test_bad_input] {len(EXAMPLES)} hypothesis tests, {total} examples "
              f"(max_examples={settings().max_examples} each)")
        print("\n".join(lines))
