"""Fully-connected nets with the CS231n ``classifiers/fc_net.py`` interface.

Both classes keep the reference's contract -- parameter names and shapes, the order of
calls on NumPy's global random generator, ``loss(X, y=None)`` returning scores or
``(loss, grads)`` -- and compute through fastfc's compiled layers.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastfc import _validation as V
from fastfc import layers as L
from fastfc._kernels.dense import _sum_sq

if TYPE_CHECKING:
    from fastfc.classifiers._fused import FusedStep
    from fastfc.solver import Solver

__all__ = ["TwoLayerNet", "FullyConnectedNet"]


def _l2(params: Mapping[str, NDArray[Any]], names: Iterable[str]) -> float:
    """sum of (W**2).sum() over the named weights.

    Computed by fastfc's own kernel: np.dot would wake NumPy's separate OpenBLAS thread
    pool, whose spinning threads then compete with the pool fastfc's GEMMs use.
    """
    return sum(_sum_sq(np.ascontiguousarray(params[k]).reshape(-1)) for k in names)


class TwoLayerNet:
    """Two-layer net: affine - relu - affine - softmax.

    Parameters
    ----------
    input_dim : int
        D, the number of input features.
    hidden_dim : int
        H, the hidden layer width (UCLA spells it ``hidden_dims``).
    num_classes : int
        C.
    weight_scale : float
        Standard deviation of the Gaussian weight initialisation.
    reg : float
        L2 strength; the loss adds ``0.5 * reg * (sum(W1**2) + sum(W2**2))``.
    dropout : float
        UCLA's drop probability after the hidden ReLU (0, the default, is off).

    Attributes
    ----------
    params : dict
        W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).  W1 is drawn before W2 from NumPy's
        global generator; biases start at zero.
    """

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dim: int = 100,
                 num_classes: int = 10, weight_scale: float = 1e-3, reg: float = 0.0,
                 hidden_dims: Optional[int] = None, dropout: float = 0) -> None:
        if hidden_dims is not None:
            hidden_dim = hidden_dims
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim),
                            ("num_classes", num_classes)):
            V.check_scalar(value, name, low=1, integer=True)
        weight_scale = V.check_scalar(weight_scale, "weight_scale", low=0.0)
        self.reg = V.check_scalar(reg, "reg", low=0.0)
        dropout = V.check_scalar(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        self.dropout_param = {"mode": "train", "p": 1.0 - dropout} if dropout > 0 else None
        self.params: dict[str, NDArray[Any]] = {}
        self.params["W1"] = weight_scale * np.random.randn(int(input_dim), int(hidden_dim))
        self.params["b1"] = np.zeros(int(hidden_dim))
        self.params["W2"] = weight_scale * np.random.randn(int(hidden_dim), int(num_classes))
        self.params["b2"] = np.zeros(int(num_classes))

    def loss(self, X: ArrayLike, y: Optional[ArrayLike] = None) -> Any:
        """Scores (N, C) when y is None, else (loss, grads) for a minibatch X (N, d1, ...)."""
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        X = V.as_array(X, "X")
        if X.dtype != W1.dtype:
            X = X.astype(W1.dtype)
        a1, fc1 = L.affine_forward(X, W1, b1)
        h1, relu1 = L.relu_forward(a1)
        drop_cache = None
        if self.dropout_param is not None:
            self.dropout_param["mode"] = "test" if y is None else "train"
            h1, drop_cache = L.dropout_forward(h1, self.dropout_param)
        scores, fc2 = L.affine_forward(h1, W2, b2)
        if y is None:
            return scores
        loss, dscores = L.softmax_loss(scores, y)
        loss += 0.5 * self.reg * _l2(self.params, ("W1", "W2"))
        dh1, dW2, db2 = L.affine_backward(dscores, fc2)
        if drop_cache is not None:
            dh1 = L.dropout_backward(dh1, drop_cache)
        da1 = L.relu_backward(dh1, relu1)
        _, dW1, db1 = L._affine_backward(da1, fc1, need_dx=False)
        grads = {"W1": dW1 + self.reg * W1, "b1": db1, "W2": dW2 + self.reg * W2, "b2": db2}
        return loss, grads


class FullyConnectedNet:
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    Parameters
    ----------
    hidden_dims : list of int
        Width of each hidden layer.
    input_dim : int
    num_classes : int
    dropout_keep_ratio : float in (0, 1]
        Probability of keeping a unit after each hidden ReLU; 1 means no dropout.
    normalization : {None, 'batchnorm', 'layernorm'}
    reg : float
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over the weights.
    weight_scale : float
        Standard deviation of the Gaussian weight initialisation.
    dtype : numpy float type
        Every parameter and every input is cast to it (float32 trains, float64 checks
        gradients).
    seed : int or None
        Makes dropout deterministic: ``np.random.seed(seed)`` before every mask.
    dropout : float, optional
        Legacy spelling: the probability of DROPPING a unit (0 = off); sets
        ``dropout_keep_ratio = 1 - dropout``.
    use_batchnorm : bool, optional
        Legacy spelling of ``normalization='batchnorm'``.

    Parameters are W1..WL, b1..bL (W_i drawn right before b_i from NumPy's global
    generator, in layer order) and gamma_i (ones), beta_i (zeros) for normalised layers.
    """

    # The dropout pair the net calls (``dropout_param['p']`` is the KEEP probability);
    # fastfc.nndl's net swaps in UCLA's pair, whose 'p' is the drop probability.
    _dropout_forward = staticmethod(L.dropout_forward)
    _dropout_backward = staticmethod(L.dropout_backward)

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32,
                 num_classes: int = 10, dropout_keep_ratio: float = 1,
                 normalization: Optional[str] = None, reg: float = 0.0,
                 weight_scale: float = 1e-2, dtype: DTypeLike = np.float32,
                 seed: Optional[int] = None, dropout: Optional[float] = None,
                 use_batchnorm: Optional[bool] = None) -> None:
        if dropout is not None:
            dropout = V.check_scalar(dropout, "dropout", low=0.0, high=1.0, high_open=True)
            dropout_keep_ratio = 1.0 - dropout
        if use_batchnorm is not None:
            normalization = "batchnorm" if use_batchnorm else None
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError("normalization must be None, 'batchnorm' or 'layernorm', "
                             f"got {normalization!r}")
        dropout_keep_ratio = V.check_scalar(dropout_keep_ratio, "dropout_keep_ratio",
                                            low=0.0, high=1.0, low_open=True)
        try:
            hidden_dims = [int(h) for h in hidden_dims]
        except TypeError:
            raise TypeError("hidden_dims must be a list of integers") from None
        dims = [V.check_scalar(input_dim, "input_dim", low=1, integer=True)]
        dims += [V.check_scalar(h, "hidden_dims", low=1, integer=True) for h in hidden_dims]
        dims += [V.check_scalar(num_classes, "num_classes", low=1, integer=True)]
        weight_scale = V.check_scalar(weight_scale, "weight_scale", low=0.0)
        dtype = V.check_float_dtype(dtype)

        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = V.check_scalar(reg, "reg", low=0.0)
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype.type
        self.params = {}
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if normalization and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        self.bn_params = []
        if self.normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        if self.normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    def to_onnx(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Write the net's test-mode pass to ``path`` as an ONNX graph; returns the
        ``onnx.ModelProto``.  Needs the ``onnx`` package; ``options`` are those of
        :func:`fastfc.onnx.to_onnx_model`."""
        from fastfc.onnx import export_onnx
        return export_onnx(self, path, **options)

    def make_solver_step(self, solver: Solver) -> Optional[FusedStep]:
        """The Solver's step accelerator for this net, or None (the model protocol's
        optional hook, see :mod:`fastfc._protocols`).

        A plain net (ReLU, softmax, no dropout, no normalisation) trained with a named
        update rule takes each Solver step as one compiled :meth:`fastfc.Net.train_step`
        sharing this net's arrays (:class:`fastfc.classifiers._fused.FusedStep`); the
        course path's results, shapes and calls stay as they are.
        """
        from fastfc.classifiers._fused import FusedStep
        return FusedStep.for_solver(solver)

    def loss(self, X: ArrayLike, y: Optional[ArrayLike] = None) -> Any:
        """Scores (N, C) when y is None (test mode), else (loss, grads) in train mode."""
        X = V.as_array(X, "X").astype(self.dtype, copy=False)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        caches = []
        out = X
        for i in range(1, self.num_layers):
            out, fc_cache = L.affine_forward(out, self.params[f"W{i}"], self.params[f"b{i}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                out, norm_cache = L.batchnorm_forward(
                    out, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1])
            elif self.normalization == "layernorm":
                out, norm_cache = L.layernorm_forward(
                    out, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1])
            out, relu_cache = L.relu_forward(out)
            drop_cache = None
            if self.use_dropout:
                out, drop_cache = self._dropout_forward(out, self.dropout_param)
            caches.append((fc_cache, norm_cache, relu_cache, drop_cache))
        n = self.num_layers
        scores, last_cache = L.affine_forward(out, self.params[f"W{n}"], self.params[f"b{n}"])
        if mode == "test":
            return scores

        loss, dscores = L.softmax_loss(scores, y)  # type: ignore[arg-type]  # train: y given
        loss += 0.5 * self.reg * _l2(self.params, [f"W{i}" for i in range(1, n + 1)])
        grads = {}
        dout, grads[f"W{n}"], grads[f"b{n}"] = L._affine_backward(dscores, last_cache, n > 1)
        for i in range(n - 1, 0, -1):
            fc_cache, norm_cache, relu_cache, drop_cache = caches[i - 1]
            if drop_cache is not None:
                dout = self._dropout_backward(dout, drop_cache)
            dout = L.relu_backward(dout, relu_cache)
            if self.normalization == "batchnorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = L.batchnorm_backward(dout, norm_cache)
            elif self.normalization == "layernorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = L.layernorm_backward(dout, norm_cache)
            # the first layer's dx is never needed
            dout, grads[f"W{i}"], grads[f"b{i}"] = L._affine_backward(dout, fc_cache, i > 1)
        for i in range(1, n + 1):
            grads[f"W{i}"] += self.reg * self.params[f"W{i}"]
        return loss, grads
