"""Export a :class:`fastfc.Net` to ONNX, for serving stacks outside fastfc.

The graph is the net's inference pass (test mode: batch norm with its running
statistics, no dropout) written with standard ONNX operators::

    X -> [Flatten] -> { Gemm -> [BatchNormalization | LayerNormalization] -> activation }
         x (L - 1) -> Gemm -> scores [-> Softmax -> probabilities] [-> ArgMax -> label]

=================  =======================================================
fastfc             ONNX (default opset :data:`DEFAULT_OPSET`)
=================  =======================================================
affine             ``Gemm`` (W of shape (in, out), no transpose)
batch norm         ``BatchNormalization`` in inference form (running mean and
                   variance, ``epsilon`` = ``net.eps``); or folded into the
                   preceding Gemm with ``fold_batchnorm=True``
layer norm         ``LayerNormalization`` (``axis=-1``; needs opset >= 17)
activations        the operator of the activation's row in
                   ``fastfc._registry.ACTIVATIONS`` (``Relu``, ``Tanh``,
                   ``Sigmoid``, ``LeakyRelu(alpha)``), or ``Mul(x, Sigmoid(x))``
probabilities      ``Softmax(axis=1)`` of the scores
label              ``ArgMax(axis=1)``, mapped through ``classes`` when given
=================  =======================================================

Requires the ``onnx`` package (``pip install "fastfc[onnx]"``), imported only when a
function here is called.  onnxruntime (or ``onnx.reference.ReferenceEvaluator``) runs
the result; fastfc's tests compare both with ``Net.loss(X)``.

For estimators: :func:`to_onnx_model` takes the fitted net plus an optional ``classes``
array (an estimator's ``classes_``), which becomes a ``label`` output holding the class
values themselves rather than their indices.
"""
from __future__ import annotations

import os
import contextlib
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union, cast

import numpy as np

from fastfc import _registry

if TYPE_CHECKING:
    from fastfc.classifiers.fc_net import FullyConnectedNet
    from fastfc.net import Net

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "OUTPUTS", "export_onnx", "to_onnx_model"]

#: opset the exported graphs declare by default (LayerNormalization needs 17)
DEFAULT_OPSET = 17
#: the oldest opset the exporter writes (Softmax over one axis, ArgMax as used here)
MIN_OPSET = 13
#: the outputs a graph may have
OUTPUTS = ("scores", "probabilities", "label")



def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the 'onnx' package: pip install onnx "
                          "(or pip install \"fastfc[onnx]\")") from None
    return onnx


def _check_net(net: object) -> Net:
    """``net`` as the exporter reads it: a Net, or a view of a course FullyConnectedNet."""
    from fastfc.classifiers.fc_net import FullyConnectedNet
    from fastfc.net import Net

    if isinstance(net, Net):
        return net
    if isinstance(net, FullyConnectedNet):
        # duck-typed: the view has every attribute the exporter reads from a Net
        return cast("Net", _CourseNetView(net))
    raise TypeError(f"net must be a fastfc.Net or a fastfc FullyConnectedNet, got "
                    f"{type(net).__name__}")


class _CourseNetView:
    """What the exporter reads, taken from a course FullyConnectedNet: its inference
    pass is affine - [batch/layer norm] - ReLU per hidden layer (dropout is off at test
    time), then affine; batch norm uses the running statistics its bn_params hold
    (zeros before any training step, as the course's batchnorm_forward defaults)."""

    activation = "relu"
    alpha = 0.0
    loss_name = "softmax"

    def __init__(self, model: FullyConnectedNet) -> None:
        n = model.num_layers
        self.params = {k: np.array(v, copy=True) for k, v in model.params.items()}
        self.layer_dims = [int(np.shape(self.params["W1"])[0])]
        self.layer_dims += [int(np.shape(self.params[f"W{i}"])[1]) for i in range(1, n + 1)]
        self.dtype = self.params["W1"].dtype.type
        self.normalization = model.normalization
        eps = {float(p.get("eps", 1e-5)) for p in model.bn_params} or {1e-5}
        if len(eps) > 1:
            raise ValueError(f"the layers' normalisation eps differ ({sorted(eps)}); the "
                             "exporter writes one eps for every layer")
        self.eps = eps.pop()
        self.running_stats: list[tuple[np.ndarray, np.ndarray]] = []
        if self.normalization == "batchnorm":
            for i, bn in enumerate(model.bn_params):
                zeros = np.zeros(self.layer_dims[i + 1], dtype=self.dtype)
                self.running_stats.append((np.array(bn.get("running_mean", zeros)),
                                           np.array(bn.get("running_var", zeros))))
        self._lock = contextlib.nullcontext()

    def __repr__(self) -> str:
        dims = "-".join(map(str, self.layer_dims))
        return f"FullyConnectedNet({dims}, normalization={self.normalization!r})"


def _net_state(net: Net) -> tuple[dict[str, np.ndarray],
                                 list[tuple[np.ndarray, np.ndarray]]]:
    """Copies of everything the inference graph needs, read under the net's lock."""
    with net._lock:
        params = {k: np.array(v, copy=True) for k, v in net.params.items()}
        running = [(np.array(m, copy=True), np.array(v, copy=True))
                   for m, v in net.running_stats]
    return params, running


def _check_outputs(outputs: Union[str, Iterable[str], None], net: Net,
                   classes: Any) -> tuple[str, ...]:
    if outputs is None:
        outputs = ("scores",)
    elif isinstance(outputs, str):
        outputs = (outputs,)
    else:
        outputs = tuple(outputs)
    if not outputs:
        raise ValueError("outputs must name at least one output")
    for name in outputs:
        if name not in OUTPUTS:
            raise ValueError(f"outputs must be among {', '.join(OUTPUTS)}, got {name!r}")
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"outputs names an output twice: {outputs}")
    if net.loss_name == "mse" and set(outputs) & {"probabilities", "label"}:
        raise ValueError("an 'mse' (regression) net has only the 'scores' output (its "
                         "predictions); 'probabilities' and 'label' are for classifiers")
    if classes is not None and "label" not in outputs:
        raise ValueError("classes maps the 'label' output; add 'label' to outputs")
    return outputs


def _check_classes(classes: Any, n_classes: int) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] != n_classes:
        raise ValueError(f"classes must be a 1-d array of the net's {n_classes} classes, "
                         f"got shape {classes.shape}")
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind in "US":
        return classes.astype(object)
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes
    if classes.dtype.kind == "f":
        return classes.astype(np.float64)
    raise TypeError(f"classes must hold integers, floats or strings, got {classes.dtype}")


def to_onnx_model(net: Union[Net, FullyConnectedNet], *, outputs: Union[str, Iterable[str], None] = None,
                  classes: Any = None, opset: Optional[int] = None, dtype: Any = None,
                  input_shape: Optional[Sequence[int]] = None, fold_batchnorm: bool = False,
                  input_name: str = "X", graph_name: str = "fastfc_net",
                  doc_string: Optional[str] = None) -> Any:
    """The ONNX model of ``net``'s inference pass (an ``onnx.ModelProto``, checked).

    Parameters
    ----------
    net : fastfc.Net or fastfc.classifiers.fc_net.FullyConnectedNet
        A course FullyConnectedNet exports its test-mode pass (ReLU, its
        normalisation with the running statistics, no dropout).
    outputs : str or sequence of str, optional
        Among ``'scores'`` (the last affine layer, float (N, C); an 'mse' net's
        predictions), ``'probabilities'`` (softmax of the scores) and ``'label'``
        (argmax of the scores, int64 (N,), or ``classes[argmax]``), in this order of
        the graph's outputs.  Default ``('scores',)``.
    classes : array-like of shape (C,), optional
        Values of the classes (an estimator's ``classes_``: integers, floats or
        strings); the 'label' output then holds them instead of class indices.
    opset : int, optional
        ONNX opset of the default domain, :data:`MIN_OPSET` or newer (default
        :data:`DEFAULT_OPSET`; layer norm needs 17).
    dtype : np.float32 or np.float64, optional
        Float type of the graph's input, weights and outputs (default: the net's).
    input_shape : tuple of int, optional
        Shape of one sample when the net is fed images, e.g. (3, 32, 32): the input is
        then ``(N, *input_shape)`` and a ``Flatten`` node makes it (N, D).  Default: (D,).
    fold_batchnorm : bool
        Fold batch norm into the preceding Gemm (W * s, (b - mean) * s + beta with
        s = gamma / sqrt(var + eps)) instead of a BatchNormalization node.
    input_name, graph_name, doc_string : str
        Name of the graph input, of the graph, and the model's description.

    Returns
    -------
    onnx.ModelProto
    """
    onnx = _require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    from fastfc import _validation as V
    from fastfc._config import __version__

    net = _check_net(net)
    outputs = _check_outputs(outputs, net, classes)
    opset = DEFAULT_OPSET if opset is None else V.check_scalar(opset, "opset", integer=True)
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if net.normalization == "layernorm" and opset < 17:
        raise ValueError(f"layer norm exports as LayerNormalization, which needs opset >= "
                         f"17; got opset {opset}")
    dtype = np.dtype(net.dtype) if dtype is None else V.check_float_dtype(dtype)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    dims = list(net.layer_dims)
    if input_shape is None:
        input_shape = (dims[0],)
    else:
        try:
            input_shape = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError):
            raise TypeError("input_shape must be a tuple of positive integers") from None
        if not input_shape or any(s < 1 for s in input_shape) \
                or int(np.prod(input_shape)) != dims[0]:
            raise ValueError(f"input_shape {input_shape} does not hold the net's {dims[0]} "
                             "input features")
    if classes is not None:
        classes = _check_classes(classes, dims[-1])

    params, running = _net_state(net)
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{out}", **attrs))
        return out

    x = input_name
    if len(input_shape) > 1:
        x = node("Flatten", [x], "flat", axis=1)
    n_layers = len(dims) - 1
    for i in range(1, n_layers + 1):
        W = params[f"W{i}"].astype(np.float64)
        b = params[f"b{i}"].astype(np.float64)
        hidden = i < n_layers
        bn = hidden and net.normalization == "batchnorm"
        if bn and fold_batchnorm:
            mean, var = (a.astype(np.float64) for a in running[i - 1])
            scale = params[f"gamma{i}"].astype(np.float64) / np.sqrt(var + net.eps)
            W = W * scale
            b = (b - mean) * scale + params[f"beta{i}"].astype(np.float64)
        # z = x @ W + b
        z = node("Gemm", [x, const(f"W{i}", W.astype(dtype)), const(f"b{i}", b.astype(dtype))],
                 "scores" if not hidden else f"z{i}")
        if not hidden:
            break
        if bn and not fold_batchnorm:
            mean, var = running[i - 1]
            z = node("BatchNormalization",
                     [z, const(f"gamma{i}", params[f"gamma{i}"].astype(dtype)),
                      const(f"beta{i}", params[f"beta{i}"].astype(dtype)),
                      const(f"running_mean{i}", mean.astype(dtype)),
                      const(f"running_var{i}", var.astype(dtype))],
                     f"bn{i}", epsilon=float(net.eps))
        elif net.normalization == "layernorm":
            z = node("LayerNormalization",
                     [z, const(f"gamma{i}", params[f"gamma{i}"].astype(dtype)),
                      const(f"beta{i}", params[f"beta{i}"].astype(dtype))],
                     f"ln{i}", axis=-1, epsilon=float(net.eps))
        op = _registry.ACTIVATIONS[net.activation].onnx
        if op == "x*Sigmoid":
            s = node("Sigmoid", [z], f"sig{i}")
            x = node("Mul", [z, s], f"h{i}")
        elif op == "LeakyRelu":
            x = node(op, [z], f"h{i}", alpha=float(net.alpha))
        else:
            x = node(op, [z], f"h{i}")

    batch = "N"
    graph_outputs = []
    for name in outputs:
        if name == "scores":
            graph_outputs.append(helper.make_tensor_value_info("scores", elem,
                                                               [batch, dims[-1]]))
        elif name == "probabilities":
            node("Softmax", ["scores"], "probabilities", axis=1)
            graph_outputs.append(helper.make_tensor_value_info("probabilities", elem,
                                                               [batch, dims[-1]]))
        else:
            if classes is None:
                node("ArgMax", ["scores"], "label", axis=1, keepdims=0)
                label_type = TensorProto.INT64
            else:
                index = node("ArgMax", ["scores"], "label_index", axis=1, keepdims=0)
                if classes.dtype == object:
                    # onnx's hints (when installed) list numbers only; a STRING tensor
                    # takes bytes
                    inits.append(helper.make_tensor(
                        "classes", TensorProto.STRING, [len(classes)],
                        [str(c).encode("utf-8")  # type: ignore[misc,unused-ignore]
                         for c in classes]))
                    label_type = TensorProto.STRING
                else:
                    const("classes", classes)
                    label_type = (TensorProto.INT64 if classes.dtype == np.int64
                                  else TensorProto.DOUBLE)
                node("Gather", ["classes", index], "label", axis=0)
            graph_outputs.append(helper.make_tensor_value_info("label", label_type, [batch]))

    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info(input_name, elem, [batch, *input_shape])],
        graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fastfc", producer_version=__version__,
                              doc_string=doc_string or f"fastfc {net!r}, inference pass")
    # the oldest IR version the opset allows, so older runtimes load the file
    model.ir_version = min(model.ir_version, _ir_version_for(onnx, opset))
    for key, value in (("activation", net.activation),
                       ("normalization", str(net.normalization)),
                       ("loss", net.loss_name), ("layer_dims", ",".join(map(str, dims)))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    return model


def _ir_version_for(onnx: Any, opset: int) -> int:
    try:
        from onnx.helper import find_min_ir_version_for
        return find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    except Exception:  # pragma: no cover - older onnx
        return onnx.IR_VERSION


def export_onnx(net: Union[Net, FullyConnectedNet], path: Union[str, os.PathLike[str]], **options: Any) -> Any:
    """Write ``net``'s inference graph to ``path`` as an ONNX file; returns the model.

    ``options`` are those of :func:`to_onnx_model` (outputs, classes, opset, dtype,
    input_shape, fold_batchnorm, ...).  The file is written atomically (a temporary
    file renamed over ``path``).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    model = to_onnx_model(net, **options)
    data = model.SerializeToString()
    from fastfc.checkpoint import atomic_write
    atomic_write(path, lambda f: f.write(data))
    return model
