"""The checks UCLA's HW4 notebooks run on the functions copied from HW3.

``from nndl.layer_tests import *`` in the notebook becomes
``from fastfc.nndl.layer_tests import *``.  Each check draws its inputs from NumPy's
global generator in the same order as UCLA's helpers, compares the analytic result (or
gradient) with a reference value (or a numerical gradient) and prints the same lines.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fastfc.gradient_check import (eval_numerical_gradient, eval_numerical_gradient_array,
                                   rel_error)
from fastfc.nndl.fc_net import FullyConnectedNet
# (mypy cannot follow layer_utils' computed __all__ through its star imports)
from fastfc.nndl.layer_utils import (affine_relu_backward,  # type: ignore[attr-defined]
                                     affine_relu_forward)
from fastfc.nndl.layers import (affine_backward, affine_forward, relu_backward,
                                relu_forward)

__all__ = ["rel_error", "affine_forward_test", "affine_backward_test",
           "relu_forward_test", "relu_backward_test", "affine_relu_test", "fc_net_test"]


def _numerical_grads(forward: Callable[..., Any], args: Sequence[np.ndarray],
                     dout: np.ndarray) -> list[np.ndarray]:
    """Numerical gradient of sum(forward(*args)[0] * dout) for each argument, in order."""
    grads = []
    for i in range(len(args)):
        def f(value: np.ndarray, i: int = i) -> np.ndarray:
            call = list(args)
            call[i] = value
            return forward(*call)[0]
        grads.append(eval_numerical_gradient_array(f, args[i], dout))
    return grads


def affine_forward_test() -> None:
    """affine_forward on the course's fixed (linspace) inputs against its reference."""
    n_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    n_features = int(np.prod(input_shape))
    x = np.linspace(-0.1, 0.5, num=n_inputs * n_features).reshape(n_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=output_dim * n_features).reshape(n_features, output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    expected = np.array([[1.49834967, 1.70660132, 1.91485297],
                         [3.25553199, 3.5141327, 3.77273342]])
    print('If affine_forward function is working, difference should be less than 1e-9:')
    print('difference: {}'.format(rel_error(out, expected)))


def affine_backward_test() -> None:
    """affine_backward against numerical gradients (x, w, b, dout drawn in that order)."""
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num, dw_num, db_num = _numerical_grads(affine_forward, (x, w, b), dout)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    print('If affine_backward is working, error should be less than 1e-9::')
    print('dx error: {}'.format(rel_error(dx_num, dx)))
    print('dw error: {}'.format(rel_error(dw_num, dw)))
    print('db error: {}'.format(rel_error(db_num, db)))


def relu_forward_test() -> None:
    """relu_forward on a fixed linspace input against the course's reference."""
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    expected = np.array([[0., 0., 0., 0.],
                         [0., 0., 0.04545455, 0.13636364],
                         [0.22727273, 0.31818182, 0.40909091, 0.5]])
    print('If relu_forward function is working, difference should be around 1e-8:')
    print('difference: {}'.format(rel_error(out, expected)))


def relu_backward_test() -> None:
    """relu_backward against a numerical gradient (x, then dout, drawn)."""
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    (dx_num,) = _numerical_grads(relu_forward, (x,), dout)
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    # (the course's helper prints "relu_forward" here too)
    print('If relu_forward function is working, error should be less than 1e-9:')
    print('dx error: {}'.format(rel_error(dx_num, dx)))


def affine_relu_test() -> None:
    """affine_relu_forward/backward against numerical gradients."""
    x = np.random.randn(2, 3, 4)
    w = np.random.randn(12, 10)
    b = np.random.randn(10)
    dout = np.random.randn(2, 10)
    _, cache = affine_relu_forward(x, w, b)
    dx, dw, db = affine_relu_backward(dout, cache)
    dx_num, dw_num, db_num = _numerical_grads(affine_relu_forward, (x, w, b), dout)
    print('If affine_relu_forward and affine_relu_backward are working, error should be '
          'less than 1e-9::')
    print('dx error: {}'.format(rel_error(dx_num, dx)))
    print('dw error: {}'.format(rel_error(dw_num, dw)))
    print('db error: {}'.format(rel_error(db_num, db)))


def fc_net_test() -> None:
    """A [20, 30] FullyConnectedNet's loss and gradient check, with reg 0 and 3.14."""
    n, d, h1, h2, c = 2, 15, 20, 30, 10
    X = np.random.randn(n, d)
    y = np.random.randint(c, size=(n,))
    for reg in [0, 3.14]:
        print('Running check with reg = {}'.format(reg))
        model = FullyConnectedNet([h1, h2], input_dim=d, num_classes=c, reg=reg,
                                  weight_scale=5e-2, dtype=np.float64)
        loss, grads = model.loss(X, y)
        print('Initial loss: {}'.format(loss))
        for name in sorted(grads):
            grad_num = eval_numerical_gradient(lambda _: model.loss(X, y)[0],
                                               model.params[name], verbose=False, h=1e-5)
            print('{} relative error: {}'.format(name, rel_error(grad_num, grads[name])))
