"""Gradient accumulation: :func:`multi_steps` beside its state :class:`MultiStepsState`
(optax's ``MultiSteps``): ``k`` micro-batches make one update.

>>> import numpy as np, fnn
>>> opt = fnn.optim.multi_steps(fnn.sgd(1.0), 2)
>>> params = {"w": np.zeros(1)}
>>> state = opt.init(params)
>>> params, state = fnn.optim.apply_gradients(opt, {"w": np.array([1.0])}, state, params)
>>> params["w"].tolist()          # accumulated, not applied
[0.0]
>>> params, state = fnn.optim.apply_gradients(opt, {"w": np.array([3.0])}, state, params)
>>> params["w"].tolist()          # one step with the mean gradient 2
[-2.0]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.optim.base import Optimizer, apply_gradients
from fnn.optim.guards import expect_state
from fnn.tree import tree_map
from fnn.validate import positive_int

__all__ = ["MultiStepsState", "multi_steps"]


class MultiStepsState(NamedTuple):
    """:func:`multi_steps`' state: micro-batches accumulated since the last update, updates
    done, the sum of their gradients (params-shaped) and the inner optimiser's state.

    >>> import numpy as np, fnn
    >>> fnn.optim.multi_steps(fnn.sgd(0.1), 4).init({"w": np.ones(1)}).mini_steps
    0
    """

    mini_steps: int  # micro-batches accumulated since the last update
    steps: int  # updates done by the inner optimiser
    grads: Any  # sum of the accumulated gradients, params-shaped
    inner: Any  # the wrapped optimiser's state


def multi_steps(optimizer: Optimizer, every: int) -> Optimizer:
    """Accumulate the gradients of ``every`` micro-batches, then give their mean to
    ``optimizer`` for one update (optax's ``MultiSteps(optimizer, every_k_schedule=every)``);
    between updates the params do not move (updates are zeros; the fused step returns the
    params as they are) and ``optimizer``'s state (its step count, so its schedule) is untouched.

    For a loss that is a mean over the batch, ``every`` micro-batches of ``B`` samples give the
    update of one batch of ``every * B`` samples (up to float rounding). The accumulator is
    kept across epochs, so an epoch whose batches are not a multiple of ``every`` carries its
    last micro-batches into the next one.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.multi_steps(fnn.sgd(0.1), 3)
    >>> p = {"w": np.zeros(2)}
    >>> u, s = opt.update({"w": np.ones(2)}, opt.init(p), p)
    >>> u["w"].tolist(), s.mini_steps, s.steps
    ([0.0, 0.0], 1, 0)
    """
    every = positive_int("multi_steps", "every", every)

    def init(params):
        return MultiStepsState(0, 0, tree_map(np.zeros_like, params), optimizer.init(params))

    def accumulate(grads, state) -> tuple[Any, bool]:
        """(the new sum, or the mean when this micro-batch completes an update; done?)"""
        expect_state("multi_steps", state, MultiStepsState)
        done = int(state.mini_steps) + 1 >= every
        if int(state.mini_steps) == 0:  # the sum keeps the accumulator's (params') dtypes
            total = (tree_map(lambda a, g: g.astype(a.dtype, copy=False), state.grads, grads)
                     if not done else tree_map(lambda g: g / float(every), grads))
        elif done:
            total = tree_map(lambda a, g: (a + g) / float(every), state.grads, grads)
        else:
            total = tree_map(lambda a, g: (a + g).astype(a.dtype, copy=False), state.grads, grads)
        return total, done

    def reset(state, inner):
        return MultiStepsState(0, int(state.steps) + 1, tree_map(np.zeros_like, state.grads),
                               inner)

    def update(updates, state, params=None):
        total, done = accumulate(updates, state)
        if not done:
            zeros = tree_map(np.zeros_like, updates)
            return zeros, state._replace(mini_steps=int(state.mini_steps) + 1, grads=total)
        updates, inner = optimizer.update(total, state.inner, params)
        return updates, reset(state, inner)

    def step(grads, state, params):
        total, done = accumulate(grads, state)
        if not done:
            return params, state._replace(mini_steps=int(state.mini_steps) + 1, grads=total)
        params, inner = apply_gradients(optimizer, total, state.inner, params)
        return params, reset(state, inner)

    return Optimizer(init, update, step)
