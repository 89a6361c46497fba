"""Transformations that scale the updates, each beside its state: :func:`scale`,
:func:`scale_by_learning_rate` (the sign flip and the learning rate, with the fused step that
adds the result to the params), and the adaptive ones :func:`scale_by_adam`,
:func:`scale_by_rms` and :func:`scale_by_stddev`.

Hyper-parameters are Python floats (numpy scalars are accepted and converted), so float32
params and grads stay float32; all maps are ``fnn.tree.tree_map`` over the tree.

>>> import numpy as np, fnn
>>> t = fnn.optim.chain(fnn.optim.scale_by_adam(), fnn.optim.scale_by_learning_rate(0.1))
>>> t.update({"w": np.array([-3.0])}, t.init({"w": np.zeros(1)}))[0]["w"].round(6).tolist()
[0.1]
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from fnn.ops.update import adam, add_scaled, add_scaled_dicts
from fnn.optim.base import Optimizer, deprecated_count, stateless
from fnn.optim.guards import expect_state
from fnn.tree import tree_map, tree_map_unzip
from fnn.validate import Schedule, decay_rate, learning_rate, non_negative, real


def scale(factor: float) -> Optimizer:
    """``u -> factor * u``. No state.

    >>> import numpy as np, fnn
    >>> fnn.optim.scale(-2.0).update({"w": np.array([1.0])}, fnn.optim.EmptyState())[0]
    {'w': array([-2.])}
    """
    factor = real("scale", "factor", factor)

    def update(updates, state, params=None):
        return tree_map(lambda u: factor * u, updates), state

    return stateless(update)


# ----------------------------------------------------------------------------- learning rate

class ScaleByLearningRateState(NamedTuple):
    """:func:`scale_by_learning_rate`'s state: updates done and the last learning rate used.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_learning_rate(0.1)
    >>> _, state = t.update({"w": np.ones(2)}, t.init({"w": np.ones(2)}))
    >>> state
    ScaleByLearningRateState(steps=1, lr=0.1)
    """

    steps: int  # updates done; the schedule's next step
    lr: float  # the learning rate the last update used (nan before the first)

    @property
    def count(self) -> int:  # type: ignore[override]
        """Deprecated: ``steps`` (warns once)."""
        return deprecated_count(self)


def scale_by_learning_rate(lr: float | Schedule) -> Optimizer:
    """``u -> -lr_t * u`` with ``lr_t = lr(steps)`` for a schedule (``steps`` = updates done,
    from 0) or the constant ``lr``. The sign flip makes gradients into descent steps. The state
    remembers ``lr_t`` for :func:`~fnn.optim.stats`. Its fused ``step`` adds ``-lr_t * u`` to
    the params in one pass per leaf (:func:`~fnn.optim.apply_gradients`). PyTorch: the ``lr``
    of every ``torch.optim`` optimiser (with an ``LRScheduler`` stepped per update for a
    schedule).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_learning_rate(lambda step: 0.1 / (step + 1))
    >>> u, s = t.update({"w": np.array([1.0])}, t.init(None))
    >>> u, s = t.update({"w": np.array([1.0])}, s)
    >>> u["w"].tolist(), s
    ([-0.05], ScaleByLearningRateState(steps=2, lr=0.05))
    >>> t.step({"w": np.array([1.0])}, s, {"w": np.array([1.0])})[0]   # params - lr_t * u
    {'w': array([0.96666667])}
    """
    lr = learning_rate("scale_by_learning_rate", lr)

    def init(params):
        return ScaleByLearningRateState(0, math.nan)

    def rate(state):
        if type(state) is not ScaleByLearningRateState:
            expect_state("scale_by_learning_rate", state, ScaleByLearningRateState)
        steps = int(state.steps)
        if callable(lr):
            lr_t = float(lr(steps))
            if not lr_t >= 0.0 or lr_t == math.inf:  # nan fails >= 0
                raise ValueError(f"scale_by_learning_rate: the schedule gave the learning rate "
                                 f"{lr_t} at step {steps}; a learning rate must be a finite "
                                 "number >= 0 (a negative one climbs the loss)")
        else:
            lr_t = lr
        return lr_t, ScaleByLearningRateState(steps + 1, lr_t)

    def update(updates, state, params=None):
        lr_t, state = rate(state)
        return tree_map(lambda u: -lr_t * u, updates), state

    def step(updates, state, params):  # update + apply_updates, one pass per leaf, same bits
        lr_t, state = rate(state)
        new = add_scaled_dicts(params, updates, -lr_t) if type(params) is dict else None
        if new is None:  # not nested dicts of arrays: the general map (and its errors)
            new = tree_map(functools.partial(add_scaled, a=-lr_t), params, updates)
        return new, state

    return Optimizer(init, update, step)


# ----------------------------------------------------------------------------- Adam

class ScaleByAdamState(NamedTuple):
    """:func:`scale_by_adam`'s state: updates done, first and second moment estimates.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_adam()
    >>> _, state = t.update({"w": np.full(2, 2.0)}, t.init({"w": np.zeros(2)}))
    >>> state.steps, state.mu["w"].round(3), state.nu["w"].round(3)
    (1, array([0.2, 0.2]), array([0.004, 0.004]))
    """

    steps: int  # updates done
    mu: Any  # first moment, params-shaped
    nu: Any  # second moment, params-shaped

    @property
    def count(self) -> int:  # type: ignore[override]
        """Deprecated: ``steps`` (warns once)."""
        return deprecated_count(self)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam's direction (Kingma & Ba), bias-corrected, ``eps`` outside the root as PyTorch:
    ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g**2``,
    ``u = (m_t / (1 - b1**t)) / (sqrt(v_t / (1 - b2**t)) + eps)`` (t counts from 1).

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_adam()
    >>> t.update({"w": np.array([-3.0])}, t.init({"w": np.zeros(1)}))[0]["w"].round(6).tolist()
    [-1.0]
    """
    b1 = decay_rate("scale_by_adam", "b1", b1)
    b2 = decay_rate("scale_by_adam", "b2", b2)
    eps = non_negative("scale_by_adam", "eps", eps)

    def init(params):
        return ScaleByAdamState(0, tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        expect_state("scale_by_adam", state, ScaleByAdamState)
        t = int(state.steps) + 1
        # both bias corrections folded into one factor and eps: one multiply per leaf
        root_c2 = math.sqrt(1.0 - b2**t)
        c, eps_hat = root_c2 / (1.0 - b1**t), eps * root_c2
        # m, v and the direction c m / (sqrt(v) + eps_hat) in one pass per leaf
        mu, nu, direction = tree_map_unzip(
            lambda m, v, g: adam(m, v, g, b1, b2, c, eps_hat), 3, state.mu, state.nu, updates)
        return direction, ScaleByAdamState(t, mu, nu)

    return Optimizer(init, update)


# ----------------------------------------------------------------------------- RMSprop

class ScaleByRmsState(NamedTuple):
    """:func:`scale_by_rms`'s state: the running mean of the squared gradients.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_rms(decay=0.9)
    >>> _, state = t.update({"w": np.full(2, 2.0)}, t.init({"w": np.zeros(2)}))
    >>> state.nu["w"].round(3)
    array([0.4, 0.4])
    """

    nu: Any  # running mean of g**2, params-shaped


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """RMSprop's scaling, as ``torch.optim.RMSprop`` (``alpha`` = ``decay``, ``eps`` outside the
    root, no bias correction): ``v_t = decay v + (1 - decay) g**2``, ``u = g / (sqrt(v_t) + eps)``.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_rms(0.75, eps=0.0)
    >>> t.update({"w": np.array([2.0])}, t.init({"w": np.zeros(1)}))[0]["w"].tolist()   # 2 / sqrt(0.25 * 4)
    [2.0]
    """
    decay = decay_rate("scale_by_rms", "decay", decay)
    eps = non_negative("scale_by_rms", "eps", eps)

    def init(params):
        return ScaleByRmsState(tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        expect_state("scale_by_rms", state, ScaleByRmsState)
        nu = tree_map(lambda v, g: decay * v + (1.0 - decay) * (g * g), state.nu, updates)
        return tree_map(lambda g, v: g / (np.sqrt(v) + eps), updates, nu), ScaleByRmsState(nu)

    return Optimizer(init, update)


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


def scale_by_stddev(decay: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """Centred RMSprop's scaling (``torch.optim.RMSprop(centered=True)``): also
    ``m_t = decay m + (1 - decay) g``; ``u = g / (sqrt(v_t - m_t**2) + eps)``.

    >>> import numpy as np, fnn
    >>> t = fnn.optim.scale_by_stddev(0.75, eps=0.0)
    >>> t.update({"w": np.array([2.0])}, t.init({"w": np.zeros(1)}))[0]["w"].round(6).tolist()
    [2.309401]
    """
    decay = decay_rate("scale_by_stddev", "decay", decay)
    eps = non_negative("scale_by_stddev", "eps", eps)

    def init(params):
        return ScaleByStddevState(tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def update(updates, state, params=None):
        expect_state("scale_by_stddev", state, ScaleByStddevState)
        mu = tree_map(lambda m, g: decay * m + (1.0 - decay) * g, state.mu, updates)
        nu = tree_map(lambda v, g: decay * v + (1.0 - decay) * (g * g), state.nu, updates)
        out = tree_map(lambda g, m, v: g / (np.sqrt(v - m * m) + eps), updates, mu, nu)
        return out, ScaleByStddevState(mu, nu)

    return Optimizer(init, update)


__all__ = ["ScaleByAdamState", "ScaleByLearningRateState", "ScaleByRmsState",
           "ScaleByStddevState", "scale", "scale_by_adam", "scale_by_learning_rate",
           "scale_by_rms", "scale_by_stddev"]
