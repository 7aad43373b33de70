"""
Training a course model with the Solver
=======================================

The CS231n workflow, unchanged except for the imports: build a
:class:`~fastfc.classifiers.fc_net.FullyConnectedNet`, hand it to a
:class:`~fastfc.solver.Solver` with a data dict, call ``train()``.  Here the data are
the 8x8 handwritten digits bundled with scikit-learn
(:func:`~fastfc.data_utils.load_default_data`: 1,257 training, 270 validation and 270
test images, nothing downloaded), so the whole run takes a second or two.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastfc.classifiers.fc_net import FullyConnectedNet   # was: cs231n.classifiers.fc_net
from fastfc.data_utils import load_default_data
from fastfc.solver import Solver                          # was: cs231n.solver

data = load_default_data()            # float64 rows of 64 pixels, mean image subtracted
for name, value in data.items():
    print(f"{name:8} {value.shape} {value.dtype}")

# %%
# The model and the Solver take the course's arguments.  ``np.random.seed`` fixes the
# initial weights and the minibatches exactly as it does for the NumPy course code:
# fastfc makes the same calls on NumPy's global generator, in the same order.

np.random.seed(0)
model = FullyConnectedNet([100, 50], input_dim=64, num_classes=10, weight_scale=5e-2,
                          reg=1e-3)
solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 2e-3},
                lr_decay=0.95, num_epochs=15, batch_size=100, print_every=50,
                progress=False)
solver.train()

# %%
# After training the model holds the parameters of the best validation epoch.

test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
print(f"best validation accuracy {solver.best_val_acc:.3f}, test accuracy {test_acc:.3f}")

# %%
# The histories are plain lists, as in the course code.

fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(6, 5), layout="constrained")
ax_loss.plot(solver.loss_history, ".", markersize=3)
ax_loss.set_xlabel("iteration")
ax_loss.set_ylabel("training loss")
ax_acc.plot(solver.train_acc_history, "-o", label="train")
ax_acc.plot(solver.val_acc_history, "-o", label="val")
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("accuracy")
ax_acc.legend()
plt.show()
