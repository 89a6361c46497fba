"""Weight initialisers: ``init(key, shape, dtype=np.float32) -> array``.

Fan-in / fan-out follow the usual convention (as in PyTorch and JAX):

* linear weights ``(D_in, D_out)``: ``fan_in = D_in``, ``fan_out = D_out``;
* conv kernels ``(*kernel, C_in, C_out)``: ``fan_in = C_in * prod(kernel)``,
  ``fan_out = C_out * prod(kernel)`` (each output sees ``C_in * prod(kernel)`` inputs);
* vectors (biases) ``(D,)``: ``fan_in = fan_out = D``.

Formulas (the report's): Xavier/Glorot normal ``std = sqrt(2 / (fan_in + fan_out))``, Xavier
uniform ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``; He/Kaiming normal
``std = sqrt(2 / fan_in)``, He uniform ``a = sqrt(6 / fan_in)``; LeCun normal
``std = sqrt(1 / fan_in)``. ``normal(stddev=1)`` and ``uniform(scale=1)`` (``U(-scale, scale)``)
ignore the fans; ``ones`` and ``zeros`` are constant.

Every name in :data:`NAMES` is also accepted as a string wherever an initialiser is expected::

    >>> import fnn
    >>> w = fnn.initializers.get("he_normal")(fnn.key(0), (256, 100))
    >>> w.shape, w.dtype
    ((256, 100), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator

import numpy as np

Initializer = Callable[..., np.ndarray]
_SHAPES_ONLY = contextvars.ContextVar("fnn_initializers_shapes_only", default=False)


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Inside, fnn's initialisers return read-only zero-strided zeros of the right shape and
    dtype, drawing nothing and allocating nothing: how :func:`fnn.layer` learns the params
    shapes ``init`` gives for an input, even for a layer of millions of weights.

    >>> import fnn
    >>> with fnn.initializers.shapes_only():
    ...     w = fnn.initializers.get("he_normal")(fnn.key(0), (4096, 4096))
    >>> w.shape, w.strides
    ((4096, 4096), (0, 0))
    """
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def _placeholder(shape, dtype) -> np.ndarray | None:
    return np.broadcast_to(np.zeros((), dtype), tuple(shape)) if _SHAPES_ONLY.get() else None


def fans(shape: tuple) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape (see the module docstring).

    >>> from fnn.initializers import fans
    >>> fans((256, 100)), fans((3, 3, 16, 32)), fans((10,))
    ((256, 100), (144, 288), (10, 10))
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _draw(kind: str, scale: Callable[[int, int], float]) -> Initializer:
    def init(key, shape, dtype=np.float32):
        fake = _placeholder(shape, dtype)
        if fake is not None:
            return fake
        s = scale(*fans(tuple(shape)))
        gen = np.random.default_rng(key)
        if kind == "normal":
            w = gen.standard_normal(shape) * s
        else:
            w = gen.uniform(-s, s, shape)
        return w.astype(dtype, copy=False)

    return init


def normal(stddev: float = 1.0) -> Initializer:
    """``N(0, stddev**2)``, whatever the fans.

    >>> import fnn
    >>> w = fnn.initializers.normal(0.01)(fnn.key(0), (1000, 100))
    >>> w.shape, w.dtype, round(float(w.std()), 3)
    ((1000, 100), dtype('float32'), 0.01)
    """
    return _draw("normal", lambda fi, fo: stddev)


def uniform(scale: float = 1.0) -> Initializer:
    """``U(-scale, scale)``, whatever the fans.

    >>> import fnn
    >>> w = fnn.initializers.uniform(0.5)(fnn.key(0), (100, 10))
    >>> bool(w.min() >= -0.5 and w.max() <= 0.5)
    True
    """
    return _draw("uniform", lambda fi, fo: scale)


def constant(value: float) -> Initializer:
    """Every entry equal to ``value`` (the key is ignored).

    >>> import fnn
    >>> fnn.initializers.constant(0.1)(fnn.key(0), (2,))
    array([0.1, 0.1], dtype=float32)
    """
    def init(key, shape, dtype=np.float32):
        fake = _placeholder(shape, dtype)
        return np.full(shape, value, dtype=dtype) if fake is None else fake

    return init


def zeros() -> Initializer:
    """All zeros (biases' default).

    >>> import numpy as np, fnn
    >>> fnn.initializers.zeros()(fnn.key(0), (2, 2), np.float64)
    array([[0., 0.],
           [0., 0.]])
    """
    return constant(0.0)


def ones() -> Initializer:
    """All ones.

    >>> import fnn
    >>> fnn.initializers.ones()(fnn.key(0), (3,))
    array([1., 1., 1.], dtype=float32)
    """
    return constant(1.0)


def xavier_normal() -> Initializer:
    """Glorot normal: ``std = sqrt(2 / (fan_in + fan_out))``.

    >>> import fnn
    >>> w = fnn.initializers.xavier_normal()(fnn.key(0), (300, 200))   # std sqrt(2/500)
    >>> round(float(w.std()), 3)
    0.063
    """
    return _draw("normal", lambda fi, fo: math.sqrt(2.0 / (fi + fo)))


def xavier_uniform() -> Initializer:
    """Glorot uniform: ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``.

    >>> import fnn
    >>> w = fnn.initializers.xavier_uniform()(fnn.key(0), (300, 300))  # a = 0.1
    >>> bool(abs(w).max() <= 0.1), round(float(abs(w).max()), 2)
    (True, 0.1)
    """
    return _draw("uniform", lambda fi, fo: math.sqrt(6.0 / (fi + fo)))


def he_normal() -> Initializer:
    """Kaiming normal: ``std = sqrt(2 / fan_in)`` (for ReLU nets).

    >>> import fnn
    >>> w = fnn.initializers.he_normal()(fnn.key(0), (3, 3, 32, 64))   # fan_in = 288
    >>> round(float(w.std()), 3)
    0.083
    """
    return _draw("normal", lambda fi, fo: math.sqrt(2.0 / fi))


def he_uniform() -> Initializer:
    """Kaiming uniform: ``U(-a, a)``, ``a = sqrt(6 / fan_in)``.

    >>> import fnn
    >>> w = fnn.initializers.he_uniform()(fnn.key(0), (600, 100))      # a = 0.1
    >>> bool(abs(w).max() <= 0.1)
    True
    """
    return _draw("uniform", lambda fi, fo: math.sqrt(6.0 / fi))


def lecun_normal() -> Initializer:
    """LeCun normal: ``std = sqrt(1 / fan_in)`` (for SELU / tanh nets).

    >>> import fnn
    >>> w = fnn.initializers.lecun_normal()(fnn.key(0), (400, 300))    # std 0.05
    >>> round(float(w.std()), 3)
    0.05
    """
    return _draw("normal", lambda fi, fo: math.sqrt(1.0 / fi))


NAMES: dict[str, Callable[[], Initializer]] = {
    "normal": normal,
    "uniform": uniform,
    "ones": ones,
    "zeros": zeros,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
}


def get(init: str | Initializer) -> Initializer:
    """An initialiser from its name (see :data:`NAMES`) or a callable ``(key, shape, dtype)``.

    >>> import fnn
    >>> fnn.initializers.get("zeros")(fnn.key(0), (2,))
    array([0., 0.], dtype=float32)
    >>> fnn.initializers.get("glorot")
    Traceback (most recent call last):
    ...
    ValueError: unknown initialiser 'glorot'; choose one of ['he_normal', 'he_uniform', 'lecun_normal', 'normal', 'ones', 'uniform', 'xavier_normal', 'xavier_uniform', 'zeros'] or a callable
    """
    if callable(init):
        return init
    if isinstance(init, str) and init in NAMES:
        return NAMES[init]()
    raise ValueError(f"unknown initialiser {init!r}; choose one of {sorted(NAMES)} or a callable")


__all__ = [
    "NAMES", "Initializer", "constant", "fans", "get", "he_normal", "he_uniform", "lecun_normal",
    "normal", "ones", "shapes_only", "uniform", "xavier_normal", "xavier_uniform", "zeros",
]
