"""sklearn-mlp: ``sklearn.neural_network.MLPClassifier`` with the Adam solver.

``MLPClassifier(hidden_layer_sizes=<hidden dims>, solver='adam', alpha=1e-4,
batch_size=<batch>, learning_rate_init=1e-3)`` (ReLU, softmax output).

* step workloads: one ``partial_fit`` on the preallocated minibatch = one Adam step
  (plus partial_fit's input validation and label binarisation, which a user pays too);
* the epoch workload (W5): ``fit`` with ``max_iter=1, warm_start=True`` on the 49,000
  samples = one epoch of 245 steps of 200 (sklearn shuffles a permutation each epoch
  rather than drawing with replacement).

sklearn keeps its own (Glorot) weight initialisation; the others use He.

Notes: sklearn scales its L2 term by 1/batch (alpha / n_samples), so alpha=1e-4 is a
weaker regulariser than reg=1e-4 -- it does not change the work.  float32 input is
kept float32.  ConvergenceWarning is silenced.
"""
import warnings

import numpy as np

NAME = "sklearn-mlp"


def available():
    try:
        import sklearn
    except ImportError:
        return False, "not installed (pip install scikit-learn)"
    return True, sklearn.__version__


def supports(wl, dtype):
    return wl.plain


def set_threads(n):
    pass


class Runner:
    def __init__(self, wl, dtype, data):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        warnings.simplefilter("ignore", ConvergenceWarning)
        self.classes = np.arange(wl.dims[-1])
        kw = dict(hidden_layer_sizes=tuple(wl.dims[1:-1]), solver="adam", alpha=1e-4,
                  batch_size=wl.batch, learning_rate_init=1e-3, random_state=0)
        n = data.X_batch.shape[0]
        self.Xb = data.X_batch.reshape(n, -1)
        self.yb = data.y_batch
        self.includes_sampling = wl.kind == "epoch"
        if wl.kind == "epoch":
            self.clf = MLPClassifier(max_iter=1, warm_start=True, shuffle=True, tol=0.0,
                                     n_iter_no_change=10**9, **kw)
            N = data.X_pool.shape[0]
            self.X_train = data.X_pool.reshape(N, -1)
            self.y_train = data.y_pool
            self.run = self.epoch
        else:
            self.clf = MLPClassifier(**kw)
            self.clf.partial_fit(self.Xb, self.yb, classes=self.classes)
            self.run = self.step

    def step(self):
        self.clf.partial_fit(self.Xb, self.yb)

    def epoch(self):
        self.clf.fit(self.X_train, self.y_train)

    def history_bytes(self):
        import sys
        h = getattr(self.clf, "loss_curve_", [])
        return sys.getsizeof(h) + sum(sys.getsizeof(v) for v in h)


def setup(wl, dtype, data):
    return Runner(wl, dtype, data)
