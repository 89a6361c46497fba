"""Data sharded by rank: every rank walks the same batches (same seed, same order) and keeps
its rows of each, rank ``r`` rows ``r*b`` to ``(r+1)*b`` of a batch of ``size*b``, so the ranks'
rows in rank order are the batch one process would train on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fnn.distributed.comm import world
from fnn.training.data import batch_len, describe_data, epoch_batches
from fnn.tree import tree_map

__all__ = ["RankBatches", "shard"]


class RankBatches:
    """This rank's rows of every batch of ``data`` (:func:`fnn.batches`, or any re-iterable of
    batches whose first axis is the sample axis); see :func:`shard`.

    >>> import numpy as np, fnn
    >>> from fnn.distributed import RankBatches
    >>> data = fnn.batches(np.arange(8.0), batch_size=4, shuffle=False)
    >>> [b[0].tolist() for b in RankBatches(data, rank=1, size=2).epoch(0)]
    [[2.0, 3.0], [6.0, 7.0]]
    """

    def __init__(self, data: Any, rank: int, size: int):
        self.data, self.rank, self.size = data, rank, size
        batch_size, n = getattr(data, "batch_size", None), getattr(data, "n", None)
        if isinstance(batch_size, int) and batch_size % size:
            raise ValueError(f"fnn.distributed: the batch size {batch_size} is not divisible by "
                             f"the {size} ranks; use a multiple of {size} (each rank trains "
                             f"on batch_size / {size} rows of every batch)")
        if isinstance(batch_size, int) and isinstance(n, int) and not data.drop_last \
                and n % batch_size % size:
            raise ValueError(f"fnn.distributed: the last batch has {n % batch_size} rows "
                             f"({n} samples, batch size {batch_size}), not divisible by the "
                             f"{size} ranks; pass drop_last=True to fnn.batches")

    def __len__(self) -> int:
        return len(self.data)

    def epoch(self, i: int, start: int = 0) -> Iterator[Any]:
        for batch in epoch_batches(self.data, i, start):
            n = batch_len(batch)
            if n % self.size:
                raise ValueError(f"fnn.distributed: a batch of {n} rows cannot be split evenly "
                                 f"over {self.size} ranks; use batches of a multiple of "
                                 f"{self.size} rows")
            b = n // self.size
            lo, hi = self.rank * b, (self.rank + 1) * b
            yield tree_map(lambda a, lo=lo, hi=hi: a[lo:hi], batch)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("RankBatches: iterate data.epoch(i) (fnn.train does)")

    def describe(self) -> dict:
        """The data's own description and the world size (part of a run's fingerprint)."""
        return {**describe_data(self.data), "ranks": self.size}


def shard(data: Any, comm: Any = None) -> RankBatches:
    """This rank's rows of every batch of ``data``: with ``size`` ranks and
    ``fnn.batches(..., batch_size=B)``, each rank trains on ``B / size`` rows per step and the
    ranks together on the batches one process would (same shuffle, same rows). ``B`` (and
    the last batch, unless ``drop_last``) must be divisible by the number of ranks.

    >>> import numpy as np, fnn
    >>> from mpi4py import MPI
    >>> from fnn.distributed import shard
    >>> data = fnn.batches(np.arange(8.0), batch_size=4, shuffle=False)
    >>> [b[0].tolist() for b in shard(data, MPI.COMM_SELF).epoch(0)]
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    """
    comm = world(comm)
    return RankBatches(data, comm.Get_rank(), comm.Get_size())
