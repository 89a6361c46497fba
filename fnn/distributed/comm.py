"""The MPI side of :mod:`fnn.distributed`: the communicator, rank and size, one-buffer
all-reduces of trees, broadcasts, agreement checks, and aborting every rank on an error.

mpi4py is imported on first use (the ``mpi`` extra), never by ``import fnn``. Every function
takes ``comm=None``, meaning ``MPI.COMM_WORLD``; any mpi4py intracommunicator works
(``MPI.COMM_SELF`` is a one-rank world).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optree

from fnn._extras import require
from fnn.checkpoint import fingerprint_differences

__all__ = ["abort_on_error", "allreduce_mean", "broadcast", "check_agree", "is_root", "rank",
           "size", "world"]


def world(comm: Any = None) -> Any:
    """``comm``, or mpi4py's ``MPI.COMM_WORLD`` (all the processes ``mpiexec`` started; a
    script run without ``mpiexec`` is a world of one). Needs the ``mpi`` extra
    (``pip install 'fnn[mpi]'``: mpi4py with the MPICH wheel, no system MPI needed).

    >>> from fnn.distributed import world
    >>> world("my communicator")     # a communicator passed in is used as is
    'my communicator'
    """
    if comm is not None:
        return comm
    return require("mpi4py.MPI", "fnn.distributed").COMM_WORLD


def rank(comm: Any = None) -> int:
    """This process's rank in ``comm`` (0 to ``size - 1``); rank 0 is the root, the one that
    prints and writes checkpoints.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import rank
    >>> rank(MPI.COMM_SELF)
    0
    """
    return int(world(comm).Get_rank())


def size(comm: Any = None) -> int:
    """How many processes ``comm`` has.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import size
    >>> size(MPI.COMM_SELF)
    1
    """
    return int(world(comm).Get_size())


def is_root(comm: Any = None) -> bool:
    """Whether this process is rank 0 of ``comm``.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import is_root
    >>> is_root(MPI.COMM_SELF)
    True
    """
    return rank(comm) == 0


class _Packer:
    """Packs the leaves of one tree structure (and extra scalars) into one flat buffer and back;
    built once per structure, so a training step does one copy in and views out."""

    def __init__(self, leaves: list, treedef: Any, extra: int):
        shapes = [np.shape(a) for a in leaves]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        self.shapes, self.treedef, self.extra = shapes, treedef, extra
        self.dtypes = [np.asarray(a).dtype for a in leaves]
        self.dtype = np.result_type(np.float32, *self.dtypes)
        self.total = sum(self.sizes) + extra

    def pack(self, leaves: list, extra: tuple) -> np.ndarray:
        buf = np.empty(self.total, self.dtype)
        at = 0
        for a, n in zip(leaves, self.sizes):
            buf[at:at + n] = np.ravel(a)
            at += n
        buf[at:] = extra
        return buf

    def unpack(self, buf: np.ndarray) -> tuple[Any, list]:
        out, at = [], 0
        for n, shape, dtype in zip(self.sizes, self.shapes, self.dtypes):
            out.append(buf[at:at + n].reshape(shape).astype(dtype, copy=False))
            at += n
        return optree.tree_unflatten(self.treedef, out), buf[at:].tolist()


_packers: dict[Any, _Packer] = {}


def allreduce_mean(tree: Any, *scalars: float, comm: Any = None,
                   weight: float | None = None) -> tuple[Any, list[float]]:
    """``(tree, scalars)`` averaged over the ranks of ``comm``: every leaf and scalar packed into
    one buffer (float64 when a leaf is, else float32), one ``Allreduce``, divided by the size.
    With ``weight``, this rank's share of a weighted sum instead, ``sum_r weight_r * x_r`` (the
    ranks' weights summing to one make a weighted mean: tokens that count, say; 1 each, a
    sum). Every rank gets the same bits. A world of one returns its arguments untouched.

    >>> import numpy as np
    >>> from mpi4py import MPI
    >>> from fnn.distributed import allreduce_mean
    >>> allreduce_mean({"w": np.ones(2)}, 0.5, comm=MPI.COMM_SELF)
    ({'w': array([1., 1.])}, [0.5])
    """
    comm = world(comm)
    if comm.Get_size() == 1:
        return tree, list(scalars)
    leaves, treedef = optree.tree_flatten(tree)
    key = (treedef, len(scalars), tuple((np.shape(a), np.asarray(a).dtype.str) for a in leaves))
    packer = _packers.get(key)
    if packer is None:
        packer = _packers[key] = _Packer(leaves, treedef, len(scalars))
    buf = packer.pack(leaves, scalars)
    if weight is not None:
        buf *= weight
    comm.Allreduce(require("mpi4py.MPI", "fnn.distributed").IN_PLACE, buf)
    if weight is None:
        buf /= comm.Get_size()
    return packer.unpack(buf)


def allreduce_sum(values: tuple, comm: Any) -> tuple:
    """The sums over the ranks of ``values`` (ints, floats or arrays, as
    :func:`fnn.threads.allreduce` passes them): one float64 buffer, one ``Allreduce``; each
    comes back with its own type and dtype."""
    arrays = [np.asarray(v) for v in values]
    buf = np.concatenate([a.ravel().astype(np.float64) for a in arrays])
    comm.Allreduce(require("mpi4py.MPI", "fnn.distributed").IN_PLACE, buf)
    out: list[Any] = []
    at = 0
    for v, a in zip(values, arrays):
        part = buf[at:at + a.size].reshape(a.shape)
        at += a.size
        if isinstance(v, (int, np.integer)):
            out.append(int(round(float(part))))
        elif np.ndim(v) == 0 and not isinstance(v, np.ndarray):
            out.append(type(v)(float(part)))
        else:
            out.append(part.astype(a.dtype))
    return tuple(out)


def broadcast(tree: Any, comm: Any = None) -> Any:
    """Rank 0's ``tree`` (any picklable tree: params, a TrainState), on every rank.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import broadcast
    >>> broadcast({"step": 3}, MPI.COMM_SELF)
    {'step': 3}
    """
    comm = world(comm)
    return tree if comm.Get_size() == 1 else comm.bcast(tree, root=0)


def check_agree(what: str, value: Any, comm: Any = None) -> None:
    """Raise the same ``ValueError`` on every rank unless every rank passed an equal
    JSON-like ``value`` (compared as JSON text); the message names the ranks that differ from
    rank 0 and the first difference.

    >>> from mpi4py import MPI
    >>> from fnn.distributed import check_agree
    >>> check_agree("the model", {"layers": 3}, MPI.COMM_SELF)   # one rank agrees with itself
    """
    comm = world(comm)
    if comm.Get_size() == 1:
        return
    mine = json.dumps(value, sort_keys=True, default=repr)
    texts = comm.allgather(mine)
    bad = [r for r, t in enumerate(texts) if t != texts[0]]
    if bad:
        diff = fingerprint_differences(json.loads(texts[0]), json.loads(texts[bad[0]]))
        detail = "; ".join(d.replace("in the checkpoint", "on rank 0").replace(
            " now", f" on rank {bad[0]}") for d in diff[:5]) or "their JSON texts"
        raise ValueError(f"fnn.distributed: the ranks disagree on {what}: rank(s) {bad} differ "
                         f"from rank 0 ({detail}); every rank must run the same script with "
                         "the same model, optimiser, data and seed")


@contextmanager
def abort_on_error(comm: Any = None) -> Iterator[None]:
    """An exception leaving the block on one rank prints its traceback (with the rank) and
    aborts every rank of ``comm`` (``MPI_Abort``): the others may be waiting for it in an
    all-reduce, and would otherwise hang. In a world of one, the exception propagates as
    usual (so a one-rank run behaves as a plain one).

    >>> from mpi4py import MPI
    >>> from fnn.distributed import abort_on_error
    >>> with abort_on_error(MPI.COMM_SELF):
    ...     raise ValueError("one rank: raised as usual")
    Traceback (most recent call last):
    ...
    ValueError: one rank: raised as usual
    """
    comm = world(comm)
    try:
        yield
    except BaseException as err:
        if comm.Get_size() == 1 or isinstance(err, SystemExit):
            raise
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        sys.stderr.write(f"fnn.distributed: rank {comm.Get_rank()} of {comm.Get_size()} "
                         f"failed; aborting every rank\n{text}")
        sys.stderr.flush()
        comm.Abort(1)
        raise
