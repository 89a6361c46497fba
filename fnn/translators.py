"""Two translation models in a few lines each, on :func:`fnn.seq2seq.encoder_decoder`:

* :func:`gru_translator`: a bidirectional GRU encoder; a GRU decoder started from the
  encoder's masked mean, followed by Luong attention over the encoder's outputs;
* :func:`transformer_translator`: a small pre-norm transformer encoder-decoder (sinusoidal
  positions, causal self-attention then cross-attention in each decoder block).

Both are plain combinators of layers (``serial``, ``parallel``, ``pick``, ``residual``), so
their params read as paths (``fnn.summary``) and they train like any model: the input is
``(source_ids (N, S), target_in (N, T))``, the output ``logits (N, T, V_target)``, the loss
:func:`fnn.seq2seq.sentence_cross_entropy`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fnn.checks import LayerError
from fnn.combinators import child_names, parallel, pick, residual, serial
from fnn.core import Decoder, Input, Layer
from fnn.layers.activations import gelu, tanh
from fnn.layers.attention import multi_head_attention
from fnn.layers.base import parameter_free
from fnn.layers.decoder_attention import (
    cross_attention,
    cross_attention_weights,
    luong_attention,
    luong_attention_weights,
)
from fnn.layers.dense import linear
from fnn.layers.merge import add
from fnn.layers.norm import layer_norm
from fnn.layers.positional import sinusoidal_embedding
from fnn.layers.recurrent import gru
from fnn.layers.stochastic import dropout as dropout_layer
from fnn.layers.tokens import embedding
from fnn.ops.attention import attention, merge_heads, split_heads
from fnn.ops.recurrent import gru_step
from fnn.seq2seq import decoder_params, encoder_decoder, encoder_params

__all__ = ["attention_weights", "gru_stepper", "gru_translator", "masked_mean",
           "transformer_stepper", "transformer_translator"]


def masked_mean(label: str = "masked_mean") -> Layer:
    """``(x (N, S, E), mask (N, S)) -> (N, E)``: the mean of ``x`` over the positions where
    ``mask`` is True (0 where a row has none).

    >>> import numpy as np
    >>> from fnn.translators import masked_mean
    >>> x = np.array([[[1.0], [3.0], [100.0]]]); mask = np.array([[True, True, False]])
    >>> masked_mean().apply({}, (x, mask))
    array([[2.]])
    """
    def weights(mask, dtype):
        m = mask.astype(dtype)
        return m / np.maximum(m.sum(axis=1, keepdims=True), 1)

    def fn(inputs):
        x, mask = inputs
        return np.einsum("nse,ns->ne", x, weights(mask, x.dtype))

    def back(inputs, y, dy):
        x, mask = inputs
        return dy[:, None, :] * weights(mask, x.dtype)[..., None], None

    def shape(shapes):
        return (shapes[0][0], shapes[0][2])

    return parameter_free(label, fn, back, shape=shape, kind="masked_mean",
                          inputs=(Input("x", rank=3), Input("mask", "bool", rank=2)))


def _tokens(vocab: int, dim: int) -> Layer:
    return embedding(vocab, dim, padding_idx=0)


def gru_translator(source_vocab: int, target_vocab: int, *, dim: int = 256,
                   hidden: int = 256, dropout: float = 0.0, pad_id: int = 0,
                   start_id: int = 1) -> Layer:
    """GRU encoder-decoder with Luong attention::

        encoder  (src, mask) -> embedding(dim) -> bidirectional gru(hidden, mask)  (N, S, 2h)
        h0       tanh(linear(hidden)(masked_mean(memory, mask)))
        decoder  embedding(dim)(tgt) -> gru(hidden, from h0) -> luong_attention over memory
                 -> linear(target_vocab)

    ``dropout`` (training only): on both embeddings and on the attention's output.
    The decoder's GRU sees the source only through ``h0``; attention then mixes each step's
    output with its context (Luong et al., 2015, without input feeding), so training runs
    every step of the decoder at once.

    >>> import fnn
    >>> from fnn.translators import gru_translator
    >>> model = gru_translator(20, 30, dim=8, hidden=8)
    >>> model.init(fnn.key(0), ((-1, 5), (-1, 6)))[0]
    (-1, 6, 30)
    """
    drop = _drop(dropout)
    encoder = serial(parallel(serial(pick(0), _tokens(source_vocab, dim), *drop), pick(1)),
                     gru(hidden, bidirectional=True, mask=True))
    start = serial(parallel(pick(1), pick(2)), masked_mean(), linear(hidden), tanh())
    recurrent = serial(parallel(serial(pick(0), _tokens(target_vocab, dim), *drop), start),
                       gru(hidden, initial_state=True))
    decoder = serial(parallel(recurrent, pick(1), pick(2)), luong_attention(), *drop,
                     linear(target_vocab))
    return encoder_decoder(encoder, decoder, pad_id=pad_id, start_id=start_id)


def gru_stepper(model: Layer, params: dict, memory: np.ndarray, mask: np.ndarray
                ) -> tuple[Callable, dict]:
    """``(step, state)`` decoding a :func:`gru_translator` one token at a time with its GRU
    state carried (``O(T)`` decoder steps per sentence; the same tokens as
    :func:`fnn.seq2seq.prefix_stepper`, up to rounding). ``translate(..., stepper=gru_stepper)``.

    >>> import numpy as np, fnn
    >>> from fnn.translators import gru_stepper, gru_translator
    >>> model = gru_translator(20, 30, dim=8, hidden=8)
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> a = fnn.translate(model, params, [[4, 5, 6]], max_len=6, width=2)
    >>> b = fnn.translate(model, params, [[4, 5, 6]], max_len=6, width=2, stepper=gru_stepper)
    >>> bool((a.ids == b.ids).all())
    True
    """
    decoder = model.children[1].children[0]  # serial(parallel(recurrent, ...), luong, linear)
    p = decoder_params(params)[child_names(model.children[1].children)[0]]
    names = child_names(decoder.children)
    fan, fp = decoder.children[0], p[names[0]]
    recurrent = fan.children[0]            # serial(parallel(tokens, start), gru)
    rp = fp[child_names(fan.children)[0]]
    rnames = child_names(recurrent.children)
    inputs, ip = recurrent.children[0], rp[rnames[0]]
    inames = child_names(inputs.children)
    table = ip[inames[0]][child_names(inputs.children[0].children)[1]]["table"]
    cell = rp[rnames[1]]
    empty = np.zeros((len(memory), 1), np.int64)
    h0 = inputs.children[1].apply(ip[inames[1]], (empty, memory, mask))
    attend, head = decoder.children[1], list(zip(names[2:], decoder.children[2:]))

    def step(state, tokens):
        xw = table[tokens] @ cell["w_ih"] + cell["b_ih"]
        h = gru_step(xw, state["h"], cell["w_hh"], cell["b_hh"])
        y = attend.apply(p[names[1]], (h[:, None], state["memory"], state["mask"]))
        for name, layer in head:  # dropout (the identity here), linear
            y = layer.apply(p[name], y)
        return y[:, 0], {**state, "h": h}

    return step, {"h": h0, "memory": memory, "mask": mask}


def _drop(rate: float) -> list[Layer]:
    return [dropout_layer(rate)] if rate > 0 else []


def _ffn(dim: int, rate: float) -> Layer:
    return residual(layer_norm(), linear(4 * dim), gelu(), linear(dim), *_drop(rate))


def _keep_memory(layer: Layer) -> Layer:
    """``(y, memory, mask) -> (layer((y, memory, mask)), memory, mask)``."""
    return parallel(layer, pick(1), pick(2))


def transformer_translator(source_vocab: int, target_vocab: int, *, dim: int = 128,
                           heads: int = 4, layers: int = 2, max_len: int = 64,
                           dropout: float = 0.0, pad_id: int = 0, start_id: int = 1) -> Layer:
    """A small pre-norm transformer encoder-decoder (sinusoidal positions, ``dim * 4`` GELU
    feed-forward)::

        encoder block   x + mha(ln(x), mask);  x + ffn(ln(x))
        decoder block   y + causal_mha(ln(y));  y + cross_attention(ln(y), memory, mask);
                        y + ffn(ln(y))
        logits          linear(target_vocab)(ln(y))

    ``dropout`` (training only): on the embeddings and at the end of every residual branch.

    >>> import fnn
    >>> from fnn.translators import transformer_translator
    >>> model = transformer_translator(20, 30, dim=8, heads=2, layers=1)
    >>> model.init(fnn.key(0), ((-1, 5), (-1, 6)))[0]
    (-1, 6, 30)
    """
    def self_block(causal: bool) -> Layer:
        return residual(layer_norm(), multi_head_attention(heads, causal=causal), *drop)

    def encoder_block() -> Layer:
        attend = parallel(pick(0), serial(parallel(serial(pick(0), layer_norm()), pick(1)),
                                          multi_head_attention(heads, mask=True), *drop))
        return parallel(serial(attend, add(), _ffn(dim, dropout)), pick(1))

    def cross_block() -> Layer:
        normed = parallel(serial(pick(0), layer_norm()), pick(1), pick(2))
        return serial(parallel(pick(0), serial(normed, cross_attention(heads), *drop)), add())

    drop = _drop(dropout)
    encoder = serial(parallel(serial(pick(0), _tokens(source_vocab, dim),
                                     sinusoidal_embedding(max_len), *drop), pick(1)),
                     *[encoder_block() for _ in range(layers)], pick(0), layer_norm())
    decoder = serial(_keep_memory(serial(pick(0), _tokens(target_vocab, dim),
                                         sinusoidal_embedding(max_len), *drop)),
                     *[serial(_keep_memory(serial(pick(0), self_block(True))),
                              _keep_memory(cross_block()),
                              _keep_memory(serial(pick(0), _ffn(dim, dropout))))
                       for _ in range(layers)],
                     pick(0), layer_norm(), linear(target_vocab))
    return encoder_decoder(encoder, decoder, pad_id=pad_id, start_id=start_id,
                           max_source=max_len)


def _apply_children(layer: Layer, params: dict, x, count: int):
    """``x`` through the first ``count`` children of the serial ``layer``."""
    for name, child in zip(child_names(layer.children)[:count], layer.children[:count]):
        x = child.apply(params[name], x)
    return x


def attention_weights(model: Layer, params: dict, source: np.ndarray,
                      target_in: np.ndarray) -> np.ndarray:
    """``(N, T, S)``: how much each target position attends to each source word in a model
    of this module, on ``source (N, S)`` and ``target_in (N, T)`` (teacher forcing, e.g. the
    decoded sentence after ``<s>``): Luong's weights for :func:`gru_translator`, the last
    decoder block's cross-attention averaged over heads for :func:`transformer_translator`.

    >>> import numpy as np, fnn
    >>> from fnn.translators import attention_weights, gru_translator
    >>> model = gru_translator(20, 30, dim=8, hidden=8)
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> w = attention_weights(model, params, np.array([[4, 5, 0]]), np.array([[1, 7]]))
    >>> w.shape, w[0, :, 2].tolist()
    ((1, 2, 3), [0.0, 0.0])
    """
    encoder, decoder = model.children[0].children[1], model.children[1]
    mask = source != 0
    memory = encoder.apply(encoder_params(params), (source, source))
    inner, p = decoder.children[0], decoder_params(params)[child_names(decoder.children)[0]]
    names = child_names(inner.children)
    if inner.children[1].kind == "luong_attention":
        mid = _apply_children(inner, p, (target_in, memory, mask), 1)
        return luong_attention_weights(p[names[1]], mid)
    last = len(inner.children) - 4  # the last decoder block (before pick, norm, linear)
    x = _apply_children(inner, p, (target_in, memory, mask), last)
    block, bp = inner.children[last], p[names[last]]
    x = _apply_children(block, bp, x, 1)  # its causal self-attention
    cross = block.children[1].children[0]  # _keep_memory(cross_block()) -> cross_block
    cp = bp[child_names(block.children)[1]][child_names(block.children[1].children)[0]]
    attend = cross.children[0].children[1]  # serial(normed, cross_attention)
    ap = cp[child_names(cross.children)[0]][child_names(cross.children[0].children)[1]]
    normed = attend.children[0].apply(ap[child_names(attend.children)[0]], x)
    heads = attend.children[1].config["heads"]
    return cross_attention_weights(ap[child_names(attend.children)[1]], normed,
                                   heads).mean(axis=1)


def _path(layer: Layer, params: dict, *steps: int) -> tuple[Layer, dict]:
    """The child reached by the indices ``steps`` (one per level) and its params."""
    for i in steps:
        params = params[child_names(layer.children)[i]]
        layer = layer.children[i]
    return layer, params


def _transformer_parts(model: Layer, params: dict) -> tuple[tuple, list[dict], list]:
    """A :func:`transformer_translator`'s decoder cut into what one step runs: the token
    embedding and positions; per block its causal self-attention branch (residual
    ``layer_norm, mha, *dropout``), cross-attention branch (``normed, cross_attention,
    *dropout``) and feed-forward (a residual, position-wise); the final norm and linear."""
    inner, p = _path(model.children[1], decoder_params(params), 0)
    names = child_names(inner.children)
    blocks = [{"self": _path(inner, p, i, 0, 0, 1), "cross": _path(inner, p, i, 1, 0, 0, 1),
               "ffn": _path(inner, p, i, 2, 0, 1)} for i in range(1, len(names) - 3)]
    head = [(inner.children[j], p[names[j]]) for j in (len(names) - 2, len(names) - 1)]
    return _path(inner, p, 0, 0), blocks, head


def transformer_stepper(model: Layer, params: dict, memory: np.ndarray, mask: np.ndarray
                        ) -> tuple[Callable, dict]:
    """``(step, state)`` decoding a :func:`transformer_translator` one token at a time with
    a key/value cache: each block's causal self-attention keeps the keys and values of the
    tokens so far, and the cross-attention's keys and values of the encoder's ``memory`` are
    computed once; ``O(T)`` per token instead of the decoder over the whole prefix, the same
    tokens as :func:`fnn.seq2seq.prefix_stepper` (up to rounding).
    ``translate(..., stepper=transformer_stepper)``.

    >>> import fnn
    >>> from fnn.translators import transformer_stepper, transformer_translator
    >>> model = transformer_translator(20, 30, dim=8, heads=2, layers=2)
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> a = fnn.translate(model, params, [[4, 5, 6], [7]], max_len=6, width=2)
    >>> b = fnn.translate(model, params, [[4, 5, 6], [7]], max_len=6, width=2,
    ...                   stepper=transformer_stepper)
    >>> bool((a.ids == b.ids).all())
    True
    """
    (embed, ep), blocks, head = _transformer_parts(model, params)
    enames = child_names(embed.children)
    state: dict = {"mask": mask, "pos": np.zeros(len(memory), np.int64)}
    for i, b in enumerate(blocks):
        attend, ap = b["cross"]
        cross = ap[child_names(attend.children)[1]]
        heads = attend.children[1].config["heads"]
        state[f"ck{i}"] = split_heads(memory @ cross["wk"] + cross["bk"], heads)
        state[f"cv{i}"] = split_heads(memory @ cross["wv"] + cross["bv"], heads)
        branch, bp = b["self"]
        state[f"k{i}"], state[f"v{i}"] = _decoder(branch.children[1]).start(
            bp[child_names(branch.children)[1]], len(memory), memory.dtype)

    def step(state, tokens):
        x = embed.children[1].apply(ep[enames[1]], tokens[:, None])
        x = _decoder(embed.children[2]).step(ep[enames[2]], x, int(state["pos"][0]))[0]
        x = _rest(embed, ep, 3, x)  # dropout: the identity here
        new = {**state, "pos": state["pos"] + 1}
        for i, b in enumerate(blocks):
            branch, bp = b["self"]
            rn = child_names(branch.children)
            y = branch.children[0].apply(bp[rn[0]], x)
            y, (new[f"k{i}"], new[f"v{i}"]) = _decoder(branch.children[1]).step(
                bp[rn[1]], y, (state[f"k{i}"], state[f"v{i}"]))
            x = x + _rest(branch, bp, 2, y)
            x = x + _cross_step(b["cross"], x, state[f"ck{i}"], state[f"cv{i}"], state["mask"])
            ffn, fp = b["ffn"]
            x = ffn.apply(fp, x)
        for child, cp in head:  # layer_norm, linear
            x = child.apply(cp, x)
        return x[:, 0], new

    return step, state


def _decoder(layer: Layer) -> Decoder:
    if layer.decode is None:  # not a transformer_translator's decoder
        raise LayerError(f"transformer_stepper: {layer!r} cannot run one position at a time")
    return layer.decode


def _rest(layer: Layer, params: dict, start: int, x: np.ndarray) -> np.ndarray:
    """``x`` through the children ``start, start + 1, ...`` of the serial ``layer``."""
    for name, child in zip(child_names(layer.children)[start:], layer.children[start:]):
        x = child.apply(params[name], x)
    return x


def _cross_step(part: tuple[Layer, dict], x: np.ndarray, k: np.ndarray, v: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """One position's cross-attention branch: layer norm, attention to the memory's cached
    keys and values, dropout (the identity here)."""
    attend, ap = part
    names = child_names(attend.children)
    norm, nparams = _path(attend.children[0], ap[names[0]], 0, 1)  # serial(pick(0), layer_norm)
    params = ap[names[1]]
    q = split_heads(norm.apply(nparams, x) @ params["wq"] + params["bq"],
                    attend.children[1].config["heads"])
    out, _ = attention(q, k, v, key_mask=mask)
    y = merge_heads(out) @ params["wo"]
    y += params["bo"]
    return _rest(attend, ap, 2, y)
