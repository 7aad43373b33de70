"""UCLA ECE C147/C247's ``nndl`` package, on fastfc's kernels.

UCLA's homework code is the CS231n code base with a few changes of its own.  A UCLA
student changes ``nndl.`` to ``fastfc.nndl.`` (and ``utils.`` to ``fastfc.nndl.`` for
the solver, gradient checks and data loading) and gets UCLA's numbers; ``fastfc.layers``,
``fastfc.optim`` and ``fastfc.classifiers`` keep CS231n's contract.

What differs from the CS231n modules:

* :mod:`~fastfc.nndl.layers`: ``dropout_param['p']`` is the probability of DROPPING a
  unit (HW4), the mask is ``(np.random.rand(*x.shape) < (1 - p)) / (1 - p)``;
* :mod:`~fastfc.nndl.optim`: state under UCLA's names from an empty config (the
  ``ucla_state`` of each rule in ``fastfc._registry.UPDATE_RULES``: ``'a'``, ``'v'``);
* :mod:`~fastfc.nndl.fc_net`: UCLA's signatures and argument order;
  ``FullyConnectedNet(..., dropout=0, use_batchnorm=False, ...)``;
* :mod:`~fastfc.nndl.neural_net`: the (H, D)-layout two-layer net, ``train(reg=1e-5)``;
* :mod:`~fastfc.nndl.layer_tests`: the HW4 notebook's checks of the copied functions.

Everything is a thin layer over the fastfc modules: no second copy of the math.
"""
from fastfc.nndl import layers, layer_utils, optim  # noqa: F401

__all__ = ["layers", "layer_utils", "optim", "fc_net", "neural_net", "solver",
           "gradient_check", "data_utils", "layer_tests"]
