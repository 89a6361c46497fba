"""Weight decay: :func:`add_decayed_weights` (no state of its own; a
:class:`~fnn.optim.MaskedState` around none when masked).

>>> import numpy as np, fnn
>>> t = fnn.optim.add_decayed_weights(0.1)
>>> t.update({"w": np.zeros(1)}, t.init(None), {"w": np.array([2.0])})[0]
{'w': array([0.2])}
"""

from __future__ import annotations

from fnn.optim.base import Optimizer, stateless
from fnn.optim.masking import Mask, masked
from fnn.tree import tree_map
from fnn.validate import non_negative


def add_decayed_weights(weight_decay: float, mask: Mask | None = None) -> Optimizer:
    """``u -> u + weight_decay * param`` on the leaves ``mask`` selects (all when ``None``).
    No state (a :class:`~fnn.optim.MaskedState` around none with a mask).

    Before the moment estimates it is L2 regularisation (PyTorch's ``weight_decay`` on SGD,
    Adam, RMSprop); after them and before :func:`~fnn.optim.scale_by_learning_rate` it is
    decoupled weight decay, ``param -= lr * weight_decay * param`` (``torch.optim.AdamW``).
    ``mask``: see :func:`~fnn.optim.masked`.

    >>> import numpy as np, fnn
    >>> params = {"b": np.array([2.0]), "w": np.array([2.0])}
    >>> t = fnn.optim.add_decayed_weights(0.5, mask=fnn.optim.weights_only)
    >>> t.update({"b": np.array([1.0]), "w": np.array([1.0])}, t.init(params), params)[0]
    {'b': array([1.]), 'w': array([2.])}
    """
    weight_decay = non_negative("add_decayed_weights", "weight_decay", weight_decay)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights: update needs params (update(grads, state, params))")
        return tree_map(lambda u, p: u + weight_decay * p, updates, params), state

    t = stateless(update)
    return t if mask is None else masked(t, mask)


__all__ = ["add_decayed_weights"]
