"""Data parallelism over threads: a batch split into shards that run at the same time.

numpy's kernels and BLAS release the GIL, so the forward and backward passes of two halves of a
batch run in parallel on two cores, the element-wise ops, copies and reductions included (BLAS
threads alone parallelise only the matrix products). While the shards run, BLAS is held to one
thread each, so the cores are not oversubscribed.

Every loss in fnn is a mean over the batch, so the loss and gradient of the whole batch are the
shards' ones weighted by shard size: the same numbers as without shards, up to float rounding
(the sums are grouped differently). A mean over the tokens that count (cross-entropy with
``ignore_index``) is weighted by each shard's count of them (``Loss.terms``), a ``"sum"`` loss
summed. Stochastic layers get one key per shard,
``fold_in(key, shard)``, so dropout draws differ from an unsharded run (still reproducible).

Layers whose output depends on the whole batch (batch-norm's statistics) sum their partial
results over the shards with :func:`allreduce` (outside shards, it returns its arguments), so a
sharded batch is normalised exactly as the whole batch would be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from fnn.core import GradFn
from fnn.keys import fold_in
from fnn.tree import tree_leaves, tree_map
from fnn.validate import positive_int


class _Collective:
    """The shards of one batch, meeting at a barrier to sum their partial results."""

    def __init__(self, weights: list[float]):
        self.weights = weights
        self.slots: list[Any] = [None] * len(weights)
        self.barrier = threading.Barrier(len(weights))
        self.result: tuple = ()


_local = threading.local()  # .collective, .shard: set while a shard runs


class Processes(NamedTuple):
    """This process's part of a batch split across processes (``fnn.distributed``'s ranks):
    ``reduce(values) -> sums`` over the processes, this process's share of the batch
    (``weight``), and its rows: ``offset`` of ``total`` (``local`` of them here).

    >>> from fnn.threads import Processes
    >>> Processes(lambda values: values, weight=0.5, offset=16, local=16, total=32).offset
    16
    """

    reduce: Callable[[tuple], tuple]
    weight: float
    offset: int
    local: int
    total: int


_processes: list[Processes] = []  # the innermost is in force (process-wide: shards see it)


@contextmanager
def across_processes(group: Processes) -> Iterator[None]:
    """While it is open, :func:`allreduce` also sums over the processes of ``group`` (after the
    shards' sum, by shard 0 only), :func:`shard_weight` includes this process's share and
    :func:`batch_rows` gives its rows (for dropout masks that equal one process's).

    >>> from fnn.threads import Processes, across_processes, allreduce, batch_rows
    >>> twice = Processes(lambda values: tuple(2 * v for v in values), 0.5, 16, 16, 32)
    >>> with across_processes(twice):   # a second process holding the same values
    ...     allreduce(3.0), batch_rows(16)
    ((6.0,), (16, 32))
    """
    _processes.append(group)
    try:
        yield
    finally:
        _processes.pop()


def allreduce(*values) -> tuple:
    """The sums of ``values`` (numbers or arrays) over the shards running the same batch, in
    shard order (every shard gets the same bits), then over the processes sharing it (see
    :func:`across_processes`); outside both, ``values`` as given.

    Every shard must call it the same number of times, in the same order (the shards run the
    same model). A shard that fails breaks the barrier, so the others fail too instead of
    waiting forever.

    >>> from fnn.threads import allreduce
    >>> allreduce(3, 4.0)          # not in a shard: nothing to sum with
    (3, 4.0)
    """
    group = getattr(_local, "collective", None)
    outer = _processes[-1].reduce if _processes else None
    if group is None:
        return values if outer is None else outer(values)
    group.slots[_local.shard] = values
    if group.barrier.wait() == 0:  # one shard sums (and reduces across processes) for all
        first, *rest = group.slots
        sums = tuple(sum((slot[i] for slot in rest), first[i]) for i in range(len(values)))
        group.result = sums if outer is None else outer(sums)
    group.barrier.wait()  # nobody writes its next values before everyone has read these
    return group.result


def shard_weight() -> float:
    """This shard's share of the batch (its size over the batch's), 1.0 outside shards (and
    processes).

    >>> from fnn.threads import shard_weight
    >>> shard_weight()
    1.0
    """
    group = getattr(_local, "collective", None)
    weight = 1.0 if group is None else group.weights[_local.shard]
    return weight * _processes[-1].weight if _processes else weight


def batch_rows(rows: int) -> tuple[int, int] | None:
    """``(offset, total)``: where this process's ``rows`` rows sit in the batch it shares with
    other processes (:func:`across_processes`); None outside them, in a thread shard, or when
    ``rows`` is not this process's batch size. Dropout draws the whole batch's mask from the
    step's key and keeps these rows, so the draws equal one process's.

    >>> from fnn.threads import batch_rows
    >>> batch_rows(16) is None
    True
    """
    if not _processes or getattr(_local, "collective", None) is not None:
        return None
    group = _processes[-1]
    return (group.offset, group.total) if rows == group.local else None


def _in_shard(group: _Collective | None, i: int, fn: Callable, *args, **kwargs):
    """Run ``fn`` as shard ``i`` of ``group``: :func:`allreduce` sums over the group."""
    _local.collective, _local.shard = group, i
    try:
        return fn(*args, **kwargs)
    except BaseException:
        if group is not None:
            group.barrier.abort()
        raise
    finally:
        _local.collective = None


def _declared(who: str, grad_fn: GradFn | Callable, batch_mean: bool | None,
              stateful: bool | None) -> GradFn:
    """``grad_fn`` as a :class:`GradFn` whose results may be combined weighted by size.

    Shards and chunks are combined weighted by their size: exact for a loss that is a mean
    over the batch, wrong for any other. A GradFn says so through its loss
    (``Loss.reduction``); a plain function (a GradFn wrapped in one included) declares nothing
    and is refused unless ``batch_mean=True`` (and ``stateful=True`` for a model with batch
    statistics)."""
    if isinstance(grad_fn, GradFn):
        loss, declared = grad_fn.loss, grad_fn.stateful
        if stateful is not None and bool(stateful) != declared:
            raise ValueError(f"{who}: stateful={stateful!r} contradicts the GradFn's "
                             f"stateful={declared!r}")
    elif not callable(grad_fn):
        raise TypeError(f"{who}: expects a GradFn (fnn.value_and_grad(model, loss)) or a "
                        f"function, got {type(grad_fn).__name__}")
    else:
        loss, declared = None, bool(stateful)
    if loss is not None:
        reduction = getattr(loss, "reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{who}: the loss {getattr(loss, 'name', loss)!r} has reduction "
                             f"{reduction!r}; shards are combined as a mean (weighted by size "
                             "or by Loss.terms) or a sum, nothing else")
    elif not batch_mean:
        raise TypeError(f"{who}: expects a fnn.GradFn, as fnn.value_and_grad(model, loss) "
                        "makes (its loss says whether it is a batch mean); for your own "
                        "function (or one wrapping a GradFn), declare that its loss is a mean "
                        "over the batch with batch_mean=True (and stateful=True when it takes "
                        "and returns a model state)")
    fn = grad_fn.fn if isinstance(grad_fn, GradFn) else grad_fn
    return GradFn(fn, loss, declared)


def _combine_weights(loss: Any, y: Any, parts: list[tuple[int, int]]) -> list[float] | None:
    """How the pieces ``parts`` of a batch combine: by size for a batch mean; by
    ``loss.terms`` of each piece's targets for a mean over what counts (None when nothing in
    the batch counts: run it whole); 1 each for a sum."""
    n = parts[-1][1] - parts[0][0]
    reduction, terms = getattr(loss, "reduction", "mean"), getattr(loss, "terms", None)
    if reduction == "sum":
        return [1.0] * len(parts)
    if terms is None:
        return [(hi - lo) / n for lo, hi in parts]
    counts = [terms(tree_map(lambda a, lo=lo, hi=hi: a[lo:hi], y)) for lo, hi in parts]
    total = sum(counts)
    return [c / total for c in counts] if total else None


def _undeclared_state(who: str, result: tuple) -> None:
    """A function declared stateless returned something else than ``(value, grads)`` (a
    state): refuse it rather than drop it."""
    raise ValueError(f"{who}: the function returned {len(result)} values, not (value, grads): "
                     "for a model with state pass stateful=True (a GradFn from "
                     "fnn.value_and_grad declares it)")


def sharded(grad_fn: GradFn | Callable, threads: int, *, batch_mean: bool | None = None,
            stateful: bool | None = None) -> GradFn:
    """Run ``grad_fn(params, x, y, *, key=None) -> (value, grads)`` on ``threads`` shards of
    each batch (split along axis 0, sizes differing by at most one) at once, and combine them;
    a :class:`fnn.GradFn` with the same signature.

    Valid only when the loss is a **mean over the batch**: the shards' values and gradients are
    combined weighted by shard size. A :class:`fnn.GradFn` (from :func:`fnn.value_and_grad`)
    says so through its loss (``Loss.reduction``) and says whether the model has state; a
    function of your own needs ``batch_mean=True`` (and ``stateful=True`` if it takes
    ``state=`` and returns ``(value, grads, new_state)``); anything else is refused.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(4), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> x, y = np.ones((10, 3)), np.zeros((10, 2))
    >>> one = fnn.value_and_grad(model, fnn.mse)
    >>> two = fnn.threads.sharded(one, 2)
    >>> bool(np.isclose(one(params, x, y)[0], two(params, x, y)[0]))
    True
    """
    threads = positive_int("sharded", "threads", threads)
    declared = _declared("sharded", grad_fn, batch_mean, stateful)
    if threads == 1:
        return declared
    fn, stateful, loss = declared.fn, declared.stateful, declared.loss
    pool: dict[str, Any] = {}  # created on first use: a pool and the BLAS thread controller

    def run(params, x, y, *, key=None, **state):
        n = len(tree_leaves(x)[0])
        bounds = sorted({n * i // threads for i in range(threads + 1)})
        if len(bounds) < 3:  # a batch too small to split
            return fn(params, x, y, key=key, **state)
        if not pool:
            from concurrent.futures import ThreadPoolExecutor  # on first use: light import

            from threadpoolctl import ThreadpoolController

            pool["executor"] = ThreadPoolExecutor(threads - 1, thread_name_prefix="fnn-shard")
            pool["blas"] = ThreadpoolController()
        shards = list(zip(bounds[:-1], bounds[1:]))
        weights = _combine_weights(loss, y, shards)
        if weights is None:  # nothing in the batch counts: the loss's own answer
            return fn(params, x, y, key=key, **state)
        sizes = [(hi - lo) / n for lo, hi in shards]
        group = _Collective(sizes) if stateful else None  # batch statistics: allreduce

        def shard(i):
            lo, hi = shards[i]
            return _in_shard(group, i, fn, params,
                             tree_map(lambda a: a[lo:hi], x), tree_map(lambda a: a[lo:hi], y),
                             key=None if key is None else fold_in(key, i), **state)

        with pool["blas"].limit(limits=1, user_api="blas"):
            futures = [pool["executor"].submit(shard, i) for i in range(1, len(shards))]
            try:
                first = shard(0)  # this thread runs shard 0
            except BaseException as err:
                first = err
            results = [first] + [_result(f) for f in futures]
        _raise_first_failure(results)
        if not stateful and len(results[0]) != 2:
            _undeclared_state("sharded", results[0])
        state_out = results[0][2] if stateful else None
        weights, results = _nonzero(weights, results)  # a shard where nothing counts: skip
        value = sum(w * r[0] for w, r in zip(weights, results))
        grads = tree_map(lambda *gs: _weighted_sum(weights, gs), *(r[1] for r in results))
        # with state, every shard computed the same new state (the batch's statistics)
        return (value, grads, state_out) if stateful else (value, grads)

    return GradFn(run, loss, stateful)


def chunked(grad_fn: GradFn | Callable, size: int, *, batch_mean: bool | None = None,
            stateful: bool | None = None) -> GradFn:
    """Run ``grad_fn(params, x, y, *, key=None) -> (value, grads)`` on consecutive chunks of
    each batch, at most ``size`` samples each (sizes differing by at most one), one after the
    other, and combine them as :func:`sharded` does; a :class:`fnn.GradFn` with the same
    signature. A batch of ``size`` samples or fewer runs whole. Not for models with state
    (chunks cannot share batch statistics).

    Same numbers up to float rounding; what changes is memory: a conv net's activations and
    patch matrices for a chunk stay in the CPU's caches between the forward and the backward
    pass, where a large batch's spill to main memory (its cost per sample then grows with the
    batch). Stochastic layers get ``fold_in(key, chunk)``, as shards do.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(4), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> x, y = np.ones((10, 3)), np.zeros((10, 2))
    >>> one = fnn.value_and_grad(model, fnn.mse)
    >>> bool(np.isclose(one(params, x, y)[0], fnn.threads.chunked(one, 4)(params, x, y)[0]))
    True
    """
    size = positive_int("chunked", "size", size)
    declared = _declared("chunked", grad_fn, batch_mean, stateful)
    if declared.stateful:
        raise ValueError("chunked: the model keeps batch statistics (batch_norm), which chunks "
                         "run one after the other cannot share; use threads= (shards share "
                         "them) or a larger chunk, or no chunk")
    fn, loss = declared.fn, declared.loss

    def run(params, x, y, *, key=None):
        n = len(tree_leaves(x)[0])
        if n <= size:
            return fn(params, x, y, key=key)
        count = -(-n // size)
        bounds = [n * i // count for i in range(count + 1)]
        parts = list(zip(bounds[:-1], bounds[1:]))
        weights = _combine_weights(loss, y, parts)
        if weights is None:  # nothing in the batch counts: the loss's own answer
            return fn(params, x, y, key=key)
        value, grads = 0.0, None
        for i, (lo, hi) in enumerate(parts):
            w = weights[i]
            if not w:  # nothing counts in this chunk
                continue
            part = slice(lo, hi)
            result = fn(params, tree_map(lambda a, p=part: a[p], x),
                        tree_map(lambda a, p=part: a[p], y),
                        key=None if key is None else fold_in(key, i))
            if len(result) != 2:
                _undeclared_state("chunked", result)
            v, g = result
            value += w * v
            grads = (tree_map(lambda b, w=w: w * b, g) if grads is None
                     else tree_map(lambda a, b, w=w: _add_weighted(a, w, b), grads, g))
        return value, grads

    return GradFn(run, declared.loss, False)


def _add_weighted(total, w: float, a):
    """``total + w * a``, added into ``total`` (a sum this module owns) when the shapes and
    dtypes allow: one temporary instead of two per leaf (LeNet's dense kernel is 1.6 MB)."""
    term = w * a
    if isinstance(total, np.ndarray) and total.shape == np.shape(term) \
            and total.dtype == np.result_type(total, term):
        return np.add(total, term, out=total)
    return total + term


def _nonzero(weights: list[float], results: list) -> tuple[list[float], list]:
    """The shards with a non-zero weight (one where nothing counts has a nan loss)."""
    kept = [(w, r) for w, r in zip(weights, results) if w]
    return [w for w, _ in kept], [r for _, r in kept]


def _weighted_sum(weights: list[float], arrays) -> Any:
    """``sum(w * a)`` over the shards' gradients of one leaf."""
    total = weights[0] * arrays[0]
    for w, a in zip(weights[1:], arrays[1:]):
        total = _add_weighted(total, w, a)
    return total


def _result(future) -> Any:
    """``future.result()`` (or the exception it raised), polled rather than slept on: the wait
    is short (the shards' imbalance), and waking a sleeping thread costs more than that on a
    virtual machine."""
    while not future.done():
        time.sleep(0)  # releases the GIL for the shard that is still running
    return future.exception() or future.result()


def _raise_first_failure(results: list) -> None:
    """Re-raise a shard's exception: the one that broke the barrier, not the others' echoes."""
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise next((f for f in failures if not isinstance(f, threading.BrokenBarrierError)),
                   failures[0])


__all__ = ["Processes", "across_processes", "allreduce", "batch_rows", "chunked", "shard_weight",
           "sharded"]
