"""Data parallelism over threads: a batch split into shards that run at the same time.

numpy's kernels and BLAS release the GIL, so the forward and backward passes of two halves of a
batch run in parallel on two cores, the element-wise ops, copies and reductions included (BLAS
threads alone parallelise only the matrix products). While the shards run, BLAS is held to one
thread each, so the cores are not oversubscribed.

Every loss in fnn is a mean over the batch, so the loss and gradient of the whole batch are the
shards' ones weighted by shard size: the same numbers as without shards, up to float rounding
(the sums are grouped differently). Stochastic layers get one key per shard,
``fold_in(key, shard)``, so dropout draws differ from an unsharded run (still reproducible).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fnn.keys import fold_in
from fnn.tree import tree_leaves, tree_map


def _batch_mean(who: str, value_and_grad_fn: Callable, batch_mean: bool | None) -> None:
    """Shards and chunks are combined weighted by their size: exact for a loss that is a mean
    over the batch, wrong for any other. Refuse what is not known to be one."""
    loss = getattr(value_and_grad_fn, "loss", None)
    if loss is not None:
        reduction = getattr(loss, "reduction", "mean")
        if reduction != "mean":
            raise ValueError(f"{who}: the loss {getattr(loss, 'name', loss)!r} is a {reduction} "
                             "over the batch; shards are combined weighted by size, which is "
                             "exact only for a batch mean")
    elif not batch_mean:
        raise TypeError(f"{who}: expects a function made by fnn.value_and_grad(model, loss) "
                        "(its loss says whether it is a batch mean); for your own function, "
                        "declare that its loss is a mean over the batch with batch_mean=True")


def sharded(value_and_grad_fn: Callable, threads: int, *, batch_mean: bool | None = None) \
        -> Callable:
    """Run ``value_and_grad_fn(params, x, y, *, key=None) -> (value, grads)`` on ``threads``
    shards of each batch (split along axis 0, sizes differing by at most one) at once, and
    combine them; a function with the same signature.

    Valid only when the loss is a **mean over the batch**: the shards' values and gradients are
    combined weighted by shard size. ``value_and_grad_fn`` from :func:`fnn.value_and_grad` says
    so through its loss (``Loss.reduction``); a function of your own needs
    ``batch_mean=True``; anything else is refused.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(4), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> x, y = np.ones((10, 3)), np.zeros((10, 2))
    >>> one = fnn.value_and_grad(model, fnn.mse)
    >>> two = fnn.threads.sharded(one, 2)
    >>> bool(np.isclose(one(params, x, y)[0], two(params, x, y)[0]))
    True
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"sharded: threads must be a positive int, got {threads!r}")
    _batch_mean("sharded", value_and_grad_fn, batch_mean)
    if threads == 1:
        return value_and_grad_fn
    pool: dict[str, Any] = {}  # created on first use: a pool and the BLAS thread controller

    def run(params, x, y, *, key=None):
        n = len(tree_leaves(x)[0])
        bounds = sorted({n * i // threads for i in range(threads + 1)})
        if len(bounds) < 3:  # a batch too small to split
            return value_and_grad_fn(params, x, y, key=key)
        if not pool:
            from concurrent.futures import ThreadPoolExecutor  # on first use: light import

            from threadpoolctl import ThreadpoolController

            pool["executor"] = ThreadPoolExecutor(threads - 1, thread_name_prefix="fnn-shard")
            pool["blas"] = ThreadpoolController()
        shards = list(zip(bounds[:-1], bounds[1:]))

        def shard(i):
            lo, hi = shards[i]
            return value_and_grad_fn(params, tree_map(lambda a: a[lo:hi], x),
                                     tree_map(lambda a: a[lo:hi], y),
                                     key=None if key is None else fold_in(key, i))

        with pool["blas"].limit(limits=1, user_api="blas"):
            futures = [pool["executor"].submit(shard, i) for i in range(1, len(shards))]
            results = [shard(0)] + [_result(f) for f in futures]  # this thread runs shard 0
        weights = [(hi - lo) / n for lo, hi in shards]
        value = sum(w * v for w, (v, _) in zip(weights, results))
        grads = tree_map(lambda *gs: sum(w * g for w, g in zip(weights, gs)),
                         *(g for _, g in results))
        return value, grads

    return run


def chunked(value_and_grad_fn: Callable, size: int, *, batch_mean: bool | None = None) \
        -> Callable:
    """Run ``value_and_grad_fn(params, x, y, *, key=None) -> (value, grads)`` on consecutive
    chunks of each batch, at most ``size`` samples each (sizes differing by at most one), one
    after the other, and combine them as :func:`sharded` does; a function with the same
    signature. A batch of ``size`` samples or fewer runs whole.

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
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"chunked: size must be a positive int, got {size!r}")
    _batch_mean("chunked", value_and_grad_fn, batch_mean)

    def run(params, x, y, *, key=None):
        n = len(tree_leaves(x)[0])
        if n <= size:
            return value_and_grad_fn(params, x, y, key=key)
        count = -(-n // size)
        bounds = [n * i // count for i in range(count + 1)]
        value, grads = 0.0, None
        for i, part in enumerate(slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])):
            v, g = value_and_grad_fn(params, tree_map(lambda a, p=part: a[p], x),
                                     tree_map(lambda a, p=part: a[p], y),
                                     key=None if key is None else fold_in(key, i))
            w = (part.stop - part.start) / n
            value += w * v
            grads = (tree_map(lambda b, w=w: w * b, g) if grads is None
                     else tree_map(lambda a, b, w=w: a + w * b, grads, g))
        return value, grads

    run.loss = getattr(value_and_grad_fn, "loss", None)
    return run


def _result(future) -> Any:
    """``future.result()``, polled rather than slept on: the wait is short (the shards'
    imbalance), and waking a sleeping thread costs more than that on a virtual machine."""
    while not future.done():
        time.sleep(0)  # releases the GIL for the shard that is still running
    return future.result()


__all__ = ["chunked", "sharded"]
