"""Combinators: :func:`serial`, :func:`parallel` and :func:`residual` make one
:class:`fnn.Layer` of several (state threaded through them), so models nest.

Params (and state) are dicts keyed by zero-padded position and child name (``"00_linear"``);
a combinator's state holds only its stateful children's. :func:`serial` runs adjacent pairs
listed in :mod:`fnn.layers.fusion` (relu then max-pool) as one fused step, decided once when
it is built. :func:`fnn.concatenate` and :func:`fnn.add` merge parallel branches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fnn.checks import LayerError, fmt_shape, pair_hint
from fnn.core import Layer, init
from fnn.keys import Key, split
from fnn.layers.base import parameter_free
from fnn.layers.fusion import Step, plan
from fnn.tree import tree_leaves, tree_map


def _apply(layer: Layer, p, x, s):
    return layer.apply(p, x, state=s) if layer.stateful else layer.apply(p, x)


def _vjp(layer: Layer, p, x, s, key, input_grad) -> tuple:
    """``(y, pullback, new_state)`` of any layer (``new_state`` None when it has none)."""
    if layer.stateful:
        return layer.vjp(p, x, key=key, state=s, input_grad=input_grad)
    return (*layer.vjp(p, x, key=key, input_grad=input_grad), None)


def _child_state(combinator: str, state: Any, names: list[str], wanted: list[str]) -> list:
    """Each child's state (None for those without) from a combinator's state dict, whose keys
    are ``wanted`` (its stateful children); one without state takes none (None or ``{}``)."""
    if not wanted:
        if state is not None and not (isinstance(state, dict) and not state):
            raise LayerError("this model has no state (no layer keeps statistics); "
                             f"got state={state!r:.80}")
        return [None] * len(names)
    if state is None:
        raise LayerError(f"{combinator}: has state (layers {wanted} keep running statistics): "
                         "pass state=, the third value of init")
    if not isinstance(state, dict) or set(state) != set(wanted):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise LayerError(f"{combinator}: state should be a dict with keys {wanted}, got {got}")
    return [state.get(n) for n in names]


def _keys(k: Key | None, n: int) -> Sequence[Key | None]:
    return split(k, n) if k is not None else (None,) * n


def add_gradients(a: Any, b: Any) -> Any:
    """The sum of two input gradients, None meaning zero; tuples (several inputs) add
    element by element (an integer input's None stays None).

    >>> import numpy as np
    >>> from fnn.combinators import add_gradients
    >>> add_gradients((np.ones(2), None), (np.ones(2), None))
    (array([2., 2.]), None)
    """
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, tuple):
        return tuple(add_gradients(u, v) for u, v in zip(a, b))
    return a + b


def child_names(layers: Sequence[Layer]) -> list[str]:
    """The params keys of a combinator's children: ``"{i:02d}_{name}"`` (wider past 100).

    >>> import fnn
    >>> from fnn.combinators import child_names
    >>> child_names([fnn.linear(2), fnn.relu()])
    ['00_linear', '01_relu']
    """
    width = max(2, len(str(len(layers) - 1)))
    return [f"{i:0{width}d}_{layer.name}" for i, layer in enumerate(layers)]


def _has_params(p: Any) -> bool:
    """Whether a layer's params hold any array (a flat dict of arrays without flattening it:
    optree takes microseconds, and serial asks this of its first layers every step)."""
    if type(p) is dict:
        for v in p.values():
            if type(v) is np.ndarray:
                return True
    return bool(tree_leaves(p))


def _child_params(combinator: str, params: Any, names: list[str]) -> list:
    if type(params) is dict and len(params) == len(names):
        try:
            return [params[n] for n in names]
        except KeyError:
            pass  # worded below
    if not isinstance(params, dict):
        raise LayerError(
            f"{combinator}: params should be a dict with keys {names}, got {type(params).__name__}"
            + pair_hint(params))
    if len(params) != len(names) or any(n not in params for n in names):
        missing = [n for n in names if n not in params]
        unexpected = [n for n in params if n not in names]
        raise LayerError(
            f"{combinator}: params do not match the model: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return [params[n] for n in names]


def _init_children(names, layers, key, shape, *, chain: bool):
    """Init each child (one after the other when ``chain``, else all on ``shape``):
    ``(shapes, params, state)``."""
    shapes, params, state = [], {}, {}
    for child, layer, sub in zip(names, layers, split(key, len(layers))):
        try:
            out, params[child], s = init(layer, sub, shape)
        except LayerError as err:
            raise err.within(child) from None
        if layer.stateful:
            state[child] = s
        shapes.append(out)
        shape = out if chain else shape
    return shapes, params, state


def _blame(err: LayerError, step: Step, layers, names, ps, ss, x) -> LayerError:
    """``err``, raised by ``step`` on input ``x``, as seen from the serial: prefixed with the
    child that failed. A fused pair's error is its first layer's when that layer alone
    fails on ``x`` (the error it gives alone), else its second's."""
    i, pair = step
    if pair is not None:
        try:
            _apply(layers[i], ps[i], x, ss[i])
        except LayerError as first:
            err = first
        else:
            i += 1
    return err.within(names[i], input_from_model=i != 0)


def _serial_apply(name: str, layers: Sequence[Layer], names: list[str], wanted: list[str],
                  steps: tuple[Step, ...]):
    """:func:`serial`'s ``apply``."""

    def apply(params, x, *, state=None):
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted)
        step = steps[0]
        try:
            for step in steps:
                i, pair = step
                x = _apply(layers[i], ps[i], x, ss[i]) if pair is None else \
                    pair.apply(ps[i], ps[i + 1], x)
        except LayerError as err:
            raise _blame(err, step, layers, names, ps, ss, x) from None
        return x

    return apply


def _serial_vjp(name: str, layers: Sequence[Layer], names: list[str], wanted: list[str],
                steps: tuple[Step, ...]):
    """:func:`serial`'s ``vjp``: ``input_grad`` goes to every step before the first one with
    params; the pullback skips what no param needs."""
    stateful = bool(wanted)
    nones = [None] * len(layers)  # no state, no keys

    def vjp(params, x, *, key=None, state=None, input_grad=True):
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted) if stateful or state is not None \
            else nones
        keys = _keys(key, len(layers)) if key is not None else nones
        pullbacks, needs_dx, new_state = [], [], {}  # one pullback per step, in order
        try:
            for i, pair in steps:
                if pair is None:
                    layer = layers[i]
                    if layer.stateful:
                        x, back, new_state[names[i]] = layer.vjp(
                            ps[i], x, key=keys[i], state=ss[i], input_grad=input_grad)
                    else:
                        x, back = layer.vjp(ps[i], x, key=keys[i], input_grad=input_grad)
                    pullbacks.append(back)
                    needs_dx.append(input_grad)
                    input_grad = input_grad or _has_params(ps[i])
                else:  # its pullback gives both layers' params gradients, then dx
                    x, back = pair.vjp(ps[i], ps[i + 1], x, input_grad)
                    pullbacks.append(back)
                    needs_dx.append(input_grad)
                    input_grad = input_grad or _has_params(ps[i]) or _has_params(ps[i + 1])
        except LayerError as err:  # the step that failed is the first without a pullback
            raise _blame(err, steps[len(pullbacks)], layers, names, ps, ss, x) from None

        def pullback(dy):
            grads: list[Any] = [{}] * len(layers)
            for u in range(len(pullbacks) - 1, -1, -1):
                i, pair = steps[u]
                if dy is None:  # parameter-free layers below every param: nothing to compute
                    grads[i] = tree_map(np.zeros_like, ps[i])
                    if pair is not None:
                        grads[i + 1] = tree_map(np.zeros_like, ps[i + 1])
                    continue
                if pair is None:
                    grads[i], dy = pullbacks[u](dy)
                else:
                    grads[i], grads[i + 1], dy = pullbacks[u](dy)
                if not needs_dx[u]:
                    dy = None
            return dict(zip(names, grads)), dy  # names sort in order

        return (x, pullback, new_state) if stateful else (x, pullback)

    return vjp


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers left to right: ``serial(linear(100), tanh(), linear(10))``.

    Params are a dict keyed ``"{i:02d}_{layer.name}"`` so they sort in order (state, if any
    layer has some, is keyed the same)::

        >>> import fnn
        >>> model = fnn.serial(fnn.linear(3), fnn.relu())
        >>> out_shape, params = model.init(fnn.key(0), (-1, 5))
        >>> out_shape, sorted(params)
        ((-1, 3), ['00_linear', '01_relu'])

    Adjacent pairs of the fusion table (:mod:`fnn.layers.fusion`: a ``relu()`` directly
    followed by a max-pool) run as one fused step (the same numbers, fewer passes over
    memory), decided here, once; each layer keeps its own params entry.
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"{name}: expects one or more fnn.Layer, got {layers!r:.200}")
    names = child_names(layers)
    wanted = [n for n, layer in zip(names, layers) if layer.stateful]  # keys of the state
    stateful = bool(wanted)
    steps = plan(layers)  # each layer once, a fused pair as one step

    def init(k, input_shape):
        shapes, params, state = _init_children(names, layers, k, input_shape, chain=True)
        return (shapes[-1], params, state) if stateful else (shapes[-1], params)

    return Layer(init, _serial_apply(name, layers, names, wanted, steps),
                 _serial_vjp(name, layers, names, wanted, steps), name, name, tuple(layers),
                 "serial", stateful, inputs=layers[0].inputs)


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
    names = child_names(layers)
    wanted = [n for n, layer in zip(names, layers) if layer.stateful]  # keys of the state
    stateful = bool(wanted)

    def init(k, input_shape):
        shapes, params, state = _init_children(names, layers, k, input_shape, chain=False)
        return (tuple(shapes), params, state) if stateful else (tuple(shapes), params)

    def apply(params, x, *, state=None):
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted)
        outs = []
        for child, layer, p, s in zip(names, layers, ps, ss):
            try:
                outs.append(_apply(layer, p, x, s))
            except LayerError as err:
                raise err.within(child) from None
        return tuple(outs)

    def vjp(params, x, *, key=None, state=None, input_grad=True):
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted)
        outs, pullbacks, new_state = [], [], {}
        for child, layer, p, s, sub in zip(names, layers, ps, ss, _keys(key, len(layers))):
            try:
                y, back, s = _vjp(layer, p, x, s, sub, input_grad)
            except LayerError as err:
                raise err.within(child) from None
            if layer.stateful:
                new_state[child] = s
            outs.append(y)
            pullbacks.append(back)

        def pullback(dys):
            grads, dx = {}, None
            for child, back, dy in zip(names, pullbacks, dys):
                grads[child], dxi = back(dy)
                dx = add_gradients(dx, dxi)
            return grads, dx

        return (tuple(outs), pullback, new_state) if stateful else (tuple(outs), pullback)

    return Layer(init, apply, vjp, name, name, tuple(layers), "parallel", stateful,
                 inputs=layers[0].inputs)


def _tuple_of(label: str, n: int | None, what: str, value: Any) -> tuple:
    if not isinstance(value, (tuple, list)) or (n is not None and len(value) != n):
        count = f"{n} " if n is not None else ""
        raise LayerError(f"{label}: expects a tuple of {count}{what}, got {value!r:.120}")
    return tuple(value)


def each(*layers: Layer, name: str = "each") -> Layer:
    """Several inputs, one layer each: ``(x0, x1, ...) -> (layers[0](x0), layers[1](x1),
    ...)`` (stax's ``parallel``; :func:`parallel` feeds one input to every layer). ``init``
    takes the tuple of input shapes. With :func:`pick` and :func:`parallel` it routes tuple
    inputs such as ``(source_ids, target_ids)``.

    >>> import numpy as np, fnn
    >>> model = fnn.each(fnn.linear(4), fnn.identity())
    >>> shapes, params = model.init(fnn.key(0), ((-1, 3), (-1, 2)))
    >>> shapes, sorted(params)
    (((-1, 4), (-1, 2)), ['00_linear', '01_identity'])
    """
    if not layers or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"{name}: expects one or more fnn.Layer, got {layers!r:.200}")
    if any(layer.stateful for layer in layers):
        raise TypeError(f"{name}: layers with state are not supported here")
    names, n = child_names(layers), len(layers)

    def init(k, input_shape):
        shapes = _tuple_of(name, n, "input shapes", input_shape)
        outs, params = [], {}
        for child, layer, sub, shape in zip(names, layers, split(k, n), shapes):
            try:
                out, params[child] = layer.init(sub, shape)
            except LayerError as err:
                raise err.within(child) from None
            outs.append(out)
        return tuple(outs), params

    def run(params, x, fn):
        ps, xs = _child_params(name, params, names), _tuple_of(name, n, "arrays", x)
        outs = []
        for child, layer, p, xi, sub in zip(names, layers, ps, xs, fn):
            try:
                outs.append(layer.apply(p, xi) if sub is False else layer.vjp(p, xi, **sub))
            except LayerError as err:
                raise err.within(child) from None
        return outs

    def vjp(params, x, *, key=None, input_grad=True):
        outs = run(params, x, [{"key": sub, "input_grad": input_grad}
                               for sub in _keys(key, n)])

        def pullback(dys):
            grads = [back(dy) for (_, back), dy in zip(outs, dys)]
            dx = tuple(g[1] for g in grads) if input_grad else None
            return dict(zip(names, (g[0] for g in grads))), dx

        return tuple(y for y, _ in outs), pullback

    return Layer(init, lambda params, x: tuple(run(params, x, [False] * n)), vjp, name, name,
                 tuple(layers), "each")


def pick(index: int) -> Layer:
    """Element ``index`` of a tuple input (``(x, mask) -> x``); its gradient goes back to that
    element (zeros to the other float ones, None to integer and bool ones).

    >>> import numpy as np, fnn
    >>> fnn.pick(1).apply({}, (np.zeros(2), np.ones(3)))
    array([1., 1., 1.])
    """
    label = f"pick({index})"

    def shape(input_shape):
        shapes = _tuple_of(label, None, "input shapes", input_shape)
        if not -len(shapes) <= index < len(shapes):
            raise LayerError(f"{label}: the input has {len(shapes)} elements")
        return shapes[index]

    def check(x):
        xs = tuple(np.asarray(a) for a in _tuple_of(label, None, "arrays", x))
        shape(tuple(a.shape for a in xs))
        return xs

    def back(xs, y, dy):
        return tuple(dy if j == index % len(xs) else
                     (np.zeros_like(a) if a.dtype.kind == "f" else None)
                     for j, a in enumerate(xs))

    return parameter_free(label, lambda xs: xs[index], back, shape=shape, check=check,
                          kind="pick", config={"index": index})


def residual(*layers: Layer) -> Layer:
    """``y = x + f(x)`` with ``f = serial(*layers)``; ``f`` must keep the shape of ``x``.

    Params (and state) are those of ``serial(*layers)`` (keys ``"00_..."``).

    >>> import numpy as np, fnn
    >>> block = fnn.residual(fnn.linear(4), fnn.tanh())
    >>> _, params = block.init(fnn.key(0), (-1, 4))
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.allclose(block.apply(params, x), x + np.tanh(x @ params["00_linear"]["w"])))
    True
    """
    body = serial(*layers, name="residual")

    def init(k, input_shape):
        if isinstance(input_shape, tuple) and input_shape and isinstance(input_shape[0], tuple):
            raise LayerError("residual: adds its input to the body's output, so it takes one "
                             f"array, got {fmt_shape(input_shape)}; for tuple inputs such as "
                             "(x, mask) use serial(parallel(pick(0), body), add())")
        out = body.init(k, input_shape)
        if tuple(out[0][1:]) != tuple(input_shape[1:]):
            raise LayerError(
                f"residual: the body maps {fmt_shape(input_shape)} to {fmt_shape(out[0])}; "
                "it must keep the shape"
            )
        return (input_shape, *out[1:])

    def apply(params, x, **state):
        return x + body.apply(params, x, **state)

    def vjp(params, x, *, key=None, input_grad=True, **state):
        fx, back, *new_state = body.vjp(params, x, key=key, input_grad=True, **state)

        def pullback(dy):
            grads, dx = back(dy)
            return grads, (dx + dy if input_grad else None)

        return (x + fx, pullback, *new_state)

    return Layer(init, apply, vjp, "residual", "residual", tuple(layers), "residual",
                 body.stateful, inputs=body.inputs)


__all__ = ["add_gradients", "child_names", "each", "parallel", "pick", "residual", "serial"]
