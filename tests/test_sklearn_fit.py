"""fastfc.sklearn: what fitting offers beyond scikit-learn's checks -- sample and class
weights, partial_fit and warm_start continuing fit exactly, the tol / n_iter_no_change
stopping rule, early stopping's curves, the dtype policy, DataFrames, the regressor,
the former parameter names, and the Solver's sample-weight plumbing."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from fastfc import Net, Solver
from fastfc.sklearn import FCClassifier, FCRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    return X[order] / 16.0, y[order]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=600, n_features=8, n_informative=5, n_targets=2,
                           noise=5.0, random_state=0)
    return X, y / y.std(axis=0)


def params_of(est):
    return {k: np.array(v) for k, v in est.net_.params.items()}


def assert_same_params(a, b, **tol):
    pa, pb = params_of(a), params_of(b)
    assert sorted(pa) == sorted(pb)
    for k in pa:
        if tol:
            np.testing.assert_allclose(pa[k], pb[k], err_msg=k, **tol)
        else:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


# ------------------------------------------------------------------ sample weights

@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
@pytest.mark.parametrize("dtype", [None, "float32"])
def test_integer_weights_equal_repeated_rows(digits, regression, Estimator, dtype):
    # full batches (batch_size covers the data): the weighted loss of the n rows is the
    # plain loss of the repeated rows, so both fits follow the same path up to rounding
    if Estimator is FCClassifier:
        X, y = digits[0][:80], digits[1][:80]
    else:
        X, y = regression[0][:80], regression[1][:80]
    w = np.random.RandomState(1).randint(0, 4, size=len(X))
    w[:3] = [0, 2, 3]
    est = Estimator(hidden_dims=(16,), max_iter=30, batch_size=500, dtype=dtype,
                    random_state=0, learning_rate=1e-2)
    weighted = clone(est).fit(X, y, sample_weight=w)
    repeated = clone(est).fit(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_ == 30
    tol = {"rtol": 1e-9, "atol": 1e-10} if dtype is None else {"rtol": 2e-4, "atol": 2e-5}
    assert_same_params(weighted, repeated, **tol)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_,
                               rtol=tol["rtol"] * 10)
    if Estimator is FCClassifier:
        np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                                   **tol)
    else:
        np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), **tol)
    # the same with minibatches drawn from the data: not the same path any more, but
    # the weights still count as repetitions do (mean loss on the repeated data)
    mini = clone(est).set_params(batch_size=10, max_iter=60)
    a = clone(mini).fit(X, y, sample_weight=w)
    b = clone(mini).fit(X, y)
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w, axis=0)
    assert a.score(Xr, yr) > b.score(Xr, yr) - 0.02


def test_equal_weights_train_exactly_as_no_weights(digits):
    X, y = digits[0][:300], digits[1][:300]
    est = FCClassifier(hidden_dims=(16,), max_iter=5, random_state=0)
    plain = clone(est).fit(X, y)
    for w in (np.ones(len(X)), np.full(len(X), 2.5)):
        assert_same_params(clone(est).fit(X, y, sample_weight=w), plain)
    # weight-0 rows are left out: as if they were not there
    extra = np.vstack([X, X[:50] * 3])
    w = np.r_[np.ones(len(X)), np.zeros(50)]
    assert_same_params(clone(est).fit(extra, np.r_[y, y[:50]], sample_weight=w), plain)


def test_class_weight_dict_equals_sample_weight_and_balanced(digits):
    X, y = digits[0][:400], digits[1][:400]
    est = FCClassifier(hidden_dims=(16,), max_iter=5, random_state=0)
    by_class = clone(est).set_params(class_weight={3: 4.0, 7: 0.5}).fit(X, y)
    w = np.where(y == 3, 4.0, np.where(y == 7, 0.5, 1.0))
    assert_same_params(by_class, clone(est).fit(X, y, sample_weight=w))
    # both multiply
    both = clone(est).set_params(class_weight={3: 4.0}).fit(X, y, sample_weight=w)
    assert_same_params(both, clone(est).fit(X, y, sample_weight=w * np.where(y == 3, 4, 1)))
    # 'balanced' helps a rare class: its recall rises
    keep = (y != 5) | (np.arange(len(y)) % 8 == 0)
    Xi, yi = X[keep], y[keep]
    Xt, yt = digits[0][400:], digits[1][400:]
    plain = clone(est).set_params(max_iter=10).fit(Xi, yi)
    balanced = clone(est).set_params(max_iter=10, class_weight="balanced").fit(Xi, yi)
    recall = [np.mean(m.predict(Xt[yt == 5]) == 5) for m in (plain, balanced)]
    assert recall[1] > recall[0]
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        clone(balanced).partial_fit(Xi, yi, classes=np.arange(10))


@pytest.mark.parametrize("how", ["class_weight", "sample_weight"])
def test_a_zero_weight_class_is_never_predicted(digits, how):
    X, y = digits
    est = FCClassifier(hidden_dims=(32,), random_state=0)
    if how == "class_weight":
        est.set_params(class_weight={4: 0})
        est.fit(X[:1200], y[:1200])
    else:
        est.fit(X[:1200], y[:1200], sample_weight=(y[:1200] != 4).astype(float))
    assert list(est.classes_) == list(range(10))   # the class is known ...
    pred = est.predict(X)
    assert 4 not in set(pred)                     # ... and never predicted
    assert np.mean(pred[y != 4] == y[y != 4]) > 0.9
    assert est.predict_proba(X)[:, 4].max() < 0.05


def test_bad_sample_weights_are_refused(digits):
    X, y = digits[0][:50], digits[1][:50]
    est = FCClassifier(max_iter=1)
    for w, match in ((np.ones(49), "sample_weight|samples"),
                     (-np.ones(50), "(?i)negative"),
                     (np.full(50, np.nan), "NaN|finite"),
                     (np.zeros(50), "(?i)non-zero|every sample")):
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, sample_weight=w)


# ------------------------------------------------------------------ continuing a fit

@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
@pytest.mark.parametrize("batch_size", [40, 1000])   # drawn minibatches; full batches
def test_partial_fit_calls_equal_the_epochs_of_fit(digits, regression, Estimator,
                                                   batch_size):
    if Estimator is FCClassifier:
        X, y = digits[0][:500], digits[1][:500]
        first = {"classes": np.arange(10)}
    else:
        X, y = regression[0][:500], regression[1][:500]
        first = {}
    w = np.random.RandomState(2).uniform(0.5, 2.0, len(X))
    est = Estimator(hidden_dims=(16,), batch_size=batch_size, lr_decay=0.9,
                    n_iter_no_change=100, random_state=0)
    fitted = clone(est).set_params(max_iter=4).fit(X, y, sample_weight=w)
    partial = clone(est)
    partial.partial_fit(X, y, sample_weight=w, **first)
    one = clone(est).set_params(max_iter=1).fit(X, y, sample_weight=w)
    assert_same_params(partial, one)        # one call == one epoch of fit
    for _ in range(3):
        partial.partial_fit(X, y, sample_weight=w)
    assert_same_params(partial, fitted)     # k calls == k epochs, bit for bit
    assert partial.loss_curve_ == fitted.loss_curve_
    assert partial.n_iter_ == fitted.n_iter_ == 4 and partial.t_ == fitted.t_
    assert partial.net_.learning_rate == fitted.net_.learning_rate


@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
def test_warm_start_continues_the_fit(digits, regression, Estimator):
    if Estimator is FCClassifier:
        X, y = digits[0][:500], digits[1][:500]
    else:
        X, y = regression[0][:500], regression[1][:500]
    est = Estimator(hidden_dims=(16,), n_iter_no_change=100, random_state=0)
    whole = clone(est).set_params(max_iter=8).fit(X, y)
    warm = clone(est).set_params(max_iter=5, warm_start=True).fit(X, y)
    net = warm.net_
    warm.set_params(max_iter=3).fit(X, y)
    assert warm.net_ is net and warm.n_iter_ == 8 and len(warm.loss_curve_) == 8
    assert_same_params(warm, whole)   # 5 + 3 epochs == 8 epochs, bit for bit
    assert warm.loss_curve_ == whole.loss_curve_
    # without warm_start a second fit starts again
    cold = clone(est).set_params(max_iter=5).fit(X, y)
    cold.set_params(max_iter=3).fit(X, y)
    assert cold.n_iter_ == 3
    if Estimator is FCClassifier:
        with pytest.raises(ValueError, match="warm_start"):
            warm.fit(X[:20], np.full(20, 99))
    else:
        with pytest.raises(ValueError, match="outputs"):
            warm.fit(X, y[:, :1])


# ------------------------------------------------------------------ stopping

def test_tol_and_n_iter_no_change_stop_like_scikit_learns_mlp(digits):
    X, y = digits[0][:600], digits[1][:600]
    # an unreachable tol: the first epoch sets the best loss, then n_iter_no_change
    # epochs without improvement stop the fit
    clf = FCClassifier(hidden_dims=(16,), tol=1e9, n_iter_no_change=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == 5 and clf.stopped_early_
    # the default rule: a run that converges stops before max_iter, and the last
    # n_iter_no_change epochs did not beat the best loss before them by tol
    clf = FCClassifier(hidden_dims=(16,), random_state=0).fit(X, y)
    assert clf.stopped_early_ and clf.n_iter_ < 200
    curve = clf.loss_curve_
    before = min(curve[:-10])
    assert all(loss > before - clf.tol for loss in curve[-10:])
    assert clf.best_loss_ == min(curve)
    # max_iter reached: a ConvergenceWarning, like MLPClassifier's
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        FCClassifier(max_iter=3, random_state=0).fit(X, y)


@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
def test_early_stopping_records_scores_and_losses_per_epoch(digits, regression, Estimator):
    if Estimator is FCClassifier:
        X, y = digits[0][:1000], digits[1][:1000]
    else:
        X, y = regression
    est = Estimator(hidden_dims=(32,), early_stopping=True, validation_fraction=0.2,
                    learning_rate=3e-3, n_iter_no_change=5, random_state=0).fit(X, y)
    n = est.n_iter_
    assert len(est.loss_curve_) == len(est.validation_scores_) == n
    assert len(est.validation_loss_curve_) == n
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert np.all(np.isfinite(est.validation_loss_curve_))
    # the validation loss falls at first, with the training loss
    assert est.validation_loss_curve_[n // 3] < est.validation_loss_curve_[0]
    assert est.best_validation_score_ > (0.9 if Estimator is FCClassifier else 0.95)
    # stopped: the last n_iter_no_change scores did not beat the best before them by tol
    assert est.stopped_early_ and n < 200
    before = max(est.validation_scores_[:-5])
    assert all(s <= before + est.tol for s in est.validation_scores_[-5:])


# ------------------------------------------------------------------ dtype policy

@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
def test_the_training_precision_follows_the_input(digits, Estimator):
    X, y = digits[0][:300], digits[1][:300]
    est = Estimator(hidden_dims=(8,), max_iter=2, random_state=0)
    assert clone(est).fit(X.astype(np.float32), y).net_.dtype == np.float32
    assert clone(est).fit(X, y).net_.dtype == np.float64
    assert clone(est).fit((X * 16).astype(np.int64), y).net_.dtype == np.float64
    assert clone(est).set_params(dtype="float32").fit(X, y).net_.dtype == np.float32
    assert clone(est).set_params(dtype="float64").fit(
        X.astype(np.float32), y).net_.dtype == np.float64


@pytest.mark.parametrize("Estimator", [FCClassifier, FCRegressor])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predictions_do_not_depend_on_the_batch(digits, Estimator, dtype):
    X, y = digits
    est = Estimator(hidden_dims=(32,), normalization="batchnorm", max_iter=3,
                    random_state=0).fit(X[:900].astype(dtype), y[:900])
    predict = est.decision_function if Estimator is FCClassifier else est.predict
    Xq = X.astype(dtype)
    full = predict(Xq)
    assert full.dtype == np.float64
    for rows in (slice(0, 1), slice(3, 40), slice(100, 1000), slice(1, None)):
        np.testing.assert_allclose(predict(Xq[rows]), full[rows], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ DataFrames

def test_dataframe_input_and_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits[0][:400], digits[1][:400]
    columns = [f"pixel{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    clf = FCClassifier(hidden_dims=(16,), max_iter=5, random_state=0)
    clf.fit(frame, pd.Series(y), sample_weight=pd.Series(np.ones(len(y))))
    assert list(clf.feature_names_in_) == columns and clf.n_features_in_ == 64
    plain = clone(clf).fit(X, y)
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(clf.predict_proba(frame), plain.predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[columns[::-1]])
    reg = FCRegressor(hidden_dims=(8,), max_iter=3, random_state=0)
    targets = pd.DataFrame({"a": y / 9.0, "b": -y / 9.0})
    reg.fit(frame, targets)
    assert reg.predict(frame).shape == (400, 2) and reg.n_outputs_ == 2


# ------------------------------------------------------------------ the regressor

def test_regressor_shapes_score_and_pickle(regression):
    X, y = regression
    reg = FCRegressor(hidden_dims=(64,), random_state=0).fit(X[:500], y[:500])
    assert reg.n_outputs_ == 2 and reg.net_.loss_name == "mse"
    assert reg.predict(X[500:]).shape == (100, 2)
    assert reg.score(X[500:], y[500:]) > 0.95
    one = FCRegressor(hidden_dims=(64,), random_state=0).fit(X[:500], y[:500, 0])
    assert one.predict(X[:7]).shape == (7,)
    column = FCRegressor(hidden_dims=(8,), max_iter=2, random_state=0).fit(
        X[:500], y[:500, :1])
    assert column.predict(X[:7]).shape == (7, 1)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X[:50]), reg.predict(X[:50]))
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:5, :3])
    assert not hasattr(reg, "predict_proba") and not hasattr(reg, "classes_")


def test_regressor_matches_mlp_on_a_smooth_target():
    from sklearn.neural_network import MLPRegressor
    X, y = make_regression(n_samples=800, n_features=10, noise=10.0, random_state=3)
    y = y / y.std()
    ours = FCRegressor(random_state=0).fit(X[:600], y[:600]).score(X[600:], y[600:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = MLPRegressor(random_state=0).fit(X[:600], y[:600]).score(X[600:], y[600:])
    assert ours > theirs - 0.01


# ------------------------------------------------------------------ former names

def test_former_parameter_names_still_work(digits):
    X, y = digits[0][:300], digits[1][:300]
    with pytest.warns(FutureWarning, match="max_iter"):
        old = FCClassifier(num_epochs=4, random_state=0).fit(X, y)
    new = FCClassifier(max_iter=4, random_state=0).fit(X, y)
    assert old.n_iter_ == 4
    assert_same_params(old, new)
    with pytest.warns(FutureWarning, match="n_iter_no_change"):
        FCClassifier(patience=2, tol=1e9, random_state=0).fit(X, y)


# ------------------------------------------------------------------ Solver plumbing

def test_solver_passes_sample_weights_with_the_minibatch_rows():
    X, y = make_classification(n_samples=120, n_features=6, n_classes=3,
                               n_informative=4, random_state=0)
    w = np.random.RandomState(0).randint(1, 4, size=120).astype(float)

    def run(weights, X=X, y=y, n=None):
        net = Net([6, 10, 3], seed=1, dtype=np.float64)
        data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
        if weights is not None:
            data["sample_weight_train"] = weights
        s = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                   batch_size=n or len(X), num_epochs=5, shuffle=True, random_state=0,
                   verbose=False)
        s.train()
        return net, s
    weighted, _ = run(w)
    repeated, _ = run(None, np.repeat(X, w.astype(int), axis=0),
                      np.repeat(y, w.astype(int)))
    for k in weighted.params:
        np.testing.assert_allclose(weighted.params[k], repeated.params[k], rtol=1e-9,
                                   atol=1e-12)
    plain, _ = run(None)
    assert not np.allclose(plain.params["W1"], weighted.params["W1"])
    net = Net([6, 10, 3], seed=1)
    base = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    with pytest.raises(ValueError, match="sample_weight_train must have shape"):
        Solver(net, dict(base, sample_weight_train=w[:5]))
    with pytest.raises(ValueError, match="finite weights >= 0"):
        Solver(net, dict(base, sample_weight_train=-w))
    from fastfc.classifiers.fc_net import FullyConnectedNet
    with pytest.raises(ValueError, match="owns its optimiser"):
        Solver(FullyConnectedNet([10], input_dim=6, num_classes=3),
               dict(base, sample_weight_train=w))


# ------------------------------------------------------------------ extras

def test_schedule_and_verbose(digits, capsys):
    X, y = digits[0][:400], digits[1][:400]
    flat = FCClassifier(hidden_dims=(16,), max_iter=6, n_iter_no_change=100,
                        learning_rate=1e-2, random_state=0).fit(X, y)
    cosine = clone(flat).set_params(schedule="cosine").fit(X, y)
    assert flat.net_.learning_rate == 1e-2
    assert cosine.net_.learning_rate < 1e-3    # annealed towards 0 over the 6 epochs
    assert not np.array_equal(flat.net_.params["W1"], cosine.net_.params["W1"])
    capsys.readouterr()
    FCClassifier(hidden_dims=(16,), tol=1e9, n_iter_no_change=2, verbose=True,
                 early_stopping=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("update rule: adam")
    assert lines[1].startswith("epoch 1: loss ") and "validation score" in lines[1]
    assert lines[-1].startswith("stopped: the validation score did not improve")
