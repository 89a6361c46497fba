"""Layers merging the tuple of branches that :func:`fnn.parallel` outputs: concatenate, add."""

from __future__ import annotations

import numpy as np

from fnn.checks import LayerError, fmt_shape
from fnn.core import Layer
from fnn.layers.base import parameter_free
from fnn.validate import integer


def _merge(label: str, shape, fn, back, kind: str, config: dict | None = None) -> Layer:
    """A parameter-free layer on a tuple of branches: ``y = fn(xs)``, branch gradients
    ``back(xs, dy)``, output shape ``shape(branch_shapes)``."""

    def branch_shapes(input_shape):
        if not isinstance(input_shape, tuple) or not input_shape or \
                not all(isinstance(s, tuple) for s in input_shape):
            raise LayerError(f"{label}: expects a tuple of branch shapes (put it after "
                             f"fnn.parallel), got {input_shape!r}")
        return shape(input_shape)

    def branches(xs):
        if not isinstance(xs, (tuple, list)) or not xs:
            raise LayerError(f"{label}: expects a tuple of arrays (the output of fnn.parallel)")
        return tuple(xs)

    return parameter_free(label, fn, lambda xs, y, dy: back(xs, dy), shape=branch_shapes,
                          check=branches, kind=kind, config=config)


def concatenate(axis: int = -1) -> Layer:
    """Merge a tuple of branches by concatenation along ``axis`` (default: features/channels).

    >>> import numpy as np, fnn
    >>> fnn.concatenate().apply({}, (np.zeros((2, 3)), np.ones((2, 1)))).shape
    (2, 4)
    """
    axis = integer("concatenate", "axis", axis)
    label = f"concatenate(axis={axis})"

    def shape(shapes):
        rank = len(shapes[0])
        ax = axis % rank
        others = {tuple(d for i, d in enumerate(s) if i not in (0, ax)) for s in shapes}
        if any(len(s) != rank for s in shapes) or len(others) != 1:
            raise LayerError(
                f"{label}: branches must agree on every axis but {axis}, got {fmt_shape(shapes)}"
            )
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out)

    def back(xs, dy):
        return tuple(np.split(dy, np.cumsum([x.shape[axis] for x in xs])[:-1], axis=axis))

    return _merge(label, shape, lambda xs: np.concatenate(xs, axis=axis), back, "concatenate",
                  {"axis": axis})


def add() -> Layer:
    """Merge a tuple of same-shaped branches by summing them.

    >>> import numpy as np, fnn
    >>> fnn.add().apply({}, (np.ones((1, 2)), np.full((1, 2), 2.0)))
    array([[3., 3.]])
    """

    def shape(shapes):
        if len({s[1:] for s in shapes}) != 1:
            raise LayerError(f"add: branches must have equal shapes, got {fmt_shape(shapes)}")
        return shapes[0]

    def total(xs):
        out = xs[0]
        for x in xs[1:]:
            if x.shape != out.shape:
                raise LayerError(f"add: branch shapes differ: {[x.shape for x in xs]}")
            out = out + x
        return out

    return _merge("add", shape, total, lambda xs, dy: (dy,) * len(xs), "add")


__all__ = ["add", "concatenate"]
