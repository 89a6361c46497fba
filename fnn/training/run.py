"""One call of :func:`fnn.train`: its record (:class:`Run`: what it was given, where it is,
the states it keeps, its checkpoints) and the ways it ends: completed (the result, the best
state with ``restore_best``), diverged, interrupted, or failed (:class:`TrainingError`, after a
checkpoint of the last good state)."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from fnn.checkpoint import BackgroundWriter
from fnn.training.history import EarlyStopping, History
from fnn.training.resume import Progress
from fnn.training.steps import plain
from fnn.validate import integer

__all__ = ["Run", "TrainingError", "warn"]


class TrainingError(RuntimeError):
    """Training stopped because ``step_fn``, a batch, ``eval_fn`` or a callback raised.

    Nothing is lost: ``state`` is the last good training state (the one the failing step was
    given, or the epoch's final state when evaluation or a callback failed), ``history`` the
    history up to it (``stop_reason == "error"``), ``checkpoint`` the file written first when
    checkpointing was on. The original exception is ``__cause__``.

    >>> import numpy as np, fnn
    >>> def failing_step(state, batch):
    ...     if state == 3:
    ...         raise RuntimeError("malformed batch")
    ...     return state + 1, {"loss": 0.0}
    >>> try:
    ...     fnn.train(failing_step, [(np.zeros(1),)] * 2, 0, epochs=5, progress=False)
    ... except fnn.TrainingError as err:
    ...     print(err.state, err.history.epochs, err.history.stop_reason)
    3 1 error
    """

    def __init__(self, message: str, state: Any, history: History,
                 checkpoint: Path | None = None):
        super().__init__(message)
        self.state, self.history, self.checkpoint = state, history, checkpoint


class Run:
    """One call of :func:`train`: what it was given, where it is (``loop``, saved in
    checkpoints), the states it keeps, and its checkpoint writer."""

    def __init__(self, step_fn: Any, data: Any, state: Any, epochs: Any, eval_fn: Any,
                 early_stopping: EarlyStopping | None, callbacks: Sequence[Callable],
                 checkpoint: Any):
        self.epochs = integer("train", "epochs", epochs, minimum=0)
        try:
            self.steps_per_epoch: int | None = len(data)
        except TypeError:
            self.steps_per_epoch = None
        if self.steps_per_epoch == 0:
            raise ValueError("train: data has no batches (empty dataset)")
        if not hasattr(data, "epoch") and iter(data) is data and (self.epochs > 1 or checkpoint):
            raise TypeError("train: data is a one-shot iterator; pass fnn.batches(...) or a list")
        self.step_fn, self.step = step_fn, plain(step_fn)  # the loop calls the function itself
        self.data, self.eval_fn, self.callbacks = data, eval_fn, callbacks
        self.early_stopping = early_stopping
        self.state, self.last_good, self.best_state = state, None, None
        self.loop = Progress()
        self.every: tuple[str, float] = ("never", 0)
        self.writer: BackgroundWriter | None = None
        self.fingerprint: dict | None = None
        self.last_saved = time.monotonic()
        self.bar: Any = None
        self.ranks: Any = None  # fnn.distributed's ranks (see train)

    def save(self, state: Any, sync: bool = False) -> Path | None:
        """Checkpoint ``state`` with the loop's progress (in the background unless ``sync``);
        nothing without a checkpoint folder."""
        if self.writer is None:
            return None
        kw = dict(progress=self.loop.snapshot(), best_state=self.best_state,
                  fingerprint=self.fingerprint)
        if sync:
            return self.writer.write_now(state, **kw)
        self.writer.submit(state, **kw)
        return None


# ------------------------------------------------------------------------------- how it ends


def warn(message: str, category: type[Warning]) -> None:
    """Warn on behalf of :func:`train`: the warning points at the line that called it, however
    deep in the loop it is raised."""
    frame: FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fnn.training."):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def result(run: Run) -> tuple[Any, History]:
    """The run's state (the best epoch's with ``restore_best``) and history."""
    stopping, history = run.early_stopping, run.loop.history
    if (stopping is not None and stopping.restore_best and history.best_epoch is not None
            and run.best_state is not None and history.stop_reason != "diverged"):
        return run.best_state, history
    return run.state, history


def diverged(run: Run, bad: str) -> tuple[Any, History]:
    """A non-finite metric: warn, checkpoint and return the last good (or the best) state."""
    loop, history, stopping = run.loop, run.loop.history, run.early_stopping
    history.stop_reason = "diverged"
    restore = stopping is not None and stopping.restore_best and run.best_state is not None
    good = (run.best_state if restore
            else run.last_good if run.last_good is not None else run.state)
    which = (f"the best epoch's state (epoch {(history.best_epoch or 0) + 1})" if restore
             else "the last state with finite metrics" if run.last_good is not None
             else "the initial state (the first step already diverged)")
    history.message = (f"training diverged at epoch {loop.epoch + 1}, step {loop.batch + 1}: "
                       f"{bad}; returning {which} (lower the learning rate?)")
    loop.finished = True
    _save_or_warn(run, good)
    run.bar.close()
    warn(history.message, RuntimeWarning)
    return good, history


def interrupted(run: Run) -> tuple[Any, History]:
    """Ctrl-C: checkpoint and return the state of the last completed step."""
    history = run.loop.history
    history.stop_reason = "interrupted"
    history.message = "interrupted: returning the state of the last completed step"
    _save_or_warn(run, run.state)
    warn(history.message, RuntimeWarning)
    return run.state, history


def _save_or_warn(run: Run, state: Any) -> Path | None:
    """A last checkpoint whose failure must not hide what stopped the run: warn instead."""
    try:
        return run.save(state, sync=True)
    except Exception as err:  # noqa: BLE001
        warn(f"train: could not write the checkpoint: {err}", RuntimeWarning)
        return None


def checkpoint_or_fail(run: Run, sync: bool = False) -> None:
    """A checkpoint at an epoch's end or of the finished run; a failure to write it (a full
    disk) stops training like any other error, the state kept in the TrainingError."""
    try:
        run.save(run.state, sync=sync)
    except Exception as err:  # noqa: BLE001
        raise failure_error(run, err, "checkpoint") from err


def failure_error(run: Run, err: Exception, stage: str) -> TrainingError:
    """The TrainingError for ``err`` raised at ``stage``, after a checkpoint of the last good
    state."""
    loop, history = run.loop, run.loop.history
    history.stop_reason, history.error = "error", err
    where = {"step": f"epoch {loop.epoch + 1}, step {loop.batch + 1}",
             "end of epoch": f"the end of epoch {loop.epoch + 1} (evaluation or a callback)",
             "checkpoint": f"a checkpoint after step {loop.steps}"}[stage]
    path = _save_or_warn(run, run.state)
    history.message = (f"training stopped at {where} by {type(err).__name__}: {err}; the last "
                       "good state is kept in this error's .state and .history"
                       + (f" and in {path}" if path is not None else ""))
    if not run.bar.disable:
        run.bar.write("train: " + history.message)
    return TrainingError(history.message, run.state, history, path)
