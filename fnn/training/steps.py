"""Declared step and evaluation functions: what a function tells :func:`fnn.train` about
itself, in fields rather than in attributes set on it.

A plain function works too, but declares nothing: the loop then learns the metric names at the
first step, and a checkpointed run's fingerprint cannot tell a changed model or optimiser from
the same one (``train`` warns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["EvalFn", "StepFn"]


class StepFn(NamedTuple):
    """A training step ``fn(state, batch) -> (state, metrics)`` and what it declares to
    :func:`fnn.train`; calling it calls ``fn``.

    ``metric_names``: the metrics it returns (early stopping's ``monitor`` is then checked
    before the first step); ``fingerprint``: a JSON-like description of what it computes
    (model, loss, optimiser, ...) stored with checkpoints, so that resuming with a changed one
    is refused. :func:`fnn.supervised_step` returns one; wrap your own with
    ``fnn.StepFn(fn, ...)``, or keep a built one's declarations with ``step._replace(fn=...)``.

    >>> import fnn
    >>> step = fnn.StepFn(lambda s, batch: (s + 1, {"loss": 0.5}), metric_names=("loss",),
    ...                   fingerprint={"model": "counter"})
    >>> step(0, None), step.metric_names
    ((1, {'loss': 0.5}), ('loss',))
    """

    fn: Callable[[Any, Any], tuple[Any, dict]]
    metric_names: tuple[str, ...] | None = None
    fingerprint: Any = None

    def __call__(self, state: Any, batch: Any) -> tuple[Any, dict]:
        return self.fn(state, batch)


class EvalFn(NamedTuple):
    """An evaluation ``fn(state) -> {name: value}`` and what it declares to :func:`fnn.train`
    (see :class:`StepFn`); calling it calls ``fn``. :func:`fnn.evaluator` returns one.

    >>> import fnn
    >>> eval_fn = fnn.EvalFn(lambda s: {"score": 2.0 * s}, metric_names=("score",))
    >>> eval_fn(3), eval_fn.metric_names
    ({'score': 6.0}, ('score',))
    """

    fn: Callable[[Any], dict]
    metric_names: tuple[str, ...] | None = None
    fingerprint: Any = None

    def __call__(self, state: Any) -> dict:
        return self.fn(state)


def metric_names(fn: Any) -> tuple[str, ...] | None:
    """The metric names ``fn`` declares (a :class:`StepFn` or :class:`EvalFn` that has them),
    else None."""
    if isinstance(fn, (StepFn, EvalFn)) and fn.metric_names is not None:
        return tuple(fn.metric_names)
    return None


def declared_fingerprint(fn: Any) -> Any:
    """The fingerprint ``fn`` declares (a :class:`StepFn` or :class:`EvalFn`), else None."""
    return fn.fingerprint if isinstance(fn, (StepFn, EvalFn)) else None


def plain(fn: Any) -> Callable:
    """The function a declared one wraps (``fn`` itself when it is plain or a subclass that
    calls otherwise): the loop calls it directly, so a StepFn costs nothing per step."""
    return fn.fn if type(fn) in (StepFn, EvalFn) else fn
