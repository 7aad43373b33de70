"""ONNX on the estimator side: FCClassifier.to_onnx / FCRegressor.to_onnx, the skl2onnx
converter registration (a whole Pipeline converts), and ``fastfc export``.

onnxruntime runs every graph; float32 graphs must agree with fastfc's own (float64)
predictions within 1e-5."""
import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastfc import Net, cli  # noqa: E402
from fastfc.sklearn import FCClassifier, FCRegressor, register_skl2onnx  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
F32 = {"rtol": 1e-5, "atol": 1e-5}


def session(model):
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])


def run(model, X):
    s = session(model)
    return s.run(None, {s.get_inputs()[0].name: X})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def assert_same_labels(got, want, proba):
    """Labels agree wherever the top two probabilities are not a near tie."""
    top = np.sort(proba, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-4
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(np.asarray(got)[clear], np.asarray(want)[clear])


@pytest.mark.parametrize("activation", ["relu", "tanh", "swish"])
@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_classifier_graph_matches_the_estimator(digits, activation, normalization):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = FCClassifier(hidden_dims=(32, 16), activation=activation,
                       normalization=normalization, max_iter=8, random_state=0)
    clf.fit(X[:1200], names[y[:1200]])
    assert clf.net_.dtype == np.float32
    label, proba = run(clf.to_onnx(), X)
    want = clf.predict_proba(X)
    np.testing.assert_allclose(proba, want, **F32)
    assert_same_labels(label, clf.predict(X), want)
    # the scores output is the decision function's matrix
    (scores,) = run(clf.to_onnx(outputs="scores"), X)
    np.testing.assert_allclose(scores, clf.decision_function(X), **F32)


@pytest.mark.parametrize("activation", ["relu", "tanh", "swish"])
@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_regressor_graph_matches_the_estimator(activation, normalization):
    X, y = make_regression(n_samples=400, n_features=6, n_targets=2, random_state=0)
    X = X.astype(np.float32)
    reg = FCRegressor(hidden_dims=(24,), activation=activation,
                      normalization=normalization, max_iter=10, random_state=0)
    reg.fit(X, y / y.std(axis=0))
    (pred,) = run(reg.to_onnx(), X)
    assert pred.shape == (400, 2)
    np.testing.assert_allclose(pred, reg.predict(X), **F32)


def test_to_onnx_writes_a_file_and_keeps_integer_labels(digits, tmp_path):
    X, y = digits
    clf = FCClassifier(hidden_dims=(16,), max_iter=3, random_state=0).fit(X[:500], y[:500] + 10)
    path = tmp_path / "clf.onnx"
    model = clf.to_onnx(path, dtype=np.float64)
    assert path.exists() and onnx.load(str(path)).graph.input[0].name == "X"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    label, proba = run(onnx.load(str(path)), X.astype(np.float64))
    assert label.dtype == np.int64
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-10, atol=1e-12)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        FCClassifier().to_onnx()


@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_a_pipeline_converts_as_a_whole_with_skl2onnx(digits, labels, normalization):
    skl2onnx = pytest.importorskip("skl2onnx")
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    target = y if labels == "int" else np.array(list("abcdefghij"))[y]
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", FCClassifier(hidden_dims=(32,), normalization=normalization,
                                          max_iter=10, random_state=0))])
    pipe.fit(X[:1400], target[:1400])
    register_skl2onnx()
    register_skl2onnx()   # twice is harmless
    model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    label, proba = run(model, X)
    want = pipe.predict_proba(X)
    np.testing.assert_allclose(proba, want, **F32)
    assert_same_labels(label, pipe.predict(X), want)
    # the default ZipMap output: one {class: probability} per row
    zipped = run(skl2onnx.to_onnx(pipe, X[:1]), X[:5])[1]
    assert sorted(zipped[0]) == sorted(pipe.classes_.tolist())
    np.testing.assert_allclose([zipped[0][c] for c in pipe.classes_], want[0], **F32)


def test_a_regression_pipeline_converts_too():
    skl2onnx = pytest.importorskip("skl2onnx")
    X, y = make_regression(n_samples=300, n_features=5, random_state=1)
    X = X.astype(np.float32) * 10
    pipe = Pipeline([("scale", StandardScaler()),
                     ("reg", FCRegressor(hidden_dims=(16,), max_iter=20, random_state=0))])
    pipe.fit(X, y / y.std())
    register_skl2onnx()
    (pred,) = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_allclose(pred[:, 0], pipe.predict(X), **F32)


def test_register_without_skl2onnx_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match="pip install skl2onnx"):
        register_skl2onnx()


def test_cli_export_writes_the_runs_model_as_onnx(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--no-progress", "--dataset", "digits", "--epochs", "1",
                     "--quiet", "--hidden-dims", "20", "--out", "run"]) == 0
    capsys.readouterr()
    assert cli.main(["export", "run", "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "model.onnx" in out
    net = Net.load(tmp_path / "run" / "model.npz")
    model = onnx.load(str(tmp_path / "run" / "model.onnx"))
    assert [o.name for o in model.graph.output] == ["scores", "probabilities", "label"]
    X = np.random.RandomState(0).randn(50, net.layer_dims[0]).astype(net.dtype)
    scores, proba, label = run(model, X)
    np.testing.assert_allclose(scores, net.loss(X), **F32)
    np.testing.assert_array_equal(label, np.argmax(scores, axis=1))
    assert cli.main(["export", "run", "-o", "s.onnx", "--outputs", "scores",
                     "--dtype", "float64", "--fold-batchnorm"]) == 0
    (scores64,) = run(onnx.load("s.onnx"), X.astype(np.float64))
    np.testing.assert_allclose(scores64, net.loss(X), **F32)
    capsys.readouterr()
    assert cli.main(["export", "nowhere"]) == 2
    assert "no model file" in capsys.readouterr().err
    assert cli.main(["export", "run", "--outputs", "logits"]) == 2
    assert "--outputs" in capsys.readouterr().err
    assert cli.main(["export", "run", "--format", "pmml"]) == 2
