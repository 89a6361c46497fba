"""The layers' argument parsing, with errors that name the layer: padding, layouts, and
:func:`geometry`, :func:`fnn.ops.geometry.window_geometry` with the layer's label. Sizes, kernel
sizes and strides are checked by :mod:`fnn.validate` (``positive_int``, ``int_tuple``); the
numerics (geometry, padding, windows, fold) live in :mod:`fnn.ops`.
"""

from __future__ import annotations

from fnn.checks import LayerError
from fnn.ops.geometry import Geometry, Pads, WindowError, window_geometry
from fnn.validate import is_int


def padding_arg(label: str, padding, nd: int, *, allow_same: bool = True) -> str | Pads:
    """``"valid"``, ``"same"``, an int, ``(lo, hi)`` (1-D), one int per axis or one
    ``(lo, hi)`` pair per axis, as ``"same"`` or a tuple of ``(lo, hi)`` pairs.

    >>> from fnn.layers.arguments import padding_arg
    >>> padding_arg("conv2d", 1, 2), padding_arg("conv1d", (0, 1), 1), padding_arg("c", "same", 1)
    (((1, 1), (1, 1)), ((0, 1),), 'same')
    """
    names = ("valid", "same") if allow_same else ("valid",)
    if isinstance(padding, str):
        if padding not in names:
            raise ValueError(f"{label}: padding must be one of {names} or ints, got {padding!r}")
        return "same" if padding == "same" else ((0, 0),) * nd
    try:
        if is_int(padding):
            pads = ((padding, padding),) * nd
        elif nd == 1 and len(padding) == 2 and all(is_int(p) for p in padding):
            pads = (tuple(padding),)
        elif len(padding) == nd and all(is_int(p) for p in padding):
            pads = tuple((p, p) for p in padding)
        else:
            pads = tuple((lo, hi) for lo, hi in padding)
    except (TypeError, ValueError):
        pads = ()
    if len(pads) != nd or not all(is_int(p) and p >= 0 for pair in pads for p in pair):
        raise ValueError(f"{label}: padding must be {' or '.join(repr(n) for n in names)}, an int "
                         f"or (lo, hi) pairs of non-negative ints for {nd} axes, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pads)


def layout(nd: int | None) -> str:
    """How a channels-last input with ``nd`` spatial axes (any number when None) is shaped,
    for error messages.

    >>> from fnn.layers.arguments import layout
    >>> layout(2), layout(None)
    ('(N, H, W, C)', '(N, *spatial, C)')
    """
    return {1: "(N, L, C)", 2: "(N, H, W, C)"}.get(nd or 0, "(N, *spatial, C)")


def geometry(label: str, sizes, kernel, stride, dilation, padding) -> Geometry:
    """:func:`fnn.ops.geometry.window_geometry` for the layer ``label``: its error names the layer.

    >>> from fnn.layers.arguments import geometry
    >>> geometry("max_pool1d(4)", (3,), (4,), (4,), (1,), ((0, 0),))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: max_pool1d(4): the kernel does not fit the input: spatial size 3 + padding 0 < 4 on axis 0 of the spatial shape (3,)
    """
    try:
        return window_geometry(sizes, kernel, stride, dilation, padding)
    except WindowError as err:
        raise LayerError(f"{label}: {err}") from None


__all__ = ["geometry", "layout", "padding_arg"]
