"""Your own recurrent cell run over time: :func:`scan`.

A cell is any :class:`fnn.Layer` mapping one step ``(x_t (N, D), h (N, H)) -> (y_t (N, Y),
h' (N, H))`` (a tuple in, a tuple out: write it with :func:`fnn.layer` and
``inputs=(Input("x"), Input("h"))``, or compose it). :func:`scan` runs it over ``(N, T, D)``
with the same params at every step, its backward pass being backpropagation through time
built from the cell's own ``vjp``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn.checks import LayerError, fmt_shape
from fnn.core import Decoder, Layer
from fnn.tree import tree_map
from fnn.validate import positive_int


def _check(label: str, x: Any) -> np.ndarray:
    if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim != 3:
        x = np.asarray(x)
        if x.dtype.kind != "f" or x.ndim != 3:
            raise LayerError(f"{label}: expects a float array (N, T, D), got {x.dtype} "
                             f"{x.shape}")
    return x


def _add(a, b):
    return b if a is None else tree_map(np.add, a, b)


def scan(cell: Layer, state_size: int) -> Layer:
    """Run ``cell`` — ``(x_t, h) -> (y_t, h')`` on ``(N, D)``, ``(N, state_size)`` — over
    ``(N, T, D)`` from ``h = 0``: output ``(N, T, Y)``, params the cell's (shared by every
    step). Generation steps it with ``h`` as the carry (:func:`fnn.generate`).

    >>> import numpy as np, fnn
    >>> def init(key, shapes):
    ...     (n, d), (_, h) = shapes
    ...     return ((n, h), (n, h)), {"w": np.full((d + h, h), 0.1)}
    >>> def forward(params, xs):
    ...     z = np.concatenate(xs, axis=-1)
    ...     h = np.tanh(z @ params["w"])
    ...     return (h, h), (z, h)
    >>> def backward(params, saved, dys, input_grad):
    ...     z, h = saved
    ...     g = sum(d for d in dys if d is not None) * (1 - h * h)
    ...     dz = g @ params["w"].T
    ...     return {"w": z.T @ g}, (dz[:, :-h.shape[1]], dz[:, -h.shape[1]:])
    >>> cell = fnn.layer("cell", init, forward, backward,
    ...                  inputs=(fnn.Input("x"), fnn.Input("h")))
    >>> model = fnn.scan(cell, 4)
    >>> shape, params = model.init(fnn.key(0), (-1, 5, 3))
    >>> shape, model.apply(params, np.ones((2, 5, 3))).shape
    ((-1, 5, 4), (2, 5, 4))
    >>> max(fnn.gradcheck(model, params, np.ones((2, 5, 3))).values()) < 1e-6
    True
    """
    if not isinstance(cell, Layer) or cell.stateful:
        raise TypeError(f"scan: expects an fnn.Layer without state, got {cell!r:.120}")
    size = positive_int("scan", "state_size", state_size)
    label = f"scan({cell!r}, {size})"

    def init(key, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            raise LayerError(f"{label}: expects inputs (N, T, D), got {input_shape!r}")
        n, t, d = input_shape
        try:
            out, params = cell.init(key, ((n, d), (n, size)))
        except LayerError as err:
            raise err.within("cell") from None
        if not (isinstance(out, tuple) and len(out) == 2 and tuple(out[1][1:]) == (size,)):
            raise LayerError(f"{label}: the cell must map (x_t, h) to (y_t, h') with h' of "
                             f"shape (N, {size}), got {fmt_shape(out)}")
        return (n, t, *out[0][1:]), params

    def apply(params, x):
        x = _check(label, x)
        h = np.zeros((x.shape[0], size), x.dtype)
        ys = []
        for t in range(x.shape[1]):
            y, h = cell.apply(params, (x[:, t], h))
            ys.append(y)
        return np.stack(ys, axis=1)

    def vjp(params, x, *, key=None, input_grad=True):
        x = _check(label, x)
        h = np.zeros((x.shape[0], size), x.dtype)
        ys, backs = [], []
        for t in range(x.shape[1]):
            (y, h), back = cell.vjp(params, (x[:, t], h), input_grad=True)
            ys.append(y)
            backs.append(back)

        def pullback(dy):
            grads, dh, dxs = None, None, [x] * len(backs)  # each replaced below
            for t in range(len(backs) - 1, -1, -1):
                g, (dxs[t], dh) = backs[t]((dy[:, t], dh))
                grads = _add(grads, g)
            return grads, np.stack(dxs, axis=1) if input_grad else None

        return np.stack(ys, axis=1), pullback

    def step(params, x_t, h):
        y, h = cell.apply(params, (x_t[:, 0], h))
        return y[:, None], h

    decode = Decoder(lambda params, n, dtype: np.zeros((n, size), dtype), step)
    return Layer(init, apply, vjp, "scan", label, kind="scan", decode=decode)


__all__ = ["scan"]
