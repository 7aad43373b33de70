"""fastfc-compat: what a course user gets by changing ``cs231n.`` to ``fastfc.``.

``fastfc.classifiers.fc_net.FullyConnectedNet`` trained by ``fastfc.solver.Solver``
with ``update_rule='adam'``; one timed step is one ``solver._step()``: it draws the
minibatch with ``np.random.choice`` (as the course Solver does, and as numpy-ref does)
and trains on ``X_train[batch_mask]``.  For these plain ReLU nets the Solver runs the
step fused (``fastfc/_fused.py``: one ``Net.train_step`` sharing the model's arrays,
rows gathered into its buffer); with dropout or normalisation (W6) it calls
``model.loss`` and applies the update to every parameter in place.
"""
import numpy as np

from bench.impls.fastfc_net import available, set_threads, supports  # noqa: F401 (same hooks)
from bench.workloads import he_scale

NAME = "fastfc-compat"


class Runner:
    includes_sampling = True

    def __init__(self, wl, dtype, data):
        from fastfc.classifiers.fc_net import FullyConnectedNet
        from fastfc.solver import Solver
        np.random.seed(0)
        # no ``seed=``: it would re-seed NumPy's global generator before every dropout
        # mask and so make the Solver draw the same minibatch every step
        self.model = FullyConnectedNet(list(wl.dims[1:-1]), input_dim=wl.dims[0],
                                       num_classes=wl.dims[-1], reg=1e-4, weight_scale=1.0,
                                       dtype=np.dtype(dtype).type,
                                       normalization=wl.normalization,
                                       dropout_keep_ratio=wl.keep)
        for i, fan_in in enumerate(wl.dims[:-1], 1):      # He initialisation
            self.model.params[f"W{i}"] *= he_scale(fan_in)
        n_val = min(100, data.X_pool.shape[0])
        self.solver = Solver(self.model, {"X_train": data.X_pool, "y_train": data.y_pool,
                                          "X_val": data.X_pool[:n_val],
                                          "y_val": data.y_pool[:n_val]},
                             update_rule="adam", optim_config={"learning_rate": 1e-3},
                             batch_size=wl.batch, num_epochs=1, verbose=False)
        self.steps = wl.steps_per_epoch
        self.run = self.solver._step if wl.kind == "step" else self.epoch

    def epoch(self):
        step = self.solver._step
        for _ in range(self.steps):
            step()

    def history_bytes(self):
        import sys
        h = self.solver.loss_history
        return sys.getsizeof(h) + sum(sys.getsizeof(v) for v in h)


def setup(wl, dtype, data):
    return Runner(wl, dtype, data)
