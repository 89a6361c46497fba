"""Momentum: :func:`trace`, the velocity buffer of ``torch.optim.SGD`` (``scale_by_momentum``),
beside its state :class:`TraceState`.

(Not named ``momentum.py``: ``fnn.optim.momentum`` is the optimiser.)

>>> import numpy as np, fnn
>>> t = fnn.optim.trace(0.5)
>>> s = t.init({"w": np.zeros(1)})
>>> for g in (1.0, 2.0): u, s = t.update({"w": np.array([g])}, s)
>>> u["w"].tolist(), s.steps   # 0.5 * 1 + 2
([2.5], 2)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.optim.base import Optimizer, deprecated_count
from fnn.optim.guards import expect_state
from fnn.tree import tree_map
from fnn.validate import decay_rate, fraction


class TraceState(NamedTuple):
    """:func:`trace`'s (momentum's) state: updates done and the momentum buffer.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.trace(0.9)
    >>> _, state = t.update({"w": np.ones(2)}, t.init({"w": np.zeros(2)}))
    >>> state.steps, state.trace["w"]
    (1, array([1., 1.]))
    """

    steps: int  # updates done
    trace: Any  # momentum buffer, params-shaped

    @property
    def count(self) -> int:  # type: ignore[override]
        """Deprecated: ``steps`` (warns once)."""
        return deprecated_count(self)


def trace(decay: float, *, nesterov: bool = False, dampening: float = 0.0) -> Optimizer:
    """Momentum in PyTorch's form (``torch.optim.SGD``'s buffer, before the learning rate):
    ``v_1 = g_1``, ``v_t = decay * v_{t-1} + (1 - dampening) * g_t``; the update is ``v_t``,
    or ``g_t + decay * v_t`` with ``nesterov``. ``decay = 0`` passes grads through.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.trace(0.9, dampening=0.5)
    >>> s = t.init({"w": np.zeros(1)})
    >>> for _ in range(2): u, s = t.update({"w": np.array([1.0])}, s)
    >>> u["w"].tolist()   # 1, then 0.9 * 1 + 0.5 * 1
    [1.4]
    """
    decay = decay_rate("trace", "decay", decay)
    dampening = fraction("trace", "dampening", dampening)
    if nesterov and (decay == 0 or dampening != 0):
        raise ValueError(f"trace: nesterov needs decay > 0 and dampening 0 (as torch.optim.SGD), "
                         f"got decay {decay}, dampening {dampening}")
    keep = 1.0 - dampening

    def init(params):
        return TraceState(0, tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        expect_state("trace", state, TraceState)
        steps = int(state.steps)
        if steps == 0:
            v = updates  # PyTorch starts the buffer at the first gradient, undamped
        elif keep == 1.0:
            v = tree_map(lambda v, g: decay * v + g, state.trace, updates)
        else:
            v = tree_map(lambda v, g: decay * v + keep * g, state.trace, updates)
        out = tree_map(lambda g, v: g + decay * v, updates, v) if nesterov else v
        return out, TraceState(steps + 1, v)

    return Optimizer(init, update)


scale_by_momentum = trace

__all__ = ["TraceState", "scale_by_momentum", "trace"]
