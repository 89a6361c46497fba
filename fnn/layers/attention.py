"""Multi-head self-attention on ``(N, T, D)`` (:func:`multi_head_attention`) and the pre-norm
transformer block built from it with :func:`fnn.residual` (:func:`transformer_block`).

Params and their ``torch.nn.MultiheadAttention(D, heads, batch_first=True)`` names:

=========  ===========  ==============================
fnn key    shape        torch
=========  ===========  ==============================
``w_qkv``  ``(D, 3D)``  ``in_proj_weight.T`` (q, k, v)
``b_qkv``  ``(3D,)``    ``in_proj_bias``
``w_o``    ``(D, D)``   ``out_proj.weight.T``
``b_o``    ``(D,)``     ``out_proj.bias``
=========  ===========  ==============================
"""

from __future__ import annotations

import numpy as np

from fnn import initializers
from fnn.checks import LayerError
from fnn.combinators import parallel, pick, residual, serial
from fnn.core import Decoder, Input, Layer
from fnn.keys import split
from fnn.layers.activations import gelu
from fnn.layers.base import layer
from fnn.layers.dense import linear
from fnn.layers.merge import add
from fnn.layers.norm import layer_norm
from fnn.layers.stochastic import dropout as dropout_layer
from fnn.ops.attention import attention, attention_backward, merge_heads, split_heads
from fnn.validate import boolean, fraction, positive_int


def _heads_of(qkv: np.ndarray, heads: int) -> tuple:
    width = qkv.shape[-1] // 3
    return tuple(split_heads(qkv[..., i * width:(i + 1) * width], heads) for i in range(3))


def _project(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    y = x.reshape(-1, x.shape[-1]) @ w
    y += b
    return y.reshape(*x.shape[:-1], w.shape[1])


def _decoder(heads: int) -> Decoder:
    """Causal attention one token at a time: the carry is the key/value cache
    ``(k, v)``, each ``(N, heads, S, D/heads)``; a new token attends to every cached one."""

    def start(params, n, dtype):
        d = params["w_o"].shape[0] // heads
        empty = np.zeros((n, heads, 0, d), dtype)
        return empty, empty

    def step(params, x_t, carry):
        q, k, v = _heads_of(_project(x_t, params["w_qkv"], params["b_qkv"]), heads)
        k_all = np.concatenate([carry[0], k], axis=2)
        v_all = np.concatenate([carry[1], v], axis=2)
        out, _ = attention(q, k_all, v_all, causal=True)
        return _project(merge_heads(out), params["w_o"], params["b_o"]), (k_all, v_all)

    return Decoder(start, step)


def _init(label: str, heads: int, mask: bool):
    """``init`` of :func:`multi_head_attention`: torch's Xavier-uniform weights, zero biases."""
    draw, zeros = initializers.xavier_uniform(), initializers.zeros()

    def init(key, shape):
        x_shape = shape[0] if mask else shape
        width = x_shape[-1]
        if width % heads:
            raise LayerError(f"{label}: {heads} heads do not divide the width {width} "
                             f"(the input's last axis)")
        if mask and tuple(shape[1][1:]) != tuple(x_shape[1:2]):
            raise LayerError(f"{label}: input mask should have shape (N, {x_shape[1]}) "
                             f"(N, T), got {tuple(shape[1])}")
        kq, ko = split(key)
        return x_shape, {"w_qkv": draw(kq, (width, 3 * width)), "b_qkv": zeros(kq, (3 * width,)),
                         "w_o": draw(ko, (width, width)), "b_o": zeros(ko, (width,))}

    return init


def multi_head_attention(heads: int, *, causal: bool = False, dropout: float = 0.0,
                         mask: bool = False) -> Layer:
    """Self-attention with ``heads`` heads, ``(N, T, D) -> (N, T, D)``:
    ``q, k, v = x @ w_qkv + b_qkv`` split in heads of ``D / heads``, per head
    ``softmax(q k^T / sqrt(d) + mask) v``, heads concatenated, then ``@ w_o + b_o``
    (``torch.nn.MultiheadAttention``; params in the module doc). ``causal``: position ``t``
    sees positions ``<= t``. ``mask=True``: the input is ``(x, mask)``, ``mask (N, T)``
    bool, True for real tokens, False for padding keys never attended (torch's
    ``key_padding_mask`` is its negation). ``dropout``: on the attention probabilities, in
    ``vjp`` (which then needs a key). Causal layers without a mask decode one token at a time
    with a key/value cache (:func:`fnn.generate`).

    >>> import numpy as np, fnn
    >>> layer = fnn.multi_head_attention(4, causal=True)
    >>> shape, params = layer.init(fnn.key(0), (-1, 10, 32))
    >>> shape, params["w_qkv"].shape, layer.apply(params, np.ones((2, 10, 32))).shape
    ((-1, 10, 32), (32, 96), (2, 10, 32))
    """
    heads = positive_int("multi_head_attention", "heads", heads)
    causal = boolean("multi_head_attention", "causal", causal)
    mask = boolean("multi_head_attention", "mask", mask)
    rate = fraction("multi_head_attention", "dropout", dropout, hi_open=True)
    options = [f"causal={causal}"] * causal + [f"dropout={rate}"] * (rate > 0) + \
        [f"mask={mask}"] * mask
    label = f"multi_head_attention({', '.join([str(heads), *options])})"

    def forward(params, inputs, key=None):
        x, keys = inputs if mask else (inputs, None)
        q, k, v = _heads_of(_project(x, params["w_qkv"], params["b_qkv"]), heads)
        drop = None
        if rate > 0 and key is not None:
            shape = (x.shape[0], heads, x.shape[1], x.shape[1])
            keep = np.random.default_rng(key).random(shape, dtype=np.float32) >= rate
            drop = (keep / (1.0 - rate)).astype(x.dtype)
        elif rate > 0:
            raise LayerError(f"{label}: training (vjp) needs a random key for its dropout, "
                             "e.g. model.vjp(params, x, key=fnn.key(step)); use apply for "
                             "inference")
        out, p = attention(q, k, v, causal=causal, key_mask=keys, dropout=drop)
        merged = merge_heads(out)
        return _project(merged, params["w_o"], params["b_o"]), (x, q, k, v, p, drop, merged)

    def backward(params, saved, dy, input_grad):
        x, q, k, v, p, drop, merged = saved
        width = x.shape[-1]
        dy2, m2, x2 = dy.reshape(-1, width), merged.reshape(-1, width), x.reshape(-1, width)
        dmerged = (dy2 @ params["w_o"].T).reshape(dy.shape)
        dq, dk, dv = attention_backward(q, k, v, p, split_heads(dmerged, heads), dropout=drop)
        n, steps = x.shape[:2]
        dqkv = np.empty((n, steps, 3, heads, width // heads), dq.dtype)
        for i, g in enumerate((dq, dk, dv)):  # (N, h, T, d) into (N, T, [q k v], h, d)
            dqkv[:, :, i] = g.transpose(0, 2, 1, 3)
        dqkv2 = dqkv.reshape(-1, 3 * width)
        grads = {"w_qkv": x2.T @ dqkv2, "b_qkv": dqkv2.sum(axis=0), "w_o": m2.T @ dy2,
                 "b_o": dy2.sum(axis=0)}
        if not input_grad:
            return grads, None
        dx = (dqkv2 @ params["w_qkv"].T).reshape(x.shape)
        return grads, ((dx, None) if mask else dx)

    def apply(params, inputs):  # inference: no dropout
        x, keys = inputs if mask else (inputs, None)
        q, k, v = _heads_of(_project(x, params["w_qkv"], params["b_qkv"]), heads)
        out, _ = attention(q, k, v, causal=causal, key_mask=keys)
        return _project(merge_heads(out), params["w_o"], params["b_o"])

    inputs = (Input("x", rank=3), Input("mask", "bool", rank=2)) if mask else \
        (Input("x", rank=3),)
    return layer(label, _init(label, heads, mask), forward, backward, apply=apply,
                 kind="multi_head_attention",
                 config={"heads": heads, "causal": causal, "dropout": rate, "mask": mask},
                 inputs=inputs, decode=_decoder(heads) if causal and not mask else None,
                 random=True, name="multi_head_attention")


def transformer_block(heads: int, width: int, *, mlp: int = 4, causal: bool = True,
                      dropout: float = 0.0, mask: bool = False) -> Layer:
    """A pre-norm transformer block (GPT-2's): ``x + attention(layer_norm(x))``, then
    ``x + mlp(layer_norm(x))`` with ``mlp = linear(mlp * width), gelu, linear(width)``:
    a recipe over :func:`fnn.residual`, nothing more.

    ``mask=True``: ``(x, mask) -> (y, mask)`` (the key-padding mask passed on, so blocks
    stack in :func:`fnn.serial`; end with ``fnn.pick(0)``), routed with
    :func:`fnn.parallel` and :func:`fnn.pick`.

    >>> import fnn
    >>> block = fnn.transformer_block(4, 32)
    >>> block
    transformer_block(residual(layer_norm(), multi_head_attention(4, causal=True)), residual(layer_norm(), linear(128), gelu(), linear(32)))
    """
    width = positive_int("transformer_block", "width", width)
    rate = fraction("transformer_block", "dropout", dropout, hi_open=True)
    tail = [dropout_layer(rate)] if rate > 0 else []
    attend = multi_head_attention(heads, causal=causal, dropout=rate, mask=mask)
    feed_forward = residual(layer_norm(), linear(mlp * width), gelu(), linear(width), *tail)
    if not mask:
        return serial(residual(layer_norm(), attend, *tail), feed_forward,
                      name="transformer_block")
    normed = parallel(serial(pick(0), layer_norm()), pick(1))  # (layer_norm(x), mask)
    x_path = serial(parallel(pick(0), serial(normed, attend, *tail)), add(), feed_forward)
    return parallel(x_path, pick(1), name="transformer_block")


__all__ = ["multi_head_attention", "transformer_block"]
