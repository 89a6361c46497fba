"""3×3 stride-1 2-D convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016): 2.25× fewer multiplies than the
patch-matrix matmul, run by the compiled backend (:func:`fits`).

Each 4×4 window of the padded input at stride 2 (a *tile*) gives a 2×2 block of output::

    Y = A^T [ (G w G^T) ⊙ (B^T d B) ] A       per tile d (4×4), kernel w (3×3), channel pair

summed over input channels: for each of the 16 positions of the transformed tile, one matmul
``(tiles, C_in) @ (C_in, C_out)`` (:data:`B_T`, :data:`G`, :data:`A_T` below). The backward
pass is the same algebra transposed: ``dM = A dY A^T``; the kernel gradient
``G^T (V^T dM) G`` and the input gradient ``B (dM U^T) B^T``, summed back onto the
overlapping tiles, share ``dM``. The tile transforms are compiled loops
(:mod:`fnn.ops.compiled`); the 16 matmuls stay in BLAS and run on blocks of samples whose
transformed tiles fit the L2 cache (:data:`BLOCK_BYTES`), where they run near the machine's
GEMM peak (``benchmarks/micro.py``).

Results equal the direct convolution's up to float rounding: the transforms only add,
subtract and halve (for float32 the largest difference on LeNet's second conv is a few
units in the last place of the outputs' scale, ``tests/test_winograd.py``).

>>> import numpy as np, fnn
>>> from fnn.ops import conv, winograd
>>> from fnn.ops.geometry import window_geometry
>>> g = window_geometry((6, 6), (3, 3), (1, 1), (1, 1), "same")
>>> x, w = np.ones((2, 6, 6, 8)), np.ones((3, 3, 8, 8))
>>> with fnn.ops.using("compiled"):  # conv.correlate picks Winograd for this layer
...     y, tiles = conv.correlate(x, w, g)
...     dw, db, dx = conv.correlate_vjp(tiles, np.ones_like(y), w, g)
>>> type(tiles).__name__, float(y[0, 0, 0, 0]), float(y[0, 2, 2, 0])  # 4 taps, 9 taps
('Tiles', 32.0, 72.0)
>>> dw.shape, db, dx.shape
((3, 3, 8, 8), None, (2, 6, 6, 8))
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn.ops import _backend
from fnn.ops.geometry import Geometry
from fnn.ops.windows import blocks_of_samples, compiled_fits, pad

#: The transforms of F(2×2, 3×3): input ``B^T d B``, kernel ``G w G^T``, output ``A^T m A``.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])

#: Channels below which the patch-matrix path stays faster (the 16 matmuls are too thin).
MIN_CHANNELS = 8

#: Bytes of transformed tiles ``(tiles, 16, max(C_in, C_out))`` per block of samples.
BLOCK_BYTES = 1 << 20


class Tiles(NamedTuple):
    """What the forward pass keeps for the backward one."""

    v: list[np.ndarray]  # per block of samples: the transformed input tiles (tiles, 16, C_in)
    u: np.ndarray  # the transformed kernel (16, C_in, C_out)
    blocks: list[slice]  # the blocks of samples
    g: Geometry
    bias: bool  # whether the convolution added a bias


def fits(g: Geometry, x: np.ndarray, w: np.ndarray) -> bool:
    """Whether :func:`correlate` takes this convolution: compiled backend, a 3×3 kernel at
    stride 1 and dilation 1, at least :data:`MIN_CHANNELS` input and output channels."""
    return (g.kernel == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)
            and min(w.shape[-2:]) >= MIN_CHANNELS and compiled_fits(g, x, w))


def tile_counts(g: Geometry) -> tuple[int, int]:
    """Tiles down and across: each covers 2 output rows and columns."""
    return -(-g.out_sizes[0] // 2), -(-g.out_sizes[1] // 2)


def transform_kernel(w: np.ndarray) -> np.ndarray:
    """``(3, 3, C_in, C_out)`` → ``G w G^T`` as ``(16, C_in, C_out)``."""
    g = G.astype(w.dtype)
    rows = (g @ w.reshape(3, -1)).reshape(4, 3, -1)  # G w, then (G w) G^T below
    return np.matmul(g, rows).reshape(16, *w.shape[2:])


def kernel_adjoint(du: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`transform_kernel`: ``(16, C_in, C_out)`` → ``G^T du G``."""
    g = G.astype(du.dtype)
    rows = (g.T @ du.reshape(4, -1)).reshape(3, 4, -1)  # G^T du, then (G^T du) G below
    return np.matmul(g.T, rows).reshape(3, 3, *du.shape[1:])


def correlate(x: np.ndarray, w: np.ndarray, g: Geometry,
              b: np.ndarray | None = None) -> tuple[np.ndarray, Tiles]:
    """:func:`fnn.ops.conv.correlate` of ``x: (N, H, W, C_in)`` with ``w: (3, 3, C_in,
    C_out)`` (plus the bias ``b``) → ``(y, tiles)``; ``tiles`` is for :func:`grads`."""
    kernels, (th, tw) = _backend.kernels(), tile_counts(g)
    (top, _), (left, _) = g.pads
    # pad to whole tiles: 2 * tiles + 2 rows and columns
    xp = pad(x, ((top, 2 * th + 2 - g.sizes[0] - top), (left, 2 * tw + 2 - g.sizes[1] - left)))
    u = transform_kernel(w)
    c_in, c_out = u.shape[1:]
    y = np.empty((x.shape[0], *g.out_sizes, c_out), dtype=x.dtype)
    bias = np.zeros(c_out, x.dtype) if b is None else b.astype(x.dtype, copy=False)
    sample_bytes = th * tw * 16 * max(c_in, c_out) * x.itemsize  # its transformed tiles
    blocks, vs = blocks_of_samples(x.shape[0], sample_bytes, BLOCK_BYTES), []
    for part in blocks:
        tiles = (part.stop - part.start) * th * tw
        v = np.empty((tiles, 16, c_in), dtype=x.dtype)
        kernels.winograd_input(xp[part], th, tw, v)
        m = np.empty((tiles, 16, c_out), dtype=x.dtype)
        np.matmul(v.transpose(1, 0, 2), u, out=m.transpose(1, 0, 2))
        kernels.winograd_output(m, bias, th, tw, y[part])
        vs.append(v)
    return y, Tiles(vs, u, blocks, g, b is not None)


def grads(saved: Tiles, dy: np.ndarray,
          input_grad: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dw, dx)`` of :func:`correlate` from the output gradient ``dy: (N, H_out, W_out,
    C_out)`` (``dx`` None unless ``input_grad``; the bias gradient is ``dy``'s sum,
    :func:`fnn.ops.conv.bias_grad`)."""
    kernels, g, u = _backend.kernels(), saved.g, saved.u
    th, tw = tile_counts(g)
    c_in, c_out = u.shape[1:]
    dy = np.ascontiguousarray(dy)
    du = np.zeros(u.shape, u.dtype)
    u_t = np.ascontiguousarray(u.transpose(0, 2, 1))
    dx = np.empty((dy.shape[0], *g.sizes, c_in), dtype=dy.dtype) if input_grad else None
    for part, v in zip(saved.blocks, saved.v):
        dm = np.empty((len(v), 16, c_out), dtype=dy.dtype)
        kernels.winograd_output_grad(dy[part], th, tw, dm)
        du += np.matmul(v.transpose(1, 2, 0), dm.transpose(1, 0, 2))
        if dx is not None:
            dv = np.empty(v.shape, v.dtype)
            np.matmul(dm.transpose(1, 0, 2), u_t, out=dv.transpose(1, 0, 2))
            buf = np.empty((part.stop - part.start, 2 * th + 2, 2 * tw + 2, c_in), dy.dtype)
            kernels.winograd_input_grad(dv, th, tw, g.pads[0][0], g.pads[1][0], buf, dx[part])
    return kernel_adjoint(du), dx

