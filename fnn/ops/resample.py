"""Resampling kernels over channels-last ``(N, *S, C)``: nearest-neighbour up-sampling (every
position repeated ``factor`` times along each spatial axis) and its pullback (the sum over
each block of repeats).

>>> import numpy as np
>>> from fnn.ops.resample import upsample_nearest, upsample_nearest_backward
>>> y = upsample_nearest(np.array([[[1.0], [2.0]]]), (2,))
>>> y.ravel(), upsample_nearest_backward(np.ones_like(y), (2,)).ravel()
(array([1., 1., 2., 2.]), array([2., 2.]))
"""

from __future__ import annotations

import numpy as np


def upsample_nearest(x: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """``(N, *S, C) -> (N, *(S * factors), C)``: each position repeated ``factors[i]`` times
    along spatial axis ``i`` (one broadcast copy)."""
    n, *sizes, c = x.shape
    expanded = x.reshape(n, *(a for s in sizes for a in (s, 1)), c)
    target = (n, *(a for s, f in zip(sizes, factors) for a in (s, f)), c)
    return np.broadcast_to(expanded, target).reshape(
        n, *(s * f for s, f in zip(sizes, factors)), c)


def upsample_nearest_backward(dy: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """The pullback of :func:`upsample_nearest`: ``dy: (N, *(S * factors), C)`` summed over
    each block of repeats → ``(N, *S, C)``."""
    n, *sizes, c = dy.shape
    split = (n, *(a for s, f in zip(sizes, factors) for a in (s // f, f)), c)
    return dy.reshape(split).sum(axis=tuple(2 + 2 * i for i in range(len(factors))))


__all__ = ["upsample_nearest", "upsample_nearest_backward"]
