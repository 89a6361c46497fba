"""numba kernels of the sequence ops (:mod:`fnn.ops.recurrent`, :mod:`fnn.ops.attention`,
:mod:`fnn.ops.embedding`, tanh and the transformer MLP's GELU of
:mod:`fnn.ops.activations`), which call them on the compiled backend. A leaf: it imports numba,
numpy and :mod:`fnn.ops.vector_math` (another leaf: exp/tanh that vectorise, the 1-D loops),
and nothing imports it before a kernel first runs.

Every kernel takes C-contiguous arrays of one float dtype (float32 or float64) and computes
in that dtype. ``fastmath`` stays off, so results agree with the numpy reference to float
rounding. A kernel walks rows and calls one 1-D loop of :mod:`fnn.ops.vector_math` per array
it writes (why: see there).
"""

from __future__ import annotations

import numba
import numpy as np

from fnn.ops.vector_math import (
    accumulate,
    act_grad,
    add,
    affine,
    blend,
    cell,
    cell_grad,
    centre,
    copy,
    fill,
    mul,
    new_gate,
    new_grad,
    norm_grad,
    preact,
    preact_bias,
    product,
    relu_sum,
    row_dot,
    row_max,
    scale_by,
    sigmoid_grad,
    tanh_grad,
    tanh_of,
    total,
    update_grad,
    vexp,
    vtanh,
)

_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


# --- recurrences: one time step's element-wise work -----------------------------------------------
# Shapes: xw (N, T, G, H), the input projections; hh (N, G, H) = h @ w_hh of this step (BLAS);
# h, c (N, H) the running state, updated in place; hs, cs (N, T, H) the state entering each
# step (saved); y (N, T, H) the outputs; mask (N, T) bool, or (0, 0) for none: a masked-out
# step keeps the state, outputs 0 and zeroes what it saves. Backward: ghm (N, H) = the
# gradient reaching h through the next step's matmul (BLAS), ghd (N, H) the rest of h's
# gradient (updated in place), gc (N, H) the cell state's; dy (N, T, H), or (0, 0, 0) for none.

@numba.njit
def _dy(dy, b, t):
    """``dy[b, t]``, or an empty row when there is no ``dy``."""
    return dy[b, t] if dy.shape[0] > 0 else dy.ravel()


@_jit
def rnn_forward_step(xw, hh, t, relu, mask, h, hs, y):
    """``h = act(xw[:, t] + h @ w_hh)`` (tanh, or relu), the output ``y[:, t] = h``."""
    masked = mask.shape[0] > 0
    for b in range(h.shape[0]):
        copy(h[b], hs[b, t])
        if masked and not mask[b, t]:
            fill(y[b, t], h.dtype.type(0))
        else:
            if relu:
                relu_sum(xw[b, t, 0], hh[b, 0], y[b, t])
            else:
                preact(xw[b, t, 0], hh[b, 0], y[b, t], True)
            copy(y[b, t], h[b])


@_jit
def rnn_backward_step(dy, t, relu, mask, y, ghm, ghd, dxw):
    """``da = dh * act'(a)`` from the saved output: ``1 - y^2`` (tanh), ``y > 0`` (relu)."""
    masked = mask.shape[0] > 0
    for b in range(ghm.shape[0]):
        if masked and not mask[b, t]:
            fill(dxw[b, t, 0], ghm.dtype.type(0))
            add(ghm[b], ghd[b])
        else:
            total(_dy(dy, b, t), ghm[b], ghd[b])
            act_grad(ghd[b], y[b, t], relu, dxw[b, t, 0])
            fill(ghd[b], ghm.dtype.type(0))


@_jit
def _skip(acts, saved, y, zero):
    """A masked step of one row: its gates, the state it saves and its output are 0."""
    fill(acts, zero)
    fill(saved, zero)
    fill(y, zero)


@_jit
def lstm_forward_step(xw, hh, t, mask, h, c, hs, cs, acts, tcs, y):
    """Gates ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid(xw[:, t] + h @ w_hh)``,
    ``c = f * c + i * g``, ``h = o * tanh(c)``; saves the gates (acts) and ``tanh(c)``."""
    masked = mask.shape[0] > 0
    zero = h.dtype.type(0)
    for b in range(h.shape[0]):
        copy(h[b], hs[b, t])
        copy(c[b], cs[b, t])
        if masked and not mask[b, t]:
            _skip(acts[b, t], tcs[b, t], y[b, t], zero)
            continue
        for g in range(4):
            preact(xw[b, t, g], hh[b, g], acts[b, t, g], g == 2)
        cell(acts[b, t, 0], acts[b, t, 1], acts[b, t, 2], c[b])
        tanh_of(c[b], tcs[b, t])
        product(acts[b, t, 3], tcs[b, t], y[b, t])
        copy(y[b, t], h[b])


@_jit
def lstm_backward_step(dy, t, mask, acts, cs, tcs, ghm, ghd, gc, dxw):
    """``dc = gc + dh * o * (1 - tanh(c)^2)``; the gates' pre-activation gradients
    ``dc * g * i(1-i)``, ``dc * c_prev * f(1-f)``, ``dc * i * (1-g^2)``,
    ``dh * tanh(c) * o(1-o)``; the cell state's ``gc = dc * f``."""
    masked = mask.shape[0] > 0
    for b in range(ghm.shape[0]):
        dh, dc = ghd[b], gc[b]
        if masked and not mask[b, t]:
            fill(dxw[b, t], ghm.dtype.type(0))
            add(ghm[b], dh)
            continue
        total(_dy(dy, b, t), ghm[b], dh)
        i, f, g, o = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2], acts[b, t, 3]
        cell_grad(dh, o, tcs[b, t], dc)
        sigmoid_grad(dh, tcs[b, t], o, dxw[b, t, 3])
        sigmoid_grad(dc, g, i, dxw[b, t, 0])
        sigmoid_grad(dc, cs[b, t], f, dxw[b, t, 1])
        tanh_grad(dc, i, g, dxw[b, t, 2])
        mul(f, dc)
        fill(dh, ghm.dtype.type(0))


@_jit
def gru_forward_step(xw, hh, b_hh, t, mask, h, hs, acts, hn, y):
    """``r, z = sigmoid(xw_rz[:, t] + (h @ W_hrz + b_hrz))``, ``hn = h @ W_hn + b_hn``,
    ``n = tanh(xw_n[:, t] + r * hn)``, ``h = (1 - z) * n + z * h``; saves r, z, n and hn."""
    masked = mask.shape[0] > 0
    zero = h.dtype.type(0)
    for b in range(h.shape[0]):
        copy(h[b], hs[b, t])
        if masked and not mask[b, t]:
            _skip(acts[b, t], hn[b, t], y[b, t], zero)
            continue
        preact_bias(xw[b, t, 0], hh[b, 0], b_hh[0], acts[b, t, 0])
        preact_bias(xw[b, t, 1], hh[b, 1], b_hh[1], acts[b, t, 1])
        copy(hh[b, 2], hn[b, t])
        add(b_hh[2], hn[b, t])
        new_gate(xw[b, t, 2], acts[b, t, 0], hn[b, t], acts[b, t, 2])
        blend(acts[b, t, 1], acts[b, t, 2], hs[b, t], y[b, t])
        copy(y[b, t], h[b])


@_jit
def gru_backward_step(dy, t, mask, hs, acts, hn, ghm, ghd, dxw, dhh):
    """``dn = dh (1-z)(1-n^2)``, ``dz = dh (h_prev - n) z(1-z)``, ``dr = dn hn r(1-r)``:
    ``dxw = (dr, dz, dn)``, the gradient of ``h @ w_hh + b_hh`` is ``(dr, dz, dn * r)``, and
    ``h_prev`` gets ``dh * z`` directly."""
    masked = mask.shape[0] > 0
    for b in range(ghm.shape[0]):
        dh = ghd[b]
        if masked and not mask[b, t]:
            fill(dxw[b, t], ghm.dtype.type(0))
            fill(dhh[b, t], ghm.dtype.type(0))
            add(ghm[b], dh)
            continue
        total(_dy(dy, b, t), ghm[b], dh)
        r, z, n = acts[b, t, 0], acts[b, t, 1], acts[b, t, 2]
        update_grad(dh, hs[b, t], n, z, dxw[b, t, 1])
        new_grad(dh, z, n, dxw[b, t, 2])
        sigmoid_grad(dxw[b, t, 2], hn[b, t], r, dxw[b, t, 0])
        copy(dxw[b, t, 0], dhh[b, t, 0])
        copy(dxw[b, t, 1], dhh[b, t, 1])
        product(dxw[b, t, 2], r, dhh[b, t, 2])
        mul(z, dh)


# --- attention: the softmax over keys, masked, and its backward ----------------------------------

@_jit
def masked_softmax(s, scale, causal, key_mask):
    """In place over ``s (N, h, T, S)``: ``softmax(scale * s)`` over the keys each query may
    see (``j <= S - T + t`` when ``causal``; ``key_mask[n, j]`` when key_mask is ``(N, S)``,
    not ``(0, 0)``); the others, and whole rows that see no key, get 0. A causal row works
    on its visible prefix only."""
    n_, heads, steps, keys = s.shape
    has_keys = key_mask.shape[0] > 0
    zero, low = s.dtype.type(0), s.dtype.type(-np.inf)
    ones = np.ones(keys, dtype=s.dtype)
    for n in range(n_):
        for head in range(heads):
            for t in range(steps):
                row = s[n, head, t]
                width = min(max(keys - steps + t + 1, 0), keys) if causal else keys
                fill(row[width:], zero)
                seen = row[:width]
                if has_keys:
                    keep = key_mask[n]
                    for j in range(width):
                        seen[j] = seen[j] * scale if keep[j] else low
                else:
                    for j in range(width):
                        seen[j] = seen[j] * scale
                m = row_max(seen, low)
                if m == low:
                    fill(seen, zero)
                    continue
                for j in range(width):
                    seen[j] = vexp(seen[j] - m) if seen[j] != low else zero
                sum_ = row_dot(seen, ones)
                for j in range(width):
                    seen[j] = seen[j] / sum_


@_jit
def softmax_backward(p, dp, scale):
    """In place over ``dp (N, h, T, S)``: ``ds = p * (dp - sum_j dp * p) * scale``, the
    gradient of the scores ``s`` given that of ``p = softmax(scale * s)``."""
    n_, heads, steps, keys = p.shape
    for n in range(n_):
        for head in range(heads):
            for t in range(steps):
                pr, dr = p[n, head, t], dp[n, head, t]
                sum_ = row_dot(dr, pr)
                for j in range(keys):
                    dr[j] = pr[j] * (dr[j] - sum_) * scale


# --- GELU (tanh approximation), the transformer's MLP: one pass forward, one backward ---------
# Same operations in the same order as fnn.ops.activations.gelu / gelu_vjp (numpy), on
# C-contiguous arrays of any rank (flattened inside); tanh is vtanh (3 ulp of numpy's).

@_jit
def tanh(x, out):
    """``out = tanh(x)`` (vtanh: 3 ulp of numpy's, in SIMD where numpy's is a scalar loop)."""
    x, out = x.reshape(x.size), out.reshape(out.size)
    for j in range(x.shape[0]):
        out[j] = vtanh(x[j])


@_jit
def gelu(x, c, out):
    """``out = 0.5 x (1 + tanh(c (x + 0.044715 x^3)))`` (``c = sqrt(2/pi)`` in x's type)."""
    x, out = x.reshape(x.size), out.reshape(out.size)
    a, one, half = x.dtype.type(0.044715), x.dtype.type(1), x.dtype.type(0.5)
    for j in range(x.shape[0]):
        v = x[j]
        out[j] = ((vtanh((((v * v) * a + one) * v) * c) + one) * v) * half


@_jit
def gelu_saving_tanh(x, c, out, t):
    """As :func:`gelu`, keeping ``t = tanh(c (x + 0.044715 x^3))`` for the backward."""
    x, out, t = x.reshape(x.size), out.reshape(out.size), t.reshape(t.size)
    a, one, half = x.dtype.type(0.044715), x.dtype.type(1), x.dtype.type(0.5)
    for j in range(x.shape[0]):
        v = x[j]
        tj = vtanh((((v * v) * a + one) * v) * c)
        t[j] = tj
        out[j] = ((tj + one) * v) * half


@numba.njit(inline="always")
def _gelu_grad(v, t, dy, c, a3, one, half):
    """``dy * (0.5 (1 + t) + 0.5 v c (1 + 3 * 0.044715 v^2) (1 - t^2))``."""
    slope = (((((v * v) * a3 + one) * c) * v) * half) * (one - t * t)
    return (((t + one) * half) + slope) * dy


@_jit
def gelu_vjp(x, dy, c, out):
    """``out = dy * (0.5 (1 + t) + 0.5 x c (1 + 3 * 0.044715 x^2) (1 - t^2))``,
    ``t = tanh(c (x + 0.044715 x^3))``."""
    x, dy, out = x.reshape(x.size), dy.reshape(dy.size), out.reshape(out.size)
    a, a3 = x.dtype.type(0.044715), x.dtype.type(3 * 0.044715)
    one, half = x.dtype.type(1), x.dtype.type(0.5)
    for j in range(x.shape[0]):
        v = x[j]
        t = vtanh((((v * v) * a + one) * v) * c)
        out[j] = _gelu_grad(v, t, dy[j], c, a3, one, half)


@_jit
def gelu_vjp_of_tanh(x, t, dy, c, out):
    """:func:`gelu_vjp` given ``t`` (kept by :func:`gelu_saving_tanh`)."""
    x, t, dy = x.reshape(x.size), t.reshape(t.size), dy.reshape(dy.size)
    out = out.reshape(out.size)
    a3, one, half = x.dtype.type(3 * 0.044715), x.dtype.type(1), x.dtype.type(0.5)
    for j in range(x.shape[0]):
        out[j] = _gelu_grad(x[j], t[j], dy[j], c, a3, one, half)


# --- layer norm over the last axis, affine: one pass per row forward and backward ----------------
# x, y, xhat, dy, dx (M, C); scale, bias, dscale, dbias (C,); inv (M,). The operations of
# fnn.ops.norm (moments, normalize, normalize_backward) in their order; row sums by row_dot.

@_jit
def layer_norm(x, scale, bias, eps, y, xhat, inv):
    """``xhat = (x - mean) / sqrt(var + eps)`` per row (biased var), ``y = xhat * scale +
    bias``; saves ``xhat`` and ``inv = 1 / sqrt(var + eps)``."""
    one, n = x.dtype.type(1), x.dtype.type(x.shape[1])
    ones = np.ones(x.shape[1], dtype=x.dtype)
    for r in range(x.shape[0]):
        centre(x[r], row_dot(x[r], ones) / n, xhat[r])
        iv = one / np.sqrt(row_dot(xhat[r], xhat[r]) / n + eps)
        scale_by(iv, xhat[r])
        affine(xhat[r], scale, bias, y[r])
        inv[r] = iv


@_jit
def layer_norm_backward(dy, xhat, inv, scale, dx, dscale, dbias):
    """``g = dy * scale``, ``dx = inv * (g - (sum(g) + xhat * sum(g * xhat)) / C)`` per row;
    ``dscale = sum(dy * xhat)``, ``dbias = sum(dy)`` over rows (zeroed by the caller)."""
    k = dy.dtype.type(1.0 / dy.shape[1])
    ones = np.ones(dy.shape[1], dtype=dy.dtype)
    for r in range(dy.shape[0]):
        product(dy[r], scale, dx[r])
        s1, s2 = row_dot(dx[r], ones), row_dot(dx[r], xhat[r])
        norm_grad(xhat[r], s1, s2, k, inv[r], dx[r])
        accumulate(dy[r], xhat[r], dscale)
        add(dy[r], dbias)


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
