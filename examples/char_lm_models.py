"""The two character models of ``examples/char_lm.py`` and what is read off them: the token
loss over ``(N, T, V)`` logits, generation, and one head's attention map.

GPT (nanoGPT's ``model.py`` at the CPU configuration)::

    embedding(V, d) -> + learned positions (context, d)
    -> n_layer x pre-norm block [x + mha(layer_norm(x)); x + mlp(layer_norm(x))]
    -> layer_norm -> linear(V)                      mlp: linear(4d) -> gelu -> linear(d)

LSTM: ``embedding(V, e) -> lstm(hidden) -> linear(V)``.

The GPT's weights as nanoGPT draws them (:func:`nanogpt_init`): N(0, 0.02) for every kernel
and embedding, N(0, 0.02 / sqrt(2 n_layer)) for the two projections back into the residual
stream; biases zero. The LSTM keeps torch's U(-1/sqrt(H), 1/sqrt(H)). Unlike nanoGPT, the
output layer is a table of its own (nanoGPT ties it to the token embedding) and the linear
and layer-norm layers have biases (nanoGPT's ``bias=False``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import fnn
from fnn.ops.attention import attention, split_heads

STD = 0.02


# ----------------------------------------------------------------------------- models

def gpt(vocab: int, *, n_layer: int = 4, heads: int = 4, width: int = 128,
        context: int = 64) -> fnn.Layer:
    """ids ``(N, T)`` -> logits ``(N, T, vocab)``, ``T <= context``."""
    return fnn.serial(fnn.embedding(vocab, width), fnn.positional_embedding(context),
                      *[fnn.transformer_block(heads, width) for _ in range(n_layer)],
                      fnn.layer_norm(), fnn.linear(vocab))


def nanogpt_init(params: dict, key: fnn.Key, n_layer: int) -> dict:
    """nanoGPT's draws in place of the layers' defaults: N(0, 0.02) for every matrix (token
    and position tables, kernels), N(0, 0.02 / sqrt(2 n_layer)) for the two projections back
    into the residual stream (attention's ``w_o``, the MLP's second linear); biases zero."""
    small = STD / math.sqrt(2 * n_layer)
    leaves = fnn.tree.flatten_with_paths(params)
    keys = fnn.split(key, len(leaves))

    def draw(path: str, leaf: np.ndarray, k: fnn.Key) -> np.ndarray:
        name = path.rsplit("/", 1)[-1]
        if name in ("b", "b_qkv", "b_o", "bias"):
            return np.zeros_like(leaf)
        if name == "scale":
            return np.ones_like(leaf)
        std = small if name == "w_o" or path.endswith("01_residual/03_linear/w") else STD
        return (std * np.random.default_rng(k).standard_normal(leaf.shape)).astype(leaf.dtype)

    new = {p: draw(p, leaf, k) for (p, leaf), k in zip(leaves.items(), keys)}

    def rebuild(tree: dict, prefix: str) -> dict:
        return {k: rebuild(v, f"{prefix}{k}/") if isinstance(v, dict) else new[prefix + k]
                for k, v in tree.items()}

    return rebuild(params, "")


def lstm_model(vocab: int, *, embed: int = 64, hidden: int = 256) -> fnn.Layer:
    """ids ``(N, T)`` -> logits ``(N, T, vocab)``."""
    return fnn.serial(fnn.embedding(vocab, embed), fnn.lstm(hidden), fnn.linear(vocab))


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
           context: int | None = None) -> np.ndarray:
    """``steps`` ids drawn after ``prompt (N, T0)`` by :func:`fnn.generate` (carried state,
    key/value cache). A model with a position table of ``context`` rows sees at most that
    many positions: it generates ``context // 2`` ids at a time from the latest ``context //
    2`` (its cache rebuilt from them each time)."""
    ids = np.asarray(prompt, dtype=np.int64)
    if context is None:
        return fnn.generate(model, params, ids, steps, key)[:, ids.shape[1]:]
    half, start, i = max(context // 2, 1), ids.shape[1], 0
    while ids.shape[1] - start < steps:
        n = min(half, steps - (ids.shape[1] - start), context - min(ids.shape[1], half))
        window = ids[:, -half:]
        new = fnn.generate(model, params, window, n, fnn.fold_in(key, i))[:, window.shape[1]:]
        ids, i = np.concatenate([ids, new], axis=1), i + 1
    return ids[:, start:]


def attention_map(model: fnn.Layer, params: Any, ids: np.ndarray, *, layer: int = 0,
                  head: int = 0) -> np.ndarray:
    """The softmax probabilities ``(T, T)`` of one head of block ``layer`` for ``ids (1, T)``:
    the model's first layers applied, then the block's layer norm and its attention's
    ``q, k`` (``p = softmax(q k^T / sqrt(d) + causal mask)``)."""
    names = sorted(params)
    x = ids
    for name, child in zip(names[:2 + layer], model.children):
        x = child.apply(params[name], x)
    block = model.children[2 + layer]
    branch = block.children[0]                     # residual(layer_norm, attention)
    bp = params[names[2 + layer]]
    bp = bp[sorted(bp)[0]]
    norm_key, attn_key = sorted(bp)
    h = branch.children[0].apply(bp[norm_key], x)
    heads = branch.children[1].config["heads"]
    p = bp[attn_key]
    qkv = h @ p["w_qkv"] + p["b_qkv"]
    q, k, v = (np.ascontiguousarray(split_heads(a, heads)) for a in np.split(qkv, 3, -1))
    return attention(q, k, v, causal=True)[1][0, head]
