"""The training defaults of fastfc's own front ends: ``fastfc train``, ``fastfc sweep``
and ``sweep()``, and the scikit-learn estimators.

The CS231n-compatible :class:`fastfc.Solver` keeps the course's defaults (plain SGD,
``learning_rate`` 1e-2 from the rule, batch 100, 10 epochs) because a migrated notebook
must compute the same numbers.  fastfc's own front ends are for people who want a model
that learns without tuning first, so they share this one set instead: Adam at 1e-3, a
little L2, one hidden layer of 100 ReLU units.  A front end takes every value it does
not get from the user from here, and prints the update rule it uses.
"""
from typing import Any, Optional

from fastfc import _registry

_RULE = "adam"

#: settings every front end shares (API names; the CLI's flags spell them with dashes)
FRONTEND_DEFAULTS: dict[str, Any] = {
    "hidden_dims": (100,),
    "activation": "relu",
    "normalization": None,
    "dropout_keep_ratio": 1.0,
    "reg": 1e-4,
    "update_rule": _RULE,
    # the rule's own default (fastfc._registry), so that the rule and its step agree
    "learning_rate": _registry.UPDATE_RULES[_RULE].defaults["learning_rate"],
    "lr_decay": 1.0,
    "batch_size": 100,
}

#: what a front end does when training diverges (see Solver's ``on_divergence``): stop
#: with a clear error rather than finish with a useless model
FRONTEND_ON_DIVERGENCE = "raise"


def describe_rule(update_rule: str, learning_rate: Optional[float] = None) -> str:
    """One line naming the optimiser a front end is about to use, e.g. for its log.

    ``update_rule`` is a name of ``fastfc._registry.UPDATE_RULES`` (or a word such as
    'swept' for a sweep that varies it); ``learning_rate`` None means the rule's own
    default from the registry.
    """
    if learning_rate is None:
        learning_rate = _registry.UPDATE_RULES[update_rule].defaults["learning_rate"]
    return f"update rule: {update_rule}, learning rate {learning_rate:g}"
