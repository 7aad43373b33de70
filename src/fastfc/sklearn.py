"""FCClassifier and FCRegressor: scikit-learn estimators backed by :class:`fastfc.Net`.

Both follow the scikit-learn estimator contract -- parameters stored as given by
``__init__``, checked in ``fit``; fitted attributes end with ``_``; inputs checked with
scikit-learn's own ``validate_data`` machinery -- so they work in ``GridSearchCV``,
``cross_val_score`` and ``Pipeline``, and they pass
``sklearn.utils.estimator_checks.check_estimator`` at their default parameters.

They share one base class, :class:`_BaseFC`, and train through :class:`fastfc.Solver`
-- fastfc's one training loop -- with the estimator's own random generator:

* each step makes one compiled :meth:`fastfc.Net.train_step` on a minibatch of
  ``batch_size`` rows; an epoch is ``max(n_samples // batch_size, 1)`` steps.  While
  the data holds more rows than ``batch_size`` the rows of a step are drawn *with
  replacement* (``rng.choice(n_samples, batch_size)``); with ``batch_size >= n_samples``
  every step is a full batch (all rows, in a fresh order), so small data sets train
  deterministically;
* ``lr_decay`` multiplies the learning rate at every epoch end (or ``schedule='cosine'``);
* stopping follows scikit-learn's MLP: after ``n_iter_no_change`` epochs in a row in
  which the training loss did not fall by at least ``tol`` (or, with
  ``early_stopping``, the validation score did not rise by at least ``tol``) training
  stops; otherwise it runs ``max_iter`` epochs and warns with a ``ConvergenceWarning``;
* with ``early_stopping`` the best validation epoch's weights are restored;
* the Solver's divergence guard stops a diverged fit (``on_divergence='raise'``) and a
  Ctrl-C ends it at a step boundary with a warning.

What differs from a plain Solver is only what an epoch end measures, records and prints
(see ``_EstimatorSolver``).  All randomness (weights, dropout masks, minibatches, the
validation split) comes from ``random_state``, never from NumPy's global generator.

Requires scikit-learn (``pip install fastfc[sklearn]``).  ONNX export
(``to_onnx``, and :func:`register_skl2onnx` for whole pipelines) needs ``onnx`` and,
for pipelines, ``skl2onnx``.
"""
# This module is fastfc/sklearn.py; with absolute imports (Python 3 default) ``import
# sklearn`` below is scikit-learn itself, never this file.
from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Any, NoReturn, Optional, Sequence, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastfc.sklearn needs scikit-learn: pip install 'fastfc[sklearn]'") from exc

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.3 .. 1.5
    _sk_validate_data = None

from fastfc import _registry
from fastfc import layers as _layers
from fastfc._defaults import FRONTEND_DEFAULTS as _D
from fastfc._defaults import describe_rule
from fastfc.net import ACTIVATIONS, Net
from fastfc.solver import _NO_CHECK, BLOWUP_FACTOR, Solver, TrainingDiverged

__all__ = ["FCClassifier", "FCRegressor", "register_skl2onnx"]

# ---------------------------------------------------------------- accepted values
# (one place for every list of names the estimators accept)
_NORMALIZATIONS = tuple(_registry.NORMALIZATIONS)
_DTYPES: dict[str, type[np.floating[Any]]] = {"float32": np.float32, "float64": np.float64}
#: every update rule trains a Net in one compiled step
_FAST_RULES = tuple(_registry.UPDATE_RULES)
_SCHEDULES = (None, "cosine")
_INITS = (None, *_registry.INITS)

#: estimator defaults beyond the front ends' (FRONTEND_DEFAULTS): scikit-learn's MLP
#: stopping rule and epoch budget
_Array = NDArray[Any]
_Targets = Union[NDArray[np.intp], NDArray[np.float64]]
#: a fitted estimator's type, kept by the methods that return ``self``
_E = TypeVar("_E", bound="_BaseFC")

_MAX_ITER = 200
_TOL = 1e-4
_N_ITER_NO_CHANGE = 10


def _validate_data(estimator: Any, X: ArrayLike, y: Any = "no_validation",
                   reset: bool = True, **check_params: Any) -> Any:
    """scikit-learn's validate_data (check_X_y / check_array + n_features_in_ and
    feature_names_in_ bookkeeping) on any supported scikit-learn version."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, reset=reset, **check_params)
    return estimator._validate_data(X, y, reset=reset, **check_params)  # pragma: no cover


_COMMON_PARAMS = """\
    hidden_dims : sequence of int, default (100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : str, default 'relu'
        Any name in ``fastfc.net.ACTIVATIONS``.
    normalization : None or str, default None
        None or a name in ``fastfc._registry.NORMALIZATIONS`` ('batchnorm', ...).
    dropout_keep_ratio : float in (0, 1], default 1.0
        Probability of keeping a hidden unit (1 = no dropout).
    reg : float >= 0, default 1e-4
        L2 strength: the loss adds ``0.5 * reg * sum(W**2)`` over the weights.
    update_rule : str, default 'adam'
        Any name in ``fastfc.optim.UPDATE_RULES``.
    learning_rate : float > 0, default 1e-3
    batch_size : int >= 1, default 100
        Minibatch size, clipped to the number of training samples.  With at least as
        many rows as samples every step is a full batch.
    max_iter : int >= 1, default 200
        Most epochs per ``fit`` call, of ``max(n_samples // batch_size, 1)`` steps each.
    tol : float >= 0, default 1e-4
        Smallest improvement that counts: of the mean epoch training loss (down), or
        with ``early_stopping`` of the validation score (up).
    n_iter_no_change : int >= 1, default 10
        Stop after this many epochs in a row without an improvement of ``tol``.
    lr_decay : float in (0, 1], default 1.0
        The learning rate is multiplied by this at every epoch end.
    schedule : {None, 'cosine'}, default None
        'cosine' anneals the learning rate over the ``max_iter`` epochs of each ``fit``
        call (``lr_decay`` must then stay 1.0).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data, score it at every epoch
        end, stop by ``tol`` / ``n_iter_no_change`` on that score and keep the weights
        of the best epoch.
    validation_fraction : float in (0, 1), default 0.1
        Share of the training data held out when ``early_stopping``.
    warm_start : bool, default False
        When True, ``fit`` continues from the fitted network (weights and optimiser
        state) instead of starting a new one; ``loss_curve_`` and ``n_iter_`` keep
        growing.
    init : {None, 'he', 'xavier'}
        Weight initialisation (see :class:`fastfc.Net`): 'he' draws ``randn *
        sqrt(2 / fan_in)``, 'xavier' ``randn * sqrt(2 / (fan_in + fan_out))``; None
        lets the net choose by activation (He for relu, leaky relu and swish).
        FCClassifier defaults to None, FCRegressor to 'xavier' (the scale of
        scikit-learn's MLP, which fits regression targets much faster than He's).
    dtype : {None, 'float32', 'float64'}, default None
        Precision of the weights and of the training computation.  None follows the
        input: float32 ``X`` trains in float32, any other ``X`` in float64 (as
        scikit-learn's own estimators do).  Whatever the training precision,
        predictions are computed in float64 from the weights, one row independently of
        the others (see Notes).
    compute_dtype : {None, 'float32', 'bfloat16'}, default None
        Precision of the matrix products of training (:class:`fastfc.Net`'s
        ``compute_dtype``): 'bfloat16' rounds their operands to bfloat16 and
        accumulates in float32 (fastfc's bf16 GEMM on a CPU with AVX512-BF16, else
        MKL's, ``pip install "fastfc[mkl]"``), with float32 weights; ``dtype`` None
        then means float32, and 'float64' is refused.
        None follows :func:`fastfc.set_compute_dtype`.  Predictions are float64 either
        way.
    random_state : int, RandomState instance or None, default None
        Seeds weights, dropout, minibatches and the validation split.
    verbose : bool or int, default False
        True (or 1): print the update rule used, then the mean loss (and validation
        score) of every epoch; 2 also shows a progress bar of the steps (tqdm).
    num_epochs : int, optional
        Former name of ``max_iter``; when given it overrides ``max_iter`` (with a
        FutureWarning).  Kept so that code written for fastfc 0.1 runs unchanged.
    patience : int, optional
        Former name of ``n_iter_no_change``; when given it overrides it (with a
        FutureWarning)."""

_COMMON_ATTRS = """\
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    net_ : fastfc.Net
        The trained network.
    loss_curve_ : list of float
        Mean training loss of every epoch (weighted by ``sample_weight``, L2 term
        included).
    validation_scores_ : list of float or None
        Validation score at every epoch end (``early_stopping`` only).
    validation_loss_curve_ : list of float or None
        Loss of the held-out rows at every epoch end, computed like ``loss_curve_`` but
        in inference mode (``early_stopping`` only).
    best_validation_score_ : float or None
    best_loss_ : float or None
        Lowest mean epoch training loss (without ``early_stopping``).
    n_iter_ : int
        Epochs run (over all ``fit`` / ``partial_fit`` calls since the network was
        created).
    t_ : int
        Training steps run.
    stopped_early_ : bool
        True when the last ``fit`` ended by the ``tol`` / ``n_iter_no_change`` rule."""

_COMMON_NOTES = """\
    **Precision and batch independence.**  The network trains in the precision of
    ``dtype`` (by default that of ``X``).  Predictions are always computed in float64
    -- by the network itself when it is float64, else by a float64 copy of its
    (float32) weights -- so that one row's result does not depend on which other rows
    share its call: a float32 matrix product rounds differently as the BLAS blocks a
    different number of rows (~1e-6 relative), a float64 one ~1e-16.  Outputs are
    float64.

    **Sample weights.**  ``sample_weight`` (and the classifier's ``class_weight``)
    weight each row's loss; a minibatch's loss is ``sum(w_i l_i) / sum(w_i)``.  Rows of
    weight 0 are left out of training altogether (they would add nothing to the loss),
    and equal weights train exactly as no weights.

    **Pickling.**  A fitted estimator pickles (for ``joblib`` and model selection), but a
    pickle runs code when loaded: load pickles only from trusted sources.  To store a
    trained network safely use ``est.net_.save(path)`` / :meth:`fastfc.Net.load`, or
    :meth:`to_onnx`."""


class _BaseFC(BaseEstimator):
    """What FCClassifier and FCRegressor share: parameter checks, the training path
    through the Solver, float64 inference, ONNX export.  Subclasses provide the target
    handling (``_prepare_targets``), the network's loss and output width, and the
    validation score."""

    _loss = "softmax"

    # ------------------------------------------------------------------ parameters

    def _check_params(self) -> tuple[list[int], int, int]:
        """Validate the constructor parameters.

        Returns (hidden_dims list, max_iter, n_iter_no_change)."""
        try:
            hidden = [self.hidden_dims] if isinstance(self.hidden_dims, numbers.Integral) \
                else list(self.hidden_dims)
        except TypeError:
            raise TypeError("hidden_dims must be a sequence of positive integers, got "
                            f"{self.hidden_dims!r}") from None
        if any(isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral)
               or h < 1 for h in hidden):
            raise ValueError("hidden_dims must be a sequence of positive integers, got "
                             f"{self.hidden_dims!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be {_registry.choices(_NORMALIZATIONS)}, "
                             f"got {self.normalization!r}")
        if self.update_rule not in _FAST_RULES:
            raise ValueError(f"update_rule must be one of {', '.join(_FAST_RULES)}, got "
                             f"{self.update_rule!r}")
        _real(self.dropout_keep_ratio, "dropout_keep_ratio", low=0.0, high=1.0,
              low_open=True)
        _real(self.reg, "reg", low=0.0)
        _real(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        _real(self.lr_decay, "lr_decay", low=0.0, high=1.0, low_open=True)
        _real(self.tol, "tol", low=0.0)
        _integer(self.batch_size, "batch_size", low=1)
        max_iter = self.max_iter
        if self.num_epochs is not None:
            warnings.warn("num_epochs is the former name of max_iter; use max_iter",
                          FutureWarning, stacklevel=4)
            _integer(self.num_epochs, "num_epochs", low=1)
            max_iter = self.num_epochs
        _integer(max_iter, "max_iter", low=1)
        no_change = self.n_iter_no_change
        if self.patience is not None:
            warnings.warn("patience is the former name of n_iter_no_change; use "
                          "n_iter_no_change", FutureWarning, stacklevel=4)
            _integer(self.patience, "patience", low=1)
            no_change = self.patience
        _integer(no_change, "n_iter_no_change", low=1)
        _real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
              low_open=True, high_open=True)
        for name in ("early_stopping", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.init not in _INITS:
            raise ValueError(f"init must be None, 'he' or 'xavier', got {self.init!r}")
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be None or 'cosine', got {self.schedule!r}")
        if self.schedule is not None and self.lr_decay != 1.0:
            raise ValueError(f"schedule={self.schedule!r} replaces lr_decay; leave "
                             "lr_decay at 1.0")
        if self.dtype is not None:
            try:
                key = np.dtype(self.dtype).name
            except TypeError:
                key = None
            if key not in _DTYPES:
                raise ValueError("dtype must be None, 'float32' or 'float64', got "
                                 f"{self.dtype!r}")
        if self.compute_dtype is not None:
            from fastfc import _gemm
            name = _gemm.check_compute_dtype(self.compute_dtype)
            if name == "bfloat16" and self.dtype is not None \
                    and np.dtype(self.dtype) != np.float32:
                raise ValueError("compute_dtype 'bfloat16' trains float32 weights; "
                                 f"dtype must be None or 'float32', got {self.dtype!r}")
        if isinstance(self.verbose, (bool, np.bool_)):
            pass
        elif not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise TypeError(f"verbose must be True, False or an integer >= 0, got "
                            f"{self.verbose!r}")
        # hidden holds numbers.Integral (int or np.integer), which Net takes as int
        return hidden, int(max_iter), int(no_change)  # type: ignore[return-value]

    def _train_dtype(self, X: _Array) -> type[np.floating[Any]]:
        """The precision to train in: ``dtype``, or by default that of X."""
        if self.dtype is not None:
            return _DTYPES[np.dtype(self.dtype).name]
        if self.compute_dtype == "bfloat16":
            return np.float32
        return np.float32 if X.dtype == np.float32 else np.float64

    # ------------------------------------------------------------------ fitting

    def _fit(self: _E, X: Any, y: Any, sample_weight: Optional[ArrayLike], *,
             partial: bool, classes: Optional[ArrayLike] = None) -> _E:
        """The one fitting path of fit (``partial=False``) and partial_fit."""
        hidden, max_iter, no_change = self._check_params()
        fitted = hasattr(self, "net_")
        new_net = not fitted or (not partial and not self.warm_start)
        if partial and not fitted:
            self._check_first_partial(classes)
        X, y = _validate_data(self, X, y, reset=new_net, dtype=(np.float64, np.float32),
                              order="C", accept_sparse=False, **self._y_checks())
        dtype = np.dtype(self.net_.dtype).type if not new_net else self._train_dtype(X)
        X = np.ascontiguousarray(X, dtype=dtype)
        targets = self._prepare_targets(y, first=new_net, partial=partial, classes=classes)
        weights = self._weights(X, targets, y, sample_weight, partial=partial)
        if new_net:
            rng = check_random_state(self.random_state)
            self._init_net(hidden, dtype, rng)
        if weights is not None:
            keep = weights > 0
            if not keep.any():
                raise ValueError("sample_weight (times class_weight) is 0 for every sample: "
                                 "nothing to train on")
            if not keep.all():  # weight-0 rows add nothing: leave them out
                X, targets, weights = X[keep], targets[keep], weights[keep]
            if np.all(weights == weights[0]):
                weights = None  # equal weights train exactly as no weights
        if self.verbose and self.n_iter_ == 0:
            print(describe_rule(self.update_rule, float(self.learning_rate)))
        validate = self.early_stopping and not partial
        X_val = t_val = w_val = None
        if validate:
            X, targets, weights, X_val, t_val, w_val = self._split(X, targets, weights)
        if partial:
            epochs = 1
        else:
            epochs = max_iter
            self._reset_stopping(validate)
        solver = _EstimatorSolver(self, X, targets, weights, X_val, t_val, w_val, epochs,
                                  no_change if not partial else None)
        try:
            solver.train()
        finally:
            self.t_ = solver._steps_before + len(solver.loss_history)
        self.stopped_early_ = bool(solver.stopped_early)
        if (not partial and not solver.stopped_early and not solver.interrupted
                and solver.epoch >= epochs):
            warnings.warn(f"{type(self).__name__}: the maximum number of epochs "
                          f"(max_iter={max_iter}) was reached before the "
                          f"{'validation score' if validate else 'training loss'} stopped "
                          "improving; raise max_iter (or tol).", ConvergenceWarning,
                          stacklevel=3)
        return self

    def _check_first_partial(self, classes: Optional[ArrayLike]) -> None:
        """Hook: what a first partial_fit call needs (the classifier's classes)."""

    def _loss_settings(self) -> dict[str, Any]:
        """Hook: the Net settings of the loss beyond its name (the classifier's
        label_smoothing); checked by ``_check_params`` before they are used."""
        return {}

    def _y_checks(self) -> dict[str, Any]:
        return {}

    def _weights(self, X: _Array, targets: _Targets, y: Any,
                 sample_weight: Optional[ArrayLike], partial: bool) -> Optional[_Array]:
        """Per-row loss weights (float64, a new array) or None."""
        if sample_weight is None:
            return None
        try:
            w = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                     ensure_non_negative=True)
        except TypeError:  # pragma: no cover - scikit-learn < 1.0
            w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        w = np.array(w, dtype=np.float64, copy=True)
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("sample_weight must hold finite values >= 0")
        return w

    def _init_net(self, hidden: Sequence[int], dtype: DTypeLike,
                  rng: np.random.RandomState) -> None:
        """Fresh network, optimiser and training book-keeping."""
        seed = int(rng.randint(0, 2**31 - 1))
        self.net_ = Net([self.n_features_in_, *hidden, self._n_outputs()],
                        activation=self.activation,
                        dropout_keep_ratio=self.dropout_keep_ratio,
                        normalization=self.normalization, reg=self.reg, dtype=dtype,
                        seed=seed, loss=self._loss, init=self.init,
                        compute_dtype=self.compute_dtype, **self._loss_settings())
        self.net_.set_optimizer(self.update_rule, learning_rate=float(self.learning_rate))
        self._rng: np.random.RandomState = rng
        self.loss_curve_: list[float] = []
        self.n_iter_: int = 0
        self.t_ = 0
        self.validation_scores_: Optional[list[float]] = None
        self.validation_loss_curve_: Optional[list[float]] = None
        self.best_validation_score_: Optional[float] = None
        self.best_loss_: Optional[float] = None
        self.stopped_early_ = False
        self._inference: _InferenceNet = _InferenceNet()
        # the loss of the first step (the blow-up rule's base)
        self._first_loss: Optional[float] = None

    def _reset_stopping(self, validate: bool) -> None:
        """A fit call starts the tol / n_iter_no_change rule afresh."""
        self._no_improvement = 0
        if validate:
            if self.validation_scores_ is None:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
            self.best_validation_score_ = None
        else:
            self.best_loss_ = None

    def _split(self, X: _Array, t: _Targets, w: Optional[_Array]
               ) -> tuple[_Array, _Array, Optional[_Array], _Array, _Array, Optional[_Array]]:
        """Hold out validation_fraction of the rows (stratified for a classifier when
        every class allows it)."""
        n = X.shape[0]
        if n < 2:
            raise ValueError("early_stopping needs at least 2 samples (one to train on, "
                             f"one to validate), got {n}")
        n_val = int(round(self.validation_fraction * n))
        n_val = min(max(n_val, 1), n - 1)
        rng = self._rng
        train_idx = val_idx = None
        if self._loss == "softmax":
            from sklearn.model_selection import StratifiedShuffleSplit
            split = StratifiedShuffleSplit(n_splits=1, test_size=n_val,
                                           random_state=int(rng.randint(0, 2**31 - 1)))
            try:  # stratified: every class contributes in proportion to its size
                train_idx, val_idx = next(split.split(np.zeros((n, 1)), t))
            except ValueError:  # a class too small to split: a plain random split
                pass
        if train_idx is None:
            order = rng.permutation(n)
            val_idx, train_idx = order[:n_val], order[n_val:]
        w_train = w_val = None
        if w is not None:
            w_train, w_val = w[train_idx], w[val_idx]
            if not w_train.any():
                raise ValueError("every training row left after the validation split has "
                                 "sample_weight 0")
        return X[train_idx], t[train_idx], w_train, X[val_idx], t[val_idx], w_val

    # ------------------------------------------------------------------ prediction

    def _outputs(self, X: ArrayLike) -> _Array:
        """Network outputs in float64, computed batch-independently (see Notes)."""
        check_is_fitted(self, "net_")
        X = _validate_data(self, X, reset=False, dtype=np.float64, order="C",
                           accept_sparse=False)
        inference = getattr(self, "_inference", None)
        if inference is None:
            inference = self._inference = _InferenceNet()
        return inference.get(self.net_).loss(X)

    def _l2(self) -> float:
        if not self.reg:
            return 0.0
        return 0.5 * float(self.reg) * sum(
            float(np.sum(np.square(v, dtype=np.float64)))
            for k, v in self.net_.params.items() if k.startswith("W"))

    # ------------------------------------------------------------------ ONNX

    def to_onnx(self, path: Optional[str | os.PathLike[str]] = None, **options: Any) -> Any:
        """The fitted network as an ONNX model; written to ``path`` when given.

        Parameters
        ----------
        path : str or os.PathLike, optional
            File to write (atomically).
        **options
            Options of ``fastfc.onnx.to_onnx_model`` (``opset``, ``dtype``,
            ``fold_batchnorm``, ``outputs``, ...).  The default outputs are the
            classifier's ``label`` (values of ``classes_``) and ``probabilities``, or
            the regressor's ``scores`` (its predictions, shape ``(N, n_outputs_)``).

        Returns
        -------
        onnx.ModelProto
        """
        check_is_fitted(self, "net_")
        from fastfc import onnx as _onnx
        defaults = self._onnx_defaults()
        outputs = options.get("outputs", defaults["outputs"])
        if "classes" in defaults and "label" not in (
                (outputs,) if isinstance(outputs, str) else tuple(outputs)):
            del defaults["classes"]   # class values only map a 'label' output
        options = {**defaults, **options}
        if path is None:
            return _onnx.to_onnx_model(self.net_, **options)
        return _onnx.export_onnx(self.net_, path, **options)

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    def _more_tags(self) -> dict[str, bool]:  # scikit-learn < 1.6
        return {"allow_nan": False}


class FCClassifier(ClassifierMixin, _BaseFC):
    """Fully-connected softmax classifier on fastfc's compiled kernels.

    The network settings default to those of ``fastfc train`` and ``fastfc sweep``
    (``fastfc._defaults.FRONTEND_DEFAULTS``: Adam at 1e-3, a little L2, one hidden layer
    of 100 ReLU units, minibatches of 100); the epoch budget and stopping rule to
    scikit-learn's ``MLPClassifier`` (``max_iter=200``, ``tol=1e-4``,
    ``n_iter_no_change=10``).

    Parameters
    ----------
{params}
    class_weight : None, 'balanced' or dict, default None
        Weight of each class's rows in the loss (multiplying ``sample_weight``):
        'balanced' gives ``n_samples / (n_classes * count(class))``; a dict maps class
        labels to weights (1 for classes not named).  'balanced' is refused by
        ``partial_fit`` (the class counts of one call say little).
    label_smoothing : float in [0, 1), default 0.0
        Trains against the targets ``(1 - eps) * onehot(y) + eps / n_classes`` instead
        of one-hot labels (:class:`fastfc.Net`'s ``label_smoothing``).  ``loss_curve_``
        and ``validation_loss_curve_`` then hold this smoothed cross-entropy, which
        cannot fall below the entropy of the targets.  Like the other network
        settings it takes effect when a network is created (not on a ``warm_start``
        continuation).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any sortable values), in the order of ``predict_proba``.
{attrs}

    Notes
    -----
{notes}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = FCClassifier(hidden_dims=(64,), random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    _loss = "softmax"

    def __init__(self, hidden_dims: Sequence[int] | int = _D["hidden_dims"],
                 activation: str = _D["activation"],
                 normalization: Optional[str] = _D["normalization"],
                 dropout_keep_ratio: float = _D["dropout_keep_ratio"],
                 reg: float = _D["reg"], update_rule: str = _D["update_rule"],
                 learning_rate: float = _D["learning_rate"],
                 batch_size: int = _D["batch_size"], max_iter: int = _MAX_ITER,
                 tol: float = _TOL, n_iter_no_change: int = _N_ITER_NO_CHANGE,
                 lr_decay: float = _D["lr_decay"], schedule: Optional[str] = None,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 warm_start: bool = False,
                 class_weight: Union[None, str, dict[Any, float]] = None,
                 label_smoothing: float = 0.0,
                 init: Optional[str] = None, dtype: Optional[DTypeLike] = None,
                 compute_dtype: Optional[str] = None,
                 random_state: Union[None, int, np.random.RandomState] = None,
                 verbose: bool | int = False, num_epochs: Optional[int] = None,
                 patience: Optional[int] = None) -> None:
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.normalization = normalization
        self.dropout_keep_ratio = dropout_keep_ratio
        self.reg = reg
        self.update_rule = update_rule
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.lr_decay = lr_decay
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.init = init
        self.dtype = dtype
        self.compute_dtype = compute_dtype
        self.random_state = random_state
        self.verbose = verbose
        self.num_epochs = num_epochs
        self.patience = patience

    def fit(self: _E, X: ArrayLike, y: ArrayLike,
            sample_weight: Optional[ArrayLike] = None) -> _E:
        """Train on (X, y): a new network, or with ``warm_start`` the fitted one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense, finite numbers (sparse input is refused: convert with ``.toarray()``).
        y : array-like of shape (n_samples,)
            Class labels of any sortable type.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each row's loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=False)

    def partial_fit(self: _E, X: ArrayLike, y: ArrayLike,
                    classes: Optional[ArrayLike] = None,
                    sample_weight: Optional[ArrayLike] = None) -> _E:
        """One more epoch on (X, y), keeping the weights and optimiser state.

        One call trains exactly as one epoch of :meth:`fit` on the same data with the
        same generator state: ``partial_fit`` k times on the same data gives the network
        of ``fit`` with ``max_iter=k`` (and no stop before), bit for bit.  The stopping
        rule and ``early_stopping`` do not apply: the caller decides when to stop.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every class that will ever be seen.  Required on the first call (the output
            layer is sized from it); later calls may omit it or repeat the same classes.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def _check_params(self) -> tuple[list[int], int, int]:
        checked = super()._check_params()
        _real(self.label_smoothing, "label_smoothing", low=0.0, high=1.0, high_open=True)
        return checked

    def _loss_settings(self) -> dict[str, Any]:
        return {"label_smoothing": float(self.label_smoothing)}

    def _check_first_partial(self, classes: Optional[ArrayLike]) -> None:
        if classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit "
                             "(every label that will ever be seen)")

    def _prepare_targets(self, y: Any, first: bool, partial: bool,
                         classes: Optional[ArrayLike]) -> NDArray[np.intp]:
        """Class indices (intp) of y; sets classes_ for a new network."""
        check_classification_targets(y)
        if partial:
            if first:
                classes = np.asarray(classes)
                check_classification_targets(classes)
                self.classes_ = np.unique(classes)
            elif classes is not None and not np.array_equal(np.unique(classes),
                                                            self.classes_):
                raise ValueError(f"classes={np.unique(classes)!r} differs from the classes "
                                 f"of the first partial_fit call, {self.classes_!r}")
        elif first:
            self.classes_ = LabelEncoder().fit(y).classes_
        y_enc = np.searchsorted(self.classes_, y)
        y_enc = np.clip(y_enc, 0, len(self.classes_) - 1)
        unseen = self.classes_[y_enc] != y
        if np.any(unseen):
            if not partial:
                raise ValueError(f"warm_start: y holds labels {np.unique(y[unseen])!r} not "
                                 f"in the classes of the fitted network, {self.classes_!r}")
            raise ValueError(f"y holds labels not in classes: {np.unique(y[unseen])!r}")
        return y_enc.astype(np.intp)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _weights(self, X: _Array, targets: _Targets, y: Any,
                 sample_weight: Optional[ArrayLike], partial: bool) -> Optional[_Array]:
        w = super()._weights(X, targets, y, sample_weight, partial)
        cw = self.class_weight
        if cw is None:
            return w
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be None, 'balanced' or a dict, got "
                                 f"{cw!r}")
            if partial:
                raise ValueError("class_weight='balanced' is not supported by partial_fit "
                                 "(pass a dict computed from all the data)")
            # 'balanced' counts the classes present in y
            present = np.unique(targets)
            per_class = np.ones(len(self.classes_))
            per_class[present] = compute_class_weight(
                "balanced", classes=self.classes_[present], y=self.classes_[targets])
        elif isinstance(cw, dict):
            per_class = np.ones(len(self.classes_))
            for label, value in cw.items():
                where = np.flatnonzero(self.classes_ == label)
                if not where.size:
                    raise ValueError(f"class_weight names the label {label!r}, which is not "
                                     f"a class of y ({self.classes_!r})")
                _real(value, f"class_weight[{label!r}]", low=0.0)
                per_class[where[0]] = float(value)
        else:
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        rows = per_class[targets]
        return rows if w is None else w * rows

    def _score_val(self, X_val: _Array, t_val: _Array, w_val: Optional[_Array],
                   net: Net) -> float:
        pred = net.predict(X_val)
        right = (pred == t_val).astype(np.float64)
        if w_val is None:
            return float(np.mean(right))
        return float(np.sum(w_val * right) / np.sum(w_val))

    def _val_loss(self, X_val: _Array, t_val: _Array, w_val: Optional[_Array]) -> float:
        scores = self._inference.get(self.net_).loss(X_val)
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        per_row = -logp[np.arange(len(t_val)), t_val]
        eps = self.net_.label_smoothing
        if eps:
            # the loss the net trains on: targets (1 - eps) onehot(y) + eps / C
            per_row = (1.0 - eps) * per_row - eps * logp.mean(axis=1)
        return _weighted_mean(per_row, w_val) + self._l2()

    def decision_function(self, X: ArrayLike) -> _Array:
        """Class scores (the network's outputs), one column per class of ``classes_``.

        Returns ndarray of shape (n_samples, n_classes), float64; with two classes,
        shape (n_samples,) holding score(classes_[1]) - score(classes_[0]).
        """
        scores = self._outputs(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        if len(self.classes_) == 1:
            return scores[:, 0]
        return scores

    def predict_proba(self, X: ArrayLike) -> _Array:
        """Class probabilities: softmax of the scores, shape (n_samples, n_classes)."""
        return _layers.softmax(self._outputs(X))

    def predict_log_proba(self, X: ArrayLike) -> _Array:
        """Natural log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> _Array:
        """Most likely class of each row of X, as a value of ``classes_``."""
        scores = self._outputs(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _onnx_defaults(self) -> dict[str, Any]:
        return {"outputs": ("label", "probabilities"), "classes": self.classes_}


class FCRegressor(RegressorMixin, _BaseFC):
    """Fully-connected regressor (mean squared error) on fastfc's compiled kernels.

    Fits one or several outputs with the loss ``0.5 * ||prediction - y||^2`` averaged
    over the rows (``Net(loss='mse')``); ``score`` is the coefficient of determination
    R^2.  The targets are used as given: scale them (e.g. with
    ``TransformedTargetRegressor``) when they are far from unit size.  Defaults as
    :class:`FCClassifier`'s.

    Parameters
    ----------
{params}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets (columns of y).
{attrs}

    Notes
    -----
{notes}

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    >>> reg = FCRegressor(hidden_dims=(32,), random_state=0).fit(X, y / 100)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _loss = "mse"

    def __init__(self, hidden_dims: Sequence[int] | int = _D["hidden_dims"],
                 activation: str = _D["activation"],
                 normalization: Optional[str] = _D["normalization"],
                 dropout_keep_ratio: float = _D["dropout_keep_ratio"],
                 reg: float = _D["reg"], update_rule: str = _D["update_rule"],
                 learning_rate: float = _D["learning_rate"],
                 batch_size: int = _D["batch_size"], max_iter: int = _MAX_ITER,
                 tol: float = _TOL, n_iter_no_change: int = _N_ITER_NO_CHANGE,
                 lr_decay: float = _D["lr_decay"], schedule: Optional[str] = None,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 warm_start: bool = False, init: Optional[str] = "xavier",
                 dtype: Optional[DTypeLike] = None, compute_dtype: Optional[str] = None,
                 random_state: Union[None, int, np.random.RandomState] = None,
                 verbose: bool | int = False, num_epochs: Optional[int] = None,
                 patience: Optional[int] = None) -> None:
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.normalization = normalization
        self.dropout_keep_ratio = dropout_keep_ratio
        self.reg = reg
        self.update_rule = update_rule
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.lr_decay = lr_decay
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.init = init
        self.dtype = dtype
        self.compute_dtype = compute_dtype
        self.random_state = random_state
        self.verbose = verbose
        self.num_epochs = num_epochs
        self.patience = patience

    def fit(self: _E, X: ArrayLike, y: ArrayLike,
            sample_weight: Optional[ArrayLike] = None) -> _E:
        """Train on (X, y): a new network, or with ``warm_start`` the fitted one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=False)

    def partial_fit(self: _E, X: ArrayLike, y: ArrayLike,
                    sample_weight: Optional[ArrayLike] = None) -> _E:
        """One more epoch on (X, y), keeping the weights and optimiser state (one epoch
        of :meth:`fit` on the same data with the same generator state; the stopping rule
        and ``early_stopping`` do not apply).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=True)

    def _y_checks(self) -> dict[str, Any]:
        return {"multi_output": True, "y_numeric": True}

    def _prepare_targets(self, y: Any, first: bool, partial: bool,
                         classes: Optional[ArrayLike]) -> NDArray[np.float64]:
        """(n, n_outputs) float targets; sets n_outputs_ for a new network."""
        y = np.asarray(y)
        one_d = y.ndim == 1
        y2 = y.reshape(-1, 1) if one_d else y
        if first:
            self.n_outputs_ = y2.shape[1]
            self._y_1d = one_d
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs but the fitted network has "
                             f"{self.n_outputs_}")
        return np.ascontiguousarray(y2, dtype=np.float64)  # the Solver casts to the net's

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _score_val(self, X_val: _Array, t_val: _Array, w_val: Optional[_Array],
                   net: Net) -> float:
        from sklearn.metrics import r2_score
        return float(r2_score(t_val, net.predict(X_val), sample_weight=w_val))

    def _val_loss(self, X_val: _Array, t_val: _Array, w_val: Optional[_Array]) -> float:
        pred = self._inference.get(self.net_).loss(X_val)
        per_row = 0.5 * np.sum((pred - t_val) ** 2, axis=1)
        return _weighted_mean(per_row, w_val) + self._l2()

    def predict(self, X: ArrayLike) -> _Array:
        """Predictions, shape ``(n_samples,)`` for a one-column y, else
        ``(n_samples, n_outputs_)``; float64."""
        out = self._outputs(X)
        return out[:, 0] if getattr(self, "_y_1d", False) else out

    def _onnx_defaults(self) -> dict[str, Any]:
        return {"outputs": ("scores",)}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self) -> dict[str, bool]:  # scikit-learn < 1.6
        return {"allow_nan": False, "multioutput": True}


# the shared parts of the two docstrings, in one place
for _cls in (FCClassifier, FCRegressor):
    _cls.__doc__ = _cls.__doc__.format(  # type: ignore[union-attr]  # both have docstrings
        params=_COMMON_PARAMS, attrs=_COMMON_ATTRS, notes=_COMMON_NOTES)
del _cls


# ---------------------------------------------------------------- skl2onnx

def register_skl2onnx() -> None:
    """Register FCClassifier and FCRegressor with ``skl2onnx``.

    After this call ``skl2onnx.to_onnx`` (or ``convert_sklearn``) converts a pipeline
    holding a fitted FCClassifier / FCRegressor -- e.g. ``Pipeline([StandardScaler(),
    FCClassifier()])`` -- as a whole.  The estimator becomes the graph of
    ``fastfc.onnx.to_onnx_model`` (in the float type of its input), inlined into
    skl2onnx's model: the classifier's outputs are skl2onnx's usual ``label`` (the
    values of ``classes_``; integer or string labels) and ``probabilities`` (a ZipMap
    unless ``options={'zipmap': False}``; class indices with ``'nocl': True``), the
    regressor's ``variable`` of shape ``(N, n_outputs_)``.  Calling it again is
    harmless.

    Requires ``skl2onnx`` (``pip install skl2onnx``) and ``onnx``.
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        raise ImportError("register_skl2onnx needs the 'skl2onnx' package: pip install "
                          "skl2onnx") from None
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        FCClassifier, "FastfcFCClassifier", calculate_linear_classifier_output_shapes,
        _skl2onnx_convert, options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(FCRegressor, "FastfcFCRegressor", _skl2onnx_regressor_shape,
                                _skl2onnx_convert)


def _skl2onnx_regressor_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = operator.inputs[0].type
    cls = DoubleTensorType if isinstance(kind, DoubleTensorType) else FloatTensorType
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = cls([n, operator.raw_operator.n_outputs_])


def _skl2onnx_convert(scope: Any, operator: Any, container: Any) -> None:
    """Inline the estimator's fastfc graph into skl2onnx's container."""
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    from fastfc import onnx as _onnx

    est = operator.raw_operator
    check_is_fitted(est, "net_")
    kind = operator.inputs[0].type
    if not isinstance(kind, (FloatTensorType, DoubleTensorType)):
        raise TypeError(f"{type(est).__name__} converts float or double inputs, got "
                        f"{type(kind).__name__} (cast the input first)")
    dtype = np.float64 if isinstance(kind, DoubleTensorType) else np.float32
    opset = container.target_opset
    if isinstance(opset, dict):  # pragma: no cover - per-domain opsets
        opset = opset.get("", _onnx.DEFAULT_OPSET)
    opset = min(int(opset), _onnx.DEFAULT_OPSET) if opset else _onnx.DEFAULT_OPSET
    if isinstance(est, FCClassifier):
        classes = est.classes_
        if classes.dtype.kind == "f":
            if not np.all(classes == np.round(classes)):
                raise NotImplementedError("skl2onnx labels are integers or strings; the "
                                          f"classes {classes!r} are neither")
            classes = classes.astype(np.int64)
        elif classes.dtype.kind == "b":
            classes = classes.astype(np.int64)
        if scope.get_options(est, {"nocl": False})["nocl"]:
            classes = None  # type: ignore[assignment]  # labels are class indices
        outputs: tuple[str, ...] = ("label", "probabilities")
        model = _onnx.to_onnx_model(est.net_, outputs=outputs, classes=classes,
                                    dtype=dtype, opset=opset)
    else:
        outputs = ("scores",)
        model = _onnx.to_onnx_model(est.net_, outputs=outputs, dtype=dtype, opset=opset)
    graph = model.graph
    names = {graph.input[0].name: operator.inputs[0].full_name}
    for name, var in zip(outputs, operator.outputs):
        names[name] = var.full_name
    for init in graph.initializer:
        new = scope.get_unique_variable_name(f"fastfc_{init.name}")
        names[init.name] = new
        if init.data_type == TensorProto.STRING:
            container.add_initializer(new, TensorProto.STRING, list(init.dims),
                                      list(init.string_data))
        else:
            array = numpy_helper.to_array(init)
            container.add_initializer(new, init.data_type, list(array.shape),
                                      array.ravel())
    for node in graph.node:
        outs = []
        for out in node.output:
            if out not in names:
                names[out] = scope.get_unique_variable_name(f"fastfc_{out}")
            outs.append(names[out])
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, [names[i] for i in node.input], outs,
                           name=scope.get_unique_operator_name(f"fastfc_{node.op_type}"),
                           **attrs)


def _weighted_mean(values: _Array, weights: Optional[_Array]) -> float:
    if weights is None:
        return float(np.mean(values))
    return float(np.sum(weights * values) / np.sum(weights))


def _state_arrays(net: Net) -> list[_Array]:
    """The arrays a net's predictions depend on: parameters, then running statistics."""
    return [*net.params.values(), *(a for pair in net.running_stats for a in pair)]


def _snapshot(net: Net) -> list[_Array]:
    """Copies of the net's parameters and running statistics (see :func:`_restore`)."""
    return [np.array(a, copy=True) for a in _state_arrays(net)]


def _restore(net: Net, snapshot: Sequence[_Array]) -> None:
    """Write a :func:`_snapshot` back into the net's own arrays."""
    for target, value in zip(_state_arrays(net), snapshot):
        target[...] = value


class _EstimatorSolver(Solver):
    """The Solver that fits an FCClassifier / FCRegressor: the same loop (epochs,
    schedule, best-weights restore, divergence guard, Ctrl-C), with

    * the estimator's generator for minibatches (``random_state``); full batches (in a
      fresh order each step) when ``batch_size`` covers the data;
    * the net's optimiser kept as the estimator set it up (``partial_fit`` and
      ``warm_start`` continue it);
    * per-row loss weights through ``data['sample_weight_train']``;
    * at every epoch end (only there) the mean epoch loss, the validation score and loss
      (with early stopping), the estimator's own line, and scikit-learn's MLP stopping
      rule (``tol``, ``n_iter_no_change``); the best snapshot is the best validation
      epoch, or without validation the last epoch end;
    * the blow-up rule based on the first loss since the network was created, and the
      estimator's divergence report (step counts over all calls, a fresh optimiser).
    """

    _fresh_optimizer = False

    def __init__(self, estimator: _BaseFC, X: _Array, t: _Targets, w: Optional[_Array],
                 X_val: Optional[_Array], t_val: Optional[_Array],
                 w_val: Optional[_Array], num_epochs: int,
                 no_change: Optional[int]) -> None:
        self._est = estimator
        net = estimator.net_
        validate = X_val is not None
        batch_size = min(int(estimator.batch_size), X.shape[0])
        data: dict[str, Any] = {"X_train": X, "y_train": t,
                # without early stopping nothing is validated: the training set
                # stands in for the Solver's required validation arrays
                "X_val": X_val if validate else X, "y_val": t_val if validate else t}
        if w is not None:
            data["sample_weight_train"] = w
        super().__init__(
            net, data, update_rule=estimator.update_rule,
            optim_config={"learning_rate": float(estimator.learning_rate)},
            lr_decay=float(estimator.lr_decay), schedule=estimator.schedule,
            batch_size=batch_size, num_epochs=int(num_epochs), num_train_samples=None,
            verbose=False, progress=bool(estimator.verbose >= 2), patience=None,
            on_divergence="raise", restore_norm_stats=True, random_state=estimator._rng,
            # a batch as large as the data: every step sees every row once
            shuffle=batch_size == X.shape[0])
        self._validate = validate
        self._val = (X_val, t_val, w_val)
        self._no_change = no_change
        self._converged = False
        self._unscaled_checked = True   # the estimator does not warn about scaling
        # None: the first validated epoch is always the best (see _improved)
        self.best_val_acc = None  # type: ignore[assignment]
        self._steps_before: int = estimator.t_
        self._call_start = _snapshot(net)

    def _blowup_base(self) -> Optional[float]:
        est = self._est
        if getattr(est, "_first_loss", None) is None and self.loss_history:
            est._first_loss = float(self.loss_history[0])
        return est._first_loss

    def _check(self, t: int, epoch_end: bool, last_it: bool) -> Any:
        if not epoch_end:
            return _NO_CHECK
        est = self._est
        per_epoch = max(self.X_train.shape[0] // self.batch_size, 1)
        total = 0.0
        for loss in self.loss_history[-per_epoch:]:
            total += float(loss)
        epoch_loss = total / per_epoch
        est.n_iter_ += 1
        est.loss_curve_.append(epoch_loss)
        message = f"epoch {est.n_iter_}: loss {epoch_loss:.6f}"
        score = None
        if self._validate:
            X_val, t_val, w_val = self._val
            score = est._score_val(X_val, t_val, w_val, self.model)
            # _reset_stopping made both curves lists before a validated fit
            est.validation_scores_.append(score)  # type: ignore[union-attr]
            est.validation_loss_curve_.append(  # type: ignore[union-attr]
                est._val_loss(X_val, t_val, w_val))
            message += (f"; validation score {score:.4f}, validation loss "
                        f"{est.validation_loss_curve_[-1]:.6f}")  # type: ignore[index]
        if est.verbose:
            print(message)
        if self._no_change is not None:
            self._stopping_rule(epoch_loss, score)
        return score

    def _stopping_rule(self, epoch_loss: float, score: Optional[float]) -> None:
        """scikit-learn MLP's rule: count epochs without an improvement of tol."""
        est = self._est
        tol = float(est.tol)
        if self._validate:
            best = est.best_validation_score_
            # score is a float whenever a validation set is held out
            improved = best is None or score > best + tol  # type: ignore[operator]
        else:
            best = est.best_loss_
            improved = best is None or epoch_loss < best - tol
            if best is None or epoch_loss < best:
                est.best_loss_ = epoch_loss
        est._no_improvement = 0 if improved else est._no_improvement + 1
        # only called when no_change is set (fit, not partial_fit)
        if est._no_improvement >= self._no_change:  # type: ignore[operator]
            self._converged = True

    def _improved(self, score: Optional[float]) -> bool:
        return score is None or self.best_val_acc is None or score > self.best_val_acc

    def _keep_best(self, score: Optional[float]) -> None:
        super()._keep_best(score)  # type: ignore[arg-type]  # None without validation
        if score is not None:
            self._est.best_validation_score_ = score

    def _end_of_check(self, t: int, epoch_end: bool, last_it: bool = False) -> bool:
        stop = super()._end_of_check(t, epoch_end, last_it)
        if self._converged:
            self._converged = False
            self.stopped_early = True
            self._report_early_stop()
            return True
        return stop

    def _report_early_stop(self) -> None:
        est = self._est
        if est.verbose:
            what = "validation score" if self._validate else "training loss"
            print(f"stopped: the {what} did not improve by tol={est.tol:g} for "
                  f"{self._no_change} epochs")

    def _diverged(self, t: int, num_iterations: int, loss: float,
                  limit: Optional[float]) -> NoReturn:
        """Put the net back to a finite snapshot with a fresh optimiser, then raise."""
        est, net = self._est, self.model
        step = self._steps_before + t + 1
        if not math.isfinite(loss):
            what = f"the loss is {loss}"
        elif not self._params_finite:
            what = "its update made parameters NaN or infinite"
        else:
            what = (f"the loss {loss:.4g} exceeds {limit:.4g} ({BLOWUP_FACTOR:g} x max(first "
                    "loss, 1): a blow-up)")
        lr = net.learning_rate
        if self.best_params:
            self._restore_best()
        else:
            _restore(net, self._call_start)
        net.set_optimizer(est.update_rule, learning_rate=float(lr))
        kept = "of the best epoch" if self._validate else "of the last epoch end"
        raise TrainingDiverged(
            f"training diverged at step {step} (epoch {est.n_iter_ + 1}): {what}. Try a "
            f"smaller learning_rate (now {lr:g}) or scale the inputs (e.g. StandardScaler); "
            f"the net holds the last finite weights ({kept}).")


class _InferenceNet:
    """A float64 twin of a fitted net, used for every prediction.

    A float32 GEMM's rounding depends on how the BLAS blocks the rows it is given, so
    float32 scores of one row change in the last bits (~1e-6 relative) with the other
    rows of the batch.  The float64 twin computes the same function of the same
    (float32) weights with rounding errors around 1e-16, so a row's scores no longer
    depend on its batch at any tolerance that matters.  The twin is rebuilt whenever
    the net's parameters or running statistics differ from those it was built from
    (one comparison pass per call); it is not pickled.
    """

    def __init__(self) -> None:
        self._source: Optional[Net] = None
        self._arrays: Optional[list[_Array]] = None
        self._net: Optional[Net] = None

    def get(self, net: Net) -> Net:
        """The float64 net computing ``net``'s scores (``net`` itself when float64)."""
        if np.dtype(net.dtype) == np.float64:
            return net
        arrays = _state_arrays(net)
        if (self._net is None or self._source is not net
                # _arrays is set together with _net
                or not all(np.array_equal(a, b)
                           for a, b in zip(arrays, self._arrays))):  # type: ignore[arg-type]
            state = net.__getstate__()  # the pickled form, without the optimiser
            state.update(dtype=np.float64, update_rule=None, optim=None)
            twin = Net.__new__(Net)
            twin.__setstate__(state)
            self._net, self._source = twin, net
            self._arrays = [np.array(a, copy=True) for a in arrays]
        return self._net

    def __reduce__(self) -> tuple[type[_InferenceNet], tuple[()]]:
        return (_InferenceNet, ())


def _real(value: object, name: str, low: Optional[float] = None,
          high: Optional[float] = None, low_open: bool = False,
          high_open: bool = False) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    # typeshed's numbers.Real suits neither np.isfinite nor ``Real > float``
    if not np.isfinite(value):  # type: ignore[call-overload]
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high  # type: ignore[operator]
                             or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")


def _integer(value: object, name: str, low: int) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
