"""The two character models of ``examples/char_lm.py`` and what is read off them: the token
loss over ``(N, T, V)`` logits, generation, and one head's attention map.

GPT (nanoGPT's ``model.py`` at the CPU configuration)::

    embedding(V, d) -> + learned positions (context, d)
    -> n_layer x pre-norm block [x + mha(layer_norm(x)); x + mlp(layer_norm(x))]
    -> layer_norm -> linear(V)                      mlp: linear(4d) -> gelu -> linear(d)

LSTM: ``embedding(V, e) -> lstm(hidden) -> linear(V)``.

Weights as nanoGPT draws them: N(0, 0.02) for every kernel and embedding, N(0, 0.02 /
sqrt(2 n_layer)) for the two projections back into the residual stream; biases zero. (nanoGPT
ties the output layer to the token embedding; here they are two tables.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import fnn
from fnn.ops.attention import attention, attention_backward, merge_heads, split_heads
from fnn.ops.recurrent import lstm as lstm_op
from fnn.ops.recurrent import lstm_backward

STD = 0.02


# ----------------------------------------------------------------------------- layers
# Until fnn's own sequence layers (fnn.lstm, fnn.multi_head_attention, ...) land, these small
# layers run the same fnn.ops kernels through fnn.layer.

def _draw(key, shape, std, dtype=np.float32):
    return (std * np.random.default_rng(key).standard_normal(shape)).astype(dtype)


def positions(context: int, std: float = STD) -> fnn.Layer:
    """``x + table[:T]``: learned position embeddings ``(N, T, D)`` -> ``(N, T, D)``."""

    def init(key, shape):
        return shape, {"table": _draw(key, (context, shape[-1]), std)}

    def forward(params, x):
        return x + params["table"][:x.shape[1]], x.shape[1]

    def backward(params, t, dy, input_grad):
        dtable = np.zeros_like(params["table"])
        dtable[:t] = dy.sum(axis=0)
        return {"table": dtable}, (dy if input_grad else None)

    return fnn.layer(f"positions({context})", init, forward, backward, min_rank=3)


def causal_attention(heads: int, out_std: float = STD) -> fnn.Layer:
    """Causal multi-head self-attention on ``(N, T, D)``: ``q, k, v = x @ w_qkv + b_qkv``,
    ``softmax(q k^T / sqrt(d) + causal mask) v`` per head, heads merged, ``@ w_o + b_o``."""

    def init(key, shape):
        d = shape[-1]
        k1, k2 = fnn.split(key)
        return shape, {"w_qkv": _draw(k1, (d, 3 * d), STD), "b_qkv": np.zeros(3 * d, np.float32),
                       "w_o": _draw(k2, (d, d), out_std), "b_o": np.zeros(d, np.float32)}

    def forward(params, x):
        qkv = x @ params["w_qkv"] + params["b_qkv"]
        q, k, v = (np.ascontiguousarray(split_heads(a, heads)) for a in np.split(qkv, 3, -1))
        out, p = attention(q, k, v, causal=True)
        merged = merge_heads(out)
        return merged @ params["w_o"] + params["b_o"], (x, q, k, v, p, merged)

    def backward(params, saved, dy, input_grad):
        x, q, k, v, p, merged = saved
        d = x.shape[-1]
        dy2 = dy.reshape(-1, d)
        dout = np.ascontiguousarray(split_heads(dy @ params["w_o"].T, heads))
        dq, dk, dv = attention_backward(q, k, v, p, dout)
        dqkv = np.concatenate([merge_heads(a) for a in (dq, dk, dv)], axis=-1)
        grads = {"w_qkv": x.reshape(-1, d).T @ dqkv.reshape(-1, 3 * d),
                 "b_qkv": dqkv.sum(axis=(0, 1)),
                 "w_o": merged.reshape(-1, d).T @ dy2, "b_o": dy2.sum(axis=0)}
        return grads, (dqkv @ params["w_qkv"].T if input_grad else None)

    def apply(params, x):
        return forward(params, x)[0]

    return fnn.layer(f"causal_attention({heads})", init, forward, backward, apply=apply,
                     min_rank=3)


def lstm(hidden: int) -> fnn.Layer:
    """LSTM over ``(N, T, D)`` -> every step's ``h`` ``(N, T, hidden)``, torch's maths (gates
    i, f, g, o; params ``w_ih (D, 4H)``, ``w_hh (H, 4H)``, ``b_ih``, ``b_hh``, drawn from
    U(-1/sqrt(H), 1/sqrt(H)) as torch)."""

    def init(key, shape):
        d, bound = shape[-1], 1.0 / math.sqrt(hidden)
        keys = fnn.split(key, 4)
        sizes = {"w_ih": (d, 4 * hidden), "w_hh": (hidden, 4 * hidden), "b_ih": (4 * hidden,),
                 "b_hh": (4 * hidden,)}
        return (*shape[:-1], hidden), {
            name: np.random.default_rng(k).uniform(-bound, bound, s).astype(np.float32)
            for k, (name, s) in zip(keys, sizes.items())}

    def forward(params, x):
        xw = x @ params["w_ih"] + (params["b_ih"] + params["b_hh"])
        y, _, tape = lstm_op(xw, None, None, params["w_hh"])
        return y, (x, tape)

    def backward(params, saved, dy, input_grad):
        x, tape = saved
        dxw, dw_hh, _, _ = lstm_backward(tape, dy)
        g = 4 * hidden
        db = dxw.sum(axis=(0, 1))
        grads = {"w_ih": x.reshape(-1, x.shape[-1]).T @ dxw.reshape(-1, g), "w_hh": dw_hh,
                 "b_ih": db, "b_hh": db.copy()}
        return grads, (dxw @ params["w_ih"].T if input_grad else None)

    def apply(params, x):
        return forward(params, x)[0]

    return fnn.layer(f"lstm({hidden})", init, forward, backward, apply=apply, min_rank=3)


# ----------------------------------------------------------------------------- models

def block(width: int, heads: int, n_layer: int) -> fnn.Layer:
    """The pre-norm transformer block: two residual branches."""
    out_std = STD / math.sqrt(2 * n_layer)
    w = fnn.initializers.normal(STD)
    return fnn.serial(
        fnn.residual(fnn.serial(fnn.layer_norm(), causal_attention(heads, out_std))),
        fnn.residual(fnn.serial(fnn.layer_norm(), fnn.linear(4 * width, w_init=w), fnn.gelu(),
                                fnn.linear(width, w_init=fnn.initializers.normal(out_std)))))


def gpt(vocab: int, *, n_layer: int = 4, heads: int = 4, width: int = 128,
        context: int = 64) -> fnn.Layer:
    """ids ``(N, T)`` -> logits ``(N, T, vocab)``, ``T <= context``."""
    return fnn.serial(fnn.embedding(vocab, width, w_init=fnn.initializers.normal(STD)),
                      positions(context),
                      *[block(width, heads, n_layer) for _ in range(n_layer)],
                      fnn.layer_norm(), fnn.linear(vocab, w_init=fnn.initializers.normal(STD)))


def lstm_model(vocab: int, *, embed: int = 64, hidden: int = 256) -> fnn.Layer:
    """ids ``(N, T)`` -> logits ``(N, T, vocab)``."""
    return fnn.serial(fnn.embedding(vocab, embed), lstm(hidden), fnn.linear(vocab))


def decayed(path: str) -> bool:
    """AdamW decays the matrices (kernels, embeddings, position table), as nanoGPT decays every
    parameter of 2 or more dimensions; not the biases nor the layer-norm scales."""
    return path.rsplit("/", 1)[-1] in ("w", "w_qkv", "w_o", "w_ih", "w_hh", "table")


# ----------------------------------------------------------------------------- loss

def _flat(pred: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pred.reshape(-1, pred.shape[-1]), np.asarray(y).reshape(-1)


def _value(pred, y):
    return fnn.cross_entropy.value(*_flat(pred, y))


def _vjp(pred, y):
    value, grad = fnn.cross_entropy.vjp(*_flat(pred, y))
    return value, grad.reshape(pred.shape)


#: cross-entropy of ``(N, T, V)`` logits against ``(N, T)`` ids, the mean over the N*T tokens
#: (nats per character)
token_cross_entropy = fnn.Loss(_value, _vjp, name="token_cross_entropy")


# ----------------------------------------------------------------------------- reading

def sample(model: fnn.Layer, params: Any, prompt: np.ndarray, steps: int, key: fnn.Key, *,
           context: int, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """``steps`` ids drawn after ``prompt (N, T0)``, each from the model's last logits over
    the latest ``context`` ids (a full forward pass per new id)."""
    rng = np.random.default_rng(key)
    ids = np.asarray(prompt, dtype=np.int64)
    for _ in range(steps):
        logits = model.apply(params, ids[:, -context:])[:, -1].astype(np.float64) / temperature
        if top_k is not None:
            cut = np.sort(logits, axis=-1)[:, -top_k][:, None]
            logits = np.where(logits < cut, -np.inf, logits)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        nxt = np.array([rng.choice(p.shape[-1], p=row) for row in p])
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    return ids[:, prompt.shape[1]:]


def attention_map(model: fnn.Layer, params: Any, ids: np.ndarray, *, layer: int = 0,
                  head: int = 0, heads: int = 4) -> np.ndarray:
    """The softmax probabilities ``(T, T)`` of one head of block ``layer`` for ``ids (1, T)``."""
    names = sorted(params)
    x = ids
    for name, child in zip(names[:2 + layer], model.children):
        x = child.apply(params[name], x)
    blk = params[names[2 + layer]]          # {"00_residual": {"00_serial": {norm, attention}}}
    res = blk[sorted(blk)[0]]
    branch = res[sorted(res)[0]]
    norm_name, attn_name = sorted(branch)
    attn_layer = model.children[2 + layer].children[0].children[0].children[0]
    h = attn_layer.apply(branch[norm_name], x)
    p = branch[attn_name]
    qkv = h @ p["w_qkv"] + p["b_qkv"]
    q, k, v = (np.ascontiguousarray(split_heads(a, heads)) for a in np.split(qkv, 3, -1))
    return attention(q, k, v, causal=True)[1][0, head]
