"""Optimisers as pure ``Optimizer(init, update, step=None)`` triples over params trees, in the
style of optax.

::

    opt = fnn.adamw(fnn.optim.in_epochs(fnn.optim.warmup_cosine_decay(1e-3, 2, 30), spe))
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = fnn.apply_updates(params, updates)
    # or both at once, fused when the optimiser declares a step (every alias below does):
    params, opt_state = fnn.optim.apply_gradients(opt, grads, opt_state, params)
    fnn.optim.stats(opt_state)          # {"lr": ..., "grad_norm": ... (when clipping)}

* :mod:`fnn.optim.base`: the protocol: ``Optimizer``, ``chain``, ``apply_updates``,
  ``apply_gradients`` (the declared fused ``step`` when there is one);
* the transformations, each beside its state: :mod:`fnn.optim.scaling` (``scale``,
  ``scale_by_learning_rate``, ``scale_by_adam``, ``scale_by_rms``, ``scale_by_stddev``),
  :mod:`fnn.optim.velocity` (``trace``: momentum), :mod:`fnn.optim.clipping`
  (``clip_by_global_norm``, ``clip``), :mod:`fnn.optim.masking` (``masked``,
  ``weights_only``), :mod:`fnn.optim.decay` (``add_decayed_weights``),
  :mod:`fnn.optim.averaging` (``with_ema``: a moving average of the weights),
  :mod:`fnn.optim.accumulation` (``multi_steps``: gradient accumulation),
  :mod:`fnn.optim.partition` (``multi_transform``, ``set_to_zero``, ``freeze``: per-group
  transforms and frozen params);
  :mod:`fnn.optim.reporting`: ``stats``; :mod:`fnn.optim.transforms`: all of them under
  their old address;
* :mod:`fnn.optim.schedules`: ``step -> lr`` functions and ``in_epochs``;
* :mod:`fnn.optim.aliases`: ``sgd``, ``momentum``, ``adam``, ``adamw``, ``rmsprop``, each a chain
  of transforms, with its exact update rule and the PyTorch optimiser it matches.

Deprecated (warn once): ``fnn.optim.linear`` (now :func:`linear_schedule`), a state's
``count`` (now ``steps``).

>>> import numpy as np, fnn
>>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.sgd(0.1, momentum=0.9))
>>> params = {"w": np.zeros(2)}
>>> updates, state = opt.update({"w": np.array([6.0, 8.0])}, opt.init(params), params)
>>> updates["w"].round(6).tolist(), fnn.optim.stats(state)
([-0.06, -0.08], {'grad_norm': 10.0, 'lr': 0.1})
"""

from fnn.optim.aliases import adam, adamw, momentum, rmsprop, sgd
from fnn.optim.base import stateless
from fnn.optim.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    in_epochs,
    join_schedules,
    linear,  # noqa: F401  (deprecated alias of linear_schedule, warns once; not in __all__)
    linear_schedule,
    linear_warmup,
    piecewise,
    step_decay,
    warmup_cosine_decay,
)
from fnn.optim.transforms import *  # noqa: F403  (the transformations and their states)
from fnn.optim.transforms import __all__ as _transform_names

__all__ = [
    *_transform_names, "adam", "adamw", "constant", "cosine_decay", "exponential_decay",
    "in_epochs", "join_schedules", "linear_schedule", "linear_warmup", "momentum", "piecewise",
    "rmsprop", "sgd", "stateless", "step_decay", "warmup_cosine_decay",
]
