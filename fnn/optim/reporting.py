"""What an optimiser state tells of the last update, for the history: :func:`stats`.

>>> import numpy as np, fnn
>>> opt = fnn.sgd(0.1)
>>> fnn.optim.stats(opt.init({"w": np.zeros(1)}))   # nan before the first update
{'lr': nan}
"""

from __future__ import annotations

import math

from fnn.optim.accumulation import MultiStepsState
from fnn.optim.clipping import ClipByGlobalNormState
from fnn.optim.scaling import ScaleByLearningRateState


def stats(opt_state) -> dict[str, float]:
    """What the last update used, read from an optimiser state: ``{"lr": ...}`` from the
    :func:`~fnn.optim.scale_by_learning_rate` in it, and ``"grad_norm"`` (the global norm of
    the gradients before clipping) when a :func:`~fnn.optim.clip_by_global_norm` is in the
    chain. The first of each found (depth first, in chain order) counts; values are nan before
    the first update; ``{}`` when the state has neither. Under
    :func:`~fnn.optim.multi_steps`, the values of the last real update (0.0 before the first:
    the params have not moved), so the divergence guard sees finite metrics. For per-step metrics:
    ``metrics.update(fnn.optim.stats(opt_state))``.

    >>> import numpy as np, fnn
    >>> opt = fnn.adamw(1e-3)
    >>> params = {"w": np.ones(2)}
    >>> _, state = opt.update({"w": np.ones(2)}, opt.init(params), params)
    >>> fnn.optim.stats(state)
    {'lr': 0.001}
    """
    if type(opt_state) is tuple and len(opt_state) == 1 \
            and type(opt_state[0]) is ScaleByLearningRateState:
        return {"lr": float(opt_state[0].lr)}  # sgd's state, every step: no walk
    out: dict[str, float] = {}
    _walk(opt_state, out)
    return out


def _walk(node, out: dict[str, float]) -> None:
    """Record in ``out`` the first learning rate and gradient norm found in ``node``."""
    if isinstance(node, ScaleByLearningRateState):
        out.setdefault("lr", float(node.lr))
    elif isinstance(node, ClipByGlobalNormState):
        out.setdefault("grad_norm", float(node.grad_norm))
    elif isinstance(node, MultiStepsState):
        for k, v in stats(node.inner).items():
            out.setdefault(k, 0.0 if math.isnan(v) else v)
    elif isinstance(node, (tuple, list)):
        for child in node:
            _walk(child, out)
    elif isinstance(node, dict):
        for child in node.values():
            _walk(child, out)


__all__ = ["stats"]
