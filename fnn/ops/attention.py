"""Scaled dot-product attention with heads, forward and backward.

Shapes: ``q (N, h, T, d)``, ``k (N, h, S, d)``, ``v (N, h, S, dv)`` -> ``out (N, h, T, dv)``:

    p = softmax(scale * q @ k^T + mask),   out = (p * dropout) @ v,   scale = 1 / sqrt(d)

where the mask is 0 where query ``t`` may see key ``j`` and -inf elsewhere:

* ``causal``: ``j <= S - T + t``, bottom-right aligned: with ``T == S`` this is PyTorch's
  ``is_causal``; with a key/value cache (``S > T``, the last ``T`` queries of ``S``
  positions) query ``t`` sees every key up to its own absolute position ``S - T + t``
  (``torch.nn.attention.bias.causal_lower_right``);
* ``key_mask (N, S)`` bool: True for a real token, False for padding, never attended.

A query that sees no key at all gives ``p = 0``, output 0 and zero gradients (no NaN). The
softmax subtracts each row's maximum. ``dropout`` (optional, drawn by the layer) is an array
broadcastable to ``(N, h, T, S)`` multiplying ``p`` (e.g. ``keep / (1 - rate)``). The
compiled backend runs the masked softmax and its backward as numba kernels; the matmuls are
BLAS on both backends.
"""

from __future__ import annotations

import math

import numpy as np

from fnn.ops import _backend

__all__ = ["attention", "attention_backward", "merge_heads", "softmax", "split_heads",
           "visible"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_KEYS = np.ones((0, 0), dtype=bool)


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``(N, T, h*d)`` -> ``(N, h, T, d)``: a view, no copy.

    >>> import numpy as np
    >>> from fnn.ops.attention import split_heads
    >>> split_heads(np.arange(12).reshape(1, 2, 6), 3)[0, 1].tolist()
    [[2, 3], [8, 9]]
    """
    n, steps, width = x.shape
    if width % heads:
        raise ValueError(f"split_heads: width {width} is not a multiple of {heads} heads")
    return x.reshape(n, steps, heads, width // heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``(N, h, T, d)`` -> ``(N, T, h*d)``, C-contiguous (the inverse of :func:`split_heads`).

    >>> import numpy as np
    >>> from fnn.ops.attention import merge_heads, split_heads
    >>> x = np.arange(12.0).reshape(1, 2, 6)
    >>> bool(np.array_equal(merge_heads(split_heads(x, 3)), x))
    True
    """
    n, heads, steps, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(n, steps, heads * d)


def visible(steps: int, keys: int, *, causal: bool = False,
            key_mask: np.ndarray | None = None) -> np.ndarray | None:
    """Which keys each query sees, broadcastable to ``(N, h, T, S)`` (None: all of them).

    >>> from fnn.ops.attention import visible
    >>> visible(2, 3, causal=True)[0, 0].astype(int).tolist()
    [[1, 1, 0], [1, 1, 1]]
    """
    allowed = None
    if causal:
        allowed = np.tri(steps, keys, keys - steps, dtype=bool)[None, None]
    if key_mask is not None:
        keep = np.asarray(key_mask, dtype=bool)[:, None, None, :]
        allowed = keep if allowed is None else allowed & keep
    return allowed


def _check(q: np.ndarray, k: np.ndarray, v: np.ndarray,
           key_mask: np.ndarray | None) -> None:
    if not (q.ndim == k.ndim == v.ndim == 4 and q.shape[:2] == k.shape[:2] == v.shape[:2]
            and q.shape[3] == k.shape[3] and k.shape[2] == v.shape[2]):
        raise ValueError("attention: q, k, v must be (N, h, T, d), (N, h, S, d), (N, h, S, dv),"
                         f" got {q.shape}, {k.shape}, {v.shape}")
    if key_mask is not None and np.shape(key_mask) != (q.shape[0], k.shape[2]):
        raise ValueError(f"attention: key_mask must be (N, S) = {(q.shape[0], k.shape[2])}, "
                         f"got {np.shape(key_mask)}")


def _compiled(dtype: np.dtype) -> bool:
    return _backend.compiled() and dtype in _FLOATS


def softmax(s: np.ndarray, scale: float, *, causal: bool = False,
            key_mask: np.ndarray | None = None) -> np.ndarray:
    """``softmax(scale * s)`` over the last axis of scores ``s (N, h, T, S)`` (overwritten:
    pass a fresh array) with the masks of :func:`attention`; rows that see no key are 0.

    >>> import numpy as np
    >>> from fnn.ops.attention import softmax
    >>> softmax(np.zeros((1, 1, 2, 2)), 1.0, causal=True)[0, 0].tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    if _compiled(s.dtype) and s.flags.c_contiguous:
        from fnn.ops import sequence_kernels

        keys = _NO_KEYS if key_mask is None else np.ascontiguousarray(key_mask, dtype=bool)
        sequence_kernels.masked_softmax(s, s.dtype.type(scale), causal, keys)
        return s
    s *= scale
    allowed = visible(s.shape[2], s.shape[3], causal=causal, key_mask=key_mask)
    if allowed is not None:
        np.copyto(s, -np.inf, where=~allowed)
    m = s.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0                      # rows that see no key: exp(-inf) = 0
    np.subtract(s, m, out=s)
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    s /= total
    return s


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, causal: bool = False,
              key_mask: np.ndarray | None = None, dropout: np.ndarray | None = None,
              scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(out (N, h, T, dv), p (N, h, T, S))``: the attention output and the softmax
    probabilities (before dropout), which :func:`attention_backward` takes.

    >>> import numpy as np
    >>> from fnn.ops.attention import attention
    >>> q = k = np.zeros((1, 1, 2, 4)); v = np.array([[[[1.0], [3.0]]]])
    >>> out, p = attention(q, k, v, causal=True)
    >>> out[0, 0].tolist(), p[0, 0].tolist()
    ([[1.0], [2.0]], [[1.0, 0.0], [0.5, 0.5]])
    """
    _check(q, k, v, key_mask)
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    p = softmax(np.matmul(q, k.swapaxes(-1, -2)), scale, causal=causal, key_mask=key_mask)
    return np.matmul(p if dropout is None else p * dropout, v), p


def attention_backward(q: np.ndarray, k: np.ndarray, v: np.ndarray, p: np.ndarray,
                       dout: np.ndarray, *, dropout: np.ndarray | None = None,
                       scale: float | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dq, dk, dv)`` of :func:`attention` from ``dout (N, h, T, dv)``, given its
    probabilities ``p`` (the masks live in ``p``'s zeros) and the same dropout and scale.

    >>> import numpy as np
    >>> from fnn.ops.attention import attention, attention_backward
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = (rng.normal(size=(2, 3, 4, 5)) for _ in range(3))
    >>> out, p = attention(q, k, v, causal=True)
    >>> dq, dk, dv = attention_backward(q, k, v, p, np.ones_like(out))
    >>> dq.shape, dk.shape, dv.shape
    ((2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5))
    """
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    dv = np.matmul((p if dropout is None else p * dropout).swapaxes(-1, -2), dout)
    dp = np.matmul(dout, v.swapaxes(-1, -2))
    if dropout is not None:
        dp *= dropout
    if _compiled(p.dtype) and p.flags.c_contiguous and dp.dtype == p.dtype:
        from fnn.ops import sequence_kernels

        sequence_kernels.softmax_backward(p, dp, p.dtype.type(scale))
        ds = dp
    else:
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        ds *= scale
    return np.matmul(ds, k), np.matmul(ds.swapaxes(-1, -2), q), dv
