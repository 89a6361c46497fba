"""The layers' argument parsing, with errors that name the layer: sizes, kernel sizes,
strides, padding; and :func:`geometry`, :func:`fnn.ops.windows.geometry` with the layer's label.
The numerics (geometry, padding, windows, fold) live in :mod:`fnn.ops.windows`.
"""

from __future__ import annotations

import numpy as np

from fnn.checks import LayerError
from fnn.ops.windows import Geometry, Pads, WindowError
from fnn.ops.windows import geometry as ops_geometry


def positive_int(label: str, name: str, value) -> int:
    """``value`` if it is a positive int, else a ``ValueError`` naming the layer and argument.

    >>> from fnn.layers.arguments import positive_int
    >>> positive_int("linear", "out_dim", 0)
    Traceback (most recent call last):
    ...
    ValueError: linear: out_dim must be a positive int, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{label}: {name} must be a positive int, got {value!r}")
    return int(value)


def int_tuple(label: str, name: str, value, nd: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or ``nd`` ints) as an ``nd``-tuple of ints ``>= minimum``."""
    values = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != nd or not all(isinstance(v, (int, np.integer)) and v >= minimum
                                    for v in values):
        raise ValueError(f"{label}: {name} must be an int >= {minimum} or {nd} of them, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def padding_arg(label: str, padding, nd: int, *, allow_same: bool = True) -> str | Pads:
    """``"valid"``, ``"same"``, an int, ``(lo, hi)`` (1-D), one int per axis or one
    ``(lo, hi)`` pair per axis, as ``"same"`` or a tuple of ``(lo, hi)`` pairs."""
    names = ("valid", "same") if allow_same else ("valid",)
    if isinstance(padding, str):
        if padding not in names:
            raise ValueError(f"{label}: padding must be one of {names} or ints, got {padding!r}")
        return "same" if padding == "same" else ((0, 0),) * nd
    try:
        if isinstance(padding, (int, np.integer)):
            pads = ((padding, padding),) * nd
        elif nd == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
            pads = (tuple(padding),)
        elif len(padding) == nd and all(isinstance(p, (int, np.integer)) for p in padding):
            pads = tuple((p, p) for p in padding)
        else:
            pads = tuple((lo, hi) for lo, hi in padding)
    except (TypeError, ValueError):
        pads = ()
    if len(pads) != nd or not all(isinstance(p, (int, np.integer)) and p >= 0
                                  for pair in pads for p in pair):
        raise ValueError(f"{label}: padding must be {' or '.join(repr(n) for n in names)}, an int "
                         f"or (lo, hi) pairs of non-negative ints for {nd} axes, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pads)


def layout(nd: int | None) -> str:
    """How a channels-last input with ``nd`` spatial axes (any number when None) is shaped,
    for error messages."""
    return {1: "(N, L, C)", 2: "(N, H, W, C)"}.get(nd, "(N, *spatial, C)")


def geometry(label: str, sizes, kernel, stride, dilation, padding) -> Geometry:
    """:func:`fnn.ops.windows.geometry` for the layer ``label``: its error names the layer."""
    try:
        return ops_geometry(sizes, kernel, stride, dilation, padding)
    except WindowError as err:
        raise LayerError(f"{label}: {err}") from None


__all__ = ["geometry", "int_tuple", "layout", "padding_arg", "positive_int"]
