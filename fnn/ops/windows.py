"""Sliding windows over the spatial axes of channels-last arrays ``(N, *S, C)``: padding,
patches (strided windows) and their adjoint (fold). The window geometry (output sizes,
``"same"`` padding) is :mod:`fnn.ops.geometry`.

Numerics only: nothing here knows about layers; a kernel that does not fit raises
:class:`fnn.ops.geometry.WindowError` (a ``ValueError``), which the layers reword with their
label.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from fnn.ops import _backend
from fnn.ops.geometry import Geometry, Pads


def compiled_fits(g: Geometry, *arrays: np.ndarray) -> bool:
    """Whether the compiled kernels take this call: the compiled backend chosen, 1 or 2
    spatial axes, float32/float64 arrays of one dtype."""
    if not _backend.compiled() or len(g.kernel) > 2:
        return False
    dtype = arrays[0].dtype
    if dtype != np.float32 and dtype != np.float64:
        return False
    for a in arrays:
        if a.dtype != dtype:
            return False
    return True


def blocks_of_samples(n: int, sample_bytes: int, block_bytes: int) -> list[slice]:
    """Consecutive slices of ``n`` samples of ``sample_bytes`` each (a sample's share of some
    working array) holding at most ``block_bytes`` each, at least one sample: how the
    convolutions keep their working arrays in cache.

    >>> from fnn.ops.windows import blocks_of_samples
    >>> blocks_of_samples(5, 100, 250)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    per = max(1, block_bytes // sample_bytes)
    return [slice(start, min(n, start + per)) for start in range(0, n, per)]


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of ``(N, *S, C)`` with ``value`` (no copy when there is nothing to
    pad). The interior is copied once and only the border slabs are filled: a few numpy calls,
    where ``np.pad`` spends several times longer in Python (``benchmarks/micro.py``)."""
    shape, interior, borders = _pad_plan(x.shape, pads)
    if interior is None:
        return x
    out = np.empty(shape, dtype=x.dtype)
    out[interior] = x
    for border in borders:
        out[border] = value
    return out


@functools.lru_cache(maxsize=1024)
def _pad_plan(shape: tuple, pads: Pads) -> tuple:
    """:func:`pad`'s output shape, the index of the interior and those of the border slabs
    (interior None: nothing to pad); cached, as a layer pads the same shapes every step."""
    if not any(lo or hi for lo, hi in pads):
        return shape, None, ()
    sizes = shape[1:-1]
    out = (shape[0], *(n + lo + hi for n, (lo, hi) in zip(sizes, pads)), shape[-1])
    interior = (slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(sizes, pads)))
    borders = []
    for axis, (lo, hi) in enumerate(pads, start=1):
        before = (slice(None),) * axis
        if lo:
            borders.append((*before, slice(0, lo)))
        if hi:
            borders.append((*before, slice(out[axis] - hi, None)))
    return out, interior, tuple(borders)


def crop(xp: np.ndarray, g: Geometry) -> np.ndarray:
    """Undo :func:`pad`: the ``g.sizes`` part of a padded ``(N, *Sp, C)`` array."""
    if not any(lo or hi for lo, hi in g.pads):
        return xp
    return xp[(slice(None),) + tuple(slice(lo, lo + n) for (lo, _), n in zip(g.pads, g.sizes))]


def window_view(xp: np.ndarray, g: Geometry) -> np.ndarray:
    """Every window of a padded ``(N, *Sp, C)`` array as a read-only strided view
    ``(N, *S_out, *kernel, C)`` (no copy; channels stay the contiguous last axis).

    What ``sliding_window_view`` + strided slicing + ``moveaxis`` give, built in one
    ``as_strided`` call from the geometry (which guarantees every window fits): less Python
    time (``benchmarks/micro.py``), which counts when batch shards share the GIL."""
    spatial = xp.strides[1:-1]
    strides = (xp.strides[0], *(a * s for a, s in zip(spatial, g.stride)),
               *(a * d for a, d in zip(spatial, g.dilation)), xp.strides[-1])
    return as_strided(xp, (xp.shape[0], *g.out_sizes, *g.kernel, xp.shape[-1]), strides,
                      writeable=False)


def fold(dwin: np.ndarray, g: Geometry) -> np.ndarray:
    """The adjoint of :func:`window_view` followed by :func:`crop`: sum window values
    ``(N, *S_out, *kernel, C)`` back onto the input positions they came from → ``(N, *S, C)``.

    Compiled backend: one pass that adds each window value to its input position (padding
    skipped, no padded array); numpy: :func:`fold_taps`."""
    if compiled_fits(g, dwin):
        return _backend.kernels().fold(dwin, g)
    nd = len(g.kernel)
    return fold_taps(np.moveaxis(dwin, tuple(range(1 + nd, 1 + 2 * nd)), tuple(range(nd))), g)


def fold_taps(per_tap: np.ndarray, g: Geometry) -> np.ndarray:
    """:func:`fold` for tap-major values ``(*kernel, N, *S_out, C)`` (any strides; fastest
    when each tap's ``(N, *S_out, C)`` block is contiguous) → ``(N, *S, C)``.

    One vectorised slice-add per kernel tap (9 for a 3×3 kernel); measured faster than a
    loop-free ``np.bincount`` scatter (its index array alone costs more than the adds)."""
    nd = len(g.kernel)
    n, c = per_tap.shape[nd], per_tap.shape[-1]
    if g.kernel == g.stride and g.dilation == (1,) * nd:
        return _fold_tiles(per_tap, g)
    out = np.zeros((n, *g.padded_sizes, c), dtype=per_tap.dtype)
    for tap, target in zip(np.ndindex(*g.kernel), tap_slices(g)):
        out[target] += per_tap[tap]
    return crop(out, g)


@functools.lru_cache(maxsize=4096)
def tap_slices(g: Geometry) -> tuple[tuple[slice, ...], ...]:
    """For each kernel tap (row-major), the index of the padded ``(N, *Sp, C)`` positions it
    reads in every window: ``xp[tap_slices(g)[i]]`` is ``(N, *S_out, C)`` (cached)."""
    return tuple((slice(None), *(slice(t * d, t * d + s * (o - 1) + 1, s)
                                 for t, d, s, o in zip(tap, g.dilation, g.stride, g.out_sizes)))
                 for tap in np.ndindex(*g.kernel))


def _fold_tiles(per_tap: np.ndarray, g: Geometry) -> np.ndarray:
    """:func:`fold_taps` when windows tile the input (kernel == stride): a transpose and a
    reshape."""
    nd = len(g.kernel)
    n, c = per_tap.shape[nd], per_tap.shape[-1]
    # (K1, .., N, O1, .., C) -> (N, O1, K1, O2, K2, .., C)
    order = [nd] + [a for i in range(nd) for a in (nd + 1 + i, i)] + [2 * nd + 1]
    tiles = per_tap.transpose(order).reshape(n, *(o * k for o, k in zip(g.out_sizes, g.kernel)), c)
    covered = tiles.shape[1:-1]
    if covered != g.padded_sizes:  # trailing rows no window reached get zero gradient
        tiles = np.pad(tiles, ((0, 0), *((0, p - cov) for p, cov in zip(g.padded_sizes, covered)),
                               (0, 0)))
    return crop(tiles, g)
