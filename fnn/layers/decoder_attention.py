"""Attention from a decoder to an encoder's outputs: multi-head cross-attention (transformer)
and Luong's "general" attention (recurrent decoders).

Both take three inputs ``(x, memory, mask)``: the decoder's ``x (N, T, D)``, the encoder's
``memory (N, S, E)`` and the source padding ``mask (N, S)`` (bool, True for real tokens; a
padded source position is never attended). Gradients flow to ``x`` and ``memory`` (the mask
gets ``None``). The numerics are :func:`fnn.ops.attention.attention` and its backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn import initializers
from fnn.checks import LayerError
from fnn.core import Input, Layer
from fnn.keys import split
from fnn.layers.base import layer
from fnn.ops.attention import attention, attention_backward, merge_heads, split_heads
from fnn.validate import positive_int

__all__ = ["cross_attention", "cross_attention_weights", "luong_attention",
           "luong_attention_weights"]

_INPUTS = (Input("x", rank=3), Input("memory", rank=3), Input("mask", "bool", rank=2))


def _check_mask(label: str, memory: np.ndarray, mask: np.ndarray) -> None:
    if mask.shape != memory.shape[:2]:
        raise LayerError(f"{label}: input 2 (mask) must be (N, S) = {memory.shape[:2]} like "
                         f"the memory's first two axes, got {mask.shape}")


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


def _project(params: dict, x: np.ndarray, memory: np.ndarray, heads: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = split_heads(x @ params["wq"] + params["bq"], heads)
    k = split_heads(memory @ params["wk"] + params["bk"], heads)
    v = split_heads(memory @ params["wv"] + params["bv"], heads)
    return q, k, v


def cross_attention(heads: int, dim: int | None = None, *, w_init="xavier_uniform") -> Layer:
    """Multi-head attention of the decoder's ``x (N, T, D)`` (queries) to ``memory (N, S, E)``
    (keys and values), ``(x, memory, mask) -> (N, T, dim)`` (``dim`` defaults to ``D``), as
    ``torch.nn.MultiheadAttention(dim, heads, kdim=E, vdim=E, batch_first=True)`` with
    ``key_padding_mask = ~mask``::

        q = x @ wq + bq,  k = memory @ wk + bk,  v = memory @ wv + bv     (split in heads)
        y = concat_h(softmax(q_h k_h^T / sqrt(dim / heads) | mask) v_h) @ wo + bo

    Params ``wq (D, dim), wk (E, dim), wv (E, dim), wo (dim, dim)`` and their biases (zeros
    at init); torch's ``q_proj_weight`` is ``wq.T``, ``out_proj.weight`` is ``wo.T``.

    >>> import numpy as np, fnn
    >>> layer = fnn.cross_attention(heads=2)
    >>> shape, params = layer.init(fnn.key(0), ((-1, 3, 8), (-1, 5, 6), (-1, 5)))
    >>> x, memory = np.ones((2, 3, 8), np.float32), np.ones((2, 5, 6), np.float32)
    >>> shape, layer.apply(params, (x, memory, np.ones((2, 5), bool))).shape
    ((-1, 3, 8), (2, 3, 8))
    """
    heads = positive_int("cross_attention", "heads", heads)
    label = f"cross_attention({heads})"
    w = initializers.get(w_init)
    zeros = initializers.get("zeros")

    def init(key, shapes):
        (_, steps, d), (_, _, e), _ = shapes
        width = d if dim is None else positive_int(label, "dim", dim)
        if width % heads:
            raise LayerError(f"{label}: dim {width} is not a multiple of {heads} heads")
        kq, kk, kv, ko = split(key, 4)
        params = {"wq": w(kq, (d, width)), "wk": w(kk, (e, width)), "wv": w(kv, (e, width)),
                  "wo": w(ko, (width, width))}
        for name in ("bq", "bk", "bv", "bo"):
            params[name] = zeros(None, (width,))
        return (shapes[0][0], steps, width), params

    def forward(params, inputs):
        x, memory, mask = inputs
        _check_mask(label, memory, mask)
        q, k, v = _project(params, x, memory, heads)
        out, p = attention(q, k, v, key_mask=mask)
        o = merge_heads(out)
        y = o @ params["wo"]
        y += params["bo"]
        return y, (x, memory, q, k, v, p, o)

    def backward(params, saved, dy, input_grad):
        x, memory, q, k, v, p, o = saved
        dy2 = _flat(dy)
        grads = {"wo": _flat(o).T @ dy2, "bo": dy2.sum(axis=0)}
        dout = split_heads(dy @ params["wo"].T, heads)
        dq, dk, dv = (merge_heads(g) for g in attention_backward(q, k, v, p, dout))
        for name, g, src in (("q", dq, x), ("k", dk, memory), ("v", dv, memory)):
            grads["w" + name] = _flat(src).T @ _flat(g)
            grads["b" + name] = _flat(g).sum(axis=0)
        if not input_grad:
            return grads, None
        dmemory = dk @ params["wk"].T + dv @ params["wv"].T
        return grads, (dq @ params["wq"].T, dmemory, None)

    def apply(params, inputs):
        return forward(params, inputs)[0]

    return layer(label, init, forward, backward, apply=apply, inputs=_INPUTS,
                 kind="cross_attention", config={"heads": heads, "dim": dim})


def cross_attention_weights(params: dict, inputs: tuple, heads: int) -> np.ndarray:
    """The attention probabilities ``(N, heads, T, S)`` of :func:`cross_attention` with
    ``params`` on ``inputs = (x, memory, mask)`` (for heat-maps).

    >>> import numpy as np, fnn
    >>> from fnn.layers.decoder_attention import cross_attention_weights
    >>> _, params = fnn.cross_attention(1).init(fnn.key(0), ((-1, 2, 4), (-1, 3, 4), (-1, 3)))
    >>> mask = np.array([[True, True, False]])
    >>> p = cross_attention_weights(params, (np.ones((1, 2, 4)), np.ones((1, 3, 4)), mask), 1)
    >>> p[0, 0].round(3).tolist()
    [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]
    """
    x, memory, mask = inputs
    q, k, v = _project(params, x, memory, heads)
    return attention(q, k, v, key_mask=np.asarray(mask, bool))[1]


def _luong_forward(params: dict, x: np.ndarray, memory: np.ndarray, mask: np.ndarray
                   ) -> tuple[np.ndarray, tuple]:
    q = (x @ params["wa"])[:, None]                       # (N, 1, T, E)
    m = memory[:, None]
    ctx, p = attention(q, m, m, key_mask=mask, scale=1.0)
    both = np.concatenate([ctx[:, 0], x], axis=-1)        # (N, T, E + D)
    y = np.tanh(both @ params["wc"] + params["bc"])
    return y, (x, memory, q, p, both, y)


def luong_attention(dim: int | None = None, *, w_init="xavier_uniform") -> Layer:
    """Luong et al. (2015)'s global attention with the "general" score, for a recurrent
    decoder's outputs ``x (N, T, D)`` over the encoder's ``memory (N, S, E)``,
    ``(x, memory, mask) -> (N, T, dim)`` (``dim`` defaults to ``D``)::

        score_ts = x_t @ wa @ memory_s          (padded s: -inf)
        a_t = softmax_s(score_t),   c_t = sum_s a_ts memory_s
        y_t = tanh([c_t; x_t] @ wc + bc)

    Params ``wa (D, E)``, ``wc (E + D, dim)``, ``bc (dim,)``. Every step attends on its own,
    so it runs over all ``T`` steps at once in training (no input feeding).

    >>> import numpy as np, fnn
    >>> layer = fnn.luong_attention()
    >>> shape, params = layer.init(fnn.key(0), ((-1, 3, 8), (-1, 5, 6), (-1, 5)))
    >>> x, memory = np.ones((2, 3, 8), np.float32), np.ones((2, 5, 6), np.float32)
    >>> shape, layer.apply(params, (x, memory, np.ones((2, 5), bool))).shape
    ((-1, 3, 8), (2, 3, 8))
    """
    label = "luong_attention"
    w = initializers.get(w_init)

    def init(key, shapes):
        (_, steps, d), (_, _, e), _ = shapes
        width = d if dim is None else positive_int(label, "dim", dim)
        ka, kc = split(key)
        return (shapes[0][0], steps, width), {"wa": w(ka, (d, e)), "wc": w(kc, (e + d, width)),
                                              "bc": initializers.get("zeros")(None, (width,))}

    def forward(params, inputs):
        x, memory, mask = inputs
        _check_mask(label, memory, mask)
        return _luong_forward(params, x, memory, mask)

    def backward(params, saved, dy, input_grad):
        x, memory, q, p, both, y = saved
        dz = dy * (1 - y * y)
        grads: dict[str, Any] = {"wc": _flat(both).T @ _flat(dz), "bc": _flat(dz).sum(axis=0)}
        dboth = dz @ params["wc"].T
        e = memory.shape[-1]
        m = memory[:, None]
        dq, dk, dv = attention_backward(q, m, m, p, dboth[:, None, :, :e], scale=1.0)
        grads["wa"] = _flat(x).T @ _flat(dq[:, 0])
        if not input_grad:
            return grads, None
        dx = dboth[..., e:] + dq[:, 0] @ params["wa"].T
        return grads, (dx, dk[:, 0] + dv[:, 0], None)

    def apply(params, inputs):
        return forward(params, inputs)[0]

    return layer(label, init, forward, backward, apply=apply, inputs=_INPUTS,
                 kind="luong_attention", config={"dim": dim})


def luong_attention_weights(params: dict, inputs: tuple) -> np.ndarray:
    """The attention probabilities ``(N, T, S)`` of :func:`luong_attention` with ``params`` on
    ``inputs = (x, memory, mask)`` (for heat-maps).

    >>> import numpy as np, fnn
    >>> from fnn.layers.decoder_attention import luong_attention_weights
    >>> _, params = fnn.luong_attention().init(fnn.key(0), ((-1, 2, 4), (-1, 3, 4), (-1, 3)))
    >>> mask = np.array([[True, False, False]])
    >>> luong_attention_weights(params, (np.ones((1, 2, 4)), np.ones((1, 3, 4)), mask))[0]
    array([[1., 0., 0.],
           [1., 0., 0.]])
    """
    x, memory, mask = inputs
    return _luong_forward(params, x, memory, np.asarray(mask, bool))[1][3][:, 0]

