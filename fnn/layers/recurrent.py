"""Recurrent layers over ``(N, T, D)``: :func:`rnn`, :func:`gru`, :func:`lstm`, with the maths,
gate order and biases of ``torch.nn.RNN/GRU/LSTM`` (:mod:`fnn.ops.recurrent` runs them,
backpropagation through time written by hand).

Params, channels-last (one flat dict per layer; stack layers with :func:`fnn.serial`):

==================  ==================  ==========================================
fnn key             shape               torch (``nn.LSTM(..., batch_first=True)``)
==================  ==================  ==========================================
``w_ih``            ``(D, G*H)``        ``weight_ih_l0.T``
``w_hh``            ``(H, G*H)``        ``weight_hh_l0.T``
``b_ih``            ``(G*H,)``          ``bias_ih_l0``
``b_hh``            ``(G*H,)``          ``bias_hh_l0``
``w_ih_reverse``... same                ``weight_ih_l0_reverse.T``, ... (bidirectional)
==================  ==================  ==========================================

G = 1 (RNN), 3 (GRU: gates r, z, n), 4 (LSTM: gates i, f, g, o). A stack of k torch layers is
``serial`` of k fnn layers, torch's ``_lk`` weights going to the k-th.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn import initializers
from fnn.checks import LayerError, fmt_shape
from fnn.core import Decoder, Input, Layer
from fnn.keys import split
from fnn.layers.base import layer
from fnn.layers.tokens import check_ids
from fnn.ops import recurrent as ops
from fnn.ops.embedding import projected_gather, projected_gather_backward
from fnn.validate import boolean, one_of, positive_int

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_KEYS = ("w_ih", "w_hh", "b_ih", "b_hh")


class _Tokens(NamedTuple):
    """The input of a recurrent layer fed by an embedding (:func:`embedding_recurrent`):
    ``x = table[ids]``, never built."""
    table: np.ndarray
    ids: np.ndarray
    padding_idx: int | None


def _project(cell: str, p: dict, s: str, x: Any) -> np.ndarray:
    """Every step's input projection ``x @ w_ih + b_ih`` (``+ b_hh`` but for the GRU); for
    :class:`_Tokens`, ``(table @ w_ih + b)[ids]``."""
    bias = p["b_ih" + s] if cell == "gru" else p["b_ih" + s] + p["b_hh" + s]
    if isinstance(x, _Tokens):
        return projected_gather(x.table, x.ids, p["w_ih" + s], bias)
    n, t, d = x.shape
    xw = x.reshape(n * t, d) @ p["w_ih" + s]
    xw += bias
    return xw.reshape(n, t, -1)


def _run(cell: str, nonlinearity: str, p: dict, s: str, x: np.ndarray, h0, c0, mask,
         reverse: bool) -> tuple:
    """One direction forward: ``(y (N, T, H), h_n, c_n or None, tape)``."""
    xw = _project(cell, p, s, x)
    if cell == "rnn":
        y, h, tape = ops.rnn(xw, h0, p["w_hh" + s], nonlinearity=nonlinearity, reverse=reverse,
                             mask=mask)
        return y, h, None, tape
    if cell == "gru":
        y, h, tape = ops.gru(xw, h0, p["w_hh" + s], p["b_hh" + s], reverse=reverse, mask=mask)
        return y, h, None, tape
    y, (h, c), tape = ops.lstm(xw, h0, c0, p["w_hh" + s], reverse=reverse, mask=mask)
    return y, h, c, tape


def _back(cell: str, p: dict, s: str, x: np.ndarray, tape, dy, dh, dc,
          input_grad: bool) -> tuple:
    """One direction backward: ``(grads, dx or None, dh0, dc0 or None)``."""
    dc0 = db_hh = None
    if cell == "rnn":
        dxw, dw_hh, dh0 = ops.rnn_backward(tape, dy, dh)
    elif cell == "gru":
        dxw, dw_hh, db_hh, dh0 = ops.gru_backward(tape, dy, dh)
    else:
        dxw, dw_hh, dh0, dc0 = ops.lstm_backward(tape, dy, dh, dc)
    if isinstance(x, _Tokens):  # dx: the table's gradient
        dw_ih, db_ih, dx = projected_gather_backward(x.table, x.ids, p["w_ih" + s], dxw,
                                                     x.padding_idx)
    else:
        n, t, g = dxw.shape
        flat = dxw.reshape(n * t, g)
        db_ih, dw_ih = flat.sum(axis=0), x.reshape(n * t, -1).T @ flat
        dx = (flat @ p["w_ih" + s].T).reshape(x.shape) if input_grad else None
    grads = {"w_ih" + s: dw_ih, "w_hh" + s: dw_hh, "b_ih" + s: db_ih,
             "b_hh" + s: db_hh if db_hh is not None else db_ih.copy()}
    return grads, dx, dh0, dc0


class _Options:
    """A recurrent layer's hyper-parameters and the layout of its inputs and outputs."""

    def __init__(self, cell: str, hidden: int, nonlinearity: str, return_sequences: bool,
                 bidirectional: bool, initial_state: bool, mask: bool, return_state: bool):
        self.cell, self.hidden, self.nonlinearity = cell, hidden, nonlinearity
        self.sequences, self.dirs = return_sequences, 2 if bidirectional else 1
        self.initial_state, self.mask, self.return_state = initial_state, mask, return_state
        self.states = 2 if cell == "lstm" else 1  # h (and c)
        srank = 3 if bidirectional else 2
        inputs = [Input("x", rank=3)]
        if initial_state:
            inputs += [Input("h0", rank=srank)] + ([Input("c0", rank=srank)]
                                                   if cell == "lstm" else [])
        if mask:
            inputs.append(Input("mask", "bool", rank=2))
        self.inputs = tuple(inputs)
        self.suffixes = ("", "_reverse")[:self.dirs]

    def state_shape(self, n: Any) -> tuple:
        return (n, self.dirs, self.hidden) if self.dirs == 2 else (n, self.hidden)

    def split_inputs(self, x) -> tuple:
        """``(x, h0s, c0s, mask)``: per-direction initial states (None: zeros)."""
        if len(self.inputs) == 1:
            return x, (None,) * self.dirs, (None,) * self.dirs, None
        x, rest = x[0], list(x[1:])
        mask = rest.pop() if self.mask else None
        h0s = c0s = (None,) * self.dirs
        if self.initial_state:
            h0s = self._directions(rest[0])
            if self.cell == "lstm":
                c0s = self._directions(rest[1])
        return x, h0s, c0s, mask

    def _directions(self, s: np.ndarray) -> tuple:
        return (s,) if self.dirs == 1 else (s[:, 0], s[:, 1])

    def join_states(self, states: list) -> np.ndarray:
        return states[0] if self.dirs == 1 else np.stack(states, axis=1)


def _init(o: _Options, label: str, w_init, b_init):
    """``init`` of a recurrent layer: checks the inputs' shapes agree, draws the params."""

    def init(key, shape):
        shapes = shape if len(o.inputs) > 1 else (shape,)
        n, t, d = shapes[0]
        want = [(n, t, d)] + [o.state_shape(n)] * (len(o.inputs) - 1 - o.mask) + \
            [(n, t)] * o.mask
        for spec, got, ok in zip(o.inputs, shapes, want):
            if tuple(got[1:]) != tuple(ok[1:]):
                raise LayerError(f"{label}: input {spec.name} should have shape "
                                 f"{fmt_shape((-1, *ok[1:]))}, got {fmt_shape(got)}")
        g = _GATES[o.cell] * o.hidden
        params = {}
        for s, k in zip(o.suffixes, split(key, o.dirs)):
            kw, kh, kb, kc = split(k, 4)
            params.update({"w_ih" + s: w_init(kw, (d, g)), "w_hh" + s: w_init(kh, (o.hidden, g)),
                           "b_ih" + s: b_init(kb, (g,)), "b_hh" + s: b_init(kc, (g,))})
        width = o.dirs * o.hidden
        out: Any = (n, t, width) if o.sequences else (n, width)
        if o.return_state:
            out = (out,) + (o.state_shape(n),) * o.states
        return out, params

    return init


def _forward(o: _Options):
    def forward(params, inputs):
        x, h0s, c0s, mask = o.split_inputs(inputs)
        runs = [_run(o.cell, o.nonlinearity, params, s, x, h0, c0, mask, reverse=bool(r))
                for r, (s, h0, c0) in enumerate(zip(o.suffixes, h0s, c0s))]
        if o.sequences:
            y = runs[0][0] if o.dirs == 1 else np.concatenate([r[0] for r in runs], axis=-1)
        else:
            y = runs[0][1] if o.dirs == 1 else np.concatenate([r[1] for r in runs], axis=-1)
        if o.return_state:
            y = (y, o.join_states([r[1] for r in runs])) + \
                ((o.join_states([r[2] for r in runs]),) if o.cell == "lstm" else ())
        return y, (x, [r[3] for r in runs])

    return forward


def _backward(o: _Options):
    def backward(params, saved, dy, input_grad):
        x, tapes = saved
        dstates: list = [None, None]
        if o.return_state:
            dy, dstates = dy[0], list(dy[1:]) + [None]
        h = o.hidden
        grads, dx, dh0s, dc0s = {}, None, [], []
        for r, (s, tape) in enumerate(zip(o.suffixes, tapes)):
            part = None if dy is None else dy[..., r * h:(r + 1) * h]
            seq, dh = (part, None) if o.sequences else (None, part)
            dh = _plus(dh, _direction(dstates[0], r, o.dirs))
            dc = _direction(dstates[1], r, o.dirs)
            g, dxr, dh0, dc0 = _back(o.cell, params, s, x, tape, seq, dh, dc, input_grad)
            grads.update(g)
            dx = dxr if dx is None else dx + dxr
            dh0s.append(dh0)
            dc0s.append(dc0)
        if not input_grad:
            return grads, None
        if len(o.inputs) == 1:
            return grads, dx
        extra = [o.join_states(dh0s)] if o.initial_state else []
        if o.initial_state and o.cell == "lstm":
            extra.append(o.join_states(dc0s))
        return grads, (dx, *extra, *([None] if o.mask else []))

    return backward


def _plus(a, b):
    return b if a is None else a if b is None else a + b


def _direction(state, r: int, dirs: int):
    return None if state is None else state if dirs == 1 else state[:, r]


def _decoder(o: _Options) -> Decoder | None:
    """One step at a time (generation), for a one-way layer fed ``x`` alone whose output is
    every step's: the carry is ``h`` (LSTM: ``(h, c)``)."""
    if o.dirs != 1 or len(o.inputs) != 1 or not o.sequences or o.return_state:
        return None

    def start(params, n, dtype):
        zeros = np.zeros((n, o.hidden), dtype)
        return (zeros, zeros) if o.cell == "lstm" else zeros

    def step(params, x_t, carry):
        xw = _project(o.cell, params, "", x_t)[:, 0]
        if o.cell == "lstm":
            carry = ops.lstm_step(xw, carry[0], carry[1], params["w_hh"])
            return carry[0][:, None], carry
        if o.cell == "gru":
            h = ops.gru_step(xw, carry, params["w_hh"], params["b_hh"])
        else:
            h = ops.rnn_step(xw, carry, params["w_hh"], nonlinearity=o.nonlinearity)
        return h[:, None], h

    return Decoder(start, step)


def _recurrent(cell: str, hidden: int, nonlinearity: str, return_sequences: bool,
               bidirectional: bool, initial_state: bool, mask: bool, return_state: bool,
               w_init, b_init) -> Layer:
    hidden = positive_int(cell, "hidden", hidden)
    flags = {"return_sequences": return_sequences, "bidirectional": bidirectional,
             "initial_state": initial_state, "mask": mask, "return_state": return_state}
    for name, value in flags.items():
        boolean(cell, name, value)
    shown = [f"{k}={v}" for k, v in flags.items() if v != (k == "return_sequences")]
    if cell == "rnn" and nonlinearity != "tanh":
        shown.insert(0, f"nonlinearity={nonlinearity!r}")
    label = f"{cell}({', '.join([str(hidden), *shown])})"
    o = _Options(cell, hidden, nonlinearity, return_sequences, bidirectional, initial_state,
                 mask, return_state)
    bound = 1.0 / math.sqrt(hidden)  # torch's U(-1/sqrt(H), 1/sqrt(H)) for every param
    w_draw = initializers.get(w_init) if w_init is not None else initializers.uniform(bound)
    b_draw = initializers.get(b_init) if b_init is not None else initializers.uniform(bound)
    config = {"hidden": hidden, "nonlinearity": nonlinearity, **flags}
    return layer(label, _init(o, label, w_draw, b_draw), _forward(o), _backward(o),
                 kind=cell, config=config, inputs=o.inputs, decode=_decoder(o), name=cell)


def rnn(hidden: int, nonlinearity: str = "tanh", *, return_sequences: bool = True,
        bidirectional: bool = False, initial_state: bool = False, mask: bool = False,
        return_state: bool = False, w_init=None, b_init=None) -> Layer:
    """Elman RNN ``h_t = act(x_t @ w_ih + b_ih + h_{t-1} @ w_hh + b_hh)`` (``torch.nn.RNN``),
    ``act`` = ``"tanh"`` | ``"relu"``: ``(N, T, D) -> (N, T, H)`` (every step), or ``(N, H)``
    (the final state) with ``return_sequences=False``.

    Options (shared by :func:`gru` and :func:`lstm`): ``bidirectional`` runs a second
    recurrence right to left and concatenates (``(N, T, 2H)``, torch's layout; the final
    state is ``[h_n forward, h_n reverse]``); ``initial_state``: the input is ``(x, h0)``
    (LSTM ``(x, h0, c0)``), ``h0 (N, H)`` (bidirectional ``(N, 2, H)``); ``mask``: a last
    input ``mask (N, T)`` bool, True for real steps (where False the state is carried and the
    output is 0, as torch's packed sequences); ``return_state``: the output is
    ``(y, h_n)`` (LSTM ``(y, h_n, c_n)``). Params: the module doc's table. Init: torch's
    ``U(-1/sqrt(H), 1/sqrt(H))``.

    >>> import numpy as np, fnn
    >>> layer = fnn.rnn(8)
    >>> shape, params = layer.init(fnn.key(0), (-1, 5, 3))
    >>> shape, params["w_ih"].shape, params["w_hh"].shape
    ((-1, 5, 8), (3, 8), (8, 8))
    """
    one_of("rnn", "nonlinearity", nonlinearity, ("tanh", "relu"))
    return _recurrent("rnn", hidden, nonlinearity, return_sequences, bidirectional,
                      initial_state, mask, return_state, w_init, b_init)


def gru(hidden: int, *, return_sequences: bool = True, bidirectional: bool = False,
        initial_state: bool = False, mask: bool = False, return_state: bool = False,
        w_init=None, b_init=None) -> Layer:
    """GRU (``torch.nn.GRU``, gates r, z, n): ``r = s(x W_ir + b_ir + h W_hr + b_hr)``,
    ``z = s(x W_iz + b_iz + h W_hz + b_hz)``, ``n = tanh(x W_in + b_in + r (h W_hn + b_hn))``,
    ``h' = (1 - z) n + z h``; ``(N, T, D) -> (N, T, H)``; options as :func:`rnn`.

    >>> import numpy as np, fnn
    >>> layer = fnn.gru(4, return_sequences=False, bidirectional=True)
    >>> shape, params = layer.init(fnn.key(0), (-1, 5, 3))
    >>> shape, params["w_hh_reverse"].shape
    ((-1, 8), (4, 12))
    """
    return _recurrent("gru", hidden, "tanh", return_sequences, bidirectional, initial_state,
                      mask, return_state, w_init, b_init)


def lstm(hidden: int, *, return_sequences: bool = True, bidirectional: bool = False,
         initial_state: bool = False, mask: bool = False, return_state: bool = False,
         w_init=None, b_init=None) -> Layer:
    """LSTM (``torch.nn.LSTM``, gates i, f, g, o): ``c' = f c + i g``, ``h' = o tanh(c')``;
    ``(N, T, D) -> (N, T, H)``; options as :func:`rnn` (initial state ``(x, h0, c0)``).

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.lstm(8), fnn.lstm(8, return_sequences=False))
    >>> shape, params = model.init(fnn.key(0), (-1, 5, 3))
    >>> shape, params["00_lstm"]["w_ih"].shape, model.apply(params, np.ones((2, 5, 3))).shape
    ((-1, 8), (3, 32), (2, 8))
    """
    return _recurrent("lstm", hidden, "tanh", return_sequences, bidirectional, initial_state,
                      mask, return_state, w_init, b_init)


def _token_input(o: _Options, emb: Layer, pa: Any, pb: Any, ids: Any) -> _Tokens | None:
    """``ids`` and the table as :class:`_Tokens` when the pair's short way takes them (an
    ``(N, T)`` integer array of more than twice as many ids as table rows; params of the
    layers' keys, shapes and one float dtype; ids in range), else None."""
    vocab, dim = emb.config["vocab_size"], emb.config["dim"]
    if not (type(ids) is np.ndarray and ids.ndim == 2 and ids.dtype.kind in "iu"
            and 2 * vocab <= ids.size and type(pa) is dict and type(pb) is dict
            and len(pa) == 1 and len(pb) == 4 * o.dirs):
        return None
    table = pa.get("table")
    if type(table) is not np.ndarray or table.shape != (vocab, dim) or table.dtype.kind != "f":
        return None
    g = _GATES[o.cell] * o.hidden
    shapes = {"w_ih": (dim, g), "w_hh": (o.hidden, g), "b_ih": (g,), "b_hh": (g,)}
    for s in o.suffixes:
        for k, shape in shapes.items():
            v = pb.get(k + s)
            if type(v) is not np.ndarray or v.shape != shape or v.dtype != table.dtype:
                return None
    check_ids(emb.label or emb.name, ids, vocab)
    return _Tokens(table, ids, emb.config["padding_idx"])


def embedding_step(emb: Layer, rnn_layer: Layer) -> tuple[Callable, Callable] | None:
    """An ``embedding`` then an ``rnn``/``gru``/``lstm`` fed ``x`` alone, as one step: the
    input projection ``table[ids] @ w_ih`` runs as ``(table @ w_ih)[ids]`` and its gradients
    from the ``dxw`` rows summed per id (:func:`fnn.ops.embedding.projected_gather`): three
    ``(N*T, D) x (D, G*H)`` products become ``(V, D) x (D, G*H)`` ones, the same sums grouped
    by id. Used when there are more than twice as many ids as table rows; otherwise (and for
    anything the layers would refuse) the two layers run as they are. ``(apply, vjp)`` of a
    :class:`fnn.layers.fusion.Fused` pair, or None when the recurrent layer takes more than
    ``x``.

    >>> import numpy as np, fnn
    >>> from fnn.layers.recurrent import embedding_step
    >>> apply, vjp = embedding_step(fnn.embedding(3, 4), fnn.lstm(5))
    >>> _, params = fnn.serial(fnn.embedding(3, 4), fnn.lstm(5)).init(fnn.key(0), (-1, 8))
    >>> ids = np.zeros((2, 8), int)
    >>> y, pullback = vjp(params["00_embedding"], params["01_lstm"], ids, False)
    >>> d_embedding, d_lstm, dx = pullback(np.ones_like(y))
    >>> y.shape, d_embedding["table"].shape, d_lstm["w_ih"].shape, dx
    ((2, 8, 5), (3, 4), (4, 20), None)
    """
    c = rnn_layer.config
    if rnn_layer.kind not in _GATES or c["initial_state"] or c["mask"]:
        return None
    o = _Options(rnn_layer.kind, c["hidden"], c["nonlinearity"], c["return_sequences"],
                 c["bidirectional"], False, False, c["return_state"])
    forward, backward = _forward(o), _backward(o)

    def apply(pa, pb, ids):
        tokens = _token_input(o, emb, pa, pb, ids)
        if tokens is None:
            return rnn_layer.apply(pb, emb.apply(pa, ids))
        return forward(pb, tokens)[0]

    def vjp(pa, pb, ids, input_grad=True):
        tokens = _token_input(o, emb, pa, pb, ids)
        if tokens is None:  # the two layers, as they are
            x, back_a = emb.vjp(pa, ids, input_grad=input_grad)
            y, back_b = rnn_layer.vjp(pb, x)

            def pullback_pair(dy):
                grads_b, dx = back_b(dy)
                grads_a, dids = back_a(dx)
                return grads_a, grads_b, dids

            return y, pullback_pair
        y, saved = forward(pb, tokens)

        def pullback(dy):
            grads_b, dtable = backward(pb, saved, dy, True)
            return {"table": dtable}, grads_b, None

        return y, pullback

    return apply, vjp


__all__ = ["embedding_step", "gru", "lstm", "rnn"]
