"""Metrics: functions of a model's predictions and the targets, as evaluation reports them
(:func:`fnn.evaluator`). Each returns a Python float.

>>> import numpy as np
>>> from fnn import metrics
>>> metrics.accuracy(np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([1, 1]))
0.5
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy"]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the integer label (or the one-hot's arg-max).

    ``logits``: ``(N, classes)`` scores (logits or probabilities); ``labels``: ``(N,)`` ints
    or ``(N, classes)`` one-hot rows.

    >>> import numpy as np, fnn
    >>> fnn.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=-1)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))
