"""Activation kernels, each beside its vector-Jacobian product, and :data:`ACTIVATIONS`, the
one table ``name -> Activation(forward, vjp, params)`` the activation layers are built from.

``forward(x, **params) -> y`` and ``vjp(x, y, dy, **params) -> dx`` (``y = forward(x)``, kept
by the layer's training pass, so a vjp may use either). Element-wise ones map any shape to
itself; ``softmax`` and ``log_softmax`` act on the last axis.

numpy spends one pass over memory per operation (``dy * (1 - y * y)`` is three, with two
temporaries); on the compiled backend the relu, tanh and sigmoid vjps are one pass each
(:mod:`fnn.ops.compiled`), and so are GELU and its vjp (:mod:`fnn.ops.sequence_kernels`). Both compute in the arrays' dtype, so they agree to the last bit or
to float rounding. The compiled kernels take C-contiguous float32/float64 arrays of one dtype;
anything else runs the numpy code.

>>> import numpy as np
>>> from fnn.ops.activations import ACTIVATIONS
>>> leaky = ACTIVATIONS["leaky_relu"]
>>> x = np.array([-2.0, 3.0])
>>> y = leaky.forward(x, slope=0.1)
>>> y, leaky.vjp(x, y, np.ones(2), slope=0.1), dict(leaky.params)
(array([-0.2,  3. ]), array([0.1, 1. ]), {'slope': 0.01})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from fnn.ops import _backend


class Activation(NamedTuple):
    """An activation's kernels: ``forward(x, **params) -> y``, ``vjp(x, y, dy, **params) ->
    dx``, and its parameters with their defaults (``{"slope": 0.01}`` for leaky_relu).

    >>> import numpy as np
    >>> from fnn.ops.activations import ACTIVATIONS
    >>> ACTIVATIONS["tanh"].vjp(None, np.array([0.5]), np.array([2.0]))
    array([1.5])
    """

    forward: Callable[..., np.ndarray]
    vjp: Callable[..., np.ndarray]
    params: Mapping[str, float] = MappingProxyType({})


def identity(x: np.ndarray) -> np.ndarray:
    """``x`` itself."""
    return x


def identity_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` (one numpy pass: nothing to gain from compiling it)."""
    return np.maximum(x, 0.0)


def relu_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * (x > 0)`` (the gradient at 0 is 0); numpy multiplies by a float mask (faster
    than a bool one: ``benchmarks/micro.py``)."""
    if _backend.pair_fits(x, dy):
        return _backend.kernels().relu_vjp(x, dy)
    return dy * (x > 0).astype(x.dtype)


def tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(x)``; one compiled SIMD pass on the compiled backend (to 3 ulp of numpy's)."""
    k = _simd_kernels(x)
    if k is not None:
        out = np.empty_like(x)
        k.tanh(x, out)
        return out
    return np.tanh(x)


def tanh_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * (1 - y * y)`` from the output ``y = tanh(x)``."""
    if _backend.pair_fits(y, dy):
        return _backend.kernels().tanh_vjp(y, dy)
    return dy * (1.0 - y * y)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The textbook ``1 / (1 + exp(-x))``; ``exp`` may overflow to inf for very negative ``x``
    (silenced: the limit 0 is exact). numpy on both backends (its SIMD ``exp`` is faster than
    a compiled scalar loop)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * y * (1 - y)`` from the output ``y = sigmoid(x)`` (either form)."""
    if _backend.pair_fits(y, dy):
        return _backend.kernels().sigmoid_vjp(y, dy)
    return dy * (y * (1.0 - y))


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """The sigmoid evaluating ``exp`` of non-positive numbers only: no overflow at any ``x``."""
    z = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def leaky_relu(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """``x`` for ``x > 0`` else ``slope * x``."""
    return np.where(x > 0, x, slope * x)


def leaky_relu_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray,
                   slope: float = 0.01) -> np.ndarray:
    return dy * np.where(x > 0, 1.0, slope).astype(x.dtype, copy=False)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return dy * np.where(x > 0, 1.0, y + alpha).astype(x.dtype, copy=False)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` as ``logaddexp(0, x)`` (stable); its derivative is the sigmoid."""
    return np.logaddexp(0.0, x)


def softplus_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * stable_sigmoid(x)


def sine(x: np.ndarray) -> np.ndarray:
    return np.sin(x)


def sine_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * np.cos(x)


_SERIES = 0.1  # below this |x|, sinc and its derivative use Taylor series (no cancellation)


def sinc(x: np.ndarray) -> np.ndarray:
    """Unnormalised ``sin(x) / x``, 1 at 0 (a Taylor series near 0)."""
    small = np.abs(x) < _SERIES
    safe = np.where(small, 1.0, x)
    x2 = x * x
    series = 1.0 - x2 / 6.0 + x2 * x2 / 120.0 - x2 * x2 * x2 / 5040.0
    return np.where(small, series, np.sin(safe) / safe)


def sinc_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    small = np.abs(x) < _SERIES
    safe = np.where(small, 1.0, x)
    x2 = x * x
    series = x * (-1.0 / 3.0 + x2 / 30.0 - x2 * x2 / 840.0)
    return dy * np.where(small, series, (np.cos(safe) - y) / safe)


def gaussian(x: np.ndarray) -> np.ndarray:
    """``exp(-x**2)``."""
    return np.exp(-x * x)


def gaussian_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * (-2.0 * x * y)


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_inner(x: np.ndarray) -> np.ndarray:
    """``tanh(sqrt(2/pi) (x + 0.044715 x^3))`` in place in one fresh array (``x**3`` would
    call the general ``pow``, several times slower than two multiplies)."""
    u = x * x
    u *= 0.044715
    u += 1.0
    u *= x
    u *= _GELU_C
    return np.tanh(u, out=u)


def _simd_kernels(x: np.ndarray, dy: np.ndarray | None = None):
    """The compiled tanh and GELU kernels (:mod:`fnn.ops.sequence_kernels`) when they take
    ``x`` (and ``dy``), else None."""
    if type(x) is not np.ndarray or not _backend.pair_fits(x, x if dy is None else dy):
        return None
    from fnn.ops import sequence_kernels  # numba, on first use

    return sequence_kernels


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (one
    compiled pass on the compiled backend)."""
    k = _simd_kernels(x)
    if k is not None:
        out = np.empty_like(x)
        k.gelu(x, x.dtype.type(_GELU_C), out)
        return out
    return gelu_saving_tanh(x)[0]


def _gelu_grad(x: np.ndarray, t: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """numpy's GELU derivative times ``dy`` from ``t = _gelu_inner(x)`` (not written)."""
    slope = x * x  # d/dx of the tanh's argument, then the whole derivative, in place
    slope *= 3 * 0.044715
    slope += 1.0
    slope *= _GELU_C
    slope *= x
    slope *= 0.5
    t2 = t * t
    np.subtract(1.0, t2, out=t2)
    slope *= t2
    out = t + 1.0
    out *= 0.5
    out += slope
    out *= dy
    return out


def gelu_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    k = _simd_kernels(x, dy)
    if k is not None:
        out = np.empty_like(dy)
        k.gelu_vjp(x, dy, x.dtype.type(_GELU_C), out)
        return out
    return _gelu_grad(x, _gelu_inner(x), dy)


def gelu_saving_tanh(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gelu(x), t)`` with ``t`` the tanh inside, kept for :func:`gelu_vjp_of_tanh` (one
    tanh per entry instead of two).

    >>> import numpy as np
    >>> from fnn.ops.activations import gelu_saving_tanh, gelu_vjp_of_tanh
    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> y, t = gelu_saving_tanh(x)
    >>> y.round(4).tolist(), gelu_vjp_of_tanh(x, y, t, np.ones(3)).round(4).tolist()
    ([-0.1588, 0.0, 0.8412], [-0.083, 0.5, 1.083])
    """
    k = _simd_kernels(x)
    if k is not None:
        y, t = np.empty_like(x), np.empty_like(x)
        k.gelu_saving_tanh(x, x.dtype.type(_GELU_C), y, t)
        return y, t
    t = _gelu_inner(x)
    y = t + 1.0
    y *= x
    y *= 0.5
    return y, t


def gelu_vjp_of_tanh(x: np.ndarray, y: np.ndarray, t: np.ndarray,
                     dy: np.ndarray) -> np.ndarray:
    """:func:`gelu_vjp` given :func:`gelu_saving_tanh`'s ``t``."""
    k = _simd_kernels(x, dy)
    if k is not None and t.shape == x.shape and t.dtype == x.dtype and t.flags.c_contiguous:
        out = np.empty_like(dy)
        k.gelu_vjp_of_tanh(x, t, dy, x.dtype.type(_GELU_C), out)
        return out
    return _gelu_grad(x, t, dy)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, max-shifted (no overflow)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """``log(softmax(x))`` over the last axis, by log-sum-exp."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_vjp(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


#: Every activation by name: its kernels and parameters (defaults). The layers of
#: :mod:`fnn.layers.activations` are built from it; their ``kind`` is the name.
ACTIVATIONS: Mapping[str, Activation] = MappingProxyType({
    "identity": Activation(identity, identity_vjp),
    "tanh": Activation(tanh, tanh_vjp),
    "sigmoid": Activation(sigmoid, sigmoid_vjp),
    "stable_sigmoid": Activation(stable_sigmoid, sigmoid_vjp),
    "relu": Activation(relu, relu_vjp),
    "leaky_relu": Activation(leaky_relu, leaky_relu_vjp, MappingProxyType({"slope": 0.01})),
    "elu": Activation(elu, elu_vjp, MappingProxyType({"alpha": 1.0})),
    "softplus": Activation(softplus, softplus_vjp),
    "sine": Activation(sine, sine_vjp),
    "sinc": Activation(sinc, sinc_vjp),
    "gaussian": Activation(gaussian, gaussian_vjp),
    "gelu": Activation(gelu, gelu_vjp),
    "softmax": Activation(softmax, softmax_vjp),
    "log_softmax": Activation(log_softmax, log_softmax_vjp),
})

__all__ = ["ACTIVATIONS", "Activation", "elu", "elu_vjp", "gaussian", "gaussian_vjp", "gelu",
           "gelu_saving_tanh", "gelu_vjp", "gelu_vjp_of_tanh", "identity", "identity_vjp",
           "leaky_relu", "leaky_relu_vjp", "log_softmax", "log_softmax_vjp", "relu", "relu_vjp",
           "sigmoid", "sigmoid_vjp", "sine", "sine_vjp", "sinc", "sinc_vjp", "softmax",
           "softmax_vjp", "softplus", "softplus_vjp", "stable_sigmoid", "tanh", "tanh_vjp"]
