"""numba implementations of the memory-bound kernels, behind the signatures of the numpy ones
in :mod:`fnn.ops.windows`, :mod:`fnn.ops.pool`, :mod:`fnn.ops.activations`,
:mod:`fnn.ops.update`, :mod:`fnn.ops.losses` and :mod:`fnn.ops.winograd` (which call them
when the compiled backend is chosen; see :func:`fnn.ops.use`). It imports only numba, numpy
and the leaf :mod:`fnn.ops.geometry`. Importing this module imports numba (~0.3-0.5 s), so nothing imports it
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

from fnn.ops.geometry import Geometry, arg_dtype, as_2d, tiled

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
    arg: np.ndarray = np.empty(y.shape, dtype=arg_dtype(g))
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
    _max_pool2d_backward(_image(dy), _image(arg), _image(dy if relu_y is None else relu_y), relu,
                         kh, kw, sh, sw, g2.pads[0][0], g2.pads[1][0], tiled(g), dx)
    return dx.reshape(n, *g.sizes, c)


# --- element-wise ----------------------------------------------------------------------------

# The element-wise kernels take C-contiguous arrays of any rank and flatten them inside (a
# reshape of a contiguous array is a view there too): no Python-level reshapes per call.

@_jit
def _relu_vjp(x, dy, out):
    x, dy, out = x.reshape(x.size), dy.reshape(dy.size), out.reshape(out.size)
    one, zero = dy.dtype.type(1), dy.dtype.type(0)
    for i in range(x.size):
        out[i] = dy[i] * (one if x[i] > 0 else zero)


@_jit
def _tanh_vjp(y, dy, out):
    y, dy, out = y.reshape(y.size), dy.reshape(dy.size), out.reshape(out.size)
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = dy[i] * (one - y[i] * y[i])


@_jit
def _sigmoid_vjp(y, dy, out):
    y, dy, out = y.reshape(y.size), dy.reshape(dy.size), out.reshape(out.size)
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = dy[i] * (y[i] * (one - y[i]))


def relu_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty(dy.shape, dy.dtype)
    _relu_vjp(x, dy, out)
    return out


def tanh_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty(dy.shape, dy.dtype)
    _tanh_vjp(y, dy, out)
    return out


def sigmoid_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out = np.empty(dy.shape, dy.dtype)
    _sigmoid_vjp(y, dy, out)
    return out


@_jit
def add_scaled(p, u, a, out):
    p, u, out = p.reshape(p.size), u.reshape(u.size), out.reshape(out.size)
    for i in range(p.size):
        out[i] = p[i] + a * u[i]  # two roundings, as numpy's a * u then + (no fused multiply-add)


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
    d = np.empty(z.shape if grad else (0, 0), dtype=z.dtype)
    value = _softmax_cross_entropy(z, labels.astype(np.int64, copy=False), grad, d)
    if value < 0:
        return None
    return float(value), (d if grad else None)


# --- Winograd F(2x2, 3x3) transforms (fnn.ops.winograd) ------------------------------------------
# Tiles are 4x4 input windows at stride 2, each giving a 2x2 block of output. Transformed arrays
# are tile-major, (tiles, 16, C): each tile reads and writes a few contiguous runs of channels,
# so the channel loops vectorise; the 16 matmuls read them as (16, tiles, C) strided views.

@_jit
def _bt(d0, d1, d2, d3):  # B^T d (B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]])
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@_jit
def _b(u0, u1, u2, u3):  # B u, the adjoint of _bt
    return u0, u1 - u2 + u3, u1 + u2 - u0, -u3


@_jit
def _at(m0, m1, m2, m3):  # A^T m (A^T = [[1,1,1,0], [0,1,-1,-1]])
    return m0 + m1 + m2, m1 - m2 - m3


@_jit
def _a(y0, y1):  # A y, the adjoint of _at
    return y0, y0 + y1, y0 - y1, -y1


@_jit
def winograd_input(xp, th, tw, v):
    # xp: (n, >= 2th+2, >= 2tw+2, c) padded input; v: (n*th*tw, 16, c) <- B^T d B per tile.
    # Each transform runs as two passes over a small scratch tile, rows then columns: every
    # channel loop then reads and writes a few rows of two arrays, so it vectorises (one
    # pass over the 16 rows of two arrays did not: numba's arrays may alias)
    n, c = xp.shape[0], xp.shape[3]
    s = np.empty((4, 4, c), dtype=v.dtype)
    for b in range(n):
        for i in range(th):
            for j in range(tw):
                out = v[(b * th + i) * tw + j]
                for r in range(4):
                    row, sr = xp[b, 2 * i + r, 2 * j:2 * j + 4], s[r]
                    for ch in range(c):
                        sr[0, ch], sr[1, ch], sr[2, ch], sr[3, ch] = _bt(
                            row[0, ch], row[1, ch], row[2, ch], row[3, ch])
                for k in range(4):
                    s0, s1, s2, s3 = s[0, k], s[1, k], s[2, k], s[3, k]
                    o0, o1, o2, o3 = out[k], out[4 + k], out[8 + k], out[12 + k]
                    for ch in range(c):
                        o0[ch], o1[ch], o2[ch], o3[ch] = _bt(s0[ch], s1[ch], s2[ch], s3[ch])


@_jit
def winograd_output(m, bias, th, tw, y):
    # m: (n*th*tw, 16, c); y: (n, h, w, c) <- A^T m A + bias (a tile's rows and columns past
    # h, w are dropped: odd output sizes)
    n, h, w, c = y.shape
    s = np.empty((4, 2, c), dtype=y.dtype)
    for b in range(n):
        for i in range(th):
            for j in range(tw):
                t = m[(b * th + i) * tw + j]
                for r in range(4):
                    t0, t1, t2, t3, sr = t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3], s[r]
                    for ch in range(c):
                        sr[0, ch], sr[1, ch] = _at(t0[ch], t1[ch], t2[ch], t3[ch])
                for k in range(min(2, w - 2 * j)):
                    s0, s1, s2, s3 = s[0, k], s[1, k], s[2, k], s[3, k]
                    top = y[b, 2 * i, 2 * j + k]
                    if 2 * i + 1 < h:
                        bottom = y[b, 2 * i + 1, 2 * j + k]
                        for ch in range(c):
                            y0, y1 = _at(s0[ch], s1[ch], s2[ch], s3[ch])
                            top[ch], bottom[ch] = y0 + bias[ch], y1 + bias[ch]
                    else:
                        for ch in range(c):
                            top[ch] = _at(s0[ch], s1[ch], s2[ch], s3[ch])[0] + bias[ch]


@_jit
def winograd_output_grad(dy, th, tw, dm):
    # the adjoint of winograd_output: dy (n, h, w, c) -> dm (n*th*tw, 16, c) = A dy A^T
    n, h, w, c = dy.shape
    zero = dy.dtype.type(0)
    s = np.empty((2, 4, c), dtype=dm.dtype)
    for b in range(n):
        for i in range(th):
            for j in range(tw):
                out = dm[(b * th + i) * tw + j]
                for r in range(2):
                    sr = s[r]
                    if 2 * i + r >= h:
                        sr[...] = 0
                        continue
                    left = dy[b, 2 * i + r, 2 * j]
                    if 2 * j + 1 < w:
                        right = dy[b, 2 * i + r, 2 * j + 1]
                        for ch in range(c):
                            sr[0, ch], sr[1, ch], sr[2, ch], sr[3, ch] = _a(left[ch], right[ch])
                    else:
                        for ch in range(c):
                            sr[0, ch], sr[1, ch], sr[2, ch], sr[3, ch] = _a(left[ch], zero)
                for k in range(4):
                    s0, s1 = s[0, k], s[1, k]
                    o0, o1, o2, o3 = out[k], out[4 + k], out[8 + k], out[12 + k]
                    for ch in range(c):
                        o0[ch], o1[ch], o2[ch], o3[ch] = _a(s0[ch], s1[ch])


@_jit
def winograd_input_grad(dv, th, tw, ph, pw, buf, dx):
    # the adjoint of winograd_input: dv (n*th*tw, 16, c) -> B dv B^T summed onto the padded
    # positions of each tile in buf (n, 2th+2, 2tw+2, c), then cropped by (ph, pw) into dx
    n, h, w, c = dx.shape
    s = np.empty((4, 4, c), dtype=dx.dtype)
    buf[...] = 0
    for b in range(n):
        for i in range(th):
            for j in range(tw):
                t = dv[(b * th + i) * tw + j]
                for r in range(4):
                    t0, t1, t2, t3, sr = t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3], s[r]
                    for ch in range(c):
                        sr[0, ch], sr[1, ch], sr[2, ch], sr[3, ch] = _b(t0[ch], t1[ch], t2[ch], t3[ch])
                for k in range(4):
                    s0, s1, s2, s3 = s[0, k], s[1, k], s[2, k], s[3, k]
                    o0, o1 = buf[b, 2 * i, 2 * j + k], buf[b, 2 * i + 1, 2 * j + k]
                    o2, o3 = buf[b, 2 * i + 2, 2 * j + k], buf[b, 2 * i + 3, 2 * j + k]
                    for ch in range(c):
                        e0, e1, e2, e3 = _b(s0[ch], s1[ch], s2[ch], s3[ch])
                        o0[ch] += e0
                        o1[ch] += e1
                        o2[ch] += e2
                        o3[ch] += e3
        dx[b] = buf[b, ph:ph + h, pw:pw + w]
