"""The ONNX forms of the sequence layers, merged into
:data:`fnn.interop.onnx_converters.CONVERTERS`: embeddings (``Gather``), position
embeddings (an ``Add`` of the table's first ``T`` rows), ``rnn``/``gru``/``lstm`` (ONNX's
``RNN``/``GRU``/``LSTM`` ops, their gates reordered: torch's and fnn's LSTM ``i, f, g, o`` is
ONNX's ``i, o, f, c``, GRU ``r, z, n`` is ``z, r, h``); attention is in
:mod:`fnn.interop.onnx_attention`. Inputs are ``(N, T, D)`` with ``T`` fixed by the export's input shape (the batch
axis stays dynamic); a recurrent layer's mask (right padding) and initial states are ONNX's
``sequence_lens`` and ``initial_h``/``initial_c``; ``return_state`` has no ONNX form here.

>>> from fnn.interop.onnx_sequence import SEQUENCE_CONVERTERS
>>> sorted(SEQUENCE_CONVERTERS)[:3]
['embedding', 'gru', 'lstm']
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fnn.interop.onnx_attention import sequence_lengths
from fnn.layers.positional import sinusoids

#: each cell's torch gates (blocks of the G*H axis) in ONNX's order
ONNX_GATES = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}


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


def _inputs(g, layer, x) -> tuple[str, list[str]]:
    """``x`` and the optional inputs of ONNX's ``RNN``/``GRU``/``LSTM`` after ``B``:
    ``sequence_lens`` (from the mask), ``initial_h`` (and ``initial_c``), ``""`` if absent."""
    c = layer.config
    if len(layer.inputs) == 1:
        return x, []
    x, rest = x[0], list(x[1:])
    lengths = sequence_lengths(g, rest.pop()) if c["mask"] else ""
    states = []
    for s in rest if c["initial_state"] else []:  # (N, H) or (N, 2, H) -> (dirs, N, H)
        states.append(g.op("Transpose", s, perm=[1, 0, 2]) if c["bidirectional"] else
                      g.op("Unsqueeze", s, g.const([0], np.int64)))
    return x, [lengths, *states]


def _recurrent(g, layer, params, state, x, shape):
    """``RNN``/``GRU``/``LSTM`` on ``(T, N, D)`` (a transpose of fnn's batch-first input); a
    mask becomes ``sequence_lens`` (its count of True per row: right padding, as fnn's
    padded batches, is assumed), initial states ``initial_h``/``initial_c``."""
    c, cell = layer.config, layer.kind
    x, extra = _inputs(g, layer, x)
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
                  g.const(b), *extra, outputs=2, **attrs)
    if c["return_sequences"]:  # (T, dirs, N, H) -> (N, T, dirs * H)
        out = g.op("Transpose", y, perm=[2, 0, 1, 3])
        return g.op("Reshape", out, g.const([0, 0, -1], np.int64))
    out = g.op("Transpose", y_h, perm=[1, 0, 2])  # (dirs, N, H) -> (N, dirs * H)
    return g.op("Reshape", out, g.const([0, -1], np.int64))


#: ``kind -> converter`` of the sequence layers
SEQUENCE_CONVERTERS: dict[str, Callable] = {
    "embedding": _embedding, "positional_embedding": _positional,
    "sinusoidal_embedding": _sinusoidal, "rnn": _recurrent, "gru": _recurrent,
    "lstm": _recurrent,
}

__all__ = ["ONNX_GATES", "SEQUENCE_CONVERTERS", "onnx_gates"]
