"""Gradient transformations: small pure ``(init, update)`` pairs and the ``chain`` that joins them.

Every optimiser in :mod:`fnn.optim.aliases` is a chain of these, in the style of optax::

    state = t.init(params)
    updates, state = t.update(grads, state, params)   # grads in, updates out, same tree
    params = apply_updates(params, updates)           # params + updates, each leaf's dtype kept

Each transformation keeps its own named state (a NamedTuple of arrays, params-shaped trees and
Python scalars: no callables, nothing pickled), so a chain's state is a tuple of named states
that ``fnn.save``-style writers can rebuild from the template ``opt.init(params)``. Counters are
Python ints; a state read back with 0-d arrays in their place keeps working.

Hyper-parameters are Python floats (numpy scalars are accepted and converted), so float32 params
and grads stay float32; all maps are ``fnn.tree.tree_map`` over the tree.

>>> import numpy as np, fnn
>>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.scale_by_learning_rate(0.1))
>>> params = {"w": np.array([1.0, 1.0])}
>>> updates, state = opt.update({"w": np.array([3.0, 4.0])}, opt.init(params), params)
>>> updates["w"].round(6).tolist(), fnn.optim.stats(state)
([-0.06, -0.08], {'grad_norm': 5.0, 'lr': 0.1})
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optree

from fnn.ops.elementwise import add_scaled
from fnn.tree import path_str, tree_leaves, tree_map

Schedule = Callable[[int], float]
Mask = Callable[[str], bool] | Any  # a predicate on the "/"-joined params path, or a bool tree


class Optimizer(NamedTuple):
    """A gradient transformation: ``state = init(params)``;
    ``updates, state = update(grads, state, params=None)``.

    >>> import numpy as np, fnn
    >>> halve = fnn.Optimizer(init=lambda params: (), update=lambda g, s, p=None: (
    ...     fnn.tree.tree_map(lambda x: -0.5 * x, g), s))
    >>> halve.update({"w": np.ones(2)}, halve.init(None))[0]
    {'w': array([-0.5, -0.5])}
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


GradientTransformation = Optimizer


# ----------------------------------------------------------------------------- validation

def _real(who: str, name: str, value: Any, ok: Callable[[float], bool], expected: str) -> float:
    """``float(value)`` if it is a finite real number (numpy scalars too) satisfying ``ok``;
    otherwise a ``ValueError`` naming ``who``, the argument, what was expected and what came."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{who}: {name} must be {expected}, got {value!r} "
                         f"({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or not ok(v):
        raise ValueError(f"{who}: {name} must be {expected}, got {value!r}")
    return v


def _positive(who: str, name: str, v: Any) -> float:
    return _real(who, name, v, lambda x: x > 0, "a finite number > 0")


def _non_negative(who: str, name: str, v: Any) -> float:
    return _real(who, name, v, lambda x: x >= 0, "a finite number >= 0")


def _decay_rate(who: str, name: str, v: Any) -> float:
    return _real(who, name, v, lambda x: 0 <= x < 1, "a number in [0, 1)")


def _learning_rate(who: str, lr: Any) -> float | Schedule:
    """A positive finite float, or a schedule whose value at step 0 is a finite number >= 0
    (warm-ups start at 0)."""
    if callable(lr):
        _real(who, "lr(0)", lr(0), lambda x: x >= 0,
              "a finite number >= 0 (lr is a schedule step -> lr)")
        return lr
    return _real(who, "lr", lr, lambda x: x > 0,
                 "a finite number > 0 or a schedule step -> lr")


# ----------------------------------------------------------------------------- states

class EmptyState(NamedTuple):
    """The state of a transformation that keeps nothing.

    >>> import numpy as np, fnn
    >>> fnn.optim.scale(-0.1).init({"w": np.ones(2)})
    EmptyState()
    """


class ScaleByLearningRateState(NamedTuple):
    """:func:`scale_by_learning_rate`'s state: updates done and the last learning rate used.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_learning_rate(0.1)
    >>> _, state = t.update({"w": np.ones(2)}, t.init({"w": np.ones(2)}))
    >>> state
    ScaleByLearningRateState(count=1, lr=0.1)
    """

    count: int  # updates done; the schedule's next step
    lr: float  # the learning rate the last update used (nan before the first)


class TraceState(NamedTuple):
    """:func:`trace`'s (momentum's) state: updates done and the momentum buffer.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.trace(0.9)
    >>> _, state = t.update({"w": np.ones(2)}, t.init({"w": np.zeros(2)}))
    >>> state.count, state.trace["w"]
    (1, array([1., 1.]))
    """

    count: int
    trace: Any  # momentum buffer, params-shaped


class ScaleByAdamState(NamedTuple):
    """:func:`scale_by_adam`'s state: updates done, first and second moment estimates.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_adam()
    >>> _, state = t.update({"w": np.full(2, 2.0)}, t.init({"w": np.zeros(2)}))
    >>> state.count, state.mu["w"].round(3), state.nu["w"].round(3)
    (1, array([0.2, 0.2]), array([0.004, 0.004]))
    """

    count: int
    mu: Any  # first moment, params-shaped
    nu: Any  # second moment, params-shaped


class ScaleByRmsState(NamedTuple):
    """:func:`scale_by_rms`'s state: the running mean of the squared gradients.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_rms(decay=0.9)
    >>> _, state = t.update({"w": np.full(2, 2.0)}, t.init({"w": np.zeros(2)}))
    >>> state.nu["w"].round(3)
    array([0.4, 0.4])
    """

    nu: Any  # running mean of g**2, params-shaped


class ScaleByStddevState(NamedTuple):
    """:func:`scale_by_stddev`'s (centred RMSprop's) state: running means of the gradients
    and of their squares.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_stddev(decay=0.9)
    >>> _, state = t.update({"w": np.full(2, 2.0)}, t.init({"w": np.zeros(2)}))
    >>> state.mu["w"].round(3), state.nu["w"].round(3)
    (array([0.2, 0.2]), array([0.4, 0.4]))
    """

    mu: Any  # running mean of g
    nu: Any  # running mean of g**2


class ClipByGlobalNormState(NamedTuple):
    """:func:`clip_by_global_norm`'s state: the global norm of the last gradients, before
    clipping (what :func:`stats` reports as ``"grad_norm"``).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.clip_by_global_norm(1.0)
    >>> _, state = t.update({"w": np.array([3.0, 4.0])}, t.init({"w": np.zeros(2)}))
    >>> state
    ClipByGlobalNormState(grad_norm=5.0)
    """

    grad_norm: float  # global L2 norm of the last gradients, before clipping (nan before any)


class MaskedState(NamedTuple):
    """:func:`masked`'s state: the inner transformation's state over the selected leaves.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.masked(fnn.optim.trace(0.9), lambda path: path.endswith("w"))
    >>> state = t.init({"w": np.zeros(2), "b": np.zeros(1)})
    >>> type(state).__name__, type(state.inner).__name__
    ('MaskedState', 'TraceState')
    """

    inner: Any  # the inner transformation's state over the masked leaves only


# ----------------------------------------------------------------------------- transforms

def _empty_init(params) -> EmptyState:
    return EmptyState()


def scale(factor: float) -> Optimizer:
    """``u -> factor * u``. No state.

    >>> import numpy as np, fnn
    >>> fnn.optim.scale(-2.0).update({"w": np.array([1.0])}, fnn.optim.EmptyState())[0]
    {'w': array([-2.])}
    """
    factor = _real("scale", "factor", factor, lambda x: True, "a finite number")

    def update(updates, state, params=None):
        return tree_map(lambda u: factor * u, updates), state

    return Optimizer(_empty_init, update)


def scale_by_learning_rate(lr: float | Schedule) -> Optimizer:
    """``u -> -lr_t * u`` with ``lr_t = lr(count)`` for a schedule (``count`` = updates done,
    from 0) or the constant ``lr``. The sign flip makes gradients into descent steps. The state
    remembers ``lr_t`` for :func:`stats`. PyTorch: the ``lr`` of every ``torch.optim`` optimiser
    (with an ``LRScheduler`` stepped per update for a schedule).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_learning_rate(lambda step: 0.1 / (step + 1))
    >>> u, s = t.update({"w": np.array([1.0])}, t.init(None))
    >>> u, s = t.update({"w": np.array([1.0])}, s)
    >>> u["w"].tolist(), s
    ([-0.05], ScaleByLearningRateState(count=2, lr=0.05))
    """
    lr = _learning_rate("scale_by_learning_rate", lr)

    def init(params):
        return ScaleByLearningRateState(0, math.nan)

    def rate(state):
        count = int(state.count)
        lr_t = float(lr(count)) if callable(lr) else lr
        if not math.isfinite(lr_t):
            raise ValueError(f"scale_by_learning_rate: the schedule gave lr {lr_t} at step {count}")
        return lr_t, ScaleByLearningRateState(count + 1, lr_t)

    def update(updates, state, params=None):
        lr_t, state = rate(state)
        return tree_map(lambda u: -lr_t * u, updates), state

    def step(updates, state, params):
        lr_t, state = rate(state)
        return tree_map(functools.partial(add_scaled, a=-lr_t), params, updates), state

    update.step = step  # update + apply_updates in one pass per leaf: see apply_gradients
    return Optimizer(init, update)


def add_decayed_weights(weight_decay: float, mask: Mask | None = None) -> Optimizer:
    """``u -> u + weight_decay * param`` on the leaves ``mask`` selects (all when ``None``).
    No state (a :class:`MaskedState` around none with a mask).

    Before the moment estimates it is L2 regularisation (PyTorch's ``weight_decay`` on SGD,
    Adam, RMSprop); after them and before :func:`scale_by_learning_rate` it is decoupled weight
    decay, ``param -= lr * weight_decay * param`` (``torch.optim.AdamW``). ``mask``: see
    :func:`masked`.

    >>> import numpy as np, fnn
    >>> params = {"b": np.array([2.0]), "w": np.array([2.0])}
    >>> t = fnn.optim.add_decayed_weights(0.5, mask=fnn.optim.weights_only)
    >>> t.update({"b": np.array([1.0]), "w": np.array([1.0])}, t.init(params), params)[0]
    {'b': array([1.]), 'w': array([2.])}
    """
    weight_decay = _non_negative("add_decayed_weights", "weight_decay", weight_decay)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights: update needs params (update(grads, state, params))")
        return tree_map(lambda u, p: u + weight_decay * p, updates, params), state

    t = Optimizer(_empty_init, update)
    return t if mask is None else masked(t, mask)


def trace(decay: float, *, nesterov: bool = False, dampening: float = 0.0) -> Optimizer:
    """Momentum in PyTorch's form (``torch.optim.SGD``'s buffer, before the learning rate):
    ``v_1 = g_1``, ``v_t = decay * v_{t-1} + (1 - dampening) * g_t``; the update is ``v_t``,
    or ``g_t + decay * v_t`` with ``nesterov``. ``decay = 0`` passes grads through.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.trace(0.9, dampening=0.5)
    >>> s = t.init({"w": np.zeros(1)})
    >>> for _ in range(2): u, s = t.update({"w": np.array([1.0])}, s)
    >>> u["w"].tolist()   # 1, then 0.9 * 1 + 0.5 * 1
    [1.4]
    """
    decay = _decay_rate("trace", "decay", decay)
    dampening = _real("trace", "dampening", dampening, lambda x: 0 <= x <= 1, "a number in [0, 1]")
    if nesterov and (decay == 0 or dampening != 0):
        raise ValueError(f"trace: nesterov needs decay > 0 and dampening 0 (as torch.optim.SGD), "
                         f"got decay {decay}, dampening {dampening}")
    keep = 1.0 - dampening

    def init(params):
        return TraceState(0, tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        count = int(state.count)
        if count == 0:
            v = updates  # PyTorch starts the buffer at the first gradient, undamped
        elif keep == 1.0:
            v = tree_map(lambda v, g: decay * v + g, state.trace, updates)
        else:
            v = tree_map(lambda v, g: decay * v + keep * g, state.trace, updates)
        out = tree_map(lambda g, v: g + decay * v, updates, v) if nesterov else v
        return out, TraceState(count + 1, v)

    return Optimizer(init, update)


scale_by_momentum = trace


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam's direction (Kingma & Ba), bias-corrected, ``eps`` outside the root as PyTorch:
    ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g**2``,
    ``u = (m_t / (1 - b1**t)) / (sqrt(v_t / (1 - b2**t)) + eps)`` (t counts from 1).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_adam()
    >>> t.update({"w": np.array([-3.0])}, t.init({"w": np.zeros(1)}))[0]["w"].round(6).tolist()
    [-1.0]
    """
    b1 = _decay_rate("scale_by_adam", "b1", b1)
    b2 = _decay_rate("scale_by_adam", "b2", b2)
    eps = _non_negative("scale_by_adam", "eps", eps)

    def init(params):
        return ScaleByAdamState(0, tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def first(m, g):  # b1 m + (1 - b1) g; in place on fresh arrays only (fewer temporaries)
        out = np.multiply(g, 1.0 - b1)
        out += b1 * m
        return out

    def second(v, g):  # b2 v + (1 - b2) g**2
        out = np.multiply(g, g)
        out *= 1.0 - b2
        out += b2 * v
        return out

    def update(updates, state, params=None):
        t = int(state.count) + 1
        mu = tree_map(first, state.mu, updates)
        nu = tree_map(second, state.nu, updates)
        # both bias corrections folded into one factor and eps: one multiply per leaf
        root_c2 = math.sqrt(1.0 - b2**t)
        c, eps_hat = root_c2 / (1.0 - b1**t), eps * root_c2

        def direction(m, v):  # c m / (sqrt(v) + eps_hat)
            den = np.asarray(np.sqrt(v))  # an array also for 0-d leaves (out= needs one)
            den += eps_hat
            return np.divide(c * m, den, out=den)

        return tree_map(direction, mu, nu), ScaleByAdamState(t, mu, nu)

    return Optimizer(init, update)


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """RMSprop's scaling, as ``torch.optim.RMSprop`` (``alpha`` = ``decay``, ``eps`` outside the
    root, no bias correction): ``v_t = decay v + (1 - decay) g**2``, ``u = g / (sqrt(v_t) + eps)``.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_rms(0.75, eps=0.0)
    >>> t.update({"w": np.array([2.0])}, t.init({"w": np.zeros(1)}))[0]["w"].tolist()   # 2 / sqrt(0.25 * 4)
    [2.0]
    """
    decay = _decay_rate("scale_by_rms", "decay", decay)
    eps = _non_negative("scale_by_rms", "eps", eps)

    def init(params):
        return ScaleByRmsState(tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        nu = tree_map(lambda v, g: decay * v + (1.0 - decay) * (g * g), state.nu, updates)
        return tree_map(lambda g, v: g / (np.sqrt(v) + eps), updates, nu), ScaleByRmsState(nu)

    return Optimizer(init, update)


def scale_by_stddev(decay: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """Centred RMSprop's scaling (``torch.optim.RMSprop(centered=True)``): also
    ``m_t = decay m + (1 - decay) g``; ``u = g / (sqrt(v_t - m_t**2) + eps)``.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_stddev(0.75, eps=0.0)
    >>> t.update({"w": np.array([2.0])}, t.init({"w": np.zeros(1)}))[0]["w"].round(6).tolist()
    [2.309401]
    """
    decay = _decay_rate("scale_by_stddev", "decay", decay)
    eps = _non_negative("scale_by_stddev", "eps", eps)

    def init(params):
        return ScaleByStddevState(tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        mu = tree_map(lambda m, g: decay * m + (1.0 - decay) * g, state.mu, updates)
        nu = tree_map(lambda v, g: decay * v + (1.0 - decay) * (g * g), state.nu, updates)
        out = tree_map(lambda g, m, v: g / (np.sqrt(v - m * m) + eps), updates, mu, nu)
        return out, ScaleByStddevState(mu, nu)

    return Optimizer(init, update)


def global_norm(tree) -> float:
    """``sqrt(sum of squares of every entry of every leaf)`` as a Python float.

    >>> import numpy as np
    >>> global_norm({"a": np.array([3.0]), "b": {"w": np.array([[4.0]], np.float32)}})
    5.0
    """
    return math.sqrt(sum(float(np.vdot(x, x)) for x in tree_leaves(tree)))


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """Rescale all leaves together so their global L2 norm is at most ``max_norm``, exactly as
    ``torch.nn.utils.clip_grad_norm_(params, max_norm)``: with ``n`` = :func:`global_norm` of
    ``u``, ``u -> u * min(1, max_norm / (n + 1e-6))``. The state keeps ``n`` (before clipping)
    for :func:`stats`.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.clip_by_global_norm(1.0)
    >>> u, s = t.update({"a": np.array([3.0]), "b": np.array([4.0])}, t.init(None))
    >>> [round(float(x[0]), 4) for x in u.values()], s.grad_norm
    ([0.6, 0.8], 5.0)
    """
    max_norm = _positive("clip_by_global_norm", "max_norm", max_norm)

    def init(params):
        return ClipByGlobalNormState(math.nan)

    def update(updates, state, params=None):
        norm = global_norm(updates)
        factor = max_norm / (norm + 1e-6)
        if factor < 1.0:
            updates = tree_map(lambda u: factor * u, updates)
        return updates, ClipByGlobalNormState(norm)

    return Optimizer(init, update)


def clip(max_delta: float) -> Optimizer:
    """Clip every entry to ``[-max_delta, max_delta]``
    (``torch.nn.utils.clip_grad_value_(params, max_delta)``). No state.

    >>> import numpy as np, fnn
    >>> fnn.optim.clip(1.0).update({"w": np.array([-3.0, 0.5, 2.0])}, fnn.optim.EmptyState())[0]
    {'w': array([-1. ,  0.5,  1. ])}
    """
    max_delta = _positive("clip", "max_delta", max_delta)

    def update(updates, state, params=None):
        return tree_map(lambda u: np.clip(u, -max_delta, max_delta), updates), state

    return Optimizer(_empty_init, update)


def chain(*transforms: Optimizer) -> Optimizer:
    """Apply ``transforms`` in order (each one's output is the next one's input); the state is
    the tuple of their states.

    >>> import numpy as np, fnn
    >>> opt = fnn.optim.chain(fnn.optim.clip(1.0), fnn.optim.scale_by_learning_rate(0.5))
    >>> opt.update({"w": np.array([4.0])}, opt.init({"w": np.zeros(1)}))[0]
    {'w': array([-0.5])}
    """
    for i, t in enumerate(transforms):
        if not (isinstance(t, tuple) and len(t) == 2 and all(map(callable, t))):
            raise TypeError(f"chain: transform {i} must be an (init, update) pair, got {t!r}")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def run(updates, state, params, n):
        if len(state) != len(transforms):
            raise ValueError(f"chain: state has {len(state)} entries for {len(transforms)} transforms")
        new = []
        for t, s in zip(transforms[:n], state):
            updates, s = t.update(updates, s, params)
            new.append(s)
        return updates, new

    def update(updates, state, params=None):
        updates, new = run(updates, state, params, len(transforms))
        return updates, tuple(new)

    last = getattr(transforms[-1].update, "step", None) if transforms else None
    if last is not None:  # ends with scale_by_learning_rate: fuse it with apply_updates
        def step(updates, state, params):
            updates, new = run(updates, state, params, len(transforms) - 1)
            params, s = last(updates, state[-1], params)
            return params, (*new, s)

        update.step = step
    return Optimizer(init, update)


# ----------------------------------------------------------------------------- masks

def weights_only(path: str) -> bool:
    """The default weight-decay mask: ``True`` for leaves named ``w`` (linear and conv kernels,
    ``"00_linear/w"``), ``False`` for biases (``b``) and anything else (normalisation scales
    and shifts), the usual choice (biases and scales are not decayed).

    >>> weights_only("03_linear/w"), weights_only("03_linear/b")
    (True, False)
    """
    return path.rsplit("/", 1)[-1] == "w"


def _mask_flags(mask: Mask, tree, who: str) -> tuple[list, list, Any, list[bool]]:
    paths, leaves, spec = optree.tree_flatten_with_path(tree)
    keys = [path_str(p) for p in paths]
    if callable(mask):
        return keys, leaves, spec, [bool(mask(k)) for k in keys]
    flags = optree.tree_leaves(mask)
    if optree.tree_structure(mask) != spec:
        raise ValueError(f"{who}: the mask tree has a different structure from the params "
                         f"({len(flags)} leaves, params {len(leaves)}); pass a bool per leaf or a "
                         f"predicate on the params path")
    return keys, leaves, spec, [bool(f) for f in flags]


def masked(inner: Optimizer, mask: Mask) -> Optimizer:
    """Apply ``inner`` only to the leaves ``mask`` selects; the others pass through unchanged
    (as ``optax.masked``). ``mask`` is a predicate on the ``"/"``-joined params path
    (``"00_linear/w"``; e.g. :func:`weights_only`) or a tree of bools shaped like the params.
    ``inner`` sees, and keeps state for, a flat dict ``{path: leaf}`` of the selected leaves.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.masked(fnn.optim.scale(0.0), lambda path: path.startswith("a"))
    >>> t.update({"a": np.ones(1), "b": np.ones(1)}, t.init({"a": np.ones(1), "b": np.ones(1)}))[0]
    {'a': array([0.]), 'b': array([1.])}
    """

    def select(tree):
        keys, leaves, _, flags = _mask_flags(mask, tree, "masked")
        return {k: x for k, x, f in zip(keys, leaves, flags) if f}

    def init(params):
        return MaskedState(inner.init(select(params)))

    def update(updates, state, params=None):
        keys, leaves, spec, flags = _mask_flags(mask, updates, "masked")
        chosen = {k: x for k, x, f in zip(keys, leaves, flags) if f}
        new, inner_state = inner.update(chosen, state.inner,
                                        None if params is None else select(params))
        out = [new[k] if f else x for k, x, f in zip(keys, leaves, flags)]
        return optree.tree_unflatten(spec, out), MaskedState(inner_state)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- applying, stats

def apply_updates(params, updates):
    """``params + updates`` leaf-wise, cast back to each param's dtype.

    >>> import numpy as np, fnn
    >>> fnn.apply_updates({"w": np.ones(2, np.float32)}, {"w": np.array([0.5, 1.0])})["w"]
    array([1.5, 2. ], dtype=float32)
    """
    return tree_map(_add, params, updates)


def _add(p, u):
    """``p + u`` in ``p``'s dtype (one leaf of :func:`apply_updates`)."""
    return (p + u).astype(p.dtype, copy=False)


def apply_gradients(optimizer: Optimizer, grads, state, params) -> tuple[Any, Any]:
    """``(new_params, new_state)``: ``optimizer.update`` then :func:`apply_updates`, what
    every training step does. A chain that ends with :func:`scale_by_learning_rate` (every
    optimiser in :mod:`fnn.optim.aliases`) does the scaling and the addition in one pass per
    leaf, with the same bits as the two calls; any other optimiser runs the two calls.

    >>> import numpy as np, fnn
    >>> opt = fnn.sgd(0.5)
    >>> params = {"w": np.ones(2, np.float32)}
    >>> new, state = fnn.optim.apply_gradients(opt, {"w": np.array([1.0, 2.0], np.float32)},
    ...                                        opt.init(params), params)
    >>> new["w"], fnn.optim.stats(state)
    (array([0.5, 0. ], dtype=float32), {'lr': 0.5})
    """
    step = getattr(optimizer.update, "step", None)
    if step is not None:
        return step(grads, state, params)
    updates, state = optimizer.update(grads, state, params)
    return apply_updates(params, updates), state


def stats(opt_state) -> dict[str, float]:
    """What the last update used, read from an optimiser state: ``{"lr": ...}`` from the
    :func:`scale_by_learning_rate` in it, and ``"grad_norm"`` (the global norm of the gradients
    before clipping) when a :func:`clip_by_global_norm` is in the chain. The first of each found
    (depth first, in chain order) counts; values are nan before the first update; ``{}`` when the
    state has neither. For per-step metrics: ``metrics.update(fnn.optim.stats(opt_state))``.

    >>> import numpy as np, fnn
    >>> opt = fnn.adamw(1e-3)
    >>> params = {"w": np.ones(2)}
    >>> _, state = opt.update({"w": np.ones(2)}, opt.init(params), params)
    >>> fnn.optim.stats(state)
    {'lr': 0.001}
    """
    out: dict[str, float] = {}

    def walk(node):
        if isinstance(node, ScaleByLearningRateState):
            out.setdefault("lr", float(node.lr))
        elif isinstance(node, ClipByGlobalNormState):
            out.setdefault("grad_norm", float(node.grad_norm))
        elif isinstance(node, (tuple, list)):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)

    walk(opt_state)
    return out
