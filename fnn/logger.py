"""A training callback that redraws the loss/score curves after every epoch."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fnn.validate import positive_int


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()
    return ip is not None and hasattr(ip, "kernel")


class LossLogger:
    """``fnn.train(..., callbacks=[fnn.LossLogger("curves.png")])``.

    In Jupyter the figure is redrawn inline (the previous one replaced); elsewhere it is written
    to ``path`` (atomically) after every epoch, so an image viewer shows live progress.
    ``metrics`` picks the panels (default: every metric of the history), ``every`` redraws
    every n epochs (a positive int). Needs matplotlib (``pip install 'fnn[plot]'``), imported at the first draw.

    >>> import os, tempfile, fnn
    >>> data = fnn.datasets.xor(200)
    >>> model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(2))
    >>> _, params = model.init(fnn.key(0), (-1, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> state, history = fnn.train(
    ...     fnn.supervised_step(model, fnn.cross_entropy, fnn.adam(1e-2)),
    ...     fnn.batches(data.x_train, data.y_train, batch_size=32),
    ...     fnn.TrainState.create(params, fnn.adam(1e-2)), epochs=2, progress=False,
    ...     callbacks=[fnn.LossLogger(path)])
    >>> os.path.getsize(path) > 0
    True
    """

    def __init__(self, path: str | os.PathLike | None = "training_curves.png",
                 metrics: Sequence[str] | None = None, every: int = 1, title: str | None = None):
        self.path = Path(path) if path is not None else None
        self.metrics, self.title = metrics, title
        self.every = positive_int("LossLogger", "every", every)
        self._handle: Any = None

    def __call__(self, epoch: int, state: Any, history: Any) -> None:
        if (epoch + 1) % self.every:
            return None
        from fnn.plot import curves

        fig = curves(history, self.metrics, self.title)
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
        return None
