"""The usual optimisers, each a short :func:`~fnn.optim.chain` of transformations, and the
PyTorch optimiser each one reproduces (checked step for step in ``tests/test_optim_torch.py``).

In the update rules ``g`` is the gradient, ``p`` the param, ``lr_t`` the learning rate (a float
or a schedule ``step -> lr``, step from 0), ``t`` the update count from 1, and
``decay(...)`` means ``add_decayed_weights`` on the leaves ``mask`` selects (all when ``None``).
Every constructor checks its arguments (finite numbers in range; numpy scalars accepted) and
raises ``ValueError`` naming the optimiser, the argument, what it expects and what it got.

>>> import numpy as np, fnn
>>> opt = fnn.adamw(fnn.optim.in_epochs(fnn.optim.warmup_cosine_decay(1e-3, 1, 10), 100))
>>> params = {"00_linear": {"b": np.zeros(2, np.float32), "w": np.ones((3, 2), np.float32)}}
>>> state = opt.init(params)
>>> updates, state = opt.update(params, state, params)
>>> params = fnn.apply_updates(params, updates)
>>> params["00_linear"]["w"].dtype, fnn.optim.stats(state)
(dtype('float32'), {'lr': 0.0})
"""

from __future__ import annotations

from fnn.optim.base import Optimizer, Schedule, chain
from fnn.optim.decay import add_decayed_weights
from fnn.optim.masking import Mask, weights_only
from fnn.optim.scaling import scale_by_adam, scale_by_learning_rate, scale_by_rms, scale_by_stddev
from fnn.optim.velocity import trace
from fnn.validate import decay_rate, fraction, learning_rate, non_negative, real


def _l2(weight_decay: float, mask: Mask | None) -> tuple[Optimizer, ...]:
    return (add_decayed_weights(weight_decay, mask),) if weight_decay else ()


def sgd(lr: float | Schedule, momentum: float = 0.0, *, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0, mask: Mask | None = None) -> Optimizer:
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD(params, lr,
    momentum, dampening, weight_decay, nesterov)``::

        g  <- g + weight_decay * p                       (L2; on mask's leaves)
        v_1 = g;  v_t = momentum * v_{t-1} + (1 - dampening) * g      (if momentum > 0)
        d  = v_t, or g + momentum * v_t with nesterov, or g without momentum
        p  <- p - lr_t * d

    = ``chain(decay(weight_decay, mask), trace(momentum, nesterov, dampening),
    scale_by_learning_rate(lr))``.

    >>> import numpy as np, fnn
    >>> opt = fnn.sgd(0.1)
    >>> p = {"w": np.array([1.0])}
    >>> fnn.apply_updates(p, opt.update({"w": np.array([2.0])}, opt.init(p), p)[0])["w"].tolist()
    [0.8]
    """
    return _sgd("sgd", "momentum", lr, momentum, dampening, nesterov, weight_decay, mask)


def _sgd(who, momentum_name, lr, momentum, dampening, nesterov, weight_decay, mask):
    lr = learning_rate(who, lr)
    momentum = decay_rate(who, momentum_name, momentum)
    dampening = fraction(who, "dampening", dampening)
    weight_decay = non_negative(who, "weight_decay", weight_decay)
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError(f"{who}: nesterov needs {momentum_name} > 0 and dampening 0 (as "
                         f"torch.optim.SGD), got {momentum_name} {momentum}, dampening {dampening}")
    if momentum == 0 and dampening != 0:
        raise ValueError(f"{who}: dampening {dampening} needs {momentum_name} > 0")
    moment = (trace(momentum, nesterov=nesterov, dampening=dampening),) if momentum else ()
    return chain(*_l2(weight_decay, mask), *moment, scale_by_learning_rate(lr))


def momentum(lr: float | Schedule, beta: float = 0.9, *, nesterov: bool = False,
             dampening: float = 0.0, weight_decay: float = 0.0, mask: Mask | None = None) -> Optimizer:
    """Heavy-ball momentum: ``sgd(lr, momentum=beta, ...)`` (see :func:`sgd` for the rule),
    ``torch.optim.SGD(params, lr, momentum=beta, dampening, weight_decay, nesterov)``.

    >>> import numpy as np, fnn
    >>> opt = fnn.momentum(0.1, 0.9)
    >>> p = {"w": np.array([0.0])}
    >>> s = opt.init(p)
    >>> for _ in range(2): u, s = opt.update({"w": np.array([1.0])}, s, p); p = fnn.apply_updates(p, u)
    >>> p["w"].round(6).tolist()   # -(0.1 * 1) - 0.1 * (0.9 + 1)
    [-0.29]
    """
    return _sgd("momentum", "beta", lr, beta, dampening, nesterov, weight_decay, mask)


def _adam_args(who: str, lr, b1, b2, eps, weight_decay):
    return (learning_rate(who, lr), decay_rate(who, "b1", b1), decay_rate(who, "b2", b2),
            _adam_eps(who, eps), non_negative(who, "weight_decay", weight_decay))


def _adam_eps(who: str, eps) -> float:
    """Adam's eps must be > 0: with 0, a leaf whose gradients are all zero so far divides 0 by
    0 and its param turns nan at the first step (a fault then blamed on the learning rate)."""
    return real(who, "eps", eps, lo=0.0, lo_open=True,
                expected="a finite number > 0 (with eps = 0 a zero gradient gives 0 / 0 = nan)")


def adam(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
         weight_decay: float = 0.0, mask: Mask | None = None) -> Optimizer:
    """Adam with L2 weight decay folded into the gradient, as ``torch.optim.Adam(params, lr,
    betas=(b1, b2), eps, weight_decay)``::

        g  <- g + weight_decay * p                        (L2; on mask's leaves)
        m  = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g**2
        p  <- p - lr_t * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

    = ``chain(decay(weight_decay, mask), scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))``.
    For decoupled decay use :func:`adamw`.

    >>> import numpy as np, fnn
    >>> opt = fnn.adam(0.1)
    >>> p = {"w": np.array([1.0])}
    >>> fnn.apply_updates(p, opt.update({"w": np.array([-5.0])}, opt.init(p), p)[0])["w"].round(6).tolist()
    [1.1]
    """
    lr, b1, b2, eps, weight_decay = _adam_args("adam", lr, b1, b2, eps, weight_decay)
    return chain(*_l2(weight_decay, mask), scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))


def adamw(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
          weight_decay: float = 1e-2, mask: Mask | None = weights_only) -> Optimizer:
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW(params,
    lr, betas=(b1, b2), eps, weight_decay)``::

        m, v as in adam (on the raw g)
        p  <- p - lr_t * ((m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)
                          + weight_decay * p)         (the decay term on mask's leaves)

    = ``chain(scale_by_adam(b1, b2, eps), decay(weight_decay, mask), scale_by_learning_rate(lr))``.
    The decay scales with ``lr_t`` as in PyTorch. By default only leaves named ``w`` (kernels)
    decay (:func:`~fnn.optim.weights_only`), biases do not: PyTorch's equivalent is two param
    groups, the biases with ``weight_decay=0``; ``mask=None`` decays every leaf, as a single
    ``AdamW`` group does.

    >>> import numpy as np, fnn
    >>> opt = fnn.adamw(0.1, weight_decay=0.5)
    >>> p = {"b": np.array([1.0]), "w": np.array([1.0])}
    >>> u, _ = opt.update({"b": np.array([1.0]), "w": np.array([1.0])}, opt.init(p), p)
    >>> {k: v.round(6).tolist() for k, v in u.items()}   # -0.1 * (1 + 0.5 * p) on w only
    {'b': [-0.1], 'w': [-0.15]}
    """
    lr, b1, b2, eps, weight_decay = _adam_args("adamw", lr, b1, b2, eps, weight_decay)
    return chain(scale_by_adam(b1, b2, eps), *_l2(weight_decay, mask), scale_by_learning_rate(lr))


def rmsprop(lr: float | Schedule = 1e-2, alpha: float = 0.99, eps: float = 1e-8, *,
            momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0,
            mask: Mask | None = None) -> Optimizer:
    """RMSprop, as ``torch.optim.RMSprop(params, lr, alpha, eps, weight_decay, momentum,
    centered)``::

        g  <- g + weight_decay * p                        (L2; on mask's leaves)
        v  = alpha v + (1 - alpha) g**2;  centred: also m = alpha m + (1 - alpha) g, v -> v - m**2
        d  = g / (sqrt(v) + eps)
        b  = momentum b + d  (if momentum > 0; b starts at 0); d -> b
        p  <- p - lr_t * d

    = ``chain(decay(weight_decay, mask), scale_by_rms(alpha, eps)`` (``scale_by_stddev`` when
    centred) ``, trace(momentum), scale_by_learning_rate(lr))``.

    >>> import numpy as np, fnn
    >>> opt = fnn.rmsprop(0.01, alpha=0.75, eps=0.0)
    >>> p = {"w": np.array([1.0])}
    >>> fnn.apply_updates(p, opt.update({"w": np.array([2.0])}, opt.init(p), p)[0])["w"].round(6).tolist()
    [0.98]
    """
    lr = learning_rate("rmsprop", lr)
    alpha = decay_rate("rmsprop", "alpha", alpha)
    eps = non_negative("rmsprop", "eps", eps)
    momentum = decay_rate("rmsprop", "momentum", momentum)
    weight_decay = non_negative("rmsprop", "weight_decay", weight_decay)
    scaling = (scale_by_stddev if centered else scale_by_rms)(alpha, eps)
    moment = (trace(momentum),) if momentum else ()
    return chain(*_l2(weight_decay, mask), scaling, *moment, scale_by_learning_rate(lr))
