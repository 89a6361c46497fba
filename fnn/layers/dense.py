"""Fully connected layer."""

from __future__ import annotations

from fnn import initializers
from fnn.core import Layer
from fnn.keys import split
from fnn.layers.base import layer
from fnn.ops.blas import matmul
from fnn.ops.conv import bias_grad
from fnn.ops.dense import input_grad as dense_input_grad
from fnn.validate import boolean, positive_int


def linear(out_dim: int, *, bias: bool = True, w_init="xavier_uniform", b_init="zeros") -> Layer:
    """``y = x @ w + b``, ``(N, ..., D_in) -> (N, ..., D_out)``; params ``w: (D_in, D_out)``
    (``D_in`` inferred in init), ``b: (D_out,)`` (none with ``bias=False``). Kind
    ``"linear"``, config ``out_dim, bias``.

    >>> import numpy as np, fnn
    >>> out_shape, params = fnn.linear(3).init(fnn.key(0), (-1, 5))
    >>> out_shape, params["w"].shape, fnn.linear(3).apply(params, np.ones((2, 5))).shape
    ((-1, 3), (5, 3), (2, 3))
    """
    label = f"linear({positive_int('linear', 'out_dim', out_dim)})"
    bias = boolean(label, "bias", bias)
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def init(key, shape):
        kw, kb = split(key)
        params = {"w": w_init(kw, (shape[-1], out_dim))}
        return (*shape[:-1], out_dim), {**params, "b": b_init(kb, (out_dim,))} if bias else params

    def forward(params, x):
        y = matmul(x, params["w"])  # one BLAS thread when small (fnn.ops.blas)
        if bias:
            y += params["b"]  # a fresh array: in place is safe
        return y, x

    def backward(params, x, dy, input_grad):
        x2, dy2 = (x, dy) if x.ndim == 2 else (x.reshape(-1, x.shape[-1]),
                                                dy.reshape(-1, dy.shape[-1]))
        dw = matmul(x2.T, dy2)
        grads = {"w": dw, "b": bias_grad(dy2)} if bias else {"w": dw}
        return grads, dense_input_grad(dy, params["w"]) if input_grad else None

    return layer(label, init, forward, backward, kind="linear",
                 config={"out_dim": int(out_dim), "bias": bias})
