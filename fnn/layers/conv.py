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
functions the other way round. ``param_vjp`` (the model's first layer, fed data) skips ``dx``.
``benchmarks/micro.py`` times each of these choices against the plain numpy way.
"""

from __future__ import annotations

import functools

import numpy as np

from fnn import initializers
from fnn.checks import LayerError, as_shape, float_input, fmt_shape, param, param_keys
from fnn.core import Layer
from fnn.keys import split
from fnn.layers.windows import geometry, int_tuple, layout, padding_arg
from fnn.ops.conv import (  # noqa: F401  (the kernels, re-exported for existing imports)
    adjoint_by_taps,
    adjoint_geometry,
    bias_grad,
    correlate,
    correlate_adjoint,
    kernel_grad,
    kernel_matrix,
    patches,
)


def _conv_layer(nd: int, out_channels: int, kernel_size, *, stride, padding, dilation, bias,
                w_init, b_init, transpose: bool = False, output_padding=0) -> Layer:
    name = f"conv{'_transpose' if transpose else ''}{nd}d"
    if not isinstance(out_channels, (int, np.integer)) or out_channels <= 0:
        raise ValueError(f"{name}: out_channels must be a positive int, got {out_channels!r}")
    label = f"{name}({out_channels}, {kernel_size!r})"
    kernel = int_tuple(label, "kernel_size", kernel_size, nd)
    stride = int_tuple(label, "stride", stride, nd)
    dilation = int_tuple(label, "dilation", dilation, nd)
    padding = padding_arg(label, padding, nd, allow_same=not transpose)
    out_pad = int_tuple(label, "output_padding", output_padding, nd, minimum=0)
    if any(p >= s for p, s in zip(out_pad, stride) if p):
        raise ValueError(f"{label}: output_padding must be smaller than the stride, "
                         f"got output_padding={output_padding!r}, stride={stride}")
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)
    rank = nd + 2

    def conv_geometry(in_sizes):
        """The geometry of the convolution itself (for a transpose: of the conv it adjoins)."""
        if not transpose:
            return geometry(label, in_sizes, kernel, stride, dilation, padding)
        sizes = [(n - 1) * s - lo - hi + d * (k - 1) + 1 + p for n, s, (lo, hi), d, k, p
                 in zip(in_sizes, stride, padding, dilation, kernel, out_pad)]
        if any(n <= 0 for n in sizes):
            raise LayerError(f"{label}: padding {padding} is too large for an input of spatial "
                             f"shape {fmt_shape(tuple(in_sizes))} (output size {tuple(sizes)})")
        g = geometry(label, sizes, kernel, stride, dilation, padding)
        assert g.out_sizes == tuple(in_sizes), (g, in_sizes)
        return g

    def w_shape(c_in):
        return (*kernel, out_channels, c_in) if transpose else (*kernel, c_in, out_channels)

    def init(key, input_shape):
        shape = as_shape(label, input_shape, min_rank=2)
        if len(shape) != rank:
            raise LayerError(f"{label}: expects inputs of shape {layout(nd)}, got input_shape "
                             f"{fmt_shape(shape)}")
        g = conv_geometry(shape[1:-1])
        kw, kb = split(key)
        params = {"w": w_init(kw, w_shape(shape[-1]))}
        if bias:
            params["b"] = b_init(kb, (out_channels,))
        out_sizes = g.sizes if transpose else g.out_sizes
        return (shape[0], *out_sizes, out_channels), params

    names = ("w", "b") if bias else ("w",)

    def check(params, x):
        x = float_input(label, x)
        param_keys(label, params, names)
        w = param(label, params, "w")
        if x.ndim != rank:
            raise LayerError(f"{label}: expected input of shape {layout(nd)}, got {x.shape}")
        if np.ndim(w) != rank or w.shape[:nd] != kernel or w.shape[nd:] != w_shape(x.shape[-1])[nd:]:
            made_for = w.shape[nd + 1] if transpose and np.ndim(w) == rank else (
                w.shape[nd] if np.ndim(w) == rank else "?")
            raise LayerError(
                f"{label}: params['w'] should have shape {w_shape(x.shape[-1])} for an input "
                f"with {x.shape[-1]} channels {x.shape}, got {np.shape(w)}",
                params_message=f"{label}: params['w'] has shape {np.shape(w)} (made for inputs "
                f"of {made_for} channels), but the layer before it gives {x.shape[-1]} channels "
                f"(input {x.shape}): the params do not fit the model; expected params['w'] of "
                f"shape {w_shape(x.shape[-1])}")
        b = param(label, params, "b", (out_channels,)) if bias else None
        return x, w, b, conv_geometry(x.shape[1:-1])

    def forward(x, w, b, g):
        """``(y, patches of x)``; the convolution adds its bias inside its matmul."""
        if not transpose:
            return correlate(x, w, g, b)
        y = correlate_adjoint(x, w, g)
        if b is not None:
            y += b  # fresh array
        return y, None

    def apply(params, x):
        x, w, b, g = check(params, x)
        return forward(x, w, b, g)[0]

    def vjp(params, x, *, key=None, input_grad=True):
        x, w, b, g = check(params, x)
        y, cols = forward(x, w, b, g)

        def pullback(dy):
            dx = None
            if transpose:  # y = A^T x: dx = A dy, dw from the patches of dy against x
                if input_grad:
                    dx, dy_cols = correlate(dy, w, g)
                else:
                    dy_cols = patches(dy, g)
                grads = {"w": kernel_grad(dy_cols, x, w.shape)[0]}
                if bias:
                    grads["b"] = bias_grad(dy)
            else:
                if input_grad:
                    dx = correlate_adjoint(dy, w, g)
                dw, db = kernel_grad(cols, dy, w.shape)
                grads = {"w": dw} if db is None else {"w": dw, "b": db}
            return grads, dx

        return y, pullback

    return Layer(init, apply, vjp, name, functools.partial(vjp, input_grad=False), label)


def conv1d(out_channels: int, kernel_size: int, *, stride: int = 1, padding="valid",
           dilation: int = 1, bias: bool = False, w_init="xavier_normal", b_init="zeros") -> Layer:
    """1-D convolution ``(N, L, C_in) -> (N, L_out, out_channels)``, kernel
    ``(kernel_size, C_in, out_channels)``. ``padding``: ``"valid"``, ``"same"``, an int or
    ``(lo, hi)``. Bias off by default (as in the report).

    >>> import numpy as np, fnn
    >>> layer = fnn.conv1d(32, 3)
    >>> shape, params = layer.init(fnn.key(0), (-1, 256, 1))
    >>> shape, params["w"].shape, layer.apply(params, np.zeros((2, 256, 1), np.float32)).shape
    ((-1, 254, 32), (3, 1, 32), (2, 254, 32))
    """
    return _conv_layer(1, out_channels, kernel_size, stride=stride, padding=padding,
                       dilation=dilation, bias=bias, w_init=w_init, b_init=b_init)


def conv2d(out_channels: int, kernel_size, *, stride=1, padding="valid", dilation=1,
           bias: bool = False, w_init="xavier_normal", b_init="zeros") -> Layer:
    """2-D convolution ``(N, H, W, C_in) -> (N, H_out, W_out, out_channels)``, kernel
    ``(kh, kw, C_in, out_channels)``; ``kernel_size``, ``stride``, ``dilation``: int or pair;
    ``padding``: ``"valid"``, ``"same"``, int, ``(ph, pw)`` or ``((top, bottom), (left, right))``.

    >>> import numpy as np, fnn
    >>> layer = fnn.conv2d(8, 3, padding="same", stride=2)
    >>> layer.init(fnn.key(0), (-1, 28, 28, 1))[0]
    (-1, 14, 14, 8)
    """
    return _conv_layer(2, out_channels, kernel_size, stride=stride, padding=padding,
                       dilation=dilation, bias=bias, w_init=w_init, b_init=b_init)


def conv_transpose1d(out_channels: int, kernel_size: int, *, stride: int = 1, padding=0,
                     output_padding: int = 0, dilation: int = 1, bias: bool = False,
                     w_init="xavier_normal", b_init="zeros") -> Layer:
    """Transposed 1-D convolution ``(N, L, C_in) -> (N, L_out, out_channels)`` with
    ``L_out = (L - 1) * stride - lo - hi + dilation * (k - 1) + 1 + output_padding``; the exact
    adjoint of ``conv1d(C_in, ...)`` with the same kernel ``(k, out_channels, C_in)``.

    >>> import fnn
    >>> fnn.conv_transpose1d(4, 3, stride=2, padding=1, output_padding=1).init(fnn.key(0), (-1, 8, 2))[0]
    (-1, 16, 4)
    """
    return _conv_layer(1, out_channels, kernel_size, stride=stride, padding=padding,
                       dilation=dilation, bias=bias, w_init=w_init, b_init=b_init, transpose=True,
                       output_padding=output_padding)


def conv_transpose2d(out_channels: int, kernel_size, *, stride=1, padding=0, output_padding=0,
                     dilation=1, bias: bool = False, w_init="xavier_normal",
                     b_init="zeros") -> Layer:
    """Transposed 2-D convolution ``(N, H, W, C_in) -> (N, H_out, W_out, out_channels)``, the
    adjoint of ``conv2d(C_in, ...)`` with kernel ``(kh, kw, out_channels, C_in)``; sizes as in
    :func:`conv_transpose1d` per axis.

    >>> import fnn
    >>> fnn.conv_transpose2d(1, 3, stride=2, padding=1, output_padding=1).init(fnn.key(0), (-1, 7, 7, 16))[0]
    (-1, 14, 14, 1)
    """
    return _conv_layer(2, out_channels, kernel_size, stride=stride, padding=padding,
                       dilation=dilation, bias=bias, w_init=w_init, b_init=b_init, transpose=True,
                       output_padding=output_padding)


__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]
