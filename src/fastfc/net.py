"""Net: the fast fully-connected network.

``Net`` owns its parameters in one flat buffer, preallocated activations, gradients and
optimiser state, and runs a whole training step -- forward, loss, backward, update --
in one compiled call (``fastfc._kernels.net``) with no Python per layer and no
allocation once the workspaces exist.  It also keeps the CS231n model contract
(``params`` dict, ``loss(X, y=None)``), so the Solver, GradientCheck and pickle work
with it, and the Solver uses :meth:`Net.train_step` automatically.
"""
import math

import numpy as np

from fastfc import _validation as V
from fastfc import optim as _optim
from fastfc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fastfc._kernels import dense as _dense
from fastfc._kernels import net as _knet

__all__ = ["Net"]

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "swish")
INITS = ("he", "xavier")


class _ParamDict(dict):
    """The Net's parameters by name.  Values are views of the Net's flat buffer;
    assigning ``params[name] = array`` copies the values into that buffer."""

    def __setitem__(self, key, value):
        if key not in self:
            raise KeyError(f"Net has no parameter {key!r}; it has {', '.join(self)}")
        target = dict.__getitem__(self, key)
        value = V.as_array(value, f"params[{key!r}]")
        if value.shape != target.shape:
            raise ValueError(
                f"params[{key!r}] must have shape {target.shape}, got {value.shape}"
            )
        if value is not target:
            np.copyto(target, value, casting="unsafe")

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def __delitem__(self, key):
        raise TypeError("Net parameters cannot be removed")

    def pop(self, *args):
        raise TypeError("Net parameters cannot be removed")

    def setdefault(self, key, default=None):
        if key not in self:
            raise KeyError(f"Net has no parameter {key!r}")
        return self[key]

    def copy(self):
        return {k: np.array(v, copy=True) for k, v in self.items()}

    def __reduce__(self):
        return (dict, (self.copy(),))


class Net:
    """A fully-connected network: {affine - [norm] - activation - [dropout]} x (L-1) - affine - loss.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[input_dim, hidden_1, ..., hidden_{L-1}, num_classes]``.
    activation : {'relu', 'leaky_relu', 'sigmoid', 'tanh', 'swish'}
    dropout_keep_ratio : float in (0, 1]
        Probability of keeping a hidden unit (1 = no dropout).  Masks come from a
        counter-based generator keyed by the seed and the step number: repeated
        ``loss`` calls at one step draw the same masks (gradient checks work), every
        ``train_step`` draws new ones.
    normalization : {None, 'batchnorm', 'layernorm'}
    reg : float
        L2 strength; the loss adds ``0.5 * reg * sum(W**2)`` over the weights.
    weight_scale : float or None
        Weights ``weight_scale * randn`` (as FullyConnectedNet).  Give this or ``init``.
    init : {'he', 'xavier'} or None
        'he': ``randn * sqrt(2 / fan_in)``; 'xavier': ``randn * sqrt(2 / (fan_in +
        fan_out))``.  Default when neither is given: 'he' for relu, leaky_relu and
        swish, 'xavier' for sigmoid and tanh.
    dtype : np.float32 or np.float64
    seed : int or None
        Seeds the weights and dropout.  None draws them from NumPy's global generator,
        in the order FullyConnectedNet does (W1, W2, ...), so that after the same
        ``np.random.seed`` both nets start from the same weights.
    alpha : float
        Slope of leaky_relu for negative inputs.
    loss : {'softmax', 'svm'}
    bn_momentum, eps : float
        Running-statistics momentum and variance epsilon of the normalisation.

    Attributes
    ----------
    params : dict of name -> ndarray
        W1, b1[, gamma1, beta1], ..., WL, bL (views of the flat buffer; assigning to an
        entry copies into it).
    """

    def __init__(self, layer_dims, activation="relu", dropout_keep_ratio=1,
                 normalization=None, reg=0.0, weight_scale=None, init=None,
                 dtype=np.float32, seed=None, alpha=0.01, loss="softmax",
                 bn_momentum=0.9, eps=1e-5):
        dims = self._check_dims(layer_dims)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if normalization not in _knet.NORM_CODES:
            raise ValueError("normalization must be None, 'batchnorm' or 'layernorm', "
                             f"got {normalization!r}")
        if loss not in _knet.LOSS_CODES:
            raise ValueError(f"loss must be 'softmax' or 'svm', got {loss!r}")
        keep = V.check_scalar(dropout_keep_ratio, "dropout_keep_ratio", low=0.0, high=1.0,
                              low_open=True)
        reg = V.check_scalar(reg, "reg", low=0.0)
        alpha = V.check_scalar(alpha, "alpha", low=0.0)
        bn_momentum = V.check_scalar(bn_momentum, "bn_momentum", low=0.0, high=1.0)
        eps = V.check_scalar(eps, "eps", low=0.0)
        if weight_scale is not None and init is not None:
            raise ValueError("give weight_scale or init, not both")
        if weight_scale is not None:
            weight_scale = V.check_scalar(weight_scale, "weight_scale", low=0.0)
        if init is None and weight_scale is None:
            init = "xavier" if activation in ("sigmoid", "tanh") else "he"
        if init is not None and init not in INITS:
            raise ValueError(f"init must be 'he' or 'xavier', got {init!r}")
        dtype = np.dtype(dtype)
        if dtype not in V.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
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

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _check_dims(layer_dims):
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

    def _build(self, drop_key):
        """Create the compiled core, the flat buffers and the parameter views."""
        self._core = _knet.NetCore(
            self.layer_dims, self.dtype, _dense.ACT_CODES[self.activation], self.alpha,
            _knet.NORM_CODES[self.normalization], self.dropout_keep_ratio, self.eps,
            self.bn_momentum, _knet.LOSS_CODES[self.loss_name], drop_key)
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
        self._params = _ParamDict(views)
        self._grad_views = {
            name: self._grad_flat[offset:offset + int(np.prod(shape))].reshape(shape)
            for name, offset, shape in self._layout
        }
        self.running_stats = []
        if self.normalization == "batchnorm":
            self.running_stats = [
                (np.zeros(d, dtype=self.dtype), np.zeros(d, dtype=self.dtype))
                for d in self.layer_dims[1:-1]
            ]
        self._core.bind(self._flat, self._grad_flat, self.running_stats)
        self.update_rule = None
        self.optim_config = None

    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, values):
        missing = set(self._params) - set(values)
        if missing:
            raise ValueError(f"params is missing {', '.join(sorted(missing))}")
        for key, value in values.items():
            self._params[key] = value

    @property
    def reg(self):
        return self._core.reg

    @reg.setter
    def reg(self, value):
        self._core.reg = V.check_scalar(value, "reg", low=0.0)

    @property
    def bn_params(self):
        """Batch-norm running statistics in the CS231n layout (list of dicts)."""
        return [{"mode": "train", "running_mean": m, "running_var": v, "eps": self.eps,
                 "momentum": self.bn_momentum} for m, v in self.running_stats]

    # ------------------------------------------------------------------ optimiser

    def set_optimizer(self, update_rule="sgd", **config):
        """Choose the update rule used by :meth:`train_step`.

        Parameters
        ----------
        update_rule : str
            A rule of :mod:`fastfc.optim`: 'sgd', 'sgd_momentum',
            'sgd_nesterov_momentum', 'rmsprop' or 'adam'.
        **config
            Its config keys (learning_rate, momentum, beta1, ...), defaults as in
            fastfc.optim.  State arrays (velocity, m, v, cache) may be given flat, with
            one entry per parameter in the order of ``params``.

        Returns self.  L2 regularisation comes from ``reg``, fused into the update.
        """
        if update_rule not in _knet.RULE_CODES:
            raise ValueError(f"update_rule must be one of {', '.join(_knet.RULE_CODES)}, "
                             f"got {update_rule!r}")
        if "weight_decay" in config:
            raise ValueError("Net takes L2 regularisation from reg, not weight_decay")
        config, hyper, states = _optim.prepare_config(update_rule, dict(config), self._flat)
        states = states + [None] * (2 - len(states))
        self._core.set_optimizer(
            _knet.RULE_CODES[update_rule], hyper["learning_rate"], hyper.get("momentum", 0.0),
            hyper.get("decay_rate", 0.0), hyper.get("beta1", 0.0), hyper.get("beta2", 0.0),
            hyper.get("epsilon", 0.0), hyper.get("t", 0), states[0], states[1])
        self.update_rule = update_rule
        self.optim_config = config
        return self

    @property
    def learning_rate(self):
        return self._core.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        value = V.check_scalar(value, "learning_rate", low=0.0)
        self._core.learning_rate = value
        if self.optim_config is not None:
            self.optim_config["learning_rate"] = value

    def optimizer_state(self):
        """The optimiser config with its flat state arrays and the current step t."""
        if self.optim_config is None:
            return None
        config = dict(self.optim_config)
        config["learning_rate"] = self._core.learning_rate
        if "t" in config:
            config["t"] = int(self._core.t)
        return config

    @property
    def nonfinite_params(self):
        """Number of NaN/inf parameters found right after the last train_step update."""
        return self._core.nonfinite

    # ------------------------------------------------------------------ compute

    def _as_input(self, X):
        X = V.as_array(X, "X")
        if X.dtype not in V.FLOAT_DTYPES:   # ints, float16, byte-swapped floats
            X = X.astype(self.dtype)
        X = np.require(X, requirements=("C", "A"))
        if X.ndim < 2:
            raise ValueError(f"X must have shape (N, {self.layer_dims[0]}) or (N, d1, ...), "
                             f"got {X.shape}")
        if X.shape[0] == 0 or X.size != X.shape[0] * self.layer_dims[0]:
            raise ValueError(f"X has shape {X.shape} but the net takes "
                             f"{self.layer_dims[0]} features per sample")
        return X

    def _as_labels(self, y, n):
        return V.as_labels(y, "y", n, self.layer_dims[-1])

    def _checked(self, X, y):
        if (type(X) is not np.ndarray or X.dtype not in V.FLOAT_DTYPES
                or not X.flags.c_contiguous or not X.flags.aligned or X.ndim < 2
                or X.size != X.shape[0] * self.layer_dims[0] or X.shape[0] == 0):
            X = self._as_input(X)
        if y is not None and (type(y) is not np.ndarray or y.dtype != np.intp
                              or y.ndim != 1 or not y.flags.c_contiguous):
            y = self._as_labels(y, X.shape[0])
        return X, y

    def train_step(self, X, y, indices=None):
        """One training step in one compiled call; returns the loss (with the L2 term).

        Parameters
        ----------
        X : ndarray of shape (N, D) or (N, d1, ...), float32 or float64
            The minibatch, or the whole training set when ``indices`` is given.
        y : ndarray of shape (N,) or (len(indices),), integer
            Labels of the minibatch (already gathered, as X[indices] would be).
        indices : ndarray of int, optional
            Rows of X that form the minibatch; they are gathered (and cast to the net's
            dtype) straight into a preallocated buffer.
        """
        if self.update_rule is None:
            raise RuntimeError("call set_optimizer(...) before train_step")
        X, _ = self._checked(X, None)
        if indices is not None:
            indices = np.asarray(indices)
            if indices.dtype.kind not in "iu":
                raise TypeError(f"indices must be integers, got {indices.dtype}")
            indices = np.ascontiguousarray(indices, dtype=np.intp)
            if indices.ndim != 1:
                raise ValueError(f"indices must be 1-dimensional, got shape {indices.shape}")
            n = indices.shape[0]
        else:
            n = X.shape[0]
        if type(y) is not np.ndarray or y.dtype != np.intp or y.ndim != 1 \
                or not y.flags.c_contiguous:
            y = self._as_labels(y, n)
        return self._core.run(X, y, indices, True, True, True)

    def loss(self, X, y=None):
        """CS231n model contract.

        Returns the class scores (N, C) when ``y`` is None (test mode: batch norm uses
        the running statistics, no dropout), else ``(loss, grads)`` with ``grads``
        keyed like ``params`` (weights' gradients include ``reg * W``).
        """
        X, y = self._checked(X, y)
        n = X.shape[0]
        if y is None:
            self._core.run(X, None, None, False, False, False)
            return np.array(self._core.scores(n), copy=True)
        loss = self._core.run(X, y, None, True, True, False)
        grads = {}
        for name, view in self._grad_views.items():
            grads[name] = np.array(view, copy=True)
            if name.startswith("W") and self.reg:
                grads[name] += self.reg * self._params[name]
        return loss, grads

    def scores(self, X):
        """Class scores in test mode (same as ``loss(X)``)."""
        return self.loss(X)

    def predict(self, X, batch_size=1000):
        """Predicted class of each row of X (argmax of the scores), in batches."""
        X = self._as_input(X)
        out = np.empty(X.shape[0], dtype=np.intp)
        for start in range(0, X.shape[0], batch_size):
            out[start:start + batch_size] = np.argmax(self.loss(X[start:start + batch_size]),
                                                      axis=1)
        return out

    # ------------------------------------------------------------------ copies and state

    def astype(self, dtype):
        """A copy of this net with parameters, running stats and optimiser in ``dtype``."""
        state = self.__getstate__()
        state["dtype"] = np.dtype(dtype).type
        clone = Net.__new__(Net)
        clone.__setstate__(state)
        return clone

    def _extra_state(self):
        """Arrays beyond params that a checkpoint must hold to resume exactly."""
        out = {"step": np.array(self._core.step, dtype=np.uint64),
               "drop_key": np.array(self._core.drop_key, dtype=np.uint64)}
        for i, (m, v) in enumerate(self.running_stats):
            out[f"running_mean{i + 1}"] = m
            out[f"running_var{i + 1}"] = v
        return out

    def _load_extra_state(self, state):
        self._core.step = int(state["step"])
        self._core.drop_key = int(state["drop_key"])
        for i, (m, v) in enumerate(self.running_stats):
            m[...] = state[f"running_mean{i + 1}"]
            v[...] = state[f"running_var{i + 1}"]

    _ARGS = ("layer_dims", "activation", "dropout_keep_ratio", "normalization",
             "weight_scale", "init", "seed", "alpha", "bn_momentum", "eps")

    def save(self, path, **metadata):
        """Write the net (architecture, parameters, running statistics) to ``path``.

        The file is a pickle-free checkpoint (see :mod:`fastfc.checkpoint`), written
        atomically; ``metadata`` (JSON-able values) is stored in its header.
        Load it with :meth:`Net.load`.
        """
        args = {k: getattr(self, k) for k in self._ARGS}
        args.update(dtype=np.dtype(self.dtype).name, loss=self.loss_name, reg=self.reg)
        arrays = {f"param/{k}": np.asarray(v) for k, v in self.params.items()}
        arrays.update({f"model/{k}": np.asarray(v) for k, v in self._extra_state().items()})
        return save_checkpoint(path, arrays, {"kind": "net", "net": args,
                                              "metadata": metadata})

    @classmethod
    def load(cls, path):
        """A Net rebuilt from a file written by :meth:`save`."""
        arrays, header = load_checkpoint(path)
        if header.get("kind") != "net" or not isinstance(header.get("net"), dict):
            raise CheckpointError(f"{path!r} does not hold a saved Net")
        args = dict(header["net"])
        try:
            reg = args.pop("reg")
            seed = args.pop("seed")
            # build with a fixed seed: loading must not draw from NumPy's global generator
            net = cls(args.pop("layer_dims"), seed=0, **args)
            net.seed = seed
            net.reg = reg
            net.params = {k[len("param/"):]: v for k, v in arrays.items()
                          if k.startswith("param/")}
            net._load_extra_state({k[len("model/"):]: v for k, v in arrays.items()
                                   if k.startswith("model/")})
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path!r} holds an unusable Net: {exc}") from exc
        net.metadata = header.get("metadata", {})
        return net

    def __getstate__(self):
        state = {k: getattr(self, k) for k in self._ARGS}
        state.update(dtype=self.dtype, loss=self.loss_name, reg=self.reg,
                     flat=self._flat.copy(), extra={k: np.array(v, copy=True)
                                                    for k, v in self._extra_state().items()},
                     update_rule=self.update_rule, optim=self.optimizer_state())
        return state

    def __setstate__(self, state):
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
        if state["update_rule"] is not None:
            optim = dict(state["optim"])
            for key, value in optim.items():
                if isinstance(value, np.ndarray):
                    optim[key] = value.astype(self.dtype)
            self.set_optimizer(state["update_rule"], **optim)

    def __repr__(self):
        extras = []
        if self.normalization:
            extras.append(f"normalization={self.normalization!r}")
        if self.use_dropout:
            extras.append(f"dropout_keep_ratio={self.dropout_keep_ratio}")
        if self.reg:
            extras.append(f"reg={self.reg}")
        tail = "".join(", " + e for e in extras)
        return (f"Net({self.layer_dims}, activation={self.activation!r}{tail}, "
                f"dtype={np.dtype(self.dtype).name})")
