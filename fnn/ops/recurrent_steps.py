"""The numpy reference of one recurrence step's element-wise work (:mod:`fnn.ops.recurrent`
runs the loop and the matmuls). Same signatures, same arithmetic in the same order as the
numba kernels of :mod:`fnn.ops.sequence_kernels`, whose docstrings give the equations; the
arrays are described there. Outputs are written into the preallocated arrays given.
"""

from __future__ import annotations

import numpy as np


def _sigmoid_(a: np.ndarray) -> None:
    """``a[...] = 1 / (1 + exp(-a))`` in place (``exp`` may overflow to inf: the limit 0 is
    exact)."""
    with np.errstate(over="ignore"):
        np.negative(a, out=a)
        np.exp(a, out=a)
        a += 1
        np.reciprocal(a, out=a)


def _carry(mask: np.ndarray, t: int) -> np.ndarray | None:
    """``(N, 1)`` True where step ``t`` is real, None without a mask."""
    return mask[:, t, None] if mask.shape[0] else None


def _pass_through(keep: np.ndarray | None, ghm: np.ndarray, ghd: np.ndarray,
                  direct: np.ndarray | float) -> None:
    """``ghd = direct`` on real steps, ``ghd + ghm`` (the state carried) on masked ones."""
    if keep is None:
        ghd[...] = direct
    else:
        ghd[...] = np.where(keep, direct, ghd + ghm)


def _emit(keep: np.ndarray | None, t: int, acts: np.ndarray | None,
          outputs: tuple[tuple[np.ndarray, np.ndarray], ...],
          states: tuple[tuple[np.ndarray, np.ndarray], ...]) -> None:
    """Store step ``t``: each ``(out, value)`` of ``outputs`` as ``out[:, t] = value`` and each
    ``(state, value)`` of ``states`` as ``state[...] = value``. On masked rows (``keep``
    False) the outputs and the step's gate activations ``acts`` are 0 and the states carry
    their old values."""
    if keep is None:
        for out, value in outputs:
            out[:, t] = value
        for state, value in states:
            state[...] = value
        return
    if acts is not None:
        acts[~keep[:, 0]] = 0
    for out, value in outputs:
        out[:, t] = np.where(keep, value, 0)
    for state, value in states:
        state[...] = np.where(keep, value, state)


def rnn_forward_step(xw: np.ndarray, hh: np.ndarray, t: int, relu: bool, mask: np.ndarray,
                     h: np.ndarray, hs: np.ndarray, y: np.ndarray) -> None:
    hs[:, t] = h
    a = xw[:, t, 0] + hh[:, 0]
    v = np.maximum(a, 0) if relu else np.tanh(a)
    _emit(_carry(mask, t), t, None, ((y, v),), ((h, v),))


def rnn_backward_step(dy: np.ndarray, t: int, relu: bool, mask: np.ndarray, y: np.ndarray,
                      ghm: np.ndarray, ghd: np.ndarray, dxw: np.ndarray) -> None:
    dh = (dy[:, t] + ghm if dy.shape[0] else ghm) + ghd
    v = y[:, t]
    d = np.where(v > 0, dh, 0) if relu else dh * (1 - v * v)
    keep = _carry(mask, t)
    dxw[:, t, 0] = d if keep is None else np.where(keep, d, 0)
    _pass_through(keep, ghm, ghd, 0)


def lstm_forward_step(xw: np.ndarray, hh: np.ndarray, t: int, mask: np.ndarray,
                      h: np.ndarray, c: np.ndarray, hs: np.ndarray, cs: np.ndarray,
                      acts: np.ndarray, tcs: np.ndarray, y: np.ndarray) -> None:
    hs[:, t], cs[:, t] = h, c
    a = acts[:, t]
    np.add(xw[:, t], hh, out=a)
    _sigmoid_(a[:, 0:2])
    np.tanh(a[:, 2], out=a[:, 2])
    _sigmoid_(a[:, 3])
    cn = a[:, 1] * c + a[:, 0] * a[:, 2]
    tc = np.tanh(cn)
    hn = a[:, 3] * tc
    _emit(_carry(mask, t), t, a, ((tcs, tc), (y, hn)), ((c, cn), (h, hn)))


def lstm_backward_step(dy: np.ndarray, t: int, mask: np.ndarray, acts: np.ndarray,
                       cs: np.ndarray, tcs: np.ndarray, ghm: np.ndarray, ghd: np.ndarray,
                       gc: np.ndarray, dxw: np.ndarray) -> None:
    dh = (dy[:, t] + ghm if dy.shape[0] else ghm) + ghd
    i, f, g, o = (acts[:, t, k] for k in range(4))
    tc = tcs[:, t]
    dc = gc + dh * o * (1 - tc * tc)
    d = dxw[:, t]
    d[:, 0] = dc * g * i * (1 - i)
    d[:, 1] = dc * cs[:, t] * f * (1 - f)
    d[:, 2] = dc * i * (1 - g * g)
    d[:, 3] = dh * tc * o * (1 - o)
    keep = _carry(mask, t)
    if keep is None:
        gc[...] = dc * f
    else:
        d[~keep[:, 0]] = 0
        gc[...] = np.where(keep, dc * f, gc)
    _pass_through(keep, ghm, ghd, 0)


def gru_forward_step(xw: np.ndarray, hh: np.ndarray, b_hh: np.ndarray, t: int,
                     mask: np.ndarray, h: np.ndarray, hs: np.ndarray, acts: np.ndarray,
                     hn: np.ndarray, y: np.ndarray) -> None:
    hs[:, t] = h
    a = acts[:, t]
    np.add(xw[:, t, 0:2], hh[:, 0:2] + b_hh[0:2], out=a[:, 0:2])
    _sigmoid_(a[:, 0:2])
    hb = hh[:, 2] + b_hh[2]
    a[:, 2] = np.tanh(xw[:, t, 2] + a[:, 0] * hb)
    z, n = a[:, 1], a[:, 2]
    hnew = (1 - z) * n + z * h
    _emit(_carry(mask, t), t, a, ((hn, hb), (y, hnew)), ((h, hnew),))


def gru_backward_step(dy: np.ndarray, t: int, mask: np.ndarray, hs: np.ndarray,
                      acts: np.ndarray, hn: np.ndarray, ghm: np.ndarray, ghd: np.ndarray,
                      dxw: np.ndarray, dhh: np.ndarray) -> None:
    dh = (dy[:, t] + ghm if dy.shape[0] else ghm) + ghd
    r, z, n = (acts[:, t, k] for k in range(3))
    dn = dh * (1 - z) * (1 - n * n)
    dz = dh * (hs[:, t] - n) * z * (1 - z)
    dr = dn * hn[:, t] * r * (1 - r)
    d, e = dxw[:, t], dhh[:, t]
    d[:, 0], d[:, 1], d[:, 2] = dr, dz, dn
    e[:, 0], e[:, 1], e[:, 2] = dr, dz, dn * r
    keep = _carry(mask, t)
    if keep is not None:
        d[~keep[:, 0]] = 0
        e[~keep[:, 0]] = 0
    _pass_through(keep, ghm, ghd, dh * z)
