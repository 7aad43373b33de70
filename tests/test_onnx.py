"""fastfc.onnx: a Net's inference pass as an ONNX graph.

The exported graphs are run by onnxruntime when it is installed (the test extra
installs it) and by onnx's own ReferenceEvaluator otherwise, and compared with
``Net.loss(X)`` (test mode).  Tolerance for float32 graphs: rtol = atol = 1e-5 (the
runtimes evaluate exp, tanh and the normalisations with their own rounding; measured
differences are below 2e-6).  float64 graphs agree to 1e-10.
"""
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from fastfc import Net  # noqa: E402
from fastfc import layers as L  # noqa: E402
from fastfc.onnx import DEFAULT_OPSET, export_onnx, to_onnx_model  # noqa: E402

F32 = {"rtol": 1e-5, "atol": 1e-5}

try:
    import onnxruntime
except ImportError:  # pragma: no cover - the test extra installs it
    onnxruntime = None


def run(model, X, reference=False):
    """Outputs of the model on X, by onnxruntime (or the reference evaluator)."""
    if onnxruntime is None or reference:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, {"X": X})
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def trained_net(dims, seed=0, steps=15, dtype=np.float32, **kwargs):
    """A net a few steps into training (so biases, gamma, beta and the running
    statistics are no longer at their initial values)."""
    rng = np.random.default_rng(seed)
    net = Net(dims, seed=seed, dtype=dtype, **kwargs)
    net.set_optimizer("adam", learning_rate=1e-2)
    X = rng.standard_normal((64, dims[0])).astype(dtype)
    if net.loss_name == "mse":
        y = rng.standard_normal((64, dims[-1])).astype(dtype)
    else:
        y = rng.integers(0, dims[-1], 64)
    for _ in range(steps):
        net.train_step(X, y)
    return net


def data(n=40, d=6, seed=1, dtype=np.float32):
    return (2 * np.random.default_rng(seed).standard_normal((n, d))).astype(dtype)


ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "swish"]
NORMS = [None, "batchnorm", "layernorm"]


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnxruntime_matches_net_scores(activation, normalization):
    net = trained_net([6, 12, 9, 5], activation=activation, normalization=normalization,
                      alpha=0.05)
    X = data()
    model = to_onnx_model(net, outputs=("scores", "probabilities", "label"))
    scores, probs, label = run(model, X)
    want = net.loss(X)
    assert scores.dtype == np.float32 and scores.shape == want.shape
    np.testing.assert_allclose(scores, want, **F32)
    np.testing.assert_allclose(probs, L.softmax(want), **F32)
    assert label.dtype == np.int64
    np.testing.assert_array_equal(label, net.predict(X))


@pytest.mark.parametrize("normalization", NORMS)
def test_reference_evaluator_matches_too(normalization):
    net = trained_net([6, 8, 3], activation="swish", normalization=normalization)
    X = data()
    (scores,) = run(to_onnx_model(net), X, reference=True)
    np.testing.assert_allclose(scores, net.loss(X), **F32)


@pytest.mark.parametrize("normalization", NORMS)
def test_float64_graph(normalization):
    net = trained_net([6, 8, 7, 3], activation="tanh", normalization=normalization,
                      dtype=np.float64)
    X = data(dtype=np.float64)
    model = to_onnx_model(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    (scores,) = run(model, X, reference=True)
    np.testing.assert_allclose(scores, net.loss(X), rtol=1e-10, atol=1e-10)


def test_float64_net_exported_as_float32():
    net = trained_net([6, 8, 3], normalization="batchnorm", dtype=np.float64)
    X = data(dtype=np.float64)
    model = to_onnx_model(net, dtype=np.float32)
    (scores,) = run(model, X.astype(np.float32))
    np.testing.assert_allclose(scores, net.loss(X), **F32)


@pytest.mark.parametrize("activation", ["relu", "swish"])
def test_folded_batchnorm(activation):
    net = trained_net([6, 10, 8, 4], activation=activation, normalization="batchnorm")
    X = data()
    model = to_onnx_model(net, fold_batchnorm=True)
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    (scores,) = run(model, X)
    np.testing.assert_allclose(scores, net.loss(X), **F32)


def test_graph_structure_and_metadata(tmp_path):
    net = trained_net([6, 8, 8, 3], activation="swish", normalization="layernorm",
                      dropout_keep_ratio=0.7)
    path = tmp_path / "net.onnx"
    returned = export_onnx(net, path)
    model = onnx.load(str(path))
    assert model == returned
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", DEFAULT_OPSET)]
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Gemm", "LayerNormalization", "Sigmoid", "Mul"] * 2 + ["Gemm"]
    assert model.producer_name == "fastfc"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {"activation": "swish", "normalization": "layernorm",
                    "loss": "softmax", "layer_dims": "6,8,8,3"}
    # dropout is a training-time layer: the graph equals the test-mode net
    (scores,) = run(model, data())
    np.testing.assert_allclose(scores, net.loss(data()), **F32)
    # the batch dimension is symbolic
    dim = model.graph.input[0].type.tensor_type.shape.dim
    assert dim[0].dim_param == "N" and dim[1].dim_value == 6


def test_net_to_onnx_method(tmp_path):
    net = trained_net([6, 5, 3])
    model = net.to_onnx(tmp_path / "m.onnx", outputs="probabilities")
    (probs,) = run(model, data())
    np.testing.assert_allclose(probs, L.softmax(net.loss(data())), **F32)


@pytest.mark.parametrize("classes", [np.array([3, 7, 11]), np.array(["cat", "dog", "eel"]),
                                     np.array([0.5, 1.5, 2.5])])
def test_classes_map_the_label_output(classes):
    """What an estimator passes as classes_: the label output holds the class values."""
    net = trained_net([6, 8, 3])
    X = data()
    label, probs = run(to_onnx_model(net, outputs=("label", "probabilities"),
                                     classes=classes), X)
    np.testing.assert_array_equal(np.asarray(label).astype(classes.dtype),
                                  classes[net.predict(X)])
    np.testing.assert_allclose(probs, L.softmax(net.loss(X)), **F32)


def test_regression_net_exports_its_predictions():
    net = trained_net([6, 10, 2], loss="mse", activation="tanh", normalization="batchnorm")
    X = data()
    (pred,) = run(to_onnx_model(net), X)
    np.testing.assert_allclose(pred, net.predict(X), **F32)
    with pytest.raises(ValueError, match="'mse' \\(regression\\) net has only the 'scores'"):
        to_onnx_model(net, outputs=("scores", "probabilities"))


def test_image_input_shape_adds_flatten():
    net = trained_net([12, 7, 4])
    X = data(d=12).reshape(40, 3, 2, 2)
    model = to_onnx_model(net, input_shape=(3, 2, 2))
    assert model.graph.node[0].op_type == "Flatten"
    (scores,) = run(model, X)
    np.testing.assert_allclose(scores, net.loss(X), **F32)


@pytest.mark.parametrize("dims", [[6, 3], [6, 1], [1, 4, 2]])
def test_edge_shapes(dims):
    net = trained_net(dims, normalization="batchnorm")
    for n in (1, 5):
        X = data(n=n, d=dims[0])
        (scores,) = run(to_onnx_model(net), X)
        np.testing.assert_allclose(scores, net.loss(X), **F32)


def test_opset_choice():
    net = trained_net([6, 5, 3], normalization="batchnorm")
    model = to_onnx_model(net, opset=13)
    assert model.opset_import[0].version == 13
    (scores,) = run(model, data())
    np.testing.assert_allclose(scores, net.loss(data()), **F32)


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(outputs="logits"), ValueError, "outputs must be among scores"),
    (dict(outputs=()), ValueError, "at least one output"),
    (dict(outputs=("scores", "scores")), ValueError, "names an output twice"),
    (dict(classes=[1, 2, 3]), ValueError, "add 'label' to outputs"),
    (dict(outputs="label", classes=[1, 2]), ValueError, "classes must be a 1-d array of "
                                                       "the net's 3 classes"),
    (dict(opset=12), ValueError, "opset must be >= 13"),
    (dict(opset=1.5), TypeError, "opset must be an integer"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(input_shape=(4, 2)), ValueError, "does not hold the net's 6 input features"),
    (dict(input_shape="ab"), TypeError, "input_shape must be a tuple"),
])
def test_bad_arguments(kwargs, exc, words):
    net = trained_net([6, 5, 3], steps=0)
    with pytest.raises(exc, match=words):
        to_onnx_model(net, **kwargs)


def test_layernorm_needs_opset_17():
    net = trained_net([6, 5, 3], normalization="layernorm", steps=0)
    with pytest.raises(ValueError, match="LayerNormalization, which needs opset >= 17"):
        to_onnx_model(net, opset=16)


def test_bad_net_and_path(tmp_path):
    with pytest.raises(TypeError, match="net must be a fastfc.Net or a fastfc "
                                        "FullyConnectedNet, got dict"):
        to_onnx_model({"W1": np.zeros((6, 3))})
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        export_onnx(trained_net([6, 3], steps=0), 3)


def test_onnx_is_imported_lazily():
    code = ("import sys, fastfc, fastfc.onnx; "
            "assert 'onnx' not in sys.modules, 'onnx imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "ok"


def test_missing_onnx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install \"fastfc\[onnx\]\""):
        to_onnx_model(trained_net([6, 3], steps=0))


@pytest.mark.parametrize("normalization", NORMS)
def test_course_fully_connected_net_exports_its_test_mode_pass(normalization, tmp_path):
    """A course FullyConnectedNet trained with the Solver (dropout on, so test mode
    differs from training) exports a graph whose outputs equal its test-mode scores."""
    from fastfc import FullyConnectedNet, Solver
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 6)).astype(np.float32)
    y = rng.integers(0, 3, 80)
    np.random.seed(0)
    model = FullyConnectedNet([7, 5], input_dim=6, num_classes=3, dtype=np.float32,
                              normalization=normalization, dropout_keep_ratio=0.8)
    Solver(model, {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]},
           update_rule="adam", optim_config={"learning_rate": 1e-2}, num_epochs=2,
           batch_size=20, verbose=False).train()
    expected = model.loss(X)
    out = run(model.to_onnx(tmp_path / "course.onnx", outputs=("scores", "label")), X)
    np.testing.assert_allclose(out[0], expected, **F32)
    np.testing.assert_array_equal(out[1], np.argmax(expected, axis=1))
    assert onnx.load(str(tmp_path / "course.onnx")).graph.output[0].name == "scores"


def test_course_net_before_training_uses_the_course_running_defaults():
    """Before any training step a course batch-norm net's test mode reads running
    statistics of zeros (the course's default); the graph does the same."""
    from fastfc import FullyConnectedNet
    model = FullyConnectedNet([4], input_dim=6, num_classes=3, dtype=np.float32,
                              normalization="batchnorm")
    X = data()
    out = run(to_onnx_model(model), X)
    np.testing.assert_allclose(out[0], model.loss(X), rtol=1e-4, atol=1e-4)
