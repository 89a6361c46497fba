"""The layer triple, combinators and ``value_and_grad`` (random keys: :mod:`fnn.keys`).

A :class:`Layer` is three pure functions plus a name::

    init(key, input_shape) -> (output_shape, params)
    apply(params, x) -> y                           # inference
    vjp(params, x, *, key=None) -> (y, pullback)    # training; pullback(dy) -> (dparams, dx)

and, optionally, ``param_vjp``: ``vjp`` for an input nobody differentiates (the data fed to a
model's first layer), whose pullback returns ``(dparams, None)`` without computing ``dx``.
:func:`value_and_grad` uses it; a layer without one falls back to ``vjp``.

Combinators (:func:`serial`, :func:`parallel`, :func:`concatenate`, :func:`add`,
:func:`residual`) return Layers too, so models nest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnn.checks import LayerError, fmt_shape, no_params
from fnn.keys import Key, split
from fnn.threads import chunked, sharded
from fnn.tree import tree_leaves, tree_map


class Layer(NamedTuple):
    """``(init, apply, vjp)`` plus a ``name`` used for params keys and error messages, and an
    optional ``param_vjp`` (a ``vjp`` that skips the input's gradient, see the module doc).

    ``label`` is how the layer reads (``"linear(10)"``, its ``repr``); a combinator lists its
    ``children`` and how they are wired (``flow``: ``"serial"``, ``"parallel"`` or
    ``"residual"``), so a model can describe itself (:func:`fnn.summary`).

    >>> import fnn
    >>> model = fnn.serial(fnn.linear(128), fnn.tanh(), fnn.linear(10))
    >>> model
    serial(linear(128), tanh(), linear(10))
    >>> [child.name for child in model.children]
    ['linear', 'tanh', 'linear']
    """

    init: Callable
    apply: Callable
    vjp: Callable
    name: str = "layer"
    param_vjp: Callable | None = None
    label: str | None = None
    children: tuple = ()
    flow: str | None = None

    def __repr__(self) -> str:
        if self.flow is not None:
            inner = ", ".join(repr(c) for c in self.children)
            return f"{self.label or self.name}({inner})"
        text = self.label or self.name
        return text if "(" in text else f"{text}()"


def input_free_vjp(layer: Layer) -> Callable:
    """The layer's ``param_vjp`` if it has one, else its ``vjp`` (whose ``dx`` is then unused)."""
    return layer.param_vjp or layer.vjp


def _keys(k: Key | None, n: int) -> Sequence[Key | None]:
    return split(k, n) if k is not None else (None,) * n


def _child_names(layers: Sequence[Layer]) -> list[str]:
    width = max(2, len(str(len(layers) - 1)))
    return [f"{i:0{width}d}_{layer.name}" for i, layer in enumerate(layers)]


def _child_params(combinator: str, params: Any, names: list[str]) -> list:
    if not isinstance(params, dict):
        raise LayerError(
            f"{combinator}: params should be a dict with keys {names}, got {type(params).__name__}"
        )
    if len(params) != len(names) or any(n not in params for n in names):
        missing = [n for n in names if n not in params]
        unexpected = [n for n in params if n not in names]
        raise LayerError(
            f"{combinator}: params do not match the model: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return [params[n] for n in names]


def _fusions(layers: Sequence[Layer]) -> frozenset[int]:
    """Positions ``i`` where ``layers[i]`` is a relu and ``layers[i + 1]`` a max-pool that can
    run fused with it (``fnn.layers.pool``: same numbers as the pair, fewer memory passes)."""
    out, i = set(), 0
    while i < len(layers) - 1:
        if (getattr(layers[i].apply, "fuses_into", None) == "max_pool"
                and hasattr(layers[i + 1].apply, "after_relu")
                and hasattr(layers[i + 1].vjp, "after_relu")):
            out.add(i)
            i += 2
        else:
            i += 1
    return frozenset(out)


def _pass_on(dy):
    """The pullback of a relu fused into the max-pool after it (which applied its gradient)."""
    return {}, dy


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers left to right: ``serial(linear(100), tanh(), linear(10))``.

    Params are a dict keyed ``"{i:02d}_{layer.name}"`` so they sort in order::

        >>> import fnn
        >>> model = fnn.serial(fnn.linear(3), fnn.relu())
        >>> out_shape, params = model.init(fnn.key(0), (-1, 5))
        >>> out_shape, sorted(params)
        ((-1, 3), ['00_linear', '01_relu'])

    A ``relu()`` directly followed by a max-pool runs fused with it (one kernel, the same
    numbers: see :mod:`fnn.ops.pool`); each keeps its own params entry.
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"{name}: expects one or more fnn.Layer, got {layers!r:.200}")
    names = _child_names(layers)
    pairs = list(zip(names, layers))

    def init(k, input_shape):
        params, shape = {}, input_shape
        for (child, layer), sub in zip(pairs, split(k, len(layers))):
            try:
                shape, params[child] = layer.init(sub, shape)
            except LayerError as err:
                raise err.within(child) from None
        return shape, params

    fused = _fusions(layers)

    def apply(params, x):
        child = names[0]
        ps = _child_params(name, params, names)
        try:
            for i, ((child, layer), p) in enumerate(zip(pairs, ps)):
                if i in fused:  # relu + max-pool in one (the next layer's turn is skipped)
                    no_params(f"{layer.name}", p)
                    child = names[i + 1]
                    x = layers[i + 1].apply.after_relu(ps[i + 1], x)
                elif i - 1 not in fused:
                    x = layer.apply(p, x)
        except LayerError as err:
            raise err.within(child, input_from_model=child != names[0]) from None
        return x

    def forward(params, x, key, input_grad: bool):
        """The vjp; without ``input_grad``, layers before the first one with params skip the
        gradient of their input (none of it is needed)."""
        steps = []
        child = names[0]
        ps = _child_params(name, params, names)
        try:
            for i, ((child, layer), p, sub) in enumerate(zip(pairs, ps, _keys(key, len(layers)))):
                if i - 1 in fused:  # run with the relu before it
                    continue
                if i in fused:  # relu + max-pool in one: the relu's pullback passes dy on
                    no_params(f"{layer.name}", p)
                    steps.append((child, _pass_on, p, input_grad))
                    child = names[i + 1]
                    x, pullback = layers[i + 1].vjp.after_relu(ps[i + 1], x)
                    steps.append((child, pullback, ps[i + 1], input_grad))
                    continue
                x, pullback = (layer.vjp if input_grad else input_free_vjp(layer))(p, x, key=sub)
                steps.append((child, pullback, p, input_grad))
                input_grad = input_grad or bool(tree_leaves(p))
        except LayerError as err:
            raise err.within(child, input_from_model=child != names[0]) from None

        def pullback(dy):
            grads = {}
            for child, back, p, needs_dx in reversed(steps):
                if dy is None:  # a parameter-free layer below every param: nothing to compute
                    grads[child] = tree_map(np.zeros_like, p)
                    continue
                grads[child], dy = back(dy)
                dy = dy if needs_dx else None
            return dict(sorted(grads.items())), dy

        return x, pullback

    def vjp(params, x, *, key=None):
        return forward(params, x, key, input_grad=True)

    def param_vjp(params, x, *, key=None):
        return forward(params, x, key, input_grad=False)

    return Layer(init, apply, vjp, name, param_vjp, name, tuple(layers), "serial")


def parallel(*layers: Layer, name: str = "parallel") -> Layer:
    """Fan-out: feed the same input to every layer and return the tuple of outputs.

    Follow it with :func:`concatenate` or :func:`add` to merge the branches.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.parallel(fnn.linear(3), fnn.identity()), fnn.concatenate())
    >>> out_shape, params = model.init(fnn.key(0), (-1, 2))
    >>> out_shape, sorted(params["00_parallel"])
    ((-1, 5), ['00_linear', '01_identity'])
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"{name}: expects one or more fnn.Layer, got {layers!r:.200}")
    names = _child_names(layers)

    def init(k, input_shape):
        shapes, params = [], {}
        for child, layer, sub in zip(names, layers, split(k, len(layers))):
            try:
                shape, params[child] = layer.init(sub, input_shape)
            except LayerError as err:
                raise err.within(child) from None
            shapes.append(shape)
        return tuple(shapes), params

    def apply(params, x):
        outs = []
        for child, layer, p in zip(names, layers, _child_params(name, params, names)):
            try:
                outs.append(layer.apply(p, x))
            except LayerError as err:
                raise err.within(child) from None
        return tuple(outs)

    def vjp(params, x, *, key=None):
        outs, pullbacks = [], []
        for child, layer, p, sub in zip(
            names, layers, _child_params(name, params, names), _keys(key, len(layers))
        ):
            try:
                y, back = layer.vjp(p, x, key=sub)
            except LayerError as err:
                raise err.within(child) from None
            outs.append(y)
            pullbacks.append(back)

        def pullback(dys):
            grads, dx = {}, None
            for child, back, dy in zip(names, pullbacks, dys):
                grads[child], dxi = back(dy)
                dx = dxi if dx is None else dx + dxi
            return grads, dx

        return tuple(outs), pullback

    return Layer(init, apply, vjp, name, None, name, tuple(layers), "parallel")


def _branch_shapes(layer: str, input_shape) -> tuple:
    if not isinstance(input_shape, tuple) or not all(isinstance(s, tuple) for s in input_shape):
        raise LayerError(
            f"{layer}: expects a tuple of branch shapes (put it after fnn.parallel), "
            f"got {input_shape!r}"
        )
    return input_shape


def _branches(layer: str, xs) -> tuple:
    if not isinstance(xs, (tuple, list)) or not xs:
        raise LayerError(f"{layer}: expects a tuple of arrays (the output of fnn.parallel)")
    return tuple(xs)


def concatenate(axis: int = -1) -> Layer:
    """Merge a tuple of branches by concatenation along ``axis`` (default: features/channels).

    >>> import numpy as np, fnn
    >>> fnn.concatenate().apply({}, (np.zeros((2, 3)), np.ones((2, 1)))).shape
    (2, 4)
    """
    label = f"concatenate(axis={axis})"

    def init(k, input_shape):
        shapes = _branch_shapes(label, input_shape)
        rank = len(shapes[0])
        ax = axis % rank
        others = {tuple(d for i, d in enumerate(s) if i not in (0, ax)) for s in shapes}
        if any(len(s) != rank for s in shapes) or len(others) != 1:
            raise LayerError(
                f"{label}: branches must agree on every axis but {axis}, got {fmt_shape(shapes)}"
            )
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out), {}

    def apply(params, xs):
        no_params(label, params)
        return np.concatenate(_branches(label, xs), axis=axis)

    def vjp(params, xs, *, key=None):
        xs = _branches(label, xs)
        y = apply(params, xs)
        bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]

        def pullback(dy):
            return {}, tuple(np.split(dy, bounds, axis=axis))

        return y, pullback

    return Layer(init, apply, vjp, "concatenate", None, label)


def add() -> Layer:
    """Merge a tuple of same-shaped branches by summing them.

    >>> import numpy as np, fnn
    >>> fnn.add().apply({}, (np.ones((1, 2)), np.full((1, 2), 2.0)))
    array([[3., 3.]])
    """
    label = "add"

    def init(k, input_shape):
        shapes = _branch_shapes(label, input_shape)
        if len({s[1:] for s in shapes}) != 1:
            raise LayerError(f"{label}: branches must have equal shapes, got {fmt_shape(shapes)}")
        return shapes[0], {}

    def apply(params, xs):
        no_params(label, params)
        xs = _branches(label, xs)
        out = xs[0]
        for x in xs[1:]:
            if x.shape != out.shape:
                raise LayerError(f"{label}: branch shapes differ: {[x.shape for x in xs]}")
            out = out + x
        return out

    def vjp(params, xs, *, key=None):
        y = apply(params, xs)
        n = len(xs)
        return y, lambda dy: ({}, (dy,) * n)

    return Layer(init, apply, vjp, label)


def residual(*layers: Layer) -> Layer:
    """``y = x + f(x)`` with ``f = serial(*layers)``; ``f`` must keep the shape of ``x``.

    Params are those of ``serial(*layers)`` (keys ``"00_..."``).

    >>> import numpy as np, fnn
    >>> block = fnn.residual(fnn.linear(4), fnn.tanh())
    >>> _, params = block.init(fnn.key(0), (-1, 4))
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.allclose(block.apply(params, x), x + np.tanh(x @ params["00_linear"]["w"])))
    True
    """
    body = serial(*layers, name="residual")

    def init(k, input_shape):
        out_shape, params = body.init(k, input_shape)
        if tuple(out_shape[1:]) != tuple(input_shape[1:]):
            raise LayerError(
                f"residual: the body maps {fmt_shape(input_shape)} to {fmt_shape(out_shape)}; "
                "it must keep the shape"
            )
        return input_shape, params

    def apply(params, x):
        return x + body.apply(params, x)

    def vjp(params, x, *, key=None):
        fx, back = body.vjp(params, x, key=key)

        def pullback(dy):
            grads, dx = back(dy)
            return grads, dx + dy

        return x + fx, pullback

    return Layer(init, apply, vjp, "residual", None, "residual", tuple(layers), "residual")


def value_and_grad(model: Layer, loss, *, threads: int = 1, chunk: int | None = None) -> Callable:
    """Glue a model and a loss: ``f(params, x, y, *, key=None) -> (loss_value, grads)``.

    ``threads > 1`` splits every batch into that many shards run at once on as many cores
    (:func:`fnn.threads.sharded`: same result up to float rounding, one dropout key per shard).
    ``chunk``: each shard (or the batch) runs as consecutive chunks of at most that many
    samples (:func:`fnn.threads.chunked`: same result up to rounding; a conv net's
    activations then stay in cache, so large batches cost no more per sample).

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> f = fnn.value_and_grad(model, fnn.mse)
    >>> value, grads = f(params, np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))
    >>> grads["00_linear"]["w"].shape
    (3, 2)
    """

    def value_and_grad_fn(params, x, y, *, key=None):
        pred, pullback = input_free_vjp(model)(params, x, key=key)
        value, dpred = loss.vjp(pred, y)
        grads, _ = pullback(dpred)
        return value, grads

    value_and_grad_fn.loss = loss  # what fnn.threads.sharded / chunked check
    if threads == 1 and chunk is None:
        return value_and_grad_fn
    fn = value_and_grad_fn if chunk is None else chunked(value_and_grad_fn, chunk)
    return fn if threads == 1 else sharded(fn, threads)
