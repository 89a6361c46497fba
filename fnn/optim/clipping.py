"""Clipping the updates: by their global norm (:func:`clip_by_global_norm`, beside its state,
which remembers the norm for :func:`~fnn.optim.stats`) or entry by entry (:func:`clip`).

>>> import numpy as np, fnn
>>> fnn.optim.global_norm({"a": np.array([3.0]), "b": np.array([4.0])})
5.0
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fnn.optim.base import Optimizer, stateless
from fnn.optim.guards import expect_state
from fnn.tree import tree_leaves, tree_map
from fnn.validate import positive


def global_norm(tree) -> float:
    """``sqrt(sum of squares of every entry of every leaf)`` as a Python float.

    >>> import numpy as np
    >>> global_norm({"a": np.array([3.0]), "b": {"w": np.array([[4.0]], np.float32)}})
    5.0
    """
    return math.sqrt(sum(float(np.vdot(x, x)) for x in tree_leaves(tree)))


class ClipByGlobalNormState(NamedTuple):
    """:func:`clip_by_global_norm`'s state: the global norm of the last gradients, before
    clipping (what :func:`~fnn.optim.stats` reports as ``"grad_norm"``).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.clip_by_global_norm(1.0)
    >>> _, state = t.update({"w": np.array([3.0, 4.0])}, t.init({"w": np.zeros(2)}))
    >>> state
    ClipByGlobalNormState(grad_norm=5.0)
    """

    grad_norm: float  # global L2 norm of the last gradients, before clipping (nan before any)


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Rescale all leaves together so their global L2 norm is at most ``max_norm``, exactly as
    ``torch.nn.utils.clip_grad_norm_(params, max_norm)``: with ``n`` = :func:`global_norm` of
    ``u``, ``u -> u * min(1, max_norm / (n + 1e-6))``; a nan or infinite entry anywhere makes ``n``
nan or inf and, as in torch, every leaf nan (or zero where finite, for inf). The state keeps ``n`` (before clipping)
    for :func:`~fnn.optim.stats`.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.clip_by_global_norm(1.0)
    >>> u, s = t.update({"a": np.array([3.0]), "b": np.array([4.0])}, t.init(None))
    >>> [round(float(x[0]), 4) for x in u.values()], s.grad_norm
    ([0.6, 0.8], 5.0)
    """
    max_norm = positive("clip_by_global_norm", "max_norm", max_norm)

    def init(params):
        return ClipByGlobalNormState(math.nan)

    def update(updates, state, params=None):
        expect_state("clip_by_global_norm", state, ClipByGlobalNormState)
        norm = global_norm(updates)
        factor = max_norm / (norm + 1e-6)
        if not factor >= 1.0:  # nan too: a nan norm makes every leaf nan, as in torch
            with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as in torch, without a word
                updates = tree_map(lambda u: factor * u, updates)
        return updates, ClipByGlobalNormState(norm)

    return Optimizer(init, update)


def clip(max_delta: float) -> Optimizer:
    """Clip every entry to ``[-max_delta, max_delta]``
    (``torch.nn.utils.clip_grad_value_(params, max_delta)``). No state.

    >>> import numpy as np, fnn
    >>> fnn.optim.clip(1.0).update({"w": np.array([-3.0, 0.5, 2.0])}, fnn.optim.EmptyState())[0]
    {'w': array([-1. ,  0.5,  1. ])}
    """
    max_delta = positive("clip", "max_delta", max_delta)

    def update(updates, state, params=None):
        return tree_map(lambda u: np.clip(u, -max_delta, max_delta), updates), state

    return stateless(update)


__all__ = ["ClipByGlobalNormState", "clip", "clip_by_global_norm", "global_norm"]
