"""
The fast Net: one compiled call per training step
=================================================

:class:`fastfc.Net <fastfc.net.Net>` keeps its parameters in one flat buffer and its
activations, gradients and optimiser state preallocated, and
:meth:`~fastfc.net.Net.train_step` runs forward pass, loss, backward pass and update
in one call without the GIL.  It also keeps the CS231n model contract (``params``,
``loss(X, y=None)``), so everything that works with a course model works with it.
"""

import os
import tempfile

import numpy as np

from fastfc import Net
from fastfc.data_utils import load_default_data

data = load_default_data(np.float32)           # float32 stays float32 end to end
X, y = data["X_train"], data["y_train"]

net = Net([64, 128, 64, 10], normalization="batchnorm", dropout_keep_ratio=0.9,
          reg=1e-4, dtype=np.float32, seed=0)  # He initialisation by default
net.set_optimizer("adam", learning_rate=2e-3)
print(net)

# %%
# A hand-written training loop: shuffle each epoch, one ``train_step`` per minibatch.
# ``train_step`` returns the minibatch loss (before the update).

rng = np.random.default_rng(0)
batch_size = 64
for epoch in range(10):
    order = rng.permutation(len(X))
    losses = [net.train_step(X[idx], y[idx])
              for idx in np.array_split(order, len(X) // batch_size)]
    val_acc = np.mean(net.predict(data["X_val"]) == data["y_val"])
    print(f"epoch {epoch + 1:2d}: mean loss {np.mean(losses):.4f}, val accuracy {val_acc:.3f}")

# %%
# ``loss(X)`` without labels returns the class scores (test mode: dropout off, batch
# norm with its running statistics); ``predict`` takes their argmax.

scores = net.loss(data["X_test"][:3])
print("scores of three test images:\n", np.round(scores, 2))
print("test accuracy", np.mean(net.predict(data["X_test"]) == data["y_test"]))

# %%
# ``params`` is a dict of views into the flat buffer, named as in the course models.

for name, value in net.params.items():
    print(f"{name:8} {value.shape} {value.dtype}")

# %%
# ``save`` writes a pickle-free ``.npz`` (architecture, parameters, running statistics
# and optimiser state); ``Net.load`` gives back a net that predicts the same.

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "model.npz")
    net.save(path)
    again = Net.load(path)
    same = np.array_equal(again.loss(data["X_test"]), net.loss(data["X_test"]))
    print(f"saved {os.path.getsize(path)} bytes; reloaded net gives the same scores: {same}")

# %%
# ``astype`` copies the net to another float type, for instance float64 for a
# gradient check (see the next example).

print(net.astype(np.float64).params["W1"].dtype)
