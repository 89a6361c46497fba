"""Position embeddings added to ``(N, T, D)``: learned (:func:`positional_embedding`, GPT's)
or fixed sinusoids (:func:`sinusoidal_embedding`, the Transformer paper's)."""

from __future__ import annotations

import functools

import numpy as np

from fnn import initializers
from fnn.checks import LayerError, as_shape, float_input, fmt_shape
from fnn.core import Decoder, Layer
from fnn.layers.base import layer, parameter_free
from fnn.validate import positive_int


def _steps(label: str, steps: int, max_len: int) -> None:
    if steps > max_len:
        raise LayerError(f"{label}: sequences of T = {steps} steps are longer than the "
                         f"position table ({max_len} positions)")


def _sequence_shape(label: str, shape, max_len: int) -> tuple:
    shape = as_shape(label, shape, min_rank=3)
    if len(shape) != 3:
        raise LayerError(f"{label}: expects inputs (N, T, D), got {fmt_shape(shape)}")
    _steps(label, shape[1], max_len)
    return shape


def _position_decoder(label: str, max_len: int, rows) -> Decoder:
    """One step at a time: the carry is the position; ``rows(params, pos, dtype)``."""

    def step(params, x_t, pos):
        _steps(label, pos + 1, max_len)
        return x_t + rows(params, pos, x_t.dtype), pos + 1

    return Decoder(lambda params, n, dtype: 0, step)


def positional_embedding(max_len: int, *, w_init=None) -> Layer:
    """``y[:, t] = x[:, t] + table[t]``, a learned table ``{"table": (max_len, D)}`` (drawn
    from N(0, 0.02²), GPT-2's), on ``(N, T, D)`` with ``T <= max_len`` (else a
    :class:`fnn.LayerError`).

    >>> import numpy as np, fnn
    >>> layer = fnn.positional_embedding(16)
    >>> shape, params = layer.init(fnn.key(0), (-1, 10, 8))
    >>> params["table"].shape, layer.apply(params, np.zeros((2, 10, 8))).shape
    ((16, 8), (2, 10, 8))
    """
    max_len = positive_int("positional_embedding", "max_len", max_len)
    label = f"positional_embedding({max_len})"
    draw = initializers.get(w_init) if w_init is not None else initializers.normal(0.02)

    def init(key, shape):
        shape = _sequence_shape(label, shape, max_len)
        return shape, {"table": draw(key, (max_len, shape[2]))}

    def forward(params, x):
        _steps(label, x.shape[1], max_len)
        return x + params["table"][:x.shape[1]], x.shape[1]

    def backward(params, steps, dy, input_grad):
        table = np.zeros_like(params["table"], dtype=dy.dtype)
        table[:steps] = dy.sum(axis=0)
        return {"table": table}, dy if input_grad else None

    decode = _position_decoder(label, max_len, lambda params, pos, dtype: params["table"][pos])
    return layer(label, init, forward, backward, kind="positional_embedding",
                 config={"max_len": max_len}, min_rank=3, decode=decode)


@functools.lru_cache(maxsize=16)
def sinusoids(max_len: int, width: int, dtype: str = "float64") -> np.ndarray:
    """``(max_len, width)``: ``sin(t / 10000^(2i/width))`` in even columns ``2i``, ``cos`` in
    odd ones (read-only, cached).

    >>> from fnn.layers.positional import sinusoids
    >>> sinusoids(3, 4)[1].round(3).tolist()
    [0.841, 0.54, 0.01, 1.0]
    """
    t = np.arange(max_len, dtype=np.float64)[:, None]
    rate = 10000.0 ** (-np.arange(0, width, 2, dtype=np.float64) / width)
    table = np.zeros((max_len, width))
    table[:, 0::2] = np.sin(t * rate)
    table[:, 1::2] = np.cos(t * rate[:width // 2])
    out = table.astype(dtype)
    out.flags.writeable = False
    return out


def sinusoidal_embedding(max_len: int) -> Layer:
    """``y[:, t] = x[:, t] + pe[t]`` with the fixed sinusoids of :func:`sinusoids` (no
    params), on ``(N, T, D)`` with ``T <= max_len``.

    >>> import numpy as np, fnn
    >>> fnn.sinusoidal_embedding(16).apply({}, np.zeros((1, 2, 2))).round(3).tolist()
    [[[0.0, 1.0], [0.841, 0.54]]]
    """
    max_len = positive_int("sinusoidal_embedding", "max_len", max_len)
    label = f"sinusoidal_embedding({max_len})"

    def check(x):
        x = float_input(label, x)
        _sequence_shape(label, x.shape, max_len)
        return x

    def table(steps: int, width: int, dtype) -> np.ndarray:
        return sinusoids(max_len, width, np.dtype(dtype).name)[:steps]

    def fn(x):
        return x + table(x.shape[1], x.shape[2], x.dtype)

    def step(params, x_t, pos):
        _steps(label, pos + 1, max_len)
        return x_t + sinusoids(max_len, x_t.shape[2], x_t.dtype.name)[pos], pos + 1

    decode = Decoder(lambda params, n, dtype: 0, step)
    return parameter_free(label, fn, lambda x, y, dy: dy,
                          shape=lambda s: _sequence_shape(label, s, max_len), check=check,
                          kind="sinusoidal_embedding", config={"max_len": max_len},
                          decode=decode)


__all__ = ["positional_embedding", "sinusoidal_embedding", "sinusoids"]
