"""The optimiser protocol: :class:`Optimizer`, the :func:`chain` that joins transformations,
and applying updates to params (:func:`apply_updates`, :func:`apply_gradients`).

Every optimiser is a chain of small transformations, in the style of optax::

    state = t.init(params)
    updates, state = t.update(grads, state, params)   # grads in, updates out, same tree
    params = apply_updates(params, updates)           # params + updates, each leaf's dtype kept
    params, state = apply_gradients(t, grads, state, params)   # the same, fused when declared

Each transformation keeps its own named state (a NamedTuple of arrays, params-shaped trees and
Python scalars: no callables, nothing pickled), so a chain's state is a tuple of named states
that ``fnn.save``-style writers can rebuild from the template ``opt.init(params)``. Counters are
Python ints; a state read back with 0-d arrays in their place keeps working.

>>> import numpy as np, fnn
>>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.scale_by_learning_rate(0.1))
>>> params = {"w": np.array([1.0, 1.0])}
>>> updates, state = opt.update({"w": np.array([3.0, 4.0])}, opt.init(params), params)
>>> updates["w"].round(6).tolist(), fnn.optim.stats(state)
([-0.06, -0.08], {'grad_norm': 5.0, 'lr': 0.1})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from fnn._deprecated import warn_once
from fnn.optim.guards import check_gradients
from fnn.tree import tree_map
from fnn.validate import Schedule

Step = Callable[[Any, Any, Any], tuple[Any, Any]]  # step(grads, state, params) -> (params, state)


class Optimizer(NamedTuple):
    """A gradient transformation: ``state = init(params)``;
    ``updates, state = update(grads, state, params=None)``; and, optionally, the declared fused
    ``new_params, state = step(grads, state, params)``: ``update`` then :func:`apply_updates`
    in one pass, with the same bits (:func:`apply_gradients` runs it when it is not ``None``).

    An ``Optimizer(init, update)`` of your own has ``step=None`` and runs the two calls, so
    wrapping an optimiser's ``update`` never silently skips your wrapper (``opt._replace(
    update=...)`` keeps the old ``step``: pass ``step=None`` too).

    >>> import numpy as np, fnn
    >>> halve = fnn.Optimizer(init=lambda params: (), update=lambda g, s, p=None: (
    ...     fnn.tree.tree_map(lambda x: -0.5 * x, g), s))
    >>> halve.update({"w": np.ones(2)}, halve.init(None))[0], halve.step
    ({'w': array([-0.5, -0.5])}, None)
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]
    step: Step | None = None


GradientTransformation = Optimizer


class EmptyState(NamedTuple):
    """The state of a transformation that keeps nothing.

    >>> import numpy as np, fnn
    >>> fnn.optim.scale(-0.1).init({"w": np.ones(2)})
    EmptyState()
    """


def _empty_init(params) -> EmptyState:
    return EmptyState()


def stateless(update: Callable[..., tuple[Any, Any]]) -> Optimizer:
    """The transformation ``update(updates, state, params=None) -> (updates, state)`` that keeps
    no state (its state is an :class:`EmptyState`).

    >>> import numpy as np, fnn
    >>> neg = fnn.optim.stateless(lambda u, s, p=None: (fnn.tree.tree_map(lambda x: -x, u), s))
    >>> neg.update({"w": np.ones(1)}, neg.init(None))
    ({'w': array([-1.])}, EmptyState())
    """
    return Optimizer(_empty_init, update)


def deprecated_count(state: Any) -> int:
    """``state.steps``, warning once that ``count`` (the old name of a state's update counter,
    which shadowed ``tuple.count``) is now ``steps``."""
    name = f"fnn.optim.{type(state).__name__}"
    warn_once(f"{name}.count", f"{name}.steps", stacklevel=4)  # 4: the line reading .count
    return state.steps


# ----------------------------------------------------------------------------- chain

def _as_transform(i: int, t: Any) -> Optimizer:
    """``t`` as an :class:`Optimizer`: an ``(init, update)`` or ``(init, update, step)`` tuple."""
    if not (isinstance(t, tuple) and len(t) in (2, 3) and callable(t[0]) and callable(t[1])
            and (len(t) == 2 or t[2] is None or callable(t[2]))):
        raise TypeError(f"chain: transform {i} must be an Optimizer (an (init, update) pair, "
                        f"optionally with a fused step), got {t!r}")
    return t if type(t) is Optimizer else Optimizer(*t)


def chain(*transforms: Optimizer) -> Optimizer:
    """Apply ``transforms`` in order (each one's output is the next one's input); the state is
    the tuple of their states. When the last transform declares a fused ``step`` (e.g.
    :func:`~fnn.optim.scale_by_learning_rate`) the chain declares one too: the others' updates,
    then that step.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.chain(fnn.optim.clip(1.0), fnn.optim.scale_by_learning_rate(0.5))
    >>> opt.update({"w": np.array([4.0])}, opt.init({"w": np.zeros(1)}))[0]
    {'w': array([-0.5])}
    >>> opt.step is not None
    True
    """
    ts = tuple(_as_transform(i, t) for i, t in enumerate(transforms))

    def init(params):
        return tuple(t.init(params) for t in ts)

    def update(updates, state, params=None):
        if params is not None:
            check_gradients(updates, params, "chain.update")
        updates, new = _run(ts, updates, state, params, len(ts))
        return updates, tuple(new)

    return Optimizer(init, update, _chain_step(ts))


def _run(ts: Sequence[Optimizer], updates, state, params, n: int) -> tuple[Any, list]:
    """The first ``n`` transforms' updates, and their new states."""
    if len(state) != len(ts):
        raise ValueError(f"chain: state has {len(state)} entries for {len(ts)} transforms")
    new = []
    for t, s in zip(ts[:n], state):
        updates, s = t.update(updates, s, params)
        new.append(s)
    return updates, new


def _chain_step(ts: Sequence[Optimizer]) -> Step | None:
    """The chain's fused step when its last transform declares one, else ``None``."""
    last = ts[-1].step if ts else None
    if last is None:
        return None
    n = len(ts) - 1

    def step(updates, state, params):
        updates, new = _run(ts, updates, state, params, n)
        params, s = last(updates, state[-1], params)
        return params, (*new, s)

    return step


# ----------------------------------------------------------------------------- applying

def apply_updates(params, updates):
    """``params + updates`` leaf-wise, cast back to each param's dtype.

    >>> import numpy as np, fnn
    >>> fnn.apply_updates({"w": np.ones(2, np.float32)}, {"w": np.array([0.5, 1.0])})["w"]
    array([1.5, 2. ], dtype=float32)

    ``updates`` must have the params' keys and shapes (an error names the path otherwise).
    """
    check_gradients(updates, params, "apply_updates")
    return tree_map(_add, params, updates)


def _add(p, u):
    """``p + u`` in ``p``'s dtype (one leaf of :func:`apply_updates`)."""
    return (p + u).astype(p.dtype, copy=False)


def apply_gradients(optimizer: Optimizer, grads, state, params) -> tuple[Any, Any]:
    """``(new_params, new_state)``: ``optimizer.update`` then :func:`apply_updates`, what
    every training step does. An optimiser that declares a fused ``step`` (every chain that
    ends with :func:`~fnn.optim.scale_by_learning_rate`: every optimiser in
    :mod:`fnn.optim.aliases`) runs it instead: the scaling and the addition in one pass per
    leaf, with the same bits as the two calls.

    >>> import numpy as np, fnn
    >>> opt = fnn.sgd(0.5)
    >>> params = {"w": np.ones(2, np.float32)}
    >>> new, state = fnn.optim.apply_gradients(opt, {"w": np.array([1.0, 2.0], np.float32)},
    ...                                        opt.init(params), params)
    >>> new["w"], fnn.optim.stats(state)
    (array([0.5, 0. ], dtype=float32), {'lr': 0.5})

    ``grads`` must have the params' keys and shapes: an error names the path otherwise.
    """
    check_gradients(grads, params, "apply_gradients")
    step = getattr(optimizer, "step", None)  # an (init, update) NamedTuple of one's own: None
    if step is not None:
        return step(grads, state, params)
    updates, state = optimizer.update(grads, state, params)
    return tree_map(_add, params, updates), state


__all__ = ["EmptyState", "GradientTransformation", "Optimizer", "Schedule", "Step",
           "apply_gradients", "apply_updates", "chain", "stateless"]
