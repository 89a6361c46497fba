"""Training curves: one run's metrics per epoch (:func:`curves`), several runs' one metric
overlaid (:func:`curves_overlay`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from fnn.plot._style import colors, log_worthwhile, new_figure, one_panel
from fnn.validate import one_of

__all__ = ["curves", "curves_overlay", "refresh_curves"]


def curves(history: Any, metrics: Sequence[str] | None = None,
           title: str | None = None, *, layout: str = "constrained") -> Figure:
    """One panel per metric (loss, accuracy, ...), train (solid) and eval (dashed) per epoch,
    with the restored best epoch marked when early stopping kept one. The key is on the first
    panel (and on any panel whose lines differ from the first's).

    ``history`` is the :class:`fnn.History` that :func:`fnn.train` returns; ``metrics`` picks
    the panels (default: every metric it has). ``layout="fixed"`` places the panels at fixed
    margins instead of matplotlib's constrained layout, which measures every text first (a
    whole extra draw per ``savefig``): a new figure's PNG costs about 40% less, what a live plot
    (:class:`fnn.LossLogger`) wants (``benchmarks/bench_live_plot.py`` times both).

    >>> import fnn
    >>> history = fnn.History(train={"loss": [1.0, 0.5, 0.4]}, eval={"loss": [1.1, 0.7, 0.8]})
    >>> fig = fnn.plot.curves(history, title="toy run")
    >>> len(fig.axes), fig.axes[0].get_ylabel()
    (1, 'loss')
    """
    names = _panels(history, metrics)
    if not names:
        raise ValueError("curves: the history has no metrics yet")
    layout = one_of("curves", "layout", layout, ("constrained", "fixed"))
    fig, axes = new_figure(len(names))
    first_lines: list[str] | None = None  # the first panel's legend entries
    for ax, name in zip(axes[0], names):
        for label, section, style, color in (("train", history.train, "-", "C0"),
                                             ("eval", history.eval, "--", "C1")):
            if name in section:  # one colour per section in every panel
                values = section[name]
                ax.plot(range(1, len(values) + 1), values, style, marker=".", label=label,
                        color=color, gid=f"{label}:{name}")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch + 1, color="grey", lw=0.8, ls=":", label="best",
                       gid="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10], integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))  # fewer ticks: quicker to draw
        ax.grid(alpha=0.3)
        lines = [line.get_label() for line in ax.get_lines()]
        if lines != first_lines:  # a key where the panel's lines differ from the first's
            ax.legend()
        first_lines = lines if first_lines is None else first_lines
    if title:
        fig.suptitle(title)
    if layout == "fixed":
        _fixed_layout(fig, bool(title))
    return fig


def _fixed_layout(fig: Figure, titled: bool) -> None:
    """Panels side by side at fixed margins (inches): room for tick labels and axis labels.
    The figure is left with no layout engine at all: with one (even matplotlib's placeholder
    for ``"none"``) ``savefig`` draws the figure twice, once only to lay it out."""
    with rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # None: what these rcParams say, here no engine
    width, height = fig.get_size_inches()
    left, right, bottom, top, gap = 0.8, 0.15, 0.55, 0.45 if titled else 0.2, 0.85
    n = len(fig.axes)
    w = (width - left - right - gap * (n - 1)) / n
    for i, ax in enumerate(fig.axes):
        ax.set_position(((left + i * (w + gap)) / width, bottom / height, w / width,
                         (height - bottom - top) / height))


def _panels(history: Any, metrics: Sequence[str] | None) -> list[str]:
    return list(metrics) if metrics else list(dict.fromkeys([*history.train, *history.eval]))


def refresh_curves(fig: Figure, history: Any, metrics: Sequence[str] | None = None) -> bool:
    """Update a figure made by :func:`curves` to ``history`` in place (the lines' data, the
    best-epoch marker, the axes' limits): much cheaper than a new figure, for a live plot.
    False, leaving ``fig`` as it was, when the history needs other panels or lines (a metric
    or a best epoch that appeared): make a new figure then.

    >>> import fnn
    >>> history = fnn.History(train={"loss": [1.0, 0.5]})
    >>> fig = fnn.plot.curves(history)
    >>> history.train["loss"].append(0.4)
    >>> refresh_curves(fig, history), list(fig.axes[0].lines[0].get_xdata())
    (True, [1, 2, 3])
    """
    names = _panels(history, metrics)
    lines = {line.get_gid(): line for ax in fig.axes for line in ax.get_lines()}
    sections = {"train": history.train, "eval": history.eval}
    wanted = {f"{label}:{name}" for name in names for label, sec in sections.items()
              if name in sec}
    best = history.best_epoch is not None
    if len(fig.axes) != len(names) or wanted != set(lines) - {"best"} or best != ("best" in lines):
        return False
    for key in wanted:
        label, name = key.split(":", 1)
        values = list(sections[label][name])
        lines[key].set_data(list(range(1, len(values) + 1)), values)
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_gid() == "best":
                line.set_xdata([history.best_epoch + 1] * 2)
        ax.relim()
        ax.autoscale_view()
    return True


def _check_runs(histories: Mapping[str, Any], metric: str, sections: tuple[str, ...]) -> None:
    """Every run has ``metric`` in one of ``sections``; the error lists what a run has."""
    if not histories:
        raise ValueError("curves_overlay: histories is empty; expected {label: History}")
    for name, h in histories.items():
        if not any(metric in getattr(h, s) for s in sections):
            have = {s: sorted(getattr(h, s)) for s in ("train", "eval")}
            raise ValueError(
                f"curves_overlay: run {name!r} has no {'/'.join(sections)} metric {metric!r}; "
                f"it has train: {have['train']}, eval: {have['eval']}")


def _line_style_key(ax: Any) -> None:
    """A second legend saying which line style is train and which eval, beside the runs'."""
    ax.add_artist(ax.get_legend())
    ax.legend(handles=[Line2D([], [], color="0.3", ls="-", label="train"),
                       Line2D([], [], color="0.3", ls="--", label="eval")],
              fontsize=8, loc="lower left", title="line style", title_fontsize=8)


def curves_overlay(
    histories: dict[str, Any], metric: str = "loss", *, section: str = "train",
    log_y: bool = False, title: str | None = None,
) -> Figure:
    """One line per labelled run (e.g. initialisation schemes) of ``history.train[metric]``,
    ``history.eval[metric]``, or with ``section="both"`` train solid and eval dashed in the
    run's colour, with a key for the two line styles. ``histories`` maps a label to a
    :class:`fnn.training.History`. ``log_y`` asks for a log axis, used only when the values
    span a factor of :data:`fnn.plot.LOG_MIN_RATIO` or more.

    >>> import fnn
    >>> from fnn.training import History
    >>> runs = {"a": History(train={"loss": [1.0, 0.5]}), "b": History(train={"loss": [1.0, 0.8]})}
    >>> len(fnn.plot.curves_overlay(runs).axes[0].lines)
    2
    """
    one_of("curves_overlay", "section", section, ("train", "eval", "both"))
    sections = ("train", "eval") if section == "both" else (section,)
    _check_runs(histories, metric, sections)
    fig, ax = one_panel((5.5, 3.8))
    plotted: list[float] = []
    for color, (name, h) in zip(colors(len(histories)), histories.items()):
        labelled = False
        for s, style in (("train", "-"), ("eval", "--")):
            if s in sections and metric in getattr(h, s):
                v = getattr(h, s)[metric]
                plotted += list(v)
                ax.plot(range(1, len(v) + 1), v, style, color=color,
                        label=None if labelled else name)
                labelled = True
    if log_y and log_worthwhile(plotted):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric if section == "both" else f"{section} {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(histories) > 6 else 1)
    if section == "both":  # which line style is which, whatever the title says
        _line_style_key(ax)
    default = f"{metric} (solid: train, dashed: eval)" if section == "both" \
        else f"{section} {metric}"
    ax.set_title(title or default)
    return fig
