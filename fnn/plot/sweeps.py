"""Comparisons across runs: a metric against a hyper-parameter (:func:`sweep`), one bar per
run with its value written on it (:func:`bar_table`), bars per group and series
(:func:`grouped_bars`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fnn.plot._style import colors, is_numeric, log_worthwhile, one_panel, shape_str

__all__ = ["bar_table", "grouped_bars", "sweep"]


def _check_sweep(values: list, series: dict[str, Sequence[float]],
                 errors: dict[str, Sequence[float]] | None) -> None:
    """Every series and every error bar has one entry per value; errors only for series."""
    if not series:
        raise ValueError("sweep: series is empty; expected e.g. {'test accuracy': [...]}")
    for name, s in series.items():
        if np.ndim(s) != 1 or len(s) != len(values):
            raise ValueError(f"sweep: series {name!r} has shape {shape_str(np.shape(s))}; "
                             f"expected ({len(values)},) like values")
    for name, s in (errors or {}).items():
        if name not in series:
            raise ValueError(f"sweep: errors for {name!r}, which is not a series "
                             f"(series: {', '.join(map(repr, series))})")
        if np.ndim(s) != 1 or len(s) != len(values):
            raise ValueError(f"sweep: errors {name!r} have shape {shape_str(np.shape(s))}; "
                             f"expected ({len(values)},) like values")


def _line(ax: Any, x: np.ndarray, name: str, s: Sequence[float], err: Sequence[float] | None,
          y_limits: tuple[float | None, float | None] | None) -> None:
    """One series with markers, and its error bars clipped to ``y_limits`` (a bar past a
    value's possible range would show an impossible value)."""
    y = np.asarray(s, dtype=float)
    if err is None:
        ax.plot(x, y, marker="o", label=name)
        return
    lo, hi = y_limits if y_limits is not None else (None, None)
    e = np.asarray(err, dtype=float)
    below = np.minimum(e, y - lo) if lo is not None else e
    above = np.minimum(e, hi - y) if hi is not None else e
    ax.errorbar(x, y, yerr=np.stack([np.maximum(below, 0), np.maximum(above, 0)]),
                marker="o", capsize=3, label=name)


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
    :data:`fnn.plot.LOG_MIN_RATIO` or more.

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
    _check_sweep(values, series, errors)
    numeric = is_numeric(values) if values else True
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    if log_x and (not numeric or np.any(x <= 0)):
        raise ValueError(f"sweep: log_x needs positive numeric values; got {values}")
    fig, ax = one_panel((5, 3.6))
    for name, s in series.items():
        _line(ax, x, name, s, (errors or {}).get(name), y_limits)
    if log_y and log_worthwhile([v for s in series.values() for v in s]):
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
    names = [str(v) for v in labels]
    values_a = np.asarray(values, dtype=float)
    if values_a.ndim != 1 or len(values_a) != len(names):
        raise ValueError(f"bar_table: values have shape {shape_str(values_a.shape)}; expected "
                         f"({len(names)},), one per label")
    if errors is not None and (np.ndim(errors) != 1 or len(errors) != len(names)):
        raise ValueError(f"bar_table: errors have shape {shape_str(np.shape(errors))}; "
                         f"expected ({len(names)},), one per label")
    fig, ax = one_panel((max(3.5, 0.7 * len(names) + 1.5), 3.6))
    bars = ax.bar(np.arange(len(names)), values_a, yerr=errors, capsize=3 if errors else 0,
                  color=colors(len(names)))
    ax.bar_label(bars, labels=[fmt.format(v) for v in values_a], fontsize=8, padding=2)
    long = max(map(len, names), default=0) > 6
    ax.set_xticks(np.arange(len(names)), names, rotation=30 if long else 0,
                  ha="right" if long else "center")
    ax.set_ylabel(ylabel)
    ax.margins(y=0.12)
    if title:
        ax.set_title(title)
    return fig


def _check_groups(groups: list[str], series: dict[str, Sequence[float]],
                  errors: dict[str, Sequence[float]] | None) -> None:
    """Every series and every error bar has one value per group; errors only for series."""
    if not series:
        raise ValueError("grouped_bars: series is empty; expected {name: one value per group}")
    for name, s in {**series, **(errors or {})}.items():
        if np.ndim(s) != 1 or len(s) != len(groups):
            raise ValueError(f"grouped_bars: {name!r} has shape {shape_str(np.shape(s))}; "
                             f"expected ({len(groups)},), one value per group")
    for name in errors or {}:
        if name not in series:
            raise ValueError(f"grouped_bars: errors for {name!r}, which is not a series")


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
    names = [str(g) for g in groups]
    _check_groups(names, series, errors)
    m = len(series)
    width = 0.8 / m
    x = np.arange(len(names))
    fig, ax = one_panel((max(4, 0.5 * m * len(names) + 2), 3.6))
    for i, (color, (name, s)) in enumerate(zip(colors(m), series.items())):
        err = (errors or {}).get(name)
        bars = ax.bar(x + (i - (m - 1) / 2) * width, np.asarray(s, dtype=float), width,
                      yerr=err, capsize=2 if err is not None else 0, color=color, label=name)
        if fmt:
            ax.bar_label(bars, labels=[fmt.format(float(v)) for v in s], fontsize=7, padding=2)
    ax.set_xticks(x, names)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.12)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
