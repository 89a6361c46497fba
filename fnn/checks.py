"""Input validation shared by every layer: one place that words the errors.

Every error names the layer, the expected and the actual shape or dtype. Combinators prefix the
path of the sub-layer in the params tree (``[01_serial/02_linear] linear(10): ...``).
Use these helpers in your own layers (see the docs' how-to "Write a layer with params") so
their errors read like the built-in ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LayerError(ValueError):
    """A bad input, shape or params tree, reported with the path of the layer that saw it.

    ``params_message``: how to word the error when the input did not come from the user but
    from the layers before (a combinator knows): then it is the params that do not fit.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(8), fnn.tanh())
    >>> _, params = model.init(fnn.key(0), (-1, 4))
    >>> try:
    ...     model.apply(params, np.zeros((2, 5), np.float32))
    ... except fnn.LayerError as e:
    ...     print(e)
    [00_linear] linear(8): input (2, 5) does not fit params['w'] of shape (4, 8) (an input (N, 5) needs (5, 8))
    """

    def __init__(self, message: str, path: tuple[str, ...] = (), *,
                 params_message: str | None = None):
        self.message = message
        self.path = tuple(path)
        self.params_message = params_message
        super().__init__(f"[{'/'.join(self.path)}] {message}" if self.path else message)

    def within(self, name: str, *, input_from_model: bool = False) -> LayerError:
        """The same error seen from the combinator that holds this layer under ``name``;
        ``input_from_model``: the layer's input was computed by the layers before it, so an
        input that does not fit the params means params that do not fit each other.

        >>> from fnn.checks import LayerError
        >>> str(LayerError("linear(8): bad", ("00_linear",)).within("02_serial"))
        '[02_serial/00_linear] linear(8): bad'
        """
        if input_from_model and self.params_message:
            return LayerError(self.params_message, (name, *self.path))
        return LayerError(self.message, (name, *self.path), params_message=self.params_message)


def fmt_shape(shape: Any) -> str:
    """``(N, 64)`` for ``(-1, 64)`` / ``(None, 64)``: the batch entry reads as N.

    >>> from fnn.checks import fmt_shape
    >>> fmt_shape((-1, 28, 28, 1)), fmt_shape((None,))
    ('(N, 28, 28, 1)', '(N,)')
    """
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(fmt_shape(s) for s in shape) + ")"
    dims = ["N" if i == 0 and (d is None or d == -1) else str(d) for i, d in enumerate(shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def as_shape(layer: str, input_shape: Any, min_rank: int = 1) -> tuple:
    """Validate an ``input_shape`` passed to ``init``: a tuple of ints (batch entry may be None/-1).

    >>> from fnn.checks import as_shape
    >>> as_shape("mine", [-1, 64])
    (-1, 64)
    >>> as_shape("mine", (-1, 0))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: input_shape (N, 0) has a non-positive size
    """
    if isinstance(input_shape, list):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, tuple) or not all(
        d is None or isinstance(d, (int, np.integer)) for d in input_shape
    ):
        raise LayerError(f"{layer}: input_shape must be a tuple of ints, got {input_shape!r}")
    if len(input_shape) < min_rank:
        raise LayerError(
            f"{layer}: expects inputs of rank >= {min_rank} (batch first), "
            f"got input_shape {fmt_shape(input_shape)}"
        )
    if any(d is not None and d <= 0 for d in input_shape[1:]):
        raise LayerError(f"{layer}: input_shape {fmt_shape(input_shape)} has a non-positive size")
    return tuple(input_shape)


def float_input(layer: str, x: Any) -> np.ndarray:
    """``x`` as a floating-point array, or a clear error for integer/bool/object data.

    >>> import numpy as np
    >>> from fnn.checks import float_input
    >>> float_input("mine", [[1.0, 2.0]]).dtype
    dtype('float64')
    >>> float_input("mine", np.zeros((2, 3), np.int64))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: expected a floating-point array, got dtype int64 with shape (2, 3) (convert with x.astype(np.float32))
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise LayerError(
            f"{layer}: expected a floating-point array, got dtype {x.dtype} with shape "
            f"{x.shape} (convert with x.astype(np.float32))"
        )
    return x


_KINDS = {"float": "f", "int": "iu", "bool": "b"}
_HOW = {"float": "x.astype(np.float32)", "int": "ids.astype(np.int64)",
        "bool": "mask.astype(bool), True for real tokens"}


def _named(layer: str, inputs: tuple, i: int) -> str:
    """How an error names input ``i`` of a layer with several: ``"lstm(8): input 1 (h0)"``."""
    return layer if len(inputs) == 1 else f"{layer}: input {i} ({inputs[i].name})"


def input_shapes(layer: str, inputs: tuple, input_shape: Any) -> Any:
    """``init``'s ``input_shape`` for a layer declaring ``inputs`` (:class:`fnn.Input` s):
    one shape for one input, else a tuple of one shape per input; each checked (ints, ranks).

    >>> import fnn
    >>> from fnn.checks import input_shapes
    >>> ins = (fnn.Input("x", rank=3), fnn.Input("mask", "bool", rank=2))
    >>> input_shapes("mine", ins, [(-1, 5, 4), (-1, 5)])
    ((-1, 5, 4), (-1, 5))
    >>> input_shapes("mine", ins, (-1, 5, 4))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: takes 2 inputs (x, mask): input_shape must be a tuple of 2 shapes, got (-1, 5, 4)
    """
    if len(inputs) == 1:
        return _one_shape(layer, inputs[0], input_shape)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != len(inputs) or \
            not all(isinstance(s, (tuple, list)) for s in input_shape):
        names = ", ".join(spec.name for spec in inputs)
        raise LayerError(f"{layer}: takes {len(inputs)} inputs ({names}): input_shape must be "
                         f"a tuple of {len(inputs)} shapes, got {input_shape!r:.200}")
    return tuple(_one_shape(_named(layer, inputs, i), spec, s)
                 for i, (spec, s) in enumerate(zip(inputs, input_shape)))


def _one_shape(label: str, spec: Any, shape: Any) -> tuple:
    shape = as_shape(label, shape, min_rank=spec.rank or 1)
    if spec.rank is not None and len(shape) != spec.rank:
        raise LayerError(f"{label}: expects shapes of rank {spec.rank} (batch first), got "
                         f"input_shape {fmt_shape(shape)}")
    return shape


def check_inputs(layer: str, inputs: tuple, x: Any) -> Any:
    """``x`` checked against the :class:`fnn.Input` s a layer declares: the array itself for
    one input, else a tuple of arrays, each of its kind (float, int, bool) and rank, with one
    batch size. Errors name the input (``"input 1 (mask)"``).

    >>> import numpy as np, fnn
    >>> from fnn.checks import check_inputs
    >>> ins = (fnn.Input("x", rank=3), fnn.Input("mask", "bool", rank=2))
    >>> check_inputs("mine", ins, (np.zeros((2, 5, 4)), np.ones((2, 5))))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: input 1 (mask): expected a bool array, got dtype float64 with shape (2, 5) (convert with mask.astype(bool), True for real tokens)
    """
    if len(inputs) == 1:
        return _one_input(layer, inputs[0], x)
    if not isinstance(x, (tuple, list)) or len(x) != len(inputs):
        names = ", ".join(spec.name for spec in inputs)
        got = f"a {type(x).__name__} of {len(x)}" if isinstance(x, (tuple, list)) else \
            f"{type(x).__name__} {getattr(x, 'shape', '')}"
        raise LayerError(f"{layer}: takes a tuple of {len(inputs)} arrays ({names}), got {got}")
    xs = tuple(_one_input(_named(layer, inputs, i), spec, xi)
               for i, (spec, xi) in enumerate(zip(inputs, x)))
    sizes = [len(xi) for xi in xs]
    if len(set(sizes)) > 1:
        raise LayerError(f"{layer}: inputs must share the batch size, got "
                         + ", ".join(f"{spec.name} {xi.shape}" for spec, xi in zip(inputs, xs)))
    return xs


def _one_input(label: str, spec: Any, x: Any) -> np.ndarray:
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype.kind not in _KINDS[spec.kind]:
        article = "an" if spec.kind == "int" else "a"
        kind = "integer" if spec.kind == "int" else \
            "floating-point" if spec.kind == "float" else spec.kind
        raise LayerError(f"{label}: expected {article} {kind} array, got dtype {x.dtype} with "
                         f"shape {x.shape} (convert with {_HOW[spec.kind]})")
    if x.ndim < (spec.rank or 1) or (spec.rank is not None and x.ndim != spec.rank):
        raise LayerError(f"{label}: expects arrays of rank {spec.rank or '>= 1'} (batch "
                         f"first), got shape {x.shape}")
    return x


def check_trailing(layer: str, x: np.ndarray, trailing: tuple) -> None:
    """Check that ``x.shape`` is ``(N, *trailing)``.

    >>> import numpy as np
    >>> from fnn.checks import check_trailing
    >>> check_trailing("mine", np.zeros((5, 3)), (3,))       # fine: returns None
    >>> check_trailing("mine", np.zeros((5, 4)), (3,))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: expected input of shape (N, 3), got (5, 4)
    """
    if x.shape[1:] != trailing:
        raise LayerError(
            f"{layer}: expected input of shape {fmt_shape((-1, *trailing))}, got {x.shape}"
        )


def param_keys(layer: str, params: Any, names, what: str = "params") -> None:
    """``params`` must be a dict with exactly the keys ``names``: an error naming the missing
    and unexpected ones (``what``: how to call the tree, e.g. ``"state"``).

    >>> from fnn.checks import param_keys
    >>> param_keys("mine", {"w": 1, "bias": 2}, ("w", "b"))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: params should have keys ['b', 'w']; missing ['b']; unexpected ['bias']
    """
    if not isinstance(params, dict):
        raise LayerError(f"{layer}: {what} should be a dict with keys {sorted(names)}, got "
                         f"{type(params).__name__}")
    if len(params) != len(names) or any(n not in params for n in names):
        missing = sorted(n for n in names if n not in params)
        unexpected = sorted(str(k) for k in params if k not in names)
        raise LayerError(f"{layer}: {what} should have keys {sorted(names)}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; unexpected {unexpected}" if unexpected else ""))


def param(layer: str, params: Any, name: str, shape: tuple | None = None,
          what: str = "params") -> np.ndarray:
    """``params[name]``, or an error naming the missing key / wrong shape / non-float dtype
    (``what``: how to call the tree, e.g. ``"state"``).

    >>> import numpy as np
    >>> from fnn.checks import param
    >>> param("mine", {"w": np.zeros((3, 2))}, "w", (3, 2)).shape
    (3, 2)
    >>> param("mine", {"w": np.zeros((3, 2))}, "b")
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: mine: params should have key 'b', got ['w']
    """
    try:
        value = params[name]
    except (KeyError, TypeError, IndexError):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise LayerError(f"{layer}: {what} should have key {name!r}, got {got}") from None
    dtype = getattr(value, "dtype", None)
    if dtype is None or dtype.kind != "f":
        raise LayerError(f"{layer}: {what}[{name!r}] should be a floating-point array, got "
                         f"{dtype if dtype is not None else type(value).__name__}")
    if shape is not None and np.shape(value) != shape:
        raise LayerError(
            f"{layer}: {what}[{name!r}] should have shape {shape}, got {np.shape(value)}"
        )
    return value


def no_params(layer: str, params: Any) -> None:
    """Check that a parameter-free layer was given ``params == {}`` (or ``None``).

    >>> from fnn.checks import no_params
    >>> no_params("tanh", {})                               # fine: returns None
    >>> no_params("tanh", {"w": 1})
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: tanh: has no parameters and expects params == {}, got {'w': 1}
    """
    if params is not None and not (isinstance(params, (dict, tuple)) and len(params) == 0):
        raise LayerError(f"{layer}: has no parameters and expects params == {{}}, got {params!r:.80}")


__all__ = ["LayerError", "as_shape", "check_inputs", "check_trailing", "float_input",
           "input_shapes", "fmt_shape", "no_params",
           "param", "param_keys"]
