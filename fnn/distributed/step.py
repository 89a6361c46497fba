"""Data-parallel steps over ranks: each rank computes the gradient of its rows of the batch,
and one all-reduce per step averages the gradients and the loss (:func:`data_parallel`);
:func:`supervised_step` is :func:`fnn.supervised_step` built on it.

While a rank's gradient runs, :func:`fnn.threads.across_processes` is open, so what the batch
shares (batch-norm's statistics, summed through :func:`fnn.threads.allreduce`) is summed over
the ranks too, and dropout draws the whole batch's mask and keeps its rows: ``size`` ranks
with batch ``b`` compute what one process computes with batch ``size * b`` (up to the order
of the sums).
"""

from __future__ import annotations

from typing import Any

from fnn.core import GradFn, Layer
from fnn.distributed.comm import allreduce_mean, allreduce_sum, world
from fnn.gradients import value_and_grad
from fnn.optim import Optimizer
from fnn.threads import Processes, _declared, across_processes
from fnn.training import StepFn
from fnn.training.recipes import gradient_step, step_fingerprint
from fnn.tree import tree_leaves

__all__ = ["data_parallel", "supervised_step"]


def data_parallel(grad_fn: GradFn | Any, comm: Any = None, *, batch_mean: bool | None = None,
                  stateful: bool | None = None) -> GradFn:
    """``grad_fn(params, x, y, *, key=None) -> (value, grads)`` (``state=`` and a third
    result for a model with state) run on this rank's rows ``x, y`` of a batch split evenly
    over the ranks of ``comm``: the gradients and the loss are averaged over the ranks (one
    buffer, one ``Allreduce``), so every rank gets the whole batch's, as one process would.
    The loss must be a mean over the batch (a :class:`fnn.GradFn` says so; a plain function
    declares it with ``batch_mean=True``), as for :func:`fnn.threads.sharded`; a mean over the
    tokens that count (``ignore_index``) weighs each rank by its count of them, and a sum
    adds, so that the result is the whole batch's in every case.

    Every rank must pass the same number of rows (:func:`fnn.distributed.shard` makes sure);
    the step's ``key`` must be the same on every rank. With one rank, ``grad_fn`` itself.

    >>> import numpy as np, fnn
    >>> from mpi4py import MPI
    >>> from fnn.distributed import data_parallel
    >>> model = fnn.linear(2)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> grad = data_parallel(fnn.value_and_grad(model, fnn.mse), MPI.COMM_SELF)
    >>> round(float(grad(params, np.ones((4, 3)), np.zeros((4, 2)))[0]), 4) >= 0
    True
    """
    comm = world(comm)
    declared = _declared("data_parallel", grad_fn, batch_mean, stateful)
    ranks, me = comm.Get_size(), comm.Get_rank()
    if ranks == 1:
        return declared
    fn, has_state = declared.fn, declared.stateful

    def reduce(values: tuple) -> tuple:
        return allreduce_sum(values, comm)

    def run(params, x, y, *, key=None, **state):
        local = len(tree_leaves(x)[0])
        group = Processes(reduce, 1.0 / ranks, me * local, local, local * ranks)
        with across_processes(group):
            result = fn(params, x, y, key=key, **state)
        weight = rank_weight(declared.loss, y, comm)
        value = 0.0 if weight == 0 else float(result[0])  # (nan where nothing counts here)
        grads, (value,) = allreduce_mean(result[1], value, comm=comm, weight=weight)
        return (value, grads, result[2]) if has_state else (value, grads)

    return GradFn(run, declared.loss, has_state)


def rank_weight(loss: Any, y: Any, comm: Any) -> float | None:
    """This rank's weight in the whole batch's loss, as :func:`fnn.threads.sharded` weighs its
    shards: None for a mean over the batch (equal rows on every rank: the plain mean), its
    share of the tokens that count for a mean over them (``Loss.terms``: ranks' counts
    differ; None when nothing counts anywhere: the loss's own answer, nan), 1 for a sum."""
    reduction, terms = getattr(loss, "reduction", "mean"), getattr(loss, "terms", None)
    if reduction == "sum":
        return 1.0
    if terms is None:
        return None
    mine = terms(y)
    (total,) = allreduce_sum((mine,), comm)
    return mine / total if total else None


def supervised_step(model: Layer, loss: Any, optimizer: Optimizer, *, comm: Any = None,
                    threads: int = 1, chunk: int | None = None) -> StepFn:
    """:func:`fnn.supervised_step` whose gradient is :func:`data_parallel` over the ranks of
    ``comm``: each rank is given its rows of the batch (:func:`fnn.distributed.train` shards
    the data) and every rank ends the step with the same state. Its metrics (``"loss"``: the
    whole batch's) and its fingerprint (which adds ``"ranks"``: the world size, so a
    checkpoint is resumed only with as many ranks) are the same on every rank. ``threads``
    and ``chunk`` split each rank's rows further (see :func:`fnn.value_and_grad`); dropout
    masks equal one process's with ``threads=1``.

    >>> import numpy as np, fnn
    >>> from mpi4py import MPI
    >>> from fnn.distributed import supervised_step
    >>> model = fnn.linear(1)
    >>> _, params = model.init(fnn.key(0), (-1, 2))
    >>> step = supervised_step(model, fnn.mse, fnn.sgd(0.1), comm=MPI.COMM_SELF)
    >>> state, metrics = step(fnn.TrainState.create(params, fnn.sgd(0.1)),
    ...                       (np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)))
    >>> state.step, step.fingerprint["ranks"]
    (1, 1)
    """
    comm = world(comm)
    grad_fn = data_parallel(value_and_grad(model, loss, threads=threads, chunk=chunk), comm)
    fingerprint = {**step_fingerprint(model, loss, optimizer, threads, chunk),
                   "ranks": comm.Get_size()}
    return gradient_step(model, grad_fn, optimizer, fingerprint)
