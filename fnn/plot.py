"""Figures for training runs. Every function returns a matplotlib Figure and never calls
``plt.show()``: figures are built without pyplot, so they work headless and in notebooks
(a Figure displays inline) alike; save with ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnn._extras import require

require("matplotlib", "fnn.plot")  # names the extra to install when matplotlib is missing
from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.5, 3.4)):
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _suptitle(fig: Figure, title: str, fontsize: float = 10) -> None:
    """A figure title wrapped to the figure's width (narrow figures, e.g. few images in quick
    runs, would otherwise cut it off at both sides)."""
    import textwrap

    chars = max(12, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    lines = [textwrap.fill(line, chars) for line in str(title).split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


#: a log axis only where the data span at least this ratio (max / min); over a narrow range
#: such as 0.7-1.3 a log axis shows no decade and only distorts
LOG_MIN_RATIO = 5.0


def _log_worthwhile(values) -> bool:
    v = np.asarray([x for x in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(x)])
    v = v[v > 0]
    return v.size > 1 and v.max() / v.min() >= LOG_MIN_RATIO


def curves(history, metrics: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """One panel per metric (loss, accuracy, ...), train (solid) and eval (dashed) per epoch,
    with the restored best epoch marked when early stopping kept one.

    ``history`` is the :class:`fnn.History` that :func:`fnn.train` returns; ``metrics`` picks
    the panels (default: every metric it has).

    >>> import fnn
    >>> history = fnn.History(train={"loss": [1.0, 0.5, 0.4]}, eval={"loss": [1.1, 0.7, 0.8]})
    >>> fig = fnn.plot.curves(history, title="toy run")
    >>> len(fig.axes), fig.axes[0].get_ylabel()
    (1, 'loss')
    """
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
    cm = np.zeros((n, n))
    inside = (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)
    np.add.at(cm, (y_true[inside], y_pred[inside]), 1)
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


# ----------------------------------------------------------------------------- helpers

def _colors(n: int) -> list:
    """n distinct colours: tab10, tab20 beyond 10, cycling beyond 20."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _names(class_names: Sequence[str] | None, n: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(n)]
    names = [str(c) for c in class_names]
    return names + [str(i) for i in range(len(names), n)]


def _shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _display_range(a: np.ndarray) -> tuple[float, float]:
    """(0, 1) for data in [0, 1], (0, 255) for 8-bit-like integers, else the data's range."""
    if a.size == 0:
        return 0.0, 1.0
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if np.issubdtype(a.dtype, np.integer) and lo >= 0 and hi <= 255:
        return 0.0, 255.0
    return lo, (hi if hi > lo else lo + 1.0)


def _as_images(images, image_shape: Sequence[int] | None, where: str) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, 3) RGB from (N, H, W), (N, H, W, 1), (N, H, W, 3) or
    flat (N, D) with ``image_shape``."""
    a = np.asarray(images)
    expected = "(N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, D) with image_shape=(H, W)"
    if a.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"{where}: flat images {_shape_str(a.shape)} need image_shape=(H, W) "
                f"(product {a.shape[1]}); expected {expected}")
        if math.prod(image_shape) != a.shape[1]:
            raise ValueError(
                f"{where}: image_shape {_shape_str(image_shape)} has {math.prod(image_shape)} "
                f"pixels but the images {_shape_str(a.shape)} have {a.shape[1]} per row")
        a = a.reshape((a.shape[0], *image_shape))
    elif image_shape is not None and a.ndim >= 3 and tuple(a.shape[1:3]) != tuple(image_shape[:2]):
        if math.prod(a.shape[1:]) != math.prod(image_shape):
            raise ValueError(
                f"{where}: image_shape {_shape_str(image_shape)} does not match images of shape "
                f"{_shape_str(a.shape)}")
        a = a.reshape((a.shape[0], *image_shape))
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 3 or (a.ndim == 4 and a.shape[-1] == 3)):
        raise ValueError(f"{where}: expected images {expected}; got shape "
                         f"{_shape_str(np.shape(images))}")
    return a


def _show_row(axes, imgs: np.ndarray, cmap: str) -> None:
    """imshow each image of (n, H, W[, 3]) into one axis, with a shared display range."""
    vmin, vmax = _display_range(imgs)
    if imgs.ndim == 4:  # RGB: imshow ignores vmin/vmax, so scale to [0, 1] here
        imgs = np.clip((imgs.astype(np.float64) - vmin) / (vmax - vmin), 0, 1)
    for ax, img in zip(axes, imgs):
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")


def _off(ax) -> None:
    """Hide ticks and frame but keep the axis labels usable (unlike ``axis('off')``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _grid(n: int, ncols: int | None, size: float = 1.3):
    ncols = max(1, min(n, ncols if ncols else math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    width = max(size * ncols, 4.5)  # room for a suptitle even on narrow grids
    fig, axes = _figure(ncols, nrows, size=(width / ncols, size))
    flat = axes.ravel()
    for ax in flat:
        ax.set_axis_off()
    return fig, flat[:n]


# ----------------------------------------------------------------------------- classifiers

def _labels_from_output(out, m: int, where: str) -> np.ndarray:
    """Class labels from predict_fn output: (M, K>=2) argmax; (M, 1) or float (M,) as a sigmoid
    probability (> 0.5, values in [0, 1]) or a logit (> 0); integer-valued (M,) as labels."""
    out = np.asarray(out)
    if out.ndim == 0 or out.shape[0] != m or out.ndim > 2:
        raise ValueError(f"{where}: predict_fn must return (M, K) scores or (M,) labels for an "
                         f"(M, 2) input with M={m}; got shape {_shape_str(out.shape)}")
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


def decision_boundary(
    predict_fn: Callable[[np.ndarray], Any], x, y, *, resolution: int = 200,
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
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_boundary: x must be (N, 2) points; got shape "
                         f"{_shape_str(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"decision_boundary: y must be (N,) labels with N={x.shape[0]} like x; "
                         f"got shape {_shape_str(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("decision_boundary: x is empty; expected (N, 2) with N >= 1")
    if resolution < 2:
        raise ValueError(f"decision_boundary: resolution must be >= 2; got {resolution}")
    y = y.astype(int)
    lo, hi = x.min(axis=0) - padding, x.max(axis=0) + padding
    xs, ys = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    zz = _labels_from_output(predict_fn(grid), grid.shape[0], "decision_boundary")
    pred = _labels_from_output(predict_fn(x.astype(np.float32)), x.shape[0], "decision_boundary")
    acc = float(np.mean(pred == y))
    k = int(max(y.max(), zz.max(), pred.max(), len(class_names or ()) - 1)) + 1
    colors, names = _colors(k), _names(class_names, k)

    fig, axes = _figure(size=(5, 4.2))
    ax = axes[0, 0]
    ax.contourf(xx, yy, zz.reshape(xx.shape), levels=np.arange(k + 1) - 0.5, colors=colors,
                alpha=alpha)
    for c in np.unique(y):
        sel = y == c
        ax.scatter(x[sel, 0], x[sel, 1], s=14, color=colors[c], edgecolors="k", linewidths=0.4,
                   label=names[c])
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or f"decision boundary (accuracy {acc:.1%})")
    return fig


# ----------------------------------------------------------------------------- weights

def _symmetric(a: np.ndarray) -> float:
    v = float(np.max(np.abs(a))) if a.size else 0.0
    return v if v > 0 else 1.0


def weights(
    w, *, image_shape: Sequence[int] | None = None, max_units: int = 64, title: str | None = None,
) -> Figure:
    """Weights of a linear layer, ``w: (D_in, D_out)``.

    With ``image_shape`` (product D_in) each output unit's column is an image in a grid (the
    first ``max_units``, shared symmetric "RdBu_r" scale); otherwise a heatmap with a colorbar.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.weights(np.ones((16, 6)), image_shape=(4, 4))
    >>> sum(bool(ax.images) for ax in fig.axes)
    6
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"weights: w must be a linear layer's (D_in, D_out) matrix; got shape "
                         f"{_shape_str(w.shape)}")
    d_in, d_out = w.shape
    vmax = _symmetric(w)
    if image_shape is None:
        fig, axes = _figure(size=(min(10, 2.5 + 0.08 * d_out), min(8, 2 + 0.05 * d_in)))
        ax = axes[0, 0]
        im = ax.imshow(w, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_xlabel("output unit")
        ax.set_ylabel("input")
        ax.set_title(title or f"weights {_shape_str(w.shape)}")
        return fig
    if math.prod(image_shape) != d_in:
        raise ValueError(f"weights: image_shape {_shape_str(image_shape)} has "
                         f"{math.prod(image_shape)} pixels but w {_shape_str(w.shape)} has "
                         f"D_in={d_in}")
    if max_units < 1:
        raise ValueError(f"weights: max_units must be >= 1; got {max_units}")
    n = min(d_out, max_units)
    vmax = _symmetric(w[:, :n])
    fig, axes = _grid(n, None)
    im = None
    for j, ax in enumerate(axes):
        im = ax.imshow(w[:, j].reshape(image_shape), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(str(j), fontsize=7)
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.6)
    fig.suptitle(title or f"weights of {n} of {d_out} units", fontsize=10)
    return fig


def filters(kernel, *, max_filters: int = 64, channel: int | None = None,
            title: str | None = None) -> Figure:
    """Convolution kernels, one panel per output filter (the first ``max_filters``).

    conv1d ``(k, C_in, C_out)``: a line over the k taps when C_in == 1, else a C_in x k image
    (taps along x). conv2d ``(kh, kw, C_in, C_out)``: a kh x kw image of input channel 0 when
    C_in == 1, else the mean over input channels (or the given ``channel``). Shared symmetric
    "RdBu_r" scale.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.filters(np.ones((3, 3, 1, 4)))
    >>> sum(bool(ax.images) for ax in fig.axes)
    4
    """
    k = np.asarray(kernel)
    if k.ndim not in (3, 4):
        raise ValueError(f"filters: kernel must be conv1d (k, C_in, C_out) or conv2d "
                         f"(kh, kw, C_in, C_out); got shape {_shape_str(k.shape)}")
    if max_filters < 1:
        raise ValueError(f"filters: max_filters must be >= 1; got {max_filters}")
    c_in, c_out = k.shape[-2], k.shape[-1]
    if channel is not None and not 0 <= channel < c_in:
        raise ValueError(f"filters: channel {channel} out of range for C_in={c_in} in kernel "
                         f"{_shape_str(k.shape)}")
    n = min(c_out, max_filters)
    if channel is not None:
        panels, what = k[..., channel, :n], f"input channel {channel}"
    elif c_in == 1:
        panels, what = k[..., 0, :n], ""
    elif k.ndim == 4:
        panels, what = k[..., :n].mean(axis=2), f"mean over C_in={c_in}"
    else:
        panels, what = k[..., :n], ""
    kind = "conv1d" if k.ndim == 3 else "conv2d"
    vmax = _symmetric(panels)
    fig, axes = _grid(n, None, size=1.2 if k.ndim == 4 else 1.5)
    image = None
    for j, ax in enumerate(axes):
        p = panels[..., j]
        if p.ndim == 1:  # conv1d with one input channel (or a chosen one): taps as a line
            ax.set_axis_on()
            ax.plot(np.arange(p.shape[0]), p, marker=".")
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_ylim(-1.1 * vmax, 1.1 * vmax)
            ax.tick_params(labelsize=6)
        else:
            image = ax.imshow(p.T if k.ndim == 3 else p, cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                              interpolation="nearest", aspect="auto" if k.ndim == 3 else "equal")
        ax.set_title(str(j), fontsize=7)
    if image is not None:  # the diverging scale: blue negative, white 0, red positive
        fig.colorbar(image, ax=list(axes), shrink=0.6, label="weight")
    default = f"{kind} filters {_shape_str(k.shape)}: {n} of {c_out}"
    _suptitle(fig, title or (f"{default}\n({what})" if what else default))
    return fig


# ----------------------------------------------------------------------------- images

def image_grid(
    images, *, image_shape: Sequence[int] | None = None, labels: Sequence | None = None,
    ncols: int | None = None, cmap: str = "gray", title: str | None = None,
) -> Figure:
    """Images in a grid, axes off, optional per-image ``labels`` as small titles.

    ``images``: (N, H, W), (N, H, W, 1), (N, H, W, 3), or flat (N, D) with ``image_shape=(H, W)``.
    Grey values are shown on [0, 1] when the data lie there, else on the data's range.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.image_grid(np.zeros((4, 8, 8)))
    >>> len(fig.axes)
    4
    """
    imgs = _as_images(images, image_shape, "image_grid")
    n = imgs.shape[0]
    if n == 0:
        raise ValueError(f"image_grid: no images; got shape {_shape_str(np.shape(images))}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: {len(labels)} labels for {n} images")
    if ncols is not None and ncols < 1:
        raise ValueError(f"image_grid: ncols must be >= 1; got {ncols}")
    fig, axes = _grid(n, ncols if ncols else min(n, 10))
    _show_row(axes, imgs, cmap)
    if labels is not None:
        for ax, label in zip(axes, labels):
            ax.set_title(str(label), fontsize=8)
    if title:
        _suptitle(fig, title, fontsize=10)
    return fig


def image_rows(
    rows: dict[str, Any], *, image_shape: Sequence[int] | None = None, cmap: str = "gray",
    title: str | None = None,
) -> Figure:
    """One row of images per entry, e.g. ``{"original": x[:8], "noisy": xn[:8],
    "reconstruction": r[:8]}``, the name written at the left. Every entry holds the same number
    N of images (shapes as in :func:`image_grid`). Each row is shown on [0, 1] unless its data
    fall outside, then on its own range.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.image_rows({"a": np.zeros((3, 4, 4)), "b": np.ones((3, 16))},
    ...                           image_shape=(4, 4))
    >>> len(fig.axes)
    6
    """
    if not rows:
        raise ValueError("image_rows: rows is empty; expected e.g. {'original': x, ...}")
    arrays = {name: _as_images(a, image_shape, f"image_rows (row {name!r})")
              for name, a in rows.items()}
    counts = {name: a.shape[0] for name, a in arrays.items()}
    n = next(iter(counts.values()))
    if len(set(counts.values())) != 1 or n == 0:
        raise ValueError("image_rows: every row needs the same number N >= 1 of images; got "
                         + ", ".join(f"{k!r}: {v}" for k, v in counts.items()))
    fig, axes = _figure(n, len(arrays), size=(1.2, 1.2))
    for row_axes, (name, imgs) in zip(axes, arrays.items()):
        for ax in row_axes:
            _off(ax)
        _show_row(row_axes, imgs, cmap)
        row_axes[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        _suptitle(fig, title, fontsize=10)
    return fig


def reconstruction_strip(
    snapshots: Sequence, *, epochs: Sequence[int] | None = None, original=None,
    image_shape: Sequence[int] | None = None, title: str | None = None,
) -> Figure:
    """Reconstructions of the same n images over training: one row per snapshot, labelled
    "epoch e" (``epochs`` defaults to 1..len), and an optional first row "original".
    Each snapshot is (n, ...) as in :func:`image_grid`.

    >>> import numpy as np, fnn
    >>> fig = fnn.plot.reconstruction_strip([np.zeros((2, 4, 4))] * 3, epochs=[1, 5, 10])
    >>> fig.axes[2].get_ylabel()
    'epoch 5'
    """
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("reconstruction_strip: no snapshots; expected a sequence of (n, ...) "
                         "arrays, one per epoch")
    epochs = list(range(1, len(snapshots) + 1)) if epochs is None else list(epochs)
    if len(epochs) != len(snapshots):
        raise ValueError(f"reconstruction_strip: {len(epochs)} epochs for {len(snapshots)} "
                         f"snapshots")
    rows: dict[str, Any] = {}
    if original is not None:
        rows["original"] = original
    for e, snap in zip(epochs, snapshots):
        rows[f"epoch {e}"] = snap
    if len(rows) != len(snapshots) + (original is not None):
        raise ValueError(f"reconstruction_strip: epochs must be distinct; got {epochs}")
    counts = {k: np.shape(v)[0] if np.ndim(v) else 0 for k, v in rows.items()}
    if len(set(counts.values())) != 1:
        raise ValueError("reconstruction_strip: every snapshot (and original) needs the same "
                         "number n of images; got "
                         + ", ".join(f"{k!r}: {_shape_str(np.shape(v))}" for k, v in rows.items()))
    return image_rows(rows, image_shape=image_shape,
                      title=title or "reconstructions during training")


# ----------------------------------------------------------------------------- latent space

def embed_2d(z, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, d) -> (N, 2): t-SNE (``"tsne"``), PCA (``"pca"``), or ``"none"`` (the first two
    coordinates). 2-D input is returned as is; 1-D codes get a zero second coordinate.

    >>> import numpy as np, fnn
    >>> fnn.plot.embed_2d(np.eye(4, 3), method="pca").shape
    (4, 2)
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"embed_2d: z must be (N, d) codes; got shape {_shape_str(z.shape)}")
    if method not in ("tsne", "pca", "none"):
        raise ValueError(f"embed_2d: method must be 'tsne', 'pca' or 'none'; got {method!r}")
    if z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], axis=1)
    if z.shape[1] == 2 or method == "none":
        return z[:, :2].copy()
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"embed_2d: {method} needs at least 2 points; got shape "
                         f"{_shape_str(z.shape)}")
    if method == "pca":
        PCA = require("sklearn.decomposition", "fnn.plot.embed_2d(method='pca')").PCA

        return PCA(n_components=2, random_state=seed).fit_transform(z)
    TSNE = require("sklearn.manifold", "fnn.plot.embed_2d(method='tsne')").TSNE
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca",
                random_state=seed)
    return tsne.fit_transform(z)


def latent_map(
    z, labels=None, *, method: str = "tsne", class_names: Sequence[str] | None = None,
    max_points: int | None = 3000, seed: int = 0, perplexity: float = 30.0,
    title: str | None = None,
) -> Figure:
    """Latent codes ``z: (N, d)`` in 2-D (see :func:`embed_2d`), coloured by ``labels: (N,)``.
    At most ``max_points`` points, a seeded random subset, are embedded and drawn.

    >>> import numpy as np, fnn
    >>> z = np.random.default_rng(0).normal(size=(20, 2)); labels = np.arange(20) % 3
    >>> fig = fnn.plot.latent_map(z, labels, class_names=["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['a', 'b', 'c']
    """
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"latent_map: z must be (N, d) codes; got shape {_shape_str(z.shape)}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (z.shape[0],):
            raise ValueError(f"latent_map: labels must be (N,) with N={z.shape[0]} like z; got "
                             f"shape {_shape_str(labels.shape)}")
        labels = labels.astype(int)
    if max_points is not None and z.shape[0] > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(z.shape[0], max_points, replace=False))
        z = z[idx]
        labels = labels[idx] if labels is not None else None
    e = embed_2d(z, method=method, seed=seed, perplexity=perplexity)
    used = "none" if z.shape[1] <= 2 else method
    fig, axes = _figure(size=(5, 4.2))
    ax = axes[0, 0]
    if labels is None:
        ax.scatter(e[:, 0], e[:, 1], s=6, alpha=0.7)
    else:
        k = int(max(labels.max(initial=0), len(class_names or ()) - 1)) + 1
        colors, names = _colors(k), _names(class_names, k)
        for c in np.unique(labels):
            sel = labels == c
            ax.scatter(e[sel, 0], e[sel, 1], s=6, alpha=0.7, color=colors[c], label=names[c])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    axis = {"tsne": "t-SNE", "pca": "PC", "none": "z"}[used]
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.set_title(title or f"latent space ({axis if used != 'none' else 'raw'}, "
                          f"{e.shape[0]} points)")
    return fig


# ----------------------------------------------------------------------------- comparisons

def _is_numeric(values: Sequence) -> bool:
    a = np.asarray(values)
    return a.dtype != bool and np.issubdtype(a.dtype, np.number)


def sweep(
    values: Sequence, series: dict[str, Sequence[float]], *,
    errors: dict[str, Sequence[float]] | None = None, xlabel: str = "", ylabel: str = "",
    log_x: bool = False, title: str | None = None, error_label: str | None = None,
    y_limits: tuple[float | None, float | None] | None = None, log_y: bool = False,
) -> Figure:
    """A hyper-parameter sweep: x = ``values`` (numbers, or strings at categorical positions),
    one line with markers per entry of ``series`` (each as long as ``values``), optional error
    bars (e.g. std) per series from ``errors``.

    ``error_label`` says what the bars are (e.g. ``"± 1 std over 3 seeds"``; it titles the
    legend). ``y_limits=(lo, hi)`` clips the bars to the values' possible range (an accuracy
    never exceeds 100%: a bar past it would show an impossible value); either end may be None.
    ``log_y`` asks for a log y axis, used only when the values span a factor of
    :data:`LOG_MIN_RATIO` or more.

    >>> import fnn
    >>> fig = fnn.plot.sweep([1, 2], {"test": [0.9, 0.99]}, errors={"test": [0.05, 0.05]},
    ...                      error_label="± 1 std", y_limits=(0, 1))
    >>> fig.axes[0].get_legend().get_title().get_text()
    'error bars: ± 1 std'

    >>> import fnn
    >>> fig = fnn.plot.sweep([1, 2, 4], {"train": [0.5, 0.7, 0.9], "test": [0.4, 0.6, 0.7]})
    >>> len(fig.axes[0].lines)
    2
    """
    values = list(values)
    if not series:
        raise ValueError("sweep: series is empty; expected e.g. {'test accuracy': [...]}")
    for name, s in series.items():
        if np.ndim(s) != 1 or len(s) != len(values):
            raise ValueError(f"sweep: series {name!r} has shape {_shape_str(np.shape(s))}; "
                             f"expected ({len(values)},) like values")
    for name, s in (errors or {}).items():
        if name not in series:
            raise ValueError(f"sweep: errors for {name!r}, which is not a series "
                             f"(series: {', '.join(map(repr, series))})")
        if np.ndim(s) != 1 or len(s) != len(values):
            raise ValueError(f"sweep: errors {name!r} have shape {_shape_str(np.shape(s))}; "
                             f"expected ({len(values)},) like values")
    numeric = _is_numeric(values) if values else True
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    if log_x and (not numeric or np.any(x <= 0)):
        raise ValueError(f"sweep: log_x needs positive numeric values; got {values}")
    fig, axes = _figure(size=(5, 3.6))
    ax = axes[0, 0]
    lo, hi = y_limits if y_limits is not None else (None, None)
    for name, s in series.items():
        err = (errors or {}).get(name)
        y = np.asarray(s, dtype=float)
        if err is None:
            ax.plot(x, y, marker="o", label=name)
        else:
            e = np.asarray(err, dtype=float)
            below = np.minimum(e, y - lo) if lo is not None else e
            above = np.minimum(e, hi - y) if hi is not None else e
            ax.errorbar(x, y, yerr=np.stack([np.maximum(below, 0), np.maximum(above, 0)]),
                        marker="o", capsize=3, label=name)
    if log_y and _log_worthwhile([v for s in series.values() for v in s]):
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.minorticks_off()
    elif not numeric:
        ax.set_xticks(x, [str(v) for v in values])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(title=f"error bars: {error_label}" if errors and error_label else None,
              title_fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def curves_overlay(
    histories: dict[str, Any], metric: str = "loss", *, section: str = "train",
    log_y: bool = False, title: str | None = None,
) -> Figure:
    """One line per labelled run (e.g. initialisation schemes) of ``history.train[metric]``,
    ``history.eval[metric]``, or with ``section="both"`` train solid and eval dashed in the
    run's colour, with a key for the two line styles. ``histories`` maps a label to a
    :class:`fnn.training.History`. ``log_y`` asks for a log axis, used only when the values
    span a factor of :data:`LOG_MIN_RATIO` or more.

    >>> import fnn
    >>> from fnn.training import History
    >>> runs = {"a": History(train={"loss": [1.0, 0.5]}), "b": History(train={"loss": [1.0, 0.8]})}
    >>> len(fnn.plot.curves_overlay(runs).axes[0].lines)
    2
    """
    if section not in ("train", "eval", "both"):
        raise ValueError(f"curves_overlay: section must be 'train', 'eval' or 'both'; got "
                         f"{section!r}")
    if not histories:
        raise ValueError("curves_overlay: histories is empty; expected {label: History}")
    sections = ("train", "eval") if section == "both" else (section,)
    for name, h in histories.items():
        if not any(metric in getattr(h, s) for s in sections):
            have = {s: sorted(getattr(h, s)) for s in ("train", "eval")}
            raise ValueError(
                f"curves_overlay: run {name!r} has no {'/'.join(sections)} metric {metric!r}; "
                f"it has train: {have['train']}, eval: {have['eval']}")
    fig, axes = _figure(size=(5.5, 3.8))
    ax = axes[0, 0]
    colors = _colors(len(histories))
    plotted = []
    for color, (name, h) in zip(colors, histories.items()):
        labelled = False
        for s, style in (("train", "-"), ("eval", "--")):
            if s in sections and metric in getattr(h, s):
                v = getattr(h, s)[metric]
                plotted += list(v)
                ax.plot(range(1, len(v) + 1), v, style, color=color,
                        label=None if labelled else name)
                labelled = True
    if log_y and _log_worthwhile(plotted):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric if section == "both" else f"{section} {metric}")
    ax.grid(alpha=0.3)
    runs_key = ax.legend(fontsize=8, ncol=2 if len(histories) > 6 else 1)
    if section == "both":  # which line style is which, whatever the title says
        ax.add_artist(runs_key)
        ax.legend(handles=[Line2D([], [], color="0.3", ls="-", label="train"),
                           Line2D([], [], color="0.3", ls="--", label="eval")],
                  fontsize=8, loc="lower left", title="line style", title_fontsize=8)
    default = f"{metric} (solid: train, dashed: eval)" if section == "both" \
        else f"{section} {metric}"
    ax.set_title(title or default)
    return fig


def bar_table(
    labels: Sequence[str], values: Sequence[float], *, errors: Sequence[float] | None = None,
    ylabel: str = "", title: str | None = None, fmt: str = "{:.3g}",
) -> Figure:
    """Bars with their values written on them (e.g. PSNR per model).

    >>> import fnn
    >>> fig = fnn.plot.bar_table(["a", "b"], [21.5, 24.25], ylabel="PSNR (dB)")
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['21.5', '24.2']
    """
    labels = [str(v) for v in labels]
    values_a = np.asarray(values, dtype=float)
    if values_a.ndim != 1 or len(values_a) != len(labels):
        raise ValueError(f"bar_table: values have shape {_shape_str(values_a.shape)}; expected "
                         f"({len(labels)},), one per label")
    if errors is not None and (np.ndim(errors) != 1 or len(errors) != len(labels)):
        raise ValueError(f"bar_table: errors have shape {_shape_str(np.shape(errors))}; "
                         f"expected ({len(labels)},), one per label")
    fig, axes = _figure(size=(max(3.5, 0.7 * len(labels) + 1.5), 3.6))
    ax = axes[0, 0]
    bars = ax.bar(np.arange(len(labels)), values_a, yerr=errors, capsize=3 if errors else 0,
                  color=_colors(len(labels)))
    ax.bar_label(bars, labels=[fmt.format(v) for v in values_a], fontsize=8, padding=2)
    ax.set_xticks(np.arange(len(labels)), labels,
                  rotation=30 if max(map(len, labels), default=0) > 6 else 0,
                  ha="right" if max(map(len, labels), default=0) > 6 else "center")
    ax.set_ylabel(ylabel)
    ax.margins(y=0.12)
    if title:
        ax.set_title(title)
    return fig


def grouped_bars(
    groups: Sequence[str], series: dict[str, Sequence[float]], *, ylabel: str = "",
    title: str | None = None, errors: dict[str, Sequence[float]] | None = None,
    fmt: str | None = "{:.3g}", xlabel: str = "",
) -> Figure:
    """Bars per group (x) and series (colour), e.g. PSNR per noise level (groups) per model
    (series); each series holds one value per group. ``fmt=None`` leaves the values off.

    >>> import fnn
    >>> fig = fnn.plot.grouped_bars(["0.1", "0.3"], {"dae": [25, 21], "pca": [22, 18]})
    >>> len(fig.axes[0].patches)
    4
    """
    groups = [str(g) for g in groups]
    if not series:
        raise ValueError("grouped_bars: series is empty; expected {name: one value per group}")
    for name, s in {**series, **(errors or {})}.items():
        if np.ndim(s) != 1 or len(s) != len(groups):
            raise ValueError(f"grouped_bars: {name!r} has shape {_shape_str(np.shape(s))}; "
                             f"expected ({len(groups)},), one value per group")
    for name in errors or {}:
        if name not in series:
            raise ValueError(f"grouped_bars: errors for {name!r}, which is not a series")
    m = len(series)
    width = 0.8 / m
    x = np.arange(len(groups))
    fig, axes = _figure(size=(max(4, 0.5 * m * len(groups) + 2), 3.6))
    ax = axes[0, 0]
    for i, (color, (name, s)) in enumerate(zip(_colors(m), series.items())):
        err = (errors or {}).get(name)
        bars = ax.bar(x + (i - (m - 1) / 2) * width, np.asarray(s, dtype=float), width,
                      yerr=err, capsize=2 if err is not None else 0, color=color, label=name)
        if fmt:
            ax.bar_label(bars, labels=[fmt.format(float(v)) for v in s], fontsize=7, padding=2)
    ax.set_xticks(x, groups)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.12)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


__all__ = [
    "bar_table", "confusion_matrix", "curves", "curves_overlay", "decision_boundary", "embed_2d",
    "filters", "grouped_bars", "image_grid", "image_rows", "latent_map", "reconstruction_strip",
    "sweep", "weights",
]
