"""Data-parallel training on MPI: one model trained by many processes, on one machine or many.

``mpiexec -n 4 python script.py`` starts four copies of a script; in each, ``fnn.distributed``
makes them train one model, as Horovod does: rank 0's initial state is broadcast, every rank
computes the gradient of its rows of each batch, one all-reduce per step averages the
gradients (and the loss), and every rank applies the same update. ``size`` ranks with batch
``b`` each follow the run of one process with batch ``size * b`` (up to the order of float
sums): batch-norm's statistics are the whole batch's, dropout's masks one process's::

    from fnn import distributed
    step = distributed.supervised_step(model, fnn.cross_entropy, fnn.adam(1e-3))
    state, history = distributed.train(step, fnn.batches(x, y, batch_size=64), state,
                                       epochs=10, checkpoint="runs/a")

Launch with ``mpiexec -n 2 python train.py``, or ``python -m fnn.distributed -n 2 train.py``
(the ``mpiexec`` and Python of this environment).

The rooms: ``comm`` (the communicator, rank and size, one-buffer all-reduces, broadcasts,
agreement checks, aborting every rank), ``step`` (:func:`data_parallel`,
:func:`supervised_step`), ``data`` (:func:`shard`), ``loop`` (:func:`train`), ``__main__``
(the launcher).

Needs the ``mpi`` extra (``pip install 'fnn[mpi]'``: mpi4py and the MPICH wheel, which
brings ``mpiexec``); ``import fnn`` never loads this package, and calling it without mpi4py
says which extra to install. ``docs/howto/distributed.md`` says when to use it rather than
``threads=``.
"""

from fnn.distributed.comm import (
    abort_on_error,
    allreduce_mean,
    broadcast,
    check_agree,
    is_root,
    rank,
    size,
    world,
)
from fnn.distributed.data import RankBatches, shard
from fnn.distributed.loop import Ranks, train
from fnn.distributed.step import data_parallel, supervised_step

__all__ = ["RankBatches", "Ranks", "abort_on_error", "allreduce_mean", "broadcast",
           "check_agree", "data_parallel", "is_root", "rank", "shard", "size",
           "supervised_step", "train", "world"]
