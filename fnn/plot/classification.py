"""Classifiers: what they confuse (:func:`confusion_matrix`) and where a 2-D classifier draws
its boundaries (:func:`decision_boundary`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fnn.plot._style import class_labels, colors, one_panel, shape_str
from fnn.validate import fraction, integer, non_negative

__all__ = ["confusion_matrix", "decision_boundary"]


def _counts(y_true: np.ndarray, y_pred: np.ndarray, n: int, normalize: bool) -> np.ndarray:
    """The ``(n, n)`` matrix of (true, predicted) pairs, labels outside ``0..n-1`` left out;
    rows scaled to sum to 1 with ``normalize``."""
    cm = np.zeros((n, n))
    inside = (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)
    np.add.at(cm, (y_true[inside], y_pred[inside]), 1)
    return cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm


def confusion_matrix(
    y_true: Any, y_pred: Any, *, class_names: Sequence[str] | None = None,
    normalize: bool = False, title: str | None = None,
) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), counts or row-normalised.

    ``y_true``, ``y_pred``: integer labels of shape ``(N,)``.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]),
    ...                                 class_names=["a", "b", "c"])
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('predicted', 'true')
    """
    y_true, y_pred = np.asarray(y_true).astype(np.int64), np.asarray(y_pred).astype(np.int64)
    n = int(max(y_true.max(), y_pred.max()) + 1) if class_names is None else len(class_names)
    cm = _counts(y_true, y_pred, n, normalize)
    names = class_labels(class_names, n)
    fig, ax = one_panel((0.45 * n + 2.5, 0.45 * n + 2))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i, j in zip(*np.nonzero(cm)):
        text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="white" if cm[i, j] > threshold else "black")
    acc = np.trace(cm) / max(cm.sum(), 1) if not normalize else np.mean(np.diag(cm))
    ax.set_title(title or f"confusion matrix (accuracy {acc:.2%})")
    return fig


def _labels_from_output(out: Any, m: int, where: str) -> np.ndarray:
    """Class labels from predict_fn output: (M, K>=2) argmax; (M, 1) or float (M,) as a sigmoid
    probability (> 0.5, values in [0, 1]) or a logit (> 0); integer-valued (M,) as labels."""
    out = np.asarray(out)
    if out.ndim == 0 or out.shape[0] != m or out.ndim > 2:
        raise ValueError(f"{where}: predict_fn must return (M, K) scores or (M,) labels for an "
                         f"(M, 2) input with M={m}; got shape {shape_str(out.shape)}")
    if out.ndim == 2 and out.shape[1] >= 2:
        return np.argmax(out, axis=1)
    scores = out.reshape(m)
    if out.ndim == 1 and (np.issubdtype(out.dtype, np.integer)
                          or (np.all(np.isfinite(scores)) and np.all(scores == np.round(scores))
                              and scores.min(initial=0) >= 0 and scores.max(initial=0) > 1)):
        return scores.astype(int)
    if out.ndim == 1 and np.all(np.isin(scores, (0, 1))):
        return scores.astype(int)
    if scores.size and scores.min() >= 0 and scores.max() <= 1:
        return (scores > 0.5).astype(int)
    return (scores > 0).astype(int)


def _points_and_labels(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x: (N, 2)`` points and ``y: (N,)`` integer labels, N >= 1, or a worded error."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_boundary: x must be (N, 2) points; got shape "
                         f"{shape_str(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"decision_boundary: y must be (N,) labels with N={x.shape[0]} like x; "
                         f"got shape {shape_str(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("decision_boundary: x is empty; expected (N, 2) with N >= 1")
    return x, y.astype(int)


def decision_boundary(
    predict_fn: Callable[[np.ndarray], Any], x: Any, y: Any, *, resolution: int = 200,
    padding: float = 0.5, class_names: Sequence[str] | None = None, title: str | None = None,
    alpha: float = 0.3,
) -> Figure:
    """Predicted classes of a 2-D classifier as filled regions, with the data on top.

    ``x``: (N, 2) points, ``y``: (N,) integer labels. ``predict_fn(grid)`` gets an (M, 2)
    float32 array and returns (M, K) scores (argmax; K == 1: a sigmoid probability > 0.5 or a
    logit > 0) or (M,) labels. The default title reports ``predict_fn``'s accuracy on ``x``.

    >>> import numpy as np, fnn
    >>> x = np.array([[-1.0, 0.0], [1.0, 0.0]]); y = np.array([0, 1])
    >>> fig = fnn.plot.decision_boundary(lambda g: (g[:, 0] > 0).astype(int), x, y, resolution=20)
    >>> fig.axes[0].get_title()
    'decision boundary (accuracy 100.0%)'
    """
    x, y = _points_and_labels(x, y)
    resolution = integer("decision_boundary", "resolution", resolution, minimum=2)
    padding = non_negative("decision_boundary", "padding", padding)
    alpha = fraction("decision_boundary", "alpha", alpha)
    lo, hi = x.min(axis=0) - padding, x.max(axis=0) + padding
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    zz = _labels_from_output(predict_fn(grid), grid.shape[0], "decision_boundary")
    pred = _labels_from_output(predict_fn(x.astype(np.float32)), x.shape[0], "decision_boundary")
    acc = float(np.mean(pred == y))
    k = int(max(y.max(), zz.max(), pred.max(), len(class_names or ()) - 1)) + 1
    palette, names = colors(k), class_labels(class_names, k)

    fig, ax = one_panel((5, 4.2))
    ax.contourf(xx, yy, zz.reshape(xx.shape), levels=np.arange(k + 1) - 0.5, colors=palette,
                alpha=alpha)
    for c in np.unique(y):
        sel = y == c
        ax.scatter(x[sel, 0], x[sel, 1], s=14, color=palette[c], edgecolors="k", linewidths=0.4,
                   label=names[c])
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or f"decision boundary (accuracy {acc:.1%})")
    return fig
