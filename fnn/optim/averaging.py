"""An exponential moving average of the weights: :func:`with_ema` beside its state
:class:`EmaState`, and :func:`ema_params` to read it (for evaluation).

The average lives in the optimiser state, so it is in the :class:`fnn.TrainState`, written
with every checkpoint and resumed bit for bit; training itself never sees it.

>>> import numpy as np, fnn
>>> opt = fnn.optim.with_ema(fnn.sgd(0.5), decay=0.5)
>>> params = {"w": np.array([4.0])}
>>> state = opt.init(params)
>>> for _ in range(2): params, state = fnn.optim.apply_gradients(opt, {"w": np.array([2.0])}, state, params)
>>> params["w"].tolist(), fnn.optim.ema_params(state)["w"].tolist()   # 3, then 2; ema 3 -> 2.5
([2.0], [2.5])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.optim.base import Optimizer, apply_gradients, apply_updates
from fnn.optim.guards import expect_state
from fnn.tree import tree_map
from fnn.validate import decay_rate

__all__ = ["EmaState", "ema_params", "with_ema"]


class EmaState(NamedTuple):
    """:func:`with_ema`'s state: updates averaged, the average (params-shaped) and the inner
    optimiser's state.

    >>> import numpy as np, fnn
    >>> fnn.optim.with_ema(fnn.sgd(0.1)).init({"w": np.ones(1)}).steps
    0
    """

    steps: int  # updates averaged so far
    ema: Any  # the moving average of the params, params-shaped
    inner: Any  # the wrapped optimiser's state


def with_ema(optimizer: Optimizer, decay: float = 0.999) -> Optimizer:
    """``optimizer``, keeping an exponential moving average of the params it produces, as
    ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))``
    with ``update_parameters`` called after every ``optimizer.step()`` (Keras' ``use_ema``,
    optax's ``ema`` of the params): the first update copies the new params, then
    ``ema <- ema + (1 - decay) * (params - ema)`` (torch's ``lerp``). Before the first update
    the average is the initial params. Only params are averaged (a model's state, e.g.
    batch-norm's running statistics, is not: torch's ``use_buffers=False``).

    Read it with :func:`ema_params`; ``fnn.evaluator(..., ema=True)`` evaluates it. Under
    :func:`~fnn.optim.multi_steps`, wrap the inner optimiser (``multi_steps(with_ema(opt), k)``)
    to average once per real update.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.with_ema(fnn.sgd(1.0), decay=0.9)
    >>> p = {"w": np.zeros(1)}
    >>> u, s = opt.update({"w": np.ones(1)}, opt.init(p), p)
    >>> s.ema["w"].tolist(), s.steps   # the first update copies the new params
    ([-1.0], 1)
    """
    decay = decay_rate("with_ema", "decay", decay)
    weight = 1.0 - decay

    def init(params):
        return EmaState(0, tree_map(np.array, params), optimizer.init(params))

    def average(state: EmaState, params) -> EmaState:
        steps = int(state.steps)
        if steps == 0:
            ema = params  # params are never modified in place: no copy needed
        else:
            ema = tree_map(lambda e, p: (e + weight * (p - e)).astype(e.dtype, copy=False),
                           state.ema, params)
        return EmaState(steps + 1, ema, state.inner)

    def update(updates, state, params=None):
        expect_state("with_ema", state, EmaState)
        if params is None:
            raise ValueError("with_ema: update needs params (update(grads, state, params)): "
                             "the average is of the params after the update")
        updates, inner = optimizer.update(updates, state.inner, params)
        new = average(state._replace(inner=inner), apply_updates(params, updates))
        return updates, new

    def step(grads, state, params):
        expect_state("with_ema", state, EmaState)
        params, inner = apply_gradients(optimizer, grads, state.inner, params)
        return params, average(state._replace(inner=inner), params)

    return Optimizer(init, update, step)


def ema_params(opt_state: Any) -> Any:
    """The averaged params kept by a :func:`with_ema` in ``opt_state`` (the first one found,
    depth first), or None when there is none.

    >>> import numpy as np, fnn
    >>> fnn.optim.ema_params(fnn.sgd(0.1).init({"w": np.ones(1)})) is None
    True
    """
    if type(opt_state).__name__ == "EmaState" and hasattr(opt_state, "ema"):
        return opt_state.ema
    if isinstance(opt_state, (tuple, list)):
        children: Any = opt_state
    elif isinstance(opt_state, dict):
        children = opt_state.values()
    else:
        return None
    for child in children:
        found = ema_params(child)
        if found is not None:
            return found
    return None
