"""Normalisation numerics (batch-, layer- and group-norm): moments, the normalised input and
the backward pass through it. Arrays only; the layers are in :mod:`fnn.layers.norm`.

``axes`` are the axes a mean runs over (kept as size-1 axes in the results). ``reduce`` lets a
caller sum partial results across the shards of one batch (:func:`fnn.threads.allreduce`):
``reduce(a, b, ...)`` returns the sums of each argument over every shard, and ``weight`` is
this shard's share of the batch's loss. Without it, the sums are this array's own.

With ``xhat = (x - mean) * inv`` and ``inv = 1 / sqrt(var + eps)`` (``var`` biased), the
gradient of any loss through the normalisation is

    dx = inv * (g - mean(g) - xhat * mean(g * xhat))          (g = dL/dxhat, means over axes)

>>> import numpy as np
>>> from fnn.ops import norm
>>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
>>> mean, var, n = norm.moments(x, (0,))
>>> mean, var, n
(array([[2., 4.]]), array([[1., 4.]]), 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn.ops import _backend


def moments(x: np.ndarray, axes: tuple[int, ...], reduce: Callable | None = None) \
        -> tuple[np.ndarray, np.ndarray, int]:
    """``(mean, biased var, count)`` over ``axes`` (two passes: the mean, then the squared
    deviations from it), summed across shards by ``reduce`` when given.

    >>> import numpy as np
    >>> from fnn.ops.norm import moments
    >>> moments(np.arange(6.0).reshape(2, 3), (1,))[1].ravel()
    array([0.66666667, 0.66666667])
    """
    n = math.prod(x.shape[a] for a in axes)
    total = x.sum(axis=axes, keepdims=True)
    if reduce is not None:
        n, total = reduce(n, total)
    mean = total / x.dtype.type(n)
    dev = x - mean
    squares = np.square(dev).sum(axis=axes, keepdims=True)
    if reduce is not None:
        (squares,) = reduce(squares)
    return mean, squares / x.dtype.type(n), int(n)


def normalize(x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) \
        -> tuple[np.ndarray, np.ndarray]:
    """``(xhat, inv)``: ``xhat = (x - mean) * inv``, ``inv = 1 / sqrt(var + eps)``.

    >>> import numpy as np
    >>> from fnn.ops.norm import normalize
    >>> normalize(np.array([[1.0, 3.0]]), np.array([[2.0]]), np.array([[1.0]]), 0.0)[0]
    array([[-1.,  1.]])
    """
    inv = 1.0 / np.sqrt(var + x.dtype.type(eps))
    return (x - mean) * inv, inv


def normalize_backward(g: np.ndarray, xhat: np.ndarray, inv: np.ndarray, axes: tuple[int, ...],
                       n: int, reduce: Callable | None = None, weight: float = 1.0) -> np.ndarray:
    """``dx`` from ``g = dL/dxhat`` (module doc); ``n`` is the count behind the means (the whole
    batch's when sharded, where this shard's ``g`` is its own loss's: ``weight`` scales it to
    the batch's loss before the sums, and back after).

    >>> import numpy as np
    >>> from fnn.ops.norm import moments, normalize, normalize_backward
    >>> x = np.array([[1.0, 2.0, 6.0]])
    >>> mean, var, n = moments(x, (1,))
    >>> xhat, inv = normalize(x, mean, var, 0.0)
    >>> normalize_backward(np.ones_like(x), xhat, inv, (1,), n)   # a constant g has no effect
    array([[0., 0., 0.]])
    """
    s1 = g.sum(axis=axes, keepdims=True)
    s2 = (g * xhat).sum(axis=axes, keepdims=True)
    if reduce is not None:
        s1, s2 = reduce(weight * s1, weight * s2)
    scale = xhat.dtype.type(1.0 / (n * weight))
    return inv * (g - (s1 + xhat * s2) * scale)


def _fits(*arrays: np.ndarray) -> bool:
    """Whether the compiled layer-norm kernels take these arrays: the compiled backend,
    C-contiguous float32/float64 arrays of one dtype."""
    dtype = arrays[0].dtype
    return (_backend.compiled() and dtype.kind == "f" and dtype.itemsize in (4, 8)
            and all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous
                    for a in arrays))


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, eps: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer norm over the last axis with ``scale, bias (C,)``: ``(y, xhat, inv)``,
    ``y = xhat * scale + bias``, ``xhat`` of x's shape, ``inv (..., 1)`` (as
    :func:`normalize` gives them). One compiled pass per row on the compiled backend.

    >>> import numpy as np
    >>> from fnn.ops.norm import layer_norm
    >>> y, xhat, inv = layer_norm(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0)
    >>> y.tolist(), inv.tolist()
    ([[-1.0, 1.0]], [[1.0]])
    """
    if x.ndim >= 1 and x.size and _fits(x, scale, bias) and scale.shape == x.shape[-1:] \
            and bias.shape == scale.shape:
        from fnn.ops import sequence_kernels  # numba, on first use

        c = x.shape[-1]
        y, xhat = np.empty_like(x), np.empty_like(x)
        inv = np.empty((*x.shape[:-1], 1), x.dtype)
        sequence_kernels.layer_norm(x.reshape(-1, c), scale, bias, x.dtype.type(eps),
                                    y.reshape(-1, c), xhat.reshape(-1, c), inv.reshape(-1))
        return y, xhat, inv
    mean, var, _ = moments(x, (x.ndim - 1,))
    xhat, inv = normalize(x, mean, var, eps)
    return xhat * scale + bias, xhat, inv


def layer_norm_backward(dy: np.ndarray, xhat: np.ndarray, inv: np.ndarray, scale: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dscale, dbias, dx)`` of :func:`layer_norm` from ``dy``.

    >>> import numpy as np
    >>> from fnn.ops.norm import layer_norm, layer_norm_backward
    >>> y, xhat, inv = layer_norm(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0)
    >>> [a.tolist() for a in layer_norm_backward(np.ones((1, 2)), xhat, inv, np.ones(2))]
    [[-1.0, 1.0], [1.0, 1.0], [[0.0, 0.0]]]
    """
    lead = tuple(range(dy.ndim - 1))
    if dy.size and _fits(dy, xhat, inv, scale) and xhat.shape == dy.shape \
            and scale.shape == dy.shape[-1:]:
        from fnn.ops import sequence_kernels  # numba, on first use

        c = dy.shape[-1]
        dx = np.empty_like(dy)
        dscale, dbias = np.zeros_like(scale), np.zeros_like(scale)
        sequence_kernels.layer_norm_backward(dy.reshape(-1, c), xhat.reshape(-1, c),
                                             inv.reshape(-1), scale, dx.reshape(-1, c),
                                             dscale, dbias)
        return dscale, dbias, dx
    dscale, dbias = (dy * xhat).sum(axis=lead), dy.sum(axis=lead)
    return dscale, dbias, normalize_backward(dy * scale, xhat, inv, (dy.ndim - 1,),
                                             dy.shape[-1])


__all__ = ["layer_norm", "layer_norm_backward", "moments", "normalize", "normalize_backward"]
