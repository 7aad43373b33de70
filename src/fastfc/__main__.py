"""``python -m fastfc``: a small demo of the layer and optimiser API.

Trains a two-layer ReLU net on a synthetic three-armed spiral (300 points, 2-d) with
Adam and prints the loss and the training accuracy.  It needs nothing beyond the core.
"""
import numpy as np

from fastfc import layers, optim


def spiral(n_per_class=100, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * n_classes, 2))
    y = np.zeros(n_per_class * n_classes, dtype=np.int64)
    for k in range(n_classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(k * 4, (k + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * 0.2
        X[k * n_per_class:(k + 1) * n_per_class] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[k * n_per_class:(k + 1) * n_per_class] = k
    return X, y


def main(steps=2000, hidden=100, seed=0):
    X, y = spiral(seed=seed)
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.standard_normal((2, hidden)) * 0.1, "b1": np.zeros(hidden),
        "W2": rng.standard_normal((hidden, 3)) * 0.1, "b2": np.zeros(3),
    }
    configs = {k: {"learning_rate": 1e-2} for k in params}
    reg = 1e-4
    for step in range(1, steps + 1):
        h, cache1 = layers.affine_forward(X, params["W1"], params["b1"])
        a, cache_relu = layers.relu_forward(h)
        scores, cache2 = layers.affine_forward(a, params["W2"], params["b2"])
        loss, dscores = layers.softmax_loss(scores, y)
        loss += 0.5 * reg * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
        da, dW2, db2 = layers.affine_backward(dscores, cache2)
        dh = layers.relu_backward(da, cache_relu)
        _, dW1, db1 = layers.affine_backward(dh, cache1)
        grads = {"W1": dW1 + reg * params["W1"], "b1": db1,
                 "W2": dW2 + reg * params["W2"], "b2": db2}
        for k in params:
            params[k], configs[k] = optim.adam(params[k], grads[k], configs[k])
        if step % 500 == 0 or step == 1:
            acc = np.mean(np.argmax(scores, axis=1) == y)
            print(f"step {step:5d}  loss {loss:.4f}  train accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
