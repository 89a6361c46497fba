"""Activation layers: parameter-free layers built from the kernels of
:data:`fnn.ops.activations.ACTIVATIONS` (``kind`` is the activation's name, ``config`` its
parameters). Element-wise ones map any input ``(N, ...)`` to the same shape; softmax and
log_softmax act on the last axis. ``init`` returns the input shape and ``{}``.

Every activation is a :class:`fnn.Layer`: ``fnn.tanh()``, ``fnn.leaky_relu(0.1)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from fnn.core import Layer
from fnn.layers.base import parameter_free
from fnn.ops.activations import ACTIVATIONS, gelu_saving_tanh, gelu_vjp_of_tanh
from fnn.validate import real


def _activation(kind: str, axis: int | None = None, **params: float) -> Layer:
    """The layer of ``ACTIVATIONS[kind]``, its parameters bound (and shown in the label when
    given); ``axis``: the axis it acts along (config only: the kernels use the last)."""
    forward, vjp, _ = ACTIVATIONS[kind]
    if params:
        forward, vjp = functools.partial(forward, **params), functools.partial(vjp, **params)
    label = f"{kind}({', '.join(map(str, params.values()))})" if params else kind
    config = params if axis is None else {"axis": axis, **params}
    return parameter_free(label, forward, vjp, name=kind, kind=kind, config=config)


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
    return _activation("identity")


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
    return _activation("tanh")


def sigmoid() -> Layer:
    """The textbook ``1 / (1 + exp(-x))``; ``exp`` may overflow to inf for very negative ``x``
    (silenced, the limit 0 is exact). See :func:`stable_sigmoid` for the overflow-free form.

    >>> import numpy as np, fnn
    >>> fnn.sigmoid().apply({}, np.array([[-2.0, 0.0, 2.0]])).round(4)
    array([[0.1192, 0.5   , 0.8808]])
    """
    return _activation("sigmoid")


def stable_sigmoid() -> Layer:
    """Sigmoid that only ever evaluates ``exp`` of non-positive numbers: no overflow at any ``x``
    (|x| > 88 in float32, > 709 in float64 included).

    >>> import numpy as np, fnn
    >>> fnn.stable_sigmoid().apply({}, np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    return _activation("stable_sigmoid")


def relu() -> Layer:
    """Rectified linear unit, ``y = max(x, 0)``; the gradient at ``x = 0`` is taken as 0. In
    :func:`fnn.serial`, a relu directly followed by a max-pool runs fused with it
    (:mod:`fnn.layers.fusion`).

    >>> import numpy as np, fnn
    >>> x = np.array([[-1.0, 0.0, 2.0]])
    >>> fnn.relu().apply({}, x)
    array([[0., 0., 2.]])
    >>> fnn.relu().vjp({}, x)[1](np.ones_like(x))[1]   # dx: 1 where x > 0
    array([[0., 0., 1.]])
    """
    return _activation("relu")


def leaky_relu(slope: float = 0.01) -> Layer:
    """``x`` for ``x > 0`` else ``slope * x``.

    >>> import numpy as np, fnn
    >>> fnn.leaky_relu(0.1).apply({}, np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """
    return _activation("leaky_relu", slope=real("leaky_relu", "slope", slope))


def softplus() -> Layer:
    """``log(1 + exp(x))``, computed stably as ``logaddexp(0, x)``; its derivative is the sigmoid.

    >>> import numpy as np, fnn
    >>> fnn.softplus().apply({}, np.array([[-50.0, 0.0, 50.0]])).round(4)
    array([[ 0.    ,  0.6931, 50.    ]])
    """
    return _activation("softplus")


def sine() -> Layer:
    """``y = sin(x)``, ``dy/dx = cos(x)`` (periodic activations, as in SIREN-style nets).

    >>> import numpy as np, fnn
    >>> fnn.sine().apply({}, np.array([[0.0, np.pi / 2]]))
    array([[0., 1.]])
    """
    return _activation("sine")


def sinc() -> Layer:
    """Unnormalised ``sin(x) / x`` with ``sinc(0) = 1`` (``np.sinc`` is ``sin(pi x)/(pi x)``).

    Near 0 the value and the derivative use Taylor series, so there is no cancellation.

    >>> import numpy as np, fnn
    >>> fnn.sinc().apply({}, np.array([[0.0, np.pi]])).round(6)
    array([[1., 0.]])
    """
    return _activation("sinc")


def gaussian() -> Layer:
    """``exp(-x**2)``: 1 at 0, vanishing on both sides.

    >>> import numpy as np, fnn
    >>> fnn.gaussian().apply({}, np.array([[0.0, 1.0]])).round(4)
    array([[1.    , 0.3679]])
    """
    return _activation("gaussian")


def elu(alpha: float = 1.0) -> Layer:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``.

    >>> import numpy as np, fnn
    >>> fnn.elu().apply({}, np.array([[-1.0, 2.0]])).round(4)
    array([[-0.6321,  2.    ]])
    """
    return _activation("elu", alpha=real("elu", "alpha", alpha))


def gelu() -> Layer:
    """GELU, tanh approximation (PyTorch's ``approximate="tanh"``):
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> import numpy as np, fnn
    >>> fnn.gelu().apply({}, np.array([[-1.0, 0.0, 1.0]])).round(4)
    array([[-0.1588,  0.    ,  0.8412]])
    """
    forward = ACTIVATIONS["gelu"].forward

    def train(x, key):  # the compiled forward keeps its tanh for the backward
        y, t = gelu_saving_tanh(x)
        return y, lambda dy: gelu_vjp_of_tanh(x, y, t, dy)

    return parameter_free("gelu", forward, train=train, name="gelu", kind="gelu", config={})


def softmax() -> Layer:
    """Softmax over the last axis (max-shifted, no overflow): ``(N, ..., K)`` to the same shape,
    each row non-negative and summing to 1. To train a classifier, prefer raw logits with
    :func:`fnn.cross_entropy`.

    >>> import numpy as np, fnn
    >>> fnn.softmax().apply({}, np.array([[0.0, 0.0], [1000.0, 0.0]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    """
    return _activation("softmax", axis=-1)


def log_softmax() -> Layer:
    """``log(softmax(x))`` over the last axis, computed with log-sum-exp; pair it with
    :func:`fnn.nll`.

    >>> import numpy as np, fnn
    >>> fnn.log_softmax().apply({}, np.array([[0.0, 0.0]])).round(4)
    array([[-0.6931, -0.6931]])
    """
    return _activation("log_softmax", axis=-1)


__all__ = ["elementwise", "elu", "gaussian", "gelu", "identity", "leaky_relu", "log_softmax",
           "relu", "sigmoid", "sinc", "sine", "softmax", "softplus", "stable_sigmoid", "tanh"]
