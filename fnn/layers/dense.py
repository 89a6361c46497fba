"""Fully connected layer."""

from __future__ import annotations

import functools

import numpy as np

from fnn import initializers
from fnn.checks import LayerError, as_shape, float_input, fmt_shape, param, param_keys
from fnn.core import Layer
from fnn.keys import split


def linear(
    out_dim: int,
    *,
    bias: bool = True,
    w_init: str | initializers.Initializer = "xavier_uniform",
    b_init: str | initializers.Initializer = "zeros",
) -> Layer:
    """``y = x @ w + b`` on ``(N, ..., D_in) -> (N, ..., D_out)``; ``D_in`` is inferred in init.

    Params: ``w: (D_in, D_out)``, ``b: (D_out,)`` (no ``b`` with ``bias=False``).

    >>> import numpy as np, fnn
    >>> layer = fnn.linear(3)
    >>> out_shape, params = layer.init(fnn.key(0), (-1, 5))
    >>> out_shape, params["w"].shape, layer.apply(params, np.ones((2, 5), np.float32)).shape
    ((-1, 3), (5, 3), (2, 3))
    """
    if not isinstance(out_dim, (int, np.integer)) or out_dim <= 0:
        raise ValueError(f"linear: out_dim must be a positive int, got {out_dim!r}")
    label = f"linear({out_dim})"
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def init(key, input_shape):
        shape = as_shape(label, input_shape, min_rank=2)
        kw, kb = split(key)
        params = {"w": w_init(kw, (shape[-1], out_dim))}
        if bias:
            params["b"] = b_init(kb, (out_dim,))
        return (*shape[:-1], out_dim), params

    names = ("w", "b") if bias else ("w",)

    def _params(params, x):
        param_keys(label, params, names)
        w = param(label, params, "w")
        if w.ndim != 2 or w.shape[1] != out_dim:
            raise LayerError(f"{label}: params['w'] should be (D_in, {out_dim}), got {w.shape}")
        if x.ndim < 2 or x.shape[-1] != w.shape[0]:
            raise LayerError(
                f"{label}: expected input of shape {fmt_shape((-1, w.shape[0]))}, got {x.shape}",
                params_message=f"{label}: params['w'] has shape {w.shape}, made for inputs of "
                f"{w.shape[0]} features, but the layer before it gives {x.shape[-1]} (input "
                f"{x.shape}): the params do not fit the model; expected params['w'] of shape "
                f"{(x.shape[-1], out_dim)}")
        b = param(label, params, "b", (out_dim,)) if bias else None
        return w, b

    def apply(params, x):
        x = float_input(label, x)
        w, b = _params(params, x)
        y = x @ w
        return y + b if bias else y

    def vjp(params, x, *, key=None, input_grad=True):
        x = float_input(label, x)
        w, b = _params(params, x)
        y = x @ w
        if bias:
            y += b  # y is a fresh array: in place is safe here

        def pullback(dy):
            x2 = x.reshape(-1, x.shape[-1])
            dy2 = dy.reshape(-1, dy.shape[-1])
            grads = {"w": x2.T @ dy2}
            if bias:
                grads["b"] = dy2.sum(axis=0)
            return grads, dy @ w.T if input_grad else None

        return y, pullback

    return Layer(init, apply, vjp, "linear", functools.partial(vjp, input_grad=False), label)
