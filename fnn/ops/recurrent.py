"""Recurrences of ``torch.nn.RNN`` (tanh, relu), ``GRU`` and ``LSTM``, forward and backward
through time, on precomputed input projections.

Layout (channels-last, as fnn keeps weights): ``x (N, T, D)``, ``w_ih (D, G*H)``,
``w_hh (H, G*H)``, ``b_ih, b_hh (G*H,)``, gates in PyTorch's order (LSTM ``i, f, g, o``; GRU
``r, z, n``; G = 4, 3, 1), so torch's ``weight_ih_l0`` is ``w_ih.T`` and ``weight_hh_l0`` is
``w_hh.T``. The layer computes every step's input projection in one matmul,
``xw = x @ w_ih + b_ih (+ b_hh for RNN and LSTM, which only ever add it)``, and these functions
run the recurrence on ``xw (N, T, G*H)``:

* RNN:  ``h_t = act(xw_t + h_{t-1} @ w_hh)``, act = tanh or relu;
* LSTM: ``i, f, g, o = s(.), s(.), tanh(.), s(.)`` of ``xw_t + h_{t-1} @ w_hh``
  (s = sigmoid), ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``;
* GRU:  ``r = s(xw_r + h @ W_hr + b_hr)``, ``z = s(xw_z + h @ W_hz + b_hz)``,
  ``n = tanh(xw_n + r * (h @ W_hn + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``
  (here ``xw = x @ w_ih + b_ih`` only: ``b_hh`` is an argument, its gradient an output).

Each step is one BLAS matmul ``h @ w_hh`` into a preallocated buffer plus one fused
element-wise kernel (:mod:`fnn.ops.sequence_kernels` on the compiled backend, the numpy
reference in :mod:`fnn.ops.recurrent_steps` otherwise); the backward's ``dw_hh`` is one matmul
over all steps after the loop. ``reverse=True`` runs right to left (the backward half of a
bidirectional layer). ``mask (N, T)`` bool marks real steps: where it is False the state
(h and c) is carried through unchanged, the output is 0, and the backward passes the state's
gradient through (so right-padded sequences end with the state of their last real step, and
reversed ones start at it, as PyTorch's packed sequences). Computation runs in ``xw``'s
dtype; outputs are new arrays, inputs are never written.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.ops import _backend
from fnn.ops import recurrent_steps as _reference

__all__ = ["Tape", "gru", "gru_backward", "gru_step", "lstm", "lstm_backward", "lstm_step",
           "rnn", "rnn_backward", "rnn_step"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
_NO_MASK = np.ones((0, 0), dtype=bool)


class Tape(NamedTuple):
    """What a forward pass keeps for its backward pass; arrays are ``(N, T, ...)`` in the
    input's time order (also when ``reverse``), the same on both backends.

    >>> import numpy as np
    >>> from fnn.ops.recurrent import lstm
    >>> _, _, tape = lstm(np.zeros((2, 5, 12)), None, None, np.zeros((3, 12)))
    >>> tape.cell, tape.acts.shape, tape.hs.shape
    ('lstm', (2, 5, 4, 3), (2, 5, 3))
    """
    cell: str                   # "rnn_tanh" | "rnn_relu" | "gru" | "lstm"
    w_hh: np.ndarray            # (H, G*H)
    reverse: bool
    mask: np.ndarray            # (N, T) bool, or (0, 0): no mask
    hs: np.ndarray              # (N, T, H): the hidden state entering each step
    acts: np.ndarray            # (N, T, G, H): gates after their activation (RNN: outputs)
    aux: np.ndarray | None      # LSTM: tanh(c_t); GRU: h @ W_hn + b_hn; RNN: None
    cs: np.ndarray | None       # LSTM: the cell state entering each step


def _kernels(dtype: np.dtype) -> Any:
    """The step kernels: numba's on the compiled backend (float32/float64), else numpy's."""
    if _backend.compiled() and dtype in _FLOATS:
        from fnn.ops import sequence_kernels

        return sequence_kernels
    return _reference


def _setup(xw: np.ndarray, w_hh: np.ndarray, cell: str,
           mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``xw`` as a C-contiguous ``(N, T, G, H)`` array, ``w_hh`` in its dtype, the mask."""
    gates, size = _GATES[cell], w_hh.shape[0]
    if xw.ndim != 3 or xw.shape[2] != gates * size or w_hh.shape != (size, gates * size):
        raise ValueError(f"{cell}: xw must be (N, T, {gates}*H) and w_hh (H, {gates}*H), "
                         f"got {xw.shape} and {w_hh.shape}")
    n, steps = xw.shape[:2]
    dtype = xw.dtype if xw.dtype.kind == "f" else np.dtype(np.float64)
    xw4 = np.ascontiguousarray(xw, dtype=dtype).reshape(n, steps, gates, size)
    if mask is None:
        return xw4, np.asarray(w_hh, dtype=dtype), _NO_MASK
    m = np.ascontiguousarray(mask, dtype=bool)
    if m.shape != (n, steps):
        raise ValueError(f"{cell}: mask must be (N, T) = {(n, steps)}, got {m.shape}")
    return xw4, np.asarray(w_hh, dtype=dtype), m


def _state(s: np.ndarray | None, n: int, size: int, dtype: np.dtype) -> np.ndarray:
    """A fresh C-contiguous ``(N, H)`` copy of a state (zeros for None): updated in place."""
    if s is None:
        return np.zeros((n, size), dtype)
    out = np.array(s, dtype=dtype, order="C", copy=True)
    if out.shape != (n, size):
        raise ValueError(f"a state must be (N, H) = {(n, size)}, got {out.shape}")
    return out


def _order(steps: int, reverse: bool, backward: bool = False) -> range:
    """Time steps in the order the forward (or backward) pass visits them."""
    forward = range(steps - 1, -1, -1) if reverse else range(steps)
    return forward[::-1] if backward else forward


def _run(cell: str, xw: np.ndarray, h0: np.ndarray | None, c0: np.ndarray | None,
         w_hh: np.ndarray, b_hh: np.ndarray | None, reverse: bool,
         mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Tape]:
    """The forward loop shared by the three cells: ``(y, h_n, c_n, tape)``."""
    xw4, w, m = _setup(xw, w_hh, cell, mask)
    n, steps, gates, size = xw4.shape
    dtype = xw4.dtype
    k = _kernels(dtype)
    h = _state(h0, n, size, dtype)
    hh = np.empty((n, gates * size), dtype)
    hh3 = hh.reshape(n, gates, size)
    y, hs = np.empty((n, steps, size), dtype), np.empty((n, steps, size), dtype)
    acts = y.reshape(n, steps, 1, size) if gates == 1 else np.empty_like(xw4)
    aux = cs = c = None
    if cell == "lstm":
        c = _state(c0, n, size, dtype)
        aux, cs = np.empty_like(y), np.empty_like(y)
    elif cell == "gru":
        aux = np.empty_like(y)
        bias = np.ascontiguousarray(b_hh, dtype=dtype).reshape(gates, size)
    relu = cell == "rnn_relu"
    for t in _order(steps, reverse):
        np.matmul(h, w, out=hh)
        if cell == "lstm":
            k.lstm_forward_step(xw4, hh3, t, m, h, c, hs, cs, acts, aux, y)
        elif cell == "gru":
            k.gru_forward_step(xw4, hh3, bias, t, m, h, hs, acts, aux, y)
        else:
            k.rnn_forward_step(xw4, hh3, t, relu, m, h, hs, y)
    tape = Tape(cell, w, reverse, m, hs, acts, aux, cs)
    return y, h, (c if c is not None else h), tape


def _back(tape: Tape, dy: np.ndarray | None, dh_n: np.ndarray | None,
          dc_n: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                            np.ndarray, np.ndarray | None]:
    """The backward loop shared by the three cells: ``(dxw, dw_hh, db_hh, dh0, dc0)``."""
    cell, w, m, hs, acts = tape.cell, tape.w_hh, tape.mask, tape.hs, tape.acts
    n, steps, size = hs.shape
    gates = _GATES[cell]
    dtype = hs.dtype
    k = _kernels(dtype)
    g = np.zeros((0, 0, 0), dtype) if dy is None else np.ascontiguousarray(dy, dtype=dtype)
    if dy is not None and g.shape != hs.shape:
        raise ValueError(f"{cell}: dy must be (N, T, H) = {hs.shape}, got {g.shape}")
    ghm, ghd = np.zeros((n, size), dtype), _state(dh_n, n, size, dtype)
    dxw = np.empty((n, steps, gates, size), dtype)
    dhh = np.empty_like(dxw) if cell == "gru" else dxw  # gradient of h @ w_hh (+ b_hh)
    dhh_flat = dhh.reshape(n, steps, gates * size)
    wt = np.ascontiguousarray(w.T)  # BLAS runs faster on it than on the transposed view
    relu = cell == "rnn_relu"
    gc = _state(dc_n, n, size, dtype) if cell == "lstm" else None
    for t in _order(steps, tape.reverse, backward=True):
        if cell == "lstm":
            k.lstm_backward_step(g, t, m, acts, tape.cs, tape.aux, ghm, ghd, gc, dxw)
        elif cell == "gru":
            k.gru_backward_step(g, t, m, hs, acts, tape.aux, ghm, ghd, dxw, dhh)
        else:
            k.rnn_backward_step(g, t, relu, m, acts.reshape(n, steps, size), ghm, ghd, dxw)
        np.matmul(dhh_flat[:, t], wt, out=ghm)
    flat = dhh_flat.reshape(n * steps, gates * size)
    dw_hh = hs.reshape(n * steps, size).T @ flat
    db_hh = flat.sum(axis=0) if cell == "gru" else None
    return dxw.reshape(n, steps, gates * size), dw_hh, db_hh, ghm + ghd, gc


# --- the public functions ------------------------------------------------------------------------

def rnn(xw: np.ndarray, h0: np.ndarray | None, w_hh: np.ndarray, *,
        nonlinearity: str = "tanh", reverse: bool = False,
        mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Tape]:
    """Elman RNN ``h_t = act(xw_t + h_{t-1} @ w_hh)`` over ``xw (N, T, H)`` from ``h0 (N, H)``
    (None: zeros), ``act`` = ``"tanh"`` | ``"relu"``. Returns ``y (N, T, H)``, the final
    state ``h_n (N, H)`` and the tape for :func:`rnn_backward`.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> xw = np.ones((2, 3, 4)); w_hh = np.zeros((4, 4))
    >>> y, h_n, tape = recurrent.rnn(xw, None, w_hh, nonlinearity="relu")
    >>> y.shape, h_n.tolist()
    ((2, 3, 4), [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    y, h, _, tape = _run(f"rnn_{nonlinearity}", xw, h0, None, w_hh, None, reverse, mask)
    return y, h, tape


def rnn_backward(tape: Tape, dy: np.ndarray | None,
                 dh_n: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`rnn` from ``dy (N, T, H)`` and ``dh_n (N, H)`` (None: zeros):
    ``(dxw (N, T, H), dw_hh (H, H), dh0 (N, H))``.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> y, h_n, tape = recurrent.rnn(np.zeros((1, 2, 3)), None, np.eye(3))
    >>> dxw, dw_hh, dh0 = recurrent.rnn_backward(tape, None, np.ones((1, 3)))
    >>> dxw[0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    dxw, dw_hh, _, dh0, _ = _back(tape, dy, dh_n, None)
    return dxw, dw_hh, dh0


def gru(xw: np.ndarray, h0: np.ndarray | None, w_hh: np.ndarray, b_hh: np.ndarray, *,
        reverse: bool = False,
        mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Tape]:
    """GRU over ``xw = x @ w_ih + b_ih`` ``(N, T, 3H)`` (gates r, z, n) from ``h0 (N, H)``
    (None: zeros), ``w_hh (H, 3H)``, ``b_hh (3H,)``: ``r = s(xw_r + h @ W_hr + b_hr)``,
    ``z = s(xw_z + h @ W_hz + b_hz)``, ``n = tanh(xw_n + r * (h @ W_hn + b_hn))``,
    ``h' = (1 - z) * n + z * h``. Returns ``y (N, T, H)``, ``h_n (N, H)``, the tape.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> xw = np.zeros((2, 3, 6)); xw[..., 2:4] = -50.0       # z = 0: h' = n
    >>> y, h_n, tape = recurrent.gru(xw, None, np.zeros((2, 6)), np.zeros(6))
    >>> y.shape, h_n.tolist()
    ((2, 3, 2), [[0.0, 0.0], [0.0, 0.0]])
    """
    y, h, _, tape = _run("gru", xw, h0, None, w_hh, b_hh, reverse, mask)
    return y, h, tape


def gru_backward(tape: Tape, dy: np.ndarray | None, dh_n: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`gru`: ``(dxw (N, T, 3H), dw_hh (H, 3H), db_hh (3H,), dh0 (N, H))``.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> y, h_n, tape = recurrent.gru(np.zeros((1, 4, 3)), None, np.zeros((1, 3)), np.zeros(3))
    >>> dxw, dw_hh, db_hh, dh0 = recurrent.gru_backward(tape, np.ones((1, 4, 1)))
    >>> dxw.shape, dw_hh.shape, db_hh.shape, dh0.shape
    ((1, 4, 3), (1, 3), (3,), (1, 1))
    """
    dxw, dw_hh, db_hh, dh0, _ = _back(tape, dy, dh_n, None)
    assert db_hh is not None
    return dxw, dw_hh, db_hh, dh0


def lstm(xw: np.ndarray, h0: np.ndarray | None, c0: np.ndarray | None, w_hh: np.ndarray, *,
         reverse: bool = False, mask: np.ndarray | None = None
         ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], Tape]:
    """LSTM over ``xw (N, T, 4H)`` (gates i, f, g, o) from ``h0, c0 (N, H)`` (None: zeros):
    ``i, f, g, o = s(.), s(.), tanh(.), s(.)`` of ``xw_t + h_{t-1} @ w_hh``,
    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. Returns ``y (N, T, H)``,
    ``(h_n, c_n)`` and the tape for :func:`lstm_backward`.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> rng = np.random.default_rng(0)
    >>> xw, w_hh = rng.normal(size=(2, 5, 12)), 0.1 * rng.normal(size=(3, 12))
    >>> y, (h_n, c_n), tape = recurrent.lstm(xw, None, None, w_hh)
    >>> y.shape, c_n.shape, bool(np.array_equal(y[:, -1], h_n))
    ((2, 5, 3), (2, 3), True)
    """
    y, h, c, tape = _run("lstm", xw, h0, c0, w_hh, None, reverse, mask)
    return y, (h, c), tape


def lstm_backward(tape: Tape, dy: np.ndarray | None, dh_n: np.ndarray | None = None,
                  dc_n: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`lstm` from ``dy (N, T, H)``, ``dh_n, dc_n (N, H)`` (None: zeros):
    ``(dxw (N, T, 4H), dw_hh (H, 4H), dh0 (N, H), dc0 (N, H))``.

    >>> import numpy as np
    >>> from fnn.ops import recurrent
    >>> rng = np.random.default_rng(0)
    >>> y, _, tape = recurrent.lstm(rng.normal(size=(2, 5, 12)), None, None, np.zeros((3, 12)))
    >>> dxw, dw_hh, dh0, dc0 = recurrent.lstm_backward(tape, np.ones_like(y))
    >>> dxw.shape, dw_hh.shape, dc0.shape
    ((2, 5, 12), (3, 12), (2, 3))
    """
    dxw, dw_hh, _, dh0, dc0 = _back(tape, dy, dh_n, dc_n)
    assert dc0 is not None
    return dxw, dw_hh, dh0, dc0


def rnn_step(xw_t: np.ndarray, h: np.ndarray, w_hh: np.ndarray, *,
             nonlinearity: str = "tanh") -> np.ndarray:
    """One step of :func:`rnn` (generation with a carried state): ``xw_t (N, H)``,
    ``h (N, H)`` -> the next ``h``.

    >>> import numpy as np
    >>> from fnn.ops.recurrent import rnn_step
    >>> rnn_step(np.zeros((1, 2)), np.ones((1, 2)), np.eye(2), nonlinearity="relu")
    array([[1., 1.]])
    """
    return rnn(xw_t[:, None], h, w_hh, nonlinearity=nonlinearity)[1]


def gru_step(xw_t: np.ndarray, h: np.ndarray, w_hh: np.ndarray,
             b_hh: np.ndarray) -> np.ndarray:
    """One step of :func:`gru`: ``xw_t (N, 3H)``, ``h (N, H)`` -> the next ``h``.

    >>> import numpy as np
    >>> from fnn.ops.recurrent import gru_step
    >>> xw_t = np.array([[0.0, 50.0, 0.0]])                  # z = 1: h is kept
    >>> gru_step(xw_t, np.array([[0.5]]), np.zeros((1, 3)), np.zeros(3))
    array([[0.5]])
    """
    return gru(xw_t[:, None], h, w_hh, b_hh)[1]


def lstm_step(xw_t: np.ndarray, h: np.ndarray, c: np.ndarray,
              w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step of :func:`lstm`: ``xw_t (N, 4H)``, ``h, c (N, H)`` -> the next ``(h, c)``.

    >>> import numpy as np
    >>> from fnn.ops.recurrent import lstm_step
    >>> xw_t = np.array([[-50.0, 50.0, 0.0, 50.0]])          # i = 0, f = 1: c is kept
    >>> h, c = lstm_step(xw_t, np.zeros((1, 1)), np.ones((1, 1)), np.zeros((1, 4)))
    >>> c, bool(np.isclose(h, np.tanh(1.0)))
    (array([[1.]]), True)
    """
    return lstm(xw_t[:, None], h, c, w_hh)[1]
