"""Layers that only move data around: flatten, reshape."""

from __future__ import annotations

import math

import numpy as np

from fnn.checks import LayerError, as_shape, fmt_shape
from fnn.core import Layer
from fnn.layers.base import parameter_free
from fnn.validate import is_int


def _reshaping(label: str, target, kind: str, config: dict | None = None) -> Layer:
    """A layer mapping ``(N, *in_shape) -> (N, *target(in_shape))`` by reshaping."""

    def check(x):
        if not isinstance(x, np.ndarray) or x.ndim < 1:
            raise LayerError(f"{label}: expected an array with a batch axis, got {type(x).__name__}")
        return x

    return parameter_free(label, lambda x: x.reshape(x.shape[0], *target(x.shape[1:])),
                          lambda x, y, dy: dy.reshape(x.shape), check=check,
                          shape=lambda s: (as_shape(label, s, 2)[0], *target(tuple(s)[1:])),
                          kind=kind, config=config)


def flatten() -> Layer:
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``, e.g. between conv layers and a linear head.

    >>> import numpy as np, fnn
    >>> fnn.flatten().init(None, (-1, 7, 7, 64))[0]
    (-1, 3136)
    >>> fnn.flatten().apply({}, np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """
    return _reshaping("flatten", lambda s: (math.prod(s),), "flatten")


def reshape(shape: tuple) -> Layer:
    """``(N, ...) -> (N, *shape)``; one entry of ``shape`` may be -1 (inferred).

    >>> import numpy as np, fnn
    >>> fnn.reshape((16, 16, 1)).init(None, (-1, 256))[0]
    (-1, 16, 16, 1)
    """
    shape = tuple(int(d) if is_int(d) else d for d in shape)
    label = f"reshape({fmt_shape(shape)[1:-1] if shape else ''})"
    if sum(d == -1 for d in shape) > 1 or not all(is_int(d) and (d > 0 or d == -1)
                                                  for d in shape):
        raise ValueError(f"{label}: at most one -1 and otherwise positive sizes, got {shape}")

    def target(in_shape):
        size = math.prod(in_shape)
        known = math.prod(d for d in shape if d != -1)
        if -1 in shape:
            if size % known:
                raise LayerError(
                    f"{label}: cannot reshape {fmt_shape((-1, *in_shape))} to "
                    f"{fmt_shape((-1, *shape))}: {size} is not a multiple of {known}"
                )
            return tuple(size // known if d == -1 else d for d in shape)
        if known != size:
            raise LayerError(
                f"{label}: cannot reshape {fmt_shape((-1, *in_shape))} ({size} values per sample) "
                f"to {fmt_shape((-1, *shape))} ({known} values)"
            )
        return shape

    return _reshaping(label, target, "reshape", {"shape": shape})
