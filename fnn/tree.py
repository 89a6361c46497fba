"""Small pytree helpers over optree, shared by the optimisers, training loop, io and gradcheck.

Params are nested dicts of numpy arrays. Paths are tuples of keys; ``"/".join`` makes them
readable (``"00_linear/w"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree

PyTree = Any


def tree_map(fn: Callable, tree: PyTree, *rest: PyTree) -> PyTree:
    """Apply ``fn`` leaf-wise over one or more trees of the same structure.

    Trees of nested dicts of arrays (params, grads, moments: what every training step maps)
    are walked in Python, which runs faster inside a training step than optree's general
    flatten and unflatten; anything else (lists, tuples, ``None``, scalar leaves, mismatched
    structures and their errors) goes to ``optree.tree_map``. Either way ``fn`` is called
    once per leaf and the result has the first tree's structure and key order.

    >>> import numpy as np
    >>> from fnn.tree import tree_map
    >>> tree_map(lambda p, g: p - 0.1 * g, {"w": np.ones(2)}, {"w": np.array([1.0, 2.0])})
    {'w': array([0.9, 0.8])}
    """
    if type(tree) is dict:
        out = _mapped(fn, (tree, *rest))
        if out is not None:
            return out
    return optree.tree_map(fn, tree, *rest)


def tree_map_unzip(fn: Callable, outputs: int, tree: PyTree, *rest: PyTree) -> tuple:
    """``outputs`` trees of the first tree's structure from ``fn`` returning an
    ``outputs``-tuple per leaf (several results of one pass per leaf: Adam's moments and
    direction). Nested dicts of arrays are walked in Python, anything else goes to optree.

    >>> import numpy as np
    >>> from fnn.tree import tree_map_unzip
    >>> tree_map_unzip(lambda a, b: (a + b, a - b), 2, {"w": np.ones(1)}, {"w": np.ones(1)})
    ({'w': array([2.])}, {'w': array([0.])})
    """
    if type(tree) is dict:
        out = _mapped(fn, (tree, *rest))
        if out is not None:
            return _unzip(out, outputs)
    leaves, spec = optree.tree_flatten(tree)
    others = [spec.flatten_up_to(r) for r in rest]
    results = [fn(*args) for args in zip(leaves, *others)]
    return tuple(optree.tree_unflatten(spec, [r[i] for r in results]) for i in range(outputs))


def _mapped(fn: Callable, trees: tuple) -> dict | None:
    """``fn`` over the leaves of ``trees``, nested dicts of arrays with the same keys (the whole
    structure checked by :func:`_plan` before any call of ``fn``); None for any other trees."""
    todo: list = []
    out = _plan(trees, todo)
    if out is not None:
        for node, k, leaves in todo:
            node[k] = fn(*leaves)
    return out


def _unzip(tree: dict, outputs: int) -> tuple:
    """The ``outputs`` nested dicts of a nested dict whose leaves are ``outputs``-tuples."""
    outs: tuple[dict, ...] = tuple({} for _ in range(outputs))
    for k, v in tree.items():
        parts = _unzip(v, outputs) if type(v) is dict else v
        for out, part in zip(outs, parts):
            out[k] = part
    return outs


def _plan(trees: tuple, todo: list) -> dict | None:
    """The output's dicts of ``trees[0]``, a nested dict of arrays that every tree of
    ``trees`` has the keys and leaf types of, their leaves listed in ``todo`` as ``(output
    dict, key, the trees' leaves)`` (filled in after the walk); None for any other trees."""
    a, rest = trees[0], trees[1:]
    for b in rest:
        if type(b) is not dict or len(b) != len(a):
            return None
    out: dict = {}
    for k, v in a.items():  # (plain loops, no generators: this runs for every leaf, every step)
        vs = (v, rest[0].get(k)) if len(rest) == 1 else (v, *[b.get(k) for b in rest])
        if type(v) is np.ndarray:
            for w in vs:
                if type(w) is not np.ndarray:
                    return None
            out[k] = None
            todo.append((out, k, vs))
        elif type(v) is dict:
            sub = _plan(vs, todo)
            if sub is None:
                return None
            out[k] = sub
        else:
            return None
    return out


def tree_leaves(tree: PyTree) -> list:
    """The leaves (arrays) of a tree as a list, in optree's order (dict keys sorted).

    >>> from fnn.tree import tree_leaves
    >>> tree_leaves({"b": 2, "a": {"w": 1}})
    [1, 2]
    """
    return optree.tree_leaves(tree)


def tree_zeros_like(tree: PyTree) -> PyTree:
    """A tree of the same structure with every leaf replaced by zeros of its shape and dtype.

    >>> import numpy as np
    >>> from fnn.tree import tree_zeros_like
    >>> tree_zeros_like({"w": np.ones((2, 2), np.float32)})["w"].dtype
    dtype('float32')
    """
    return optree.tree_map(np.zeros_like, tree)


def tree_add(a: PyTree, b: PyTree) -> PyTree:
    """Leaf-wise ``a + b`` of two trees of the same structure (e.g. summing gradients).

    >>> import numpy as np
    >>> from fnn.tree import tree_add
    >>> tree_add({"w": np.array([1.0])}, {"w": np.array([2.0])})
    {'w': array([3.])}
    """
    return optree.tree_map(np.add, a, b)


def tree_size(tree: PyTree) -> int:
    """Total number of scalars in all leaves (the parameter count of a params tree).

    >>> import fnn
    >>> _, params = fnn.linear(10).init(fnn.key(0), (-1, 64))
    >>> fnn.tree_size(params)                       # w: (64, 10), b: (10,)
    650
    """
    return int(sum(np.size(leaf) for leaf in optree.tree_leaves(tree)))


def path_str(path: tuple) -> str:
    """A params path (tuple of keys) as the ``/``-joined string used in errors and ``.npz`` keys.

    >>> from fnn.tree import path_str
    >>> path_str(("00_linear", "w"))
    '00_linear/w'
    """
    return "/".join(str(p) for p in path)


def flatten_with_paths(tree: PyTree) -> dict[str, Any]:
    """``{"a/b/w": leaf, ...}`` in optree's (sorted-key) order.

    >>> from fnn.tree import flatten_with_paths
    >>> flatten_with_paths({"01_linear": {"w": 1, "b": 2}, "00_tanh": {}})
    {'01_linear/b': 2, '01_linear/w': 1}
    """
    paths, leaves, _ = optree.tree_flatten_with_path(tree)
    return {path_str(p): leaf for p, leaf in zip(paths, leaves)}


def empty_dict_paths(tree: PyTree, prefix: tuple = ()) -> list[str]:
    """Paths of the empty dicts in a nested dict (flattening would otherwise lose them).

    >>> from fnn.tree import empty_dict_paths
    >>> empty_dict_paths({"00_tanh": {}, "01_linear": {"w": 1}})
    ['00_tanh']
    """
    if not isinstance(tree, dict):
        return []
    if not tree and prefix:
        return [path_str(prefix)]
    out: list[str] = []
    for k, v in tree.items():
        out += empty_dict_paths(v, (*prefix, k))
    return out


def unflatten_paths(flat: dict[str, Any], empty: tuple[str, ...] = ()) -> dict:
    """Inverse of :func:`flatten_with_paths` for nested dicts (keys split on ``/``); ``empty``
    lists the paths of empty dicts to restore (see :func:`empty_dict_paths`).

    >>> from fnn.tree import unflatten_paths
    >>> unflatten_paths({"01_linear/w": 1}, empty=("00_tanh",))
    {'00_tanh': {}, '01_linear': {'w': 1}}
    """
    out: dict = {}
    for path in (*empty, *flat):
        node = out
        *parents, last = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = flat[path] if path in flat else node.get(last, {})
    return out


def same_structure(a: PyTree, b: PyTree) -> bool:
    """Whether two trees have the same structure (keys and nesting; leaves not compared).

    >>> from fnn.tree import same_structure
    >>> same_structure({"w": 1, "b": 2}, {"b": 0, "w": 0}), same_structure({"w": 1}, {"v": 1})
    (True, False)
    """
    return optree.tree_structure(a) == optree.tree_structure(b)


__all__ = [
    "PyTree", "empty_dict_paths", "flatten_with_paths", "path_str", "same_structure", "tree_add",
    "tree_leaves", "tree_map", "tree_size", "tree_zeros_like", "unflatten_paths",
]
