"""fastfc.sklearn: scikit-learn's estimator checks on FCClassifier and FCRegressor at their
defaults, model selection, and the classifier's own behaviour (labels, partial_fit, early
stopping, random_state, divergence).  Weights, warm start, stopping, DataFrames and the
regressor: tests/test_sklearn_fit.py; ONNX: tests/test_sklearn_onnx.py."""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from fastfc import Net
from fastfc.sklearn import FCClassifier, FCRegressor

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    return X[order] / 16.0, y[order]


def run_checks(estimator):
    """Every check of check_estimator: (name, status, exception) per check."""
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(estimator, on_fail=None,
                        callback=lambda **r: results.append(
                            (r["check_name"], r["status"], r["exception"])))
    return results


@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
def test_check_estimator_passes_every_check_at_default_parameters(Estimator):
    # no expected-failure list, default parameters: the defaults learn (max_iter=200
    # epochs with MLP's tol stopping), weighted fits equal fits on repeated rows, and
    # predictions do not depend on the batch in float32 as in float64
    results = run_checks(Estimator())
    failed = [(name, repr(exc)) for name, status, exc in results if status != "passed"
              and status != "skipped"]
    assert failed == []
    passed = {name for name, status, _ in results if status == "passed"}
    assert len(results) >= 50       # scikit-learn's whole suite ran, not a subset
    for name in ("check_sample_weight_equivalence_on_dense_data",
                 "check_methods_subset_invariance", "check_fit_idempotent",
                 "check_classifiers_train" if Estimator is FCClassifier
                 else "check_regressors_train"):
        assert name in passed
    # the only checks not run are those scikit-learn itself skips for a missing optional
    # dependency or setting (pandas, SCIPY_ARRAY_API), never for this estimator
    for name, status, exc in results:
        if status == "skipped":
            assert "not installed" in str(exc) or "is not set" in str(exc), (name, exc)


def test_gridsearchcv_pipeline_and_cross_val_score(digits):
    X, y = digits
    X, y = X[:900], y[:900]
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", FCClassifier(max_iter=15, batch_size=100, random_state=0))])
    grid = GridSearchCV(pipe, {"clf__hidden_dims": [(32,), (64, 32)],
                               "clf__learning_rate": [1e-3, 3e-3]}, cv=3)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_params_["clf__hidden_dims"] in [(32,), (64, 32)]
    assert grid.best_score_ > 0.85
    best = grid.best_estimator_.named_steps["clf"]
    assert best.net_.layer_dims == [64, *best.hidden_dims, 10]
    assert grid.score(X, y) > 0.9
    scores = cross_val_score(FCClassifier(max_iter=15, batch_size=100, random_state=1),
                             X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8


def test_arbitrary_labels_predict_and_probabilities(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = FCClassifier(hidden_dims=(64,), max_iter=30, batch_size=100, random_state=0)
    clf.fit(X[:1200], names[y[:1200]])
    assert list(clf.classes_) == sorted(names)
    assert clf.n_features_in_ == 64
    pred = clf.predict(X[1200:])
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    proba = clf.predict_proba(X[1200:])
    assert proba.shape == (len(X) - 1200, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    # float32 scores: another batch size may change the last bits (BLAS blocking)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[1200:1210])), proba[:10],
                               rtol=1e-5)
    acc = clf.score(X[1200:], names[y[1200:]])
    assert acc == pytest.approx(np.mean(pred == names[y[1200:]]))
    assert acc > 0.9
    # two classes: decision_function is score(classes_[1]) - score(classes_[0])
    mask = np.isin(y, [3, 8])
    binary = FCClassifier(max_iter=30, batch_size=50, random_state=0)
    binary.fit(X[mask], np.where(y[mask] == 3, -1, 7))
    d = binary.decision_function(X[mask])
    assert d.shape == (mask.sum(),)
    np.testing.assert_array_equal(binary.predict(X[mask]), np.where(d > 0, 7, -1))


def test_partial_fit_is_incremental(digits):
    X, y = digits
    clf = FCClassifier(hidden_dims=(32,), batch_size=100, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    first = clf.score(X[1200:], y[1200:])
    for _ in range(15):
        clf.partial_fit(X[:1200], y[:1200])
    assert clf.n_iter_ == 16 and clf.t_ == 5 + 15 * 12 and len(clf.loss_curve_) == 16
    assert clf.score(X[1200:], y[1200:]) > max(first + 0.3, 0.8)
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(X[:10], np.full(10, 11))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X[:10], y[:10], classes=np.arange(5))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:10, :60], y[:10])
    # labels may arrive before they are seen: only part of the classes in a batch
    other = FCClassifier(random_state=0).partial_fit(X[:50], np.zeros(50, int),
                                                     classes=[0, 1, 2])
    assert other.predict_proba(X[:3]).shape == (3, 3)


def test_early_stopping_keeps_the_best_epoch(digits):
    X, y = digits
    clf = FCClassifier(hidden_dims=(64,), max_iter=300, batch_size=50, learning_rate=3e-3,
                       early_stopping=True, n_iter_no_change=3, validation_fraction=0.2,
                       random_state=0)
    clf.fit(X[:1000], y[:1000])
    assert clf.stopped_early_
    assert clf.n_iter_ < 300
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # stopped `n_iter_no_change` epochs after the best one
    assert int(np.argmax(clf.validation_scores_)) == clf.n_iter_ - 1 - 3
    assert clf.best_validation_score_ > 0.88
    without = FCClassifier(max_iter=5, random_state=0).fit(X[:1000], y[:1000])
    assert without.validation_scores_ is None and not without.stopped_early_


def test_random_state_makes_fits_repeatable_and_dtype_is_kept(digits):
    X, y = digits
    a = FCClassifier(hidden_dims=(32,), max_iter=5, dropout_keep_ratio=0.8,
                     random_state=3, dtype="float64").fit(X[:600], y[:600])
    b = clone(a).fit(X[:600], y[:600])
    c = clone(a).set_params(random_state=4).fit(X[:600], y[:600])
    np.testing.assert_array_equal(a.predict_proba(X[600:700]), b.predict_proba(X[600:700]))
    assert not np.array_equal(a.predict_proba(X[600:700]), c.predict_proba(X[600:700]))
    assert isinstance(a.net_, Net) and a.net_.params["W1"].dtype == np.float64
    f32 = clone(a).set_params(dtype="float32").fit(X[:600].astype(np.float32), y[:600])
    assert f32.net_.params["W1"].dtype == np.float32
    # a fitted estimator pickles, predictions unchanged
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.predict_proba(X[:50]), a.predict_proba(X[:50]))
    # NumPy's global generator is not used
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    clone(a).fit(X[:100], y[:100])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("params, error, match", [
    ({"hidden_dims": (0,)}, ValueError, "hidden_dims"),
    ({"hidden_dims": "wide"}, ValueError, "hidden_dims"),
    ({"activation": "gelu"}, ValueError, "activation"),
    ({"normalization": "groupnorm"}, ValueError, "normalization"),
    ({"update_rule": "lbfgs"}, ValueError, "update_rule"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.5}, TypeError, "batch_size"),
    ({"num_epochs": 0}, ValueError, "num_epochs"),
    ({"dropout_keep_ratio": 0.0}, ValueError, "dropout_keep_ratio"),
    ({"lr_decay": 1.5}, ValueError, "lr_decay"),
    ({"reg": -1.0}, ValueError, "reg"),
    
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"dtype": "float16"}, ValueError, "dtype"),
    ({"early_stopping": "yes"}, TypeError, "early_stopping"),
])
def test_bad_parameters_raise_in_fit_not_in_init(digits, params, error, match):
    X, y = digits
    clf = FCClassifier(**params)  # the constructor only stores
    with pytest.raises(error, match=match):
        clf.fit(X[:50], y[:50])


def test_bad_input_is_refused_clearly(digits):
    X, y = digits
    clf = FCClassifier(max_iter=2, random_state=0)
    with pytest.raises(TypeError, match="[Ss]parse"):
        clf.fit(scipy.sparse.csr_matrix(X[:50]), y[:50])
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.where(X[:50] > 0.5, np.nan, X[:50]), y[:50])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X[:50], X[:50, 10] + 0.25)
    clf.fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:5, :10])
    with pytest.raises(ValueError, match="early_stopping needs at least 2 samples"):
        FCClassifier(early_stopping=True).fit(X[:1], y[:1])


def test_defaults_are_the_front_ends_and_verbose_names_the_rule(digits, capsys):
    from fastfc._defaults import FRONTEND_DEFAULTS
    params = FCClassifier().get_params()
    shared = {k: v for k, v in FRONTEND_DEFAULTS.items() if k in params}
    assert set(shared) == set(FRONTEND_DEFAULTS)  # the estimator takes every one
    assert {k: params[k] for k in shared} == shared
    assert params["update_rule"] == "adam" and params["learning_rate"] == 1e-3
    X, y = digits
    FCClassifier(max_iter=2, verbose=True, random_state=0).fit(X[:300], y[:300])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "update rule: adam, learning rate 0.001"


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_a_rows_scores_do_not_depend_on_the_other_rows(digits, normalization):
    # float32 weights: the scores come from a float64 twin, so the BLAS blocking of a
    # different number of rows changes nothing at 1e-12 (float32 GEMMs move ~1e-6)
    X, y = digits
    clf = FCClassifier(max_iter=3, normalization=normalization, random_state=0)
    clf.fit(X[:1000].astype(np.float32), y[:1000])
    assert clf.net_.params["W1"].dtype == np.float32
    full = clf.decision_function(X)
    assert full.dtype == np.float64
    scale = np.abs(full).max()
    for rows in (slice(0, 1), slice(5, 12), slice(100, 357), slice(1, None)):
        np.testing.assert_allclose(clf.decision_function(X[rows]), full[rows], rtol=1e-12,
                                   atol=1e-12 * scale)
        np.testing.assert_allclose(clf.predict_proba(X[rows]), clf.predict_proba(X)[rows],
                                   rtol=1e-12, atol=1e-15)
    single = np.array([clf.decision_function(X[i:i + 1])[0] for i in range(0, 1797, 61)])
    np.testing.assert_allclose(single, full[::61], rtol=1e-12, atol=1e-12 * scale)
    # the twin follows the net: edited weights change the predictions
    clf.net_.params["W1"] *= 2
    changed = clf.decision_function(X[:20])
    assert not np.allclose(changed, full[:20])
    np.testing.assert_allclose(changed, clf.net_.astype(np.float64).loss(X[:20]),
                               rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("update_rule, early_stopping", [("sgd", False), ("adam", False),
                                                         ("sgd_momentum", True)])
def test_diverged_fit_raises_and_keeps_finite_weights(digits, dtype, update_rule,
                                                      early_stopping):
    from fastfc.solver import TrainingDiverged
    X, y = digits
    clf = FCClassifier(learning_rate=1e6, update_rule=update_rule, dtype=dtype,
                       max_iter=5, early_stopping=early_stopping, random_state=0)
    with pytest.raises(TrainingDiverged, match="diverged at step .*learning_rate"):
        clf.fit(X[:600], y[:600])
    # every epoch diverged: the net is back to its initial (finite) weights, those of
    # the seed the estimator drew first from random_state
    seed = np.random.RandomState(0).randint(0, 2**31 - 1)
    initial = Net([64, 100, 10], dtype=np.dtype(dtype).type, seed=seed).params
    for name, value in clf.net_.params.items():
        np.testing.assert_array_equal(value, initial[name])
    assert np.isfinite(clf.decision_function(X[:100])).all()
    assert clf.n_iter_ == 0 and clf.loss_curve_ == []


def test_divergence_in_partial_fit_restores_the_weights_before_it(digits):
    from fastfc.solver import TrainingDiverged
    X, y = digits
    clf = FCClassifier(hidden_dims=(32,), batch_size=100, random_state=0)
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    clf.partial_fit(X[:500], y[:500])
    before = {k: v.copy() for k, v in clf.net_.params.items()}
    proba = clf.predict_proba(X[1200:])
    clf.net_.learning_rate = 1e7
    with pytest.raises(TrainingDiverged):
        clf.partial_fit(X[:500], y[:500])
    for name, value in clf.net_.params.items():
        np.testing.assert_array_equal(value, before[name])
    np.testing.assert_array_equal(clf.predict_proba(X[1200:]), proba)
    assert clf.n_iter_ == 2
