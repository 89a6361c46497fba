"""Encoder-decoder models for translation, built from fnn's combinators, and their decoding.

A translation model is one :class:`fnn.Layer` on the pair ``(source_ids (N, S),
target_in (N, T))`` giving ``logits (N, T, V)`` (teacher forcing: ``target_in`` is ``<s>`` +
the target, as :class:`fnn.datasets.PairBatches` gives it), made by :func:`encoder_decoder`
from two layers:

* ``encoder``: ``(source_ids, mask) -> memory (N, S, E)``;
* ``decoder``: ``(target_ids, memory, mask) -> logits (N, T, V)``,

where ``mask (N, S)`` is True for the real source tokens (``source_ids != pad_id``). It is
plain wiring (``serial``, ``parallel``, ``pick``), so ``fnn.summary``, ``value_and_grad``,
``supervised_step`` (``threads=``), checkpoints and ``fnn.save`` work as for any model.
:mod:`fnn.translators` has two recipes (a GRU with Luong attention, a small transformer).

Decoding (:func:`translate`) runs the encoder once and then the decoder on the growing prefix
at every step (``decoder.apply`` on ``(prefix, memory, mask)``, the last position's logits):
any decoder works, at ``O(T^2)`` decoder positions per sentence, which for sentences of
~10 words is cheap. Greedy or beam search come from :mod:`fnn.decoding`.

Bad input: an id outside a vocabulary is the embedding's :class:`fnn.LayerError`; a target
whose first column is not ``start_id`` and a source longer than ``max_source`` are
:class:`fnn.LayerError` s naming the input. Unknown words are the vocabulary's business
(:meth:`fnn.datasets.WordVocab.encode` maps them to ``<unk>``, id 3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnn.checks import LayerError
from fnn.combinators import parallel, pick, serial
from fnn.core import Input, Layer
from fnn.decoding import Decoded, beam_search, greedy
from fnn.layers.base import parameter_free
from fnn.losses import Loss, LossError
from fnn.validate import integer, positive_int

__all__ = ["decoder_params", "encoder_decoder", "encoder_params", "pad_batch", "padding_mask",
           "prefix_stepper", "sentence_cross_entropy", "starts_with", "translate"]

_IDS = (Input("ids", "int", rank=2),)


def padding_mask(pad_id: int = 0, max_len: int | None = None) -> Layer:
    """Token ids ``(N, S)`` -> bool ``(N, S)``, True where ``ids != pad_id``; with ``max_len``,
    a source longer than that is a :class:`fnn.LayerError` (e.g. the size of a position
    table).

    >>> import numpy as np, fnn
    >>> from fnn.seq2seq import padding_mask
    >>> padding_mask().apply({}, np.array([[5, 6, 0]]))
    array([[ True,  True, False]])
    """
    pad_id = integer("padding_mask", "pad_id", pad_id, minimum=0)
    label = f"padding_mask({pad_id})"
    if max_len is not None:
        max_len = positive_int(label, "max_len", max_len)

    def fn(ids):
        if max_len is not None and ids.shape[1] > max_len:
            raise LayerError(f"{label}: the source has {ids.shape[1]} tokens, more than the "
                             f"model's maximum of {max_len}")
        return ids != pad_id

    return parameter_free(label, fn, lambda x, y, dy: None, inputs=_IDS, kind="padding_mask",
                          config={"pad_id": pad_id, "max_len": max_len})


def starts_with(start_id: int = 1) -> Layer:
    """Target ids ``(N, T)`` passed through, once checked to start with ``start_id`` (the
    decoder's input under teacher forcing is ``<s>`` + the target).

    >>> import numpy as np, fnn
    >>> from fnn.seq2seq import starts_with
    >>> starts_with(1).apply({}, np.array([[7, 8]]))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: starts_with(1): target row 0 starts with id 7, not the start id 1 (feed <s> + target, as PairBatches does)
    """
    start_id = integer("starts_with", "start_id", start_id, minimum=0)
    label = f"starts_with({start_id})"

    def fn(ids):
        bad = np.flatnonzero(ids[:, 0] != start_id) if ids.shape[1] else np.arange(len(ids))
        if bad.size:
            first = f"id {int(ids[bad[0], 0])}" if ids.shape[1] else "nothing (no column)"
            raise LayerError(f"{label}: target row {int(bad[0])} starts with {first}, not the "
                             f"start id {start_id} (feed <s> + target, as PairBatches does)")
        return ids

    return parameter_free(label, fn, lambda x, y, dy: None, inputs=_IDS, kind="starts_with",
                          config={"start_id": start_id})


def encoder_decoder(encoder: Layer, decoder: Layer, *, pad_id: int = 0, start_id: int = 1,
                    max_source: int | None = None) -> Layer:
    """``(source_ids (N, S), target_in (N, T)) -> logits (N, T, V)``: the mask of the
    source (:func:`padding_mask`), ``memory = encoder((source_ids, mask))``, then
    ``decoder((target_in, memory, mask))``. Params ``{"00_parallel": {"01_encoder": ...},
    "01_decoder": ...}`` (:func:`encoder_params`, :func:`decoder_params`).

    >>> import numpy as np, fnn
    >>> from fnn.seq2seq import encoder_decoder
    >>> enc = fnn.serial(fnn.pick(0), fnn.embedding(10, 4))
    >>> dec = fnn.serial(fnn.pick(0), fnn.embedding(12, 12))
    >>> model = encoder_decoder(enc, dec)
    >>> shape, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> shape
    (-1, 6, 12)
    """
    source = parallel(pick(0), serial(pick(0), padding_mask(pad_id, max_source)))
    model = serial(parallel(serial(pick(1), starts_with(start_id), name="target"),
                            serial(source, encoder, name="encoder"),
                            serial(pick(0), padding_mask(pad_id, max_source), name="mask")),
                   serial(decoder, name="decoder"), name="encoder_decoder")
    return model._replace(inputs=(Input("source", "int", rank=2),
                                  Input("target", "int", rank=2)))


def encoder_params(params: dict) -> dict:
    """The params of :func:`encoder_decoder`'s encoder path (``source -> memory``).

    >>> import fnn
    >>> from fnn.seq2seq import encoder_decoder, encoder_params, decoder_params
    >>> enc = fnn.serial(fnn.pick(0), fnn.embedding(10, 4))
    >>> model = encoder_decoder(enc, fnn.serial(fnn.pick(0), fnn.embedding(12, 12)))
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> sorted(encoder_params(params)), sorted(decoder_params(params))
    (['00_parallel', '01_serial'], ['00_serial'])
    """
    return params["00_parallel"]["01_encoder"]


def decoder_params(params: dict) -> dict:
    """The params of :func:`encoder_decoder`'s decoder (a model's ``"01_decoder"`` entry).

    >>> from fnn.seq2seq import decoder_params
    >>> decoder_params({"00_parallel": {}, "01_decoder": {"00_serial": {}}})
    {'00_serial': {}}
    """
    return params["01_decoder"]


def _encoder_decoder_parts(model: Layer) -> tuple[Layer, Layer]:
    fan, dec = model.children
    return fan.children[1], dec


def pad_batch(seqs: Sequence[Any], pad_id: int = 0) -> np.ndarray:
    """1-D id arrays as one ``(N, longest)`` int64 array, right-padded with ``pad_id``.

    >>> from fnn.seq2seq import pad_batch
    >>> pad_batch([[4, 5], [6]]).tolist()
    [[4, 5], [6, 0]]
    """
    width = max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), max(width, 1)), pad_id, np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def prefix_stepper(model: Layer, params: Any, memory: np.ndarray, mask: np.ndarray
                   ) -> tuple[Callable, dict]:
    """``(step, state)`` for :mod:`fnn.decoding` that runs :func:`encoder_decoder`'s decoder
    on the whole prefix at every step (any decoder; ``O(T^2)`` positions per sentence).

    >>> import numpy as np, fnn
    >>> from fnn.seq2seq import encoder_decoder, encoder_params, prefix_stepper
    >>> enc = fnn.serial(fnn.pick(0), fnn.embedding(10, 4))
    >>> model = encoder_decoder(enc, fnn.serial(fnn.pick(0), fnn.embedding(12, 12)))
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> memory = np.zeros((2, 5, 4), np.float32)
    >>> step, state = prefix_stepper(model, params, memory, np.ones((2, 5), bool))
    >>> logits, state = step(state, np.array([1, 1]))
    >>> logits.shape
    (2, 12)
    """
    decoder, dparams = _encoder_decoder_parts(model)[1], decoder_params(params)

    def step(state, tokens):
        prefix = np.concatenate([state["prefix"], tokens[:, None]], axis=1)
        logits = decoder.apply(dparams, (prefix, state["memory"], state["mask"]))
        return logits[:, -1], {**state, "prefix": prefix}

    return step, {"prefix": np.zeros((len(memory), 0), np.int64), "memory": memory,
                  "mask": mask}


def translate(model: Layer, params: Any, sources: Sequence[Any] | np.ndarray, *,
              max_len: int = 30, width: int = 1, length_penalty: float = 1.0,
              pad_id: int = 0, start_id: int = 1, end_id: int = 2,
              stepper: Callable | None = None) -> Decoded:
    """Decode every source of the batch (a list of 1-D id arrays, or an ``(N, S)`` array
    padded with ``pad_id``) with an :func:`encoder_decoder` ``model``: greedy when
    ``width == 1``, else beam search (:mod:`fnn.decoding`), at most ``max_len`` tokens.
    The encoder runs once; ``stepper(model, params, memory, mask) -> (step, state)`` makes
    the decoder's step function (default :func:`prefix_stepper`; a recurrent decoder can carry
    its state instead, e.g. :func:`fnn.translators.gru_stepper`).

    >>> import numpy as np, fnn
    >>> from fnn.seq2seq import encoder_decoder, translate
    >>> enc = fnn.serial(fnn.pick(0), fnn.embedding(10, 4))
    >>> dec = fnn.serial(fnn.pick(0), fnn.embedding(12, 12))
    >>> model = encoder_decoder(enc, dec)
    >>> _, params = model.init(fnn.key(0), ((-1, 5), (-1, 6)))
    >>> translate(model, params, [[4, 5], [6]], max_len=3).ids.shape[0]
    2
    """
    src = sources if isinstance(sources, np.ndarray) else pad_batch(sources, pad_id)
    encoder = _encoder_decoder_parts(model)[0]
    mask = src != pad_id
    memory = encoder.apply(encoder_params(params), (src, src))  # its input: the model's pair
    step, state = (stepper or prefix_stepper)(model, params, memory, mask)
    options = {"start_id": start_id, "end_id": end_id, "max_len": max_len, "pad_id": pad_id}
    if width == 1:
        return greedy(step, state, len(src), **options)
    return beam_search(step, state, len(src), width=width, length_penalty=length_penalty,
                       **options)


def sentence_cross_entropy(pad_id: int = 0) -> Loss:
    """Softmax cross-entropy of ``logits (N, T, V)`` against ids ``(N, T)``, **summed over
    each sentence's tokens** (positions whose target is ``pad_id`` do not count) and averaged
    over the sentences: nats per sentence, a per-sample mean as every fnn loss (so batch shards
    and chunks combine exactly). Divide by the tokens per sentence for a per-token figure.

    >>> import numpy as np
    >>> from fnn.seq2seq import sentence_cross_entropy
    >>> loss = sentence_cross_entropy(pad_id=0)
    >>> logits = np.zeros((1, 3, 4)); ids = np.array([[2, 3, 0]])
    >>> round(loss.value(logits, ids), 4), round(2 * float(np.log(4)), 4)
    (2.7726, 2.7726)
    """
    pad_id = integer("sentence_cross_entropy", "pad_id", pad_id, minimum=0)
    name = "sentence_cross_entropy"

    def vjp(z, ids, grad=True):
        z, ids = np.asarray(z), np.asarray(ids)
        if z.ndim != 3 or z.dtype.kind != "f" or ids.shape != z.shape[:2] or \
                ids.dtype.kind not in "iu":
            raise LossError(f"{name}: expected float logits (N, T, V) and int ids (N, T), got "
                            f"{z.dtype}{z.shape} and {ids.dtype}{ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= z.shape[2]):
            raise LossError(f"{name}: ids must lie in [0, {z.shape[2]}), got values in "
                            f"[{int(ids.min())}, {int(ids.max())}]")
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        keep = ids != pad_id
        picked = np.take_along_axis(shifted, ids[..., None], axis=-1)[..., 0]
        value = float(((np.log(total[..., 0]) - picked) * keep).sum() / len(z))
        if not grad:
            return value, None
        dz = e / total
        np.put_along_axis(dz, ids[..., None], np.take_along_axis(dz, ids[..., None], -1) - 1,
                          axis=-1)
        dz *= (keep / len(z)).astype(z.dtype)[..., None]
        return value, dz

    return Loss(lambda z, ids: vjp(z, ids, grad=False)[0], vjp, name)
