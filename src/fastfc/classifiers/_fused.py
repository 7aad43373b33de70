"""The fused training step of a plain FullyConnectedNet, offered to the Solver.

The Solver knows no model class: it asks the model for a step accelerator through the
protocol's optional hook (``model.make_solver_step(solver)``, see
:mod:`fastfc._protocols`); :meth:`FullyConnectedNet.make_solver_step` answers with a
:class:`FusedStep` from this module, or None when the net cannot be fused.

A course user trains ``FullyConnectedNet`` with ``Solver``: every step calls
``model.loss`` (one Python call per layer, fresh arrays for every output and gradient)
and then the update rule once per parameter.  For the nets that :class:`fastfc.Net`
computes identically -- ReLU, softmax, no dropout, no normalisation, a named update
rule -- the Solver instead runs the step as one ``Net.train_step``: the same formulas
(forward, softmax loss with the L2 term, backward, ``g = dw + reg * w``, the update),
one compiled call.

A ``loss`` patched on the model (its instance or its class) is always called: the
fused step runs only the code it replaces.  Nothing the user sees changes shape: after a fused step ``model.params[name]`` and the
state arrays in ``solver.optim_configs[name]`` (``velocity``, ``cache``, ``m``, ``v``)
are views of the Net's flat buffers, and ``t`` is written back to every config.  Each
step first checks that this is still so: an array the user (or ``resume``) put in
their place is copied into the buffer, and a config the fused step cannot honour
(per-parameter learning rates, ``weight_decay``, the UCLA state names) makes that step
take the ordinary path, which works on the same arrays in place.
"""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from fastfc import _validation as V
from fastfc import optim

if TYPE_CHECKING:
    from fastfc.solver import Solver

# defaults of each rule's hyper-parameters but the learning rate (which the Net takes
# on its own, so that a schedule changing it every step costs nothing)
_HYPER = {rule: {k: v for k, v in spec[0].items() if k != "learning_rate"}
          for rule, spec in optim._SPECS.items()}


class FusedStep:
    """Runs Solver steps of a plain FullyConnectedNet through a Net sharing its arrays."""

    @classmethod
    def for_solver(cls, solver: Solver) -> Optional[FusedStep]:
        """A FusedStep for this solver, or None when its model cannot be fused."""
        from fastfc.classifiers.fc_net import FullyConnectedNet
        model = solver.model
        # exactly the class: a subclass may compute something else
        if (type(model) is not FullyConnectedNet or model.normalization is not None
                or model.use_dropout or solver.rule_name is None or solver.augment is not None):
            return None
        names = [f"{kind}{i}" for i in range(1, model.num_layers + 1) for kind in "Wb"]
        if sorted(names) != sorted(model.params):
            return None
        dims = [np.shape(model.params["W1"])[0]]
        dims += [np.shape(model.params[f"W{i}"])[1] for i in range(1, model.num_layers + 1)]
        return cls(solver, dims, FullyConnectedNet.loss)

    def __init__(self, solver: Solver, dims: Sequence[int],
                 loss_fn: Callable[..., Any]) -> None:
        from fastfc.net import Net
        model = solver.model
        self.solver = solver
        self.loss_fn = loss_fn       # FullyConnectedNet.loss, the code the Net replaces
        # for_solver builds a FusedStep only for a named rule
        self.rule: str = solver.rule_name  # type: ignore[assignment]
        # seed=0: its own initial draw, so NumPy's global generator is left alone
        self.net = Net(dims, activation="relu", reg=model.reg, dtype=model.dtype, seed=0)
        self.dtype = np.dtype(model.dtype)
        self.views = dict(self.net.params)
        self.state_keys = optim._SPECS[self.rule][2]
        size = self.net._flat.size
        self.state_flat = [np.zeros(size, dtype=self.dtype) for _ in self.state_keys]
        self.state_views: dict[str, list[np.ndarray]] = {}
        for name, offset, shape in self.net._layout:
            n = int(np.prod(shape))
            self.state_views[name] = [s[offset:offset + n].reshape(shape)
                                      for s in self.state_flat]
        # a config the Net can run holds exactly these keys
        scalar_keys = list(_HYPER[self.rule]) + ["learning_rate"]
        # the rules that count steps (adam, adamw) keep t in every config
        self.counts_steps = optim.RULES[self.rule].counts_steps
        if self.counts_steps:
            scalar_keys.append("t")
        self.known_keys = set(scalar_keys) | set(self.state_keys)
        self.n_keys = len(self.known_keys)
        get = operator.itemgetter(*scalar_keys)
        self.scalars: Callable[[dict[str, Any]], Any] = (
            get if len(scalar_keys) > 1 else (lambda config: (get(config),)))
        # the hyper-parameters (but lr) last given to the Net's set_optimizer: a key to
        # notice a change, not a value anything reads.  The learning rate and Adam's t
        # live in the configs (solver.optim_configs); the Net's copies are refreshed
        # from them before a step and t is written back after it.
        self.hyper: Any = None

    # ------------------------------------------------------------------ checks

    def _sync_params(self) -> bool:
        """Point model.params at the Net's views, copying in any array put in their place."""
        params = self.solver.model.params
        if len(params) != len(self.views):
            return False
        for name, view in self.views.items():
            value = params.get(name)
            if value is view:
                continue
            if (type(value) is not np.ndarray or value.dtype != self.dtype
                    or value.shape != view.shape):
                return False       # the ordinary path handles (or reports) it
            view[...] = value
            params[name] = view
        return True

    def _fill(self, config: dict[str, Any]) -> bool:
        """Complete a config as the update rules do; False if the Net cannot run it."""
        # weight_decay is an L2 term the Net does not take -- except as the rule's own
        # (decoupled) hyper-parameter (adamw)
        if ("weight_decay" not in _HYPER[self.rule]
                and config.get("weight_decay", 0.0) != 0.0) or "a" in config:
            return False
        for key, value in _HYPER[self.rule].items():
            config.setdefault(key, value)
        # each rule's own default (adam's is 1e-3), as the update rules set it
        config.setdefault("learning_rate", optim._SPECS[self.rule][0]["learning_rate"])
        if self.counts_steps:
            config.setdefault("t", 0)
        return set(config) <= self.known_keys

    def _sync_configs(self) -> bool:
        """Check that every config can be run by the Net; share the state arrays."""
        configs = self.solver.optim_configs
        scalars = self.scalars
        first: Any = None
        for name, views in self.state_views.items():
            config = configs.get(name)
            if type(config) is not dict:
                return False
            if len(config) != self.n_keys and not self._fill(config):
                return False
            try:
                values = scalars(config)      # (hyper..., learning_rate[, t])
            except KeyError:
                if not self._fill(config):
                    return False
                values = scalars(config)
            if first is None:
                first = values
            elif values != first:
                return False       # per-parameter hyper-parameters: the ordinary path
            for key, view in zip(self.state_keys, views):
                value = config.get(key)
                if value is view:
                    continue
                if value is None:
                    view[...] = 0
                elif (type(value) is np.ndarray and value.shape == view.shape
                      and value.dtype.kind == "f"):
                    view[...] = value
                else:
                    return False
                config[key] = view
        k = len(_HYPER[self.rule])
        hyper, lr = first[:k], first[k]
        if hyper != self.hyper:
            # validated as the update rules validate them (same messages)
            config = dict(zip(_HYPER[self.rule], hyper), learning_rate=lr)
            self.net.set_optimizer(self.rule, **config,
                                   **dict(zip(self.state_keys, self.state_flat)))
            self.hyper = hyper
        net = self.net
        if lr != net.learning_rate:
            net.learning_rate = lr               # validates it
        if self.counts_steps and first[-1] != net._core.t:
            net._core.t = V.check_scalar(first[-1], "config['t']", low=0, high=2**53,
                                         integer=True)
        return True

    # ------------------------------------------------------------------ step

    def step(self, X_train: np.ndarray, batch_mask: np.ndarray,
             y_batch: np.ndarray) -> Optional[float]:
        """The step's loss, or None when this step must take the ordinary path.

        The rows ``X_train[batch_mask]`` are gathered (and cast) by the Net straight
        into its own buffer when X_train is a C-ordered float array.
        """
        model = self.solver.model
        # a loss patched on the instance or the class (a test double, a wrapper) is
        # what the user asked to run
        if "loss" in model.__dict__ or type(model).loss is not self.loss_fn:
            return None
        if not (self._sync_params() and self._sync_configs()):
            return None
        if model.reg != self.net.reg:
            self.net.reg = model.reg
        if (type(X_train) is np.ndarray and X_train.dtype.kind == "f"
                and X_train.dtype.isnative and X_train.dtype.itemsize in (4, 8)
                and X_train.flags.c_contiguous and X_train.flags.aligned):
            loss = self.net.train_step(X_train, y_batch, indices=batch_mask)
        else:
            X = V.as_array(X_train[batch_mask], "X").astype(self.dtype, copy=False)
            loss = self.net.train_step(X, y_batch)
        if self.counts_steps:
            t = int(self.net._core.t)
            for config in self.solver.optim_configs.values():
                config["t"] = t
        return loss

    @property
    def nonfinite(self) -> int:
        """Number of parameters the last fused step made NaN or infinite."""
        return self.net.nonfinite_params
