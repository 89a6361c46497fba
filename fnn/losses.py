"""Losses as ``(value, vjp)`` pairs over predictions; every loss is a mean over the batch.

* ``mse``: squared error; ``bce``: binary cross-entropy on probabilities (clipped to
  ``[eps, 1 - eps]``, eps = 1e-7 in float32, 1e-12 in float64); ``bce_with_logits``: the same
  from logits, exact and stable; ``cross_entropy``: softmax cross-entropy from logits
  (log-sum-exp), integer labels ``(N,)`` or one-hot/probability rows ``(N, C)``; ``nll``:
  negative log-likelihood from log-probabilities (after ``log_softmax``).

``value(y_pred, y_true) -> float`` and ``vjp(y_pred, y_true) -> (float, dy_pred)``. Per-sample
losses are **summed over the feature axes and averaged over the batch** (axis 0), so an
autoencoder's BCE is "nats per image", as in the report. This module checks the arrays and
words the errors (:class:`LossError`); the maths is in :mod:`fnn.ops.losses`.

>>> import numpy as np, fnn
>>> logits = np.array([[2.0, 0.0, -1.0]]); labels = np.array([0])
>>> round(fnn.cross_entropy.value(logits, labels), 4)
0.1698
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn.ops.losses import LOSSES


def _labels_kernel(name: str) -> Callable:
    """The integer-label kernel of the loss ``name`` (bound once, at import)."""
    kernel = LOSSES[name].labels
    if kernel is None:
        raise KeyError(f"fnn.ops.losses.LOSSES[{name!r}] has no kernel for integer labels")
    return kernel


_ce_labels, _ce_rows = _labels_kernel("cross_entropy"), LOSSES["cross_entropy"].dense
_nll_labels, _nll_rows = _labels_kernel("nll"), LOSSES["nll"].dense


class LossError(ValueError):
    """Predictions or targets a loss cannot take (a shape, a dtype, labels out of range,
    targets that are not probabilities), naming the loss.

    >>> import numpy as np, fnn
    >>> try:
    ...     fnn.mse.value(np.ones((2, 1)), np.ones((2, 3)))
    ... except fnn.LossError as err:
    ...     print(err)
    mse: targets must have the predictions' shape (2, 1), got (2, 3)
    """


class Loss(NamedTuple):
    """A loss: ``value(y_pred, y_true) -> float`` and ``vjp(y_pred, y_true) -> (float,
    dy_pred)``. ``reduction`` says how it combines the samples of a batch: ``"mean"`` (every fnn
    loss) is what batch shards and chunks need (:func:`fnn.threads.sharded`), as their results
    are combined weighted by size; a ``"sum"`` loss is refused there.

    >>> import numpy as np, fnn
    >>> fnn.mse.name, fnn.mse.reduction, fnn.mse.value(np.ones((2, 1)), np.zeros((2, 1)))
    ('mse', 'mean', 1.0)
    """

    value: Callable
    vjp: Callable
    name: str = "loss"
    reduction: str = "mean"


def _pred(name: str, y_pred) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        raise LossError(f"{name}: predictions must be floating point, got dtype {y_pred.dtype}")
    if y_pred.ndim == 0 or y_pred.shape[0] == 0:
        raise LossError(f"{name}: predictions need a non-empty batch axis, got {y_pred.shape}")
    return y_pred


def _same_shape(name: str, y_pred, y_true) -> tuple[np.ndarray, np.ndarray]:
    y_pred = _pred(name, y_pred)
    y_true = np.asarray(y_true)
    if y_true.shape != y_pred.shape:
        raise LossError(
            f"{name}: targets must have the predictions' shape {y_pred.shape}, got {y_true.shape}"
        )
    return y_pred, y_true.astype(y_pred.dtype, copy=False)


def _loss(name: str, vjp: Callable) -> Loss:
    return Loss(lambda y_pred, y_true: vjp(y_pred, y_true, False)[0],
                functools.partial(vjp, grad=True), name)


def _probabilities(name: str, y: np.ndarray) -> None:
    """Targets of a binary cross-entropy must lie in [0, 1] (probabilities, e.g. pixels)."""
    if y.size and not (0.0 <= y.min() and y.max() <= 1.0):
        raise LossError(f"{name}: targets must lie in [0, 1], got values in "
                        f"[{float(y.min()):.4g}, {float(y.max()):.4g}] (rescale them, e.g. x / 255)")


def _dense(name: str, probabilities: bool = False) -> Loss:
    """A loss whose targets have the predictions' shape (``probabilities``: in [0, 1])."""
    kernel = LOSSES[name].dense

    def vjp(y_pred, y_true, grad):
        if not (type(y_pred) is np.ndarray and type(y_true) is np.ndarray  # the usual case
                and y_pred.dtype.kind == "f" and y_true.dtype == y_pred.dtype
                and y_true.shape == y_pred.shape and y_pred.ndim and len(y_pred)):
            y_pred, y_true = _same_shape(name, y_pred, y_true)
        if probabilities:
            _probabilities(name, y_true)
        return kernel(y_pred, y_true, grad)

    return _loss(name, vjp)


def _class_targets(name: str, y_pred: np.ndarray, y_true, check_range: bool = True) -> np.ndarray:
    """Integer class indices ``(N,)`` from integer labels or one-hot / probability rows;
    ``check_range=False`` leaves the labels' range to the caller."""
    y_true = np.asarray(y_true)
    n, c = y_pred.shape[0], y_pred.shape[-1]
    if y_pred.ndim != 2:
        raise LossError(f"{name}: predictions must be (N, classes), got {y_pred.shape}")
    if y_true.dtype.kind in "iu":
        if y_true.shape != (n,):
            raise LossError(f"{name}: integer labels must have shape ({n},), got {y_true.shape}")
        if check_range and y_true.size and (y_true.min() < 0 or y_true.max() >= c):
            bad = y_true[(y_true < 0) | (y_true >= c)]
            raise LossError(
                f"{name}: labels must lie in [0, {c}) for {c} classes, got {bad[:5].tolist()}"
            )
        return y_true
    if y_true.shape != (n, c):
        raise LossError(
            f"{name}: targets must be integer labels ({n},) or one-hot ({n}, {c}), "
            f"got {y_true.shape} {y_true.dtype}"
        )
    target = y_true.astype(y_pred.dtype, copy=False)
    sums = target.sum(axis=-1)
    tol = 1e-4 if target.dtype == np.float32 else 1e-8
    bad = np.flatnonzero((np.abs(sums - 1.0) > tol) | (target < 0).any(axis=-1))
    if bad.size:
        i = int(bad[0])
        raise LossError(
            f"{name}: target rows must be one-hot (or probabilities: non-negative, summing to "
            f"1); {bad.size} of {n} are not, e.g. row {i}: {np.round(target[i], 4).tolist()}"
        )
    return target


def _cross_entropy(y_pred, y_true, grad):
    z = y_pred
    if type(z) is not np.ndarray or z.dtype.kind != "f" or not z.ndim or not len(z):
        z = _pred("cross_entropy", y_pred)
    if (type(y_true) is np.ndarray and y_true.dtype.kind in "iu" and z.ndim == 2
            and y_true.shape == z.shape[:1]):
        target = y_true  # integer labels, the usual case (the kernel checks their range)
    else:
        target = _class_targets("cross_entropy", z, y_true, check_range=False)
    if target.ndim == 1:  # integer labels: one kernel (fnn.ops.losses; numpy or compiled)
        out = _ce_labels(z, target, grad)
        if out is None:  # a label out of range: the check words the error
            _class_targets("cross_entropy", z, target)
        return out
    return _ce_rows(z, target, grad)


def _nll(y_pred, y_true, grad):
    logp = _pred("nll", y_pred)
    target = _class_targets("nll", logp, y_true)
    return (_nll_labels if target.ndim == 1 else _nll_rows)(logp, target, grad)


mse = _dense("mse")
bce = _dense("bce", probabilities=True)
bce_with_logits = _dense("bce_with_logits", probabilities=True)
cross_entropy = _loss("cross_entropy", _cross_entropy)
nll = _loss("nll", _nll)

__all__ = ["Loss", "LossError", "bce", "bce_with_logits", "cross_entropy", "mse", "nll"]
