"""numpy-ref: the CS231n NumPy code that fastfc replaces, kept here as the baseline.

A faithful copy of the course's formulation (assignment 2 solutions):
``layers.affine_forward/backward`` with reshape, ``relu_forward/backward``,
``softmax_loss``, ``layer_utils.affine_relu_*``, ``FullyConnectedNet.loss`` (computes
every layer's dx, including the first layer's, which nobody needs), the Solver's
``_step`` (``np.random.choice`` minibatch, ``X_train[batch_mask]``, a copy of the
optim config per parameter) and ``optim.adam`` with its NumPy temporaries.  Nothing
here is tuned: that is the point.  Plain nets only (no normalisation, no dropout).
"""
import numpy as np

from bench.workloads import he_scale

NAME = "numpy-ref"


def available():
    return True, ""


def supports(wl, dtype):
    return wl.plain


def set_threads(n):
    pass


# ----------------------------------------------------------------- cs231n/layers.py

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def softmax_loss(x, y):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


# ----------------------------------------------------------------- cs231n/layer_utils.py

def affine_relu_forward(x, w, b):
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db


# ----------------------------------------------------------------- cs231n/optim.py

def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)

    config["t"] += 1
    config["m"] = config["beta1"] * config["m"] + (1 - config["beta1"]) * dw
    mt = config["m"] / (1 - config["beta1"] ** config["t"])
    config["v"] = config["beta2"] * config["v"] + (1 - config["beta2"]) * (dw ** 2)
    vt = config["v"] / (1 - config["beta2"] ** config["t"])
    next_w = w - config["learning_rate"] * mt / (np.sqrt(vt) + config["epsilon"])
    return next_w, config


# ----------------------------------------------------------------- cs231n/classifiers/fc_net.py

class FullyConnectedNet:
    """{affine - relu} x (L - 1) - affine - softmax, as in the course (no norm/dropout)."""

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, reg=0.0,
                 weight_scale=1e-2, dtype=np.float32):
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        dims = [input_dim] + list(hidden_dims) + [num_classes]
        for i in range(self.num_layers):
            self.params["W%d" % (i + 1)] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params["b%d" % (i + 1)] = np.zeros(dims[i + 1])
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        caches = []
        out = X
        for i in range(1, self.num_layers):
            out, cache = affine_relu_forward(out, self.params["W%d" % i], self.params["b%d" % i])
            caches.append(cache)
        n = self.num_layers
        scores, cache = affine_forward(out, self.params["W%d" % n], self.params["b%d" % n])
        caches.append(cache)
        if mode == "test":
            return scores

        loss, grads = 0.0, {}
        loss, dscores = softmax_loss(scores, y)
        for i in range(1, n + 1):
            W = self.params["W%d" % i]
            loss += 0.5 * self.reg * np.sum(W * W)

        dout, dW, db = affine_backward(dscores, caches[n - 1])
        grads["W%d" % n] = dW + self.reg * self.params["W%d" % n]
        grads["b%d" % n] = db
        for i in range(n - 1, 0, -1):
            dout, dW, db = affine_relu_backward(dout, caches[i - 1])
            grads["W%d" % i] = dW + self.reg * self.params["W%d" % i]
            grads["b%d" % i] = db
        return loss, grads


# ----------------------------------------------------------------- cs231n/solver.py (the step)

class Solver:
    """The parts of the course's Solver that one training step runs."""

    def __init__(self, model, data, update_rule=adam, optim_config=None, batch_size=100):
        self.model = model
        self.X_train = data["X_train"]
        self.y_train = data["y_train"]
        self.update_rule = update_rule
        self.optim_config = optim_config or {}
        self.batch_size = batch_size
        self.loss_history = []
        self.optim_configs = {}
        for p in self.model.params:
            d = {k: v for k, v in self.optim_config.items()}
            self.optim_configs[p] = d

    def _step(self):
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(loss)

        for p, w in self.model.params.items():
            dw = grads[p]
            config = self.optim_configs[p]
            next_w, next_config = self.update_rule(w, dw, config)
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config


# ----------------------------------------------------------------- bench entry

class Runner:
    includes_sampling = True

    def __init__(self, wl, dtype, data):
        np.random.seed(0)
        self.model = FullyConnectedNet(list(wl.dims[1:-1]), input_dim=wl.dims[0],
                                       num_classes=wl.dims[-1], reg=1e-4,
                                       weight_scale=1.0, dtype=np.dtype(dtype).type)
        for i, fan_in in enumerate(wl.dims[:-1], 1):      # He initialisation
            self.model.params["W%d" % i] *= he_scale(fan_in)
        self.solver = Solver(self.model, {"X_train": data.X_pool, "y_train": data.y_pool},
                             update_rule=adam, optim_config={"learning_rate": 1e-3},
                             batch_size=wl.batch)
        self.steps = wl.steps_per_epoch
        self.run = self.solver._step if wl.kind == "step" else self.epoch

    def epoch(self):
        step = self.solver._step
        for _ in range(self.steps):
            step()

    def history_bytes(self):
        return _list_bytes(self.solver.loss_history)


def _list_bytes(values):
    import sys
    return sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)


def setup(wl, dtype, data):
    return Runner(wl, dtype, data)
