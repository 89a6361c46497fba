"""Decoding a sequence one token at a time: greedy and beam search, batched.

Both are generic over a **step function** ``step(state, tokens) -> (logits, new_state)``:
``tokens (B,)`` int64 are the previous tokens (``bos_id`` at first), ``logits (B, V)`` score the
next one, and ``state`` is any pytree whose leaves are arrays with the batch on axis 0 (a
recurrent decoder's carried hidden state, a transformer's key/value cache, the encoder's
outputs and source mask). Beam search reorders the state's rows with ``leaf[rows]`` after each
step, so every leaf must have axis 0 of size ``B`` (``N`` at the start, ``N * width`` after the
beam search repeats each sentence ``width`` times).

A hypothesis ends when it emits ``end_id``; it is then padded with ``pad_id`` and its score is
frozen. Scores are sums of log-probabilities (``log_softmax`` of the logits). Beam search ranks
candidates by that sum (ties: the larger last log-probability, then the smaller token id, so
``width=1`` is exactly :func:`greedy`), and at the end picks each sentence's best beam by
``score / length ** length_penalty`` (length counts the end token; ``length_penalty=0``: the raw
sum; 1: the mean log-probability per token).

>>> import numpy as np
>>> from fnn.decoding import greedy
>>> table = np.log(np.array([[.1, .1, .8], [.1, .1, .8], [.7, .2, .1]]))  # bigram logits
>>> step = lambda state, tokens: (table[tokens], state)
>>> greedy(step, {}, 1, start_id=0, end_id=1, max_len=5).ids.tolist()
[[2, 0, 2, 0, 2]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn.tree import tree_map
from fnn.validate import integer, non_negative, positive_int

__all__ = ["Decoded", "StepFn", "beam_search", "greedy", "log_softmax"]

#: ``step(state, tokens (B,)) -> (logits (B, V), new_state)``
StepFn = Callable[[Any, np.ndarray], tuple[np.ndarray, Any]]


class Decoded(NamedTuple):
    """Decoded sentences: ``ids (N, L)`` int64 without the start token, the end token included
    where one was emitted, ``pad_id`` after it; ``lengths (N,)`` tokens up to and including the
    end token; ``scores (N,)`` the sums of their log-probabilities.

    >>> import numpy as np
    >>> from fnn.decoding import Decoded
    >>> d = Decoded(np.array([[5, 1, 0]]), np.array([2]), np.array([-0.7]))
    >>> d.ids[0, :d.lengths[0]].tolist()
    [5, 1]
    """

    ids: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, computed stably in the logits' dtype.

    >>> import numpy as np
    >>> from fnn.decoding import log_softmax
    >>> np.exp(log_softmax(np.array([[0.0, np.log(3.0)]]))).round(6).tolist()
    [[0.25, 0.75]]
    """
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _options(who: str, batch: int, start_id: int, end_id: int, pad_id: int,
             max_len: int) -> tuple[int, int, int, int, int]:
    return (positive_int(who, "batch", batch), integer(who, "start_id", start_id, minimum=0),
            integer(who, "end_id", end_id, minimum=0), integer(who, "pad_id", pad_id, minimum=0),
            positive_int(who, "max_len", max_len))


def _logp(who: str, step: StepFn, state: Any, tokens: np.ndarray,
          rows: int) -> tuple[np.ndarray, Any]:
    logits, state = step(state, tokens)
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != rows or logits.dtype.kind != "f":
        raise ValueError(f"{who}: step must return float logits of shape ({rows}, vocabulary), "
                         f"got {logits.dtype}{logits.shape}")
    return log_softmax(logits), state


def greedy(step: StepFn, state: Any, batch: int, *, start_id: int, end_id: int,
           max_len: int, pad_id: int = 0) -> Decoded:
    """The most likely next token at every step, for ``batch`` sentences at once, until each
    has emitted ``end_id`` or ``max_len`` tokens; stops early when all have ended.

    >>> import numpy as np
    >>> from fnn.decoding import greedy
    >>> step = lambda s, tok: (np.eye(4)[np.minimum(tok + 1, 3)] * 5, s)  # counts to 3 = end
    >>> out = greedy(step, {}, 2, start_id=1, end_id=3, max_len=10)
    >>> out.ids.tolist(), out.lengths.tolist()
    ([[2, 3], [2, 3]], [2, 2])
    """
    who = "greedy"
    batch, start_id, end_id, pad_id, max_len = _options(who, batch, start_id, end_id, pad_id,
                                                        max_len)
    tokens = np.full(batch, start_id, np.int64)
    done = np.zeros(batch, bool)
    lengths = np.full(batch, max_len, np.int64)
    scores = np.zeros(batch)
    out = []
    for t in range(max_len):
        logp, state = _logp(who, step, state, tokens, batch)
        tokens = logp.argmax(axis=-1)
        scores += np.where(done, 0.0, logp[np.arange(batch), tokens])
        tokens = np.where(done, pad_id, tokens)
        out.append(tokens)
        ended = ~done & (tokens == end_id)
        lengths[ended] = t + 1
        done |= ended
        if done.all():
            break
    return Decoded(np.stack(out, axis=1).astype(np.int64), lengths, scores)


def _top(cand: np.ndarray, logp: np.ndarray, width: int) -> np.ndarray:
    """Per row of ``cand (N, M)``, the indices of the ``width`` best: largest ``cand``, then
    largest ``logp`` (the step's own log-probability), then smallest index. Sorts a few more
    than ``width`` candidates per row (``argpartition``), the whole row only where ties reach
    past them."""
    n, m = cand.shape
    keep = min(m, 2 * width + 8)
    if keep == m:
        return np.lexsort((np.broadcast_to(np.arange(m), cand.shape), -logp, -cand),
                          axis=1)[:, :width]
    idx = np.argpartition(-cand, keep - 1, axis=1)[:, :keep]
    c = np.take_along_axis(cand, idx, axis=1)
    lp = np.take_along_axis(logp, idx, axis=1)
    order = np.lexsort((idx, -lp, -c), axis=1)
    pick = np.take_along_axis(idx, order[:, :width], axis=1)
    worst_kept = np.take_along_axis(c, order[:, -1:], axis=1)[:, 0]
    last_pick = np.take_along_axis(c, order[:, width - 1:width], axis=1)[:, 0]
    unsure = np.flatnonzero(last_pick <= worst_kept)  # a tie may lie outside the kept ones
    if unsure.size:
        pick[unsure] = np.lexsort(
            (np.broadcast_to(np.arange(m), (unsure.size, m)), -logp[unsure], -cand[unsure]),
            axis=1)[:, :width]
    return pick


def _repeat(who: str, leaf: np.ndarray, batch: int, width: int) -> np.ndarray:
    if leaf.ndim == 0 or leaf.shape[0] != batch:
        raise ValueError(f"{who}: every leaf of the state must have the batch ({batch}) on "
                         f"axis 0, got a leaf of shape {leaf.shape}")
    return np.repeat(leaf, width, axis=0)


def beam_search(step: StepFn, state: Any, batch: int, *, start_id: int, end_id: int,
                max_len: int, width: int = 5, length_penalty: float = 1.0,
                pad_id: int = 0) -> Decoded:
    """The ``width`` best hypotheses of each of ``batch`` sentences, extended one token at a
    time (``N * width`` rows per step), until every beam has ended or ``max_len`` tokens; each
    sentence's answer is its beam with the best ``score / length ** length_penalty``.

    ``state`` is given for ``batch`` rows; it is repeated ``width`` times (row ``i`` becomes
    rows ``i * width .. i * width + width - 1``). ``width=1`` gives :func:`greedy`'s answer
    exactly.

    >>> import numpy as np
    >>> from fnn.decoding import beam_search, greedy
    >>> p = np.array([[0, .5, .4, .1, 0], [0, 0, 0, 0, 1], [0, 0, 0, .9, .1],
    ...               [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]])  # start 0, end 4
    >>> step = lambda s, tok: (np.log(p[tok] + 1e-12), s)
    >>> greedy(step, {}, 1, start_id=0, end_id=4, max_len=4).ids.tolist()
    [[1, 4]]
    >>> beam_search(step, {}, 1, start_id=0, end_id=4, max_len=4, width=2,
    ...             length_penalty=0.0).ids.tolist()
    [[1, 4]]
    >>> beam_search(step, {}, 1, start_id=0, end_id=4, max_len=4, width=2).ids.tolist()
    [[2, 3, 4]]
    """
    who = "beam_search"
    batch, start_id, end_id, pad_id, max_len = _options(who, batch, start_id, end_id, pad_id,
                                                        max_len)
    width = positive_int(who, "width", width)
    alpha = non_negative(who, "length_penalty", length_penalty)
    rows = batch * width
    state = tree_map(lambda a: _repeat(who, np.asarray(a), batch, width), state)
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0
    tokens = np.full(rows, start_id, np.int64)
    done = np.zeros(rows, bool)
    lengths = np.full(rows, max_len, np.int64)
    history = np.zeros((rows, 0), np.int64)
    for t in range(max_len):
        logp, state = _logp(who, step, state, tokens, rows)
        vocab = logp.shape[1]
        if done.any():  # an ended beam continues only with pad_id, at no cost
            logp[done] = -np.inf
            logp[done, pad_id] = 0.0
        cand = (scores.reshape(rows, 1) + logp).reshape(batch, width * vocab)
        pick = _top(cand, logp.reshape(batch, width * vocab), width)       # (N, width)
        beam, tokens = np.divmod(pick, vocab)
        parent = (beam + np.arange(batch)[:, None] * width).reshape(rows)
        tokens = tokens.reshape(rows).astype(np.int64)
        scores = np.take_along_axis(cand, pick, axis=1)
        state = tree_map(lambda a, rows=parent: a[rows], state)
        history = np.concatenate([history[parent], tokens[:, None]], axis=1)
        done, lengths = done[parent], lengths[parent]
        ended = ~done & (tokens == end_id)
        lengths[ended] = t + 1
        done = done | ended
        if done.all():
            break
    final = scores / lengths.reshape(batch, width).astype(float) ** alpha
    final[~np.isfinite(scores)] = -np.inf
    best = final.argmax(axis=1) + np.arange(batch) * width
    lengths = lengths[best]
    return Decoded(history[best][:, :int(lengths.max())], lengths, scores.reshape(rows)[best])
