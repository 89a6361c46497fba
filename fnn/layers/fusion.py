"""Layer fusions: :data:`FUSIONS`, the one table ``(kind_a, kind_b) -> builder`` of adjacent
layer pairs that :func:`fnn.serial` runs as one step (the same numbers as the pair, fewer
passes over memory). Pairs are found by the layers' declared ``kind``; a builder reads their
``config`` and returns a :class:`Fused` pair (or None when it does not apply to that pair).
:func:`plan` makes the decisions once, when ``serial`` is built.

The fusions: a ``relu()`` followed by a max-pool (:func:`fnn.ops.pool.max_pool` with
``relu=True``: ``max(relu(x)) = relu(max(x))``, its gradient routed to the arg-max where the
maximum is positive); an ``embedding`` followed by a recurrent layer (its input projection
through the table, :func:`embedding_recurrent`; the same sums grouped by id); a ``linear``
followed by ``tanh()`` (one step of a small MLP instead of two: the same kernels, less
per-layer work per training step).

>>> import fnn
>>> from fnn.layers.fusion import plan
>>> [(i, pair is not None) for i, pair in plan([fnn.relu(), fnn.max_pool2d(2), fnn.flatten()])]
[(0, True), (2, False)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from fnn.checks import no_params
from fnn.core import Layer
from fnn.layers.arguments import layout
from fnn.layers.base import rank_checker
from fnn.layers.pooling import pool_geometry
from fnn.layers.recurrent import embedding_step
from fnn.ops import activations
from fnn.ops.pool import max_pool, max_pool_backward


class Fused(NamedTuple):
    """Two adjacent layers ``a, b`` as one step: ``apply(params_a, params_b, x) -> y`` and
    ``vjp(params_a, params_b, x, input_grad) -> (y, pullback)`` with ``pullback(dy) ->
    (dparams_a, dparams_b, dx)`` (``dx`` None unless ``input_grad``); ``x`` is ``a``'s input,
    ``y`` ``b``'s output. Both check their inputs as the layers would (:func:`fnn.serial`
    blames an error on the layer that gives it alone).

    >>> import numpy as np, fnn
    >>> from fnn.layers.fusion import fuse
    >>> pair = fuse(fnn.relu(), fnn.max_pool1d(2))
    >>> pair.apply({}, {}, np.array([[[-1.0], [-2.0], [3.0], [1.0]]])).ravel()
    array([0., 3.])
    """

    apply: Callable
    vjp: Callable


Step = tuple[int, "Fused | None"]  # a layer's index in a serial, and its fused pair if any


def relu_max_pool(relu: Layer, pool: Layer) -> Fused:
    """``relu()`` then a max-pool (kind ``"max_pool"``, config ``nd, kernel, stride,
    padding``) as one :func:`fnn.ops.pool.max_pool` with ``relu=True``.

    >>> import numpy as np, fnn
    >>> from fnn.layers.fusion import relu_max_pool
    >>> y, pullback = relu_max_pool(fnn.relu(), fnn.max_pool1d(2)).vjp(
    ...     {}, {}, np.array([[[-1.0], [-2.0], [3.0], [1.0]]]), True)
    >>> y.ravel(), pullback(np.ones_like(y))[2].ravel()
    (array([0., 3.]), array([0., 0., 1., 0.]))
    """
    config = pool.config
    nd, label, relu_label = config["nd"], pool.label or pool.name, relu.label or relu.name
    geom = pool_geometry(label, nd, config["kernel"], config["stride"], config["padding"])
    check, rank = rank_checker(label, (nd + 2,), layout(nd)), nd + 2

    def checked(params_a, params_b, x) -> np.ndarray:
        if not (type(params_a) is dict and not params_a):
            no_params(relu_label, params_a)
        if not (type(params_b) is dict and not params_b):
            no_params(label, params_b)
        if not (type(x) is np.ndarray and x.dtype.kind == "f" and x.ndim == rank):
            x = check(x)
        return x

    def apply(params_a, params_b, x):
        x = checked(params_a, params_b, x)
        return max_pool(x, geom(x.shape[1:-1]), True)[0]

    def vjp(params_a, params_b, x, input_grad=True):
        x = checked(params_a, params_b, x)
        g = geom(x.shape[1:-1])
        y, arg = max_pool(x, g, True)
        return y, lambda dy: ({}, {}, max_pool_backward(dy, arg, g, y) if input_grad else None)

    return Fused(apply, vjp)


def embedding_recurrent(embedding: Layer, recurrent: Layer) -> Fused | None:
    """An ``embedding`` then an ``rnn``/``gru``/``lstm`` taking ``x`` alone: the recurrent
    layer's input projection through the table, ``(table @ w_ih)[ids]``, and its gradients
    from the ``dxw`` rows summed per id, when there are more than twice as many ids as table
    rows (:func:`fnn.layers.recurrent.embedding_step`).

    >>> import fnn
    >>> from fnn.layers.fusion import embedding_recurrent
    >>> embedding_recurrent(fnn.embedding(65, 8), fnn.lstm(16)) is not None
    True
    >>> embedding_recurrent(fnn.embedding(65, 8), fnn.lstm(16, mask=True)) is None
    True
    """
    pair = embedding_step(embedding, recurrent)
    return None if pair is None else Fused(*pair)


def linear_tanh(linear: Layer, tanh: Layer) -> Fused:
    """A ``linear`` layer (or any of kind ``"linear"`` without state) then ``tanh()`` as one
    step: the linear layer's own ``apply``/``vjp`` (its checks and kernels), then
    :func:`fnn.ops.activations.tanh` and, backward, :func:`~fnn.ops.activations.tanh_vjp`.

    >>> import numpy as np, fnn
    >>> from fnn.layers.fusion import linear_tanh
    >>> pair = linear_tanh(fnn.linear(2), fnn.tanh())
    >>> p = {"w": np.ones((3, 2)), "b": np.zeros(2)}
    >>> y, pullback = pair.vjp(p, {}, np.full((1, 3), 0.1), True)
    >>> y.round(4), pullback(np.ones_like(y))[2].round(4)
    (array([[0.2913, 0.2913]]), array([[1.8303, 1.8303, 1.8303]]))
    """
    tanh_label = tanh.label or tanh.name

    def check_b(params_b) -> None:
        if not (type(params_b) is dict and not params_b):
            no_params(tanh_label, params_b)

    def apply(params_a, params_b, x):
        y = linear.apply(params_a, x)
        check_b(params_b)
        return activations.tanh(y)

    def vjp(params_a, params_b, x, input_grad=True):
        z, back = linear.vjp(params_a, x, input_grad=input_grad)
        check_b(params_b)
        y = activations.tanh(z)

        def pullback(dy):
            grads, dx = back(activations.tanh_vjp(z, y, dy))
            return grads, {}, dx

        return y, pullback

    return Fused(apply, vjp)


def _linear_tanh(a: Layer, b: Layer) -> Fused | None:
    """:func:`linear_tanh` for a stateless ``a`` and a plain ``tanh()`` ``b``."""
    return None if a.stateful or b.config else linear_tanh(a, b)


#: Adjacent pairs :func:`fnn.serial` fuses, by the layers' kinds.
FUSIONS: Mapping[tuple[str, str], Callable[[Layer, Layer], Fused | None]] = MappingProxyType({
    ("relu", "max_pool"): relu_max_pool,
    ("embedding", "rnn"): embedding_recurrent,
    ("embedding", "gru"): embedding_recurrent,
    ("embedding", "lstm"): embedding_recurrent,
    ("linear", "tanh"): _linear_tanh,
})


def fuse(a: Layer, b: Layer) -> Fused | None:
    """The fused step of ``a`` then ``b`` when :data:`FUSIONS` has their kinds' pair (and its
    builder takes them), else None.

    >>> import fnn
    >>> from fnn.layers.fusion import fuse
    >>> fuse(fnn.relu(), fnn.max_pool2d(2)) is not None, fuse(fnn.relu(), fnn.avg_pool2d(2))
    (True, None)
    """
    if a.kind is None or b.kind is None:
        return None
    builder = FUSIONS.get((a.kind, b.kind))
    return None if builder is None else builder(a, b)


def plan(layers: Sequence[Layer]) -> tuple[Step, ...]:
    """How :func:`fnn.serial` runs ``layers``: ``(i, pair)`` steps covering each layer once,
    left to right, ``pair`` the :class:`Fused` step of layers ``i`` and ``i + 1`` or None
    (layer ``i`` alone).

    >>> import fnn
    >>> from fnn.layers.fusion import plan
    >>> [(i, pair is None) for i, pair in plan([fnn.relu(), fnn.relu(), fnn.max_pool1d(2)])]
    [(0, True), (1, False)]
    """
    steps: list[Step] = []
    i = 0
    while i < len(layers):
        pair = fuse(layers[i], layers[i + 1]) if i + 1 < len(layers) else None
        steps.append((i, pair))
        i += 2 if pair is not None else 1
    return tuple(steps)


__all__ = ["FUSIONS", "Fused", "embedding_recurrent", "fuse", "linear_tanh", "plan",
           "relu_max_pool"]
