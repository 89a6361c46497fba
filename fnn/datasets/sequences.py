"""Batch sources for sequence models that plug into :func:`fnn.train` with exact resume.

Like :class:`fnn.Batches`, each has ``epoch(i, start=0)`` (the batches of epoch ``i`` from
batch ``start`` on: a pure function of the source's key, ``i`` and ``start``), ``len()``
(batches per epoch), ``describe()`` (what a checkpoint's fingerprint records: sizes, seed and
a CRC-32 of all the token ids, so changed data is never resumed) and iteration over epochs
0, 1, 2, ...

* :class:`TokenWindows`: random windows of one token stream (a character-level language
  model, nanoGPT-style); :func:`token_chunks` and :func:`sample_windows` for evaluation;
* :class:`PairBatches`: padded, length-bucketed ``((source, target_in), target_out)`` batches
  of sentence pairs (translation).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fnn.keys import Key, fold_in
from fnn.validate import batch_size as check_batch_size
from fnn.validate import boolean, integer, positive_int

__all__ = ["PairBatches", "TokenWindows", "sample_windows", "token_chunks"]


def _token_array(who: str, ids: Any) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or (a.dtype.kind not in "iu" and a.size):
        raise ValueError(f"{who}: ids must be a 1-D array of ints, got {a.dtype}{a.shape}")
    return a if a.dtype.kind in "iu" else a.astype(np.int64)


def _key(rng: int | Key) -> Key:
    return rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)


def _seed(key: Key) -> list:
    entropy = key.entropy
    if entropy is not None and not isinstance(entropy, int):
        entropy = [int(v) for v in entropy]
    return [entropy, list(key.spawn_key)]


def _windows(ids: np.ndarray, offsets: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    rows = offsets[:, None] + np.arange(context)
    return ids[rows], ids[rows + 1]


def token_chunks(ids: Any, context: int) -> tuple[np.ndarray, np.ndarray]:
    """All non-overlapping windows of ``ids``: ``x (n, context)``, ``y (n, context)`` with
    ``y`` the next tokens, ``n = (len(ids) - 1) // context``. Every token but the first and
    the last ``(len(ids) - 1) % context`` is a target exactly once: a full-split evaluation.

    >>> import numpy as np
    >>> from fnn.datasets import token_chunks
    >>> x, y = token_chunks(np.arange(8), 3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    a = _token_array("token_chunks", ids)
    context = positive_int("token_chunks", "context", context)
    n = (len(a) - 1) // context
    if n < 1:
        raise ValueError(f"token_chunks: {len(a)} tokens hold no window of {context} inputs "
                         f"and {context} targets")
    return a[:n * context].reshape(n, context), a[1:n * context + 1].reshape(n, context)


def sample_windows(ids: Any, context: int, count: int, rng: int | Key = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random windows (offsets drawn as :class:`TokenWindows` draws them): ``x
    (count, context)`` and the next tokens ``y (count, context)``; a fixed evaluation sample.

    >>> import numpy as np
    >>> from fnn.datasets import sample_windows
    >>> x, y = sample_windows(np.arange(100), 8, 4, rng=0)
    >>> x.shape, bool((y == x + 1).all())
    ((4, 8), True)
    """
    a = _token_array("sample_windows", ids)
    context = positive_int("sample_windows", "context", context)
    count = positive_int("sample_windows", "count", count)
    if len(a) <= context:
        raise ValueError(f"sample_windows: {len(a)} tokens hold no window of context {context}")
    offsets = np.random.default_rng(_key(rng)).integers(0, len(a) - context, size=count)
    return _windows(a, offsets, context)


class TokenWindows:
    """Random windows of a token stream, nanoGPT's ``get_batch``: each batch is ``batch_size``
    random offsets ``o``, ``x = ids[o:o+context]``, ``y = ids[o+1:o+1+context]`` (both ``(B,
    context)``, the dtype of ``ids``). An epoch is ``steps_per_epoch`` batches whose offsets
    are drawn at once from ``fold_in(key, i)``, with replacement.

    >>> import numpy as np
    >>> from fnn.datasets import TokenWindows
    >>> data = TokenWindows(np.arange(50), context=4, batch_size=3, steps_per_epoch=5, rng=0)
    >>> len(data), [x.shape for x, y in data.epoch(0)][:2]
    (5, [(3, 4), (3, 4)])
    >>> x, y = next(iter(data.epoch(0, start=4)))
    >>> bool((y == x + 1).all()), bool((x == list(data.epoch(0))[4][0]).all())
    (True, True)
    """

    def __init__(self, ids: Any, context: int, batch_size: int, steps_per_epoch: int,
                 rng: int | Key = 0):
        self.ids = _token_array("TokenWindows", ids)
        self.context = positive_int("TokenWindows", "context", context)
        self.batch_size = check_batch_size("TokenWindows", batch_size)
        self.steps_per_epoch = positive_int("TokenWindows", "steps_per_epoch", steps_per_epoch)
        if len(self.ids) <= self.context:
            raise ValueError(f"TokenWindows: {len(self.ids)} tokens hold no window of context "
                             f"{self.context} (need at least {self.context + 1})")
        self.key = _key(rng)
        self._next_epoch = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def offsets(self, i: int) -> np.ndarray:
        """``(steps_per_epoch, batch_size)``: the window offsets of epoch ``i``."""
        rng = np.random.default_rng(fold_in(self.key, i))
        return rng.integers(0, len(self.ids) - self.context,
                            size=(self.steps_per_epoch, self.batch_size))

    def epoch(self, i: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches ``(x, y)`` of epoch ``i`` from batch ``start`` on."""
        ids, context = self.ids, self.context
        for row in self.offsets(i)[start:]:
            yield _windows(ids, row, context)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        i, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return iter(self.epoch(i))

    def describe(self) -> dict:
        """Sizes, seed and a CRC-32 of all the ids (the resume fingerprint's ``data``)."""
        return {"kind": "token_windows", "tokens": len(self.ids), "dtype": str(self.ids.dtype),
                "context": self.context, "batch_size": self.batch_size,
                "steps_per_epoch": self.steps_per_epoch, "order_seed": _seed(self.key),
                "crc32": zlib.crc32(np.ascontiguousarray(self.ids).data)}


class _Ragged:
    """Sequences of ints stored as one flat array, their offsets and lengths."""

    def __init__(self, who: str, seqs: Sequence[Any]):
        arrays = [_token_array(who, s) for s in seqs]
        self.lengths = np.array([len(a) for a in arrays], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        flat = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        self.flat = np.concatenate([flat.astype(np.int64), [0]])  # a pad so indices stay valid

    def crc(self, value: int) -> int:
        return zlib.crc32(self.flat[:-1].data, zlib.crc32(self.lengths.data, value))

    def padded(self, rows: np.ndarray, width: int, shift: int, pad: int,
               first: int | None = None, last: int | None = None) -> np.ndarray:
        """``(len(rows), width)``: each sequence at column ``shift`` on, ``first`` at column 0
        (when ``shift`` is 1), ``last`` right after it, ``pad`` elsewhere."""
        lengths = self.lengths[rows][:, None]
        col = np.arange(width) - shift
        inside = (col >= 0) & (col < lengths)
        index = np.where(inside, self.starts[rows][:, None] + col, len(self.flat) - 1)
        out = np.where(inside, self.flat[index], pad)
        if first is not None:
            out[:, 0] = first
        if last is not None:
            out[np.arange(len(rows)), lengths[:, 0] + shift] = last
        return out


class PairBatches:
    """Padded, length-bucketed mini-batches of sentence pairs for a sequence-to-sequence
    model: each batch is ``((src (B, S), tgt_in (B, T)), tgt_out (B, T))`` int64 arrays with
    ``tgt_in = <s> + target`` and ``tgt_out = target + </s>`` (the targets shifted by one), both
    ``T = 1 + longest target``, ``src`` as given (``S`` its longest), padded with ``pad_id``.

    ``src_ids``/``tgt_ids``: one 1-D int array (or list) per pair, e.g. from
    :meth:`WordVocab.encode`. With ``shuffle``, epoch ``i`` permutes the pairs with
    ``fold_in(key, i)``, sorts each run of ``bucket`` batches' worth of pairs by (source,
    target) length, cuts the runs into batches (so a batch holds pairs of similar lengths and
    padding is small) and shuffles the batches' order. Without it the batches follow the
    given order (evaluation). The last partial batch is kept unless ``drop_last``.

    >>> from fnn.datasets import PairBatches
    >>> data = PairBatches([[5, 6], [7], [8, 9, 9]], [[4], [4, 5], [6]], batch_size=2,
    ...                    shuffle=False)
    >>> (src, tgt_in), tgt_out = next(iter(data.epoch(0)))
    >>> src.tolist(), tgt_in.tolist(), tgt_out.tolist()
    ([[5, 6], [7, 0]], [[1, 4, 0], [1, 4, 5]], [[4, 2, 0], [4, 5, 2]])
    """

    def __init__(self, src_ids: Sequence[Any], tgt_ids: Sequence[Any], batch_size: int, *,
                 pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, shuffle: bool = True,
                 rng: int | Key = 0, bucket: int = 100, drop_last: bool = False):
        who = "PairBatches"
        if len(src_ids) != len(tgt_ids):
            raise ValueError(f"{who}: {len(src_ids)} sources but {len(tgt_ids)} targets")
        if not len(src_ids):
            raise ValueError(f"{who}: no pairs")
        self.src, self.tgt = _Ragged(who, src_ids), _Ragged(who, tgt_ids)
        self.n = len(src_ids)
        self.batch_size = check_batch_size(who, batch_size)
        self.pad_id, self.bos_id, self.eos_id = (integer(who, name, v, minimum=0) for name, v in
                                                 (("pad_id", pad_id), ("bos_id", bos_id),
                                                  ("eos_id", eos_id)))
        self.shuffle, self.drop_last = boolean(who, "shuffle", shuffle), boolean(
            who, "drop_last", drop_last)
        self.bucket = positive_int(who, "bucket", bucket)
        self.key = _key(rng)
        if len(self) == 0:
            raise ValueError(f"{who}: {self.n} pairs make no full batch of {self.batch_size} "
                             f"(drop_last=True)")
        self._next_epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, i: int) -> list[np.ndarray]:
        """The pair indices of each batch of epoch ``i``, in the order they are yielded."""
        size, count = self.batch_size, len(self)
        if not self.shuffle:
            return [np.arange(b * size, min((b + 1) * size, self.n)) for b in range(count)]
        rng = np.random.default_rng(fold_in(self.key, i))
        perm = rng.permutation(self.n)[:count * size]  # drop_last drops random pairs
        run = np.arange(len(perm)) // (size * self.bucket)  # runs are whole batches
        perm = perm[np.lexsort((self.tgt.lengths[perm], self.src.lengths[perm], run))]
        cuts = [perm[b * size:(b + 1) * size] for b in range(count)]
        return [cuts[b] for b in rng.permutation(count)]

    def batch(self, rows: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """``((src, tgt_in), tgt_out)`` of the pairs ``rows``."""
        src, tgt, pad = self.src, self.tgt, self.pad_id
        width = int(tgt.lengths[rows].max()) + 1
        return ((src.padded(rows, int(src.lengths[rows].max()), 0, pad),
                 tgt.padded(rows, width, 1, pad, first=self.bos_id)),
                tgt.padded(rows, width, 0, pad, last=self.eos_id))

    def epoch(self, i: int, start: int = 0) -> Iterator[tuple[tuple[np.ndarray, np.ndarray],
                                                             np.ndarray]]:
        """The batches of epoch ``i`` from batch ``start`` on."""
        for rows in self.order(i)[start:]:
            yield self.batch(rows)

    def __iter__(self) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
        i, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return iter(self.epoch(i))

    def padding(self, i: int = 0) -> float:
        """The share of padded entries in epoch ``i``'s ``src`` and ``tgt_out`` arrays.

        >>> from fnn.datasets import PairBatches
        >>> PairBatches([[1], [2, 3]], [[1], [2]], batch_size=2, shuffle=False).padding()
        0.125
        """
        pads = cells = 0
        for rows in self.order(i):
            for lengths in (self.src.lengths[rows], self.tgt.lengths[rows] + 1):
                cells += len(rows) * int(lengths.max())
                pads += int((lengths.max() - lengths).sum())
        return pads / cells if cells else 0.0

    def describe(self) -> dict:
        """Sizes, options, seed and a CRC-32 of all the ids (the resume fingerprint's
        ``data``)."""
        return {"kind": "pair_batches", "pairs": self.n, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "bucket": self.bucket, "drop_last": self.drop_last,
                "pad_bos_eos": [self.pad_id, self.bos_id, self.eos_id],
                "order_seed": _seed(self.key), "crc32": self.tgt.crc(self.src.crc(0))}
