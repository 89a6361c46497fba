"""Checks an optimiser makes on what it is given, worded with the params path or the states'
names: gradients shaped like the params (:func:`check_gradients`) and a state made by the
same transformation (:func:`expect_state`).

Both run every step, so each takes its usual case (nested dicts of arrays, the right state
type) in a few comparisons and words the error only on a mismatch.

>>> import numpy as np
>>> from fnn.optim.guards import check_gradients
>>> check_gradients({"b": np.zeros((1, 3))}, {"b": np.zeros(3)}, "apply_gradients")
Traceback (most recent call last):
...
ValueError: apply_gradients: the gradient of params/b has shape (1, 3), the param (3,) (a gradient must have its param's shape)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import optree

from fnn.tree import path_str

__all__ = ["check_gradients", "expect_state", "transform_name"]


def _same_dicts(grads: dict, params: dict) -> bool:
    """True when two nested dicts of arrays have the same keys and leaf shapes (fast path)."""
    if len(grads) != len(params):
        return False
    for k, p in params.items():
        g = grads.get(k)
        if type(p) is np.ndarray:
            if type(g) is not np.ndarray or g.shape != p.shape:
                return False
        elif type(p) is not dict or type(g) is not dict or not _same_dicts(g, p):
            return False
    return True


def check_gradients(grads: Any, params: Any, who: str) -> None:
    """Raise ``ValueError`` naming the params path when ``grads`` is not shaped like ``params``:
    a missing or extra key, or a leaf of another shape (a ``(1, 3)`` gradient would otherwise
    broadcast a ``(3,)`` bias into ``(1, 3)``).

    >>> import numpy as np
    >>> check_gradients({"w": np.zeros(2)}, {"w": np.zeros(2), "b": np.zeros(1)}, "sgd")
    Traceback (most recent call last):
    ...
    ValueError: sgd: the gradients have no entry for params/b (a gradient tree must have the params' keys)
    """
    if type(params) is dict and type(grads) is dict and _same_dicts(grads, params):
        return
    p_paths, p_leaves, _ = optree.tree_flatten_with_path(params)
    g_paths, g_leaves, _ = optree.tree_flatten_with_path(grads)
    p_map = {path_str(p): x for p, x in zip(p_paths, p_leaves)}
    g_map = {path_str(p): x for p, x in zip(g_paths, g_leaves)}
    missing = [k for k in p_map if k not in g_map]
    if missing:
        raise ValueError(f"{who}: the gradients have no entry for params/{missing[0]}"
                         f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''} "
                         "(a gradient tree must have the params' keys)")
    extra = [k for k in g_map if k not in p_map]
    if extra:
        raise ValueError(f"{who}: the gradients have an entry params/{extra[0]} that the params "
                         "do not have (a gradient tree must have the params' keys)")
    for k, p in p_map.items():
        if np.shape(g_map[k]) != np.shape(p):
            raise ValueError(f"{who}: the gradient of params/{k} has shape "
                             f"{np.shape(g_map[k])}, the param {np.shape(p)} (a gradient must "
                             "have its param's shape)")
    if optree.tree_structure(grads) != optree.tree_structure(params):
        raise ValueError(f"{who}: the gradients' containers differ from the params' "
                         f"({optree.tree_structure(grads)} vs {optree.tree_structure(params)})")


def transform_name(state_type: str) -> str:
    """The transformation a state type belongs to, by the naming rule ``XyzState -> xyz``.

    >>> transform_name("ScaleByAdamState"), transform_name("TraceState")
    ('scale_by_adam', 'trace')
    """
    stem = state_type[:-5] if state_type.endswith("State") else state_type
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


def expect_state(who: str, state: Any, cls: type) -> None:
    """Refuse a state that is not ``cls`` (nor a look-alike of that name, as a file read
    without a template gives), naming both transformations: an Adam state handed to an RMSprop
    step would otherwise be read field by field as if it were its own.

    >>> from fnn.optim import ScaleByAdamState, ScaleByRmsState
    >>> expect_state("scale_by_rms", ScaleByAdamState(0, {}, {}), ScaleByRmsState)
    Traceback (most recent call last):
    ...
    TypeError: scale_by_rms: got a ScaleByAdamState (the state of scale_by_adam) where its ScaleByRmsState belongs: this optimiser state was made by another optimiser; make it with this optimiser's init(params)
    """
    kind = type(state)
    if kind is cls or kind.__name__ == cls.__name__:
        return
    name = kind.__name__
    what = (f"a {name} (the state of {transform_name(name)})" if name.endswith("State")
            else f"a {name}")
    raise TypeError(f"{who}: got {what} where its {cls.__name__} belongs: this optimiser state "
                    "was made by another optimiser; make it with this optimiser's init(params)")
