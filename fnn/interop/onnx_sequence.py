"""The ONNX forms of the sequence layers, merged into
:data:`fnn.interop.onnx_converters.CONVERTERS`: embeddings (``Gather``), position
embeddings (an ``Add`` of the table's first ``T`` rows), ``rnn``/``gru``/``lstm`` (ONNX's
``RNN``/``GRU``/``LSTM`` ops, their gates reordered: torch's and fnn's LSTM ``i, f, g, o`` is
ONNX's ``i, o, f, c``, GRU ``r, z, n`` is ``z, r, h``) and ``multi_head_attention`` (matmuls and
a softmax). Inputs are ``(N, T, D)`` with ``T`` fixed by the export's input shape (the batch
axis stays dynamic). Layers fed several inputs (masks, initial states) or giving their states
have no ONNX form here.

>>> from fnn.interop.onnx_sequence import SEQUENCE_CONVERTERS
>>> sorted(SEQUENCE_CONVERTERS)[:3]
['embedding', 'gru', 'lstm']
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn.layers.positional import sinusoids

#: each cell's torch gates (blocks of the G*H axis) in ONNX's order
ONNX_GATES = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}


def _single_input(layer) -> None:
    if len(layer.inputs) > 1:
        names = ", ".join(i.name for i in layer.inputs)
        raise NotImplementedError(f"its ONNX form takes one input, not ({names})")


def _embedding(g, layer, params, state, ids, shape):
    return g.op("Gather", g.const(params["table"]), ids, axis=0)


def _positional(g, layer, params, state, x, shape):
    return g.op("Add", x, g.const(params["table"][:shape[1]]))


def _sinusoidal(g, layer, params, state, x, shape):
    table = sinusoids(layer.config["max_len"], shape[2], "float64")[:shape[1]]
    return g.op("Add", x, g.const(table))


def onnx_gates(a: np.ndarray, cell: str) -> np.ndarray:
    """``a``'s last axis, ``G`` blocks of torch's gates, in ONNX's gate order.

    >>> import numpy as np
    >>> from fnn.interop.onnx_sequence import onnx_gates
    >>> onnx_gates(np.arange(4), "lstm").tolist()   # i f g o -> i o f c
    [0, 3, 1, 2]
    """
    blocks = np.split(np.asarray(a), len(ONNX_GATES[cell]), axis=-1)
    return np.concatenate([blocks[i] for i in ONNX_GATES[cell]], axis=-1)


def _recurrent(g, layer, params, state, x, shape):
    """``RNN``/``GRU``/``LSTM`` on ``(T, N, D)`` (a transpose of fnn's batch-first input)."""
    _single_input(layer)
    c, cell = layer.config, layer.kind
    if c["return_state"]:
        raise NotImplementedError("its ONNX form does not give the states (return_state)")
    suffixes = ("", "_reverse") if c["bidirectional"] else ("",)
    w = np.stack([onnx_gates(params["w_ih" + s], cell).T for s in suffixes])
    r = np.stack([onnx_gates(params["w_hh" + s], cell).T for s in suffixes])
    b = np.stack([np.concatenate([onnx_gates(params["b_ih" + s], cell),
                                  onnx_gates(params["b_hh" + s], cell)]) for s in suffixes])
    attrs: dict = {"hidden_size": c["hidden"],
                   "direction": "bidirectional" if c["bidirectional"] else "forward"}
    if cell == "gru":
        attrs["linear_before_reset"] = 1  # torch's (and fnn's) GRU
    if cell == "rnn":
        attrs["activations"] = [c["nonlinearity"].capitalize()] * len(suffixes)
    y, y_h = g.op(cell.upper(), g.op("Transpose", x, perm=[1, 0, 2]), g.const(w), g.const(r),
                  g.const(b), outputs=2, **attrs)
    if c["return_sequences"]:  # (T, dirs, N, H) -> (N, T, dirs * H)
        out = g.op("Transpose", y, perm=[2, 0, 1, 3])
        return g.op("Reshape", out, g.const([0, 0, -1], np.int64))
    out = g.op("Transpose", y_h, perm=[1, 0, 2])  # (dirs, N, H) -> (N, dirs * H)
    return g.op("Reshape", out, g.const([0, -1], np.int64))


def _attention(g, layer, params, state, x, shape):
    """``softmax(q k^T / sqrt(d) + causal mask) v`` per head, between the two projections."""
    _single_input(layer)
    heads, (steps, width) = layer.config["heads"], shape[1:]
    d = width // heads
    qkv = g.op("Add", g.op("MatMul", x, g.const(params["w_qkv"])), g.const(params["b_qkv"]))
    q, k, v = g.op("Split", qkv, g.const([width] * 3, np.int64), axis=2, outputs=3)
    split = g.const([-1, steps, heads, d], np.int64)
    q, k, v = (g.op("Transpose", g.op("Reshape", t, split), perm=[0, 2, 1, 3]) for t in (q, k, v))
    scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
    scores = g.op("Mul", scores, g.const(1.0 / math.sqrt(d)))
    if layer.config["causal"]:
        scores = g.op("Add", scores, g.const(np.triu(np.full((steps, steps), -np.inf), 1)))
    out = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    out = g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]),
               g.const([-1, steps, width], np.int64))
    return g.op("Add", g.op("MatMul", out, g.const(params["w_o"])), g.const(params["b_o"]))


#: ``kind -> converter`` of the sequence layers
SEQUENCE_CONVERTERS: dict[str, Callable] = {
    "embedding": _embedding, "positional_embedding": _positional,
    "sinusoidal_embedding": _sinusoidal, "rnn": _recurrent, "gru": _recurrent,
    "lstm": _recurrent, "multi_head_attention": _attention,
}

__all__ = ["ONNX_GATES", "SEQUENCE_CONVERTERS", "onnx_gates"]
