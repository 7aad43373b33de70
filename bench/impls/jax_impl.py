"""jax-jit: the same nets in JAX on the CPU, the whole training step under ``jax.jit``.

One jitted function takes the state (parameters, Adam moments, step count, batch-norm
running statistics, the dropout key) and a minibatch, and returns the new state and the
loss; the state's buffers are donated, so XLA updates them in place.  Adam follows
torch's formula (``weight_decay`` added to the weights' gradients, bias-corrected
moments, ``eps`` outside the square root), He-initialised weights, zero biases, batch
norm as torch's ``BatchNorm1d`` (biased variance to normalise, unbiased in the running
average, momentum 0.1), inverted dropout.  A timed unit waits for the result
(``block_until_ready``): JAX dispatches asynchronously.

XLA's CPU backend sizes its own thread pool from the CPU count; the harness's thread
settings do not reach it (on the 2-core bench machine both are 2).
"""
import numpy as np

NAMES = ("jax-jit",)


def available():
    try:
        import jax
    except ImportError:
        return False, "not installed (pip install jax, the bench extra)"
    return True, jax.__version__


def supports(wl, dtype):
    return True


def set_threads(n):
    pass


def _build(wl, dtype):
    import jax
    import jax.numpy as jnp
    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    params, running = [], []
    n_layers = len(wl.dims) - 1
    for i, (d_in, d_out) in enumerate(zip(wl.dims[:-1], wl.dims[1:])):
        layer = {"W": (rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in)).astype(dtype),
                 "b": np.zeros(d_out, dtype)}
        if wl.normalization == "batchnorm" and i < n_layers - 1:
            layer["gamma"] = np.ones(d_out, dtype)
            layer["beta"] = np.zeros(d_out, dtype)
            running.append({"mean": np.zeros(d_out, dtype), "var": np.ones(d_out, dtype)})
        params.append(layer)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    running = jax.tree_util.tree_map(jnp.asarray, running)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params),
             jnp.asarray(0, jnp.int32), running, jax.random.PRNGKey(0))
    keep, bn = wl.keep, wl.normalization == "batchnorm"
    lr, b1, b2, eps, wd = 1e-3, 0.9, 0.999, 1e-8, 1e-4

    def forward(p, running, X, key):
        h = X
        new_running = []
        for i, layer in enumerate(p):
            h = h @ layer["W"] + layer["b"]
            if i == len(p) - 1:
                break
            if bn:
                mu = h.mean(axis=0)
                var = h.var(axis=0)
                n = h.shape[0]
                h = (h - mu) / jnp.sqrt(var + 1e-5) * layer["gamma"] + layer["beta"]
                r = running[i]
                new_running.append({"mean": 0.9 * r["mean"] + 0.1 * jax.lax.stop_gradient(mu),
                                    "var": 0.9 * r["var"] + 0.1 * jax.lax.stop_gradient(
                                        var * n / (n - 1))})
            h = jnp.maximum(h, 0)
            if keep < 1:
                key, sub = jax.random.split(key)
                h = jnp.where(jax.random.bernoulli(sub, keep, h.shape), h / keep, 0)
        return h, new_running

    def loss_fn(p, running, X, y, key):
        scores, new_running = forward(p, running, X, key)
        logp = jax.nn.log_softmax(scores, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), new_running

    def step(state, X, y):
        p, m, v, t, running, key = state
        key, sub = jax.random.split(key)
        (loss, new_running), g = jax.value_and_grad(loss_fn, has_aux=True)(p, running, X, y, sub)
        g = [dict(gl, W=gl["W"] + wd * pl["W"]) for gl, pl in zip(g, p)]
        t = t + 1
        m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
        c1 = 1 - b1 ** t.astype(X.dtype)
        c2 = 1 - b2 ** t.astype(X.dtype)
        p = jax.tree_util.tree_map(
            lambda p_, m_, v_: p_ - lr * (m_ / c1) / (jnp.sqrt(v_ / c2) + eps), p, m, v)
        return (p, m, v, t, new_running if bn else running, key), loss

    return state, jax.jit(step, donate_argnums=(0,))


class Runner:
    history_bytes = staticmethod(lambda: 0)

    def __init__(self, wl, dtype, data):
        import jax.numpy as jnp
        self.state, self.step_fn = _build(wl, dtype)
        n = data.X_batch.shape[0]
        self.X = jnp.asarray(data.X_batch.reshape(n, -1))
        self.y = jnp.asarray(data.y_batch.astype(np.int32))
        self.includes_sampling = wl.kind == "epoch"
        if wl.kind == "epoch":
            N = data.X_pool.shape[0]
            self.X_train = data.X_pool.reshape(N, -1)
            self.y_train = np.ascontiguousarray(data.y_pool, dtype=np.int32)
            self.num_train = N
            self.batch = wl.batch
            self.steps = wl.steps_per_epoch
            self.run = self.epoch
        else:
            self.run = self.step

    def step(self):
        self.state, loss = self.step_fn(self.state, self.X, self.y)
        loss.block_until_ready()
        return loss

    def epoch(self):
        loss = None
        for _ in range(self.steps):
            mask = np.random.choice(self.num_train, self.batch)
            self.state, loss = self.step_fn(self.state, self.X_train[mask], self.y_train[mask])
        loss.block_until_ready()


def setup(wl, dtype, data):
    return Runner(wl, dtype, data)
