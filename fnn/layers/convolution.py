"""Convolutions (cross-correlations, as in every deep-learning library) over channels-last
inputs, and their exact adjoints, the transposed convolutions.

* ``conv1d`` on ``(N, L, C_in)``, kernel ``w: (k, C_in, C_out)``;
  ``conv2d`` on ``(N, H, W, C_in)``, kernel ``w: (kh, kw, C_in, C_out)``; bias ``b: (C_out,)``.
* Output sizes: see :mod:`fnn.ops.windows` (``L_out = (L + lo + hi - d(k-1) - 1) // s + 1``).
* ``conv_transpose1d/2d(C_out, ...)`` store ``w: (*kernel, C_out, C_in)`` — the kernel of the
  convolution ``C_out -> C_in`` they are the adjoint of: with the same ``w``, stride, padding and
  dilation, ``<conv(x), y> = <x, conv_transpose(y)>``. Their output size is
  ``L_out = (L - 1) * s - lo - hi + d(k-1) + 1 + output_padding``, so a decoder mirrors its
  encoder's shapes (``output_padding < stride`` picks among the sizes a strided conv maps to L).

Computation (:mod:`fnn.ops.conv`, numpy or compiled kernels, see :mod:`fnn.ops`): the
windows of the padded input are copied once into a ``(N * L_out, k * C_in)`` patch matrix and
multiplied by the kernel (one BLAS matmul; a column of ones in the patches adds the bias in
the same matmul). The backward pass reuses the patches for ``dw`` (and ``db``) and folds
``dy @ w.T`` back onto the input for ``dx`` (at stride 1 with ``C_out <= C_in``: convolves
``dy`` with the flipped kernel instead); the transposed convolution runs the same two
functions the other way round. ``input_grad=False`` (the model's first layer, fed data) skips ``dx``.
On the compiled backend, 3×3 stride-1 convolutions with 8+ channels each side run by
Winograd's F(2×2, 3×3) (:mod:`fnn.ops.winograd`: 2.25× fewer multiplies).
``benchmarks/micro.py`` times each of these choices against the plain numpy way.
"""

from __future__ import annotations

import functools

from fnn import initializers
from fnn.checks import LayerError, fmt_shape
from fnn.core import Layer
from fnn.keys import split
from fnn.layers.arguments import geometry, layout, padding_arg
from fnn.layers.base import fixed_rank, layer
from fnn.ops.conv import (
    bias_grad,
    correlate,
    correlate_adjoint,
    correlate_vjp,
    kernel_grad,
    patches,
)
from fnn.validate import boolean, int_tuple, positive_int


def conv(nd: int, out_channels: int, kernel_size, *, transpose: bool = False, stride=1,
         padding="valid", output_padding=0, dilation=1, bias: bool = False,
         w_init="xavier_normal", b_init="zeros") -> Layer:
    """The convolution factory behind ``conv1d/2d`` and ``conv_transpose1d/2d``: ``nd``
    spatial axes, ``out_channels``, ``kernel_size`` (int or one per axis); ``stride``,
    ``dilation``: int or one per axis; ``padding``: ``"valid"``, ``"same"`` (not for a
    transpose), an int, one int or ``(lo, hi)`` per axis; ``output_padding`` (transpose
    only, smaller than the stride); ``bias`` off by default (as in the report). Its ``kind``
    is ``"conv"`` (a transpose too: ``config["transpose"]``).

    >>> import fnn
    >>> fnn.layers.conv(2, 8, 3, padding="same").init(fnn.key(0), (-1, 28, 28, 1))[0]
    (-1, 28, 28, 8)
    """
    name = f"conv{'_transpose' if transpose else ''}{nd}d"
    label = f"{name}({positive_int(name, 'out_channels', out_channels)}, {kernel_size!r})"
    kernel = int_tuple(label, "kernel_size", kernel_size, nd)
    stride = int_tuple(label, "stride", stride, nd)
    dilation = int_tuple(label, "dilation", dilation, nd)
    padding = padding_arg(label, padding, nd, allow_same=not transpose)
    out_pad = int_tuple(label, "output_padding", output_padding, nd, minimum=0)
    if any(p >= s for p, s in zip(out_pad, stride) if p):
        raise ValueError(f"{label}: output_padding must be smaller than the stride, "
                         f"got output_padding={output_padding!r}, stride={stride}")
    bias = boolean(label, "bias", bias)
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)
    config = {"nd": nd, "out_channels": int(out_channels), "kernel": kernel, "stride": stride,
              "padding": padding, "dilation": dilation, "transpose": bool(transpose),
              "output_padding": out_pad, "bias": bias}

    @functools.lru_cache(maxsize=64)  # per input size: a layer meets the same few every step
    def conv_geometry(in_sizes: tuple):
        """The geometry of the convolution itself (for a transpose: of the conv it adjoins)."""
        if not transpose:
            return geometry(label, in_sizes, kernel, stride, dilation, padding)
        sizes = [(n - 1) * s - lo - hi + d * (k - 1) + 1 + p for n, s, (lo, hi), d, k, p
                 in zip(in_sizes, stride, padding, dilation, kernel, out_pad)]
        if any(n <= 0 for n in sizes):
            raise LayerError(f"{label}: padding {padding} is too large for an input of spatial "
                             f"shape {fmt_shape(tuple(in_sizes))} (output size {tuple(sizes)})")
        return geometry(label, sizes, kernel, stride, dilation, padding)

    def init(key, input_shape):
        shape = fixed_rank(label, input_shape, nd + 2, layout(nd))
        g = conv_geometry(shape[1:-1])
        kw, kb = split(key)
        channels = (out_channels, shape[-1]) if transpose else (shape[-1], out_channels)
        params = {"w": w_init(kw, (*kernel, *channels))}
        if bias:
            params["b"] = b_init(kb, (out_channels,))
        return (shape[0], *(g.sizes if transpose else g.out_sizes), out_channels), params

    def forward(params, x):
        """``(y, saved)``; the convolution adds its bias inside its matmul."""
        w, b, g = params["w"], params.get("b"), conv_geometry(x.shape[1:-1])
        if not transpose:
            y, cols = correlate(x, w, g, b)
            return y, (cols, g)
        y = correlate_adjoint(x, w, g)
        return (y if b is None else y + b), (x, g)

    def backward(params, saved, dy, input_grad):
        w, dx = params["w"], None
        if transpose:  # y = A^T x: dx = A dy, dw from the patches of dy against x
            x, g = saved
            dx, dy_cols = correlate(dy, w, g) if input_grad else (None, patches(dy, g))
            grads = {"w": kernel_grad(dy_cols, x, w.shape)[0]}
            return ({**grads, "b": bias_grad(dy)} if bias else grads), dx
        cols, g = saved
        dw, db, dx = correlate_vjp(cols, dy, w, g, input_grad)
        return ({"w": dw} if db is None else {"w": dw, "b": db}), dx

    return layer(label, init, forward, backward, name=name, kind="conv", config=config)


def conv1d(out_channels: int, kernel_size: int, **options) -> Layer:
    """1-D convolution ``(N, L, C_in) -> (N, L_out, out_channels)``, kernel
    ``(kernel_size, C_in, out_channels)``; ``options`` (stride, padding, dilation, bias,
    w_init, b_init) as for :func:`fnn.layers.conv`.

    >>> import numpy as np, fnn
    >>> layer = fnn.conv1d(32, 3)
    >>> shape, params = layer.init(fnn.key(0), (-1, 256, 1))
    >>> shape, params["w"].shape, layer.apply(params, np.zeros((2, 256, 1), np.float32)).shape
    ((-1, 254, 32), (3, 1, 32), (2, 254, 32))
    """
    return conv(1, out_channels, kernel_size, **options)


def conv2d(out_channels: int, kernel_size, **options) -> Layer:
    """2-D convolution ``(N, H, W, C_in) -> (N, H_out, W_out, out_channels)``, kernel
    ``(kh, kw, C_in, out_channels)``; ``options`` as for :func:`fnn.layers.conv`.

    >>> import fnn
    >>> fnn.conv2d(8, 3, padding="same", stride=2).init(fnn.key(0), (-1, 28, 28, 1))[0]
    (-1, 14, 14, 8)
    """
    return conv(2, out_channels, kernel_size, **options)


def conv_transpose1d(out_channels: int, kernel_size: int, **options) -> Layer:
    """Transposed 1-D convolution ``(N, L, C_in) -> (N, L_out, out_channels)`` with
    ``L_out = (L - 1) * stride - lo - hi + dilation * (k - 1) + 1 + output_padding``; the exact
    adjoint of ``conv1d(C_in, ...)`` with the same kernel ``(k, out_channels, C_in)``.

    >>> import fnn
    >>> fnn.conv_transpose1d(4, 3, stride=2, padding=1, output_padding=1).init(fnn.key(0), (-1, 8, 2))[0]
    (-1, 16, 4)
    """
    return conv(1, out_channels, kernel_size, transpose=True, **options)


def conv_transpose2d(out_channels: int, kernel_size, **options) -> Layer:
    """Transposed 2-D convolution ``(N, H, W, C_in) -> (N, H_out, W_out, out_channels)``, the
    adjoint of ``conv2d(C_in, ...)`` with kernel ``(kh, kw, out_channels, C_in)``; sizes as in
    :func:`conv_transpose1d` per axis.

    >>> import fnn
    >>> fnn.conv_transpose2d(1, 3, stride=2, padding=1, output_padding=1).init(fnn.key(0), (-1, 7, 7, 16))[0]
    (-1, 14, 14, 1)
    """
    return conv(2, out_channels, kernel_size, transpose=True, **options)


__all__ = ["conv", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]
