"""FCClassifier: a scikit-learn estimator backed by :class:`fastfc.Net`.

``FCClassifier`` follows the scikit-learn estimator contract -- parameters stored as
given by ``__init__``, checked in ``fit``; fitted attributes end with ``_``; inputs
checked with scikit-learn's own ``check_X_y`` / ``check_array`` machinery -- so it
works in ``GridSearchCV``, ``cross_val_score`` and ``Pipeline``, and it passes
``sklearn.utils.estimator_checks.check_estimator``.

Training runs through :class:`fastfc.Solver` -- fastfc's one training loop -- with the
estimator's own random generator: each step draws a minibatch of ``batch_size`` row
indices *with replacement* (``rng.choice(n_samples, batch_size)``, the Solver's
``random_state``) and makes one compiled :meth:`fastfc.Net.train_step`; an epoch is
``max(n_samples // batch_size, 1)`` steps; ``lr_decay`` multiplies the learning rate at
every epoch end; early stopping watches validation accuracy on a held-out
``validation_fraction`` and restores the best weights (the Solver's ``patience``); the
Solver's divergence guard stops a diverged fit (``on_divergence='raise'``) and a Ctrl-C
ends it at a step boundary with a warning, keeping the best weights.  What differs from
a plain Solver is only what an epoch end measures and prints (validation accuracy
through ``net.predict``, the mean epoch loss) -- see ``_EstimatorSolver``.  All
randomness (weights, dropout masks, minibatches, the validation split) comes from
``random_state``, never from NumPy's global generator.

Requires scikit-learn (``pip install fastfc[sklearn]``).
"""
# This module is fastfc/sklearn.py; with absolute imports (Python 3 default) ``import
# sklearn`` below is scikit-learn itself, never this file.
import math
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
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

__all__ = ["FCClassifier"]

_NORMALIZATIONS = tuple(_registry.NORMALIZATIONS)
_DTYPES = {"float32": np.float32, "float64": np.float64}
#: every update rule trains a Net in one compiled step
_FAST_RULES = tuple(_registry.UPDATE_RULES)


def _validate_data(estimator, X, y="no_validation", reset=True, **check_params):
    """scikit-learn's validate_data (check_X_y / check_array + n_features_in_ and
    feature_names_in_ bookkeeping) on any supported scikit-learn version."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, reset=reset, **check_params)
    return estimator._validate_data(X, y, reset=reset, **check_params)  # pragma: no cover


class FCClassifier(ClassifierMixin, BaseEstimator):
    """Fully-connected softmax classifier on fastfc's compiled kernels.

    The training settings default to those of ``fastfc train`` and ``fastfc sweep``
    (``fastfc._defaults.FRONTEND_DEFAULTS``: Adam at 1e-3, a little L2, one hidden layer
    of 100 ReLU units, minibatches of 100), not to the course Solver's plain SGD.

    Parameters
    ----------
    hidden_dims : sequence of int, default (100,)
        Width of each hidden layer; ``()`` gives a linear softmax classifier.
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
        Minibatch size, clipped to the number of training samples.
    num_epochs : int >= 1, default 20
        Epochs of ``max(n_samples // batch_size, 1)`` steps each.
    lr_decay : float in (0, 1], default 1.0
        The learning rate is multiplied by this at every epoch end.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data, check its accuracy at
        every epoch end, stop after ``patience`` epochs without improvement and keep
        the best weights.
    patience : int >= 1, default 5
    dtype : {'float32', 'float64'}, default 'float32'
        Precision of the weights and of the training computation.  Predictions
        (``decision_function``, ``predict_proba``, ``predict``) are always computed in
        float64 from these weights, so that a row's result does not depend on which
        other rows share its batch (a float32 GEMM rounds differently as the BLAS blocks
        a different number of rows).
    random_state : int, RandomState instance or None, default None
        Seeds weights, dropout, minibatches and the validation split.
    verbose : bool, default False
        Print the update rule used, then the mean loss (and validation accuracy) of
        every epoch.
    validation_fraction : float in (0, 1), default 0.1
        Share of the training data held out when ``early_stopping``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any sortable values), in the order of ``predict_proba``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    net_ : fastfc.Net
        The trained network (outputs index ``classes_``).
    loss_curve_ : list of float
        Mean training loss of every epoch (L2 term included).
    n_iter_ : int
        Epochs run (over all ``fit`` / ``partial_fit`` calls since the last ``fit``).
    t_ : int
        Training steps run.
    validation_scores_ : list of float or None
        Validation accuracy at every epoch end (``early_stopping`` only).
    best_validation_score_ : float or None
    stopped_early_ : bool

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = FCClassifier(hidden_dims=(64,), random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    def __init__(self, hidden_dims=_D["hidden_dims"], activation=_D["activation"],
                 normalization=_D["normalization"],
                 dropout_keep_ratio=_D["dropout_keep_ratio"], reg=_D["reg"],
                 update_rule=_D["update_rule"], learning_rate=_D["learning_rate"],
                 batch_size=_D["batch_size"], num_epochs=20, lr_decay=_D["lr_decay"],
                 early_stopping=False, patience=5, dtype="float32", random_state=None,
                 verbose=False, validation_fraction=0.1):
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.normalization = normalization
        self.dropout_keep_ratio = dropout_keep_ratio
        self.reg = reg
        self.update_rule = update_rule
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.lr_decay = lr_decay
        self.early_stopping = early_stopping
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.validation_fraction = validation_fraction

    # ------------------------------------------------------------------ parameters

    def _check_params(self):
        """Validate the constructor parameters; returns (hidden_dims list, numpy dtype)."""
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
        _integer(self.batch_size, "batch_size", low=1)
        _integer(self.num_epochs, "num_epochs", low=1)
        _integer(self.patience, "patience", low=1)
        _real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
              low_open=True, high_open=True)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise TypeError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        try:
            key = np.dtype(self.dtype).name
        except TypeError:
            key = None
        if key not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return hidden, _DTYPES[key]

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y):
        """Train a new network on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense, finite numbers (sparse input is refused: convert with ``.toarray()``).
        y : array-like of shape (n_samples,)
            Class labels of any sortable type.

        Returns
        -------
        self
        """
        hidden, dtype = self._check_params()
        X, y = _validate_data(self, X, y, reset=True, dtype=dtype, order="C",
                              accept_sparse=False)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_enc = encoder.transform(y).astype(np.intp)
        rng = check_random_state(self.random_state)
        self._init_net(hidden, dtype, rng)

        X_val = y_val = None
        if self.early_stopping:
            X, y_enc, X_val, y_val = self._split(X, y_enc, rng)
        self._train(X, y_enc, self.num_epochs, rng, X_val, y_val)
        return self

    def partial_fit(self, X, y, classes=None):
        """One more epoch on (X, y), keeping the weights and optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every class that will ever be seen.  Required on the first call (the output
            layer is sized from it); later calls may omit it or repeat the same classes.

        Returns
        -------
        self
        """
        first = not hasattr(self, "net_")
        hidden, dtype = self._check_params()
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every label that will ever be seen)")
        X, y = _validate_data(self, X, y, reset=first, dtype=dtype, order="C",
                              accept_sparse=False)
        check_classification_targets(y)
        if first:
            classes = np.asarray(classes)
            check_classification_targets(classes)
            self.classes_ = np.unique(classes)
            self._init_net(hidden, dtype, check_random_state(self.random_state))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes)!r} differs from the classes of the "
                             f"first partial_fit call, {self.classes_!r}")
        y_enc = np.searchsorted(self.classes_, y)
        y_enc = np.clip(y_enc, 0, len(self.classes_) - 1)
        unseen = self.classes_[y_enc] != y
        if np.any(unseen):
            raise ValueError(f"y holds labels not in classes: {np.unique(y[unseen])!r}")
        X = X.astype(self.net_.dtype, copy=False)
        self._train(X, y_enc.astype(np.intp), 1, self._rng, None, None)
        return self

    def _init_net(self, hidden, dtype, rng):
        """Fresh network, optimiser and training book-keeping."""
        seed = int(rng.randint(0, 2**31 - 1))
        self.net_ = Net([self.n_features_in_, *hidden, len(self.classes_)],
                        activation=self.activation,
                        dropout_keep_ratio=self.dropout_keep_ratio,
                        normalization=self.normalization, reg=self.reg, dtype=dtype,
                        seed=seed)
        self.net_.set_optimizer(self.update_rule, learning_rate=float(self.learning_rate))
        self._rng = rng
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = None
        self.stopped_early_ = False
        self._inference = _InferenceNet()
        self._first_loss = None  # the loss of the first step (the blow-up rule's base)

    def _split(self, X, y, rng):
        """Hold out validation_fraction of (X, y), stratified when every class allows."""
        n = X.shape[0]
        n_val = int(round(self.validation_fraction * n))
        n_val = min(max(n_val, 1), n - 1)
        if n < 2:
            raise ValueError("early_stopping needs at least 2 samples (one to train on, "
                             f"one to validate), got {n}")
        from sklearn.model_selection import StratifiedShuffleSplit
        split = StratifiedShuffleSplit(n_splits=1, test_size=n_val,
                                       random_state=int(rng.randint(0, 2**31 - 1)))
        try:  # stratified: every class contributes in proportion to its size
            train_idx, val_idx = next(split.split(np.zeros((n, 1)), y))
        except ValueError:  # a class too small to split: a plain random split
            order = rng.permutation(n)
            val_idx, train_idx = order[:n_val], order[n_val:]
        return X[train_idx], y[train_idx], X[val_idx], y[val_idx]

    def _train(self, X, y, num_epochs, rng, X_val, y_val):
        """Train through the Solver's loop with the private random generator ``rng``.

        Divergence follows the front ends' rule (``on_divergence='raise'``): a step whose
        loss or updated parameters are NaN/inf, or whose loss has blown up, stops the fit
        with :class:`fastfc.solver.TrainingDiverged`.  The net is first put back to a
        finite snapshot -- the best epoch with early stopping, else the last epoch end
        (the weights this call started from when no epoch finished) -- and its optimiser
        state is started afresh, so the estimator never keeps NaN or exploded weights.
        """
        if self.verbose and self.n_iter_ == 0:
            print(describe_rule(self.update_rule, float(self.learning_rate)))
        solver = _EstimatorSolver(self, X, y, X_val, y_val, num_epochs, rng)
        solver.train()
        self.stopped_early_ = bool(solver.stopped_early)

    # ------------------------------------------------------------------ prediction

    def _scores(self, X):
        """Class scores in float64, computed by a float64 copy of the net (see dtype)."""
        check_is_fitted(self, "net_")
        X = _validate_data(self, X, reset=False, dtype=np.float64, order="C",
                           accept_sparse=False)
        inference = getattr(self, "_inference", None) or _InferenceNet()
        return inference.get(self.net_).loss(X)

    def decision_function(self, X):
        """Class scores (the network's outputs), one column per class of ``classes_``.

        Returns ndarray of shape (n_samples, n_classes), float64; with two classes,
        shape (n_samples,) holding score(classes_[1]) - score(classes_[0]).
        """
        scores = self._scores(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        if len(self.classes_) == 1:
            return scores[:, 0]
        return scores

    def predict_proba(self, X):
        """Class probabilities: softmax of the scores, shape (n_samples, n_classes)."""
        return _layers.softmax(self._scores(X))

    def predict_log_proba(self, X):
        """Natural log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most likely class of each row of X, as a value of ``classes_``."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": False}


def _state_arrays(net):
    """The arrays a net's predictions depend on: parameters, then running statistics."""
    return [*net.params.values(), *(a for pair in net.running_stats for a in pair)]


def _snapshot(net):
    """Copies of the net's parameters and running statistics (see :func:`_restore`)."""
    return [np.array(a, copy=True) for a in _state_arrays(net)]


def _restore(net, snapshot):
    """Write a :func:`_snapshot` back into the net's own arrays."""
    for target, value in zip(_state_arrays(net), snapshot):
        target[...] = value


class _EstimatorSolver(Solver):
    """The Solver that fits an FCClassifier: the same loop (epochs, schedule, early
    stopping with best-weights restore, divergence guard, Ctrl-C), with

    * the estimator's generator for minibatches (``random_state=rng``);
    * the net's optimiser kept as the estimator set it up (``partial_fit`` continues it);
    * at every epoch end (only there) the mean epoch loss, the validation accuracy
      through ``net.predict`` (with early stopping) and the estimator's own line; the
      best snapshot is the best validation epoch, or without validation the last epoch
      end;
    * the blow-up rule based on the first loss since ``fit``, and the estimator's
      divergence report (step counts over all calls, a fresh optimiser).
    """

    _fresh_optimizer = False

    def __init__(self, estimator, X, y, X_val, y_val, num_epochs, rng):
        self._est = estimator
        net = estimator.net_
        validate = X_val is not None
        super().__init__(
            net, {"X_train": X, "y_train": y,
                  # without early stopping nothing is validated: the training set
                  # stands in for the Solver's required validation arrays
                  "X_val": X_val if validate else X, "y_val": y_val if validate else y},
            update_rule=estimator.update_rule,
            optim_config={"learning_rate": float(estimator.learning_rate)},
            lr_decay=float(estimator.lr_decay),
            batch_size=min(int(estimator.batch_size), X.shape[0]),
            num_epochs=int(num_epochs), num_train_samples=None, verbose=False,
            progress=False, patience=int(estimator.patience) if validate else None,
            on_divergence="raise", restore_norm_stats=True, random_state=rng)
        self._validate = validate
        self._unscaled_checked = True   # the estimator does not warn about scaling
        self.best_val_acc = None        # the first validated epoch is always the best
        self._steps_before = estimator.t_
        self._call_start = _snapshot(net)

    def train(self):
        try:
            super().train()
        finally:
            self._est.t_ = self._steps_before + len(self.loss_history)

    def _blowup_base(self):
        est = self._est
        if getattr(est, "_first_loss", None) is None and self.loss_history:
            est._first_loss = float(self.loss_history[0])
        return est._first_loss

    def _check(self, t, epoch_end, last_it):
        if not epoch_end:
            return _NO_CHECK
        est = self._est
        per_epoch = max(self.X_train.shape[0] // self.batch_size, 1)
        total = 0.0
        for loss in self.loss_history[-per_epoch:]:
            total += float(loss)
        est.n_iter_ += 1
        est.loss_curve_.append(total / per_epoch)
        message = f"epoch {est.n_iter_}: loss {est.loss_curve_[-1]:.6f}"
        acc = None
        if self._validate:
            acc = float(np.mean(self.model.predict(self.X_val) == self.y_val))
            est.validation_scores_.append(acc)
            message += f"; val_acc {acc:.4f}"
        if est.verbose:
            print(message)
        return acc

    def _improved(self, val_acc):
        return val_acc is None or self.best_val_acc is None or val_acc > self.best_val_acc

    def _keep_best(self, val_acc):
        super()._keep_best(val_acc)
        if val_acc is not None:
            self._est.best_validation_score_ = val_acc

    def _report_early_stop(self):
        est = self._est
        if est.verbose:
            print(f"early stopping: no improvement in validation accuracy for "
                  f"{est.patience} epochs (best {est.best_validation_score_:.4f})")

    def _diverged(self, t, num_iterations, loss, limit):
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
        kept = "of the best epoch" if est.early_stopping else "of the last epoch end"
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

    def __init__(self):
        self._source = None
        self._arrays = None
        self._net = None

    def get(self, net):
        """The float64 net computing ``net``'s scores (``net`` itself when float64)."""
        if np.dtype(net.dtype) == np.float64:
            return net
        arrays = _state_arrays(net)
        if (self._net is None or self._source is not net
                or not all(np.array_equal(a, b) for a, b in zip(arrays, self._arrays))):
            state = net.__getstate__()  # the pickled form, without the optimiser
            state.update(dtype=np.float64, update_rule=None, optim=None)
            twin = Net.__new__(Net)
            twin.__setstate__(state)
            self._net, self._source = twin, net
            self._arrays = [np.array(a, copy=True) for a in arrays]
        return self._net

    def __reduce__(self):
        return (_InferenceNet, ())


def _real(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")


def _integer(value, name, low):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
