"""Figures for training runs. Every function returns a matplotlib Figure and never calls
``plt.show()``: figures are built without pyplot, so they work headless and in notebooks
(a Figure displays inline) alike; save with ``fig.savefig(path)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.5, 3.4)):
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def curves(history, metrics: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """One panel per metric (loss, accuracy, ...), train and eval per epoch."""
    names = list(metrics) if metrics else list(dict.fromkeys([*history.train, *history.eval]))
    if not names:
        raise ValueError("curves: the history has no metrics yet")
    fig, axes = _figure(len(names))
    for ax, name in zip(axes[0], names):
        for label, section, style in (("train", history.train, "-"), ("eval", history.eval, "--")):
            if name in section:
                values = section[name]
                ax.plot(range(1, len(values) + 1), values, style, marker=".", label=label)
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch + 1, color="grey", lw=0.8, ls=":", label="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def confusion_matrix(
    y_true, y_pred, *, class_names: Sequence[str] | None = None, normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), counts or row-normalised."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(), y_pred.max()) + 1) if class_names is None else len(class_names)
    cm = sk_confusion(y_true, y_pred, labels=np.arange(n)).astype(float)
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    fig, axes = _figure(size=(0.45 * n + 2.5, 0.45 * n + 2))
    ax = axes[0, 0]
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > threshold else "black")
    acc = np.trace(cm) / max(cm.sum(), 1) if not normalize else np.mean(np.diag(cm))
    ax.set_title(title or f"confusion matrix (accuracy {acc:.2%})")
    return fig


__all__ = ["confusion_matrix", "curves"]
