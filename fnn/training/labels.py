"""Checks of what a classifier is given and gives, made before any work: labels against the
model's number of outputs (for :func:`fnn.fit` and :func:`fnn.evaluator`), accuracy that does
not count rows of NaN predictions as class 0, and the ``(params, model_state)`` pair that
:func:`fnn.fit` returns for a model with state, given back as params.

>>> import numpy as np, fnn
>>> from fnn.training.labels import check_labels
>>> check_labels("evaluator", fnn.linear(3), np.zeros((4, 2), np.float32), np.array([0, 1, 2, 3]))
Traceback (most recent call last):
...
ValueError: evaluator: y has labels outside [0, 3) for the model's 3 outputs: 3 (row 3)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fnn.core import Layer
from fnn.initializers import shapes_only
from fnn.keys import key as make_key
from fnn.locking import caller_level

__all__ = ["accuracy", "check_labels", "check_not_pair", "classifies"]

#: losses whose targets are class indices
CLASS_LOSSES = ("cross_entropy", "nll")


def classifies(loss: Any, accuracy: bool = False) -> bool:
    """Whether integer targets are class indices: accuracy is measured, or the loss is one of
    :data:`CLASS_LOSSES`."""
    return bool(accuracy) or getattr(loss, "name", None) in CLASS_LOSSES


def _output_shape(model: Layer, x: Any) -> tuple | None:
    """The model's output shape for inputs like ``x``, worked out without drawing or
    allocating weights; None when it cannot tell."""
    try:
        with shapes_only():
            return tuple(model.init(make_key(0), (-1, *np.shape(x)[1:]))[0])
    except Exception:  # noqa: BLE001  (the model will say what is wrong when it runs)
        return None


def check_labels(who: str, model: Layer, x: Any, y: Any, name: str = "y") -> None:
    """Integer labels ``y`` (``(N,)``, or ``(N, T)`` for a sequence) must lie in
    ``[0, classes)``, ``classes`` being the model's number of outputs, its last axis (a model
    with one output, a binary one, is not checked)."""
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu" or labels.ndim < 1 or not labels.size:
        return
    out_shape = _output_shape(model, x)
    if out_shape is None or len(out_shape) != labels.ndim + 1 or not isinstance(
            out_shape[-1], (int, np.integer)) or out_shape[-1] < 2:
        return
    classes = int(out_shape[-1])
    bad = np.flatnonzero((labels.reshape(len(labels), -1) < 0).any(axis=1)
                         | (labels.reshape(len(labels), -1) >= classes).any(axis=1))
    if bad.size:
        first = [labels[i][(labels[i] < 0) | (labels[i] >= classes)].flat[0]
                 if labels.ndim > 1 else labels[i] for i in bad[:5]]
        shown = ", ".join(f"{v} (row {i})" for v, i in zip(first, bad[:5]))
        raise ValueError(f"{who}: {name} has labels outside [0, {classes}) for the model's "
                         f"{classes} outputs: {shown}{', ...' if bad.size > 5 else ''}")


def accuracy(who: str, pred: np.ndarray, y: Any) -> float:
    """:func:`fnn.accuracy`, but NaN (with a warning) when a row of predictions is not finite,
    instead of counting it as class 0."""
    from fnn.metrics import accuracy as plain_accuracy

    finite = np.isfinite(pred).reshape(len(pred), -1).all(axis=1)
    if not finite.all():
        warnings.warn(f"{who}: {int((~finite).sum())} of {len(pred)} rows of predictions are "
                      "NaN or infinite; accuracy is NaN", RuntimeWarning,
                      stacklevel=caller_level())
        return float("nan")
    return plain_accuracy(pred, y)


def check_not_pair(who: str, model: Layer, params: Any) -> None:
    """Refuse the ``(params, model_state)`` pair :func:`fnn.fit` returns for a model with
    state, given as ``params``."""
    if isinstance(params, tuple) and len(params) == 2 and all(isinstance(p, dict)
                                                              for p in params):
        raise ValueError(f"{who}: params is a (params, model_state) pair, what fnn.fit returns "
                         f"for a model with state ({model.name}); pass params=pair[0], "
                         "model_state=pair[1]")
