"""Functional layers, call-for-call compatible with the CS231n ``layers.py``.

Every layer comes as a ``<op>_forward(...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> grads`` pair.  The public functions validate their
arguments (shapes, one float dtype, labels, modes) and then run a compiled kernel from
``fastfc._kernels``; results keep the input's float dtype (float32 stays float32,
integer input becomes float64).  Inputs may be non-contiguous or Fortran-ordered: they
are copied to C order when needed.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastfc import _registry
from fastfc import _validation as V
from fastfc._kernels import dense as _dense
from fastfc._kernels import losses as _losses
from fastfc._kernels import norm as _norm

__all__ = [
    "affine_forward", "affine_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "swish_forward", "swish_backward",
    "softmax_loss", "svm_loss", "mse_loss", "softmax",
    "dropout_forward", "dropout_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward",
]

_Array = NDArray[Any]

#: activation name -> the kernels' code (fastfc._registry)
ACT = {name: spec.code for name, spec in _registry.ALL_ACTIVATIONS.items()}


# ------------------------------------------------------------------------ affine

def affine_forward(x: ArrayLike, w: ArrayLike,
                   b: ArrayLike) -> tuple[_Array, tuple[_Array, _Array, _Array]]:
    """Affine (fully-connected) layer: ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : ndarray of shape (N, d_1, ..., d_k), float32 or float64
        Minibatch; each sample is flattened to D = d_1 * ... * d_k features.
    w : ndarray of shape (D, M)
    b : ndarray of shape (M,)

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : tuple (x, w, b)
    """
    dtype, (x, w, b) = V.float_args(x=x, w=w, b=b)
    x, w, n_samples, n_features = _affine_operands(x, w, dtype, "")
    b = V.as_float(b, "b", dtype, shape=(w.shape[1],))
    out = np.empty((n_samples, w.shape[1]), dtype=dtype)
    _dense._affine_forward(x.reshape(n_samples, n_features), w, b, out)
    return out, (x, w, b)


def _affine_operands(x: _Array, w: _Array, dtype: DTypeLike,
                     where: str) -> tuple[_Array, _Array, int, int]:
    """x (N, ...) and w (D, M) as C-contiguous dtype arrays, checked to fit together."""
    x = V.as_float(x, "x" + where, dtype, min_ndim=2)
    w = V.as_float(w, "w" + where, dtype, ndim=2)
    n_samples = x.shape[0]
    n_features = x.size // n_samples
    if w.shape[0] != n_features:
        raise ValueError(
            f"w{where} has shape {w.shape} but x{where} has {n_features} features per "
            f"sample (x has shape {x.shape}); w must have shape ({n_features}, M)"
        )
    return x, w, n_samples, n_features


def _unpack_affine_cache(cache: Any) -> tuple[Any, Any, Any]:
    if not isinstance(cache, tuple) or len(cache) != 3:
        raise TypeError("cache must be the (x, w, b) tuple returned by affine_forward")
    return cache


def affine_backward(dout: ArrayLike, cache: Any) -> tuple[_Array, _Array, _Array]:
    """Backward pass of :func:`affine_forward`.

    Returns ``dx = (dout @ w.T).reshape(x.shape)``, ``dw = x.T @ dout`` and
    ``db = dout.sum(0)``.
    """
    return _affine_backward(dout, cache, need_dx=True)


def _affine_backward(dout: ArrayLike, cache: Any,
                     need_dx: bool) -> tuple[Any, _Array, _Array]:  # dx or None
    x, w, b = _unpack_affine_cache(cache)
    dtype, (dout, x, w) = V.float_args(dout=dout, x=x, w=w)
    x, w, n_samples, n_features = _affine_operands(x, w, dtype, " (from cache)")
    dout = V.as_float(dout, "dout", dtype, shape=(n_samples, w.shape[1]))
    dw = np.empty_like(w)
    db = np.empty(w.shape[1], dtype=dtype)
    dx = np.empty_like(x) if need_dx else None
    _dense._affine_backward(
        dout, x.reshape(n_samples, n_features), w,
        None if dx is None else dx.reshape(n_samples, n_features), dw, db,
    )
    return dx, dw, db


# ------------------------------------------------------------------------ activations

def _act_forward(kind: int, x: ArrayLike, alpha: float = 0.0) -> tuple[_Array, _Array]:
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)))
    out = np.array(x, copy=True)
    _dense._bias_act(kind, out.reshape(1, -1), None, out.reshape(1, -1), alpha)
    return x, out


def _act_backward(kind: int, dout: ArrayLike, y: ArrayLike, z: Optional[ArrayLike] = None,
                  alpha: float = 0.0) -> _Array:
    """dx = dout * f'(z), using the forward output y (and z for swish)."""
    dtype, (dout, y) = V.float_args(dout=dout, cache=y)
    y = V.as_float(y, "cache", dtype)
    dout = V.as_float(dout, "dout", dtype, shape=y.shape)
    if z is not None:
        z = V.as_float(V.as_array(z, "cache"), "cache", dtype, shape=y.shape)
        z = z.reshape(-1)
    dx = np.array(dout, copy=True)
    _dense._act_backward(kind, z, y.reshape(-1), dx.reshape(-1), alpha)
    return dx


def relu_forward(x: ArrayLike) -> tuple[_Array, _Array]:
    """Rectified linear unit: ``out = max(x, 0)``.  Returns (out, cache = x)."""
    x, out = _act_forward(ACT["relu"], x)
    return out, x


def relu_backward(dout: ArrayLike, cache: ArrayLike) -> _Array:
    """Backward of :func:`relu_forward`: ``dx = dout * (x > 0)``."""
    return _act_backward(ACT["relu"], dout, cache)


def leaky_relu_forward(x: ArrayLike, alpha: float = 0.01) -> tuple[_Array, tuple[_Array, float]]:
    """Leaky ReLU: ``out = x if x > 0 else alpha * x``.  Returns (out, cache = (x, alpha)).

    ``alpha`` may also be a dict with the key 'alpha' (some course code passes one).
    """
    if isinstance(alpha, dict):
        alpha = alpha.get("alpha", 0.01)
    alpha = V.check_scalar(alpha, "alpha", low=0.0)
    x, out = _act_forward(ACT["leaky_relu"], x, alpha)
    return out, (x, alpha)


def leaky_relu_backward(dout: ArrayLike, cache: tuple[ArrayLike, float]) -> _Array:
    """Backward of :func:`leaky_relu_forward`: ``dx = dout * where(x > 0, 1, alpha)``."""
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("cache must be the (x, alpha) tuple returned by leaky_relu_forward")
    x, alpha = cache
    alpha = V.check_scalar(alpha, "alpha (from cache)", low=0.0)
    return _act_backward(ACT["leaky_relu"], dout, x, alpha=alpha)


def sigmoid_forward(x: ArrayLike) -> tuple[_Array, _Array]:
    """Logistic sigmoid: ``out = 1 / (1 + exp(-x))``.  Returns (out, cache = out)."""
    _, out = _act_forward(ACT["sigmoid"], x)
    return out, out


def sigmoid_backward(dout: ArrayLike, cache: ArrayLike) -> _Array:
    """Backward of :func:`sigmoid_forward`: ``dx = dout * out * (1 - out)``."""
    return _act_backward(ACT["sigmoid"], dout, cache)


def tanh_forward(x: ArrayLike) -> tuple[_Array, _Array]:
    """Hyperbolic tangent.  Returns (out, cache = out)."""
    _, out = _act_forward(ACT["tanh"], x)
    return out, out


def tanh_backward(dout: ArrayLike, cache: ArrayLike) -> _Array:
    """Backward of :func:`tanh_forward`: ``dx = dout * (1 - out**2)``."""
    return _act_backward(ACT["tanh"], dout, cache)


def swish_forward(x: ArrayLike) -> tuple[_Array, tuple[_Array, _Array]]:
    """Swish (SiLU): ``out = x * sigmoid(x)``.  Returns (out, cache = (x, out))."""
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)))
    z = np.array(x, copy=True)
    out = np.empty_like(x)
    _dense._bias_act(ACT["swish"], z.reshape(1, -1), None, out.reshape(1, -1))
    return out, (x, out)


def swish_backward(dout: ArrayLike, cache: tuple[ArrayLike, ArrayLike]) -> _Array:
    """Backward of :func:`swish_forward`: ``dx = dout * (out + s * (1 - out))``, s = sigmoid(x)."""
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("cache must be the (x, out) tuple returned by swish_forward")
    x, out = cache
    return _act_backward(ACT["swish"], dout, out, z=x)


# ------------------------------------------------------------------------ losses

def _scores_and_labels(x: ArrayLike, y: ArrayLike) -> tuple[_Array, NDArray[np.intp]]:
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)), ndim=2)
    y = V.as_labels(y, "y", x.shape[0], x.shape[1])
    return x, y


def _sample_weight(sample_weight: Optional[ArrayLike], n_samples: int,
                   dtype: np.dtype[Any]) -> Optional[_Array]:
    """Per-sample weights (N,) of ``dtype``: finite, >= 0, with a positive sum."""
    if sample_weight is None:
        return None
    w = V.as_array(sample_weight, "sample_weight")
    w = V.as_float(w, "sample_weight", dtype, shape=(n_samples,))
    if not np.isfinite(w).all():
        raise ValueError("sample_weight must hold finite values")
    if (w < 0).any():
        raise ValueError("sample_weight must be >= 0")
    if not w.sum(dtype=np.float64) > 0:
        raise ValueError(f"sample_weight must have a positive sum (in {dtype.name})")
    return w


def softmax_loss(x: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                 label_smoothing: float = 0.0) -> tuple[float, _Array]:
    """Softmax cross-entropy loss, mean over the minibatch.

    With ``p = softmax(x, axis=1)`` the loss of sample i is ``l_i = -log p[i, y_i]``,
    and ``dx = (p - onehot(y)) / N``.  With label smoothing ``eps`` the target of
    sample i is the distribution ``q_i = (1 - eps) * onehot(y_i) + eps / C`` instead of
    the one-hot vector: ``l_i = -sum_k q_ik log p_ik`` and ``dx = (p - q) / N``
    (``torch.nn.CrossEntropyLoss(label_smoothing=eps)``).

    Parameters
    ----------
    x : ndarray of shape (N, C)
        Class scores; x[i, j] is the score of class j for sample i.
    y : ndarray of shape (N,), integer
        Labels in [0, C).
    sample_weight : ndarray of shape (N,), optional
        Non-negative weights (fastfc extension).  The loss becomes the weighted mean
        ``sum(w_i * l_i) / sum(w_i)`` of the per-sample losses ``l_i`` -- normalised by
        the sum of the weights, so equal weights give the plain mean -- and ``dx``
        follows it.
    label_smoothing : float in [0, 1), default 0.0
        ``eps`` above (fastfc extension).  0 is the plain cross-entropy, computed
        exactly as without the argument.  The smoothed loss is not 0 even for a
        perfect prediction: its minimum over x is the entropy of q.

    Returns
    -------
    loss : float
    dx : ndarray of shape (N, C), gradient of the loss with respect to x.
    """
    eps = V.check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0,
                         high_open=True)
    x, y = _scores_and_labels(x, y)
    w = _sample_weight(sample_weight, x.shape[0], x.dtype)
    dx = np.empty_like(x)
    if eps == 0:
        loss = _losses._softmax_loss(x, y, dx, w)
    else:
        loss = _losses._softmax_loss(x, y, dx, w, eps)
    return loss, dx


def svm_loss(x: ArrayLike, y: ArrayLike,
             sample_weight: Optional[ArrayLike] = None) -> tuple[float, _Array]:
    """Multiclass SVM (hinge) loss with margin 1, mean over the minibatch.

    Same arguments and returns as :func:`softmax_loss`.
    """
    x, y = _scores_and_labels(x, y)
    w = _sample_weight(sample_weight, x.shape[0], x.dtype)
    dx = np.empty_like(x)
    loss = _losses._svm_loss(x, y, dx, w)
    return loss, dx


def mse_loss(x: ArrayLike, y: ArrayLike,
             sample_weight: Optional[ArrayLike] = None) -> tuple[float, _Array]:
    """Mean squared error for regression: half the squared error, mean over the minibatch.

    ``loss = 0.5 * sum((x - y) ** 2) / N`` -- summed over the D outputs, averaged over
    the N samples -- and ``dx = (x - y) / N``.

    Parameters
    ----------
    x : ndarray of shape (N, D), float32 or float64
        Predictions.
    y : ndarray of shape (N, D), or (N,) when D == 1
        Real-valued targets; cast to the dtype of ``x``.
    sample_weight : ndarray of shape (N,), optional
        Non-negative weights: the loss becomes ``sum(w_i * l_i) / sum(w_i)`` with
        ``l_i = 0.5 * ||x_i - y_i||^2`` (normalised by the sum of the weights) and
        ``dx_i = w_i * (x_i - y_i) / sum(w)``.

    Returns
    -------
    loss : float
    dx : ndarray of shape (N, D), gradient of the loss with respect to x.
    """
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)), ndim=2)
    y = V.as_array(y, "y")
    if y.ndim == 1 and x.shape[1] == 1:
        y = y.reshape(-1, 1)
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x, {x.shape} (one target per output), "
                         f"got shape {y.shape}")
    y = np.ascontiguousarray(y, dtype=x.dtype)
    w = _sample_weight(sample_weight, x.shape[0], x.dtype)
    dx = np.empty_like(x)
    loss = _losses._mse_loss(x, y, dx, w)
    return loss, dx


def softmax(x: ArrayLike) -> _Array:
    """Row-wise softmax probabilities of scores x of shape (N, C), max-subtracted."""
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)), ndim=2)
    probs = np.empty_like(x)
    _losses._softmax(x, probs)
    return probs


# ------------------------------------------------------------------------ dropout

def dropout_forward(x: ArrayLike, dropout_param: dict[str, Any]) -> tuple[_Array, Any]:
    """Inverted dropout.

    Parameters
    ----------
    x : ndarray of any shape
    dropout_param : dict
        'p': probability of keeping each unit (0 < p <= 1); 'mode': 'train' or 'test';
        optional 'seed': ``np.random.seed(seed)`` is called first, on every call.

    In train mode the mask is drawn as ``np.random.rand(*x.shape) < p`` from NumPy's
    global generator and kept units are scaled by 1 / p; test mode returns x.

    Returns
    -------
    out : ndarray shaped like x
    cache : tuple (dropout_param, mask)
    """
    V.check_param_dict(dropout_param, "dropout_param")
    p = V.check_scalar(V.require_key(dropout_param, "p", "dropout_param"),
                       "dropout_param['p']", low=0.0, high=1.0, low_open=True)
    mode = V.check_mode(V.require_key(dropout_param, "mode", "dropout_param"),
                        "dropout_param['mode']")
    x = V.as_array(x, "x")
    x = V.as_float(x, "x", V.float_dtype_of(("x", x)))
    if "seed" in dropout_param and dropout_param["seed"] is not None:
        np.random.seed(V.check_scalar(dropout_param["seed"], "dropout_param['seed']", low=0,
                                      high=2**32 - 1, integer=True))
    mask = None
    if mode == "train":
        mask = np.asarray(np.random.rand(*x.shape) < p)
        out = np.empty_like(x)
        _dense._dropout_apply(x.reshape(-1), mask.reshape(-1).view(np.uint8), 1.0 / p,
                              out.reshape(-1))
    else:
        out = x
    return out, (dropout_param, mask)


def dropout_backward(dout: ArrayLike, cache: Any) -> Any:
    """Backward of :func:`dropout_forward`: ``dx = dout * mask / p`` (train), dout (test)."""
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("cache must be the (dropout_param, mask) tuple from dropout_forward")
    dropout_param, mask = cache
    V.check_param_dict(dropout_param, "dropout_param (from cache)")
    mode = V.check_mode(dropout_param.get("mode"), "dropout_param['mode']")
    dout = V.as_array(dout, "dout")
    dout = V.as_float(dout, "dout", V.float_dtype_of(("dout", dout)))
    if mode == "test" or mask is None:
        return dout
    p = V.check_scalar(dropout_param.get("p"), "dropout_param['p']", low=0.0, high=1.0,
                       low_open=True)
    mask = np.asarray(mask)
    if mask.shape != dout.shape:
        raise ValueError(f"dout has shape {dout.shape} but the dropout mask has shape {mask.shape}")
    mask = np.ascontiguousarray(mask != 0)
    dx = np.empty_like(dout)
    _dense._dropout_apply(dout.reshape(-1), mask.reshape(-1).view(np.uint8), 1.0 / p,
                          dx.reshape(-1))
    return dx


# ------------------------------------------------------------------------ normalisation

def _norm_inputs(x: ArrayLike, gamma: ArrayLike,
                 beta: ArrayLike) -> tuple[np.dtype[Any], _Array, _Array, _Array]:
    dtype, (x, gamma, beta) = V.float_args(x=x, gamma=gamma, beta=beta)
    x = V.as_float(x, "x", dtype, ndim=2)
    d = x.shape[1]
    gamma = V.as_float(gamma, "gamma", dtype, shape=(d,))
    beta = V.as_float(beta, "beta", dtype, shape=(d,))
    return dtype, x, gamma, beta


def _running_stat(bn_param: dict[str, Any], key: str, d: int, dtype: DTypeLike) -> _Array:
    """bn_param[key] as a contiguous (d,) array of dtype, created as zeros on first use."""
    value = bn_param.get(key)
    if value is None:
        value = np.zeros(d, dtype=dtype)
    else:
        value = V.as_float(V.as_array(value, f"bn_param[{key!r}]"), f"bn_param[{key!r}]",
                           dtype, shape=(d,))
    bn_param[key] = value
    return value


def batchnorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike,
                      bn_param: dict[str, Any]) -> tuple[_Array, Any]:
    """Batch normalisation over the minibatch (per feature column).

    Parameters
    ----------
    x : ndarray of shape (N, D)
    gamma, beta : ndarray of shape (D,)
        Scale and shift.
    bn_param : dict
        'mode' ('train' or 'test'), 'eps' (default 1e-5), 'momentum' (default 0.9),
        'running_mean' and 'running_var' (zeros of shape (D,) on first use).

    In train mode ``out = gamma * (x - mu) / sqrt(var + eps) + beta`` with the batch
    mean and (biased) variance, and the running statistics are updated in place:
    ``running = momentum * running + (1 - momentum) * batch``.  Test mode normalises
    with the running statistics.

    Returns
    -------
    out : ndarray of shape (N, D)
    cache : tuple for :func:`batchnorm_backward`
    """
    V.check_param_dict(bn_param, "bn_param")
    mode = V.check_mode(V.require_key(bn_param, "mode", "bn_param"), "bn_param['mode']")
    eps = V.check_scalar(bn_param.get("eps", 1e-5), "bn_param['eps']", low=0.0)
    momentum = V.check_scalar(bn_param.get("momentum", 0.9), "bn_param['momentum']",
                              low=0.0, high=1.0)
    dtype, x, gamma, beta = _norm_inputs(x, gamma, beta)
    n, d = x.shape
    running_mean = _running_stat(bn_param, "running_mean", d, dtype)
    running_var = _running_stat(bn_param, "running_var", d, dtype)
    if np.may_share_memory(running_mean, running_var):
        # both statistics are updated in place: give the variance its own array
        running_var = running_var.copy()
        bn_param["running_var"] = running_var
    out = np.empty_like(x)
    xhat = np.empty_like(x)
    inv_std = np.empty(d, dtype=dtype)
    if mode == "train":
        mean = np.empty(d, dtype=dtype)
        var = np.empty(d, dtype=dtype)
        _norm._bn_forward_train(x, gamma, beta, eps, momentum, running_mean, running_var,
                                out, xhat, mean, var, inv_std)
    else:
        _norm._bn_forward_test(x, gamma, beta, eps, running_mean, running_var, out, xhat,
                               inv_std)
    return out, ("batchnorm", mode, xhat, gamma, inv_std)


def _norm_backward(dout: ArrayLike, cache: Any, kind: str) -> tuple[_Array, _Array, _Array]:
    if not isinstance(cache, tuple) or len(cache) != 5 or cache[0] != kind:
        raise TypeError(f"cache must be the tuple returned by {kind}_forward")
    _, mode, xhat, gamma, inv_std = cache
    dtype, (dout, xhat) = V.float_args(dout=dout, xhat=xhat)
    xhat = V.as_float(xhat, "cache", dtype, ndim=2)
    n, d = xhat.shape
    dout = V.as_float(dout, "dout", dtype, shape=(n, d))
    gamma = V.as_float(V.as_array(gamma, "cache"), "cache", dtype, shape=(d,))
    inv_std = V.as_float(V.as_array(inv_std, "cache"), "cache", dtype,
                         shape=(n,) if kind == "layernorm" else (d,))
    dx = np.empty_like(dout)
    dgamma = np.empty(d, dtype=dtype)
    dbeta = np.empty(d, dtype=dtype)
    if kind == "layernorm":
        _norm._ln_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)
    else:
        _norm._bn_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta,
                           fixed_stats=(mode == "test"))
    return dx, dgamma, dbeta


def batchnorm_backward(dout: ArrayLike, cache: Any) -> tuple[_Array, _Array, _Array]:
    """Backward of :func:`batchnorm_forward`; returns (dx, dgamma, dbeta).

    ``dbeta = dout.sum(0)``, ``dgamma = (dout * xhat).sum(0)`` and
    ``dx = gamma / (N * std) * (N * dout - dbeta - xhat * dgamma)``: the computational
    graph of batch norm (mean, centring, variance, scaling) collapsed to one formula.
    Backward through a test-mode forward treats the statistics as constants.
    """
    return _norm_backward(dout, cache, "batchnorm")


def batchnorm_backward_alt(dout: ArrayLike, cache: Any) -> tuple[_Array, _Array, _Array]:
    """Backward of :func:`batchnorm_forward` in the simplified closed form.

    fastfc computes the simplified form in both functions; the two names exist for
    compatibility and return the same (dx, dgamma, dbeta).
    """
    return _norm_backward(dout, cache, "batchnorm")


def layernorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike,
                      ln_param: dict[str, Any]) -> tuple[_Array, Any]:
    """Layer normalisation: per-sample (row) statistics, the same in train and test.

    Parameters
    ----------
    x : ndarray of shape (N, D)
    gamma, beta : ndarray of shape (D,)
    ln_param : dict
        'eps' (default 1e-5); other keys are ignored.

    Returns
    -------
    out : ndarray of shape (N, D)
    cache : tuple for :func:`layernorm_backward`
    """
    V.check_param_dict(ln_param, "ln_param")
    eps = V.check_scalar(ln_param.get("eps", 1e-5), "ln_param['eps']", low=0.0)
    dtype, x, gamma, beta = _norm_inputs(x, gamma, beta)
    n, d = x.shape
    out = np.empty_like(x)
    xhat = np.empty_like(x)
    mean = np.empty(n, dtype=dtype)
    inv_std = np.empty(n, dtype=dtype)
    _norm._ln_forward(x, gamma, beta, eps, out, xhat, mean, inv_std)
    return out, ("layernorm", "train", xhat, gamma, inv_std)


def layernorm_backward(dout: ArrayLike, cache: Any) -> tuple[_Array, _Array, _Array]:
    """Backward of :func:`layernorm_forward`; returns (dx, dgamma, dbeta)."""
    return _norm_backward(dout, cache, "layernorm")
