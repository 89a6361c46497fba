"""Metrics: functions of a model's predictions and the targets, as evaluation reports them
(:func:`fnn.evaluator`). Each returns a Python float.

>>> import numpy as np
>>> from fnn import metrics
>>> metrics.accuracy(np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([1, 1]))
0.5
"""

from __future__ import annotations

import math

import numpy as np

from fnn.losses import cross_entropy

__all__ = ["accuracy", "bits_per_character", "perplexity", "token_cross_entropy"]


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


def token_cross_entropy(logits: np.ndarray, ids: np.ndarray, *,
                        ignore_index: int | None = None) -> float:
    """Mean cross-entropy in nats over the tokens that count (ids other than
    ``ignore_index``): ``logits`` ``(N, T, V)`` (or ``(N, V)``), ``ids`` ``(N, T)`` (``(N,)``).
    The same value as ``fnn.cross_entropy(ignore_index=...)``.

    >>> import numpy as np
    >>> round(token_cross_entropy(np.zeros((1, 2, 4)), np.array([[1, 0]]), ignore_index=0), 4)
    1.3863
    """
    loss = cross_entropy(ignore_index=ignore_index) if ignore_index is not None else cross_entropy
    return float(loss.value(np.asarray(logits), np.asarray(ids)))


def perplexity(logits: np.ndarray, ids: np.ndarray, *, ignore_index: int | None = None) -> float:
    """``exp`` of the mean cross-entropy over the tokens that count (see
    :func:`token_cross_entropy`): a language model's perplexity. For the history, give it to
    :func:`fnn.evaluator` (``metrics={"perplexity": fnn.metrics.perplexity}``).

    >>> import numpy as np
    >>> round(perplexity(np.zeros((2, 3, 5)), np.zeros((2, 3), np.int64)), 6)   # uniform over 5
    5.0
    """
    return math.exp(token_cross_entropy(logits, ids, ignore_index=ignore_index))


def bits_per_character(logits: np.ndarray, ids: np.ndarray, *,
                       ignore_index: int | None = None) -> float:
    """The mean cross-entropy over the tokens that count in bits: nats / ln 2 (a character
    model's usual figure).

    >>> import numpy as np
    >>> bits_per_character(np.zeros((1, 4, 8)), np.zeros((1, 4), np.int64))   # uniform over 8
    3.0
    """
    return token_cross_entropy(logits, ids, ignore_index=ignore_index) / math.log(2.0)
