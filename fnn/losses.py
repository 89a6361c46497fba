"""Losses as ``(value, vjp)`` pairs over predictions; every loss is a mean over the batch.

* ``mse``: squared error; ``bce``: binary cross-entropy on probabilities (clipped to
  ``[eps, 1 - eps]``, eps = 1e-7 in float32, 1e-12 in float64); ``bce_with_logits``: the same
  from logits, exact and stable; ``cross_entropy``: softmax cross-entropy from logits
  (log-sum-exp), integer labels ``(N,)`` or one-hot/probability rows ``(N, C)``; ``nll``:
  negative log-likelihood from log-probabilities (after ``log_softmax``).
* Over time: ``cross_entropy`` and ``nll`` also take ``(N, T, C)`` scores with ``(N, T)``
  integer ids (or ``(N, T, C)`` rows): a mean over the ``N * T`` tokens.
* Options, as ``torch.nn.functional.cross_entropy``'s: ``fnn.cross_entropy(ignore_index=0,
  label_smoothing=0.1, reduction="mean" | "sum" | "none")`` is a loss whose mean runs over the
  tokens that count (``Loss.terms``, which batch shards are weighted by);
  ``fnn.nll(ignore_index=, reduction=)``; ``fnn.mse(reduction=)`` (also ``bce``,
  ``bce_with_logits``).

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
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn.ops.losses import LOSSES, smoothed_rows
from fnn.validate import fraction, integer, one_of


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
    dy_pred)``. ``reduction`` says how it combines the samples of a batch, which is how batch
    shards and chunks are combined (:func:`fnn.threads.sharded`): ``"mean"`` (every fnn loss by
    default), weighted by ``terms(y_true)``, the number of terms the mean divides by (None: the
    rows; cross-entropy with ``ignore_index``: the tokens that count); ``"sum"``, summed;
    ``"none"`` (per-sample values, for evaluation) refused. ``configure(**options)``, when
    set, makes the loss with options: calling the loss calls it.

    >>> import numpy as np, fnn
    >>> fnn.mse.name, fnn.mse.reduction, fnn.mse.value(np.ones((2, 1)), np.zeros((2, 1)))
    ('mse', 'mean', 1.0)
    >>> fnn.cross_entropy(ignore_index=0).terms(np.array([[3, 1, 0, 0]]))
    2
    """

    value: Callable
    vjp: Callable
    name: str = "loss"
    reduction: str = "mean"
    terms: Callable[[Any], int] | None = None
    configure: Callable[..., Loss] | None = None

    def __call__(self, **options: Any) -> Loss:
        """The loss with ``options`` (see ``configure``)."""
        if self.configure is None:
            raise TypeError(f"{self.name}: this loss takes no options, got {sorted(options)}")
        return self.configure(**options)


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


def _tokens(name: str, z: np.ndarray, y_true) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(N, T, ..., C)`` with integer ids ``(N, T, ...)`` or rows ``(N, T, ..., C)``
    as one row per token: ``(M, C)`` and ``(M,)`` or ``(M, C)``."""
    y = np.asarray(y_true)
    if z.ndim < 2:
        raise LossError(f"{name}: predictions must be (N, classes) or (N, T, classes), "
                        f"got {z.shape}")
    lead, c = z.shape[:-1], z.shape[-1]
    if y.dtype.kind in "iu":
        if y.shape != lead:
            raise LossError(f"{name}: integer labels for predictions {z.shape} must have shape "
                            f"{lead}, got {y.shape}")
        return z.reshape(-1, c), y.reshape(-1)
    if y.shape != z.shape:
        raise LossError(f"{name}: targets must be integer labels {lead} or one-hot rows "
                        f"{z.shape}, got {y.shape} {y.dtype}")
    return z.reshape(-1, c), y.reshape(-1, c)


def _over_time(kernel: Callable, name: str, z: np.ndarray, y_true, grad: bool):
    """``kernel`` on the tokens of ``(N, T, ..., C)`` scores, the gradient shaped back."""
    z2, y2 = _tokens(name, z, y_true)
    value, d = kernel(z2, y2, grad)
    return value, (None if d is None else d.reshape(z.shape))


def _cross_entropy(y_pred, y_true, grad):
    z = y_pred
    if type(z) is not np.ndarray or z.dtype.kind != "f" or not z.ndim or not len(z):
        z = _pred("cross_entropy", y_pred)
    if z.ndim > 2:
        return _over_time(_cross_entropy, "cross_entropy", z, y_true, grad)
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
    if logp.ndim > 2:
        return _over_time(_nll, "nll", logp, y_true, grad)
    target = _class_targets("nll", logp, y_true)
    return (_nll_labels if target.ndim == 1 else _nll_rows)(logp, target, grad)


def _option_name(who: str, **options: Any) -> str:
    """``who(option=value, ...)`` for the options that are not their default."""
    defaults = {"ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"}
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items() if v != defaults[k])
    return f"{who}({shown})" if shown else who


def _reduction(who: str, reduction: str) -> str:
    return one_of(who, "reduction", reduction, ("mean", "sum", "none"))


def _no_training(name: str) -> LossError:
    return LossError(f"{name}: reduction='none' gives per-sample losses (for evaluation); "
                     "train with reduction 'mean' or 'sum'")


def _kept_tokens(name: str, z, y_true, ignore_index):
    """The token rows that count: ``(z, z2 (M, C), target, keep)``, ``keep`` the indices of
    the kept rows (None: all), ``target`` checked (labels in range)."""
    z = _pred(name, z)
    z2, target = _tokens(name, z, y_true)
    keep = None
    if target.ndim == 1 and ignore_index is not None:
        mask = target != ignore_index
        if not mask.all():
            keep = np.flatnonzero(mask)
            z2, target = z2[keep], target[keep]
    if len(z2):
        target = _class_targets(name, z2, target)
    return z, z2, target, keep


def _scatter(rows: np.ndarray, keep, total: int, tail: tuple) -> np.ndarray:
    """``rows`` (the kept tokens') in place among ``total`` rows of zeros."""
    if keep is None:
        return rows
    out = np.zeros((total, *tail), rows.dtype)
    out[keep] = rows
    return out


def _class_options(who: str, ignore_index, smoothing: float, reduction: str) -> Loss:
    """``cross_entropy`` or ``nll`` (``who``) with options (see :func:`cross_entropy_options`)."""
    name = _option_name(who, ignore_index=ignore_index, label_smoothing=smoothing,
                        reduction=reduction)
    labels, rows_kernel, each = _labels_kernel(who), LOSSES[who].dense, LOSSES[who].each
    assert each is not None

    def vjp(y_pred, y_true, grad):
        z, z2, target, keep = _kept_tokens(name, y_pred, y_true, ignore_index)
        total, m = int(np.prod(z.shape[:-1])), len(z2)
        if smoothing:
            target = smoothed_rows(target, z.shape[-1], smoothing, z.dtype)
        if reduction == "none":
            if grad:
                raise _no_training(name)
            per = each(z2, target) if m else np.zeros(0, z.dtype)
            return _scatter(per, keep, total, ()).reshape(z.shape[:-1]), None
        if m == 0:
            return math.nan, (np.zeros_like(z) if grad else None)
        value, d = (labels if target.ndim == 1 else rows_kernel)(z2, target, grad)
        if reduction == "sum":
            value, d = value * m, (None if d is None else d * float(m))
        return value, (None if d is None else _scatter(d, keep, total, z.shape[-1:]).reshape(z.shape))

    def terms(y_true) -> int:
        y = np.asarray(y_true)
        if y.dtype.kind not in "iu":
            return int(np.prod(y.shape[:-1]))
        return int(y.size if ignore_index is None else np.count_nonzero(y != ignore_index))

    return _loss(name, vjp)._replace(reduction=reduction, terms=terms)


def cross_entropy_options(ignore_index: int | None = None, label_smoothing: float = 0.0,
                          reduction: str = "mean") -> Loss:
    """Softmax cross-entropy with ``torch.nn.functional.cross_entropy``'s options, what
    ``fnn.cross_entropy(...)`` returns: ``ignore_index`` (an id, e.g. padding, whose tokens
    do not count: no loss, no gradient, not in the mean), ``label_smoothing`` ``s`` (the target
    becomes ``(1 - s) * onehot + s / C``), ``reduction``: ``"mean"`` over the tokens that
    count (nan when none does, with zero gradients, as torch), ``"sum"``, or ``"none"``: the
    per-token losses shaped like the labels (0 where ignored), for evaluation only (its
    ``vjp`` is refused). Logits ``(N, C)`` or ``(N, T, C)``, ids ``(N,)`` or ``(N, T)`` (or
    one-hot/probability rows shaped like the logits).

    >>> import numpy as np, fnn
    >>> logits, ids = np.zeros((1, 3, 4)), np.array([[2, 1, 0]])
    >>> loss = fnn.cross_entropy(ignore_index=0, label_smoothing=0.1)
    >>> loss.name, round(loss.value(logits, ids), 4), loss.terms(ids)
    ('cross_entropy(ignore_index=0, label_smoothing=0.1)', 1.3863, 2)
    """
    who = "cross_entropy"
    if ignore_index is not None:
        ignore_index = integer(who, "ignore_index", ignore_index)
    smoothing = fraction(who, "label_smoothing", label_smoothing)
    reduction = _reduction(who, reduction)
    if (ignore_index, smoothing, reduction) == (None, 0.0, "mean"):
        return cross_entropy
    return _class_options(who, ignore_index, smoothing, reduction)


def nll_options(ignore_index: int | None = None, reduction: str = "mean") -> Loss:
    """Negative log-likelihood with ``torch.nn.functional.nll_loss``'s options, what
    ``fnn.nll(...)`` returns: ``ignore_index`` and ``reduction`` as in
    :func:`cross_entropy_options`.

    >>> import numpy as np, fnn
    >>> logp = np.log(np.full((1, 3, 4), 0.25))
    >>> round(fnn.nll(ignore_index=0, reduction="sum").value(logp, np.array([[2, 1, 0]])), 4)
    2.7726
    """
    if ignore_index is not None:
        ignore_index = integer("nll", "ignore_index", ignore_index)
    reduction = _reduction("nll", reduction)
    if (ignore_index, reduction) == (None, "mean"):
        return nll
    return _class_options("nll", ignore_index, 0.0, reduction)


def dense_options(name: str, reduction: str = "mean") -> Loss:
    """``mse``, ``bce`` or ``bce_with_logits`` (``name``) with a ``reduction``: what
    ``fnn.mse(reduction=...)`` returns. ``"mean"`` over the batch (the loss itself),
    ``"sum"`` over the batch, ``"none"``: each sample's loss (summed over its feature axes),
    ``(N,)``, for evaluation only.

    >>> import numpy as np, fnn
    >>> fnn.mse(reduction="none").value(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros((2, 2)))
    array([5., 1.])
    """
    base = {"mse": mse, "bce": bce, "bce_with_logits": bce_with_logits}[name]
    reduction = _reduction(name, reduction)
    if reduction == "mean":
        return base
    each = LOSSES[name].each
    assert each is not None
    label = _option_name(name, reduction=reduction)

    def vjp(y_pred, y_true, grad):
        if reduction == "none":
            if grad:
                raise _no_training(label)
            y_pred, y_true = _same_shape(label, y_pred, y_true)
            if name != "mse":
                _probabilities(label, y_true)
            return each(y_pred, y_true), None
        value, d = base.vjp(y_pred, y_true) if grad else (base.value(y_pred, y_true), None)
        n = len(y_pred)
        return value * n, (None if d is None else d * float(n))

    return _loss(label, vjp)._replace(reduction=reduction)


mse = _dense("mse")._replace(configure=functools.partial(dense_options, "mse"))
bce = _dense("bce", probabilities=True)._replace(configure=functools.partial(dense_options, "bce"))
bce_with_logits = _dense("bce_with_logits", probabilities=True)._replace(
    configure=functools.partial(dense_options, "bce_with_logits"))
cross_entropy = _loss("cross_entropy", _cross_entropy)._replace(configure=cross_entropy_options)
nll = _loss("nll", _nll)._replace(configure=nll_options)

__all__ = ["Loss", "LossError", "bce", "bce_with_logits", "cross_entropy", "cross_entropy_options",
           "dense_options", "mse", "nll", "nll_options"]
