"""What every family of figures shares (private to :mod:`fnn.plot`): new figures and panel
grids, distinct colours, class labels, wrapped titles, shapes in messages, and when a log
axis is worth drawing."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

#: a log axis only where the data span at least this ratio (max / min); over a narrow range
#: such as 0.7-1.3 a log axis shows no decade and only distorts
LOG_MIN_RATIO = 5.0


def new_figure(ncols: int = 1, nrows: int = 1,
               size: tuple[float, float] = (4.5, 3.4)) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of ``nrows x ncols`` panels of ``size`` inches each, and its
    axes as an ``(nrows, ncols)`` array (never squeezed)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def one_panel(size: tuple[float, float]) -> tuple[Figure, Any]:
    """A figure of one panel of ``size`` inches, and that panel's axes."""
    fig, axes = new_figure(size=size)
    return fig, axes[0, 0]


def panel_grid(n: int, ncols: int | None, size: float = 1.3) -> tuple[Figure, np.ndarray]:
    """``n`` square panels in rows of ``ncols`` (default about sqrt(n)), axes off; the figure
    is at least 4.5 inches wide so that a title fits even on narrow grids."""
    ncols = max(1, min(n, ncols if ncols else math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    width = max(size * ncols, 4.5)
    fig, axes = new_figure(ncols, nrows, size=(width / ncols, size))
    flat = axes.ravel()
    for ax in flat:
        ax.set_axis_off()
    return fig, flat[:n]


def wrapped_suptitle(fig: Figure, title: str, fontsize: float = 10) -> None:
    """A figure title wrapped to the figure's width (narrow figures, e.g. few images in quick
    runs, would otherwise cut it off at both sides)."""
    chars = max(12, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    lines = [textwrap.fill(line, chars) for line in str(title).split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def hide_frame(ax: Any) -> None:
    """Hide ticks and frame but keep the axis labels usable (unlike ``axis('off')``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def colors(n: int) -> list:
    """n distinct colours: tab10, tab20 beyond 10, cycling beyond 20."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def class_labels(class_names: Sequence[str] | None, n: int) -> list[str]:
    """``n`` legend labels: the given names, then the class numbers of the classes beyond."""
    names = [str(c) for c in class_names] if class_names is not None else []
    return names + [str(i) for i in range(len(names), n)]


def shape_str(shape: Sequence[int]) -> str:
    """A shape as Python writes a tuple: ``(3,)``, ``(2, 4)``."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def log_worthwhile(values: Any) -> bool:
    """Whether the positive finite ``values`` span a factor of :data:`LOG_MIN_RATIO` or more."""
    flat = np.ravel(np.asarray(values, dtype=float))
    v = flat[np.isfinite(flat) & (flat > 0)]
    return bool(v.size > 1 and v.max() / v.min() >= LOG_MIN_RATIO)


def symmetric_limit(a: np.ndarray) -> float:
    """The largest ``|a|`` (1 for an empty or all-zero array): a diverging scale's end."""
    v = float(np.max(np.abs(a))) if a.size else 0.0
    return v if v > 0 else 1.0


def is_numeric(values: Sequence) -> bool:
    """Whether ``values`` are numbers (not bools): a numeric axis rather than categories."""
    a = np.asarray(values)
    return a.dtype != bool and np.issubdtype(a.dtype, np.number)
