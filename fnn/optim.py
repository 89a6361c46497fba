"""Optimisers as pure ``(init, update)`` pairs over params trees, in the style of optax.

::

    opt = fnn.adam(1e-3)
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = fnn.apply_updates(params, updates)

``lr`` is a float or a schedule ``step -> lr`` (``step`` counts updates from 0).
``weight_decay`` adds ``weight_decay * param`` to the gradient (L2, as PyTorch's optimisers do).
Hyper-parameters are Python floats, so float32 params stay float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optree

Schedule = Callable[[int], float]


class Optimizer(NamedTuple):
    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple[Any, Any]]


class SgdState(NamedTuple):
    step: int


class MomentumState(NamedTuple):
    step: int
    velocity: Any


class AdamState(NamedTuple):
    step: int
    mu: Any
    nu: Any


def _lr(lr: float | Schedule, step: int) -> float:
    return float(lr(step)) if callable(lr) else lr


def _check_hparams(name: str, lr, **values: float) -> float | Schedule:
    if not callable(lr) and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"{name}: lr must be a positive float or a schedule step -> lr, got {lr!r}")
    for key, v in values.items():
        if not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"{name}: {key} must be a non-negative float, got {v!r}")
    return lr if callable(lr) else float(lr)


def _decayed(grads, params, weight_decay: float):
    if not weight_decay:
        return grads
    return optree.tree_map(lambda g, p: g + weight_decay * p, grads, params)


def sgd(lr: float | Schedule, *, weight_decay: float = 0.0) -> Optimizer:
    """Plain gradient descent: ``update = -lr * grad``."""
    lr = _check_hparams("sgd", lr, weight_decay=weight_decay)
    weight_decay = float(weight_decay)

    def init(params):
        return SgdState(0)

    def update(grads, state, params=None):
        g = _decayed(grads, params, weight_decay)
        scale = -_lr(lr, state.step)
        return optree.tree_map(lambda x: scale * x, g), SgdState(state.step + 1)

    return Optimizer(init, update)


def momentum(
    lr: float | Schedule, beta: float = 0.9, *, nesterov: bool = False, weight_decay: float = 0.0
) -> Optimizer:
    """Heavy-ball momentum (PyTorch's form): ``v = beta v + g``; update ``-lr v``
    (Nesterov: ``-lr (g + beta v)``)."""
    lr = _check_hparams("momentum", lr, beta=beta, weight_decay=weight_decay)
    beta, weight_decay = float(beta), float(weight_decay)

    def init(params):
        return MomentumState(0, optree.tree_map(np.zeros_like, params))

    def update(grads, state, params=None):
        g = _decayed(grads, params, weight_decay)
        v = optree.tree_map(lambda v, g: beta * v + g, state.velocity, g)
        scale = -_lr(lr, state.step)
        if nesterov:
            updates = optree.tree_map(lambda g, v: scale * (g + beta * v), g, v)
        else:
            updates = optree.tree_map(lambda v: scale * v, v)
        return updates, MomentumState(state.step + 1, v)

    return Optimizer(init, update)


def adam(
    lr: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Adam (Kingma & Ba) with bias correction; update ``-lr m_hat / (sqrt(v_hat) + eps)``."""
    lr = _check_hparams("adam", lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    b1, b2, eps, weight_decay = float(b1), float(b2), float(eps), float(weight_decay)

    def init(params):
        zeros = optree.tree_map(np.zeros_like, params)
        return AdamState(0, zeros, optree.tree_map(np.zeros_like, params))

    def update(grads, state, params=None):
        g = _decayed(grads, params, weight_decay)
        t = state.step + 1
        mu = optree.tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, g)
        nu = optree.tree_map(lambda v, g: b2 * v + (1.0 - b2) * (g * g), state.nu, g)
        # fold both bias corrections into the step size: one multiply per leaf
        step = -_lr(lr, state.step) * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        eps_hat = eps * math.sqrt(1.0 - b2**t)
        updates = optree.tree_map(lambda m, v: step * m / (np.sqrt(v) + eps_hat), mu, nu)
        return updates, AdamState(t, mu, nu)

    return Optimizer(init, update)


def apply_updates(params, updates):
    """``params + updates`` leaf-wise, cast back to each param's dtype."""
    return optree.tree_map(lambda p, u: (p + u).astype(p.dtype, copy=False), params, updates)


def step_decay(lr: float, factor: float, every: int) -> Schedule:
    """Schedule ``lr * factor ** (step // every)``."""
    return lambda step: lr * factor ** (step // every)


def cosine_decay(lr: float, steps: int, final: float = 0.0) -> Schedule:
    """Schedule from ``lr`` to ``final`` along half a cosine over ``steps`` updates."""
    return lambda step: final + 0.5 * (lr - final) * (1 + math.cos(math.pi * min(step, steps) / steps))
