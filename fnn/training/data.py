"""Mini-batches for :func:`fnn.train`: :class:`Batches` (a fresh, seeded permutation every
epoch, resumable mid-epoch) and how the loop walks any ``data`` it is given.

``data`` is either an object with ``epoch(i, start=0)`` (and ``len``), such as
:func:`batches` or :func:`fnn.augment.augmented`, or any re-iterable of batches (a list).
"""

from __future__ import annotations

import itertools
import warnings
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from fnn.keys import Key, fold_in
from fnn.locking import caller_level
from fnn.validate import batch_size as check_batch_size
from fnn.validate import boolean

__all__ = ["Batches", "batches"]


class Batches:
    """Re-iterable mini-batches over aligned arrays; a fresh permutation every epoch.

    ``epoch(i)`` yields the batches of epoch ``i`` (deterministic from ``rng`` and ``i``;
    ``epoch(i, start=b)`` from its ``b``-th batch on); iterating the object itself walks epochs
    0, 1, 2, ... The last partial batch is kept unless ``drop_last``.

    >>> import numpy as np, fnn
    >>> data = fnn.batches(np.arange(10.0), np.arange(10), batch_size=4, rng=0)
    >>> len(data), [len(x) for x, y in data.epoch(0)]
    (3, [4, 4, 2])
    """

    def __init__(self, *arrays, batch_size: int, shuffle: bool = True, rng: int | Key = 0,
                 drop_last: bool = False):
        if not arrays:
            raise ValueError("batches: pass at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        sizes = [len(a) if a.ndim else -1 for a in arrays]
        if len(set(sizes)) != 1:
            raise ValueError(f"batches: arrays must have the same length, got lengths {sizes}")
        if sizes[0] <= 0:
            raise ValueError("batches: the dataset is empty (0 samples)")
        self.arrays, self.n = arrays, sizes[0]
        self.batch_size = check_batch_size("batches", batch_size)
        self.shuffle = boolean("batches", "shuffle", shuffle)
        self.drop_last = boolean("batches", "drop_last", drop_last)
        if self.drop_last and self.n < self.batch_size:
            raise ValueError(f"batches: drop_last=True leaves no batch: {self.n} samples are "
                             f"fewer than batch_size={self.batch_size}; lower batch_size or "
                             "set drop_last=False")
        self.key = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        self._next_epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, i: int, start: int = 0) -> Iterator[tuple]:
        arrays, size = self.arrays, self.batch_size
        stop = min(len(self) * size, self.n)
        if not self.shuffle:  # slices (views)
            for first in range(start * size, stop, size):
                yield tuple(a[first:first + size] for a in arrays)
            return
        # each batch gathered when it is needed: it lands in cache just before the step reads
        # it, and the dataset is never copied whole (the MLP benchmark ran faster this way than
        # with one gather of the whole dataset per epoch)
        perm = np.random.default_rng(fold_in(self.key, i)).permutation(self.n)
        for first in range(start * size, stop, size):
            rows = perm[first:first + size]
            yield tuple([a.take(rows, axis=0) for a in arrays])  # (a list: faster than a generator)

    def __iter__(self) -> Iterator[tuple]:
        i, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return iter(self.epoch(i))

    def describe(self) -> dict:
        """What a checkpoint's fingerprint records of this data: sizes, order, and a CRC-32
        of all of its bytes (``crc32``: every array, every row; about 1 GB/s) and of a sample
        of rows (``sample_crc32``, what older fnn recorded)."""
        rows = np.unique(np.linspace(0, self.n - 1, min(self.n, 256)).astype(int))
        crc = 0
        for a in self.arrays:
            crc = zlib.crc32(np.ascontiguousarray(a[rows]).tobytes(), crc)
        return {"kind": "batches", "samples": self.n, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last,
                "order_seed": key_json(self.key),
                "arrays": [f"{a.dtype}{tuple(a.shape[1:])}" for a in self.arrays],
                "sample_crc32": crc, "crc32": checksum(self.arrays)}


def key_json(key: Key) -> list:
    """A key as JSON for fingerprints: ``[entropy, spawn_key]``."""
    entropy = key.entropy
    return [entropy if isinstance(entropy, int) else [int(v) for v in entropy or ()],
            list(key.spawn_key)]


def batches(*arrays, batch_size: int, shuffle: bool = True, rng: int | Key = 0,
            drop_last: bool = False) -> Batches:
    """Mini-batches of aligned arrays (see :class:`Batches`).

    >>> import numpy as np, fnn
    >>> data = fnn.batches(np.zeros((10, 3)), np.arange(10), batch_size=4, drop_last=True)
    >>> [x.shape for x, y in data.epoch(0)]
    [(4, 3), (4, 3)]
    """
    return Batches(*arrays, batch_size=batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last)


def epoch_batches(data: Any, epoch: int, start: int) -> Iterable:
    """The batches of ``epoch`` from its ``start``-th on: ``data.epoch(epoch, start)``, or the
    re-iterable ``data`` itself (its first ``start`` batches skipped)."""
    if hasattr(data, "epoch"):
        return data.epoch(epoch, start) if start else data.epoch(epoch)
    return itertools.islice(data, start, None) if start else data


def batch_len(batch: Any) -> int:
    """Samples in a batch (weights the epoch means); 1 when it cannot tell."""
    try:
        return len(batch[0] if isinstance(batch, (tuple, list)) else batch)
    except TypeError:
        return 1


def checksum(tree: Any, crc: int = 0) -> int:
    """CRC-32 of every array (its dtype, shape and bytes) and number in ``tree`` (tuples, lists
    and dicts of them), in order.

    >>> import numpy as np
    >>> from fnn.training.data import checksum
    >>> checksum([np.zeros(3)]) == checksum([np.zeros(3)]), checksum([np.zeros(3)]) == checksum([np.ones(3)])
    (True, False)
    """
    if isinstance(tree, dict):
        for k in sorted(tree, key=str):
            crc = checksum(tree[k], zlib.crc32(str(k).encode(), crc))
        return crc
    if isinstance(tree, (list, tuple)):
        for v in tree:
            crc = checksum(v, crc)
        return crc
    if isinstance(tree, (np.ndarray, np.generic)) and not np.asarray(tree).dtype.hasobject:
        a = np.ascontiguousarray(tree)
        crc = zlib.crc32(f"{a.dtype}{a.shape}".encode(), crc)
        return zlib.crc32(a.data, crc)
    return zlib.crc32(repr(tree).encode(), crc)


def describe_data(data: Any) -> dict:
    """What a fingerprint records of ``data``: its own ``describe()``; for a list or tuple of
    batches, their number and a CRC-32 of all of their contents; else its kind (and length),
    with a warning that its contents are not covered."""
    if hasattr(data, "describe"):
        return data.describe()
    if isinstance(data, (list, tuple)):
        return {"kind": type(data).__name__, "batches": len(data), "crc32": checksum(data)}
    warnings.warn(f"train: the checkpoint's fingerprint does not cover the contents of data "
                  f"of type {type(data).__name__} (only its kind and length): resuming with "
                  "changed data goes unnoticed; give it a describe() method returning a "
                  "checksum, or pass fnn.batches(...) or a list", UserWarning,
                  stacklevel=caller_level())
    try:
        return {"kind": type(data).__name__, "batches": len(data)}
    except TypeError:
        return {"kind": type(data).__name__}
