"""Loss kernels: a loss's value and gradient in one call, on arrays already checked by
:mod:`fnn.losses` (which words the errors), and :data:`LOSSES`, the one table
``name -> LossKernel(dense, labels)``.

Every loss is the per-sample loss summed over the feature axes and averaged over the batch
(axis 0). A kernel is ``kernel(pred, target, grad=True) -> (value, dpred)`` (``dpred`` None
without ``grad``): ``dense`` takes targets shaped like the predictions (values, probabilities,
one-hot or probability rows), ``labels`` integer class labels ``(N,)`` and returns None when
a label is outside ``[0, C)`` (checked in the same pass, the caller words the error).

A batch-32 cross-entropy is a dozen numpy calls on ``(32, 10)`` arrays, each costing more
Python time than arithmetic; the compiled kernel is one call that reads the logits once
(row max, log-sum-exp, gradient), which counts in a small model's step (the MLP benchmark).

>>> import numpy as np
>>> from fnn.ops.losses import LOSSES
>>> value, grad = LOSSES["mse"].dense(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
>>> value, grad.ravel()
(2.5, array([1., 2.]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from fnn.ops import _backend

Result = tuple[float, "np.ndarray | None"]


class LossKernel(NamedTuple):
    """A loss's kernels by kind of target: ``dense(pred, target, grad)`` for targets shaped
    like the predictions, ``labels(pred, labels, grad)`` for integer labels (None: the loss
    takes no labels), ``each(pred, target)``: the per-sample (per-row) values.

    >>> from fnn.ops.losses import LOSSES
    >>> [name for name, k in LOSSES.items() if k.labels is not None]
    ['cross_entropy', 'nll']
    """

    dense: Callable[..., Result]
    labels: Callable[..., Result | None] | None = None
    each: Callable[..., np.ndarray] | None = None


def mse(y_pred: np.ndarray, y_true: np.ndarray, grad: bool = True) -> Result:
    """``sum((y_pred - y_true)**2) / N``; gradient ``2 (y_pred - y_true) / N``."""
    diff = y_pred - y_true
    n = y_pred.shape[0]
    value = float(np.vdot(diff, diff)) / n
    return value, (diff * (2.0 / n) if grad else None)


def bce_clip(dtype) -> float:
    """The clip of :func:`bce`'s probabilities: 1e-7 in float32, 1e-12 in float64.

    >>> import numpy as np
    >>> from fnn.ops.losses import bce_clip
    >>> bce_clip(np.float32), bce_clip(np.float64)
    (1e-07, 1e-12)
    """
    return 1e-7 if np.dtype(dtype) == np.float32 else 1e-12


def bce(p: np.ndarray, y: np.ndarray, grad: bool = True) -> Result:
    """Binary cross-entropy of probabilities ``p`` (clipped to ``[eps, 1 - eps]``, where the
    gradient is zero outside) against targets ``y`` in ``[0, 1]``."""
    eps = bce_clip(p.dtype)
    q = np.clip(p, eps, 1.0 - eps)
    n = p.shape[0]
    value = -float(np.sum(y * np.log(q) + (1.0 - y) * np.log1p(-q))) / n
    if not grad:
        return value, None
    inside = (p > eps) & (p < 1.0 - eps)  # the clip has zero derivative outside
    return value, np.where(inside, (q - y) / (q * (1.0 - q)) / n, 0.0).astype(p.dtype)


def bce_with_logits(z: np.ndarray, y: np.ndarray, grad: bool = True) -> Result:
    """Binary cross-entropy from logits ``z``, exact and stable (no exp of a positive
    number); gradient ``(sigmoid(z) - y) / N``."""
    n = z.shape[0]
    per = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    value = float(per.sum()) / n
    if not grad:
        return value, None
    e = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return value, ((sig - y) / n).astype(z.dtype, copy=False)


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray,
                          grad: bool = True) -> Result | None:
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


def softmax_cross_entropy_rows(z: np.ndarray, target: np.ndarray, grad: bool = True) -> Result:
    """Softmax cross-entropy for one-hot or probability rows ``target: (N, C)``:
    ``-sum(target * log_softmax(z)) / N``; gradient ``(softmax(z) sum(target) - target) / N``."""
    shifted = z - z.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    value, d_logp = nll_rows(logp, target)
    if not grad:
        return value, None
    assert d_logp is not None
    return value, np.exp(logp) * (-d_logp.sum(axis=-1, keepdims=True)) + d_logp


def nll(logp: np.ndarray, labels: np.ndarray, grad: bool = True) -> Result:
    """Negative log-likelihood of log-probabilities ``logp: (N, C)`` at integer labels
    (in range): ``-sum(logp[i, label_i]) / N``."""
    n = logp.shape[0]
    value = -float(logp[np.arange(n), labels].sum()) / n
    if not grad:
        return value, None
    d = np.zeros_like(logp)
    d[np.arange(n), labels] = -1.0 / n
    return value, d


def nll_rows(logp: np.ndarray, target: np.ndarray, grad: bool = True) -> Result:
    """Negative log-likelihood against one-hot or probability rows: ``-sum(target * logp) /
    N``."""
    n = logp.shape[0]
    value = -float(np.vdot(target, logp)) / n
    return value, (target * (-1.0 / n) if grad else None)


def softmax_cross_entropy_each(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each row's softmax cross-entropy, ``(M,)``: ``-log_softmax(z)[label]`` for integer
    labels ``(M,)`` (in range), ``-sum(target * log_softmax(z))`` for rows ``(M, C)``.

    >>> import numpy as np
    >>> softmax_cross_entropy_each(np.zeros((2, 4)), np.array([0, 3])).round(4).tolist()
    [1.3863, 1.3863]
    """
    shifted = z - z.max(axis=-1, keepdims=True)
    return nll_each(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)), target)


def _per_sample(per: np.ndarray) -> np.ndarray:
    return per.reshape(len(per), -1).sum(axis=1)


def mse_each(y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Each sample's squared error, summed over its feature axes: ``(N,)``.

    >>> import numpy as np
    >>> mse_each(np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros((2, 2))).tolist()
    [5.0, 0.0]
    """
    return _per_sample((y_pred - y_true) ** 2)


def bce_each(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each sample's binary cross-entropy (probabilities clipped as :func:`bce`): ``(N,)``."""
    eps = bce_clip(p.dtype)
    q = np.clip(p, eps, 1.0 - eps)
    return _per_sample(-(y * np.log(q) + (1.0 - y) * np.log1p(-q)))


def bce_with_logits_each(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each sample's binary cross-entropy from logits: ``(N,)``."""
    return _per_sample(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))


def nll_each(logp: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each row's negative log-likelihood, ``(M,)``: ``-logp[label]`` for integer labels,
    ``-sum(target * logp)`` for rows.

    >>> import numpy as np
    >>> nll_each(np.log(np.full((1, 4), 0.25)), np.array([2])).round(4).tolist()
    [1.3863]
    """
    if target.ndim == 1:
        return -logp[np.arange(len(logp)), target]
    return -np.einsum("ij,ij->i", target, logp)


def smoothed_rows(target: np.ndarray, classes: int, smoothing: float, dtype) -> np.ndarray:
    """Label smoothing as ``torch.nn.functional.cross_entropy(label_smoothing=s)``: the target
    rows ``(1 - s) * onehot + s / classes`` from integer labels ``(M,)`` (or probability rows
    ``(M, classes)``, smoothed the same way).

    >>> import numpy as np
    >>> smoothed_rows(np.array([1]), 4, 0.2, np.float64).tolist()
    [[0.05, 0.8500000000000001, 0.05, 0.05]]
    """
    if target.ndim == 1:
        rows = np.zeros((len(target), classes), dtype)
        rows[np.arange(len(target)), target] = 1.0
    else:
        rows = target.astype(dtype, copy=True)
    rows *= 1.0 - smoothing
    rows += smoothing / classes
    return rows


#: Every loss by name: its kernels by kind of target (:mod:`fnn.losses` checks the arrays
#: and picks one).
LOSSES: Mapping[str, LossKernel] = MappingProxyType({
    "mse": LossKernel(mse, None, mse_each),
    "bce": LossKernel(bce, None, bce_each),
    "bce_with_logits": LossKernel(bce_with_logits, None, bce_with_logits_each),
    "cross_entropy": LossKernel(softmax_cross_entropy_rows, softmax_cross_entropy,
                                softmax_cross_entropy_each),
    "nll": LossKernel(nll_rows, nll, nll_each),
})

__all__ = ["LOSSES", "LossKernel", "bce", "bce_clip", "bce_each", "bce_with_logits",
           "bce_with_logits_each", "mse", "mse_each", "nll", "nll_each", "nll_rows", "smoothed_rows", "softmax_cross_entropy", "softmax_cross_entropy_each",
           "softmax_cross_entropy_rows"]
