"""A training callback that keeps a live figure of the loss/score curves, cheaply."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fnn.training.history import History
from fnn.validate import non_negative, positive_int


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def _snapshot(history: Any) -> Any:
    """A copy of what the curves show (the loop keeps appending to ``history``)."""
    return History(train={k: list(v) for k, v in history.train.items()},
                   eval={k: list(v) for k, v in history.eval.items()},
                   best_epoch=history.best_epoch)


class LossLogger:
    """``fnn.train(..., callbacks=[fnn.LossLogger("curves.png")])``: the loss after each epoch,
    as a live figure.

    In Jupyter the figure is redrawn inline (the previous one replaced); elsewhere it is written
    to ``path`` (atomically), so an image viewer shows live progress. ``metrics`` picks the
    panels (default: every metric of the history), ``every`` updates every n epochs (a positive
    int). Needs matplotlib (``pip install 'fnn[plot]'``), imported at the first draw.

    Drawing a PNG costs far more than an epoch of a small model, so an epoch only copies the
    history's numbers (microseconds); the figure (fixed margins: ``fnn.plot.curves(...,
    layout="fixed")``, about 40% cheaper to draw) is made once, updated in place
    (:func:`fnn.plot.refresh_curves`) and rendered at most every ``interval`` seconds
    (counted from the logger's creation): an epoch that ends sooner is rendered by a
    background timer when the interval is up, or by :meth:`flush`, which renders what is
    pending at once (call it after training for the final picture without waiting).
    ``interval=0`` renders every epoch, as soon as it ends.

    >>> import os, tempfile, fnn
    >>> data = fnn.datasets.xor(200)
    >>> model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> logger = fnn.LossLogger(path)
    >>> state, history = fnn.train(
    ...     fnn.supervised_step(model, fnn.cross_entropy, fnn.adam(1e-2)),
    ...     fnn.batches(data.x_train, data.y_train, batch_size=32),
    ...     fnn.TrainState.create(params, fnn.adam(1e-2)), epochs=2, progress=False,
    ...     callbacks=[logger])
    >>> logger.flush()          # the last epoch's picture, now
    >>> os.path.getsize(path) > 0, logger.renders
    (True, 1)
    """

    def __init__(self, path: str | os.PathLike | None = "training_curves.png",
                 metrics: Sequence[str] | None = None, every: int = 1, title: str | None = None,
                 interval: float = 5.0):
        self.path = Path(path) if path is not None else None
        self.metrics, self.title = metrics, title
        self.every = positive_int("LossLogger", "every", every)
        self.interval = non_negative("LossLogger", "interval", interval)
        self.renders = 0  # how many times the figure was rendered
        self._handle: Any = None
        self._fig: Any = None
        self._history: Any = None  # the numbers of the last epoch seen, not yet drawn
        self._dirty = False
        self._last = time.monotonic()  # of the last render (or of the logger's creation)
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    def __call__(self, epoch: int, state: Any, history: Any) -> None:
        if (epoch + 1) % self.every:
            return None
        with self._lock:
            self._history = _snapshot(history)
            self._dirty = True
            if time.monotonic() - self._last >= self.interval:
                self._render()
            elif self._timer is None:
                wait = self.interval - (time.monotonic() - self._last)
                self._timer = threading.Timer(max(wait, 0.0), self.flush)
                self._timer.daemon = False  # the last picture is drawn even at exit
                self._timer.start()
        return None

    def flush(self) -> None:
        """Render the figure now if an epoch is not rendered yet (the end of training)."""
        with self._lock:
            if self._timer is not None:
                if self._timer is not threading.current_thread():
                    self._timer.cancel()
                self._timer = None
            if self._dirty:
                self._render()

    def _render(self) -> None:
        """Draw the last numbers seen: the figure made once, then updated in place (a new one
        when panels or lines appear), and written (or shown)."""
        from fnn.plot import curves, refresh_curves

        history = self._history
        if self._fig is None or not refresh_curves(self._fig, history, self.metrics):
            self._fig = curves(history, self.metrics, self.title, layout="fixed")
        fig = self._fig
        if _in_notebook():
            from IPython.display import display

            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)
        elif self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
            fig.savefig(tmp, dpi=100)
            os.replace(tmp, self.path)
        self._dirty = False
        self._last = time.monotonic()
        self.renders += 1
