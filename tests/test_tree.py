"""fnn.tree: the Python walk of nested dicts gives what optree gives, and hands everything
else (and every error) to optree."""

import numpy as np
import optree
import pytest

from fnn.tree import tree_map


def _params():
    rng = np.random.default_rng(0)
    return {"01_linear": {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)},
            "00_tanh": {},
            "02_block": {"00_conv": {"w": rng.normal(size=(2, 2))}}}


def _same(a, b):
    assert optree.tree_structure(a) == optree.tree_structure(b)
    if isinstance(a, dict):
        assert list(a) == list(b)  # key order too
    for x, y in zip(optree.tree_leaves(a), optree.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_one_and_two_trees_match_optree_including_key_order():
    p = _params()
    g = {"02_block": {"00_conv": {"w": np.ones((2, 2))}}, "00_tanh": {},  # other key order
         "01_linear": {"b": np.ones(2), "w": np.ones((3, 2))}}
    _same(tree_map(lambda a: 2 * a, p), optree.tree_map(lambda a: 2 * a, p))
    _same(tree_map(lambda a, b: a - 0.5 * b, p, g), optree.tree_map(lambda a, b: a - 0.5 * b, p, g))
    assert list(tree_map(lambda a: a, p)["01_linear"]) == ["w", "b"]


def test_each_leaf_is_mapped_once_with_its_own_partner():
    p = _params()
    seen = []
    out = tree_map(lambda a, b: seen.append((a.shape, b.shape)) or a.shape, p,
                   tree_map(np.zeros_like, p))
    assert sorted(seen) == sorted((a.shape, a.shape) for a in optree.tree_leaves(p))
    assert out["01_linear"] == {"w": (3, 2), "b": (2,)}


@pytest.mark.parametrize("tree", [
    {"a": [np.ones(2), np.zeros(1)]},      # a list inside
    {"a": None, "b": np.ones(1)},          # None is an empty node for optree
    {"a": 1.5, "b": np.float32(2.0)},      # scalar leaves
    (np.ones(2), {"w": np.ones(1)}),       # not a dict at the top
])
def test_other_trees_go_to_optree(tree):
    _same(tree_map(lambda a: a * 2, tree), optree.tree_map(lambda a: a * 2, tree))
    _same(tree_map(np.add, tree, tree), optree.tree_map(np.add, tree, tree))


@pytest.mark.parametrize("other", [
    {"w": np.ones(2)},                               # a missing key
    {"w": np.ones(2), "b": np.ones(1), "c": np.ones(1)},  # an extra key
    {"w": np.ones(2), "c": np.ones(1)},              # a different key
    {"w": {"x": np.ones(2)}, "b": np.ones(1)},       # a subtree where a leaf is: optree's prefix rule
    [np.ones(2), np.ones(1)],                        # not a dict
])
def test_mismatched_structures_behave_as_optree(other):
    tree = {"w": np.ones(2), "b": np.ones(1)}
    try:
        expected = optree.tree_map(lambda a, b: (a, b), tree, other)
    except Exception as err:  # noqa: BLE001 - whatever optree raises, tree_map raises too
        with pytest.raises(type(err)):
            tree_map(lambda a, b: (a, b), tree, other)
    else:
        got = tree_map(lambda a, b: (a, b), tree, other)
        assert optree.tree_structure(got, none_is_leaf=True) == \
            optree.tree_structure(expected, none_is_leaf=True)


def test_fn_runs_once_per_leaf_when_the_tree_is_handed_to_optree():
    """A dict whose first values are arrays and a later one a list: fn sees each leaf once."""
    tree = {"a": np.ones(1), "b": np.ones(2), "c": [np.ones(3)]}
    seen = []
    tree_map(lambda a: seen.append(a.size), tree)
    assert sorted(seen) == [1, 2, 3]
    seen.clear()
    tree_map(lambda a, b: seen.append(a.size), tree, tree)
    assert sorted(seen) == [1, 2, 3]


def test_tree_map_unzip_on_dicts_and_other_trees():
    from fnn.tree import tree_map_unzip

    def split(a, b):
        return a + b, a * b, a - b

    dicts = ({"a": {"w": np.ones(2)}, "b": np.full(3, 2.0)},
             {"a": {"w": np.full(2, 3.0)}, "b": np.ones(3)})
    s, p, d = tree_map_unzip(split, 3, *dicts)
    assert list(s) == ["a", "b"] and s["a"]["w"].tolist() == [4.0, 4.0]
    assert p["b"].tolist() == [2.0] * 3 and d["a"]["w"].tolist() == [-2.0, -2.0]
    lists = ([np.ones(1), (np.full(1, 2.0), 3.0)], [np.ones(1), (np.ones(1), 1.0)])
    s, p, d = tree_map_unzip(split, 3, *lists)  # lists, tuples and scalars: optree
    assert isinstance(s, list) and isinstance(s[1], tuple) and s[1][1] == 4.0
    assert d[1][0].tolist() == [1.0]
    with pytest.raises(ValueError):
        tree_map_unzip(split, 3, [np.ones(1)], [np.ones(1), np.ones(1)])
