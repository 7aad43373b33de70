"""Net: the fast fully-connected network.

``Net`` owns its parameters in one flat buffer, preallocated activations, gradients and
optimiser state, and runs a whole training step -- forward, loss, backward, update --
in one compiled call (``fastfc._kernels.net``) with no Python per layer and no
allocation once the workspaces exist.  It also keeps the CS231n model contract
(``params`` dict, ``loss(X, y=None)``), so the Solver, GradientCheck and pickle work
with it, and the Solver uses :meth:`Net.train_step` automatically.

One Net may be shared between threads: every public method (and every write through
``params``, ``reg``, ``learning_rate``) holds the Net's own lock, so calls on one Net
run one after the other, in some order; the compiled step itself still runs without
the GIL, so different Nets train in parallel.
"""
from __future__ import annotations

import functools
import json
import math
import os
import threading
import warnings
from typing import (Any, Callable, Concatenate, Dict, Iterable, Mapping, Optional, ParamSpec,
                    Sequence, TypeVar, overload)

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastfc import _registry
from fastfc import _validation as V
from fastfc import checkpoint as _checkpoint
from fastfc import optim as _optim
from fastfc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fastfc import _openblas
from fastfc._kernels import net as _knet

__all__ = ["Net"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_Array = NDArray[Any]

#: the hidden-layer activations (rows of fastfc._registry.ACTIVATIONS)
ACTIVATIONS = tuple(_registry.ACTIVATIONS)
INITS = _registry.INITS
NET_FORMAT = 1              # version of the "net" part of a saved Net's header
# test-mode scores are computed this many rows at a time (or the training batch, if
# larger), so that one big loss(X) does not leave a workspace sized for all of X
EVAL_CHUNK = 1024
# Net.load refuses files whose architecture has more layers than this
MAX_LOADED_LAYERS = 1000


def _serialised(method: Callable[Concatenate[Net, _P], _R]
                ) -> Callable[Concatenate[Net, _P], _R]:
    """Run the method holding the Net's lock (one call at a time per Net)."""
    @functools.wraps(method)
    def locked(self: Net, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _readonly(arr: _Array) -> _Array:
    view = arr.view()
    view.flags.writeable = False
    return view


class _ParamDict(dict[str, _Array]):
    """The Net's parameters by name.  Values are views of the Net's flat buffer;
    assigning ``params[name] = array`` (or ``update``, ``|=``) copies the values into
    that buffer.  Entries can be neither replaced nor removed."""

    def __init__(self, views: Mapping[str, _Array], lock: Any) -> None:
        dict.__init__(self, views)
        self._lock = lock

    def _target(self, key: str, value: ArrayLike) -> tuple[_Array, _Array]:
        if key not in self:
            raise KeyError(f"Net has no parameter {key!r}; it has {', '.join(self)}")
        target = dict.__getitem__(self, key)
        value = V.as_array(value, f"params[{key!r}]")
        if value.shape != target.shape:
            raise ValueError(
                f"params[{key!r}] must have shape {target.shape}, got {value.shape}"
            )
        return target, value

    def __setitem__(self, key: str, value: ArrayLike) -> None:
        self.update({key: value})

    # dict.update's overloads take the other mapping positional-only; this one keeps the
    # historical signature (``other`` may be passed by name)
    def update(self, other: Any = (), **kwargs: ArrayLike) -> None:  # type: ignore[override]
        """Copy the given arrays into the parameters (all checked before any is copied)."""
        pairs = [self._target(key, value) for key, value in dict(other, **kwargs).items()]
        with self._lock:
            for target, value in pairs:
                if value is not target:
                    np.copyto(target, value, casting="unsafe")

    def __ior__(self, other: Any) -> _ParamDict:  # type: ignore[override,misc]  # as update
        self.update(other)
        return self

    def __delitem__(self, key: str) -> None:
        raise TypeError("Net parameters cannot be removed")

    def pop(self, *args: Any) -> Any:
        raise TypeError("Net parameters cannot be removed")

    def popitem(self) -> Any:
        raise TypeError("Net parameters cannot be removed")

    def clear(self) -> None:
        raise TypeError("Net parameters cannot be removed")

    def setdefault(self, key: str, default: Any = None) -> _Array:
        if key not in self:
            raise KeyError(f"Net has no parameter {key!r}")
        return self[key]

    def copy(self) -> dict[str, _Array]:
        return {k: np.array(v, copy=True) for k, v in self.items()}

    def __reduce__(self) -> tuple[type, tuple[dict[str, _Array]]]:
        return (dict, (self.copy(),))


class Net:
    """A fully-connected network: {affine - [norm] - activation - [dropout]} x (L-1) - affine - loss.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[input_dim, hidden_1, ..., hidden_{L-1}, num_classes]``.
    activation : str
        Any name in ``fastfc.net.ACTIVATIONS`` (default 'relu').
    dropout_keep_ratio : float in (0, 1]
        Probability of keeping a hidden unit (1 = no dropout).  Masks come from a
        counter-based generator keyed by the seed and the step number: repeated
        ``loss`` calls at one step draw the same masks (gradient checks work), every
        ``train_step`` draws new ones.
    normalization : None or str
        None or a name in ``fastfc._registry.NORMALIZATIONS``.
    reg : float
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over the weights.
    weight_scale : float or None
        Weights ``weight_scale * randn`` (as FullyConnectedNet).  Give this or ``init``.
    init : {'he', 'xavier'} or None
        'he': ``randn * sqrt(2 / fan_in)``; 'xavier': ``randn * sqrt(2 / (fan_in +
        fan_out))``.  Default when neither is given: the activation's own (its
        ``init`` in ``fastfc._registry.ACTIVATIONS``: 'he' for the rectifiers, 'xavier'
        for the saturating ones).
    dtype : np.float32 or np.float64
    seed : int or None
        Seeds the weights and dropout.  None draws them from NumPy's global generator,
        in the order FullyConnectedNet does (W1, W2, ...), so that after the same
        ``np.random.seed`` both nets start from the same weights.
    alpha : float
        Slope of the leaky rectifier for negative inputs.
    loss : str
        A name in ``fastfc._registry.LOSSES`` (default 'softmax').  'softmax'
        (cross-entropy) and 'svm' (multiclass hinge) take integer labels; 'mse'
        (regression) takes float targets of shape (N, num_outputs) -- the last of
        ``layer_dims`` -- and is ``0.5 * ||scores - y||^2`` summed over the outputs and
        averaged over the batch.  For an 'mse' net :meth:`predict` returns the outputs.
    bn_momentum, eps : float
        Running-statistics momentum and variance epsilon of the normalisation.
    label_smoothing : float in [0, 1), default 0.0
        Label smoothing ``eps`` of the 'softmax' loss (refused with any other loss
        unless 0): each sample's target becomes ``q = (1 - eps) * onehot(y) + eps / C``
        and its loss ``-sum_k q_k log p_k``, as ``torch.nn.CrossEntropyLoss(
        label_smoothing=eps)``; the gradient of the scores is ``(p - q) / N``.  The loss
        that :meth:`train_step` and ``loss(X, y)`` return (and the Solver records) is
        this smoothed training objective, not the plain negative log-likelihood: it
        cannot fall below the entropy of q (about 0.5 for eps 0.1 and 10 classes).
        0 computes exactly what a net without smoothing computes.  Saved with the net;
        settable between steps (``net.label_smoothing = 0.05``).
    compute_dtype : None, 'float32' or 'bfloat16', default None
        The precision of this net's matrix products.  'bfloat16' rounds both operands
        of every product of a step (activations, weights, upstream gradients) to
        bfloat16, round to nearest even -- each operand once per step, shared by the
        products that use it -- and accumulates in float32 with a bf16 GEMM:
        fastfc's own where the CPU has AVX512-BF16 (AMD Zen 4 and later, Intel since
        Cooper Lake), MKL's on Intel CPUs when it is installed (``pip install
        "fastfc[mkl]"``; it uses AMX), MKL's emulation elsewhere; a RuntimeError says
        so when none can run (:func:`fastfc.set_bf16_gemm` chooses).
        Parameters, optimiser state, losses and normalisation statistics stay
        float32, so :meth:`save` and checkpoints hold the float32 master copy.
        ``fastfc.show_config()`` says which GEMM runs and whether it is accelerated;
        emulated, it is slower than float32.  Needs ``dtype=np.float32``.  None
        follows the process-wide
        :func:`fastfc.set_compute_dtype` (float32 unless changed).  Settable between
        steps; saved with the net.

    Attributes
    ----------
    params : dict of name -> ndarray
        W1, b1[, gamma1, beta1], ..., WL, bL (views of the flat buffer; assigning to an
        entry copies into it).
    """

    metadata: Dict[str, Any]    # set by Net.load: the metadata saved with the net

    def __init__(self, layer_dims: Sequence[int], activation: str = "relu",
                 dropout_keep_ratio: float = 1, normalization: Optional[str] = None,
                 reg: float = 0.0, weight_scale: Optional[float] = None,
                 init: Optional[str] = None, dtype: DTypeLike = np.float32,
                 seed: Optional[int] = None, alpha: float = 0.01, loss: str = "softmax",
                 bn_momentum: float = 0.9, eps: float = 1e-5,
                 label_smoothing: float = 0.0,
                 compute_dtype: Optional[str] = None) -> None:
        dims = self._check_dims(layer_dims)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if normalization not in _registry.NORMALIZATIONS:
            raise ValueError("normalization must be "
                             f"{_registry.choices(_registry.NORMALIZATIONS)}, "
                             f"got {normalization!r}")
        if loss not in _registry.LOSSES:
            raise ValueError(f"loss must be {_registry.choices(_registry.LOSSES)}, "
                             f"got {loss!r}")
        keep = V.check_scalar(dropout_keep_ratio, "dropout_keep_ratio", low=0.0, high=1.0,
                              low_open=True)
        reg = V.check_scalar(reg, "reg", low=0.0)
        alpha = V.check_scalar(alpha, "alpha", low=0.0)
        bn_momentum = V.check_scalar(bn_momentum, "bn_momentum", low=0.0, high=1.0)
        eps = V.check_scalar(eps, "eps", low=0.0)
        label_smoothing = _check_label_smoothing(label_smoothing, loss)
        if weight_scale is not None and init is not None:
            raise ValueError("give weight_scale or init, not both")
        if weight_scale is not None:
            weight_scale = V.check_scalar(weight_scale, "weight_scale", low=0.0)
        if init is None and weight_scale is None:
            init = _registry.ACTIVATIONS[activation].init
        if init is not None and init not in INITS:
            raise ValueError(f"init must be {_registry.choices(INITS)}, got {init!r}")
        dtype = V.check_float_dtype(dtype)
        if seed is not None:
            seed = V.check_scalar(seed, "seed", low=0, integer=True)

        self.layer_dims = dims
        self.num_layers = len(dims) - 1
        self.activation = activation
        self.dropout_keep_ratio = keep
        self.use_dropout = keep < 1.0
        self.normalization = normalization
        self.alpha = alpha
        self.loss_name = loss
        self.bn_momentum = bn_momentum
        self.eps = eps
        self.weight_scale = weight_scale
        self.init = init
        self.seed = seed
        self.dtype = dtype.type

        rng = np.random.RandomState(seed) if seed is not None else np.random
        initial = {}
        for i in range(self.num_layers):
            fan_in, fan_out = dims[i], dims[i + 1]
            if weight_scale is not None:
                scale = weight_scale
            elif init == "he":
                scale = math.sqrt(2.0 / fan_in)
            else:
                scale = math.sqrt(2.0 / (fan_in + fan_out))
            initial[f"W{i + 1}"] = scale * rng.randn(fan_in, fan_out)
        drop_key = int(rng.randint(0, 2**31 - 1)) if self.use_dropout else 0
        self._build(drop_key)
        for name, value in initial.items():
            self.params[name] = value
        self.reg = reg
        self._core.label_smoothing = label_smoothing
        self.compute_dtype = compute_dtype

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _check_dims(layer_dims: Iterable[Any]) -> list[int]:
        try:
            dims = [int(d) for d in layer_dims]
        except (TypeError, ValueError):
            raise TypeError("layer_dims must be a sequence of integers "
                            "[input_dim, hidden..., num_classes]") from None
        if len(dims) < 2:
            raise ValueError("layer_dims needs at least [input_dim, num_classes], "
                             f"got {list(layer_dims)}")
        if any(d <= 0 for d in dims) or any(int(d) != d for d in layer_dims):
            raise ValueError(f"layer_dims must be positive integers, got {list(layer_dims)}")
        if dims[-1] < 1 or max(dims) > 2**31 - 1:
            raise ValueError(f"layer_dims out of range: {dims}")
        return dims

    def _build(self, drop_key: int) -> None:
        """Create the compiled core, the flat buffers and the parameter views."""
        self._lock = threading.RLock()
        _openblas.connect()     # fastfc's step-level pool, set up at first use
        self._core = _knet.NetCore(
            self.layer_dims, self.dtype, _registry.ACTIVATIONS[self.activation].code,
            self.alpha, _registry.NORMALIZATIONS[self.normalization].code,
            self.dropout_keep_ratio, self.eps, self.bn_momentum,
            _registry.LOSSES[self.loss_name].code, drop_key)
        size = self._core.n_params
        self._flat = np.zeros(size, dtype=self.dtype)
        self._grad_flat = np.zeros(size, dtype=self.dtype)
        self._layout = self._core.layout()
        views = {}
        for name, offset, shape in self._layout:
            n = int(np.prod(shape))
            views[name] = self._flat[offset:offset + n].reshape(shape)
            if name.startswith("gamma"):
                views[name][...] = 1
        self._params = _ParamDict(views, self._lock)
        self._grad_views = {
            name: self._grad_flat[offset:offset + int(np.prod(shape))].reshape(shape)
            for name, offset, shape in self._layout
        }
        running = []
        if self.normalization == "batchnorm":
            running = [(np.zeros(d, dtype=self.dtype), np.zeros(d, dtype=self.dtype))
                       for d in self.layer_dims[1:-1]]
        # the core writes into these arrays: only read-only views of them leave the Net
        self._running = tuple(running)
        self._core.bind(self._flat, self._grad_flat, list(self._running))
        self.update_rule: Optional[str] = None
        self._optim_config: Optional[dict[str, Any]] = None
        self._train_rows = 0     # largest train_step batch so far
        self._float_targets = self.loss_name == "mse"   # y holds targets, not labels

    @property
    def params(self) -> _ParamDict:
        """The parameters by name (``W1``, ``b1``, ...): views of the flat buffer;
        assigning an array to a name copies its values in."""
        return self._params

    @params.setter
    def params(self, values: Mapping[str, ArrayLike]) -> None:
        if not isinstance(values, dict):
            raise TypeError(f"params must be a dict of arrays, got {type(values).__name__}")
        missing = set(self._params) - set(values)
        if missing:
            raise ValueError(f"params is missing {', '.join(sorted(missing))}")
        self._params.update(values)

    @property
    def running_stats(self) -> tuple[tuple[_Array, _Array], ...]:
        """Batch-norm running (mean, var) of each hidden layer, as read-only views
        (empty without batch norm).  Load new values with ``_load_extra_state``."""
        return tuple((_readonly(m), _readonly(v)) for m, v in self._running)

    @property
    def reg(self) -> float:
        """L2 strength: the loss adds ``0.5 * reg * sum(W**2)`` over the weights."""
        return self._core.reg

    @reg.setter
    def reg(self, value: float) -> None:
        value = V.check_scalar(value, "reg", low=0.0)
        with self._lock:
            self._core.reg = value

    def ema_arrays(self) -> dict[str, _Array]:
        """The net's own arrays of learned state, for weight averaging (the Solver's
        ``ema_decay``): ``'flat'``, every parameter in one buffer (the order of
        :attr:`params`), and with batch norm ``'running_mean<i>'`` and
        ``'running_var<i>'`` of each hidden layer.

        These are the buffers the compiled step reads and writes, not copies: a caller
        may write into them (e.g. swap averaged values in for an evaluation) only
        between steps, from the thread that trains the net, and must not keep them
        past the net's life.
        """
        out = {"flat": self._flat}
        for i, (m, v) in enumerate(self._running):
            out[f"running_mean{i + 1}"] = m
            out[f"running_var{i + 1}"] = v
        return out

    @property
    def label_smoothing(self) -> float:
        """Label smoothing of the softmax loss: targets ``(1 - eps) * onehot(y) + eps /
        C`` (0: one-hot).  In [0, 1); only the 'softmax' loss takes a non-zero value."""
        return self._core.label_smoothing

    @label_smoothing.setter
    def label_smoothing(self, value: float) -> None:
        value = _check_label_smoothing(value, self.loss_name)
        with self._lock:
            self._core.label_smoothing = value

    @property
    def compute_dtype(self) -> Optional[str]:
        """None (the process-wide setting), 'float32' or 'bfloat16': the precision of
        this net's matrix products (see the class docstring)."""
        return (None, "float32", "bfloat16")[self._core.compute + 1]

    @compute_dtype.setter
    def compute_dtype(self, value: Optional[str]) -> None:
        code = -1
        if value is not None:
            from fastfc import _gemm
            name = _gemm.check_compute_dtype(value)
            if name == "bfloat16" and self.dtype is not np.float32:
                raise ValueError(f"compute_dtype 'bfloat16' needs a float32 net, this one "
                                 f"is {np.dtype(self.dtype).name}")
            code = 1 if name == "bfloat16" else 0
        with self._lock:
            self._core.compute = code

    @property
    def bn_params(self) -> list[dict[str, Any]]:
        """Batch-norm running statistics in the CS231n layout (a new list of dicts of
        read-only views on every access)."""
        return [{"mode": "train", "running_mean": m, "running_var": v, "eps": self.eps,
                 "momentum": self.bn_momentum} for m, v in self.running_stats]

    # ------------------------------------------------------------------ optimiser

    @_serialised
    def set_optimizer(self, update_rule: str = "sgd", **config: Any) -> Net:
        """Choose the update rule used by :meth:`train_step`.

        Parameters
        ----------
        update_rule : str
            Any name in ``fastfc.optim.UPDATE_RULES``.
        **config
            Its config keys (learning_rate, momentum, beta1, ...), defaults as in
            fastfc.optim.  State arrays (velocity, m, v, ...) may be given flat, with
            one entry per parameter in the order of ``params``.  A writable array given
            here becomes the Net's state (updated in place); a read-only one is copied.

        Returns self.  L2 regularisation comes from ``reg``, fused into the update.
        A rule with decoupled weight decay ('adamw') takes its ``weight_decay`` here:
        it shrinks every parameter (weights, biases and normalisation scales/shifts)
        by ``1 - learning_rate * weight_decay`` per step, as ``torch.optim.AdamW``
        does, on top of any ``reg``.
        """
        if not isinstance(update_rule, str) or update_rule not in _registry.UPDATE_RULES:
            raise ValueError("update_rule must be one of "
                             f"{', '.join(_registry.UPDATE_RULES)}, got {update_rule!r}")
        spec = _registry.UPDATE_RULES[update_rule]
        if "weight_decay" in config and "weight_decay" not in spec.defaults:
            raise ValueError("Net takes L2 regularisation from reg, not weight_decay "
                             "(only a rule with decoupled weight decay, such as "
                             "'adamw', takes weight_decay)")
        # a state array given writable is shared (the fused Solver path updates its own
        # arrays through the Net); a read-only one (from optimizer_state) is copied
        config = {k: np.array(v, copy=True)
                  if isinstance(v, np.ndarray) and not v.flags.writeable else v
                  for k, v in config.items()}
        config, hyper, states = _optim.prepare_config(update_rule, config, self._flat)
        # (None fills the unused state slots of the compiled update)
        states = states + [None] * (2 - len(states))  # type: ignore[list-item]
        lr, mom, decay_rate, beta1, beta2, epsilon, t, wd = _optim.kernel_args(hyper)
        self._core.set_optimizer(spec.code, lr, mom, decay_rate, beta1, beta2, epsilon,
                                 spec.counts_steps, t, states[0], states[1], wd)
        self.update_rule = update_rule
        # the learning rate and Adam's t live in the core only (optim_config reads them)
        self._counts_steps = "t" in config
        self._optim_config = {k: v for k, v in config.items()
                              if k not in ("learning_rate", "t")}
        return self

    @property
    def optim_config(self) -> Optional[dict[str, Any]]:
        """The optimiser's config (a new dict on every access; its state arrays are
        read-only views), or None before set_optimizer.  The learning rate and Adam's
        step count ``t`` are read from the compiled core, their one home."""
        if self._optim_config is None:
            return None
        config: dict[str, Any] = {"learning_rate": self._core.learning_rate}
        config.update((k, _readonly(v) if isinstance(v, np.ndarray) else v)
                      for k, v in self._optim_config.items())
        if self._counts_steps:
            config["t"] = int(self._core.t)
        return config

    @property
    def learning_rate(self) -> float:
        """The update rule's learning rate (settable between steps, e.g. by a schedule)."""
        return self._core.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = V.check_scalar(value, "learning_rate", low=0.0)
        with self._lock:
            self._core.learning_rate = value

    @_serialised
    def optimizer_state(self) -> Optional[dict[str, Any]]:
        """The optimiser config with its flat state arrays (read-only views) and the
        current step t."""
        return self.optim_config

    @property
    def nonfinite_params(self) -> int:
        """Number of NaN/inf parameters found right after the last train_step update."""
        return self._core.nonfinite

    # ------------------------------------------------------------------ compute

    def _as_targets(self, y: ArrayLike, n: int) -> _Array:
        """Regression targets of an 'mse' net as a C-contiguous (n, num_outputs) array
        of the net's dtype (a 1-d y is taken as one output per sample)."""
        d = self.layer_dims[-1]
        if type(y) is np.ndarray and y.dtype == self.dtype and y.shape == (n, d) \
                and y.flags.c_contiguous:
            return y
        y = V.as_array(y, "y")
        if y.ndim == 1 and d == 1:
            y = y.reshape(-1, 1)
        if y.shape != (n, d):
            raise ValueError(f"y must hold the regression targets, shape ({n}, {d}) for "
                             f"{n} samples of {d} outputs, got shape {y.shape}")
        return np.ascontiguousarray(y, dtype=self.dtype)

    def _as_sample_weight(self, sample_weight: ArrayLike, n: int) -> _Array:
        """Per-sample loss weights: (n,) finite, >= 0, positive sum, net's dtype."""
        w = V.as_array(sample_weight, "sample_weight")
        if w.ndim != 1 or w.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), one weight per sample "
                             f"of the minibatch, got shape {w.shape}")
        w = np.ascontiguousarray(w, dtype=self.dtype)
        if not np.isfinite(w).all():
            raise ValueError("sample_weight must hold finite values")
        if (w < 0).any():
            raise ValueError("sample_weight must be >= 0")
        if not w.sum(dtype=np.float64) > 0:
            raise ValueError("sample_weight must have a positive sum (in the net's dtype)")
        return w

    def _as_outputs(self, y: ArrayLike, n: int) -> _Array:
        """y checked for the core: labels (their range is checked by the core on its
        private copy) or, for an 'mse' net, float targets."""
        if self._float_targets:
            return self._as_targets(y, n)
        return V.as_label_array(y, "y", n)

    def _checked(self, X: ArrayLike,
                 y: Optional[ArrayLike]) -> tuple[_Array, Optional[_Array]]:
        """X (and y) checked for the core: types and shapes here, the labels' range by
        the core on its private copy (see fastfc._validation)."""
        X = V.as_row_batch(X, "X", self.layer_dims[0], self.dtype)
        if y is not None:
            y = self._as_outputs(y, X.shape[0])
        return X, y

    def train_step(self, X: _Array, y: _Array, indices: Optional[_Array] = None, *,
                   sample_weight: Optional[ArrayLike] = None,
                   check_input: bool = True) -> float:
        """One training step in one compiled call; returns the loss (with the L2 term).

        The loss is computed before the update; with ``label_smoothing`` it is the
        smoothed cross-entropy the step minimises (see the class docstring).

        Parameters
        ----------
        X : ndarray of shape (N, D) or (N, d1, ...), float32 or float64
            The minibatch, or the whole training set when ``indices`` is given.
        y : ndarray of shape (N,) or (len(indices),), integer
            Labels of the minibatch (already gathered, as X[indices] would be); for an
            'mse' net float targets of shape (N, num_outputs), gathered alike.
        indices : ndarray of int, optional
            Rows of X that form the minibatch; they are gathered (and cast to the net's
            dtype) straight into a preallocated buffer.
        sample_weight : ndarray of shape (N,) or (len(indices),), optional
            Non-negative weight of each sample's loss, gathered like ``y``.  The data
            loss is then the weighted mean ``sum(w_i * l_i) / sum(w_i)`` (normalised by
            the sum of the weights, so equal weights give the unweighted loss) and the
            gradients follow it; the L2 term is not weighted.  Always checked.
        check_input : bool, default True
            False skips the checks of the types and shapes of X, y and indices, for
            trusted callers only (fastfc's own training loops) that pass exactly what
            the checks would produce: X a C-contiguous float32/float64 array of rows of
            ``D`` features, y a C-contiguous intp array with one label per row (for an
            'mse' net: C-contiguous targets of the net's dtype), indices None or a
            non-empty C-contiguous intp array.  Anything else is undefined behaviour (a
            release build does not check it).  The ranges of the labels and indices are
            checked either way, by the compiled step on its private copies.
        """
        with self._lock:
            if self.update_rule is None:
                raise RuntimeError("call set_optimizer(...) before train_step")
            if check_input:
                X = V.as_row_batch(X, "X", self.layer_dims[0], self.dtype)
                if indices is not None:
                    indices = V.as_indices(indices, "indices")
                    n = indices.shape[0]
                else:
                    n = X.shape[0]
                y = self._as_outputs(y, n)
            # the core copies labels and indices into its own buffers before it checks
            # them (float targets and weights it reads in place)
            # (the range check stays on with check_input=False: it reads the core's
            # private copies, which no other thread can change, and costs one pass)
            if sample_weight is None:
                loss = self._core.run(X, y, indices, True, True, True)
            else:
                loss = self._core.run(X, y, indices, True, True, True,
                                      self._as_sample_weight(sample_weight, y.shape[0]))
            if y.shape[0] > self._train_rows:
                self._train_rows = y.shape[0]
            return loss

    @overload
    def loss(self, X: ArrayLike, y: None = None,
             sample_weight: Optional[ArrayLike] = None) -> _Array: ...
    @overload
    def loss(self, X: ArrayLike, y: ArrayLike,
             sample_weight: Optional[ArrayLike] = None) -> tuple[float, dict[str, _Array]]: ...
    @overload
    def loss(self, X: ArrayLike, y: Optional[ArrayLike] = None,
             sample_weight: Optional[ArrayLike] = None) -> Any: ...
    def loss(self, X: ArrayLike, y: Optional[ArrayLike] = None,
             sample_weight: Optional[ArrayLike] = None) -> Any:
        """CS231n model contract.

        Returns the class scores (N, C) when ``y`` is None (test mode: batch norm uses
        the running statistics, no dropout), else ``(loss, grads)`` with ``grads``
        keyed like ``params`` (weights' gradients include ``reg * W``).  ``y`` holds
        labels, or float targets (N, num_outputs) for an 'mse' net; ``sample_weight``
        (N,) weights the data loss as in :meth:`train_step`.  With ``label_smoothing``
        the loss and its gradients are those of the smoothed cross-entropy, the
        training objective (train mode: dropout and batch statistics as in a step).
        """
        X, y = self._checked(X, y)
        if sample_weight is not None and y is not None:
            sample_weight = self._as_sample_weight(sample_weight, X.shape[0])
        with self._lock:
            before = self._core.capacity
            try:
                if y is None:
                    return self._scores_of(X)
                # sample_weight is the checked array here (converted above since y is given)
                loss = self._core.run(X, y, None, True, True, False,
                                      sample_weight)  # type: ignore[arg-type]
                grads = {}
                for name, view in self._grad_views.items():
                    grads[name] = np.array(view, copy=True)
                    if name.startswith("W") and self.reg:
                        grads[name] += self.reg * self._params[name]
                return loss, grads
            finally:
                self._trim_workspace(before)

    def _scores_of(self, X: _Array) -> _Array:
        """Test-mode scores of checked X (lock held).  Rows are independent in test
        mode, so they are computed in chunks no larger than the workspace the net has
        (or EVAL_CHUNK rows): the result is the same, the workspace stays bounded."""
        core = self._core
        n = X.shape[0]
        chunk = max(core.capacity, EVAL_CHUNK)
        if n <= chunk:
            core.run(X, None, None, False, False, False)
            return np.array(core.scores(n), copy=True)
        out = np.empty((n, self.layer_dims[-1]), dtype=self.dtype)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            core.run(X[start:stop], None, None, False, False, False)
            out[start:stop] = core.scores(stop - start)
        return out

    def _trim_workspace(self, before: int) -> None:
        """After an evaluation (lock held): give back a workspace it grew past what the
        net had before and past its training batch.  A net that has not trained yet
        keeps up to EVAL_CHUNK rows, so that repeated small calls (gradient checks)
        do not allocate every time."""
        core = self._core
        keep = max(before, self._train_rows)
        limit = keep if self._train_rows else max(keep, EVAL_CHUNK)
        if core.capacity > limit:
            core.shrink(keep)

    def scores(self, X: ArrayLike) -> _Array:
        """Class scores in test mode (same as ``loss(X)``)."""
        return self.loss(X)

    def predict(self, X: ArrayLike, batch_size: int = 1000) -> _Array:
        """Predicted class of each row of X (argmax of the scores), in batches; for an
        'mse' net the outputs themselves, shape (N, num_outputs)."""
        batch_size = V.check_scalar(batch_size, "batch_size", low=1, integer=True)
        X = V.as_row_batch(X, "X", self.layer_dims[0], self.dtype)
        if self._float_targets:
            with self._lock:
                before = self._core.capacity
                try:
                    return self._scores_of(X)
                finally:
                    self._trim_workspace(before)
        out = np.empty(X.shape[0], dtype=np.intp)
        with self._lock:
            before = self._core.capacity
            try:
                for start in range(0, X.shape[0], batch_size):
                    out[start:start + batch_size] = np.argmax(
                        self._scores_of(X[start:start + batch_size]), axis=1)
            finally:
                self._trim_workspace(before)
        return out

    def _workspace_bytes(self) -> int:
        """Bytes of batch workspace the net holds now (for tests and diagnostics)."""
        return self._core.workspace_bytes

    def to_onnx(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Write the net's inference pass to ``path`` as an ONNX graph; returns the
        ``onnx.ModelProto``.  Needs the ``onnx`` package; ``options`` (outputs, classes,
        opset, dtype, input_shape, fold_batchnorm, ...) are those of
        :func:`fastfc.onnx.to_onnx_model`."""
        from fastfc.onnx import export_onnx
        return export_onnx(self, path, **options)

    # ------------------------------------------------------------------ copies and state

    def astype(self, dtype: DTypeLike) -> Net:
        """A copy of this net with parameters, running stats and optimiser in ``dtype``."""
        dtype = V.check_float_dtype(dtype)
        state = self.__getstate__()
        state["dtype"] = dtype.type
        clone = Net.__new__(Net)
        clone.__setstate__(state)
        return clone

    @_serialised
    def _extra_state(self) -> dict[str, _Array]:
        """Arrays beyond params that a checkpoint must hold to resume exactly (copies)."""
        out = {"step": np.array(self._core.step, dtype=np.uint64),
               "drop_key": np.array(self._core.drop_key, dtype=np.uint64)}
        for i, (m, v) in enumerate(self._running):
            out[f"running_mean{i + 1}"] = m.copy()
            out[f"running_var{i + 1}"] = v.copy()
        return out

    @_serialised
    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Set what _extra_state returned: step, dropout key, running statistics
        (copied into the net's own arrays; all checked before anything changes)."""
        step = V.check_scalar(state["step"], "step", low=0, high=2**64 - 1, integer=True)
        key = V.check_scalar(state["drop_key"], "drop_key", low=0, high=2**64 - 1,
                             integer=True)
        values = []
        for i, (m, v) in enumerate(self._running):
            for name, target in ((f"running_mean{i + 1}", m), (f"running_var{i + 1}", v)):
                value = V.as_array(state[name], name)
                if value.shape != target.shape:
                    raise ValueError(f"{name} must have shape {target.shape}, "
                                     f"got {value.shape}")
                values.append((target, value))
        self._core.step = step
        self._core.drop_key = key
        for target, value in values:
            np.copyto(target, value, casting="unsafe")

    def extra_state(self) -> dict[str, _Array]:
        """Arrays beyond ``params`` that a checkpoint must hold to resume exactly: the
        step counter, the dropout key and the running statistics (copies).  Part of the
        model protocol the Solver trains through (:mod:`fastfc._protocols`)."""
        return self._extra_state()

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Load what :meth:`extra_state` returned (everything checked first)."""
        self._load_extra_state(state)

    _ARGS = ("layer_dims", "activation", "dropout_keep_ratio", "normalization",
             "weight_scale", "init", "seed", "alpha", "bn_momentum", "eps")

    @_serialised
    def save(self, path: str | os.PathLike[str], **metadata: Any) -> str:
        """Write the net (architecture, parameters, running statistics) to ``path``.

        The file is a pickle-free checkpoint (see :mod:`fastfc.checkpoint`), written
        atomically; ``metadata`` (JSON-able values) is stored in its header.
        Load it with :meth:`Net.load`.
        """
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        try:
            json.dumps(metadata, allow_nan=False, default=_json_scalar)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadata must hold JSON-able values (finite numbers, str, "
                            f"bool, None, lists, dicts): {exc}") from None
        args = {k: getattr(self, k) for k in self._ARGS}
        args.update(dtype=np.dtype(self.dtype).name, loss=self.loss_name, reg=self.reg)
        if self.label_smoothing:
            # written only when used: a file of a net without smoothing stays readable
            # by fastfc versions that predate the setting
            args["label_smoothing"] = self.label_smoothing
        if self.compute_dtype is not None:
            args["compute_dtype"] = self.compute_dtype
        arrays = {f"param/{k}": np.array(v, copy=True) for k, v in self.params.items()}
        arrays.update({f"model/{k}": v for k, v in self._extra_state().items()})
        return save_checkpoint(path, arrays, {"kind": "net", "net_format": NET_FORMAT,
                                              "net": args, "metadata": metadata})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Net:
        """A Net rebuilt from a file written by :meth:`save`.

        Everything in the file is checked before the net is built: the architecture,
        that every array the architecture implies is there with its shape (so a small
        file cannot make the net allocate more than the file holds), finite values,
        non-negative running variances and a known format version.  Raises
        CheckpointError otherwise.
        """
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        try:
            arrays, header = load_checkpoint(
                path, expect=lambda head: _saved_net_layout(path, head)[1])
        except CheckpointError as exc:
            if "pickle" in str(exc).lower():
                # numpy's own wording proposes a way to load pickled data; a model file
                # never needs it, so say what is wrong instead
                raise CheckpointError(f"{path!r} holds pickled (object) data, which a "
                                      "saved Net never contains") from None
            raise
        args, params, extra = _check_saved_net(path, arrays, header)
        try:
            reg = args.pop("reg")
            seed = args.pop("seed")
            compute = args.pop("compute_dtype", None)
            # build with a fixed seed: loading must not draw from NumPy's global generator
            net = cls(args.pop("layer_dims"), seed=0, **args)
            net._restore_compute_dtype(compute, f"{path!r}")
            net.seed = seed
            net.reg = reg
            net.params = params
            net._load_extra_state(extra)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path!r} holds an unusable Net: {exc}") from exc
        net.metadata = header.get("metadata", {})
        return net

    def _restore_compute_dtype(self, value: Optional[str], source: str) -> None:
        """Set a saved compute_dtype; where bfloat16 cannot run here (no bf16 GEMM), warn and
        stay on float32 products -- the weights are float32 either way."""
        try:
            self.compute_dtype = value
        except RuntimeError as exc:
            warnings.warn(f"{source} was saved with compute_dtype {value!r}, which this "
                          f"machine cannot run ({exc}); using float32 products",
                          RuntimeWarning, stacklevel=3)
            self.compute_dtype = None

    @_serialised
    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self._ARGS}
        state.update(dtype=self.dtype, loss=self.loss_name, reg=self.reg,
                     label_smoothing=self.label_smoothing,
                     compute_dtype=self.compute_dtype,
                     flat=self._flat.copy(), extra={k: np.array(v, copy=True)
                                                    for k, v in self._extra_state().items()},
                     update_rule=self.update_rule, optim=self.optimizer_state())
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for k in self._ARGS:
            setattr(self, k, state[k])
        self.num_layers = len(self.layer_dims) - 1
        self.use_dropout = self.dropout_keep_ratio < 1.0
        self.loss_name = state["loss"]
        self.dtype = np.dtype(state["dtype"]).type
        self._build(int(state["extra"]["drop_key"]))
        self._flat[...] = state["flat"]
        self._load_extra_state(state["extra"])
        self.reg = state["reg"]
        # (absent from the pickles of versions before label smoothing)
        self.label_smoothing = state.get("label_smoothing", 0.0)
        compute = state.get("compute_dtype")
        if compute == "bfloat16" and self.dtype is not np.float32:
            compute = None          # astype(float64) of a bf16 net: float64 products
        self._restore_compute_dtype(compute, "the pickled Net")
        if state["update_rule"] is not None:
            optim = dict(state["optim"])
            for key, value in optim.items():
                if isinstance(value, np.ndarray):
                    optim[key] = value.astype(self.dtype)
            self.set_optimizer(state["update_rule"], **optim)

    def __repr__(self) -> str:
        extras = []
        if self.normalization:
            extras.append(f"normalization={self.normalization!r}")
        if self.use_dropout:
            extras.append(f"dropout_keep_ratio={self.dropout_keep_ratio}")
        if self.reg:
            extras.append(f"reg={self.reg}")
        if self.loss_name != "softmax":
            extras.append(f"loss={self.loss_name!r}")
        if self.label_smoothing:
            extras.append(f"label_smoothing={self.label_smoothing}")
        if self.compute_dtype is not None:
            extras.append(f"compute_dtype={self.compute_dtype!r}")
        tail = "".join(", " + e for e in extras)
        return (f"Net({self.layer_dims}, activation={self.activation!r}{tail}, "
                f"dtype={np.dtype(self.dtype).name})")


def _check_label_smoothing(value: Any, loss: str) -> float:
    """label_smoothing as a float in [0, 1), and 0 unless the loss is 'softmax'."""
    value = V.check_scalar(value, "label_smoothing", low=0.0, high=1.0, high_open=True)
    if value and loss != "softmax":
        raise ValueError(f"label_smoothing applies to the 'softmax' loss only; loss "
                         f"{loss!r} needs label_smoothing=0, got {value}")
    return value


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _bad_net(path: object, why: str) -> CheckpointError:
    return CheckpointError(f"{path!r} holds an unusable Net: {why}")


def _saved_net_layout(path: object, header: Mapping[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """(constructor args, {array name: shape}) a Net file's header describes.

    Checks the header alone, so :meth:`Net.load` can refuse a file whose arrays do not
    match it before any array is read; raises CheckpointError.
    """
    def bad(why: str) -> CheckpointError:
        return _bad_net(path, why)

    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) \
            or not 1 <= version <= _checkpoint.VERSION:
        raise bad(f"unknown checkpoint format version {version!r}")
    if header.get("kind") != "net" or not isinstance(header.get("net"), dict):
        raise CheckpointError(f"{path!r} does not hold a saved Net")
    net_format = header.get("net_format", 1)
    if net_format != NET_FORMAT or isinstance(net_format, bool):
        raise bad(f"unknown Net format version {net_format!r}")
    if not isinstance(header.get("metadata", {}), dict):
        raise bad("metadata is not a dict")
    args = dict(header["net"])
    allowed = set(Net._ARGS) | {"dtype", "loss", "reg", "label_smoothing", "compute_dtype"}
    unknown = sorted(set(args) - allowed, key=str)
    if unknown:
        raise bad(f"unknown settings {', '.join(map(repr, unknown))}")
    missing = sorted({"layer_dims", "reg", "seed"} - set(args))
    if missing:
        raise bad(f"missing settings {', '.join(missing)}")
    dims = args["layer_dims"]
    if not isinstance(dims, list) or not 2 <= len(dims) <= MAX_LOADED_LAYERS + 1 \
            or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 2**31 - 1
                   for d in dims):
        raise bad(f"layer_dims must be a list of 2 to {MAX_LOADED_LAYERS + 1} positive "
                  "integers")
    norm = args.get("normalization")
    if not (norm is None or (isinstance(norm, str) and norm in _registry.NORMALIZATIONS)):
        raise bad(f"unknown normalization {norm!r}")
    dtype = args.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise bad(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if args.get("compute_dtype") not in (None, "float32", "bfloat16"):
        raise bad(f"compute_dtype must be 'float32' or 'bfloat16', "
                  f"got {args['compute_dtype']!r}")

    # every array the architecture implies, with its shape: the file must hold exactly
    # these (checked before any array is read, so a header with huge layer_dims and no
    # arrays to match is refused without allocating anything)
    expect: dict[str, tuple[int, ...]] = {}
    for i in range(len(dims) - 1):
        expect[f"param/W{i + 1}"] = (dims[i], dims[i + 1])
        expect[f"param/b{i + 1}"] = (dims[i + 1],)
        if norm is not None and i < len(dims) - 2:
            expect[f"param/gamma{i + 1}"] = (dims[i + 1],)
            expect[f"param/beta{i + 1}"] = (dims[i + 1],)
    expect["model/step"] = ()
    expect["model/drop_key"] = ()
    if norm == "batchnorm":
        for i in range(len(dims) - 2):
            expect[f"model/running_mean{i + 1}"] = (dims[i + 1],)
            expect[f"model/running_var{i + 1}"] = (dims[i + 1],)
    return args, expect


def _check_saved_net(path: object, arrays: Mapping[str, _Array], header: Mapping[str, Any]
                     ) -> tuple[dict[str, Any], dict[str, _Array], dict[str, _Array]]:
    """Check the values of a Net file read with ``load_checkpoint(path, expect=...)``
    (which has already matched its arrays' names and shapes to the header) before
    anything is built from it.

    Returns (constructor args, params, extra state); raises CheckpointError.
    """
    def bad(why: str) -> CheckpointError:
        return _bad_net(path, why)

    args, expect = _saved_net_layout(path, header)
    for name in expect:
        arr = arrays[name]
        if name in ("model/step", "model/drop_key"):
            if arr.dtype.kind not in "iu" or arr < 0:
                raise bad(f"{name} must be a non-negative integer")
            continue
        if arr.dtype.kind != "f":
            raise bad(f"{name} must hold floats, got {arr.dtype}")
        if not np.isfinite(arr).all():
            raise bad(f"{name} holds NaN or infinite values")
        if name.startswith("model/running_var") and (arr < 0).any():
            raise bad(f"{name} holds negative variances")
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    extra = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    return args, params, extra
