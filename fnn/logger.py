"""A training callback that redraws the loss/score curves after every epoch."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()
    return ip is not None and hasattr(ip, "kernel")


class LossLogger:
    """``fnn.train(..., callbacks=[fnn.LossLogger("curves.png")])``.

    In Jupyter the figure is redrawn inline (the previous one replaced); elsewhere it is written
    to ``path`` (atomically) after every epoch, so an image viewer shows live progress."""

    def __init__(self, path: str | os.PathLike | None = "training_curves.png",
                 metrics: Sequence[str] | None = None, every: int = 1, title: str | None = None):
        self.path = Path(path) if path is not None else None
        self.metrics, self.every, self.title = metrics, max(1, int(every)), title
        self._handle = None

    def __call__(self, epoch: int, state, history) -> None:
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
