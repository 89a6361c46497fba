"""The layer triple, combinators and ``value_and_grad`` (random keys: :mod:`fnn.keys`).

A :class:`Layer` is three pure functions plus a name::

    init(key, input_shape) -> (output_shape, params)
    apply(params, x) -> y                                           # inference
    vjp(params, x, *, key=None, input_grad=True) -> (y, pullback)    # training
    pullback(dy) -> (dparams, dx)            # dx is None when input_grad=False

A layer with **state** (running statistics: :func:`fnn.batch_norm`; ``layer.stateful``) has a
third value everywhere: ``init`` returns ``(output_shape, params, state)``,
``apply(params, x, *, state)``, and ``vjp(params, x, *, key=None, state, input_grad=True)``
returns ``(y, pullback, new_state)``. State is its own tree beside params: never
differentiated, never seen by optimisers. A combinator has state when one of its children
has; its state is a dict holding only those children's, under their params keys.

``input_grad=False``: nobody needs ``dx`` (the data fed to a model's first layer), so the
pullback skips it; :func:`serial` asks it of every layer before the first one with params.

Combinators (:func:`serial`, :func:`parallel`, :func:`residual`; :func:`fnn.concatenate` and
:func:`fnn.add` merge parallel branches) return Layers too, so models nest. Build your own layers with
:func:`fnn.layer` (params, state) or :func:`fnn.layers.parameter_free`.
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
    """``(init, apply, vjp)`` plus a ``name`` used for params keys and error messages.

    ``label`` is how the layer reads (``"linear(10)"``, its ``repr``); a combinator lists its
    ``children`` and how they are wired (``flow``: ``"serial"``, ``"parallel"`` or
    ``"residual"``), so a model can describe itself (:func:`fnn.summary`). ``stateful``: the
    layer carries a state tree (see the module doc).

    >>> import fnn
    >>> model = fnn.serial(fnn.linear(128), fnn.tanh(), fnn.linear(10))
    >>> model
    serial(linear(128), tanh(), linear(10))
    >>> [child.name for child in model.children], model.stateful
    (['linear', 'tanh', 'linear'], False)
    """

    init: Callable
    apply: Callable
    vjp: Callable
    name: str = "layer"
    label: str | None = None
    children: tuple = ()
    flow: str | None = None
    stateful: bool = False

    def __repr__(self) -> str:
        if self.flow is not None:
            inner = ", ".join(repr(c) for c in self.children)
            return f"{self.label or self.name}({inner})"
        text = self.label or self.name
        return text if "(" in text else f"{text}()"


def init(model: Layer, key: Key, input_shape) -> tuple[Any, Any, Any]:
    """``(output_shape, params, state)`` for any model: ``state`` is ``{}`` when it has none.

    >>> import fnn
    >>> shape, params, state = fnn.init(fnn.serial(fnn.linear(4), fnn.batch_norm()),
    ...                                 fnn.key(0), (-1, 3))
    >>> shape, sorted(state["01_batch_norm"])
    ((-1, 4), ['mean', 'var'])
    """
    out = model.init(key, input_shape)
    return out if model.stateful else (*out, {})


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


def _child_names(layers: Sequence[Layer]) -> list[str]:
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


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers left to right: ``serial(linear(100), tanh(), linear(10))``.

    Params are a dict keyed ``"{i:02d}_{layer.name}"`` so they sort in order (state, if any
    layer has some, is keyed the same)::

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
    wanted = [n for n, layer in zip(names, layers) if layer.stateful]  # keys of the state
    stateful = bool(wanted)
    fused = _fusions(layers)

    def init(k, input_shape):
        shapes, params, state = _init_children(names, layers, k, input_shape, chain=True)
        return (shapes[-1], params, state) if stateful else (shapes[-1], params)

    def apply(params, x, *, state=None):
        child = names[0]
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted)
        try:
            for i, (child, layer, p, s) in enumerate(zip(names, layers, ps, ss)):
                if i in fused:  # relu + max-pool in one (the next layer's turn is skipped)
                    no_params(f"{layer.name}", p)
                    child = names[i + 1]
                    x = layers[i + 1].apply.after_relu(ps[i + 1], x)
                elif i - 1 not in fused:
                    x = _apply(layer, p, x, s)
        except LayerError as err:
            raise err.within(child, input_from_model=child != names[0]) from None
        return x

    def vjp(params, x, *, key=None, state=None, input_grad=True):
        ps = _child_params(name, params, names)
        ss = _child_state(name, state, names, wanted)
        keys = _keys(key, len(layers))
        pullbacks, needs_dx, new_state = [], [], {}  # one pullback per child, in order
        try:
            for i, layer in enumerate(layers):
                if i - 1 in fused:  # ran with the relu before it
                    continue
                if i in fused:  # relu + max-pool in one: the relu's pullback passes dy on
                    no_params(f"{layer.name}", ps[i])
                    pullbacks.append(_pass_on)
                    x, back = layers[i + 1].vjp.after_relu(ps[i + 1], x, input_grad)
                    needs_dx.append(input_grad)
                else:
                    x, back, s = _vjp(layer, ps[i], x, ss[i], keys[i], input_grad)
                    if layer.stateful:
                        new_state[names[i]] = s
                pullbacks.append(back)
                needs_dx.append(input_grad)
                input_grad = input_grad or _has_params(ps[i])
        except LayerError as err:  # the child that failed is the next one without a pullback
            child = names[len(pullbacks)]
            raise err.within(child, input_from_model=child != names[0]) from None

        def pullback(dy):
            grads = [{}] * len(pullbacks)
            for i in range(len(pullbacks) - 1, -1, -1):
                if dy is None:  # a parameter-free layer below every param: nothing to compute
                    grads[i] = tree_map(np.zeros_like, ps[i])
                    continue
                grads[i], dy = pullbacks[i](dy)
                if not needs_dx[i]:
                    dy = None
            return dict(zip(names, grads)), dy  # names sort in order

        return (x, pullback, new_state) if stateful else (x, pullback)

    return Layer(init, apply, vjp, name, name, tuple(layers), "serial", stateful)


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
                if dxi is not None:
                    dx = dxi if dx is None else dx + dxi
            return grads, dx

        return (tuple(outs), pullback, new_state) if stateful else (tuple(outs), pullback)

    return Layer(init, apply, vjp, name, name, tuple(layers), "parallel", stateful)


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
                 body.stateful)


def value_and_grad(model: Layer, loss, *, threads: int = 1, chunk: int | None = None) -> Callable:
    """Glue a model and a loss: ``f(params, x, y, *, key=None) -> (loss_value, grads)``; for a
    model with state, ``f(params, x, y, *, key=None, state) -> (loss_value, grads, new_state)``.

    ``threads > 1`` splits every batch into that many shards run at once on as many cores
    (:func:`fnn.threads.sharded`: same result up to float rounding, one dropout key per shard;
    batch statistics are those of the whole batch). ``chunk``: each shard (or the batch) runs
    as consecutive chunks of at most that many samples (:func:`fnn.threads.chunked`: same
    result up to rounding; a conv net's activations then stay in cache, so large batches cost
    no more per sample; not for models with batch statistics).

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> f = fnn.value_and_grad(model, fnn.mse)
    >>> value, grads = f(params, np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))
    >>> grads["00_linear"]["w"].shape
    (3, 2)
    """
    if model.stateful:
        def value_and_grad_fn(params, x, y, *, key=None, state=None):
            pred, pullback, new_state = model.vjp(params, x, key=key, state=state,
                                                  input_grad=False)
            value, dpred = loss.vjp(pred, y)
            return value, pullback(dpred)[0], new_state
    else:
        def value_and_grad_fn(params, x, y, *, key=None):
            pred, pullback = model.vjp(params, x, key=key, input_grad=False)
            value, dpred = loss.vjp(pred, y)
            return value, pullback(dpred)[0]

    value_and_grad_fn.loss = loss  # what fnn.threads.sharded / chunked check
    value_and_grad_fn.stateful = model.stateful
    if threads == 1 and chunk is None:
        return value_and_grad_fn
    fn = value_and_grad_fn if chunk is None else chunked(value_and_grad_fn, chunk)
    return fn if threads == 1 else sharded(fn, threads)
