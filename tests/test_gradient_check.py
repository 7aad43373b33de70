"""Tests of fastfc.gradient_check: the CS231n helpers and the GradientCheck class."""
import random
import re

import numpy as np
import pytest

from fastfc.gradient_check import (
    GradientCheck,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    eval_numerical_gradient_blobs,
    grad_check_sparse,
    rel_error,
)


# ----------------------------------------------------------------- rel_error

def test_rel_error_formula():
    x = np.array([1.0, -2.0, 0.0, 3.0])
    y = np.array([1.5, -2.0, 0.0, 2.0])
    expected = np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))
    assert rel_error(x, y) == pytest.approx(expected, rel=1e-15)
    assert rel_error(x, y) == pytest.approx(0.2, rel=1e-15)  # 1 / (3 + 2)
    assert rel_error(x, x) == 0.0
    assert rel_error(y, x) == rel_error(x, y)


def test_rel_error_floor_near_zero():
    # |x| + |y| below 1e-8 is replaced by 1e-8
    assert rel_error(np.array([1e-10]), np.array([-1e-10])) == pytest.approx(2e-2, rel=1e-12)
    assert rel_error(0.0, 0.0) == 0.0
    assert isinstance(rel_error(np.ones(3), np.ones(3)), float)


def test_rel_error_broadcasts_and_mixed_dtypes():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    y = np.array([1.0, 2.5])
    # rows: max(0, 0.5/4.5) and max(2/4, 1.5/6.5); the largest is 0.5
    assert rel_error(x, y) == pytest.approx(0.5, rel=1e-7)
    assert rel_error(x[:1], y) == pytest.approx(0.5 / 4.5, rel=1e-7)


# ----------------------------------------------------------------- eval_numerical_gradient

def test_eval_numerical_gradient_sum_of_squares():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    grad = eval_numerical_gradient(lambda a: np.sum(a**2), x, verbose=False)
    assert grad.shape == x.shape
    assert grad.dtype == x.dtype
    assert rel_error(grad, 2 * x0) < 1e-9
    np.testing.assert_array_equal(x, x0)


def test_eval_numerical_gradient_nontrivial_function():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 2))
    x0 = x.copy()
    A = rng.standard_normal(x.size)

    def f(a):
        flat = a.ravel()
        return float(np.sin(flat) @ A + np.log1p(np.sum(flat**2)) + np.prod(np.tanh(flat[:3])))

    grad = eval_numerical_gradient(f, x, verbose=False, h=1e-6)
    flat = x0.ravel()
    expected = np.cos(flat) * A + 2 * flat / (1 + np.sum(flat**2))
    t = np.tanh(flat[:3])
    dt = 1 - t**2
    expected[:3] += np.array([dt[0] * t[1] * t[2], t[0] * dt[1] * t[2], t[0] * t[1] * dt[2]])
    assert rel_error(grad, expected.reshape(x.shape)) < 1e-7
    np.testing.assert_array_equal(x, x0)


def test_eval_numerical_gradient_step_and_call_count():
    calls = []

    def f(a):
        calls.append(a.copy())
        return float(np.sum(a**3))

    x = np.array([1.0, 2.0])
    grad = eval_numerical_gradient(f, x, verbose=False, h=1e-3)
    # centred difference of a cubic: 3 x^2 + h^2 exactly
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 4.0]) + 1e-6, rtol=1e-9)
    # once at x, then twice per element (x + h, x - h)
    assert len(calls) == 1 + 2 * x.size
    np.testing.assert_allclose(calls[1], [1.001, 2.0])
    np.testing.assert_allclose(calls[2], [0.999, 2.0])


def test_eval_numerical_gradient_verbose_prints_index_and_value(capsys):
    x = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]])
    grad = eval_numerical_gradient(lambda a: np.sum(a**2), x, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == x.size
    pattern = re.compile(r"^\((\d+), (\d+)\) (\S+)$")
    seen = []
    for line, ix in zip(lines, np.ndindex(*x.shape)):
        match = pattern.match(line)
        assert match, line
        i, j, value = int(match.group(1)), int(match.group(2)), float(match.group(3))
        assert (i, j) == ix
        assert value == pytest.approx(grad[ix], rel=1e-12)
        assert value == pytest.approx(2 * x[ix], rel=1e-8, abs=1e-8)
        seen.append((i, j))
    assert seen == list(np.ndindex(*x.shape))


def test_eval_numerical_gradient_silent(capsys):
    eval_numerical_gradient(lambda a: np.sum(a), np.ones(3), verbose=False)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------- eval_numerical_gradient_array

def test_eval_numerical_gradient_array_linear_map():
    """f(x) = x @ W (x of shape (N, D)): the gradient of sum(f(x) * df) is df @ W.T."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    W = rng.standard_normal((3, 5))
    df = rng.standard_normal((4, 5))
    x0 = x.copy()
    grad = eval_numerical_gradient_array(lambda a: a @ W, x, df)
    assert grad.shape == x.shape
    assert rel_error(grad, df @ W.T) < 1e-9
    np.testing.assert_array_equal(x, x0)


def test_eval_numerical_gradient_array_elementwise_nonlinear():
    """f(x) = tanh(x) * x[0, 0]: a Jacobian with a full first column."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((3, 2))
    x0 = x.copy()
    grad = eval_numerical_gradient_array(lambda a: np.tanh(a) * a[0, 0], x, df)
    expected = df * (1 - np.tanh(x0) ** 2) * x0[0, 0]
    expected[0, 0] += np.sum(df * np.tanh(x0))
    assert rel_error(grad, expected) < 1e-8
    np.testing.assert_array_equal(x, x0)


def test_eval_numerical_gradient_array_copies_each_output():
    """f may return the same buffer each call: the difference must still be right."""
    buf = np.empty(3)

    def f(a):
        np.multiply(a, 2.0, out=buf)
        return buf

    x = np.array([1.0, 2.0, 3.0])
    df = np.array([1.0, -1.0, 0.5])
    grad = eval_numerical_gradient_array(f, x, df)
    np.testing.assert_allclose(grad, 2 * df, rtol=1e-9)


# ----------------------------------------------------------------- blobs

class Blob:
    def __init__(self, vals, diffs=None):
        self.vals = np.array(vals, dtype=np.float64)
        self.diffs = np.zeros_like(self.vals) if diffs is None else np.array(diffs, dtype=np.float64)


def test_eval_numerical_gradient_blobs():
    """out = a * b (elementwise) + 2 a: d/da = (b + 2) * dout, d/db = a * dout."""
    rng = np.random.default_rng(4)
    a = Blob(rng.standard_normal((2, 3)))
    b = Blob(rng.standard_normal((2, 3)))
    out = Blob(np.zeros((2, 3)), rng.standard_normal((2, 3)))
    a0, b0 = a.vals.copy(), b.vals.copy()

    def f(x, y, output):
        output.vals[...] = x.vals * y.vals + 2 * x.vals

    da, db = eval_numerical_gradient_blobs(f, [a, b], out)
    assert rel_error(da, (b0 + 2) * out.diffs) < 1e-9
    assert rel_error(db, a0 * out.diffs) < 1e-9
    np.testing.assert_array_equal(a.vals, a0)
    np.testing.assert_array_equal(b.vals, b0)


def test_eval_numerical_gradient_blobs_different_shapes():
    """out = x @ w with blobs of different shapes."""
    rng = np.random.default_rng(5)
    x = Blob(rng.standard_normal((3, 4)))
    w = Blob(rng.standard_normal((4, 2)))
    out = Blob(np.zeros((3, 2)), rng.standard_normal((3, 2)))

    def f(xb, wb, output):
        output.vals = xb.vals @ wb.vals

    dx, dw = eval_numerical_gradient_blobs(f, (x, w), out)
    assert dx.shape == (3, 4) and dw.shape == (4, 2)
    assert rel_error(dx, out.diffs @ w.vals.T) < 1e-9
    assert rel_error(dw, x.vals.T @ out.diffs) < 1e-9


# ----------------------------------------------------------------- grad_check_sparse

LINE = re.compile(
    r"^numerical: (-?\d+\.\d{6}) analytic: (-?\d+\.\d{6}), relative error: "
    r"(\d\.\d{6}e[+-]\d\d)$"
)


def test_grad_check_sparse_prints_and_restores(capsys):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4))
    x0 = x.copy()
    random.seed(0)
    grad_check_sparse(lambda a: np.sum(a**2), x, 2 * x0, num_checks=7)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7
    for line in lines:
        m = LINE.match(line)
        assert m, line
        num, ana, rel = float(m.group(1)), float(m.group(2)), float(m.group(3))
        assert abs(num - ana) < 2e-6
        assert rel < 1e-7
    np.testing.assert_array_equal(x, x0)


def test_grad_check_sparse_uses_python_random():
    """The same random.seed gives the same elements (Python's random, as in the reference)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5))
    seen = []

    analytic = 2 * x

    def record(a):
        seen.append(np.argwhere(a != x_copy).tolist())
        return float(np.sum(a**2))

    x_copy = x.copy()
    random.seed(123)
    grad_check_sparse(record, x, analytic, num_checks=4)
    first = list(seen)
    seen.clear()
    random.seed(123)
    grad_check_sparse(record, x, analytic, num_checks=4)
    assert seen == first
    # each check perturbs one element, drawn with random.randrange per dimension
    random.seed(123)
    expected = []
    for _ in range(4):
        expected.append([random.randrange(m) for m in x.shape])
    perturbed = [entry[0] for entry in first[::2]]
    assert perturbed == expected


def test_grad_check_sparse_reports_wrong_gradient(capsys):
    x = np.array([[0.5, -1.0], [2.0, 1.5]])
    random.seed(1)
    grad_check_sparse(lambda a: np.sum(a**2), x, 3 * x, num_checks=5)
    for line in capsys.readouterr().out.strip().splitlines():
        rel = float(LINE.match(line).group(3))
        assert rel == pytest.approx(0.2, rel=1e-6)  # |2x - 3x| / (|2x| + |3x|)


# ----------------------------------------------------------------- GradientCheck models

class TinyNet:
    """scores = tanh(X @ W1 + b1) @ W2 + b2; softmax loss + 0.5 reg (W1^2 + W2^2).

    ``wrong`` names one gradient to corrupt; ``dtype`` (optional) is the compute dtype.
    """

    def __init__(self, D=4, H=3, C=3, seed=0, wrong=None, dtype=None, reg=0.1):
        rng = np.random.default_rng(seed)
        dt = np.float64 if dtype is None else dtype
        self.params = {
            "W1": (0.5 * rng.standard_normal((D, H))).astype(dt),
            "b1": (0.1 * rng.standard_normal(H)).astype(dt),
            "W2": (0.5 * rng.standard_normal((H, C))).astype(dt),
            "b2": (0.1 * rng.standard_normal(C)).astype(dt),
        }
        if dtype is not None:
            self.dtype = dtype
        self.wrong = wrong
        self.reg = reg
        self.calls = 0
        self.seen_dtypes = set()

    def loss(self, X, y):
        self.calls += 1
        dt = getattr(self, "dtype", np.float64)
        self.seen_dtypes.add(np.dtype(dt))
        p = {k: v.astype(dt) for k, v in self.params.items()}
        X = np.asarray(X).astype(dt)
        z = X @ p["W1"] + p["b1"]
        h = np.tanh(z)
        scores = h @ p["W2"] + p["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        N = X.shape[0]
        loss = -logp[np.arange(N), y].mean() + 0.5 * self.reg * (
            np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dscores = np.exp(logp)
        dscores[np.arange(N), y] -= 1
        dscores /= N
        grads = {
            "W2": h.T @ dscores + self.reg * p["W2"],
            "b2": dscores.sum(axis=0),
        }
        dh = dscores @ p["W2"].T
        dz = dh * (1 - h**2)
        grads["W1"] = X.T @ dz + self.reg * p["W1"]
        grads["b1"] = dz.sum(axis=0)
        if self.wrong is not None:
            grads[self.wrong] = grads[self.wrong] * 1.5 + 0.01
        return loss, grads


def _data(seed=0, N=5, D=4, C=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, C, size=N)


def test_gradient_check_correct_model(capsys):
    model = TinyNet()
    X, y = _data()
    checker = GradientCheck(model, verbose=False)
    errors = checker.run(X, y)
    assert set(errors) == {"W1", "b1", "W2", "b2"}
    for name, err in errors.items():
        assert err < 1e-7, (name, err)
    assert checker.errors_ == errors
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("wrong", ["W1", "b1", "W2", "b2"])
def test_gradient_check_finds_the_wrong_gradient(wrong):
    model = TinyNet(wrong=wrong)
    X, y = _data()
    errors = GradientCheck(model, verbose=False).run(X, y)
    assert errors[wrong] > 1e-2
    for name, err in errors.items():
        if name != wrong:
            assert err < 1e-7, (name, err)


def test_gradient_check_restores_params():
    model = TinyNet()
    X, y = _data()
    X0 = X.copy()
    before = dict(model.params)
    values = {k: v.copy() for k, v in model.params.items()}
    params_dict = model.params
    GradientCheck(model, verbose=False).run(X, y)
    assert model.params is params_dict
    assert list(model.params) == list(before)
    for name, arr in model.params.items():
        assert arr is before[name]
        np.testing.assert_array_equal(arr, values[name])
    np.testing.assert_array_equal(X, X0)


def test_gradient_check_restores_params_after_error():
    """A model whose loss fails mid-check still gets its parameters back."""
    model = TinyNet()
    X, y = _data()
    before = dict(model.params)
    original_loss = model.loss

    def flaky(X_, y_):
        if model.calls >= 4:
            raise RuntimeError("boom")
        return original_loss(X_, y_)

    model.loss = flaky
    with pytest.raises(RuntimeError, match="boom"):
        GradientCheck(model, verbose=False).run(X, y)
    for name, arr in model.params.items():
        assert arr is before[name]


def test_gradient_check_float32_model_runs_in_float64():
    model = TinyNet(dtype=np.float32)
    X, y = _data()
    before = dict(model.params)
    values = {k: v.copy() for k, v in model.params.items()}
    errors = GradientCheck(model, verbose=False).run(X.astype(np.float32), y)
    # in float32 centred differences with h = 1e-5 are far worse than 1e-7
    for name, err in errors.items():
        assert err < 1e-7, (name, err)
    assert model.seen_dtypes == {np.dtype(np.float64)}
    assert model.dtype is np.float32
    for name, arr in model.params.items():
        assert arr is before[name]
        assert arr.dtype == np.float32
        np.testing.assert_array_equal(arr, values[name])


def test_float32_check_would_fail_without_the_switch():
    """Sanity check of the test above: the same model checked in float32 is inaccurate."""
    model = TinyNet(dtype=np.float32)
    X, y = _data()
    p = model.params["W1"]
    num = np.zeros_like(p)
    for ix in np.ndindex(*p.shape):
        old = p[ix]
        p[ix] = old + np.float32(1e-5)
        fp = model.loss(X, y)[0]
        p[ix] = old - np.float32(1e-5)
        fm = model.loss(X, y)[0]
        p[ix] = old
        num[ix] = (fp - fm) / 2e-5
    assert rel_error(num, model.loss(X, y)[1]["W1"]) > 1e-5


def test_gradient_check_max_checks_limits_loss_evaluations():
    model = TinyNet(D=6, H=5, C=4)
    X, y = _data(D=6, C=4)
    GradientCheck(model, max_checks=2, verbose=False).run(X, y)
    # one analytic evaluation, then 2 per checked element, 2 elements per parameter
    assert model.calls == 1 + 2 * 2 * 4

    full = TinyNet(D=6, H=5, C=4)
    GradientCheck(full, verbose=False).run(X, y)
    n_elements = sum(v.size for v in full.params.values())
    assert full.calls == 1 + 2 * n_elements

    # max_checks larger than a parameter checks it whole
    big = TinyNet(D=6, H=5, C=4)
    GradientCheck(big, max_checks=10, verbose=False).run(X, y)
    sizes = [v.size for v in big.params.values()]
    assert big.calls == 1 + 2 * sum(min(10, s) for s in sizes)


def test_gradient_check_max_checks_still_detects_wrong_gradient():
    model = TinyNet(wrong="W2")
    X, y = _data()
    errors = GradientCheck(model, max_checks=3, seed=1, verbose=False).run(X, y)
    assert errors["W2"] > 1e-2
    assert errors["W1"] < 1e-7


def test_gradient_check_report_contains_every_name(capsys):
    model = TinyNet(wrong="b1")
    X, y = _data()
    checker = GradientCheck(model, verbose=True)
    assert "not run" in checker.report()
    errors = checker.run(X, y)
    printed = capsys.readouterr().out
    report = checker.report()
    assert report.strip() in printed
    for name, err in errors.items():
        assert name in report
        assert f"{err:.3e}" in report


class InputModel(TinyNet):
    """Also returns the gradient with respect to X, under grads['X']."""

    def __init__(self, wrong_input=False, **kw):
        super().__init__(**kw)
        self.wrong_input = wrong_input

    def loss(self, X, y):
        loss, grads = super().loss(X, y)
        dt = getattr(self, "dtype", np.float64)
        p = {k: v.astype(dt) for k, v in self.params.items()}
        X = np.asarray(X).astype(dt)
        h = np.tanh(X @ p["W1"] + p["b1"])
        scores = h @ p["W2"] + p["b2"]
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        dscores = e / e.sum(axis=1, keepdims=True)
        dscores[np.arange(X.shape[0]), y] -= 1
        dscores /= X.shape[0]
        dX = ((dscores @ p["W2"].T) * (1 - h**2)) @ p["W1"].T
        grads["X"] = dX * (2.0 if self.wrong_input else 1.0)
        return loss, grads


def test_gradient_check_input():
    X, y = _data()
    errors = GradientCheck(InputModel(), check_input=True, verbose=False).run(X, y)
    assert errors["X"] < 1e-7
    errors = GradientCheck(InputModel(wrong_input=True), check_input=True,
                           verbose=False).run(X, y)
    assert errors["X"] > 1e-2
    assert errors["W1"] < 1e-7


def test_gradient_check_rejects_non_model():
    with pytest.raises(TypeError, match="params"):
        GradientCheck(object())


def test_gradient_check_missing_gradient():
    class Missing(TinyNet):
        def loss(self, X, y):
            loss, grads = super().loss(X, y)
            del grads["b2"]
            return loss, grads

    X, y = _data()
    with pytest.raises(ValueError, match="b2"):
        GradientCheck(Missing(), verbose=False).run(X, y)


class BufferNet(TinyNet):
    """Writes its gradients into buffers it owns and returns the same arrays every call
    (the allocate-once pattern of STYLE.md); the analytic gradient must be taken from the
    first call, before later loss evaluations overwrite the buffers."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._grad_buffers = None

    def loss(self, X, y):
        loss, grads = super().loss(X, y)
        if self._grad_buffers is None or any(
                self._grad_buffers[k].dtype != g.dtype for k, g in grads.items()):
            self._grad_buffers = {k: np.empty_like(g) for k, g in grads.items()}
        for k, g in grads.items():
            self._grad_buffers[k][...] = g
        return loss, self._grad_buffers


def test_gradient_check_model_reusing_gradient_buffers():
    X, y = _data()
    errors = GradientCheck(BufferNet(), verbose=False).run(X, y)
    for name, err in errors.items():
        assert err < 1e-7, (name, err)
