"""The gradient transformations under their old address, ``fnn.optim.transforms.X``, kept
working: each now lives beside its state in a module that says its job.

* :mod:`fnn.optim.base`: ``Optimizer``, ``EmptyState``, ``stateless``, ``chain``,
  ``apply_updates``, ``apply_gradients``;
* :mod:`fnn.optim.scaling`: ``scale``, ``scale_by_learning_rate``, ``scale_by_adam``,
  ``scale_by_rms``, ``scale_by_stddev`` and their states;
* :mod:`fnn.optim.velocity`: ``trace`` (``scale_by_momentum``) and ``TraceState``;
* :mod:`fnn.optim.clipping`: ``clip``, ``clip_by_global_norm``, ``global_norm``;
* :mod:`fnn.optim.masking`: ``masked``, ``MaskedState``, ``weights_only``;
* :mod:`fnn.optim.decay`: ``add_decayed_weights``;
* :mod:`fnn.optim.reporting`: ``stats``;
* :mod:`fnn.optim.averaging`: ``with_ema``, ``EmaState``, ``ema_params``;
* :mod:`fnn.optim.accumulation`: ``multi_steps``, ``MultiStepsState``;
* :mod:`fnn.optim.partition`: ``multi_transform``, ``MultiTransformState``, ``set_to_zero``,
  ``freeze``;
* :mod:`fnn.optim.guards`: the checks of gradients and states (not re-exported).

``fnn.optim`` re-exports every name of its ``__all__``.

>>> import fnn
>>> fnn.optim.transforms.scale_by_adam is fnn.optim.scale_by_adam
True
"""

from fnn.optim.accumulation import MultiStepsState, multi_steps
from fnn.optim.averaging import EmaState, ema_params, with_ema
from fnn.optim.base import (
    EmptyState,
    GradientTransformation,
    Optimizer,
    Schedule,
    apply_gradients,
    apply_updates,
    chain,
)
from fnn.optim.clipping import ClipByGlobalNormState, clip, clip_by_global_norm, global_norm
from fnn.optim.decay import add_decayed_weights
from fnn.optim.masking import Mask, MaskedState, masked, weights_only  # noqa: F401 (Mask)
from fnn.optim.partition import MultiTransformState, freeze, multi_transform, set_to_zero
from fnn.optim.reporting import stats
from fnn.optim.scaling import (
    ScaleByAdamState,
    ScaleByLearningRateState,
    ScaleByRmsState,
    ScaleByStddevState,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_stddev,
)
from fnn.optim.velocity import TraceState, scale_by_momentum, trace

__all__ = [
    "ClipByGlobalNormState", "EmaState", "EmptyState", "GradientTransformation", "MaskedState",
    "MultiStepsState", "MultiTransformState", "Optimizer", "ScaleByAdamState", "ScaleByLearningRateState", "ScaleByRmsState",
    "ScaleByStddevState", "Schedule", "TraceState", "add_decayed_weights", "apply_gradients",
    "apply_updates", "chain", "clip", "clip_by_global_norm", "ema_params", "freeze",
    "global_norm", "masked", "multi_steps", "multi_transform", "scale",
    "scale_by_adam", "scale_by_learning_rate", "scale_by_momentum", "scale_by_rms",
    "scale_by_stddev", "set_to_zero", "stats", "trace", "weights_only", "with_ema",
]
