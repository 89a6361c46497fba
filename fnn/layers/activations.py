"""Activation layers. Element-wise ones share one factory; softmax/log_softmax act on the last axis.

Every activation is a :class:`fnn.Layer` without params: ``fnn.tanh()``, ``fnn.leaky_relu(0.1)``.
Shapes: any input ``(N, ...)`` maps to an output of the same shape; ``init`` returns the input
shape and ``{}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fnn.core import Layer
from fnn.layers.base import parameter_free
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
    return parameter_free(label or name, fn, lambda x, y, dy: dy * grad(x, y), name=name)


def identity() -> Layer:
    """``y = x``: a placeholder layer (e.g. "no activation" in a sweep).

    >>> import numpy as np, fnn
    >>> fnn.identity().apply({}, np.array([[1.5, -2.0]]))
    array([[ 1.5, -2. ]])
    """
    return parameter_free("identity", lambda x: x, lambda x, y, dy: dy)


def tanh() -> Layer:
    """Hyperbolic tangent, ``y = tanh(x)`` in (-1, 1); ``dy/dx = 1 - y**2``.

    >>> import numpy as np, fnn
    >>> x = np.array([[-1.0, 0.0, 2.0]])
    >>> fnn.tanh().apply({}, x).round(4)
    array([[-0.7616,  0.    ,  0.964 ]])
    >>> y, pullback = fnn.tanh().vjp({}, x)
    >>> pullback(np.ones_like(x))[1].round(4)        # (dparams, dx): dx = 1 - tanh(x)**2
    array([[0.42  , 1.    , 0.0707]])
    """
    return parameter_free("tanh", ops.tanh, lambda x, y, dy: ops.tanh_vjp(y, dy))


def sigmoid() -> Layer:
    """The textbook ``1 / (1 + exp(-x))``; ``exp`` may overflow to inf for very negative ``x``
    (silenced, the limit 0 is exact). See :func:`stable_sigmoid` for the overflow-free form.

    >>> import numpy as np, fnn
    >>> fnn.sigmoid().apply({}, np.array([[-2.0, 0.0, 2.0]])).round(4)
    array([[0.1192, 0.5   , 0.8808]])
    """
    return parameter_free("sigmoid", ops.sigmoid, lambda x, y, dy: ops.sigmoid_vjp(y, dy))


def _stable_sigmoid(x):
    z = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def stable_sigmoid() -> Layer:
    """Sigmoid that only ever evaluates ``exp`` of non-positive numbers: no overflow at any ``x``
    (|x| > 88 in float32, > 709 in float64 included).

    >>> import numpy as np, fnn
    >>> fnn.stable_sigmoid().apply({}, np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    return elementwise("stable_sigmoid", _stable_sigmoid, lambda x, y: y * (1.0 - y))


def relu() -> Layer:
    """Rectified linear unit, ``y = max(x, 0)``; the gradient at ``x = 0`` is taken as 0.

    >>> import numpy as np, fnn
    >>> x = np.array([[-1.0, 0.0, 2.0]])
    >>> fnn.relu().apply({}, x)
    array([[0., 0., 2.]])
    >>> fnn.relu().vjp({}, x)[1](np.ones_like(x))[1]   # dx: 1 where x > 0
    array([[0., 0., 1.]])
    """
    layer = parameter_free("relu", ops.relu, lambda x, y, dy: ops.relu_vjp(x, dy))
    layer.apply.fuses_into = "max_pool"  # serial's peephole looks for this mark
    return layer


def leaky_relu(slope: float = 0.01) -> Layer:
    """``x`` for ``x > 0`` else ``slope * x``.

    >>> import numpy as np, fnn
    >>> fnn.leaky_relu(0.1).apply({}, np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """
    slope = float(slope)
    return elementwise(
        "leaky_relu",
        lambda x: np.where(x > 0, x, slope * x),
        lambda x, y: np.where(x > 0, 1.0, slope).astype(x.dtype, copy=False),
        f"leaky_relu({slope})",
    )


def softplus() -> Layer:
    """``log(1 + exp(x))``, computed stably as ``logaddexp(0, x)``; its derivative is the sigmoid.

    >>> import numpy as np, fnn
    >>> fnn.softplus().apply({}, np.array([[-50.0, 0.0, 50.0]])).round(4)
    array([[ 0.    ,  0.6931, 50.    ]])
    """
    return elementwise("softplus", lambda x: np.logaddexp(0.0, x), lambda x, y: _stable_sigmoid(x))


def sine() -> Layer:
    """``y = sin(x)``, ``dy/dx = cos(x)`` (periodic activations, as in SIREN-style nets).

    >>> import numpy as np, fnn
    >>> fnn.sine().apply({}, np.array([[0.0, np.pi / 2]]))
    array([[0., 1.]])
    """
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
    """Unnormalised ``sin(x) / x`` with ``sinc(0) = 1`` (``np.sinc`` is ``sin(pi x)/(pi x)``).

    Near 0 the value and the derivative use Taylor series, so there is no cancellation.

    >>> import numpy as np, fnn
    >>> fnn.sinc().apply({}, np.array([[0.0, np.pi]])).round(6)
    array([[1., 0.]])
    """
    return elementwise("sinc", _sinc, _sinc_grad)


def gaussian() -> Layer:
    """``exp(-x**2)``: 1 at 0, vanishing on both sides.

    >>> import numpy as np, fnn
    >>> fnn.gaussian().apply({}, np.array([[0.0, 1.0]])).round(4)
    array([[1.    , 0.3679]])
    """
    return elementwise("gaussian", lambda x: np.exp(-x * x), lambda x, y: -2.0 * x * y)


def elu(alpha: float = 1.0) -> Layer:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``.

    >>> import numpy as np, fnn
    >>> fnn.elu().apply({}, np.array([[-1.0, 2.0]])).round(4)
    array([[-0.6321,  2.    ]])
    """
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
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> import numpy as np, fnn
    >>> fnn.gelu().apply({}, np.array([[-1.0, 0.0, 1.0]])).round(4)
    array([[-0.1588,  0.    ,  0.8412]])
    """

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
    """Softmax over the last axis (max-shifted, no overflow): ``(N, ..., K)`` to the same shape,
    each row non-negative and summing to 1. To train a classifier, prefer raw logits with
    :func:`fnn.cross_entropy`.

    >>> import numpy as np, fnn
    >>> fnn.softmax().apply({}, np.array([[0.0, 0.0], [1000.0, 0.0]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    """
    return parameter_free(
        "softmax", _softmax, lambda x, y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    )


def log_softmax() -> Layer:
    """``log(softmax(x))`` over the last axis, computed with log-sum-exp; pair it with
    :func:`fnn.nll`.

    >>> import numpy as np, fnn
    >>> fnn.log_softmax().apply({}, np.array([[0.0, 0.0]])).round(4)
    array([[-0.6931, -0.6931]])
    """
    return parameter_free(
        "log_softmax",
        _log_softmax,
        lambda x, y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )
