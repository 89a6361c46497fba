"""Synthetic 2-D classification sets, deterministic from a seed.

Every function returns a :class:`~fnn.datasets.Dataset` with float32 points ``x`` of shape
``(N, 2)`` and int64 labels in ``{0, 1}``; ``n`` is the total number of points, split into
train and test with a stratified ``test_size`` fraction held out (as :func:`digits`). The
classes are balanced (their sizes differ by at most one) and the points are shuffled.
``seed`` is an int or an fnn key (``fnn.key(0)``); global ``np.random`` is never used.
"""

from __future__ import annotations

import numpy as np

from fnn.datasets.base import Dataset
from fnn.validate import fraction, integer, non_negative

_CLASS_NAMES = ("0", "1")


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        raise TypeError(f"seed must be an int or an fnn key (fnn.key(...)), got {type(seed).__name__}")
    return np.random.default_rng(seed)


def _check(fn: str, n: int, noise: float, test_size: float) -> tuple[int, float, float]:
    """``(n, noise, test_size)`` as Python numbers: n >= 2 points (the total), noise >= 0,
    test_size in [0, 1)."""
    return (integer(fn, "n", n, minimum=2), non_negative(fn, "noise", noise),
            fraction(fn, "test_size", test_size, hi_open=True))


def _class_sizes(n: int) -> tuple[int, int]:
    return (n + 1) // 2, n // 2


def _finish(x: np.ndarray, y: np.ndarray, test_size: float, rng: np.random.Generator) -> Dataset:
    """Shuffle, then hold out a stratified ``test_size`` fraction of every class."""
    perm = rng.permutation(len(y))
    x, y = x[perm].astype(np.float32), y[perm].astype(np.int64)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test[idx[: int(round(test_size * len(idx)))]] = True
    return Dataset(x[~test], y[~test], x[test], y[test], _CLASS_NAMES)


def gaussian_mixture(n: int = 500, *, noise: float = 0.5, test_size: float = 0.25,
                     seed=0) -> Dataset:
    """Two Gaussian blobs, always linearly separable: labels are ``x0 + x1 > 0``.

    Class 0 is centred at ``(-1, -1)``, class 1 at ``(1, 1)``, each with standard deviation
    ``noise`` per axis; the component across the boundary ``x0 + x1 = 0`` is folded back
    (reflected) onto the class's own side, so a line separates the classes for any ``noise``.

    Shapes: ``x_train (N_train, 2)`` float32, ``y_train (N_train,)`` int64 (same for test),
    ``N_train + N_test == n``.

    >>> from fnn.datasets import gaussian_mixture
    >>> d = gaussian_mixture(200, seed=0)
    >>> d.x_train.shape, d.x_test.shape, d.x_train.dtype, d.y_train.dtype
    ((150, 2), (50, 2), dtype('float32'), dtype('int64'))
    >>> bool(((d.x_train.sum(1) > 0) == (d.y_train == 1)).all())
    True
    """
    n, noise, test_size = _check("gaussian_mixture", n, noise, test_size)
    rng = _rng(seed)
    sizes = _class_sizes(n)
    y = np.repeat([0, 1], sizes)
    sign = np.where(y == 1, 1.0, -1.0)[:, None]
    x = sign + noise * rng.standard_normal((n, 2))
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)  # normal of the boundary
    along = x @ u
    wrong = along * sign[:, 0] < 0
    x[wrong] -= 2.0 * along[wrong, None] * u  # reflect across the boundary
    return _finish(x, y, test_size, rng)


def xor(n: int = 500, *, noise: float = 0.3, test_size: float = 0.25, seed=0) -> Dataset:
    """Four Gaussian blobs at ``(±1, ±1)``, standard deviation ``noise``, in an XOR pattern.

    Class 0 holds the blobs at ``(-1, -1)`` and ``(1, 1)``, class 1 those at ``(-1, 1)`` and
    ``(1, -1)``: no line separates them, one hidden layer does. Each class's points are split
    evenly between its two blobs; with a large ``noise`` the blobs overlap.

    Shapes: ``x_train (N_train, 2)`` float32, ``y_train (N_train,)`` int64 (same for test).

    >>> from fnn.datasets import xor
    >>> d = xor(400, noise=0.1, seed=1)
    >>> d.x_train.shape, sorted(set(d.y_train.tolist()))
    ((300, 2), [0, 1])
    >>> bool(((d.x_test[:, 0] * d.x_test[:, 1] < 0) == (d.y_test == 1)).all())
    True
    """
    n, noise, test_size = _check("xor", n, noise, test_size)
    rng = _rng(seed)
    centres = {0: ((-1.0, -1.0), (1.0, 1.0)), 1: ((-1.0, 1.0), (1.0, -1.0))}
    xs, ys = [], []
    for c, size in enumerate(_class_sizes(n)):
        for b, centre in enumerate(centres[c]):
            m = (size + 1 - b) // 2  # first blob takes the odd point
            xs.append(np.asarray(centre) + noise * rng.standard_normal((m, 2)))
            ys.append(np.full(m, c))
    return _finish(np.concatenate(xs), np.concatenate(ys), test_size, rng)


def chessboard(n: int = 1000, *, cells: int = 4, noise: float = 0.0, test_size: float = 0.25,
               seed=0) -> Dataset:
    """Points on a ``cells x cells`` chessboard covering ``[-1, 1]^2``; the label is the colour.

    The square in row ``i``, column ``j`` (counted from ``(-1, -1)``) has colour
    ``(i + j) % 2``. Each class's points are uniform over the squares of its colour; then
    Gaussian noise of standard deviation ``noise`` (in the same units: a square is
    ``2 / cells`` wide) moves the points but not their labels.

    Shapes: ``x_train (N_train, 2)`` float32, ``y_train (N_train,)`` int64 (same for test).

    >>> from fnn.datasets import chessboard
    >>> d = chessboard(600, cells=3, seed=0)
    >>> d.x_train.shape, d.num_classes
    ((450, 2), 2)
    >>> cell = ((d.x_train + 1) / 2 * 3).astype(int)
    >>> bool((cell.sum(1) % 2 == d.y_train).all())
    True
    """
    n, noise, test_size = _check("chessboard", n, noise, test_size)
    cells = integer("chessboard", "cells", cells, minimum=2)
    rng = _rng(seed)
    ij = np.stack(np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij"), -1).reshape(-1, 2)
    colour = ij.sum(1) % 2
    xs, ys = [], []
    for c, size in enumerate(_class_sizes(n)):
        squares = ij[colour == c]
        picked = squares[rng.integers(len(squares), size=size)]
        xs.append((picked + rng.random((size, 2))) * (2.0 / cells) - 1.0)
        ys.append(np.full(size, c))
    x = np.concatenate(xs)
    x = x + noise * rng.standard_normal(x.shape)  # always drawn: same split for any noise
    return _finish(x, np.concatenate(ys), test_size, rng)
