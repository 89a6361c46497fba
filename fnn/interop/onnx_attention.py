"""The ONNX forms of the attention layers and of the encoder-decoder's wiring layers, merged
into :data:`fnn.interop.onnx_converters.CONVERTERS`: ``multi_head_attention`` (causal and/or
with its key-padding mask), ``cross_attention``, ``luong_attention``, ``masked_mean``,
``padding_mask`` and ``starts_with`` (:mod:`fnn.seq2seq`, :mod:`fnn.translators`).

A padding mask is a bool tensor (True: a real token); a masked score is replaced by ``-1e30``
before the softmax and the probabilities are multiplied by the mask after it, so a query that
sees no key gets zeros, as fnn's :func:`fnn.ops.attention.softmax`. Sequence reshapes copy
the time axis (``Reshape`` with ``0``), so only the position tables fix a length.
``starts_with``'s check of the target's first id is not in the graph (the target passes
through), nor is ``padding_mask``'s ``max_len`` check.

>>> from fnn.interop.onnx_attention import ATTENTION_CONVERTERS
>>> sorted(ATTENTION_CONVERTERS)[:3]
['cross_attention', 'luong_attention', 'masked_mean']
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: a masked score (finite, so a row with no key gives no NaN)
MASKED = -1e30
FLOAT, INT32 = 1, 6  # onnx.TensorProto.FLOAT, INT32


def masked_softmax(g, scores: str, allowed: str | None) -> str:
    """``softmax`` over the last axis of ``scores`` where the bool ``allowed`` (broadcast)
    holds, 0 where it does not (a row with no allowed key: all 0)."""
    if allowed is None:
        return g.op("Softmax", scores, axis=-1)
    p = g.op("Softmax", g.op("Where", allowed, scores, g.const(MASKED)), axis=-1)
    return g.op("Mul", p, g.op("Cast", allowed, to=FLOAT))


def _split_heads(g, t: str, heads: int) -> str:
    """``(N, T, heads * d) -> (N, heads, T, d)``."""
    return g.op("Transpose", g.op("Reshape", t, g.const([0, 0, heads, -1], np.int64)),
                perm=[0, 2, 1, 3])


def _merge_heads(g, t: str) -> str:
    """``(N, heads, T, d) -> (N, T, heads * d)``."""
    return g.op("Reshape", g.op("Transpose", t, perm=[0, 2, 1, 3]),
                g.const([0, 0, -1], np.int64))


def _key_mask(g, mask: str | None) -> str | None:
    """A key mask ``(N, S)`` as ``(N, 1, 1, S)`` (heads, queries broadcast)."""
    return None if mask is None else g.op("Unsqueeze", mask, g.const([1, 2], np.int64))


def _attend(g, q: str, k: str, v: str, scale: float, allowed: str | None) -> str:
    """``masked_softmax(scale * q k^T) v`` on ``(N, heads, T, d)`` tensors."""
    scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
    if scale != 1.0:
        scores = g.op("Mul", scores, g.const(scale))
    return g.op("MatMul", masked_softmax(g, scores, allowed), v)


def _affine(g, x: str, w, b) -> str:
    return g.op("Add", g.op("MatMul", x, g.const(w)), g.const(b))


def _self_attention(g, layer, params, state, inputs, shape):
    """``multi_head_attention``: ``x`` or ``(x, mask)``, causal (bottom-right, as fnn) and/or
    key-padding masked."""
    c = layer.config
    x, mask = inputs if c["mask"] else (inputs, None)
    x_shape = shape[0] if c["mask"] else shape
    heads, (steps, width) = c["heads"], x_shape[1:]
    qkv = _affine(g, x, params["w_qkv"], params["b_qkv"])
    q, k, v = (_split_heads(g, t, heads) for t in
               g.op("Split", qkv, g.const([width] * 3, np.int64), axis=2, outputs=3))
    allowed = _key_mask(g, mask)
    if c["causal"]:
        causal = g.const(np.tril(np.ones((steps, steps), bool)), bool)
        allowed = causal if allowed is None else g.op("And", allowed, causal)
    out = _attend(g, q, k, v, 1.0 / math.sqrt(width // heads), allowed)
    return _affine(g, _merge_heads(g, out), params["w_o"], params["b_o"])


def _cross_attention(g, layer, params, state, inputs, shape):
    x, memory, mask = inputs
    heads = layer.config["heads"]
    width = params["wq"].shape[1]
    q = _split_heads(g, _affine(g, x, params["wq"], params["bq"]), heads)
    k = _split_heads(g, _affine(g, memory, params["wk"], params["bk"]), heads)
    v = _split_heads(g, _affine(g, memory, params["wv"], params["bv"]), heads)
    out = _attend(g, q, k, v, 1.0 / math.sqrt(width // heads), _key_mask(g, mask))
    return _affine(g, _merge_heads(g, out), params["wo"], params["bo"])


def _luong_attention(g, layer, params, state, inputs, shape):
    """``tanh([softmax(x wa memory^T | mask) memory; x] @ wc + bc)``."""
    x, memory, mask = inputs
    scores = g.op("MatMul", g.op("MatMul", x, g.const(params["wa"])),
                  g.op("Transpose", memory, perm=[0, 2, 1]))
    allowed = g.op("Unsqueeze", mask, g.const([1], np.int64))
    context = g.op("MatMul", masked_softmax(g, scores, allowed), memory)
    both = g.op("Concat", context, x, axis=-1)
    return g.op("Tanh", _affine(g, both, params["wc"], params["bc"]))


def _masked_mean(g, layer, params, state, inputs, shape):
    x, mask = inputs
    m = g.op("Cast", mask, to=FLOAT)
    axis = g.const([1], np.int64)
    count = g.op("Max", g.op("ReduceSum", m, axis, keepdims=1), g.const(1.0))
    weights = g.op("Unsqueeze", g.op("Div", m, count), g.const([2], np.int64))
    return g.op("ReduceSum", g.op("Mul", x, weights), axis, keepdims=0)


def _padding_mask(g, layer, params, state, ids, shape):
    return g.op("Not", g.op("Equal", ids, g.const(layer.config["pad_id"], np.int64)))


def _starts_with(g, layer, params, state, ids, shape):
    return ids  # the check of the first id is not in the graph


def sequence_lengths(g, mask: str) -> str:
    """int32 ``(N,)``: the real steps of each row of a right-padded ``mask (N, T)``."""
    return g.op("ReduceSum", g.op("Cast", mask, to=INT32), g.const([1], np.int64), keepdims=0)


#: ``kind -> converter`` of the attention and encoder-decoder layers
ATTENTION_CONVERTERS: dict[str, Callable] = {
    "multi_head_attention": _self_attention, "cross_attention": _cross_attention,
    "luong_attention": _luong_attention, "masked_mean": _masked_mean,
    "padding_mask": _padding_mask, "starts_with": _starts_with,
}

__all__ = ["ATTENTION_CONVERTERS", "MASKED", "masked_softmax", "sequence_lengths"]
