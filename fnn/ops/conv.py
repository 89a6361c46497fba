"""Convolution kernels (cross-correlation over channels-last ``(N, *S, C)``) and their
adjoints: patch matrices, one BLAS matmul each way, the kernel and bias gradients.

The windows of the padded input (:func:`fnn.ops.windows.window_view`) are copied once into a
``(N * prod(S_out), prod(kernel) * C_in)`` patch matrix and multiplied by the kernel (one BLAS
matmul; a column of ones in the patches adds the bias in the same matmul). The backward pass
reuses the patches for ``dw`` (and ``db``) and folds ``dy @ w.T`` back onto the input for
``dx`` (at stride 1 with ``C_out <= C_in``: convolves ``dy`` with the flipped kernel instead).
``benchmarks/micro.py`` times each of these choices against the plain numpy way.

On the compiled backend, 3×3 stride-1 2-D convolutions with 8 or more channels in and out
run by Winograd's algorithm instead (:mod:`fnn.ops.winograd`); :func:`correlate_vjp` gives
the gradients from whichever kind of data the forward pass saved.

Both backends build the patch matrix with numpy (a padded copy, then one strided copy that runs
at memcpy speed; a compiled loop over taps measured slower); the compiled backend folds window
values back in one pass (:func:`fnn.ops.windows.fold`). The matmuls stay in BLAS.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fnn.ops import winograd
from fnn.ops.geometry import Geometry, window_geometry
from fnn.ops.windows import (
    blocks_of_samples,
    compiled_fits,
    crop,
    fold,
    pad,
    tap_slices,
    window_view,
)


def patches(x: np.ndarray, g: Geometry, ones: bool = False) -> np.ndarray:
    """``(N, *S, C)`` → the patch matrix ``(N * prod(S_out), prod(kernel) * C)`` (one copy),
    with a last column of ones when ``ones`` (it multiplies the bias, see :func:`correlate`).

    numpy: with one input channel the windows' rows are only ``kernel`` values long, so the
    patches are copied tap by tap (whole image rows at a time) into a tap-major array whose
    transpose is the patch matrix (faster: ``benchmarks/micro.py``)."""
    return padded_patches(pad(x, g.pads), g, ones)


def padded_patches(xp: np.ndarray, g: Geometry, ones: bool = False) -> np.ndarray:
    """:func:`patches` of an input already padded as ``g`` says, ``(N, *Sp, C)``."""
    n, c, k = xp.shape[0], xp.shape[-1], math.prod(g.kernel) * xp.shape[-1]
    if c == 1:
        taps = np.empty((k + ones, n, *g.out_sizes, 1), dtype=xp.dtype)
        for tap, source in zip(taps, tap_slices(g)):
            tap[...] = xp[source]
        taps[k:] = 1
        return taps.reshape(len(taps), -1).T
    if not ones:
        return window_view(xp, g).reshape(-1, k)
    cols = np.empty((n, *g.out_sizes, k + 1), dtype=xp.dtype)
    cols[..., k] = 1
    # splitting the contiguous last axis of a view is always a view: this writes into cols
    cols[..., :k].reshape(n, *g.out_sizes, *g.kernel, c)[...] = window_view(xp, g)
    return cols.reshape(-1, k + 1)


def kernel_matrix(w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``(*kernel, C_in, C_out)`` → ``(prod(kernel) * C_in, C_out)``, rows ordered like the
    columns of :func:`patches`; with the bias ``b`` as one more row."""
    matrix = w.reshape(-1, w.shape[-1])
    return matrix if b is None else np.concatenate([matrix, b[None].astype(w.dtype)])


#: Bytes of patch matrix per forward matmul: the batch is split into blocks of samples whose
#: patches fit the CPU's L2 cache, so BLAS reads each block while it is still there, just
#: written (``benchmarks/micro.py``: LeNet's second conv at batch 64 runs ~20 % faster).
BLOCK_BYTES = 1 << 20


def sample_blocks(n: int, g: Geometry, row_bytes: int) -> list[slice]:
    """Consecutive slices of ``n`` samples whose patch matrices (``row_bytes`` per row, one
    row per output position) take at most :data:`BLOCK_BYTES` each (at least one sample)."""
    return blocks_of_samples(n, math.prod(g.out_sizes) * row_bytes, BLOCK_BYTES)


Saved = list[np.ndarray] | winograd.Tiles  # what the forward pass keeps for the backward one


def correlate(x: np.ndarray, w: np.ndarray, g: Geometry,
              b: np.ndarray | None = None) -> tuple[np.ndarray, Saved]:
    """Forward convolution (plus the bias ``b``, if any, inside the same matmul: a column of
    ones in the patches meets it as the kernel's last row): ``(y, saved)``,
    ``y: (N, *S_out, C_out)``; ``saved`` (for :func:`correlate_vjp` / :func:`kernel_grad`)
    is the patch matrix as the row blocks of :func:`sample_blocks`, each multiplied as soon
    as it is built, or, for the 3×3 stride-1 convolutions the compiled backend runs by
    Winograd's algorithm (:func:`fnn.ops.winograd.fits`), the transformed tiles."""
    if winograd.fits(g, x, w):
        return winograd.correlate(x, w, g, b)
    return correlate_by_patches(x, w, g, b)


def correlate_by_patches(x: np.ndarray, w: np.ndarray, g: Geometry,
                         b: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`correlate` by the patch matrix, whatever the backend and geometry."""
    matrix, xp = kernel_matrix(w, b), pad(x, g.pads)
    dtype = x.dtype if x.dtype == matrix.dtype else np.result_type(x, matrix)
    y = np.empty((x.shape[0], *g.out_sizes, w.shape[-1]), dtype=dtype)
    cols = []
    for part in sample_blocks(x.shape[0], g, matrix.shape[0] * x.itemsize):
        cols.append(padded_patches(xp[part], g, ones=b is not None))
        np.matmul(cols[-1], matrix, out=y[part].reshape(-1, matrix.shape[1]))
    return y, cols


def correlate_adjoint(dy: np.ndarray, w: np.ndarray, g: Geometry) -> np.ndarray:
    """The adjoint of the convolution in its input: ``(N, *S_out, C_out) -> (N, *S, C_in)``.

    At stride 1 with no more output than input channels it is itself a convolution (see
    :func:`adjoint_geometry`; ``benchmarks/micro.py`` times both); otherwise
    :func:`adjoint_by_taps`."""
    flipped_geometry = adjoint_geometry(g) if w.shape[-1] <= w.shape[-2] else None
    if flipped_geometry is None:
        return adjoint_by_taps(dy, w, g)
    flipped = w[tuple(slice(None, None, -1) for _ in g.kernel)].swapaxes(-1, -2)
    return correlate(dy, flipped, flipped_geometry)[0]


def adjoint_by_taps(dy: np.ndarray, w: np.ndarray, g: Geometry) -> np.ndarray:
    """:func:`correlate_adjoint` for any geometry: ``dy @ w.T`` per tap, folded back onto the
    input. With 8 or more input channels each tap's matmul is added to its shifted slice of
    the output at once (its block is still in cache); with fewer, or on 2-D images with the
    compiled fold (one pass at memory speed, where the per-tap adds write strided
    rectangles: 2-3x faster on the autoencoder's decoder, as fast on LeNet's 32 <- 64), one
    wide matmul then a fold is faster (``benchmarks/micro.py`` times these ways)."""
    n, c_in, c_out = dy.shape[0], w.shape[-2], w.shape[-1]
    rows = dy.reshape(-1, c_out)
    if c_in >= 8 and not (len(g.kernel) == 2 and compiled_fits(g, dy, w)):
        out = np.zeros((n, *g.padded_sizes, c_in), dtype=np.result_type(dy, w))
        for tap_w, target in zip(w.reshape(-1, c_in, c_out), tap_slices(g)):
            out[target] += (rows @ tap_w.T).reshape(n, *g.out_sizes, c_in)
        return crop(out, g)
    dcols = rows @ kernel_matrix(w).T
    return fold(dcols.reshape(n, *g.out_sizes, *g.kernel, c_in), g)


def adjoint_geometry(g: Geometry) -> Geometry | None:
    """At stride 1 the adjoint of a convolution is the convolution of ``dy`` with the kernel
    flipped in space (channels swapped), same dilation, padding ``k_eff - 1 - lo`` before and
    ``k_eff - 1 - hi`` after: this geometry, or None when it does not apply (a stride, or
    padding wider than the kernel)."""
    eff = g.effective_kernel
    if any(s != 1 for s in g.stride) or any(lo >= e or hi >= e for (lo, hi), e in zip(g.pads, eff)):
        return None
    pads = tuple((e - 1 - lo, e - 1 - hi) for (lo, hi), e in zip(g.pads, eff))
    return window_geometry(g.out_sizes, g.kernel, g.stride, g.dilation, pads)


def correlate_vjp(saved: Saved, dy: np.ndarray, w: np.ndarray, g: Geometry,
                  input_grad: bool = True) -> tuple[np.ndarray, np.ndarray | None,
                                                    np.ndarray | None]:
    """``(dw, db, dx)`` of :func:`correlate` from what it saved and the output gradient
    ``dy`` (``db`` None without a bias; ``dx`` None unless ``input_grad``)."""
    if isinstance(saved, winograd.Tiles):
        dw, dx = winograd.grads(saved, dy, input_grad)
        return dw, (bias_grad(dy) if saved.bias else None), dx
    dw, db = kernel_grad(saved, dy, w.shape)
    return dw, db, (correlate_adjoint(dy, w, g) if input_grad else None)


def kernel_grad(cols: Saved | np.ndarray, dy: np.ndarray,
                w_shape: tuple) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dw, db)`` from the patch matrix (or what :func:`correlate` saved) and the output
    gradient (``db`` from the column of ones, None without one)."""
    if isinstance(cols, winograd.Tiles):
        dw, _ = winograd.grads(cols, dy, input_grad=False)
        return dw, (bias_grad(dy) if cols.bias else None)
    rows = dy.reshape(-1, dy.shape[-1])
    full: np.ndarray | None = None
    start = 0
    for block in cols if isinstance(cols, list) else [cols]:
        part = rows[start:start + len(block)]
        start += len(block)
        # BLAS reads the big patch matrix fastest in its own layout (benchmarks/micro.py)
        product = (part.T @ block).T if block.flags.c_contiguous else block.T @ part
        full = product if full is None else np.add(full, product, out=full)
    assert full is not None  # at least one block
    k = math.prod(w_shape[:-1])
    return full[:k].reshape(w_shape), (full[k] if len(full) > k else None)


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """``dy`` summed over every axis but the last (channels), as a matrix-vector product:
    faster than ``sum(axis=0)`` over few channels (``benchmarks/micro.py``)."""
    rows = dy if dy.ndim == 2 else dy.reshape(-1, dy.shape[-1])
    return _ones(len(rows), rows.dtype) @ rows


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones (the same few lengths come every step)."""
    ones = np.ones(n, dtype=dtype)
    ones.flags.writeable = False
    return ones


def flops(g: Geometry, batch: int, c_in: int, c_out: int) -> int:
    """Multiply-adds × 2 of one forward convolution (the input gradient and the kernel
    gradient cost as much each): ``2 N prod(S_out) prod(kernel) C_in C_out``."""
    return 2 * batch * math.prod(g.out_sizes) * math.prod(g.kernel) * c_in * c_out
