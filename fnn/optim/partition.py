"""Different transformations for different parts of the params tree: :func:`multi_transform`
beside its state :class:`MultiTransformState`, :func:`set_to_zero` and :func:`freeze`
(fine-tuning: some leaves never move and cost no optimiser memory).

>>> import numpy as np, fnn
>>> params = {"body": {"w": np.ones(2)}, "head": {"w": np.ones(2)}}
>>> opt = fnn.optim.freeze(fnn.adam(0.1), lambda path: path.startswith("body/"))
>>> state = opt.init(params)
>>> grads = {"body": {"w": np.ones(2)}, "head": {"w": np.ones(2)}}
>>> new, state = fnn.optim.apply_gradients(opt, grads, state, params)
>>> new["body"]["w"] is params["body"]["w"], new["head"]["w"].round(3).tolist()
(True, [0.9, 0.9])
>>> sorted(state.inner["train"][0].mu)     # Adam's moments: the trained leaves only
['head']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import optree

from fnn.optim.base import Optimizer, apply_gradients, stateless
from fnn.optim.guards import expect_state
from fnn.tree import path_str, unflatten_paths

__all__ = ["MultiTransformState", "freeze", "multi_transform", "set_to_zero"]

Labels = Callable[[str], str] | Any  # a function of the "/"-joined params path, or a label tree


class MultiTransformState(NamedTuple):
    """:func:`multi_transform`'s state: each group's transformation's state, over that group's
    leaves only, by label.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.multi_transform({"a": fnn.sgd(0.1), "b": fnn.optim.set_to_zero()},
    ...                               lambda path: "a" if path == "w" else "b")
    >>> sorted(t.init({"w": np.ones(1), "b": np.ones(1)}).inner)
    ['a', 'b']
    """

    inner: dict  # label -> that group's transformation's state


def set_to_zero() -> Optimizer:
    """Updates of zero (optax's ``set_to_zero``); no state, and a fused step that returns the
    params themselves (not even a copy): what frozen leaves get.

    >>> import numpy as np, fnn
    >>> fnn.optim.set_to_zero().update({"w": np.ones(2)}, fnn.optim.EmptyState())[0]
    {'w': array([0., 0.])}
    """
    def update(updates, state, params=None):
        return optree.tree_map(np.zeros_like, updates), state

    def step(updates, state, params):
        return params, state

    return stateless(update)._replace(step=step)


def _groups(labels: Labels, tree, names: Mapping[str, Any]) -> tuple[list[str], list, Any, list]:
    """``(paths, leaves, spec, label per leaf)`` of ``tree``, every label checked."""
    paths, leaves, spec = optree.tree_flatten_with_path(tree)
    keys = [path_str(p) for p in paths]
    if callable(labels):
        tags = [labels(k) for k in keys]
    else:
        if optree.tree_structure(labels) != spec:
            raise ValueError("multi_transform: the label tree has a different structure from the "
                             "params; pass a label per leaf or a function of the params path")
        tags = optree.tree_leaves(labels)
    for k, tag in zip(keys, tags):
        if tag not in names:
            raise ValueError(f"multi_transform: params/{k} has the label {tag!r}, which has no "
                             f"transformation (labels: {sorted(names)})")
    return keys, leaves, spec, tags


def _part(keys: list[str], leaves: list, tags: list, label: str) -> dict:
    """The leaves labelled ``label`` as nested dicts (their paths kept, ``"/"``-split)."""
    return unflatten_paths({k: x for k, x, t in zip(keys, leaves, tags) if t == label})


def _flat(tree) -> dict:
    paths, leaves, _ = optree.tree_flatten_with_path(tree)
    return {path_str(p): x for p, x in zip(paths, leaves)}


def multi_transform(transforms: Mapping[str, Optimizer], labels: Labels) -> Optimizer:
    """A transformation per group of leaves (optax's ``multi_transform``; PyTorch's param
    groups): ``labels`` gives each leaf a group label, a function of its ``"/"``-joined path
    (``"00_linear/w"``) or a tree of labels shaped like the params; ``transforms`` maps every
    label to its transformation, which sees (and keeps state for) its group's leaves only, as
    nested dicts. A group given :func:`set_to_zero` is frozen: no update, no memory.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.multi_transform({"slow": fnn.sgd(0.01), "fast": fnn.sgd(1.0)},
    ...                                 lambda path: "slow" if path.startswith("00") else "fast")
    >>> p = {"00_linear": {"w": np.ones(1)}, "01_linear": {"w": np.ones(1)}}
    >>> new, _ = fnn.optim.apply_gradients(opt, fnn.tree.tree_map(np.ones_like, p), opt.init(p), p)
    >>> new["00_linear"]["w"].tolist(), new["01_linear"]["w"].tolist()
    ([0.99], [0.0])
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise ValueError(f"multi_transform: transforms must be a non-empty dict label -> "
                         f"optimiser, got {transforms!r}")
    names = dict(transforms)

    def init(params):
        keys, leaves, _, tags = _groups(labels, params, names)
        return MultiTransformState({name: t.init(_part(keys, leaves, tags, name))
                                    for name, t in names.items()})

    def run(grads, state, params, fused: bool):
        expect_state("multi_transform", state, MultiTransformState)
        keys, leaves, spec, tags = _groups(labels, grads, names)
        p_leaves = None if params is None else optree.tree_leaves(params)
        out: dict = {}
        inner = {}
        for name, t in names.items():
            g = _part(keys, leaves, tags, name)
            p = None if p_leaves is None else _part(keys, p_leaves, tags, name)
            if fused:
                new, inner[name] = apply_gradients(t, g, state.inner[name], p)
            else:
                new, inner[name] = t.update(g, state.inner[name], p)
            out.update(_flat(new))
        return optree.tree_unflatten(spec, [out[k] for k in keys]), MultiTransformState(inner)

    def update(updates, state, params=None):
        return run(updates, state, params, fused=False)

    def step(grads, state, params):
        return run(grads, state, params, fused=True)

    return Optimizer(init, update, step)


def freeze(optimizer: Optimizer, frozen: Callable[[str], bool]) -> Optimizer:
    """``optimizer`` on every leaf but those ``frozen(path)`` selects, which never move and
    have no optimiser state (fine-tuning): ``multi_transform({"train": optimizer, "frozen":
    set_to_zero()}, ...)``.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.freeze(fnn.sgd(0.5), lambda path: path.endswith("b"))
    >>> p = {"b": np.ones(1), "w": np.ones(1)}
    >>> new, state = fnn.optim.apply_gradients(opt, {"b": np.ones(1), "w": np.ones(1)}, opt.init(p), p)
    >>> new, state.inner["frozen"]
    ({'b': array([1.]), 'w': array([0.5])}, EmptyState())
    """
    if not callable(frozen):
        raise TypeError(f"freeze: frozen must be a function of the params path -> bool, got "
                        f"{frozen!r}")
    return multi_transform({"train": optimizer, "frozen": set_to_zero()},
                           lambda path: "frozen" if frozen(path) else "train")
