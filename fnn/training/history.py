"""What a run records and how it decides to stop early: :class:`History` (per-epoch metrics,
seconds, why and where it stopped) and :class:`EarlyStopping`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from fnn.validate import non_negative, one_of, positive_int

__all__ = ["EarlyStopping", "History"]


@dataclass
class History:
    """What :func:`train` saw: per-epoch means of the step metrics (``train``), the eval
    metrics (``eval``), seconds per epoch, why and where it stopped, where it resumed.

    ``stop_reason``: ``"completed"``, ``"early_stopping"``, ``"callback"``, ``"diverged"``,
    ``"interrupted"`` or ``"error"`` (then ``error`` is the exception). ``resumed`` lists the
    checkpoints the run continued from (``{"epoch", "batch", "step", "file"}``, epoch and batch
    counted from 0).

    >>> import fnn
    >>> _, hist = fnn.train(lambda s, b: (s + 1, {"loss": 1.0 / (s + 1)}), [(1,), (2,)], 0,
    ...                     epochs=2, progress=False)
    >>> hist.epochs, [round(v, 4) for v in hist.train["loss"]], hist.stop_reason
    (2, [0.75, 0.2917], 'completed')
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    eval: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str = "completed"
    message: str = ""
    resumed: list[dict] = field(default_factory=list)
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def log(self, section: dict[str, list[float]], metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            section.setdefault(k, []).append(float(v))

    def truncate(self, epochs: int) -> None:
        """Forget every epoch from ``epochs`` on (an epoch whose evaluation or callbacks
        failed is not kept half-logged)."""
        for section in (self.train, self.eval):
            for k in list(section):
                del section[k][epochs:]
                if not section[k]:
                    del section[k]
        del self.seconds[epochs:]

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("error")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**{k: v for k, v in d.items() if k != "error"})


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` names an eval metric (a train metric when there is no ``eval_fn``); ``mode`` is
    ``"min"`` (losses) or ``"max"`` (accuracies); a NaN is never an improvement. With
    ``restore_best`` the returned state is the best epoch's.

    >>> import fnn
    >>> stop = fnn.EarlyStopping("accuracy", patience=3, mode="max")
    >>> stop.improved(0.9, best=0.8), stop.improved(float("nan"), best=None)
    (True, False)
    """

    monitor: str = "loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        one_of("EarlyStopping", "mode", self.mode, ("min", "max"))
        positive_int("EarlyStopping", "patience", self.patience)
        non_negative("EarlyStopping", "min_delta", self.min_delta)

    def improved(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta
