"""numba implementations of the memory-bound kernels, behind the signatures of the numpy ones
in :mod:`fnn.ops.windows`, :mod:`fnn.ops.pool`, :mod:`fnn.ops.elementwise` and
:mod:`fnn.ops.losses` (which call them when the compiled backend is chosen; see
:func:`fnn.ops.use`). Importing this module imports numba (~0.3-0.5 s), so nothing imports it
before a kernel first runs.

Why numba: it compiles plain Python loops over numpy arrays (no C toolchain, no build step,
wheels on PyPI for every platform numpy has), caches the machine code on disk
(``cache=True``: later processes load it in milliseconds) and releases the GIL
(``nogil=True``), so batch shards (:mod:`fnn.threads`) run these kernels on several cores at
once. GEMMs stay in BLAS.

Each kernel is one pass over memory: padding is handled by bounds checks instead of a padded
copy, relu is fused into the max-pool that follows it, a vjp reads its inputs once. 1-D
inputs run the 2-D kernels as height-1 images (a reshape, no copy). Arithmetic is done in the
arrays' dtype (constants are made in that dtype), so float32 results match numpy's: to the
bit where no ``exp`` is involved and sums run in the same order, else to float rounding.

Not compiled, because numpy measured as fast or faster here (``benchmarks/micro.py`` times
both backends): the patch matrix (numpy's pad + one strided copy runs at memcpy speed; a numba
loop over taps did not beat it), ``exp``-based forward passes (numpy's SIMD ``exp`` beats
numba's scalar one: the sigmoid forward stays numpy) and relu's forward (one pass already).
"""

from __future__ import annotations

import numba
import numpy as np

from fnn.ops.pool import arg_dtype, tiled
from fnn.ops.windows import Geometry, as_2d

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


def _image(a: np.ndarray) -> np.ndarray:
    """``(N, L, C)`` → ``(N, 1, L, C)``; 2-D images unchanged; C-contiguous either way (a
    strided view, e.g. the cropped gradient of a padded convolution, would make numba compile
    and run a generic-layout loop several times slower than copying it first:
    ``benchmarks/micro.py``)."""
    a = np.ascontiguousarray(a)
    return a if a.ndim == 4 else a.reshape(a.shape[0], 1, *a.shape[1:])


# --- fold ----------------------------------------------------------------------------------------

@_jit
def _fold2d(dwin, sh, sw, dh, dw, ph, pw, out):
    # dwin: (n, oh, ow, kh, kw, c), out: (n, h, w, c). Indexing by axes, not by flat offsets:
    # numba then hoists the negative-index checks out of the channel loop, which vectorises
    n, oh, ow, kh, kw, c = dwin.shape
    h, w = out.shape[1], out.shape[2]
    out[...] = 0
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ti in range(kh):
                    r = i * sh + ti * dh - ph
                    if r < 0 or r >= h:
                        continue
                    for tj in range(kw):
                        s = j * sw + tj * dw - pw
                        if s < 0 or s >= w:
                            continue
                        source, target = dwin[b, i, j, ti, tj], out[b, r, s]
                        for ch in range(c):
                            target[ch] += source[ch]


def fold(dwin: np.ndarray, g: Geometry) -> np.ndarray:
    """:func:`fnn.ops.windows.fold` in one pass (no padded array to crop)."""
    g2 = as_2d(g)
    n, c = dwin.shape[0], dwin.shape[-1]
    out = np.empty((n, *g2.sizes, c), dtype=dwin.dtype)
    (sh, sw), (dh, dw) = g2.stride, g2.dilation
    windows = np.ascontiguousarray(dwin).reshape(n, *g2.out_sizes, *g2.kernel, c)
    _fold2d(windows, sh, sw, dh, dw, g2.pads[0][0], g2.pads[1][0], out)
    return out.reshape(n, *g.sizes, c)


# --- max-pool (optionally after relu) ------------------------------------------------------------

@_jit
def _max_pool2d(x, kh, kw, sh, sw, ph, pw, relu, y, arg):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ti in range(kh):
                    r = i * sh + ti - ph
                    for tj in range(kw):
                        s = j * sw + tj - pw
                        t = ti * kw + tj
                        inside = 0 <= r < h and 0 <= s < w
                        if t == 0:
                            for ch in range(c):
                                y[b, i, j, ch] = x[b, r, s, ch] if inside else -np.inf
                                arg[b, i, j, ch] = 0
                        elif inside:  # a padded tap (-inf) never beats the best so far
                            for ch in range(c):
                                v = x[b, r, s, ch]
                                if v > y[b, i, j, ch]:  # strict: the first maximum wins
                                    y[b, i, j, ch] = v
                                    arg[b, i, j, ch] = t
                                elif v != v:  # NaN propagates, as np.maximum does
                                    y[b, i, j, ch] = v
                if relu:
                    for ch in range(c):
                        if y[b, i, j, ch] < 0:
                            y[b, i, j, ch] = 0


@_jit
def _max_pool_pairs(x, kh, relu, y, arg):
    # windows of 2 (kh = 1) or 2x2 (kh = 2) that tile x without padding, the usual pooling:
    # the best value and tap of each channel live in registers across the taps (one store
    # each), so the channel loop vectorises: several times faster than _max_pool2d
    # (benchmarks/micro.py)
    n, oh, ow, c = y.shape
    zero = y.dtype.type(0)
    for b in range(n):
        for i in range(oh):
            r0 = kh * i
            r1 = r0 + kh - 1
            for j in range(ow):
                x0, x1 = x[b, r0, 2 * j], x[b, r0, 2 * j + 1]
                x2, x3 = x[b, r1, 2 * j], x[b, r1, 2 * j + 1]
                best, where = y[b, i, j], arg[b, i, j]
                for ch in range(c):
                    # strict: the first maximum wins; a NaN propagates, as np.maximum does
                    m, t = x0[ch], 0
                    v = x1[ch]
                    m, t = (v if (v > m) | (v != v) else m), (1 if v > m else t)
                    if kh == 2:
                        v = x2[ch]
                        m, t = (v if (v > m) | (v != v) else m), (2 if v > m else t)
                        v = x3[ch]
                        m, t = (v if (v > m) | (v != v) else m), (3 if v > m else t)
                    if relu:
                        m = zero if m < zero else m
                    best[ch], where[ch] = m, t


def max_pool(x: np.ndarray, g: Geometry, relu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fnn.ops.pool.max_pool` in one pass over ``x`` (padding skipped)."""
    g2 = as_2d(g)
    n, c = x.shape[0], x.shape[-1]
    y = np.empty((n, *g2.out_sizes, c), dtype=x.dtype)
    arg = np.empty(y.shape, dtype=arg_dtype(g))
    (kh, kw), (sh, sw) = g2.kernel, g2.stride
    if g2.kernel == g2.stride and kw == 2 and kh in (1, 2) and not any(map(any, g2.pads)):
        _max_pool_pairs(_image(x), kh, relu, y, arg)
    else:
        _max_pool2d(_image(x), kh, kw, sh, sw, g2.pads[0][0], g2.pads[1][0], relu, y, arg)
    shape = (n, *g.out_sizes, c)
    return y.reshape(shape), arg.reshape(shape)


@_jit
def _max_pool2d_backward(dy, arg, relu_y, relu, kh, kw, sh, sw, ph, pw, tiles, dx):
    n, h, w, c = dx.shape
    oh, ow = dy.shape[1], dy.shape[2]
    one, zero = dy.dtype.type(1), dy.dtype.type(0)
    if not tiles:
        dx[...] = 0
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ti in range(kh):
                    r = i * sh + ti - ph
                    if r < 0 or r >= h:
                        continue
                    for tj in range(kw):
                        s = j * sw + tj - pw
                        if s < 0 or s >= w:
                            continue
                        t = ti * kw + tj
                        for ch in range(c):
                            hit = arg[b, i, j, ch] == t
                            if tiles:
                                if hit:
                                    v = dy[b, i, j, ch]
                                    if relu:
                                        v = v * (one if relu_y[b, i, j, ch] > 0 else zero)
                                    dx[b, r, s, ch] = v
                                else:
                                    dx[b, r, s, ch] = zero
                            elif hit:
                                v = dy[b, i, j, ch]
                                if relu:
                                    v = v * (one if relu_y[b, i, j, ch] > 0 else zero)
                                dx[b, r, s, ch] += v


def max_pool_backward(dy: np.ndarray, arg: np.ndarray, g: Geometry,
                      relu_y: np.ndarray | None = None) -> np.ndarray:
    """:func:`fnn.ops.pool.max_pool_backward` in one pass (no zero-fill when the windows
    tile the input)."""
    g2 = as_2d(g)
    n, c = dy.shape[0], dy.shape[-1]
    dx = np.empty((n, *g2.sizes, c), dtype=dy.dtype)
    relu = relu_y is not None
    (kh, kw), (sh, sw) = g2.kernel, g2.stride
    _max_pool2d_backward(_image(dy), _image(arg), _image(relu_y if relu else dy), relu,
                         kh, kw, sh, sw, g2.pads[0][0], g2.pads[1][0], tiled(g), dx)
    return dx.reshape(n, *g.sizes, c)


# --- element-wise ----------------------------------------------------------------------------

@_jit
def _relu_vjp(x, dy, out):
    one, zero = dy.dtype.type(1), dy.dtype.type(0)
    for i in range(x.size):
        out[i] = dy[i] * (one if x[i] > 0 else zero)


@_jit
def _tanh_vjp(y, dy, out):
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = dy[i] * (one - y[i] * y[i])


@_jit
def _sigmoid_vjp(y, dy, out):
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = dy[i] * (y[i] * (one - y[i]))


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


def relu_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty_like(dy)
    _relu_vjp(_flat(x), _flat(dy), _flat(out))
    return out


def tanh_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty_like(dy)
    _tanh_vjp(_flat(y), _flat(dy), _flat(out))
    return out


def sigmoid_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty_like(dy)
    _sigmoid_vjp(_flat(y), _flat(dy), _flat(out))
    return out


# --- losses --------------------------------------------------------------------------------------

@_jit
def _softmax_cross_entropy(z, labels, grad, d):
    n, c = z.shape
    inv_n = z.dtype.type(1.0 / n)
    total = 0.0
    for i in range(n):
        if labels[i] < 0 or labels[i] >= c:
            return -1.0  # a label out of range (a loss is never negative)
    for i in range(n):
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        s = z.dtype.type(0)
        for j in range(c):
            s += np.exp(z[i, j] - m)
        log_s = np.log(s)
        total -= z[i, labels[i]] - m - log_s
        if grad:
            for j in range(c):
                d[i, j] = np.exp(z[i, j] - m - log_s) * inv_n
            d[i, labels[i]] -= inv_n
    return total / n


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray,
                          grad: bool = True) -> tuple[float, np.ndarray | None] | None:
    """:func:`fnn.ops.losses.softmax_cross_entropy` in one pass over the logits (and one over
    the labels, checking their range)."""
    d = np.empty_like(z) if grad else np.empty((0, 0), dtype=z.dtype)
    value = _softmax_cross_entropy(z, labels.astype(np.int64, copy=False), grad, d)
    if value < 0:
        return None
    return float(value), (d if grad else None)
