"""
A small hyper-parameter sweep
=============================

:func:`fastfc.sweep.sweep` trains one :class:`fastfc.Net <fastfc.net.Net>` per
configuration of a search space, with the :class:`~fastfc.solver.Solver`, and returns
every trial's record, best validation accuracy first, with the best trained net.  A
space maps setting names (the keywords of ``Net``, the Solver and the update rule) to
candidate lists (grid search) or distributions (random search); settings every trial
shares are keyword arguments.

This sweep is a 2 x 2 grid run in this process (``n_jobs=1``; the default is a pool of
one worker process per core, ``backend='dask'`` runs the trials on a Dask cluster) and
keeps no results file (``results=None``; with a file, a re-run resumes where the last
one stopped).
"""

import numpy as np

from fastfc.data_utils import load_default_data
from fastfc.sweep import sweep

data = load_default_data(np.float32)
space = {"hidden_dims": [[32], [128]], "learning_rate": [1e-3, 3e-3]}
trials, best = sweep(space, data, backend="local", n_jobs=1, results=None,
                     num_epochs=8, progress=False)

for t in trials:
    print(f"{t['status']:4} val {t['best_val_acc']:.3f}  {t['config']}  "
          f"({t['wall_time']:.2f} s)")

# %%
# The best net is trained already: evaluate it on the test split.

test_acc = np.mean(best.predict(data["X_test"]) == data["y_test"])
print(f"best configuration {trials[0]['config']}: test accuracy {test_acc:.3f}")
