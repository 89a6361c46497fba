"""Two builders, so that a layer is its maths plus a few lines: :func:`layer` for layers with
params (and, optionally, state), :func:`parameter_free` for the rest.

Both produce the contract of :class:`fnn.Layer`: ``apply`` for inference, ``vjp`` for
training whose pullback skips ``dx`` when ``input_grad=False``. They check every input once,
the same way for every layer (a floating-point array, params with the keys and shapes ``init``
gives for that input), and word the errors with the layer's label and the params path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import numpy as np

from fnn.checks import (
    LayerError,
    as_shape,
    check_inputs,
    float_input,
    fmt_shape,
    input_shapes,
    no_params,
    param,
    param_keys,
)
from fnn.core import NO_CONFIG, Decoder, Input, Layer
from fnn.initializers import shapes_only
from fnn.keys import key as make_key


def _frozen(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A layer's ``config`` as a read-only mapping (:data:`fnn.core.NO_CONFIG` when empty).

    >>> from fnn.layers.base import _frozen
    >>> dict(_frozen({"rate": 0.5})), len(_frozen(None))
    ({'rate': 0.5}, 0)
    """
    return MappingProxyType(dict(config)) if config else NO_CONFIG


def _matches(tree: Any, spec: dict) -> bool:
    """Whether ``tree`` is a dict with the keys of ``spec`` holding floating-point arrays of
    its shapes (the usual case, checked without wording anything)."""
    if type(tree) is not dict or len(tree) != len(spec):
        return False
    for k, shape in spec.items():
        value = tree.get(k)
        if type(value) is not np.ndarray or value.shape != shape or value.dtype.kind != "f":
            return False
    return True


def _flat(label: str, what: str, tree: Any, spec: dict, x_shape: tuple) -> None:
    """``tree`` must be a dict with the keys of ``spec`` and floating-point arrays of its
    shapes: the full check, wording what is wrong (callers try :func:`_matches` first)."""
    param_keys(label, tree, tuple(spec), what)
    batchless = fmt_shape(tuple((-1, *s[1:]) for s in x_shape) if x_shape and
                          isinstance(x_shape[0], tuple) else (-1, *x_shape[1:]))
    for k, shape in spec.items():
        value = param(label, tree, k, what=what)  # a floating-point array
        if value.shape != shape:
            raise LayerError(
                f"{label}: input {x_shape} does not fit {what}[{k!r}] of shape {value.shape} "
                f"(an input {batchless} needs {shape})",
                params_message=f"{label}: {what}[{k!r}] has shape {value.shape}, but the layer "
                f"before it gives inputs {x_shape}, which need {what}[{k!r}] of shape {shape}: "
                f"the params do not fit the model")


def layer(label: str, init: Callable, forward: Callable, backward: Callable, *,
          apply: Callable | None = None, stateful: bool = False, name: str | None = None,
          min_rank: int = 2, kind: str | None = None,
          config: Mapping[str, Any] | None = None,
          inputs: Sequence[Input] | None = None, decode: Decoder | None = None,
          random: bool = False) -> Layer:
    """A :class:`fnn.Layer` from its maths. Params (and state) are flat dicts of arrays.

    * ``init(key, input_shape) -> (output_shape, params)`` (``input_shape`` is checked to be a
      tuple of at least ``min_rank`` positive sizes, batch first);
    * ``forward(params, x) -> (y, saved)``: the training pass, keeping what the backward needs;
    * ``backward(params, saved, dy, input_grad) -> (dparams, dx)``, ``dx`` only when
      ``input_grad`` (else ``None``: the model's first layer is fed data);
    * ``apply(params, x) -> y``: inference, ``forward(params, x)[0]`` when not given.

    With ``stateful=True`` (running statistics, see :func:`fnn.batch_norm`): ``init`` returns
    ``(output_shape, params, state)``, ``forward(params, x, state) -> (y, saved, new_state)``
    and ``apply(params, x, state) -> y`` is required; the layer's ``vjp`` then returns
    ``(y, pullback, new_state)``.

    Every call checks ``x`` (a float array) and the params (and state): the keys and shapes
    that ``init`` gives for an input of ``x``'s shape (worked out once per shape, without
    drawing random numbers); errors name the layer, the key, the expected and actual shapes.

    ``inputs``: the layer's :class:`fnn.Input` s when it is not fed one float array of rank
    >= ``min_rank``: integer token ids (``(Input("ids", "int", rank=2),)``), or a tuple
    such as ``(x, mask)``; ``init`` then gets a tuple of shapes, ``forward``/``apply`` the
    checked tuple, ``backward`` returns a tuple ``dx`` (None for non-float inputs).
    ``decode``: how the layer runs one time step (:class:`fnn.core.Decoder`, generation).
    ``random=True`` (stateless layers): the training pass draws random numbers, so
    ``forward(params, x, key)`` gets ``vjp``'s key (None in ``apply``).

    >>> import numpy as np, fnn
    >>> def scale(n):                 # y = x * s, one learned factor per feature
    ...     def init(key, shape):
    ...         return shape, {"s": np.ones(shape[-1:], np.float32)}
    ...     def forward(params, x):
    ...         return x * params["s"], x
    ...     def backward(params, x, dy, input_grad):
    ...         ds = (dy * x).reshape(-1, x.shape[-1]).sum(0)
    ...         return {"s": ds}, dy * params["s"] if input_grad else None
    ...     return fnn.layer(f"scale({n})", init, forward, backward)
    >>> _, params = scale(3).init(fnn.key(0), (-1, 3))
    >>> scale(3).apply(params, np.ones((2, 3)))
    array([[1., 1., 1.],
           [1., 1., 1.]])
    >>> max(fnn.gradcheck(scale(3), params, np.ones((2, 3))).values()) < 1e-6
    True
    """
    declared = tuple(inputs or ())

    def checked_init(key, input_shape):
        if declared:
            return init(key, input_shapes(label, declared, input_shape))
        return init(key, as_shape(label, input_shape, min_rank=min_rank))

    check = _declared_checker(label, checked_init, declared, stateful) if declared else \
        _checker(label, checked_init, min_rank, stateful)
    if stateful:
        if apply is None:
            raise TypeError(f"{label}: a stateful layer needs its own apply(params, x, state)")
        apply_fn, vjp = _stateful_pair(check, forward, backward, apply)
    else:
        apply_fn, vjp = _stateless_pair(check, forward, backward, apply, random)
    return Layer(checked_init, apply_fn, vjp, name or label.split("(")[0], label,
                 stateful=stateful, kind=kind, config=_frozen(config), inputs=declared,
                 decode=decode)


def _checker(label: str, checked_init: Callable, min_rank: int, stateful: bool) -> Callable:
    """``check(params, x, state=None) -> x`` of :func:`layer`: ``x`` a float array of rank
    >= ``min_rank``, params (and state) with the keys and shapes ``checked_init`` gives for
    inputs of ``x``'s shape (worked out once per shape, without drawing random numbers)."""
    specs: dict[tuple, tuple] = {}
    lock = threading.Lock()

    def spec(x_shape):
        """The params (and state) shapes ``init`` gives for inputs like ``x``: once per shape."""
        tail = x_shape[1:]
        found = specs.get(tail)
        if found is None:
            with shapes_only():
                out = checked_init(make_key(0), (-1, *tail))
            found = tuple({k: np.shape(v) for k, v in tree.items()} for tree in out[1:])
            with lock:
                if len(specs) > 64:
                    specs.clear()
                specs[tail] = found
        return found

    def check(params, x, state=None):
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            x = float_input(label, x)
        if x.ndim < min_rank:
            raise LayerError(f"{label}: expects inputs of rank >= {min_rank} (batch first), "
                             f"got {x.shape}")
        found = specs.get(x.shape[1:]) or spec(x.shape)
        if not _matches(params, found[0]):
            _flat(label, "params", params, found[0], x.shape)
        if stateful:
            if state is None:
                raise LayerError(f"{label}: has state (running statistics): pass state=, "
                                 "the third value of init")
            if not _matches(state, found[1]):
                _flat(label, "state", state, found[1], x.shape)
        return x

    return check


def _specs_of(checked_init: Callable) -> Callable:
    """``spec(tails) -> (params shapes, state shapes)`` for inputs whose shapes without the
    batch axis are ``tails`` (a tuple per input), worked out once per shape."""
    specs: dict[tuple, tuple] = {}
    lock = threading.Lock()

    def spec(tails):
        found = specs.get(tails)
        if found is None:
            shapes = tuple((-1, *t) for t in tails)
            with shapes_only():
                out = checked_init(make_key(0), shapes if len(shapes) > 1 else shapes[0])
            found = tuple({k: np.shape(v) for k, v in tree.items()} for tree in out[1:])
            with lock:
                if len(specs) > 64:
                    specs.clear()
                specs[tails] = found
        return found

    return spec


def _declared_checker(label: str, checked_init: Callable, inputs: tuple,
                      stateful: bool) -> Callable:
    """:func:`_checker` for a layer declaring its ``inputs``: each input of its kind and rank
    (:func:`fnn.checks.check_inputs`), params fitting all of their shapes."""
    spec = _specs_of(checked_init)
    several = len(inputs) > 1

    def check(params, x, state=None):
        x = check_inputs(label, inputs, x)
        shapes = tuple(xi.shape for xi in x) if several else (x.shape,)
        found = spec(tuple(s[1:] for s in shapes))
        if not _matches(params, found[0]):
            _flat(label, "params", params, found[0], shapes if several else shapes[0])
        if stateful:
            if state is None:
                raise LayerError(f"{label}: has state: pass state=, the third value of init")
            if not _matches(state, found[1]):
                _flat(label, "state", state, found[1], shapes if several else shapes[0])
        return x

    return check


def _stateful_pair(check: Callable, forward: Callable, backward: Callable,
                   apply: Callable) -> tuple[Callable, Callable]:
    """``(apply, vjp)`` of a stateful :func:`layer`."""

    def apply_fn(params, x, *, state=None):
        return apply(params, check(params, x, state), state)

    def vjp(params, x, *, key=None, state=None, input_grad=True):
        y, saved, new_state = forward(params, check(params, x, state), state)
        return y, lambda dy: backward(params, saved, dy, input_grad), new_state

    return apply_fn, vjp


def _stateless_pair(check: Callable, forward: Callable, backward: Callable,
                    apply: Callable | None, random: bool = False) -> tuple[Callable, Callable]:
    """``(apply, vjp)`` of a :func:`layer` without state."""
    if random:
        def apply_random(params, x):
            x = check(params, x)
            return forward(params, x, None)[0] if apply is None else apply(params, x)

        def vjp_random(params, x, *, key=None, input_grad=True):
            y, saved = forward(params, check(params, x), key)
            return y, lambda dy: backward(params, saved, dy, input_grad)

        return apply_random, vjp_random

    def apply_fn(params, x):
        x = check(params, x)
        return forward(params, x)[0] if apply is None else apply(params, x)

    def vjp(params, x, *, key=None, input_grad=True):
        y, saved = forward(params, check(params, x))
        return y, lambda dy: backward(params, saved, dy, input_grad)

    return apply_fn, vjp


def parameter_free(label: str, fn: Callable, back: Callable | None = None, *,
                   train: Callable | None = None, shape: Callable | None = None,
                   name: str | None = None, check: Callable | None = None,
                   min_rank: int = 1, kind: str | None = None,
                   config: Mapping[str, Any] | None = None,
                   inputs: Sequence[Input] | None = None,
                   decode: Decoder | None = None) -> Layer:
    """A layer without params: ``y = fn(x)``, and either ``back(x, y, dy) -> dx`` or
    ``train(x, key) -> (y, back)`` with ``back(dy) -> dx`` (a training pass of its own: a
    pooling keeping its arg-max, dropout drawing its mask from ``key``).

    ``shape(input_shape) -> output_shape`` checks ``input_shape`` and gives the output's
    (default: the same shape, once checked to be a tuple of at least ``min_rank`` positive
    sizes); ``check(x) -> x`` validates inputs (default: a floating-point array); ``kind``
    and ``config`` as for :func:`layer`; ``inputs`` too (``x`` then a checked tuple,
    ``back`` returning a tuple ``dx``, None for non-float inputs) and ``decode``.

    >>> import numpy as np, fnn
    >>> center = fnn.layers.parameter_free(
    ...     "center", lambda x: x - x.mean(axis=-1, keepdims=True),
    ...     lambda x, y, dy: dy - dy.mean(axis=-1, keepdims=True))
    >>> y, pullback = center.vjp({}, np.array([[1.0, 2.0, 6.0]]))
    >>> y
    array([[-2., -1.,  3.]])
    >>> pullback(np.array([[1.0, 0.0, 0.0]]))[1].round(3)
    array([[ 0.667, -0.333, -0.333]])
    """
    if (back is None) == (train is None):
        raise TypeError(f"{label}: give exactly one of back= and train=")
    trainer, backward = train, cast(Callable, back)  # exactly one of them is set
    declared = tuple(inputs or ())
    floats_only = check is None and not declared  # the default check: a float array
    if check is None:
        check = (lambda x: check_inputs(label, declared, x)) if declared else \
            (lambda x: float_input(label, x))

    def init(key, input_shape):
        if shape:
            return shape(input_shape), {}
        if declared:
            return input_shapes(label, declared, input_shape), {}
        return as_shape(label, input_shape, min_rank), {}

    def apply(params, x):
        no_params(label, params)
        return fn(check(x))

    def vjp(params, x, *, key=None, input_grad=True):
        if params is not None and not (type(params) is dict and not params):
            no_params(label, params)  # words what is wrong (or lets an empty tuple pass)
        if not (floats_only and type(x) is np.ndarray and x.dtype.kind == "f"):
            x = check(x)
        if trainer is not None:
            y, pull = trainer(x, key)
            return y, lambda dy: ({}, pull(dy) if input_grad else None)
        y = fn(x)
        return y, lambda dy: ({}, backward(x, y, dy) if input_grad else None)

    return Layer(init, apply, vjp, name or label.split("(")[0], label, kind=kind,
                 config=_frozen(config), inputs=declared, decode=decode)


def rank_checker(label: str, ranks: tuple[int, ...], layout: str) -> Callable:
    """``check(x) -> x`` for :func:`parameter_free`: a float array of one of these ranks.

    >>> import numpy as np
    >>> from fnn.layers.base import rank_checker
    >>> rank_checker("pool", (4,), "(N, H, W, C)")(np.zeros((2, 3)))
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: pool: expected input of shape (N, H, W, C), got (2, 3)
    """

    def check(x):
        x = float_input(label, x)
        if x.ndim not in ranks:
            raise LayerError(f"{label}: expected input of shape {layout}, got {x.shape}")
        return x

    return check


def fixed_rank(label: str, input_shape, rank: int, layout: str) -> tuple:
    """``input_shape`` checked to have ``rank`` entries (the error shows the ``layout``).

    >>> from fnn.layers.base import fixed_rank
    >>> fixed_rank("conv2d(8, 3)", (-1, 8, 8), 4, "(N, H, W, C)")
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: conv2d(8, 3): expects inputs of shape (N, H, W, C), got input_shape (N, 8, 8)
    """
    shape = as_shape(label, input_shape, min_rank=2)
    if len(shape) != rank:
        raise LayerError(f"{label}: expects inputs of shape {layout}, got input_shape "
                         f"{fmt_shape(shape)}")
    return shape


__all__ = ["layer", "parameter_free"]
