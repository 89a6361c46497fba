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
    """Apply ``fn`` leaf-wise over one or more trees of the same structure."""
    return optree.tree_map(fn, tree, *rest)


def tree_leaves(tree: PyTree) -> list:
    return optree.tree_leaves(tree)


def tree_zeros_like(tree: PyTree) -> PyTree:
    return optree.tree_map(np.zeros_like, tree)


def tree_add(a: PyTree, b: PyTree) -> PyTree:
    return optree.tree_map(np.add, a, b)


def tree_size(tree: PyTree) -> int:
    """Total number of scalars in all leaves (the parameter count of a params tree)."""
    return int(sum(np.size(leaf) for leaf in optree.tree_leaves(tree)))


def path_str(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def flatten_with_paths(tree: PyTree) -> dict[str, Any]:
    """``{"a/b/w": leaf, ...}`` in optree's (sorted-key) order."""
    paths, leaves, _ = optree.tree_flatten_with_path(tree)
    return {path_str(p): leaf for p, leaf in zip(paths, leaves)}


def empty_dict_paths(tree: PyTree, prefix: tuple = ()) -> list[str]:
    """Paths of the empty dicts in a nested dict (flattening would otherwise lose them)."""
    if not isinstance(tree, dict):
        return []
    if not tree and prefix:
        return [path_str(prefix)]
    out: list[str] = []
    for k, v in tree.items():
        out += empty_dict_paths(v, (*prefix, k))
    return out


def unflatten_paths(flat: dict[str, Any], empty: tuple[str, ...] = ()) -> dict:
    """Inverse of :func:`flatten_with_paths` for nested dicts (keys split on ``/``)."""
    out: dict = {}
    for path in (*empty, *flat):
        node = out
        *parents, last = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = flat[path] if path in flat else node.get(last, {})
    return out


def same_structure(a: PyTree, b: PyTree) -> bool:
    return optree.tree_structure(a) == optree.tree_structure(b)
