"""The declared types everything else is built on: :class:`Layer`, :func:`init`, and
:class:`GradFn` (random keys: :mod:`fnn.keys`; combinators: :mod:`fnn.combinators`;
``value_and_grad``: :mod:`fnn.gradients`).

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
pullback skips it; :func:`fnn.serial` asks it of every layer before the first one with params.

What a layer *is* is declared, never guessed from its functions: ``kind`` (``"relu"``,
``"max_pool"``, ``"conv"``, ...; None for your own layers) and ``config``, its
hyper-parameters as JSON-like values, complete enough to rebuild its maths (what
:func:`fnn.serial`'s fusions and exporters read).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from fnn.keys import Key

NO_CONFIG: Mapping[str, Any] = MappingProxyType({})  # the config of a layer that declares none


class Input(NamedTuple):
    """One input of a layer that declares its inputs (``fnn.layer(..., inputs=...)``): its
    ``name`` (errors say ``"input 1 (mask)"``), ``kind`` (``"float"``, ``"int"`` for token
    ids, ``"bool"`` for masks; only float inputs are differentiated, the others get ``None``
    as gradient) and ``rank`` (exact, batch axis included; None: at least 1).

    A layer declaring one input takes that array; declaring several, a tuple of arrays in
    this order, ``init`` a tuple of their shapes (each batch first).

    >>> import fnn
    >>> fnn.Input("mask", "bool", rank=2)
    Input(name='mask', kind='bool', rank=2)
    """

    name: str
    kind: str = "float"
    rank: int | None = None


class Decoder(NamedTuple):
    """How a layer runs one position at a time, for generation (:func:`fnn.generate`):
    ``start(params, batch_size, dtype) -> carry`` (a recurrent state, a key/value cache, the
    position: any pytree), ``step(params, x_t, carry) -> (y_t, carry)`` on ``x_t`` of
    shape ``(N, 1, ...)`` (one time step, axis kept). Position-wise layers (``linear``,
    activations, norms, embeddings) need none: their step is ``apply``.

    >>> import fnn
    >>> fnn.lstm(8).decode is not None, fnn.linear(3).decode is None
    (True, True)
    """

    start: Callable
    step: Callable


class Layer(NamedTuple):
    """``(init, apply, vjp)`` plus a ``name`` used for params keys and error messages.

    ``label`` is how the layer reads (``"linear(10)"``, its ``repr``); a combinator lists its
    ``children`` and how they are wired (``flow``: ``"serial"``, ``"parallel"`` or
    ``"residual"``), so a model can describe itself (:func:`fnn.summary`). ``stateful``: the
    layer carries a state tree (see the module doc). ``kind`` says what a built-in layer is
    (``"relu"``, ``"max_pool"``, ``"linear"``, ``"conv"``, ...; None for your own layers and
    for combinators) and ``config`` holds its hyper-parameters (JSON-like values: ints,
    floats, strings, bools, tuples), enough to rebuild its maths. A layer declaring a
    built-in kind promises that kind's maths: :func:`fnn.serial` fuses pairs by kind
    (:mod:`fnn.layers.fusion`). ``inputs``: the :class:`Input` s a layer declares (token ids,
    a tuple such as ``(x, mask)``); empty for the usual single floating-point array.
    ``decode``: its :class:`Decoder` when it carries something from one time step to the
    next (recurrent layers, causal attention, positions), for generation.

    >>> import fnn
    >>> model = fnn.serial(fnn.linear(128), fnn.tanh(), fnn.linear(10))
    >>> model
    serial(linear(128), tanh(), linear(10))
    >>> [child.name for child in model.children], model.stateful
    (['linear', 'tanh', 'linear'], False)
    >>> pool = fnn.max_pool2d(2)
    >>> pool.kind, dict(pool.config)
    ('max_pool', {'nd': 2, 'kernel': (2, 2), 'stride': (2, 2), 'padding': ((0, 0), (0, 0))})
    """

    init: Callable
    apply: Callable
    vjp: Callable
    name: str = "layer"
    label: str | None = None
    children: tuple = ()
    flow: str | None = None
    stateful: bool = False
    kind: str | None = None
    config: Mapping[str, Any] = NO_CONFIG
    inputs: tuple = ()
    decode: Decoder | None = None

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


class GradFn(NamedTuple):
    """A value-and-gradient function and what running it in pieces needs to know:
    ``fn(params, x, y, *, key=None) -> (value, grads)`` (``(value, grads, new_state)`` with
    ``state=`` when ``stateful``), ``loss`` (its :class:`fnn.Loss`, whose ``reduction``
    says whether shards and chunks may be combined by size; None when unknown) and
    ``stateful`` (the model keeps batch statistics). Calling it calls ``fn``.

    :func:`fnn.value_and_grad` makes one; :func:`fnn.threads.sharded` and
    :func:`fnn.threads.chunked` take one and return one.

    >>> import numpy as np, fnn
    >>> f = fnn.value_and_grad(fnn.linear(1), fnn.mse)
    >>> f.loss.name, f.stateful
    ('mse', False)
    >>> _, params = fnn.linear(1).init(fnn.key(0), (-1, 2))
    >>> value, grads = f(params, np.ones((3, 2)), np.zeros((3, 1)))
    >>> sorted(grads)
    ['b', 'w']
    """

    fn: Callable
    loss: Any = None
    stateful: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


__all__ = ["Decoder", "GradFn", "Input", "Layer", "NO_CONFIG", "init"]
