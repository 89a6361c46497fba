"""Pooling and up-sampling over channels-last inputs ``(N, L, C)`` / ``(N, H, W, C)``.

Output sizes follow :mod:`fnn.ops.windows` (floor mode, as PyTorch); ``stride`` defaults to
the kernel size. ``max_pool`` pads with ``-inf`` and routes the gradient to the arg-max of each
window; on ties the *first* maximal element in row-major window order wins alone (PyTorch picks
the same one). ``avg_pool`` pads with zeros and always divides by the full kernel size (PyTorch's
``count_include_pad=True``).

The kernels are in :mod:`fnn.ops.pool` and :mod:`fnn.ops.resample` (numpy or compiled, see
:mod:`fnn.ops`). A max-pool right after a ``relu()`` in :func:`fnn.serial` runs fused with it
(one pass instead of the relu's own passes; the same numbers as the pair): see
:mod:`fnn.layers.fusion`, which reads the pool's ``config``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fnn.checks import LayerError, as_shape, fmt_shape
from fnn.core import Layer
from fnn.layers.arguments import geometry, layout, padding_arg
from fnn.layers.base import fixed_rank, parameter_free, rank_checker
from fnn.ops import pool as ops_pool
from fnn.ops.geometry import Geometry, Pads
from fnn.ops.resample import upsample_nearest, upsample_nearest_backward
from fnn.validate import int_tuple, one_of


def _spatial(label: str, nd: int, out_sizes: Callable, fn: Callable, train: Callable,
             kind: str, config: dict[str, Any]) -> Layer:
    """A parameter-free layer on ``(N, *S, C)`` with ``nd`` spatial axes: ``out_sizes(S)``,
    ``fn(x) -> y``, ``train(x, key) -> (y, back)``."""

    def shape(input_shape):
        shape = fixed_rank(label, input_shape, nd + 2, layout(nd))
        return (shape[0], *out_sizes(shape[1:-1]), shape[-1])

    return parameter_free(label, fn, train=train, shape=shape,
                          check=rank_checker(label, (nd + 2,), layout(nd)), kind=kind,
                          config={"nd": nd, **config})


def pool_geometry(label: str, nd: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                  padding: str | Pads) -> Callable[[tuple], Geometry]:
    """``geom(spatial_sizes) -> Geometry`` of a pooling layer (cached per input size: a layer
    meets the same few every step); its errors name the layer, padding must be smaller than
    the kernel.

    >>> from fnn.layers.pooling import pool_geometry
    >>> pool_geometry("max_pool2d(2)", 2, (2, 2), (2, 2), ((0, 0), (0, 0)))((7, 6)).out_sizes
    (3, 3)
    """

    @functools.lru_cache(maxsize=64)
    def geom(sizes: tuple) -> Geometry:
        g = geometry(label, sizes, kernel, stride, (1,) * nd, padding)
        if any(lo >= k or hi >= k for (lo, hi), k in zip(g.pads, kernel)):
            raise LayerError(f"{label}: padding {g.pads} must be smaller than the kernel "
                             f"{kernel} (a window of padding only has no value)")
        return g

    return geom


def pool(kind: str, nd: int, kernel_size, stride=None, padding=0) -> Layer:
    """The pooling factory behind ``max_pool1d/2d`` and ``avg_pool1d/2d``: ``kind`` is
    ``"max"`` or ``"avg"``, ``nd`` the number of spatial axes; ``stride`` defaults to the
    kernel size; ``padding`` as for convolutions (smaller than the kernel).

    >>> import fnn
    >>> fnn.layers.pool("max", 2, 3, stride=2, padding=1).init(None, (-1, 28, 28, 8))[0]
    (-1, 14, 14, 8)
    """
    one_of("pool", "kind", kind, ("max", "avg"))
    label = f"{kind}_pool{nd}d({kernel_size!r})"
    kernel = int_tuple(label, "kernel_size", kernel_size, nd)
    stride = kernel if stride is None else int_tuple(label, "stride", stride, nd)
    padding = padding_arg(label, padding, nd)
    geom = pool_geometry(label, nd, kernel, stride, padding)
    config = {"kernel": kernel, "stride": stride, "padding": padding}

    def out_sizes(sizes):
        return geom(sizes).out_sizes

    if kind == "avg":
        def train(x, key):
            g = geom(x.shape[1:-1])
            return ops_pool.avg_pool(x, g), lambda dy: ops_pool.avg_pool_backward(dy, g)

        return _spatial(label, nd, out_sizes, lambda x: ops_pool.avg_pool(x, geom(x.shape[1:-1])),
                        train, "avg_pool", config)

    def forward(x):
        return ops_pool.max_pool(x, geom(x.shape[1:-1]))[0]

    def train_max(x, key):
        g = geom(x.shape[1:-1])
        y, arg = ops_pool.max_pool(x, g)
        return y, lambda dy: ops_pool.max_pool_backward(dy, arg, g)

    return _spatial(label, nd, out_sizes, forward, train_max, "max_pool", config)


def max_pool1d(kernel_size, stride=None, padding=0) -> Layer:
    """Max over windows of ``kernel_size`` along L: ``(N, L, C) -> (N, L_out, C)``; ``stride``
    (default: the kernel size) and ``padding`` as for :func:`pool`.

    >>> import numpy as np, fnn
    >>> fnn.max_pool1d(2).apply({}, np.array([[[1.], [3.], [2.], [0.], [5.]]])).ravel()
    array([3., 2.])
    """
    return pool("max", 1, kernel_size, stride, padding)


def max_pool2d(kernel_size, stride=None, padding=0) -> Layer:
    """Max over ``kh × kw`` windows: ``(N, H, W, C) -> (N, H_out, W_out, C)``.

    >>> import fnn
    >>> fnn.max_pool2d(2).init(None, (-1, 28, 28, 32))[0]
    (-1, 14, 14, 32)
    >>> fnn.max_pool2d(3, stride=2, padding=1).init(None, (-1, 28, 28, 32))[0]
    (-1, 14, 14, 32)
    """
    return pool("max", 2, kernel_size, stride, padding)


def avg_pool1d(kernel_size, stride=None, padding=0) -> Layer:
    """Mean over windows along L (zero padding counted): ``(N, L, C) -> (N, L_out, C)``.

    >>> import numpy as np, fnn
    >>> x = np.array([[[1.], [3.], [2.], [0.], [5.]]])
    >>> fnn.avg_pool1d(2).apply({}, x).ravel(), fnn.avg_pool1d(2, stride=1).apply({}, x).ravel()
    (array([2., 1.]), array([2. , 2.5, 1. , 2.5]))
    """
    return pool("avg", 1, kernel_size, stride, padding)


def avg_pool2d(kernel_size, stride=None, padding=0) -> Layer:
    """Mean over ``kh × kw`` windows (zero padding counted): ``(N, H, W, C) -> (N, H_out, W_out, C)``.

    >>> import numpy as np, fnn
    >>> fnn.avg_pool2d(2).apply({}, np.arange(16.).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    return pool("avg", 2, kernel_size, stride, padding)


def upsample(nd: int, factor, mode: str = "nearest") -> Layer:
    """The up-sampling factory behind ``upsample1d/2d``: repeat every position ``factor``
    times (an int or one per axis) along each of the ``nd`` spatial axes.

    >>> import fnn
    >>> fnn.layers.upsample(2, (2, 3)).init(None, (-1, 4, 4, 1))[0]
    (-1, 8, 12, 1)
    """
    label = f"upsample{nd}d({factor!r})"
    factors = int_tuple(label, "factor", factor, nd)
    one_of(label, "mode", mode, ("nearest",))

    def train(x, key):
        return upsample_nearest(x, factors), lambda dy: upsample_nearest_backward(dy, factors)

    return _spatial(label, nd, lambda s: tuple(a * f for a, f in zip(s, factors)),
                    lambda x: upsample_nearest(x, factors), train, "upsample",
                    {"factor": factors, "mode": mode})


def upsample1d(factor: int, mode: str = "nearest") -> Layer:
    """Repeat every position ``factor`` times: ``(N, L, C) -> (N, L * factor, C)``.

    >>> import numpy as np, fnn
    >>> fnn.upsample1d(3).apply({}, np.array([[[1.], [2.]]])).ravel()
    array([1., 1., 1., 2., 2., 2.])
    """
    return upsample(1, factor, mode)


def upsample2d(factor, mode: str = "nearest") -> Layer:
    """Nearest-neighbour up-sampling by ``factor`` (int or pair): ``(N, H, W, C) ->
    (N, H * fh, W * fw, C)``.

    >>> import numpy as np, fnn
    >>> fnn.upsample2d(2).apply({}, np.arange(4.).reshape(1, 2, 2, 1))[0, :, :, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    """
    return upsample(2, factor, mode)


def global_avg_pool() -> Layer:
    """Mean over every spatial axis: ``(N, *spatial, C) -> (N, C)``.

    >>> import numpy as np, fnn
    >>> layer = fnn.global_avg_pool()
    >>> layer.init(None, (-1, 7, 7, 64))[0]
    (-1, 64)
    >>> layer.apply({}, np.ones((2, 7, 7, 3))).shape
    (2, 3)
    """
    label = "global_avg_pool"

    def shape(input_shape):
        input_shape = as_shape(label, input_shape)
        if len(input_shape) < 3:
            raise LayerError(f"{label}: expects inputs of shape {layout(None)}, got input_shape "
                             f"{fmt_shape(input_shape)}")
        return (input_shape[0], input_shape[-1])

    def train(x, key):
        return ops_pool.global_avg_pool(x), \
            lambda dy: ops_pool.global_avg_pool_backward(dy, x.shape)

    return parameter_free(label, ops_pool.global_avg_pool, train=train, shape=shape,
                          check=rank_checker(label, tuple(range(3, 33)), layout(None)),
                          kind="global_avg_pool")


__all__ = ["avg_pool1d", "avg_pool2d", "global_avg_pool", "max_pool1d", "max_pool2d", "pool",
           "pool_geometry", "upsample", "upsample1d", "upsample2d"]
