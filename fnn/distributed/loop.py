""":func:`train`: :func:`fnn.train` on every rank of an MPI job, the ranks training one model.

Before the first step the ranks check that they agree (the state's tree, what the step, the
data and the evaluation declare, the world size) and take rank 0's state; then every rank
walks its rows of every batch (:func:`fnn.distributed.shard`). The loop knows the ranks
(:class:`Ranks`): only rank 0 shows progress and writes checkpoints; it reads them when a run
continues and hands them to the others; the epoch's metrics are summed over the ranks. An
exception on one rank aborts them all (no rank is left waiting in an all-reduce).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits

from fnn._extras import require
from fnn.checkpoint import tree_signature
from fnn.distributed.comm import abort_on_error, allreduce_sum, broadcast, check_agree, world
from fnn.distributed.data import shard
from fnn.training import History
from fnn.training import train as plain_train
from fnn.training.steps import declared_fingerprint

__all__ = ["Ranks", "train"]


class Ranks:
    """What :func:`fnn.train` needs to know of the ranks (its ``ranks=`` argument): whether
    this is the root, the root's result of a function on every rank, and the epoch's metric
    sums summed over the ranks.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import Ranks
    >>> ranks = Ranks(MPI.COMM_SELF)
    >>> ranks.root, ranks.share(lambda: "read by the root"), ranks.reduce({"loss": 6.0}, 3)
    (True, 'read by the root', ({'loss': 6.0}, 3))
    """

    def __init__(self, comm: Any):
        self.comm = comm
        self.root = comm.Get_rank() == 0

    def share(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` run on the root, its value (or its exception, raised) on every rank."""
        value: Any = None
        if self.root:
            try:
                value = fn()
            except Exception as err:  # noqa: BLE001  raised on every rank below
                value = err
        value = broadcast(value, self.comm)
        if isinstance(value, Exception):
            raise value
        return value

    def reduce(self, sums: dict, count: int) -> tuple[dict, int]:
        """The metric sums and sample count of the epoch summed over the ranks (every rank
        must have the same metric names)."""
        names = sorted(sums)
        total = allreduce_sum((count, *(float(sums[k]) for k in names)), self.comm)
        return dict(zip(names, total[1:])), int(total[0])


def train(step_fn: Any, data: Any, state: Any, *, epochs: int, comm: Any = None,
          blas_threads: int | None = None, **kwargs: Any) -> tuple[Any, History]:
    """:func:`fnn.train` on every rank of ``comm`` (default: every process of the ``mpiexec``
    job), the ranks training one model: ``mpiexec -n 2 python script.py``.

    * ``step_fn``: a step whose gradient is averaged over the ranks, such as
      :func:`fnn.distributed.supervised_step`.
    * ``data``: the whole data (:func:`fnn.batches` with the *global* batch size, or a
      re-iterable of batches), the same on every rank; each rank trains on its rows of every
      batch (:func:`shard`), so the run is one process's with that batch size.
    * ``state``: rank 0's is used everywhere (broadcast), after the ranks are checked to agree
      on its structure and on what ``step_fn``, ``data``, ``eval_fn`` and ``config`` declare;
      ranks disagreeing raise the same ``ValueError`` on every rank.
    * checkpoints (``checkpoint=DIR``): written by rank 0 only; a continued run is read by rank
      0 and handed to the others (``DIR`` need not be shared). The world size is part of the
      run's fingerprint: a run continues only with as many ranks.
    * ``blas_threads``: BLAS threads per rank; default: the machine's cores shared by the ranks
      running on it (at least one), so ranks never oversubscribe the cores.
    * Any other argument is :func:`fnn.train`'s. Progress is shown by rank 0 only; the history
      (the same on every rank) holds the metrics summed over the ranks.

    An exception on one rank prints its traceback and aborts every rank (``MPI_Abort``), and
    so does Ctrl-C (``mpiexec`` passes it to every rank, each at its own step: some would wait
    for the others forever); with one rank both behave as in :func:`fnn.train`, whose results
    a one-rank run equals bit for bit.

    >>> import numpy as np, fnn
    >>> from mpi4py import MPI
    >>> from fnn import distributed
    >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    >>> y = x @ np.array([[1.0], [2.0], [-1.0]], np.float32)
    >>> model = fnn.linear(1)
    >>> _, params = model.init(fnn.key(0), x.shape)
    >>> step = distributed.supervised_step(model, fnn.mse, fnn.sgd(0.05), comm=MPI.COMM_SELF)
    >>> state, hist = distributed.train(step, fnn.batches(x, y, batch_size=16),
    ...                                 fnn.TrainState.create(params, fnn.sgd(0.05)),
    ...                                 epochs=30, progress=False, comm=MPI.COMM_SELF)
    >>> hist.train["loss"][-1] < 1e-3
    True
    """
    comm = world(comm)
    size = comm.Get_size()
    sharded = shard(data, comm)
    check_agree("the run (state tree, step, data, evaluation, config)", {
        "ranks": size, "state": tree_signature(state),
        "step_fn": declared_fingerprint(step_fn), "data": sharded.describe(),
        "eval_fn": declared_fingerprint(kwargs.get("eval_fn")),
        "config": kwargs.get("config"), "epochs": epochs}, comm)
    state = broadcast(state, comm)
    if size == 1:  # nothing to share: fnn.train itself, bit for bit
        return plain_train(step_fn, data, state, epochs=epochs, **kwargs)
    with _blas_limit(comm, blas_threads), abort_on_error(comm):
        state, history = plain_train(step_fn, sharded, state, epochs=epochs, ranks=Ranks(comm),
                                     **kwargs)
        if history.stop_reason == "interrupted":  # Ctrl-C reaches the ranks at different steps:
            raise KeyboardInterrupt(  # some wait in an all-reduce; stop them all (rank 0 has
                "interrupted: every rank stops")  # checkpointed if it was interrupted)
    return state, history


def _blas_limit(comm: Any, threads: int | None) -> Any:
    """A threadpoolctl limit on BLAS threads: ``threads``, or this machine's cores over the
    ranks on it."""
    if threads is None:
        here = comm.Split_type(world_type_shared(), key=comm.Get_rank())
        threads = max(1, (os.cpu_count() or 1) // here.Get_size())
        here.Free()
    return threadpool_limits(limits=threads, user_api="blas")


def world_type_shared() -> int:
    """MPI's ``COMM_TYPE_SHARED`` (the ranks sharing this machine's memory)."""
    return int(require("mpi4py.MPI", "fnn.distributed").COMM_TYPE_SHARED)
