"""The monolithic two-layer network with its own ``train`` / ``predict`` loop.

Compatible with the ``neural_net.py`` of the CS231n / CS682 assignment (variant
``'cs231n'``, the default) and of UCLA ECE C147/C247 (variant ``'ucla'``): same
signatures and defaults, the same draws from NumPy's global generator (so
``np.random.seed(k)`` gives the same weights and minibatches), the same formulas and the
same printed lines.  Forward and backward passes run on the compiled kernels of
``fastfc._kernels`` (GEMM over BLAS, fused bias + ReLU, one-pass softmax cross-entropy,
in-place SGD).

The network is ``input -> affine -> ReLU -> affine -> softmax``:

=========  =============================  =====================================
variant    weights stored as              scores
=========  =============================  =====================================
cs231n     W1 (D, H), W2 (H, C)           ``relu(X @ W1 + b1) @ W2 + b2``
ucla       W1 (H, D), W2 (C, H)           ``relu(X @ W1.T + b1) @ W2.T + b2``
=========  =============================  =====================================

with the L2 penalty ``reg * (sum(W1**2) + sum(W2**2))`` for cs231n and
``0.5 * reg * (sum(W1**2) + sum(W2**2))`` for ucla (biases are not regularised).
"""
import math
import warnings
from typing import Any, Callable, NamedTuple, Optional, Union, overload

import numpy as np

from fastfc import _validation as V
from fastfc._kernels import blas as _blas
from fastfc._kernels import dense as _dense
from fastfc._kernels import losses as _losses
from fastfc._kernels import optim as _optim

__all__ = ["TwoLayerNet", "VARIANTS"]

_RELU = _dense.ACT_CODES["relu"]
_IDENTITY = _dense.ACT_CODES["identity"]
_PARAM_NAMES = ("W1", "b1", "W2", "b2")

# blas._axpy takes its scalar first, which stops Cython's fused dispatch from finding the
# float32 specialisation; pick the specialisation by dtype instead.
# (mypy reads a subscripted function as a type application: hence the ignores)
_AXPY: dict[np.dtype, Callable[..., None]] = {
    np.dtype(np.float32): _blas._axpy["float"],  # type: ignore[misc]
    np.dtype(np.float64): _blas._axpy["double"],  # type: ignore[misc,name-defined]
}


class Variant(NamedTuple):
    """How one course's ``neural_net.py`` lays out and regularises the network.

    Attributes
    ----------
    name : str
    transposed : bool
        True when weights are stored (fan_out, fan_in), so a layer computes
        ``x @ W.T + b``; False for (fan_in, fan_out) and ``x @ W + b``.
    l2_scale : float
        The loss adds ``l2_scale * reg * (sum(W1**2) + sum(W2**2))`` and each weight
        gradient ``2 * l2_scale * reg * W``.
    courses : str
    train_reg : float
        The default ``reg`` of ``train()``.
    progress : str
        The line ``train(verbose=True)`` prints every 100 iterations, as a
        ``str.format`` template with the fields ``it``, ``num_iters`` and ``loss``.
    """

    name: str
    transposed: bool
    l2_scale: float
    courses: str
    train_reg: float
    progress: str

    def weight_shape(self, fan_in: int, fan_out: int) -> tuple[int, int]:
        """Stored shape of a weight matrix mapping fan_in features to fan_out."""
        return (fan_out, fan_in) if self.transposed else (fan_in, fan_out)


#: The two course variants of ``TwoLayerNet`` by name, ``'cs231n'`` and ``'ucla'``:
#: weight layout, L2 scaling, ``train``'s default ``reg`` and its progress line.
VARIANTS = {
    # CS231n: print('iteration %d / %d: loss %f' % (it, num_iters, loss))
    "cs231n": Variant("cs231n", transposed=False, l2_scale=1.0,
                      courses="Stanford CS231n, UMass CS682", train_reg=5e-6,
                      progress="iteration {it:d} / {num_iters:d}: loss {loss:f}"),
    # UCLA: print('iteration {} / {}: loss {}'.format(it, num_iters, loss)), the loss
    # printed in full (str of the float)
    "ucla": Variant("ucla", transposed=True, l2_scale=0.5,
                    courses="UCLA ECE C147/C247", train_reg=1e-5,
                    progress="iteration {it} / {num_iters}: loss {loss}"),
}


class _VariantDefault(float):
    """A default value that train() can tell apart from the same number passed in.

    It shows (and compares) as CS231n's default, 5e-6, so the signature reads as the
    course's; when train() finds this very object it uses the variant's own default
    (UCLA's is 1e-5).
    """

    __slots__ = ()


_TRAIN_REG_DEFAULT = _VariantDefault(5e-6)


def _check_variant(variant: Any) -> Variant:
    if not isinstance(variant, str):
        raise TypeError(f"variant must be a str, one of {', '.join(map(repr, VARIANTS))}; "
                        f"got {type(variant).__name__}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}, "
                         f"got {variant!r}")
    return VARIANTS[variant]


def _gemm_w(x: np.ndarray, w: np.ndarray, out: np.ndarray, transposed: bool) -> None:
    """out = x @ w (transposed: x @ w.T), row-major, through BLAS."""
    _blas._gemm(x, w, out, trans_b=transposed)


def _weight_grad(x: np.ndarray, dout: np.ndarray, dw: np.ndarray, transposed: bool) -> None:
    """dw = x.T @ dout (transposed: dw = dout.T @ x, the gradient of a (fan_out, fan_in) w)."""
    if transposed:
        _blas._gemm(dout, x, dw, trans_a=True)
    else:
        _blas._gemm(x, dout, dw, trans_a=True)


class TwoLayerNet:
    """A two-layer fully-connected network with a softmax classifier on top.

    ``input -> fully connected -> ReLU -> fully connected -> softmax``; the network
    takes N samples of dimension D, has a hidden layer of H units and scores C classes.
    It is trained with a softmax cross-entropy loss and L2 regularisation on the weight
    matrices (see the module docstring for the two variants' formulas).

    Parameters
    ----------
    input_size : int
        The dimension D of the input data.
    hidden_size : int
        The number of units H in the hidden layer.
    output_size : int
        The number of classes C.
    std : float, default 1e-4
        Standard deviation of the initial weights: ``W = std * np.random.randn(...)``
        (NumPy's global generator, W1 drawn before W2); biases start at zero.
    variant : {'cs231n', 'ucla'}, default 'cs231n'
        ``'cs231n'`` (CS231n, CS682): W1 of shape (D, H), W2 (H, C) and the penalty
        ``reg * sum(W**2)``.  ``'ucla'`` (C147/C247): W1 of shape (H, D), W2 (C, H) and
        the penalty ``0.5 * reg * sum(W**2)``.

    Attributes
    ----------
    params : dict
        'W1', 'b1' (H,), 'W2', 'b2' (C,), in that order; float64 as drawn.  Cast them
        (for example to float32) and every computation follows their dtype.
    variant : str

    Examples
    --------
    >>> import numpy as np
    >>> from fastfc.classifiers.neural_net import TwoLayerNet
    >>> np.random.seed(0)
    >>> net = TwoLayerNet(4, 10, 3, std=1e-1)
    >>> net.params['W1'].shape
    (4, 10)
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4,
                 variant: str = "cs231n") -> None:
        spec = _check_variant(variant)
        input_size = V.check_scalar(input_size, "input_size", low=1, integer=True)
        hidden_size = V.check_scalar(hidden_size, "hidden_size", low=1, integer=True)
        output_size = V.check_scalar(output_size, "output_size", low=1, integer=True)
        std = V.check_scalar(std, "std", low=0.0)
        self.variant = spec.name
        self.params: dict[str, np.ndarray] = {}
        self.params["W1"] = std * np.random.randn(*spec.weight_shape(input_size, hidden_size))
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = std * np.random.randn(*spec.weight_shape(hidden_size, output_size))
        self.params["b2"] = np.zeros(output_size)

    def __repr__(self) -> str:
        try:
            _, (w1, _, w2, _) = self._checked_params()
            d, h, c = self._sizes(w1, w2)
            sizes = f"{d}, {h}, {c}"
        except (TypeError, ValueError):
            sizes = "?"
        return f"TwoLayerNet({sizes}, variant={self.variant!r})"

    # ------------------------------------------------------------------ checks

    @property
    def _spec(self) -> Variant:
        return _check_variant(self.variant)

    def _sizes(self, w1: np.ndarray, w2: np.ndarray) -> tuple[int, int, int]:
        """(D, H, C) from the stored weight shapes."""
        if self._spec.transposed:
            return w1.shape[1], w1.shape[0], w2.shape[0]
        return w1.shape[0], w1.shape[1], w2.shape[1]

    def _checked_params(self) -> tuple[np.dtype, tuple[np.ndarray, ...]]:
        """(dtype, [W1, b1, W2, b2]) as C-contiguous arrays of one float dtype.

        No copy is made when a parameter already is C-contiguous of that dtype (the
        usual case), so in-place changes to ``self.params`` are seen on the next call.
        """
        V.check_param_dict(self.params, "params")
        missing = [k for k in _PARAM_NAMES if k not in self.params]
        if missing:
            raise ValueError(f"params is missing {', '.join(map(repr, missing))}")
        # strict: train() updates these arrays in place, which promoted copies would defeat
        dtype, arrays = V.float_args(promote=False,
                                     **{k: self.params[k] for k in _PARAM_NAMES})
        w1 = V.as_float(arrays[0], "params['W1']", dtype, ndim=2)
        transposed = self._spec.transposed
        h = w1.shape[0] if transposed else w1.shape[1]
        b1 = V.as_float(arrays[1], "params['b1']", dtype, shape=(h,))
        w2 = V.as_float(arrays[2], "params['W2']", dtype, ndim=2)
        if (w2.shape[1] if transposed else w2.shape[0]) != h:
            want = "(C, %d)" % h if transposed else "(%d, C)" % h
            raise ValueError(f"params['W2'] must have shape {want} to follow params['W1'] "
                             f"of shape {w1.shape} ({self.variant} layout), got {w2.shape}")
        c = w2.shape[0] if transposed else w2.shape[1]
        b2 = V.as_float(arrays[3], "params['b2']", dtype, shape=(c,))
        return dtype, (w1, b1, w2, b2)

    def _check_x(self, X_in: Any, name: str, dtype: np.dtype, n_features: int,
                 convert: bool = True) -> np.ndarray:
        X: np.ndarray = V.as_array(X_in, name)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional (N, D), got shape {X.shape}"
                             + (" (flatten the samples with X.reshape(len(X), -1))"
                                if X.ndim > 2 else ""))
        if X.shape[1] != n_features:
            raise ValueError(f"{name} has {X.shape[1]} features per sample but the network "
                             f"takes {n_features} (input_size); {name} must have shape "
                             f"(N, {n_features})")
        if X.shape[0] == 0:
            raise ValueError(f"{name} must not be empty, got shape {X.shape}")
        return V.as_float(X, name, dtype) if convert else X

    # ------------------------------------------------------------------ compute

    def _forward(self, X: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
                 b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hidden = relu(X @ W1 + b1); scores = hidden @ W2 + b2 (ucla: W.T)."""
        transposed = self._spec.transposed
        n = X.shape[0]
        hidden = np.empty((n, b1.shape[0]), dtype=X.dtype)
        scores = np.empty((n, b2.shape[0]), dtype=X.dtype)
        # hidden = relu(X @ W1 + b1)        ucla: relu(X @ W1.T + b1)
        _gemm_w(X, w1, hidden, transposed)
        _dense._bias_act(_RELU, hidden, b1, hidden)
        # scores = hidden @ W2 + b2         ucla: hidden @ W2.T + b2
        _gemm_w(hidden, w2, scores, transposed)
        _dense._bias_act(_IDENTITY, scores, b2, scores)
        return hidden, scores

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray, reg: float, w1: np.ndarray,
                        b1: np.ndarray, w2: np.ndarray,
                        b2: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Softmax loss + L2 and the gradients of every parameter (validated inputs)."""
        spec = self._spec
        transposed = spec.transposed
        hidden, scores = self._forward(X, w1, b1, w2, b2)
        # loss = mean_i -log softmax(scores_i)[y_i]; dscores = (softmax - onehot(y)) / N
        dscores = np.empty_like(scores)
        loss = _losses._softmax_loss(scores, y, dscores)

        dw2 = np.empty_like(w2)
        db2 = np.empty_like(b2)
        # dW2 = hidden.T @ dscores           ucla: dscores.T @ hidden
        _weight_grad(hidden, dscores, dw2, transposed)
        np.sum(dscores, axis=0, out=db2)
        # dhidden = dscores @ W2.T           ucla: dscores @ W2
        dhidden = np.empty_like(hidden)
        _blas._gemm(dscores, w2, dhidden, trans_b=not transposed)
        # dhidden *= (hidden > 0)
        _dense._act_backward(_RELU, None, hidden.reshape(-1), dhidden.reshape(-1))
        dw1 = np.empty_like(w1)
        db1 = np.empty_like(b1)
        # dW1 = X.T @ dhidden                ucla: dhidden.T @ X  (dX is never needed)
        _weight_grad(X, dhidden, dw1, transposed)
        np.sum(dhidden, axis=0, out=db1)

        if reg != 0.0:
            scale = spec.l2_scale * reg
            loss += scale * (_dense._sum_sq(w1.reshape(-1)) + _dense._sum_sq(w2.reshape(-1)))
            axpy = _AXPY[w1.dtype]
            # dW += 2 * l2_scale * reg * W
            axpy(2.0 * scale, w1.reshape(-1), dw1.reshape(-1))
            axpy(2.0 * scale, w2.reshape(-1), dw2.reshape(-1))
        grads = {"W1": dw1, "b1": db1, "W2": dw2, "b2": db2}
        return float(loss), grads

    # ------------------------------------------------------------------ public API

    @overload
    def loss(self, X: np.ndarray, y: None = None, reg: float = 0.0) -> np.ndarray: ...

    @overload
    def loss(self, X: np.ndarray, y: np.ndarray,
             reg: float = 0.0) -> tuple[float, dict[str, np.ndarray]]: ...

    def loss(self, X: np.ndarray, y: Optional[np.ndarray] = None,
             reg: float = 0.0) -> Union[np.ndarray, tuple[float, dict[str, np.ndarray]]]:
        """Class scores, or the loss and its gradients, for a minibatch.

        With ``s = relu(X @ W1 + b1) @ W2 + b2`` (ucla: ``W1.T``, ``W2.T``)::

            loss = -1/N sum_i log(exp(s[i, y_i]) / sum_j exp(s[i, j]))
                   + l2_scale * reg * (sum(W1**2) + sum(W2**2))

        where l2_scale is 1 for cs231n and 0.5 for ucla.

        Parameters
        ----------
        X : ndarray of shape (N, D)
            Input data; cast to the dtype of ``params`` (float64 unless the params were
            cast).  Any memory layout.
        y : ndarray of shape (N,), integer, optional
            Labels in [0, C).  When None, only the scores are computed.
        reg : float, default 0.0
            Regularisation strength (>= 0).

        Returns
        -------
        scores : ndarray of shape (N, C)
            When y is None: ``scores[i, c]`` is the score of class c for sample i.
        loss : float
            Otherwise: the data loss plus the L2 penalty ...
        grads : dict
            ... and the gradients, keyed like ``params`` and shaped like them.
        """
        dtype, (w1, b1, w2, b2) = self._checked_params()
        d, _, c = self._sizes(w1, w2)
        X = self._check_x(X, "X", dtype, d)
        reg = V.check_scalar(reg, "reg", low=0.0)
        if y is None:
            return self._forward(X, w1, b1, w2, b2)[1]
        y = V.as_labels(y, "y", X.shape[0], c)
        return self._loss_and_grads(X, y, reg, w1, b1, w2, b2)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels: ``argmax_c scores[i, c]``.

        Parameters
        ----------
        X : ndarray of shape (N, D)

        Returns
        -------
        y_pred : ndarray of shape (N,), integer (intp)
            Labels in [0, C).
        """
        return np.argmax(self.loss(X), axis=1)

    def train(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
              learning_rate: float = 1e-3, learning_rate_decay: float = 0.95,
              reg: float = _TRAIN_REG_DEFAULT, num_iters: int = 100, batch_size: int = 200,
              verbose: bool = False) -> dict[str, list[Any]]:
        """Train with minibatch stochastic gradient descent.

        Each iteration draws ``np.random.choice(num_train, batch_size, replace=True)``
        from NumPy's global generator, computes ``loss, grads = self.loss(X_batch,
        y=y_batch, reg=reg)`` and updates ``params[k] -= learning_rate * grads[k]``.
        With ``iterations_per_epoch = max(num_train / batch_size, 1)`` (true division,
        as in the reference), whenever ``it % iterations_per_epoch == 0`` the accuracy
        on the current minibatch and on the validation set is recorded (after the
        update) and ``learning_rate *= learning_rate_decay``.

        Parameters
        ----------
        X : ndarray of shape (N, D)
            Training data.
        y : ndarray of shape (N,), integer
            Training labels in [0, C).
        X_val : ndarray of shape (N_val, D)
        y_val : ndarray of shape (N_val,), integer
        learning_rate : float, default 1e-3
        learning_rate_decay : float, default 0.95
            Factor applied to the learning rate at each epoch.
        reg : float, default 5e-6 (cs231n) or 1e-5 (ucla)
            Regularisation strength; when not given, the variant's course default.
        num_iters : int, default 100
            Number of steps.
        batch_size : int, default 200
            Samples per step (drawn with replacement, so it may exceed N).
        verbose : bool, default False
            Print the loss every 100 iterations, in the variant's format: cs231n
            ``'iteration %d / %d: loss %f' % (it, num_iters, loss)``, ucla
            ``'iteration {} / {}: loss {}'.format(it, num_iters, loss)`` (full float).

        Returns
        -------
        stats : dict
            'loss_history' (one float per iteration), 'train_acc_history' and
            'val_acc_history' (one value per epoch).

        Warns
        -----
        RuntimeWarning
            Once, if the loss stops being finite (training goes on, as in the
            reference); lower the learning rate or scale the inputs.
        """
        dtype, checked = self._checked_params()
        # The update runs in place on params: keep them as C-contiguous arrays of dtype
        # (a no-op unless the user stored other arrays there).
        for k, arr in zip(_PARAM_NAMES, checked):
            if self.params[k] is not arr:
                self.params[k] = arr
        w1, _, w2, _ = checked
        d, _, c = self._sizes(w1, w2)
        X = self._check_x(X, "X", dtype, d, convert=False)
        num_train = X.shape[0]
        y = V.as_labels(y, "y", num_train, c)
        X_val = self._check_x(X_val, "X_val", dtype, d)
        y_val = V.as_labels(y_val, "y_val", X_val.shape[0], c)
        learning_rate = V.check_scalar(learning_rate, "learning_rate", low=0.0)
        learning_rate_decay = V.check_scalar(learning_rate_decay, "learning_rate_decay",
                                             low=0.0)
        if reg is _TRAIN_REG_DEFAULT:
            reg = self._spec.train_reg
        reg = V.check_scalar(reg, "reg", low=0.0)
        num_iters = V.check_scalar(num_iters, "num_iters", low=0, integer=True)
        batch_size = V.check_scalar(batch_size, "batch_size", low=1, integer=True)

        iterations_per_epoch = max(num_train / batch_size, 1)
        loss_history = []
        train_acc_history = []
        val_acc_history = []
        warned = False
        for it in range(num_iters):
            batch = np.random.choice(num_train, batch_size, replace=True)
            X_batch = np.ascontiguousarray(X[batch], dtype=dtype)
            y_batch = y[batch]

            loss, grads = self.loss(X_batch, y=y_batch, reg=reg)
            loss_history.append(loss)
            if not warned and not math.isfinite(loss):
                warnings.warn(
                    f"the loss is {loss} at iteration {it}: training diverged; lower the "
                    "learning rate or scale the inputs", RuntimeWarning, stacklevel=2)
                warned = True

            # params[k] -= learning_rate * grads[k]
            self._sgd_step(grads, learning_rate)

            if verbose and it % 100 == 0:
                print(self._spec.progress.format(it=it, num_iters=num_iters, loss=loss))

            if it % iterations_per_epoch == 0:
                train_acc = (self.predict(X_batch) == y_batch).mean()
                val_acc = (self.predict(X_val) == y_val).mean()
                train_acc_history.append(train_acc)
                val_acc_history.append(val_acc)
                learning_rate *= learning_rate_decay

        return {
            "loss_history": loss_history,
            "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history,
        }

    def _sgd_step(self, grads: dict[str, np.ndarray], learning_rate: float) -> None:
        """params[k] -= learning_rate * grads[k], in place, for every parameter."""
        for k, w in self.params.items():
            dw = grads[k]
            if (isinstance(w, np.ndarray) and isinstance(dw, np.ndarray)
                    and w.dtype in _AXPY and dw.dtype == w.dtype and dw.shape == w.shape
                    and w.flags.c_contiguous and w.flags.writeable):
                _optim._sgd(w.reshape(-1), np.ascontiguousarray(dw).reshape(-1),
                            learning_rate)
            else:  # params or grads of another kind (a subclass's loss): NumPy semantics
                self.params[k] -= learning_rate * dw
