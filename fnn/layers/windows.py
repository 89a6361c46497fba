"""Sliding windows over the spatial axes of channels-last arrays: the arithmetic convolution and
pooling share (argument checks, the output-size formula, padding, patches and their adjoint).

For one spatial axis of size ``L`` with kernel ``k``, dilation ``d``, stride ``s`` and padding
``(lo, hi)``, the effective kernel is ``k_eff = d * (k - 1) + 1`` and the output size is::

    L_out = (L + lo + hi - k_eff) // s + 1          (floor: trailing rows that do not fill a
                                                      whole window are dropped, as in PyTorch)

``padding="same"`` picks ``lo + hi = max((ceil(L / s) - 1) * s + k_eff - L, 0)`` with the odd
unit at the end (``hi``), so ``L_out = ceil(L / s)`` (TensorFlow's rule; ``L_out = L`` at
stride 1). ``padding="valid"`` is ``(0, 0)``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from fnn.checks import LayerError, fmt_shape

Pads = tuple[tuple[int, int], ...]


def int_tuple(label: str, name: str, value, nd: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or ``nd`` ints) as an ``nd``-tuple of ints ``>= minimum``."""
    values = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != nd or not all(isinstance(v, (int, np.integer)) and v >= minimum
                                    for v in values):
        raise ValueError(f"{label}: {name} must be an int >= {minimum} or {nd} of them, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def padding_arg(label: str, padding, nd: int, *, allow_same: bool = True) -> str | Pads:
    """``"valid"``, ``"same"``, an int, ``(lo, hi)`` (1-D), one int per axis or one
    ``(lo, hi)`` pair per axis, as ``"same"`` or a tuple of ``(lo, hi)`` pairs."""
    names = ("valid", "same") if allow_same else ("valid",)
    if isinstance(padding, str):
        if padding not in names:
            raise ValueError(f"{label}: padding must be one of {names} or ints, got {padding!r}")
        return "same" if padding == "same" else ((0, 0),) * nd
    try:
        if isinstance(padding, (int, np.integer)):
            pads = ((padding, padding),) * nd
        elif nd == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
            pads = (tuple(padding),)
        elif len(padding) == nd and all(isinstance(p, (int, np.integer)) for p in padding):
            pads = tuple((p, p) for p in padding)
        else:
            pads = tuple((lo, hi) for lo, hi in padding)
    except (TypeError, ValueError):
        pads = ()
    if len(pads) != nd or not all(isinstance(p, (int, np.integer)) and p >= 0
                                  for pair in pads for p in pair):
        raise ValueError(f"{label}: padding must be {' or '.join(repr(n) for n in names)}, an int "
                         f"or (lo, hi) pairs of non-negative ints for {nd} axes, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pads)


def layout(nd: int | None) -> str:
    """How a channels-last input with ``nd`` spatial axes (any number when None) is shaped,
    for error messages."""
    return {1: "(N, L, C)", 2: "(N, H, W, C)"}.get(nd, "(N, *spatial, C)")


class Geometry(NamedTuple):
    """Where every window of a layer sits: per spatial axis, input size, kernel, stride,
    dilation, padding and output size."""

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
    pads = []
    for n, k, s in zip(sizes, effective_kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def geometry(label: str, sizes, kernel, stride, dilation, padding) -> Geometry:
    """The :class:`Geometry` for inputs of spatial ``sizes``; a clear error when the (dilated)
    kernel does not fit the padded input. Cached: a layer meets the same few shapes every
    step."""
    return _geometry(label, tuple(int(n) for n in sizes), tuple(kernel), tuple(stride),
                     tuple(dilation), padding)


@functools.lru_cache(maxsize=4096)
def _geometry(label: str, sizes, kernel, stride, dilation, padding) -> Geometry:
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    pads = same_pads(sizes, eff, stride) if padding == "same" else padding
    out = []
    for axis, (n, k, s, (lo, hi)) in enumerate(zip(sizes, eff, stride, pads)):
        if n + lo + hi < k:
            what = "kernel" if k == kernel[axis] else f"dilated kernel (effective size {k})"
            raise LayerError(
                f"{label}: the {what} does not fit the input: spatial size {n} + padding "
                f"{lo + hi} < {k} on axis {axis} of the spatial shape {fmt_shape(sizes)}"
            )
        out.append((n + lo + hi - k) // s + 1)
    return Geometry(sizes, tuple(kernel), tuple(stride), tuple(dilation), pads, tuple(out))


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of ``(N, *S, C)`` with ``value`` (no copy when there is nothing to
    pad). The interior is copied once and only the border slabs are filled: a few numpy calls,
    where ``np.pad`` spends several times longer in Python (``benchmarks/micro.py``)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    sizes = x.shape[1:-1]
    out = np.empty((x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(sizes, pads)), x.shape[-1]),
                   dtype=x.dtype)
    out[(slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(sizes, pads)))] = x
    for axis, (lo, hi) in enumerate(pads, start=1):
        before = (slice(None),) * axis
        if lo:
            out[(*before, slice(0, lo))] = value
        if hi:
            out[(*before, slice(out.shape[axis] - hi, None))] = value
    return out


def crop(xp: np.ndarray, g: Geometry) -> np.ndarray:
    """Undo :func:`pad`: the ``g.sizes`` part of a padded ``(N, *Sp, C)`` array."""
    if not any(lo or hi for lo, hi in g.pads):
        return xp
    return xp[(slice(None), *(slice(lo, lo + n) for (lo, _), n in zip(g.pads, g.sizes)))]


def windows(xp: np.ndarray, g: Geometry) -> np.ndarray:
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
    """The adjoint of :func:`windows` followed by :func:`crop`: sum window values
    ``(N, *S_out, *kernel, C)`` back onto the input positions they came from → ``(N, *S, C)``."""
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

