"""Restricting a transformation to some leaves: :func:`masked` beside its state
:class:`MaskedState`, and the usual weight-decay mask :func:`weights_only`.

>>> import fnn
>>> fnn.optim.weights_only("00_linear/w"), fnn.optim.weights_only("00_linear/b")
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import optree

from fnn.optim.base import Optimizer
from fnn.optim.guards import expect_state
from fnn.tree import path_str

Mask = Callable[[str], bool] | Any  # a predicate on the "/"-joined params path, or a bool tree


def weights_only(path: str) -> bool:
    """The default weight-decay mask: ``True`` for leaves named ``w`` (linear and conv kernels,
    ``"00_linear/w"``), ``False`` for biases (``b``) and anything else (normalisation scales
    and shifts), the usual choice (biases and scales are not decayed).

    >>> weights_only("03_linear/w"), weights_only("03_linear/b")
    (True, False)
    """
    return path.rsplit("/", 1)[-1] == "w"


def _mask_flags(mask: Mask, tree, who: str) -> tuple[list, list, Any, list[bool]]:
    paths, leaves, spec = optree.tree_flatten_with_path(tree)
    keys = [path_str(p) for p in paths]
    if callable(mask):
        return keys, leaves, spec, [bool(mask(k)) for k in keys]
    flags = optree.tree_leaves(mask)
    if optree.tree_structure(mask) != spec:
        raise ValueError(f"{who}: the mask tree has a different structure from the params "
                         f"({len(flags)} leaves, params {len(leaves)}); pass a bool per leaf or a "
                         f"predicate on the params path")
    return keys, leaves, spec, [bool(f) for f in flags]


class MaskedState(NamedTuple):
    """:func:`masked`'s state: the inner transformation's state over the selected leaves.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.masked(fnn.optim.trace(0.9), lambda path: path.endswith("w"))
    >>> state = t.init({"w": np.zeros(2), "b": np.zeros(1)})
    >>> type(state).__name__, type(state.inner).__name__
    ('MaskedState', 'TraceState')
    """

    inner: Any  # the inner transformation's state over the masked leaves only


def masked(inner: Optimizer, mask: Mask) -> Optimizer:
    """Apply ``inner`` only to the leaves ``mask`` selects; the others pass through unchanged
    (as ``optax.masked``). ``mask`` is a predicate on the ``"/"``-joined params path
    (``"00_linear/w"``; e.g. :func:`weights_only`) or a tree of bools shaped like the params.
    ``inner`` sees, and keeps state for, a flat dict ``{path: leaf}`` of the selected leaves.
    No fused step: ``inner``'s would apply to the selected leaves only.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.masked(fnn.optim.scale(0.0), lambda path: path.startswith("a"))
    >>> t.update({"a": np.ones(1), "b": np.ones(1)}, t.init({"a": np.ones(1), "b": np.ones(1)}))[0]
    {'a': array([0.]), 'b': array([1.])}
    """

    def select(tree):
        keys, leaves, _, flags = _mask_flags(mask, tree, "masked")
        return {k: x for k, x, f in zip(keys, leaves, flags) if f}

    def init(params):
        return MaskedState(inner.init(select(params)))

    def update(updates, state, params=None):
        expect_state("masked", state, MaskedState)
        keys, leaves, spec, flags = _mask_flags(mask, updates, "masked")
        chosen = {k: x for k, x, f in zip(keys, leaves, flags) if f}
        new, inner_state = inner.update(chosen, state.inner,
                                        None if params is None else select(params))
        out = [new[k] if f else x for k, x, f in zip(keys, leaves, flags)]
        return optree.tree_unflatten(spec, out), MaskedState(inner_state)

    return Optimizer(init, update)


__all__ = ["Mask", "MaskedState", "masked", "weights_only"]
