"""
Pictures of a run: training curves and first-layer weights
==========================================================

:func:`fastfc.vis_utils.plot_history` and :func:`fastfc.vis_utils.show_net_weights`
write PNG files without a display (they draw on matplotlib's Agg canvas; the ``plot``
extra).  ``fastfc train`` writes the same two pictures into every run directory, as
``history.png`` and ``weights.png``.  Below, a small net trains on the digits, both
pictures are written to a temporary folder, and read back to show them here.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from fastfc import Net, Solver
from fastfc.data_utils import load_default_data
from fastfc.vis_utils import plot_history, show_net_weights

data = load_default_data(np.float32)
net = Net([64, 36, 10], reg=1e-3, dtype=np.float32, seed=0)
solver = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 3e-3},
                num_epochs=12, batch_size=50, verbose=False)
solver.train()
print(f"best validation accuracy {solver.best_val_acc:.3f}")

folder = tempfile.mkdtemp()
history_png = plot_history(solver, os.path.join(folder, "history.png"),
                           title="Net 64-36-10 on the digits")
weights_png = show_net_weights(net, os.path.join(folder, "weights.png"))
for path in (history_png, weights_png):
    print(os.path.basename(path), os.path.getsize(path), "bytes")

# %%
# The training curves: loss per iteration above, train and validation accuracy per
# epoch below, the best epoch (whose weights the Solver keeps) starred.

fig, ax = plt.subplots(figsize=(8, 7), layout="constrained")
ax.imshow(plt.imread(history_png))
ax.set_axis_off()

# %%
# One tile per hidden unit: the 64 incoming weights of each unit drawn as the 8x8
# image they multiply (the image shape is inferred from the 64 inputs).

fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
ax.imshow(plt.imread(weights_png))
ax.set_axis_off()
plt.show()
