"""ONNX export: :func:`export_onnx` writes an fnn model with its params (and state) as an
ONNX graph that onnxruntime (or any ONNX runtime: phones, browsers, servers) runs.

The graph takes fnn's own layout: one input ``"input"`` of the model's input shape (channels
last, as fnn) with a dynamic batch axis ``"batch"``, and one output ``"output"``
(``"output_0"``, ``"output_1"``, ... for a model ending in parallel branches). A model fed
several arrays (``input_shape`` a tuple of shapes, e.g. a translator's ``(source, target)``)
has the inputs ``"input_0"``, ``"input_1"``, ... in that order, each with its batch axis
dynamic and the model's declared input name (``fnn.Input``) as its doc string. An input's
type is the declared kind of the first layer fed it: int64 for token ids (an embedding, a
padding mask), bool for masks, else float32. Each layer is turned into ONNX nodes by the
converter of its declared ``kind`` (:data:`fnn.interop.onnx_converters.CONVERTERS`);
combinators (serial, parallel, each, residual; ``pick`` is no node) are walked.
Convolutions and pools run channels-first in ONNX, between two ``Transpose`` nodes
(onnxruntime cancels adjacent pairs); batch-norm is its inference form, dropout the identity.
Sequence lengths are the ones of ``input_shape`` (pad to them); a recurrent layer's mask must
be right padding (ONNX's ``sequence_lens``).

Your own layers (``kind`` None) have no ONNX form until you give one: ``converters={name:
fn}``, keyed by the layer's ``kind`` or ``name``, with ``fn(graph, layer, params, state, x,
input_shape) -> output`` adding nodes through :class:`Graph` (``graph.op``, ``graph.const``):

>>> import os, tempfile, numpy as np, fnn
>>> def scale(n):
...     def init(key, shape):
...         return shape, {"s": np.full(shape[-1:], 2.0, np.float32)}
...     def forward(params, x):
...         return x * params["s"], x
...     return fnn.layer(f"scale({n})", init, forward, lambda p, x, dy, g: (None, None))
>>> model = fnn.serial(fnn.linear(3), scale(3))
>>> _, params = model.init(fnn.key(0), (-1, 4))
>>> path = os.path.join(tempfile.mkdtemp(), "m.onnx")
>>> try:
...     fnn.export_onnx(model, params, (-1, 4), path)
... except fnn.interop.onnx_export.OnnxExportError as err:
...     print(err)  # doctest: +ELLIPSIS
export_onnx: layer scale(3) (params path '01_scale', kind None) has no ONNX form; ...
>>> to_onnx = {"scale": lambda g, layer, p, s, x, shape: g.op("Mul", x, g.const(p["s"]))}
>>> fnn.export_onnx(model, params, (-1, 4), path, converters=to_onnx)
>>> import onnxruntime                                   # doctest: +SKIP
>>> session = onnxruntime.InferenceSession(path)         # doctest: +SKIP
>>> y, = session.run(None, {"input": np.ones((2, 4), np.float32)})  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fnn._extras import require
from fnn.checks import LayerError
from fnn.combinators import child_names
from fnn.core import Layer
from fnn.initializers import shapes_only
from fnn.interop.onnx_converters import CONVERTERS
from fnn.io import atomic_write
from fnn.keys import key as make_key

DEFAULT_OPSET = 17
Converter = Callable[..., Any]  # (graph, layer, params, state, x, input_shape) -> output


class OnnxExportError(LayerError):
    """A model that cannot be exported: a layer without an ONNX form (named, with its params
    path), or arguments that do not fit the model."""


class Graph:
    """The ONNX graph being built, handed to every converter: :meth:`op` adds a node,
    :meth:`const` an initializer; names are made unique. ``opset`` is the target opset."""

    def __init__(self, opset: int, helper: Any, numpy_helper: Any):
        self.opset = opset
        self.nodes: list[Any] = []  # onnx NodeProto
        self.initializers: list[Any] = []  # onnx TensorProto
        self._helper, self._numpy_helper, self._count = helper, numpy_helper, 0
        self.kinds: dict[str, str | None] = {}  # graph input -> kind of the first layer fed it

    def note_inputs(self, layer: Layer, x: Any) -> None:
        """Record the declared kind of each graph input that ``layer`` takes as it is."""
        fed = x if len(layer.inputs) > 1 and isinstance(x, tuple) else (x,)
        for tensor, declared in zip(fed, layer.inputs):
            if isinstance(tensor, str) and self.kinds.get(tensor, "") is None:
                self.kinds[tensor] = declared.kind

    def name(self, prefix: str) -> str:
        """A fresh tensor name starting with ``prefix``."""
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: Any, dtype: Any = np.float32, prefix: str = "c") -> str:
        """An initializer holding ``value`` (cast to ``dtype``: float32, or np.int64 for
        shapes and axes), by name."""
        name = self.name(prefix)
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self._numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        """Add a node ``op_type(*inputs)`` with ``attrs``; its output name (a list of names
        with ``outputs > 1``). An input ``""`` is an omitted optional input."""
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names


def _shape(layer: Layer, input_shape: Any) -> Any:
    """The output shape of ``layer`` for ``input_shape`` (drawing no random numbers)."""
    with shapes_only():
        return layer.init(make_key(0), input_shape)[0]


def _leaf(graph: Graph, layer: Layer, params: Any, state: Any, x: Any, shape: Any,
          path: str, table: Mapping[str, Converter]) -> Any:
    """The output of one (non-combinator) layer, by its converter."""
    convert = None
    if layer.kind is not None:
        convert = table.get(layer.kind)
    if convert is None:
        convert = table.get(layer.name)
    if convert is None:
        raise OnnxExportError(
            f"export_onnx: layer {layer!r} (params path {path!r}, kind {layer.kind!r}) has no "
            f"ONNX form; give one with converters={{{(layer.kind or layer.name)!r}: fn}}, "
            "fn(graph, layer, params, state, x, input_shape) -> output (see "
            "fnn.interop.onnx_export)")
    graph.note_inputs(layer, x)
    try:
        return convert(graph, layer, params, state, x, shape)
    except NotImplementedError as err:
        raise OnnxExportError(f"export_onnx: layer {layer!r} (params path {path!r}) has no "
                              f"ONNX form as configured: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise OnnxExportError(f"export_onnx: layer {layer!r} (params path {path!r}): the params "
                              f"or state do not fit its converter ({type(err).__name__}: "
                              f"{err})") from None


def _walk(graph: Graph, layer: Layer, params: Any, state: Any, x: Any, shape: Any, path: str,
          table: Mapping[str, Converter]) -> Any:
    """The output (a tensor name, or a tuple of them after a parallel) of ``layer`` on ``x``,
    whose fnn shape is ``shape``; combinators are walked, every other layer converted."""
    if layer.flow is None:
        return _leaf(graph, layer, params, state if layer.stateful else None, x, shape, path,
                     table)
    names = child_names(layer.children)
    if not isinstance(params, dict) or set(params) != set(names):
        raise OnnxExportError(f"export_onnx: {path or 'the model'}: params should have keys "
                              f"{names}, got {sorted(params) if isinstance(params, dict) else params!r:.80}")
    state = state if isinstance(state, dict) else {}
    where = f"{path}/" if path else ""
    if layer.flow == "parallel":
        return tuple(_walk(graph, child, params[n], state.get(n), x, shape, where + n, table)
                     for child, n in zip(layer.children, names))
    if layer.flow == "each":  # one child per element of a tuple (after a parallel)
        return tuple(_walk(graph, child, params[n], state.get(n), xi, si, where + n, table)
                     for child, n, xi, si in zip(layer.children, names, x, shape))
    y = x
    for child, n in zip(layer.children, names):
        y = _walk(graph, child, params[n], state.get(n), y, shape, where + n, table)
        shape = _shape(child, shape)
    return graph.op("Add", x, y) if layer.flow == "residual" else y


def _name_outputs(graph: Graph, helper: Any, outs: tuple, names: list[str],
                  inputs: list[str]) -> None:
    """Give the tensors ``outs`` the graph output names ``names``: the node making one is
    renamed; an ``Identity`` when no node makes it (a graph input) or it is named already."""
    renamed: dict[str, str] = {}
    for out, name in zip(outs, names):
        makers = [n for n in graph.nodes if out in n.output]
        if not makers or out in renamed or out in inputs:
            graph.nodes.append(helper.make_node("Identity", [renamed.get(out, out)], [name]))
            continue
        renamed[out] = name
        for node in graph.nodes:
            for field in (node.input, node.output):
                for i, tensor in enumerate(field):
                    if tensor == out:
                        field[i] = name


#: onnx.TensorProto element types of fnn's input kinds
_ELEMENT = {"float": 1, "int": 7, "bool": 9}


def _value_info(helper: Any, name: str, shape: Any, kind: str = "float", doc: str = "") -> Any:
    return helper.make_tensor_value_info(name, _ELEMENT[kind], ["batch", *shape[1:]],
                                         doc_string=doc)


def _output_kind(graph: Graph, out: str) -> str:
    """``"bool"`` for a mask (a graph input's kind, or made by a logical node), else
    ``"float"``."""
    if out in graph.kinds:
        return graph.kinds[out] or "float"
    logical = any(out in n.output and n.op_type in ("Not", "Equal", "And") for n in graph.nodes)
    return "bool" if logical else "float"


def _input_shapes(input_shape: Any) -> tuple[tuple, ...] | None:
    """A tuple of input shapes (several inputs) normalised, or None for one shape."""
    if not isinstance(input_shape, (tuple, list)) or not input_shape or \
            not all(isinstance(s, (tuple, list)) for s in input_shape):
        return None
    return tuple(tuple(-1 if d is None else int(d) for d in s) for s in input_shape)


def _graph_inputs(helper: Any, model: Layer, graph: Graph, names: list[str],
                  shapes: tuple) -> list[Any]:
    """The graph's inputs: each one's type is the declared kind of the first layer fed it
    (an embedding's ``"int"``, a mask's ``"bool"``), else the model's declared input's, else
    float; its doc string the model's declared input name."""
    declared = model.inputs if len(model.inputs) == len(names) else ()
    out = []
    for i, (name, shape) in enumerate(zip(names, shapes)):
        kind = graph.kinds.get(name) or (declared[i].kind if declared else "float")
        out.append(_value_info(helper, name, shape, kind, declared[i].name if declared else ""))
    return out


def export_onnx(model: Layer, params: Any, input_shape: tuple[Any, ...], path: str | os.PathLike, *,
                state: Any = None, opset: int = DEFAULT_OPSET,
                converters: Mapping[str, Converter] | None = None) -> None:
    """Write ``model`` with ``params`` (and ``state``, for batch-norm's running statistics) to
    ``path`` as an ONNX model of opset ``opset`` (17 or later), float32, checked by
    ``onnx.checker`` and written atomically. ``input_shape``: the model's input shape, batch
    first (``-1``: the batch axis is dynamic in the graph whatever it is), or a tuple of
    shapes for a model fed several arrays; input ``"input"`` (``"input_<i>"`` per array),
    output ``"output"`` (``"output_<i>"`` per branch of a parallel output); the model's repr is the
    graph's doc string. ``converters``: ``{kind or name: fn}`` for your own layers (module
    doc), consulted before the built-in table. Needs the ``onnx`` extra.

    >>> import os, tempfile, fnn
    >>> model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> fnn.export_onnx(model, params, (-1, 4), path)
    >>> import onnx
    >>> graph = onnx.load(path).graph
    >>> graph.doc_string, [n.op_type for n in graph.node]
    ('serial(linear(8), tanh(), linear(2))', ['MatMul', 'Add', 'Tanh', 'MatMul', 'Add'])
    """
    onnx = require("onnx", "fnn.export_onnx")
    if not isinstance(model, Layer):
        raise TypeError(f"export_onnx: model should be an fnn.Layer, got {type(model).__name__}")
    if opset < DEFAULT_OPSET:
        raise ValueError(f"export_onnx: opset must be {DEFAULT_OPSET} or later, got {opset}")
    if model.stateful and state is None:
        raise OnnxExportError(f"export_onnx: {model!r} has state (batch-norm's running "
                              "statistics): pass state=, the third value of fnn.init")
    several = _input_shapes(input_shape)
    shapes = several or (tuple(-1 if d is None else int(d) for d in input_shape),)
    inputs = [f"input_{i}" for i in range(len(shapes))] if several else ["input"]
    table = {**CONVERTERS, **(converters or {})}
    graph = Graph(opset, onnx.helper, onnx.numpy_helper)
    graph.kinds = dict.fromkeys(inputs)
    x, fnn_shape = (tuple(inputs), shapes) if several else (inputs[0], shapes[0])
    out_shape = _shape(model, fnn_shape)
    y = _walk(graph, model, params, state, x, fnn_shape, "", table)
    outs, out_shapes = (y, out_shape) if isinstance(y, tuple) else ((y,), (out_shape,))
    names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    kinds = [_output_kind(graph, out) for out in outs]
    _name_outputs(graph, onnx.helper, outs, names, inputs)
    onnx_graph = onnx.helper.make_graph(
        graph.nodes, "fnn_model", _graph_inputs(onnx.helper, model, graph, inputs, shapes),
        [_value_info(onnx.helper, *o) for o in zip(names, out_shapes, kinds)],
        graph.initializers, doc_string=repr(model))
    proto = onnx.helper.make_model(onnx_graph, producer_name="fnn", doc_string=repr(model),
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, 9)  # what today's onnxruntime releases read
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data), where="export_onnx")


__all__ = ["DEFAULT_OPSET", "Graph", "OnnxExportError", "export_onnx"]
