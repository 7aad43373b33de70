"""The names fastfc knows, one row each: activations, update rules, losses, normalisations.

Every list of choices in fastfc is read from the tables below -- ``Net``'s argument
checks and kernel codes, :mod:`fastfc.optim`'s public rules and their defaults,
:mod:`fastfc.layers`' activation codes, the command line's ``choices``, the scikit-learn
estimator's validation, the sweep's routing and the docstrings that list the choices.
Adding an entry means adding its compiled loop and one row here (see CONTRIBUTING.md).

The module imports nothing of fastfc, so that any module can read it without an import
cycle.  The ``code`` of a row is the number the compiled kernels use for it (the enums
of ``csrc/dense_loops.h``, ``_kernels/optim.pyx`` and ``_kernels/net.pyx``);
``tests/test_registry.py`` checks that the two agree.
"""
from types import MappingProxyType
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Tuple

__all__ = ["Activation", "UpdateRule", "Loss", "Normalization", "ALL_ACTIVATIONS",
           "ACTIVATIONS", "UPDATE_RULES", "LOSSES", "NORMALIZATIONS", "INITS", "choices"]


# ------------------------------------------------------------------ activations

class Activation(NamedTuple):
    """A hidden-layer nonlinearity."""

    name: str
    code: int           # FFC_ACT_* of csrc/dense_loops.h (fastfc._kernels.dense.ACT_CODES)
    init: str           # the weight initialisation Net picks for it: 'he' or 'xavier'
    #: its ONNX form: an operator name ('LeakyRelu' takes the net's alpha), 'x*Sigmoid'
    #: for x * Sigmoid(x), '' for none
    onnx: str


#: every activation the kernels compute, by name; 'identity' is the kernels' "no
#: activation" (the output layer) and is not offered as a hidden-layer choice
ALL_ACTIVATIONS = MappingProxyType({a.name: a for a in (
    Activation("identity", 0, "xavier", ""),      # x
    Activation("relu", 1, "he", "Relu"),           # max(x, 0)
    Activation("leaky_relu", 2, "he", "LeakyRelu"),     # where(x > 0, x, alpha * x)
    Activation("sigmoid", 3, "xavier", "Sigmoid"),    # 1 / (1 + exp(-x))
    Activation("tanh", 4, "xavier", "Tanh"),
    Activation("swish", 5, "he", "x*Sigmoid"),          # x * sigmoid(x)
)})

#: the hidden-layer activations (Net, the estimator, the command line), by name
ACTIVATIONS = MappingProxyType({k: v for k, v in ALL_ACTIVATIONS.items()
                                if k != "identity"})

#: the initialisation schemes of Net's ``init``
INITS = ("he", "xavier")


# ------------------------------------------------------------------ update rules

class UpdateRule(NamedTuple):
    """A first-order update rule ``(w, dw, config) -> (next_w, config)``."""

    name: str
    code: int           # the rule's code in _kernels/optim.pyx (RuleParams.rule)
    #: hyper-parameters and their defaults (learning_rate first)
    defaults: Mapping[str, float]
    #: the allowed range of each hyper-parameter (keyword arguments of
    #: fastfc._validation.check_scalar)
    ranges: Mapping[str, Mapping[str, Any]]
    state: Tuple[str, ...]          # state arrays shaped like w, CS231n's names
    ucla_state: Tuple[str, ...]     # the same arrays under UCLA's names
    counts_steps: bool              # keeps a step counter config['t'] (1 at the first step)
    formula: str                    # the update, for docstrings


_NONNEG = MappingProxyType(dict(low=0.0))
_UNIT = MappingProxyType(dict(low=0.0, high=1.0))
_UNIT_OPEN = MappingProxyType(dict(low=0.0, high=1.0, high_open=True))
# epsilon > 0: with 0, a parameter whose gradient is 0 becomes 0 / 0 = NaN
_POSITIVE = MappingProxyType(dict(low=0.0, low_open=True))


def _rule(name: str, code: int, hyper: Mapping[str, Tuple[float, Mapping[str, object]]],
          state: Tuple[str, ...] = (), ucla_state: Optional[Tuple[str, ...]] = None,
          counts_steps: bool = False, formula: str = "") -> UpdateRule:
    """A row from {hyper-parameter: (default, range)}."""
    return UpdateRule(
        name, code, MappingProxyType({k: d for k, (d, _) in hyper.items()}),
        MappingProxyType({k: r for k, (_, r) in hyper.items()}), tuple(state),
        tuple(state if ucla_state is None else ucla_state), counts_steps, formula)


#: every update rule, by name (fastfc.optim.UPDATE_RULES holds their functions)
UPDATE_RULES = MappingProxyType({r.name: r for r in (
    _rule("sgd", 0, {"learning_rate": (1e-2, _NONNEG)},
          formula="next_w = w - learning_rate * dw"),
    _rule("sgd_momentum", 1,
          {"learning_rate": (1e-2, _NONNEG), "momentum": (0.9, _UNIT)},
          state=("velocity",),
          formula="v = momentum * v - learning_rate * dw; next_w = w + v"),
    _rule("sgd_nesterov_momentum", 2,
          {"learning_rate": (1e-2, _NONNEG), "momentum": (0.9, _UNIT)},
          state=("velocity",),
          formula="v' = momentum * v - learning_rate * dw; "
                  "next_w = w + v' + momentum * (v' - v)"),
    _rule("rmsprop", 3,
          {"learning_rate": (1e-2, _NONNEG), "decay_rate": (0.99, _UNIT),
           "epsilon": (1e-8, _POSITIVE)},
          state=("cache",), ucla_state=("a",),
          formula="cache = decay_rate * cache + (1 - decay_rate) * dw**2; "
                  "next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)"),
    _rule("adam", 4,
          {"learning_rate": (1e-3, _NONNEG), "beta1": (0.9, _UNIT_OPEN),
           "beta2": (0.999, _UNIT_OPEN), "epsilon": (1e-8, _POSITIVE)},
          state=("m", "v"), ucla_state=("v", "a"), counts_steps=True,
          formula="t += 1; m = beta1 * m + (1 - beta1) * dw; "
                  "v = beta2 * v + (1 - beta2) * dw**2; next_w = w - learning_rate * "
                  "(m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon) "
                  "(Kingma & Ba, ICLR 2015)"),
    # weight_decay is decoupled (torch.optim.AdamW): it shrinks every parameter the rule
    # updates, and is not the L2 term that the other rules' extra weight_decay adds to dw
    _rule("adamw", 5,
          {"learning_rate": (1e-3, _NONNEG), "beta1": (0.9, _UNIT_OPEN),
           "beta2": (0.999, _UNIT_OPEN), "epsilon": (1e-8, _POSITIVE),
           "weight_decay": (1e-2, _NONNEG)},
          state=("m", "v"), ucla_state=("v", "a"), counts_steps=True,
          formula="t += 1; w = w * (1 - learning_rate * weight_decay); then adam's "
                  "update of w with the same m, v and t (decoupled weight decay, "
                  "Loshchilov & Hutter, ICLR 2019; as torch.optim.AdamW)"),
)})


# ------------------------------------------------------------------ losses

class Loss(NamedTuple):
    """A loss over the net's outputs, (weighted) mean over the minibatch."""

    name: str
    code: int           # Net's loss kind (NetState.loss_kind in _kernels/net.pyx)
    layer: str          # the fastfc.layers function that computes it
    targets: str        # 'labels' (integer classes) or 'values' (float targets (N, D))


#: the losses Net trains with, by name
LOSSES = MappingProxyType({loss.name: loss for loss in (
    Loss("softmax", 0, "softmax_loss", "labels"),
    Loss("svm", 1, "svm_loss", "labels"),
    Loss("mse", 2, "mse_loss", "values"),
)})


# ------------------------------------------------------------------ normalisations

class Normalization(NamedTuple):
    """A normalisation of each hidden layer before its activation (None: none)."""

    name: Optional[str]
    code: int           # NORM_* in _kernels/net.pyx
    cli_name: str       # the command line's spelling ('none' for None)


#: the normalisations, by name (None first: no normalisation)
NORMALIZATIONS = MappingProxyType({n.name: n for n in (
    Normalization(None, 0, "none"),
    Normalization("batchnorm", 1, "batchnorm"),
    Normalization("layernorm", 2, "layernorm"),
)})


# ------------------------------------------------------------------ look-ups

def choices(table: Iterable[object]) -> str:
    """The names of a table as one readable string, e.g. "None, 'batchnorm' or 'layernorm'"."""
    names = [repr(name) for name in table]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
