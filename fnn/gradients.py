"""``value_and_grad``: a model and a loss glued into one :class:`fnn.GradFn`, run whole, in
batch shards on several threads, or in chunks (:mod:`fnn.threads`)."""

from __future__ import annotations

from fnn.core import GradFn, Layer
from fnn.threads import chunked, sharded


def value_and_grad(model: Layer, loss, *, threads: int = 1, chunk: int | None = None) -> GradFn:
    """Glue a model and a loss: ``f(params, x, y, *, key=None) -> (loss_value, grads)``; for a
    model with state, ``f(params, x, y, *, key=None, state) -> (loss_value, grads, new_state)``.
    ``f`` is a :class:`fnn.GradFn` (``f.loss``, ``f.stateful``).

    ``threads > 1`` splits every batch into that many shards run at once on as many cores
    (:func:`fnn.threads.sharded`: same result up to float rounding, one dropout key per shard;
    batch statistics are those of the whole batch). ``chunk``: each shard (or the batch) runs
    as consecutive chunks of at most that many samples (:func:`fnn.threads.chunked`: same
    result up to rounding; a conv net's activations then stay in cache, so large batches cost
    no more per sample; not for models with batch statistics).

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> f = fnn.value_and_grad(model, fnn.mse)
    >>> value, grads = f(params, np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))
    >>> grads["00_linear"]["w"].shape
    (3, 2)
    """
    vjp, loss_vjp = model.vjp, loss.vjp
    if model.stateful:
        def stateful_fn(params, x, y, *, key=None, state=None):
            pred, pullback, new_state = vjp(params, x, key=key, state=state, input_grad=False)
            value, dpred = loss_vjp(pred, y)
            return value, pullback(dpred)[0], new_state

        fn = GradFn(stateful_fn, loss, True)
    else:
        def value_and_grad_fn(params, x, y, *, key=None):
            pred, pullback = vjp(params, x, key=key, input_grad=False)
            value, dpred = loss_vjp(pred, y)
            return value, pullback(dpred)[0]

        fn = GradFn(value_and_grad_fn, loss, False)
    if chunk is not None:
        fn = chunked(fn, chunk)
    return fn if threads == 1 else sharded(fn, threads)


__all__ = ["value_and_grad"]
