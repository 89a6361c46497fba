"""Activation layers. Element-wise ones share one factory; softmax/log_softmax act on the last axis.

Every activation is a :class:`fnn.Layer` without params: ``fnn.tanh()``, ``fnn.leaky_relu(0.1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn.checks import float_input, no_params
from fnn.core import Layer
from fnn.ops import elementwise as ops


def elementwise(
    name: str,
    fn: Callable[[np.ndarray], np.ndarray],
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray],
    label: str | None = None,
) -> Layer:
    """A parameter-free layer ``y = fn(x)`` with ``dy/dx = grad(x, y)`` (element-wise).

    Use it for your own activations::

        >>> import numpy as np, fnn
        >>> cube = fnn.layers.elementwise("cube", lambda x: x**3, lambda x, y: 3 * x**2)
        >>> cube.apply({}, np.array([[2.0]]))
        array([[8.]])
    """
    return parameter_free(name, fn, lambda x, y, dy: dy * grad(x, y), label)


def parameter_free(
    name: str,
    fn: Callable[[np.ndarray], np.ndarray],
    back: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    label: str | None = None,
) -> Layer:
    """A layer without params: ``y = fn(x)``, pullback ``dx = back(x, y, dy)``."""
    label = label or name

    def init(key, input_shape):
        return input_shape, {}

    def apply(params, x):
        no_params(label, params)
        return fn(float_input(label, x))

    def vjp(params, x, *, key=None):
        y = apply(params, x)
        return y, lambda dy: ({}, back(x, y, dy))

    return Layer(init, apply, vjp, name)


def identity() -> Layer:
    """``y = x``."""
    return parameter_free("identity", lambda x: x, lambda x, y, dy: dy)


def tanh() -> Layer:
    """``tanh(x)``; the vjp ``dy * (1 - y * y)`` is one pass on the compiled backend."""
    return parameter_free("tanh", ops.tanh, lambda x, y, dy: ops.tanh_vjp(y, dy))


def sigmoid() -> Layer:
    """The textbook ``1 / (1 + exp(-x))``; ``exp`` may overflow to inf for very negative ``x``
    (silenced, the limit 0 is exact). See :func:`stable_sigmoid` for the overflow-free form."""
    return parameter_free("sigmoid", ops.sigmoid, lambda x, y, dy: ops.sigmoid_vjp(y, dy))


def _stable_sigmoid(x):
    z = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def stable_sigmoid() -> Layer:
    """Sigmoid that only ever evaluates ``exp`` of non-positive numbers: no overflow at any ``x``
    (|x| > 88 in float32, > 709 in float64 included)."""
    return elementwise("stable_sigmoid", _stable_sigmoid, lambda x, y: y * (1.0 - y))


def relu() -> Layer:
    """``max(x, 0)``. Followed by a max-pool in :func:`fnn.serial`, the two run fused
    (:mod:`fnn.ops.pool`; same numbers)."""
    layer = parameter_free("relu", ops.relu, lambda x, y, dy: ops.relu_vjp(x, dy))
    layer.apply.fuses_into = "max_pool"  # serial's peephole looks for this mark
    return layer


def leaky_relu(slope: float = 0.01) -> Layer:
    """``x`` for ``x > 0`` else ``slope * x``."""
    slope = float(slope)
    return elementwise(
        "leaky_relu",
        lambda x: np.where(x > 0, x, slope * x),
        lambda x, y: np.where(x > 0, 1.0, slope).astype(x.dtype, copy=False),
        f"leaky_relu({slope})",
    )


def softplus() -> Layer:
    """``log(1 + exp(x))``, computed stably as ``logaddexp(0, x)``."""
    return elementwise("softplus", lambda x: np.logaddexp(0.0, x), lambda x, y: _stable_sigmoid(x))


def sine() -> Layer:
    return elementwise("sine", np.sin, lambda x, y: np.cos(x))


_SERIES = 0.1  # below this |x|, sinc and its derivative use Taylor series (no cancellation)


def _sinc(x):
    small = np.abs(x) < _SERIES
    safe = np.where(small, 1.0, x)
    x2 = x * x
    series = 1.0 - x2 / 6.0 + x2 * x2 / 120.0 - x2 * x2 * x2 / 5040.0
    return np.where(small, series, np.sin(safe) / safe)


def _sinc_grad(x, y):
    small = np.abs(x) < _SERIES
    safe = np.where(small, 1.0, x)
    x2 = x * x
    series = x * (-1.0 / 3.0 + x2 / 30.0 - x2 * x2 / 840.0)
    return np.where(small, series, (np.cos(safe) - y) / safe)


def sinc() -> Layer:
    """Unnormalised ``sin(x) / x`` with ``sinc(0) = 1`` (``np.sinc`` is ``sin(pi x)/(pi x)``)."""
    return elementwise("sinc", _sinc, _sinc_grad)


def gaussian() -> Layer:
    """``exp(-x**2)``."""
    return elementwise("gaussian", lambda x: np.exp(-x * x), lambda x, y: -2.0 * x * y)


def elu(alpha: float = 1.0) -> Layer:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    alpha = float(alpha)
    return elementwise(
        "elu",
        lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
        lambda x, y: np.where(x > 0, 1.0, y + alpha).astype(x.dtype, copy=False),
        f"elu({alpha})",
    )


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_inner(x):
    return np.tanh(_GELU_C * (x + 0.044715 * x**3))


def gelu() -> Layer:
    """GELU, tanh approximation (PyTorch's ``approximate="tanh"``):
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""

    def grad(x, y):
        t = _gelu_inner(x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x * x)

    return elementwise("gelu", lambda x: 0.5 * x * (1.0 + _gelu_inner(x)), grad)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax() -> Layer:
    """Softmax over the last axis (max-shifted, no overflow)."""
    return parameter_free(
        "softmax", _softmax, lambda x, y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    )


def log_softmax() -> Layer:
    """``log(softmax(x))`` over the last axis, computed with log-sum-exp."""
    return parameter_free(
        "log_softmax",
        _log_softmax,
        lambda x, y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )
