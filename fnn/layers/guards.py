"""Guards around the maths of a user's :func:`fnn.layer`: what it returns is checked against
the contract, with errors naming the layer, the key, the expected and the actual value.

* ``init`` must return ``(output_shape, params)`` (``(output_shape, params, state)`` when
  stateful), a shape tuple and dicts (checked for every layer: init runs rarely);
* ``forward`` and ``apply`` see ``x`` read-only: one that modifies it in place (``x *= 2``)
  is stopped before it changes the caller's data (which the pullback also keeps);
* ``backward`` must give each gradient its param's shape (a ``(1, D)`` gradient for a ``(D,)``
  bias would silently turn the bias into ``(1, D)``), the same keys, and ``dx`` of ``x``'s shape.

fnn's own layers are not guarded (their forward is not wrapped), so their hot path is as lean
as before.

>>> import numpy as np, fnn
>>> def bad_init(key, shape):
...     return {"s": np.ones(shape[-1:])}
>>> mine = fnn.layer("mine", bad_init, lambda p, x: (x, x), lambda p, s, dy, g: ({}, dy))
>>> mine.init(fnn.key(0), (-1, 3))
Traceback (most recent call last):
...
fnn.checks.LayerError: mine: init must return (output_shape, params), got a dict
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnn.checks import LayerError, fmt_shape

__all__ = ["guarded", "guarded_apply", "init_result"]


def _what(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"a {type(value).__name__}"


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, tuple) and all(d is None or isinstance(d, (int, np.integer))
                                            for d in shape)


def init_result(label: str, out: Any, stateful: bool) -> Any:
    """``out`` if it is what a layer's ``init`` returns, else a :class:`LayerError`."""
    want = "(output_shape, params, state)" if stateful else "(output_shape, params)"
    if not isinstance(out, tuple) or len(out) != (3 if stateful else 2):
        raise LayerError(f"{label}: init must return {want}, got {_what(out)}")
    shape = out[0]
    if not _is_shape(shape) and not (isinstance(shape, tuple) and shape
                                     and all(_is_shape(s) for s in shape)):
        raise LayerError(f"{label}: init must return {want}; its output_shape must be a tuple "
                         f"of ints (batch first), or one per output, got {shape!r:.80}")
    for name, tree in zip(("params", "state"), out[1:]):
        if not isinstance(tree, dict):
            raise LayerError(f"{label}: init must return {want}; its {name} must be a dict of "
                             f"arrays, got {_what(tree)}")
    return out


def _read_only(x: Any) -> Any:
    """A read-only view of ``x`` (of each array of a tuple of inputs)."""
    if isinstance(x, tuple):
        return tuple(_read_only(e) for e in x)
    if not isinstance(x, np.ndarray):
        return x
    view = x.view()
    view.flags.writeable = False
    return view


def _in_place(label: str, where: str, err: ValueError) -> LayerError:
    return LayerError(f"{label}: {where} modified its input x in place ({err}); x is the "
                      "caller's data, and the pullback keeps it: compute a new array instead "
                      "(x = x * 2, not x *= 2)")


def _call(label: str, where: str, fn: Callable, params: Any, x: np.ndarray, *rest: Any) -> Any:
    try:
        return fn(params, _read_only(x), *rest)
    except ValueError as err:
        if "read-only" in str(err):
            raise _in_place(label, where, err) from None
        raise


def guarded_apply(label: str, apply: Callable) -> Callable:
    """``apply`` seeing ``x`` read-only."""

    def checked_apply(params, x, *rest):
        return _call(label, "apply", apply, params, x, *rest)

    return checked_apply


def guarded(label: str, forward: Callable, backward: Callable,
            stateful: bool) -> tuple[Callable, Callable]:
    """``(forward, backward)`` checked: ``x`` read-only in the forward pass, the gradients of
    the backward pass against the params' keys and shapes and ``dx`` against ``x``'s shape."""

    def checked_forward(params, x, *rest):
        out = _call(label, "forward", forward, params, x, *rest)
        if not isinstance(out, tuple) or len(out) != (3 if stateful else 2):
            want = "(y, saved, new_state)" if stateful else "(y, saved)"
            raise LayerError(f"{label}: forward must return {want}, got {_what(out)}")
        # dx is checked for one float input (ids have no dx; tuples are checked per layer)
        x_shape = x.shape if isinstance(x, np.ndarray) and x.dtype.kind == "f" else None
        return (out[0], (out[1], x_shape), *out[2:])

    def checked_backward(params, saved, dy, input_grad):
        inner, x_shape = saved
        out = backward(params, inner, dy, input_grad)
        if not isinstance(out, tuple) or len(out) != 2:
            raise LayerError(f"{label}: backward must return (dparams, dx), got {_what(out)}")
        grads, dx = out
        check_grads(label, params, grads)
        if input_grad and x_shape is not None and np.shape(dx) != x_shape:
            raise LayerError(f"{label}: backward returned dx of shape {np.shape(dx)} for an "
                             f"input of shape {x_shape}; dx must have the input's shape")
        return grads, dx

    return checked_forward, checked_backward


def check_grads(label: str, params: Any, grads: Any) -> None:
    """``grads`` must have ``params``' keys, each an array of its param's shape.

    >>> import numpy as np
    >>> from fnn.layers.guards import check_grads
    >>> check_grads("mine", {"b": np.zeros(3)}, {"b": np.zeros((1, 3))})
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: backward returned grads['b'] of shape (1, 3) for params['b'] of shape (3,); each gradient must have its param's shape (sum over the batch axis without keepdims)
    """
    if not isinstance(grads, dict) or set(grads) != set(params):
        got = sorted(grads) if isinstance(grads, dict) else _what(grads)
        raise LayerError(f"{label}: backward must return grads with the params' keys "
                         f"{sorted(params)}, got {got}")
    for k, p in params.items():
        g = grads[k]
        if np.shape(g) != np.shape(p):
            raise LayerError(
                f"{label}: backward returned grads[{k!r}] of shape {fmt_shape(np.shape(g))} "
                f"for params[{k!r}] of shape {fmt_shape(np.shape(p))}; each gradient must "
                "have its param's shape (sum over the batch axis without keepdims)")
