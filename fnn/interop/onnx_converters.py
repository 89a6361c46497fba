"""The ONNX forms of fnn's built-in layers: :data:`CONVERTERS`, one table ``kind ->
converter`` read by :func:`fnn.export_onnx`. A converter ``fn(graph, layer, params, state, x,
input_shape) -> output`` reads the layer's declared ``config`` and adds nodes to ``graph``
(:class:`fnn.interop.onnx_export.Graph`); ``x`` is the name of its input tensor (a tuple of
names for merge layers), in fnn's channels-last layout, and so is its output.

>>> from fnn.interop.onnx_converters import CONVERTERS
>>> {"linear", "conv", "batch_norm", "max_pool", "relu"} <= set(CONVERTERS)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fnn.interop.onnx_attention import ATTENTION_CONVERTERS
from fnn.interop.onnx_sequence import SEQUENCE_CONVERTERS
from fnn.layers.arguments import geometry

F32 = np.float32


def _to_first(g, x: str, rank: int) -> str:
    """``(N, *S, C) -> (N, C, *S)``."""
    return g.op("Transpose", x, perm=[0, rank - 1, *range(1, rank - 1)])


def _to_last(g, x: str, rank: int) -> str:
    """``(N, C, *S) -> (N, *S, C)``."""
    return g.op("Transpose", x, perm=[0, *range(2, rank), 1])


def _pads(pairs) -> list[int]:
    """fnn's ``((lo, hi), ...)`` as ONNX's ``[lo..., hi...]``."""
    return [int(lo) for lo, _ in pairs] + [int(hi) for _, hi in pairs]


def reduce_mean(g, x: str, axes, keepdims: bool = True) -> str:
    """``ReduceMean`` over ``axes`` (an attribute before opset 18, an input since)."""
    if g.opset >= 18:
        return g.op("ReduceMean", x, g.const(list(axes), np.int64), keepdims=int(keepdims))
    return g.op("ReduceMean", x, axes=list(axes), keepdims=int(keepdims))


def _unary(op_type: str, **fixed) -> Callable:
    def convert(g, layer, params, state, x, shape):
        attrs = {k: float(layer.config[v]) for k, v in fixed.items()}
        return g.op(op_type, x, **attrs)

    return convert


def _gaussian(g, layer, params, state, x, shape):
    return g.op("Exp", g.op("Neg", g.op("Mul", x, x)))


def _sinc(g, layer, params, state, x, shape):
    zero = g.op("Equal", x, g.const(0.0))
    return g.op("Where", zero, g.const(1.0), g.op("Div", g.op("Sin", x), x))


def _gelu(g, layer, params, state, x, shape):  # the tanh form, as fnn.gelu
    cube = g.op("Mul", g.op("Mul", x, x), x)
    inner = g.op("Add", x, g.op("Mul", cube, g.const(0.044715)))
    t = g.op("Tanh", g.op("Mul", inner, g.const(math.sqrt(2.0 / math.pi))))
    return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", t, g.const(1.0)))


def _softmax(op_type: str) -> Callable:
    def convert(g, layer, params, state, x, shape):
        return g.op(op_type, x, axis=int(layer.config.get("axis", -1)))

    return convert


def _linear(g, layer, params, state, x, shape):
    y = g.op("MatMul", x, g.const(params["w"]))
    return g.op("Add", y, g.const(params["b"])) if "b" in params else y


def _conv(g, layer, params, state, x, shape):
    c = layer.config
    nd, rank = c["nd"], len(shape)
    sizes = tuple(shape[1:-1])
    if c["transpose"]:
        pads = c["padding"]
    else:
        pads = geometry(repr(layer), sizes, c["kernel"], c["stride"], c["dilation"],
                        c["padding"]).pads
    w = np.transpose(params["w"], (nd + 1, nd, *range(nd)))  # (*k, a, b) -> (b, a, *k)
    inputs = [_to_first(g, x, rank), g.const(w)]
    if "b" in params:
        inputs.append(g.const(params["b"]))
    attrs: dict[str, Any] = dict(kernel_shape=list(c["kernel"]), strides=list(c["stride"]),
                                 dilations=list(c["dilation"]), pads=_pads(pads))
    if c["transpose"]:
        y = g.op("ConvTranspose", *inputs, output_padding=list(c["output_padding"]), **attrs)
    else:
        y = g.op("Conv", *inputs, **attrs)
    return _to_last(g, y, rank)


def _pool(op_type: str) -> Callable:
    def convert(g, layer, params, state, x, shape):
        c, rank = layer.config, len(shape)
        pads = geometry(repr(layer), tuple(shape[1:-1]), c["kernel"], c["stride"],
                        (1,) * c["nd"], c["padding"]).pads
        extra = {"count_include_pad": 1} if op_type == "AveragePool" else {}
        y = g.op(op_type, _to_first(g, x, rank), kernel_shape=list(c["kernel"]),
                 strides=list(c["stride"]), pads=_pads(pads), **extra)
        return _to_last(g, y, rank)

    return convert


def _upsample(g, layer, params, state, x, shape):
    scales = g.const([1.0, *layer.config["factor"], 1.0])
    return g.op("Resize", x, "", scales, mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _global_avg_pool(g, layer, params, state, x, shape):
    return reduce_mean(g, x, range(1, len(shape) - 1), keepdims=False)


def _reshape(g, layer, params, state, x, shape):
    target = [-1, *layer.init(None, shape)[0][1:]]
    return g.op("Reshape", x, g.const(target, np.int64))


def _affine(g, y: str, params: dict) -> str:
    if "scale" not in params:
        return y
    return g.op("Add", g.op("Mul", y, g.const(params["scale"])), g.const(params["bias"]))


def _batch_norm(g, layer, params, state, x, shape):
    """Inference: ``(x - mean) * inv * scale + bias``, ``inv = 1 / sqrt(var + eps)`` (as fnn)."""
    var = np.asarray(state["var"], F32)
    inv = 1.0 / np.sqrt(var + F32(layer.config["eps"]))
    y = g.op("Mul", g.op("Sub", x, g.const(state["mean"])), g.const(inv))
    return _affine(g, y, params)


def _normalized(g, x: str, axes, eps: float) -> str:
    """``(x - mean) / sqrt(var + eps)`` with statistics over ``axes`` (biased variance)."""
    centred = g.op("Sub", x, reduce_mean(g, x, axes))
    var = reduce_mean(g, g.op("Mul", centred, centred), axes)
    return g.op("Div", centred, g.op("Sqrt", g.op("Add", var, g.const(eps))))


def _layer_norm(g, layer, params, state, x, shape):
    k = len(layer.config["axes"])
    y = _normalized(g, x, range(len(shape) - k, len(shape)), layer.config["eps"])
    return _affine(g, y, params)


def _group_norm(g, layer, params, state, x, shape):
    groups, channels, rank = layer.config["groups"], shape[-1], len(shape)
    grouped = g.op("Reshape", x, g.const([-1, *shape[1:-1], groups, channels // groups],
                                         np.int64))
    y = _normalized(g, grouped, [*range(1, rank - 1), rank], layer.config["eps"])
    y = g.op("Reshape", y, g.const([-1, *shape[1:]], np.int64))
    return _affine(g, y, params)


def _identity(g, layer, params, state, x, shape):
    return g.op("Identity", x)


def _flatten(g, layer, params, state, x, shape):
    return g.op("Flatten", x, axis=1)


def _concatenate(g, layer, params, state, xs, shape):
    return g.op("Concat", *xs, axis=int(layer.config["axis"]))


def _add(g, layer, params, state, xs, shape):
    return g.op("Sum", *xs)


def _pick(g, layer, params, state, xs, shape):
    return xs[layer.config["index"]]  # no node: the tensor itself


#: ``kind -> converter`` of every built-in layer kind ONNX can express
CONVERTERS: dict[str, Callable] = {
    "identity": _identity, "dropout": _identity,
    "relu": _unary("Relu"), "tanh": _unary("Tanh"), "sigmoid": _unary("Sigmoid"),
    "stable_sigmoid": _unary("Sigmoid"), "softplus": _unary("Softplus"), "sine": _unary("Sin"),
    "leaky_relu": _unary("LeakyRelu", alpha="slope"), "elu": _unary("Elu", alpha="alpha"),
    "gaussian": _gaussian, "sinc": _sinc, "gelu": _gelu,
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"),
    "linear": _linear, "conv": _conv,
    "max_pool": _pool("MaxPool"), "avg_pool": _pool("AveragePool"),
    "upsample": _upsample, "global_avg_pool": _global_avg_pool,
    "flatten": _flatten, "reshape": _reshape,
    "batch_norm": _batch_norm, "layer_norm": _layer_norm, "group_norm": _group_norm,
    "concatenate": _concatenate, "add": _add, "pick": _pick,
    **SEQUENCE_CONVERTERS, **ATTENTION_CONVERTERS,
}

__all__ = ["CONVERTERS", "reduce_mean"]
