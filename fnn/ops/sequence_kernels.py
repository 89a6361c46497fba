"""numba kernels of the sequence ops (:mod:`fnn.ops.recurrent`, :mod:`fnn.ops.attention`,
:mod:`fnn.ops.embedding`), which call them on the compiled backend. A leaf: it imports numba
and numpy only, and nothing imports it before a kernel first runs.

Every kernel takes C-contiguous arrays of one float dtype (float32 or float64) and computes
in that dtype (constants are made in it). ``fastmath`` stays off, so sums run in program
order and results agree with the numpy reference to float rounding; ``error_model="numpy"``
drops the division-by-zero checks that would keep loops from vectorising.

``exp``, ``sigmoid`` and ``tanh`` are written here in plain arithmetic (range reduction, a
polynomial, the exponent's bits set directly), because numba's ``math.exp`` / ``math.tanh``
call scalar libm routines (no SVML) that keep loops from vectorising: ``tanh`` measured ~10x
slower than numpy's SIMD one. These agree with numpy's ``exp``/``tanh`` to 2 ulp on
``|x| < 87`` (float32) / ``|x| < 708`` (float64); outside, ``exp``'s argument is clamped
(``sigmoid`` gives ~1e-38 / 1e-308 instead of 0, ``tanh`` gives +-1 exactly) and NaN
propagates.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


# --- exp, sigmoid, tanh that vectorise -----------------------------------------------------------

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


@numba.njit(error_model="numpy")
def _sigmoid(x, one):
    return one / (one + vexp(-x))


@numba.njit(error_model="numpy")
def _preact(x, hh, out, tanh):
    """``out = tanh(x + hh)`` or ``sigmoid(x + hh)`` over 1-D arrays."""
    one = out.dtype.type(1)
    if tanh:
        for j in range(out.shape[0]):
            out[j] = vtanh(x[j] + hh[j])
    else:
        for j in range(out.shape[0]):
            out[j] = _sigmoid(x[j] + hh[j], one)


@numba.njit
def _copy(src, dst):
    """``dst[:] = src`` over 1-D arrays (numba's slice assignment costs ~1 us a call)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@numba.njit
def _fill(dst, value):
    """``dst[...] = value`` over a 1-D or 2-D array."""
    if dst.ndim == 1:
        for j in range(dst.shape[0]):
            dst[j] = value
    else:
        for g in range(dst.shape[0]):
            for j in range(dst.shape[1]):
                dst[g, j] = value


@numba.njit
def _add(src, dst):
    """``dst += src`` over 1-D arrays."""
    for j in range(dst.shape[0]):
        dst[j] += src[j]


@numba.njit(error_model="numpy")
def _total(dy, b, t, ghm, dh):
    """``dh = (dy[b, t] + ghm) + dh``: the whole gradient reaching a state (dy: (0, 0, 0)
    for none)."""
    if dy.shape[0] > 0:
        d = dy[b, t]
        for j in range(dh.shape[0]):
            dh[j] = (d[j] + ghm[j]) + dh[j]
    else:
        for j in range(dh.shape[0]):
            dh[j] = ghm[j] + dh[j]


@_jit
def exp_(x, out):
    """``out[...] = exp(x)`` over 1-D arrays (tests)."""
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


@_jit
def tanh_(x, out):
    """``out[...] = tanh(x)`` over 1-D arrays (tests)."""
    for i in range(x.shape[0]):
        out[i] = vtanh(x[i])


@_jit
def sigmoid_(x, out):
    """``out[...] = 1 / (1 + exp(-x))`` over 1-D arrays (tests)."""
    one = x.dtype.type(1)
    for i in range(x.shape[0]):
        out[i] = _sigmoid(x[i], one)


# --- recurrences: one time step's element-wise work, fused --------------------------------------
# Shapes: xw (N, T, G, H), the input projections; hh (N, G, H) = h @ w_hh of this step (BLAS);
# h, c (N, H) the running state, updated in place; hs, cs (N, T, H) the state entering each
# step (saved); y (N, T, H) the outputs; mask (N, T) bool, or (0, 0) for none; a masked-out
# step keeps the state, outputs 0 and zeroes what it saves. Backward: ghm (N, H) = the
# gradient reaching h through the next step's matmul (BLAS), ghd (N, H) the rest of h's
# gradient (updated in place), gc (N, H) the cell state's; dy (N, T, H), or (0, 0, 0) for none.
# Each row runs as a few loops over 1-D views, each writing one array: a loop writing several
# arrays that may alias the ones it reads is not vectorised by LLVM (numba cannot declare
# arrays free of aliasing), and that measured 5x slower.

@_jit
def rnn_forward_step(xw, hh, t, relu, mask, h, hs, y):
    """``h = act(xw[:, t] + h @ w_hh)`` (tanh, or relu), the output ``y[:, t] = h``."""
    masked = mask.shape[0] > 0
    zero = h.dtype.type(0)
    for b in range(h.shape[0]):
        _copy(h[b], hs[b, t])
        yb = y[b, t]
        if masked and not mask[b, t]:
            _fill(yb, zero)
            continue
        if relu:
            x, a = xw[b, t, 0], hh[b, 0]
            for j in range(yb.shape[0]):
                v = x[j] + a[j]
                yb[j] = zero if v < zero else v
        else:
            _preact(xw[b, t, 0], hh[b, 0], yb, True)
        _copy(yb, h[b])


@_jit
def rnn_backward_step(dy, t, relu, mask, y, ghm, ghd, dxw):
    """``da = dh * act'(a)`` from the saved output: ``1 - y^2`` (tanh), ``y > 0`` (relu)."""
    masked = mask.shape[0] > 0
    zero, one = ghm.dtype.type(0), ghm.dtype.type(1)
    for b in range(ghm.shape[0]):
        dh, d = ghd[b], dxw[b, t, 0]
        if masked and not mask[b, t]:
            _fill(d, zero)
            _add(ghm[b], dh)
            continue
        _total(dy, b, t, ghm[b], dh)
        yb = y[b, t]
        if relu:
            for j in range(d.shape[0]):
                d[j] = dh[j] if yb[j] > zero else zero
        else:
            for j in range(d.shape[0]):
                d[j] = dh[j] * (one - yb[j] * yb[j])
        _fill(dh, zero)


@_jit
def lstm_forward_step(xw, hh, t, mask, h, c, hs, cs, acts, tcs, y):
    """Gates ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid(xw[:, t] + h @ w_hh)``,
    ``c = f * c + i * g``, ``h = o * tanh(c)``; saves the gates (acts) and ``tanh(c)``."""
    masked = mask.shape[0] > 0
    zero = h.dtype.type(0)
    for b in range(h.shape[0]):
        _copy(h[b], hs[b, t])
        _copy(c[b], cs[b, t])
        tc, yb = tcs[b, t], y[b, t]
        if masked and not mask[b, t]:
            _fill(acts[b, t], zero)
            _fill(tc, zero)
            _fill(yb, zero)
            continue
        for g in range(4):
            _preact(xw[b, t, g], hh[b, g], acts[b, t, g], g == 2)
        i, f, gg, o = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2], acts[b, t, 3]
        cb = c[b]
        for j in range(cb.shape[0]):
            cb[j] = f[j] * cb[j] + i[j] * gg[j]
        for j in range(cb.shape[0]):
            tc[j] = vtanh(cb[j])
        for j in range(cb.shape[0]):
            yb[j] = o[j] * tc[j]
        _copy(yb, h[b])


@_jit
def lstm_backward_step(dy, t, mask, acts, cs, tcs, ghm, ghd, gc, dxw):
    """``dc = gc + dh * o * (1 - tanh(c)^2)``; the gates' pre-activation gradients
    ``dc * g * i(1-i)``, ``dc * c_prev * f(1-f)``, ``dc * i * (1-g^2)``,
    ``dh * tanh(c) * o(1-o)``; the cell state's ``gc = dc * f``."""
    masked = mask.shape[0] > 0
    zero, one = ghm.dtype.type(0), ghm.dtype.type(1)
    for b in range(ghm.shape[0]):
        dh, dc = ghd[b], gc[b]
        if masked and not mask[b, t]:
            _fill(dxw[b, t], zero)
            _add(ghm[b], dh)
            continue
        _total(dy, b, t, ghm[b], dh)
        i, f, g, o = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2], acts[b, t, 3]
        tc, cp = tcs[b, t], cs[b, t]
        for j in range(dh.shape[0]):
            dc[j] = dc[j] + dh[j] * o[j] * (one - tc[j] * tc[j])
        d = dxw[b, t, 3]
        for j in range(dh.shape[0]):
            d[j] = dh[j] * tc[j] * o[j] * (one - o[j])
        d = dxw[b, t, 0]
        for j in range(dh.shape[0]):
            d[j] = dc[j] * g[j] * i[j] * (one - i[j])
        d = dxw[b, t, 1]
        for j in range(dh.shape[0]):
            d[j] = dc[j] * cp[j] * f[j] * (one - f[j])
        d = dxw[b, t, 2]
        for j in range(dh.shape[0]):
            d[j] = dc[j] * i[j] * (one - g[j] * g[j])
        for j in range(dh.shape[0]):
            dc[j] = dc[j] * f[j]
        _fill(dh, zero)


@_jit
def gru_forward_step(xw, hh, b_hh, t, mask, h, hs, acts, hn, y):
    """``r, z = sigmoid(xw_rz[:, t] + (h @ W_hrz + b_hrz))``, ``hn = h @ W_hn + b_hn``,
    ``n = tanh(xw_n[:, t] + r * hn)``, ``h = (1 - z) * n + z * h``; saves r, z, n and hn."""
    masked = mask.shape[0] > 0
    zero, one = h.dtype.type(0), h.dtype.type(1)
    for b in range(h.shape[0]):
        _copy(h[b], hs[b, t])
        hb, yb = hn[b, t], y[b, t]
        if masked and not mask[b, t]:
            _fill(acts[b, t], zero)
            _fill(hb, zero)
            _fill(yb, zero)
            continue
        for g in range(2):
            a, bias, out = hh[b, g], b_hh[g], acts[b, t, g]
            x = xw[b, t, g]
            for j in range(hb.shape[0]):
                out[j] = _sigmoid(x[j] + (a[j] + bias[j]), one)
        a, bias = hh[b, 2], b_hh[2]
        for j in range(hb.shape[0]):
            hb[j] = a[j] + bias[j]
        r, z, n = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2]
        x, hp = xw[b, t, 2], hs[b, t]
        for j in range(hb.shape[0]):
            n[j] = vtanh(x[j] + r[j] * hb[j])
        for j in range(hb.shape[0]):
            yb[j] = (one - z[j]) * n[j] + z[j] * hp[j]
        _copy(yb, h[b])


@_jit
def gru_backward_step(dy, t, mask, hs, acts, hn, ghm, ghd, dxw, dhh):
    """``dn = dh (1-z)(1-n^2)``, ``dz = dh (h_prev - n) z(1-z)``, ``dr = dn hn r(1-r)``:
    ``dxw = (dr, dz, dn)``, the gradient of ``h @ w_hh + b_hh`` is ``(dr, dz, dn * r)``, and
    ``h_prev`` gets ``dh * z`` directly."""
    masked = mask.shape[0] > 0
    zero, one = ghm.dtype.type(0), ghm.dtype.type(1)
    for b in range(ghm.shape[0]):
        dh = ghd[b]
        if masked and not mask[b, t]:
            _fill(dxw[b, t], zero)
            _fill(dhh[b, t], zero)
            _add(ghm[b], dh)
            continue
        _total(dy, b, t, ghm[b], dh)
        r, z, n = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2]
        hp, hb = hs[b, t], hn[b, t]
        dr, dz, dn = dxw[b, t, 0], dxw[b, t, 1], dxw[b, t, 2]
        for j in range(dh.shape[0]):
            dz[j] = dh[j] * (hp[j] - n[j]) * z[j] * (one - z[j])
        for j in range(dh.shape[0]):
            dn[j] = dh[j] * (one - z[j]) * (one - n[j] * n[j])
        for j in range(dh.shape[0]):
            dr[j] = dn[j] * hb[j] * r[j] * (one - r[j])
        _copy(dr, dhh[b, t, 0])
        _copy(dz, dhh[b, t, 1])
        e = dhh[b, t, 2]
        for j in range(dh.shape[0]):
            e[j] = dn[j] * r[j]
        for j in range(dh.shape[0]):
            dh[j] = dh[j] * z[j]


# --- attention: the softmax over keys, masked, and its backward ----------------------------------

@_jit
def masked_softmax(s, scale, causal, key_mask):
    """In place over ``s (N, h, T, S)``: ``softmax(scale * s)`` over the keys each query may
    see (``j <= S - T + t`` when ``causal``; ``key_mask[n, j]`` when key_mask is ``(N, S)``,
    not ``(0, 0)``); the others, and whole rows that see no key, get 0."""
    n_, heads, steps, keys = s.shape
    has_keys = key_mask.shape[0] > 0
    zero = s.dtype.type(0)
    low = s.dtype.type(-np.inf)
    for n in range(n_):
        for head in range(heads):
            for t in range(steps):
                row = s[n, head, t]
                last = keys - steps + t if causal else keys - 1
                for j in range(keys):
                    ok = j <= last and (not has_keys or key_mask[n, j])
                    row[j] = row[j] * scale if ok else low
                m = low
                for j in range(keys):
                    m = row[j] if row[j] > m else m
                if m == low:
                    _fill(row, zero)
                    continue
                for j in range(keys):
                    row[j] = vexp(row[j] - m) if row[j] != low else zero
                total = zero
                for j in range(keys):
                    total += row[j]
                for j in range(keys):
                    row[j] = row[j] / total


@_jit
def softmax_backward(p, dp, scale):
    """In place over ``dp (N, h, T, S)``: ``ds = p * (dp - sum_j dp * p) * scale``, the
    gradient of the scores ``s`` given that of ``p = softmax(scale * s)``."""
    n_, heads, steps, keys = p.shape
    zero = p.dtype.type(0)
    for n in range(n_):
        for head in range(heads):
            for t in range(steps):
                pr, dr = p[n, head, t], dp[n, head, t]
                total = zero
                for j in range(keys):
                    total += dr[j] * pr[j]
                for j in range(keys):
                    dr[j] = pr[j] * (dr[j] - total) * scale


# --- embedding -----------------------------------------------------------------------------------

@_jit
def scatter_add(ids, dy, padding_idx, out):
    """``out[ids[i]] += dy[i]`` in order of ``i`` (``ids (M,)``, ``dy (M, D)``, ``out (V, D)``
    zeroed by the caller), skipping ``padding_idx`` (-1: none)."""
    for i in range(ids.shape[0]):
        row = ids[i]
        if row == padding_idx:
            continue
        target, source = out[row], dy[i]
        for j in range(source.shape[0]):
            target[j] += source[j]
