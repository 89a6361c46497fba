"""Loss kernels: the value and the gradient of a loss in one call, on arrays already checked
by :mod:`fnn.losses` (which words the errors).

A batch-32 cross-entropy is a dozen numpy calls on ``(32, 10)`` arrays, each costing more
Python time than arithmetic; the compiled kernel is one call that reads the logits once
(row max, log-sum-exp, gradient), which counts in a small model's step (the MLP benchmark).
"""

from __future__ import annotations

import numpy as np

from fnn.ops import _backend


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray,
                          grad: bool = True) -> tuple[float, np.ndarray | None] | None:
    """Mean over the batch of ``-log softmax(z)[label]`` for logits ``z: (N, C)`` and integer
    labels ``(N,)``, and its gradient ``(softmax(z) - onehot) / N`` (None without ``grad``);
    None when a label is outside ``[0, C)`` (checked in the same pass as the loss)."""
    if (_backend.compiled() and z.dtype in (np.float32, np.float64) and z.ndim == 2
            and z.flags.c_contiguous):
        return _backend.kernels().softmax_cross_entropy(z, labels, grad)
    n, c = z.shape
    if n and (labels.min() < 0 or labels.max() >= c):
        return None
    shifted = z - z.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    rows = np.arange(n)
    value = -float(logp[rows, labels].sum()) / n
    if not grad:
        return value, None
    d = np.exp(logp) * (1.0 / n)
    d[rows, labels] -= 1.0 / n
    return value, d
