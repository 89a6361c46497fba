"""Fully connected layer."""

from __future__ import annotations

from fnn import initializers
from fnn.core import Layer
from fnn.keys import split
from fnn.layers.base import layer
from fnn.layers.arguments import positive_int


def linear(out_dim: int, *, bias: bool = True, w_init="xavier_uniform", b_init="zeros") -> Layer:
    """``y = x @ w + b`` on ``(N, ..., D_in) -> (N, ..., D_out)``; ``D_in`` is inferred in init.

    Params: ``w: (D_in, D_out)``, ``b: (D_out,)`` (no ``b`` with ``bias=False``).

    >>> import numpy as np, fnn
    >>> layer = fnn.linear(3)
    >>> out_shape, params = layer.init(fnn.key(0), (-1, 5))
    >>> out_shape, params["w"].shape, layer.apply(params, np.ones((2, 5), np.float32)).shape
    ((-1, 3), (5, 3), (2, 3))
    """
    label = f"linear({positive_int('linear', 'out_dim', out_dim)})"
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def init(key, shape):
        kw, kb = split(key)
        params = {"w": w_init(kw, (shape[-1], out_dim))}
        return (*shape[:-1], out_dim), {**params, "b": b_init(kb, (out_dim,))} if bias else params

    def forward(params, x):
        y = x @ params["w"]
        return (y + params["b"] if bias else y), x

    def backward(params, x, dy, input_grad):
        x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
        grads = {"w": x2.T @ dy2, "b": dy2.sum(axis=0)} if bias else {"w": x2.T @ dy2}
        return grads, dy @ params["w"].T if input_grad else None

    return layer(label, init, forward, backward)
