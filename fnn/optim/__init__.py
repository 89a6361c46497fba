"""Optimisers as pure ``(init, update)`` pairs over params trees, in the style of optax.

::

    opt = fnn.adamw(fnn.optim.in_epochs(fnn.optim.warmup_cosine_decay(1e-3, 2, 30), spe))
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = fnn.apply_updates(params, updates)
    fnn.optim.stats(opt_state)          # {"lr": ..., "grad_norm": ... (when clipping)}

* :mod:`fnn.optim.transforms`: the small gradient transformations (``scale_by_adam``,
  ``trace``, ``scale_by_rms``, ``add_decayed_weights``, ``clip_by_global_norm``, ...), ``chain``,
  ``masked``, ``apply_updates``, ``apply_gradients`` (update and apply in one pass) and ``stats``;
* :mod:`fnn.optim.schedules`: ``step -> lr`` functions and ``in_epochs``;
* :mod:`fnn.optim.aliases`: ``sgd``, ``momentum``, ``adam``, ``adamw``, ``rmsprop``, each a chain
  of transforms, with its exact update rule and the PyTorch optimiser it matches.

>>> import numpy as np, fnn
>>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.sgd(0.1, momentum=0.9))
>>> params = {"w": np.zeros(2)}
>>> updates, state = opt.update({"w": np.array([6.0, 8.0])}, opt.init(params), params)
>>> updates["w"].round(6).tolist(), fnn.optim.stats(state)
([-0.06, -0.08], {'grad_norm': 10.0, 'lr': 0.1})
"""

from fnn.optim.aliases import adam, adamw, momentum, rmsprop, sgd
from fnn.optim.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    in_epochs,
    join_schedules,
    linear,
    linear_warmup,
    piecewise,
    step_decay,
    warmup_cosine_decay,
)
from fnn.optim.transforms import (
    ClipByGlobalNormState,
    EmptyState,
    GradientTransformation,
    MaskedState,
    Optimizer,
    ScaleByAdamState,
    ScaleByLearningRateState,
    ScaleByRmsState,
    ScaleByStddevState,
    Schedule,
    TraceState,
    add_decayed_weights,
    apply_gradients,
    apply_updates,
    chain,
    clip,
    clip_by_global_norm,
    global_norm,
    masked,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_momentum,
    scale_by_rms,
    scale_by_stddev,
    stats,
    trace,
    weights_only,
)

__all__ = [
    "ClipByGlobalNormState", "EmptyState", "GradientTransformation", "MaskedState", "Optimizer",
    "ScaleByAdamState", "ScaleByLearningRateState", "ScaleByRmsState", "ScaleByStddevState",
    "Schedule", "TraceState", "adam", "adamw", "add_decayed_weights", "apply_gradients", "apply_updates", "chain",
    "clip", "clip_by_global_norm", "constant", "cosine_decay", "exponential_decay", "global_norm",
    "in_epochs", "join_schedules", "linear", "linear_warmup", "masked", "momentum", "piecewise",
    "rmsprop", "scale", "scale_by_adam", "scale_by_learning_rate", "scale_by_momentum",
    "scale_by_rms", "scale_by_stddev", "sgd", "stats", "step_decay", "trace",
    "warmup_cosine_decay", "weights_only",
]
