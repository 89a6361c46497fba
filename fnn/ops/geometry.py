"""Window geometry, a leaf module (it imports nothing from :mod:`fnn.ops`): where every window
of a convolution or pooling sits, shared by the numpy kernels and the compiled ones.

For one spatial axis of size ``L`` with kernel ``k``, dilation ``d``, stride ``s`` and padding
``(lo, hi)``, the effective kernel is ``k_eff = d * (k - 1) + 1`` and the output size is::

    L_out = (L + lo + hi - k_eff) // s + 1          (floor: trailing rows that do not fill a
                                                      whole window are dropped, as in PyTorch)

``padding="same"`` picks ``lo + hi = max((ceil(L / s) - 1) * s + k_eff - L, 0)`` with the odd
unit at the end (``hi``), so ``L_out = ceil(L / s)`` (TensorFlow's rule; ``L_out = L`` at
stride 1). ``padding="valid"`` is ``(0, 0)``.

>>> from fnn.ops.geometry import window_geometry
>>> g = window_geometry((28, 28), (3, 3), (2, 2), (1, 1), "same")
>>> g.out_sizes, g.pads
((14, 14), ((0, 1), (0, 1)))
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

Pads = tuple[tuple[int, int], ...]


class WindowError(ValueError):
    """The (dilated) kernel does not fit the padded input."""


class Geometry(NamedTuple):
    """Where every window of a layer sits: per spatial axis, input size, kernel, stride,
    dilation, padding and output size.

    >>> from fnn.ops.geometry import window_geometry
    >>> g = window_geometry((7,), (3,), (2,), (1,), ((1, 1),))
    >>> g.out_sizes, g.padded_sizes, g.effective_kernel
    ((4,), (9,), (3,))
    """

    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: Pads
    out_sizes: tuple[int, ...]

    @property
    def padded_sizes(self) -> tuple[int, ...]:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.sizes, self.pads))

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


def same_pads(sizes, effective_kernel, stride) -> Pads:
    """The ``(lo, hi)`` pads of ``padding="same"`` (the odd unit after).

    >>> from fnn.ops.geometry import same_pads
    >>> same_pads((28,), (3,), (1,)), same_pads((28,), (3,), (2,))
    (((1, 1),), ((0, 1),))
    """
    pads = []
    for n, k, s in zip(sizes, effective_kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def window_geometry(sizes, kernel, stride, dilation, padding) -> Geometry:
    """The :class:`Geometry` for inputs of spatial ``sizes`` (``padding``: ``"same"`` or one
    ``(lo, hi)`` pair per axis); :class:`WindowError` when the (dilated) kernel does not fit
    the padded input. Cached: a layer meets the same few shapes every step.

    >>> from fnn.ops.geometry import window_geometry
    >>> window_geometry((2,), (3,), (1,), (1,), ((0, 0),))
    Traceback (most recent call last):
    ...
    fnn.ops.geometry.WindowError: the kernel does not fit the input: spatial size 2 + padding 0 < 3 on axis 0 of the spatial shape (2,)
    """
    return _geometry(tuple(int(n) for n in sizes), tuple(kernel), tuple(stride), tuple(dilation),
                     padding)


@functools.lru_cache(maxsize=4096)
def _geometry(sizes, kernel, stride, dilation, padding) -> Geometry:
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    pads = same_pads(sizes, eff, stride) if padding == "same" else padding
    out = []
    for axis, (n, k, s, (lo, hi)) in enumerate(zip(sizes, eff, stride, pads)):
        if n + lo + hi < k:
            what = "kernel" if k == kernel[axis] else f"dilated kernel (effective size {k})"
            shape = "(" + ", ".join(map(str, sizes)) + ("," if len(sizes) == 1 else "") + ")"
            raise WindowError(f"the {what} does not fit the input: spatial size {n} + padding "
                              f"{lo + hi} < {k} on axis {axis} of the spatial shape {shape}")
        out.append((n + lo + hi - k) // s + 1)
    return Geometry(sizes, tuple(kernel), tuple(stride), tuple(dilation), pads, tuple(out))


def as_2d(g: Geometry) -> Geometry:
    """A 1-D geometry as the 2-D one of a height-1 image (what the compiled kernels take).

    >>> from fnn.ops.geometry import as_2d, window_geometry
    >>> as_2d(window_geometry((8,), (2,), (2,), (1,), ((0, 0),))).out_sizes
    (1, 4)
    """
    if len(g.kernel) == 2:
        return g
    return Geometry((1, *g.sizes), (1, *g.kernel), (1, *g.stride), (1, *g.dilation),
                    ((0, 0), *g.pads), (1, *g.out_sizes))


def arg_dtype(g: Geometry) -> type:
    """The dtype of a max-pool's arg-max (a tap index): ``uint8`` for fewer than 256 taps,
    else ``int32``.

    >>> from fnn.ops.geometry import arg_dtype, window_geometry
    >>> arg_dtype(window_geometry((8, 8), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0)))).__name__
    'uint8'
    """
    return np.uint8 if math.prod(g.kernel) < 256 else np.int32


@functools.lru_cache(maxsize=1024)
def tiled(g: Geometry) -> bool:
    """Whether the windows cover the padded input exactly once (kernel == stride, no
    remainder).

    >>> from fnn.ops.geometry import tiled, window_geometry
    >>> [tiled(window_geometry((n,), (2,), (2,), (1,), ((0, 0),))) for n in (8, 9)]
    [True, False]
    """
    return g.kernel == g.stride and g.padded_sizes == tuple(
        k * o for k, o in zip(g.kernel, g.out_sizes))


__all__ = ["Geometry", "Pads", "WindowError", "arg_dtype", "as_2d", "same_pads", "tiled",
           "window_geometry"]
