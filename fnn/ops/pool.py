"""Pooling kernels over channels-last ``(N, *S, C)``: max-pooling with its arg-max, the fused
relu + max-pool, average pooling, global average pooling, and their backward passes.

Max-pooling pads with ``-inf`` and routes the gradient to the arg-max of each window; on ties
the *first* maximal element in row-major window order wins alone (PyTorch picks the same one).
The arg-max is stored as that tap's index (``uint8`` below 256 taps, else ``int32``), shaped
like the output, on both backends.

**relu fused into max-pool** (``relu=True``): ``max(relu(x)) = relu(max(x))`` (relu is
monotone), and the gradient of the pair is the max-pool's routed to the arg-max of ``x``
times ``max(x) > 0``: where the window's maximum is positive the arg-max of ``relu(x)`` is
that of ``x``; where it is not, relu's gradient is zero on every tap of the window. So the
pair gives the same numbers as relu then max-pool, without the relu's passes over the full
-size input (forward: ``np.maximum``; backward: a comparison, a cast and a product).
"""

from __future__ import annotations

import math

import numpy as np

from fnn.ops import _backend
from fnn.ops.geometry import Geometry, arg_dtype, tiled
from fnn.ops.windows import compiled_fits, crop, fold, pad, tap_slices, window_view


def max_pool(x: np.ndarray, g: Geometry, relu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(y, arg)``: the max over every window of ``x: (N, *S, C)`` (padded with ``-inf`` as
    ``g`` says) → ``(N, *S_out, C)``, and the index of each window's first maximum; with
    ``relu``, ``y = max(relu(x))`` (see the module doc).

    Compiled: one pass over ``x`` that skips the padding; numpy: :func:`max_and_argmax`."""
    if compiled_fits(g, x):
        return _backend.kernels().max_pool(x, g, relu)
    y, arg = max_and_argmax(pad(x, g.pads, -np.inf), g)
    if relu:
        np.maximum(y, 0.0, out=y)  # y is a fresh array
    return y, arg


def max_pool_backward(dy: np.ndarray, arg: np.ndarray, g: Geometry,
                      relu_y: np.ndarray | None = None) -> np.ndarray:
    """The pullback of :func:`max_pool`: each window's ``dy`` goes to its arg-max →
    ``(N, *S, C)``. For the fused relu pass the forward output as ``relu_y``: the gradient
    is then kept only where ``relu_y > 0``."""
    if compiled_fits(g, dy):
        return _backend.kernels().max_pool_backward(dy, arg, g, relu_y)
    if relu_y is not None:
        dy = dy * (relu_y > 0)
    return route_to_argmax(dy, arg, g)


def max_and_argmax(xp: np.ndarray, g: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Max over every window of the padded ``xp: (N, *Sp, C)`` → ``(N, *S_out, C)``, and the
    index (row-major tap order) of the first maximum in each window (numpy).

    A loop over the kernel taps (4 for 2×2, 9 for 3×3), each a strided view of ``xp``, with
    in-place updates: faster than ``argmax`` + ``take_along_axis`` on the copied windows
    (``benchmarks/micro.py``)."""
    sources = tap_slices(g)
    best = xp[sources[0]].copy()
    index_type = arg_dtype(g)
    arg = np.zeros(best.shape, dtype=index_type)
    better = np.empty(best.shape, dtype=bool)
    for i, source in enumerate(sources[1:], 1):
        value = xp[source]
        np.greater(value, best, out=better)  # strict: on ties the first maximum wins
        np.maximum(arg, better * index_type(i), out=arg)  # taps come in increasing order
        np.maximum(best, value, out=best)
    return best, arg


def route_to_argmax(dy: np.ndarray, arg: np.ndarray, g: Geometry) -> np.ndarray:
    """The max-pool pullback (numpy): each window's ``dy`` goes to its arg-max →
    ``(N, *S, C)``.

    Windows that do not overlap (stride >= kernel) write their taps straight into the
    gradient (no zero-fill when they tile the input); overlapping ones add up."""
    disjoint = all(s >= k for s, k in zip(g.stride, g.kernel))
    out = (np.empty if tiled(g) else np.zeros)((dy.shape[0], *g.padded_sizes, dy.shape[-1]),
                                                dy.dtype)
    mask = np.empty(dy.shape, dtype=dy.dtype)
    for i, target in enumerate(tap_slices(g)):
        np.equal(arg, i, out=mask)
        if disjoint:
            np.multiply(dy, mask, out=out[target])
        else:
            out[target] += np.multiply(dy, mask, out=mask)
    return crop(out, g)


def avg_pool(x: np.ndarray, g: Geometry) -> np.ndarray:
    """Mean over every window of ``x`` zero-padded as ``g`` says, dividing by the full kernel
    size (PyTorch's ``count_include_pad=True``) → ``(N, *S_out, C)``."""
    nd = len(g.kernel)
    return window_view(pad(x, g.pads), g).mean(axis=tuple(range(-nd - 1, -1)), dtype=x.dtype)


def avg_pool_backward(dy: np.ndarray, g: Geometry) -> np.ndarray:
    """The pullback of :func:`avg_pool`: ``dy / prod(kernel)`` spread over each window."""
    nd = len(g.kernel)
    scaled = (dy / math.prod(g.kernel)).astype(dy.dtype, copy=False)
    win = np.broadcast_to(scaled[(slice(None),) * (nd + 1) + (None,) * nd],
                          (*dy.shape[:-1], *g.kernel, dy.shape[-1]))
    return fold(win, g)


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """The mean over every spatial axis: ``(N, *S, C) -> (N, C)``, in ``x``'s dtype.

    >>> import numpy as np
    >>> from fnn.ops.pool import global_avg_pool
    >>> global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[3., 4.]])
    """
    return x.mean(axis=tuple(range(1, x.ndim - 1)), dtype=x.dtype)


def global_avg_pool_backward(dy: np.ndarray, x_shape: tuple) -> np.ndarray:
    """The pullback of :func:`global_avg_pool`: ``dy: (N, C)`` spread evenly over the
    spatial positions of an input of shape ``x_shape`` → ``x_shape``.

    >>> import numpy as np
    >>> from fnn.ops.pool import global_avg_pool_backward
    >>> global_avg_pool_backward(np.array([[4.0]]), (1, 2, 2, 1))[0, :, :, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    count = math.prod(x_shape[1:-1])
    shape = (dy.shape[0],) + (1,) * (len(x_shape) - 2) + (dy.shape[-1],)
    return np.broadcast_to(dy.reshape(shape) / count, x_shape).astype(dy.dtype)
