"""Pure random keys: immutable ``numpy.random.SeedSequence`` objects, split and folded without
changing the parent, so every random draw in fnn is a function of a seed and a position.

>>> import fnn
>>> k = fnn.key(0)
>>> a, b = fnn.split(k)
>>> fnn.fold_in(k, 1).spawn_key == b.spawn_key, k.spawn_key
(True, ())
"""

from __future__ import annotations

import numpy as np

Key = np.random.SeedSequence

__all__ = ["Key", "fold_in", "key", "rng", "split"]


def key(seed: int | None = 0) -> Key:
    """An immutable random key: ``fnn.key(0)``. ``None`` draws fresh OS entropy.

    >>> import fnn
    >>> fnn.key(0).entropy, fnn.key(0).spawn_key
    (0, ())
    """
    return np.random.SeedSequence(seed)


def split(k: Key, n: int = 2) -> tuple[Key, ...]:
    """``n`` independent child keys of ``k``; ``k`` itself is not changed (unlike ``spawn``).

    >>> import fnn
    >>> [k.spawn_key for k in fnn.split(fnn.key(0), 3)]
    [(0,), (1,), (2,)]
    """
    if not isinstance(k, np.random.SeedSequence):
        raise TypeError(f"split: expected a key from fnn.key(seed), got {type(k).__name__}")
    return tuple(fold_in(k, i) for i in range(n))


def fold_in(k: Key, i: int) -> Key:
    """The ``i``-th child of ``k`` (``split(k, n)[i]`` without making the others); e.g. a
    per-step dropout key ``fold_in(base, step)``.

    >>> import fnn
    >>> fnn.fold_in(fnn.fold_in(fnn.key(5), 2), 7).spawn_key
    (2, 7)
    """
    return np.random.SeedSequence(k.entropy, spawn_key=(*k.spawn_key, int(i)), pool_size=k.pool_size)


def rng(k: Key) -> np.random.Generator:
    """A numpy Generator seeded by ``k`` (use a fresh split for every draw).

    >>> import fnn
    >>> bool(fnn.rng(fnn.key(1)).random() == fnn.rng(fnn.key(1)).random())
    True
    """
    return np.random.default_rng(k)
