"""Element-wise maths for numba kernels (used by :mod:`fnn.ops.sequence_kernels`): ``exp``,
``sigmoid`` and ``tanh`` that vectorise, and the 1-D loops the recurrences are made of. A
leaf: it imports numba and numpy only.

``vexp`` and ``vtanh`` are plain arithmetic (range reduction, a polynomial, the exponent's
bits set directly), because numba's ``math.exp`` / ``math.tanh`` call scalar libm routines
(no SVML here) that keep loops from vectorising: a loop of ``math.tanh`` measured ~10x slower
than numpy's SIMD ``tanh``. They agree with numpy's ``exp`` / ``tanh`` to 3 ulp on
``|x| < 87`` (float32) / ``|x| < 708`` (float64); outside, ``exp``'s argument is clamped
(``sigmoid`` gives ~1e-38 / 1e-308 instead of 0, ``tanh`` gives +-1 exactly), NaN
propagates.

Each loop is its own small function over 1-D arrays, writing one array: LLVM vectorises a
loop only when it can check at run time that what it writes does not overlap what it reads,
which it cannot do for views of one array at unknown offsets (the gates of one step) written
inline in a kernel; that measured 3x slower. Computation is in the arrays' dtype; fastmath is
off (results agree with numpy to rounding); ``error_model="numpy"`` drops the
division-by-zero checks that also keep loops from vectorising.

numba caches each kernel with the stamp of its own file only: after editing this file, delete
``fnn/ops/__pycache__/sequence_kernels*`` so the kernels built on it are compiled again.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
_loop = numba.njit(nogil=True, fastmath=False, error_model="numpy")


# --- exp, tanh -----------------------------------------------------------

@intrinsic
def _bits_as_float(typingctx, bits):
    """Reinterpret an int32 (int64) as the float32 (float64) with those bits."""
    if bits == types.int32:
        sig, target = types.float32(types.int32), ir.FloatType()
    elif bits == types.int64:
        sig, target = types.float64(types.int64), ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], target)

    return sig, codegen


def vexp(x):
    """``exp(x)`` in x's float type (numba only: the implementations are below)."""
    raise NotImplementedError


def vtanh(x):
    """``tanh(x)`` in x's float type (numba only)."""
    raise NotImplementedError


def _exp32(x):
    # exp(x) = 2^k exp(r), k = round(x / ln 2) (adding and subtracting 1.5 * 2^23 rounds to
    # an integer: floor() would not vectorise), r = x - k ln 2 (Cody-Waite: ln 2 in two
    # parts, so k * hi is exact), exp(r) by its Taylor polynomial to r^7 (|r| <= 0.347)
    u = np.float32(88.0) if x > np.float32(88.0) else x
    v = np.float32(-87.0) if u < np.float32(-87.0) else u
    k = (v * np.float32(1.44269504) + np.float32(12582912.0)) - np.float32(12582912.0)
    r = (v - k * np.float32(0.693145751953125)) - k * np.float32(1.428606765330187e-06)
    p = np.float32(1.0 / 5040.0) * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    bits = np.int32((np.int32(k) + np.int32(127)) << np.int32(23))
    return p * _bits_as_float(bits)  # type: ignore[call-arg]


def _exp64(x):
    # as _exp32, Taylor to r^13 (truncation < 1e-17 relative)
    u = 709.0 if x > 709.0 else x
    v = -708.0 if u < -708.0 else u
    k = (v * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0
    r = (v - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    p = (1.0 / 6227020800.0) * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    bits = np.int64((np.int64(k) + np.int64(1023)) << np.int64(52))
    return p * _bits_as_float(bits)  # type: ignore[call-arg]


def _tanh32(x):
    # Cephes' tanhf: an odd polynomial below |x| = 0.625, else 1 - 2 / (exp(2|x|) + 1);
    # both computed and one selected, so a loop of them vectorises
    z = abs(x)
    s = x * x
    small = ((((np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
               - np.float32(5.37397155531e-2)) * s + np.float32(1.33314422036e-1)) * s
             - np.float32(3.33332819422e-1)) * s * x + x
    big = np.float32(1.0) - np.float32(2.0) / (vexp(z + z) + np.float32(1.0))
    signed = -big if x < np.float32(0.0) else big
    return small if z < np.float32(0.625) else signed


def _tanh64(x):
    # Cephes' tanh: a rational function below |x| = 0.625, else as _tanh32
    z = abs(x)
    s = x * x
    p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s \
        - 1.61468768441708447952e3
    q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s \
        + 4.84406305325125486048e3
    small = x + x * s * (p / q)
    big = 1.0 - 2.0 / (vexp(z + z) + 1.0)
    signed = -big if x < 0.0 else big
    return small if z < 0.625 else signed


@overload(vexp)
def _vexp_impl(x):
    return _exp32 if x == types.float32 else _exp64 if x == types.float64 else None


@overload(vtanh)
def _vtanh_impl(x):
    return _tanh32 if x == types.float32 else _tanh64 if x == types.float64 else None


@_loop
def sigmoid(x, one):
    """``1 / (1 + exp(-x))`` (``one``: 1 in x's type)."""
    return one / (one + vexp(-x))


# --- 1-D loops, each writing one array ------------------------------------------------------------

@_loop
def copy(src, dst):
    """``dst[:] = src`` (numba's slice assignment costs ~1 us a call)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@_loop
def fill(dst, value):
    """``dst[...] = value`` over a 1-D or 2-D array."""
    if dst.ndim == 1:
        for j in range(dst.shape[0]):
            dst[j] = value
    else:
        for g in range(dst.shape[0]):
            for j in range(dst.shape[1]):
                dst[g, j] = value


@_loop
def add(src, dst):
    """``dst += src``."""
    for j in range(dst.shape[0]):
        dst[j] += src[j]


@_loop
def mul(src, dst):
    """``dst *= src``."""
    for j in range(dst.shape[0]):
        dst[j] *= src[j]


@_loop
def product(a, b, out):
    """``out = a * b``."""
    for j in range(out.shape[0]):
        out[j] = a[j] * b[j]


@_loop
def preact(x, a, out, tanh):
    """``out = tanh(x + a)``, or ``sigmoid(x + a)``."""
    one = out.dtype.type(1)
    if tanh:
        for j in range(out.shape[0]):
            out[j] = vtanh(x[j] + a[j])
    else:
        for j in range(out.shape[0]):
            out[j] = sigmoid(x[j] + a[j], one)


@_loop
def preact_bias(x, a, bias, out):
    """``out = sigmoid(x + (a + bias))``."""
    one = out.dtype.type(1)
    for j in range(out.shape[0]):
        out[j] = sigmoid(x[j] + (a[j] + bias[j]), one)


@_loop
def relu_sum(x, a, out):
    """``out = max(x + a, 0)`` (NaN stays NaN)."""
    zero = out.dtype.type(0)
    for j in range(out.shape[0]):
        v = x[j] + a[j]
        out[j] = zero if v < zero else v


@_loop
def tanh_of(x, out):
    """``out = tanh(x)``."""
    for j in range(out.shape[0]):
        out[j] = vtanh(x[j])


@_loop
def cell(i, f, g, c):
    """The LSTM cell update ``c = f * c + i * g``."""
    for j in range(c.shape[0]):
        c[j] = f[j] * c[j] + i[j] * g[j]


@_loop
def new_gate(x, r, hn, n):
    """The GRU candidate ``n = tanh(x + r * hn)``."""
    for j in range(n.shape[0]):
        n[j] = vtanh(x[j] + r[j] * hn[j])


@_loop
def blend(z, n, h, out):
    """The GRU output ``out = (1 - z) * n + z * h``."""
    one = out.dtype.type(1)
    for j in range(out.shape[0]):
        out[j] = (one - z[j]) * n[j] + z[j] * h[j]


@_loop
def total(dy, ghm, dh):
    """``dh = (dy + ghm) + dh``; ``dh = ghm + dh`` when ``dy`` is empty."""
    if dy.shape[0] > 0:
        for j in range(dh.shape[0]):
            dh[j] = (dy[j] + ghm[j]) + dh[j]
    else:
        for j in range(dh.shape[0]):
            dh[j] = ghm[j] + dh[j]


@_loop
def sigmoid_grad(a, b, s, d):
    """``d = a * b * s * (1 - s)``: through a sigmoid gate ``s``, times ``b``."""
    one = d.dtype.type(1)
    for j in range(d.shape[0]):
        d[j] = a[j] * b[j] * s[j] * (one - s[j])


@_loop
def tanh_grad(a, b, g, d):
    """``d = a * b * (1 - g^2)``: through a tanh ``g``, times ``b``."""
    one = d.dtype.type(1)
    for j in range(d.shape[0]):
        d[j] = a[j] * b[j] * (one - g[j] * g[j])


@_loop
def cell_grad(dh, o, tc, dc):
    """``dc = dc + dh * o * (1 - tc^2)``: the LSTM cell state's gradient."""
    one = dc.dtype.type(1)
    for j in range(dc.shape[0]):
        dc[j] = dc[j] + dh[j] * o[j] * (one - tc[j] * tc[j])


@_loop
def act_grad(dh, y, relu, d):
    """``d = dh * (1 - y^2)`` (tanh), ``dh if y > 0 else 0`` (relu), from the output ``y``."""
    zero, one = d.dtype.type(0), d.dtype.type(1)
    if relu:
        for j in range(d.shape[0]):
            d[j] = dh[j] if y[j] > zero else zero
    else:
        for j in range(d.shape[0]):
            d[j] = dh[j] * (one - y[j] * y[j])


@_loop
def update_grad(dh, h, n, z, d):
    """The GRU update gate's ``d = dh * (h - n) * z * (1 - z)``."""
    one = d.dtype.type(1)
    for j in range(d.shape[0]):
        d[j] = dh[j] * (h[j] - n[j]) * z[j] * (one - z[j])


@_loop
def new_grad(dh, z, n, d):
    """The GRU candidate's ``d = dh * (1 - z) * (1 - n^2)``."""
    one = d.dtype.type(1)
    for j in range(d.shape[0]):
        d[j] = dh[j] * (one - z[j]) * (one - n[j] * n[j])


@_loop
def centre(x, m, out):
    """``out = x - m`` (``m`` a scalar)."""
    for j in range(out.shape[0]):
        out[j] = x[j] - m


@_loop
def scale_by(s, out):
    """``out *= s`` (``s`` a scalar)."""
    for j in range(out.shape[0]):
        out[j] *= s


@_loop
def affine(x, scale, bias, out):
    """``out = x * scale + bias``."""
    for j in range(out.shape[0]):
        out[j] = x[j] * scale[j] + bias[j]


@_loop
def accumulate(a, b, acc):
    """``acc += a * b``."""
    for j in range(acc.shape[0]):
        acc[j] += a[j] * b[j]


@_loop
def norm_grad(xhat, s1, s2, k, inv, g):
    """``g = inv * (g - (s1 + xhat * s2) * k)`` in place (the normalisation's backward)."""
    for j in range(g.shape[0]):
        g[j] = inv * (g[j] - (s1 + xhat[j] * s2) * k)


@_loop
def row_max(row, low):
    """The largest entry (``low`` when it is empty or all ``low``), in 8 running maxima."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = low
    full = row.shape[0] - row.shape[0] % 8
    for j in range(0, full, 8):
        m0 = row[j] if row[j] > m0 else m0
        m1 = row[j + 1] if row[j + 1] > m1 else m1
        m2 = row[j + 2] if row[j + 2] > m2 else m2
        m3 = row[j + 3] if row[j + 3] > m3 else m3
        m4 = row[j + 4] if row[j + 4] > m4 else m4
        m5 = row[j + 5] if row[j + 5] > m5 else m5
        m6 = row[j + 6] if row[j + 6] > m6 else m6
        m7 = row[j + 7] if row[j + 7] > m7 else m7
    m = max(max(max(m0, m4), max(m1, m5)), max(max(m2, m6), max(m3, m7)))
    for j in range(full, row.shape[0]):
        m = row[j] if row[j] > m else m
    return m


@_loop
def row_dot(a, b):
    """``sum(a * b)`` in 8 running sums (one sum is a chain of dependent adds, 4 cycles
    each); the order differs from numpy's pairwise sums by rounding only."""
    zero = a.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
    full = a.shape[0] - a.shape[0] % 8
    for j in range(0, full, 8):
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        s4 += a[j + 4] * b[j + 4]
        s5 += a[j + 5] * b[j + 5]
        s6 += a[j + 6] * b[j + 6]
        s7 += a[j + 7] * b[j + 7]
    out = ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))
    for j in range(full, a.shape[0]):
        out += a[j] * b[j]
    return out


# --- array kernels (tests) -----------------------------------------------------------------------

@_jit
def exp_(x, out):
    """``out[...] = exp(x)`` over 1-D arrays."""
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


@_jit
def tanh_(x, out):
    """``out[...] = tanh(x)`` over 1-D arrays."""
    tanh_of(x, out)


@_jit
def sigmoid_(x, out):
    """``out[...] = 1 / (1 + exp(-x))`` over 1-D arrays."""
    one = x.dtype.type(1)
    for i in range(x.shape[0]):
        out[i] = sigmoid(x[i], one)
