"""Images and what a network learned: batches of images (:func:`image_grid`, :func:`image_rows`,
:func:`reconstruction_strip`), linear layers' weights (:func:`weights`) and convolution
kernels (:func:`filters`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fnn.plot._style import (
    hide_frame,
    new_figure,
    one_panel,
    panel_grid,
    shape_str,
    symmetric_limit,
    wrapped_suptitle,
)
from fnn.validate import integer, positive_int

__all__ = ["filters", "image_grid", "image_rows", "reconstruction_strip", "weights"]

_IMAGE_SHAPES = "(N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, D) with image_shape=(H, W)"


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


def _reshaped(a: np.ndarray, image_shape: Sequence[int] | None, where: str) -> np.ndarray:
    """Flat ``(N, D)`` rows, or images of another shape with as many pixels, reshaped to
    ``(N, *image_shape)``; other arrays as they are."""
    if a.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"{where}: flat images {shape_str(a.shape)} need image_shape=(H, W) "
                f"(product {a.shape[1]}); expected {_IMAGE_SHAPES}")
        if math.prod(image_shape) != a.shape[1]:
            raise ValueError(
                f"{where}: image_shape {shape_str(image_shape)} has {math.prod(image_shape)} "
                f"pixels but the images {shape_str(a.shape)} have {a.shape[1]} per row")
        return a.reshape((a.shape[0], *image_shape))
    if image_shape is not None and a.ndim >= 3 and tuple(a.shape[1:3]) != tuple(image_shape[:2]):
        if math.prod(a.shape[1:]) != math.prod(image_shape):
            raise ValueError(
                f"{where}: image_shape {shape_str(image_shape)} does not match images of shape "
                f"{shape_str(a.shape)}")
        return a.reshape((a.shape[0], *image_shape))
    return a


def _as_images(images: Any, image_shape: Sequence[int] | None, where: str) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, 3) RGB from (N, H, W), (N, H, W, 1), (N, H, W, 3) or
    flat (N, D) with ``image_shape``."""
    a = _reshaped(np.asarray(images), image_shape, where)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 3 or (a.ndim == 4 and a.shape[-1] == 3)):
        raise ValueError(f"{where}: expected images {_IMAGE_SHAPES}; got shape "
                         f"{shape_str(np.shape(images))}")
    return a


def _show_row(axes: Any, imgs: np.ndarray, cmap: str) -> None:
    """imshow each image of (n, H, W[, 3]) into one axis, with a shared display range."""
    vmin, vmax = _display_range(imgs)
    if imgs.ndim == 4:  # RGB: imshow ignores vmin/vmax, so scale to [0, 1] here
        imgs = np.clip((imgs.astype(np.float64) - vmin) / (vmax - vmin), 0, 1)
    for ax, img in zip(axes, imgs):
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")


# ----------------------------------------------------------------------------- weights

def _weights_heatmap(w: np.ndarray, title: str | None) -> Figure:
    d_in, d_out = w.shape
    vmax = symmetric_limit(w)
    fig, ax = one_panel((min(10, 2.5 + 0.08 * d_out), min(8, 2 + 0.05 * d_in)))
    im = ax.imshow(w, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xlabel("output unit")
    ax.set_ylabel("input")
    ax.set_title(title or f"weights {shape_str(w.shape)}")
    return fig


def weights(
    w: Any, *, image_shape: Sequence[int] | None = None, max_units: int = 64,
    title: str | None = None,
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
                         f"{shape_str(w.shape)}")
    if image_shape is None:
        return _weights_heatmap(w, title)
    d_in, d_out = w.shape
    if math.prod(image_shape) != d_in:
        raise ValueError(f"weights: image_shape {shape_str(image_shape)} has "
                         f"{math.prod(image_shape)} pixels but w {shape_str(w.shape)} has "
                         f"D_in={d_in}")
    n = min(d_out, positive_int("weights", "max_units", max_units))
    vmax = symmetric_limit(w[:, :n])
    fig, axes = panel_grid(n, None)
    im = None
    for j, ax in enumerate(axes):
        im = ax.imshow(w[:, j].reshape(image_shape), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(str(j), fontsize=7)
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.6)
    fig.suptitle(title or f"weights of {n} of {d_out} units", fontsize=10)
    return fig


def _filter_panels(k: np.ndarray, n: int, channel: int | None) -> tuple[np.ndarray, str]:
    """The first ``n`` filters as panels (last axis) and what they show of the input
    channels: the chosen ``channel``, the only one, their mean (conv2d) or all (conv1d)."""
    c_in = k.shape[-2]
    if channel is not None:
        return k[..., channel, :n], f"input channel {channel}"
    if c_in == 1:
        return k[..., 0, :n], ""
    if k.ndim == 4:
        return k[..., :n].mean(axis=2), f"mean over C_in={c_in}"
    return k[..., :n], ""


def filters(kernel: Any, *, max_filters: int = 64, channel: int | None = None,
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
                         f"(kh, kw, C_in, C_out); got shape {shape_str(k.shape)}")
    max_filters = positive_int("filters", "max_filters", max_filters)
    c_in, c_out = k.shape[-2], k.shape[-1]
    if channel is not None:
        channel = integer("filters", "channel", channel, minimum=0, maximum=c_in - 1)
    n = min(c_out, max_filters)
    panels, what = _filter_panels(k, n, channel)
    vmax = symmetric_limit(panels)
    fig, axes = panel_grid(n, None, size=1.2 if k.ndim == 4 else 1.5)
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
    kind = "conv1d" if k.ndim == 3 else "conv2d"
    default = f"{kind} filters {shape_str(k.shape)}: {n} of {c_out}"
    wrapped_suptitle(fig, title or (f"{default}\n({what})" if what else default))
    return fig


# ----------------------------------------------------------------------------- images

def image_grid(
    images: Any, *, image_shape: Sequence[int] | None = None, labels: Sequence | None = None,
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
        raise ValueError(f"image_grid: no images; got shape {shape_str(np.shape(images))}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: {len(labels)} labels for {n} images")
    if ncols is not None:
        ncols = positive_int("image_grid", "ncols", ncols)
    fig, axes = panel_grid(n, ncols if ncols else min(n, 10))
    _show_row(axes, imgs, cmap)
    if labels is not None:
        for ax, label in zip(axes, labels):
            ax.set_title(str(label), fontsize=8)
    if title:
        wrapped_suptitle(fig, title, fontsize=10)
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
    fig, axes = new_figure(n, len(arrays), size=(1.2, 1.2))
    for row_axes, (name, imgs) in zip(axes, arrays.items()):
        for ax in row_axes:
            hide_frame(ax)
        _show_row(row_axes, imgs, cmap)
        row_axes[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        wrapped_suptitle(fig, title, fontsize=10)
    return fig


def _snapshot_rows(snapshots: list, epochs: list, original: Any) -> dict[str, Any]:
    """``{"original": ..., "epoch e": snapshot, ...}``, checked: one distinct epoch per
    snapshot, the same number of images in every row."""
    rows: dict[str, Any] = {} if original is None else {"original": original}
    for e, snap in zip(epochs, snapshots):
        rows[f"epoch {e}"] = snap
    if len(rows) != len(snapshots) + (original is not None):
        raise ValueError(f"reconstruction_strip: epochs must be distinct; got {epochs}")
    counts = {k: np.shape(v)[0] if np.ndim(v) else 0 for k, v in rows.items()}
    if len(set(counts.values())) != 1:
        raise ValueError("reconstruction_strip: every snapshot (and original) needs the same "
                         "number n of images; got "
                         + ", ".join(f"{k!r}: {shape_str(np.shape(v))}" for k, v in rows.items()))
    return rows


def reconstruction_strip(
    snapshots: Sequence, *, epochs: Sequence[int] | None = None, original: Any = None,
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
    epoch_list = list(range(1, len(snapshots) + 1)) if epochs is None else list(epochs)
    if len(epoch_list) != len(snapshots):
        raise ValueError(f"reconstruction_strip: {len(epoch_list)} epochs for {len(snapshots)} "
                         f"snapshots")
    return image_rows(_snapshot_rows(snapshots, epoch_list, original), image_shape=image_shape,
                      title=title or "reconstructions during training")
